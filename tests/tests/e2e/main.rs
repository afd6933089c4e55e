//! End-to-end tests: the real gateway, on SQLite and on PostgreSQL, over HTTP. Every test
//! that names a backend runs twice (`…::sqlite`, `…::postgres`).

mod access;
mod audit_chain;
mod audit_complete;
mod bad_input;
mod demo;
mod dicom;
mod dicomweb;
mod first_run;
mod forms;
mod forwarding;
mod hostile;
mod imaging_setup;
mod login;
mod lookup;
mod manage_activities;
mod manage_imaging;
mod manage_registry;
mod notifications;
mod openapi;
mod opinions;
mod pages;
mod pages_flows;
mod pairings;
mod request_lists;
mod requests;
mod retention;
mod room_side;
mod rooms;
mod rounds;
mod seeds;
mod server;
mod setup;
mod teaching;
mod teaching_media;
