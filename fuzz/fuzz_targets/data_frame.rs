#![no_main]
use jiefen_media::data::{parse, relayed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for is_string in [false, true] {
        if let Ok(out) = parse(data, is_string) {
            // Whatever parses relays without panicking, and the relayed frame keeps the payload.
            if let Some(frame) = relayed("sender", out.text, !out.to.is_empty(), out.payload) {
                assert!(frame.ends_with(out.payload));
            }
        }
    }
});
