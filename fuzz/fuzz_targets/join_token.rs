#![no_main]
use jiefen_signaling::TokenKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = TokenKey::from_secret(b"fuzz-secret-0123456789abcdef0123").verify(text);
    }
});
