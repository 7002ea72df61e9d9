//! Configuration: a TOML file (`--config`), then `JIEFEN_*` environment variables, then flags;
//! later sources win. Every key is documented in `jiefen.example.toml`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Values given on the command line or in `JIEFEN_*` variables (clap merges those two).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, global = true, env = "JIEFEN_CONFIG")]
    pub config: Option<PathBuf>,
    /// HTTP listen address (web app, REST API, signaling websocket).
    #[arg(long, global = true, env = "JIEFEN_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the SQLite database, the token signing key and recordings.
    #[arg(long, global = true, env = "JIEFEN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// First UDP port of the media workers (worker i listens on media_port + i).
    #[arg(long, global = true, env = "JIEFEN_MEDIA_PORT")]
    pub media_port: Option<u16>,
    /// Address announced in ICE candidates.
    #[arg(long, global = true, env = "JIEFEN_PUBLIC_IP")]
    pub public_ip: Option<IpAddr>,
    /// Number of media worker threads (default: one per core).
    #[arg(long, global = true, env = "JIEFEN_MEDIA_WORKERS")]
    pub media_workers: Option<usize>,
    /// Datagrams per send system call of a media worker (sendmmsg); 1 sends one at a time.
    #[arg(long, global = true, env = "JIEFEN_MEDIA_SEND_BATCH")]
    pub media_send_batch: Option<usize>,
    /// `postgres://...` for PostgreSQL, `sqlite:...` or nothing for the embedded database.
    #[arg(long, global = true, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// `redis://...` switches the session store to Redis.
    #[arg(long, global = true, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// Log format: `text` or `json`.
    #[arg(long, global = true, env = "JIEFEN_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Secret for signing join tokens (shared by all nodes); generated into the data dir if unset.
    #[arg(long, global = true, env = "JIEFEN_TOKEN_SECRET", hide_env_values = true)]
    pub token_secret: Option<String>,
    /// Base URL put into join links and announced to other nodes (default: http://<listen>).
    #[arg(long, global = true, env = "JIEFEN_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// This node's id in the node registry (default: node-<listen address>).
    #[arg(long, global = true, env = "JIEFEN_NODE_ID")]
    pub node_id: Option<String>,
    /// Where session events are POSTed (signed) for a case backend that runs elsewhere.
    #[arg(long, global = true, env = "JIEFEN_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// AES-256 key (64 hex digits) encrypting phone and ID numbers at rest; generated into the data dir if unset.
    #[arg(long, global = true, env = "JIEFEN_FIELD_KEY", hide_env_values = true)]
    pub field_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The file's shape. Unknown keys are an error so that a typo never goes unnoticed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    media_port: Option<u16>,
    public_ip: Option<IpAddr>,
    media_workers: Option<usize>,
    media_send_batch: Option<usize>,
    database_url: Option<String>,
    redis_url: Option<String>,
    log_format: Option<LogFormat>,
    token_secret: Option<String>,
    public_url: Option<String>,
    node_id: Option<String>,
    webhook_url: Option<String>,
    field_key: Option<String>,
    recording_retention_days: Option<u64>,
    worker_in_process: Option<bool>,
    seal_key: Option<String>,
    /// `[court]`: the court's filing system and the courts of the area.
    #[serde(default)]
    court: CourtSettings,
    /// `[storage.s3]`: recordings go to S3-compatible object storage.
    #[serde(default)]
    storage: FileStorage,
    #[serde(default)]
    limits: FileLimits,
    #[serde(default)]
    auth: FileAuth,
}

/// The court connector's settings.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CourtSettings {
    /// The court system's base URL (the real one, or `jiefen court-sim`); unset: the court path is off.
    pub url: Option<String>,
    /// The shared secret signing requests and callbacks (HMAC-SHA256).
    pub secret: Option<String>,
    /// Where the court sends callbacks; default: <public URL>/api/v1/court/callbacks.
    pub callback_url: Option<String>,
    /// The basic-level courts of the area (the parties choose among those with jurisdiction).
    #[serde(default)]
    pub courts: Vec<crate::court::rules::Court>,
}

impl std::fmt::Debug for CourtSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CourtSettings").field("url", &self.url).field("courts", &self.courts.len()).finish_non_exhaustive()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileStorage {
    s3: Option<crate::storage::S3Config>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAuth {
    idle_timeout_secs: Option<u64>,
    absolute_timeout_secs: Option<u64>,
    max_login_failures: Option<i64>,
    lockout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    participants_per_room: Option<usize>,
    rooms_per_node: Option<usize>,
    max_message_bytes: Option<usize>,
    messages_per_second: Option<u32>,
    reconnect_window_secs: Option<u64>,
    data_message_max_bytes: Option<usize>,
    data_messages_per_second: Option<u32>,
}

/// Explicit limits; exceeding one gives a clear refusal.
#[derive(Debug, Clone)]
pub struct Limits {
    pub participants_per_room: usize,
    pub rooms_per_node: usize,
    pub max_message_bytes: usize,
    pub messages_per_second: u32,
    pub reconnect_window: Duration,
    /// The room data channel: largest message relayed, messages per second per participant.
    pub data_message_max_bytes: usize,
    pub data_messages_per_second: u32,
}

#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub media_port: u16,
    pub public_ip: IpAddr,
    pub media_workers: usize,
    pub media_send_batch: usize,
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    pub log_format: LogFormat,
    pub token_secret: Option<String>,
    pub public_url: Option<String>,
    pub node_id: Option<String>,
    pub webhook_url: Option<String>,
    pub field_key: Option<String>,
    /// Recordings older than this are deleted (and the deletion logged on the case).
    pub recording_retention: Duration,
    /// Run background jobs (composite recordings) inside `jiefen serve`; false when a separate
    /// `jiefen worker` does them.
    pub worker_in_process: bool,
    /// Where finished recordings are kept: `None` = the data directory.
    pub s3: Option<crate::storage::S3Config>,
    /// The organisation's Ed25519 seal key (base64 PKCS#8); generated into the data dir if unset.
    pub seal_key: Option<String>,
    pub court: CourtSettings,
    pub limits: Limits,
    pub auth: crate::store::staff::AuthSettings,
}

impl std::fmt::Debug for Config {
    // Secrets (token secret, passwords inside URLs) never reach the logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("media_port", &self.media_port)
            .field("public_ip", &self.public_ip)
            .field("media_workers", &self.media_workers)
            .field("media_send_batch", &self.media_send_batch)
            .field("database", &self.database_url.as_deref().map(redact_url))
            .field("redis", &self.redis_url.as_deref().map(redact_url))
            .field("token_secret", &self.token_secret.as_ref().map(|_| "<redacted>"))
            .field("field_key", &self.field_key.as_ref().map(|_| "<redacted>"))
            .field("limits", &self.limits)
            .field("auth", &self.auth)
            .finish()
    }
}

/// Hides the password part of `scheme://user:password@host`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is malformed: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    pub fn load(args: &ConfigArgs) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let media_workers = args.media_workers.or(file.media_workers).unwrap_or(cores);
        if media_workers == 0 || media_workers > 256 {
            return Err(ConfigError::Invalid(format!(
                "media_workers must be between 1 and 256, got {media_workers}"
            )));
        }
        let media_port = args.media_port.or(file.media_port).unwrap_or(7880);
        let media_send_batch = args.media_send_batch.or(file.media_send_batch).unwrap_or(jiefen_media::batch::DEFAULT_BATCH);
        if media_send_batch == 0 || media_send_batch > jiefen_media::batch::MAX_BATCH {
            return Err(ConfigError::Invalid(format!(
                "media_send_batch must be between 1 and {}, got {media_send_batch}",
                jiefen_media::batch::MAX_BATCH
            )));
        }
        if usize::from(media_port) + media_workers > 65536 {
            return Err(ConfigError::Invalid("media_port + media_workers exceeds 65535".into()));
        }
        let database_url = args.database_url.clone().or(file.database_url).filter(|u| !u.is_empty());
        if let Some(url) = &database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://") || url.starts_with("sqlite:"))
        {
            return Err(ConfigError::Invalid(format!(
                "DATABASE_URL must start with postgres:// or sqlite:, got {}",
                redact_url(url)
            )));
        }
        let redis_url = args.redis_url.clone().or(file.redis_url).filter(|u| !u.is_empty());
        let l = file.limits;
        let a = file.auth;
        let auth = crate::store::staff::AuthSettings {
            idle_timeout: Duration::from_secs(a.idle_timeout_secs.unwrap_or(30 * 60)),
            absolute_timeout: Duration::from_secs(a.absolute_timeout_secs.unwrap_or(12 * 3600)),
            max_failures: a.max_login_failures.unwrap_or(5),
            lockout: Duration::from_secs(a.lockout_secs.unwrap_or(15 * 60)),
        };
        if auth.idle_timeout.is_zero() || auth.absolute_timeout < auth.idle_timeout || auth.max_failures < 1 {
            return Err(ConfigError::Invalid("auth: idle_timeout_secs > 0, absolute_timeout_secs >= idle_timeout_secs, max_login_failures >= 1".into()));
        }
        let field_key = args.field_key.clone().or(file.field_key).filter(|k| !k.is_empty());
        if let Some(k) = &field_key
            && crate::crypto::FieldCipher::from_hex(k).is_err()
        {
            return Err(ConfigError::Invalid("field_key must be 64 hex digits (32 bytes)".into()));
        }
        Ok(Config {
            listen: args.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir: args.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from("data")),
            media_port,
            public_ip: args.public_ip.or(file.public_ip).unwrap_or(IpAddr::from([127, 0, 0, 1])),
            media_workers,
            media_send_batch,
            database_url,
            redis_url,
            log_format: args.log_format.or(file.log_format).unwrap_or(LogFormat::Text),
            token_secret: args.token_secret.clone().or(file.token_secret),
            public_url: args.public_url.clone().or(file.public_url),
            node_id: args.node_id.clone().or(file.node_id),
            webhook_url: {
                let url = args.webhook_url.clone().or(file.webhook_url).filter(|u| !u.is_empty());
                if let Some(u) = &url
                    && !u.starts_with("http://")
                {
                    return Err(ConfigError::Invalid(format!("webhook_url must be an http:// URL, got {u}")));
                }
                url
            },
            field_key,
            recording_retention: Duration::from_secs(86_400 * file.recording_retention_days.unwrap_or(3 * 365).max(1)),
            worker_in_process: file.worker_in_process.unwrap_or(true),
            s3: file.storage.s3,
            seal_key: file.seal_key,
            court: {
                let mut court = file.court;
                if court.courts.is_empty() {
                    // The demo organisation's district court.
                    court.courts.push(crate::court::rules::Court { court_id: "bj-sjs".into(), name: "北京市石景山区人民法院".into(), district: "石景山区".into(), org_unit_code: "sjs".into() });
                }
                if court.url.is_some() && court.secret.as_deref().is_none_or(str::is_empty) {
                    return Err(ConfigError::Invalid("[court] url needs a secret shared with the court".into()));
                }
                court
            },
            auth,
            limits: Limits {
                participants_per_room: l.participants_per_room.unwrap_or(30),
                rooms_per_node: l.rooms_per_node.unwrap_or(500),
                max_message_bytes: l.max_message_bytes.unwrap_or(64 * 1024),
                messages_per_second: l.messages_per_second.unwrap_or(50),
                reconnect_window: Duration::from_secs(l.reconnect_window_secs.unwrap_or(30)),
                data_message_max_bytes: match l.data_message_max_bytes.unwrap_or(16 * 1024) {
                    // SCTP messages above 64 KiB are not interoperable between browsers.
                    n @ 1..=65536 => n,
                    n => return Err(ConfigError::Invalid(format!("limits.data_message_max_bytes must be 1-65536, not {n}"))),
                },
                data_messages_per_second: match l.data_messages_per_second.unwrap_or(20) {
                    0 => return Err(ConfigError::Invalid("limits.data_messages_per_second must be at least 1".into())),
                    n => n,
                },
            },
        })
    }

    /// The URL people open: the configured public URL or the listen address.
    pub fn base_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.listen),
        }
    }

    /// The base URL once the listener is bound (a `:0` port resolved).
    pub fn base_url_for(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{bound}"),
        }
    }

    /// The effective database URL: the configured one or the embedded SQLite file.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("jiefen.db").display()),
        }
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.message().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ConfigArgs {
        ConfigArgs::default()
    }

    #[test]
    fn defaults_are_embedded_and_local() {
        let c = Config::load(&args()).expect("defaults load");
        assert_eq!(c.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(c.database_url, None);
        assert!(c.effective_database_url().starts_with("sqlite://data/jiefen.db"));
        assert_eq!(c.limits.reconnect_window, Duration::from_secs(30));
    }

    #[test]
    fn flags_override_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\nmedia_port = 9100\n[limits]\nparticipants_per_room = 4\n")
            .expect("write");
        let mut a = args();
        a.config = Some(path);
        a.media_port = Some(9200);
        let c = Config::load(&a).expect("loads");
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.media_port, 9200);
        assert_eq!(c.limits.participants_per_room, 4);
    }

    #[test]
    fn unknown_key_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "lisen = \"127.0.0.1:9000\"\n").expect("write");
        let mut a = args();
        a.config = Some(path.clone());
        let err = Config::load(&a).expect_err("typo refused").to_string();
        assert!(err.contains("lisen"), "{err}");
        std::fs::write(&path, "listen = 12\n").expect("write");
        assert!(matches!(Config::load(&a), Err(ConfigError::Parse { .. })));
        let mut b = args();
        b.database_url = Some("mysql://x".into());
        assert!(matches!(Config::load(&b), Err(ConfigError::Invalid(_))));
        std::fs::write(&path, "[limits]\ndata_message_max_bytes = 100000\n").expect("write");
        let err = Config::load(&a).expect_err("too large for SCTP").to_string();
        assert!(err.contains("data_message_max_bytes"), "{err}");
        std::fs::write(&path, "[limits]\ndata_messages_per_second = 0\n").expect("write");
        assert!(matches!(Config::load(&a), Err(ConfigError::Invalid(_))));
        std::fs::write(&path, "[limits]\ndata_message_max_bytes = 4096\n").expect("write");
        assert_eq!(Config::load(&a).expect("loads").limits.data_message_max_bytes, 4096);
    }

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        let mut a = args();
        a.token_secret = Some("topsecret".into());
        a.database_url = Some("postgres://u:pw@h/db".into());
        let c = Config::load(&a).expect("loads");
        let shown = format!("{c:?}");
        assert!(!shown.contains("topsecret") && !shown.contains(":pw@"), "{shown}");
    }
}
