//! Keyframe detection from RTP payloads (VP8, VP9, H.264), so that a subscriber starts, and
//! resumes, only at a frame it can decode. Never panics on any payload.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    Vp8,
    Vp9,
    H264,
    Other,
}

impl VideoCodec {
    pub fn from_mime(mime: &str) -> VideoCodec {
        let m = mime.to_ascii_lowercase();
        match m.as_str() {
            "video/vp8" => VideoCodec::Vp8,
            "video/vp9" => VideoCodec::Vp9,
            "video/h264" => VideoCodec::H264,
            _ => VideoCodec::Other,
        }
    }
}

/// True when the packet starts a keyframe. `Other` codecs are treated as always decodable.
pub fn is_keyframe(codec: VideoCodec, payload: &[u8]) -> bool {
    match codec {
        VideoCodec::Vp8 => vp8_keyframe(payload),
        VideoCodec::Vp9 => vp9_keyframe(payload),
        VideoCodec::H264 => h264_keyframe(payload),
        VideoCodec::Other => true,
    }
}

/// RFC 7741: the payload descriptor, then (at the start of partition 0) the VP8 frame header
/// whose lowest bit is 0 for a key frame.
fn vp8_keyframe(p: &[u8]) -> bool {
    vp8_frame_start(p).and_then(|at| p.get(at)).is_some_and(|b| b & 0x01 == 0)
}

/// Where the VP8 frame header begins in a packet that starts partition 0 (RFC 7741 §4.2).
fn vp8_frame_start(p: &[u8]) -> Option<usize> {
    let first = *p.first()?;
    let extended = first & 0x80 != 0;
    let start = first & 0x10 != 0;
    let partition = first & 0x07;
    if !start || partition != 0 {
        return None;
    }
    let mut at = 1usize;
    if extended {
        let x = *p.get(at)?;
        at += 1;
        if x & 0x80 != 0 {
            // PictureID: 7 or 15 bits.
            let pid = *p.get(at)?;
            at += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            at += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            at += 1; // TID / KEYIDX
        }
    }
    Some(at)
}

/// Width and height of the picture a VP8 key frame starts (RFC 6386 §9.1: the 3-byte frame tag,
/// the start code 9d 01 2a, then 14-bit width and height), from its first RTP packet.
pub fn vp8_keyframe_size(p: &[u8]) -> Option<(u16, u16)> {
    let at = vp8_frame_start(p)?;
    let h = p.get(at..at + 10)?;
    if h[0] & 0x01 != 0 || h[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    Some((u16::from_le_bytes([h[6], h[7]]) & 0x3fff, u16::from_le_bytes([h[8], h[9]]) & 0x3fff))
}

/// VP9 payload descriptor (draft-ietf-payload-vp9): B (start of frame) set and P (inter-picture
/// predicted) clear.
fn vp9_keyframe(p: &[u8]) -> bool {
    let Some(&first) = p.first() else { return false };
    let inter_predicted = first & 0x40 != 0;
    let begins_frame = first & 0x08 != 0;
    begins_frame && !inter_predicted
}

/// RFC 6184: an IDR slice or an SPS, alone, in a STAP-A or at the start of an FU-A.
fn h264_keyframe(p: &[u8]) -> bool {
    let Some(&first) = p.first() else { return false };
    let is_key = |nal_type: u8| nal_type == 5 || nal_type == 7;
    match first & 0x1f {
        24 => {
            let mut at = 1usize;
            while at + 2 < p.len() {
                let size = usize::from(u16::from_be_bytes([p[at], p[at + 1]]));
                let Some(&nal) = p.get(at + 2) else { return false };
                if size == 0 {
                    return false;
                }
                if is_key(nal & 0x1f) {
                    return true;
                }
                at += 2 + size;
            }
            false
        }
        28 => p.get(1).is_some_and(|fu| fu & 0x80 != 0 && is_key(fu & 0x1f)),
        t => is_key(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframe_size_from_the_frame_header() {
        // Descriptor with a 15-bit picture id, then a key frame tag, start code, 640x360.
        let p = [0x90, 0x80, 0x81, 0x23, 0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01, 0xff];
        assert_eq!(vp8_keyframe_size(&p), Some((640, 360)));
        let mut delta = p;
        delta[4] |= 1;
        assert_eq!(vp8_keyframe_size(&delta), None);
        assert_eq!(vp8_keyframe_size(&p[..8]), None);
        assert_eq!(vp8_keyframe_size(&[]), None);
    }

    #[test]
    fn vp8_key_and_delta_frames() {
        // S=1, PID=0, no extension; frame header bit 0 = 0 → key.
        assert!(is_keyframe(VideoCodec::Vp8, &[0x10, 0x00, 0x9d, 0x01, 0x2a]));
        assert!(!is_keyframe(VideoCodec::Vp8, &[0x10, 0x01]));
        // Extended with a 15-bit picture id and TL0PICIDX.
        assert!(is_keyframe(VideoCodec::Vp8, &[0x90, 0xc0, 0x81, 0x23, 0x05, 0x00]));
        // Not the start of a partition.
        assert!(!is_keyframe(VideoCodec::Vp8, &[0x00, 0x00]));
    }

    #[test]
    fn h264_idr_sps_stap_and_fu() {
        assert!(is_keyframe(VideoCodec::H264, &[0x65, 0x88]));
        assert!(is_keyframe(VideoCodec::H264, &[0x67, 0x42]));
        assert!(!is_keyframe(VideoCodec::H264, &[0x41, 0x9a]));
        assert!(is_keyframe(VideoCodec::H264, &[0x18, 0x00, 0x02, 0x67, 0x42, 0x00, 0x01, 0x68]));
        assert!(is_keyframe(VideoCodec::H264, &[0x7c, 0x85, 0x00]));
        assert!(!is_keyframe(VideoCodec::H264, &[0x7c, 0x05, 0x00]));
    }

    #[test]
    fn vp9_start_of_non_predicted_frame() {
        assert!(is_keyframe(VideoCodec::Vp9, &[0x08]));
        assert!(!is_keyframe(VideoCodec::Vp9, &[0x48]));
    }

    #[test]
    fn any_bytes_are_safe() {
        let mut seed = 7u32;
        for len in 0..64 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 16) as u8
                })
                .collect();
            for c in [VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::H264] {
                let _ = is_keyframe(c, &bytes);
            }
        }
    }
}
