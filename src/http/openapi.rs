//! The OpenAPI 3 document of the REST API, generated from the handlers' annotations.

use axum::Json;
use axum::Router;
use axum::routing::get;
use utoipa::OpenApi;

use super::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "jiefen API", description = "Online dispute resolution: cases and video mediation"),
    paths(
        super::health::healthz, super::health::readyz, super::metrics::metrics, super::orgs::list_org_units, openapi_json,
        super::auth::login, super::auth::logout, super::auth::me, super::auth::begin_totp, super::auth::confirm_totp, super::auth::change_password,
        super::cases::register, super::cases::list, super::cases::detail, super::cases::edit, super::cases::transition,
        super::cases::suggestions, super::cases::assign, super::cases::transfer, super::cases::take_case,
        super::cases::events, super::cases::verify_events, super::cases::party_link,
        super::casework::add_assessment, super::casework::list_assessments, super::casework::follow_up, super::casework::list_follow_ups, super::casework::supervision,
        super::sessions::schedule, super::sessions::list_for_case, super::sessions::detail, super::sessions::links, super::sessions::invitee_qr, super::sessions::add_record,
        super::intake::public_intake, super::intake::import, super::intake::org_qr,
        super::party::request_code, super::party::verify_code, super::party::my_case,
        super::admin::list_staff, super::admin::create_staff, super::admin::list_mediators, super::admin::create_mediator, super::admin::update_mediator,
        super::admin::list_orgs, super::admin::list_named_rooms, super::admin::list_categories, super::admin::create_category, super::admin::update_category,
        super::hooks::session_event,
        super::recordings::list_for_case, super::recordings::detail, super::recordings::verify, super::recordings::file,
        super::agreements::draft, super::agreements::revise, super::agreements::detail, super::agreements::list_for_case, super::agreements::mediator_sign,
        super::agreements::party_list, super::agreements::party_code, super::agreements::party_sign, super::agreements::verify,
        super::agreements::pdf, super::agreements::party_pdf, super::agreements::verify_pdf, super::agreements::templates,
        super::court::list_courts, super::court::proposed, super::court::apply_confirmation, super::court::file_lawsuit, super::court::packages, super::court::callback,
        super::groups::create, super::groups::import_members, super::groups::generate_agreements, super::groups::send_links, super::groups::confirm_all, super::groups::progress,
    ),
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
