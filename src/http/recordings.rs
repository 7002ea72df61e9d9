//! Recordings on their case: the list, one recording with its manifest, its files streamed with
//! range requests (the browser's player seeks), and verification; only for those who may read
//! the case.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ring::hmac;
use serde::{Deserialize, Serialize};
use tower::ServiceExt;
use tower_http::services::ServeFile;

use super::AppState;
use super::auth::Staff;
use super::error::ApiError;
use super::scope::case_for;
use crate::auth::Permission;
use crate::recordings::{self, RecordingRow, Verification};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/cases/{id}/recordings", get(list_for_case))
        .route("/api/v1/recordings/{id}", get(detail))
        .route("/api/v1/recordings/{id}/verify", get(verify))
        .route("/api/v1/recordings/{id}/files/{name}", get(file))
}

/// The case's recordings.
#[utoipa::path(get, path = "/api/v1/cases/{id}/recordings", params(("id" = i64, Path)), responses((status = 200, body = Vec<RecordingRow>)))]
pub async fn list_for_case(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>) -> Result<Json<Vec<RecordingRow>>, ApiError> {
    case_for(&state, &staff, id, Permission::ReadCase).await?;
    Ok(Json(recordings::for_case(&state.db, id).await?))
}

async fn readable(state: &AppState, staff: &Staff, id: i64) -> Result<RecordingRow, ApiError> {
    let r = recordings::load(&state.db, id).await?.ok_or_else(|| ApiError::NotFound(format!("no recording {id}")))?;
    match r.case_id {
        Some(case_id) => {
            case_for(state, staff, case_id, Permission::ReadCase).await.map_err(|e| match e {
                ApiError::NotFound(_) => ApiError::NotFound(format!("no recording {id}")),
                other => other,
            })?;
        }
        // A room without a case: system-wide staff only.
        None if staff.0.org_unit_id.is_none() => {}
        None => return Err(ApiError::NotFound(format!("no recording {id}"))),
    }
    Ok(r)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RecordingFile {
    pub name: String,
    /// A link that plays in a `<video>` element (signed, valid for `FILE_LINK_SECS`).
    pub url: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RecordingDetail {
    #[serde(flatten)]
    pub recording: RecordingRow,
    pub files: Vec<RecordingFile>,
}

/// How long a signed file link works: long enough to watch a session, short enough not to leak.
pub const FILE_LINK_SECS: u64 = 4 * 3600;

fn file_signature(state: &AppState, id: i64, name: &str, exp: u64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &state.webhook_secret);
    crate::case::chain::hex(hmac::sign(&key, format!("recording-file:{id}:{name}:{exp}").as_bytes()).as_ref())
}

/// One recording with its manifest (tracks, times, hashes) and playable links to its files.
#[utoipa::path(get, path = "/api/v1/recordings/{id}", params(("id" = i64, Path)), responses((status = 200, body = RecordingDetail), (status = 404, body = super::error::ErrorBody)))]
pub async fn detail(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>) -> Result<Json<RecordingDetail>, ApiError> {
    let recording = readable(&state, &staff, id).await?;
    let exp = crate::store::staff::unix_now() + FILE_LINK_SECS;
    let files = if recording.status == "deleted" {
        Vec::new()
    } else {
        recordings::files(&recording)
            .into_iter()
            .map(|(name, _, _, _)| RecordingFile { url: format!("/api/v1/recordings/{id}/files/{name}?exp={exp}&sig={}", file_signature(&state, id, &name, exp)), name })
            .collect()
    };
    Ok(Json(RecordingDetail { recording, files }))
}

/// Compares without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Deserialize)]
pub struct FileLink {
    exp: Option<u64>,
    sig: Option<String>,
}

/// Re-hashes the recording's files against its manifest.
#[utoipa::path(get, path = "/api/v1/recordings/{id}/verify", params(("id" = i64, Path)), responses((status = 200, body = Verification)))]
pub async fn verify(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>) -> Result<Json<Verification>, ApiError> {
    let r = readable(&state, &staff, id).await?;
    Ok(Json(tokio::task::spawn_blocking(move || recordings::verify(&r)).await.map_err(|e| ApiError::Internal(e.into()))?))
}

/// One file of the recording, with range requests.
#[utoipa::path(get, path = "/api/v1/recordings/{id}/files/{name}", params(("id" = i64, Path), ("name" = String, Path)), responses((status = 200, content_type = "video/webm"), (status = 206), (status = 404, body = super::error::ErrorBody)))]
pub async fn file(
    State(state): State<AppState>,
    staff: Result<Staff, ApiError>,
    Path((id, name)): Path<(i64, String)>,
    axum::extract::Query(link): axum::extract::Query<FileLink>,
    request: Request,
) -> Result<Response, ApiError> {
    // Either a signed-in reader, or a signed link from `detail` (a <video> element sends no header).
    let r = match (staff, link.exp, link.sig) {
        (Ok(staff), _, _) => readable(&state, &staff, id).await?,
        (Err(_), Some(exp), Some(sig)) if exp > crate::store::staff::unix_now() && same(&sig, &file_signature(&state, id, &name, exp)) => {
            recordings::load(&state.db, id).await?.ok_or_else(|| ApiError::NotFound(format!("no recording {id}")))?
        }
        (Err(e), _, _) => return Err(e),
    };
    if r.status == "deleted" {
        return Err(ApiError::NotFound(format!("recording {id} was deleted under the retention policy")));
    }
    let Some((_, path, _, _)) = recordings::files(&r).into_iter().find(|(n, _, _, _)| *n == name) else {
        return Err(ApiError::NotFound(format!("recording {id} has no file {name}")));
    };
    let mime = if name.ends_with(".webm") { "video/webm" } else { "video/x-matroska" };
    let response = ServeFile::new_with_mime(path, &mime.parse().map_err(|_| ApiError::BadRequest("mime".into()))?)
        .oneshot(request)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("serving a recording: {e}")))?;
    Ok(response.into_response())
}
