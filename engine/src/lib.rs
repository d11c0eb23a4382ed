//! The CRM application: HTTP API, authentication, the record and metadata services, packages,
//! the OpenAPI document, the screens, the benchmark and the command line. `tests/` drives this library.

pub mod access;
pub mod admin;
pub mod app;
pub mod approval;
pub mod auth;
pub mod backup;
pub mod bench;
pub mod brand;
pub mod campaigns;
pub mod config;
pub mod convert;
pub mod dashboards;
pub mod duplicates;
pub mod error;
pub mod export;
pub mod forms;
pub mod http;
pub mod import;
pub mod jobs;
pub mod kb;
pub mod mail;
pub mod metadata;
pub mod metrics;
pub mod openapi;
pub mod package;
pub mod print;
pub mod records;
pub mod reports;
pub mod rules;
pub mod schedule;
pub mod screens;
pub mod search;
pub mod secrets;
pub mod serve;
pub mod settings;
pub mod setup;
pub mod sms;
pub mod surveys;
pub mod sync;
pub mod tasks;
pub mod visible;
pub mod webhooks;

pub use app::{App, AppState};
pub use http::build_app;
