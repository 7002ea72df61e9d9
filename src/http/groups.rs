#![allow(clippy::type_complexity)] // row tuples mirror their select lists
//! Group disputes (群体性纠纷), e.g. hundreds of gym members against one gym: the members are
//! imported from CSV as one case each under the group, every agreement is generated from one
//! template with each member's amount, signing links go out in bulk, confirmations are applied
//! for in bulk, and the progress of every member is visible.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Staff;
use super::court::ConfirmationRequest;
use super::error::{ApiError, ApiJson};
use crate::agreement::document::{AgreementFields, Term};
use crate::auth::Permission;
use crate::auth::party_link::PartyGrant;
use crate::case::CaseAction;
use crate::case::intake::{CaseInput, PartyInput, validate};
use crate::db::now_text;
use crate::store::cases::{self, Bind};
use crate::store::new_case::{self, Origin};
use crate::store::staff::unix_now;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/groups", post(create))
        .route("/api/v1/groups/{id}/members", post(import_members))
        .route("/api/v1/groups/{id}/agreements", post(generate_agreements))
        .route("/api/v1/groups/{id}/signing-links", post(send_links))
        .route("/api/v1/groups/{id}/confirmations", post(confirm_all))
        .route("/api/v1/groups/{id}/progress", get(progress))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewGroup {
    pub name: String,
    pub summary: String,
    pub category_code: String,
    pub org_unit_id: i64,
    pub respondent: PartyInput,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct GroupCreated {
    pub group_id: i64,
}

/// Opens a group dispute against one respondent.
#[utoipa::path(post, path = "/api/v1/groups", request_body = NewGroup, responses((status = 201, body = GroupCreated), (status = 422, body = super::error::ErrorBody)))]
pub async fn create(State(state): State<AppState>, staff: Staff, ApiJson(g): ApiJson<NewGroup>) -> Result<(axum::http::StatusCode, Json<GroupCreated>), ApiError> {
    staff.require(Permission::ImportCases)?;
    if g.name.trim().is_empty() || g.name.chars().count() > 200 {
        return Err(ApiError::invalid("name", "1 to 200 characters"));
    }
    // The respondent and the fields are checked as a case with one stand-in applicant would be.
    let probe = CaseInput {
        title: g.name.clone(),
        summary: g.summary.clone(),
        category_code: g.category_code.clone(),
        org_unit_id: g.org_unit_id,
        quick_track: false,
        parties: vec![PartyInput { role: "applicant".into(), name: "x".into(), phone: None, id_number: None, address: String::new(), language: None }, PartyInput { role: "respondent".into(), ..g.respondent.clone() }],
    };
    validate(&probe, false).map_err(|e| ApiError::Invalid { field: e.field.replace("parties[1]", "respondent"), message: e.message })?;
    if !crate::store::pool::category_active(&state.db, &g.category_code).await? {
        return Err(ApiError::invalid("category_code", "unknown or retired category"));
    }
    let (id,): (i64,) = sqlx::query_as(
        "insert into dispute_group (name, summary, category_code, org_unit_id, respondent_name, respondent_phone_enc, respondent_address, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8) returning group_id",
    )
    .bind(g.name.trim())
    .bind(g.summary.trim())
    .bind(&g.category_code)
    .bind(g.org_unit_id)
    .bind(g.respondent.name.trim())
    .bind(g.respondent.phone.as_deref().filter(|p| !p.trim().is_empty()).map(|p| state.cipher.encrypt(&crate::crypto::normalise(p))))
    .bind(g.respondent.address.trim())
    .bind(now_text())
    .fetch_one(&state.db.pool)
    .await?;
    Ok((axum::http::StatusCode::CREATED, Json(GroupCreated { group_id: id })))
}

type GroupRow = (String, String, String, i64, String, Option<String>, String);

/// A group the staff member's org unit covers (others answer 404, like cases).
async fn group(state: &AppState, staff: &Staff, id: i64) -> Result<GroupRow, ApiError> {
    let g: GroupRow = sqlx::query_as("select name, summary, category_code, org_unit_id, respondent_name, respondent_phone_enc, respondent_address from dispute_group where group_id = $1")
        .bind(id)
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no group {id}")))?;
    if let Some(unit) = staff.0.org_unit_id
        && !crate::store::org::OrgTree::load(&state.db).await?.contains(unit, g.3)
    {
        return Err(ApiError::NotFound(format!("no group {id}")));
    }
    Ok(g)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct MembersCsv {
    /// `name,phone,id_number,amount` per line (a header line is skipped); amount in yuan.
    pub csv: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MemberRowError {
    pub line: usize,
    pub message: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MembersImported {
    pub created: usize,
    /// Members imported before (same phone): unchanged.
    pub existing: usize,
    pub errors: Vec<MemberRowError>,
}

pub const MAX_MEMBERS: usize = 5_000;

/// Imports the members: one case each (the member applicant, the group's respondent).
#[utoipa::path(post, path = "/api/v1/groups/{id}/members", params(("id" = i64, Path)), request_body = MembersCsv, responses((status = 200, body = MembersImported)))]
pub async fn import_members(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>, ApiJson(req): ApiJson<MembersCsv>) -> Result<Json<MembersImported>, ApiError> {
    staff.require(Permission::ImportCases)?;
    let (name, summary, category, unit, r_name, r_phone, r_address) = group(&state, &staff, id).await?;
    let respondent_phone = r_phone.and_then(|p| state.cipher.decrypt(&p).ok());
    let mut report = MembersImported { created: 0, existing: 0, errors: Vec::new() };
    let lines: Vec<&str> = req.csv.lines().collect();
    if lines.len() > MAX_MEMBERS + 1 {
        return Err(ApiError::invalid("csv", format!("at most {MAX_MEMBERS} members per import")));
    }
    for (i, line) in lines.iter().enumerate() {
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        if line.trim().is_empty() || (i == 0 && cols.first().is_some_and(|c| c.eq_ignore_ascii_case("name") || *c == "姓名")) {
            continue;
        }
        let err = |message: String| MemberRowError { line: i + 1, message };
        if cols.len() < 4 {
            report.errors.push(err("expected name,phone,id_number,amount".into()));
            continue;
        }
        let Ok(amount) = cols[3].parse::<f64>() else {
            report.errors.push(err(format!("amount {} is not a number", cols[3])));
            continue;
        };
        if !(0.0..=10_000_000.0).contains(&amount) {
            report.errors.push(err("amount out of range".into()));
            continue;
        }
        let input = CaseInput {
            title: format!("{name}：{}", cols[0]),
            summary: format!("{summary}\n申请金额：{amount:.2}元"),
            category_code: category.clone(),
            org_unit_id: unit,
            quick_track: false,
            parties: vec![
                PartyInput { role: "applicant".into(), name: cols[0].into(), phone: Some(cols[1].into()), id_number: Some(cols[2].into()).filter(|s: &String| !s.is_empty()), address: String::new(), language: None },
                PartyInput { role: "respondent".into(), name: r_name.clone(), phone: respondent_phone.clone(), id_number: None, address: r_address.clone(), language: None },
            ],
        };
        if let Err(e) = validate(&input, true) {
            report.errors.push(err(format!("{}: {}", e.field.replace("parties[0]", "member"), e.message)));
            continue;
        }
        let origin = Origin { channel: "group".into(), external_id: Some(format!("group{id}:{}", crate::crypto::normalise(cols[1]))), actor: staff.actor() };
        match new_case::create(&state.db, &state.cipher, &input, &origin).await? {
            Ok(c) if c.existing => report.existing += 1,
            Ok(c) => {
                sqlx::query("update dispute_case set group_id = $1 where case_id = $2").bind(id).bind(c.case_id).execute(&state.db.pool).await?;
                report.created += 1;
            }
            Err(e) => report.errors.push(err(format!("{}: {}", e.field, e.message))),
        }
    }
    Ok(Json(report))
}

async fn member_cases(state: &AppState, id: i64) -> Result<Vec<(i64, String, String)>, ApiError> {
    Ok(sqlx::query_as("select case_id, status, summary from dispute_case where group_id = $1 order by case_id").bind(id).fetch_all(&state.db.pool).await?)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct GroupAgreements {
    pub mediator_id: i64,
    /// The template: `{amount}` in any text is replaced by each member's amount.
    pub template: AgreementFields,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BulkReport {
    pub done: usize,
    pub skipped: usize,
    pub errors: Vec<String>,
}

fn amount_of(summary: &str) -> String {
    summary.rsplit("申请金额：").next().and_then(|s| s.strip_suffix("元")).unwrap_or("0").to_string()
}

/// Brings every member's case to mediation with the mediator and drafts its agreement from the
/// template with the member's amount.
#[utoipa::path(post, path = "/api/v1/groups/{id}/agreements", params(("id" = i64, Path)), request_body = GroupAgreements, responses((status = 200, body = BulkReport)))]
pub async fn generate_agreements(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>, ApiJson(req): ApiJson<GroupAgreements>) -> Result<Json<BulkReport>, ApiError> {
    staff.require(Permission::TriageCase)?;
    staff.require(Permission::MediateCase)?;
    group(&state, &staff, id).await?;
    let org: Option<(i64,)> = sqlx::query_as("select mediation_org_id from mediator where mediator_id = $1").bind(req.mediator_id).fetch_optional(&state.db.pool).await?;
    let Some((org,)) = org else { return Err(ApiError::invalid("mediator_id", "no such mediator")) };
    let probe = fill(&req.template, "1.00");
    crate::agreement::document::validate(&probe).map_err(|(f, m)| ApiError::Invalid { field: format!("template.{f}"), message: m })?;
    let mut report = BulkReport { done: 0, skipped: 0, errors: Vec::new() };
    for (case_id, status, summary) in member_cases(&state, id).await? {
        let steps: &[CaseAction] = match status.as_str() {
            "registered" => &[CaseAction::Accept, CaseAction::Assign, CaseAction::StartMediation],
            "accepted" => &[CaseAction::Assign, CaseAction::StartMediation],
            "assigned" => &[CaseAction::StartMediation],
            "mediating" => &[],
            _ => {
                report.skipped += 1;
                continue;
            }
        };
        let result: Result<(), ApiError> = async {
            for step in steps {
                let case = cases::load(&state.db, case_id).await?.ok_or_else(|| ApiError::NotFound("case".into()))?;
                let (sets, binds) = if *step == CaseAction::Assign {
                    (vec!["mediator_id = $1".to_string(), "mediation_org_id = $2".to_string()], vec![Bind::Int(req.mediator_id), Bind::Int(org)])
                } else {
                    (vec![], vec![])
                };
                super::cases::change_status(&state, &staff, &case, *step, case.version, None, sets, binds, serde_json::Map::from_iter([("group_id".to_string(), id.into())])).await?;
            }
            super::agreements::draft_for(&state, &staff, case_id, &fill(&req.template, &amount_of(&summary))).await?;
            Ok(())
        }
        .await;
        match result {
            Ok(()) => report.done += 1,
            Err(ApiError::Conflict { code: "agreement_exists", .. }) => report.skipped += 1,
            Err(e) => report.errors.push(format!("case {case_id}: {e}")),
        }
    }
    Ok(Json(report))
}

fn fill(t: &AgreementFields, amount: &str) -> AgreementFields {
    let r = |s: &str| s.replace("{amount}", amount);
    AgreementFields {
        facts: r(&t.facts),
        disputes: r(&t.disputes),
        responsibilities: r(&t.responsibilities),
        terms: t.terms.iter().map(|x| Term { content: r(&x.content), performer: r(&x.performer), deadline: x.deadline.clone(), method: r(&x.method) }).collect(),
    }
}

/// Texts every member (and the respondent, once per case) a signed link to read and sign.
#[utoipa::path(post, path = "/api/v1/groups/{id}/signing-links", params(("id" = i64, Path)), responses((status = 200, body = BulkReport)))]
pub async fn send_links(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>) -> Result<Json<BulkReport>, ApiError> {
    staff.require(Permission::MediateCase)?;
    group(&state, &staff, id).await?;
    let mut report = BulkReport { done: 0, skipped: 0, errors: Vec::new() };
    let rows: Vec<(i64, i64, Option<String>, String)> = sqlx::query_as(
        "select p.case_id, p.party_id, p.phone_enc, c.case_number from party p join dispute_case c on c.case_id = p.case_id where c.group_id = $1 and p.role = 'applicant' order by p.party_id",
    )
    .bind(id)
    .fetch_all(&state.db.pool)
    .await?;
    for (case_id, party_id, phone, number) in rows {
        let Some(phone) = phone.and_then(|p| state.cipher.decrypt(&p).ok()) else {
            report.skipped += 1;
            continue;
        };
        let token = state.party_links.sign(PartyGrant { case_id, party_id, expires_unix: unix_now() + 30 * 86_400 });
        state.sms.send(&phone, &format!("【解纷】案件{number}的调解协议已拟好，请阅读并签署：{}/case.html#{token}", state.public_url));
        report.done += 1;
    }
    Ok(Json(report))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct GroupConfirmations {
    pub court_id: String,
}

/// Applies for judicial confirmation of every member's effective agreement.
#[utoipa::path(post, path = "/api/v1/groups/{id}/confirmations", params(("id" = i64, Path)), request_body = GroupConfirmations, responses((status = 200, body = BulkReport)))]
pub async fn confirm_all(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>, ApiJson(req): ApiJson<GroupConfirmations>) -> Result<Json<BulkReport>, ApiError> {
    group(&state, &staff, id).await?;
    let mut report = BulkReport { done: 0, skipped: 0, errors: Vec::new() };
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "select c.case_id, a.agreement_id from dispute_case c join agreement a on a.case_id = c.case_id \
         where c.group_id = $1 and a.status = 'effective' and not exists (select 1 from court_package k where k.case_id = c.case_id and k.kind = 'confirmation') order by c.case_id",
    )
    .bind(id)
    .fetch_all(&state.db.pool)
    .await?;
    for (case_id, agreement_id) in rows {
        let parties: Vec<(i64,)> = sqlx::query_as("select party_id from party where case_id = $1 and role in ('applicant', 'respondent')").bind(case_id).fetch_all(&state.db.pool).await?;
        let request = ConfirmationRequest {
            agreement_id,
            court_id: req.court_id.clone(),
            applicant_party_ids: parties.into_iter().map(|p| p.0).collect(),
            subject: Default::default(),
            subject_location: None,
            evidence: Vec::new(),
        };
        match super::court::confirm(&state, &staff, case_id, &request).await {
            Ok(_) => report.done += 1,
            Err(e) => report.errors.push(format!("case {case_id}: {e}")),
        }
    }
    Ok(Json(report))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MemberProgress {
    pub case_id: i64,
    pub case_number: String,
    pub member: String,
    pub status: String,
    pub agreement: Option<String>,
    pub signatures: i64,
    pub confirmation: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct GroupProgress {
    pub members: usize,
    pub agreements_effective: usize,
    pub confirmations_submitted: usize,
    pub confirmed: usize,
    pub rows: Vec<MemberProgress>,
}

/// Where every member stands.
#[utoipa::path(get, path = "/api/v1/groups/{id}/progress", params(("id" = i64, Path)), responses((status = 200, body = GroupProgress)))]
pub async fn progress(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>) -> Result<Json<GroupProgress>, ApiError> {
    staff.require(Permission::ReadCase)?;
    group(&state, &staff, id).await?;
    let rows: Vec<(i64, String, String, String, Option<String>, i64, Option<String>)> = sqlx::query_as(
        "select c.case_id, c.case_number, p.name, c.status, a.status, \
         (select count(*) from agreement_signature s where s.agreement_id = a.agreement_id and s.version = a.current_version), \
         (select k.status from court_package k where k.case_id = c.case_id and k.kind = 'confirmation' order by k.created_at desc limit 1) \
         from dispute_case c join party p on p.case_id = c.case_id and p.role = 'applicant' left join agreement a on a.case_id = c.case_id \
         where c.group_id = $1 order by c.case_id",
    )
    .bind(id)
    .fetch_all(&state.db.pool)
    .await?;
    let rows: Vec<MemberProgress> = rows
        .into_iter()
        .map(|r| MemberProgress { case_id: r.0, case_number: r.1, member: r.2, status: r.3, agreement: r.4, signatures: r.5, confirmation: r.6 })
        .collect();
    Ok(Json(GroupProgress {
        members: rows.len(),
        agreements_effective: rows.iter().filter(|r| r.agreement.as_deref() == Some("effective")).count(),
        confirmations_submitted: rows.iter().filter(|r| r.confirmation.is_some()).count(),
        confirmed: rows.iter().filter(|r| r.confirmation.as_deref() == Some("confirmed")).count(),
        rows,
    }))
}
