//! The black-box suites: each module starts the real `stepwise` binary and drives it over HTTP
//! with real clients. One test binary, so the suites link once.

mod common;
#[path = "../../../../tests/shared_dir.rs"]
mod shared_dir;

mod active_map;
mod active_nodes;
mod auth;
mod clients;
mod commit_failures;
mod console;
mod crash;
mod distributed;
mod failpoints;
mod fanout;
mod health;
mod identity;
mod integrations;
mod jobs;
mod metrics;
mod mocks;
mod postgres;
mod protocol;
mod realworld;
mod redrive;
mod redrive_extensions;
mod robustness;
mod sdk;
mod services;
mod signed_services;
mod tasks;
mod test_state;
mod traces;
mod upgrade;
mod validate;
mod versions;
