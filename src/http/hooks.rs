//! Session events from signaling nodes that run apart from this case backend (their
//! `webhook_url` points here): verified with the shared secret, then recorded exactly like the
//! in-process events.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use jiefen_signaling::SessionEvent;
use jiefen_signaling::webhook::{WireEvent, verify};

use super::AppState;
use super::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/hooks/session-events", post(session_event))
}

/// Receives one signed session event (see `signaling/src/webhook.rs`).
#[utoipa::path(post, path = "/api/v1/hooks/session-events", responses((status = 204), (status = 401, body = super::error::ErrorBody)))]
pub async fn session_event(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<StatusCode, ApiError> {
    let auth = headers.get(header::AUTHORIZATION).and_then(|h| h.to_str().ok());
    verify(&state.webhook_secret, auth, &body).map_err(|e| ApiError::Unauthenticated(e.to_string()))?;
    let wire: WireEvent = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("not a session event: {e}")))?;
    let event = match wire {
        WireEvent::SessionStarted { room, .. } => SessionEvent::SessionStarted { room },
        WireEvent::SessionEnded { room, .. } => SessionEvent::SessionEnded { room },
        WireEvent::ParticipantJoined { room, identity, role, case_id, .. } => SessionEvent::ParticipantJoined { room, identity, role, case_id },
        WireEvent::ParticipantLeft { room, identity, .. } => SessionEvent::ParticipantLeft { room, identity },
        WireEvent::RecordingChanged { room, recording, by, .. } => SessionEvent::RecordingChanged { room, recording, by },
    };
    crate::sessions_sync::apply(&state.db, &event).await?;
    Ok(StatusCode::NO_CONTENT)
}
