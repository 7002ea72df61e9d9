//! `jiefen-loadtest-rest`: the case backend under load through its REST API.
//!
//!   jiefen-loadtest-rest --url http://127.0.0.1:8080 --password <admin> --cases 100000 \
//!       --rate 200 --duration 60s
//!
//! Seeds `--cases` cases through the import API (once; existing ones are counted, not redone),
//! then sends requests at a fixed rate (open loop: a slow server does not slow the offered load)
//! in a mix of case list pages, text and phone searches, case details and state changes, and
//! prints p50/p99 latency and throughput per kind; `--json` for the report as JSON.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};

#[derive(Parser)]
#[command(name = "jiefen-loadtest-rest", about = "The case backend's REST API under load")]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, default_value = "admin")]
    username: String,
    #[arg(long, env = "JIEFEN_ADMIN_PASSWORD", hide_env_values = true)]
    password: String,
    /// Cases in the database before the load starts (created through the import API if fewer).
    #[arg(long, default_value_t = 10_000)]
    cases: usize,
    /// Requests per second offered.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Requests in flight at most (beyond it a request counts as dropped).
    #[arg(long, default_value_t = 256)]
    max_in_flight: usize,
    #[arg(long)]
    json: bool,
    /// Fail if the p99 of any kind exceeds this.
    #[arg(long, value_parser = humantime::parse_duration)]
    max_p99: Option<Duration>,
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> anyhow::Result<(u16, Value)> {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).header("authorization", format!("Bearer {}", self.token));
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let text = res.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[derive(Default)]
struct Kind {
    latencies: Vec<Duration>,
    errors: u64,
}

/// The login answer (`Null` if it was not JSON).
async fn sign_in(http: &reqwest::Client, url: &str, username: &str, password: &str) -> anyhow::Result<Value> {
    let text = http
        .post(format!("{url}/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(json!({ "username": username, "password": password }).to_string())
        .send()
        .await
        .context("the server does not answer")?
        .text()
        .await?;
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).pool_max_idle_per_host(args.max_in_flight).build()?;
    let mut login = sign_in(&http, &args.url, &args.username, &args.password).await?;
    if login["account"]["must_change_password"].as_bool() == Some(true) {
        // A fresh server's first admin signs in with a one-time password and must set its own
        // before anything else; the benchmark's data directory is thrown away afterwards.
        let token = login["token"].as_str().context("login refused")?.to_string();
        let fresh = format!("{}-loadtest", args.password);
        let changed = http
            .post(format!("{}/api/v1/auth/password", args.url))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(json!({ "old_password": args.password, "new_password": fresh }).to_string())
            .send()
            .await?;
        if !changed.status().is_success() {
            bail!("could not set a new admin password: {}", changed.text().await.unwrap_or_default());
        }
        login = sign_in(&http, &args.url, &args.username, &fresh).await?;
    }
    let token = login["token"].as_str().context("login refused (check --username/--password)")?.to_string();
    let client = Arc::new(Client { http, base: args.url.clone(), token });

    // Seed.
    let (_, units) = client.call(reqwest::Method::GET, "/api/v1/org-units", None).await?;
    let communities: Vec<i64> = units.as_array().map(|u| u.iter().filter(|x| x["level"] == "community").filter_map(|x| x["org_unit_id"].as_i64()).collect()).unwrap_or_default();
    if communities.is_empty() {
        bail!("the server has no org units (start it with the demo data)");
    }
    let (_, page) = client.call(reqwest::Method::GET, "/api/v1/cases?per_page=1", None).await?;
    let existing = page["total"].as_u64().unwrap_or(0) as usize;
    let categories = ["house_lease", "labour_contract", "property_services", "neighbour_relations", "online_shopping", "private_lending"];
    let seed_started = Instant::now();
    let mut created = 0usize;
    let mut i = existing;
    while i < args.cases {
        let batch: Vec<Value> = (i..(i + 1000).min(args.cases))
            .map(|k| {
                json!({ "external_id": format!("load-{k}"), "title": format!("负载测试纠纷{k}"), "summary": format!("第{k}号：押金、工资或物业费争议"),
                    "category_code": categories[k % categories.len()], "org_unit_id": communities[k % communities.len()],
                    "parties": [{ "role": "applicant", "name": format!("申请人{k}"), "phone": format!("13{:09}", k) }, { "role": "respondent", "name": format!("被申请人{k}") }] })
            })
            .collect();
        let n = batch.len();
        let (status, report) = client.call(reqwest::Method::POST, "/api/v1/imports", Some(&json!({ "source": "hotline_12345", "rows": batch }))).await?;
        if status != 200 {
            bail!("import refused: {status} {report}");
        }
        created += report["created"].as_array().map(|a| a.len()).unwrap_or(0);
        i += n;
    }
    let seed_s = seed_started.elapsed().as_secs_f64();
    let total = existing.max(args.cases);

    // Load: a fixed rate, open loop.
    let kinds: Arc<Mutex<BTreeMap<&'static str, Kind>>> = Arc::default();
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut dropped = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1))));
    let started = Instant::now();
    let mut tasks = Vec::new();
    let mut n = 0u64;
    while started.elapsed() < args.duration {
        tick.tick().await;
        n += 1;
        if in_flight.load(std::sync::atomic::Ordering::Relaxed) >= args.max_in_flight {
            dropped += 1;
            continue;
        }
        let (client, kinds, in_flight) = (client.clone(), kinds.clone(), in_flight.clone());
        let pick = n % 10;
        let k = rand::random::<u64>() as usize % total.max(1);
        in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let (kind, ok) = match pick {
                0..=3 => ("list", client.call(reqwest::Method::GET, &format!("/api/v1/cases?per_page=20&page={}", 1 + k % 50), None).await.is_ok_and(|r| r.0 == 200)),
                4..=5 => ("search_text", client.call(reqwest::Method::GET, &format!("/api/v1/cases?q=%E7%AC%AC{k}%E5%8F%B7"), None).await.is_ok_and(|r| r.0 == 200)),
                6 => ("search_phone", client.call(reqwest::Method::GET, &format!("/api/v1/cases?phone=13{k:09}"), None).await.is_ok_and(|r| r.0 == 200 && r.1["total"].as_u64() >= Some(1))),
                7..=8 => ("detail", client.call(reqwest::Method::GET, &format!("/api/v1/cases/{}", 1 + k), None).await.is_ok_and(|r| r.0 == 200 || r.0 == 404)),
                _ => {
                    // A state change: read the version, accept (a registered case) or refuse a stale one.
                    let id = 1 + k;
                    let ok = match client.call(reqwest::Method::GET, &format!("/api/v1/cases/{id}"), None).await {
                        Ok((200, c)) => {
                            let action = if c["status"] == "registered" { "accept" } else { "withdraw" };
                            let body = json!({ "action": action, "version": c["version"], "reason": "负载测试" });
                            client.call(reqwest::Method::POST, &format!("/api/v1/cases/{id}/transitions"), Some(&body)).await.is_ok_and(|r| matches!(r.0, 200 | 409))
                        }
                        Ok((404, _)) => true,
                        _ => false,
                    };
                    ("state_change", ok)
                }
            };
            let elapsed = t.elapsed();
            in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            let mut kinds = kinds.lock().unwrap_or_else(|p| p.into_inner());
            let entry = kinds.entry(kind).or_default();
            entry.latencies.push(elapsed);
            entry.errors += u64::from(!ok);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let wall = started.elapsed().as_secs_f64();
    let mut kinds = kinds.lock().unwrap_or_else(|p| p.into_inner());
    let mut report = json!({ "cases": total, "seeded": created, "seed_seconds": seed_s, "rate": args.rate, "duration_s": wall, "dropped": dropped, "kinds": {} });
    let mut failed = false;
    println!("{total} cases ({created} imported in {seed_s:.1} s); {} req/s offered for {wall:.1} s, {dropped} dropped", args.rate);
    println!("{:<14} {:>8} {:>8} {:>10} {:>10} {:>10}", "kind", "count", "errors", "p50 ms", "p99 ms", "req/s");
    for (name, k) in kinds.iter_mut() {
        k.latencies.sort();
        let (p50, p99) = (percentile(&k.latencies, 0.5), percentile(&k.latencies, 0.99));
        println!("{name:<14} {:>8} {:>8} {:>10.1} {:>10.1} {:>10.1}", k.latencies.len(), k.errors, p50.as_secs_f64() * 1e3, p99.as_secs_f64() * 1e3, k.latencies.len() as f64 / wall);
        report["kinds"][*name] = json!({ "count": k.latencies.len(), "errors": k.errors, "p50_ms": p50.as_secs_f64() * 1e3, "p99_ms": p99.as_secs_f64() * 1e3 });
        if args.max_p99.is_some_and(|m| p99 > m) || k.errors > 0 {
            failed = true;
        }
    }
    if args.json {
        println!("{report}");
    }
    if failed {
        eprintln!("thresholds missed (errors, or a p99 over --max-p99)");
        std::process::exit(1);
    }
    Ok(())
}
