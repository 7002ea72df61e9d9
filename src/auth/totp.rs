//! Time-based one-time passwords (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits), the second
//! factor of staff login; any authenticator app reads the `otpauth://` URL.

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

const STEP: u64 = 30;
const DIGITS: u32 = 6;

/// A fresh 160-bit secret, base32 as authenticator apps expect.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 20];
    SystemRandom::new().fill(&mut bytes).expect("system random source");
    data_encoding::BASE32_NOPAD.encode(&bytes)
}

pub fn otpauth_url(secret: &str, username: &str) -> String {
    format!("otpauth://totp/jiefen:{username}?secret={secret}&issuer=jiefen&digits={DIGITS}&period={STEP}")
}

/// The code for the step containing `unix_secs`.
pub fn code_at(secret: &str, unix_secs: u64) -> Option<String> {
    let key = data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).ok()?;
    Some(hotp(&key, unix_secs / STEP))
}

fn hotp(key: &[u8], counter: u64) -> String {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key), &counter.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac[19] & 0x0f);
    let bin = u32::from_be_bytes([mac[offset] & 0x7f, mac[offset + 1], mac[offset + 2], mac[offset + 3]]);
    format!("{:0width$}", bin % 10u32.pow(DIGITS), width = DIGITS as usize)
}

/// Accepts the current step and one on either side (clock drift between phone and server).
pub fn verify(secret: &str, code: &str, unix_secs: u64) -> bool {
    let code = code.trim();
    if code.len() != DIGITS as usize {
        return false;
    }
    [unix_secs.saturating_sub(STEP), unix_secs, unix_secs + STEP]
        .iter()
        .filter_map(|t| code_at(secret, *t))
        .any(|c| same(c.as_bytes(), code.as_bytes()))
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, the SHA-1 seed "12345678901234567890", last six digits.
        let secret = data_encoding::BASE32_NOPAD.encode(b"12345678901234567890");
        for (t, want) in [(59, "287082"), (1_111_111_109, "081804"), (1_234_567_890, "005924"), (2_000_000_000, "279037")] {
            assert_eq!(code_at(&secret, t).as_deref(), Some(want), "t = {t}");
        }
    }

    #[test]
    fn drift_of_one_step_is_accepted_two_is_not() {
        let secret = new_secret();
        let now = 1_800_000_000;
        let code = code_at(&secret, now).expect("code");
        assert!(verify(&secret, &code, now + 30));
        assert!(!verify(&secret, &code, now + 90));
        assert!(!verify(&secret, "12345", now));
    }
}
