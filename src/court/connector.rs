//! Sending packages to a court's system. One trait; the HTTP implementation posts JSON signed
//! with HMAC-SHA256 over the timestamp and body (`X-Court-Signature: t=..,v1=..`) and an
//! `Idempotency-Key` (the package id), so that a retry after a lost answer never files twice.
//! The court's callbacks carry the same signature the other way.

use std::time::Duration;

use ring::hmac;
use serde::{Deserialize, Serialize};

pub const SIGNATURE_HEADER: &str = "x-court-signature";
/// A signature older (or newer) than this is refused: a captured request cannot be replayed later.
pub const SIGNATURE_TOLERANCE_SECS: u64 = 300;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The header value for `body` at `unix` seconds.
pub fn sign(secret: &[u8], body: &[u8], unix: u64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(unix.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("t={unix},v1={}", hex(ctx.sign().as_ref()))
}

/// Whether `header` is a fresh, valid signature of `body`.
pub fn verify(secret: &[u8], header: Option<&str>, body: &[u8], now_unix: u64) -> bool {
    let Some(header) = header else { return false };
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<u64>().ok(),
            Some(("v1", v)) => v1 = Some(v.to_string()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return false };
    if t.abs_diff(now_unix) > SIGNATURE_TOLERANCE_SECS {
        return false;
    }
    let expected = sign(secret, body, t);
    let given = format!("t={t},v1={v1}");
    expected.len() == given.len() && expected.bytes().zip(given.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Receipt {
    pub court_ref: String,
    /// The court had this package already (a retry): nothing new was filed.
    #[serde(default)]
    pub duplicate: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CourtError {
    /// Worth retrying: the court's system is down or did not answer.
    #[error("the court's system is unreachable: {0}")]
    Unreachable(String),
    /// Not worth retrying as it is: the court refused the package's form.
    #[error("the court refused the package: {0}")]
    Refused(String),
}

/// A court's filing system.
pub trait CourtConnector: Send + Sync {
    fn submit(&self, package_id: &str, body: &serde_json::Value) -> impl Future<Output = Result<Receipt, CourtError>> + Send;
}

/// The court's HTTP endpoint (the real court, or `jiefen court-sim`).
#[derive(Clone)]
pub struct HttpCourt {
    pub url: String,
    secret: Vec<u8>,
    client: reqwest::Client,
}

impl HttpCourt {
    pub fn new(url: &str, secret: &[u8]) -> Result<HttpCourt, CourtError> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().map_err(|e| CourtError::Unreachable(e.to_string()))?;
        Ok(HttpCourt { url: url.trim_end_matches('/').to_string(), secret: secret.to_vec(), client })
    }
}

impl CourtConnector for HttpCourt {
    async fn submit(&self, package_id: &str, body: &serde_json::Value) -> Result<Receipt, CourtError> {
        let bytes = serde_json::to_vec(body).map_err(|e| CourtError::Refused(e.to_string()))?;
        let unix = crate::store::staff::unix_now();
        let response = self
            .client
            .post(format!("{}/api/court/v1/packages", self.url))
            .header("content-type", "application/json")
            .header("idempotency-key", package_id)
            .header(SIGNATURE_HEADER, sign(&self.secret, &bytes, unix))
            .body(bytes)
            .send()
            .await
            .map_err(|e| CourtError::Unreachable(e.to_string()))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| CourtError::Unreachable(e.to_string()))?;
        if status.is_success() {
            serde_json::from_str(&text).map_err(|e| CourtError::Unreachable(format!("unreadable answer ({e}): {text}")))
        } else if status.is_server_error() || status.as_u16() == 429 {
            Err(CourtError::Unreachable(format!("{status}: {text}")))
        } else {
            Err(CourtError::Refused(format!("{status}: {text}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_expire() {
        let s = sign(b"k", b"{}", 1000);
        assert!(verify(b"k", Some(&s), b"{}", 1100));
        assert!(!verify(b"k", Some(&s), b"{ }", 1100), "another body");
        assert!(!verify(b"other", Some(&s), b"{}", 1100), "another key");
        assert!(!verify(b"k", Some(&s), b"{}", 1000 + SIGNATURE_TOLERANCE_SECS + 1), "too old");
        assert!(!verify(b"k", Some("t=1000"), b"{}", 1000));
    }
}
