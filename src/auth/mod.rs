//! Authentication and authorisation: staff login (argon2 password, TOTP, lockout, session
//! timeouts), party links and one-time codes, and the role/permission/scope policy.

pub mod party_link;
pub mod policy;
pub mod sms;
pub mod totp;

pub use policy::{Permission, StaffRole, allows};
