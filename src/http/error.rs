//! One error type for the API; every error leaves as `{"code","message","details"}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// A field that failed validation, named so that a form can point at it.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    /// A state the request does not fit: an illegal transition, a stale version.
    #[error("{message}")]
    Conflict { code: &'static str, message: String, details: Option<serde_json::Value> },
    #[error("{0}")]
    TooManyRequests(String),
    /// The account signed in with a one-time password and must set its own first.
    #[error("set a new password first (POST /api/v1/auth/password)")]
    PasswordChangeRequired,
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::Invalid { field: field.to_string(), message: message.into() }
    }
    pub fn conflict(code: &'static str, message: impl Into<String>, details: Option<serde_json::Value>) -> ApiError {
        ApiError::Conflict { code, message: message.into(), details }
    }
    pub fn forbidden() -> ApiError {
        ApiError::Forbidden("your role does not allow this".into())
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub code: &'static str,
    pub message: String,
    pub details: Option<serde_json::Value>,
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        ApiError::Internal(anyhow::Error::new(e))
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(anyhow::Error::new(e))
    }
}

impl From<crate::case::state::IllegalTransition> for ApiError {
    fn from(e: crate::case::state::IllegalTransition) -> Self {
        let available: Vec<&str> = crate::case::state::available(e.from).into_iter().map(|a| a.as_str()).collect();
        ApiError::conflict("illegal_transition", e.to_string(), Some(serde_json::json!({ "status": e.from.as_str(), "action": e.action.as_str(), "available": available })))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut details = None;
        let (status, code) = match &self {
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Invalid { field, .. } => {
                details = Some(serde_json::json!({ "field": field }));
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
            }
            ApiError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::Conflict { code, details: d, .. } => {
                details = d.clone();
                (StatusCode::CONFLICT, *code)
            }
            ApiError::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            ApiError::PasswordChangeRequired => (StatusCode::FORBIDDEN, "password_change_required"),
            ApiError::Internal(e) => {
                // Logged in full, shown as a generic message.
                tracing::error!(error = ?e, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        (status, Json(ErrorBody { code, message: self.to_string(), details })).into_response()
    }
}

/// JSON bodies whose shape is wrong get our error body, not axum's plain text.
pub struct ApiJson<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}

/// Query strings likewise.
pub struct ApiQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}
