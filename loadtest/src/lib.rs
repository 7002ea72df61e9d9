//! jiefen-loadtest: synthetic participants that speak jiefen's signaling protocol and carry
//! real WebRTC media (webrtc-rs), for load tests and multi-node tests.

pub mod participant;
pub mod payload;
pub mod procstat;

pub use participant::{Participant, ParticipantConfig, Received, Stats};
