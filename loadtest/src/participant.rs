//! One synthetic participant: a websocket speaking `jiefen_signaling::proto` and a webrtc-rs
//! peer connection that publishes synthetic audio and video and receives everyone else's.
//! It follows redirects, renegotiates when tracks come and go, and on a lost connection
//! rejoins through its entry URLs in turn (a stand-in for a load balancer).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use jiefen_signaling::proto::{ClientMessage, PublishedMid, ServerMessage, SubscribedMid, TrackInfo};
use jiefen_signaling::token::Source;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCPeerConnectionState,
    RTCSessionDescription,
};

use crate::payload;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What one participant measured, per publisher it received from.
#[derive(Debug, Default, Clone)]
pub struct Received {
    pub packets: u64,
    pub bytes: u64,
    pub corrupt: u64,
    pub video_packets: u64,
    pub audio_packets: u64,
    /// Sum of one-way delays in µs (send time carried in the payload; same clock on loopback).
    pub delay_sum_us: u64,
    pub first_at: Option<Instant>,
    pub last_at: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct Stats {
    pub received: HashMap<String, Received>,
    pub joined_at: Option<Instant>,
    pub started_at: Option<Instant>,
    pub joins: u32,
    pub redirects: u32,
    pub sent_packets: u64,
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
    /// Video payload bytes per packet and packets per second.
    pub video_packet_bytes: usize,
    pub video_packets_per_second: u32,
}

pub struct Participant {
    pub stats: Arc<Mutex<Stats>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Participant {
    pub fn spawn(config: ParticipantConfig) -> Participant {
        let stats = Arc::new(Mutex::new(Stats { started_at: Some(Instant::now()), ..Stats::default() }));
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(config, stats.clone(), stop_rx));
        Participant { stats, stop, task }
    }

    pub fn snapshot(&self) -> HashMap<String, Received> {
        self.stats.lock().map(|s| s.received.clone()).unwrap_or_default()
    }

    pub fn joined_at(&self) -> Option<Instant> {
        self.stats.lock().ok().and_then(|s| s.joined_at)
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

struct Handler {
    states: mpsc::UnboundedSender<RTCPeerConnectionState>,
    stats: Arc<Mutex<Stats>>,
    /// Our track id (the remote msid track id) → publisher identity.
    publishers: Arc<Mutex<HashMap<String, String>>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.states.send(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let stats = self.stats.clone();
        let publishers = self.publishers.clone();
        tokio::spawn(async move {
            let id = track.track_id().await;
            let video = track.kind().await == RtpCodecKind::Video;
            while let Some(event) = track.poll().await {
                match event {
                    TrackRemoteEvent::OnRtpPacket(p) => {
                        let publisher = publishers.lock().ok().and_then(|m| m.get(&id).cloned()).unwrap_or_else(|| id.clone());
                        let Ok(mut s) = stats.lock() else { return };
                        let r = s.received.entry(publisher).or_default();
                        let now = Instant::now();
                        r.packets += 1;
                        r.bytes += p.payload.len() as u64;
                        if video { r.video_packets += 1 } else { r.audio_packets += 1 }
                        match payload::check(&p.payload) {
                            Some((_, delay)) => r.delay_sum_us += delay,
                            None => r.corrupt += 1,
                        }
                        r.first_at.get_or_insert(now);
                        r.last_at = Some(now);
                    }
                    TrackRemoteEvent::OnEnded => break,
                    _ => {}
                }
            }
        });
    }
}

struct Outgoing {
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    pt: u8,
    source: Source,
    seq: u16,
    counter: u64,
}

fn outgoing(source: Source) -> Outgoing {
    let ssrc = rand::random::<u32>();
    let (kind, mime, clock, channels, pt) = match source {
        Source::Microphone => (RtpCodecKind::Audio, "audio/opus", 48000, 2, 111),
        _ => (RtpCodecKind::Video, "video/VP8", 90000, 0, 96),
    };
    let track = MediaStreamTrack::new(
        format!("lt-{ssrc}"),
        format!("lt-{ssrc}-{source:?}"),
        format!("{source:?}"),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
            codec: RTCRtpCodec { mime_type: mime.into(), clock_rate: clock, channels, sdp_fmtp_line: String::new(), rtcp_feedback: vec![] },
            ..Default::default()
        }],
    );
    Outgoing { track: Arc::new(TrackLocalStaticRTP::new(track)), ssrc, pt, source, seq: rand::random(), counter: 0 }
}

impl Outgoing {
    async fn send(&mut self, len: usize, timestamp_step: u32) {
        self.seq = self.seq.wrapping_add(1);
        self.counter += 1;
        let packet = rtc::rtp::packet::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                payload_type: self.pt,
                sequence_number: self.seq,
                timestamp: (self.counter as u32).wrapping_mul(timestamp_step),
                ssrc: self.ssrc,
                marker: true,
                ..Default::default()
            },
            payload: payload::make(self.counter, len),
        };
        let _ = self.track.write_rtp(packet).await;
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
async fn session(config: &ParticipantConfig, stats: &Arc<Mutex<Stats>>, stop: &mut watch::Receiver<bool>) -> anyhow::Result<()> {
    let (mut ws, tracks) = join(config, stats).await?;
    let mut engine = MediaEngine::default();
    engine.register_default_codecs()?;
    // Like a browser: NACK, receiver reports, TWCC.
    let registry = rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors(
        rtc::interceptor::Registry::new(),
        &mut engine,
    )?;
    let (states_tx, mut states) = mpsc::unbounded_channel();
    let publishers = Arc::new(Mutex::new(HashMap::new()));
    let pc = PeerConnectionBuilder::new()
        .with_media_engine(engine)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(Handler { states: states_tx, stats: stats.clone(), publishers: publishers.clone() }))
        .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
        .build()
        .await?;
    let pc: Arc<dyn PeerConnection> = Arc::new(pc);
    let mut outs = Vec::new();
    if config.publish_audio {
        outs.push(outgoing(Source::Microphone));
    }
    if config.publish_video {
        outs.push(outgoing(Source::Camera));
    }
    for o in &outs {
        pc.add_track(o.track.clone() as Arc<dyn TrackLocal>).await?;
    }
    let mut known: Vec<TrackInfo> = tracks;
    let mut subscribed: Vec<String> = Vec::new();
    let mut deferred = negotiate(&pc, &mut ws, &config.identity, &outs, &known, &mut subscribed, &publishers).await?;
    if let Ok(mut s) = stats.lock() {
        s.joins += 1;
        s.joined_at.get_or_insert(Instant::now());
    }
    let audio_every = Duration::from_millis(20);
    let video_every = Duration::from_micros(1_000_000 / u64::from(config.video_packets_per_second.max(1)));
    let mut audio_tick = tokio::time::interval(audio_every);
    let mut video_tick = tokio::time::interval(video_every);
    let mut connected = false;
    let result = loop {
        tokio::select! {
            _ = stop.changed() => {
                let _ = send(&mut ws, &ClientMessage::Leave).await;
                break Ok(());
            }
            s = states.recv() => match s {
                Some(RTCPeerConnectionState::Connected) => connected = true,
                Some(RTCPeerConnectionState::Failed) => break Err(anyhow!("media connection failed")),
                _ => {}
            },
            _ = audio_tick.tick(), if connected => {
                for o in outs.iter_mut().filter(|o| o.source == Source::Microphone) {
                    o.send(120, 960).await;
                }
                if let Ok(mut s) = stats.lock() { s.sent_packets += 1; }
            }
            _ = video_tick.tick(), if connected => {
                let step = 90_000 / config.video_packets_per_second.max(1);
                for o in outs.iter_mut().filter(|o| o.source == Source::Camera) {
                    o.send(config.video_packet_bytes, step).await;
                }
                if let Ok(mut s) = stats.lock() { s.sent_packets += 1; }
            }
            m = async { match deferred.pop() { Some(m) => Ok(m), None => next_message(&mut ws).await } } => match m {
                Ok(ServerMessage::TrackPublished { track }) => {
                    known.retain(|t| t.id != track.id);
                    known.push(track);
                    deferred.extend(negotiate(&pc, &mut ws, &config.identity, &outs, &known, &mut subscribed, &publishers).await?);
                }
                Ok(ServerMessage::TrackUnpublished { track }) => {
                    known.retain(|t| t.id != track);
                    deferred.extend(negotiate(&pc, &mut ws, &config.identity, &outs, &known, &mut subscribed, &publishers).await?);
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
    let _ = pc.close().await;
    result
}

/// Offers the current publish set and a receive-only m-line for every room track not yet held,
/// and applies the answer. Messages that arrive meanwhile are returned for the caller to handle.
async fn negotiate(
    pc: &Arc<dyn PeerConnection>,
    ws: &mut Ws,
    me: &str,
    outs: &[Outgoing],
    known: &[TrackInfo],
    subscribed: &mut Vec<String>,
    publishers: &Mutex<HashMap<String, String>>,
) -> anyhow::Result<Vec<ServerMessage>> {
    let wanted: Vec<&TrackInfo> = known.iter().filter(|t| t.publisher != me && !subscribed.contains(&t.id)).collect();
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
        subscribed.push(t.id.clone());
    }
    let offer = pc.create_offer(None).await?;
    pc.set_local_description(offer).await?;
    let sdp = pc.local_description().await.context("no local description")?.sdp;
    let lines = jiefen_media::sdp::media_sections(&sdp);
    let sending: Vec<&String> = lines.iter().filter(|(_, d)| d == "sendrecv" || d == "sendonly").map(|(m, _)| m).collect();
    let receiving: Vec<&String> = lines.iter().filter(|(_, d)| d == "recvonly").map(|(m, _)| m).collect();
    let publish = outs.iter().zip(&sending).map(|(o, mid)| PublishedMid { mid: (*mid).clone(), source: o.source }).collect();
    // Receive-only m-lines in order = subscriptions in the order they were added; drop the gone.
    let live: HashSet<&String> = known.iter().map(|t| &t.id).collect();
    let subscribe = subscribed
        .iter()
        .zip(&receiving)
        .filter(|(id, _)| live.contains(id))
        .map(|(id, mid)| SubscribedMid { mid: (*mid).clone(), track: id.clone() })
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

async fn run(config: ParticipantConfig, stats: Arc<Mutex<Stats>>, mut stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(250);
    loop {
        if *stop.borrow() {
            return;
        }
        match session(&config, &stats, &mut stop).await {
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
