//! A whole node started in-process: health, readiness, metrics, OpenAPI, demo data, first admin,
//! on SQLite and on PostgreSQL with Redis.

mod common;

use jiefen::config::{Config, ConfigArgs};
use jiefen::server::{Server, StartOptions, default_web_dir};

fn config(dir: &std::path::Path, database_url: Option<String>, redis_url: Option<String>) -> Config {
    let args = ConfigArgs {
        listen: Some("127.0.0.1:0".parse().expect("addr")),
        data_dir: Some(dir.to_path_buf()),
        media_port: Some(0),
        media_workers: Some(1),
        database_url,
        redis_url,
        ..ConfigArgs::default()
    };
    Config::load(&args).expect("config")
}

async fn exercise(config: Config) {
    let server = Server::start(&config, StartOptions { demo: true, web_dir: default_web_dir(), sms: None }).await.expect("starts");
    assert!(server.first_admin_password.as_ref().is_some_and(|p| p.len() == 16));
    assert!(server.demo_seeded);
    let addr = server.local_addr;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    let (status, body) = common::http_get(addr, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, body) = common::http_get(addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = common::http_get(addr, "/api/v1/org-units").await;
    assert_eq!(status, 200);
    let units: Vec<serde_json::Value> = serde_json::from_str(&body).expect("json");
    let count = |level: &str| units.iter().filter(|u| u["level"] == level).count();
    assert_eq!((count("district"), count("street"), count("community")), (1, 3, 6));
    let (status, body) = common::http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    for name in ["jiefen_http_requests_total{class=\"2xx\"}", "jiefen_rooms", "jiefen_participants", "jiefen_media_packets_forwarded_total", "jiefen_db_pool_connections"] {
        assert!(body.contains(name), "metrics lack {name}:\n{body}");
    }
    let (status, body) = common::http_get(addr, "/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for path in ["/api/v1/org-units", "/api/v1/cases", "/api/v1/cases/{id}/transitions", "/api/v1/cases/{id}/sessions", "/api/v1/intake", "/api/v1/imports", "/api/v1/party/case", "/api/v1/supervision", "/api/v1/auth/login"] {
        assert!(doc["paths"][path].is_object(), "OpenAPI lacks {path}");
    }
    assert!(doc["components"]["schemas"]["CaseDetail"].is_object(), "schemas are collected from the paths");
    let (status, body) = common::http_get(addr, "/join?token=abc").await;
    assert_eq!(status, 200);
    assert!(body.contains("data-testid=\"join\""));
    let (status, _) = common::http_get(addr, "/sdk/jiefen.js").await;
    assert_eq!(status, 200);
    let _ = tx.send(());
    task.await.expect("join").expect("clean shutdown");

    // A second start on the same database: no new admin password, no second demo seed.
    let again = Server::start(&config, StartOptions { demo: true, web_dir: default_web_dir(), sms: None }).await.expect("restarts");
    assert!(again.first_admin_password.is_none());
    assert!(!again.demo_seeded);
}

#[tokio::test]
async fn node_serves_health_metrics_and_api_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    exercise(config(dir.path(), None, None)).await;
    assert!(dir.path().join("jiefen.db").exists());
    assert!(dir.path().join("token.key").exists());
}

#[tokio::test]
async fn node_serves_health_metrics_and_api_on_postgres_and_redis() {
    let Some(url) = common::fresh_pg_database().await else { return };
    let redis = std::env::var("JIEFEN_TEST_REDIS_URL").ok();
    if redis.is_none() {
        assert!(std::env::var("JIEFEN_REQUIRE_SERVICES").is_err(), "JIEFEN_TEST_REDIS_URL is required");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    exercise(config(dir.path(), Some(url), redis)).await;
    assert!(!dir.path().join("jiefen.db").exists(), "PostgreSQL mode must not create the SQLite file");
}
