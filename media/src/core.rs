//! The sans-IO forwarding core of one worker.
//!
//! A [`WorkerCore`] owns the rooms pinned to its worker and one webrtc-rs `rtc` peer connection
//! per participant, all sharing the worker's single UDP socket (ICE-lite). Datagrams, commands
//! and time come in as method calls; datagrams to send come out of [`WorkerCore::poll_transmit`]
//! and events out of [`WorkerCore::poll_event`]. Nothing here does I/O or reads the clock, and
//! nothing a peer sends may make it panic: every error from the stack is logged and dropped.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::interceptor::{CongestionControlBuilder, SenderReportBuilder, Slot};
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_nack, configure_simulcast_extension_headers, configure_twcc,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::data_channel::{RTCDataChannelId, RTCDataChannelMessage};
use rtc::peer_connection::event::{RTCDataChannelEvent, RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCDtlsRole, RTCIceCandidate};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use rtc::rtp_transceiver::rtp_sender::RTCRtpHeaderExtensionCapability;
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use crate::bwe::{DownlinkEstimate, RateMeter, SharedGcc, SubscriberBwe, VideoDemand, layer_rates};
use crate::data::{DataError, RateLimit};
use crate::forwarder::Forwarder;
use crate::keyframe::{VideoCodec, is_keyframe};
use crate::ids::{Kind, ParticipantId, Permissions, RoomId, Source, TrackId, TrackInfo};
use crate::{ConnectionState, MediaEvent, stun};

/// RFC 6464 client-to-mixer audio level.
const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
/// How often the loudest speaker of each room is re-evaluated.
const SPEAKER_INTERVAL: Duration = Duration::from_millis(300);
/// Smoothed activity (127 − dBov) above which a participant counts as speaking (≈ −55 dBov).
const SPEAKING_THRESHOLD: f32 = 72.0;
/// How long a speaker stays the speaker after its level last crossed the threshold.
const SPEAKER_HOLD: Duration = Duration::from_millis(1500);

/// A subscriber waiting this long for a keyframe is logged (once): the requests go unanswered.
const KEYFRAME_WAIT_REPORTED_AFTER: Duration = Duration::from_secs(5);

/// At most one keyframe request per published track (per simulcast layer) per this interval.
const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct Limits {
    pub participants_per_room: usize,
    pub tracks_per_participant: usize,
    pub rooms_per_worker: usize,
    /// The largest message relayed on the room data channel.
    pub data_message_max_bytes: usize,
    /// Data channel messages a participant may send per second (bursts of twice this).
    pub data_messages_per_second: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            participants_per_room: 30,
            tracks_per_participant: 3,
            rooms_per_worker: 500,
            data_message_max_bytes: 16 * 1024,
            data_messages_per_second: 20,
        }
    }
}

/// A recipient whose data channel has this much unsent (it is not reading, or its link is
/// slow) misses further messages rather than growing the SFU's memory.
const DATA_BACKLOG_MAX: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    #[error("room {0} does not exist on this node")]
    NoSuchRoom(RoomId),
    #[error("room {0} already exists")]
    RoomExists(RoomId),
    #[error("participant {0} is not in the room")]
    NoSuchParticipant(ParticipantId),
    #[error("participant {0} is already in the room")]
    DuplicateParticipant(ParticipantId),
    #[error("the room is full ({0} participants)")]
    RoomFull(usize),
    #[error("this media worker hosts its maximum of {0} rooms")]
    TooManyRooms(usize),
    #[error("not permitted: {0}")]
    NotPermitted(String),
    #[error("unknown track {0}")]
    UnknownTrack(TrackId),
    #[error("the offer cannot be applied: {0}")]
    BadOffer(String),
    #[error("the media worker has stopped")]
    WorkerGone,
    #[error("media socket: {0}")]
    Io(String),
}

/// The client's offer with what its m-lines mean.
#[derive(Debug, Clone)]
pub struct OfferRequest {
    pub sdp: String,
    /// The m-lines the client sends on, and which source each carries.
    pub publish: Vec<PublishIntent>,
    /// The client's receive-only m-lines and which room track each should carry.
    pub subscribe: Vec<SubscribeIntent>,
}

#[derive(Debug, Clone)]
pub struct PublishIntent {
    pub mid: String,
    pub source: Source,
}

#[derive(Debug, Clone)]
pub struct SubscribeIntent {
    pub mid: String,
    pub track: TrackId,
}

/// A datagram to send from the worker's socket.
#[derive(Debug)]
pub struct Transmit {
    pub to: SocketAddr,
    pub bytes: BytesMut,
}

/// Counters the driver publishes as metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct CoreCounters {
    pub packets_in: u64,
    pub packets_forwarded: u64,
    pub bytes_forwarded: u64,
    pub datagrams_unrouted: u64,
    pub stack_errors: u64,
    /// Packets the recording tap could not take (the recorder fell behind).
    pub tap_dropped: u64,
    /// Data channel messages delivered to a recipient, refused (sent back with the reason), and
    /// not delivered to a recipient too far behind.
    pub data_relayed: u64,
    pub data_refused: u64,
    pub data_dropped: u64,
}

struct PublishedTrack {
    info: TrackInfo,
    receiver: RTCRtpReceiverId,
    /// The SSRC the publisher sends on, learnt from the first packet.
    media_ssrc: Option<u32>,
    /// Header extension id → URI, as negotiated with the publisher.
    extensions: HashMap<u8, String>,
    /// Payload type → codec, as negotiated with the publisher.
    codecs: HashMap<u8, VideoCodec>,
    /// Payload type → (MIME type, clock rate), for the recording tap.
    mime_types: HashMap<u8, (String, u32)>,
    /// Per simulcast layer (each its own encoding at the publisher): the last keyframe request.
    last_keyframe_request: [Option<Instant>; LAYERS],
    /// While a recording runs: whether its tap has had a keyframe of this track yet (it cannot
    /// start the track's file before one; requests repeat until one comes).
    tap_keyframe_seen: bool,
    /// Simulcast: SSRC → layer (0 = q, 1 = h, 2 = f); a plain track is layer 0.
    layer_of_ssrc: HashMap<u32, u8>,
    /// Per layer: its SSRC and when it was last seen.
    layers: [Option<LayerSeen>; LAYERS],
    /// Per layer: its bitrate (for the subscribers' bandwidth allocation).
    rates: [RateMeter; LAYERS],
    /// Simulcast: the layers the publisher was last asked to send, and since when each has had
    /// no viewer (it is paused after [`PAUSE_UNWATCHED_AFTER`]).
    sending: [bool; LAYERS],
    unwatched_since: [Option<Instant>; LAYERS],
    /// Audio: the smoothed activity from the audio-level extension, and when it was last fed.
    activity: f32,
    activity_at: Option<Instant>,
    /// When the activity was last above the speaking threshold.
    spoke_at: Option<Instant>,
    /// Uplink loss accounting per SSRC since the last quality evaluation.
    loss: HashMap<u32, LossWindow>,
}

/// Packets that arrived in order against packets expected (from the sequence-number span) on one
/// SSRC. Late packets, retransmissions among them, do not count: this measures the network's
/// loss, not what NACK later repaired.
#[derive(Debug, Default, Clone, Copy)]
struct LossWindow {
    highest: Option<u16>,
    expected: u64,
    received: u64,
}

impl LossWindow {
    fn on_packet(&mut self, seq: u16) {
        match self.highest {
            None => {
                self.highest = Some(seq);
                self.expected += 1;
                self.received += 1;
            }
            Some(h) => {
                let ahead = seq.wrapping_sub(h);
                // Newer (serial arithmetic), with a sanity bound against a reset stream.
                if ahead != 0 && ahead < 0x8000 {
                    self.expected += u64::from(ahead.min(1000));
                    self.received += 1;
                    self.highest = Some(seq);
                }
            }
        }
    }
}

/// How well a participant's uplink carries its media, from the loss seen on its streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quality {
    Excellent,
    Good,
    Poor,
}

impl Quality {
    fn from_loss(loss: f64) -> Quality {
        if loss < 0.02 {
            Quality::Excellent
        } else if loss < 0.08 {
            Quality::Good
        } else {
            Quality::Poor
        }
    }
}

/// Which simulcast layers of each video someone watches (at the size it shows the video, within
/// its downlink); layers unwatched for a while are to be paused at the publisher, layers wanted
/// again resumed. While the room is recorded every layer is kept (the recorder takes the best).
/// Returns the changes as (publisher, track, source, layers to send).
fn pause_unwatched_layers(now: Instant, room: &mut Room) -> Vec<(ParticipantId, TrackId, Source, [bool; LAYERS])> {
    let mut watched: HashMap<&TrackId, u8> = HashMap::new();
    for sub in room.participants.values() {
        for (id, down) in &sub.subscriptions {
            let layer = down.wanted_layer();
            let top = watched.entry(id).or_insert(0);
            *top = (*top).max(layer);
        }
    }
    let recording = room.tap.is_some();
    let mut changes = Vec::new();
    for (id, track) in room.tracks.iter_mut() {
        // Only simulcast publishers have layers to pause; the lowest is always kept.
        if track.info.kind != Kind::Video || track.layers[1..].iter().all(Option::is_none) {
            continue;
        }
        let top = if recording { (LAYERS - 1) as u8 } else { watched.get(id).copied().unwrap_or(0) };
        let mut sending = track.sending;
        for l in 1..LAYERS {
            if l <= usize::from(top) {
                sending[l] = true;
                track.unwatched_since[l] = None;
            } else if now.duration_since(*track.unwatched_since[l].get_or_insert(now)) >= PAUSE_UNWATCHED_AFTER {
                sending[l] = false;
            }
        }
        if sending != track.sending {
            track.sending = sending;
            changes.push((track.info.publisher.clone(), id.clone(), track.info.source, sending));
        }
    }
    changes
}

/// RTP header and SRTP tag, added to the payload when metering a layer's bitrate.
const RTP_OVERHEAD: usize = 12 + 10;

/// Simulcast layers: q (quarter), h (half), f (full).
pub const LAYERS: usize = 3;
/// A layer must have flowed this long without a gap before subscribers switch up to it.
const LAYER_STABLE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct LayerSeen {
    ssrc: u32,
    last: Instant,
    /// Start of the current run without a gap.
    since: Instant,
}
/// A layer not seen for this long is considered paused by the publisher.
const LAYER_TIMEOUT: Duration = Duration::from_millis(1500);

fn layer_of_rid(rid: &str) -> u8 {
    match rid {
        "q" | "l" | "low" | "0" => 0,
        "h" | "m" | "mid" | "1" => 1,
        _ => 2,
    }
}

impl PublishedTrack {
    /// The best layer at or below `preferred` that is flowing now, else the lowest flowing one.
    /// A layer above `current` must have flowed steadily for [`LAYER_STABLE`] first, so that a
    /// layer the publisher is only starting (or about to drop) does not stall the subscriber.
    fn pick_layer(&self, now: Instant, preferred: u8, current: Option<u8>) -> Option<u8> {
        let live = |l: usize| self.layers[l].is_some_and(|s| now.duration_since(s.last) < LAYER_TIMEOUT);
        let usable = |l: usize| {
            live(l)
                && (current.is_none_or(|c| l <= usize::from(c))
                    || self.layers[l].is_some_and(|s| now.duration_since(s.since) >= LAYER_STABLE))
        };
        (0..=usize::from(preferred).min(LAYERS - 1))
            .rev()
            .find(|&l| usable(l))
            .or_else(|| (0..LAYERS).find(|&l| live(l)))
            .map(|l| l as u8)
    }
}

/// One forwarded track towards one subscriber.
struct Downtrack {
    sender: RTCRtpSenderId,
    ssrc: u32,
    /// Publisher's payload type → subscriber's payload type.
    payload_types: HashMap<u8, u8>,
    /// Header extension URI → subscriber's id.
    extensions: HashMap<String, u8>,
    /// Payload types we failed to map, so the warning is logged once.
    warned: bool,
    forwarder: Forwarder,
    /// Video only: drop until a keyframe arrives (new subscription, or resuming after a gap).
    needs_keyframe: bool,
    /// The simulcast layer the subscriber wants at most (from the size it shows the video at).
    preferred_layer: u8,
    /// The layer being forwarded now.
    current_layer: Option<u8>,
    /// The highest layer the subscriber's downlink affords now (`None`: not limited).
    bwe_cap: Option<u8>,
    /// Since when a connected subscriber has been waiting for a keyframe, and whether that has
    /// been reported (a wait of seconds means the publisher is not answering the requests).
    waiting_since: Option<Instant>,
    wait_reported: bool,
}

impl Downtrack {
    /// The highest layer to forward: the size the subscriber shows, within its downlink.
    fn wanted_layer(&self) -> u8 {
        self.bwe_cap.map_or(self.preferred_layer, |cap| cap.min(self.preferred_layer))
    }
}

struct Participant {
    pc: RTCPeerConnection,
    permissions: Permissions,
    ufrag: String,
    /// Caucus group; `None` is the plenary.
    group: Option<String>,
    /// The mediator-like participant who may see every group.
    sees_all_groups: bool,
    /// Receives data channel messages from every group.
    reads_all_groups: bool,
    candidate_added: bool,
    /// The publisher's m-line mid → track.
    published: HashMap<String, TrackId>,
    /// rtc's receive track id → our track id.
    receive_tracks: HashMap<String, TrackId>,
    subscriptions: HashMap<TrackId, Downtrack>,
    state: ConnectionState,
    /// Distinguishes this seat from earlier ones of the same identity.
    seat: u64,
    /// The downlink estimate and the layer trials.
    bwe: SubscriberBwe,
    quality: Option<Quality>,
    /// The room data channel, once the participant has opened it.
    data_channel: Option<RTCDataChannelId>,
    data_rate: RateLimit,
}

#[derive(Default)]
struct Room {
    participants: HashMap<ParticipantId, Participant>,
    tracks: HashMap<TrackId, PublishedTrack>,
    active_speaker: Option<ParticipantId>,
    tap: Option<RecordingTap>,
    /// The latest sender report of each publisher stream, handed to a recording when it starts.
    sender_reports: HashMap<u32, TapSenderReport>,
}

/// A copy of a packet a room receives from a publisher, for the recorder.
#[derive(Debug, Clone)]
pub struct TapPacket {
    pub track: TrackId,
    pub publisher: ParticipantId,
    pub kind: Kind,
    pub source: Source,
    /// Simulcast layer (0 = q, 1 = h, 2 = f); 0 for a plain track.
    pub layer: u8,
    /// The codec's MIME type, e.g. `video/VP8`, `audio/opus`.
    pub mime_type: String,
    pub clock_rate: u32,
    pub packet: rtc::rtp::Packet,
    pub received_at: Instant,
}

/// Where a room's packets are copied while it is recorded. The forwarding thread never waits on
/// it: when the recorder falls behind, packets are dropped and counted.
#[derive(Debug, Clone)]
pub struct RecordingTap {
    pub sender: tokio::sync::mpsc::Sender<TapItem>,
}

/// What the recording tap carries: media packets, and the publishers' sender reports.
#[derive(Debug, Clone)]
pub enum TapItem {
    Packet(TapPacket),
    SenderReport(TapSenderReport),
}

/// A publisher's RTCP sender report for one of its streams: the RTP timestamp that corresponds
/// to a wallclock (NTP) instant on the sender's clock, the same clock for all its tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapSenderReport {
    pub ssrc: u32,
    pub ntp_time: u64,
    pub rtp_time: u32,
}

/// Whether media of a publisher in group `from` may reach a subscriber in group `to`.
pub fn caucus_allows(from: Option<&str>, to: Option<&str>, subscriber_sees_all: bool) -> bool {
    subscriber_sees_all || from == to
}

pub struct WorkerCore {
    /// The address put into ICE candidates and used as the local address of every connection.
    announce: SocketAddr,
    limits: Limits,
    rooms: HashMap<RoomId, Room>,
    by_ufrag: HashMap<String, (RoomId, ParticipantId)>,
    by_addr: HashMap<SocketAddr, (RoomId, ParticipantId)>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<(RoomId, MediaEvent)>,
    counters: CoreCounters,
    next_seat: u64,
    next_speaker_check: Option<Instant>,
    next_quality_check: Option<Instant>,
    next_allocation: Option<Instant>,
}

/// How often uplink quality is evaluated (and loss windows restarted).
const QUALITY_INTERVAL: Duration = Duration::from_secs(2);
/// How often each subscriber's videos are fitted to its downlink estimate.
const ALLOCATION_INTERVAL: Duration = Duration::from_millis(500);
/// A simulcast layer nobody has watched for this long is paused at the publisher (a layer that
/// is wanted again is resumed at once).
const PAUSE_UNWATCHED_AFTER: Duration = Duration::from_secs(3);

/// Options when adding a participant.
#[derive(Debug, Clone)]
pub struct ParticipantOptions {
    pub permissions: Permissions,
    pub group: Option<String>,
    pub sees_all_groups: bool,
    /// Receives room data channel messages from every caucus group (the hosts), whatever
    /// media it gets.
    pub reads_all_groups: bool,
}

/// What a participant's ICE credentials are (the server side is ICE-lite).
#[derive(Debug, Clone)]
pub struct IceCredentials {
    pub ufrag: String,
    pub pwd: String,
}

impl WorkerCore {
    pub fn new(announce: SocketAddr, limits: Limits) -> WorkerCore {
        WorkerCore {
            announce,
            limits,
            rooms: HashMap::new(),
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            counters: CoreCounters::default(),
            next_seat: 1,
            next_speaker_check: None,
            next_quality_check: None,
            next_allocation: None,
        }
    }

    pub fn counters(&self) -> CoreCounters {
        self.counters
    }

    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    pub fn participant_count(&self) -> usize {
        self.rooms.values().map(|r| r.participants.len()).sum()
    }

    pub fn track_count(&self) -> usize {
        self.rooms.values().map(|r| r.tracks.len()).sum()
    }

    pub fn create_room(&mut self, room: RoomId) -> Result<(), MediaError> {
        if self.rooms.contains_key(&room) {
            return Err(MediaError::RoomExists(room));
        }
        if self.rooms.len() >= self.limits.rooms_per_worker {
            return Err(MediaError::TooManyRooms(self.limits.rooms_per_worker));
        }
        self.rooms.insert(room, Room::default());
        Ok(())
    }

    pub fn close_room(&mut self, room: &RoomId) {
        if let Some(r) = self.rooms.remove(room) {
            for (_, mut p) in r.participants {
                self.by_ufrag.remove(&p.ufrag);
                let _ = p.pc.close();
            }
            self.by_addr.retain(|_, (rid, _)| rid != room);
        }
    }

    pub fn add_participant(
        &mut self,
        now: Instant,
        room_id: &RoomId,
        pid: ParticipantId,
        options: ParticipantOptions,
    ) -> Result<IceCredentials, MediaError> {
        let room = self.rooms.get_mut(room_id).ok_or_else(|| MediaError::NoSuchRoom(room_id.clone()))?;
        if room.participants.contains_key(&pid) {
            return Err(MediaError::DuplicateParticipant(pid));
        }
        if room.participants.len() >= self.limits.participants_per_room {
            return Err(MediaError::RoomFull(self.limits.participants_per_room));
        }
        let credentials = loop {
            let c = IceCredentials { ufrag: random_token(16), pwd: random_token(32) };
            if !self.by_ufrag.contains_key(&c.ufrag) {
                break c;
            }
        };
        let downlink = std::sync::Arc::new(DownlinkEstimate::default());
        let pc = new_peer_connection(now, &credentials, downlink.clone()).map_err(|e| MediaError::BadOffer(e.to_string()))?;
        self.by_ufrag.insert(credentials.ufrag.clone(), (room_id.clone(), pid.clone()));
        let seat = self.next_seat;
        self.next_seat += 1;
        room.participants.insert(
            pid,
            Participant {
                pc,
                permissions: options.permissions,
                ufrag: credentials.ufrag.clone(),
                group: options.group,
                sees_all_groups: options.sees_all_groups,
                reads_all_groups: options.reads_all_groups,
                candidate_added: false,
                published: HashMap::new(),
                receive_tracks: HashMap::new(),
                subscriptions: HashMap::new(),
                state: ConnectionState::Connecting,
                seat,
                bwe: SubscriberBwe::new(downlink),
                quality: None,
                data_channel: None,
                data_rate: RateLimit::new(self.limits.data_messages_per_second),
            },
        );
        Ok(credentials)
    }

    pub fn remove_participant(&mut self, room_id: &RoomId, pid: &ParticipantId) -> Result<(), MediaError> {
        let room = self.rooms.get_mut(room_id).ok_or_else(|| MediaError::NoSuchRoom(room_id.clone()))?;
        let mut p = room.participants.remove(pid).ok_or_else(|| MediaError::NoSuchParticipant(pid.clone()))?;
        self.by_ufrag.remove(&p.ufrag);
        self.by_addr.retain(|_, (r, q)| !(r == room_id && q == pid));
        let _ = p.pc.close();
        while let Some(t) = p.pc.poll_write() {
            self.transmits.push_back(Transmit { to: t.transport.peer_addr, bytes: t.message });
        }
        let gone: Vec<TrackId> = p.published.into_values().collect();
        for track in gone {
            self.unpublish(room_id, &track);
        }
        Ok(())
    }

    /// Drops a track from the room and from every subscriber.
    fn unpublish(&mut self, room_id: &RoomId, track: &TrackId) {
        let Some(room) = self.rooms.get_mut(room_id) else { return };
        let Some(gone) = room.tracks.remove(track) else { return };
        room.sender_reports.retain(|ssrc, _| !gone.layer_of_ssrc.contains_key(ssrc));
        for sub in room.participants.values_mut() {
            if let Some(d) = sub.subscriptions.remove(track) {
                // The browser learns of it at its next offer; until then the m-line is silent.
                let _ = sub.pc.remove_track(d.sender);
            }
        }
        self.events.push_back((room_id.clone(), MediaEvent::TrackUnpublished(track.clone())));
    }

    /// Moves a participant into a caucus group (`None`: back to the plenary). Forwarding
    /// across groups stops at once; the subscriber's m-lines stay and fall silent.
    pub fn set_group(&mut self, room_id: &RoomId, pid: &ParticipantId, group: Option<String>) -> Result<(), MediaError> {
        let room = self.rooms.get_mut(room_id).ok_or_else(|| MediaError::NoSuchRoom(room_id.clone()))?;
        let p = room.participants.get_mut(pid).ok_or_else(|| MediaError::NoSuchParticipant(pid.clone()))?;
        p.group = group;
        Ok(())
    }

    /// Applies a client's offer (first or renegotiation) and returns the answer SDP.
    pub fn apply_offer(
        &mut self,
        now: Instant,
        room_id: &RoomId,
        pid: &ParticipantId,
        offer: OfferRequest,
    ) -> Result<String, MediaError> {
        let announce = self.announce;
        let limits = self.limits.clone();
        let room = self.rooms.get_mut(room_id).ok_or_else(|| MediaError::NoSuchRoom(room_id.clone()))?;
        let permissions = room
            .participants
            .get(pid)
            .map(|p| p.permissions.clone())
            .ok_or_else(|| MediaError::NoSuchParticipant(pid.clone()))?;
        if offer.publish.len() > limits.tracks_per_participant {
            return Err(MediaError::NotPermitted(format!(
                "at most {} published tracks per participant",
                limits.tracks_per_participant
            )));
        }
        for intent in &offer.publish {
            if !permissions.publish.contains(&intent.source) {
                return Err(MediaError::NotPermitted(format!("publishing {:?}", intent.source)));
            }
        }
        if !offer.subscribe.is_empty() && !permissions.subscribe {
            return Err(MediaError::NotPermitted("subscribing".into()));
        }
        let sections = crate::sdp::sections(&offer.sdp);
        for m in offer.publish.iter().map(|i| &i.mid).chain(offer.subscribe.iter().map(|i| &i.mid)) {
            if !sections.iter().any(|s| &s.mid == m) {
                return Err(MediaError::BadOffer(format!("mid {m} is not in the offer")));
            }
        }
        let mut new_subscriptions: Vec<&SubscribeIntent> = Vec::new();
        for intent in &offer.subscribe {
            let already = room.participants.get(pid).is_some_and(|p| p.subscriptions.contains_key(&intent.track));
            if !already {
                // A track unpublished while this offer was on its way: its m-line gets a
                // placeholder below (answered inactive) and the client drops it at its next offer.
                let Some(track) = room.tracks.get(&intent.track) else {
                    tracing::debug!(track = %intent.track, "subscription to a track that is gone");
                    continue;
                };
                if &track.info.publisher == pid {
                    return Err(MediaError::NotPermitted("subscribing to one's own track".into()));
                }
                new_subscriptions.push(intent);
            }
        }
        // rtc binds each new receive-only m-line to the first unbound sender of its kind, in
        // m-line order. So every new one gets a sender here, in that order: the subscription's,
        // or a placeholder (removed before answering) for an m-line whose track is gone, which
        // would otherwise take the sender meant for the next m-line.
        let mut planned: Vec<(TrackId, usize, u32, String)> = Vec::new();
        let mut placeholders: Vec<usize> = Vec::new();
        for section in &sections {
            let subscription = new_subscriptions.iter().find(|i| i.mid == section.mid);
            let p = room.participants.get_mut(pid).ok_or_else(|| MediaError::NoSuchParticipant(pid.clone()))?;
            let bound = transceiver_with_mid(&mut p.pc, &section.mid).is_some();
            let Some(intent) = subscription else {
                if bound || section.direction != "recvonly" {
                    continue;
                }
                let kind = match section.media.as_str() {
                    "audio" => Kind::Audio,
                    "video" => Kind::Video,
                    _ => continue,
                };
                let idx = p
                    .pc
                    .add_transceiver_from_track(placeholder_track(kind), Some(sendonly(String::new())))
                    .map_err(|e| MediaError::BadOffer(e.to_string()))?;
                placeholders.push(idx);
                continue;
            };
            if bound || section.direction != "recvonly" {
                return Err(MediaError::BadOffer(format!(
                    "subscription m-line {} must be a new recvonly m-line (is {}{})",
                    section.mid,
                    section.direction,
                    if bound { ", already in use" } else { "" }
                )));
            }
            let (codec, kind, publisher) = {
                let track = &room.tracks[&intent.track];
                let publisher = room
                    .participants
                    .get_mut(&track.info.publisher)
                    .ok_or_else(|| MediaError::UnknownTrack(intent.track.clone()))?;
                let codec = publisher
                    .pc
                    .rtp_receiver(track.receiver)
                    .and_then(|mut r| r.get_parameters().rtp_parameters.codecs.first().map(|c| c.rtp_codec.clone()))
                    .ok_or_else(|| MediaError::UnknownTrack(intent.track.clone()))?;
                (codec, track.info.kind, track.info.publisher.clone())
            };
            let ssrc = rand::random::<u32>();
            let sender_track = MediaStreamTrack::new(
                publisher.0.clone(),
                intent.track.0.clone(),
                intent.track.0.clone(),
                rtc_kind(kind),
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
                    codec,
                    ..Default::default()
                }],
            );
            let p = room.participants.get_mut(pid).ok_or_else(|| MediaError::NoSuchParticipant(pid.clone()))?;
            let idx = p
                .pc
                .add_transceiver_from_track(sender_track, Some(sendonly(publisher.0.clone())))
                .map_err(|e| MediaError::BadOffer(e.to_string()))?;
            planned.push((intent.track.clone(), idx, ssrc, intent.mid.clone()));
        }
        if let Some(unplanned) = new_subscriptions.iter().find(|i| !planned.iter().any(|(t, ..)| t == &i.track)) {
            return Err(MediaError::BadOffer(format!("subscription m-line {} is not in the offer", unplanned.mid)));
        }

        let p = room.participants.get_mut(pid).ok_or_else(|| MediaError::NoSuchParticipant(pid.clone()))?;
        let description = RTCSessionDescription::offer(offer.sdp.clone()).map_err(|e| MediaError::BadOffer(e.to_string()))?;
        p.pc.set_remote_description(now, description).map_err(|e| MediaError::BadOffer(e.to_string()))?;
        for idx in placeholders {
            let _ = p.pc.remove_track(RTCRtpSenderId::from(idx));
        }
        if !p.candidate_added {
            let candidate = CandidateHostConfig {
                base_config: CandidateConfig {
                    network: "udp".to_owned(),
                    address: announce.ip().to_string(),
                    port: announce.port(),
                    component: 1,
                    ..Default::default()
                },
                ..Default::default()
            }
            .new_candidate_host()
            .map_err(|e| MediaError::BadOffer(e.to_string()))?;
            let init = RTCIceCandidate::from(&candidate).to_json().map_err(|e| MediaError::BadOffer(e.to_string()))?;
            p.pc.add_local_candidate(init).map_err(|e| MediaError::BadOffer(e.to_string()))?;
            p.candidate_added = true;
        }
        let answer = p.pc.create_answer(None).map_err(|e| MediaError::BadOffer(e.to_string()))?;
        p.pc.set_local_description(now, answer).map_err(|e| MediaError::BadOffer(e.to_string()))?;
        let sdp = p
            .pc
            .local_description()
            .map(|d| crate::sdp::candidates_in_every_section(&d.sdp))
            .ok_or_else(|| MediaError::BadOffer("no local description".into()))?;
        // An ICE restart offer makes the answer carry new local credentials: route by them.
        if let Some(ufrag) = sdp.lines().find_map(|l| l.trim_end().strip_prefix("a=ice-ufrag:")).map(str::to_string)
            && ufrag != p.ufrag
        {
            let old = std::mem::replace(&mut p.ufrag, ufrag.clone());
            self.by_ufrag.remove(&old);
            self.by_ufrag.insert(ufrag, (room_id.clone(), pid.clone()));
        }

        // Bind the new downtracks and learn their payload-type and extension maps.
        for (track_id, idx, ssrc, mid) in planned {
            let bound_mid = p.pc.rtp_transceiver(idx).and_then(|t| t.mid().clone());
            if bound_mid.as_deref() != Some(mid.as_str()) {
                return Err(MediaError::BadOffer(format!(
                    "subscription m-line {mid} did not bind (got {bound_mid:?}); is it recvonly and of the track's kind?"
                )));
            }
            let sender = RTCRtpSenderId::from(idx);
            let extensions = match p.pc.rtp_sender(sender) {
                Some(mut s) => {
                    s.get_parameters().rtp_parameters.header_extensions.iter().map(|h| (h.uri.clone(), h.id as u8)).collect()
                }
                None => continue,
            };
            p.subscriptions.insert(
                track_id.clone(),
                Downtrack {
                    sender,
                    ssrc,
                    payload_types: HashMap::new(),
                    extensions,
                    warned: false,
                    forwarder: Forwarder::new(rand::random::<u16>()),
                    needs_keyframe: true,
                    preferred_layer: (LAYERS - 1) as u8,
                    current_layer: None,
                    bwe_cap: None,
                    waiting_since: None,
                    wait_reported: false,
                },
            );
        }
        // Subscriptions the client dropped from its offer.
        let wanted: Vec<&TrackId> = offer.subscribe.iter().map(|i| &i.track).collect();
        let dropped: Vec<TrackId> = p.subscriptions.keys().filter(|t| !wanted.contains(t)).cloned().collect();
        for t in dropped {
            if let Some(d) = p.subscriptions.remove(&t) {
                let _ = p.pc.remove_track(d.sender);
            }
        }

        // Published m-lines: new ones become room tracks, missing ones are unpublished.
        let mut new_tracks = Vec::new();
        for intent in &offer.publish {
            if p.published.contains_key(&intent.mid) {
                continue;
            }
            let idx = transceiver_with_mid(&mut p.pc, &intent.mid);
            let Some(idx) = idx else {
                return Err(MediaError::BadOffer(format!("published m-line {} not found", intent.mid)));
            };
            let receiver = RTCRtpReceiverId::from(idx);
            let (extensions, codecs, mime_types) = p
                .pc
                .rtp_receiver(receiver)
                .map(|mut r| {
                    let params = &r.get_parameters().rtp_parameters;
                    (
                        params.header_extensions.iter().map(|h| (h.id as u8, h.uri.clone())).collect(),
                        params.codecs.iter().map(|c| (c.payload_type, VideoCodec::from_mime(&c.rtp_codec.mime_type))).collect(),
                        params.codecs.iter().map(|c| (c.payload_type, (c.rtp_codec.mime_type.clone(), c.rtp_codec.clock_rate))).collect(),
                    )
                })
                .unwrap_or_default();
            let track_id = TrackId::new(pid, p.seat, &intent.mid);
            p.published.insert(intent.mid.clone(), track_id.clone());
            new_tracks.push(PublishedTrack {
                info: TrackInfo { id: track_id, publisher: pid.clone(), kind: intent.source.kind(), source: intent.source },
                receiver,
                media_ssrc: None,
                extensions,
                codecs,
                mime_types,
                last_keyframe_request: [None; LAYERS],
                tap_keyframe_seen: false,
                layer_of_ssrc: HashMap::new(),
                layers: [None; LAYERS],
                rates: [RateMeter::default(); LAYERS],
                sending: [true; LAYERS],
                unwatched_since: [None; LAYERS],
                activity: 0.0,
                activity_at: None,
                spoke_at: None,
                loss: HashMap::new(),
            });
        }
        let unpublished: Vec<TrackId> = p
            .published
            .iter()
            .filter(|(mid, _)| !offer.publish.iter().any(|i| &i.mid == *mid))
            .map(|(_, t)| t.clone())
            .collect();
        p.published.retain(|mid, _| offer.publish.iter().any(|i| &i.mid == mid));
        for t in new_tracks {
            self.events.push_back((room_id.clone(), MediaEvent::TrackPublished(t.info.clone())));
            room.tracks.insert(t.info.id.clone(), t);
        }
        self.map_payload_types(room_id, pid);
        for t in unpublished {
            self.unpublish(room_id, &t);
        }
        self.drain(now, room_id, pid);
        Ok(sdp)
    }

    /// Fills each of `pid`'s downtracks' payload-type map from its publisher's negotiated codecs.
    fn map_payload_types(&mut self, room_id: &RoomId, pid: &ParticipantId) {
        let Some(room) = self.rooms.get_mut(room_id) else { return };
        let tracks: Vec<(TrackId, ParticipantId, RTCRtpReceiverId)> = room
            .participants
            .get(pid)
            .map(|p| {
                p.subscriptions
                    .keys()
                    .filter_map(|t| room.tracks.get(t).map(|pt| (t.clone(), pt.info.publisher.clone(), pt.receiver)))
                    .collect()
            })
            .unwrap_or_default();
        for (track, publisher, receiver) in tracks {
            let publisher_codecs: Vec<(RTCRtpCodec, u8)> = room
                .participants
                .get_mut(&publisher)
                .and_then(|p| {
                    p.pc.rtp_receiver(receiver).map(|mut r| {
                        r.get_parameters().rtp_parameters.codecs.iter().map(|c| (c.rtp_codec.clone(), c.payload_type)).collect()
                    })
                })
                .unwrap_or_default();
            let Some(sub) = room.participants.get_mut(pid) else { continue };
            let Some(down) = sub.subscriptions.get_mut(&track) else { continue };
            let sender_codecs: Vec<(RTCRtpCodec, u8)> = sub
                .pc
                .rtp_sender(down.sender)
                .map(|mut s| s.get_parameters().rtp_parameters.codecs.iter().map(|c| (c.rtp_codec.clone(), c.payload_type)).collect())
                .unwrap_or_default();
            down.payload_types = map_codecs(&publisher_codecs, &sender_codecs);
        }
    }

    /// Asks a track's publisher for a keyframe of the layer `subscriber` gets or is switching
    /// to (a keyframe of another simulcast layer would not help it).
    fn request_keyframe_for(&mut self, now: Instant, room_id: &RoomId, subscriber: &ParticipantId, track_id: &TrackId) {
        let layer = self.rooms.get(room_id).and_then(|room| {
            let down = room.participants.get(subscriber)?.subscriptions.get(track_id)?;
            room.tracks.get(track_id)?.pick_layer(now, down.wanted_layer(), down.current_layer)
        });
        self.request_keyframe_on(now, room_id, track_id, layer);
    }

    /// Asks a track's publisher for a keyframe on one simulcast layer (`None`: the stream seen
    /// first), at most once per [`KEYFRAME_REQUEST_INTERVAL`] per layer. The limit is per layer
    /// because each is its own encoding: one rate for the track would make a subscriber on
    /// another layer wait out the interval (a second, measured at join).
    fn request_keyframe_on(&mut self, now: Instant, room_id: &RoomId, track_id: &TrackId, layer: Option<u8>) {
        let Some(room) = self.rooms.get_mut(room_id) else { return };
        let Some(track) = room.tracks.get_mut(track_id) else { return };
        if track.info.kind != Kind::Video {
            return;
        }
        let layer_ssrc = layer.and_then(|l| track.layers.get(usize::from(l)).copied().flatten()).map(|s| s.ssrc);
        let Some(media_ssrc) = layer_ssrc.or(track.media_ssrc) else { return };
        // Every SSRC the track has sent on is in `layer_of_ssrc` (the requested layer's too).
        let slot = track.layer_of_ssrc.get(&media_ssrc).map_or(0, |&l| usize::from(l)).min(LAYERS - 1);
        if track.last_keyframe_request[slot].is_some_and(|t| now.duration_since(t) < KEYFRAME_REQUEST_INTERVAL) {
            return;
        }
        track.last_keyframe_request[slot] = Some(now);
        tracing::debug!(track = %track_id, media_ssrc, "keyframe request");
        let receiver = track.receiver;
        let publisher = track.info.publisher.clone();
        let Some(p) = room.participants.get_mut(&publisher) else { return };
        if let Some(mut r) = p.pc.rtp_receiver(receiver) {
            let _ = r.write_rtcp(now, vec![Box::new(PictureLossIndication { sender_ssrc: 0, media_ssrc })]);
        }
        flush(&mut p.pc, &mut self.transmits);
    }

    /// One datagram from the socket.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.counters.packets_in += 1;
        // The STUN USERNAME is read once: it routes a first contact and (re)learns the address
        // after a NAT rebinding or an ICE restart.
        let by_ufrag = stun::local_ufrag(data).and_then(|u| self.by_ufrag.get(u)).cloned();
        let key = self.by_addr.get(&from).cloned().or_else(|| by_ufrag.clone());
        let Some((room_id, pid)) = key else {
            self.counters.datagrams_unrouted += 1;
            return;
        };
        if let Some(k) = by_ufrag {
            self.by_addr.insert(from, k);
        }
        let Some(p) = self.rooms.get_mut(&room_id).and_then(|r| r.participants.get_mut(&pid)) else { return };
        let msg = TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: self.announce,
                peer_addr: from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: BytesMut::from(data),
        };
        if data.len() > 8 && (200..=206).contains(&data[1]) {
            tracing::trace!(participant = %pid, pt = data[1], len = data.len(), "srtcp in");
        }
        if let Err(e) = p.pc.handle_read(msg) {
            self.counters.stack_errors += 1;
            tracing::debug!(participant = %pid, error = %e, "dropped an unreadable datagram");
        }
        self.drain(now, &room_id, &pid);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_speaker_check.is_none_or(|t| t <= now) {
            self.next_speaker_check = Some(now + SPEAKER_INTERVAL);
            self.evaluate_speakers(now);
        }
        if self.next_quality_check.is_none_or(|t| t <= now) {
            self.next_quality_check = Some(now + QUALITY_INTERVAL);
            self.evaluate_quality();
        }
        if self.next_allocation.is_none_or(|t| t <= now) {
            self.next_allocation = Some(now + ALLOCATION_INTERVAL);
            self.allocate_downlinks(now);
        }
        let mut due = Vec::new();
        for (rid, room) in &mut self.rooms {
            for (pid, p) in &mut room.participants {
                if p.pc.poll_timeout().is_some_and(|t| t <= now) {
                    due.push((rid.clone(), pid.clone()));
                }
            }
        }
        for (rid, pid) in due {
            if let Some(p) = self.rooms.get_mut(&rid).and_then(|r| r.participants.get_mut(&pid)) {
                if let Err(e) = p.pc.handle_timeout(now) {
                    tracing::debug!(participant = %pid, error = %e, "timeout handling failed");
                }
                self.drain(now, &rid, &pid);
            }
        }
    }

    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let pcs = self.rooms.values_mut().flat_map(|r| r.participants.values_mut()).filter_map(|p| p.pc.poll_timeout()).min();
        let timers = [self.next_speaker_check, self.next_quality_check, self.next_allocation];
        let own = timers.into_iter().flatten().filter(|_| !self.rooms.is_empty()).min();
        match (pcs, own) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fits each subscriber's videos to its downlink estimate: sets every video downtrack's layer
    /// cap (see [`crate::bwe`]).
    fn allocate_downlinks(&mut self, now: Instant) {
        for (room_id, room) in self.rooms.iter_mut() {
            let tracks = &room.tracks;
            for sub in room.participants.values_mut() {
                let mut video_ids: Vec<&TrackId> =
                    sub.subscriptions.keys().filter(|t| tracks.get(*t).is_some_and(|t| t.info.kind == Kind::Video)).collect();
                if video_ids.is_empty() {
                    continue;
                }
                video_ids.sort();
                let other_bps: u64 = sub
                    .subscriptions
                    .keys()
                    .filter_map(|t| tracks.get(t))
                    .filter(|t| t.info.kind == Kind::Audio)
                    .filter_map(|t| t.rates[0].bps(now))
                    .sum();
                let demands: Vec<VideoDemand> = video_ids
                    .iter()
                    .filter_map(|id| {
                        let track = tracks.get(*id)?;
                        let down = sub.subscriptions.get(*id)?;
                        // Only layers the publisher sends can be asked for.
                        let top = track.layers.iter().rposition(Option::is_some).unwrap_or(0) as u8;
                        Some(VideoDemand { preferred: down.preferred_layer.min(top), rates: layer_rates(now, &track.rates) })
                    })
                    .collect();
                if demands.len() != video_ids.len() {
                    continue;
                }
                let caps = sub.bwe.caps(now, other_bps, &demands);
                let ids: Vec<TrackId> = video_ids.into_iter().cloned().collect();
                for (i, id) in ids.iter().enumerate() {
                    if let Some(down) = sub.subscriptions.get_mut(id) {
                        down.bwe_cap = caps.as_ref().and_then(|c| c.get(i).copied());
                    }
                }
            }
            for (publisher, track, source, layers) in pause_unwatched_layers(now, room) {
                self.events.push_back((room_id.clone(), MediaEvent::PublishLayers { participant: publisher, track, source, layers }));
            }
        }
    }

    /// Each publishing participant's uplink quality over the last interval, as events when it changes.
    fn evaluate_quality(&mut self) {
        for (room_id, room) in &mut self.rooms {
            let mut per_publisher: HashMap<ParticipantId, (u64, u64)> = HashMap::new();
            for t in room.tracks.values_mut() {
                let e = per_publisher.entry(t.info.publisher.clone()).or_default();
                for w in t.loss.values_mut() {
                    e.0 += w.expected;
                    e.1 += w.received;
                    *w = LossWindow { highest: w.highest, ..LossWindow::default() };
                }
            }
            for (pid, (expected, received)) in per_publisher {
                if expected < 20 {
                    continue;
                }
                let loss = expected.saturating_sub(received) as f64 / expected as f64;
                let quality = Quality::from_loss(loss);
                if let Some(p) = room.participants.get_mut(&pid)
                    && p.quality != Some(quality)
                {
                    p.quality = Some(quality);
                    self.events.push_back((room_id.clone(), MediaEvent::ConnectionQuality { participant: pid, quality }));
                }
            }
        }
    }

    /// The loudest participant of each room (audio level, smoothed), as events when it changes.
    fn evaluate_speakers(&mut self, now: Instant) {
        for (room_id, room) in &mut self.rooms {
            // A speaker stays the speaker through the short pauses of speech.
            let loudest = room
                .tracks
                .values()
                .filter(|t| t.info.kind == Kind::Audio)
                .filter(|t| t.spoke_at.is_some_and(|at| now.duration_since(at) < SPEAKER_HOLD))
                .max_by(|a, b| {
                    let a_current = room.active_speaker.as_ref() == Some(&a.info.publisher);
                    let b_current = room.active_speaker.as_ref() == Some(&b.info.publisher);
                    // Hysteresis: another speaker must be clearly louder to take over.
                    let bonus = |current: bool| if current { 6.0 } else { 0.0 };
                    (a.activity + bonus(a_current)).total_cmp(&(b.activity + bonus(b_current)))
                })
                .map(|t| t.info.publisher.clone());
            if loudest != room.active_speaker {
                room.active_speaker = loudest.clone();
                self.events.push_back((room_id.clone(), MediaEvent::ActiveSpeaker(loudest)));
            }
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<(RoomId, MediaEvent)> {
        self.events.pop_front()
    }

    /// Takes everything a participant's connection has produced: datagrams, events, media.
    fn drain(&mut self, now: Instant, room_id: &RoomId, pid: &ParticipantId) {
        let mut media = Vec::new();
        let mut keyframes_for_subscriber = false;
        {
            let Some(room) = self.rooms.get_mut(room_id) else { return };
            let Some(p) = room.participants.get_mut(pid) else { return };
            flush(&mut p.pc, &mut self.transmits);
            while let Some(event) = p.pc.poll_event() {
                match event {
                    RTCPeerConnectionEvent::OnDataChannel(RTCDataChannelEvent::OnOpen(id)) => {
                        let label = p.pc.data_channel(id).map(|dc| dc.label().to_string());
                        if label.as_deref() == Some(crate::data::LABEL) && p.data_channel.is_none() {
                            p.data_channel = Some(id);
                        }
                    }
                    RTCPeerConnectionEvent::OnDataChannel(RTCDataChannelEvent::OnClose(id)) if p.data_channel == Some(id) => {
                        p.data_channel = None;
                    }
                    RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                        let index = p.pc.get_transceivers().find(|&i| RTCRtpReceiverId::from(i) == init.receiver_id);
                        let mid = index.and_then(|i| p.pc.rtp_transceiver(i).and_then(|t| t.mid().clone()));
                        if let Some(track) = mid.and_then(|m| p.published.get(&m)) {
                            p.receive_tracks.insert(init.track_id.clone(), track.clone());
                        }
                    }
                    RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                        let mapped = match state {
                            RTCPeerConnectionState::Connected => Some(ConnectionState::Connected),
                            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Disconnected => {
                                Some(ConnectionState::Failed)
                            }
                            _ => None,
                        };
                        if let Some(s) = mapped
                            && s != p.state
                        {
                            p.state = s;
                            keyframes_for_subscriber = s == ConnectionState::Connected;
                            self.events.push_back((
                                room_id.clone(),
                                MediaEvent::ConnectionState { participant: pid.clone(), state: s },
                            ));
                        }
                    }
                    _ => {}
                }
            }
            while let Some(m) = p.pc.poll_read() {
                media.push(m.message);
            }
        }
        if keyframes_for_subscriber {
            let subs: Vec<TrackId> = self
                .rooms
                .get(room_id)
                .and_then(|r| r.participants.get(pid))
                .map(|p| p.subscriptions.keys().cloned().collect())
                .unwrap_or_default();
            for t in subs {
                self.request_keyframe_for(now, room_id, pid, &t);
            }
        }
        for message in media {
            match message {
                RTCMessage::RtpPacket(rtc_track, packet) => self.forward(now, room_id, pid, &rtc_track, packet),
                RTCMessage::DataChannelMessage(channel, message) => {
                    let ours = self.rooms.get(room_id).and_then(|r| r.participants.get(pid)).is_some_and(|p| p.data_channel == Some(channel));
                    if ours {
                        self.relay_data(now, room_id, pid, message);
                    }
                }
                RTCMessage::RtcpPacket(_, packets) if packets.iter().any(|p| p.as_any().is::<SenderReport>()) => {
                    let Some(room) = self.rooms.get_mut(room_id) else { continue };
                    for p in &packets {
                        if let Some(sr) = p.as_any().downcast_ref::<SenderReport>() {
                            let report = TapSenderReport { ssrc: sr.ssrc, ntp_time: sr.ntp_time, rtp_time: sr.rtp_time };
                            // Kept for the streams of published tracks only (and dropped with
                            // them), so that the map does not grow with every SSRC ever seen.
                            let published = room
                                .tracks
                                .values()
                                .any(|t| &t.info.publisher == pid && t.layer_of_ssrc.contains_key(&sr.ssrc));
                            if published {
                                room.sender_reports.insert(sr.ssrc, report);
                            }
                            if let Some(tap) = &room.tap
                                && tap.sender.try_send(TapItem::SenderReport(report)).is_err()
                            {
                                self.counters.tap_dropped += 1;
                            }
                        }
                    }
                }
                RTCMessage::RtcpPacket(_, packets) => {
                    // Feedback from a subscriber. rtc attributes a compound packet to the track of
                    // its first report, so find the downtrack by the SSRC each request names.
                    tracing::trace!(participant = %pid, ?packets, "rtcp from subscriber");
                    let mut wanted: Vec<u32> = Vec::new();
                    for p in &packets {
                        if let Some(pli) = p.as_any().downcast_ref::<PictureLossIndication>() {
                            wanted.push(pli.media_ssrc);
                        } else if let Some(fir) = p.as_any().downcast_ref::<FullIntraRequest>() {
                            wanted.extend(fir.fir.iter().map(|e| e.ssrc));
                        }
                    }
                    let tracks: Vec<TrackId> = self
                        .rooms
                        .get(room_id)
                        .and_then(|r| r.participants.get(pid))
                        .map(|p| {
                            p.subscriptions.iter().filter(|(_, d)| wanted.contains(&d.ssrc)).map(|(t, _)| t.clone()).collect()
                        })
                        .unwrap_or_default();
                    for t in tracks {
                        self.request_keyframe_for(now, room_id, pid, &t);
                    }
                }
                _ => {}
            }
        }
    }

    /// Relays a message from `pid`'s data channel to the participants it may reach, or sends
    /// the sender the reason it may not.
    fn relay_data(&mut self, now: Instant, room_id: &RoomId, pid: &ParticipantId, message: RTCDataChannelMessage) {
        let limits = &self.limits;
        let Some(room) = self.rooms.get_mut(room_id) else { return };
        let checked = match room.participants.get_mut(pid) {
            None => return,
            Some(sender) if !sender.permissions.data || sender.permissions.hidden => Err(DataError::NotPermitted),
            Some(_) if message.data.len() > limits.data_message_max_bytes => {
                Err(DataError::TooLarge { size: message.data.len(), max: limits.data_message_max_bytes })
            }
            Some(sender) => {
                if sender.data_rate.take(now) {
                    Ok(sender.group.clone())
                } else {
                    Err(DataError::RateLimited(limits.data_messages_per_second))
                }
            }
        };
        let routed = checked.and_then(|group| {
            let out = crate::data::parse(&message.data, message.is_string)?;
            // Who the sender can reach: others with an open channel, within its caucus group
            // (those who see or read all groups hear everyone). Hidden observers listen but
            // cannot be named, so that naming one tells nothing.
            let reachable = |id: &ParticipantId, r: &Participant| {
                id != pid
                    && r.data_channel.is_some()
                    && caucus_allows(group.as_deref(), r.group.as_deref(), r.sees_all_groups || r.reads_all_groups)
            };
            let recipients: Vec<ParticipantId> = if out.to.is_empty() {
                room.participants.iter().filter(|(id, r)| reachable(id, r)).map(|(id, _)| id.clone()).collect()
            } else {
                let mut named = Vec::with_capacity(out.to.len());
                for name in &out.to {
                    let id = ParticipantId::from(*name);
                    match room.participants.get(&id) {
                        Some(r) if reachable(&id, r) && !r.permissions.hidden => {
                            if !named.contains(&id) {
                                named.push(id)
                            }
                        }
                        _ => return Err(DataError::UnknownRecipient(name.to_string())),
                    }
                }
                named
            };
            let frame = crate::data::relayed(&pid.0, out.text, !out.to.is_empty(), out.payload)
                .ok_or(DataError::Malformed("sender identity too long"))?;
            Ok((recipients, frame))
        });
        match routed {
            Ok((recipients, frame)) => {
                for id in recipients {
                    let Some(r) = room.participants.get_mut(&id) else { continue };
                    if send_data(now, r, frame.clone(), &mut self.transmits) {
                        self.counters.data_relayed += 1;
                    } else {
                        self.counters.data_dropped += 1;
                    }
                }
            }
            Err(error) => {
                tracing::debug!(participant = %pid, %error, "data channel message refused");
                self.counters.data_refused += 1;
                if let Some(sender) = room.participants.get_mut(pid) {
                    send_data(now, sender, crate::data::refusal(&error), &mut self.transmits);
                }
            }
        }
    }

    /// Sends one publisher packet to every subscriber allowed to receive it.
    fn forward(&mut self, now: Instant, room_id: &RoomId, pid: &ParticipantId, rtc_track: &str, packet: rtc::rtp::Packet) {
        let Some(room) = self.rooms.get_mut(room_id) else { return };
        let Some(publisher) = room.participants.get_mut(pid) else { return };
        let Some(track_id) = publisher.receive_tracks.get(rtc_track).cloned() else {
            tracing::trace!(participant = %pid, rtc_track, "packet on an unmapped track");
            return;
        };
        let from_group = publisher.group.clone();
        let Some(track) = room.tracks.get_mut(&track_id) else { return };
        // Padding-only packets (bandwidth probes) carry no media: they neither keep a layer
        // alive nor go to subscribers, who have their own probing.
        if packet.payload.is_empty() {
            return;
        }
        let ssrc = packet.header.ssrc;
        track.loss.entry(ssrc).or_default().on_packet(packet.header.sequence_number);
        if track.media_ssrc.is_none() {
            track.media_ssrc = Some(ssrc);
        }
        let layer = match track.layer_of_ssrc.get(&ssrc) {
            Some(&l) => l,
            None => {
                let rid = publisher.pc.rtp_receiver(track.receiver).and_then(|r| r.track().rid(ssrc).map(|r| r.to_string()));
                let l = rid.as_deref().map(layer_of_rid).unwrap_or(0);
                track.layer_of_ssrc.insert(ssrc, l);
                l
            }
        };
        let slot = &mut track.layers[usize::from(layer)];
        let since = match slot {
            Some(s) if s.ssrc == ssrc && now.duration_since(s.last) < LAYER_TIMEOUT => s.since,
            _ => now,
        };
        *slot = Some(LayerSeen { ssrc, last: now, since });
        track.rates[usize::from(layer)].add(now, packet.payload.len() + RTP_OVERHEAD);
        if track.info.kind == Kind::Audio
            && let Some(level) = packet
                .header
                .extensions
                .iter()
                .find(|e| track.extensions.get(&e.id).is_some_and(|uri| uri == AUDIO_LEVEL_URI))
                .and_then(|e| e.payload.first())
        {
            let activity = f32::from(127 - (level & 0x7f).min(127));
            track.activity = 0.8 * track.activity + 0.2 * activity;
            track.activity_at = Some(now);
            if track.activity >= SPEAKING_THRESHOLD {
                track.spoke_at = Some(now);
            }
        }
        if let Some(tap) = &room.tap {
            let (mime_type, clock_rate) = track.mime_types.get(&packet.header.payload_type).cloned().unwrap_or_default();
            let copy = TapPacket {
                track: track_id.clone(),
                publisher: pid.clone(),
                kind: track.info.kind,
                source: track.info.source,
                layer,
                mime_type,
                clock_rate,
                packet: packet.clone(),
                received_at: now,
            };
            if tap.sender.try_send(TapItem::Packet(copy)).is_err() {
                self.counters.tap_dropped += 1;
            }
        }
        let is_video = track.info.kind == Kind::Video;
        let codec = track.codecs.get(&packet.header.payload_type).copied().unwrap_or(VideoCodec::Other);
        let keyframe = is_video && is_keyframe(codec, &packet.payload);
        let track_extensions = &track.extensions;
        let mut want_keyframe: Option<u8> = None;
        if is_video && room.tap.is_some() && !track.tap_keyframe_seen {
            if keyframe {
                track.tap_keyframe_seen = true;
            } else {
                want_keyframe = Some(layer);
            }
        }
        for (sid, sub) in room.participants.iter_mut() {
            if sid == pid {
                continue;
            }
            let Some(down) = sub.subscriptions.get_mut(&track_id) else { continue };
            let wanted = down.wanted_layer();
            let target = if is_video { track.pick_layer(now, wanted, down.current_layer) } else { Some(layer) };
            // Packets of layers other than the one being forwarded (or switched to) are ignored.
            let switching = down.current_layer.is_some() && down.current_layer != target;
            if Some(layer) != down.current_layer && Some(layer) != target {
                continue;
            }
            if switching && Some(layer) == down.current_layer {
                // Keep the current layer flowing until the target layer's keyframe arrives.
                if target.is_some_and(|t| track.layers[usize::from(t)].is_some()) {
                    want_keyframe = target;
                }
            }
            let allowed = caucus_allows(from_group.as_deref(), sub.group.as_deref(), sub.sees_all_groups);
            if !allowed || sub.state != ConnectionState::Connected {
                if Some(layer) == down.current_layer || down.current_layer.is_none() {
                    down.forwarder.skip();
                }
                down.needs_keyframe = is_video;
                // Not a wait for the publisher: the clock starts when forwarding may resume.
                down.waiting_since = None;
                continue;
            }
            if switching && Some(layer) == target {
                tracing::trace!(track = %track_id, subscriber = %sid, layer, keyframe, ?down.current_layer, "switching");
                if !keyframe {
                    want_keyframe = target;
                    continue;
                }
                // Switch at the target layer's keyframe.
                down.current_layer = target;
                down.forwarder.switch_source();
                down.needs_keyframe = false;
            } else if is_video && down.needs_keyframe {
                if keyframe {
                    down.needs_keyframe = false;
                    down.waiting_since = None;
                    if down.current_layer.is_some_and(|c| c != layer) {
                        down.forwarder.switch_source();
                    }
                    down.current_layer = Some(layer);
                } else {
                    tracing::trace!(track = %track_id, subscriber = %sid, layer, ?target, "waiting for a keyframe");
                    let since = *down.waiting_since.get_or_insert(now);
                    if !down.wait_reported && now.duration_since(since) > KEYFRAME_WAIT_REPORTED_AFTER {
                        down.wait_reported = true;
                        let seen: Vec<Option<u32>> = track.layers.iter().map(|l| l.map(|l| l.ssrc)).collect();
                        tracing::warn!(track = %track_id, subscriber = %sid, layer, ?target, ?seen, sending = ?track.sending, "no keyframe for a subscriber in 5 s");
                    }
                    down.forwarder.skip();
                    want_keyframe = target;
                    continue;
                }
            } else if down.current_layer.is_none() {
                down.current_layer = Some(layer);
            }
            let Some(&pt) = down.payload_types.get(&packet.header.payload_type) else {
                if !down.warned {
                    down.warned = true;
                    tracing::warn!(track = %track_id, pt = packet.header.payload_type, "no matching codec towards subscriber {sid}");
                }
                continue;
            };
            let mut out = packet.clone();
            out.header.ssrc = down.ssrc;
            out.header.payload_type = pt;
            let (seq, ts) = down.forwarder.forward(packet.header.sequence_number, packet.header.timestamp);
            out.header.sequence_number = seq;
            out.header.timestamp = ts;
            out.header.extensions.retain_mut(|ext| {
                match track_extensions.get(&ext.id).and_then(|uri| down.extensions.get(uri)) {
                    Some(&id) => {
                        ext.id = id;
                        true
                    }
                    None => false,
                }
            });
            out.header.extension = !out.header.extensions.is_empty();
            let size = out.payload.len() as u64;
            match sub.pc.rtp_sender(down.sender) {
                Some(mut s) => match s.write_rtp(now, out) {
                    Ok(()) => {
                        self.counters.packets_forwarded += 1;
                        self.counters.bytes_forwarded += size;
                    }
                    Err(e) => {
                        self.counters.stack_errors += 1;
                        tracing::trace!(error = %e, "forward failed");
                    }
                },
                None => continue,
            }
            flush(&mut sub.pc, &mut self.transmits);
        }
        if let Some(layer) = want_keyframe {
            self.request_keyframe_on(now, room_id, &track_id, Some(layer));
        }
    }

    /// Starts (`Some`) or stops (`None`) copying the room's incoming media to a recorder.
    pub fn set_recording_tap(&mut self, now: Instant, room_id: &RoomId, tap: Option<RecordingTap>) -> Result<(), MediaError> {
        let room = self.rooms.get_mut(room_id).ok_or_else(|| MediaError::NoSuchRoom(room_id.clone()))?;
        let starting = tap.is_some() && room.tap.is_none();
        room.tap = tap;
        if starting && let Some(tap) = &room.tap {
            // The recorder can map RTP time to the senders' clocks from the first packet on.
            for report in room.sender_reports.values() {
                let _ = tap.sender.try_send(TapItem::SenderReport(*report));
            }
        }
        if starting {
            // A recording can only begin at a keyframe: ask every video publisher for one on
            // every layer now, rather than wait for the encoder's next periodic one (minutes).
            let mut requests: Vec<(ParticipantId, RTCRtpReceiverId, Vec<u32>)> = Vec::new();
            for track in room.tracks.values_mut().filter(|t| t.info.kind == Kind::Video) {
                track.tap_keyframe_seen = false;
                let mut ssrcs: Vec<u32> = track.layers.iter().flatten().map(|l| l.ssrc).collect();
                if ssrcs.is_empty() {
                    ssrcs.extend(track.media_ssrc);
                }
                track.last_keyframe_request = [Some(now); LAYERS];
                tracing::debug!(track = %track.info.id, ?ssrcs, "keyframe request for the recording");
                requests.push((track.info.publisher.clone(), track.receiver, ssrcs));
            }
            for (publisher, receiver, ssrcs) in requests {
                let Some(p) = room.participants.get_mut(&publisher) else { continue };
                if let Some(mut r) = p.pc.rtp_receiver(receiver) {
                    let plis: Vec<Box<dyn rtc::rtcp::Packet>> =
                        ssrcs.into_iter().map(|media_ssrc| Box::new(PictureLossIndication { sender_ssrc: 0, media_ssrc }) as Box<dyn rtc::rtcp::Packet>).collect();
                    let _ = r.write_rtcp(now, plis);
                }
                flush(&mut p.pc, &mut self.transmits);
            }
        }
        Ok(())
    }

    /// The largest simulcast layer a subscriber wants for a track (0 = q, 1 = h, 2 = f), from
    /// the size at which it shows the video.
    pub fn set_preferred_layer(&mut self, room_id: &RoomId, pid: &ParticipantId, track: &TrackId, layer: u8) -> Result<(), MediaError> {
        let room = self.rooms.get_mut(room_id).ok_or_else(|| MediaError::NoSuchRoom(room_id.clone()))?;
        let p = room.participants.get_mut(pid).ok_or_else(|| MediaError::NoSuchParticipant(pid.clone()))?;
        let down = p.subscriptions.get_mut(track).ok_or_else(|| MediaError::UnknownTrack(track.clone()))?;
        down.preferred_layer = layer.min((LAYERS - 1) as u8);
        Ok(())
    }
}

fn transceiver_with_mid(pc: &mut RTCPeerConnection, mid: &str) -> Option<usize> {
    let count = pc.get_transceivers().count();
    (0..count).find(|&i| pc.rtp_transceiver(i).is_some_and(|t| t.mid().as_deref() == Some(mid)))
}

/// Sends a frame on a participant's data channel; false if it has none open or is too far
/// behind (see [`DATA_BACKLOG_MAX`]).
fn send_data(now: Instant, p: &mut Participant, frame: BytesMut, transmits: &mut VecDeque<Transmit>) -> bool {
    let Some(id) = p.data_channel else { return false };
    let Some(mut channel) = p.pc.data_channel(id) else { return false };
    if channel.outstanding_bytes() > DATA_BACKLOG_MAX {
        return false;
    }
    let sent = channel.send(now, frame).is_ok();
    flush(&mut p.pc, transmits);
    sent
}

fn flush(pc: &mut RTCPeerConnection, transmits: &mut VecDeque<Transmit>) {
    while let Some(t) = pc.poll_write() {
        transmits.push_back(Transmit { to: t.transport.peer_addr, bytes: t.message });
    }
}

/// Publisher payload type → subscriber payload type, matching codecs by MIME type and fmtp.
fn map_codecs(publisher: &[(RTCRtpCodec, u8)], subscriber: &[(RTCRtpCodec, u8)]) -> HashMap<u8, u8> {
    let mut map = HashMap::new();
    for (codec, pt) in publisher {
        let same = |c: &&(RTCRtpCodec, u8)| c.0.mime_type.eq_ignore_ascii_case(&codec.mime_type);
        let exact = subscriber.iter().filter(same).find(|c| c.0.sdp_fmtp_line == codec.sdp_fmtp_line);
        if let Some((_, spt)) = exact.or_else(|| subscriber.iter().find(same)) {
            map.insert(*pt, *spt);
        }
    }
    map
}

fn sendonly(stream: String) -> RTCRtpTransceiverInit {
    RTCRtpTransceiverInit {
        direction: RTCRtpTransceiverDirection::Sendonly,
        streams: if stream.is_empty() { vec![] } else { vec![stream] },
        send_encodings: vec![],
    }
}

/// A sending track that never sends: it holds an m-line whose subscription is gone.
fn placeholder_track(kind: Kind) -> MediaStreamTrack {
    let codec = match kind {
        Kind::Audio => RTCRtpCodec { mime_type: "audio/opus".into(), clock_rate: 48000, channels: 2, ..Default::default() },
        Kind::Video => RTCRtpCodec { mime_type: "video/VP8".into(), clock_rate: 90000, ..Default::default() },
    };
    let id = format!("gone-{}", random_token(8));
    MediaStreamTrack::new(
        id.clone(),
        id.clone(),
        id,
        rtc_kind(kind),
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(rand::random::<u32>()), ..Default::default() },
            codec,
            ..Default::default()
        }],
    )
}

fn rtc_kind(kind: Kind) -> RtpCodecKind {
    match kind {
        Kind::Audio => RtpCodecKind::Audio,
        Kind::Video => RtpCodecKind::Video,
    }
}

fn random_token(len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect()
}

fn new_peer_connection(now: Instant, credentials: &IceCredentials, downlink: std::sync::Arc<DownlinkEstimate>) -> Result<RTCPeerConnection, rtc::shared::error::Error> {
    let mut media_engine = MediaEngine::default();
    media_engine.register_default_codecs()?;
    for (uri, kind) in [
        (AUDIO_LEVEL_URI, RtpCodecKind::Audio),
        ("http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", RtpCodecKind::Audio),
        ("http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", RtpCodecKind::Video),
    ] {
        media_engine.register_header_extension(RTCRtpHeaderExtensionCapability { uri: uri.to_string() }, kind, None)?;
    }
    // The default chain without receiver reports. A browser stops putting MID/RID on a simulcast
    // layer's packets once a receiver report acknowledges its SSRC, and rtc 0.21 forgets a layer's
    // SSRC ↔ rid binding at every renegotiation; without RRs the browser keeps the RID on, so the
    // layer binds again after each offer. The publisher's bandwidth estimate comes from TWCC.
    // Towards the subscriber, TWCC numbers what the SFU sends and the returning feedback drives
    // the downlink estimate (no pacer: packets leave as they are forwarded).
    let registry = configure_nack(Registry::new(), &mut media_engine);
    configure_simulcast_extension_headers(&mut media_engine)?;
    let registry = configure_twcc(registry, &mut media_engine)?
        .with(Slot::CongestionControl, CongestionControlBuilder::new(SharedGcc::new(downlink)).build())
        .with(Slot::SenderReport, SenderReportBuilder::new().build())
        .with(Slot::from(crate::nack_guard::SLOT), crate::nack_guard::NackGuardInterceptor::default())
        .with(Slot::from(crate::feedback::SLOT), crate::feedback::KeyframeRequestTap::default());
    let settings = SettingEngineBuilder::new()
        .with_lite(true)
        .with_ice_credentials(credentials.ufrag.clone(), credentials.pwd.clone())
        // Being the DTLS server saves a round trip per join (see shared/recipes/webrtc-rs).
        .with_answering_dtls_role(RTCDtlsRole::Server)
        .build();
    RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(settings)
        .with_media_engine(media_engine)
        .with_interceptor_registry(registry)
        .build(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_window_counts_gaps_and_ignores_late_packets() {
        let mut w = LossWindow::default();
        for seq in [65530u16, 65531, 65533, 65535, 0, 1, 65532] {
            w.on_packet(seq);
        }
        // 65530..=1 spans 8 sequence numbers; 65534 never came; 65532 came late (not counted).
        assert_eq!((w.expected, w.received), (8, 6));
        assert_eq!(Quality::from_loss(0.0), Quality::Excellent);
        assert_eq!(Quality::from_loss(0.05), Quality::Good);
        assert_eq!(Quality::from_loss(0.2), Quality::Poor);
    }

    #[test]
    fn caucus_gates_by_group() {
        assert!(caucus_allows(None, None, false));
        assert!(caucus_allows(Some("a"), Some("a"), false));
        assert!(!caucus_allows(Some("a"), Some("b"), false));
        assert!(!caucus_allows(None, Some("b"), false));
        assert!(caucus_allows(Some("a"), Some("b"), true));
    }

    #[test]
    fn unroutable_and_garbage_datagrams_are_dropped() {
        let mut core = WorkerCore::new("127.0.0.1:7000".parse().expect("addr"), Limits::default());
        let now = Instant::now();
        core.create_room(RoomId::from("r")).expect("room");
        let perms = Permissions { publish: vec![Source::Microphone], subscribe: true, hidden: false, data: true };
        core.add_participant(now, &RoomId::from("r"), ParticipantId::from("a"), ParticipantOptions {
            permissions: perms,
            group: None,
            sees_all_groups: false,
            reads_all_groups: false,
        })
        .expect("participant");
        let from: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        for len in [0usize, 1, 12, 20, 100, 1500] {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            core.handle_datagram(now, from, &junk);
        }
        assert_eq!(core.counters().datagrams_unrouted, 6);
        assert!(core.poll_transmit().is_none());
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits { participants_per_room: 1, tracks_per_participant: 1, rooms_per_worker: 1, ..Limits::default() };
        let mut core = WorkerCore::new("127.0.0.1:7000".parse().expect("addr"), limits);
        let now = Instant::now();
        core.create_room(RoomId::from("r")).expect("room");
        assert_eq!(core.create_room(RoomId::from("s")), Err(MediaError::TooManyRooms(1)));
        let opts = ParticipantOptions {
            permissions: Permissions { publish: vec![], subscribe: true, hidden: false, data: true },
            group: None,
            sees_all_groups: false,
            reads_all_groups: false,
        };
        core.add_participant(now, &RoomId::from("r"), ParticipantId::from("a"), opts.clone()).expect("first");
        assert!(matches!(
            core.add_participant(now, &RoomId::from("r"), ParticipantId::from("b"), opts),
            Err(MediaError::RoomFull(1))
        ));
    }
}
