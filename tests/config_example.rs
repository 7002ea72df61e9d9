//! jiefen.example.toml stays loadable: every key it shows exists.

#[test]
fn example_config_loads() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("jiefen.example.toml");
    let args = jiefen::config::ConfigArgs { config: Some(path), ..Default::default() };
    let c = jiefen::config::Config::load(&args).expect("the example config loads");
    assert_eq!(c.listen.port(), 8080);
    assert_eq!(c.limits.participants_per_room, 30);
}

/// The commented-out keys are real keys too: uncommented, the file still loads.
#[test]
fn example_config_commented_keys_exist() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("jiefen.example.toml");
    let text = std::fs::read_to_string(&path).expect("read");
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if rest.split_once(" = ").is_some_and(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')) => rest.to_string(),
            // Commented-out sections too: `# [storage.s3]`.
            Some(rest) if rest.starts_with('[') && rest.ends_with(']') && rest[1..rest.len() - 1].chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.') => rest.to_string(),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("all.toml");
    std::fs::write(&file, uncommented).expect("write");
    let args = jiefen::config::ConfigArgs { config: Some(file), ..Default::default() };
    let c = jiefen::config::Config::load(&args).expect("every documented key loads");
    assert!(c.field_key.is_some() && c.database_url.is_some());
    assert_eq!(c.s3.as_ref().map(|s| s.bucket.as_str()), Some("jiefen-recordings"));
    assert_eq!(c.auth.max_failures, 5);
}
