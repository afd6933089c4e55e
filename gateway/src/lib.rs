//! # duikou
//!
//! The gateway of the paired-support telemedicine program: the registry of institutions,
//! clinicians, teams and pairings (who supports whom, for which service, in which period),
//! users and their sessions, and the HTTP API over them. The `duikou` binary is a thin
//! wrapper around [`cli`].
//!
//! ## Layout
//! - [`config`]: layered configuration (defaults → TOML file → `DUIKOU_*` environment).
//! - [`domain`]: the registry's nouns, valid by construction.
//! - [`seeds`]: reading and checking the program rosters in `seeds/`.
//! - [`store`]: SQLite and PostgreSQL, one implementation per backend.
//! - [`registry`]: the supporter lookup and the rules for changing pairings.
//! - [`auth`]: argon2id passwords, checked a bounded number at a time in reused memory,
//!   and opaque session tokens.
//! - [`http`]: the axum application under `/api/v1`, health and metrics; every JSON
//!   string bounded, cross-site cookie requests refused, logins throttled per address.
//! - [`notify`]: webhooks, through the outbound policy (`duikou_imaging::outbound`).
//! - [`documents`]: the signed opinion as a PDF to file, with its hash.
//! - [`rooms`]: who may enter a booked session's video room, and the record of presence.
//! - [`bus`]: signaling events between gateway processes over PostgreSQL LISTEN/NOTIFY.
//! - [`text`]: sentences for people, said at response time in the caller's language.
//! - [`web`]: the browser pages (the files under `gateway/web/`, compiled in).
//! - [`backup`]: backups of a running gateway, checked and restored into an empty one.
//! - [`startup`]: prepare the store, then serve until shutdown; shared by `main` and tests.

pub mod audit;
pub mod auth;
pub mod backup;
pub mod booking;
pub mod bus;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod documents;
pub mod domain;
pub mod error;
pub mod http;
pub mod imaging;
pub mod notify;
pub mod patients;
pub mod registry;
pub mod reports;
pub mod retention;
pub mod rooms;
pub mod rules;
pub mod seeds;
pub mod startup;
pub mod store;
pub mod telemetry;
#[cfg(test)]
pub(crate) mod testing;
pub mod text;
pub mod tls;
pub mod web;
