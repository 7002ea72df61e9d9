//! Work on a case around the sessions: the three assessments (family, psychological, legal),
//! the follow-up visit after closure, and the leaders' supervision queue.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Staff;
use super::cases::{CaseSummary, change_status_in, open_clause};
use super::error::{ApiError, ApiJson};
use super::scope::{CaseScope, case_for};
use crate::auth::{Permission, StaffRole};
use crate::case::CaseAction;
use crate::db::now_text;
use crate::store::cases::{self, Bind, CaseRow, Where};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/cases/{id}/assessments", post(add_assessment).get(list_assessments))
        .route("/api/v1/cases/{id}/follow-ups", post(follow_up).get(list_follow_ups))
        .route("/api/v1/supervision", get(supervision))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct AssessmentInput {
    /// `family`, `psychological` or `legal`.
    pub kind: String,
    pub summary: String,
    /// `low`, `medium` or `high`.
    pub risk_level: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Assessment {
    pub case_assessment_id: i64,
    pub kind: String,
    pub assessor_staff_id: i64,
    /// `None` where the caller may not read it (a psychological result is for the case's
    /// mediator and its assessor only).
    pub summary: Option<String>,
    pub risk_level: Option<String>,
    pub created_at: String,
}

/// Adds an assessment to the case (assessors only).
#[utoipa::path(post, path = "/api/v1/cases/{id}/assessments", params(("id" = i64, Path)), request_body = AssessmentInput, responses((status = 201, body = Assessment), (status = 422, body = super::error::ErrorBody)))]
pub async fn add_assessment(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>, ApiJson(req): ApiJson<AssessmentInput>) -> Result<(axum::http::StatusCode, Json<Assessment>), ApiError> {
    let case = case_for(&state, &staff, id, Permission::AssessCase).await?;
    if !matches!(req.kind.as_str(), "family" | "psychological" | "legal") {
        return Err(ApiError::invalid("kind", "family, psychological or legal"));
    }
    if !matches!(req.risk_level.as_str(), "low" | "medium" | "high") {
        return Err(ApiError::invalid("risk_level", "low, medium or high"));
    }
    let summary = req.summary.trim();
    if summary.is_empty() || summary.chars().count() > 20_000 {
        return Err(ApiError::invalid("summary", "1 to 20000 characters"));
    }
    let now = now_text();
    let mut tx = state.db.begin().await?;
    let (aid,): (i64,) = sqlx::query_as(
        "insert into case_assessment (case_id, kind, assessor_staff_id, summary, risk_level, created_at) values ($1, $2, $3, $4, $5, $6) returning case_assessment_id",
    )
    .bind(case.case_id)
    .bind(&req.kind)
    .bind(staff.0.staff_account_id)
    .bind(summary)
    .bind(&req.risk_level)
    .bind(&now)
    .fetch_one(&mut *tx)
    .await?;
    // The log records that an assessment exists, never its content (a psychological result is health data).
    cases::append_event(&mut tx, case.case_id, "assessment_added", &staff.actor(), &serde_json::json!({ "case_assessment_id": aid, "kind": req.kind })).await?;
    tx.commit().await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(Assessment { case_assessment_id: aid, kind: req.kind, assessor_staff_id: staff.0.staff_account_id, summary: Some(summary.to_string()), risk_level: Some(req.risk_level), created_at: now }),
    ))
}

/// Whether `staff` may read an assessment of `kind` written by `author` on `case`.
pub fn may_read_assessment(staff: &Staff, case: &CaseRow, kind: &str, author: i64) -> bool {
    if kind != "psychological" {
        return true;
    }
    author == staff.0.staff_account_id || (staff.0.role.is_case_worker() && staff.0.mediator_id.is_some() && staff.0.mediator_id == case.mediator_id)
}

/// The case's assessments; psychological results redacted for everyone but its mediator and assessor.
#[utoipa::path(get, path = "/api/v1/cases/{id}/assessments", params(("id" = i64, Path)), responses((status = 200, body = Vec<Assessment>)))]
pub async fn list_assessments(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>) -> Result<Json<Vec<Assessment>>, ApiError> {
    let case = case_for(&state, &staff, id, Permission::ReadCase).await?;
    let rows: Vec<(i64, String, i64, String, String, String)> =
        sqlx::query_as("select case_assessment_id, kind, assessor_staff_id, summary, risk_level, created_at from case_assessment where case_id = $1 order by case_assessment_id")
            .bind(id)
            .fetch_all(&state.db.pool)
            .await?;
    Ok(Json(
        rows.into_iter()
            .map(|(aid, kind, author, summary, risk, created_at)| {
                let readable = may_read_assessment(&staff, &case, &kind, author);
                Assessment { case_assessment_id: aid, assessor_staff_id: author, summary: readable.then_some(summary), risk_level: readable.then_some(risk), kind, created_at }
            })
            .collect(),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct FollowUpInput {
    pub version: i64,
    /// Was the agreement performed: `yes`, `partly`, `no`.
    pub performed: String,
    /// 1 (very unsatisfied) to 5 (very satisfied).
    pub satisfaction: i64,
    #[serde(default)]
    pub notes: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct FollowUp {
    pub follow_up_id: i64,
    pub performed: String,
    pub satisfaction: i64,
    pub notes: String,
    pub staff_account_id: i64,
    pub created_at: String,
}

/// Records the follow-up visit (回访) of a closed case.
#[utoipa::path(post, path = "/api/v1/cases/{id}/follow-ups", params(("id" = i64, Path)), request_body = FollowUpInput, responses((status = 200, body = CaseRow), (status = 409, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn follow_up(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>, ApiJson(req): ApiJson<FollowUpInput>) -> Result<Json<CaseRow>, ApiError> {
    let case = case_for(&state, &staff, id, Permission::FollowUpCase).await?;
    if !matches!(req.performed.as_str(), "yes" | "partly" | "no") {
        return Err(ApiError::invalid("performed", "yes, partly or no"));
    }
    if !(1..=5).contains(&req.satisfaction) {
        return Err(ApiError::invalid("satisfaction", "1 to 5"));
    }
    if req.notes.chars().count() > 5_000 {
        return Err(ApiError::invalid("notes", "at most 5000 characters"));
    }
    let mut payload = serde_json::Map::new();
    payload.insert("performed".into(), req.performed.clone().into());
    payload.insert("satisfaction".into(), req.satisfaction.into());
    let mut tx = state.db.begin().await?;
    let row = change_status_in(&mut tx, &staff, &case, CaseAction::FollowUp, req.version, None, vec![], vec![], payload).await?;
    sqlx::query("insert into follow_up (case_id, performed, satisfaction, notes, staff_account_id, created_at) values ($1, $2, $3, $4, $5, $6)")
        .bind(id)
        .bind(&req.performed)
        .bind(req.satisfaction)
        .bind(req.notes.trim())
        .bind(staff.0.staff_account_id)
        .bind(now_text())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Json(row))
}

/// The case's follow-up visits.
#[utoipa::path(get, path = "/api/v1/cases/{id}/follow-ups", params(("id" = i64, Path)), responses((status = 200, body = Vec<FollowUp>)))]
pub async fn list_follow_ups(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>) -> Result<Json<Vec<FollowUp>>, ApiError> {
    case_for(&state, &staff, id, Permission::ReadCase).await?;
    let rows: Vec<(i64, String, i64, String, i64, String)> =
        sqlx::query_as("select follow_up_id, performed, satisfaction, notes, staff_account_id, created_at from follow_up where case_id = $1 order by follow_up_id")
            .bind(id)
            .fetch_all(&state.db.pool)
            .await?;
    Ok(Json(
        rows.into_iter()
            .map(|(follow_up_id, performed, satisfaction, notes, staff_account_id, created_at)| FollowUp { follow_up_id, performed, satisfaction, notes, staff_account_id, created_at })
            .collect(),
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SupervisionItem {
    #[serde(flatten)]
    pub case: CaseSummary,
    /// `overdue`, `unsatisfied`, `not_performed`, `reopened`.
    pub reasons: Vec<String>,
}

/// The supervision queue (督查问效): overdue cases, unsatisfied or unperformed follow-ups
/// awaiting supervision, reopened cases; in the caller's scope.
#[utoipa::path(get, path = "/api/v1/supervision", responses((status = 200, body = Vec<SupervisionItem>)))]
pub async fn supervision(State(state): State<AppState>, staff: Staff) -> Result<Json<Vec<SupervisionItem>>, ApiError> {
    if !matches!(staff.0.role, StaffRole::SystemAdmin | StaffRole::Leader | StaffRole::DistrictCoordinator) {
        return Err(ApiError::forbidden());
    }
    let scope = CaseScope::of(&state, &staff).await?;
    let now = now_text();
    let mut w = Where::default();
    scope.restrict(&mut w);
    w.add_many(
        &format!(
            "(({} and c.stage_due_at < ?) or (c.reopen_count > 0 and {}) or (c.status = 'followed_up' and exists \
             (select 1 from follow_up f where f.case_id = c.case_id and (f.satisfaction <= 2 or f.performed = 'no'))))",
            open_clause(),
            open_clause()
        ),
        vec![Bind::Text(now.clone())],
    );
    let sql = format!(
        "select {} from dispute_case c{} order by c.stage_due_at asc, c.case_id asc limit 500",
        cases::case_columns("c"),
        w.sql()
    );
    let mut q = sqlx::query_as::<_, CaseRow>(sqlx::AssertSqlSafe(sql));
    for b in w.binds {
        q = b.bind_to_as(q);
    }
    let rows = q.fetch_all(&state.db.pool).await?;
    let mut out = Vec::new();
    for c in rows {
        let mut reasons = Vec::new();
        if c.overdue(&now) {
            reasons.push("overdue".to_string());
        }
        if c.reopen_count > 0 && c.status().is_open() {
            reasons.push("reopened".to_string());
        }
        let last: Option<(String, i64)> = sqlx::query_as("select performed, satisfaction from follow_up where case_id = $1 order by follow_up_id desc limit 1").bind(c.case_id).fetch_optional(&state.db.pool).await?;
        if c.status == "followed_up"
            && let Some((performed, satisfaction)) = last
        {
            if satisfaction <= 2 {
                reasons.push("unsatisfied".to_string());
            }
            if performed == "no" {
                reasons.push("not_performed".to_string());
            }
        }
        let (unit,): (String,) = sqlx::query_as("select name from org_unit where org_unit_id = $1").bind(c.org_unit_id).fetch_one(&state.db.pool).await?;
        out.push(SupervisionItem {
            reasons,
            case: CaseSummary::of(c, unit, None, None, &now),
        });
    }
    Ok(Json(out))
}
