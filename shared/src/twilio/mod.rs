//! Twilio: the REST client, the status vocabulary, webhook signatures and the error catalogue.

pub mod client;
pub mod error_catalogue;
pub mod inbound;
pub mod keywords;
pub mod signature;
pub mod status;
