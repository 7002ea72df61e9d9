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

/// At most this much of an object per response; players ask for the next range.
const MAX_RANGE: u64 = 8 << 20;

/// Serves (part of) an object from object storage, with the same range semantics as a file.
async fn from_object_storage(state: &AppState, key: &str, mime: &str, headers: &axum::http::HeaderMap) -> Result<Response, ApiError> {
    use axum::http::{StatusCode, header};
    let storage_error = |e: crate::storage::StorageError| ApiError::Internal(anyhow::anyhow!("object storage: {e}"));
    let size = state.storage.size(key).await.map_err(storage_error)?;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(|v| parse_range(v, size));
    let (status, start, end) = match range {
        Some((a, b)) => (StatusCode::PARTIAL_CONTENT, a, b.min(a + MAX_RANGE - 1)),
        None if size == 0 => return Ok(([(header::CONTENT_TYPE, mime.to_string())], Vec::new()).into_response()),
        None => (StatusCode::OK, 0, size - 1),
    };
    if status == StatusCode::OK && size > MAX_RANGE {
        // Whole large objects are not buffered here: the client asks for ranges.
        let body = state.storage.get_range(key, 0..MAX_RANGE).await.map_err(storage_error)?;
        return Ok((
            StatusCode::PARTIAL_CONTENT,
            [(header::CONTENT_TYPE, mime.to_string()), (header::ACCEPT_RANGES, "bytes".into()), (header::CONTENT_RANGE, format!("bytes 0-{}/{size}", MAX_RANGE - 1))],
            body,
        )
            .into_response());
    }
    let body = state.storage.get_range(key, start..end + 1).await.map_err(storage_error)?;
    let mut headers = vec![(header::CONTENT_TYPE, mime.to_string()), (header::ACCEPT_RANGES, "bytes".to_string())];
    if status == StatusCode::PARTIAL_CONTENT {
        headers.push((header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}")));
    }
    let mut response = (status, body).into_response();
    for (k, v) in headers {
        if let Ok(v) = v.parse() {
            response.headers_mut().insert(k, v);
        }
    }
    Ok(response)
}

/// A single `bytes=a-b`, `bytes=a-` or `bytes=-n` range within `size`.
fn parse_range(value: &str, size: u64) -> Option<(u64, u64)> {
    let spec = value.strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (size.saturating_sub(n), size - 1)
        }
        (a, "") => (a.parse().ok()?, size - 1),
        (a, b) => (a.parse().ok()?, b.parse::<u64>().ok()?.min(size - 1)),
    };
    (start <= end && start < size).then_some((start, end))
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
    Ok(Json(recordings::verify(&state.storage, &r).await))
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
    let mime = if name.ends_with(".webm") {
        "video/webm"
    } else if name.ends_with(".mp4") {
        "video/mp4"
    } else {
        "video/x-matroska"
    };
    if r.storage == "s3" {
        return from_object_storage(&state, &path.to_string_lossy(), mime, request.headers()).await;
    }
    let response = ServeFile::new_with_mime(path, &mime.parse().map_err(|_| ApiError::BadRequest("mime".into()))?)
        .oneshot(request)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("serving a recording: {e}")))?;
    Ok(response.into_response())
}
