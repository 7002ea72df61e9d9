//! One synthetic participant: a websocket speaking `jiefen_signaling::proto` and a webrtc-rs
//! peer connection that publishes (see [`crate::publish`]) and receives everyone else's media
//! (see [`crate::receive`]). It follows redirects, renegotiates when tracks come and go, and on a
//! lost connection rejoins through its entry URLs in turn (a stand-in for a load balancer).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use jiefen_signaling::proto::{ClientMessage, PublishedMid, ServerMessage, SubscribedMid, TrackInfo};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCPeerConnectionState,
    RTCSessionDescription,
};

use jiefen_signaling::token::Source;

use crate::publish::{MediaSpec, Outgoing, SendCounters, outgoing};
use crate::receive::TrackStats;

/// How long a new media connection may take to come up before the participant rejoins.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What one participant received from one publisher (all its tracks together).
#[derive(Debug, Default, Clone)]
pub struct Received {
    pub packets: u64,
    pub bytes: u64,
    pub corrupt: u64,
    pub video_packets: u64,
    pub audio_packets: u64,
    pub delay_sum_us: u64,
    pub first_at: Option<Instant>,
    pub last_at: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct Stats {
    /// Per received track (keyed by the track id it arrived with).
    pub tracks: HashMap<String, TrackStats>,
    pub joined_at: Option<Instant>,
    pub started_at: Option<Instant>,
    /// When the media connection of the current session came up.
    pub connected_at: Option<Instant>,
    pub joins: u32,
    pub redirects: u32,
    /// NACK packets this participant sent (from the peer connection's statistics, per session).
    pub nacks_sent: u64,
    /// The room data channel: messages sent, relayed messages received (with their one-way
    /// delay), and refusals from the SFU.
    pub data_sent: u64,
    pub data_received: u64,
    pub data_delay_sum_us: u64,
    pub data_delay_max_us: u64,
    pub data_refused: u64,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ParticipantConfig {
    /// Base URLs (`http://host:port`) tried in turn on every (re)join.
    pub entry_urls: Vec<String>,
    pub token: String,
    pub identity: String,
    pub publish_audio: bool,
    pub publish_video: bool,
    pub media: MediaSpec,
    /// Messages per second on the room data channel (0: no data channel).
    pub data_per_second: u32,
}

impl ParticipantConfig {
    /// Synthetic media of `bytes` per video packet at `packets_per_second`.
    pub fn synthetic(entry_urls: Vec<String>, token: String, identity: &str, bytes: usize, packets_per_second: u32) -> ParticipantConfig {
        ParticipantConfig {
            entry_urls,
            token,
            identity: identity.to_string(),
            publish_audio: true,
            publish_video: true,
            media: MediaSpec::Synthetic { bytes, packets_per_second },
            data_per_second: 0,
        }
    }
}

pub struct Participant {
    pub stats: Arc<Mutex<Stats>>,
    pub sent: Arc<SendCounters>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Participant {
    pub fn spawn(config: ParticipantConfig) -> Participant {
        let stats = Arc::new(Mutex::new(Stats { started_at: Some(Instant::now()), ..Stats::default() }));
        let sent = Arc::new(SendCounters::default());
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(config, stats.clone(), sent.clone(), stop_rx));
        Participant { stats, sent, stop, task }
    }

    /// A participant driven by another signaling adapter (Janus): the caller's task fills `stats`.
    pub fn from_parts(stats: Arc<Mutex<Stats>>, sent: Arc<SendCounters>, stop: watch::Sender<bool>, task: tokio::task::JoinHandle<()>) -> Participant {
        Participant { stats, sent, stop, task }
    }

    /// Per publisher: what arrived from it.
    pub fn snapshot(&self) -> HashMap<String, Received> {
        let mut by_publisher: HashMap<String, Received> = HashMap::new();
        let Ok(s) = self.stats.lock() else { return by_publisher };
        for t in s.tracks.values() {
            let r = by_publisher.entry(t.publisher.clone()).or_default();
            r.packets += t.packets;
            r.bytes += t.bytes;
            r.corrupt += t.corrupt;
            r.delay_sum_us += t.delay_sum_us;
            if t.video { r.video_packets += t.packets } else { r.audio_packets += t.packets }
            r.first_at = match (r.first_at, t.first_at) { (Some(a), Some(b)) => Some(a.min(b)), (a, b) => a.or(b) };
            r.last_at = r.last_at.max(t.last_at);
        }
        by_publisher
    }

    pub fn tracks(&self) -> Vec<TrackStats> {
        self.stats.lock().map(|s| s.tracks.values().cloned().collect()).unwrap_or_default()
    }

    pub fn joined_at(&self) -> Option<Instant> {
        self.stats.lock().ok().and_then(|s| s.joined_at)
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

pub struct Handler {
    pub states: mpsc::UnboundedSender<RTCPeerConnectionState>,
    pub stats: Arc<Mutex<Stats>>,
    /// Our track id (the remote msid track id) → publisher identity.
    pub publishers: Arc<Mutex<HashMap<String, String>>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.states.send(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        crate::receive::spawn(track, self.stats.clone(), self.publishers.clone());
    }
}

/// A peer connection configured like a browser's: default codecs, MID/RID extensions, NACK,
/// reports and TWCC, with keyframe requests delivered to the publishing tracks.
pub async fn peer(
    bind: &str,
    stats: &Arc<Mutex<Stats>>,
    publishers: &Arc<Mutex<HashMap<String, String>>>,
) -> anyhow::Result<(Arc<dyn PeerConnection>, mpsc::UnboundedReceiver<RTCPeerConnectionState>)> {
    let mut engine = MediaEngine::default();
    engine.register_default_codecs()?;
    rtc::peer_connection::configuration::interceptor_registry::configure_simulcast_extension_headers(&mut engine)?;
    let registry = rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors(
        rtc::interceptor::Registry::new(),
        &mut engine,
    )?
    .with(rtc::interceptor::Slot::from(jiefen_media::feedback::SLOT), jiefen_media::feedback::KeyframeRequestTap::default());
    let (states_tx, states) = mpsc::unbounded_channel();
    // No mDNS: a synthetic participant needs no .local candidates, and the multicast socket would
    // cost a port per participant (and fails in a namespace without a multicast route).
    let settings = rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder::new()
        .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
        .build();
    let pc = PeerConnectionBuilder::new()
        .with_setting_engine(settings)
        .with_media_engine(engine)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(Handler { states: states_tx, stats: stats.clone(), publishers: publishers.clone() }))
        .with_udp_addrs(vec![bind.to_owned()])
        .build()
        .await?;
    Ok((Arc::new(pc), states))
}

/// Adds the NACKs this connection sent to the participant's count (call once, at its end).
pub(crate) async fn count_nacks(pc: &Arc<dyn PeerConnection>, stats: &Mutex<Stats>) {
    let report = pc.get_stats(Instant::now(), rtc::statistics::StatsSelector::None).await;
    let nacks: u64 = report.inbound_rtp_streams().map(|s| u64::from(s.nack_count)).sum();
    if let Ok(mut s) = stats.lock() {
        s.nacks_sent += nacks;
    }
}

fn ws_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    let rest = base.strip_prefix("http://").map(|r| format!("ws://{r}")).or_else(|| base.strip_prefix("https://").map(|r| format!("wss://{r}")));
    format!("{}/rtc/v1/ws", rest.unwrap_or_else(|| base.to_string()))
}

async fn send(ws: &mut Ws, m: &ClientMessage) -> anyhow::Result<()> {
    ws.send(Message::Text(serde_json::to_string(m)?.into())).await?;
    Ok(())
}

async fn next_message(ws: &mut Ws) -> anyhow::Result<ServerMessage> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(t.as_str())?),
            Some(Ok(Message::Close(_))) | None => bail!("websocket closed"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => bail!("websocket: {e}"),
        }
    }
}

/// Connects and joins, following redirects; returns the socket and the room's tracks.
async fn join(config: &ParticipantConfig, stats: &Mutex<Stats>) -> anyhow::Result<(Ws, Vec<TrackInfo>)> {
    let mut last_error = anyhow!("no entry URL");
    for entry in &config.entry_urls {
        let mut url = ws_url(entry);
        for _ in 0..3 {
            let attempt = async {
                let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.context("connect")?;
                send(&mut ws, &ClientMessage::Join { token: config.token.clone(), protocol: Some(1), resume: false }).await?;
                loop {
                    match next_message(&mut ws).await? {
                        ServerMessage::Joined { tracks, .. } => return Ok::<_, anyhow::Error>(Ok((ws, tracks))),
                        ServerMessage::Redirect { url } => return Ok(Err(url)),
                        ServerMessage::Error { code, message } => bail!("join refused: {code:?} {message}"),
                        _ => continue,
                    }
                }
            };
            match tokio::time::timeout(Duration::from_secs(10), attempt).await {
                Ok(Ok(Ok(joined))) => return Ok(joined),
                Ok(Ok(Err(redirect))) => {
                    if let Ok(mut s) = stats.lock() {
                        s.redirects += 1;
                    }
                    url = ws_url(&redirect);
                }
                Ok(Err(e)) => {
                    last_error = e;
                    break;
                }
                Err(_) => {
                    last_error = anyhow!("join timed out at {url}");
                    break;
                }
            }
        }
    }
    Err(last_error)
}

/// One session on one node: from join until the socket drops or `stop`.
async fn session(config: &ParticipantConfig, stats: &Arc<Mutex<Stats>>, sent: &Arc<SendCounters>, stop: &mut watch::Receiver<bool>) -> anyhow::Result<()> {
    let (mut ws, tracks) = join(config, stats).await?;
    let publishers = Arc::new(Mutex::new(HashMap::new()));
    let (pc, mut states) = peer("127.0.0.1:0", stats, &publishers).await?;
    let mut outs = outgoing(config.publish_audio, config.publish_video, &config.media);
    for o in &outs {
        pc.add_track(o.track.clone() as Arc<dyn TrackLocal>).await?;
    }
    let mut known: Vec<TrackInfo> = tracks;
    // Like the SDK: the room data channel is created before the first offer.
    let data = if config.data_per_second > 0 {
        Some(crate::data::open(&pc, stats.clone()).await?)
    } else {
        None
    };
    let mut data_tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(config.data_per_second.max(1))));
    // Subscribed track ids in the order of their receive-only m-lines, with each m-line's mid.
    let mut subscribed: Vec<(String, Option<String>)> = Vec::new();
    let has_data = data.is_some();
    let mut deferred = negotiate(&pc, &mut ws, &config.identity, &mut outs, &known, &mut subscribed, &publishers, has_data).await?;
    for o in &outs {
        o.serve_keyframe_requests(sent.clone());
    }
    if let Ok(mut s) = stats.lock() {
        s.joins += 1;
        s.joined_at.get_or_insert(Instant::now());
    }
    let mut audio_tick = tokio::time::interval(Duration::from_millis(20));
    let mut video_tick = tokio::time::interval(config.media.video_interval());
    let mut connected = false;
    // Like the browser SDK: a connection that does not come up (a DTLS handshake lost under
    // load) is abandoned and the participant rejoins.
    let connect_deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
    let result = loop {
        tokio::select! {
            _ = stop.changed() => {
                let _ = send(&mut ws, &ClientMessage::Leave).await;
                break Ok(());
            }
            _ = tokio::time::sleep_until(connect_deadline), if !connected => {
                break Err(anyhow!("media connection not established in {} s", CONNECT_TIMEOUT.as_secs()));
            }
            s = states.recv() => match s {
                Some(RTCPeerConnectionState::Connected) => {
                    connected = true;
                    if let Ok(mut s) = stats.lock() { s.connected_at = Some(Instant::now()); }
                }
                Some(RTCPeerConnectionState::Failed) => break Err(anyhow!("media connection failed")),
                _ => {}
            },
            _ = audio_tick.tick(), if connected => {
                for o in outs.iter_mut().filter(|o| o.source == Source::Microphone) {
                    o.tick_audio(&config.media, sent).await;
                }
            }
            _ = video_tick.tick(), if connected => {
                for o in outs.iter_mut().filter(|o| o.source == Source::Camera) {
                    o.tick_video(&config.media, sent).await;
                }
            }
            _ = data_tick.tick(), if connected && data.as_ref().is_some_and(|d| d.is_open()) => {
                if let Some(d) = &data {
                    d.send_stamped(stats).await;
                }
            }
            m = async { match deferred.pop() { Some(m) => Ok(m), None => next_message(&mut ws).await } } => match m {
                Ok(ServerMessage::TrackPublished { track }) => {
                    known.retain(|t| t.id != track.id);
                    known.push(track);
                    deferred.extend(negotiate(&pc, &mut ws, &config.identity, &mut outs, &known, &mut subscribed, &publishers, has_data).await?);
                }
                Ok(ServerMessage::TrackUnpublished { track }) => {
                    known.retain(|t| t.id != track);
                    deferred.extend(negotiate(&pc, &mut ws, &config.identity, &mut outs, &known, &mut subscribed, &publishers, has_data).await?);
                }
                Ok(ServerMessage::ConnectionState { state }) if state == "failed" => {
                    break Err(anyhow!("the server saw the media connection fail"));
                }
                Ok(ServerMessage::PublishLayers { source, active }) => {
                    for o in outs.iter_mut().filter(|o| o.source == source) {
                        o.set_active_layers(&active, sent);
                    }
                }
                Ok(ServerMessage::Error { code, message }) => {
                    if let Ok(mut s) = stats.lock() { s.errors.push(format!("{code:?}: {message}")); }
                }
                Ok(ServerMessage::GoingAway) | Ok(ServerMessage::SessionEnded { .. }) | Ok(ServerMessage::Removed { .. }) => {
                    break Err(anyhow!("the server ended the session"));
                }
                Ok(_) => {}
                Err(e) => break Err(e),
            }
        }
    };
    count_nacks(&pc, stats).await;
    let _ = pc.close().await;
    result
}

/// Offers the current publish set and a receive-only m-line for every room track not yet held,
/// and applies the answer. Messages that arrive meanwhile are returned for the caller to handle.
async fn negotiate(
    pc: &Arc<dyn PeerConnection>,
    ws: &mut Ws,
    me: &str,
    outs: &mut [Outgoing],
    known: &[TrackInfo],
    subscribed: &mut Vec<(String, Option<String>)>,
    publishers: &Mutex<HashMap<String, String>>,
    has_data: bool,
) -> anyhow::Result<Vec<ServerMessage>> {
    let live: HashSet<&String> = known.iter().map(|t| &t.id).collect();
    // Like the SDK: the m-line of a track that is gone goes inactive (a stale receive-only line
    // could otherwise be matched to a new subscription).
    let mut kept = Vec::with_capacity(subscribed.len());
    for (id, mid) in subscribed.drain(..) {
        match &mid {
            Some(m) if !live.contains(&id) => {
                for t in pc.get_transceivers().await {
                    if t.mid().await.ok().flatten().as_deref() == Some(m.as_str()) {
                        let _ = t.set_direction(RTCRtpTransceiverDirection::Inactive).await;
                    }
                }
            }
            _ => kept.push((id, mid)),
        }
    }
    *subscribed = kept;
    let wanted: Vec<&TrackInfo> = known.iter().filter(|t| t.publisher != me && !subscribed.iter().any(|(id, _)| id == &t.id)).collect();
    if outs.is_empty() && wanted.is_empty() && subscribed.is_empty() && !has_data {
        // Nothing to send or receive yet: an offer without m-lines is not an offer.
        return Ok(Vec::new());
    }
    for t in wanted {
        let kind = if t.kind == "audio" { RtpCodecKind::Audio } else { RtpCodecKind::Video };
        pc.add_transceiver_from_kind(
            kind,
            Some(RTCRtpTransceiverInit { direction: RTCRtpTransceiverDirection::Recvonly, streams: vec![], send_encodings: vec![] }),
        )
        .await?;
        if let Ok(mut m) = publishers.lock() {
            m.insert(t.id.clone(), t.publisher.clone());
        }
        subscribed.push((t.id.clone(), None));
    }
    let offer = pc.create_offer(None).await?;
    pc.set_local_description(offer).await?;
    let sdp = pc.local_description().await.context("no local description")?.sdp;
    let lines = jiefen_media::sdp::media_sections(&sdp);
    let sending: Vec<&String> = lines.iter().filter(|(_, d)| d == "sendrecv" || d == "sendonly").map(|(m, _)| m).collect();
    let receiving: Vec<&String> = lines.iter().filter(|(_, d)| d == "recvonly").map(|(m, _)| m).collect();
    let publish = outs
        .iter_mut()
        .zip(&sending)
        .map(|(o, mid)| {
            o.mid = Some((*mid).clone());
            PublishedMid { mid: (*mid).clone(), source: o.source }
        })
        .collect();
    // Receive-only m-lines in order = subscriptions in the order they were added; drop the gone.
    for ((_, mid), line) in subscribed.iter_mut().zip(&receiving) {
        *mid = Some((*line).clone());
    }
    let subscribe = subscribed
        .iter()
        .filter(|(id, _)| live.contains(id))
        .filter_map(|(id, mid)| Some(SubscribedMid { mid: mid.clone()?, track: id.clone() }))
        .collect();
    send(ws, &ClientMessage::Offer { sdp, publish, subscribe }).await?;
    let mut deferred = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), next_message(ws)).await.context("no answer in 10 s")?? {
            ServerMessage::Answer { sdp } => {
                pc.set_remote_description(RTCSessionDescription::answer(sdp)?).await?;
                // Handled oldest first (the caller pops from the end).
                deferred.reverse();
                return Ok(deferred);
            }
            ServerMessage::Error { code, message } => bail!("offer refused: {code:?} {message}"),
            other => deferred.push(other),
        }
    }
}

async fn run(config: ParticipantConfig, stats: Arc<Mutex<Stats>>, sent: Arc<SendCounters>, mut stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(250);
    loop {
        if *stop.borrow() {
            return;
        }
        match session(&config, &stats, &sent, &mut stop).await {
            Ok(()) => return,
            Err(e) => {
                if let Ok(mut s) = stats.lock() {
                    s.errors.push(e.to_string());
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_url_from_base() {
        assert_eq!(ws_url("http://127.0.0.1:8080/"), "ws://127.0.0.1:8080/rtc/v1/ws");
    }
}
