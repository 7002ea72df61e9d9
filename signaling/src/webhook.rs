//! Session events for a case backend that runs elsewhere: each event is POSTed as JSON with an
//! `Authorization: Bearer` JWT (HS256, the shared token secret) whose `body_sha256` claim binds
//! the body; failed deliveries are retried with backoff. A co-located backend subscribes to
//! `Signaling::subscribe_events` instead.

use std::time::Duration;

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

use crate::service::SessionEvent;
use crate::token::{Role, unix_now};

pub const WEBHOOK_AUDIENCE: &str = "jiefen-webhook";

/// The JSON body of one webhook call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WireEvent {
    SessionStarted { room: String, at: u64 },
    SessionEnded { room: String, at: u64 },
    ParticipantJoined { room: String, identity: String, role: Role, case_id: Option<i64>, at: u64 },
    ParticipantLeft { room: String, identity: String, at: u64 },
    RecordingChanged { room: String, recording: bool, by: String, at: u64 },
}

impl WireEvent {
    pub fn from_event(e: &SessionEvent) -> WireEvent {
        let at = unix_now();
        match e.clone() {
            SessionEvent::SessionStarted { room } => WireEvent::SessionStarted { room, at },
            SessionEvent::SessionEnded { room } => WireEvent::SessionEnded { room, at },
            SessionEvent::ParticipantJoined { room, identity, role, case_id } => {
                WireEvent::ParticipantJoined { room, identity, role, case_id, at }
            }
            SessionEvent::ParticipantLeft { room, identity } => WireEvent::ParticipantLeft { room, identity, at },
            SessionEvent::RecordingChanged { room, recording, by } => WireEvent::RecordingChanged { room, recording, by, at },
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct WebhookClaims {
    iss: String,
    aud: String,
    iat: u64,
    exp: u64,
    body_sha256: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error("missing or malformed Authorization header")]
    MissingSignature,
    #[error("the signature is invalid or expired")]
    BadSignature,
    #[error("the body does not match its signature")]
    BodyMismatch,
}

fn body_hash(body: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(body))
}

/// The `Authorization` header value for `body`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let now = unix_now();
    let claims = WebhookClaims { iss: "jiefen".into(), aud: WEBHOOK_AUDIENCE.into(), iat: now, exp: now + 300, body_sha256: body_hash(body) };
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret)).unwrap_or_default();
    format!("Bearer {token}")
}

/// Checks a received webhook: HS256 only, not expired, and the body hash matches.
pub fn verify(secret: &[u8], authorization: Option<&str>, body: &[u8]) -> Result<(), WebhookError> {
    let token = authorization.and_then(|h| h.strip_prefix("Bearer ")).ok_or(WebhookError::MissingSignature)?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[WEBHOOK_AUDIENCE]);
    let claims = jsonwebtoken::decode::<WebhookClaims>(token, &DecodingKey::from_secret(secret), &validation)
        .map_err(|_| WebhookError::BadSignature)?
        .claims;
    if claims.body_sha256 != body_hash(body) {
        return Err(WebhookError::BodyMismatch);
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// `http://host:port/path` of the receiver.
    pub url: String,
    pub secret: Vec<u8>,
    /// Attempts per event before it is given up (and logged).
    pub attempts: u32,
    pub first_backoff: Duration,
}

/// Delivers every event from `events` in order until the channel closes.
pub async fn run(mut events: broadcast::Receiver<SessionEvent>, config: WebhookConfig) {
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "webhook delivery fell behind; events were dropped");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let body = match serde_json::to_vec(&WireEvent::from_event(&event)) {
            Ok(b) => bytes::Bytes::from(b),
            Err(_) => continue,
        };
        let mut backoff = config.first_backoff;
        for attempt in 1..=config.attempts.max(1) {
            let request = hyper::Request::post(&config.url)
                .header("content-type", "application/json")
                .header("authorization", sign(&config.secret, &body))
                .body(Full::new(body.clone()));
            let outcome = match request {
                Ok(r) => match tokio::time::timeout(Duration::from_secs(10), client.request(r)).await {
                    Ok(Ok(resp)) if resp.status().is_success() => {
                        let _ = resp.into_body().collect().await;
                        Ok(())
                    }
                    Ok(Ok(resp)) => Err(format!("status {}", resp.status())),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("timed out".into()),
                },
                Err(e) => Err(e.to_string()),
            };
            match outcome {
                Ok(()) => break,
                Err(e) if attempt == config.attempts.max(1) => {
                    tracing::error!(error = %e, ?event, "webhook delivery failed; event dropped");
                }
                Err(e) => {
                    tracing::debug!(error = %e, attempt, "webhook delivery failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
            }
        }
    }
}
