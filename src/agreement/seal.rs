//! The mediation organisation's electronic seal: an Ed25519 signature over the facts of an
//! agreement taking effect (which version, its hashes, who signed when). Anyone with the public
//! key can check it; changing any byte of the document or the signer list breaks it.

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the seal key is not a valid Ed25519 key (PKCS#8, base64)")]
    BadKey,
}

pub struct SealKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(<redacted>)")
    }
}

/// A new key, as the base64 PKCS#8 text kept in `seal.key` or config.
pub fn generate() -> Result<String, SealError> {
    let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| SealError::BadKey)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(doc.as_ref()))
}

impl SealKey {
    pub fn from_base64(text: &str) -> Result<SealKey, SealError> {
        let der = base64::engine::general_purpose::STANDARD.decode(text.trim()).map_err(|_| SealError::BadKey)?;
        Ok(SealKey { pair: Ed25519KeyPair::from_pkcs8(&der).map_err(|_| SealError::BadKey)? })
    }

    pub fn public_key_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.pair.public_key().as_ref())
    }

    /// The seal over `payload`'s canonical JSON, base64.
    pub fn seal<T: Serialize>(&self, payload: &T) -> String {
        let bytes = serde_json::to_vec(payload).unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(self.pair.sign(&bytes).as_ref())
    }
}

/// Whether `seal` is the organisation's signature over `payload`.
pub fn verify<T: Serialize>(public_key_base64: &str, payload: &T, seal: &str) -> bool {
    let (Ok(key), Ok(sig)) = (base64::engine::general_purpose::STANDARD.decode(public_key_base64), base64::engine::general_purpose::STANDARD.decode(seal)) else { return false };
    let bytes = serde_json::to_vec(payload).unwrap_or_default();
    UnparsedPublicKey::new(&ED25519, key).verify(&bytes, &sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_verify_and_tampering_does_not() {
        let key = SealKey::from_base64(&generate().expect("key")).expect("parse");
        let payload = serde_json::json!({ "agreement_id": 1, "sha256": "ab" });
        let seal = key.seal(&payload);
        assert!(verify(&key.public_key_base64(), &payload, &seal));
        assert!(!verify(&key.public_key_base64(), &serde_json::json!({ "agreement_id": 1, "sha256": "ac" }), &seal));
        assert!(SealKey::from_base64("bm90IGEga2V5").is_err());
    }
}
