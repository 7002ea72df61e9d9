//! The deadline sweep: reminds before a stage's limit and escalates past it, once per level,
//! each step written to the case's event log (which the supervision queue and the staff list read).

use std::time::{Duration, SystemTime};

use crate::case::{CaseStatus, deadline};
use crate::db::{Db, DbError};
use crate::store::cases;

pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

pub async fn run(db: Db) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = sweep(&db, SystemTime::now()).await {
            tracing::warn!(error = %e, "deadline sweep failed; retrying next round");
        }
    }
}

/// Raises the escalation level of every open case whose time has come; returns how many changed.
pub async fn sweep(db: &Db, now: SystemTime) -> Result<usize, DbError> {
    let sql = format!(
        "select case_id, status, {}, stage_due_at, escalation_level, version from dispute_case where stage_due_at is not null and escalation_level < 2 and status in ({})",
        crate::db::flag("quick_track"),
        CaseStatus::open_sql_list()
    );
    let rows: Vec<(i64, String, i64, String, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&db.pool).await?;
    let mut changed = 0;
    for (case_id, status, quick, due, level, version) in rows {
        let (Some(status), Ok(due_t)) = (CaseStatus::parse(&status), humantime::parse_rfc3339(&due)) else { continue };
        let new_level = i64::from(deadline::escalation(status, quick != 0, due_t, now));
        if new_level <= level {
            continue;
        }
        let mut tx = db.begin().await?;
        // Guarded by the version: a case that moved on meanwhile is left to the next sweep.
        let done = sqlx::query("update dispute_case set escalation_level = $1, version = version + 1 where case_id = $2 and version = $3")
            .bind(new_level)
            .bind(case_id)
            .bind(version)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            continue;
        }
        let kind = if new_level == 2 { "deadline_overdue" } else { "deadline_reminder" };
        cases::append_event(&mut tx, case_id, kind, "system:deadlines", &serde_json::json!({ "status": status.as_str(), "due_at": due })).await?;
        tx.commit().await?;
        changed += 1;
        if new_level == 2 {
            tracing::warn!(case_id, status = status.as_str(), due_at = %due, "case overdue, escalated to supervision");
        }
    }
    Ok(changed)
}
