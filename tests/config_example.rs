//! jiefen.example.toml stays loadable: every key it shows exists.

#[test]
fn example_config_loads() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("jiefen.example.toml");
    let args = jiefen::config::ConfigArgs { config: Some(path), ..Default::default() };
    let c = jiefen::config::Config::load(&args).expect("the example config loads");
    assert_eq!(c.listen.port(), 8080);
    assert_eq!(c.limits.participants_per_room, 30);
}
