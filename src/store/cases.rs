#![allow(clippy::type_complexity)] // row tuples mirror their select lists
//! Cases, parties and the case event log in the database. Every write that changes a case runs
//! in one transaction with the event that records it, guarded by the case's version so that
//! concurrent edits never silently overwrite each other.

use std::time::SystemTime;

use serde::Serialize;
use sqlx::{Any, Transaction};

use crate::case::chain::{self, EntryContent, GENESIS, StoredEntry};
use crate::case::{CaseStatus, deadline};
use crate::db::{Db, DbError};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CaseRow {
    pub case_id: i64,
    pub case_number: String,
    pub title: String,
    pub summary: String,
    pub category_code: String,
    pub org_unit_id: i64,
    pub mediation_org_id: Option<i64>,
    pub mediator_id: Option<i64>,
    pub leader_staff_id: Option<i64>,
    pub status: String,
    pub quick_track: bool,
    pub channel: String,
    pub external_source: Option<String>,
    pub external_id: Option<String>,
    pub duplicate_of: Option<i64>,
    pub stage_due_at: Option<String>,
    pub escalation_level: i64,
    pub reopen_count: i64,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

const COLUMNS: [&str; 21] = [
    "case_id", "case_number", "title", "summary", "category_code", "org_unit_id", "mediation_org_id", "mediator_id", "leader_staff_id", "status",
    "quick_track", "channel", "external_source", "external_id", "duplicate_of", "stage_due_at", "escalation_level", "reopen_count", "version", "created_at", "updated_at",
];

/// The select list for a `CaseRow`, each column prefixed with `alias.` when one is given.
pub fn case_columns(alias: &str) -> String {
    let prefix = if alias.is_empty() { String::new() } else { format!("{alias}.") };
    COLUMNS
        .iter()
        .map(|c| if *c == "quick_track" { format!("{} as quick_track", crate::db::flag(&format!("{prefix}{c}"))) } else { format!("{prefix}{c}") })
        .collect::<Vec<_>>()
        .join(", ")
}

impl<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> for CaseRow {
    fn from_row(row: &'r sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        use sqlx::Row;
        Ok(CaseRow {
            case_id: row.try_get("case_id")?,
            case_number: row.try_get("case_number")?,
            title: row.try_get("title")?,
            summary: row.try_get("summary")?,
            category_code: row.try_get("category_code")?,
            org_unit_id: row.try_get("org_unit_id")?,
            mediation_org_id: row.try_get("mediation_org_id")?,
            mediator_id: row.try_get("mediator_id")?,
            leader_staff_id: row.try_get("leader_staff_id")?,
            status: row.try_get("status")?,
            quick_track: row.try_get::<i64, _>("quick_track")? != 0,
            channel: row.try_get("channel")?,
            external_source: row.try_get("external_source")?,
            external_id: row.try_get("external_id")?,
            duplicate_of: row.try_get("duplicate_of")?,
            stage_due_at: row.try_get("stage_due_at")?,
            escalation_level: row.try_get("escalation_level")?,
            reopen_count: row.try_get("reopen_count")?,
            version: row.try_get("version")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

impl CaseRow {
    pub fn status(&self) -> CaseStatus {
        // The column is only ever written from a `CaseStatus`; an unknown value means a bad
        // manual edit, treated as the safest state (no actions but reopen).
        CaseStatus::parse(&self.status).unwrap_or(CaseStatus::Supervised)
    }

    pub fn overdue(&self, now: &str) -> bool {
        self.status().is_open() && self.stage_due_at.as_deref().is_some_and(|d| d < now)
    }
}

pub async fn load(db: &Db, case_id: i64) -> Result<Option<CaseRow>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("select {} from dispute_case where case_id = $1", case_columns("")))).bind(case_id).fetch_optional(&db.pool).await?)
}

pub async fn load_tx(tx: &mut Transaction<'static, Any>, case_id: i64) -> Result<Option<CaseRow>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("select {} from dispute_case where case_id = $1", case_columns("")))).bind(case_id).fetch_optional(&mut **tx).await?)
}

/// Appends one entry to the case's chain; returns its hash.
pub async fn append_event(tx: &mut Transaction<'static, Any>, case_id: i64, kind: &str, actor: &str, payload: &serde_json::Value) -> Result<String, DbError> {
    let last: Option<(i64, String)> = sqlx::query_as("select seq, hash from case_event where case_id = $1 order by seq desc limit 1").bind(case_id).fetch_optional(&mut **tx).await?;
    let (seq, prev) = match last {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_string()),
    };
    let at = crate::db::now_text();
    let payload = payload.to_string();
    let hash = chain::entry_hash(&prev, &EntryContent { case_id, seq, kind, actor, payload: &payload, at: &at });
    sqlx::query("insert into case_event (case_id, seq, kind, actor, payload, at, prev_hash, hash) values ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(case_id)
        .bind(seq)
        .bind(kind)
        .bind(actor)
        .bind(&payload)
        .bind(&at)
        .bind(&prev)
        .bind(&hash)
        .execute(&mut **tx)
        .await?;
    Ok(hash)
}

/// Appends an event on its own (attendance, records): a transaction of one entry.
pub async fn record_event(db: &Db, case_id: i64, kind: &str, actor: &str, payload: &serde_json::Value) -> Result<String, DbError> {
    let mut tx = db.begin().await?;
    let hash = append_event(&mut tx, case_id, kind, actor, payload).await?;
    tx.commit().await?;
    Ok(hash)
}

pub async fn events(db: &Db, case_id: i64) -> Result<Vec<StoredEntry>, DbError> {
    let rows: Vec<(i64, i64, String, String, String, String, String, String)> =
        sqlx::query_as("select case_id, seq, kind, actor, payload, at, prev_hash, hash from case_event where case_id = $1 order by seq")
            .bind(case_id)
            .fetch_all(&db.pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(case_id, seq, kind, actor, payload, at, prev_hash, hash)| StoredEntry { case_id, seq, kind, actor, payload, at, prev_hash, hash })
        .collect())
}

/// The next case number of the year: `JF2026-000123`. The counter row is the lock.
pub async fn next_case_number(tx: &mut Transaction<'static, Any>) -> Result<String, DbError> {
    let year: i64 = crate::db::now_text().get(..4).and_then(|y| y.parse().ok()).unwrap_or(2026);
    let (n,): (i64,) = sqlx::query_as(
        "insert into case_number_counter (year, last_value) values ($1, 1) \
         on conflict (year) do update set last_value = case_number_counter.last_value + 1 returning last_value",
    )
    .bind(year)
    .fetch_one(&mut **tx)
    .await?;
    Ok(format!("JF{year}-{n:06}"))
}

/// When the stage entered now falls due.
pub fn stage_due(status: CaseStatus, quick_track: bool) -> Option<String> {
    deadline::due_at(status, quick_track, SystemTime::now()).map(crate::store::staff::text_time)
}

/// The outcome of a guarded update.
pub enum Guarded {
    Done,
    /// Someone changed the case first; here is its version now.
    Stale(i64),
    Missing,
}

/// Runs `update dispute_case set <assignments>, version = version + 1, updated_at = .. where
/// case_id = .. and version = ..`; `binds` are the assignment values in order.
pub async fn guarded_update(tx: &mut Transaction<'static, Any>, case_id: i64, version: i64, assignments: &str, binds: Vec<Bind>) -> Result<Guarded, DbError> {
    let n = binds.len();
    let sql = format!(
        "update dispute_case set {assignments}, version = version + 1, updated_at = ${} where case_id = ${} and version = ${}",
        n + 1,
        n + 2,
        n + 3
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = b.bind_to(q);
    }
    let done = q.bind(crate::db::now_text()).bind(case_id).bind(version).execute(&mut **tx).await?;
    if done.rows_affected() == 1 {
        return Ok(Guarded::Done);
    }
    let current: Option<(i64,)> = sqlx::query_as("select version from dispute_case where case_id = $1").bind(case_id).fetch_optional(&mut **tx).await?;
    Ok(match current {
        Some((v,)) => Guarded::Stale(v),
        None => Guarded::Missing,
    })
}

/// A value bound into dynamic SQL.
#[derive(Debug, Clone)]
pub enum Bind {
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
    Bool(bool),
}

type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>;

impl Bind {
    pub fn bind_to<'q>(self, q: AnyQuery<'q>) -> AnyQuery<'q> {
        match self {
            Bind::Int(v) => q.bind(v),
            Bind::OptInt(v) => q.bind(v),
            Bind::Text(v) => q.bind(v),
            Bind::OptText(v) => q.bind(v),
            Bind::Bool(v) => q.bind(v),
        }
    }
    pub fn bind_to_as<'q, O>(self, q: sqlx::query::QueryAs<'q, Any, O, sqlx::any::AnyArguments>) -> sqlx::query::QueryAs<'q, Any, O, sqlx::any::AnyArguments> {
        match self {
            Bind::Int(v) => q.bind(v),
            Bind::OptInt(v) => q.bind(v),
            Bind::Text(v) => q.bind(v),
            Bind::OptText(v) => q.bind(v),
            Bind::Bool(v) => q.bind(v),
        }
    }
}

/// A `where` clause built from filters, with `$n` placeholders numbered as they are added.
#[derive(Default)]
pub struct Where {
    clauses: Vec<String>,
    pub binds: Vec<Bind>,
}

impl Where {
    /// `clause` uses `?` for its one value.
    pub fn add(&mut self, clause: &str, value: Bind) {
        self.binds.push(value);
        self.clauses.push(clause.replacen('?', &format!("${}", self.binds.len()), 1));
    }
    /// `clause` uses one `?` per value, in order.
    pub fn add_many(&mut self, clause: &str, values: Vec<Bind>) {
        let mut clause = clause.to_string();
        for v in values {
            self.binds.push(v);
            clause = clause.replacen('?', &format!("${}", self.binds.len()), 1);
        }
        self.clauses.push(clause);
    }
    pub fn add_raw(&mut self, clause: String) {
        self.clauses.push(clause);
    }
    pub fn sql(&self) -> String {
        if self.clauses.is_empty() { String::new() } else { format!(" where {}", self.clauses.join(" and ")) }
    }
}

pub fn chain_report(entries: &[StoredEntry]) -> chain::ChainReport {
    chain::verify(entries)
}
