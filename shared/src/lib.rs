//! clinic-sms library: domain rules as pure functions, and the adapters the Lambda functions use.
//!
//! - Rules (no I/O): [`phone`], [`message_status`], [`message`], [`mailbox_views`], [`reason`],
//!   [`retry_policy`], [`api_keys`], [`twilio::signature`], [`twilio::status`],
//!   [`twilio::error_catalogue`].
//! - Adapters: [`messages_table`] (with [`mailbox`]), [`clinics_table`] (DynamoDB), [`send_queue`] (SQS),
//!   [`twilio::client`] (Twilio REST), [`metrics`] (CloudWatch EMF on stdout).
//! - Use cases the functions call: [`outbound`], [`sending`], [`status_updates`], [`status_checks`],
//!   [`access`].

pub mod access;
pub mod alert_report;
pub mod api_keys;
pub mod appointment_types;
pub mod appointments;
pub mod aws_resources;
pub mod businesses;
pub mod clinic;
pub mod clinic_records;
pub mod clinics_table;
pub mod clock;
pub mod config;
pub mod confirmations;
pub mod connection_activity;
pub mod connection_health;
pub mod contacts;
pub mod conversations;
pub mod conversations_table;
pub mod counters_table;
pub mod dynamo;
pub mod event_bus;
pub mod idempotency;
pub mod ids;
pub mod inbound;
pub mod mailbox;
pub mod mailbox_actions;
pub mod mailbox_views;
pub mod mass_alert;
pub mod mass_alert_closing;
pub mod mass_alert_fanout;
pub mod mass_alert_recipients;
pub mod mass_alerts;
pub mod mass_alerts_table;
pub mod message;
pub mod message_status;
pub mod messages_table;
pub mod metrics;
pub mod onboarding;
pub mod opt_outs;
pub mod outbound;
pub mod pacing;
pub mod packed_history;
pub mod phone;
pub mod rate_limit;
pub mod reason;
pub mod recipients;
pub mod reminder_checks;
pub mod reminder_run;
pub mod reminder_window;
pub mod reports_bucket;
pub mod retry_policy;
pub mod scheduled_texts;
pub mod segments;
pub mod send_queue;
pub mod sender_claims;
pub mod sender_store;
pub mod sending;
pub mod services;
pub mod sqs_batch;
pub mod status_checks;
pub mod status_updates;
pub mod templates;
pub mod twilio;
pub mod usage_report;
pub mod webhook_rejections;
