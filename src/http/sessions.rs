#![allow(clippy::type_complexity)] // row tuples mirror their select lists
//! Video sessions of a case: scheduling (mode, lobby, recording, case conference), a join link
//! and QR code per invitee (a signaling join token), the live state and attendance history from
//! signaling events, and the records written during a session (minutes, conference conclusions).

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use jiefen_signaling::{Role, TokenRequest};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Staff;
use super::error::{ApiError, ApiJson, ApiQuery};
use super::qr::{self, QrQuery};
use super::scope::case_for;
use crate::auth::Permission;
use crate::db::now_text;
use crate::store::cases;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/cases/{id}/sessions", post(schedule).get(list_for_case))
        .route("/api/v1/sessions/{id}", get(detail))
        .route("/api/v1/sessions/{id}/links", get(links))
        .route("/api/v1/sessions/{id}/invitees/{invitee_id}/qr", get(invitee_qr))
        .route("/api/v1/sessions/{id}/records", post(add_record))
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct InviteeInput {
    /// A party of the case (joins as `party`).
    pub party_id: Option<i64>,
    /// A staff member (joins as `mediator` or `official`).
    pub staff_account_id: Option<i64>,
    /// A guest (an official of another department, an interpreter) by name.
    pub name: Option<String>,
    /// `party`, `mediator`, `official` or `observer`; defaults from who the invitee is.
    pub role: Option<String>,
    /// For case conferences: the department the official speaks for.
    pub department: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ScheduleRequest {
    /// `one_to_one`, `many_to_one` or `many_to_many`.
    pub mode: String,
    #[serde(default)]
    pub lobby: bool,
    #[serde(default)]
    pub recording: bool,
    /// 网上会商: officials of several departments confer on the case.
    #[serde(default)]
    pub conference: bool,
    /// RFC 3339; default now.
    pub scheduled_at: Option<String>,
    /// Default: every party of the case, and the scheduler as host.
    #[serde(default)]
    pub invitees: Vec<InviteeInput>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Invitee {
    pub session_invitee_id: i64,
    pub identity: String,
    pub name: String,
    pub role: String,
    pub party_id: Option<i64>,
    pub staff_account_id: Option<i64>,
    pub department: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Attendance {
    pub identity: String,
    pub joined_at: String,
    pub left_at: Option<String>,
    pub seconds: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Record {
    pub mediation_record_id: i64,
    pub kind: String,
    pub department: Option<String>,
    pub author_staff_id: i64,
    pub content: String,
    pub created_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub session_id: i64,
    pub case_id: i64,
    pub room: String,
    pub mode: String,
    pub lobby: bool,
    pub recording: bool,
    pub conference: bool,
    pub scheduled_at: String,
    /// `scheduled`, `live` or `ended`.
    pub status: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub invitees: Vec<Invitee>,
    /// Identities in the room now.
    pub present: Vec<String>,
    pub attendance: Vec<Attendance>,
    pub records: Vec<Record>,
    /// The session's recordings (details, files and players at /api/v1/recordings/{id}).
    pub recordings: Vec<SessionRecording>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionRecording {
    pub recording_id: i64,
    pub status: String,
    pub composite_status: Option<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct JoinLink {
    pub session_invitee_id: i64,
    pub name: String,
    pub role: String,
    pub url: String,
    pub expires_at: String,
}

pub const MAX_INVITEES: usize = 30;
const ROLES: &[&str] = &["party", "mediator", "official", "observer"];

/// Schedules a video session on the case and invites its participants.
#[utoipa::path(post, path = "/api/v1/cases/{id}/sessions", params(("id" = i64, Path)), request_body = ScheduleRequest, responses((status = 201, body = SessionView), (status = 422, body = super::error::ErrorBody)))]
pub async fn schedule(State(state): State<AppState>, staff: Staff, Path(case_id): Path<i64>, ApiJson(req): ApiJson<ScheduleRequest>) -> Result<(axum::http::StatusCode, Json<SessionView>), ApiError> {
    let case = case_for(&state, &staff, case_id, Permission::MediateCase).await?;
    if !case.status().is_open() {
        return Err(ApiError::conflict("case_finished", format!("a case that is {} takes no new sessions", case.status), None));
    }
    if !matches!(req.mode.as_str(), "one_to_one" | "many_to_one" | "many_to_many") {
        return Err(ApiError::invalid("mode", "one_to_one, many_to_one or many_to_many"));
    }
    let scheduled_at = match &req.scheduled_at {
        Some(t) => humantime::parse_rfc3339_weak(t).map(crate::store::staff::text_time).map_err(|_| ApiError::invalid("scheduled_at", "an RFC 3339 time such as 2026-12-01T09:30:00Z"))?,
        None => now_text(),
    };
    let mut invitees = req.invitees.clone();
    if invitees.is_empty() {
        let parties: Vec<(i64,)> = sqlx::query_as("select party_id from party where case_id = $1 order by party_id").bind(case_id).fetch_all(&state.db.pool).await?;
        invitees.push(InviteeInput { party_id: None, staff_account_id: Some(staff.0.staff_account_id), name: None, role: Some("mediator".into()), department: None });
        invitees.extend(parties.into_iter().map(|(p,)| InviteeInput { party_id: Some(p), staff_account_id: None, name: None, role: None, department: None }));
    }
    if invitees.len() > MAX_INVITEES {
        return Err(ApiError::invalid("invitees", format!("at most {MAX_INVITEES}")));
    }
    if req.mode == "one_to_one" && invitees.iter().filter(|i| i.role.as_deref() != Some("observer")).count() > 2 {
        return Err(ApiError::invalid("mode", "a one-to-one session has two participants; choose many_to_one or many_to_many"));
    }
    // Resolve every invitee before writing anything.
    let mut resolved = Vec::new();
    for (i, inv) in invitees.iter().enumerate() {
        let field = |f: &str| format!("invitees[{i}].{f}");
        let (name, default_role) = match (inv.party_id, inv.staff_account_id, &inv.name) {
            (Some(p), None, _) => {
                let row: Option<(String,)> = sqlx::query_as("select name from party where party_id = $1 and case_id = $2").bind(p).bind(case_id).fetch_optional(&state.db.pool).await?;
                (row.ok_or_else(|| ApiError::invalid(&field("party_id"), format!("no party {p} on this case")))?.0, "party")
            }
            (None, Some(s), _) => {
                let row: Option<(String, String)> = sqlx::query_as("select display_name, username from staff_account where staff_account_id = $1").bind(s).fetch_optional(&state.db.pool).await?;
                let (display, user) = row.ok_or_else(|| ApiError::invalid(&field("staff_account_id"), format!("no staff account {s}")))?;
                (if display.is_empty() { user } else { display }, "official")
            }
            (None, None, Some(n)) if !n.trim().is_empty() && n.chars().count() <= 64 => (n.trim().to_string(), "official"),
            _ => return Err(ApiError::invalid(&field("party_id"), "give one of party_id, staff_account_id or name (1-64 characters)")),
        };
        let role = inv.role.clone().unwrap_or_else(|| default_role.to_string());
        if !ROLES.contains(&role.as_str()) {
            return Err(ApiError::invalid(&field("role"), "party, mediator, official or observer"));
        }
        if inv.department.as_ref().is_some_and(|d| d.chars().count() > 64) {
            return Err(ApiError::invalid(&field("department"), "at most 64 characters"));
        }
        resolved.push((name, role, inv.party_id, inv.staff_account_id, inv.department.clone()));
    }
    let room = format!("case{case_id}-{}", random_suffix());
    let mut tx = state.db.begin().await?;
    let (session_id,): (i64,) = sqlx::query_as(
        "insert into video_session (case_id, room, mode, lobby, recording, conference, scheduled_at, status, created_by, created_at) \
         values ($1, $2, $3, $4, $5, $6, $7, 'scheduled', $8, $9) returning session_id",
    )
    .bind(case_id)
    .bind(&room)
    .bind(&req.mode)
    .bind(req.lobby)
    .bind(req.recording)
    .bind(req.conference)
    .bind(&scheduled_at)
    .bind(staff.0.staff_account_id)
    .bind(now_text())
    .fetch_one(&mut *tx)
    .await?;
    for (n, (name, role, party_id, staff_id, department)) in resolved.iter().enumerate() {
        let identity = match (party_id, staff_id) {
            (Some(p), _) => format!("party-{p}"),
            (_, Some(s)) => format!("staff-{s}"),
            _ => format!("guest-{n}"),
        };
        let inserted = sqlx::query(
            "insert into session_invitee (session_id, identity, name, role, party_id, staff_account_id, department) values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(session_id)
        .bind(&identity)
        .bind(name)
        .bind(role)
        .bind(party_id)
        .bind(staff_id)
        .bind(department)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Err(ApiError::invalid(&format!("invitees[{n}]"), "invited twice")),
            Err(e) => return Err(e.into()),
        }
    }
    let kind = if req.conference { "conference_scheduled" } else { "session_scheduled" };
    cases::append_event(
        &mut tx,
        case_id,
        kind,
        &staff.actor(),
        &serde_json::json!({ "session_id": session_id, "mode": req.mode, "lobby": req.lobby, "recording": req.recording, "scheduled_at": scheduled_at, "invitees": resolved.len() }),
    )
    .await?;
    tx.commit().await?;
    Ok((axum::http::StatusCode::CREATED, Json(load_view(&state, session_id).await?)))
}

fn random_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..8).map(|_| char::from(b"abcdefghijkmnpqrstuvwxyz23456789"[rng.random_range(0..32)])).collect()
}

type SessionRow = (i64, i64, String, String, i64, i64, i64, String, String, Option<String>, Option<String>);

pub async fn load_view(state: &AppState, session_id: i64) -> Result<SessionView, ApiError> {
    let row: Option<SessionRow> = sqlx::query_as(
        "select session_id, case_id, room, mode, case when lobby then 1 else 0 end, case when recording then 1 else 0 end, case when conference then 1 else 0 end, \
         scheduled_at, status, started_at, ended_at from video_session where session_id = $1",
    )
    .bind(session_id)
    .fetch_optional(&state.db.pool)
    .await?;
    let r = row.ok_or_else(|| ApiError::NotFound(format!("no session {session_id}")))?;
    let invitees: Vec<(i64, String, String, String, Option<i64>, Option<i64>, Option<String>)> =
        sqlx::query_as("select session_invitee_id, identity, name, role, party_id, staff_account_id, department from session_invitee where session_id = $1 order by session_invitee_id")
            .bind(session_id)
            .fetch_all(&state.db.pool)
            .await?;
    let attendance: Vec<(String, String, Option<String>)> =
        sqlx::query_as("select identity, joined_at, left_at from session_attendance where session_id = $1 order by session_attendance_id").bind(session_id).fetch_all(&state.db.pool).await?;
    let records: Vec<(i64, String, Option<String>, i64, String, String)> =
        sqlx::query_as("select mediation_record_id, kind, department, author_staff_id, content, created_at from mediation_record where session_id = $1 order by mediation_record_id")
            .bind(session_id)
            .fetch_all(&state.db.pool)
            .await?;
    let recordings: Vec<(i64, String, Option<String>, String, Option<String>)> =
        sqlx::query_as("select recording_id, status, composite_status, started_at, ended_at from recording where session_id = $1 order by recording_id")
            .bind(session_id)
            .fetch_all(&state.db.pool)
            .await?;
    let secs = |a: &str, b: &str| -> Option<i64> {
        let (a, b) = (humantime::parse_rfc3339(a).ok()?, humantime::parse_rfc3339(b).ok()?);
        Some(b.duration_since(a).ok()?.as_secs() as i64)
    };
    let mut present: Vec<String> = attendance.iter().filter(|a| a.2.is_none()).map(|a| a.0.clone()).collect();
    present.dedup();
    Ok(SessionView {
        session_id: r.0,
        case_id: r.1,
        room: r.2,
        mode: r.3,
        lobby: r.4 != 0,
        recording: r.5 != 0,
        conference: r.6 != 0,
        scheduled_at: r.7,
        status: r.8,
        started_at: r.9,
        ended_at: r.10,
        invitees: invitees
            .into_iter()
            .map(|i| Invitee { session_invitee_id: i.0, identity: i.1, name: i.2, role: i.3, party_id: i.4, staff_account_id: i.5, department: i.6 })
            .collect(),
        present,
        attendance: attendance.into_iter().map(|(identity, joined_at, left_at)| Attendance { seconds: left_at.as_deref().and_then(|l| secs(&joined_at, l)), identity, joined_at, left_at }).collect(),
        records: records.into_iter().map(|r| Record { mediation_record_id: r.0, kind: r.1, department: r.2, author_staff_id: r.3, content: r.4, created_at: r.5 }).collect(),
        recordings: recordings.into_iter().map(|r| SessionRecording { recording_id: r.0, status: r.1, composite_status: r.2, started_at: r.3, ended_at: r.4 }).collect(),
    })
}

/// Loads a session whose case the staff member may act on with `permission`.
async fn session_for(state: &AppState, staff: &Staff, session_id: i64, permission: Permission) -> Result<SessionView, ApiError> {
    let view = load_view(state, session_id).await?;
    case_for(state, staff, view.case_id, permission).await.map_err(|e| match e {
        ApiError::NotFound(_) => ApiError::NotFound(format!("no session {session_id}")),
        other => other,
    })?;
    Ok(view)
}

/// The sessions of a case.
#[utoipa::path(get, path = "/api/v1/cases/{id}/sessions", params(("id" = i64, Path)), responses((status = 200, body = Vec<SessionView>)))]
pub async fn list_for_case(State(state): State<AppState>, staff: Staff, Path(case_id): Path<i64>) -> Result<Json<Vec<SessionView>>, ApiError> {
    case_for(&state, &staff, case_id, Permission::ReadCase).await?;
    let ids: Vec<(i64,)> = sqlx::query_as("select session_id from video_session where case_id = $1 order by session_id").bind(case_id).fetch_all(&state.db.pool).await?;
    let mut out = Vec::new();
    for (id,) in ids {
        out.push(load_view(&state, id).await?);
    }
    Ok(Json(out))
}

/// A session: invitees, who is in the room now, the attendance history, the records.
#[utoipa::path(get, path = "/api/v1/sessions/{id}", params(("id" = i64, Path)), responses((status = 200, body = SessionView), (status = 404, body = super::error::ErrorBody)))]
pub async fn detail(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>) -> Result<Json<SessionView>, ApiError> {
    Ok(Json(session_for(&state, &staff, id, Permission::ReadCase).await?))
}

/// How long a join link stays valid after the scheduled time.
pub const LINK_VALID_AFTER_START: Duration = Duration::from_secs(24 * 3600);

/// A join link for one invitee.
pub fn mint_link(state: &AppState, view: &SessionView, invitee: &Invitee) -> Result<JoinLink, ApiError> {
    let role = Role::parse(&invitee.role).unwrap_or(Role::Observer);
    let start = humantime::parse_rfc3339(&view.scheduled_at).unwrap_or(std::time::SystemTime::now());
    let end = start.max(std::time::SystemTime::now()) + LINK_VALID_AFTER_START;
    let ttl = end.duration_since(std::time::SystemTime::now()).unwrap_or(LINK_VALID_AFTER_START);
    let name: String = invitee.name.chars().take(64).collect();
    let token = state
        .signaling
        .token_key()
        .mint(&TokenRequest {
            room: view.room.clone(),
            identity: invitee.identity.clone(),
            name,
            role,
            // Parties wait in the lobby when the session has one; hosts never do.
            lobby: view.lobby && role == Role::Party,
            ttl,
            case_id: Some(view.case_id),
        })
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("minting a join token: {e}")))?;
    Ok(JoinLink {
        session_invitee_id: invitee.session_invitee_id,
        name: invitee.name.clone(),
        role: invitee.role.clone(),
        url: format!("{}/join?token={token}", state.public_url),
        expires_at: crate::store::staff::text_time(end),
    })
}

/// Fresh join links for every invitee, to hand out or text.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/links", params(("id" = i64, Path)), responses((status = 200, body = Vec<JoinLink>)))]
pub async fn links(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>) -> Result<Json<Vec<JoinLink>>, ApiError> {
    let view = session_for(&state, &staff, id, Permission::MediateCase).await?;
    let out: Result<Vec<JoinLink>, ApiError> = view.invitees.iter().map(|i| mint_link(&state, &view, i)).collect();
    Ok(Json(out?))
}

/// The join link of one invitee as a QR code, to scan with a phone.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/invitees/{invitee_id}/qr", params(("id" = i64, Path), ("invitee_id" = i64, Path), QrQuery), responses((status = 200, content_type = "image/svg+xml")))]
pub async fn invitee_qr(State(state): State<AppState>, staff: Staff, Path((id, invitee_id)): Path<(i64, i64)>, ApiQuery(q): ApiQuery<QrQuery>) -> Result<Response, ApiError> {
    let view = session_for(&state, &staff, id, Permission::MediateCase).await?;
    let invitee = view.invitees.iter().find(|i| i.session_invitee_id == invitee_id).ok_or_else(|| ApiError::NotFound(format!("no invitee {invitee_id} in session {id}")))?;
    let link = mint_link(&state, &view, invitee)?;
    qr::respond(&link.url, q.format)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RecordInput {
    /// `minutes` (调解记录) or `conclusion` (a department's conclusion in a case conference).
    pub kind: String,
    pub department: Option<String>,
    pub content: String,
}

pub const MAX_RECORD: usize = 50_000;

/// Adds minutes or a conference conclusion to the session; it enters the case's event chain.
#[utoipa::path(post, path = "/api/v1/sessions/{id}/records", params(("id" = i64, Path)), request_body = RecordInput, responses((status = 201, body = Record), (status = 422, body = super::error::ErrorBody)))]
pub async fn add_record(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>, ApiJson(req): ApiJson<RecordInput>) -> Result<(axum::http::StatusCode, Json<Record>), ApiError> {
    let view = session_for(&state, &staff, id, Permission::ReadCase).await?;
    if !matches!(req.kind.as_str(), "minutes" | "conclusion") {
        return Err(ApiError::invalid("kind", "minutes or conclusion"));
    }
    // Minutes are the mediator's; conclusions come from the officials of a conference.
    let allowed = match req.kind.as_str() {
        "minutes" => crate::auth::allows(staff.0.role, Permission::MediateCase),
        _ => view.conference && (view.invitees.iter().any(|i| i.staff_account_id == Some(staff.0.staff_account_id)) || crate::auth::allows(staff.0.role, Permission::MediateCase)),
    };
    if !allowed {
        return Err(ApiError::forbidden());
    }
    let content = req.content.trim();
    if content.is_empty() || content.chars().count() > MAX_RECORD {
        return Err(ApiError::invalid("content", format!("1 to {MAX_RECORD} characters")));
    }
    if req.kind == "conclusion" && req.department.as_deref().is_none_or(|d| d.trim().is_empty()) {
        return Err(ApiError::invalid("department", "a conclusion names the department it speaks for"));
    }
    let now = now_text();
    let mut tx = state.db.begin().await?;
    let (record_id,): (i64,) = sqlx::query_as(
        "insert into mediation_record (case_id, session_id, kind, department, author_staff_id, content, created_at) values ($1, $2, $3, $4, $5, $6, $7) returning mediation_record_id",
    )
    .bind(view.case_id)
    .bind(id)
    .bind(&req.kind)
    .bind(&req.department)
    .bind(staff.0.staff_account_id)
    .bind(content)
    .bind(&now)
    .fetch_one(&mut *tx)
    .await?;
    // The chain commits to the record's content through its hash.
    let digest = crate::case::chain::hex(ring::digest::digest(&ring::digest::SHA256, content.as_bytes()).as_ref());
    cases::append_event(&mut tx, view.case_id, &format!("record_{}", req.kind), &staff.actor(), &serde_json::json!({ "session_id": id, "mediation_record_id": record_id, "department": req.department, "sha256": digest })).await?;
    tx.commit().await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(Record { mediation_record_id: record_id, kind: req.kind, department: req.department, author_staff_id: staff.0.staff_account_id, content: content.to_string(), created_at: now }),
    ))
}
