#![allow(clippy::type_complexity)] // row tuples mirror their select lists
//! The court path on a case: judicial confirmation (司法确认) of an effective agreement, and
//! one-click litigation (一键诉讼) after mediation failed. A package is assembled from the case,
//! checked against the law's rules, and queued (the job queue is the outbox); the court's
//! callbacks move it on and are applied once each.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Staff;
use super::error::{ApiError, ApiJson};
use super::scope::case_for;
use crate::auth::{Permission, allows};
use crate::court::connector::{SIGNATURE_HEADER, verify};
use crate::court::rules::{self, Court, ProposedCourt, Subject};
use crate::db::now_text;
use crate::store::cases;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/courts", get(list_courts))
        .route("/api/v1/cases/{id}/courts", get(proposed))
        .route("/api/v1/cases/{id}/confirmations", post(apply_confirmation))
        .route("/api/v1/cases/{id}/filings", post(file_lawsuit))
        .route("/api/v1/cases/{id}/court-packages", get(packages))
        .route("/api/v1/court/callbacks", post(callback))
}

/// The courts configured for this area.
#[utoipa::path(get, path = "/api/v1/courts", responses((status = 200, body = Vec<Court>)))]
pub async fn list_courts(State(state): State<AppState>) -> Json<Vec<Court>> {
    Json(state.court.courts.clone())
}

async fn proposals(state: &AppState, case_id: i64, subject_location: Option<&str>) -> Result<Vec<ProposedCourt>, ApiError> {
    let case = cases::load(&state.db, case_id).await?.ok_or_else(|| ApiError::NotFound(format!("no case {case_id}")))?;
    let tree = crate::store::org::OrgTree::load(&state.db).await?;
    // The organisation's location: the district its org unit lies in (or the case's).
    let org_unit: Option<(i64,)> = match case.mediation_org_id {
        Some(o) => sqlx::query_as("select org_unit_id from mediation_org where mediation_org_id = $1").bind(o).fetch_optional(&state.db.pool).await?,
        None => None,
    };
    let unit = org_unit.map(|u| u.0).unwrap_or(case.org_unit_id);
    let district = tree.path_up(unit).into_iter().find(|u| tree.get(*u).is_some_and(|x| x.level == "district"));
    let district_code: Option<(String,)> = match district {
        Some(d) => sqlx::query_as("select code from org_unit where org_unit_id = $1").bind(d).fetch_optional(&state.db.pool).await?,
        None => None,
    };
    let addresses: Vec<(String,)> = sqlx::query_as("select address from party where case_id = $1").bind(case_id).fetch_all(&state.db.pool).await?;
    let addresses: Vec<String> = addresses.into_iter().map(|a| a.0).collect();
    Ok(rules::propose_courts(&state.court.courts, district_code.as_ref().map(|c| c.0.as_str()), &addresses, subject_location))
}

/// The courts with jurisdiction over the case, each with its grounds.
#[utoipa::path(get, path = "/api/v1/cases/{id}/courts", params(("id" = i64, Path)), responses((status = 200, body = Vec<ProposedCourt>)))]
pub async fn proposed(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>) -> Result<Json<Vec<ProposedCourt>>, ApiError> {
    case_for(&state, &staff, id, Permission::ReadCase).await?;
    Ok(Json(proposals(&state, id, None).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ConfirmationRequest {
    pub agreement_id: i64,
    /// One of the proposed courts, chosen by the parties.
    pub court_id: String,
    /// The parties applying: both (all) parties apply jointly.
    pub applicant_party_ids: Vec<i64>,
    #[serde(default)]
    pub subject: Subject,
    /// Where the subject matter is (an address), if it matters for jurisdiction.
    pub subject_location: Option<String>,
    /// Evidence the parties submit with the application (property rights, identity, ...).
    #[serde(default)]
    pub evidence: Vec<EvidenceItem>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PackageView {
    pub package_id: String,
    pub case_id: i64,
    /// `confirmation` or `filing`.
    pub kind: String,
    pub court_id: String,
    /// `queued`, `submitted`, `accepted`, `not_accepted`, `confirmed`, `rejected`, `filed`,
    /// `materials_missing`, `invalid`.
    pub status: String,
    pub court_ref: Option<String>,
    pub reason: Option<String>,
    pub missing: Option<Vec<String>>,
    #[schema(value_type = Object)]
    pub document: Option<serde_json::Value>,
    pub updated_at: String,
}

fn not_configured() -> ApiError {
    ApiError::conflict("no_court_system", "no court system is configured ([court] url and secret)", None)
}

/// What every package carries: the case, the parties with identity and contact (decrypted for
/// the court), the organisation and mediator, the sessions and records, the recordings' hashes.
async fn common_part(state: &AppState, case_id: i64) -> Result<serde_json::Value, ApiError> {
    let case = cases::load(&state.db, case_id).await?.ok_or_else(|| ApiError::NotFound(format!("no case {case_id}")))?;
    let parties = super::cases::parties(state, case_id, true).await?;
    let org: Option<(String, String, String)> = match case.mediator_id {
        Some(m) => sqlx::query_as("select o.name, o.kind, m.name from mediator m join mediation_org o on o.mediation_org_id = m.mediation_org_id where m.mediator_id = $1").bind(m).fetch_optional(&state.db.pool).await?,
        None => None,
    };
    let records: Vec<(String, String, String)> = sqlx::query_as("select kind, content, created_at from mediation_record where case_id = $1 order by mediation_record_id").bind(case_id).fetch_all(&state.db.pool).await?;
    let sessions: Vec<(i64, String, Option<String>, Option<String>)> =
        sqlx::query_as("select session_id, mode, started_at, ended_at from video_session where case_id = $1 order by session_id").bind(case_id).fetch_all(&state.db.pool).await?;
    let recordings = crate::recordings::for_case(&state.db, case_id).await?;
    let chain = cases::chain_report(&cases::events(&state.db, case_id).await?);
    Ok(serde_json::json!({
        "case": { "case_number": case.case_number, "title": case.title, "category": case.category_code, "summary": case.summary, "event_chain_head": chain.head },
        "parties": parties.iter().map(|p| serde_json::json!({ "party_id": p.party_id, "role": p.role, "name": p.name, "id_number": p.id_number, "phone": p.phone, "address": p.address })).collect::<Vec<_>>(),
        "organisation": org.as_ref().map(|o| serde_json::json!({ "name": o.0, "kind": o.1, "mediator": o.2, "hosted_mediation": true })),
        "sessions": sessions.iter().map(|s| serde_json::json!({ "session_id": s.0, "mode": s.1, "started_at": s.2, "ended_at": s.3 })).collect::<Vec<_>>(),
        "mediation_records": records.iter().map(|r| serde_json::json!({ "kind": r.0, "content": r.1, "at": r.2 })).collect::<Vec<_>>(),
        "recordings": recordings.iter().filter(|r| r.status == "complete").map(|r| serde_json::json!({ "recording_id": r.recording_id, "manifest_sha256": r.manifest_sha256, "manifest_sm3": r.manifest_sm3, "composite_sha256": r.composite_sha256 })).collect::<Vec<_>>(),
    }))
}

/// Stores the package and queues its delivery in one transaction (the outbox).
async fn queue(state: &AppState, case_id: i64, kind: &str, court_id: &str, mut payload: serde_json::Value, actor: &str) -> Result<PackageView, ApiError> {
    let package_id = new_package_id();
    let callback = state.court.callback_url.clone().unwrap_or_else(|| format!("{}/api/v1/court/callbacks", state.public_url));
    if let Some(o) = payload.as_object_mut() {
        o.insert("package_id".into(), package_id.clone().into());
        o.insert("kind".into(), kind.into());
        o.insert("court_id".into(), court_id.into());
        o.insert("callback_url".into(), callback.into());
    }
    let now = now_text();
    let mut tx = state.db.begin().await?;
    sqlx::query("insert into court_package (package_id, case_id, kind, court_id, status, payload, created_at, updated_at) values ($1, $2, $3, $4, 'queued', $5, $6, $6)")
        .bind(&package_id)
        .bind(case_id)
        .bind(kind)
        .bind(court_id)
        .bind(payload.to_string())
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    crate::jobs::enqueue_in(&mut tx, crate::jobs::KIND_COURT_PUSH, &serde_json::json!({ "package_id": package_id })).await?;
    let digest = jiefen_recorder::hash::sha256(payload.to_string().as_bytes());
    cases::append_event(&mut tx, case_id, &format!("{kind}_submitted"), actor, &serde_json::json!({ "package_id": package_id, "court_id": court_id, "sha256": digest })).await?;
    tx.commit().await?;
    load_package(state, &package_id).await
}

fn new_package_id() -> String {
    let mut b = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap_or_default();
    format!("pkg-{}", crate::case::chain::hex(&b))
}

async fn load_package(state: &AppState, id: &str) -> Result<PackageView, ApiError> {
    let r: Option<(String, i64, String, String, String, Option<String>, Option<String>, Option<String>, Option<String>, String)> = sqlx::query_as(
        "select package_id, case_id, kind, court_id, status, court_ref, reason, missing, document, updated_at from court_package where package_id = $1",
    )
    .bind(id)
    .fetch_optional(&state.db.pool)
    .await?;
    let r = r.ok_or_else(|| ApiError::NotFound(format!("no package {id}")))?;
    Ok(PackageView {
        package_id: r.0,
        case_id: r.1,
        kind: r.2,
        court_id: r.3,
        status: r.4,
        court_ref: r.5,
        reason: r.6,
        missing: r.7.and_then(|m| serde_json::from_str(&m).ok()),
        document: r.8.and_then(|d| serde_json::from_str(&d).ok()),
        updated_at: r.9,
    })
}

/// Applies for judicial confirmation of the case's effective agreement.
#[utoipa::path(post, path = "/api/v1/cases/{id}/confirmations", params(("id" = i64, Path)), request_body = ConfirmationRequest, responses((status = 202, body = PackageView), (status = 409, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn apply_confirmation(State(state): State<AppState>, staff: Staff, Path(case_id): Path<i64>, ApiJson(req): ApiJson<ConfirmationRequest>) -> Result<(StatusCode, Json<PackageView>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(confirm(&state, &staff, case_id, &req).await?)))
}

/// Checks and queues one application for judicial confirmation.
pub async fn confirm(state: &AppState, staff: &Staff, case_id: i64, req: &ConfirmationRequest) -> Result<PackageView, ApiError> {
    let state = state.clone();
    let case = case_for(&state, staff, case_id, Permission::ReadCase).await?;
    if !(allows(staff.0.role, Permission::MediateCase) || allows(staff.0.role, Permission::TriageCase)) {
        return Err(ApiError::forbidden());
    }
    if state.court_connector.is_none() {
        return Err(not_configured());
    }
    let agreement = super::agreements::view(&state, req.agreement_id).await?;
    if agreement.case_id != case_id {
        return Err(ApiError::invalid("agreement_id", "not an agreement of this case"));
    }
    let parties: Vec<(i64,)> = sqlx::query_as("select party_id from party where case_id = $1 and role in ('applicant', 'respondent')").bind(case_id).fetch_all(&state.db.pool).await?;
    let applicants = req.applicant_party_ids.iter().filter(|p| parties.iter().any(|x| x.0 == **p)).count();
    let effective = agreement.effective_at.as_deref().and_then(|t| humantime::parse_rfc3339(t).ok());
    if let Err(refusal) = rules::check_confirmation(effective, std::time::SystemTime::now(), &case.category_code, &req.subject, applicants, parties.len()) {
        cases::record_event(&state.db, case_id, "confirmation_refused", &staff.actor(), &serde_json::json!({ "reason": refusal, "agreement_id": req.agreement_id })).await?;
        return Err(ApiError::conflict("confirmation_refused", refusal.reason(), Some(serde_json::json!({ "refusal": refusal }))));
    }
    let proposed = proposals(&state, case_id, req.subject_location.as_deref()).await?;
    let Some(court) = proposed.iter().find(|p| p.court.court_id == req.court_id) else {
        return Err(ApiError::Invalid { field: "court_id".into(), message: format!("not a court with jurisdiction; choose one of {:?}", proposed.iter().map(|p| &p.court.court_id).collect::<Vec<_>>()) });
    };
    let signatures: Vec<(String, String, String, String, String)> =
        sqlx::query_as("select signer, signer_name, signed_at, ip, document_sha256 from agreement_signature where agreement_id = $1 and version = $2 order by signer")
            .bind(req.agreement_id)
            .bind(agreement.version)
            .fetch_all(&state.db.pool)
            .await?;
    let mut payload = common_part(&state, case_id).await?;
    if let Some(o) = payload.as_object_mut() {
        o.insert("application".into(), serde_json::json!({ "title": "确认调解协议申请书", "applicants": req.applicant_party_ids, "jointly": true, "court_grounds": court.grounds }));
        o.insert("evidence".into(), serde_json::json!(req.evidence.iter().enumerate().map(|(i, e)| serde_json::json!({ "no": i + 1, "name": e.name, "source": e.source, "proves": e.proves })).collect::<Vec<_>>()));
        o.insert(
            "agreement".into(),
            serde_json::json!({
                "agreement_id": agreement.agreement_id, "version": agreement.version, "body": agreement.body, "sha256": agreement.sha256, "sm3": agreement.sm3,
                "effective_at": agreement.effective_at, "seal": agreement.seal, "seal_public_key": agreement.seal_public_key,
                "signatures": signatures.iter().map(|s| serde_json::json!({ "signer": s.0, "name": s.1, "signed_at": s.2, "ip": s.3, "document_sha256": s.4 })).collect::<Vec<_>>(),
            }),
        );
    }
    queue(&state, case_id, "confirmation", &req.court_id, payload, &staff.actor()).await
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct EvidenceItem {
    pub name: String,
    /// Where it comes from (a party, a bank, the mediation record).
    pub source: String,
    /// What it proves.
    pub proves: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct FilingRequest {
    pub court_id: String,
    /// The party suing.
    pub plaintiff_party_id: i64,
    pub claims: Vec<String>,
    pub facts: String,
    #[serde(default)]
    pub evidence: Vec<EvidenceItem>,
}

/// One-click litigation after mediation failed: the complaint and everything the mediation
/// produced, checked for completeness, to the court's filing system.
#[utoipa::path(post, path = "/api/v1/cases/{id}/filings", params(("id" = i64, Path)), request_body = FilingRequest, responses((status = 202, body = PackageView), (status = 409, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn file_lawsuit(State(state): State<AppState>, staff: Staff, Path(case_id): Path<i64>, ApiJson(req): ApiJson<FilingRequest>) -> Result<(StatusCode, Json<PackageView>), ApiError> {
    let case = case_for(&state, &staff, case_id, Permission::ReadCase).await?;
    if !(allows(staff.0.role, Permission::MediateCase) || allows(staff.0.role, Permission::TriageCase)) {
        return Err(ApiError::forbidden());
    }
    if state.court_connector.is_none() {
        return Err(not_configured());
    }
    let failed = case.status == "mediation_failed" || cases::events(&state.db, case_id).await?.iter().any(|e| e.kind == "fail");
    if !failed {
        return Err(ApiError::conflict("mediation_not_failed", "one-click litigation follows a failed mediation", None));
    }
    let parties = super::cases::parties(&state, case_id, true).await?;
    let plaintiff = parties.iter().find(|p| p.party_id == req.plaintiff_party_id).ok_or_else(|| ApiError::invalid("plaintiff_party_id", "not a party of this case"))?;
    let defendants: Vec<_> = parties.iter().filter(|p| p.party_id != plaintiff.party_id && p.role != "third_party").collect();
    let evidence: Vec<(String, String, String)> = req.evidence.iter().map(|e| (e.name.clone(), e.source.clone(), e.proves.clone())).collect();
    let gaps = rules::filing_gaps(&req.claims, &req.facts, &evidence, defendants.len(), usize::from(plaintiff.phone.is_some() || !plaintiff.address.is_empty()));
    if !gaps.is_empty() {
        return Err(ApiError::conflict("filing_incomplete", format!("the complaint lacks: {}", gaps.join("; ")), Some(serde_json::json!({ "missing": gaps }))));
    }
    if !state.court.courts.iter().any(|c| c.court_id == req.court_id) {
        return Err(ApiError::invalid("court_id", "not a configured court"));
    }
    let mut payload = common_part(&state, case_id).await?;
    if let Some(o) = payload.as_object_mut() {
        o.insert(
            "complaint".into(),
            serde_json::json!({
                "title": "民事起诉状",
                "plaintiff": { "name": plaintiff.name, "id_number": plaintiff.id_number, "phone": plaintiff.phone, "address": plaintiff.address },
                "defendants": defendants.iter().map(|d| serde_json::json!({ "name": d.name, "phone": d.phone, "address": d.address })).collect::<Vec<_>>(),
                "claims": req.claims, "facts": req.facts,
                "evidence": req.evidence.iter().enumerate().map(|(i, e)| serde_json::json!({ "no": i + 1, "name": e.name, "source": e.source, "proves": e.proves })).collect::<Vec<_>>(),
            }),
        );
    }
    Ok((StatusCode::ACCEPTED, Json(queue(&state, case_id, "filing", &req.court_id, payload, &staff.actor()).await?)))
}

/// The case's court packages and where each stands.
#[utoipa::path(get, path = "/api/v1/cases/{id}/court-packages", params(("id" = i64, Path)), responses((status = 200, body = Vec<PackageView>)))]
pub async fn packages(State(state): State<AppState>, staff: Staff, Path(case_id): Path<i64>) -> Result<Json<Vec<PackageView>>, ApiError> {
    case_for(&state, &staff, case_id, Permission::ReadCase).await?;
    let ids: Vec<(String,)> = sqlx::query_as("select package_id from court_package where case_id = $1 order by created_at").bind(case_id).fetch_all(&state.db.pool).await?;
    let mut out = Vec::new();
    for (id,) in ids {
        out.push(load_package(&state, &id).await?);
    }
    Ok(Json(out))
}

const STATUSES: &[&str] = &["accepted", "not_accepted", "confirmed", "rejected", "filed", "materials_missing"];

/// The court's callback: signed with the shared secret, applied once per `event_id`.
#[utoipa::path(post, path = "/api/v1/court/callbacks", responses((status = 204), (status = 401, body = super::error::ErrorBody)))]
pub async fn callback(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<StatusCode, ApiError> {
    let Some(secret) = state.court.secret.as_deref() else { return Err(not_configured()) };
    if !verify(secret.as_bytes(), headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()), &body, crate::store::staff::unix_now()) {
        return Err(ApiError::Unauthenticated("bad or stale court signature".into()));
    }
    let event: serde_json::Value = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("not JSON: {e}")))?;
    let (Some(event_id), Some(package_id), Some(status)) = (event["event_id"].as_str(), event["package_id"].as_str(), event["status"].as_str()) else {
        return Err(ApiError::BadRequest("event_id, package_id and status are required".into()));
    };
    if !STATUSES.contains(&status) {
        return Err(ApiError::BadRequest(format!("unknown status {status}")));
    }
    let package = load_package(&state, package_id).await?;
    let now = now_text();
    let mut tx = state.db.begin().await?;
    let fresh = sqlx::query("insert into court_callback (event_id, package_id, status, body, received_at) values ($1, $2, $3, $4, $5) on conflict (event_id) do nothing")
        .bind(event_id)
        .bind(package_id)
        .bind(status)
        .bind(event.to_string())
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    if fresh.rows_affected() == 0 {
        return Ok(StatusCode::NO_CONTENT); // a repeat: already applied
    }
    sqlx::query("update court_package set status = $1, court_ref = coalesce($2, court_ref), reason = $3, missing = $4, document = $5, updated_at = $6 where package_id = $7")
        .bind(status)
        .bind(event["court_ref"].as_str())
        .bind(event["reason"].as_str())
        .bind(event.get("missing").filter(|m| !m.is_null()).map(|m| m.to_string()))
        .bind(event.get("document").filter(|d| !d.is_null()).map(|d| d.to_string()))
        .bind(&now)
        .bind(package_id)
        .execute(&mut *tx)
        .await?;
    cases::append_event(&mut tx, package.case_id, &format!("court_{status}"), "system:court", &serde_json::json!({ "package_id": package_id, "kind": package.kind, "court_ref": event["court_ref"], "reason": event["reason"], "missing": event["missing"] })).await?;
    // The case moves on: a confirmed agreement or a filed lawsuit ends the mediation's work.
    if let Some(case) = cases::load_tx(&mut tx, package.case_id).await?
        && ((status == "confirmed" && case.status == "agreement_reached") || (status == "filed" && case.status == "mediation_failed"))
        && let Ok(next) = crate::case::state::apply(case.status(), crate::case::CaseAction::Close)
    {
        let binds = vec![cases::Bind::Text(next.as_str().into()), cases::Bind::OptText(cases::stage_due(next, case.quick_track))];
        if let cases::Guarded::Done = cases::guarded_update(&mut tx, case.case_id, case.version, "status = $1, stage_due_at = $2, escalation_level = 0", binds).await? {
            cases::append_event(&mut tx, case.case_id, "close", "system:court", &serde_json::json!({ "from": case.status, "to": next.as_str(), "reason": format!("court {status}"), "package_id": package_id })).await?;
        }
    }
    tx.commit().await?;
    // The parties hear of it.
    let label = match status {
        "accepted" => "已受理",
        "not_accepted" => "不予受理",
        "confirmed" => "已裁定确认调解协议有效",
        "rejected" => "已裁定驳回申请",
        "filed" => "已立案",
        _ => "需补充材料",
    };
    let case = cases::load(&state.db, package.case_id).await?;
    for p in super::cases::parties(&state, package.case_id, true).await? {
        if let (Some(phone), Some(c)) = (&p.phone, &case) {
            state.sms.send(phone, &format!("【解纷】案件{}：法院{}。", c.case_number, label));
        }
    }
    Ok(StatusCode::NO_CONTENT)
}
