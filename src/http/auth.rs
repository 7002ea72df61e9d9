//! Staff login and the request extractors: `Staff` (a signed-in staff member) and `PartyAccess`
//! (a party holding a signed link to their own case).

use axum::Json;
use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::{ApiError, ApiJson};
use crate::auth::party_link::{PartyGrant, is_party_token};
use crate::auth::{Permission, allows};
use crate::store::staff::{self, LoginError, Principal, unix_now};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/auth/me", get(me))
        .route("/api/v1/auth/totp", post(begin_totp))
        .route("/api/v1/auth/totp/confirm", post(confirm_totp))
        .route("/api/v1/auth/password", post(change_password))
}

fn bearer(parts: &Parts) -> Option<&str> {
    let header = parts.headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    header.strip_prefix("Bearer ").map(str::trim)
}

/// A signed-in staff member.
pub struct Staff(pub Principal);

impl Staff {
    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if allows(self.0.role, p) { Ok(()) } else { Err(ApiError::forbidden()) }
    }
    pub fn actor(&self) -> String {
        format!("staff:{}:{}", self.0.staff_account_id, self.0.username)
    }
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let SignedIn(p) = SignedIn::from_request_parts(parts, state).await?;
        // An account still on its one-time password (the first admin) may only see who it is
        // and set its own password.
        if p.must_change_password {
            return Err(ApiError::PasswordChangeRequired);
        }
        Ok(Staff(p))
    }
}

/// A signed-in staff account, also one that must still change its one-time password: for
/// `me` and the password change only. Everything else takes [`Staff`].
pub struct SignedIn(pub Principal);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).filter(|t| !is_party_token(t)).ok_or_else(|| ApiError::Unauthenticated("sign in first (Authorization: Bearer <token>)".into()))?;
        match staff::authenticate(&state.db, &state.auth, token).await? {
            Some(p) => Ok(SignedIn(p)),
            None => Err(ApiError::Unauthenticated("the session has expired or was ended; sign in again".into())),
        }
    }
}

/// A party's access to their own case through a signed link.
pub struct PartyAccess(pub PartyGrant);

impl FromRequestParts<AppState> for PartyAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or_else(|| ApiError::Unauthenticated("open the link you were sent, or ask for a code".into()))?;
        state
            .party_links
            .verify(token, unix_now())
            .map(PartyAccess)
            .ok_or_else(|| ApiError::Unauthenticated("this link is not valid or has expired".into()))
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// The authenticator code, for accounts with TOTP turned on.
    pub totp: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    pub token: String,
    /// The absolute end of the session; it also ends after the idle timeout.
    pub expires_at: String,
    pub account: Principal,
}

/// Staff login: password, then the TOTP code if the account has one.
#[utoipa::path(post, path = "/api/v1/auth/login", request_body = LoginRequest, responses((status = 200, body = LoginResponse), (status = 401, body = super::error::ErrorBody), (status = 429, body = super::error::ErrorBody)))]
pub async fn login(State(state): State<AppState>, ApiJson(req): ApiJson<LoginRequest>) -> Result<Json<LoginResponse>, ApiError> {
    if req.username.len() > 64 || req.password.len() > 256 {
        return Err(ApiError::Unauthenticated(LoginError::BadCredentials.to_string()));
    }
    match staff::login(&state.db, &state.auth, req.username.trim(), &req.password, req.totp.as_deref()).await {
        Ok((token, expires_at, account)) => Ok(Json(LoginResponse { token, expires_at, account })),
        Err(e @ LoginError::Locked(_)) => Err(ApiError::TooManyRequests(e.to_string())),
        Err(LoginError::TotpRequired) => Err(ApiError::conflict("totp_required", LoginError::TotpRequired.to_string(), None)),
        Err(e @ LoginError::BadCredentials) => Err(ApiError::Unauthenticated(e.to_string())),
        Err(LoginError::Db(e)) => Err(e.into()),
    }
}

/// Ends this session on the server.
#[utoipa::path(post, path = "/api/v1/auth/logout", responses((status = 204)))]
pub async fn logout(State(state): State<AppState>, parts: axum::http::HeaderMap) -> Result<axum::http::StatusCode, ApiError> {
    if let Some(token) = parts.get(axum::http::header::AUTHORIZATION).and_then(|h| h.to_str().ok()).and_then(|h| h.strip_prefix("Bearer ")) {
        staff::logout(&state.db, token.trim()).await?;
    }
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Who is signed in.
#[utoipa::path(get, path = "/api/v1/auth/me", responses((status = 200, body = Principal), (status = 401, body = super::error::ErrorBody)))]
pub async fn me(staff: SignedIn) -> Json<Principal> {
    Json(staff.0)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TotpEnrolment {
    pub secret: String,
    pub otpauth_url: String,
}

/// Starts TOTP enrolment: a new secret for the authenticator app, active once confirmed.
#[utoipa::path(post, path = "/api/v1/auth/totp", responses((status = 200, body = TotpEnrolment)))]
pub async fn begin_totp(State(state): State<AppState>, staff: Staff) -> Result<Json<TotpEnrolment>, ApiError> {
    let secret = staff::begin_totp(&state.db, staff.0.staff_account_id).await?;
    Ok(Json(TotpEnrolment { otpauth_url: crate::auth::totp::otpauth_url(&secret, &staff.0.username), secret }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CodeRequest {
    pub code: String,
}

/// Confirms TOTP enrolment with a code from the app; from then on login asks for one.
#[utoipa::path(post, path = "/api/v1/auth/totp/confirm", request_body = CodeRequest, responses((status = 204), (status = 422, body = super::error::ErrorBody)))]
pub async fn confirm_totp(State(state): State<AppState>, staff: Staff, ApiJson(req): ApiJson<CodeRequest>) -> Result<axum::http::StatusCode, ApiError> {
    if staff::confirm_totp(&state.db, staff.0.staff_account_id, &req.code).await? {
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::invalid("code", "the code does not match; check the phone's clock and try the current code"))
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasswordChange {
    pub old_password: String,
    pub new_password: String,
}

pub const MIN_PASSWORD: usize = 10;

/// Changes the password and ends every session of the account (sign in again with the new one).
/// An account on its one-time password (403 `password_change_required` everywhere else) must
/// do this first.
#[utoipa::path(post, path = "/api/v1/auth/password", request_body = PasswordChange, responses((status = 204), (status = 422, body = super::error::ErrorBody)))]
pub async fn change_password(State(state): State<AppState>, staff: SignedIn, ApiJson(req): ApiJson<PasswordChange>) -> Result<axum::http::StatusCode, ApiError> {
    if req.new_password.chars().count() < MIN_PASSWORD || req.new_password.len() > 256 {
        return Err(ApiError::invalid("new_password", format!("at least {MIN_PASSWORD} characters")));
    }
    if req.new_password == req.old_password {
        return Err(ApiError::invalid("new_password", "choose a password different from the current one"));
    }
    if staff::change_password(&state.db, staff.0.staff_account_id, &req.old_password, &req.new_password).await? {
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::invalid("old_password", "the current password is wrong"))
    }
}
