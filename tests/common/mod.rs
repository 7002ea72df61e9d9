//! Helpers shared by the integration tests: real PostgreSQL from `JIEFEN_TEST_DATABASE_URL`
//! (scripts/test.sh starts one), a fresh database per test, and a tiny HTTP client.
#![allow(dead_code)]

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The PostgreSQL base URL, or `None` (then the test is skipped, loudly) unless services are required.
pub fn pg_base_url() -> Option<String> {
    match std::env::var("JIEFEN_TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var("JIEFEN_REQUIRE_SERVICES").is_err(),
                "JIEFEN_TEST_DATABASE_URL is required (scripts/test.sh sets it)"
            );
            eprintln!("SKIPPED: no JIEFEN_TEST_DATABASE_URL; run scripts/test.sh for the PostgreSQL half");
            None
        }
    }
}

/// Creates an empty database for one test and returns its URL.
pub async fn fresh_pg_database() -> Option<String> {
    let base = pg_base_url()?;
    sqlx::any::install_default_drivers();
    let name = format!("t_{}", rand::random::<u64>());
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&base).await.expect("connect to test PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}"))).execute(&mut conn).await.expect("create database");
    let (prefix, _) = base.rsplit_once('/').expect("database URL has a path");
    Some(format!("{prefix}/{name}"))
}

pub fn sqlite_url(dir: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("test.db").display())
}

/// GET over plain HTTP/1.1; returns (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// One HTTP/1.1 request with an optional bearer token and JSON body; returns (status, body bytes, content type).
pub async fn http_raw(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: Option<&serde_json::Value>) -> (u16, Vec<u8>, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("header end");
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type:").map(|v| v.trim().to_string()))
        .unwrap_or_default();
    let mut payload = buf[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        payload = dechunk(&payload);
    }
    (status, payload, content_type)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") else { return out };
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..line_end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 2 + size + 2..];
    }
}

/// A JSON API call: (status, parsed body or `null`).
/// Signs the first admin in with the one-time password printed at the first start: it must set a
/// password of its own before anything else (checked here), then signs in again with it.
#[allow(dead_code)]
pub async fn first_admin(addr: SocketAddr, one_time: &str) -> String {
    let sign_in = |password: String| async move {
        let (status, body) = api(addr, "POST", "/api/v1/auth/login", None, Some(serde_json::json!({ "username": "admin", "password": password }))).await;
        assert_eq!(status, 200, "admin login: {body}");
        (body["token"].as_str().expect("token").to_string(), body["account"]["must_change_password"].as_bool())
    };
    let (token, must_change) = sign_in(one_time.to_string()).await;
    assert_eq!(must_change, Some(true), "the one-time password must be changed");
    let (status, body) = api(addr, "GET", "/api/v1/cases", Some(&token), None).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("password_change_required")), "{body}");
    let (status, me) = api(addr, "GET", "/api/v1/auth/me", Some(&token), None).await;
    assert_eq!((status, me["username"].as_str()), (200, Some("admin")));
    let (status, body) = api(addr, "POST", "/api/v1/auth/password", Some(&token), Some(serde_json::json!({ "old_password": one_time, "new_password": one_time }))).await;
    assert_eq!((status, body["details"]["field"].as_str()), (422, Some("new_password")), "the same password again is refused: {body}");
    let new_password = format!("{one_time}-admin-own");
    let (status, body) = api(addr, "POST", "/api/v1/auth/password", Some(&token), Some(serde_json::json!({ "old_password": one_time, "new_password": new_password }))).await;
    assert_eq!(status, 204, "password change: {body}");
    let (token, must_change) = sign_in(new_password).await;
    assert_eq!(must_change, Some(false));
    token
}

pub async fn api(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
    let (status, bytes, _) = http_raw(addr, method, path, token, body.as_ref()).await;
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

/// The S3-compatible test server (scripts/test.sh starts moto with a bucket `jiefen-test`).
pub fn s3_url() -> Option<String> {
    match std::env::var("JIEFEN_TEST_S3_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(std::env::var("JIEFEN_REQUIRE_SERVICES").is_err(), "JIEFEN_TEST_S3_URL is required (scripts/test.sh sets it)");
            eprintln!("SKIPPED: no JIEFEN_TEST_S3_URL; run scripts/test.sh for the object-storage half");
            None
        }
    }
}

/// Any request with the given extra headers and raw body; (status, body bytes, response head).
pub async fn raw(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Vec<u8>, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    let head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}Content-Length: {}\r\n\r\n", body.len());
    s.write_all(head.as_bytes()).await.expect("write");
    s.write_all(body).await.expect("write body");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(buf.len());
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, buf.get(split + 4..).unwrap_or_default().to_vec(), head)
}
