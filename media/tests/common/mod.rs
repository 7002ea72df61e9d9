//! Real WebRTC peers (the async `webrtc` crate) driving the SFU on loopback, without signaling:
//! offers go straight to a [`RoomHandle`]. Payloads carry a counter and a checksum so that the
//! receiver can prove every byte arrived intact.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiefen_media::{
    Limits, Media, MediaConfig, MediaEvent, OfferRequest, ParticipantId, ParticipantOptions, Permissions, PublishIntent,
    RoomHandle, RoomId, Source, SubscribeIntent, TrackInfo,
};
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCPeerConnectionState,
    RTCSessionDescription,
};

pub const VP8_PT: u8 = 96;
pub const OPUS_PT: u8 = 111;

pub fn start_media(workers: usize) -> Media {
    Media::start(MediaConfig {
        bind_ip: [127, 0, 0, 1].into(),
        public_ip: [127, 0, 0, 1].into(),
        first_port: 0,
        workers,
        send_batch: jiefen_media::batch::DEFAULT_BATCH,
        limits: Limits::default(),
    })
    .expect("media starts")
}

pub fn everyone() -> ParticipantOptions {
    ParticipantOptions {
        permissions: Permissions { publish: vec![Source::Microphone, Source::Camera], subscribe: true, hidden: false, data: true },
        group: None,
        sees_all_groups: false,
        reads_all_groups: false,
    }
}

/// What a peer received on one remote track.
#[derive(Debug, Default, Clone)]
pub struct Received {
    pub packets: u64,
    pub corrupt: u64,
    pub seqs: Vec<u16>,
    /// Publisher counters seen (decoded from payloads).
    pub counters: Vec<u64>,
}

struct Handler {
    connected: mpsc::UnboundedSender<RTCPeerConnectionState>,
    received: Arc<Mutex<HashMap<String, Received>>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.connected.send(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let received = self.received.clone();
        tokio::spawn(async move {
            let id = track.track_id().await;
            while let Some(event) = track.poll().await {
                match event {
                    TrackRemoteEvent::OnRtpPacket(p) => {
                        let mut r = received.lock().expect("lock");
                        let entry = r.entry(id.clone()).or_default();
                        entry.packets += 1;
                        entry.seqs.push(p.header.sequence_number);
                        match check_payload(&p.payload) {
                            Some(counter) => entry.counters.push(counter),
                            None => entry.corrupt += 1,
                        }
                    }
                    TrackRemoteEvent::OnEnded => break,
                    _ => {}
                }
            }
        });
    }
}

/// The synthetic payloads of the load generator (counter, send time, checksum), shared as source.
#[path = "../../../loadtest/src/payload.rs"]
mod payload;

pub fn make_payload(counter: u64, len: usize) -> bytes::Bytes {
    payload::synthetic(counter, len)
}

/// The counter of an intact payload; `None` when corrupt.
pub fn check_payload(p: &[u8]) -> Option<u64> {
    payload::synthetic_counter(p)
}

pub struct Outgoing {
    pub track: Arc<TrackLocalStaticRTP>,
    pub ssrc: u32,
    pub pt: u8,
    pub source: Source,
    pub seq: u16,
    pub counter: u64,
}

impl Outgoing {
    pub async fn send(&mut self, len: usize) {
        self.seq = self.seq.wrapping_add(1);
        self.counter += 1;
        let packet = rtc::rtp::packet::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                payload_type: self.pt,
                sequence_number: self.seq,
                timestamp: (self.counter as u32).wrapping_mul(3000),
                ssrc: self.ssrc,
                marker: true,
                ..Default::default()
            },
            payload: make_payload(self.counter, len),
        };
        let _ = self.track.write_rtp(packet).await;
    }
}

pub struct Peer {
    pub id: ParticipantId,
    pub pc: Arc<dyn PeerConnection>,
    pub received: Arc<Mutex<HashMap<String, Received>>>,
    states: mpsc::UnboundedReceiver<RTCPeerConnectionState>,
    pub outgoing: Vec<Outgoing>,
    /// mid → role of each m-line this peer has offered.
    publish: Vec<PublishIntent>,
    subscribe: Vec<SubscribeIntent>,
    /// The SFU's last answer.
    pub last_answer: String,
}

fn track_for(source: Source, ssrc: u32, id: &str) -> (Arc<TrackLocalStaticRTP>, u8) {
    let (kind, codec, pt) = match source {
        Source::Microphone => (
            RtpCodecKind::Audio,
            RTCRtpCodec { mime_type: "audio/opus".into(), clock_rate: 48000, channels: 2, sdp_fmtp_line: String::new(), rtcp_feedback: vec![] },
            OPUS_PT,
        ),
        _ => (
            RtpCodecKind::Video,
            RTCRtpCodec { mime_type: "video/VP8".into(), clock_rate: 90000, channels: 0, sdp_fmtp_line: String::new(), rtcp_feedback: vec![] },
            VP8_PT,
        ),
    };
    let track = MediaStreamTrack::new(
        format!("{id}-stream"),
        format!("{id}-{source:?}"),
        format!("{id}-{source:?}"),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
            codec,
            ..Default::default()
        }],
    );
    (Arc::new(TrackLocalStaticRTP::new(track)), pt)
}

impl Peer {
    pub async fn new(id: &str) -> Peer {
        let mut media = MediaEngine::default();
        media.register_default_codecs().expect("codecs");
        // Like a browser: NACK, receiver reports, TWCC.
        let registry = rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors(
            rtc::interceptor::Registry::new(),
            &mut media,
        )
        .expect("interceptors");
        let (tx, states) = mpsc::unbounded_channel();
        let received = Arc::new(Mutex::new(HashMap::new()));
        let pc = PeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Handler { connected: tx, received: received.clone() }))
            .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
            .build()
            .await
            .expect("peer connection");
        Peer {
            id: ParticipantId::from(id),
            pc: Arc::new(pc),
            received,
            states,
            outgoing: Vec::new(),
            publish: Vec::new(),
            subscribe: Vec::new(),
            last_answer: String::new(),
        }
    }

    /// Adds sending tracks for `sources` (negotiated at the next [`Peer::negotiate`]).
    pub async fn add_sources(&mut self, sources: &[Source]) {
        for &source in sources {
            let ssrc = rand::random::<u32>();
            let (track, pt) = track_for(source, ssrc, &self.id.0);
            self.pc.add_track(track.clone() as Arc<dyn TrackLocal>).await.expect("add track");
            self.outgoing.push(Outgoing { track, ssrc, pt, source, seq: rand::random(), counter: 0 });
        }
    }

    /// Adds a receive-only m-line for each track (negotiated at the next [`Peer::negotiate`]).
    pub async fn add_subscriptions(&mut self, tracks: &[TrackInfo]) -> Vec<TrackInfo> {
        let mut added = Vec::new();
        for t in tracks {
            if t.publisher == self.id || self.subscribe.iter().any(|s| s.track == t.id) {
                continue;
            }
            let kind = if t.kind == jiefen_media::Kind::Audio { RtpCodecKind::Audio } else { RtpCodecKind::Video };
            self.pc
                .add_transceiver_from_kind(
                    kind,
                    Some(RTCRtpTransceiverInit { direction: RTCRtpTransceiverDirection::Recvonly, streams: vec![], send_encodings: vec![] }),
                )
                .await
                .expect("recvonly transceiver");
            // The mid is known after the offer; remember the order.
            self.subscribe.push(SubscribeIntent { mid: String::new(), track: t.id.clone() });
            added.push(t.clone());
        }
        added
    }

    /// Offer → SFU → answer, mapping m-lines to intents by order.
    pub async fn negotiate(&mut self, room: &RoomHandle) -> Result<(), jiefen_media::MediaError> {
        self.negotiate_via(room, None).await
    }

    /// As [`Peer::negotiate`]; with `relay`, the server's candidate in the answer is replaced by
    /// the relay's port, so that all of this peer's traffic passes through it.
    pub async fn negotiate_via(&mut self, room: &RoomHandle, relay: Option<u16>) -> Result<(), jiefen_media::MediaError> {
        let offer = self.pc.create_offer(None).await.expect("offer");
        self.pc.set_local_description(offer).await.expect("set local");
        let sdp = self.pc.local_description().await.expect("local description").sdp;
        let lines = jiefen_media::sdp::media_sections(&sdp);
        let sending: Vec<&(String, String)> = lines.iter().filter(|(_, d)| d == "sendrecv" || d == "sendonly").collect();
        let receiving: Vec<&(String, String)> = lines.iter().filter(|(_, d)| d == "recvonly").collect();
        self.publish = self
            .outgoing
            .iter()
            .zip(sending.iter())
            .map(|(o, (mid, _))| PublishIntent { mid: mid.clone(), source: o.source })
            .collect();
        for (intent, (mid, _)) in self.subscribe.iter_mut().zip(receiving.iter()) {
            intent.mid = mid.clone();
        }
        let answer = room
            .apply_offer(
                self.id.clone(),
                OfferRequest { sdp, publish: self.publish.clone(), subscribe: self.subscribe.clone() },
            )
            .await?;
        self.last_answer = answer.clone();
        let answer = match relay {
            Some(port) => via_relay(&answer, port),
            None => answer,
        };
        self.pc.set_remote_description(RTCSessionDescription::answer(answer).expect("answer")).await.expect("set remote");
        Ok(())
    }

    pub async fn wait_connected(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            match tokio::time::timeout_at(deadline, self.states.recv()).await {
                Ok(Some(RTCPeerConnectionState::Connected)) => return,
                Ok(Some(_)) => continue,
                _ => panic!("{} did not connect within 15 s", self.id),
            }
        }
    }

    pub fn received(&self) -> HashMap<String, Received> {
        self.received.lock().expect("lock").clone()
    }

    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}

/// The SFU's answer with its candidate's port replaced by a relay's.
pub fn via_relay(answer: &str, port: u16) -> String {
    answer
        .lines()
        .map(|l| {
            if l.starts_with("a=candidate:") {
                let mut f: Vec<String> = l.split(' ').map(str::to_string).collect();
                if f.len() > 5 {
                    f[5] = port.to_string();
                }
                f.join(" ")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// Drains published-track events from a room until `n` have arrived.
pub async fn published(events: &mut mpsc::UnboundedReceiver<MediaEvent>, n: usize) -> Vec<TrackInfo> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
            Ok(Some(MediaEvent::TrackPublished(t))) => out.push(t),
            Ok(Some(_)) => {}
            _ => panic!("only {} of {n} tracks published", out.len()),
        }
    }
    out
}

pub async fn room(media: &Media, name: &str) -> (RoomHandle, mpsc::UnboundedReceiver<MediaEvent>) {
    media.create_room(RoomId::from(name)).await.expect("room")
}

/// Sends `rounds` packets on every outgoing track of every peer, 10 ms apart.
pub async fn pump(peers: &mut [&mut Peer], rounds: usize, len: usize) {
    for _ in 0..rounds {
        for p in peers.iter_mut() {
            for o in p.outgoing.iter_mut() {
                o.send(len).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A UDP relay between one client and the SFU that drops a share of the media packets going to
/// the client (not STUN, DTLS or RTCP): the kernel here has no netem.
pub struct LossyRelay {
    pub port: u16,
    pub dropped: Arc<std::sync::atomic::AtomicU64>,
    /// RTP packets passed towards the client, by SSRC (SRTP leaves the header in the clear).
    pub to_client_by_ssrc: Arc<Mutex<HashMap<u32, u64>>>,
}

/// What a relay does to media packets in the lossy direction.
#[derive(Debug, Clone, Copy)]
pub enum Impairment {
    /// Drop every n-th media packet.
    DropEvery(u64),
    /// A policer: a token bucket of this many bits per second (and a tenth of that as burst);
    /// media packets beyond it are dropped, like a congested mobile link.
    Police(u64),
}

impl LossyRelay {
    pub async fn start(server: std::net::SocketAddr, drop_every: u64) -> LossyRelay {
        Self::start_directed(server, drop_every, false).await
    }

    /// With `upstream`, the losses are on the way from the client to the SFU instead.
    pub async fn start_directed(server: std::net::SocketAddr, drop_every: u64, upstream: bool) -> LossyRelay {
        Self::start_impaired(server, Impairment::DropEvery(drop_every), upstream).await
    }

    pub async fn start_impaired(server: std::net::SocketAddr, impairment: Impairment, upstream: bool) -> LossyRelay {
        let socket = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind relay"));
        let port = socket.local_addr().expect("addr").port();
        let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = dropped.clone();
        let to_client_by_ssrc: Arc<Mutex<HashMap<u32, u64>>> = Arc::default();
        let by_ssrc = to_client_by_ssrc.clone();
        tokio::spawn(async move {
            let mut client: Option<std::net::SocketAddr> = None;
            let mut buf = vec![0u8; 2048];
            let mut media_seen = 0u64;
            let (mut tokens, mut refilled) = (0f64, std::time::Instant::now());
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let data = &buf[..n];
                let towards_client = from == server;
                // RTP, not RTCP (RFC 5761: RTCP packet types 192-223 in the second byte).
                let is_rtp = n > 12 && (128..192).contains(&data[0]) && !(192..224).contains(&data[1]);
                if is_rtp && towards_client != upstream {
                    media_seen += 1;
                    let drop = match impairment {
                        Impairment::DropEvery(every) => media_seen % every == 0,
                        Impairment::Police(bps) => {
                            let now = std::time::Instant::now();
                            let rate = bps as f64 / 8.0;
                            tokens = (tokens + now.duration_since(refilled).as_secs_f64() * rate).min(rate / 10.0);
                            refilled = now;
                            if tokens >= n as f64 {
                                tokens -= n as f64;
                                false
                            } else {
                                true
                            }
                        }
                    };
                    if drop {
                        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        continue;
                    }
                }
                if towards_client {
                    let Some(to) = client else { continue };
                    if is_rtp {
                        let ssrc = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
                        *by_ssrc.lock().expect("lock").entry(ssrc).or_default() += 1;
                    }
                    let _ = socket.send_to(data, to).await;
                } else {
                    client = Some(from);
                    let _ = socket.send_to(data, server).await;
                }
            }
        });
        LossyRelay { port, dropped, to_client_by_ssrc }
    }
}

/// The load generator's fixtures (VP8 in three simulcast layers, Opus), made by FFmpeg once.
pub fn fixture_media() -> jiefen_loadtest::publish::MediaSpec {
    let dir = std::env::temp_dir().join("jiefen-test-fixtures");
    jiefen_loadtest::fixture::ensure(&dir).expect("ffmpeg makes the fixtures");
    jiefen_loadtest::publish::MediaSpec::Fixture(Arc::new(jiefen_loadtest::fixture::Fixture::load(&dir).expect("fixtures")))
}

pub type LtStats = Arc<Mutex<jiefen_loadtest::Stats>>;

/// A peer connection of the load generator (browser-like: simulcast extensions, NACK, TWCC,
/// keyframe requests to its tracks) with its receivers' statistics.
pub async fn lt_peer() -> (Arc<dyn PeerConnection>, mpsc::UnboundedReceiver<RTCPeerConnectionState>, LtStats) {
    let stats: LtStats = Arc::default();
    let (pc, states) = jiefen_loadtest::participant::peer("127.0.0.1:0", &stats, &Arc::default()).await.expect("peer");
    (pc, states, stats)
}

pub async fn lt_connected(states: &mut mpsc::UnboundedReceiver<RTCPeerConnectionState>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while let Ok(Some(s)) = tokio::time::timeout_at(deadline, states.recv()).await {
        if s == RTCPeerConnectionState::Connected {
            return;
        }
    }
    panic!("not connected in 15 s");
}

/// Offer → SFU → answer for a peer with one m-line (a camera it publishes, or one track it
/// subscribes to); returns that m-line's mid.
pub async fn lt_negotiate(pc: &Arc<dyn PeerConnection>, room: &RoomHandle, id: &str, publish: bool, subscribe: Option<&TrackInfo>, relay: Option<u16>) -> String {
    let offer = pc.create_offer(None).await.expect("offer");
    pc.set_local_description(offer).await.expect("local");
    let sdp = pc.local_description().await.expect("sdp").sdp;
    let mid = jiefen_media::sdp::media_sections(&sdp)[0].0.clone();
    let request = OfferRequest {
        publish: if publish { vec![PublishIntent { mid: mid.clone(), source: Source::Camera }] } else { vec![] },
        subscribe: subscribe.map(|t| vec![SubscribeIntent { mid: mid.clone(), track: t.id.clone() }]).unwrap_or_default(),
        sdp,
    };
    let answer = room.apply_offer(ParticipantId::from(id), request).await.expect("answer");
    let answer = match relay {
        Some(port) => via_relay(&answer, port),
        None => answer,
    };
    pc.set_remote_description(RTCSessionDescription::answer(answer).expect("answer")).await.expect("remote");
    mid
}

/// A participant publishing the fixtures' camera (three simulcast layers), connected and
/// answering keyframe requests; the caller drives `camera.tick_video`.
pub struct FixturePublisher {
    pub pc: Arc<dyn PeerConnection>,
    pub states: mpsc::UnboundedReceiver<RTCPeerConnectionState>,
    pub camera: jiefen_loadtest::publish::Outgoing,
    pub sent: Arc<jiefen_loadtest::publish::SendCounters>,
    pub track: TrackInfo,
}

pub async fn fixture_publisher(
    room: &RoomHandle,
    events: &mut mpsc::UnboundedReceiver<MediaEvent>,
    media: &jiefen_loadtest::publish::MediaSpec,
    id: &str,
) -> FixturePublisher {
    let (pc, states, _) = lt_peer().await;
    room.add_participant(id.into(), everyone()).await.expect("publisher");
    let mut camera = jiefen_loadtest::publish::Outgoing::new(jiefen_loadtest::publish::Source::Camera, media);
    pc.add_track(camera.track.clone() as Arc<dyn TrackLocal>).await.expect("track");
    camera.mid = Some(lt_negotiate(&pc, room, id, true, None, None).await);
    let sent = Arc::new(jiefen_loadtest::publish::SendCounters::default());
    camera.serve_keyframe_requests(sent.clone());
    let track = published(events, 1).await.remove(0);
    FixturePublisher { pc, states, camera, sent, track }
}

/// A participant receiving one video track (through `relay` when given).
pub async fn lt_viewer(
    room: &RoomHandle,
    id: &str,
    track: &TrackInfo,
    relay: Option<u16>,
) -> (Arc<dyn PeerConnection>, mpsc::UnboundedReceiver<RTCPeerConnectionState>, LtStats) {
    let (pc, states, stats) = lt_peer().await;
    room.add_participant(id.into(), everyone()).await.expect("viewer");
    pc.add_transceiver_from_kind(
        RtpCodecKind::Video,
        Some(RTCRtpTransceiverInit { direction: RTCRtpTransceiverDirection::Recvonly, streams: vec![], send_encodings: vec![] }),
    )
    .await
    .expect("recvonly");
    lt_negotiate(&pc, room, id, false, Some(track), relay).await;
    (pc, states, stats)
}

/// A participant's end of the room data channel and the frames it has received.
pub struct DataEnd {
    pub channel: Arc<dyn webrtc::data_channel::DataChannel>,
    pub frames: Arc<Mutex<Vec<Vec<u8>>>>,
    opened: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl Peer {
    /// Creates the room data channel (negotiated at the next [`Peer::negotiate`]).
    pub async fn open_data(&self) -> DataEnd {
        let channel = self.pc.create_data_channel(jiefen_media::data::LABEL, None).await.expect("data channel");
        let frames = Arc::new(Mutex::new(Vec::new()));
        let (open_tx, opened) = tokio::sync::oneshot::channel();
        let (ch, got) = (channel.clone(), frames.clone());
        tokio::spawn(async move {
            let mut open_tx = Some(open_tx);
            while let Some(event) = ch.poll().await {
                match event {
                    webrtc::data_channel::DataChannelEvent::OnOpen => {
                        if let Some(tx) = open_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    webrtc::data_channel::DataChannelEvent::OnMessage(m) => got.lock().expect("lock").push(m.data.to_vec()),
                    _ => {}
                }
            }
        });
        DataEnd { channel, frames, opened: Some(opened) }
    }
}

impl DataEnd {
    pub async fn wait_open(&mut self) {
        if let Some(opened) = self.opened.take() {
            tokio::time::timeout(Duration::from_secs(10), opened).await.expect("data channel opens in 10 s").expect("opened");
        }
    }

    /// Waits until at least `n` frames have arrived (or 3 s), then returns all received so far.
    pub async fn frames(&self, n: usize) -> Vec<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        loop {
            let got = self.frames.lock().expect("lock").clone();
            if got.len() >= n || tokio::time::Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
