//! mandat: delegated access for aidants acting for usagers under scoped, time-limited,
//! revocable mandates, with a tamper-evident audit log.
//!
//! Layers (one-way): `http` → `service` → `domain` + `store` + `audit` + `crypto`.
#![forbid(unsafe_code)]

pub mod app;
pub mod audit;
pub mod authz;
pub mod bench;
pub mod cli;
pub mod cli_audit;
pub mod cli_ops;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod pdf;
pub mod service;
pub mod sms;
pub mod store;
pub mod telemetry;
