//! Synthetic WebRTC participants for load tests and multi-node tests: they speak jiefen's
//! signaling protocol (or Janus's VideoRoom API), publish pre-encoded or synthetic media and
//! measure what they receive.

pub mod chart;
pub mod data;
pub mod fixture;
pub mod janus;
pub mod participant;
pub mod payload;
pub mod procstat;
pub mod publish;
pub mod receive;
pub mod report;

pub use participant::{Participant, ParticipantConfig, Received, Stats};
pub use publish::MediaSpec;
