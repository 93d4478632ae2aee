//! The integration suite: the same tests run on SQLite (default) and on PostgreSQL
//! (`TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432`).

mod common;

mod accounts;
mod audit_checkpoints;
mod audit_core;
mod audit_dpo;
mod audit_trail;
mod cli;
mod connections;
mod documents;
mod http_basics;
mod join;
mod keys;
mod lockout;
mod mandates;
mod mandates_hardening;
mod mandates_lifecycle;
mod mandates_rules;
mod mandates_support;
mod members;
mod oidc;
mod oidc_authlib;
mod oidc_support;
mod pages;
mod public_pages;
mod request_ids;
mod retention;
mod secrets_at_rest;
mod sms_inbound;
mod sms_outbox;
mod usagers;
mod verification;
mod web_pages;
mod witness;
