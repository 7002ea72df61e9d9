//! The store layer over sqlx: portable SQL for PostgreSQL and SQLite, one module per aggregate.

pub mod cases;
pub mod new_case;
pub mod org;
pub mod pool;
pub mod search;
pub mod staff;
