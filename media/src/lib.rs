//! jiefen-media: the selective forwarding unit.
//!
//! [`core`] is a sans-IO state machine per worker: datagrams, commands and time go in;
//! datagrams to send and [`MediaEvent`]s come out. [`driver`] runs one core per worker thread,
//! each owning one UDP socket. [`Media`] is the handle that signaling drives.
//!
//! This crate knows nothing of HTTP, SQL, Redis, tokens or JSON.

pub mod batch;
pub mod bwe;
pub mod core;
pub mod data;
pub mod driver;
pub mod feedback;
pub mod forwarder;
pub mod ids;
pub mod keyframe;
pub mod nack_guard;
pub mod read_filter;
pub mod sdp;
pub mod stun;

pub use crate::core::{
    IceCredentials, Limits, MediaError, OfferRequest, ParticipantOptions, PublishIntent, Quality, RecordingTap, SubscribeIntent,
    TapItem, TapPacket, TapSenderReport,
};
pub use driver::{Media, MediaConfig, MediaStats, RoomHandle};
pub use ids::{Kind, ParticipantId, Permissions, RoomId, Source, TrackId, TrackInfo};

/// What the media plane tells signaling about a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// A participant's offer announced a new track; subscribers may now ask for it.
    TrackPublished(TrackInfo),
    /// A track is gone (unpublished, or its publisher left).
    TrackUnpublished(TrackId),
    /// The loudest participant now (from the audio-level extension), or nobody speaking.
    ActiveSpeaker(Option<ParticipantId>),
    /// A publisher's uplink quality changed (from the loss on its streams).
    ConnectionQuality { participant: ParticipantId, quality: crate::core::Quality },
    /// A participant's peer connection reached or lost the connected state.
    ConnectionState { participant: ParticipantId, state: ConnectionState },
    /// Which simulcast layers (q, h, f) of a track the publisher should send: layers nobody
    /// watches are paused, and resumed when someone wants them again.
    PublishLayers { participant: ParticipantId, track: TrackId, source: Source, layers: [bool; crate::core::LAYERS] },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    Connecting,
    Connected,
    /// ICE or DTLS failed or timed out; the participant should restart ICE or rejoin.
    Failed,
}
