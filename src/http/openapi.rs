//! The OpenAPI 3 document of the REST API, generated from the handlers' annotations.

use axum::Json;
use axum::Router;
use axum::routing::get;
use utoipa::OpenApi;

use super::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "jiefen API", description = "Online dispute resolution: cases and video mediation"),
    paths(super::health::healthz, super::health::readyz, super::metrics::metrics, super::orgs::list_org_units, openapi_json),
    components(schemas(super::error::ErrorBody, super::health::Readiness, super::orgs::OrgUnit))
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/openapi.json", get(openapi_json))
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", responses((status = 200, description = "OpenAPI 3 document")))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
