//! The product's one vocabulary of reasons a text was not sent (alongside Twilio's error codes).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    BusinessRemindersOff,
    NoTemplateForType,
    NoMobileNumber,
    InvalidNumber,
    PreferenceEmail,
    PreferenceNone,
    OptedOut,
    /// Another client with the same number gets the same mass alert text.
    SharedNumber,
    AppointmentCancelled,
    AppointmentChanged,
    InsufficientCredits,
    AllowanceExhausted,
    /// The message's connection was removed or disabled before it could be sent.
    ConnectionUnavailable,
    /// Twilio kept refusing or could not be reached, and the retries ran out.
    RetriesExhausted,
}

impl Reason {
    /// The code the API and reports use (`appointment_changed`).
    pub fn code(self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::BusinessRemindersOff => "Reminders are turned off for this business.",
            Self::NoTemplateForType => "The appointment type has no SMS reminder template.",
            Self::NoMobileNumber => "The contact has no mobile number.",
            Self::InvalidNumber => "The contact's mobile number is not a valid number.",
            Self::PreferenceEmail => "The contact prefers reminders by email.",
            Self::PreferenceNone => "The contact asked for no reminders.",
            Self::OptedOut => "The contact opted out of texts (replied STOP).",
            Self::SharedNumber => "Another client with the same mobile number gets this text.",
            Self::AppointmentCancelled => "The appointment was cancelled.",
            Self::AppointmentChanged => {
                "The appointment was cancelled, moved or has started since the text was created."
            }
            Self::InsufficientCredits => "The clinic had no SMS credits left.",
            Self::AllowanceExhausted => "The user's daily SMS allowance is used up.",
            Self::ConnectionUnavailable => "The clinic's Twilio connection was removed or disabled.",
            Self::RetriesExhausted => "Twilio could not take the text after several tries.",
        }
    }
}
