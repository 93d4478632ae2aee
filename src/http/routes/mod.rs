//! One file per area; each exposes `router()`.

pub mod catalogue;
pub mod health;
