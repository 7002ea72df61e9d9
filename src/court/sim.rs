//! A court simulator (`jiefen court-sim`): the court's side of `docs/court-api.md`. It receives
//! packages (signature checked, duplicates recognised by their Idempotency-Key), validates them,
//! and answers through signed callbacks with configurable outcomes and delays. Tests and demos
//! use it; production points the same connector at the real court.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;

use super::connector::{SIGNATURE_HEADER, sign, verify};

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub secret: Vec<u8>,
    /// `confirmed`, `rejected` or `not_accepted`.
    pub confirmation_outcome: String,
    /// `filed`, `materials_missing` or `not_accepted`.
    pub filing_outcome: String,
    /// Between receipt and the final decision (the acceptance comes at half of it).
    pub delay: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct Received {
    pub court_ref: String,
    pub package_id: String,
    pub kind: String,
}

#[derive(Default)]
struct Book {
    by_key: HashMap<String, Received>,
    requests: u64,
}

#[derive(Clone)]
struct Sim {
    config: Arc<SimConfig>,
    book: Arc<Mutex<Book>>,
    client: reqwest::Client,
}

pub fn router(config: SimConfig) -> Router {
    let sim = Sim { config: Arc::new(config), book: Arc::default(), client: reqwest::Client::new() };
    Router::new().route("/api/court/v1/packages", post(receive).get(list)).with_state(sim)
}

pub async fn serve(listener: tokio::net::TcpListener, config: SimConfig) -> std::io::Result<()> {
    axum::serve(listener, router(config)).await
}

fn problem(status: StatusCode, code: &str, problems: Vec<String>) -> Response {
    (status, Json(serde_json::json!({ "code": code, "problems": problems }))).into_response()
}

/// The fields a package must have, by kind.
fn validate(p: &serde_json::Value) -> Vec<String> {
    let mut missing = Vec::new();
    let need = |path: &str, missing: &mut Vec<String>| {
        let v = path.split('.').try_fold(p, |v, k| v.get(k));
        if v.is_none_or(|v| v.is_null() || v.as_str() == Some("") || v.as_array().is_some_and(|a| a.is_empty())) {
            missing.push(path.to_string());
        }
    };
    for f in ["package_id", "kind", "court_id", "callback_url", "case.case_number", "parties", "organisation.name"] {
        need(f, &mut missing);
    }
    match p.get("kind").and_then(|k| k.as_str()) {
        Some("confirmation") => {
            for f in ["agreement.sha256", "agreement.seal", "agreement.body", "agreement.signatures", "application.applicants"] {
                need(f, &mut missing);
            }
        }
        Some("filing") => {
            for f in ["complaint.claims", "complaint.facts", "complaint.plaintiff", "complaint.defendants"] {
                need(f, &mut missing);
            }
        }
        _ => missing.push("kind (confirmation or filing)".into()),
    }
    missing
}

async fn receive(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let now = crate::store::staff::unix_now();
    if !verify(&sim.config.secret, headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()), &body, now) {
        return problem(StatusCode::UNAUTHORIZED, "bad_signature", vec![]);
    }
    let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(String::from) else {
        return problem(StatusCode::BAD_REQUEST, "no_idempotency_key", vec![]);
    };
    let package: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return problem(StatusCode::BAD_REQUEST, "not_json", vec![e.to_string()]),
    };
    let (received, duplicate) = {
        let mut book = sim.book.lock().unwrap_or_else(|p| p.into_inner());
        book.requests += 1;
        if let Some(r) = book.by_key.get(&key) {
            (r.clone(), true)
        } else {
            let missing = validate(&package);
            if !missing.is_empty() {
                return problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_package", missing);
            }
            let r = Received {
                court_ref: format!("（2026）京0107民特{}号", 1000 + book.by_key.len()),
                package_id: package["package_id"].as_str().unwrap_or_default().to_string(),
                kind: package["kind"].as_str().unwrap_or_default().to_string(),
            };
            book.by_key.insert(key, r.clone());
            (r, false)
        }
    };
    if !duplicate {
        tokio::spawn(decide(sim.clone(), received.clone(), package));
    }
    let status = if duplicate { StatusCode::OK } else { StatusCode::ACCEPTED };
    (status, Json(serde_json::json!({ "court_ref": received.court_ref, "duplicate": duplicate }))).into_response()
}

/// Acceptance, then the decision, each as a signed callback.
async fn decide(sim: Sim, r: Received, package: serde_json::Value) {
    let url = package["callback_url"].as_str().unwrap_or_default().to_string();
    let outcome = if r.kind == "confirmation" { sim.config.confirmation_outcome.clone() } else { sim.config.filing_outcome.clone() };
    tokio::time::sleep(sim.config.delay / 2).await;
    if outcome == "not_accepted" {
        callback(&sim, &url, &r, "not_accepted", serde_json::json!({ "reason": "不符合受理条件（模拟）" })).await;
        return;
    }
    if r.kind == "confirmation" {
        callback(&sim, &url, &r, "accepted", serde_json::json!({})).await;
    }
    tokio::time::sleep(sim.config.delay / 2).await;
    let extra = match outcome.as_str() {
        "confirmed" => serde_json::json!({ "document": { "title": "民事裁定书", "text": format!("{}：确认调解协议有效，当事人应当按照调解协议的约定自觉履行义务。", r.court_ref) } }),
        "rejected" => serde_json::json!({ "reason": "调解协议内容不明确（模拟）", "document": { "title": "民事裁定书", "text": format!("{}：驳回申请。", r.court_ref) } }),
        "materials_missing" => serde_json::json!({ "missing": ["原告身份证明复印件", "证据原件核对"], "deadline_days": 7 }),
        _ => serde_json::json!({}),
    };
    callback(&sim, &url, &r, &outcome, extra).await;
}

async fn callback(sim: &Sim, url: &str, r: &Received, status: &str, extra: serde_json::Value) {
    let mut body = serde_json::json!({ "event_id": format!("{}-{status}", r.court_ref), "package_id": r.package_id, "court_ref": r.court_ref, "status": status });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    for attempt in 0..8u32 {
        let signature = sign(&sim.config.secret, &bytes, crate::store::staff::unix_now());
        let sent = sim.client.post(url).header("content-type", "application/json").header(SIGNATURE_HEADER, signature).body(bytes.clone()).send().await;
        if sent.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250 << attempt.min(5))).await;
    }
    tracing::warn!(%url, status, "court-sim: callback not delivered");
}

#[derive(Serialize)]
struct Listing {
    /// Requests received, duplicates included.
    requests: u64,
    /// Distinct packages.
    packages: Vec<Received>,
}

async fn list(State(sim): State<Sim>) -> Json<serde_json::Value> {
    let book = sim.book.lock().unwrap_or_else(|p| p.into_inner());
    let mut packages: Vec<Received> = book.by_key.values().cloned().collect();
    packages.sort_by(|a, b| a.court_ref.cmp(&b.court_ref));
    Json(serde_json::to_value(Listing { requests: book.requests, packages }).unwrap_or_default())
}
