#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = jiefen_media::stun::is_stun(data);
    let _ = jiefen_media::stun::local_ufrag(data);
});
