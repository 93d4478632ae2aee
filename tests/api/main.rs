//! The integration suite: the same tests run on SQLite (default) and on PostgreSQL
//! (`TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432`).

mod common;

mod accounts;
mod audit_core;
mod audit_dpo;
mod audit_trail;
mod cli;
mod http_basics;
mod keys;
mod mandates;
mod mandates_lifecycle;
mod mandates_rules;
mod mandates_support;
mod members;
mod pages;
mod retention;
mod secrets_at_rest;
mod sms_inbound;
mod usagers;
mod verification;
mod web_pages;
mod witness;
