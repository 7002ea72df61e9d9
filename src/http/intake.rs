//! Intake from outside the staff pages: the public web form and the QR entry of an org unit
//! (no account), and the import API for other systems (12345 hotline, petitions, prepaid
//! consumption supervision, the court), idempotent on their external ids.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Staff;
use super::cases::field_error;
use super::error::{ApiError, ApiJson, ApiQuery};
use super::qr::{self, QrQuery};
use crate::auth::Permission;
use crate::auth::party_link::PartyGrant;
use crate::case::intake::{CaseInput, FieldError, PartyInput, validate};
use crate::store::new_case::{self, Created, Origin};
use crate::store::staff::unix_now;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/intake", post(public_intake))
        .route("/api/v1/imports", post(import))
        .route("/api/v1/org-units/{id}/qr", get(org_qr))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PublicIntake {
    /// The org unit from the QR code scanned, or chosen on the form.
    pub org_unit_id: i64,
    pub category_code: String,
    pub summary: String,
    pub title: Option<String>,
    pub applicant: PartyInput,
    pub respondent: Option<PartyInput>,
    /// `web_form` (default) or `qr`.
    pub via: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct IntakeReceipt {
    pub case_number: String,
    /// The applicant's own link to follow the case.
    pub progress_url: String,
    pub access_token: String,
}

/// Days a citizen's own progress link stays valid after filing.
pub const APPLICANT_LINK_DAYS: u64 = 180;

/// A citizen files a dispute (no account): the case is registered and the applicant gets a link
/// to follow it.
#[utoipa::path(post, path = "/api/v1/intake", request_body = PublicIntake, responses((status = 201, body = IntakeReceipt), (status = 422, body = super::error::ErrorBody)))]
pub async fn public_intake(State(state): State<AppState>, ApiJson(req): ApiJson<PublicIntake>) -> Result<(axum::http::StatusCode, Json<IntakeReceipt>), ApiError> {
    let via = req.via.clone().unwrap_or_else(|| "web_form".into());
    if !matches!(via.as_str(), "web_form" | "qr") {
        return Err(ApiError::invalid("via", "web_form or qr"));
    }
    let mut applicant = req.applicant.clone();
    applicant.role = "applicant".into();
    let mut parties = vec![applicant];
    if let Some(mut r) = req.respondent.clone() {
        r.role = "respondent".into();
        parties.push(r);
    }
    let title = req.title.clone().filter(|t| !t.trim().is_empty()).unwrap_or_else(|| req.summary.chars().take(30).collect());
    let input = CaseInput { title, summary: req.summary.clone(), category_code: req.category_code.clone(), org_unit_id: req.org_unit_id, quick_track: false, parties };
    validate(&input, true).map_err(|e| field_error(rename_party_field(e)))?;
    let origin = Origin { channel: via, external_id: None, actor: "citizen".into() };
    let created = new_case::create(&state.db, &state.cipher, &input, &origin).await?.map_err(field_error)?;
    let (party_id,): (i64,) = sqlx::query_as("select party_id from party where case_id = $1 and role = 'applicant' order by party_id limit 1").bind(created.case_id).fetch_one(&state.db.pool).await?;
    let token = state.party_links.sign(PartyGrant { case_id: created.case_id, party_id, expires_unix: unix_now() + APPLICANT_LINK_DAYS * 86_400 });
    let progress_url = format!("{}/case.html#{token}", state.public_url);
    if let Some(phone) = &req.applicant.phone {
        state.sms.send(phone, &format!("【解纷】您的纠纷已登记，案件编号{}，查询进度：{progress_url}", created.case_number));
    }
    Ok((axum::http::StatusCode::CREATED, Json(IntakeReceipt { case_number: created.case_number, progress_url, access_token: token })))
}

/// The form names the applicant and respondent directly; say so in field errors.
fn rename_party_field(mut e: FieldError) -> FieldError {
    e.field = e.field.replace("parties[0]", "applicant").replace("parties[1]", "respondent");
    e
}

pub const IMPORT_SOURCES: &[&str] = &["hotline_12345", "petition", "prepaid_supervision", "court"];
pub const MAX_IMPORT_ROWS: usize = 1_000;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ImportRow {
    pub external_id: String,
    #[serde(flatten)]
    pub case: CaseInput,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ImportBatch {
    /// `hotline_12345`, `petition`, `prepaid_supervision` or `court`.
    pub source: String,
    /// Rows are JSON values so that one malformed row is reported, not the whole batch refused.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<serde_json::Value>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ImportRowError {
    pub row: usize,
    pub external_id: Option<String>,
    pub field: String,
    pub message: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub created: Vec<Created>,
    /// Rows whose external id was imported before: the existing case is named, nothing changed.
    pub existing: Vec<Created>,
    /// Of the created: those flagged as likely duplicates of an open case.
    pub flagged_duplicates: usize,
    pub errors: Vec<ImportRowError>,
}

/// Imports cases from another system. Good rows are imported, bad rows reported by field;
/// sending the same batch again creates nothing new.
#[utoipa::path(post, path = "/api/v1/imports", request_body = ImportBatch, responses((status = 200, body = ImportReport), (status = 422, body = super::error::ErrorBody)))]
pub async fn import(State(state): State<AppState>, staff: Staff, ApiJson(batch): ApiJson<ImportBatch>) -> Result<Json<ImportReport>, ApiError> {
    staff.require(Permission::ImportCases)?;
    if !IMPORT_SOURCES.contains(&batch.source.as_str()) {
        return Err(ApiError::invalid("source", format!("one of {}", IMPORT_SOURCES.join(", "))));
    }
    if batch.rows.len() > MAX_IMPORT_ROWS {
        return Err(ApiError::invalid("rows", format!("at most {MAX_IMPORT_ROWS} rows per batch")));
    }
    let scope = match staff.0.org_unit_id {
        Some(u) => Some(crate::store::org::OrgTree::load(&state.db).await?.subtree(u)),
        None => None,
    };
    let mut report = ImportReport { created: vec![], existing: vec![], flagged_duplicates: 0, errors: vec![] };
    for (i, value) in batch.rows.into_iter().enumerate() {
        let external_hint = value.get("external_id").and_then(|v| v.as_str()).map(String::from);
        let row: ImportRow = match serde_json::from_value(value) {
            Ok(r) => r,
            Err(e) => {
                report.errors.push(ImportRowError { row: i, external_id: external_hint, field: "row".into(), message: e.to_string() });
                continue;
            }
        };
        let bad = |field: &str, message: String| ImportRowError { row: i, external_id: Some(row.external_id.clone()), field: field.into(), message };
        let ext = row.external_id.trim();
        if ext.is_empty() || ext.len() > 128 {
            report.errors.push(bad("external_id", "1 to 128 characters".into()));
            continue;
        }
        if let Err(e) = validate(&row.case, false) {
            report.errors.push(bad(&e.field, e.message));
            continue;
        }
        if scope.as_ref().is_some_and(|s| !s.contains(&row.case.org_unit_id)) {
            report.errors.push(bad("org_unit_id", "outside your organisation".into()));
            continue;
        }
        let origin = Origin { channel: batch.source.clone(), external_id: Some(ext.to_string()), actor: format!("{}:{}", staff.actor(), batch.source) };
        match new_case::create(&state.db, &state.cipher, &row.case, &origin).await? {
            Ok(c) if c.existing => report.existing.push(c),
            Ok(c) => {
                report.flagged_duplicates += usize::from(c.duplicate_of.is_some());
                report.created.push(c);
            }
            Err(e) => report.errors.push(bad(&e.field, e.message)),
        }
    }
    Ok(Json(report))
}

/// The org unit's single QR entry (一码通): scanning it opens the intake form for that unit.
#[utoipa::path(get, path = "/api/v1/org-units/{id}/qr", params(("id" = i64, Path), QrQuery), responses((status = 200, content_type = "image/svg+xml"), (status = 404, body = super::error::ErrorBody)))]
pub async fn org_qr(State(state): State<AppState>, Path(id): Path<i64>, ApiQuery(q): ApiQuery<QrQuery>) -> Result<Response, ApiError> {
    let unit: Option<(i64,)> = sqlx::query_as("select org_unit_id from org_unit where org_unit_id = $1").bind(id).fetch_optional(&state.db.pool).await?;
    if unit.is_none() {
        return Err(ApiError::NotFound(format!("no org unit {id}")));
    }
    qr::respond(&format!("{}/intake.html?org={id}", state.public_url), q.format)
}
