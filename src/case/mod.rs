//! The case domain as pure functions and types: the state machine, the event chain, matching and
//! deadlines. No I/O here; `crate::store` loads and saves, `crate::http` exposes.

pub mod chain;
pub mod deadline;
pub mod intake;
pub mod matching;
pub mod state;

pub use state::{CaseAction, CaseStatus};
