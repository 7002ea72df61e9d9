//! The `jiefen` binary: `serve`, `token`, `recordings verify`.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use jiefen::config::{Config, ConfigArgs, LogFormat};
use jiefen::server::{Server, StartOptions, default_web_dir, token_key};
use jiefen_signaling::{Role, TokenRequest};

#[derive(Parser)]
#[command(name = "jiefen", version, about = "jiefen (解纷): online dispute resolution with video mediation")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: ConfigArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web app, the API, signaling and media (the default).
    Serve {
        /// Do not seed the demo organisation into an empty database.
        #[arg(long)]
        no_demo: bool,
    },
    /// Mint a join token for an ad-hoc room and print {"token", "url"}.
    Token {
        #[arg(long)]
        room: String,
        #[arg(long)]
        identity: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["party", "mediator", "official", "observer"])]
        role: String,
        /// The holder waits in the lobby until a mediator admits it (parties only).
        #[arg(long)]
        lobby: bool,
        /// Lifetime, e.g. 2h, 30m.
        #[arg(long, default_value = "2h", value_parser = humantime::parse_duration)]
        ttl: Duration,
    },
    /// Run background jobs (composite recordings) until stopped; for a machine apart from the
    /// media nodes (set `worker_in_process = false` on those).
    Worker,
    /// A court simulator: the court's side of docs/court-api.md, for tests and demos.
    CourtSim {
        #[arg(long, default_value = "127.0.0.1:9300")]
        listen: std::net::SocketAddr,
        /// The secret shared with jiefen's [court] secret.
        #[arg(long, env = "JIEFEN_COURT_SECRET", hide_env_values = true)]
        secret: String,
        #[arg(long, default_value = "confirmed", value_parser = ["confirmed", "rejected", "not_accepted"])]
        confirmation_outcome: String,
        #[arg(long, default_value = "filed", value_parser = ["filed", "materials_missing", "not_accepted"])]
        filing_outcome: String,
        /// From receipt to decision, e.g. 5s, 2m.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        delay: Duration,
    },
    /// Recordings kept by this deployment.
    Recordings {
        #[command(subcommand)]
        action: RecordingsAction,
    },
}

#[derive(Subcommand)]
enum RecordingsAction {
    /// Re-hash a recording's files and manifest; exit 0 if nothing changed, 1 if anything did.
    Verify {
        /// The recording id (as listed on its case).
        id: i64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    init_logging(config.log_format);
    match cli.command.unwrap_or(Command::Serve { no_demo: false }) {
        Command::Serve { no_demo } => serve(config, !no_demo),
        Command::Token { room, identity, name, role, lobby, ttl } => {
            let Some(role) = Role::parse(&role) else { return fail("role must be party, mediator, official or observer") };
            let key = match token_key(&config) {
                Ok(k) => k,
                Err(e) => return fail(&e.to_string()),
            };
            let request = TokenRequest { room, identity, name, role, lobby, ttl, case_id: None };
            match key.mint(&request) {
                Ok(token) => {
                    let url = format!("{}/join?token={token}", config.base_url());
                    say(&serde_json::json!({ "token": token, "url": url }).to_string());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string()),
            }
        }
        Command::Recordings { action: RecordingsAction::Verify { id } } => verify_recording(&config, id),
        Command::Worker => worker(&config),
        Command::CourtSim { listen, secret, confirmation_outcome, filing_outcome, delay } => {
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(r) => r,
                Err(e) => return fail(&format!("cannot start: {e}")),
            };
            runtime.block_on(async {
                let listener = match tokio::net::TcpListener::bind(listen).await {
                    Ok(l) => l,
                    Err(e) => return fail(&format!("cannot listen on {listen}: {e}")),
                };
                say(&format!("jiefen court-sim: listening on http://{listen} (confirmations: {confirmation_outcome}, filings: {filing_outcome}, after {})", humantime::format_duration(delay)));
                let config = jiefen::court::sim::SimConfig { secret: secret.into_bytes(), confirmation_outcome, filing_outcome, delay };
                match jiefen::court::sim::serve(listener, config).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => fail(&e.to_string()),
                }
            })
        }
    }
}

fn worker(config: &Config) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start: {e}")),
    };
    runtime.block_on(async {
        let url = config.effective_database_url();
        let db = match jiefen::db::Db::connect_and_migrate(&url).await {
            Ok(db) => db,
            Err(e) => return fail(&format!("database {}: {e}", jiefen::config::redact_url(&url))),
        };
        let services = match (jiefen::server::storage_of(config), jiefen::server::court_connector(config)) {
            (Ok(storage), Ok(court)) => jiefen::jobs::Services { storage, court },
            (Err(e), _) | (_, Err(e)) => return fail(&e.to_string()),
        };
        say("jiefen worker: running background jobs (Ctrl-C to stop; an interrupted job is retried)");
        tokio::select! {
            () = jiefen::jobs::run_worker(db, services) => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        ExitCode::SUCCESS
    })
}

fn verify_recording(config: &Config, id: i64) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start: {e}")),
    };
    runtime.block_on(async {
        let url = config.effective_database_url();
        let db = match jiefen::db::Db::connect(&url).await {
            Ok(db) => db,
            Err(e) => return fail(&format!("database {}: {e}", jiefen::config::redact_url(&url))),
        };
        let recording = match jiefen::recordings::load(&db, id).await {
            Ok(Some(r)) => r,
            Ok(None) => return fail(&format!("no recording {id}")),
            Err(e) => return fail(&e.to_string()),
        };
        let storage = match jiefen::server::storage_of(config) {
            Ok(s) => s,
            Err(e) => return fail(&e.to_string()),
        };
        let report = jiefen::recordings::verify(&storage, &recording).await;
        for (file, state) in &report.checks {
            say(&format!("{state:8} {file}"));
        }
        if report.intact {
            say(&format!("recording {id}: intact ({} files match the hashes stored when it ended)", report.checks.len()));
            ExitCode::SUCCESS
        } else {
            say(&format!("recording {id}: CHANGED or incomplete (status {})", recording.status));
            ExitCode::from(1)
        }
    })
}

fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn fail(message: &str) -> ExitCode {
    eprintln!("jiefen: {message}");
    ExitCode::from(2)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn serve(config: Config, demo: bool) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(async move {
        let server = match Server::start(&config, StartOptions { demo, web_dir: default_web_dir(), sms: None }).await {
            Ok(s) => s,
            Err(e) => return fail(&e.to_string()),
        };
        // Listen for SIGTERM before announcing the URL, so a stop right after start still drains.
        let shutdown = shutdown_signal();
        let url = format!("http://{}", server.local_addr);
        tracing::info!(config = ?config, "starting");
        // stdout may be a closed pipe (a supervisor that stopped reading): never panic on it.
        say(&format!("jiefen is running: open {url}/"));
        if let Some(password) = &server.first_admin_password {
            say(&format!("first start: admin account 'admin', one-time password: {password}"));
        }
        if server.demo_seeded {
            say("demo data seeded (one district, three streets, six communities); start with --no-demo to skip");
        }
        match server.run(shutdown).await {
            Ok(()) => {
                tracing::info!("stopped");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&format!("server error: {e}")),
        }
    })
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is called, not polled.
fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async move {
            match term {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! { _ = ctrl_c => {}, _ = term => {} }
        tracing::info!("shutdown requested: draining");
    }
}
