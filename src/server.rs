//! Starting and stopping a whole node: database, session store, media workers, signaling, HTTP.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use jiefen_media::{Media, MediaConfig};
use jiefen_signaling::{MemoryStore, RedisStore, SessionStore, Signaling, SignalingConfig, SignalingLimits, TokenKey};
use tokio::net::TcpListener;

use crate::config::{Config, redact_url};
use crate::db::Db;
use crate::http::{AppState, app};

/// A start-up failure, each named so that `main` prints one clear line.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data directory {path} is not usable: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("database {url}: {source}")]
    Database { url: String, source: crate::db::DbError },
    #[error("session store {url}: {source}")]
    SessionStore { url: String, source: jiefen_signaling::store::StoreError },
    #[error("media: {0}")]
    Media(jiefen_media::MediaError),
    #[error("recording storage: {0}")]
    Storage(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
}

pub struct Server {
    pub state: AppState,
    pub listener: TcpListener,
    pub local_addr: SocketAddr,
    /// The admin password, on the very first start only.
    pub first_admin_password: Option<String>,
    pub demo_seeded: bool,
}

pub struct StartOptions {
    pub demo: bool,
    pub web_dir: PathBuf,
    /// The text-message gateway; `None`: the log gateway (codes appear in the log).
    pub sms: Option<crate::auth::sms::LogSms>,
}

/// The web app folder: `JIEFEN_WEB_DIR`, or `web/` beside the binary's sources.
pub fn default_web_dir() -> PathBuf {
    std::env::var_os("JIEFEN_WEB_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/web")))
}

/// The secret that signs join tokens and webhooks: from config, or the data dir's key file.
pub fn token_secret(config: &Config) -> Result<Vec<u8>, StartError> {
    match &config.token_secret {
        Some(s) => Ok(s.as_bytes().to_vec()),
        None => {
            ensure_data_dir(config)?;
            crate::keys::load_or_create(&config.data_dir).map_err(|source| StartError::DataDir { path: config.data_dir.clone(), source })
        }
    }
}

pub fn token_key(config: &Config) -> Result<TokenKey, StartError> {
    Ok(TokenKey::from_secret(&token_secret(config)?))
}

/// The organisation's seal key: `seal_key` in config, or `seal.key` generated into the data dir.
pub fn seal_key(config: &Config) -> Result<crate::agreement::seal::SealKey, StartError> {
    let bad = |e: String| StartError::DataDir { path: config.data_dir.join("seal.key"), source: std::io::Error::new(std::io::ErrorKind::InvalidData, e) };
    let text = match &config.seal_key {
        Some(k) => k.clone(),
        None => {
            let path = config.data_dir.join("seal.key");
            match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let key = crate::agreement::seal::generate().map_err(|e| bad(e.to_string()))?;
                    let mut options = std::fs::OpenOptions::new();
                    options.write(true).create_new(true);
                    #[cfg(unix)]
                    {
                        use std::os::unix::fs::OpenOptionsExt;
                        options.mode(0o600);
                    }
                    match options.open(&path) {
                        Ok(mut f) => {
                            std::io::Write::write_all(&mut f, key.as_bytes()).map_err(|source| StartError::DataDir { path: path.clone(), source })?;
                            key
                        }
                        // Another process made it first: use theirs.
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read_to_string(&path).map_err(|source| StartError::DataDir { path: path.clone(), source })?,
                        Err(source) => return Err(StartError::DataDir { path, source }),
                    }
                }
                Err(source) => return Err(StartError::DataDir { path, source }),
            }
        }
    };
    crate::agreement::seal::SealKey::from_base64(&text).map_err(|e| bad(e.to_string()))
}

/// The court connector, when `[court] url` is set.
pub fn court_connector(config: &Config) -> Result<Option<crate::court::connector::HttpCourt>, StartError> {
    match (&config.court.url, &config.court.secret) {
        (Some(url), Some(secret)) => crate::court::connector::HttpCourt::new(url, secret.as_bytes()).map(Some).map_err(|e| StartError::Storage(format!("court connector: {e}"))),
        _ => Ok(None),
    }
}

/// The configured recording storage: S3-compatible object storage, or the data directory.
pub fn storage_of(config: &Config) -> Result<crate::storage::Storage, StartError> {
    match &config.s3 {
        Some(s3) => crate::storage::Storage::s3(s3).map_err(|e| StartError::Storage(e.to_string())),
        None => Ok(crate::storage::Storage::Local),
    }
}

fn ensure_data_dir(config: &Config) -> Result<(), StartError> {
    let path = &config.data_dir;
    std::fs::create_dir_all(path).map_err(|source| StartError::DataDir { path: path.clone(), source })?;
    // Prove it is writable now rather than at the first recording.
    let probe = path.join(".write-probe");
    std::fs::write(&probe, b"ok").map_err(|source| StartError::DataDir { path: path.clone(), source })?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

impl Server {
    pub async fn start(config: &Config, options: StartOptions) -> Result<Server, StartError> {
        ensure_data_dir(config)?;
        let key = token_key(config)?;
        let url = config.effective_database_url();
        let db = Db::connect_and_migrate(&url)
            .await
            .map_err(|source| StartError::Database { url: redact_url(&url), source })?;
        let first_admin_password = crate::bootstrap::ensure_admin(&db)
            .await
            .map_err(|source| StartError::Database { url: redact_url(&url), source })?;
        crate::bootstrap::ensure_categories(&db).await.map_err(|source| StartError::Database { url: redact_url(&url), source })?;
        let indexed = crate::store::search::backfill(&db).await.map_err(|source| StartError::Database { url: redact_url(&url), source })?;
        if indexed > 0 {
            tracing::info!(cases = indexed, "text search index built for existing cases");
        }
        let demo_seeded = if options.demo {
            crate::bootstrap::seed_demo(&db).await.map_err(|source| StartError::Database { url: redact_url(&url), source })?
        } else {
            false
        };
        let store = match &config.redis_url {
            Some(url) => SessionStore::Redis(
                RedisStore::connect(url).await.map_err(|source| StartError::SessionStore { url: redact_url(url), source })?,
            ),
            None => SessionStore::Memory(MemoryStore::default()),
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Listen { addr: config.listen, source })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Listen { addr: config.listen, source })?;
        let bind_ip = if config.public_ip.is_loopback() { config.public_ip } else { std::net::IpAddr::from([0, 0, 0, 0]) };
        let media = Media::start(MediaConfig {
            bind_ip,
            public_ip: config.public_ip,
            first_port: config.media_port,
            workers: config.media_workers,
            send_batch: config.media_send_batch,
            limits: jiefen_media::Limits {
                participants_per_room: config.limits.participants_per_room,
                tracks_per_participant: 3,
                rooms_per_worker: config.limits.rooms_per_node,
                data_message_max_bytes: config.limits.data_message_max_bytes,
                data_messages_per_second: config.limits.data_messages_per_second,
            },
        })
        .map_err(StartError::Media)?;
        let signaling = Signaling::new(
            media,
            key,
            store,
            SignalingConfig {
                node_id: config.node_id.clone().unwrap_or_else(|| format!("node-{local_addr}")),
                url: config.public_url.clone().map(|u| u.trim_end_matches('/').to_string()).unwrap_or_else(|| format!("http://{local_addr}")),
                limits: SignalingLimits {
                    participants_per_room: config.limits.participants_per_room,
                    rooms_per_node: config.limits.rooms_per_node,
                    max_message_bytes: config.limits.max_message_bytes,
                    messages_per_second: config.limits.messages_per_second,
                    reconnect_window: config.limits.reconnect_window,
                    ..SignalingLimits::default()
                },
            },
        );
        if let Some(url) = &config.webhook_url {
            let webhook = jiefen_signaling::webhook::WebhookConfig {
                url: url.clone(),
                secret: token_secret(config)?,
                attempts: 5,
                first_backoff: std::time::Duration::from_millis(500),
            };
            tokio::spawn(jiefen_signaling::webhook::run(signaling.subscribe_events(), webhook));
        }
        let field_key = match &config.field_key {
            Some(k) => k.clone(),
            None => {
                let bytes = crate::keys::load_or_create_named(&config.data_dir, crate::keys::FIELD_KEY_FILE)
                    .map_err(|source| StartError::DataDir { path: config.data_dir.clone(), source })?;
                String::from_utf8_lossy(&bytes).into_owned()
            }
        };
        let cipher = crate::crypto::FieldCipher::from_hex(&field_key).map_err(|e| StartError::DataDir {
            path: config.data_dir.join(crate::keys::FIELD_KEY_FILE),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        let sms: Arc<dyn crate::auth::sms::SmsGateway> = Arc::new(options.sms.clone().unwrap_or_default());
        let state = AppState {
            db,
            signaling,
            metrics: Arc::default(),
            web_dir: options.web_dir,
            cipher,
            party_links: crate::auth::party_link::PartyLinkKey::from_secret(&token_secret(config)?),
            webhook_secret: Arc::new(token_secret(config)?),
            storage: storage_of(config)?,
            seal: Arc::new(seal_key(config)?),
            court: config.court.clone(),
            court_connector: court_connector(config)?,
            sms,
            auth: config.auth.clone(),
            public_url: config.base_url_for(local_addr),
        };
        tokio::spawn(crate::sessions_sync::run(state.db.clone(), state.signaling.subscribe_events()));
        state.signaling.set_recording_control(Arc::new(crate::recordings::Recordings::new(state.db.clone(), &config.data_dir, state.signaling.clone())));
        if config.worker_in_process {
            tokio::spawn(crate::jobs::run_worker(state.db.clone(), crate::jobs::Services { storage: state.storage.clone(), court: state.court_connector.clone() }));
        }
        let (retention_db, retention, retention_storage) = (state.db.clone(), config.recording_retention, state.storage.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
            loop {
                tick.tick().await;
                if let Err(e) = crate::recordings::sweep_retention(&retention_db, &retention_storage, retention, std::time::SystemTime::now()).await {
                    tracing::warn!(error = %e, "recording retention sweep failed");
                }
            }
        });
        tokio::spawn(crate::deadlines::run(state.db.clone()));
        Ok(Server { state, listener, local_addr, first_admin_password, demo_seeded })
    }

    /// Serves until `shutdown` resolves, then drains: no new joins, clients told to go, in-flight HTTP finished.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let signaling = self.state.signaling.clone();
        let media_addrs = signaling.media().local_addrs().iter().map(|a| a.to_string()).collect();
        let heartbeat = signaling.clone();
        let heartbeat = tokio::spawn(async move { heartbeat.run_heartbeat(media_addrs).await });
        let router = app(self.state).into_make_service_with_connect_info::<SocketAddr>();
        let drained = signaling.clone();
        let served = axum::serve(self.listener, router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                drained.drain();
            })
            .await;
        heartbeat.abort();
        let _ = jiefen_signaling::Store::remove_node(signaling.store(), signaling.node_id()).await;
        served
    }
}
