//! The party's side: ask for a one-time code by case number and phone, exchange it for a signed
//! link, and follow the case (what happened, what comes next, by when, sessions to join).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::PartyAccess;
use super::error::{ApiError, ApiJson};
use crate::auth::party_link::PartyGrant;
use crate::case::CaseStatus;
use crate::crypto::{mask_phone, normalise, valid_phone};
use crate::db::now_text;
use crate::store::cases;
use crate::store::staff::{text_time, token_hash, unix_now};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/party/codes", post(request_code))
        .route("/api/v1/party/verify", post(verify_code))
        .route("/api/v1/party/case", get(my_case))
}

pub const CODE_TTL_SECS: u64 = 10 * 60;
pub const CODE_ATTEMPTS: i64 = 5;
/// One code per party per minute, whatever is asked.
pub const CODE_INTERVAL_SECS: u64 = 60;
pub const PARTY_SESSION_DAYS: u64 = 30;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CodeRequest {
    pub case_number: String,
    pub phone: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CodeAccepted {
    /// Always the same answer, so that nobody learns which case/phone pairs exist.
    pub message: &'static str,
}

async fn party_by_phone(state: &AppState, case_number: &str, phone: &str) -> Result<Option<(i64, i64)>, ApiError> {
    let index = state.cipher.blind_index("phone", phone);
    Ok(sqlx::query_as("select p.case_id, p.party_id from party p join dispute_case c on c.case_id = p.case_id where c.case_number = $1 and p.phone_index = $2 order by p.party_id limit 1")
        .bind(case_number.trim())
        .bind(index)
        .fetch_optional(&state.db.pool)
        .await?)
}

/// Sends a 6-digit code to the party's phone if it belongs to the case.
#[utoipa::path(post, path = "/api/v1/party/codes", request_body = CodeRequest, responses((status = 202, body = CodeAccepted), (status = 422, body = super::error::ErrorBody)))]
pub async fn request_code(State(state): State<AppState>, ApiJson(req): ApiJson<CodeRequest>) -> Result<(axum::http::StatusCode, Json<CodeAccepted>), ApiError> {
    if !valid_phone(&req.phone) {
        return Err(ApiError::invalid("phone", "an 11-digit mobile number"));
    }
    if req.case_number.len() > 32 {
        return Err(ApiError::invalid("case_number", "not a case number"));
    }
    let accepted = (axum::http::StatusCode::ACCEPTED, Json(CodeAccepted { message: "if the number belongs to the case, a code is on its way" }));
    let Some((_, party_id)) = party_by_phone(&state, &req.case_number, &req.phone).await? else { return Ok(accepted) };
    let recent = text_time(std::time::SystemTime::now() - std::time::Duration::from_secs(CODE_INTERVAL_SECS));
    let (n,): (i64,) = sqlx::query_as("select count(*) from party_access_code where party_id = $1 and created_at > $2").bind(party_id).bind(&recent).fetch_one(&state.db.pool).await?;
    if n > 0 {
        return Err(ApiError::TooManyRequests(format!("a code was sent less than {CODE_INTERVAL_SECS} seconds ago")));
    }
    let code = crate::auth::one_time_code();
    sqlx::query("insert into party_access_code (party_id, code_hash, attempts, expires_at, created_at) values ($1, $2, 0, $3, $4)")
        .bind(party_id)
        .bind(token_hash(&format!("{party_id}:{code}")))
        .bind(text_time(std::time::SystemTime::now() + std::time::Duration::from_secs(CODE_TTL_SECS)))
        .bind(now_text())
        .execute(&state.db.pool)
        .await?;
    state.sms.send(&normalise(&req.phone), &format!("【解纷】您的验证码是{code}，{}分钟内有效。", CODE_TTL_SECS / 60));
    Ok(accepted)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct VerifyRequest {
    pub case_number: String,
    pub phone: String,
    pub code: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PartyToken {
    pub token: String,
    pub expires_unix: u64,
}

/// Exchanges a one-time code for the party's access token.
#[utoipa::path(post, path = "/api/v1/party/verify", request_body = VerifyRequest, responses((status = 200, body = PartyToken), (status = 401, body = super::error::ErrorBody)))]
pub async fn verify_code(State(state): State<AppState>, ApiJson(req): ApiJson<VerifyRequest>) -> Result<Json<PartyToken>, ApiError> {
    let wrong = || ApiError::Unauthenticated("the code is wrong or has expired; ask for a new one".into());
    if !valid_phone(&req.phone) || req.code.len() != 6 {
        return Err(wrong());
    }
    let Some((case_id, party_id)) = party_by_phone(&state, &req.case_number, &req.phone).await? else { return Err(wrong()) };
    let now = now_text();
    let latest: Option<(i64, String, i64)> = sqlx::query_as(
        "select party_access_code_id, code_hash, attempts from party_access_code where party_id = $1 and used_at is null and expires_at > $2 order by party_access_code_id desc limit 1",
    )
    .bind(party_id)
    .bind(&now)
    .fetch_optional(&state.db.pool)
    .await?;
    let Some((code_id, hash, attempts)) = latest else { return Err(wrong()) };
    if attempts >= CODE_ATTEMPTS {
        return Err(wrong());
    }
    if token_hash(&format!("{party_id}:{}", req.code.trim())) != hash {
        sqlx::query("update party_access_code set attempts = attempts + 1 where party_access_code_id = $1").bind(code_id).execute(&state.db.pool).await?;
        return Err(wrong());
    }
    // Single use: the update only succeeds for the first request that gets here.
    let used = sqlx::query("update party_access_code set used_at = $1 where party_access_code_id = $2 and used_at is null").bind(&now).bind(code_id).execute(&state.db.pool).await?;
    if used.rows_affected() != 1 {
        return Err(wrong());
    }
    let expires_unix = unix_now() + PARTY_SESSION_DAYS * 86_400;
    cases::record_event(&state.db, case_id, "party_signed_in", &format!("party:{party_id}"), &serde_json::json!({ "via": "sms_code" })).await?;
    Ok(Json(PartyToken { token: state.party_links.sign(PartyGrant { case_id, party_id, expires_unix }), expires_unix }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ProgressStep {
    pub kind: String,
    pub at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PartySession {
    pub session_id: i64,
    pub scheduled_at: String,
    pub status: String,
    /// This party's join link, while the session can be joined.
    pub join_url: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PartyCaseView {
    pub case_number: String,
    pub title: String,
    pub status: String,
    pub my_party_id: i64,
    pub my_name: String,
    pub my_role: String,
    pub my_phone: Option<String>,
    pub mediator_name: Option<String>,
    /// What happened, oldest first (internal entries such as assessments are left out).
    pub steps: Vec<ProgressStep>,
    /// What comes next (a code the page translates) and by when.
    pub next_step: Option<String>,
    pub due_at: Option<String>,
    pub sessions: Vec<PartySession>,
    /// Judicial confirmation or litigation at the court, and where each stands.
    pub court: Vec<PartyCourtStatus>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PartyCourtStatus {
    /// `confirmation` or `filing`.
    pub kind: String,
    pub status: String,
    pub court_ref: Option<String>,
    pub reason: Option<String>,
    /// Materials the court asked for.
    pub missing: Option<Vec<String>>,
}

/// Kinds of events a party sees on their progress page.
const PUBLIC_EVENTS: &[&str] = &[
    "registered",
    "accept",
    "refuse",
    "assign",
    "transfer",
    "start_mediation",
    "session_scheduled",
    "session_started",
    "session_ended",
    "recording_started",
    "recording_stopped",
    "reach_agreement",
    "fail",
    "close",
    "follow_up",
    "withdraw",
    "reopen",
    "agreement_effective",
    "confirmation_submitted",
    "filing_submitted",
    "court_accepted",
    "court_not_accepted",
    "court_confirmed",
    "court_rejected",
    "court_filed",
    "court_materials_missing",
];

fn next_step(status: CaseStatus) -> Option<&'static str> {
    Some(match status {
        CaseStatus::Registered => "await_acceptance",
        CaseStatus::Accepted => "await_mediator",
        CaseStatus::Assigned => "await_session",
        CaseStatus::Mediating => "attend_mediation",
        CaseStatus::AgreementReached => "perform_agreement",
        CaseStatus::MediationFailed => "consider_litigation",
        CaseStatus::Closed => "await_follow_up",
        _ => return None,
    })
}

/// The party's view of their own case.
#[utoipa::path(get, path = "/api/v1/party/case", responses((status = 200, body = PartyCaseView), (status = 401, body = super::error::ErrorBody)))]
pub async fn my_case(State(state): State<AppState>, PartyAccess(grant): PartyAccess) -> Result<Json<PartyCaseView>, ApiError> {
    let case = cases::load(&state.db, grant.case_id).await?.ok_or_else(|| ApiError::NotFound("the case no longer exists".into()))?;
    let me: Option<(String, String, Option<String>)> =
        sqlx::query_as("select name, role, phone_enc from party where party_id = $1 and case_id = $2").bind(grant.party_id).bind(grant.case_id).fetch_optional(&state.db.pool).await?;
    let (my_name, my_role, phone) = me.ok_or_else(|| ApiError::NotFound("you are no longer a party of this case".into()))?;
    let mediator: Option<(String,)> = match case.mediator_id {
        Some(m) => sqlx::query_as("select name from mediator where mediator_id = $1").bind(m).fetch_optional(&state.db.pool).await?,
        None => None,
    };
    let steps = cases::events(&state.db, case.case_id)
        .await?
        .into_iter()
        .filter(|e| PUBLIC_EVENTS.contains(&e.kind.as_str()))
        .map(|e| ProgressStep { kind: e.kind, at: e.at })
        .collect();
    let session_ids: Vec<(i64,)> = sqlx::query_as("select s.session_id from video_session s join session_invitee i on i.session_id = s.session_id where s.case_id = $1 and i.party_id = $2 order by s.session_id")
        .bind(case.case_id)
        .bind(grant.party_id)
        .fetch_all(&state.db.pool)
        .await?;
    let mut sessions = Vec::new();
    for (sid,) in session_ids {
        let view = super::sessions::load_view(&state, sid).await?;
        let join_url = match view.invitees.iter().find(|i| i.party_id == Some(grant.party_id)) {
            Some(inv) if view.status != "ended" && case.status().is_open() => Some(super::sessions::mint_link(&state, &view, inv)?.url),
            _ => None,
        };
        sessions.push(PartySession { session_id: sid, scheduled_at: view.scheduled_at, status: view.status, join_url });
    }
    let court: Vec<(String, String, Option<String>, Option<String>, Option<String>)> =
        sqlx::query_as("select kind, status, court_ref, reason, missing from court_package where case_id = $1 order by created_at").bind(case.case_id).fetch_all(&state.db.pool).await?;
    let court = court
        .into_iter()
        .map(|(kind, status, court_ref, reason, missing)| PartyCourtStatus { kind, status, court_ref, reason, missing: missing.and_then(|m| serde_json::from_str(&m).ok()) })
        .collect();
    let status = case.status();
    Ok(Json(PartyCaseView {
        court,
        case_number: case.case_number,
        title: case.title,
        status: case.status,
        my_party_id: grant.party_id,
        my_name,
        my_role,
        my_phone: phone.and_then(|p| state.cipher.decrypt(&p).ok()).map(|p| mask_phone(&p)),
        mediator_name: mediator.map(|m| m.0),
        steps,
        next_step: next_step(status).map(String::from),
        due_at: case.stage_due_at.filter(|_| status.is_open()),
        sessions,
    }))
}
