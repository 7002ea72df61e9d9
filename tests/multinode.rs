//! Two `jiefen serve` processes sharing one Redis: participants entering through different nodes
//! meet in one room (redirect), and when the hosting node is killed (-9) they are back with media
//! on the other node by themselves.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jiefen_loadtest::{Participant, ParticipantConfig};
use jiefen_signaling::{RedisStore, Role, Store, TokenKey, TokenRequest};

const SECRET: &str = "multinode-test-secret-0123456789abcdef";

struct Node {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

fn start_node(redis: &str) -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_jiefen"))
        .args(["serve", "--no-demo", "--listen", "127.0.0.1:0", "--media-port", "0", "--media-workers", "1"])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("DATABASE_URL")
        .env("REDIS_URL", redis)
        .env("JIEFEN_TOKEN_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn jiefen");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("first line");
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let url = line.split("open ").nth(1).map(|u| u.trim().trim_end_matches('/').to_string()).expect("url printed");
    Node { child, url, _dir: dir }
}

fn participant(identity: &str, entry: Vec<String>) -> Participant {
    let token = TokenKey::from_secret(SECRET.as_bytes())
        .mint(&TokenRequest {
            room: "two-nodes".into(),
            identity: identity.into(),
            name: identity.into(),
            role: Role::Official,
            lobby: false,
            ttl: Duration::from_secs(600),
            case_id: None,
        })
        .expect("token");
    Participant::spawn(ParticipantConfig {
        entry_urls: entry,
        token,
        identity: identity.into(),
        publish_audio: true,
        publish_video: true,
        media: jiefen_loadtest::MediaSpec::Synthetic { bytes: 800, packets_per_second: 60 },
        data_per_second: 0,
    })
}

/// Waits until `p` has received fresh packets (newer than `since`) from `from`.
async fn media_from(p: &Participant, from: &str, since: Instant, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if p.snapshot().get(from).and_then(|r| r.last_at).is_some_and(|t| t > since + Duration::from_millis(300)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_a_room_and_survive_a_node_kill() {
    let Ok(redis) = std::env::var("JIEFEN_TEST_REDIS_URL") else {
        assert!(std::env::var("JIEFEN_REQUIRE_SERVICES").is_err(), "JIEFEN_TEST_REDIS_URL is required");
        eprintln!("SKIPPED: no JIEFEN_TEST_REDIS_URL");
        return;
    };
    let mut a = start_node(&redis);
    let mut b = start_node(&redis);
    // Both heartbeats registered.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let x = participant("x", vec![a.url.clone(), b.url.clone()]);
    let y = participant("y", vec![b.url.clone(), a.url.clone()]);
    let start = Instant::now();
    assert!(media_from(&x, "y", start, Duration::from_secs(20)).await, "x receives y: {:?}", x.stats.lock().map(|s| s.errors.clone()));
    assert!(media_from(&y, "x", start, Duration::from_secs(20)).await, "y receives x: {:?}", y.stats.lock().map(|s| s.errors.clone()));
    let redirects = x.stats.lock().map(|s| s.redirects).unwrap_or(0) + y.stats.lock().map(|s| s.redirects).unwrap_or(0);
    assert_eq!(redirects, 1, "exactly one of the two was redirected to the hosting node");

    let store = RedisStore::connect(&redis).await.expect("redis");
    let host = store.room_node("two-nodes").await.expect("lookup").expect("room has a host");
    let nodes = store.live_nodes().await.expect("nodes");
    let host_url = nodes.iter().find(|n| n.node_id == host).map(|n| n.url.clone()).expect("host is live");
    let (victim, survivor) = if host_url == a.url { (&mut a, &b) } else { (&mut b, &a) };
    victim.child.kill().expect("kill -9");
    let killed = Instant::now();
    assert!(media_from(&x, "y", killed, Duration::from_secs(40)).await, "x back with media: {:?}", x.stats.lock().map(|s| s.errors.clone()));
    assert!(media_from(&y, "x", killed, Duration::from_secs(40)).await, "y back with media: {:?}", y.stats.lock().map(|s| s.errors.clone()));
    let recovered = killed.elapsed();
    let new_host = store.room_node("two-nodes").await.expect("lookup").expect("room has a host");
    assert_ne!(new_host, host, "the room moved");
    eprintln!("FIGURE node kill -9 → both participants receiving media again on {}: {:.1} s", survivor.url, recovered.as_secs_f64());
    x.stop().await;
    y.stop().await;
    let _ = a.child.kill();
    let _ = b.child.kill();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

fn redis_server(port: u16, dir: &std::path::Path) -> Child {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (scripts/test.sh installs it)");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_keeps_media_flowing_and_recovers_without_a_restart() {
    if std::env::var("JIEFEN_TEST_REDIS_URL").is_err() {
        assert!(std::env::var("JIEFEN_REQUIRE_SERVICES").is_err(), "Redis is required");
        eprintln!("SKIPPED: no Redis");
        return;
    }
    let redis_dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}/");
    let mut redis = redis_server(port, redis_dir.path());
    let node = start_node(&url);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let x = participant("x", vec![node.url.clone()]);
    let y = participant("y", vec![node.url.clone()]);
    let start = Instant::now();
    assert!(media_from(&y, "x", start, Duration::from_secs(20)).await, "media before the outage");

    let _ = redis.kill();
    let _ = redis.wait();
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(media_from(&y, "x", down + Duration::from_secs(2), Duration::from_secs(5)).await, "media keeps flowing without Redis");
    // A new join fails fast with a clear error.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{}/rtc/v1/ws", node.url.replace("http://", "ws://"))).await.expect("ws");
    let token = TokenKey::from_secret(SECRET.as_bytes())
        .mint(&TokenRequest { room: "two-nodes".into(), identity: "late".into(), name: "late".into(), role: Role::Party, lobby: false, ttl: Duration::from_secs(60), case_id: None })
        .expect("token");
    use futures_util::{SinkExt, StreamExt};
    ws.send(tokio_tungstenite::tungstenite::Message::Text(serde_json::json!({"type": "join", "token": token}).to_string().into())).await.expect("send");
    let asked = Instant::now();
    let reply = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("an answer within 10 s");
    let text = match reply {
        Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => t.to_string(),
        other => panic!("unexpected {other:?}"),
    };
    assert!(text.contains("unavailable"), "{text}");
    eprintln!("FIGURE join refused while Redis is down after {} ms", asked.elapsed().as_millis());

    // Redis comes back (empty): the node re-registers and a newcomer gets in.
    let mut redis = redis_server(port, redis_dir.path());
    let back = Instant::now();
    let z = participant("z", vec![node.url.clone()]);
    assert!(media_from(&z, "x", back, Duration::from_secs(30)).await, "a newcomer joins after Redis returns: {:?}", z.stats.lock().map(|s| s.errors.clone()));
    eprintln!("FIGURE Redis back → a newcomer receiving media: {:.1} s", back.elapsed().as_secs_f64());
    for p in [x, y, z] {
        p.stop().await;
    }
    let mut node = node;
    let _ = node.child.kill();
    let _ = redis.kill();
}
