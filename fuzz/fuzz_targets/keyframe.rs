#![no_main]
use jiefen_media::keyframe::{VideoCodec, is_keyframe, vp8_keyframe_size};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for codec in [VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::H264] {
        let _ = is_keyframe(codec, data);
    }
    let _ = vp8_keyframe_size(data);
});
