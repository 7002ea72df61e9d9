//! The case backend through its HTTP API, on SQLite and on PostgreSQL: the authorisation matrix
//! (roles × endpoints × org units), the whole loop from public intake to supervision with a real
//! video session, imports, optimistic versioning, login security, encryption at rest, deadlines,
//! and the event chain catching tampering.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::api;
use jiefen::auth::sms::LogSms;
use jiefen::config::{Config, ConfigArgs};
use jiefen::db::Db;
use jiefen::server::{Server, StartOptions, default_web_dir};
use serde_json::{Value, json};

struct Node {
    addr: SocketAddr,
    sms: LogSms,
    admin: String,
    db: Db,
    units: HashMap<String, i64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Node {
    async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

fn config(dir: &std::path::Path, database_url: Option<String>) -> Config {
    let args = ConfigArgs {
        listen: Some("127.0.0.1:0".parse().expect("addr")),
        data_dir: Some(dir.to_path_buf()),
        media_port: Some(0),
        media_workers: Some(1),
        database_url,
        ..ConfigArgs::default()
    };
    Config::load(&args).expect("config")
}

async fn start_with(database_url: Option<String>, tweak: impl FnOnce(&mut Config)) -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = database_url.unwrap_or_else(|| common::sqlite_url(dir.path()));
    let mut config = config(dir.path(), Some(url));
    tweak(&mut config);
    let sms = LogSms::default();
    let server = Server::start(&config, StartOptions { demo: true, web_dir: default_web_dir(), sms: Some(sms.clone()) }).await.expect("starts");
    let password = server.first_admin_password.clone().expect("first start");
    let addr = server.local_addr;
    let db = server.state.db.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    let admin = common::first_admin(addr, &password).await;
    let (_, units) = api(addr, "GET", "/api/v1/org-units", None, None).await;
    let units = units.as_array().expect("units").iter().map(|u| (u["code"].as_str().expect("code").to_string(), u["org_unit_id"].as_i64().expect("id"))).collect();
    Node { addr, sms, admin, db, units, stop: Some(tx), task: Some(task), _dir: dir }
}

async fn start(database_url: Option<String>) -> Node {
    start_with(database_url, |_| {}).await
}

async fn login(addr: SocketAddr, user: &str, password: &str) -> String {
    let (status, body) = api(addr, "POST", "/api/v1/auth/login", None, Some(json!({ "username": user, "password": password }))).await;
    assert_eq!(status, 200, "login {user}: {body}");
    body["token"].as_str().expect("token").to_string()
}

const PASSWORD: &str = "correct horse battery";

/// Creates a staff account and signs it in.
async fn staff(n: &Node, username: &str, role: &str, unit: Option<&str>, mediator_id: Option<i64>) -> String {
    let (status, body) = api(
        n.addr,
        "POST",
        "/api/v1/staff",
        Some(&n.admin),
        Some(json!({ "username": username, "display_name": username, "password": PASSWORD, "role": role, "org_unit_id": unit.map(|u| n.units[u]), "mediator_id": mediator_id })),
    )
    .await;
    assert_eq!(status, 201, "create {username}: {body}");
    login(n.addr, username, PASSWORD).await
}

async fn mediator(n: &Node, org_id: i64, name: &str, kind: &str) -> i64 {
    let (status, body) = api(
        n.addr,
        "POST",
        "/api/v1/mediators",
        Some(&n.admin),
        Some(json!({ "mediation_org_id": org_id, "name": name, "kind": kind, "specialties": ["house_lease"], "languages": ["zh"] })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["mediator_id"].as_i64().expect("id")
}

fn case_input(unit: i64, phone: &str, category: &str) -> Value {
    json!({
        "title": "押金纠纷",
        "summary": "租期届满后房东拒绝退还押金三千元",
        "category_code": category,
        "org_unit_id": unit,
        "parties": [
            { "role": "applicant", "name": "张三", "phone": phone, "id_number": "11010519491231002X", "address": "玉泉西里3号楼" },
            { "role": "respondent", "name": "李四", "phone": "13900001111" }
        ]
    })
}

async fn register(n: &Node, token: &str, unit: &str, phone: &str) -> i64 {
    let (status, body) = api(n.addr, "POST", "/api/v1/cases", Some(token), Some(case_input(n.units[unit], phone, "house_lease"))).await;
    assert_eq!(status, 201, "{body}");
    body["case_id"].as_i64().expect("case id")
}

async fn version(n: &Node, case_id: i64) -> i64 {
    let (status, body) = api(n.addr, "GET", &format!("/api/v1/cases/{case_id}"), Some(&n.admin), None).await;
    assert_eq!(status, 200, "{body}");
    body["version"].as_i64().expect("version")
}

async fn act(n: &Node, token: &str, case_id: i64, action: &str, reason: Option<&str>) -> Value {
    let v = version(n, case_id).await;
    let (status, body) = api(n.addr, "POST", &format!("/api/v1/cases/{case_id}/transitions"), Some(token), Some(json!({ "action": action, "version": v, "reason": reason }))).await;
    assert_eq!(status, 200, "{action}: {body}");
    body
}

async fn assign(n: &Node, token: &str, case_id: i64, mediator_id: i64) {
    let v = version(n, case_id).await;
    let (status, body) = api(n.addr, "POST", &format!("/api/v1/cases/{case_id}/assign"), Some(token), Some(json!({ "mediator_id": mediator_id, "version": v }))).await;
    assert_eq!(status, 200, "{body}");
}

async fn first_org(n: &Node) -> i64 {
    let (_, orgs) = api(n.addr, "GET", "/api/v1/mediation-orgs", None, None).await;
    orgs[0]["mediation_org_id"].as_i64().expect("org")
}

// ---------------------------------------------------------------------------------------------
// The authorisation matrix.

/// Endpoint letters: R read, E edit, T triage (transition), M matching, S schedule session,
/// A assessment, F follow-up, V verify chain, P leader takes the case.
const ENDPOINTS: &str = "RETMSAFVP";

/// What each role may do to a case inside its scope, written out by hand from the role
/// descriptions (not derived from the policy code under test).
const EXPECTED: &[(&str, &str)] = &[
    ("system_admin", "RETMSAFVP"),
    ("district_coordinator", "RETMSFVP"),
    ("street_staff", "RETMFV"),
    ("community_staff", "RETMFV"),
    ("mediator", "RESV"),
    ("lawyer", ""),
    ("assessor", "RAV"),
    ("leader", "RTMFVP"),
    ("court_liaison", "RV"),
];

/// A request that passes authorisation but changes nothing (stale version or invalid field).
fn probe(letter: char, case_id: i64) -> (&'static str, String, Option<Value>) {
    let p = |s: &str| format!("/api/v1/cases/{case_id}{s}");
    match letter {
        'R' => ("GET", p(""), None),
        'E' => ("PATCH", p(""), Some(json!({ "version": 0, "title": "x" }))),
        'T' => ("POST", p("/transitions"), Some(json!({ "action": "accept", "version": 0 }))),
        'M' => ("GET", p("/matching"), None),
        'S' => ("POST", p("/sessions"), Some(json!({ "mode": "no_such_mode" }))),
        'A' => ("POST", p("/assessments"), Some(json!({ "kind": "no_such_kind", "summary": "x", "risk_level": "low" }))),
        'F' => ("POST", p("/follow-ups"), Some(json!({ "version": 0, "performed": "no_such", "satisfaction": 3 }))),
        'V' => ("GET", p("/events/verify"), None),
        'P' => ("POST", p("/leader"), Some(json!({ "version": 0 }))),
        _ => unreachable!(),
    }
}

async fn authorisation_matrix(database_url: Option<String>) {
    let n = start(database_url).await;
    let org = first_org(&n).await;
    let assigned = mediator(&n, org, "赵调解", "mediator").await;
    let lawyer_entry = mediator(&n, org, "钱律师", "lawyer").await;
    let case_a = register(&n, &n.admin, "sjs-bbs-yq", "13800000001").await;
    let case_b = register(&n, &n.admin, "sjs-lg-qh", "13800000002").await;
    act(&n, &n.admin, case_a, "accept", None).await;
    assign(&n, &n.admin, case_a, assigned).await;

    let mut tokens = Vec::new();
    for (role, _) in EXPECTED {
        let (unit, mediator_id) = match *role {
            "system_admin" => (None, None),
            "district_coordinator" => (Some("sjs"), None),
            "community_staff" => (Some("sjs-bbs-yq"), None),
            "mediator" => (Some("sjs-bbs"), Some(assigned)),
            "lawyer" => (Some("sjs-bbs"), Some(lawyer_entry)),
            _ => (Some("sjs-bbs"), None),
        };
        tokens.push(staff(&n, &format!("u_{role}"), role, unit, mediator_id).await);
    }
    let mut failures = Vec::new();
    for ((role, allowed), token) in EXPECTED.iter().zip(&tokens) {
        let sees_b = matches!(*role, "system_admin" | "district_coordinator");
        for (case_id, in_scope) in [(case_a, *role != "lawyer"), (case_b, sees_b)] {
            for letter in ENDPOINTS.chars() {
                let (method, path, body) = probe(letter, case_id);
                let (status, resp) = api(n.addr, method, &path, Some(token), body).await;
                let ok = if !in_scope {
                    status == 404
                } else if allowed.contains(letter) {
                    !matches!(status, 401 | 403 | 404) && status < 500
                } else {
                    status == 403
                };
                if !ok {
                    failures.push(format!("{role} {letter} case {case_id} (in scope: {in_scope}): {status} {resp}"));
                }
            }
        }
        // The list shows exactly the cases in scope.
        let (status, page) = api(n.addr, "GET", "/api/v1/cases?per_page=100", Some(token), None).await;
        assert_eq!(status, 200);
        let mut listed: Vec<i64> = page["items"].as_array().expect("items").iter().map(|c| c["case_id"].as_i64().expect("id")).collect();
        listed.sort();
        let mut expected = Vec::new();
        if *role != "lawyer" {
            expected.push(case_a);
        }
        if sees_b {
            expected.push(case_b);
        }
        if listed != expected {
            failures.push(format!("{role} lists {listed:?}, expected {expected:?}"));
        }
    }
    // Nobody can do anything without signing in.
    for letter in ENDPOINTS.chars() {
        let (method, path, body) = probe(letter, case_a);
        let (status, _) = api(n.addr, method, &path, None, body).await;
        if status != 401 {
            failures.push(format!("anonymous {letter}: {status}"));
        }
    }
    assert!(failures.is_empty(), "authorisation matrix broken:\n{}", failures.join("\n"));

    // Psychological results: the assessor and the case's mediator read them, a leader does not.
    let assessor = &tokens[6];
    let (status, body) = api(n.addr, "POST", &format!("/api/v1/cases/{case_a}/assessments"), Some(assessor), Some(json!({ "kind": "psychological", "summary": "焦虑，需疏导", "risk_level": "medium" }))).await;
    assert_eq!(status, 201, "{body}");
    for (who, token, readable) in [("assessor", assessor, true), ("mediator", &tokens[4], true), ("leader", &tokens[7], false)] {
        let (_, list) = api(n.addr, "GET", &format!("/api/v1/cases/{case_a}/assessments"), Some(token), None).await;
        assert_eq!(list[0]["summary"].is_string(), readable, "{who}: {list}");
    }
    n.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorisation_matrix_sqlite() {
    authorisation_matrix(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorisation_matrix_postgres() {
    let Some(url) = common::fresh_pg_database().await else { return };
    authorisation_matrix(Some(url)).await;
}

// ---------------------------------------------------------------------------------------------
// From intake to supervision, with a real video session.

fn token_of(url: &str) -> String {
    url.split("token=").nth(1).expect("token in link").to_string()
}

fn participant(addr: SocketAddr, join_url: &str, identity: &str) -> jiefen_loadtest::participant::Participant {
    jiefen_loadtest::participant::Participant::spawn(jiefen_loadtest::participant::ParticipantConfig {
        entry_urls: vec![format!("http://{addr}")],
        token: token_of(join_url),
        identity: identity.into(),
        publish_audio: true,
        publish_video: true,
        media: jiefen_loadtest::MediaSpec::Synthetic { bytes: 600, packets_per_second: 30 },
        data_per_second: 0,
    })
}

async fn wait_for(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn full_loop(database_url: Option<String>) {
    // A participant that vanishes without saying goodbye counts as gone after the reconnect
    // window; keep it short so that attendance closes within the test either way.
    let n = start_with(database_url, |c| c.limits.reconnect_window = Duration::from_secs(2)).await;
    let org = first_org(&n).await;
    let m = mediator(&n, org, "王调解", "mediator").await;
    let mediator_token = staff(&n, "wang", "mediator", Some("sjs"), Some(m)).await;
    let street = staff(&n, "street", "street_staff", Some("sjs-bbs"), None).await;
    let leader = staff(&n, "leader", "leader", Some("sjs"), None).await;

    // A citizen files from the QR entry of their community.
    let (status, png, ctype) = common::http_raw(n.addr, "GET", &format!("/api/v1/org-units/{}/qr?format=png", n.units["sjs-bbs-yq"]), None, None).await;
    assert_eq!((status, ctype.as_str()), (200, "image/png"));
    assert!(png.starts_with(b"\x89PNG"));
    let (status, _) = api(n.addr, "GET", "/api/v1/org-units/999999/qr", None, None).await;
    assert_eq!(status, 404);
    let (status, receipt) = api(
        n.addr,
        "POST",
        "/api/v1/intake",
        None,
        Some(json!({
            "org_unit_id": n.units["sjs-bbs-yq"], "category_code": "house_lease", "via": "qr",
            "summary": "房东拒绝退还押金三千元，多次协商未果",
            "applicant": { "role": "applicant", "name": "张三", "phone": "138 0013 8000" },
            "respondent": { "role": "respondent", "name": "李四" }
        })),
    )
    .await;
    assert_eq!(status, 201, "{receipt}");
    let number = receipt["case_number"].as_str().expect("number").to_string();
    assert!(n.sms.last_to("13800138000").is_some_and(|t| t.contains(&number)), "the applicant was texted the case number");
    let (status, bad) = api(n.addr, "POST", "/api/v1/intake", None, Some(json!({ "org_unit_id": n.units["sjs-bbs-yq"], "category_code": "house_lease", "summary": "x", "applicant": { "role": "applicant", "name": "无电话" } }))).await;
    assert_eq!((status, bad["details"]["field"].as_str()), (422, Some("applicant.phone")), "{bad}");

    // Street staff find it by phone and by number, and triage it.
    let (_, page) = api(n.addr, "GET", "/api/v1/cases?phone=13800138000", Some(&street), None).await;
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(page["items"][0]["applicant_phone"], "138****8000");
    let case_id = page["items"][0]["case_id"].as_i64().expect("id");
    let (_, page) = api(n.addr, "GET", &format!("/api/v1/cases?number={number}"), Some(&street), None).await;
    assert_eq!(page["total"], 1);
    act(&n, &street, case_id, "accept", None).await;
    let (status, ranked) = api(n.addr, "GET", &format!("/api/v1/cases/{case_id}/matching"), Some(&street), None).await;
    assert_eq!(status, 200);
    let top = &ranked[0];
    assert!(top["reasons"].as_array().is_some_and(|r| r.iter().any(|r| r["code"] == "specialty")), "{ranked}");
    assign(&n, &street, case_id, m).await;
    let (_, events) = api(n.addr, "GET", &format!("/api/v1/cases/{case_id}/events"), Some(&street), None).await;
    let assign_event = events.as_array().expect("events").iter().find(|e| e["kind"] == "assign").expect("assign event");
    assert!(assign_event["payload"]["reasons"].is_array(), "the reasons shown at assignment are kept: {assign_event}");

    // An illegal move is refused with the allowed ones listed.
    let v = version(&n, case_id).await;
    let (status, err) = api(n.addr, "POST", &format!("/api/v1/cases/{case_id}/transitions"), Some(&n.admin), Some(json!({ "action": "close", "version": v }))).await;
    assert_eq!((status, err["code"].as_str()), (409, Some("illegal_transition")), "{err}");
    assert!(err["details"]["available"].as_array().is_some_and(|a| a.contains(&json!("start_mediation"))));

    // The mediator schedules a session; the party's link and the mediator's join a real room.
    let (status, err) = api(n.addr, "POST", &format!("/api/v1/cases/{case_id}/sessions"), Some(&mediator_token), Some(json!({ "mode": "one_to_one" }))).await;
    assert_eq!((status, err["details"]["field"].as_str()), (422, Some("mode")), "everyone invited (mediator and two parties) is not one-to-one: {err}");
    let (_, me) = api(n.addr, "GET", "/api/v1/auth/me", Some(&mediator_token), None).await;
    let (_, detail) = api(n.addr, "GET", &format!("/api/v1/cases/{case_id}"), Some(&mediator_token), None).await;
    let applicant = detail["parties"].as_array().expect("parties").iter().find(|p| p["role"] == "applicant").expect("applicant")["party_id"].clone();
    let invitees = json!([{ "staff_account_id": me["staff_account_id"], "role": "mediator" }, { "party_id": applicant }]);
    let (status, session) = api(n.addr, "POST", &format!("/api/v1/cases/{case_id}/sessions"), Some(&mediator_token), Some(json!({ "mode": "one_to_one", "invitees": invitees }))).await;
    assert_eq!(status, 201, "{session}");
    let session_id = session["session_id"].as_i64().expect("session");
    let (status, links) = api(n.addr, "GET", &format!("/api/v1/sessions/{session_id}/links"), Some(&mediator_token), None).await;
    assert_eq!(status, 200, "{links}");
    let link_of = |role: &str| links.as_array().expect("links").iter().find(|l| l["role"] == role).expect("link")["url"].as_str().expect("url").to_string();
    let invitee = session["invitees"][0]["session_invitee_id"].as_i64().expect("invitee");
    let (status, svg, ctype) = common::http_raw(n.addr, "GET", &format!("/api/v1/sessions/{session_id}/invitees/{invitee}/qr"), Some(&mediator_token), None).await;
    assert_eq!((status, ctype.as_str()), (200, "image/svg+xml"));
    assert!(String::from_utf8_lossy(&svg).contains("<svg"));

    let host = participant(n.addr, &link_of("mediator"), "host");
    let party = participant(n.addr, &link_of("party"), "party");
    let party_identity = session["invitees"].as_array().expect("invitees").iter().find(|i| i["role"] == "party").expect("party")["identity"].as_str().expect("id").to_string();
    wait_for("media both ways", Duration::from_secs(20), async || {
        let (h, p) = (host.snapshot(), party.snapshot());
        h.get(&party_identity).is_some_and(|r| r.packets > 20) && p.values().any(|r| r.packets > 20)
    })
    .await;
    let (_, live) = api(n.addr, "GET", &format!("/api/v1/sessions/{session_id}"), Some(&mediator_token), None).await;
    assert_eq!(live["status"], "live", "{live}");
    assert_eq!(live["present"].as_array().map(|p| p.len()), Some(2), "{live}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    party.stop().await;
    host.stop().await;
    let mut last = Value::Null;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let (_, s) = api(n.addr, "GET", &format!("/api/v1/sessions/{session_id}"), Some(&mediator_token), None).await;
        last = s;
        if last["present"].as_array().is_some_and(|p| p.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let attendance = last["attendance"].as_array().expect("attendance");
    assert!(last["present"].as_array().is_some_and(|p| p.is_empty()) && attendance.len() >= 2, "attendance not closed: {last}");
    for who in ["staff-", "party-"] {
        let total: i64 = attendance.iter().filter(|a| a["identity"].as_str().is_some_and(|i| i.starts_with(who))).map(|a| a["seconds"].as_i64().unwrap_or(0)).sum();
        assert!(total >= 1, "{who} attended {total} s: {last}");
    }
    let (status, rec) = api(n.addr, "POST", &format!("/api/v1/sessions/{session_id}/records"), Some(&mediator_token), Some(json!({ "kind": "minutes", "content": "双方同意退还押金两千五百元" }))).await;
    assert_eq!(status, 201, "{rec}");

    act(&n, &mediator_token, case_id, "start_mediation", None).await;
    act(&n, &mediator_token, case_id, "reach_agreement", None).await;
    act(&n, &mediator_token, case_id, "close", None).await;

    // The party follows the case with a one-time code.
    let (status, _) = api(n.addr, "POST", "/api/v1/party/codes", None, Some(json!({ "case_number": number, "phone": "13800138000" }))).await;
    assert_eq!(status, 202);
    let text = n.sms.last_to("13800138000").expect("code sent");
    let code: String = text.chars().filter(|c| c.is_ascii_digit()).take(6).collect();
    let (status, again) = api(n.addr, "POST", "/api/v1/party/codes", None, Some(json!({ "case_number": number, "phone": "13800138000" }))).await;
    assert_eq!(status, 429, "one code a minute: {again}");
    let (status, _) = api(n.addr, "POST", "/api/v1/party/verify", None, Some(json!({ "case_number": number, "phone": "13800138000", "code": "000000" }))).await;
    assert_eq!(status, 401);
    let (status, tok) = api(n.addr, "POST", "/api/v1/party/verify", None, Some(json!({ "case_number": number, "phone": "13800138000", "code": code }))).await;
    assert_eq!(status, 200, "{tok}");
    let party_token = tok["token"].as_str().expect("token").to_string();
    let (status, _) = api(n.addr, "POST", "/api/v1/party/verify", None, Some(json!({ "case_number": number, "phone": "13800138000", "code": code }))).await;
    assert_eq!(status, 401, "a code works once");
    let (status, mine) = api(n.addr, "GET", "/api/v1/party/case", Some(&party_token), None).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["status"], "closed");
    assert_eq!(mine["next_step"], "await_follow_up");
    assert_eq!(mine["mediator_name"], "王调解");
    let steps: Vec<&str> = mine["steps"].as_array().expect("steps").iter().map(|s| s["kind"].as_str().unwrap_or("")).collect();
    for kind in ["registered", "accept", "assign", "session_scheduled", "session_started", "reach_agreement", "close"] {
        assert!(steps.contains(&kind), "{kind} missing from {steps:?}");
    }
    assert!(!steps.contains(&"record_minutes") && !steps.contains(&"party_signed_in"), "internal entries stay internal: {steps:?}");
    // A party token opens nothing on the staff side, and a staff token is no party token.
    let (status, _) = api(n.addr, "GET", &format!("/api/v1/cases/{case_id}"), Some(&party_token), None).await;
    assert_eq!(status, 401);

    // Follow-up: not performed and unsatisfied → supervision queue → supervised.
    let v = version(&n, case_id).await;
    let (status, body) = api(n.addr, "POST", &format!("/api/v1/cases/{case_id}/follow-ups"), Some(&street), Some(json!({ "version": v, "performed": "no", "satisfaction": 2, "notes": "对方未退款" }))).await;
    assert_eq!(status, 200, "{body}");
    let (_, queue) = api(n.addr, "GET", "/api/v1/supervision", Some(&leader), None).await;
    let item = queue.as_array().expect("queue").iter().find(|c| c["case_id"] == case_id).expect("in the queue");
    assert!(item["reasons"].as_array().is_some_and(|r| r.contains(&json!("unsatisfied")) && r.contains(&json!("not_performed"))), "{item}");
    act(&n, &leader, case_id, "supervise", Some("责成街道督促履行")).await;
    let (_, queue) = api(n.addr, "GET", "/api/v1/supervision", Some(&leader), None).await;
    assert!(!queue.as_array().expect("queue").iter().any(|c| c["case_id"] == case_id));

    // The chain is intact; an edit behind the API's back is found.
    let (_, report) = api(n.addr, "GET", &format!("/api/v1/cases/{case_id}/events/verify"), Some(&n.admin), None).await;
    assert_eq!(report["intact"], true, "{report}");
    assert!(report["entries"].as_u64().is_some_and(|e| e >= 10), "{report}");
    sqlx::query("update case_event set actor = 'someone else' where case_id = $1 and seq = 3").bind(case_id).execute(&n.db.pool).await.expect("tamper");
    let (_, report) = api(n.addr, "GET", &format!("/api/v1/cases/{case_id}/events/verify"), Some(&n.admin), None).await;
    assert_eq!((report["intact"].as_bool(), report["first_bad_seq"].as_i64()), (Some(false), Some(3)), "{report}");
    n.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_to_supervision_with_a_video_session_sqlite() {
    full_loop(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_to_supervision_with_a_video_session_postgres() {
    let Some(url) = common::fresh_pg_database().await else { return };
    full_loop(Some(url)).await;
}

// ---------------------------------------------------------------------------------------------
// Imports, versions, encryption, deadlines.

async fn integrity(database_url: Option<String>) {
    let n = start(database_url).await;
    let unit = n.units["sjs-lg-qh"];
    let good = |ext: &str, phone: &str| {
        let mut row = case_input(unit, phone, "online_shopping");
        row["external_id"] = json!(ext);
        row
    };
    let batch = json!({ "source": "hotline_12345", "rows": [
        good("H-1", "13700000001"),
        { "external_id": "H-2", "title": "缺字段" },
        good("H-3", "13700000001"),
        { "external_id": "H-4", "title": "t", "summary": "s", "category_code": "no_such", "org_unit_id": unit, "parties": [{ "role": "applicant", "name": "x" }] },
        { "external_id": "H-5", "title": "t", "summary": "s", "category_code": "insurance", "org_unit_id": unit, "parties": [{ "role": "applicant", "name": "x", "phone": "12" }] }
    ]});
    let (status, report) = api(n.addr, "POST", "/api/v1/imports", Some(&n.admin), Some(batch.clone())).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"].as_array().map(|a| a.len()), Some(2), "{report}");
    assert_eq!(report["flagged_duplicates"], 1, "H-3 repeats H-1's applicant and category: {report}");
    let errors: Vec<(u64, &str)> = report["errors"].as_array().expect("errors").iter().map(|e| (e["row"].as_u64().unwrap_or(99), e["field"].as_str().unwrap_or(""))).collect();
    assert_eq!(errors, vec![(1, "row"), (3, "category_code"), (4, "parties[0].phone")], "{report}");
    let (_, again) = api(n.addr, "POST", "/api/v1/imports", Some(&n.admin), Some(batch)).await;
    assert_eq!((again["created"].as_array().map(|a| a.len()), again["existing"].as_array().map(|a| a.len())), (Some(0), Some(2)), "idempotent: {again}");
    let case_id = report["created"][0]["case_id"].as_i64().expect("id");

    // Phone and ID numbers are not stored in the clear.
    let rows: Vec<(Option<String>, Option<String>)> = sqlx::query_as("select phone_enc, id_number_enc from party where case_id = $1").bind(case_id).fetch_all(&n.db.pool).await.expect("rows");
    for (phone, id) in &rows {
        for v in [phone, id].into_iter().flatten() {
            assert!(v.starts_with("v1:") && !v.contains("1370000") && !v.contains("110105"), "{v}");
        }
    }
    let (_, detail) = api(n.addr, "GET", &format!("/api/v1/cases/{case_id}"), Some(&n.admin), None).await;
    assert_eq!(detail["parties"][0]["phone"], "13700000001");
    assert_eq!(detail["parties"][0]["id_number_masked"], "110***********002X");

    // Two people edit the same version: one wins, the other is told, nothing is lost silently.
    let v = detail["version"].as_i64().expect("version");
    let path = format!("/api/v1/cases/{case_id}");
    let (a, b) = tokio::join!(
        api(n.addr, "PATCH", &path, Some(&n.admin), Some(json!({ "version": v, "title": "甲的标题" }))),
        api(n.addr, "PATCH", &path, Some(&n.admin), Some(json!({ "version": v, "summary": "乙的摘要" })))
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
    let loser = if a.0 == 409 { &a.1 } else { &b.1 };
    assert_eq!(loser["code"], "version_conflict");
    assert_eq!(loser["details"]["version"], v + 1);
    // Validation names the field.
    let (status, err) = api(n.addr, "PATCH", &path, Some(&n.admin), Some(json!({ "version": v + 1, "category_code": "nope" }))).await;
    assert_eq!((status, err["details"]["field"].as_str()), (422, Some("category_code")), "{err}");
    let (status, err) = api(n.addr, "GET", "/api/v1/cases?sort=bogus", Some(&n.admin), None).await;
    assert_eq!((status, err["details"]["field"].as_str()), (422, Some("sort")));
    let (status, err) = api(n.addr, "GET", "/api/v1/cases?page=minus", Some(&n.admin), None).await;
    assert_eq!((status, err["code"].as_str()), (400, Some("bad_request")));

    // Search by party name and by text.
    let (_, page) = api(n.addr, "GET", "/api/v1/cases?party=%E5%BC%A0&q=%E6%8A%BC%E9%87%91", Some(&n.admin), None).await;
    assert_eq!(page["total"], 2, "{page}");

    // A case conference: officials of two departments, each records a conclusion on the case.
    let official = staff(&n, "zhujian", "court_liaison", Some("sjs"), None).await;
    let (_, me) = api(n.addr, "GET", "/api/v1/auth/me", Some(&official), None).await;
    let outsider = staff(&n, "outsider", "leader", Some("sjs"), None).await;
    let invitees = json!([
        { "staff_account_id": me["staff_account_id"], "role": "official", "department": "区住建委" },
        { "name": "王律师", "role": "official", "department": "区司法局" }
    ]);
    let (status, conf) = api(n.addr, "POST", &format!("/api/v1/cases/{case_id}/sessions"), Some(&n.admin), Some(json!({ "mode": "many_to_many", "conference": true, "invitees": invitees }))).await;
    assert_eq!(status, 201, "{conf}");
    let sid = conf["session_id"].as_i64().expect("session");
    let conclusion = json!({ "kind": "conclusion", "department": "区住建委", "content": "建议由物业牵头限期整改" });
    let (status, body) = api(n.addr, "POST", &format!("/api/v1/sessions/{sid}/records"), Some(&official), Some(conclusion.clone())).await;
    assert_eq!(status, 201, "an invited official records the department's conclusion: {body}");
    let (status, _) = api(n.addr, "POST", &format!("/api/v1/sessions/{sid}/records"), Some(&outsider), Some(conclusion)).await;
    assert_eq!(status, 403, "someone not invited cannot");
    let (status, body) = api(n.addr, "POST", &format!("/api/v1/sessions/{sid}/records"), Some(&official), Some(json!({ "kind": "conclusion", "content": "无部门" }))).await;
    assert_eq!((status, body["details"]["field"].as_str()), (422, Some("department")));
    let (_, events) = api(n.addr, "GET", &format!("/api/v1/cases/{case_id}/events"), Some(&n.admin), None).await;
    let kinds: Vec<&str> = events.as_array().expect("events").iter().map(|e| e["kind"].as_str().unwrap_or("")).collect();
    assert!(kinds.contains(&"conference_scheduled") && kinds.contains(&"record_conclusion"), "{kinds:?}");

    // A signaling node elsewhere reports a join through the signed webhook.
    let secret = std::fs::read_to_string(n._dir.path().join("token.key")).expect("token key");
    let event = json!({ "type": "participant_joined", "room": conf["room"], "identity": "guest-1", "role": "official", "case_id": case_id, "at": 0 }).to_string();
    let signed = jiefen_signaling::webhook::sign(secret.trim().as_bytes(), event.as_bytes());
    let (status, ..) = hook(n.addr, Some(&signed), &event).await;
    assert_eq!(status, 204);
    let (status, ..) = hook(n.addr, Some(&jiefen_signaling::webhook::sign(b"wrong secret", event.as_bytes())), &event).await;
    assert_eq!(status, 401);
    let (_, view) = api(n.addr, "GET", &format!("/api/v1/sessions/{sid}"), Some(&n.admin), None).await;
    assert_eq!(view["present"], json!(["guest-1"]), "{view}");

    // Deadlines: a case past its stage limit is reminded, then escalated, once each.
    let past = jiefen::store::staff::text_time(std::time::SystemTime::now() - Duration::from_secs(3600));
    sqlx::query("update dispute_case set stage_due_at = $1 where case_id = $2").bind(&past).bind(case_id).execute(&n.db.pool).await.expect("age");
    assert_eq!(jiefen::deadlines::sweep(&n.db, std::time::SystemTime::now()).await.expect("sweep"), 1);
    assert_eq!(jiefen::deadlines::sweep(&n.db, std::time::SystemTime::now()).await.expect("sweep"), 0, "escalated once");
    let (_, overdue) = api(n.addr, "GET", "/api/v1/cases?overdue=true", Some(&n.admin), None).await;
    assert_eq!(overdue["items"][0]["case_id"], case_id, "{overdue}");
    assert_eq!(overdue["items"][0]["overdue"], true);
    let (_, queue) = api(n.addr, "GET", "/api/v1/supervision", Some(&n.admin), None).await;
    assert!(queue.as_array().expect("queue").iter().any(|c| c["case_id"] == case_id && c["reasons"][0] == "overdue"), "{queue}");

    // Text search goes through the bigram index and LIKE confirms: Chinese and Latin text,
    // digits, one character, wildcards taken literally, an edit that changes the text, and cases
    // written before the index existed (backfilled).
    let mut input = case_input(unit, "13700000009", "labour_contract");
    input["title"] = json!("Wage arrears 欠薪第20号");
    input["summary"] = json!("工资拖欠三个月 50%_off");
    let (status, created) = api(n.addr, "POST", "/api/v1/cases", Some(&n.admin), Some(input)).await;
    assert_eq!(status, 201, "{created}");
    let wage = created["case_id"].as_i64().expect("id");
    let found = async |q: &str| -> Vec<i64> {
        let encoded: String = q.bytes().map(|b| format!("%{b:02X}")).collect();
        let (status, page) = api(n.addr, "GET", &format!("/api/v1/cases?per_page=100&q={encoded}"), Some(&n.admin), None).await;
        assert_eq!(status, 200, "{page}");
        page["items"].as_array().expect("items").iter().filter_map(|c| c["case_id"].as_i64()).collect()
    };
    for q in ["欠薪第20号", "第2", "WAGE arrears", "欠", "50%_", "拖欠三个月"] {
        assert!(found(q).await.contains(&wage), "{q} finds the case");
    }
    for q in ["5%0", "第21号", "退还押金"] {
        assert!(!found(q).await.contains(&wage), "{q} does not find the case");
    }
    let untouched = report["created"][1]["case_id"].as_i64().expect("second imported case");
    assert!(found("退还押金").await.contains(&untouched), "an imported case is found by its summary");
    let v = version(&n, wage).await;
    let (status, _) = api(n.addr, "PATCH", &format!("/api/v1/cases/{wage}"), Some(&n.admin), Some(json!({ "version": v, "title": "Rent 租金" }))).await;
    assert_eq!(status, 200);
    assert!(!found("欠薪").await.contains(&wage), "the old title is no longer indexed");
    assert!(found("租金").await.contains(&wage) && found("rent").await.contains(&wage));
    sqlx::query("delete from case_term where case_id = $1").bind(wage).execute(&n.db.pool).await.expect("forget");
    assert!(!found("租金").await.contains(&wage), "the index, not a scan, answers");
    assert!(jiefen::store::search::backfill(&n.db).await.expect("backfill") >= 1);
    assert!(found("租金").await.contains(&wage), "backfilled");
    n.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_versions_encryption_deadlines_sqlite() {
    integrity(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_versions_encryption_deadlines_postgres() {
    let Some(url) = common::fresh_pg_database().await else { return };
    integrity(Some(url)).await;
}

/// POSTs a raw webhook body with the given Authorization header value.
async fn hook(addr: SocketAddr, authorization: Option<&str>, body: &str) -> (u16, Vec<u8>, String) {
    let mut headers = vec![("Content-Type", "application/json")];
    headers.extend(authorization.map(|a| ("Authorization", a)));
    common::raw(addr, "POST", "/api/v1/hooks/session-events", &headers, body.as_bytes()).await
}

// ---------------------------------------------------------------------------------------------
// Staff login security.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_lockout_totp_idle_timeout_and_logout() {
    let n = start_with(None, |c| {
        c.auth.idle_timeout = Duration::from_secs(2);
        c.auth.max_failures = 3;
    })
    .await;
    let t = staff(&n, "clerk", "street_staff", Some("sjs-bbs"), None).await;
    let (status, me) = api(n.addr, "GET", "/api/v1/auth/me", Some(&t), None).await;
    assert_eq!((status, me["role"].as_str()), (200, Some("street_staff")));

    // Idle timeout: a session untouched for longer than the window is gone.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let (status, _) = api(n.addr, "GET", "/api/v1/auth/me", Some(&t), None).await;
    assert_eq!(status, 401);

    // Logout ends the session on the server.
    let t = login(n.addr, "clerk", PASSWORD).await;
    let (status, _) = api(n.addr, "POST", "/api/v1/auth/logout", Some(&t), None).await;
    assert_eq!(status, 204);
    let (status, _) = api(n.addr, "GET", "/api/v1/auth/me", Some(&t), None).await;
    assert_eq!(status, 401);

    // TOTP: enrol, confirm, then the password alone is not enough.
    let t = login(n.addr, "clerk", PASSWORD).await;
    let (_, enrol) = api(n.addr, "POST", "/api/v1/auth/totp", Some(&t), None).await;
    let secret = enrol["secret"].as_str().expect("secret").to_string();
    let now = jiefen::store::staff::unix_now();
    let code = jiefen::auth::totp::code_at(&secret, now).expect("code");
    let (status, _) = api(n.addr, "POST", "/api/v1/auth/totp/confirm", Some(&t), Some(json!({ "code": code }))).await;
    assert_eq!(status, 204);
    let (status, body) = api(n.addr, "POST", "/api/v1/auth/login", None, Some(json!({ "username": "clerk", "password": PASSWORD }))).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("totp_required")), "{body}");
    let code = jiefen::auth::totp::code_at(&secret, jiefen::store::staff::unix_now()).expect("code");
    let (status, body) = api(n.addr, "POST", "/api/v1/auth/login", None, Some(json!({ "username": "clerk", "password": PASSWORD, "totp": code }))).await;
    assert_eq!(status, 200, "{body}");

    // Lockout after repeated failures, even for the right password afterwards.
    for _ in 0..3 {
        let (status, _) = api(n.addr, "POST", "/api/v1/auth/login", None, Some(json!({ "username": "clerk", "password": "wrong password" }))).await;
        assert_eq!(status, 401);
    }
    let code = jiefen::auth::totp::code_at(&secret, jiefen::store::staff::unix_now()).expect("code");
    let (status, body) = api(n.addr, "POST", "/api/v1/auth/login", None, Some(json!({ "username": "clerk", "password": PASSWORD, "totp": code }))).await;
    assert_eq!(status, 429, "{body}");
    // Unknown users get the same answer as a wrong password.
    let (status, body) = api(n.addr, "POST", "/api/v1/auth/login", None, Some(json!({ "username": "nobody", "password": "x" }))).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthenticated")));
    n.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// The database connections die mid-flight: committed writes survive, the pool recovers.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_killed_lose_no_committed_write() {
    let Some(url) = common::fresh_pg_database().await else { return };
    let n = start(Some(url.clone())).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(register(&n, &n.admin, "sjs-bbs-yq", &format!("1360000000{i}")).await);
    }
    // Terminate every server connection to this database from the outside.
    let dbname = url.rsplit('/').next().expect("db name").to_string();
    let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&common::pg_base_url().expect("base")).await.expect("connect");
    sqlx::query(sqlx::AssertSqlSafe(format!("select pg_terminate_backend(pid) from pg_stat_activity where datname = '{dbname}' and pid <> pg_backend_pid()")))
        .execute(&mut admin)
        .await
        .expect("terminate");
    // Requests may fail while the pool notices; within a few seconds they succeed again.
    let mut recovered = false;
    for _ in 0..50 {
        let (status, page) = api(n.addr, "GET", "/api/v1/cases?per_page=100", Some(&n.admin), None).await;
        if status == 200 {
            let listed: Vec<i64> = page["items"].as_array().expect("items").iter().map(|c| c["case_id"].as_i64().expect("id")).collect();
            assert!(ids.iter().all(|i| listed.contains(i)), "a committed case went missing: {listed:?} vs {ids:?}");
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the pool did not recover");
    let more = register(&n, &n.admin, "sjs-bbs-yq", "13600000009").await;
    assert!(more > *ids.last().expect("ids"));
    n.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Recordings: verification catches a changed manifest; retention deletes and logs.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_verification_and_retention() {
    let n = start(None).await;
    let case_id = register(&n, &n.admin, "sjs-bbs-yq", "13500000001").await;
    let dir = n._dir.path().join("recordings/r1/x");
    let (manifest, hash) = jiefen_recorder::RoomRecording::new("r1", &dir).expect("rec").finish(0).expect("finish");
    let ended = jiefen::store::staff::text_time(std::time::SystemTime::now() - Duration::from_secs(10 * 86_400));
    let (id,): (i64,) = sqlx::query_as(
        "insert into recording (room, case_id, dir, status, manifest, manifest_sha256, started_at, ended_at) values ('r1', $1, $2, 'complete', $3, $4, $5, $5) returning recording_id",
    )
    .bind(case_id)
    .bind(dir.to_string_lossy().to_string())
    .bind(serde_json::to_string(&manifest).expect("json"))
    .bind(&hash)
    .bind(&ended)
    .fetch_one(&n.db.pool)
    .await
    .expect("insert");
    let (status, v) = api(n.addr, "GET", &format!("/api/v1/recordings/{id}/verify"), Some(&n.admin), None).await;
    assert_eq!((status, v["intact"].as_bool()), (200, Some(true)), "{v}");
    std::fs::write(dir.join(jiefen_recorder::MANIFEST_FILE), b"{}").expect("tamper");
    let (_, v) = api(n.addr, "GET", &format!("/api/v1/recordings/{id}/verify"), Some(&n.admin), None).await;
    assert_eq!(v["intact"], false, "{v}");
    // Someone outside the case's org unit does not even learn it exists.
    let other = staff(&n, "lg_staff", "street_staff", Some("sjs-lg"), None).await;
    let (status, _) = api(n.addr, "GET", &format!("/api/v1/recordings/{id}"), Some(&other), None).await;
    assert_eq!(status, 404);

    assert_eq!(jiefen::recordings::sweep_retention(&n.db, &jiefen::storage::Storage::Local, Duration::from_secs(30 * 86_400), std::time::SystemTime::now()).await.expect("sweep"), 0, "younger than the retention");
    assert_eq!(jiefen::recordings::sweep_retention(&n.db, &jiefen::storage::Storage::Local, Duration::from_secs(7 * 86_400), std::time::SystemTime::now()).await.expect("sweep"), 1);
    assert!(!dir.exists(), "files deleted");
    let (_, r) = api(n.addr, "GET", &format!("/api/v1/recordings/{id}"), Some(&n.admin), None).await;
    assert_eq!(r["status"], "deleted");
    let (_, events) = api(n.addr, "GET", &format!("/api/v1/cases/{case_id}/events"), Some(&n.admin), None).await;
    assert!(events.as_array().expect("events").iter().any(|e| e["kind"] == "recording_deleted"), "the deletion is logged on the case");
    n.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Object storage: a finished recording moves to S3 (moto here), verified after upload, served
// with ranges from there, tampering found, retention deletes the objects.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_move_to_s3_compatible_storage() {
    let Some(endpoint) = common::s3_url() else { return };
    let s3 = jiefen::storage::S3Config {
        endpoint: Some(endpoint),
        bucket: "jiefen-test".into(),
        region: None,
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
        allow_http: true,
    };
    let storage = jiefen::storage::Storage::s3(&s3).expect("s3");
    let n = start_with(None, |c| c.s3 = Some(s3.clone())).await;
    let case_id = register(&n, &n.admin, "sjs-bbs-yq", "13500000002").await;
    let room = format!("s3-{}", rand::random::<u32>());
    let dir = n._dir.path().join("recordings").join(&room).join("t1");
    std::fs::create_dir_all(&dir).expect("dir");
    // A track file and a manifest that lists it with its digests.
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("01-a-camera.webm"), &content).expect("track");
    let d = jiefen_recorder::hash::digest_file(&dir.join("01-a-camera.webm")).expect("digest");
    let track = serde_json::json!({ "file": "01-a-camera.webm", "publisher": "a", "track": "a/1/0", "source": "camera", "codec": "vp8", "start_ms": 0, "end_ms": 1000,
        "frames": 1, "packets": 1, "lost_packets": 0, "dropped_frames": 0, "layer_switches": 0, "width": 320, "height": 240, "bytes": d.bytes, "sha256": d.sha256, "sm3": d.sm3, "problem": null });
    let manifest = serde_json::json!({ "room": room, "started_at": "2026-11-29T00:00:00Z", "ended_at": "2026-11-29T00:00:01Z", "duration_ms": 1000, "tracks": [track], "tap_overflow": 0 });
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).expect("json");
    std::fs::write(dir.join(jiefen_recorder::MANIFEST_FILE), &manifest_bytes).expect("manifest");
    let (id,): (i64,) = sqlx::query_as(
        "insert into recording (room, case_id, dir, status, manifest, manifest_sha256, manifest_sm3, started_at, ended_at) values ($1, $2, $3, 'complete', $4, $5, $6, $7, $7) returning recording_id",
    )
    .bind(&room)
    .bind(case_id)
    .bind(dir.to_string_lossy().to_string())
    .bind(manifest.to_string())
    .bind(jiefen_recorder::hash::sha256(&manifest_bytes))
    .bind(jiefen_recorder::hash::sm3(&manifest_bytes))
    .bind(jiefen::db::now_text())
    .fetch_one(&n.db.pool)
    .await
    .expect("row");

    jiefen::recordings::archive(&n.db, &storage, id).await.expect("archived");
    assert!(!dir.exists(), "the local copy is removed once the upload checks out");
    let (_, r) = api(n.addr, "GET", &format!("/api/v1/recordings/{id}"), Some(&n.admin), None).await;
    assert_eq!(r["storage"], "s3", "{r}");
    let (_, v) = api(n.addr, "GET", &format!("/api/v1/recordings/{id}/verify"), Some(&n.admin), None).await;
    assert_eq!(v["intact"], true, "verified against the stored objects: {v}");
    // Served from object storage with range requests.
    let url = r["files"][0]["url"].as_str().expect("url").to_string();
    let (status, body, _) = ranged_get(n.addr, &url, "bytes=1000-1099").await;
    assert_eq!((status, body.as_slice()), (206, &content[1000..1100]));
    // Someone replaces the object: verification says so.
    let prefix = format!("recordings/{room}/t1");
    let fake = n._dir.path().join("fake.webm");
    std::fs::write(&fake, b"not the recording").expect("fake");
    storage.upload(&fake, &format!("{prefix}/01-a-camera.webm")).await.expect("overwrite");
    let (_, v) = api(n.addr, "GET", &format!("/api/v1/recordings/{id}/verify"), Some(&n.admin), None).await;
    assert_eq!(v["intact"], false, "{v}");
    // Retention removes the objects.
    sqlx::query("update recording set ended_at = '2020-01-01T00:00:00.000Z' where recording_id = $1").bind(id).execute(&n.db.pool).await.expect("age");
    assert_eq!(jiefen::recordings::sweep_retention(&n.db, &storage, Duration::from_secs(86_400), std::time::SystemTime::now()).await.expect("sweep"), 1);
    assert!(storage.size(&format!("{prefix}/{}", jiefen_recorder::MANIFEST_FILE)).await.is_err(), "objects deleted");
    n.shutdown().await;
}

/// GET with a Range header; (status, body, headers).
async fn ranged_get(addr: SocketAddr, path: &str, range: &str) -> (u16, Vec<u8>, String) {
    common::raw(addr, "GET", path, &[("Range", range)], b"").await
}

// ---------------------------------------------------------------------------------------------
// Agreements: drafted, revised (earlier signatures stop counting), signed by every party (code
// to their phone) and the mediator against the hash they read, sealed; tampering is found.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agreement_drafting_signing_and_seal() {
    let n = start(None).await;
    let org = first_org(&n).await;
    let m = mediator(&n, org, "王调解", "mediator").await;
    let mediator_token = staff(&n, "wang2", "mediator", Some("sjs"), Some(m)).await;
    let case_id = register(&n, &n.admin, "sjs-bbs-yq", "13800000011").await;
    act(&n, &n.admin, case_id, "accept", None).await;
    assign(&n, &n.admin, case_id, m).await;
    let fields = json!({
        "facts": "申请人租住被申请人房屋，租期届满后被申请人未退还押金三千元。",
        "disputes": "押金是否退还及数额。",
        "responsibilities": "被申请人应退还押金；申请人应赔偿墙面损坏五百元。",
        "terms": [{ "content": "被申请人退还押金人民币2500元", "performer": "李四", "deadline": "2026-12-31", "method": "银行转账" }]
    });
    let (status, err) = api(n.addr, "POST", &format!("/api/v1/cases/{case_id}/agreements"), Some(&mediator_token), Some(fields.clone())).await;
    assert_eq!((status, err["code"].as_str()), (409, Some("not_mediating")), "{err}");
    act(&n, &mediator_token, case_id, "start_mediation", None).await;
    let mut bad = fields.clone();
    bad["terms"][0]["deadline"] = json!("下周");
    let (status, err) = api(n.addr, "POST", &format!("/api/v1/cases/{case_id}/agreements"), Some(&mediator_token), Some(bad)).await;
    assert_eq!((status, err["details"]["field"].as_str()), (422, Some("terms[0].deadline")), "{err}");
    let (_, templates) = api(n.addr, "GET", "/api/v1/agreement-templates", Some(&mediator_token), None).await;
    assert!(templates.as_array().is_some_and(|t| t.iter().any(|x| x["code"] == "house_lease_deposit")), "{templates}");
    let (status, a) = api(n.addr, "POST", &format!("/api/v1/cases/{case_id}/agreements"), Some(&mediator_token), Some(fields.clone())).await;
    assert_eq!(status, 201, "{a}");
    let id = a["agreement_id"].as_i64().expect("id");
    assert!(a["body"].as_str().is_some_and(|b| b.contains("人民调解协议书") && b.contains("申请人：张三") && b.contains("110***********002X")), "{a}");
    assert_eq!(a["signers"].as_array().map(|s| s.len()), Some(3), "two parties and the mediator");

    // The applicant reads it through their link and signs with a code sent to their phone.
    let (_, detail) = api(n.addr, "GET", &format!("/api/v1/cases/{case_id}"), Some(&n.admin), None).await;
    let party_ids: Vec<i64> = detail["parties"].as_array().expect("parties").iter().map(|p| p["party_id"].as_i64().expect("id")).collect();
    let phones = ["13800000011", "13900001111"];
    let mut party_tokens = Vec::new();
    for pid in &party_ids {
        let (_, link) = api(n.addr, "POST", &format!("/api/v1/cases/{case_id}/parties/{pid}/link"), Some(&mediator_token), Some(json!({}))).await;
        party_tokens.push(link["token"].as_str().expect("token").to_string());
    }
    let image = "data:image/png;base64,iVBORw0KGgo=";
    let sign_party = |i: usize, sha: String| {
        let (tok, phone, sms) = (party_tokens[i].clone(), phones[i], n.sms.clone());
        async move {
            let (status, _) = api(n.addr, "POST", &format!("/api/v1/party/agreements/{id}/code"), Some(&tok), None).await;
            assert_eq!(status, 202);
            let text = sms.last_to(phone).expect("code texted");
            let code: String = text.chars().filter(|c| c.is_ascii_digit()).take(6).collect();
            api(n.addr, "POST", &format!("/api/v1/party/agreements/{id}/sign"), Some(&tok), Some(json!({ "document_sha256": sha, "signature_image": image, "code": code }))).await
        }
    };
    let (_, mine) = api(n.addr, "GET", "/api/v1/party/agreements", Some(&party_tokens[0]), None).await;
    let v1 = mine[0]["sha256"].as_str().expect("hash").to_string();
    let (status, body) = sign_party(0, v1.clone()).await;
    assert_eq!(status, 200, "{body}");

    // The mediator revises: the applicant's signature no longer counts, an old hash is refused.
    let mut revised = fields.clone();
    revised["terms"][0]["content"] = json!("被申请人退还押金人民币2600元");
    let (status, a2) = api(n.addr, "PUT", &format!("/api/v1/agreements/{id}"), Some(&mediator_token), Some(json!({ "version": 1, "fields": revised }))).await;
    assert_eq!(status, 200, "{a2}");
    assert_eq!(a2["version"], 2);
    assert!(a2["signers"].as_array().expect("signers").iter().all(|s| s["signed_at"].is_null()), "{a2}");
    let (status, err) = api(n.addr, "PUT", &format!("/api/v1/agreements/{id}"), Some(&mediator_token), Some(json!({ "version": 1, "fields": fields }))).await;
    assert_eq!((status, err["code"].as_str()), (409, Some("version_conflict")));
    let v2 = a2["sha256"].as_str().expect("hash").to_string();
    let (status, err) = sign_party(1, v1).await;
    assert_eq!((status, err["code"].as_str()), (409, Some("document_changed")), "{err}");
    // A wrong code is refused.
    let (status, _) = api(n.addr, "POST", &format!("/api/v1/party/agreements/{id}/sign"), Some(&party_tokens[1]), Some(json!({ "document_sha256": v2, "signature_image": image, "code": "000000" }))).await;
    assert_eq!(status, 401);

    for i in 0..2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        // One code per minute per party: the second party's earlier code is still valid.
        let (tok, phone) = (&party_tokens[i], phones[i]);
        let code: String = n.sms.last_to(phone).expect("code").chars().filter(|c| c.is_ascii_digit()).take(6).collect();
        let code = if i == 0 {
            sqlx::query("update signing_code set created_at = '2000-01-01T00:00:00.000Z' where party_id = $1").bind(party_ids[0]).execute(&n.db.pool).await.expect("age");
            let (s, _) = api(n.addr, "POST", &format!("/api/v1/party/agreements/{id}/code"), Some(tok), None).await;
            assert_eq!(s, 202);
            n.sms.last_to(phone).expect("code").chars().filter(|c| c.is_ascii_digit()).take(6).collect()
        } else {
            code
        };
        let (status, body) = api(n.addr, "POST", &format!("/api/v1/party/agreements/{id}/sign"), Some(tok), Some(json!({ "document_sha256": v2, "signature_image": image, "code": code }))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "signing");
    }
    let (status, done) = api(n.addr, "POST", &format!("/api/v1/agreements/{id}/sign"), Some(&mediator_token), Some(json!({ "document_sha256": v2, "signature_image": image }))).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "effective", "the last signature makes it effective: {done}");
    assert!(done["seal"].is_string());
    let (_, check) = api(n.addr, "GET", &format!("/api/v1/agreements/{id}/verify"), Some(&n.admin), None).await;
    assert_eq!(check, json!({ "text_intact": true, "signatures_match": true, "seal_valid": true }));
    let (status, err) = api(n.addr, "PUT", &format!("/api/v1/agreements/{id}"), Some(&mediator_token), Some(json!({ "version": 2, "fields": fields }))).await;
    assert_eq!((status, err["code"].as_str()), (409, Some("agreement_final")));

    // The PDF: Chinese text, the hash on every page, the signatures, and a file signature that
    // catches any changed byte.
    let (status, pdf, ctype) = common::http_raw(n.addr, "GET", &format!("/api/v1/agreements/{id}/pdf"), Some(&n.admin), None).await;
    assert_eq!((status, ctype.as_str()), (200, "application/pdf"));
    assert!(pdf.starts_with(b"%PDF-1.7"));
    let (status, check, _) = common::raw(n.addr, "POST", "/api/v1/agreements/pdf/verify", &[], &pdf).await;
    assert_eq!((status, serde_json::from_slice::<Value>(&check).expect("json")["valid"].as_bool()), (200, Some(true)));
    let mut forged = pdf.clone();
    let at = forged.len() / 3;
    forged[at] ^= 0x20;
    let (_, check, _) = common::raw(n.addr, "POST", "/api/v1/agreements/pdf/verify", &[], &forged).await;
    assert_eq!(serde_json::from_slice::<Value>(&check).expect("json")["valid"], false, "a changed byte is caught");
    let file = std::env::var_os("JIEFEN_KEEP_PDF").map(std::path::PathBuf::from).unwrap_or_else(|| n._dir.path().join("agreement.pdf"));
    std::fs::write(&file, &pdf).expect("write");
    match std::process::Command::new("pdftotext").args(["-enc", "UTF-8"]).arg(&file).arg("-").output() {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            for needle in ["人民调解协议书", "退还押金人民币2600元", "签署记录", "张三", "李四", "王调解"] {
                assert!(text.contains(needle), "{needle} in the PDF's text:\n{text}");
            }
            let pages = text.matches('\u{c}').count().max(1);
            assert!(text.matches(v2.as_str()).count() >= pages, "the document hash on every one of {pages} pages");
        }
        _ => assert!(std::env::var("JIEFEN_REQUIRE_SERVICES").is_err(), "pdftotext (poppler-utils) is required to check the PDF's text"),
    }

    // Someone edits the stored text: the hashes and the seal say so.
    sqlx::query("update agreement_version set body = replace(body, '2600', '260') where agreement_id = $1").bind(id).execute(&n.db.pool).await.expect("tamper");
    let (_, check) = api(n.addr, "GET", &format!("/api/v1/agreements/{id}/verify"), Some(&n.admin), None).await;
    assert_eq!(check["text_intact"], false, "{check}");
    let (_, events) = api(n.addr, "GET", &format!("/api/v1/cases/{case_id}/events"), Some(&n.admin), None).await;
    let kinds: Vec<&str> = events.as_array().expect("events").iter().map(|e| e["kind"].as_str().unwrap_or("")).collect();
    for k in ["agreement_drafted", "agreement_revised", "agreement_signed", "agreement_effective"] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    n.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// The court path against the court simulator: judicial confirmation (refusals by rule, the
// simulator down for a while, exactly-once delivery, callbacks applied once), and one-click
// litigation after a failed mediation.

/// A case whose agreement both parties and the mediator signed: (case, agreement, mediator token).
async fn effective_agreement(n: &Node, applicant_phone: &str, respondent_phone: &str) -> (i64, i64, String) {
    let org = first_org(n).await;
    let m = mediator(n, org, "赵调解", "mediator").await;
    let mediator_token = staff(n, &format!("med{}", rand::random::<u32>()), "mediator", Some("sjs"), Some(m)).await;
    let mut input = case_input(n.units["sjs-bbs-yq"], applicant_phone, "house_lease");
    input["parties"][1]["phone"] = json!(respondent_phone);
    input["parties"][1]["address"] = json!("北京市石景山区古城");
    let (_, created) = api(n.addr, "POST", "/api/v1/cases", Some(&n.admin), Some(input)).await;
    let case_id = created["case_id"].as_i64().expect("case");
    act(n, &n.admin, case_id, "accept", None).await;
    assign(n, &n.admin, case_id, m).await;
    act(n, &mediator_token, case_id, "start_mediation", None).await;
    let fields = json!({ "facts": "租期届满押金未退。", "disputes": "押金退还。", "responsibilities": "被申请人应退还押金。",
        "terms": [{ "content": "退还押金2500元", "performer": "李四", "deadline": "2026-12-31", "method": "转账" }] });
    let (_, a) = api(n.addr, "POST", &format!("/api/v1/cases/{case_id}/agreements"), Some(&mediator_token), Some(fields)).await;
    let id = a["agreement_id"].as_i64().expect("agreement");
    let sha = a["sha256"].as_str().expect("sha").to_string();
    let (_, detail) = api(n.addr, "GET", &format!("/api/v1/cases/{case_id}"), Some(&n.admin), None).await;
    for (p, phone) in detail["parties"].as_array().expect("parties").iter().zip([applicant_phone, respondent_phone]) {
        let (_, link) = api(n.addr, "POST", &format!("/api/v1/cases/{case_id}/parties/{}/link", p["party_id"]), Some(&mediator_token), Some(json!({}))).await;
        let tok = link["token"].as_str().expect("token").to_string();
        api(n.addr, "POST", &format!("/api/v1/party/agreements/{id}/code"), Some(&tok), None).await;
        let code: String = n.sms.last_to(phone).expect("code").chars().filter(|c| c.is_ascii_digit()).take(6).collect();
        let (status, body) = api(n.addr, "POST", &format!("/api/v1/party/agreements/{id}/sign"), Some(&tok), Some(json!({ "document_sha256": sha, "signature_image": "data:image/png;base64,AA==", "code": code }))).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, done) = api(n.addr, "POST", &format!("/api/v1/agreements/{id}/sign"), Some(&mediator_token), Some(json!({ "document_sha256": sha, "signature_image": "data:image/png;base64,AA==" }))).await;
    assert_eq!((status, done["status"].as_str()), (200, Some("effective")), "{done}");
    (case_id, id, mediator_token)
}

const COURT_SECRET: &str = "court-shared-secret";

async fn start_sim(port: u16, filing_outcome: &str) -> tokio::task::JoinHandle<std::io::Result<()>> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("sim port");
    let config = jiefen::court::sim::SimConfig {
        secret: COURT_SECRET.as_bytes().to_vec(),
        confirmation_outcome: "confirmed".into(),
        filing_outcome: filing_outcome.into(),
        delay: Duration::from_millis(300),
    };
    tokio::spawn(jiefen::court::sim::serve(listener, config))
}

/// A node whose court is the simulator on `port`, its jobs run by the test (`jobs::run_due`).
async fn court_node(port: u16) -> (Node, jiefen::jobs::Services) {
    let n = start_with(None, |c| {
        c.court.url = Some(format!("http://127.0.0.1:{port}"));
        c.court.secret = Some(COURT_SECRET.into());
        c.worker_in_process = false;
    })
    .await;
    let court = jiefen::court::connector::HttpCourt::new(&format!("http://127.0.0.1:{port}"), COURT_SECRET.as_bytes()).expect("court");
    (n, jiefen::jobs::Services { storage: jiefen::storage::Storage::Local, court: Some(court) })
}

async fn sim_listing(port: u16) -> Value {
    let (_, v) = api(SocketAddr::from(([127, 0, 0, 1], port)), "GET", "/api/court/v1/packages", None, None).await;
    v
}

async fn package_status(n: &Node, case_id: i64, want: &str) -> Value {
    for _ in 0..100 {
        let (_, list) = api(n.addr, "GET", &format!("/api/v1/cases/{case_id}/court-packages"), Some(&n.admin), None).await;
        if list[0]["status"] == want {
            return list[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, list) = api(n.addr, "GET", &format!("/api/v1/cases/{case_id}/court-packages"), Some(&n.admin), None).await;
    panic!("package never became {want}: {list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judicial_confirmation_and_litigation_through_the_court_simulator() {
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port").local_addr().expect("addr").port();
    let (n, services) = court_node(port).await;
    let (case_id, agreement_id, mediator_token) = effective_agreement(&n, "13700000101", "13700000102").await;
    act(&n, &mediator_token, case_id, "reach_agreement", None).await;
    let (_, courts) = api(n.addr, "GET", &format!("/api/v1/cases/{case_id}/courts"), Some(&mediator_token), None).await;
    assert_eq!(courts[0]["court"]["court_id"], "bj-sjs", "{courts}");
    assert!(courts[0]["grounds"].as_array().is_some_and(|g| g.contains(&json!("organisation_location")) && g.contains(&json!("party_domicile"))), "{courts}");
    let (_, detail) = api(n.addr, "GET", &format!("/api/v1/cases/{case_id}"), Some(&n.admin), None).await;
    let both: Vec<i64> = detail["parties"].as_array().expect("parties").iter().map(|p| p["party_id"].as_i64().expect("id")).collect();
    let apply = |court: &str, parties: Vec<i64>, subject: Value| json!({ "agreement_id": agreement_id, "court_id": court, "applicant_party_ids": parties, "subject": subject });
    let path = format!("/api/v1/cases/{case_id}/confirmations");

    // Refused by rule, each with its reason.
    let (status, err) = api(n.addr, "POST", &path, Some(&mediator_token), Some(apply("bj-sjs", vec![both[0]], json!({})))).await;
    assert_eq!((status, err["details"]["refusal"].as_str()), (409, Some("not_joint")), "{err}");
    let (status, err) = api(n.addr, "POST", &path, Some(&mediator_token), Some(apply("bj-sjs", both.clone(), json!({ "concerns_personal_status": true })))).await;
    assert_eq!((status, err["details"]["refusal"].as_str()), (409, Some("personal_status")), "{err}");
    let (effective,): (String,) = sqlx::query_as("select effective_at from agreement where agreement_id = $1").bind(agreement_id).fetch_one(&n.db.pool).await.expect("row");
    sqlx::query("update agreement set effective_at = '2020-01-01T00:00:00.000Z' where agreement_id = $1").bind(agreement_id).execute(&n.db.pool).await.expect("age");
    let (status, err) = api(n.addr, "POST", &path, Some(&mediator_token), Some(apply("bj-sjs", both.clone(), json!({})))).await;
    assert_eq!((status, err["details"]["refusal"].as_str()), (409, Some("window_passed")), "a late application: {err}");
    sqlx::query("update agreement set effective_at = $1 where agreement_id = $2").bind(&effective).bind(agreement_id).execute(&n.db.pool).await.expect("restore");
    let (status, err) = api(n.addr, "POST", &path, Some(&mediator_token), Some(apply("hd", both.clone(), json!({})))).await;
    assert_eq!((status, err["details"]["field"].as_str()), (422, Some("court_id")), "{err}");

    // Accepted for delivery while the court's system is down: nothing is lost.
    let (status, pkg) = api(n.addr, "POST", &path, Some(&mediator_token), Some(apply("bj-sjs", both.clone(), json!({})))).await;
    assert_eq!((status, pkg["status"].as_str()), (202, Some("queued")), "{pkg}");
    jiefen::jobs::run_due(&n.db, &services).await.expect("run");
    let (_, list) = api(n.addr, "GET", &format!("/api/v1/cases/{case_id}/court-packages"), Some(&n.admin), None).await;
    assert_eq!(list[0]["status"], "queued", "still waiting for the court");
    let (attempts, status): (i64, String) = sqlx::query_as("select attempts, status from job where kind = 'court_push'").fetch_one(&n.db.pool).await.expect("job");
    assert_eq!((attempts, status.as_str()), (1, "queued"), "scheduled for a retry");

    // The court comes back: the package arrives once; a redelivery (a lost answer) is recognised.
    let sim = start_sim(port, "materials_missing").await;
    sqlx::query("update job set run_after = '2000-01-01T00:00:00.000Z' where kind = 'court_push'").execute(&n.db.pool).await.expect("due");
    jiefen::jobs::run_due(&n.db, &services).await.expect("run");
    sqlx::query("update job set status = 'queued', run_after = '2000-01-01T00:00:00.000Z' where kind = 'court_push'").execute(&n.db.pool).await.expect("again");
    jiefen::jobs::run_due(&n.db, &services).await.expect("run");
    let listing = sim_listing(port).await;
    assert_eq!((listing["requests"].as_u64(), listing["packages"].as_array().map(|p| p.len())), (Some(2), Some(1)), "delivered twice, filed once: {listing}");
    let confirmed = package_status(&n, case_id, "confirmed").await;
    let (_, after) = api(n.addr, "GET", &format!("/api/v1/cases/{case_id}"), Some(&n.admin), None).await;
    assert_eq!(after["status"], "closed", "the confirmed case moves on to closure (and its follow-up)");
    assert!(confirmed["document"]["text"].as_str().is_some_and(|t| t.contains("确认调解协议有效")), "{confirmed}");
    assert!(n.sms.last_to("13700000102").is_some_and(|t| t.contains("确认调解协议有效")), "the parties are told");

    // A repeated callback changes nothing; an unsigned one is refused.
    let event = json!({ "event_id": format!("{}-confirmed", confirmed["court_ref"].as_str().unwrap_or_default()), "package_id": confirmed["package_id"], "court_ref": confirmed["court_ref"], "status": "confirmed" }).to_string();
    let signed = jiefen::court::connector::sign(COURT_SECRET.as_bytes(), event.as_bytes(), jiefen::store::staff::unix_now());
    let (status, ..) = court_callback(n.addr, Some(&signed), &event).await;
    assert_eq!(status, 204);
    let (status, ..) = court_callback(n.addr, Some(&jiefen::court::connector::sign(b"guess", event.as_bytes(), jiefen::store::staff::unix_now())), &event).await;
    assert_eq!(status, 401);
    let (_, events) = api(n.addr, "GET", &format!("/api/v1/cases/{case_id}/events"), Some(&n.admin), None).await;
    let count = |k: &str| events.as_array().expect("events").iter().filter(|e| e["kind"] == k).count();
    assert_eq!((count("confirmation_submitted"), count("court_accepted"), count("court_confirmed")), (1, 1, 1));
    assert!(count("confirmation_refused") >= 3);

    // Mediation fails on another case: one-click litigation, checked, filed, materials asked for.
    let org = first_org(&n).await;
    let m2 = mediator(&n, org, "孙调解", "mediator").await;
    let other = register(&n, &n.admin, "sjs-bbs-yq", "13700000103").await;
    act(&n, &n.admin, other, "accept", None).await;
    assign(&n, &n.admin, other, m2).await;
    act(&n, &n.admin, other, "start_mediation", None).await;
    let fpath = format!("/api/v1/cases/{other}/filings");
    let (_, d) = api(n.addr, "GET", &format!("/api/v1/cases/{other}"), Some(&n.admin), None).await;
    let plaintiff = d["parties"][0]["party_id"].as_i64().expect("party");
    let filing = |claims: Value| json!({ "court_id": "bj-sjs", "plaintiff_party_id": plaintiff, "claims": claims, "facts": "租期届满后被告拒不退还押金三千元，经调解未果。",
        "evidence": [{ "name": "租赁合同", "source": "原告提供", "proves": "租赁关系与押金约定" }] });
    let (status, err) = api(n.addr, "POST", &fpath, Some(&n.admin), Some(filing(json!(["退还押金3000元"])))).await;
    assert_eq!((status, err["code"].as_str()), (409, Some("mediation_not_failed")), "{err}");
    act(&n, &n.admin, other, "fail", Some("被申请人拒绝调解方案")).await;
    let (status, err) = api(n.addr, "POST", &fpath, Some(&n.admin), Some(filing(json!([])))).await;
    assert_eq!((status, err["code"].as_str()), (409, Some("filing_incomplete")), "{err}");
    assert!(err["details"]["missing"][0].as_str().is_some_and(|m| m.contains("claims")));
    let (status, pkg) = api(n.addr, "POST", &fpath, Some(&n.admin), Some(filing(json!(["退还押金3000元", "承担诉讼费用"])))).await;
    assert_eq!(status, 202, "{pkg}");
    jiefen::jobs::run_due(&n.db, &services).await.expect("run");
    let missing = package_status(&n, other, "materials_missing").await;
    assert!(missing["missing"].as_array().is_some_and(|m| !m.is_empty()), "{missing}");
    // The plaintiff sees it on their progress page, with the list of materials.
    let token = n_party_token(&n, other, plaintiff);
    let (_, mine) = api(n.addr, "GET", "/api/v1/party/case", Some(&token), None).await;
    assert_eq!((mine["court"][0]["kind"].as_str(), mine["court"][0]["status"].as_str()), (Some("filing"), Some("materials_missing")), "{mine}");
    assert!(mine["court"][0]["missing"].as_array().is_some_and(|m| !m.is_empty()));
    assert!(mine["steps"].as_array().expect("steps").iter().any(|s| s["kind"] == "court_materials_missing"));
    sim.abort();
    n.shutdown().await;
}

async fn court_callback(addr: SocketAddr, signature: Option<&str>, body: &str) -> (u16, Vec<u8>, String) {
    let mut headers = vec![("Content-Type", "application/json")];
    headers.extend(signature.map(|v| ("X-Court-Signature", v)));
    common::raw(addr, "POST", "/api/v1/court/callbacks", &headers, body.as_bytes()).await
}

// ---------------------------------------------------------------------------------------------
// A group dispute: members imported from CSV, agreements from one template with each member's
// amount, links sent in bulk, everyone signs, confirmations applied for in bulk and filed at the
// simulator. `JIEFEN_GROUP_MEMBERS=1000 cargo test --release group_dispute -- --nocapture`
// (scripts/bench-group.sh) prints the timings for a thousand members.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_dispute_of_many_members() {
    let members: usize = std::env::var("JIEFEN_GROUP_MEMBERS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port").local_addr().expect("addr").port();
    let sim = start_sim(port, "filed").await;
    let (n, services) = court_node(port).await;
    let org = first_org(&n).await;
    let m = mediator(&n, org, "周调解", "mediator").await;
    let (status, g) = api(n.addr, "POST", "/api/v1/groups", Some(&n.admin), Some(json!({
        "name": "某健身房预付卡退费群体纠纷", "summary": "健身房闭店，会员要求退还预付费", "category_code": "prepaid_consumption", "org_unit_id": n.units["sjs-lg"],
        "respondent": { "role": "respondent", "name": "某健身有限公司", "phone": "13600000000", "address": "北京市石景山区鲁谷路" }
    }))).await;
    assert_eq!(status, 201, "{g}");
    let gid = g["group_id"].as_i64().expect("group");
    let mut csv = String::from("name,phone,id_number,amount\n");
    for i in 0..members {
        csv.push_str(&format!("会员{i},139{:08},,{}.50\n", i, 1000 + i));
    }
    csv.push_str("坏行,123,,x\n");
    let t0 = Instant::now();
    let (status, imported) = api(n.addr, "POST", &format!("/api/v1/groups/{gid}/members"), Some(&n.admin), Some(json!({ "csv": csv }))).await;
    let import_s = t0.elapsed().as_secs_f64();
    assert_eq!((status, imported["created"].as_u64()), (200, Some(members as u64)), "{imported}");
    assert_eq!(imported["errors"].as_array().map(|e| e.len()), Some(1), "the bad line is reported");
    let (_, again) = api(n.addr, "POST", &format!("/api/v1/groups/{gid}/members"), Some(&n.admin), Some(json!({ "csv": csv }))).await;
    assert_eq!(again["existing"].as_u64(), Some(members as u64), "importing again creates nothing");

    let template = json!({ "facts": "被申请人健身房闭店，申请人预付费用未消费完毕。", "disputes": "剩余预付费用的退还。", "responsibilities": "被申请人应退还剩余预付费用。",
        "terms": [{ "content": "被申请人退还申请人预付费用人民币{amount}元", "performer": "某健身有限公司", "deadline": "2026-12-31", "method": "银行转账" }] });
    let t1 = Instant::now();
    let (status, generated) = api(n.addr, "POST", &format!("/api/v1/groups/{gid}/agreements"), Some(&n.admin), Some(json!({ "mediator_id": m, "template": template }))).await;
    let agreements_s = t1.elapsed().as_secs_f64();
    assert_eq!((status, generated["done"].as_u64()), (200, Some(members as u64)), "{generated}");
    let (_, links) = api(n.addr, "POST", &format!("/api/v1/groups/{gid}/signing-links"), Some(&n.admin), None).await;
    assert_eq!(links["done"].as_u64(), Some(members as u64));
    let last_member = format!("139{:08}", members - 1);
    assert!(n.sms.last_to(&last_member).is_some_and(|t| t.contains("case.html#")), "each member is texted a link");

    // Everyone signs: each member, the respondent on every agreement, the mediator.
    let t2 = Instant::now();
    let rows: Vec<(i64, i64, String)> = sqlx::query_as("select a.agreement_id, c.case_id, v.sha256 from agreement a join dispute_case c on c.case_id = a.case_id join agreement_version v on v.agreement_id = a.agreement_id and v.version = a.current_version where c.group_id = $1 order by c.case_id")
        .bind(gid)
        .fetch_all(&n.db.pool)
        .await
        .expect("agreements");
    let (_, first) = api(n.addr, "GET", &format!("/api/v1/agreements/{}", rows[0].0), Some(&n.admin), None).await;
    assert!(first["body"].as_str().is_some_and(|b| b.contains("人民币1000.50元")), "the member's own amount: {first}");
    let mediator_token = staff(&n, "zhou", "mediator", Some("sjs"), Some(m)).await;
    for (agreement_id, case_id, sha) in &rows {
        let parties: Vec<(i64, String)> = sqlx::query_as("select party_id, role from party where case_id = $1").bind(case_id).fetch_all(&n.db.pool).await.expect("parties");
        for (party_id, _) in parties {
            let token = n_party_token(&n, *case_id, party_id);
            api(n.addr, "POST", &format!("/api/v1/party/agreements/{agreement_id}/code"), Some(&token), None).await;
            let phone: (Option<String>,) = sqlx::query_as("select phone_enc from party where party_id = $1").bind(party_id).fetch_one(&n.db.pool).await.expect("phone");
            let phone = jiefen::crypto::FieldCipher::from_hex(&std::fs::read_to_string(n._dir.path().join("field.key")).expect("key")).expect("cipher").decrypt(&phone.0.expect("phone")).expect("decrypt");
            let code: String = n.sms.last_to(&phone).expect("code").chars().filter(|c| c.is_ascii_digit()).take(6).collect();
            let (status, body) = api(n.addr, "POST", &format!("/api/v1/party/agreements/{agreement_id}/sign"), Some(&token), Some(json!({ "document_sha256": sha, "signature_image": "data:image/png;base64,AA==", "code": code }))).await;
            assert_eq!(status, 200, "{body}");
        }
        let (status, body) = api(n.addr, "POST", &format!("/api/v1/agreements/{agreement_id}/sign"), Some(&mediator_token), Some(json!({ "document_sha256": sha, "signature_image": "data:image/png;base64,AA==" }))).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("effective")));
    }
    let signing_s = t2.elapsed().as_secs_f64();

    let t3 = Instant::now();
    let (status, confirmations) = api(n.addr, "POST", &format!("/api/v1/groups/{gid}/confirmations"), Some(&n.admin), Some(json!({ "court_id": "bj-sjs" }))).await;
    assert_eq!((status, confirmations["done"].as_u64()), (200, Some(members as u64)), "{confirmations}");
    jiefen::jobs::run_due(&n.db, &services).await.expect("deliver");
    let submit_s = t3.elapsed().as_secs_f64();
    let listing = sim_listing(port).await;
    assert_eq!(listing["packages"].as_array().map(|p| p.len()), Some(members), "every package at the court once");
    let mut confirmed = 0;
    for _ in 0..200 {
        let (_, p) = api(n.addr, "GET", &format!("/api/v1/groups/{gid}/progress"), Some(&n.admin), None).await;
        confirmed = p["confirmed"].as_u64().unwrap_or(0) as usize;
        if confirmed == members {
            assert_eq!((p["members"].as_u64(), p["agreements_effective"].as_u64()), (Some(members as u64), Some(members as u64)));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(confirmed, members, "every member's agreement confirmed by the court");
    println!(
        "group of {members}: import {import_s:.2} s, agreements generated {agreements_s:.2} s, signing ({} signatures over the API) {signing_s:.2} s, confirmations assembled and delivered {submit_s:.2} s",
        members * 3
    );
    sim.abort();
    n.shutdown().await;
}

/// A party's signed link token, minted as the server would (same secret).
fn n_party_token(n: &Node, case_id: i64, party_id: i64) -> String {
    let secret = std::fs::read_to_string(n._dir.path().join("token.key")).expect("token key");
    jiefen::auth::party_link::PartyLinkKey::from_secret(secret.trim().as_bytes()).sign(jiefen::auth::party_link::PartyGrant { case_id, party_id, expires_unix: jiefen::store::staff::unix_now() + 3600 })
}
