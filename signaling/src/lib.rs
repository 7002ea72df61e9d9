//! jiefen-signaling: what browsers talk to. The websocket protocol ([`proto`]), join tokens
//! ([`token`]), the session store ([`store`]) and the service that drives the media plane
//! ([`service`], [`ws`]). Knows nothing of SQL or cases.

pub mod proto;
pub mod service;
pub mod store;
pub mod token;
pub mod webhook;
pub mod ws;

pub use service::{RecordingControl, SessionEvent, Signaling, SignalingConfig, SignalingLimits};
pub use store::{MemoryStore, RedisStore, SessionStore, Store};
pub use token::{JoinClaims, Role, TokenKey, TokenRequest};
