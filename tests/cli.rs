//! The binary's bad-input contract: one clear line and exit code 2, never a panic.

use std::process::{Command, Output};

fn jiefen(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jiefen"));
    cmd.args(args).env_remove("DATABASE_URL").env_remove("REDIS_URL").env("RUST_LOG", "off");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("runs")
}

fn assert_clean_failure(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

#[test]
fn malformed_config_file_is_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "listen = [nonsense").expect("write");
    let out = jiefen(&["serve", "--config", path.to_str().expect("utf8")], &[]);
    assert_clean_failure(&out, "malformed");
}

#[test]
fn unreachable_database_is_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = jiefen(
        &["serve", "--data-dir", dir.path().to_str().expect("utf8"), "--listen", "127.0.0.1:0", "--media-port", "0"],
        &[("DATABASE_URL", "postgres://nobody:secret@127.0.0.1:1/none")],
    );
    assert_clean_failure(&out, "database");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("secret"), "password leaked");
}

#[test]
fn unreachable_redis_is_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = jiefen(
        &["serve", "--data-dir", dir.path().to_str().expect("utf8"), "--listen", "127.0.0.1:0", "--media-port", "0"],
        &[("REDIS_URL", "redis://127.0.0.1:1/")],
    );
    assert_clean_failure(&out, "session store");
}

#[test]
fn port_in_use_is_one_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = jiefen(&["serve", "--data-dir", dir.path().to_str().expect("utf8"), "--listen", &addr, "--media-port", "0"], &[]);
    assert_clean_failure(&out, "cannot listen");
}

#[test]
fn unwritable_data_dir_is_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("write");
    let out = jiefen(&["serve", "--data-dir", file.join("sub").to_str().expect("utf8"), "--listen", "127.0.0.1:0"], &[]);
    assert_clean_failure(&out, "data directory");
}

#[test]
fn token_prints_json_with_a_join_url() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf8");
    let out = jiefen(&["token", "--data-dir", d, "--room", "r1", "--identity", "zhang", "--name", "张三", "--role", "party", "--lobby", "--ttl", "30m"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    let token = v["token"].as_str().expect("token");
    assert_eq!(v["url"], format!("http://127.0.0.1:8080/join?token={token}"));
    // The key in the data dir verifies it.
    let key = jiefen_signaling::TokenKey::from_secret(&std::fs::read(dir.path().join("token.key")).expect("key"));
    let claims = key.verify(token).expect("valid");
    assert!(claims.lobby && claims.room == "r1");
    let bad = jiefen(&["token", "--data-dir", d, "--room", "r 1", "--identity", "x", "--name", "n", "--role", "party"], &[]);
    assert_clean_failure(&bad, "room");
}

#[cfg(unix)]
#[test]
fn sigterm_drains_and_exits_cleanly() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_jiefen"))
        .args(["serve", "--no-demo", "--listen", "127.0.0.1:0", "--media-port", "0", "--data-dir", dir.path().to_str().expect("utf8")])
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line).expect("first line");
    // Keep reading so the server never writes into a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    assert!(line.contains("open http://127.0.0.1:"), "{line}");
    let pid = child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(status.success());
    let started = std::time::Instant::now();
    let out = child.wait_with_output().expect("exits");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "drain took too long");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("draining"));
}
