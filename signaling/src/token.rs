//! Join tokens: HS256 JWTs minted by the case backend (or `jiefen token`) and checked here.
//! Only HS256 is accepted; `exp` is required and `aud` must be [`AUDIENCE`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

pub const AUDIENCE: &str = "jiefen-rtc";
pub const ISSUER: &str = "jiefen";

/// What a participant does in the session (glossary: 当事人, 调解员, 官员, 旁听).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Party,
    Mediator,
    Official,
    Observer,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "party" => Some(Role::Party),
            "mediator" => Some(Role::Mediator),
            "official" => Some(Role::Official),
            "observer" => Some(Role::Observer),
            _ => None,
        }
    }
}

/// A media source a participant may publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Microphone,
    Camera,
    Screen,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    pub publish: Vec<Source>,
    pub subscribe: bool,
    pub publish_data: bool,
    pub room_admin: bool,
    pub record: bool,
    pub hidden: bool,
}

impl Grants {
    /// The grants a role carries by default; a token may narrow them.
    pub fn for_role(role: Role) -> Grants {
        let all = vec![Source::Microphone, Source::Camera, Source::Screen];
        match role {
            Role::Mediator => Grants { publish: all, subscribe: true, publish_data: true, room_admin: true, record: true, hidden: false },
            Role::Official => Grants { publish: all, subscribe: true, publish_data: true, room_admin: false, record: false, hidden: false },
            Role::Party => Grants {
                publish: vec![Source::Microphone, Source::Camera, Source::Screen],
                subscribe: true,
                publish_data: true,
                room_admin: false,
                record: false,
                hidden: false,
            },
            Role::Observer => Grants { publish: vec![], subscribe: true, publish_data: false, room_admin: false, record: false, hidden: true },
        }
    }

    /// True when these grants ask for nothing beyond what `role` may hold.
    pub fn within_role(&self, role: Role) -> bool {
        let max = Grants::for_role(role);
        self.publish.iter().all(|s| max.publish.contains(s))
            && (!self.subscribe || max.subscribe)
            && (!self.publish_data || max.publish_data)
            && (!self.room_admin || max.room_admin)
            && (!self.record || max.record)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinClaims {
    pub iss: String,
    pub aud: String,
    /// The participant's identity, unique in the room.
    pub sub: String,
    pub iat: u64,
    pub exp: u64,
    pub room: String,
    pub name: String,
    pub role: Role,
    pub grants: Grants,
    /// A party that waits in the lobby until a mediator admits it.
    #[serde(default)]
    pub lobby: bool,
    /// The case this session belongs to, when the case backend minted the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_id: Option<i64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is malformed or its signature is invalid")]
    Invalid,
    #[error("the token is for another audience")]
    WrongAudience,
    #[error("the token claims grants its role may not hold")]
    ExcessGrants,
    #[error("invalid token request: {0}")]
    Request(String),
}

/// The HS256 key shared by every node.
#[derive(Clone)]
pub struct TokenKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

/// What to mint a token for.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub room: String,
    pub identity: String,
    pub name: String,
    pub role: Role,
    pub lobby: bool,
    pub ttl: Duration,
    pub case_id: Option<i64>,
}

pub const MAX_ID_LEN: usize = 128;

fn valid_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_ID_LEN && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:@".contains(c))
}

impl TokenKey {
    pub fn from_secret(secret: &[u8]) -> TokenKey {
        TokenKey { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret) }
    }

    pub fn mint(&self, req: &TokenRequest) -> Result<String, TokenError> {
        if !valid_id(&req.room) {
            return Err(TokenError::Request("room must be 1-128 characters of A-Z a-z 0-9 - _ . : @".into()));
        }
        if !valid_id(&req.identity) {
            return Err(TokenError::Request("identity must be 1-128 characters of A-Z a-z 0-9 - _ . : @".into()));
        }
        let name = req.name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(TokenError::Request("name must be 1-64 characters".into()));
        }
        if req.ttl.is_zero() || req.ttl > Duration::from_secs(30 * 24 * 3600) {
            return Err(TokenError::Request("ttl must be between 1 second and 30 days".into()));
        }
        let now = unix_now();
        let claims = JoinClaims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: req.identity.clone(),
            iat: now,
            exp: now + req.ttl.as_secs(),
            room: req.room.clone(),
            name: name.to_string(),
            role: req.role,
            grants: Grants::for_role(req.role),
            lobby: req.lobby && req.role == Role::Party,
            case_id: req.case_id,
        };
        self.sign(&claims)
    }

    pub fn sign(&self, claims: &JoinClaims) -> Result<String, TokenError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding).map_err(|_| TokenError::Invalid)
    }

    /// Checks signature (HS256 only), expiry, audience and that the grants fit the role.
    pub fn verify(&self, token: &str) -> Result<JoinClaims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        validation.leeway = 5;
        let data = jsonwebtoken::decode::<JoinClaims>(token, &self.decoding, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::InvalidAudience => TokenError::WrongAudience,
                _ => TokenError::Invalid,
            }
        })?;
        let claims = data.claims;
        if !claims.grants.within_role(claims.role) {
            return Err(TokenError::ExcessGrants);
        }
        if !valid_id(&claims.room) || !valid_id(&claims.sub) {
            return Err(TokenError::Invalid);
        }
        Ok(claims)
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TokenKey {
        TokenKey::from_secret(b"0123456789abcdef0123456789abcdef")
    }

    fn request() -> TokenRequest {
        TokenRequest {
            room: "case-42".into(),
            identity: "zhang-san".into(),
            name: "张三".into(),
            role: Role::Party,
            lobby: true,
            ttl: Duration::from_secs(3600),
            case_id: None,
        }
    }

    #[test]
    fn minted_token_round_trips() {
        let t = key().mint(&request()).expect("mint");
        let c = key().verify(&t).expect("verify");
        assert_eq!(c.room, "case-42");
        assert_eq!(c.name, "张三");
        assert!(c.lobby);
        assert!(!c.grants.room_admin);
    }

    #[test]
    fn other_key_expired_and_none_alg_are_refused() {
        let t = key().mint(&request()).expect("mint");
        assert_eq!(TokenKey::from_secret(b"another-secret-another-secret!!!").verify(&t), Err(TokenError::Invalid));
        let mut claims = key().verify(&t).expect("verify");
        claims.exp = unix_now() - 3600;
        let expired = key().sign(&claims).expect("sign");
        assert_eq!(key().verify(&expired), Err(TokenError::Expired));
        // alg: none, unsigned
        let payload = t.split('.').nth(1).expect("payload");
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert_eq!(key().verify(&none), Err(TokenError::Invalid));
        assert_eq!(key().verify("garbage"), Err(TokenError::Invalid));
    }

    #[test]
    fn wrong_audience_and_excess_grants_are_refused() {
        let t = key().mint(&request()).expect("mint");
        let mut claims = key().verify(&t).expect("verify");
        claims.aud = "someone-else".into();
        assert_eq!(key().verify(&key().sign(&claims).expect("sign")), Err(TokenError::WrongAudience));
        let mut claims = key().verify(&t).expect("verify");
        claims.grants.room_admin = true;
        assert_eq!(key().verify(&key().sign(&claims).expect("sign")), Err(TokenError::ExcessGrants));
    }

    #[test]
    fn bad_requests_are_refused() {
        let mut r = request();
        r.room = "has space".into();
        assert!(matches!(key().mint(&r), Err(TokenError::Request(_))));
        let mut r = request();
        r.name = "  ".into();
        assert!(matches!(key().mint(&r), Err(TokenError::Request(_))));
    }
}
