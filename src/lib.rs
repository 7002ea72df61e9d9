//! jiefen: the case-management backend and the wiring of every crate into one server.

pub mod agreement;
pub mod auth;
pub mod bootstrap;
pub mod case;
pub mod config;
pub mod court;
pub mod crypto;
pub mod db;
pub mod deadlines;
pub mod http;
pub mod jobs;
pub mod keys;
pub mod recordings;
pub mod server;
pub mod sessions_sync;
pub mod storage;
pub mod store;
