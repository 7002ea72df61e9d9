//! Authentication and authorisation: staff login (argon2 password, TOTP, lockout, session
//! timeouts), party links and one-time codes, and the role/permission/scope policy.

pub mod party_link;
pub mod policy;
pub mod sms;
pub mod totp;

pub use policy::{Permission, StaffRole, allows};

/// A 6-digit one-time code, as texted to a party (access to their case, signing).
pub fn one_time_code() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..6).map(|_| char::from(b'0' + rng.random_range(0..10u8))).collect()
}
