//! Integration tests: every test starts its own system (tables, queues, simulator, runner) on a
//! moto server, so tests run in parallel. `cargo xtask check` starts one moto server and passes
//! its address in `CLINIC_SMS_MOTO_ENDPOINT`; without it, each test starts its own.

mod allowances;
mod api;
mod chaos;
mod clinic_data;
mod connection_health;
mod conversations;
mod error_codes;
mod events;
mod flow;
mod inbound;
mod keywords;
mod lanes;
mod log_privacy;
mod mailbox_actions;
mod mailbox_views;
mod mass_alerts;
mod openapi;
mod reminders;
mod reports_bucket;
mod sender_claims;
mod sending;
mod status_checks;
mod support;
mod webhook_bodies;
mod webhooks;
