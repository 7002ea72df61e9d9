//! Mediation agreements on a case: drafted and revised by the mediator (each revision a new
//! version with its own hashes), signed by every party (drawn signature + a one-time code to
//! their phone, through their signed link) and the mediator against the hash of the version
//! they read, sealed by the organisation when the last signature lands.

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{PartyAccess, Staff};
use super::error::{ApiError, ApiJson};
use super::scope::case_for;
use crate::agreement::document::{self, AgreementFields, Header, PartyLine};
use crate::auth::Permission;
use crate::crypto::mask_id_number;
use crate::db::now_text;
use crate::store::cases;
use crate::store::staff::{text_time, token_hash};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/cases/{id}/agreements", post(draft).get(list_for_case))
        .route("/api/v1/agreements/{id}", get(detail).put(revise))
        .route("/api/v1/agreements/{id}/sign", post(mediator_sign))
        .route("/api/v1/agreements/{id}/verify", get(verify))
        .route("/api/v1/agreements/{id}/pdf", get(pdf))
        .route("/api/v1/agreement-templates", get(templates))
        .route("/api/v1/agreements/pdf/verify", post(verify_pdf))
        .route("/api/v1/party/agreements/{id}/pdf", get(party_pdf))
        .route("/api/v1/party/agreements", get(party_list))
        .route("/api/v1/party/agreements/{id}/code", post(party_code))
        .route("/api/v1/party/agreements/{id}/sign", post(party_sign))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Signer {
    /// `party-<id>` or `mediator`.
    pub signer: String,
    pub name: String,
    pub signed_at: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AgreementView {
    pub agreement_id: i64,
    pub case_id: i64,
    /// `signing` until every signer has signed the current version, then `effective`.
    pub status: String,
    pub version: i64,
    pub fields: AgreementFields,
    /// The document's text: what is hashed and signed.
    pub body: String,
    pub sha256: String,
    pub sm3: String,
    pub signers: Vec<Signer>,
    pub effective_at: Option<String>,
    /// The organisation's Ed25519 seal (base64) and the key to check it with.
    pub seal: Option<String>,
    pub seal_public_key: String,
}

fn bad(field: String, message: String) -> ApiError {
    ApiError::Invalid { field, message }
}

/// The parties as printed, and the mediator and organisation of the case.
async fn header_and_parties(state: &AppState, case_id: i64, version: i64) -> Result<(Header, Vec<PartyLine>), ApiError> {
    let case = cases::load(&state.db, case_id).await?.ok_or_else(|| ApiError::NotFound(format!("no case {case_id}")))?;
    let mediator: Option<(String, String)> = match case.mediator_id {
        Some(m) => sqlx::query_as("select m.name, o.name from mediator m join mediation_org o on o.mediation_org_id = m.mediation_org_id where m.mediator_id = $1").bind(m).fetch_optional(&state.db.pool).await?,
        None => None,
    };
    let (mediator, organisation) = mediator.ok_or_else(|| ApiError::conflict("no_mediator", "an agreement needs the case's mediator and organisation: assign one first", None))?;
    let parties = super::cases::parties(state, case_id, true).await?;
    let lines = parties
        .into_iter()
        .map(|p| PartyLine { role: p.role, name: p.name, id_number: p.id_number.as_deref().map(mask_id_number), address: p.address })
        .collect();
    Ok((Header { case_number: case.case_number, organisation, mediator, version }, lines))
}

async fn signers_of(state: &AppState, case_id: i64, mediator: &str) -> Result<Vec<(String, String, Option<i64>)>, ApiError> {
    let parties: Vec<(i64, String)> = sqlx::query_as("select party_id, name from party where case_id = $1 order by party_id").bind(case_id).fetch_all(&state.db.pool).await?;
    let mut out: Vec<(String, String, Option<i64>)> = parties.into_iter().map(|(id, name)| (format!("party-{id}"), name, Some(id))).collect();
    out.push(("mediator".into(), mediator.to_string(), None));
    Ok(out)
}

type AgreementRow = (i64, i64, String, i64, Option<String>, Option<String>);

async fn row(state: &AppState, id: i64) -> Result<AgreementRow, ApiError> {
    sqlx::query_as("select agreement_id, case_id, status, current_version, effective_at, seal from agreement where agreement_id = $1")
        .bind(id)
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no agreement {id}")))
}

pub async fn view(state: &AppState, id: i64) -> Result<AgreementView, ApiError> {
    let (agreement_id, case_id, status, version, effective_at, seal) = row(state, id).await?;
    let (fields, body, sha256, sm3): (String, String, String, String) =
        sqlx::query_as("select fields, body, sha256, sm3 from agreement_version where agreement_id = $1 and version = $2").bind(id).bind(version).fetch_one(&state.db.pool).await?;
    let fields: AgreementFields = serde_json::from_str(&fields).map_err(|e| ApiError::Internal(e.into()))?;
    let (header, _) = header_and_parties(state, case_id, version).await?;
    let signed: Vec<(String, String)> = sqlx::query_as("select signer, signed_at from agreement_signature where agreement_id = $1 and version = $2").bind(id).bind(version).fetch_all(&state.db.pool).await?;
    let signers = signers_of(state, case_id, &header.mediator)
        .await?
        .into_iter()
        .map(|(signer, name, _)| Signer { signed_at: signed.iter().find(|(s, _)| *s == signer).map(|(_, at)| at.clone()), signer, name })
        .collect();
    Ok(AgreementView { agreement_id, case_id, status, version, fields, body, sha256, sm3, signers, effective_at, seal, seal_public_key: state.seal.public_key_base64() })
}

/// Renders and stores version `version` of an agreement; returns its SHA-256.
async fn store_version(state: &AppState, tx: &mut sqlx::Transaction<'static, sqlx::Any>, agreement_id: i64, case_id: i64, version: i64, fields: &AgreementFields, staff: &Staff) -> Result<String, ApiError> {
    let (header, parties) = header_and_parties(state, case_id, version).await?;
    let body = document::render(&header, &parties, fields);
    let sha256 = jiefen_recorder::hash::sha256(body.as_bytes());
    let sm3 = jiefen_recorder::hash::sm3(body.as_bytes());
    sqlx::query("insert into agreement_version (agreement_id, version, fields, body, sha256, sm3, created_by, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(agreement_id)
        .bind(version)
        .bind(serde_json::to_string(fields).map_err(|e| ApiError::Internal(e.into()))?)
        .bind(&body)
        .bind(&sha256)
        .bind(&sm3)
        .bind(staff.0.staff_account_id)
        .bind(now_text())
        .execute(&mut **tx)
        .await?;
    Ok(sha256)
}

/// Drafts the case's agreement (the mediator, while mediating).
#[utoipa::path(post, path = "/api/v1/cases/{id}/agreements", params(("id" = i64, Path)), request_body = AgreementFields, responses((status = 201, body = AgreementView), (status = 409, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn draft(State(state): State<AppState>, staff: Staff, Path(case_id): Path<i64>, ApiJson(fields): ApiJson<AgreementFields>) -> Result<(axum::http::StatusCode, Json<AgreementView>), ApiError> {
    let id = draft_for(&state, &staff, case_id, &fields).await?;
    Ok((axum::http::StatusCode::CREATED, Json(view(&state, id).await?)))
}

/// Drafts a case's agreement; returns its id.
pub async fn draft_for(state: &AppState, staff: &Staff, case_id: i64, fields: &AgreementFields) -> Result<i64, ApiError> {
    let state = state.clone();
    let case = case_for(&state, staff, case_id, Permission::MediateCase).await?;
    if !matches!(case.status.as_str(), "mediating" | "agreement_reached") {
        return Err(ApiError::conflict("not_mediating", format!("an agreement is drafted during mediation; the case is {}", case.status), None));
    }
    document::validate(fields).map_err(|(f, m)| bad(f, m))?;
    let now = now_text();
    let mut tx = state.db.begin().await?;
    let open: Option<(i64,)> = sqlx::query_as("select agreement_id from agreement where case_id = $1 and status in ('signing', 'effective')").bind(case_id).fetch_optional(&mut *tx).await?;
    if let Some((existing,)) = open {
        return Err(ApiError::conflict("agreement_exists", format!("the case already has agreement {existing}; revise it"), Some(serde_json::json!({ "agreement_id": existing }))));
    }
    let (id,): (i64,) = sqlx::query_as("insert into agreement (case_id, status, current_version, created_at, updated_at) values ($1, 'signing', 1, $2, $2) returning agreement_id")
        .bind(case_id)
        .bind(&now)
        .fetch_one(&mut *tx)
        .await?;
    let sha256 = store_version(&state, &mut tx, id, case_id, 1, fields, staff).await?;
    cases::append_event(&mut tx, case_id, "agreement_drafted", &staff.actor(), &serde_json::json!({ "agreement_id": id, "version": 1, "sha256": sha256 })).await?;
    tx.commit().await?;
    share_in_session(&state, case_id, id).await;
    Ok(id)
}

/// Puts the current version on the screen of everyone in the case's live video session.
async fn share_in_session(state: &AppState, case_id: i64, agreement_id: i64) {
    let rooms: Vec<(String,)> = sqlx::query_as("select room from video_session where case_id = $1 and status = 'live'").bind(case_id).fetch_all(&state.db.pool).await.unwrap_or_default();
    if rooms.is_empty() {
        return;
    }
    let Ok(v) = view(state, agreement_id).await else { return };
    for (room,) in rooms {
        state.signaling.share_document(&room, jiefen_signaling::proto::ServerMessage::Document { kind: "agreement".into(), title: "人民调解协议书".into(), version: v.version, sha256: v.sha256.clone(), body: v.body.clone() });
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Revision {
    /// The version you revised; a newer one answers 409.
    pub version: i64,
    pub fields: AgreementFields,
}

/// Revises the agreement: a new version; signatures of earlier versions no longer count.
#[utoipa::path(put, path = "/api/v1/agreements/{id}", params(("id" = i64, Path)), request_body = Revision, responses((status = 200, body = AgreementView), (status = 409, body = super::error::ErrorBody)))]
pub async fn revise(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>, ApiJson(req): ApiJson<Revision>) -> Result<Json<AgreementView>, ApiError> {
    let (_, case_id, status, version, ..) = row(&state, id).await?;
    case_for(&state, &staff, case_id, Permission::MediateCase).await?;
    if status != "signing" {
        return Err(ApiError::conflict("agreement_final", format!("an agreement that is {status} cannot change"), None));
    }
    document::validate(&req.fields).map_err(|(f, m)| bad(f, m))?;
    let mut tx = state.db.begin().await?;
    let next = version + 1;
    let moved = sqlx::query("update agreement set current_version = $1, updated_at = $2 where agreement_id = $3 and current_version = $4 and status = 'signing'")
        .bind(next)
        .bind(now_text())
        .bind(id)
        .bind(req.version)
        .execute(&mut *tx)
        .await?;
    if moved.rows_affected() != 1 {
        return Err(ApiError::conflict("version_conflict", format!("agreement {id} is at version {version}; reload it"), Some(serde_json::json!({ "version": version }))));
    }
    let sha256 = store_version(&state, &mut tx, id, case_id, next, &req.fields, &staff).await?;
    let (dropped,): (i64,) = sqlx::query_as("select count(*) from agreement_signature where agreement_id = $1 and version = $2").bind(id).bind(version).fetch_one(&mut *tx).await?;
    cases::append_event(&mut tx, case_id, "agreement_revised", &staff.actor(), &serde_json::json!({ "agreement_id": id, "version": next, "sha256": sha256, "signatures_invalidated": dropped })).await?;
    tx.commit().await?;
    share_in_session(&state, case_id, id).await;
    Ok(Json(view(&state, id).await?))
}

/// One agreement with its text, hashes, signers and seal.
#[utoipa::path(get, path = "/api/v1/agreements/{id}", params(("id" = i64, Path)), responses((status = 200, body = AgreementView), (status = 404, body = super::error::ErrorBody)))]
pub async fn detail(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>) -> Result<Json<AgreementView>, ApiError> {
    let (_, case_id, ..) = row(&state, id).await?;
    case_for(&state, &staff, case_id, Permission::ReadCase).await?;
    Ok(Json(view(&state, id).await?))
}

/// The case's agreements.
#[utoipa::path(get, path = "/api/v1/cases/{id}/agreements", params(("id" = i64, Path)), responses((status = 200, body = Vec<AgreementView>)))]
pub async fn list_for_case(State(state): State<AppState>, staff: Staff, Path(case_id): Path<i64>) -> Result<Json<Vec<AgreementView>>, ApiError> {
    case_for(&state, &staff, case_id, Permission::ReadCase).await?;
    let ids: Vec<(i64,)> = sqlx::query_as("select agreement_id from agreement where case_id = $1 order by agreement_id").bind(case_id).fetch_all(&state.db.pool).await?;
    let mut out = Vec::new();
    for (id,) in ids {
        out.push(view(&state, id).await?);
    }
    Ok(Json(out))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SignRequest {
    /// The SHA-256 of the text the signer read; it must be the current version's.
    pub document_sha256: String,
    /// The drawn signature, `data:image/png;base64,...`.
    pub signature_image: String,
    /// Parties: the one-time code sent to their phone.
    pub code: Option<String>,
}

pub const MAX_SIGNATURE_IMAGE: usize = 300_000;

fn client_of(headers: &HeaderMap, peer: std::net::SocketAddr) -> (String, String) {
    // Behind a proxy the client is the first X-Forwarded-For entry.
    let ip = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()).and_then(|v| v.split(',').next()).map(|s| s.trim().to_string()).unwrap_or_else(|| peer.ip().to_string());
    let ua = headers.get(axum::http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").chars().take(400).collect();
    (ip, ua)
}

/// Who is signing, and from where.
struct SignedBy {
    signer: String,
    name: String,
    party_id: Option<i64>,
    staff_id: Option<i64>,
    /// (IP, user agent).
    client: (String, String),
    actor: String,
}

/// Records one signature on the current version; seals the agreement when it is the last.
async fn sign(state: &AppState, id: i64, by: SignedBy, req: &SignRequest) -> Result<AgreementView, ApiError> {
    let SignedBy { signer, name: signer_name, party_id, staff_id, client, actor } = by;
    let (signer, signer_name, actor) = (signer.as_str(), signer_name.as_str(), actor.as_str());
    if !req.signature_image.starts_with("data:image/png;base64,") || req.signature_image.len() > MAX_SIGNATURE_IMAGE {
        return Err(bad("signature_image".into(), format!("a PNG data URL of at most {MAX_SIGNATURE_IMAGE} bytes")));
    }
    let current = view(state, id).await?;
    if current.status != "signing" {
        return Err(ApiError::conflict("agreement_final", format!("the agreement is {}", current.status), None));
    }
    if req.document_sha256 != current.sha256 {
        return Err(ApiError::conflict(
            "document_changed",
            "the agreement was revised after you read it; read the current version and sign that",
            Some(serde_json::json!({ "version": current.version, "sha256": current.sha256 })),
        ));
    }
    let now = now_text();
    let mut tx = state.db.begin().await?;
    let inserted = sqlx::query(
        "insert into agreement_signature (agreement_id, version, signer, signer_name, party_id, staff_account_id, document_sha256, signature_image, ip, user_agent, signed_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) on conflict (agreement_id, version, signer) do nothing",
    )
    .bind(id)
    .bind(current.version)
    .bind(signer)
    .bind(signer_name)
    .bind(party_id)
    .bind(staff_id)
    .bind(&req.document_sha256)
    .bind(&req.signature_image)
    .bind(&client.0)
    .bind(&client.1)
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(ApiError::conflict("already_signed", "you have signed this version", None));
    }
    cases::append_event(&mut tx, current.case_id, "agreement_signed", actor, &serde_json::json!({ "agreement_id": id, "version": current.version, "signer": signer, "document_sha256": req.document_sha256, "ip": client.0 })).await?;
    let signed: Vec<(String, String, String)> =
        sqlx::query_as("select signer, signer_name, signed_at from agreement_signature where agreement_id = $1 and version = $2 order by signer").bind(id).bind(current.version).fetch_all(&mut *tx).await?;
    let all = current.signers.iter().all(|s| signed.iter().any(|(x, _, _)| *x == s.signer));
    if all {
        // The last signature: the agreement takes effect and the organisation's seal is applied.
        let payload = seal_payload(&current, &signed, &now);
        let seal = state.seal.seal(&payload);
        sqlx::query("update agreement set status = 'effective', effective_at = $1, seal = $2, updated_at = $1 where agreement_id = $3").bind(&now).bind(&seal).bind(id).execute(&mut *tx).await?;
        cases::append_event(&mut tx, current.case_id, "agreement_effective", "system:seal", &serde_json::json!({ "agreement_id": id, "version": current.version, "sha256": current.sha256, "sm3": current.sm3, "seal": seal })).await?;
    }
    tx.commit().await?;
    view(state, id).await
}

fn seal_payload(v: &AgreementView, signed: &[(String, String, String)], effective_at: &str) -> serde_json::Value {
    serde_json::json!({
        "agreement_id": v.agreement_id,
        "version": v.version,
        "sha256": v.sha256,
        "sm3": v.sm3,
        "signatures": signed.iter().map(|(s, n, at)| serde_json::json!({ "signer": s, "name": n, "signed_at": at })).collect::<Vec<_>>(),
        "effective_at": effective_at,
    })
}

/// The mediator signs (an assigned mediator or lawyer of the case, or anyone who may mediate it).
#[utoipa::path(post, path = "/api/v1/agreements/{id}/sign", params(("id" = i64, Path)), request_body = SignRequest, responses((status = 200, body = AgreementView), (status = 409, body = super::error::ErrorBody)))]
pub async fn mediator_sign(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    staff: Staff,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<SignRequest>,
) -> Result<Json<AgreementView>, ApiError> {
    let (_, case_id, ..) = row(&state, id).await?;
    case_for(&state, &staff, case_id, Permission::MediateCase).await?;
    let (header, _) = header_and_parties(&state, case_id, 0).await?;
    let by = SignedBy { signer: "mediator".into(), name: header.mediator, party_id: None, staff_id: Some(staff.0.staff_account_id), client: client_of(&headers, peer), actor: staff.actor() };
    Ok(Json(sign(&state, id, by, &req).await?))
}

/// The party's own agreements, to read before signing.
#[utoipa::path(get, path = "/api/v1/party/agreements", responses((status = 200, body = Vec<AgreementView>)))]
pub async fn party_list(State(state): State<AppState>, PartyAccess(grant): PartyAccess) -> Result<Json<Vec<AgreementView>>, ApiError> {
    let ids: Vec<(i64,)> = sqlx::query_as("select agreement_id from agreement where case_id = $1 order by agreement_id").bind(grant.case_id).fetch_all(&state.db.pool).await?;
    let mut out = Vec::new();
    for (id,) in ids {
        out.push(view(&state, id).await?);
    }
    Ok(Json(out))
}

pub const SIGNING_CODE_TTL_SECS: u64 = 10 * 60;

/// Texts the party a code to sign with.
#[utoipa::path(post, path = "/api/v1/party/agreements/{id}/code", params(("id" = i64, Path)), responses((status = 202), (status = 422, body = super::error::ErrorBody)))]
pub async fn party_code(State(state): State<AppState>, PartyAccess(grant): PartyAccess, Path(id): Path<i64>) -> Result<axum::http::StatusCode, ApiError> {
    let (_, case_id, ..) = row(&state, id).await?;
    if case_id != grant.case_id {
        return Err(ApiError::NotFound(format!("no agreement {id}")));
    }
    let (phone,): (Option<String>,) = sqlx::query_as("select phone_enc from party where party_id = $1").bind(grant.party_id).fetch_one(&state.db.pool).await?;
    let phone = phone.and_then(|p| state.cipher.decrypt(&p).ok()).ok_or_else(|| bad("phone".into(), "no phone on file: sign at the mediation office".into()))?;
    let recent = text_time(std::time::SystemTime::now() - std::time::Duration::from_secs(60));
    let (n,): (i64,) = sqlx::query_as("select count(*) from signing_code where party_id = $1 and agreement_id = $2 and created_at > $3").bind(grant.party_id).bind(id).bind(&recent).fetch_one(&state.db.pool).await?;
    if n > 0 {
        return Err(ApiError::TooManyRequests("a code was sent less than a minute ago".into()));
    }
    let code = crate::auth::one_time_code();
    sqlx::query("insert into signing_code (agreement_id, party_id, code_hash, attempts, expires_at, created_at) values ($1, $2, $3, 0, $4, $5)")
        .bind(id)
        .bind(grant.party_id)
        .bind(token_hash(&format!("sign:{id}:{}:{code}", grant.party_id)))
        .bind(text_time(std::time::SystemTime::now() + std::time::Duration::from_secs(SIGNING_CODE_TTL_SECS)))
        .bind(now_text())
        .execute(&state.db.pool)
        .await?;
    state.sms.send(&phone, &format!("【解纷】您正在签署调解协议，签署验证码{code}，10分钟内有效。"));
    Ok(axum::http::StatusCode::ACCEPTED)
}

/// A party signs with their drawn signature and the code from their phone.
#[utoipa::path(post, path = "/api/v1/party/agreements/{id}/sign", params(("id" = i64, Path)), request_body = SignRequest, responses((status = 200, body = AgreementView), (status = 401, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn party_sign(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    PartyAccess(grant): PartyAccess,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<SignRequest>,
) -> Result<Json<AgreementView>, ApiError> {
    let (_, case_id, ..) = row(&state, id).await?;
    if case_id != grant.case_id {
        return Err(ApiError::NotFound(format!("no agreement {id}")));
    }
    // A stale document is refused before the code is spent, so the party can read and retry.
    let current = view(&state, id).await?;
    if req.document_sha256 != current.sha256 {
        return Err(ApiError::conflict(
            "document_changed",
            "the agreement was revised after you read it; read the current version and sign that",
            Some(serde_json::json!({ "version": current.version, "sha256": current.sha256 })),
        ));
    }
    let wrong = || ApiError::Unauthenticated("the signing code is wrong or has expired; ask for a new one".into());
    let code = req.code.as_deref().map(str::trim).filter(|c| c.len() == 6).ok_or_else(wrong)?;
    let latest: Option<(i64, String, i64)> = sqlx::query_as(
        "select signing_code_id, code_hash, attempts from signing_code where agreement_id = $1 and party_id = $2 and used_at is null and expires_at > $3 order by signing_code_id desc limit 1",
    )
    .bind(id)
    .bind(grant.party_id)
    .bind(now_text())
    .fetch_optional(&state.db.pool)
    .await?;
    let (code_id, hash, attempts) = latest.ok_or_else(wrong)?;
    if attempts >= 5 || token_hash(&format!("sign:{id}:{}:{code}", grant.party_id)) != hash {
        sqlx::query("update signing_code set attempts = attempts + 1 where signing_code_id = $1").bind(code_id).execute(&state.db.pool).await?;
        return Err(wrong());
    }
    let used = sqlx::query("update signing_code set used_at = $1 where signing_code_id = $2 and used_at is null").bind(now_text()).bind(code_id).execute(&state.db.pool).await?;
    if used.rows_affected() != 1 {
        return Err(wrong());
    }
    let (name,): (String,) = sqlx::query_as("select name from party where party_id = $1").bind(grant.party_id).fetch_one(&state.db.pool).await?;
    let signer = format!("party-{}", grant.party_id);
    let by = SignedBy { signer, name, party_id: Some(grant.party_id), staff_id: None, client: client_of(&headers, peer), actor: format!("party:{}", grant.party_id) };
    Ok(Json(sign(&state, id, by, &req).await?))
}

/// Drafting templates (通用, 房屋租赁押金, 物业费, 劳动报酬), to start a draft from.
#[utoipa::path(get, path = "/api/v1/agreement-templates", responses((status = 200, body = Vec<document::Template>)))]
pub async fn templates(_staff: Staff) -> Json<&'static [document::Template]> {
    Json(document::TEMPLATES)
}

/// The CJK font agreements are typeset in, loaded once (Debian: fonts-wqy-microhei or fonts-noto-cjk).
fn pdf_font() -> Option<&'static crate::agreement::font::Font> {
    static FONT: std::sync::OnceLock<Option<crate::agreement::font::Font>> = std::sync::OnceLock::new();
    FONT.get_or_init(|| {
        ["/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"]
            .iter()
            .filter_map(|p| std::fs::read(p).ok())
            .find_map(|bytes| crate::agreement::font::Font::parse(&bytes).ok())
    })
    .as_ref()
}

async fn pdf_of(state: &AppState, id: i64) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let v = view(state, id).await?;
    let font = pdf_font().ok_or_else(|| ApiError::conflict("no_cjk_font", "no CJK font is installed (Debian: fonts-wqy-microhei)", None))?;
    let rows: Vec<(String, String, String, String, String)> =
        sqlx::query_as("select signer_name, signed_at, ip, document_sha256, signature_image from agreement_signature where agreement_id = $1 and version = $2 order by signed_at")
            .bind(id)
            .bind(v.version)
            .fetch_all(&state.db.pool)
            .await?;
    let signatures: Vec<crate::agreement::pdf::Signature> =
        rows.into_iter().map(|(name, signed_at, ip, document_sha256, image)| crate::agreement::pdf::Signature { name, signed_at, ip, document_sha256, image }).collect();
    let title = format!("agreement-{id}-v{}", v.version);
    let seal = state.seal.clone();
    let bytes = tokio::task::spawn_blocking(move || {
        let input = crate::agreement::pdf::PdfInput { title: &title, body: &v.body, sha256: &v.sha256, signatures: &signatures, seal: v.seal.as_deref() };
        crate::agreement::pdf::sign(crate::agreement::pdf::render(font, &input), &seal)
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/pdf")], bytes).into_response())
}

/// The agreement as a PDF (Chinese text, the hash on every page, signatures, seal, and an
/// integrity signature over the file).
#[utoipa::path(get, path = "/api/v1/agreements/{id}/pdf", params(("id" = i64, Path)), responses((status = 200, content_type = "application/pdf")))]
pub async fn pdf(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>) -> Result<axum::response::Response, ApiError> {
    let (_, case_id, ..) = row(&state, id).await?;
    case_for(&state, &staff, case_id, Permission::ReadCase).await?;
    pdf_of(&state, id).await
}

/// The party's copy of the agreement as a PDF.
#[utoipa::path(get, path = "/api/v1/party/agreements/{id}/pdf", params(("id" = i64, Path)), responses((status = 200, content_type = "application/pdf")))]
pub async fn party_pdf(State(state): State<AppState>, PartyAccess(grant): PartyAccess, Path(id): Path<i64>) -> Result<axum::response::Response, ApiError> {
    let (_, case_id, ..) = row(&state, id).await?;
    if case_id != grant.case_id {
        return Err(ApiError::NotFound(format!("no agreement {id}")));
    }
    pdf_of(&state, id).await
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PdfCheck {
    /// The file is byte for byte what the organisation issued.
    pub valid: bool,
}

/// Checks an agreement PDF someone presents (the body is the PDF file).
#[utoipa::path(post, path = "/api/v1/agreements/pdf/verify", responses((status = 200, body = PdfCheck)))]
pub async fn verify_pdf(State(state): State<AppState>, body: axum::body::Bytes) -> Json<PdfCheck> {
    Json(PdfCheck { valid: crate::agreement::pdf::verify(&body, &state.seal.public_key_base64()) })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AgreementCheck {
    /// The stored text still has the hashes it was signed under.
    pub text_intact: bool,
    /// Every signature names the hash of the version it was given on.
    pub signatures_match: bool,
    /// The organisation's seal verifies (`None` before the agreement takes effect).
    pub seal_valid: Option<bool>,
}

/// Checks the agreement's text hashes, signatures and seal.
#[utoipa::path(get, path = "/api/v1/agreements/{id}/verify", params(("id" = i64, Path)), responses((status = 200, body = AgreementCheck)))]
pub async fn verify(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>) -> Result<Json<AgreementCheck>, ApiError> {
    let (_, case_id, ..) = row(&state, id).await?;
    case_for(&state, &staff, case_id, Permission::ReadCase).await?;
    let v = view(&state, id).await?;
    let text_intact = jiefen_recorder::hash::sha256(v.body.as_bytes()) == v.sha256 && jiefen_recorder::hash::sm3(v.body.as_bytes()) == v.sm3;
    let signed: Vec<(String, String, String, String)> =
        sqlx::query_as("select signer, signer_name, signed_at, document_sha256 from agreement_signature where agreement_id = $1 and version = $2 order by signer").bind(id).bind(v.version).fetch_all(&state.db.pool).await?;
    let signatures_match = signed.iter().all(|s| s.3 == v.sha256);
    let seal_valid = match (&v.seal, &v.effective_at) {
        (Some(seal), Some(at)) => {
            let triples: Vec<(String, String, String)> = signed.into_iter().map(|(a, b, c, _)| (a, b, c)).collect();
            Some(crate::agreement::seal::verify(&v.seal_public_key, &seal_payload(&v, &triples, at), seal))
        }
        _ => None,
    };
    Ok(Json(AgreementCheck { text_intact, signatures_match, seal_valid }))
}
