//! Field-level encryption of personal data at rest (phone and ID numbers): AES-256-GCM with a
//! random nonce per value, plus a keyed blind index (HMAC-SHA256) so that an exact phone or ID
//! number can be searched without decrypting every row. Masking for lists and logs.

use base64::Engine as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

const PREFIX: &str = "v1:";

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the field key must be 32 bytes (64 hex digits)")]
    BadKey,
    #[error("an encrypted field could not be decrypted (wrong key or damaged value)")]
    Decrypt,
}

#[derive(Clone)]
pub struct FieldCipher {
    key: std::sync::Arc<LessSafeKey>,
    index_key: hmac::Key,
    rng: SystemRandom,
}

impl std::fmt::Debug for FieldCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FieldCipher(<redacted>)")
    }
}

impl FieldCipher {
    /// From 32 raw key bytes. The index key is derived, so one secret is all there is to keep.
    pub fn new(key: &[u8]) -> Result<FieldCipher, CryptoError> {
        let unbound = UnboundKey::new(&AES_256_GCM, key).map_err(|_| CryptoError::BadKey)?;
        let derive = hmac::Key::new(hmac::HMAC_SHA256, key);
        let index_secret = hmac::sign(&derive, b"jiefen blind index v1");
        Ok(FieldCipher { key: std::sync::Arc::new(LessSafeKey::new(unbound)), index_key: hmac::Key::new(hmac::HMAC_SHA256, index_secret.as_ref()), rng: SystemRandom::new() })
    }

    /// From the hex text kept in config or `field.key`.
    pub fn from_hex(text: &str) -> Result<FieldCipher, CryptoError> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(CryptoError::BadKey);
        }
        let bytes: Result<Vec<u8>, _> = (0..32).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16)).collect();
        FieldCipher::new(&bytes.map_err(|_| CryptoError::BadKey)?)
    }

    pub fn encrypt(&self, plain: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        // The system RNG failing is not something a request can recover from.
        self.rng.fill(&mut nonce).expect("system random source");
        let mut buf = plain.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
            .expect("AES-GCM sealing of a short field");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        format!("{PREFIX}{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(out))
    }

    pub fn decrypt(&self, sealed: &str) -> Result<String, CryptoError> {
        let body = sealed.strip_prefix(PREFIX).ok_or(CryptoError::Decrypt)?;
        let mut bytes = base64::engine::general_purpose::STANDARD_NO_PAD.decode(body).map_err(|_| CryptoError::Decrypt)?;
        if bytes.len() < NONCE_LEN {
            return Err(CryptoError::Decrypt);
        }
        let mut rest = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| CryptoError::Decrypt)?;
        let plain = self.key.open_in_place(nonce, Aad::empty(), &mut rest).map_err(|_| CryptoError::Decrypt)?;
        String::from_utf8(plain.to_vec()).map_err(|_| CryptoError::Decrypt)
    }

    /// A deterministic keyed digest of the normalised value, for exact-match search.
    pub fn blind_index(&self, kind: &str, value: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.index_key);
        ctx.update(kind.as_bytes());
        ctx.update(b"\0");
        ctx.update(normalise(value).as_bytes());
        crate::case::chain::hex(&ctx.sign().as_ref()[..16])
    }
}

/// Digits and letters only, upper-cased: "138 1234-5678" and "13812345678" index alike.
pub fn normalise(value: &str) -> String {
    value.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect()
}

/// `138****5678`: the first three and last four digits stay, as on Chinese service receipts.
pub fn mask_phone(phone: &str) -> String {
    mask(phone, 3, 4)
}

/// `110***********123X`: region prefix and the last four stay.
pub fn mask_id_number(id: &str) -> String {
    mask(id, 3, 4)
}

fn mask(value: &str, keep_start: usize, keep_end: usize) -> String {
    let chars: Vec<char> = normalise(value).chars().collect();
    if chars.len() <= keep_start + keep_end {
        return "*".repeat(chars.len());
    }
    let mut out: String = chars[..keep_start].iter().collect();
    out.push_str(&"*".repeat(chars.len() - keep_start - keep_end));
    out.extend(&chars[chars.len() - keep_end..]);
    out
}

/// A mainland mobile number: 11 digits starting with 1.
pub fn valid_phone(phone: &str) -> bool {
    let n = normalise(phone);
    n.len() == 11 && n.starts_with('1') && n.chars().all(|c| c.is_ascii_digit())
}

/// A resident identity number: 17 digits and a check character, checked (GB 11643).
pub fn valid_id_number(id: &str) -> bool {
    let n = normalise(id);
    let b = n.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let sum: u32 = b[..17].iter().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    b[17] == CHECK[(sum % 11) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> FieldCipher {
        FieldCipher::from_hex(&"ab".repeat(32)).expect("key")
    }

    #[test]
    fn round_trip_random_nonce_and_tamper_detection() {
        let c = cipher();
        let a = c.encrypt("13812345678");
        let b = c.encrypt("13812345678");
        assert_ne!(a, b, "a fresh nonce per value");
        assert!(!a.contains("1381234"));
        assert_eq!(c.decrypt(&a).expect("decrypts"), "13812345678");
        let mut flipped = a.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert!(c.decrypt(&String::from_utf8(flipped).expect("ascii")).is_err());
        let other = FieldCipher::from_hex(&"cd".repeat(32)).expect("key");
        assert!(other.decrypt(&a).is_err());
        assert!(FieldCipher::from_hex("short").is_err());
    }

    #[test]
    fn blind_index_ignores_formatting_but_not_the_key() {
        let c = cipher();
        assert_eq!(c.blind_index("phone", "138 1234-5678"), c.blind_index("phone", "13812345678"));
        assert_ne!(c.blind_index("phone", "13812345678"), c.blind_index("id_number", "13812345678"));
        let other = FieldCipher::from_hex(&"cd".repeat(32)).expect("key");
        assert_ne!(c.blind_index("phone", "13812345678"), other.blind_index("phone", "13812345678"));
    }

    #[test]
    fn masks_and_validation() {
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(mask_id_number("11010519491231002X"), "110***********002X");
        assert!(valid_phone("138-1234-5678"));
        assert!(!valid_phone("23812345678"));
        assert!(valid_id_number("11010519491231002X"));
        assert!(!valid_id_number("110105194912310021"));
    }
}
