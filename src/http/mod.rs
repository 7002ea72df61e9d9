//! The HTTP surface: `app(state) -> Router`, one `router()` per module, merged here.

pub mod admin;
pub mod agreements;
pub mod auth;
pub mod casework;
pub mod court;
pub mod cases;
pub mod error;
pub mod groups;
pub mod health;
pub mod hooks;
pub mod intake;
pub mod metrics;
pub mod openapi;
pub mod orgs;
pub mod party;
pub mod qr;
pub mod recordings;
pub mod scope;
pub mod sessions;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use jiefen_signaling::Signaling;
use tower_http::services::{ServeDir, ServeFile};

use crate::db::Db;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub signaling: Signaling,
    pub metrics: Arc<metrics::HttpMetrics>,
    pub web_dir: PathBuf,
    /// Encrypts parties' phone and ID numbers at rest.
    pub cipher: crate::crypto::FieldCipher,
    pub party_links: crate::auth::party_link::PartyLinkKey,
    pub sms: Arc<dyn crate::auth::sms::SmsGateway>,
    pub auth: crate::store::staff::AuthSettings,
    /// Verifies session-event webhooks from signaling nodes elsewhere (the token secret).
    pub webhook_secret: Arc<Vec<u8>>,
    /// The mediation organisation's seal for agreements.
    pub seal: Arc<crate::agreement::seal::SealKey>,
    /// The court connector's settings and the courts of the area.
    pub court: crate::config::CourtSettings,
    /// The court's filing system, when configured.
    pub court_connector: Option<crate::court::connector::HttpCourt>,
    /// Where finished recordings are kept.
    pub storage: crate::storage::Storage,
    /// The base of links handed to people (join links, party links, QR codes).
    pub public_url: String,
}

pub fn app(state: AppState) -> Router {
    let index = state.web_dir.join("index.html");
    let web = ServeDir::new(&state.web_dir).fallback(ServeFile::new(&index));
    let api = Router::new()
        .merge(health::router())
        .merge(metrics::router())
        .merge(openapi::router())
        .merge(orgs::router())
        .merge(auth::router())
        .merge(cases::router())
        .merge(casework::router())
        .merge(sessions::router())
        .merge(intake::router())
        .merge(party::router())
        .merge(admin::router())
        .merge(hooks::router())
        .merge(recordings::router())
        .merge(agreements::router())
        .merge(court::router())
        .merge(groups::router())
        .with_state(state.clone());
    Router::new()
        .merge(api)
        .merge(jiefen_signaling::ws::router(state.signaling.clone()))
        // `/join?token=...` and every other page path are the single-page app.
        .route_service("/join", ServeFile::new(&index))
        .fallback_service(web)
        .layer(axum::middleware::from_fn_with_state(state.metrics.clone(), metrics::count_requests))
}
