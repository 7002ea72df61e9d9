//! Staff accounts and their login sessions: argon2 passwords, an optional TOTP second factor,
//! lockout after repeated failures, idle and absolute session timeouts, server-side logout.
//! Session tokens are random; only their SHA-256 is stored.

use std::time::{Duration, SystemTime};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use argon2::Argon2;
use ring::rand::{SecureRandom, SystemRandom};

use crate::auth::StaffRole;
use crate::auth::totp;
use crate::db::{Db, DbError, now_text};

#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    pub max_failures: i64,
    pub lockout: Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings { idle_timeout: Duration::from_secs(30 * 60), absolute_timeout: Duration::from_secs(12 * 3600), max_failures: 5, lockout: Duration::from_secs(15 * 60) }
    }
}

/// The signed-in staff member a request acts as.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Principal {
    pub staff_account_id: i64,
    pub username: String,
    pub display_name: String,
    pub role: StaffRole,
    /// `None`: the whole system (the first admin).
    pub org_unit_id: Option<i64>,
    pub mediator_id: Option<i64>,
    pub totp_enabled: bool,
    pub must_change_password: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("wrong username or password")]
    BadCredentials,
    #[error("too many failed attempts; the account is locked until {0}")]
    Locked(String),
    #[error("this account needs the 6-digit code from its authenticator app")]
    TotpRequired,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for LoginError {
    fn from(e: sqlx::Error) -> Self {
        LoginError::Db(DbError::Query(e))
    }
}

pub fn hash_password(password: &str) -> Result<String, DbError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| DbError::Query(sqlx::Error::Protocol(format!("password hashing failed: {e}"))))
}

fn password_matches(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

pub fn token_hash(token: &str) -> String {
    crate::case::chain::hex(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref())
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).expect("system random source");
    format!("s1.{}", crate::case::chain::hex(&bytes))
}

pub fn text_time(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

type AccountRow = (i64, String, String, String, String, Option<i64>, Option<i64>, Option<String>, i64, Option<String>, i64, i64);
const ACCOUNT_COLUMNS: &str = "staff_account_id, username, display_name, password_hash, role, org_unit_id, mediator_id, totp_secret, failed_logins, locked_until, \
     case when disabled then 1 else 0 end, case when must_change_password then 1 else 0 end";

fn principal(row: &AccountRow) -> Option<Principal> {
    Some(Principal {
        staff_account_id: row.0,
        username: row.1.clone(),
        display_name: row.2.clone(),
        role: StaffRole::parse(&row.4)?,
        org_unit_id: row.5,
        mediator_id: row.6,
        totp_enabled: row.7.is_some(),
        must_change_password: row.11 != 0,
    })
}

/// Checks the credentials and opens a session: (token, absolute expiry, who).
pub async fn login(db: &Db, settings: &AuthSettings, username: &str, password: &str, code: Option<&str>) -> Result<(String, String, Principal), LoginError> {
    let row: Option<AccountRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!("select {ACCOUNT_COLUMNS} from staff_account where username = $1")))
        .bind(username)
        .fetch_optional(&db.pool)
        .await?;
    let Some(row) = row else {
        // Spend the same time as a real check so that timing does not reveal which names exist.
        static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let pw = password.to_string();
        let _ = tokio::task::spawn_blocking(move || password_matches(DUMMY.get_or_init(|| hash_password("dummy").unwrap_or_default()), &pw)).await;
        return Err(LoginError::BadCredentials);
    };
    let now = SystemTime::now();
    let now_s = text_time(now);
    if let Some(until) = &row.9
        && until.as_str() > now_s.as_str()
    {
        return Err(LoginError::Locked(until.clone()));
    }
    if row.10 != 0 {
        return Err(LoginError::BadCredentials);
    }
    let hash = row.3.clone();
    let pw = password.to_string();
    let ok = tokio::task::spawn_blocking(move || password_matches(&hash, &pw)).await.unwrap_or(false);
    if !ok {
        record_failure(db, settings, row.0, row.8).await?;
        return Err(LoginError::BadCredentials);
    }
    if let Some(secret) = &row.7 {
        match code {
            None => return Err(LoginError::TotpRequired),
            Some(c) if !totp::verify(secret, c, unix_now()) => {
                record_failure(db, settings, row.0, row.8).await?;
                return Err(LoginError::BadCredentials);
            }
            Some(_) => {}
        }
    }
    sqlx::query("update staff_account set failed_logins = 0, locked_until = null where staff_account_id = $1").bind(row.0).execute(&db.pool).await?;
    let who = principal(&row).ok_or(LoginError::BadCredentials)?;
    let token = new_token();
    let expires = text_time(now + settings.absolute_timeout);
    sqlx::query("insert into auth_session (token_hash, staff_account_id, created_at, last_seen_at, expires_at) values ($1, $2, $3, $3, $4)")
        .bind(token_hash(&token))
        .bind(row.0)
        .bind(&now_s)
        .bind(&expires)
        .execute(&db.pool)
        .await?;
    Ok((token, expires, who))
}

async fn record_failure(db: &Db, settings: &AuthSettings, id: i64, failed_before: i64) -> Result<(), LoginError> {
    let failed = failed_before + 1;
    let locked_until = (failed >= settings.max_failures).then(|| text_time(SystemTime::now() + settings.lockout));
    if locked_until.is_some() {
        tracing::warn!(staff_account_id = id, "staff account locked after repeated login failures");
    }
    // The counter restarts after a lockout so that the next window gets its full attempts.
    sqlx::query("update staff_account set failed_logins = $1, locked_until = coalesce($2, locked_until) where staff_account_id = $3")
        .bind(if locked_until.is_some() { 0 } else { failed })
        .bind(locked_until)
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The principal behind a session token, if the session is alive; touching it extends the idle window.
pub async fn authenticate(db: &Db, settings: &AuthSettings, token: &str) -> Result<Option<Principal>, DbError> {
    let hash = token_hash(token);
    let row: Option<(String, String, i64)> = sqlx::query_as("select last_seen_at, expires_at, staff_account_id from auth_session where token_hash = $1")
        .bind(&hash)
        .fetch_optional(&db.pool)
        .await?;
    let Some((last_seen, expires, id)) = row else { return Ok(None) };
    let now = SystemTime::now();
    let now_s = text_time(now);
    let idle_deadline = humantime::parse_rfc3339(&last_seen).map(|t| text_time(t + settings.idle_timeout)).unwrap_or_default();
    if expires.as_str() <= now_s.as_str() || idle_deadline.as_str() <= now_s.as_str() {
        sqlx::query("delete from auth_session where token_hash = $1").bind(&hash).execute(&db.pool).await?;
        return Ok(None);
    }
    let account: Option<AccountRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!("select {ACCOUNT_COLUMNS} from staff_account where staff_account_id = $1")))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    let Some(account) = account.filter(|a| a.10 == 0) else { return Ok(None) };
    sqlx::query("update auth_session set last_seen_at = $1 where token_hash = $2").bind(&now_s).bind(&hash).execute(&db.pool).await?;
    Ok(principal(&account))
}

pub async fn logout(db: &Db, token: &str) -> Result<(), DbError> {
    sqlx::query("delete from auth_session where token_hash = $1").bind(token_hash(token)).execute(&db.pool).await?;
    Ok(())
}

/// Ends every session of an account (password change, disabling).
pub async fn logout_everywhere(db: &Db, staff_account_id: i64) -> Result<(), DbError> {
    sqlx::query("delete from auth_session where staff_account_id = $1").bind(staff_account_id).execute(&db.pool).await?;
    Ok(())
}

pub async fn begin_totp(db: &Db, staff_account_id: i64) -> Result<String, DbError> {
    let secret = totp::new_secret();
    sqlx::query("update staff_account set totp_pending = $1 where staff_account_id = $2").bind(&secret).bind(staff_account_id).execute(&db.pool).await?;
    Ok(secret)
}

/// Turns the pending secret on once the user proves their app has it.
pub async fn confirm_totp(db: &Db, staff_account_id: i64, code: &str) -> Result<bool, DbError> {
    let (pending,): (Option<String>,) = sqlx::query_as("select totp_pending from staff_account where staff_account_id = $1").bind(staff_account_id).fetch_one(&db.pool).await?;
    let Some(secret) = pending else { return Ok(false) };
    if !totp::verify(&secret, code, unix_now()) {
        return Ok(false);
    }
    sqlx::query("update staff_account set totp_secret = totp_pending, totp_pending = null where staff_account_id = $1").bind(staff_account_id).execute(&db.pool).await?;
    Ok(true)
}

pub async fn change_password(db: &Db, staff_account_id: i64, old: &str, new: &str) -> Result<bool, DbError> {
    let (hash,): (String,) = sqlx::query_as("select password_hash from staff_account where staff_account_id = $1").bind(staff_account_id).fetch_one(&db.pool).await?;
    let old = old.to_string();
    if !tokio::task::spawn_blocking(move || password_matches(&hash, &old)).await.unwrap_or(false) {
        return Ok(false);
    }
    let new_hash = hash_password(new)?;
    sqlx::query("update staff_account set password_hash = $1, must_change_password = $2 where staff_account_id = $3").bind(new_hash).bind(false).bind(staff_account_id).execute(&db.pool).await?;
    logout_everywhere(db, staff_account_id).await?;
    Ok(true)
}

pub struct NewStaff<'a> {
    pub username: &'a str,
    pub display_name: &'a str,
    pub password: &'a str,
    pub role: StaffRole,
    pub org_unit_id: Option<i64>,
    pub mediator_id: Option<i64>,
}

pub async fn create(db: &Db, s: &NewStaff<'_>) -> Result<Option<i64>, DbError> {
    let hash = hash_password(s.password)?;
    let row: Option<(i64,)> = sqlx::query_as(
        "insert into staff_account (username, display_name, password_hash, role, org_unit_id, mediator_id, must_change_password, created_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict (username) do nothing returning staff_account_id",
    )
    .bind(s.username)
    .bind(s.display_name)
    .bind(hash)
    .bind(s.role.as_str())
    .bind(s.org_unit_id)
    .bind(s.mediator_id)
    .bind(false)
    .bind(now_text())
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(|r| r.0))
}
