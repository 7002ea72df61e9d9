//! Synthetic media payloads: a counter, the send time and a checksum, behind two bytes that read
//! as the start of a VP8 key frame so that an SFU forwards them at once.

use std::time::{SystemTime, UNIX_EPOCH};

pub const HEADER: usize = 2 + 8 + 8;

fn fnv(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

pub fn make(counter: u64, len: usize) -> bytes::Bytes {
    let mut p = Vec::with_capacity(len.max(HEADER + 4));
    p.extend_from_slice(&[0x10, 0x00]);
    p.extend_from_slice(&counter.to_be_bytes());
    p.extend_from_slice(&now_micros().to_be_bytes());
    while p.len() < len.max(HEADER + 4) - 4 {
        p.push((p.len() as u64 ^ counter) as u8);
    }
    let sum = fnv(&p);
    p.extend_from_slice(&sum.to_be_bytes());
    bytes::Bytes::from(p)
}

/// `(counter, one-way delay in µs)` of an intact payload; `None` when corrupt.
pub fn check(p: &[u8]) -> Option<(u64, u64)> {
    if p.len() < HEADER + 4 {
        return None;
    }
    let (body, sum) = p.split_at(p.len() - 4);
    if fnv(body) != u32::from_be_bytes(sum.try_into().ok()?) {
        return None;
    }
    let counter = u64::from_be_bytes(body[2..10].try_into().ok()?);
    let sent = u64::from_be_bytes(body[10..18].try_into().ok()?);
    Some((counter, now_micros().saturating_sub(sent)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let p = make(42, 300);
        assert_eq!(p.len(), 300);
        assert_eq!(check(&p).map(|(c, _)| c), Some(42));
        let mut bad = p.to_vec();
        bad[50] ^= 1;
        assert_eq!(check(&bad), None);
        assert_eq!(check(&[0u8; 5]), None);
    }
}
