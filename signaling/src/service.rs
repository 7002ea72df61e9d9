//! The signaling service: admits participants by token, negotiates their peer connections with
//! the media plane, runs the lobby and host controls, and mirrors room state into the store.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiefen_media::{
    Kind, Media, MediaError, MediaEvent, OfferRequest, ParticipantId, ParticipantOptions, Permissions, PublishIntent,
    RoomHandle, RoomId, SubscribeIntent,
};
use tokio::sync::{broadcast, mpsc};

use crate::proto::{self, ErrorCode, ParticipantInfo, ServerMessage};
use crate::store::{ParticipantRecord, SessionStore, Store};
use crate::token::{JoinClaims, Source, TokenError, TokenKey};

#[derive(Debug, Clone)]
pub struct SignalingLimits {
    pub participants_per_room: usize,
    pub rooms_per_node: usize,
    pub max_message_bytes: usize,
    pub messages_per_second: u32,
    /// Bad messages tolerated before the connection is closed.
    pub max_errors: u32,
    pub chat_max_chars: usize,
    /// How long a dropped connection keeps its seat for a resume.
    pub reconnect_window: Duration,
}

impl Default for SignalingLimits {
    fn default() -> Self {
        SignalingLimits {
            participants_per_room: 30,
            rooms_per_node: 500,
            max_message_bytes: 64 * 1024,
            messages_per_second: 50,
            max_errors: 5,
            chat_max_chars: 2000,
            reconnect_window: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SignalingConfig {
    pub node_id: String,
    /// This node's HTTP base URL as clients reach it (for redirects from other nodes).
    pub url: String,
    pub limits: SignalingLimits,
}

/// Starts the capture of a room's media. The recorder lives beside the media plane (in the
/// same process); signaling attaches the tap it returns to the room and detaches it to stop,
/// which ends the recording (so does the room closing).
pub trait RecordingControl: Send + Sync {
    fn start(&self, room: &str) -> Result<jiefen_media::RecordingTap, String>;
}

/// A participant or room change the case backend records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    SessionStarted { room: String },
    SessionEnded { room: String },
    ParticipantJoined { room: String, identity: String, role: crate::token::Role, case_id: Option<i64> },
    ParticipantLeft { room: String, identity: String },
    RecordingChanged { room: String, recording: bool, by: String },
}

#[derive(Clone)]
pub struct Signaling {
    inner: Arc<Inner>,
}

struct Inner {
    media: Media,
    key: TokenKey,
    store: SessionStore,
    config: SignalingConfig,
    rooms: Mutex<HashMap<String, Arc<Room>>>,
    /// Held while a room is being created, so that joins racing for a new room end up in one.
    creating_room: tokio::sync::Mutex<()>,
    draining: AtomicBool,
    going_away: broadcast::Sender<()>,
    events: broadcast::Sender<SessionEvent>,
    recorder: std::sync::OnceLock<Arc<dyn RecordingControl>>,
}

struct Room {
    id: String,
    handle: RoomHandle,
    state: Mutex<RoomState>,
}

#[derive(Default)]
struct RoomState {
    members: HashMap<String, Member>,
    lobby: HashMap<String, Member>,
    tracks: Vec<proto::TrackInfo>,
    recording: bool,
    caucus: BTreeMap<String, String>,
    closed: bool,
}

#[derive(Clone)]
struct Member {
    info: ParticipantInfo,
    claims: JoinClaims,
    tx: mpsc::UnboundedSender<ServerMessage>,
    /// Distinguishes a replaced connection of the same identity.
    connection: u64,
    /// False while the websocket is gone and the seat is held for a resume.
    connected: bool,
}

impl Member {
    fn send(&self, m: ServerMessage) {
        let _ = self.tx.send(m);
    }
}

/// Why a join failed.
#[derive(Debug)]
pub struct JoinError {
    pub code: ErrorCode,
    pub message: String,
    /// Set when the room lives on another node: the client should go there.
    pub redirect: Option<String>,
}

impl JoinError {
    fn new(code: ErrorCode, message: impl Into<String>) -> JoinError {
        JoinError { code, message: message.into(), redirect: None }
    }

    fn redirect(url: String) -> JoinError {
        JoinError { code: ErrorCode::Unavailable, message: format!("the room is hosted at {url}"), redirect: Some(url) }
    }
}

/// Where a room that is not open here should be.
enum Placement {
    Here,
    Elsewhere(String),
}

impl From<TokenError> for JoinError {
    fn from(e: TokenError) -> Self {
        let code = if e == TokenError::Expired { ErrorCode::TokenExpired } else { ErrorCode::TokenInvalid };
        JoinError::new(code, e.to_string())
    }
}

fn media_error(e: MediaError) -> JoinError {
    let code = match e {
        MediaError::RoomFull(_) => ErrorCode::RoomFull,
        MediaError::TooManyRooms(_) => ErrorCode::ServerFull,
        MediaError::NotPermitted(_) => ErrorCode::Forbidden,
        MediaError::UnknownTrack(_) | MediaError::NoSuchParticipant(_) | MediaError::NoSuchRoom(_) => ErrorCode::NotFound,
        MediaError::BadOffer(_) => ErrorCode::BadOffer,
        _ => ErrorCode::Internal,
    };
    JoinError::new(code, e.to_string())
}

fn wire_source(s: Source) -> jiefen_media::Source {
    match s {
        Source::Microphone => jiefen_media::Source::Microphone,
        Source::Camera => jiefen_media::Source::Camera,
        Source::Screen => jiefen_media::Source::Screen,
    }
}

fn from_media_source(s: jiefen_media::Source) -> Source {
    match s {
        jiefen_media::Source::Microphone => Source::Microphone,
        jiefen_media::Source::Camera => Source::Camera,
        jiefen_media::Source::Screen => Source::Screen,
    }
}

/// The simulcast layer for a video shown at `width` × `height` device pixels: the client
/// publishes q, h and f at a quarter, half and full resolution (see `web/sdk`).
pub fn layer_for_size(width: u32, height: u32) -> u8 {
    match width.max(height * 4 / 3) {
        0..=240 => 0,
        241..=480 => 1,
        _ => 2,
    }
}

/// A joined (or waiting) participant's session, owned by its websocket task.
pub struct Seat {
    pub room: String,
    pub identity: String,
    pub connection: u64,
    pub outbox: mpsc::UnboundedReceiver<ServerMessage>,
}

static CONNECTIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Signaling {
    pub fn new(media: Media, key: TokenKey, store: SessionStore, config: SignalingConfig) -> Signaling {
        let (going_away, _) = broadcast::channel(4);
        let (events, _) = broadcast::channel(1024);
        Signaling {
            inner: Arc::new(Inner {
                media,
                key,
                store,
                config,
                rooms: Mutex::new(HashMap::new()),
                creating_room: tokio::sync::Mutex::new(()),
                draining: AtomicBool::new(false),
                going_away,
                events,
                recorder: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Shows a document to everyone in the room (admitted members; the lobby waits).
    pub fn share_document(&self, room: &str, document: ServerMessage) -> bool {
        let room = self.inner.rooms.lock().ok().and_then(|r| r.get(room).cloned());
        let Some(room) = room else { return false };
        if let Ok(st) = room.state.lock() {
            for m in st.members.values() {
                m.send(document.clone());
            }
        }
        true
    }

    /// A recording ended on its own (the disk filled, the recorder failed): everyone sees the
    /// indicator go off, hosts are told why; the session itself goes on.
    pub fn recording_stopped(&self, room: &str, reason: &str) {
        let room = self.inner.rooms.lock().ok().and_then(|r| r.get(room).cloned());
        let Some(room) = room else { return };
        let handle = room.handle.clone();
        let was = room.state.lock().map(|mut st| {
            let was = st.recording;
            st.recording = false;
            if was {
                for m in st.members.values() {
                    m.send(ServerMessage::Recording { recording: false, by: "system".into() });
                    if m.claims.grants.room_admin {
                        m.send(ServerMessage::error(ErrorCode::Internal, format!("recording stopped: {reason}")));
                    }
                }
            }
            was
        });
        if was.unwrap_or(false) {
            tokio::spawn(async move {
                let _ = handle.set_recording_tap(None).await;
            });
            self.emit(SessionEvent::RecordingChanged { room: room.id.clone(), recording: false, by: "system".into() });
        }
    }

    /// Lets hosts' `set_recording` capture media (without it, recording is only a state and an event).
    pub fn set_recording_control(&self, control: Arc<dyn RecordingControl>) {
        let _ = self.inner.recorder.set(control);
    }

    pub fn limits(&self) -> &SignalingLimits {
        &self.inner.config.limits
    }

    pub fn store(&self) -> &SessionStore {
        &self.inner.store
    }

    pub fn media(&self) -> &Media {
        &self.inner.media
    }

    pub fn token_key(&self) -> &TokenKey {
        &self.inner.key
    }

    /// Session events for the case backend (in-process subscribers).
    pub fn subscribe_events(&self) -> broadcast::Receiver<SessionEvent> {
        self.inner.events.subscribe()
    }

    pub fn going_away(&self) -> broadcast::Receiver<()> {
        self.inner.going_away.subscribe()
    }

    pub fn room_count(&self) -> usize {
        self.inner.rooms.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// Stops taking new joins and tells every connected client to reconnect elsewhere.
    pub fn drain(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
        let _ = self.inner.going_away.send(());
    }

    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    fn emit(&self, e: SessionEvent) {
        let _ = self.inner.events.send(e);
    }

    fn room(&self, id: &str) -> Option<Arc<Room>> {
        self.inner.rooms.lock().ok().and_then(|r| r.get(id).cloned())
    }

    /// Admits a token holder: into the lobby or straight into the room.
    pub async fn join(&self, token: &str, resume: bool) -> Result<Seat, JoinError> {
        let claims = self.inner.key.verify(token)?;
        if self.is_draining() {
            return Err(JoinError::new(ErrorCode::Unavailable, "this node is shutting down; reconnect"));
        }
        // The store must be reachable to admit anyone new (media of running rooms does not need it).
        self.inner
            .store
            .ping()
            .await
            .map_err(|e| JoinError::new(ErrorCode::Unavailable, e.to_string()))?;
        if self.room(&claims.room).is_none()
            && let Placement::Elsewhere(url) = self.place(&claims.room).await?
        {
            return Err(JoinError::redirect(url));
        }
        let room = self.get_or_create_room(&claims.room).await?;
        let (tx, outbox) = mpsc::unbounded_channel();
        let connection = CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        let member = Member {
            info: ParticipantInfo {
                identity: claims.sub.clone(),
                name: claims.name.clone(),
                role: claims.role,
                muted: vec![],
                group: None,
            },
            claims: claims.clone(),
            tx,
            connection,
            connected: true,
        };
        if resume && let Some(seat) = self.resume(&room, &member)? {
            return Ok(Seat { room: room.id.clone(), identity: claims.sub, connection, outbox: seat });
        }
        let replaced = {
            let mut st = room.state.lock().map_err(|_| JoinError::new(ErrorCode::Internal, "room state poisoned"))?;
            let present = st.members.contains_key(&claims.sub) || st.lobby.contains_key(&claims.sub);
            if !present && st.members.len() + st.lobby.len() >= self.inner.config.limits.participants_per_room {
                return Err(JoinError::new(
                    ErrorCode::RoomFull,
                    format!("the room is full ({} participants)", self.inner.config.limits.participants_per_room),
                ));
            }
            // A second connection with the same identity replaces the first (a reload, a new device).
            let old = st.members.remove(&claims.sub).or_else(|| st.lobby.remove(&claims.sub));
            if let Some(o) = &old {
                o.send(ServerMessage::Removed { reason: "replaced by a new connection".into() });
            }
            if claims.lobby {
                st.lobby.insert(claims.sub.clone(), member.clone());
            }
            old.is_some()
        };
        if replaced {
            let _ = room.handle.remove_participant(ParticipantId(claims.sub.clone())).await;
        }
        let record = ParticipantRecord {
            identity: claims.sub.clone(),
            name: claims.name.clone(),
            role: claims.role,
            node_id: self.inner.config.node_id.clone(),
            state: if claims.lobby { "lobby".into() } else { "joined".into() },
        };
        let _ = self.inner.store.put_participant(&room.id, &record).await;
        if claims.lobby {
            member.send(ServerMessage::LobbyWaiting);
            self.notify_lobby(&room);
        } else {
            self.enter(&room, member).await?;
        }
        Ok(Seat { room: room.id.clone(), identity: claims.sub, connection, outbox })
    }

    /// Gives a held (or still open) seat to a new connection of the same identity: the media
    /// seat, subscriptions and caucus group stay as they were. `None` when there is no such seat.
    fn resume(&self, room: &Arc<Room>, member: &Member) -> Result<Option<mpsc::UnboundedReceiver<ServerMessage>>, JoinError> {
        let mut st = room.state.lock().map_err(|_| JoinError::new(ErrorCode::Internal, "room state poisoned"))?;
        let identity = &member.claims.sub;
        let Some(existing) = st.members.get_mut(identity) else { return Ok(None) };
        let (tx, outbox) = mpsc::unbounded_channel();
        if existing.connected {
            existing.send(ServerMessage::Removed { reason: "replaced by a new connection".into() });
        }
        existing.tx = tx;
        existing.connection = member.connection;
        existing.connected = true;
        let me = existing.clone();
        let participants: Vec<ParticipantInfo> = st
            .members
            .values()
            .filter(|m| !m.claims.grants.hidden && &m.info.identity != identity)
            .map(|m| m.info.clone())
            .collect();
        let lobby = if me.claims.grants.room_admin { st.lobby.values().map(|m| m.info.clone()).collect() } else { vec![] };
        me.send(ServerMessage::Joined {
            protocol: proto::PROTOCOL_VERSION,
            room: room.id.clone(),
            identity: identity.clone(),
            name: me.info.name.clone(),
            role: me.info.role,
            room_admin: me.claims.grants.room_admin,
            participants,
            tracks: st.tracks.clone(),
            recording: st.recording,
            lobby,
            resumed: true,
        });
        if !st.caucus.is_empty() {
            me.send(ServerMessage::Caucus { groups: st.caucus.clone() });
        }
        Ok(Some(outbox))
    }

    /// The websocket dropped without a goodbye: hold the seat for the reconnect window.
    pub async fn disconnected(&self, seat: &Seat) {
        let Some(room) = self.room(&seat.room) else { return };
        // Mark the seat held and read what the store record needs, under one lock.
        let held = room
            .state
            .lock()
            .ok()
            .and_then(|mut st| match st.members.get_mut(&seat.identity) {
                Some(m) if m.connection == seat.connection => {
                    m.connected = false;
                    Some((m.info.name.clone(), m.info.role))
                }
                _ => None,
            });
        let Some((name, role)) = held else {
            // A lobby wait, or a seat already taken over: nothing to hold.
            return self.leave(seat).await;
        };
        let record = ParticipantRecord {
            identity: seat.identity.clone(),
            name,
            role,
            node_id: self.inner.config.node_id.clone(),
            state: "reconnecting".into(),
        };
        let store = self.inner.store.clone();
        let room_id = room.id.clone();
        tokio::spawn(async move {
            let _ = store.put_participant(&room_id, &record).await;
        });
        let this = self.clone();
        let window = self.inner.config.limits.reconnect_window;
        let held_seat = Seat { room: seat.room.clone(), identity: seat.identity.clone(), connection: seat.connection, outbox: mpsc::unbounded_channel().1 };
        tokio::spawn(async move {
            tokio::time::sleep(window).await;
            // `leave` only frees the seat if no new connection took it over meanwhile.
            this.leave(&held_seat).await;
        });
    }

    /// Decides where a room not open on this node belongs: with its recorded host if that node
    /// is alive, else (new room, or its host died) on the least-loaded live node.
    async fn place(&self, room: &str) -> Result<Placement, JoinError> {
        let me = &self.inner.config.node_id;
        let unavailable = |e: crate::store::StoreError| JoinError::new(ErrorCode::Unavailable, e.to_string());
        let nodes = self.inner.store.live_nodes().await.map_err(unavailable)?;
        let url_of = |id: &str| nodes.iter().find(|n| n.node_id == id).map(|n| n.url.clone());
        if let Some(host) = self.inner.store.room_node(room).await.map_err(unavailable)? {
            if &host == me {
                return Ok(Placement::Here);
            }
            if let Some(url) = url_of(&host) {
                return Ok(Placement::Elsewhere(url));
            }
            // The recorded host is dead: this node takes the room over.
            return Ok(Placement::Here);
        }
        match crate::store::select_node(&nodes) {
            Some(n) if &n.node_id != me => Ok(Placement::Elsewhere(n.url.clone())),
            _ => Ok(Placement::Here),
        }
    }

    /// Keeps this node in the registry with its current load until the process ends.
    pub async fn run_heartbeat(&self, media_addrs: Vec<String>) {
        let mut tick = tokio::time::interval(crate::store::HEARTBEAT_INTERVAL);
        loop {
            tick.tick().await;
            if self.is_draining() {
                let _ = self.inner.store.remove_node(&self.inner.config.node_id).await;
                return;
            }
            let load = self
                .inner
                .rooms
                .lock()
                .map(|rooms| rooms.values().map(|r| r.state.lock().map(|s| s.members.len() + s.lobby.len()).unwrap_or(0)).sum::<usize>())
                .unwrap_or(0);
            let info = crate::store::NodeInfo {
                node_id: self.inner.config.node_id.clone(),
                url: self.inner.config.url.clone(),
                media_addrs: media_addrs.clone(),
                load: u32::try_from(load).unwrap_or(u32::MAX),
            };
            if let Err(e) = self.inner.store.heartbeat(&info).await {
                tracing::warn!(error = %e, "heartbeat failed");
            }
        }
    }

    pub fn node_id(&self) -> &str {
        &self.inner.config.node_id
    }

    async fn get_or_create_room(&self, id: &str) -> Result<Arc<Room>, JoinError> {
        if let Some(r) = self.room(id) {
            return Ok(r);
        }
        let _creating = self.inner.creating_room.lock().await;
        // Another join may have created it while this one waited.
        if let Some(r) = self.room(id) {
            return Ok(r);
        }
        // Claim it in the store first: another node may have won the race.
        let owner = self
            .inner
            .store
            .claim_room(id, &self.inner.config.node_id)
            .await
            .map_err(|e| JoinError::new(ErrorCode::Unavailable, e.to_string()))?;
        if owner != self.inner.config.node_id {
            let nodes = self.inner.store.live_nodes().await.unwrap_or_default();
            if let Some(n) = nodes.into_iter().find(|n| n.node_id == owner) {
                return Err(JoinError::redirect(n.url));
            }
        }
        {
            let count = self.room_count();
            if count >= self.inner.config.limits.rooms_per_node {
                return Err(JoinError::new(ErrorCode::ServerFull, "this node hosts its maximum number of rooms"));
            }
        }
        let (handle, events) = self.inner.media.create_room(RoomId(id.to_string())).await.map_err(media_error)?;
        let room = Arc::new(Room { id: id.to_string(), handle, state: Mutex::new(RoomState::default()) });
        self.inner.rooms.lock().map_err(|_| JoinError::new(ErrorCode::Internal, "rooms poisoned"))?.insert(id.to_string(), room.clone());
        self.emit(SessionEvent::SessionStarted { room: id.to_string() });
        let this = self.clone();
        let r = room.clone();
        tokio::spawn(async move { this.room_events(r, events).await });
        Ok(room)
    }

    /// Relays the media plane's events to the room's members and keeps the store fresh.
    async fn room_events(&self, room: Arc<Room>, mut events: mpsc::UnboundedReceiver<MediaEvent>) {
        let mut refresh = tokio::time::interval(Duration::from_secs(20));
        loop {
            tokio::select! {
                e = events.recv() => {
                    let Some(e) = e else { break };
                    self.on_media_event(&room, e);
                }
                _ = refresh.tick() => {
                    if room.state.lock().map(|s| s.closed).unwrap_or(true) { break; }
                    let _ = self.inner.store.refresh_room(&room.id).await;
                }
            }
        }
    }

    fn on_media_event(&self, room: &Room, e: MediaEvent) {
        let Ok(mut st) = room.state.lock() else { return };
        match e {
            MediaEvent::TrackPublished(t) => {
                let info = proto::TrackInfo {
                    id: t.id.0.clone(),
                    publisher: t.publisher.0.clone(),
                    kind: if t.kind == Kind::Audio { "audio".into() } else { "video".into() },
                    source: from_media_source(t.source),
                };
                st.tracks.retain(|x| x.id != info.id);
                st.tracks.push(info.clone());
                for m in st.members.values().filter(|m| m.info.identity != info.publisher) {
                    m.send(ServerMessage::TrackPublished { track: info.clone() });
                }
            }
            MediaEvent::TrackUnpublished(id) => {
                st.tracks.retain(|x| x.id != id.0);
                for m in st.members.values() {
                    m.send(ServerMessage::TrackUnpublished { track: id.0.clone() });
                }
            }
            MediaEvent::ConnectionQuality { participant, quality } => {
                let quality = match quality {
                    jiefen_media::Quality::Excellent => "excellent",
                    jiefen_media::Quality::Good => "good",
                    jiefen_media::Quality::Poor => "poor",
                };
                if st.members.get(&participant.0).is_some_and(|m| !m.claims.grants.hidden) {
                    for m in st.members.values() {
                        m.send(ServerMessage::ConnectionQuality { identity: participant.0.clone(), quality: quality.into() });
                    }
                }
            }
            MediaEvent::ActiveSpeaker(who) => {
                let identity = who.map(|p| p.0).filter(|id| st.members.get(id).is_some_and(|m| !m.claims.grants.hidden));
                for m in st.members.values() {
                    m.send(ServerMessage::ActiveSpeaker { identity: identity.clone() });
                }
            }
            MediaEvent::PublishLayers { participant, source, layers, .. } => {
                if let Some(m) = st.members.get(&participant.0) {
                    m.send(ServerMessage::PublishLayers { source: from_media_source(source), active: layers.to_vec() });
                }
            }
            MediaEvent::ConnectionState { participant, state } => {
                if let Some(m) = st.members.get(&participant.0) {
                    let s = match state {
                        jiefen_media::ConnectionState::Connecting => "connecting",
                        jiefen_media::ConnectionState::Connected => "connected",
                        jiefen_media::ConnectionState::Failed => "failed",
                    };
                    m.send(ServerMessage::ConnectionState { state: s.into() });
                }
            }
        }
    }

    /// Puts a member into the room proper: media seat, the room's state, the others told.
    async fn enter(&self, room: &Arc<Room>, mut member: Member) -> Result<(), JoinError> {
        let claims = member.claims.clone();
        let claims = &claims;
        let permissions = Permissions {
            publish: claims.grants.publish.iter().map(|s| wire_source(*s)).collect(),
            subscribe: claims.grants.subscribe,
            hidden: claims.grants.hidden,
            data: claims.grants.publish_data,
        };
        // Someone coming back (a reload, a new device) returns to its caucus group.
        let group = room.state.lock().ok().and_then(|st| st.caucus.get(&claims.sub).cloned());
        room.handle
            .add_participant(
                ParticipantId(claims.sub.clone()),
                // Hosts read every group's chat (as over signaling) but see and hear only their own.
                ParticipantOptions { permissions, group: group.clone(), sees_all_groups: false, reads_all_groups: claims.grants.room_admin },
            )
            .await
            .map_err(media_error)?;
        member.info.group = group;
        let mut st = room.state.lock().map_err(|_| JoinError::new(ErrorCode::Internal, "room state poisoned"))?;
        st.lobby.remove(&claims.sub);
        let participants: Vec<ParticipantInfo> =
            st.members.values().filter(|m| !m.claims.grants.hidden).map(|m| m.info.clone()).collect();
        let lobby: Vec<ParticipantInfo> =
            if claims.grants.room_admin { st.lobby.values().map(|m| m.info.clone()).collect() } else { vec![] };
        member.send(ServerMessage::Joined {
            protocol: proto::PROTOCOL_VERSION,
            room: room.id.clone(),
            identity: claims.sub.clone(),
            name: claims.name.clone(),
            role: claims.role,
            room_admin: claims.grants.room_admin,
            participants,
            tracks: st.tracks.clone(),
            recording: st.recording,
            lobby,
            resumed: false,
        });
        if !claims.grants.hidden {
            for m in st.members.values() {
                m.send(ServerMessage::ParticipantJoined { participant: member.info.clone() });
            }
        }
        let event = SessionEvent::ParticipantJoined {
            room: room.id.clone(),
            identity: claims.sub.clone(),
            role: claims.role,
            case_id: claims.case_id,
        };
        st.members.insert(claims.sub.clone(), member);
        drop(st);
        self.emit(event);
        Ok(())
    }

    fn notify_lobby(&self, room: &Room) {
        let Ok(st) = room.state.lock() else { return };
        let waiting: Vec<ParticipantInfo> = st.lobby.values().map(|m| m.info.clone()).collect();
        for m in st.members.values().filter(|m| m.claims.grants.room_admin) {
            m.send(ServerMessage::Lobby { waiting: waiting.clone() });
        }
    }

    /// The websocket closed (or the participant left): free the seat.
    pub async fn leave(&self, seat: &Seat) {
        let Some(room) = self.room(&seat.room) else { return };
        let (was_member, empty) = {
            let Ok(mut st) = room.state.lock() else { return };
            let mine = |m: &Member| m.connection == seat.connection;
            let was_member = st.members.get(&seat.identity).is_some_and(mine);
            if was_member {
                st.members.remove(&seat.identity);
                for m in st.members.values() {
                    m.send(ServerMessage::ParticipantLeft { identity: seat.identity.clone() });
                }
            } else if st.lobby.get(&seat.identity).is_some_and(mine) {
                st.lobby.remove(&seat.identity);
            } else {
                // The seat was taken over by a newer connection: nothing of it is ours to free.
                return;
            }
            let empty = st.members.is_empty() && st.lobby.is_empty();
            if empty {
                st.closed = true;
            }
            (was_member, empty)
        };
        if was_member {
            let _ = room.handle.remove_participant(ParticipantId(seat.identity.clone())).await;
            self.emit(SessionEvent::ParticipantLeft { room: room.id.clone(), identity: seat.identity.clone() });
        }
        let _ = self.inner.store.remove_participant(&room.id, &seat.identity).await;
        self.notify_lobby(&room);
        if empty {
            self.close_room(&room).await;
        }
    }

    async fn close_room(&self, room: &Arc<Room>) {
        if let Ok(mut rooms) = self.inner.rooms.lock()
            && rooms.get(&room.id).is_some_and(|r| Arc::ptr_eq(r, room))
        {
            rooms.remove(&room.id);
        }
        room.handle.close();
        let _ = self.inner.store.release_room(&room.id).await;
        self.emit(SessionEvent::SessionEnded { room: room.id.clone() });
    }

    fn member(&self, seat: &Seat) -> Result<(Arc<Room>, Member), (ErrorCode, String)> {
        let room = self.room(&seat.room).ok_or((ErrorCode::NotFound, "the room is gone".to_string()))?;
        let m = room
            .state
            .lock()
            .ok()
            .and_then(|st| st.members.get(&seat.identity).filter(|m| m.connection == seat.connection).cloned())
            .ok_or((ErrorCode::NotJoined, "not in the room (waiting in the lobby?)".to_string()))?;
        Ok((room, m))
    }

    /// Handles one message of a seated connection. `Err` is sent back as an error message.
    pub async fn handle(&self, seat: &Seat, msg: proto::ClientMessage) -> Result<Option<ServerMessage>, (ErrorCode, String)> {
        use proto::ClientMessage as C;
        match msg {
            C::Join { .. } => Err((ErrorCode::AlreadyJoined, "already joined".into())),
            C::Ping => Ok(Some(ServerMessage::Pong)),
            C::Candidate { .. } => Ok(None),
            C::Leave => Ok(None),
            C::Offer { sdp, publish, subscribe } => {
                let (room, _) = self.member(seat)?;
                let offer = OfferRequest {
                    sdp,
                    publish: publish.into_iter().map(|p| PublishIntent { mid: p.mid, source: wire_source(p.source) }).collect(),
                    subscribe: subscribe
                        .into_iter()
                        .map(|s| SubscribeIntent { mid: s.mid, track: jiefen_media::TrackId(s.track) })
                        .collect(),
                };
                let started = Instant::now();
                let sdp = room
                    .handle
                    .apply_offer(ParticipantId(seat.identity.clone()), offer)
                    .await
                    .map_err(|e| { let j = media_error(e); (j.code, j.message) })?;
                tracing::debug!(identity = %seat.identity, elapsed_ms = started.elapsed().as_millis() as u64, "answered offer");
                Ok(Some(ServerMessage::Answer { sdp }))
            }
            C::Mute { source, muted } => {
                let (room, _) = self.member(seat)?;
                self.update_member(&room, &seat.identity, |info| {
                    info.muted.retain(|s| *s != source);
                    if muted {
                        info.muted.push(source);
                    }
                });
                Ok(None)
            }
            C::SetVideoSize { track, width, height } => {
                let (room, _) = self.member(seat)?;
                room.handle
                    .set_preferred_layer(ParticipantId(seat.identity.clone()), jiefen_media::TrackId(track), layer_for_size(width, height))
                    .await
                    .map_err(|e| { let j = media_error(e); (j.code, j.message) })?;
                Ok(None)
            }
            C::Chat { text } => {
                let (room, me) = self.member(seat)?;
                if !me.claims.grants.publish_data {
                    return Err((ErrorCode::Forbidden, "this participant may not send chat".into()));
                }
                let text = text.trim().to_string();
                if text.is_empty() || text.chars().count() > self.inner.config.limits.chat_max_chars {
                    return Err((
                        ErrorCode::BadMessage,
                        format!("chat text must be 1-{} characters", self.inner.config.limits.chat_max_chars),
                    ));
                }
                let at = crate::token::unix_now();
                if let Ok(st) = room.state.lock() {
                    // Chat stays inside a caucus group, like the media; hosts read it all (the
                    // data channel's rule too: the SDK chats there while it is open).
                    for m in st.members.values().filter(|m| m.info.group == me.info.group || m.claims.grants.room_admin) {
                        m.send(ServerMessage::Chat { from: me.info.identity.clone(), name: me.info.name.clone(), text: text.clone(), at });
                    }
                }
                Ok(None)
            }
            C::Admit { identity } => {
                let (room, _) = self.admin(seat)?;
                let waiting = room.state.lock().ok().and_then(|mut st| st.lobby.remove(&identity));
                let Some(member) = waiting else { return Err((ErrorCode::NotFound, format!("{identity} is not waiting"))) };
                let record_state = ParticipantRecord {
                    identity: identity.clone(),
                    name: member.info.name.clone(),
                    role: member.info.role,
                    node_id: self.inner.config.node_id.clone(),
                    state: "joined".into(),
                };
                if let Err(e) = self.enter(&room, member.clone()).await {
                    member.send(ServerMessage::error(e.code, e.message.clone()));
                    return Err((e.code, e.message));
                }
                let _ = self.inner.store.put_participant(&room.id, &record_state).await;
                self.notify_lobby(&room);
                Ok(None)
            }
            C::Refuse { identity } => {
                let (room, _) = self.admin(seat)?;
                let waiting = room.state.lock().ok().and_then(|mut st| st.lobby.remove(&identity));
                let Some(member) = waiting else { return Err((ErrorCode::NotFound, format!("{identity} is not waiting"))) };
                member.send(ServerMessage::Refused);
                let _ = self.inner.store.remove_participant(&room.id, &identity).await;
                self.notify_lobby(&room);
                Ok(None)
            }
            C::MuteParticipant { identity, source } => {
                let (room, me) = self.admin(seat)?;
                let target = room.state.lock().ok().and_then(|st| st.members.get(&identity).cloned());
                let Some(target) = target else { return Err((ErrorCode::NotFound, format!("{identity} is not in the room"))) };
                target.send(ServerMessage::MuteRequested { source, by: me.info.identity.clone() });
                Ok(None)
            }
            C::Remove { identity } => {
                let (room, _) = self.admin(seat)?;
                let target = room.state.lock().ok().and_then(|st| st.members.get(&identity).cloned());
                let Some(target) = target else { return Err((ErrorCode::NotFound, format!("{identity} is not in the room"))) };
                target.send(ServerMessage::Removed { reason: "removed by the host".into() });
                let target_seat = Seat {
                    room: room.id.clone(),
                    identity: identity.clone(),
                    connection: target.connection,
                    outbox: mpsc::unbounded_channel().1,
                };
                self.leave(&target_seat).await;
                Ok(None)
            }
            C::SetRecording { recording } => {
                let (room, me) = self.member(seat)?;
                if !me.claims.grants.record {
                    return Err((ErrorCode::Forbidden, "this participant may not control recording".into()));
                }
                let was = room.state.lock().map(|st| st.recording).unwrap_or(false);
                if let Some(control) = self.inner.recorder.get()
                    && was != recording
                {
                    let tap = if recording {
                        Some(control.start(&room.id).map_err(|e| (ErrorCode::Internal, format!("recording could not start: {e}")))?)
                    } else {
                        None
                    };
                    // Detaching the tap closes the recorder's channel: it finishes its files.
                    room.handle.set_recording_tap(tap).await.map_err(|e| (ErrorCode::Internal, format!("recording: {e}")))?;
                }
                if let Ok(mut st) = room.state.lock() {
                    st.recording = recording;
                    for m in st.members.values() {
                        m.send(ServerMessage::Recording { recording, by: me.info.identity.clone() });
                    }
                }
                self.emit(SessionEvent::RecordingChanged { room: room.id.clone(), recording, by: me.info.identity.clone() });
                Ok(None)
            }
            C::SetCaucus { groups } => {
                let (room, _) = self.admin(seat)?;
                for g in groups.values() {
                    if g.is_empty() || g.len() > 64 {
                        return Err((ErrorCode::BadMessage, "group names are 1-64 characters".into()));
                    }
                }
                self.apply_caucus(&room, groups).await
            }
            C::JoinCaucusGroup { group } => {
                let (room, me) = self.admin(seat)?;
                let mut groups = room.state.lock().map(|st| st.caucus.clone()).unwrap_or_default();
                match group {
                    Some(g) => groups.insert(me.info.identity.clone(), g),
                    None => groups.remove(&me.info.identity),
                };
                self.apply_caucus(&room, groups).await
            }
            C::EndCaucus => {
                let (room, _) = self.admin(seat)?;
                self.apply_caucus(&room, BTreeMap::new()).await
            }
            C::EndSession => {
                let (room, me) = self.admin(seat)?;
                let members: Vec<Member> = room
                    .state
                    .lock()
                    .map(|mut st| {
                        st.closed = true;
                        let st = &mut *st;
                        st.lobby.drain().map(|(_, m)| m).chain(st.members.drain().map(|(_, m)| m)).collect()
                    })
                    .unwrap_or_default();
                for m in &members {
                    m.send(ServerMessage::SessionEnded { by: me.info.identity.clone() });
                }
                self.close_room(&room).await;
                Ok(None)
            }
        }
    }

    fn admin(&self, seat: &Seat) -> Result<(Arc<Room>, Member), (ErrorCode, String)> {
        let (room, m) = self.member(seat)?;
        if !m.claims.grants.room_admin {
            return Err((ErrorCode::Forbidden, "host controls need the room-admin grant".into()));
        }
        Ok((room, m))
    }

    fn update_member(&self, room: &Room, identity: &str, f: impl FnOnce(&mut ParticipantInfo)) {
        let Ok(mut st) = room.state.lock() else { return };
        let Some(m) = st.members.get_mut(identity) else { return };
        f(&mut m.info);
        let info = m.info.clone();
        let hidden = m.claims.grants.hidden;
        if !hidden {
            for other in st.members.values() {
                other.send(ServerMessage::ParticipantUpdated { participant: info.clone() });
            }
        }
    }

    async fn apply_caucus(&self, room: &Arc<Room>, groups: BTreeMap<String, String>) -> Result<Option<ServerMessage>, (ErrorCode, String)> {
        let identities: Vec<String> = room.state.lock().map(|st| st.members.keys().cloned().collect()).unwrap_or_default();
        for g in groups.keys() {
            if !identities.contains(g) {
                return Err((ErrorCode::NotFound, format!("{g} is not in the room")));
            }
        }
        for identity in &identities {
            let group = groups.get(identity).cloned();
            room.handle
                .set_group(ParticipantId(identity.clone()), group.clone())
                .await
                .map_err(|e| { let j = media_error(e); (j.code, j.message) })?;
            self.update_member(room, identity, |info| info.group = group);
        }
        if let Ok(mut st) = room.state.lock() {
            st.caucus = groups.clone();
            for m in st.members.values() {
                m.send(ServerMessage::Caucus { groups: groups.clone() });
            }
        }
        Ok(None)
    }
}
