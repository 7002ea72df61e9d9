#![allow(clippy::type_complexity)] // row tuples mirror their select lists
//! The job queue: long work (composite recordings) runs in a worker, in this process
//! (`jiefen serve`) or apart (`jiefen worker`), never on the media plane. A job is claimed by one
//! worker at a time (PostgreSQL: `for update skip locked`; SQLite: one writer), retried with
//! backoff when it fails, and reports progress.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::db::{Backend, Db, DbError, now_text};
use crate::store::cases;
use crate::store::staff::text_time;

pub const KIND_COMPOSITE: &str = "composite";
/// Move a finished recording to object storage (after its composite is made).
pub const KIND_ARCHIVE: &str = "archive";
/// Deliver a court package (the outbox): retried until the court has it.
pub const KIND_COURT_PUSH: &str = "court_push";

/// What jobs need beyond the database.
#[derive(Clone)]
pub struct Services {
    pub storage: crate::storage::Storage,
    pub court: Option<crate::court::connector::HttpCourt>,
}

fn max_attempts(kind: &str) -> i64 {
    // Nothing sent to the court may be lost: keep trying (backoff capped at an hour).
    if kind == KIND_COURT_PUSH { 200 } else { MAX_ATTEMPTS }
}
pub const MAX_ATTEMPTS: i64 = 3;
const POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Job {
    pub job_id: i64,
    pub kind: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub status: String,
    pub attempts: i64,
    /// Percent done.
    pub progress: i64,
    pub error: Option<String>,
    pub updated_at: String,
}

/// Queues a job inside the caller's transaction (the outbox: it exists iff the change does).
pub async fn enqueue_in(tx: &mut sqlx::Transaction<'static, sqlx::Any>, kind: &str, payload: &serde_json::Value) -> Result<(), DbError> {
    let now = now_text();
    sqlx::query("insert into job (kind, payload, status, attempts, progress, run_after, created_at, updated_at) values ($1, $2, 'queued', 0, 0, $3, $3, $3)")
        .bind(kind)
        .bind(payload.to_string())
        .bind(&now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn enqueue(db: &Db, kind: &str, payload: &serde_json::Value) -> Result<i64, DbError> {
    let now = now_text();
    let (id,): (i64,) = sqlx::query_as(
        "insert into job (kind, payload, status, attempts, progress, run_after, created_at, updated_at) values ($1, $2, 'queued', 0, 0, $3, $3, $3) returning job_id",
    )
    .bind(kind)
    .bind(payload.to_string())
    .bind(&now)
    .fetch_one(&db.pool)
    .await?;
    Ok(id)
}

/// Queues the composite of a recording inside the transaction that stores it.
pub async fn enqueue_composite_in(tx: &mut sqlx::Transaction<'static, sqlx::Any>, recording_id: i64) -> Result<(), DbError> {
    let now = now_text();
    sqlx::query("insert into job (kind, payload, status, attempts, progress, run_after, created_at, updated_at) values ($1, $2, 'queued', 0, 0, $3, $3, $3)")
        .bind(KIND_COMPOSITE)
        .bind(serde_json::json!({ "recording_id": recording_id }).to_string())
        .bind(&now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn load(db: &Db, id: i64) -> Result<Option<Job>, DbError> {
    let row: Option<(i64, String, String, String, i64, i64, Option<String>, String)> =
        sqlx::query_as("select job_id, kind, payload, status, attempts, progress, error, updated_at from job where job_id = $1").bind(id).fetch_optional(&db.pool).await?;
    Ok(row.map(|r| Job { job_id: r.0, kind: r.1, payload: serde_json::from_str(&r.2).unwrap_or_default(), status: r.3, attempts: r.4, progress: r.5, error: r.6, updated_at: r.7 }))
}

/// Takes the next due job, if any, marking it running.
async fn claim(db: &Db) -> Result<Option<(i64, String, String, i64)>, DbError> {
    let now = now_text();
    let lock = if db.backend == Backend::Postgres { " for update skip locked" } else { "" };
    let mut tx = db.begin().await?;
    let sql = format!("select job_id, kind, payload, attempts from job where status = 'queued' and run_after <= $1 order by job_id limit 1{lock}");
    let next: Option<(i64, String, String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(&now).fetch_optional(&mut *tx).await?;
    if let Some((id, ..)) = &next {
        sqlx::query("update job set status = 'running', attempts = attempts + 1, updated_at = $1 where job_id = $2").bind(&now).bind(id).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(next)
}

async fn set_progress(db: &Db, id: i64, percent: i64) -> Result<(), DbError> {
    sqlx::query("update job set progress = $1, updated_at = $2 where job_id = $3").bind(percent).bind(now_text()).bind(id).execute(&db.pool).await?;
    Ok(())
}

async fn finish(db: &Db, id: i64, kind: &str, attempts: i64, outcome: Result<(), String>) -> Result<(), DbError> {
    let now = now_text();
    match outcome {
        Ok(()) => {
            sqlx::query("update job set status = 'done', progress = 100, error = null, updated_at = $1 where job_id = $2").bind(&now).bind(id).execute(&db.pool).await?;
        }
        Err(e) if attempts < max_attempts(kind) => {
            // 30 s, 60 s, ... up to an hour: a transient cause (a court system down, a full disk
            // being cleaned, a restart) gets time.
            let after = text_time(SystemTime::now() + Duration::from_secs((30u64 << attempts.clamp(0, 7)).min(3600)));
            tracing::warn!(job_id = id, attempts, error = %e, "job failed; will retry");
            sqlx::query("update job set status = 'queued', error = $1, run_after = $2, updated_at = $3 where job_id = $4").bind(&e).bind(after).bind(&now).bind(id).execute(&db.pool).await?;
        }
        Err(e) => {
            tracing::error!(job_id = id, attempts, error = %e, "job failed for good");
            sqlx::query("update job set status = 'failed', error = $1, updated_at = $2 where job_id = $3").bind(&e).bind(&now).bind(id).execute(&db.pool).await?;
        }
    }
    Ok(())
}

/// A running job not heard from (progress) for this long belongs to a worker that died.
pub const STALE_AFTER: Duration = Duration::from_secs(15 * 60);

/// Jobs left running by a worker that died are queued again (checked at every worker start).
pub async fn requeue_stale(db: &Db) -> Result<u64, DbError> {
    let cutoff = text_time(SystemTime::now() - STALE_AFTER);
    let done = sqlx::query("update job set status = 'queued', updated_at = $1 where status = 'running' and updated_at < $2").bind(now_text()).bind(cutoff).execute(&db.pool).await?;
    Ok(done.rows_affected())
}

/// Runs jobs until the process ends.
pub async fn run_worker(db: Db, services: Services) {
    if let Err(e) = requeue_stale(&db).await {
        tracing::warn!(error = %e, "could not requeue stale jobs");
    }
    loop {
        match claim(&db).await {
            Ok(Some((id, kind, payload, attempts))) => {
                let outcome = run_one(&db, &services, id, &kind, &payload).await;
                if let Err(e) = after(&db, &services.storage, &kind, &payload, &outcome, attempts + 1).await {
                    tracing::error!(error = %e, job_id = id, "could not queue the follow-up job");
                }
                if let Err(e) = finish(&db, id, &kind, attempts + 1, outcome).await {
                    tracing::error!(error = %e, job_id = id, "could not record a job's outcome");
                }
            }
            Ok(None) => tokio::time::sleep(POLL).await,
            Err(e) => {
                tracing::warn!(error = %e, "job queue unavailable");
                tokio::time::sleep(POLL * 5).await;
            }
        }
    }
}

/// Runs every due job now, in this task (tests, and `jiefen worker --once`).
pub async fn run_due(db: &Db, services: &Services) -> Result<usize, DbError> {
    let mut n = 0;
    while let Some((id, kind, payload, attempts)) = claim(db).await? {
        let outcome = run_one(db, services, id, &kind, &payload).await;
        after(db, &services.storage, &kind, &payload, &outcome, attempts + 1).await?;
        finish(db, id, &kind, attempts + 1, outcome).await?;
        n += 1;
    }
    Ok(n)
}

/// Once a composite is done (or has failed for good), the recording moves to object storage
/// when one is configured: the composite needs the local files, so never before.
async fn after(db: &Db, storage: &crate::storage::Storage, kind: &str, payload: &str, outcome: &Result<(), String>, attempts: i64) -> Result<(), DbError> {
    let final_outcome = outcome.is_ok() || attempts >= MAX_ATTEMPTS;
    if kind == KIND_COMPOSITE && final_outcome && storage.kind() == "s3" {
        let payload: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
        enqueue(db, KIND_ARCHIVE, &payload).await?;
    }
    Ok(())
}

async fn run_one(db: &Db, services: &Services, id: i64, kind: &str, payload: &str) -> Result<(), String> {
    let storage = &services.storage;
    let payload: serde_json::Value = serde_json::from_str(payload).map_err(|e| format!("bad payload: {e}"))?;
    let recording_id = || payload["recording_id"].as_i64().ok_or("payload lacks recording_id");
    match kind {
        KIND_COMPOSITE => composite(db, id, recording_id()?).await,
        KIND_ARCHIVE => crate::recordings::archive(db, storage, recording_id()?).await,
        KIND_COURT_PUSH => {
            let package_id = payload["package_id"].as_str().ok_or("payload lacks package_id")?;
            court_push(db, services.court.as_ref().ok_or("no court system is configured")?, package_id).await
        }
        other => Err(format!("unknown job kind {other}")),
    }
}

/// Delivers one court package. The court recognises a retry by the package id (its
/// Idempotency-Key), so a package whose answer was lost is never filed twice.
async fn court_push(db: &Db, court: &crate::court::connector::HttpCourt, package_id: &str) -> Result<(), String> {
    use crate::court::connector::{CourtConnector, CourtError};
    let row: Option<(String, i64, String)> = sqlx::query_as("select payload, case_id, status from court_package where package_id = $1").bind(package_id).fetch_optional(&db.pool).await.map_err(|e| e.to_string())?;
    let (payload, case_id, _) = row.ok_or("the package is gone")?;
    let payload: serde_json::Value = serde_json::from_str(&payload).map_err(|e| e.to_string())?;
    match court.submit(package_id, &payload).await {
        Ok(receipt) => {
            // A callback may already have moved it on: only a queued package becomes submitted.
            sqlx::query("update court_package set status = case when status = 'queued' then 'submitted' else status end, court_ref = $1, updated_at = $2 where package_id = $3")
                .bind(&receipt.court_ref)
                .bind(now_text())
                .bind(package_id)
                .execute(&db.pool)
                .await
                .map_err(|e| e.to_string())?;
            Ok(())
        }
        Err(CourtError::Refused(reason)) => {
            sqlx::query("update court_package set status = 'invalid', reason = $1, updated_at = $2 where package_id = $3").bind(&reason).bind(now_text()).bind(package_id).execute(&db.pool).await.map_err(|e| e.to_string())?;
            let _ = cases::record_event(db, case_id, "court_package_refused", "system:court", &serde_json::json!({ "package_id": package_id, "reason": reason })).await;
            Ok(())
        }
        Err(e @ CourtError::Unreachable(_)) => Err(e.to_string()),
    }
}

/// Composes a recording's tracks into `composite.mp4` beside them.
async fn composite(db: &Db, job_id: i64, recording_id: i64) -> Result<(), String> {
    let r = crate::recordings::load(db, recording_id).await.map_err(|e| e.to_string())?.ok_or("the recording is gone")?;
    let manifest: jiefen_recorder::Manifest = r.manifest.clone().and_then(|m| serde_json::from_value(m).ok()).ok_or("the recording has no manifest")?;
    let names = invitee_names(db, r.session_id).await.map_err(|e| e.to_string())?;
    let dir = PathBuf::from(&r.dir);
    let inputs: Vec<jiefen_composer::Input> = manifest
        .tracks
        .iter()
        .filter(|t| t.sha256.is_some())
        .map(|t| jiefen_composer::Input {
            path: dir.join(&t.file),
            start_ms: t.start_ms,
            name: names.iter().find(|(identity, _)| *identity == t.publisher).map(|(_, n)| n.clone()).unwrap_or_else(|| t.publisher.clone()),
        })
        .collect();
    let duration = manifest.tracks.iter().map(|t| t.end_ms).max().unwrap_or(0) + 40;
    let out = dir.join(crate::recordings::COMPOSITE_FILE);
    sqlx::query("update recording set composite_status = 'running' where recording_id = $1").bind(recording_id).execute(&db.pool).await.map_err(|e| e.to_string())?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<i64>();
    let out2 = out.clone();
    let work = tokio::task::spawn_blocking(move || {
        jiefen_composer::compose(&inputs, duration, &out2, &jiefen_composer::Options::default(), |f| {
            let _ = tx.send((f * 100.0) as i64);
        })
    });
    tokio::pin!(work);
    let result = loop {
        tokio::select! {
            p = rx.recv() => if let Some(p) = p { let _ = set_progress(db, job_id, p.min(99)).await; },
            r = &mut work => break r,
        }
    };
    let report = match result {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => {
            let _ = sqlx::query("update recording set composite_status = 'failed' where recording_id = $1").bind(recording_id).execute(&db.pool).await;
            return Err(e.to_string());
        }
        Err(e) => return Err(format!("the composer crashed: {e}")),
    };
    let digest = tokio::task::spawn_blocking(move || jiefen_recorder::hash::digest_file(&out)).await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    let hash = digest.sha256;
    let mut tx = db.begin().await.map_err(|e| e.to_string())?;
    sqlx::query("update recording set composite_status = 'ready', composite_sha256 = $1, composite_sm3 = $2 where recording_id = $3")
        .bind(&hash)
        .bind(&digest.sm3)
        .bind(recording_id)
        .execute(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(case_id) = r.case_id {
        cases::append_event(&mut tx, case_id, "composite_ready", "system:worker", &serde_json::json!({ "recording_id": recording_id, "sha256": hash, "sm3": digest.sm3, "tiles": report.tiles, "duration_ms": report.duration_ms }))
            .await
            .map_err(|e| e.to_string())?;
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(())
}

/// (identity, display name) of a session's invitees.
async fn invitee_names(db: &Db, session_id: Option<i64>) -> Result<Vec<(String, String)>, DbError> {
    let Some(sid) = session_id else { return Ok(Vec::new()) };
    Ok(sqlx::query_as("select identity, name from session_invitee where session_id = $1").bind(sid).fetch_all(&db.pool).await?)
}
