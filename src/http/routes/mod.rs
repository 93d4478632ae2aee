//! One file per area; each exposes `router()`.

pub mod audit;
pub mod catalogue;
pub mod health;
pub mod mandates;
pub mod members;
pub mod oidc;
pub mod organisations;
pub mod session;
pub mod sms;
pub mod usagers;
pub mod vault;
