//! A party's access to their own case without an account: a signed link (HMAC-SHA256 over case,
//! party and expiry), handed out by staff or obtained with a one-time code sent to the party's
//! phone.

use base64::Engine as _;
use ring::hmac;

const PREFIX: &str = "p1.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartyGrant {
    pub case_id: i64,
    pub party_id: i64,
    pub expires_unix: u64,
}

#[derive(Clone)]
pub struct PartyLinkKey(hmac::Key);

impl PartyLinkKey {
    pub fn from_secret(secret: &[u8]) -> PartyLinkKey {
        // A key of its own, derived, so that a party link never verifies as anything else.
        let derived = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), b"jiefen party link v1");
        PartyLinkKey(hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()))
    }

    pub fn sign(&self, g: PartyGrant) -> String {
        let body = format!("{}.{}.{}", g.case_id, g.party_id, g.expires_unix);
        let tag = hmac::sign(&self.0, body.as_bytes());
        format!("{PREFIX}{body}.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The grant, if the token is genuine and not expired at `now_unix`.
    pub fn verify(&self, token: &str, now_unix: u64) -> Option<PartyGrant> {
        let rest = token.strip_prefix(PREFIX)?;
        let (body, tag) = rest.rsplit_once('.')?;
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tag).ok()?;
        hmac::verify(&self.0, body.as_bytes(), &tag).ok()?;
        let mut parts = body.split('.');
        let grant = PartyGrant { case_id: parts.next()?.parse().ok()?, party_id: parts.next()?.parse().ok()?, expires_unix: parts.next()?.parse().ok()? };
        (parts.next().is_none() && grant.expires_unix > now_unix).then_some(grant)
    }
}

pub fn is_party_token(token: &str) -> bool {
    token.starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genuine_links_verify_forged_or_expired_do_not() {
        let key = PartyLinkKey::from_secret(b"secret");
        let g = PartyGrant { case_id: 5, party_id: 9, expires_unix: 1000 };
        let t = key.sign(g);
        assert_eq!(key.verify(&t, 999), Some(g));
        assert_eq!(key.verify(&t, 1000), None);
        assert_eq!(key.verify(&t.replace("p1.5.", "p1.6."), 999), None);
        assert_eq!(PartyLinkKey::from_secret(b"other").verify(&t, 999), None);
        assert_eq!(key.verify("p1.garbage", 0), None);
    }
}
