//! Recordings as the case backend sees them: started by signaling through `RecordingControl`
//! (the recorder writes files beside the media plane), stored as a row with the manifest, the
//! manifest's hash entered into the case's event chain; verification re-hashes every file;
//! a retention sweep deletes expired ones and logs it.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use jiefen_recorder::Manifest;
use serde::Serialize;

use crate::db::{Db, DbError, now_text};
use crate::store::cases;

/// The composed MP4 beside a recording's tracks.
pub const COMPOSITE_FILE: &str = "composite.mp4";

pub struct Recordings {
    db: Db,
    root: PathBuf,
    /// To tell the room when a recording stops on its own.
    signaling: jiefen_signaling::Signaling,
}

impl Recordings {
    pub fn new(db: Db, data_dir: &Path, signaling: jiefen_signaling::Signaling) -> Recordings {
        Recordings { db, root: data_dir.join("recordings"), signaling }
    }
}

impl jiefen_signaling::RecordingControl for Recordings {
    fn start(&self, room: &str) -> Result<jiefen_media::RecordingTap, String> {
        let stamp = now_text().replace([':', '.'], "-");
        let dir = self.root.join(room).join(&stamp);
        let running = jiefen_recorder::start(room, &dir).map_err(|e| format!("cannot write to {}: {e}", dir.display()))?;
        let db = self.db.clone();
        let signaling = self.signaling.clone();
        let room = room.to_string();
        let dir_text = dir.to_string_lossy().into_owned();
        tokio::spawn(async move {
            let id = match begin(&db, &room, &dir_text).await {
                Ok(id) => id,
                Err(e) => {
                    tracing::error!(error = %e, %room, "could not record the start of a recording");
                    return;
                }
            };
            let outcome = running.finished.await.unwrap_or_else(|_| Err("the recorder stopped unexpectedly".into()));
            if let Err(problem) = &outcome {
                // Usually a full disk: the hosts hear of it at once; the session goes on.
                signaling.recording_stopped(&room, problem);
            }
            if let Err(e) = complete(&db, id, outcome).await {
                tracing::error!(error = %e, recording_id = id, "could not store a finished recording");
            }
        });
        Ok(running.tap)
    }
}

/// (session_id, case_id) of a case session's room.
async fn session_of(db: &Db, room: &str) -> Result<Option<(i64, i64)>, DbError> {
    Ok(sqlx::query_as("select session_id, case_id from video_session where room = $1").bind(room).fetch_optional(&db.pool).await?)
}

async fn begin(db: &Db, room: &str, dir: &str) -> Result<i64, DbError> {
    let session = session_of(db, room).await?;
    let (id,): (i64,) = sqlx::query_as(
        "insert into recording (room, session_id, case_id, dir, status, started_at) values ($1, $2, $3, $4, 'recording', $5) returning recording_id",
    )
    .bind(room)
    .bind(session.map(|s| s.0))
    .bind(session.map(|s| s.1))
    .bind(dir)
    .bind(now_text())
    .fetch_one(&db.pool)
    .await?;
    Ok(id)
}

async fn complete(db: &Db, id: i64, outcome: Result<(Manifest, String), String>) -> Result<(), DbError> {
    let (case_id, dir): (Option<i64>, String) = sqlx::query_as("select case_id, dir from recording where recording_id = $1").bind(id).fetch_one(&db.pool).await?;
    match outcome {
        Ok((manifest, hash)) => {
            let text = serde_json::to_string(&manifest).unwrap_or_default();
            let sm3 = std::fs::read(Path::new(&dir).join(jiefen_recorder::MANIFEST_FILE)).ok().map(|b| jiefen_recorder::hash::sm3(&b));
            let mut tx = db.begin().await?;
            sqlx::query("update recording set status = 'complete', manifest = $1, manifest_sha256 = $2, manifest_sm3 = $3, ended_at = $4 where recording_id = $5")
                .bind(&text)
                .bind(&hash)
                .bind(&sm3)
                .bind(now_text())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            crate::jobs::enqueue_composite_in(&mut tx, id).await?;
            if let Some(case_id) = case_id {
                let flagged: Vec<&str> = manifest.tracks.iter().filter(|t| t.problem.is_some()).map(|t| t.file.as_str()).collect();
                cases::append_event(
                    &mut tx,
                    case_id,
                    "recording_saved",
                    "system:recorder",
                    &serde_json::json!({ "recording_id": id, "manifest_sha256": hash, "manifest_sm3": sm3, "tracks": manifest.tracks.len(), "duration_ms": manifest.duration_ms, "flagged": flagged }),
                )
                .await?;
            }
            tx.commit().await?;
        }
        Err(problem) => {
            tracing::error!(recording_id = id, %problem, "recording failed");
            sqlx::query("update recording set status = 'failed', problem = $1, ended_at = $2 where recording_id = $3").bind(&problem).bind(now_text()).bind(id).execute(&db.pool).await?;
            if let Some(case_id) = case_id {
                cases::record_event(db, case_id, "recording_failed", "system:recorder", &serde_json::json!({ "recording_id": id, "problem": problem })).await?;
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecordingRow {
    pub recording_id: i64,
    pub room: String,
    pub session_id: Option<i64>,
    pub case_id: Option<i64>,
    pub status: String,
    pub manifest_sha256: Option<String>,
    pub manifest_sm3: Option<String>,
    pub problem: Option<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
    /// `running`, `ready`, `failed`, or none yet.
    pub composite_status: Option<String>,
    pub composite_sha256: Option<String>,
    pub composite_sm3: Option<String>,
    #[schema(value_type = Object)]
    pub manifest: Option<serde_json::Value>,
    #[serde(skip)]
    pub dir: String,
}

const COLUMNS: &str = "recording_id, room, session_id, case_id, status, manifest_sha256, problem, started_at, ended_at, manifest, dir, composite_status, composite_sha256, manifest_sm3, composite_sm3";
type Row = (i64, String, Option<i64>, Option<i64>, String, Option<String>, Option<String>, String, Option<String>, Option<String>, String, Option<String>, Option<String>, Option<String>, Option<String>);

fn from_row(r: Row) -> RecordingRow {
    RecordingRow {
        recording_id: r.0,
        room: r.1,
        session_id: r.2,
        case_id: r.3,
        status: r.4,
        manifest_sha256: r.5,
        problem: r.6,
        started_at: r.7,
        ended_at: r.8,
        manifest: r.9.and_then(|m| serde_json::from_str(&m).ok()),
        dir: r.10,
        composite_status: r.11,
        composite_sha256: r.12,
        manifest_sm3: r.13,
        composite_sm3: r.14,
    }
}

pub async fn load(db: &Db, id: i64) -> Result<Option<RecordingRow>, DbError> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!("select {COLUMNS} from recording where recording_id = $1"))).bind(id).fetch_optional(&db.pool).await?;
    Ok(row.map(from_row))
}

pub async fn for_case(db: &Db, case_id: i64) -> Result<Vec<RecordingRow>, DbError> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!("select {COLUMNS} from recording where case_id = $1 order by recording_id"))).bind(case_id).fetch_all(&db.pool).await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// The files a recording lists, resolved inside its directory (names from the manifest only),
/// and the composite once it is ready: (name, path, SHA-256, SM3).
pub fn files(r: &RecordingRow) -> Vec<(String, PathBuf, Option<String>, Option<String>)> {
    let Some(m) = r.manifest.as_ref().and_then(|m| serde_json::from_value::<Manifest>(m.clone()).ok()) else { return Vec::new() };
    let composite = (r.composite_status.as_deref() == Some("ready"))
        .then(|| (COMPOSITE_FILE.to_string(), Path::new(&r.dir).join(COMPOSITE_FILE), r.composite_sha256.clone(), r.composite_sm3.clone()));
    m.tracks
        .into_iter()
        // A track that never got a keyframe has no file; its problem is in the manifest.
        .filter(|t| t.sha256.is_some() && !t.file.is_empty() && !t.file.contains('/') && !t.file.contains(".."))
        .map(|t| (t.file.clone(), Path::new(&r.dir).join(&t.file), t.sha256, t.sm3))
        .chain(composite)
        .collect()
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Verification {
    pub recording_id: i64,
    pub intact: bool,
    /// One line per file (and the manifest): `ok`, `changed`, `missing`.
    pub checks: Vec<(String, String)>,
}

/// Re-hashes the manifest and every file and compares with what was stored at the end of the recording.
pub fn verify(r: &RecordingRow) -> Verification {
    let mut checks = Vec::new();
    let manifest_path = Path::new(&r.dir).join(jiefen_recorder::MANIFEST_FILE);
    let manifest_state = match std::fs::read(&manifest_path) {
        Ok(bytes) if Some(jiefen_recorder::hash::sha256(&bytes)) == r.manifest_sha256 && (r.manifest_sm3.is_none() || Some(jiefen_recorder::hash::sm3(&bytes)) == r.manifest_sm3) => "ok",
        Ok(_) => "changed",
        Err(_) => "missing",
    };
    checks.push((jiefen_recorder::MANIFEST_FILE.to_string(), manifest_state.to_string()));
    for (name, path, sha256, sm3) in files(r) {
        // Both digests must match where both were stored (SM3 is absent on older rows).
        let state = match jiefen_recorder::hash::digest_file(&path) {
            Ok(d) if Some(&d.sha256) == sha256.as_ref() && sm3.as_ref().is_none_or(|s| *s == d.sm3) => "ok",
            Ok(_) => "changed",
            Err(_) => "missing",
        };
        checks.push((name, state.to_string()));
    }
    let intact = r.status == "complete" && checks.iter().all(|(_, s)| s == "ok");
    Verification { recording_id: r.recording_id, intact, checks }
}

/// Deletes recordings that ended more than `retention` ago: files removed, row marked, case logged.
pub async fn sweep_retention(db: &Db, retention: Duration, now: SystemTime) -> Result<usize, DbError> {
    let cutoff = crate::store::staff::text_time(now - retention);
    let rows: Vec<(i64, String, Option<i64>)> =
        sqlx::query_as("select recording_id, dir, case_id from recording where status in ('complete', 'failed') and ended_at < $1").bind(&cutoff).fetch_all(&db.pool).await?;
    let mut deleted = 0;
    for (id, dir, case_id) in rows {
        if let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, recording_id = id, "could not delete an expired recording; will retry");
            continue;
        }
        sqlx::query("update recording set status = 'deleted', deleted_at = $1 where recording_id = $2").bind(now_text()).bind(id).execute(&db.pool).await?;
        tracing::info!(recording_id = id, %dir, "expired recording deleted (retention policy)");
        if let Some(case_id) = case_id {
            cases::record_event(db, case_id, "recording_deleted", "system:retention", &serde_json::json!({ "recording_id": id, "retention_days": retention.as_secs() / 86_400 })).await?;
        }
        deleted += 1;
    }
    Ok(deleted)
}
