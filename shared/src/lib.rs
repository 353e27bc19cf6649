//! clinic-sms library: domain rules as pure functions, and the adapters the Lambda functions use.

pub mod aws_resources;
pub mod clock;
pub mod config;
pub mod ids;
pub mod message;
pub mod message_status;
pub mod phone;
pub mod twilio;
