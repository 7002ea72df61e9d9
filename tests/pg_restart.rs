//! PostgreSQL restarts while cases are being registered: every write the API acknowledged is
//! there afterwards, and the server serves again without a restart of its own. In a test binary
//! of its own: restarting the shared database must not disturb other tests.

mod common;

use std::time::{Duration, Instant};

use jiefen::config::{Config, ConfigArgs};
use jiefen::server::{Server, StartOptions, default_web_dir};
use serde_json::json;

fn pg_ctl_restart() {
    let (Ok(data), Ok(bin)) = (std::env::var("JIEFEN_TEST_PG_DATA"), std::env::var("JIEFEN_TEST_PG_BIN")) else { return };
    let pg_ctl = format!("{bin}/pg_ctl");
    let args = ["-D", data.as_str(), "restart", "-m", "fast", "-w", "-t", "30"];
    // The throwaway cluster runs as the postgres user when the tests run as root.
    let status = if std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0")) {
        std::process::Command::new("runuser").args(["-u", "postgres", "--", &pg_ctl]).args(args).stdout(std::process::Stdio::null()).status()
    } else {
        std::process::Command::new(&pg_ctl).args(args).stdout(std::process::Stdio::null()).status()
    };
    assert!(status.is_ok_and(|s| s.success()), "pg_ctl restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_loses_no_acknowledged_write() {
    let Some(url) = common::fresh_pg_database().await else { return };
    if std::env::var("JIEFEN_TEST_PG_DATA").is_err() {
        assert!(std::env::var("JIEFEN_REQUIRE_SERVICES").is_err(), "JIEFEN_TEST_PG_DATA is required (scripts/test.sh sets it)");
        eprintln!("SKIPPED: no JIEFEN_TEST_PG_DATA");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let args = ConfigArgs { listen: Some("127.0.0.1:0".parse().expect("addr")), data_dir: Some(dir.path().into()), media_port: Some(0), media_workers: Some(1), database_url: Some(url), ..ConfigArgs::default() };
    let config = Config::load(&args).expect("config");
    let server = Server::start(&config, StartOptions { demo: true, web_dir: default_web_dir(), sms: None }).await.expect("start");
    let password = server.first_admin_password.clone().expect("password");
    let addr = server.local_addr;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    let token = common::first_admin(addr, &password).await;
    let (_, units) = common::api(addr, "GET", "/api/v1/org-units", None, None).await;
    let unit = units.as_array().expect("units").iter().find(|u| u["level"] == "community").expect("community")["org_unit_id"].clone();

    let writer = tokio::spawn(async move {
        let mut acknowledged = Vec::new();
        let mut failed = 0;
        let until = Instant::now() + Duration::from_secs(8);
        let mut i = 0;
        while Instant::now() < until {
            i += 1;
            let body = json!({ "title": format!("重启测试{i}"), "summary": "数据库重启期间登记", "category_code": "other", "org_unit_id": unit,
                "parties": [{ "role": "applicant", "name": "张三", "phone": "13500000000" }] });
            let (status, created) = common::api(addr, "POST", "/api/v1/cases", Some(&token), Some(body)).await;
            if status == 201 {
                acknowledged.push(created["case_id"].as_i64().expect("id"));
            } else {
                failed += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        (acknowledged, failed, token)
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    tokio::task::spawn_blocking(pg_ctl_restart).await.expect("restart");
    let (acknowledged, failed, token) = writer.await.expect("writer");
    println!("{} registrations acknowledged, {failed} refused while the database restarted", acknowledged.len());
    assert!(acknowledged.len() > 10, "writes went on before and after the restart");
    for id in &acknowledged {
        let (status, _) = common::api(addr, "GET", &format!("/api/v1/cases/{id}"), Some(&token), None).await;
        assert_eq!(status, 200, "acknowledged case {id} is there");
    }
    let (status, _) = common::http_get(addr, "/readyz").await;
    assert_eq!(status, 200, "ready again without a restart of its own");
    let _ = tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
}
