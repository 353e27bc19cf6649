//! Twilio: the REST client, the status vocabulary, webhook signatures and the error catalogue.

pub mod client;
pub mod error_catalogue;
pub mod inbound;
pub mod keywords;
pub mod signature;
pub mod status;

/// A webhook form Twilio would not have sent: a field missing, or one no Twilio value looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{0} is not valid")]
    Invalid(&'static str),
}

/// Whether `value` can be a Twilio SID (`SM…`, `MG…`): it names item keys, so it must be printable
/// with no separator in it, and Twilio's are 34 characters; a few more are allowed.
pub fn is_sid(value: &str) -> bool {
    value.len() <= 64 && value.chars().all(|c| c.is_ascii_alphanumeric())
}
