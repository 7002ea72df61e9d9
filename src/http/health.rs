//! Liveness and readiness.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use jiefen_signaling::Store;
use serde::Serialize;

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

/// 200 while the process is up.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "the process is up")))]
pub async fn healthz() -> &'static str {
    "ok"
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub database: bool,
    pub session_store: bool,
    pub media: bool,
    pub draining: bool,
}

/// 200 when the database, the session store and the media workers are ready; 503 otherwise.
#[utoipa::path(get, path = "/readyz", responses(
    (status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let r = Readiness {
        database: state.db.ping().await,
        session_store: state.signaling.store().ping().await.is_ok(),
        media: state.signaling.media().ready(),
        draining: state.signaling.is_draining(),
    };
    let ok = r.database && r.session_store && r.media && !r.draining;
    (if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(r))
}
