//! The room data channel: the frames a participant and the SFU exchange over it, and the rate
//! limit on them.
//!
//! Each participant opens one reliable, ordered data channel labelled [`LABEL`] in its offer.
//! The SFU does not read payloads; it relays them to the other participants the room allows
//! (caucus groups as for media), naming the sender, so that a client cannot pass itself off as
//! someone else. Wire format (docs/signaling.md, "Data channel"):
//!
//! - client → SFU, a text message: its text, to everyone.
//! - client → SFU, a binary message: `0x01`, recipient count `n` (0 = everyone), `n` × (length
//!   byte, identity), flags (bit 0: the payload is UTF-8 text), payload.
//! - SFU → client: `0x01`, length byte, the sender's identity, flags (bit 0: text, bit 1: sent
//!   to chosen recipients only), payload.
//! - SFU → client, a refusal: `0xEE`, an [`DataError::code`], a UTF-8 reason.

use std::time::Instant;

use bytes::{BufMut, BytesMut};

/// The label of the one channel the SFU relays; other channels are ignored.
pub const LABEL: &str = "jiefen";

const FRAME_MESSAGE: u8 = 0x01;
const FRAME_ERROR: u8 = 0xEE;
pub const FLAG_TEXT: u8 = 0x01;
pub const FLAG_PRIVATE: u8 = 0x02;

/// A message a participant asked the SFU to relay.
#[derive(Debug, PartialEq, Eq)]
pub struct Outgoing<'a> {
    /// Recipients by identity; empty is everyone the sender may reach.
    pub to: Vec<&'a str>,
    pub text: bool,
    pub payload: &'a [u8],
}

/// Why a message was not relayed; sent back to its sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    #[error("malformed data channel frame: {0}")]
    Malformed(&'static str),
    #[error("message of {size} bytes exceeds the limit of {max}")]
    TooLarge { size: usize, max: usize },
    #[error("more than {0} messages per second")]
    RateLimited(u32),
    #[error("this participant may not send data")]
    NotPermitted,
    #[error("no participant {0} to receive this")]
    UnknownRecipient(String),
}

impl DataError {
    pub fn code(&self) -> u8 {
        match self {
            DataError::Malformed(_) => 1,
            DataError::TooLarge { .. } => 2,
            DataError::RateLimited(_) => 3,
            DataError::NotPermitted => 4,
            DataError::UnknownRecipient(_) => 5,
        }
    }
}

/// Reads what a participant sent on the channel.
pub fn parse(data: &[u8], is_string: bool) -> Result<Outgoing<'_>, DataError> {
    if is_string {
        std::str::from_utf8(data).map_err(|_| DataError::Malformed("text message is not UTF-8"))?;
        return Ok(Outgoing { to: Vec::new(), text: true, payload: data });
    }
    let (&kind, rest) = data.split_first().ok_or(DataError::Malformed("empty frame"))?;
    if kind != FRAME_MESSAGE {
        return Err(DataError::Malformed("unknown frame type"));
    }
    let (&count, mut rest) = rest.split_first().ok_or(DataError::Malformed("no recipient count"))?;
    let mut to = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let (&len, tail) = rest.split_first().ok_or(DataError::Malformed("recipient list cut short"))?;
        let len = usize::from(len);
        if len == 0 || tail.len() < len {
            return Err(DataError::Malformed("recipient list cut short"));
        }
        let identity = std::str::from_utf8(&tail[..len]).map_err(|_| DataError::Malformed("recipient is not UTF-8"))?;
        to.push(identity);
        rest = &tail[len..];
    }
    let (&flags, payload) = rest.split_first().ok_or(DataError::Malformed("no flags"))?;
    let text = flags & FLAG_TEXT != 0;
    if text {
        std::str::from_utf8(payload).map_err(|_| DataError::Malformed("text payload is not UTF-8"))?;
    }
    Ok(Outgoing { to, text, payload })
}

/// The frame a recipient gets; `None` if the sender's identity is longer than a frame can name
/// (identities are short; a join token with a longer one is refused before this).
pub fn relayed(from: &str, text: bool, private: bool, payload: &[u8]) -> Option<BytesMut> {
    let len = u8::try_from(from.len()).ok()?;
    let mut b = BytesMut::with_capacity(3 + from.len() + payload.len());
    b.put_u8(FRAME_MESSAGE);
    b.put_u8(len);
    b.put_slice(from.as_bytes());
    b.put_u8(if text { FLAG_TEXT } else { 0 } | if private { FLAG_PRIVATE } else { 0 });
    b.put_slice(payload);
    Some(b)
}

/// The refusal sent back to a sender.
pub fn refusal(error: &DataError) -> BytesMut {
    let reason = error.to_string();
    let mut b = BytesMut::with_capacity(2 + reason.len());
    b.put_u8(FRAME_ERROR);
    b.put_u8(error.code());
    b.put_slice(reason.as_bytes());
    b
}

/// A token bucket: `rate` messages per second on average, bursts of up to `burst`.
#[derive(Debug, Clone)]
pub struct RateLimit {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl RateLimit {
    pub fn new(per_second: u32) -> RateLimit {
        let rate = f64::from(per_second.max(1));
        RateLimit { rate, burst: rate * 2.0, tokens: rate * 2.0, last: None }
    }

    /// Whether one more message may go now.
    pub fn take(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            self.tokens = (self.tokens + now.saturating_duration_since(last).as_secs_f64() * self.rate).min(self.burst);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn text_goes_to_everyone() {
        assert_eq!(parse("你好".as_bytes(), true), Ok(Outgoing { to: vec![], text: true, payload: "你好".as_bytes() }));
        assert_eq!(parse(&[0xff, 0xfe], true), Err(DataError::Malformed("text message is not UTF-8")));
    }

    #[test]
    fn binary_frames_name_recipients() {
        let frame = [&[1u8, 2, 1, b'a', 2, b'b', b'c', 0][..], b"\x00\x01"].concat();
        assert_eq!(parse(&frame, false), Ok(Outgoing { to: vec!["a", "bc"], text: false, payload: b"\x00\x01" }));
        let text = [1u8, 0, FLAG_TEXT, b'h', b'i'];
        assert_eq!(parse(&text, false), Ok(Outgoing { to: vec![], text: true, payload: b"hi" }));
    }

    #[test]
    fn broken_frames_are_refused() {
        for bad in [&[][..], &[2, 0, 0], &[1], &[1, 1], &[1, 1, 5, b'a'], &[1, 1, 0, 0], &[1, 0], &[1, 0, FLAG_TEXT, 0xff]] {
            assert!(matches!(parse(bad, false), Err(DataError::Malformed(_))), "{bad:?}");
        }
    }

    #[test]
    fn relayed_frames_carry_the_sender() {
        let f = relayed("med", true, true, b"ok").expect("short identity");
        assert_eq!(&f[..], &[1, 3, b'm', b'e', b'd', FLAG_TEXT | FLAG_PRIVATE, b'o', b'k']);
        assert!(relayed(&"x".repeat(256), false, false, b"").is_none());
        let r = refusal(&DataError::RateLimited(5));
        assert_eq!(&r[..2], &[0xEE, 3]);
    }

    #[test]
    fn the_rate_limit_allows_a_burst_then_the_rate() {
        let mut limit = RateLimit::new(10);
        let t0 = Instant::now();
        assert_eq!((0..25).filter(|_| limit.take(t0)).count(), 20, "burst of twice the rate");
        assert!(!limit.take(t0));
        assert!(limit.take(t0 + Duration::from_millis(100)), "one more after a tenth of a second");
        assert!(!limit.take(t0 + Duration::from_millis(100)));
    }
}
