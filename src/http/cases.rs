#![allow(clippy::type_complexity)] // row tuples mirror their select lists
//! Cases: staff registration, search and lists, detail with the timeline, edits, the state
//! machine's transitions, mediator matching and assignment, transfer, the leader taking a case,
//! the event chain and its verification, and signed links for parties.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Staff;
use super::error::{ApiError, ApiJson, ApiQuery};
use super::scope::{CaseScope, case_for};
use crate::auth::party_link::PartyGrant;
use crate::auth::policy::permission_for;
use crate::auth::{Permission, allows};
use crate::case::chain::ChainReport;
use crate::case::intake::{CaseInput, validate};
use crate::case::matching::{self, CaseFacts, Suggestion};
use crate::case::{CaseAction, CaseStatus, state};
use crate::crypto::{mask_id_number, mask_phone};
use crate::db::now_text;
use crate::store::cases::{self, Bind, CaseRow, Guarded, Where};
use crate::store::new_case::{self, Created, Origin};
use crate::store::org::OrgTree;
use crate::store::staff::unix_now;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/cases", post(register).get(list))
        .route("/api/v1/cases/{id}", get(detail).patch(edit))
        .route("/api/v1/cases/{id}/transitions", post(transition))
        .route("/api/v1/cases/{id}/matching", get(suggestions))
        .route("/api/v1/cases/{id}/assign", post(assign))
        .route("/api/v1/cases/{id}/transfer", post(transfer))
        .route("/api/v1/cases/{id}/leader", post(take_case))
        .route("/api/v1/cases/{id}/events", get(events))
        .route("/api/v1/cases/{id}/events/verify", get(verify_events))
        .route("/api/v1/cases/{id}/parties/{party_id}/link", post(party_link))
}

pub fn field_error(e: crate::case::intake::FieldError) -> ApiError {
    ApiError::Invalid { field: e.field, message: e.message }
}

/// Registers a case on behalf of a party (staff intake: counter, phone, visit).
#[utoipa::path(post, path = "/api/v1/cases", request_body = CaseInput, responses((status = 201, body = Created), (status = 422, body = super::error::ErrorBody)))]
pub async fn register(State(state): State<AppState>, staff: Staff, ApiJson(input): ApiJson<CaseInput>) -> Result<(axum::http::StatusCode, Json<Created>), ApiError> {
    staff.require(Permission::RegisterCase)?;
    validate(&input, false).map_err(field_error)?;
    if let Some(unit) = staff.0.org_unit_id
        && !OrgTree::load(&state.db).await?.contains(unit, input.org_unit_id)
    {
        return Err(ApiError::invalid("org_unit_id", "outside your organisation"));
    }
    let origin = Origin { channel: "staff".into(), external_id: None, actor: staff.actor() };
    let created = new_case::create(&state.db, &state.cipher, &input, &origin).await?.map_err(field_error)?;
    Ok((axum::http::StatusCode::CREATED, Json(created)))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    pub status: Option<String>,
    pub category: Option<String>,
    /// This org unit and everything under it.
    pub org_unit: Option<i64>,
    /// Alias of `org_unit` for a street.
    pub street: Option<i64>,
    /// Case number (exact or prefix).
    pub number: Option<String>,
    /// Party name (part of it).
    pub party: Option<String>,
    /// A party's phone (exact, any formatting).
    pub phone: Option<String>,
    /// Words in the title or summary.
    pub q: Option<String>,
    pub overdue: Option<bool>,
    pub quick_track: Option<bool>,
    pub mediator: Option<i64>,
    /// `created_at`, `-created_at` (default), `stage_due_at`, `-stage_due_at`, `case_number`, `-case_number`.
    pub sort: Option<String>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CaseSummary {
    pub case_id: i64,
    pub case_number: String,
    pub title: String,
    pub status: String,
    pub category_code: String,
    pub org_unit_id: i64,
    pub org_unit_name: String,
    pub mediator_id: Option<i64>,
    pub applicant: Option<String>,
    /// Masked: `138****5678`.
    pub applicant_phone: Option<String>,
    pub quick_track: bool,
    pub stage_due_at: Option<String>,
    pub overdue: bool,
    pub duplicate_of: Option<i64>,
    pub created_at: String,
    pub version: i64,
}

impl CaseSummary {
    /// The list line of a case: its org unit's name and the (masked) applicant beside it.
    pub fn of(c: CaseRow, org_unit_name: String, applicant: Option<String>, applicant_phone: Option<String>, now: &str) -> CaseSummary {
        CaseSummary {
            overdue: c.overdue(now),
            case_id: c.case_id,
            case_number: c.case_number,
            title: c.title,
            status: c.status,
            category_code: c.category_code,
            org_unit_id: c.org_unit_id,
            org_unit_name,
            mediator_id: c.mediator_id,
            applicant,
            applicant_phone,
            quick_track: c.quick_track,
            stage_due_at: c.stage_due_at,
            duplicate_of: c.duplicate_of,
            created_at: c.created_at,
            version: c.version,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CasePage {
    pub items: Vec<CaseSummary>,
    pub total: i64,
    pub page: u32,
    pub per_page: u32,
}

pub const MAX_PER_PAGE: u32 = 100;

/// Searches and lists the cases in the caller's scope.
#[utoipa::path(get, path = "/api/v1/cases", params(ListQuery), responses((status = 200, body = CasePage), (status = 400, body = super::error::ErrorBody)))]
pub async fn list(State(state): State<AppState>, staff: Staff, ApiQuery(q): ApiQuery<ListQuery>) -> Result<Json<CasePage>, ApiError> {
    staff.require(Permission::ReadCase)?;
    let scope = CaseScope::of(&state, &staff).await?;
    let mut w = Where::default();
    scope.restrict(&mut w);
    if let Some(s) = q.status.as_deref().filter(|s| !s.is_empty()) {
        let statuses: Result<Vec<CaseStatus>, _> = s.split(',').map(|x| CaseStatus::parse(x.trim()).ok_or(x)).collect();
        let statuses = statuses.map_err(|bad| ApiError::invalid("status", format!("unknown status {bad}")))?;
        w.add_raw(format!("c.status in ({})", statuses.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(",")));
    }
    if let Some(c) = q.category.as_deref().filter(|s| !s.is_empty()) {
        w.add("c.category_code = ?", Bind::Text(c.to_string()));
    }
    if let Some(unit) = q.org_unit.or(q.street) {
        let units = OrgTree::load(&state.db).await?.subtree(unit);
        w.add_raw(format!("c.org_unit_id in ({})", units.iter().map(|u| u.to_string()).collect::<Vec<_>>().join(",")));
    }
    if let Some(n) = q.number.as_deref().filter(|s| !s.is_empty()) {
        w.add("c.case_number like ? escape '\\'", Bind::Text(format!("{}%", crate::store::search::like_pattern(n).trim_start_matches('%').trim_end_matches('%'))));
    }
    if let Some(p) = q.party.as_deref().filter(|s| !s.is_empty()) {
        w.add("c.case_id in (select case_id from party where name like ? escape '\\')", Bind::Text(crate::store::search::like_pattern(p)));
    }
    if let Some(phone) = q.phone.as_deref().filter(|s| !s.is_empty()) {
        let index = state.cipher.blind_index("phone", phone);
        w.add("c.case_id in (select case_id from party where phone_index = ?)", Bind::Text(index));
    }
    if let Some(text) = q.q.as_deref().filter(|s| !s.trim().is_empty()) {
        let candidates = crate::store::search::candidates(&state.db, text).await?;
        crate::store::search::restrict(&mut w, text, candidates.as_ref());
    }
    let now = now_text();
    if q.overdue == Some(true) {
        w.add_raw(open_clause());
        w.add("c.stage_due_at < ?", Bind::Text(now.clone()));
    }
    if let Some(quick) = q.quick_track {
        w.add("c.quick_track = ?", Bind::Bool(quick));
    }
    if let Some(m) = q.mediator {
        w.add("c.mediator_id = ?", Bind::Int(m));
    }
    let order = match q.sort.as_deref().unwrap_or("-created_at") {
        "created_at" => "c.case_id asc",
        "-created_at" => "c.case_id desc",
        "stage_due_at" => "c.stage_due_at asc, c.case_id asc",
        "-stage_due_at" => "c.stage_due_at desc, c.case_id desc",
        "case_number" => "c.case_number asc",
        "-case_number" => "c.case_number desc",
        other => return Err(ApiError::invalid("sort", format!("cannot sort by {other}"))),
    };
    let per_page = q.per_page.unwrap_or(20).clamp(1, MAX_PER_PAGE);
    let page = q.page.unwrap_or(1).max(1);
    let where_sql = w.sql();
    let count_sql = format!("select count(*) from dispute_case c{where_sql}");
    let mut count_q = sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(count_sql));
    for b in w.binds.clone() {
        count_q = b.bind_to_as(count_q);
    }
    let (total,) = count_q.fetch_one(&state.db.pool).await?;
    let sql = format!(
        "select {}, u.name as org_unit_name from dispute_case c join org_unit u on u.org_unit_id = c.org_unit_id{where_sql} order by {order} limit {per_page} offset {}",
        cases::case_columns("c"),
        u64::from(page - 1) * u64::from(per_page)
    );
    let mut rows_q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in w.binds {
        rows_q = b.bind_to(rows_q);
    }
    let rows = rows_q.fetch_all(&state.db.pool).await?;
    let mut cases = Vec::with_capacity(rows.len());
    for row in rows {
        use sqlx::{FromRow, Row};
        let unit_name: String = row.try_get("org_unit_name")?;
        cases.push((CaseRow::from_row(&row)?, unit_name));
    }
    // Each case's first applicant, for the whole page in one query.
    let mut applicants: std::collections::HashMap<i64, (String, Option<String>)> = std::collections::HashMap::new();
    if !cases.is_empty() {
        let ids: Vec<String> = cases.iter().map(|(c, _)| c.case_id.to_string()).collect();
        let sql = format!("select case_id, name, phone_enc from party where role = 'applicant' and case_id in ({}) order by party_id", ids.join(","));
        let parties: Vec<(i64, String, Option<String>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&state.db.pool).await?;
        for (case_id, name, enc) in parties {
            applicants.entry(case_id).or_insert((name, enc));
        }
    }
    let mut items = Vec::with_capacity(cases.len());
    for (c, unit_name) in cases {
        let (applicant, phone) = match applicants.remove(&c.case_id) {
            Some((name, enc)) => (Some(name), enc.and_then(|e| state.cipher.decrypt(&e).ok()).map(|p| mask_phone(&p))),
            None => (None, None),
        };
        items.push(CaseSummary::of(c, unit_name, applicant, phone, &now));
    }
    Ok(Json(CasePage { items, total, page, per_page }))
}

pub fn open_clause() -> String {
    format!("c.status in ({})", CaseStatus::open_sql_list())
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PartyView {
    pub party_id: i64,
    pub role: String,
    pub name: String,
    pub phone: Option<String>,
    pub phone_masked: Option<String>,
    pub id_number: Option<String>,
    pub id_number_masked: Option<String>,
    pub address: String,
    pub language: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TimelineEntry {
    pub seq: i64,
    pub kind: String,
    pub actor: String,
    pub at: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub hash: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CaseDetail {
    #[serde(flatten)]
    pub case: CaseRow,
    pub org_unit_name: String,
    pub mediator_name: Option<String>,
    pub mediation_org_name: Option<String>,
    pub overdue: bool,
    /// The actions this caller may take now.
    pub actions: Vec<CaseAction>,
    pub parties: Vec<PartyView>,
    pub timeline: Vec<TimelineEntry>,
}

pub async fn parties(state: &AppState, case_id: i64, reveal: bool) -> Result<Vec<PartyView>, ApiError> {
    let rows: Vec<(i64, String, String, Option<String>, Option<String>, String, String)> =
        sqlx::query_as("select party_id, role, name, phone_enc, id_number_enc, address, language from party where case_id = $1 order by party_id")
            .bind(case_id)
            .fetch_all(&state.db.pool)
            .await?;
    let open = |v: Option<String>| -> Result<Option<String>, ApiError> { v.map(|e| state.cipher.decrypt(&e).map_err(|e| ApiError::Internal(e.into()))).transpose() };
    let mut out = Vec::new();
    for (party_id, role, name, phone, id_number, address, language) in rows {
        let phone = open(phone)?;
        let id_number = open(id_number)?;
        out.push(PartyView {
            party_id,
            role,
            name,
            phone_masked: phone.as_deref().map(mask_phone),
            id_number_masked: id_number.as_deref().map(mask_id_number),
            phone: phone.filter(|_| reveal),
            id_number: id_number.filter(|_| reveal),
            address,
            language,
        });
    }
    Ok(out)
}

pub fn timeline(entries: Vec<crate::case::chain::StoredEntry>) -> Vec<TimelineEntry> {
    entries
        .into_iter()
        .map(|e| TimelineEntry { seq: e.seq, kind: e.kind, actor: e.actor, at: e.at, payload: serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::Null), hash: e.hash })
        .collect()
}

/// Actions on the case's state machine that this role may take now.
pub fn actions_for(staff: &Staff, status: CaseStatus) -> Vec<CaseAction> {
    state::available(status).into_iter().filter(|a| allows(staff.0.role, permission_for(*a))).collect()
}

/// A case with its parties (full numbers for staff in scope), timeline and possible actions.
#[utoipa::path(get, path = "/api/v1/cases/{id}", params(("id" = i64, Path)), responses((status = 200, body = CaseDetail), (status = 404, body = super::error::ErrorBody)))]
pub async fn detail(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>) -> Result<Json<CaseDetail>, ApiError> {
    let case = case_for(&state, &staff, id, Permission::ReadCase).await?;
    let (org_unit_name,): (String,) = sqlx::query_as("select name from org_unit where org_unit_id = $1").bind(case.org_unit_id).fetch_one(&state.db.pool).await?;
    let mediator: Option<(String, String)> = match case.mediator_id {
        Some(m) => {
            sqlx::query_as("select m.name, o.name from mediator m join mediation_org o on o.mediation_org_id = m.mediation_org_id where m.mediator_id = $1")
                .bind(m)
                .fetch_optional(&state.db.pool)
                .await?
        }
        None => None,
    };
    let parties = parties(&state, id, true).await?;
    let timeline = timeline(cases::events(&state.db, id).await?);
    let now = now_text();
    Ok(Json(CaseDetail {
        overdue: case.overdue(&now),
        actions: actions_for(&staff, case.status()),
        org_unit_name,
        mediator_name: mediator.as_ref().map(|m| m.0.clone()),
        mediation_org_name: mediator.map(|m| m.1),
        parties,
        timeline,
        case,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CaseEdit {
    /// The version you read; a newer one on the server answers 409.
    pub version: i64,
    pub title: Option<String>,
    pub summary: Option<String>,
    pub category_code: Option<String>,
    pub quick_track: Option<bool>,
}

fn stale(case_id: i64, current: i64) -> ApiError {
    ApiError::conflict(
        "version_conflict",
        format!("case {case_id} was changed by someone else; reload it (version {current}) and apply your change again"),
        Some(serde_json::json!({ "version": current })),
    )
}

fn guarded(result: Guarded, case_id: i64) -> Result<(), ApiError> {
    match result {
        Guarded::Done => Ok(()),
        Guarded::Stale(v) => Err(stale(case_id, v)),
        Guarded::Missing => Err(ApiError::NotFound(format!("no case {case_id}"))),
    }
}

/// Edits the description of a case (optimistic versioning).
#[utoipa::path(patch, path = "/api/v1/cases/{id}", params(("id" = i64, Path)), request_body = CaseEdit, responses((status = 200, body = CaseRow), (status = 409, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn edit(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>, ApiJson(e): ApiJson<CaseEdit>) -> Result<Json<CaseRow>, ApiError> {
    let case = case_for(&state, &staff, id, Permission::EditCase).await?;
    if !case.status().is_open() {
        return Err(ApiError::conflict("case_finished", format!("a case that is {} can no longer be edited", case.status), None));
    }
    let mut sets = Vec::new();
    let mut binds = Vec::new();
    let mut changed = serde_json::Map::new();
    if let Some(t) = &e.title {
        if t.trim().is_empty() || t.chars().count() > crate::case::intake::MAX_TITLE {
            return Err(ApiError::invalid("title", "1 to 200 characters"));
        }
        binds.push(Bind::Text(t.trim().to_string()));
        sets.push(format!("title = ${}", binds.len()));
        changed.insert("title".into(), t.trim().into());
    }
    if let Some(s) = &e.summary {
        if s.trim().is_empty() || s.chars().count() > crate::case::intake::MAX_SUMMARY {
            return Err(ApiError::invalid("summary", "1 to 10000 characters"));
        }
        binds.push(Bind::Text(s.trim().to_string()));
        sets.push(format!("summary = ${}", binds.len()));
        changed.insert("summary".into(), serde_json::Value::Bool(true));
    }
    if let Some(c) = &e.category_code {
        if !crate::store::pool::category_active(&state.db, c).await? {
            return Err(ApiError::invalid("category_code", format!("unknown or retired category {c}")));
        }
        binds.push(Bind::Text(c.clone()));
        sets.push(format!("category_code = ${}", binds.len()));
        changed.insert("category_code".into(), c.clone().into());
    }
    if let Some(q) = e.quick_track {
        binds.push(Bind::Bool(q));
        sets.push(format!("quick_track = ${}", binds.len()));
        changed.insert("quick_track".into(), q.into());
    }
    if sets.is_empty() {
        return Err(ApiError::BadRequest("nothing to change".into()));
    }
    let mut tx = state.db.begin().await?;
    guarded(cases::guarded_update(&mut tx, id, e.version, &sets.join(", "), binds).await?, id)?;
    cases::append_event(&mut tx, id, "edited", &staff.actor(), &serde_json::Value::Object(changed)).await?;
    let row = cases::load_tx(&mut tx, id).await?.ok_or_else(|| ApiError::NotFound(format!("no case {id}")))?;
    if e.title.is_some() || e.summary.is_some() {
        crate::store::search::index_case(&mut tx, id, &row.title, &row.summary).await?;
    }
    tx.commit().await?;
    Ok(Json(row))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct TransitionRequest {
    pub action: CaseAction,
    pub version: i64,
    /// Required for refuse, fail, withdraw, reopen and transfer.
    pub reason: Option<String>,
}

/// Changes the status through the state machine, with the record it needs, in one transaction.
#[allow(clippy::too_many_arguments)]
pub async fn change_status(
    state: &AppState,
    staff: &Staff,
    case: &CaseRow,
    action: CaseAction,
    version: i64,
    reason: Option<&str>,
    sets: Vec<String>,
    binds: Vec<Bind>,
    payload: serde_json::Map<String, serde_json::Value>,
) -> Result<CaseRow, ApiError> {
    let mut tx = state.db.begin().await?;
    let row = change_status_in(&mut tx, staff, case, action, version, reason, sets, binds, payload).await?;
    tx.commit().await?;
    Ok(row)
}

/// As [`change_status`], inside the caller's transaction (which may write more beside it).
#[allow(clippy::too_many_arguments)]
pub async fn change_status_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    staff: &Staff,
    case: &CaseRow,
    action: CaseAction,
    version: i64,
    reason: Option<&str>,
    mut sets: Vec<String>,
    mut binds: Vec<Bind>,
    mut payload: serde_json::Map<String, serde_json::Value>,
) -> Result<CaseRow, ApiError> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    if action.needs_reason() && reason.is_none() {
        return Err(ApiError::invalid("reason", format!("a reason is required to {}", action.as_str())));
    }
    if reason.is_some_and(|r| r.chars().count() > 2000) {
        return Err(ApiError::invalid("reason", "at most 2000 characters"));
    }
    let from = case.status();
    let to = state::apply(from, action)?;
    binds.push(Bind::Text(to.as_str().to_string()));
    sets.push(format!("status = ${}", binds.len()));
    if to != from || action == CaseAction::Transfer {
        binds.push(Bind::OptText(cases::stage_due(to, case.quick_track)));
        sets.push(format!("stage_due_at = ${}", binds.len()));
        sets.push("escalation_level = 0".into());
    }
    if action == CaseAction::Reopen {
        sets.push("reopen_count = reopen_count + 1".into());
    }
    payload.insert("from".into(), from.as_str().into());
    payload.insert("to".into(), to.as_str().into());
    if let Some(r) = reason {
        payload.insert("reason".into(), r.into());
    }
    guarded(cases::guarded_update(tx, case.case_id, version, &sets.join(", "), binds).await?, case.case_id)?;
    cases::append_event(tx, case.case_id, action.as_str(), &staff.actor(), &serde_json::Value::Object(payload)).await?;
    cases::load_tx(tx, case.case_id).await?.ok_or_else(|| ApiError::NotFound(format!("no case {}", case.case_id)))
}

/// Moves a case along the state machine: accept, refuse, start_mediation, reach_agreement, fail,
/// close, supervise, withdraw, reopen. (Assignment, transfer and follow-up have their own endpoints.)
#[utoipa::path(post, path = "/api/v1/cases/{id}/transitions", params(("id" = i64, Path)), request_body = TransitionRequest, responses((status = 200, body = CaseRow), (status = 409, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn transition(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>, ApiJson(req): ApiJson<TransitionRequest>) -> Result<Json<CaseRow>, ApiError> {
    let case = case_for(&state, &staff, id, permission_for(req.action)).await?;
    if matches!(req.action, CaseAction::Assign | CaseAction::Transfer | CaseAction::FollowUp) {
        return Err(ApiError::invalid("action", format!("{} has its own endpoint (/assign, /transfer, /follow-ups)", req.action.as_str())));
    }
    let row = change_status(&state, &staff, &case, req.action, req.version, req.reason.as_deref(), vec![], vec![], Default::default()).await?;
    Ok(Json(row))
}

async fn rank_for(state: &AppState, case: &CaseRow) -> Result<Vec<Suggestion>, ApiError> {
    let tree = OrgTree::load(&state.db).await?;
    let languages: Vec<(String,)> = sqlx::query_as("select distinct language from party where case_id = $1").bind(case.case_id).fetch_all(&state.db.pool).await?;
    let facts = CaseFacts { category_code: case.category_code.clone(), org_path: tree.path_up(case.org_unit_id), languages: languages.into_iter().map(|l| l.0).collect() };
    Ok(matching::rank(&facts, &crate::store::pool::candidates(&state.db).await?))
}

/// Ranked mediator suggestions for the case, each with the reasons behind its score.
#[utoipa::path(get, path = "/api/v1/cases/{id}/matching", params(("id" = i64, Path)), responses((status = 200, body = Vec<Suggestion>)))]
pub async fn suggestions(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>) -> Result<Json<Vec<Suggestion>>, ApiError> {
    let case = case_for(&state, &staff, id, Permission::TriageCase).await?;
    Ok(Json(rank_for(&state, &case).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct AssignRequest {
    pub mediator_id: i64,
    pub version: i64,
}

/// Assigns (or reassigns) a mediator; the event keeps the matching reasons shown at the time.
#[utoipa::path(post, path = "/api/v1/cases/{id}/assign", params(("id" = i64, Path)), request_body = AssignRequest, responses((status = 200, body = CaseRow), (status = 409, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn assign(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>, ApiJson(req): ApiJson<AssignRequest>) -> Result<Json<CaseRow>, ApiError> {
    let case = case_for(&state, &staff, id, Permission::TriageCase).await?;
    let mediator: Option<(i64, String, i64)> = sqlx::query_as("select mediation_org_id, name, case when available then 1 else 0 end from mediator where mediator_id = $1").bind(req.mediator_id).fetch_optional(&state.db.pool).await?;
    let Some((org, name, available)) = mediator else { return Err(ApiError::invalid("mediator_id", format!("no mediator {}", req.mediator_id))) };
    if available == 0 {
        return Err(ApiError::invalid("mediator_id", format!("{name} is not available")));
    }
    let ranked = rank_for(&state, &case).await?;
    let position = ranked.iter().position(|s| s.mediator_id == req.mediator_id);
    let mut payload = serde_json::Map::new();
    payload.insert("mediator_id".into(), req.mediator_id.into());
    payload.insert("mediator_name".into(), name.into());
    payload.insert("previous_mediator_id".into(), case.mediator_id.into());
    payload.insert("rank".into(), position.map(|p| p + 1).into());
    payload.insert("reasons".into(), serde_json::to_value(position.map(|p| &ranked[p].reasons)).unwrap_or_default());
    let row = change_status(
        &state,
        &staff,
        &case,
        CaseAction::Assign,
        req.version,
        None,
        vec!["mediator_id = $1".into(), "mediation_org_id = $2".into()],
        vec![Bind::Int(req.mediator_id), Bind::Int(org)],
        payload,
    )
    .await?;
    Ok(Json(row))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct TransferRequest {
    pub org_unit_id: i64,
    pub reason: String,
    pub version: i64,
}

/// Transfers a case to another org unit (转送); an assigned mediator is released.
#[utoipa::path(post, path = "/api/v1/cases/{id}/transfer", params(("id" = i64, Path)), request_body = TransferRequest, responses((status = 200, body = CaseRow), (status = 409, body = super::error::ErrorBody)))]
pub async fn transfer(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>, ApiJson(req): ApiJson<TransferRequest>) -> Result<Json<CaseRow>, ApiError> {
    let case = case_for(&state, &staff, id, Permission::TriageCase).await?;
    let tree = OrgTree::load(&state.db).await?;
    if tree.get(req.org_unit_id).is_none() {
        return Err(ApiError::invalid("org_unit_id", format!("no org unit {}", req.org_unit_id)));
    }
    if req.org_unit_id == case.org_unit_id {
        return Err(ApiError::invalid("org_unit_id", "the case is already there"));
    }
    let mut payload = serde_json::Map::new();
    payload.insert("from_org_unit_id".into(), case.org_unit_id.into());
    payload.insert("to_org_unit_id".into(), req.org_unit_id.into());
    let row = change_status(
        &state,
        &staff,
        &case,
        CaseAction::Transfer,
        req.version,
        Some(&req.reason),
        vec!["org_unit_id = $1".into(), "mediator_id = null".into(), "mediation_org_id = null".into()],
        vec![Bind::Int(req.org_unit_id)],
        payload,
    )
    .await?;
    Ok(Json(row))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct VersionOnly {
    pub version: i64,
}

/// A leader takes the case personally (领导包案).
#[utoipa::path(post, path = "/api/v1/cases/{id}/leader", params(("id" = i64, Path)), request_body = VersionOnly, responses((status = 200, body = CaseRow), (status = 409, body = super::error::ErrorBody)))]
pub async fn take_case(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>, ApiJson(req): ApiJson<VersionOnly>) -> Result<Json<CaseRow>, ApiError> {
    let case = case_for(&state, &staff, id, Permission::SuperviseCase).await?;
    if !case.status().is_open() {
        return Err(ApiError::conflict("case_finished", "only an open case can be taken", None));
    }
    let mut tx = state.db.begin().await?;
    guarded(cases::guarded_update(&mut tx, id, req.version, "leader_staff_id = $1", vec![Bind::Int(staff.0.staff_account_id)]).await?, id)?;
    cases::append_event(&mut tx, id, "leader_assigned", &staff.actor(), &serde_json::json!({ "leader_staff_id": staff.0.staff_account_id, "name": staff.0.display_name })).await?;
    let row = cases::load_tx(&mut tx, id).await?.ok_or_else(|| ApiError::NotFound(format!("no case {id}")))?;
    tx.commit().await?;
    Ok(Json(row))
}

/// The case's event log, oldest first.
#[utoipa::path(get, path = "/api/v1/cases/{id}/events", params(("id" = i64, Path)), responses((status = 200, body = Vec<TimelineEntry>)))]
pub async fn events(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>) -> Result<Json<Vec<TimelineEntry>>, ApiError> {
    case_for(&state, &staff, id, Permission::ReadCase).await?;
    Ok(Json(timeline(cases::events(&state.db, id).await?)))
}

/// Re-hashes the case's event chain and says whether anything was altered.
#[utoipa::path(get, path = "/api/v1/cases/{id}/events/verify", params(("id" = i64, Path)), responses((status = 200, body = ChainReport)))]
pub async fn verify_events(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>) -> Result<Json<ChainReport>, ApiError> {
    case_for(&state, &staff, id, Permission::ReadCase).await?;
    Ok(Json(cases::chain_report(&cases::events(&state.db, id).await?)))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LinkRequest {
    /// Also text the link to the party's phone.
    #[serde(default)]
    pub send_sms: bool,
    /// Days the link stays valid (default 30, at most 90).
    pub days: Option<u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PartyLinkResponse {
    pub url: String,
    pub token: String,
    pub expires_unix: u64,
}

pub const PARTY_LINK_MAX_DAYS: u64 = 90;

/// A signed link through which a party follows their own case without an account.
#[utoipa::path(post, path = "/api/v1/cases/{id}/parties/{party_id}/link", params(("id" = i64, Path), ("party_id" = i64, Path)), request_body = LinkRequest, responses((status = 200, body = PartyLinkResponse)))]
pub async fn party_link(State(state): State<AppState>, staff: Staff, Path((id, party_id)): Path<(i64, i64)>, ApiJson(req): ApiJson<LinkRequest>) -> Result<Json<PartyLinkResponse>, ApiError> {
    let case = case_for(&state, &staff, id, Permission::ReadCase).await?;
    if !(allows(staff.0.role, Permission::TriageCase) || allows(staff.0.role, Permission::MediateCase)) {
        return Err(ApiError::forbidden());
    }
    let party: Option<(Option<String>,)> = sqlx::query_as("select phone_enc from party where party_id = $1 and case_id = $2").bind(party_id).bind(id).fetch_optional(&state.db.pool).await?;
    let Some((phone,)) = party else { return Err(ApiError::NotFound(format!("no party {party_id} on case {id}"))) };
    let days = req.days.unwrap_or(30);
    if days == 0 || days > PARTY_LINK_MAX_DAYS {
        return Err(ApiError::invalid("days", format!("between 1 and {PARTY_LINK_MAX_DAYS}")));
    }
    let expires_unix = unix_now() + days * 86_400;
    let token = state.party_links.sign(PartyGrant { case_id: id, party_id, expires_unix });
    let url = format!("{}/case.html#{}", state.public_url, token);
    if req.send_sms {
        let Some(phone) = phone.and_then(|p| state.cipher.decrypt(&p).ok()) else { return Err(ApiError::invalid("send_sms", "this party has no phone number")) };
        state.sms.send(&phone, &format!("【解纷】您的案件{}的进度查询链接：{url}", case.case_number));
    }
    cases::record_event(&state.db, id, "party_link_issued", &staff.actor(), &serde_json::json!({ "party_id": party_id, "expires_unix": expires_unix, "sms": req.send_sms })).await?;
    Ok(Json(PartyLinkResponse { url, token, expires_unix }))
}
