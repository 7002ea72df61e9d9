//! A 17-byte trailer on every RTP payload a synthetic publisher sends: how many leading bytes
//! the checksum skips (the codec's payload descriptor, which an SFU may rewrite), a checksum of
//! the bytes after them up to the trailer, the send time (µs since the Unix epoch; the same clock
//! on loopback) and a magic number. No SFU looks past the payload descriptor, so the rest arrives
//! as sent and gives each receiver integrity and one-way delay per packet.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

pub const TRAILER: usize = 1 + 4 + 8 + 4;
const MAGIC: [u8; 4] = *b"JFt1";

fn fnv(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

pub fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// `body` followed by its trailer; the checksum covers `body[skip..]`.
pub fn stamp(body: &[u8], skip: usize) -> Bytes {
    let skip = skip.min(body.len()).min(255);
    let mut p = BytesMut::with_capacity(body.len() + TRAILER);
    p.extend_from_slice(body);
    p.put_u8(skip as u8);
    p.put_u32(fnv(&body[skip..]));
    p.put_u64(now_micros());
    p.extend_from_slice(&MAGIC);
    p.freeze()
}

/// A synthetic video payload of `len` bytes whose first two bytes read as the start of a VP8 key
/// frame (so an SFU forwards it at once), then `counter`, filler, and the trailer.
pub fn synthetic(counter: u64, len: usize) -> Bytes {
    stamp(&synthetic_body(counter, len), 1)
}

/// [`synthetic`] without the trailer.
pub fn synthetic_body(counter: u64, len: usize) -> Vec<u8> {
    let body_len = len.saturating_sub(TRAILER).max(10);
    let mut body = Vec::with_capacity(body_len);
    body.extend_from_slice(&[0x10, 0x00]);
    body.extend_from_slice(&counter.to_be_bytes());
    while body.len() < body_len {
        body.push((body.len() as u64 ^ counter) as u8);
    }
    body
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The one-way delay in µs.
    Intact(u64),
    Corrupt,
}

pub fn check(p: &[u8]) -> Check {
    let Some(split) = p.len().checked_sub(TRAILER) else { return Check::Corrupt };
    let (body, trailer) = p.split_at(split);
    let skip = usize::from(trailer[0]);
    let sum = u32::from_be_bytes([trailer[1], trailer[2], trailer[3], trailer[4]]);
    if trailer[13..] != MAGIC || body.get(skip..).is_none_or(|b| fnv(b) != sum) {
        return Check::Corrupt;
    }
    let mut sent = [0u8; 8];
    sent.copy_from_slice(&trailer[5..13]);
    Check::Intact(now_micros().saturating_sub(u64::from_be_bytes(sent)))
}

/// The counter of an intact synthetic payload.
pub fn synthetic_counter(p: &[u8]) -> Option<u64> {
    match check(p) {
        Check::Intact(_) => Some(u64::from_be_bytes(p.get(2..10)?.try_into().ok()?)),
        Check::Corrupt => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let p = synthetic(42, 300);
        assert_eq!(p.len(), 300);
        assert!(matches!(check(&p), Check::Intact(d) if d < 1_000_000));
        assert_eq!(synthetic_counter(&p), Some(42));
        let mut bad = p.to_vec();
        bad[50] ^= 1;
        assert_eq!(check(&bad), Check::Corrupt);
        assert_eq!(check(&[0u8; 5]), Check::Corrupt);
        let frame = stamp(b"\x10\x00vp8 bytes", 1);
        assert!(matches!(check(&frame), Check::Intact(_)));
        assert_eq!(&frame[..11], b"\x10\x00vp8 bytes");
        // A rewritten descriptor is not corruption; a changed frame byte is.
        let mut rewritten = frame.to_vec();
        rewritten[0] = 0x90;
        assert!(matches!(check(&rewritten), Check::Intact(_)));
        rewritten[1] ^= 1;
        assert_eq!(check(&rewritten), Check::Corrupt);
    }
}
