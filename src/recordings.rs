//! Recordings as the case backend sees them: started by signaling through `RecordingControl`
//! (the recorder writes files beside the media plane), stored as a row with the manifest, the
//! manifest's hash entered into the case's event chain; verification re-hashes every file;
//! a retention sweep deletes expired ones and logs it.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use jiefen_recorder::Manifest;
use serde::Serialize;

use crate::db::{Db, DbError, now_text};
use crate::storage::Storage;
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
    /// `local` (the data directory) or `s3`.
    pub storage: String,
    #[schema(value_type = Object)]
    pub manifest: Option<serde_json::Value>,
    #[serde(skip)]
    pub dir: String,
    #[serde(skip)]
    pub object_prefix: Option<String>,
}

const COLUMNS: &str = "recording_id, room, session_id, case_id, status, manifest_sha256, manifest_sm3, problem, started_at, ended_at, manifest, dir, \
     composite_status, composite_sha256, composite_sm3, storage, object_prefix";

impl<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> for RecordingRow {
    fn from_row(row: &'r sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        use sqlx::Row;
        let manifest: Option<String> = row.try_get("manifest")?;
        Ok(RecordingRow {
            recording_id: row.try_get("recording_id")?,
            room: row.try_get("room")?,
            session_id: row.try_get("session_id")?,
            case_id: row.try_get("case_id")?,
            status: row.try_get("status")?,
            manifest_sha256: row.try_get("manifest_sha256")?,
            manifest_sm3: row.try_get("manifest_sm3")?,
            problem: row.try_get("problem")?,
            started_at: row.try_get("started_at")?,
            ended_at: row.try_get("ended_at")?,
            manifest: manifest.and_then(|m| serde_json::from_str(&m).ok()),
            dir: row.try_get("dir")?,
            composite_status: row.try_get("composite_status")?,
            composite_sha256: row.try_get("composite_sha256")?,
            composite_sm3: row.try_get("composite_sm3")?,
            storage: row.try_get("storage")?,
            object_prefix: row.try_get("object_prefix")?,
        })
    }
}

pub async fn load(db: &Db, id: i64) -> Result<Option<RecordingRow>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("select {COLUMNS} from recording where recording_id = $1"))).bind(id).fetch_optional(&db.pool).await?)
}

pub async fn for_case(db: &Db, case_id: i64) -> Result<Vec<RecordingRow>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("select {COLUMNS} from recording where case_id = $1 order by recording_id"))).bind(case_id).fetch_all(&db.pool).await?)
}

impl RecordingRow {
    /// Where a file of this recording is: a local path, or an object key under the prefix.
    pub fn location(&self, name: &str) -> String {
        match (&self.object_prefix, self.storage.as_str()) {
            (Some(prefix), "s3") => format!("{prefix}/{name}"),
            _ => Path::new(&self.dir).join(name).to_string_lossy().into_owned(),
        }
    }
}

/// The files a recording lists (names from the manifest only), and the composite once it is
/// ready: (name, location, SHA-256, SM3).
pub fn files(r: &RecordingRow) -> Vec<(String, PathBuf, Option<String>, Option<String>)> {
    let Some(m) = r.manifest.as_ref().and_then(|m| serde_json::from_value::<Manifest>(m.clone()).ok()) else { return Vec::new() };
    let composite = (r.composite_status.as_deref() == Some("ready"))
        .then(|| (COMPOSITE_FILE.to_string(), PathBuf::from(r.location(COMPOSITE_FILE)), r.composite_sha256.clone(), r.composite_sm3.clone()));
    m.tracks
        .into_iter()
        // A track that never got a keyframe has no file; its problem is in the manifest.
        .filter(|t| t.sha256.is_some() && !t.file.is_empty() && !t.file.contains('/') && !t.file.contains(".."))
        .map(|t| (t.file.clone(), PathBuf::from(r.location(&t.file)), t.sha256, t.sm3))
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

/// Re-hashes the manifest and every file where they are kept (disk or object storage) and
/// compares with what was stored at the end of the recording.
pub async fn verify(storage: &Storage, r: &RecordingRow) -> Verification {
    let mut checks = Vec::new();
    let manifest = (jiefen_recorder::MANIFEST_FILE.to_string(), PathBuf::from(r.location(jiefen_recorder::MANIFEST_FILE)), r.manifest_sha256.clone(), r.manifest_sm3.clone());
    for (name, location, sha256, sm3) in std::iter::once(manifest).chain(files(r)) {
        let digest = match r.storage.as_str() {
            "s3" => storage.digest(&location.to_string_lossy()).await.map_err(|e| e.to_string()),
            _ => tokio::task::spawn_blocking(move || jiefen_recorder::hash::digest_file(&location)).await.map_err(|e| e.to_string()).and_then(|d| d.map_err(|e| e.to_string())),
        };
        // Both digests must match where both were stored (SM3 is absent on older rows).
        let state = match digest {
            Ok(d) if Some(&d.sha256) == sha256.as_ref() && sm3.as_ref().is_none_or(|s| *s == d.sm3) => "ok",
            Ok(_) => "changed",
            Err(_) => "missing",
        };
        checks.push((name, state.to_string()));
    }
    let intact = r.status == "complete" && checks.iter().all(|(_, s)| s == "ok");
    Verification { recording_id: r.recording_id, intact, checks }
}

/// Moves a finished recording's files to object storage: upload, re-read and compare both
/// digests, record the new home, then remove the local copy.
pub async fn archive(db: &Db, storage: &Storage, id: i64) -> Result<(), String> {
    if storage.kind() != "s3" {
        return Ok(());
    }
    let r = load(db, id).await.map_err(|e| e.to_string())?.ok_or("the recording is gone")?;
    if r.storage == "s3" || r.status != "complete" {
        return Ok(());
    }
    let prefix = format!("recordings/{}/{}", r.room, Path::new(&r.dir).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| id.to_string()));
    let manifest = (jiefen_recorder::MANIFEST_FILE.to_string(), r.manifest_sha256.clone(), r.manifest_sm3.clone());
    let names: Vec<(String, Option<String>, Option<String>)> = std::iter::once(manifest).chain(files(&r).into_iter().map(|(n, _, sha, sm)| (n, sha, sm))).collect();
    for (name, sha256, sm3) in &names {
        let key = format!("{prefix}/{name}");
        storage.upload(&Path::new(&r.dir).join(name), &key).await.map_err(|e| e.to_string())?;
        let d = storage.digest(&key).await.map_err(|e| e.to_string())?;
        if Some(&d.sha256) != sha256.as_ref() || sm3.as_ref().is_some_and(|s| *s != d.sm3) {
            return Err(crate::storage::StorageError::Mismatch(name.clone()).to_string());
        }
    }
    let mut tx = db.begin().await.map_err(|e| e.to_string())?;
    sqlx::query("update recording set storage = 's3', object_prefix = $1 where recording_id = $2").bind(&prefix).bind(id).execute(&mut *tx).await.map_err(|e| e.to_string())?;
    if let Some(case_id) = r.case_id {
        cases::append_event(&mut tx, case_id, "recording_archived", "system:worker", &serde_json::json!({ "recording_id": id, "storage": "s3", "prefix": prefix, "files": names.len() }))
            .await
            .map_err(|e| e.to_string())?;
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    if let Err(e) = tokio::fs::remove_dir_all(&r.dir).await {
        tracing::warn!(error = %e, dir = %r.dir, "archived recording's local copy could not be removed");
    }
    Ok(())
}

/// Deletes recordings that ended more than `retention` ago: files removed, row marked, case logged.
pub async fn sweep_retention(db: &Db, storage: &Storage, retention: Duration, now: SystemTime) -> Result<usize, DbError> {
    let cutoff = crate::store::staff::text_time(now - retention);
    let rows: Vec<(i64, String, Option<i64>, Option<String>)> =
        sqlx::query_as("select recording_id, dir, case_id, object_prefix from recording where status in ('complete', 'failed') and ended_at < $1").bind(&cutoff).fetch_all(&db.pool).await?;
    let mut deleted = 0;
    for (id, dir, case_id, prefix) in rows {
        if let Some(prefix) = &prefix
            && let Err(e) = storage.delete_prefix(prefix).await
        {
            tracing::warn!(error = %e, recording_id = id, "could not delete an expired recording from object storage; will retry");
            continue;
        }
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
