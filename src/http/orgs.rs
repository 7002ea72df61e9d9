//! The organisation tree (district → street → community), read-only for now.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Serialize;

use super::AppState;
use super::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/org-units", get(list_org_units))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OrgUnit {
    pub org_unit_id: i64,
    pub parent_id: Option<i64>,
    /// `district`, `street` or `community`.
    pub level: String,
    pub name: String,
    pub code: String,
}

/// Every org unit, parents before children.
#[utoipa::path(get, path = "/api/v1/org-units", responses((status = 200, body = Vec<OrgUnit>), (status = 500, body = super::error::ErrorBody)))]
pub async fn list_org_units(State(state): State<AppState>) -> Result<Json<Vec<OrgUnit>>, ApiError> {
    let rows: Vec<(i64, Option<i64>, String, String, String)> = sqlx::query_as(
        "select org_unit_id, parent_id, level, name, code from org_unit order by \
         case level when 'district' then 0 when 'street' then 1 else 2 end, org_unit_id",
    )
    .fetch_all(&state.db.pool)
    .await?;
    Ok(Json(
        rows.into_iter()
            .map(|(org_unit_id, parent_id, level, name, code)| OrgUnit { org_unit_id, parent_id, level, name, code })
            .collect(),
    ))
}
