//! The court path: the law's rules (`rules`), the connector that sends packages to a court's
//! system with signed JSON and idempotency keys (`connector`), and a court simulator that
//! implements the court's side of the same schema (`sim`, `jiefen court-sim`). The schema is in
//! `docs/court-api.md`.

pub mod connector;
pub mod rules;
pub mod sim;
