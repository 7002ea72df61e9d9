#![no_main]
use jiefen_media::sdp::{candidates_in_every_section, media_sections, sections};
use libfuzzer_sys::fuzz_target;

// A client's offer is read by these before rtc parses it; the answer is rewritten by the last.
fuzz_target!(|data: &[u8]| {
    let Ok(sdp) = std::str::from_utf8(data) else { return };
    let all = sections(sdp);
    assert_eq!(all.len(), media_sections(sdp).len());
    let rewritten = candidates_in_every_section(sdp);
    // Rewriting never loses an m-line or a mid.
    assert_eq!(sections(&rewritten).len(), all.len());
});
