//! jiefen: the case-management backend and the wiring of every crate into one server.

pub mod bootstrap;
pub mod config;
pub mod db;
pub mod http;
pub mod keys;
pub mod server;
