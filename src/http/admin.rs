#![allow(clippy::type_complexity)] // row tuples mirror their select lists
//! The organisation's people and vocabulary: staff accounts, the mediator resource pool
//! (mediators, pro-bono lawyers, volunteers), mediation organisations, named mediation rooms,
//! and dispute categories.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, patch};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{MIN_PASSWORD, Staff};
use super::error::{ApiError, ApiJson};
use crate::auth::{Permission, StaffRole};
use crate::case::matching::Candidate;
use crate::db::now_text;
use crate::store::org::OrgTree;
use crate::store::staff::{self, NewStaff};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/staff", get(list_staff).post(create_staff))
        .route("/api/v1/mediators", get(list_mediators).post(create_mediator))
        .route("/api/v1/mediators/{id}", patch(update_mediator))
        .route("/api/v1/mediation-orgs", get(list_orgs))
        .route("/api/v1/named-rooms", get(list_named_rooms))
        .route("/api/v1/categories", get(list_categories).post(create_category))
        .route("/api/v1/categories/{code}", patch(update_category))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StaffView {
    pub staff_account_id: i64,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub org_unit_id: Option<i64>,
    pub mediator_id: Option<i64>,
    pub totp_enabled: bool,
    pub locked_until: Option<String>,
}

/// Staff accounts in the caller's subtree (admins only).
#[utoipa::path(get, path = "/api/v1/staff", responses((status = 200, body = Vec<StaffView>)))]
pub async fn list_staff(State(state): State<AppState>, who: Staff) -> Result<Json<Vec<StaffView>>, ApiError> {
    who.require(Permission::ManageStaff)?;
    let rows: Vec<(i64, String, String, String, Option<i64>, Option<i64>, Option<String>, Option<String>)> =
        sqlx::query_as("select staff_account_id, username, display_name, role, org_unit_id, mediator_id, totp_secret, locked_until from staff_account order by staff_account_id")
            .fetch_all(&state.db.pool)
            .await?;
    let subtree = match who.0.org_unit_id {
        Some(u) => Some(OrgTree::load(&state.db).await?.subtree(u)),
        None => None,
    };
    Ok(Json(
        rows.into_iter()
            .filter(|r| subtree.as_ref().is_none_or(|s| r.4.is_some_and(|u| s.contains(&u))))
            .map(|r| StaffView { staff_account_id: r.0, username: r.1, display_name: r.2, role: r.3, org_unit_id: r.4, mediator_id: r.5, totp_enabled: r.6.is_some(), locked_until: r.7 })
            .collect(),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewStaffRequest {
    pub username: String,
    pub display_name: String,
    pub password: String,
    pub role: StaffRole,
    /// Required for every role but system_admin.
    pub org_unit_id: Option<i64>,
    /// For mediators and lawyers: their entry in the resource pool.
    pub mediator_id: Option<i64>,
}

/// Creates a staff account scoped to an org unit (admins only).
#[utoipa::path(post, path = "/api/v1/staff", request_body = NewStaffRequest, responses((status = 201, body = StaffView), (status = 409, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn create_staff(State(state): State<AppState>, who: Staff, ApiJson(req): ApiJson<NewStaffRequest>) -> Result<(axum::http::StatusCode, Json<StaffView>), ApiError> {
    who.require(Permission::ManageStaff)?;
    let username = req.username.trim();
    if username.is_empty() || username.len() > 64 || !username.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
        return Err(ApiError::invalid("username", "1-64 characters of a-z, 0-9, . _ -"));
    }
    if req.display_name.trim().is_empty() || req.display_name.chars().count() > 64 {
        return Err(ApiError::invalid("display_name", "1 to 64 characters"));
    }
    if req.password.chars().count() < MIN_PASSWORD || req.password.len() > 256 {
        return Err(ApiError::invalid("password", format!("at least {MIN_PASSWORD} characters")));
    }
    let tree = OrgTree::load(&state.db).await?;
    match req.org_unit_id {
        None if req.role != StaffRole::SystemAdmin => return Err(ApiError::invalid("org_unit_id", "required for this role")),
        Some(u) if tree.get(u).is_none() => return Err(ApiError::invalid("org_unit_id", format!("no org unit {u}"))),
        Some(u) if who.0.org_unit_id.is_some_and(|mine| !tree.contains(mine, u)) => return Err(ApiError::invalid("org_unit_id", "outside your organisation")),
        _ => {}
    }
    if req.org_unit_id.is_none() && who.0.org_unit_id.is_some() {
        return Err(ApiError::invalid("org_unit_id", "only a system-wide admin creates system-wide accounts"));
    }
    if let Some(m) = req.mediator_id {
        let found: Option<(i64,)> = sqlx::query_as("select mediator_id from mediator where mediator_id = $1").bind(m).fetch_optional(&state.db.pool).await?;
        if found.is_none() {
            return Err(ApiError::invalid("mediator_id", format!("no mediator {m}")));
        }
    }
    let new = NewStaff { username, display_name: req.display_name.trim(), password: &req.password, role: req.role, org_unit_id: req.org_unit_id, mediator_id: req.mediator_id };
    let Some(id) = staff::create(&state.db, &new).await? else { return Err(ApiError::conflict("username_taken", format!("{username} is taken"), None)) };
    Ok((
        axum::http::StatusCode::CREATED,
        Json(StaffView {
            staff_account_id: id,
            username: username.into(),
            display_name: req.display_name.trim().into(),
            role: req.role.as_str().into(),
            org_unit_id: req.org_unit_id,
            mediator_id: req.mediator_id,
            totp_enabled: false,
            locked_until: None,
        }),
    ))
}

/// The mediator resource pool with each one's current load (open cases).
#[utoipa::path(get, path = "/api/v1/mediators", responses((status = 200, body = Vec<Candidate>)))]
pub async fn list_mediators(State(state): State<AppState>, who: Staff) -> Result<Json<Vec<Candidate>>, ApiError> {
    who.require(Permission::ReadCase)?;
    Ok(Json(crate::store::pool::candidates(&state.db).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct MediatorInput {
    pub mediation_org_id: i64,
    pub name: String,
    pub kind: Option<String>,
    pub specialties: Vec<String>,
    pub languages: Vec<String>,
    pub max_load: Option<i64>,
}

fn check_codes(field: &str, values: &[String]) -> Result<String, ApiError> {
    if values.len() > 20 || values.iter().any(|v| v.is_empty() || v.len() > 64 || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')) {
        return Err(ApiError::invalid(field, "up to 20 codes of a-z, 0-9, _ -"));
    }
    Ok(values.join(","))
}

/// Adds a mediator, pro-bono lawyer or volunteer to the pool (admins only).
#[utoipa::path(post, path = "/api/v1/mediators", request_body = MediatorInput, responses((status = 201, body = Object), (status = 422, body = super::error::ErrorBody)))]
pub async fn create_mediator(State(state): State<AppState>, who: Staff, ApiJson(req): ApiJson<MediatorInput>) -> Result<(axum::http::StatusCode, Json<serde_json::Value>), ApiError> {
    who.require(Permission::ManageStaff)?;
    let kind = req.kind.clone().unwrap_or_else(|| "mediator".into());
    if !matches!(kind.as_str(), "mediator" | "lawyer" | "volunteer") {
        return Err(ApiError::invalid("kind", "mediator, lawyer or volunteer"));
    }
    if req.name.trim().is_empty() || req.name.chars().count() > 64 {
        return Err(ApiError::invalid("name", "1 to 64 characters"));
    }
    let specialties = check_codes("specialties", &req.specialties)?;
    let languages = check_codes("languages", &req.languages)?;
    let max_load = req.max_load.unwrap_or(8);
    if !(1..=100).contains(&max_load) {
        return Err(ApiError::invalid("max_load", "1 to 100"));
    }
    let org: Option<(i64,)> = sqlx::query_as("select mediation_org_id from mediation_org where mediation_org_id = $1").bind(req.mediation_org_id).fetch_optional(&state.db.pool).await?;
    if org.is_none() {
        return Err(ApiError::invalid("mediation_org_id", format!("no mediation organisation {}", req.mediation_org_id)));
    }
    let (id,): (i64,) = sqlx::query_as(
        "insert into mediator (mediation_org_id, name, specialties, languages, available, kind, max_load, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8) returning mediator_id",
    )
    .bind(req.mediation_org_id)
    .bind(req.name.trim())
    .bind(specialties)
    .bind(languages)
    .bind(true)
    .bind(&kind)
    .bind(max_load)
    .bind(now_text())
    .fetch_one(&state.db.pool)
    .await?;
    Ok((axum::http::StatusCode::CREATED, Json(serde_json::json!({ "mediator_id": id }))))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct MediatorUpdate {
    pub available: Option<bool>,
    pub max_load: Option<i64>,
    pub specialties: Option<Vec<String>>,
    pub languages: Option<Vec<String>>,
}

/// Availability, capacity and specialties of a mediator (admins, or the mediator themself).
#[utoipa::path(patch, path = "/api/v1/mediators/{id}", params(("id" = i64, Path)), request_body = MediatorUpdate, responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
pub async fn update_mediator(State(state): State<AppState>, who: Staff, Path(id): Path<i64>, ApiJson(req): ApiJson<MediatorUpdate>) -> Result<axum::http::StatusCode, ApiError> {
    if !(crate::auth::allows(who.0.role, Permission::ManageStaff) || who.0.mediator_id == Some(id)) {
        return Err(ApiError::forbidden());
    }
    let found: Option<(i64,)> = sqlx::query_as("select mediator_id from mediator where mediator_id = $1").bind(id).fetch_optional(&state.db.pool).await?;
    if found.is_none() {
        return Err(ApiError::NotFound(format!("no mediator {id}")));
    }
    if let Some(m) = req.max_load
        && !(1..=100).contains(&m)
    {
        return Err(ApiError::invalid("max_load", "1 to 100"));
    }
    let specialties = req.specialties.as_deref().map(|v| check_codes("specialties", v)).transpose()?;
    let languages = req.languages.as_deref().map(|v| check_codes("languages", v)).transpose()?;
    sqlx::query(
        "update mediator set available = coalesce($1, available), max_load = coalesce($2, max_load), specialties = coalesce($3, specialties), languages = coalesce($4, languages) where mediator_id = $5",
    )
    .bind(req.available)
    .bind(req.max_load)
    .bind(specialties)
    .bind(languages)
    .bind(id)
    .execute(&state.db.pool)
    .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MediationOrgView {
    pub mediation_org_id: i64,
    pub org_unit_id: i64,
    /// `people`, `administrative`, `industry`, `judicial`.
    pub kind: String,
    pub name: String,
}

/// Mediation organisations and the org units they belong to.
#[utoipa::path(get, path = "/api/v1/mediation-orgs", responses((status = 200, body = Vec<MediationOrgView>)))]
pub async fn list_orgs(State(state): State<AppState>) -> Result<Json<Vec<MediationOrgView>>, ApiError> {
    let rows: Vec<(i64, i64, String, String)> = sqlx::query_as("select mediation_org_id, org_unit_id, kind, name from mediation_org order by mediation_org_id").fetch_all(&state.db.pool).await?;
    Ok(Json(rows.into_iter().map(|(mediation_org_id, org_unit_id, kind, name)| MediationOrgView { mediation_org_id, org_unit_id, kind, name }).collect()))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct NamedRoomView {
    pub named_room_id: i64,
    pub mediation_org_id: i64,
    pub name: String,
    pub description: String,
}

/// Named mediation rooms (特色调解室 such as 老街坊, 暖情).
#[utoipa::path(get, path = "/api/v1/named-rooms", responses((status = 200, body = Vec<NamedRoomView>)))]
pub async fn list_named_rooms(State(state): State<AppState>) -> Result<Json<Vec<NamedRoomView>>, ApiError> {
    let rows: Vec<(i64, i64, String, String)> = sqlx::query_as("select named_room_id, mediation_org_id, name, description from named_room order by named_room_id").fetch_all(&state.db.pool).await?;
    Ok(Json(rows.into_iter().map(|(named_room_id, mediation_org_id, name, description)| NamedRoomView { named_room_id, mediation_org_id, name, description }).collect()))
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct CategoryView {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    /// One of the ten categories of the epidemic zone (疫情专区).
    pub epidemic_zone: bool,
    pub active: bool,
}

/// Dispute categories (public: the intake form needs them).
#[utoipa::path(get, path = "/api/v1/categories", responses((status = 200, body = Vec<CategoryView>)))]
pub async fn list_categories(State(state): State<AppState>) -> Result<Json<Vec<CategoryView>>, ApiError> {
    let rows: Vec<(String, String, String, i64, i64)> =
        sqlx::query_as("select code, name_zh, name_en, case when epidemic_zone then 1 else 0 end, case when active then 1 else 0 end from category order by category_id").fetch_all(&state.db.pool).await?;
    Ok(Json(rows.into_iter().map(|(code, name_zh, name_en, epidemic_zone, active)| CategoryView { code, name_zh, name_en, epidemic_zone: epidemic_zone != 0, active: active != 0 }).collect()))
}

/// Adds a category (admins only).
#[utoipa::path(post, path = "/api/v1/categories", request_body = CategoryView, responses((status = 201, body = CategoryView), (status = 409, body = super::error::ErrorBody)))]
pub async fn create_category(State(state): State<AppState>, who: Staff, ApiJson(req): ApiJson<CategoryView>) -> Result<(axum::http::StatusCode, Json<CategoryView>), ApiError> {
    who.require(Permission::ManageCategories)?;
    check_codes("code", std::slice::from_ref(&req.code))?;
    for (field, v) in [("name_zh", &req.name_zh), ("name_en", &req.name_en)] {
        if v.trim().is_empty() || v.chars().count() > 64 {
            return Err(ApiError::invalid(field, "1 to 64 characters"));
        }
    }
    let inserted = sqlx::query("insert into category (code, name_zh, name_en, epidemic_zone, active, created_at) values ($1, $2, $3, $4, $5, $6) on conflict (code) do nothing")
        .bind(&req.code)
        .bind(req.name_zh.trim())
        .bind(req.name_en.trim())
        .bind(req.epidemic_zone)
        .bind(req.active)
        .bind(now_text())
        .execute(&state.db.pool)
        .await?;
    if inserted.rows_affected() == 0 {
        return Err(ApiError::conflict("category_exists", format!("category {} exists", req.code), None));
    }
    Ok((axum::http::StatusCode::CREATED, Json(req)))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CategoryUpdate {
    pub name_zh: Option<String>,
    pub name_en: Option<String>,
    pub epidemic_zone: Option<bool>,
    /// Retire (false) or bring back (true); cases keep their category either way.
    pub active: Option<bool>,
}

/// Edits or retires a category (admins only).
#[utoipa::path(patch, path = "/api/v1/categories/{code}", params(("code" = String, Path)), request_body = CategoryUpdate, responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
pub async fn update_category(State(state): State<AppState>, who: Staff, Path(code): Path<String>, ApiJson(req): ApiJson<CategoryUpdate>) -> Result<axum::http::StatusCode, ApiError> {
    who.require(Permission::ManageCategories)?;
    for (field, v) in [("name_zh", &req.name_zh), ("name_en", &req.name_en)] {
        if v.as_ref().is_some_and(|v| v.trim().is_empty() || v.chars().count() > 64) {
            return Err(ApiError::invalid(field, "1 to 64 characters"));
        }
    }
    let done = sqlx::query(
        "update category set name_zh = coalesce($1, name_zh), name_en = coalesce($2, name_en), epidemic_zone = coalesce($3, epidemic_zone), active = coalesce($4, active) where code = $5",
    )
    .bind(req.name_zh.as_deref().map(str::trim))
    .bind(req.name_en.as_deref().map(str::trim))
    .bind(req.epidemic_zone)
    .bind(req.active)
    .bind(&code)
    .execute(&state.db.pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(ApiError::NotFound(format!("no category {code}")));
    }
    Ok(axum::http::StatusCode::NO_CONTENT)
}
