//! A clinic (tenant), its Twilio connections and who may act for it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::connection_health::InboundSeen;
use crate::ids::{ClinicId, ConnectionId, UserId};
use crate::phone::{Country, E164, PhoneError};
use crate::twilio::client::SenderId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clinic {
    pub id: ClinicId,
    pub name: String,
    /// ISO 3166-1 alpha-2 country used to read numbers typed without a country code.
    pub default_country: String,
    /// IANA time zone, e.g. `America/New_York`: the clinic's day for allowances.
    pub time_zone: String,
    #[serde(default)]
    pub default_connection_id: Option<ConnectionId>,
    /// Patients' replies are shown and answered (mass alerts require it).
    #[serde(default)]
    pub two_way_texting: bool,
    #[serde(default)]
    pub send_mode: SendMode,
    /// Below this many credits, settings show a warning and `CreditsLow` is published.
    #[serde(default)]
    pub low_credit_threshold: u64,
    /// When on, each user's texts count against their daily allowance.
    #[serde(default)]
    pub allowances_enabled: bool,
    /// Replies that confirm an appointment (never one of Twilio's opt-out, opt-in or help words).
    #[serde(default = "default_confirmation_keywords")]
    pub confirmation_keywords: Vec<String>,
    /// Used for contacts who have not chosen.
    #[serde(default)]
    pub default_reminder_preference: Preference,
    /// Scheduled and bulk texts are held during these hours (each business's own zone).
    #[serde(default)]
    pub quiet_hours: Option<crate::reminder_window::QuietHours>,
    pub created_at: DateTime<Utc>,
}

pub fn default_confirmation_keywords() -> Vec<String> {
    vec!["C".into(), "CONFIRM".into()]
}

/// Whether outbound texts go straight out or wait for a person to approve them.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendMode {
    #[default]
    Immediately,
    ApprovalRequired,
}

/// How a contact wants automated reminders.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preference {
    #[default]
    Sms,
    Email,
    None,
}

impl Clinic {
    pub fn country(&self) -> Result<Country, PhoneError> {
        self.default_country.parse()
    }
}

/// A Twilio sender a clinic texts through, with the throughput Twilio gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub id: ConnectionId,
    pub clinic_id: ClinicId,
    pub label: String,
    pub sender: SenderId,
    /// For a Messaging Service: the numbers in its pool (inbound texts to any of them arrive here).
    #[serde(default)]
    pub pool_numbers: Vec<E164>,
    /// Message segments per second Twilio sends from this sender.
    pub mps: u32,
    pub enabled: bool,
    /// The last error Twilio gave that was about the sender or the account (not one recipient).
    #[serde(default)]
    pub last_error: Option<ConnectionError>,
    /// The last text a patient sent through this connection (refreshed at most once a minute).
    /// Absent, not null, when unknown: the conditional update that refreshes it tests for absence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_inbound: Option<InboundSeen>,
    /// When Twilio last posted a status callback for a text sent through this connection
    /// (refreshed at most once a minute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status_callback_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionError {
    pub code: u32,
    pub at: DateTime<Utc>,
}

/// Twilio errors that describe the connection itself: credentials, account, sending number,
/// registration, geographic permissions, a trial account's unverified recipients, or carrier
/// filtering of the sender's traffic. 30002, 30007 and 30034 come in delivery callbacks.
pub fn is_connection_error(code: u32) -> bool {
    matches!(code, 20003 | 21212 | 21606 | 21408 | 21608 | 30002 | 30007 | 30034)
}

impl crate::clinic_records::ClinicRecord for Connection {
    const KIND: &'static str = "CONNECTION";

    fn id(&self) -> &str {
        self.id.as_str()
    }

    fn clinic_id(&self) -> &ClinicId {
        &self.clinic_id
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Staff,
}

/// Who is calling: resolved from an API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub clinic_id: ClinicId,
    pub user_id: UserId,
    pub role: Role,
}

/// A clinic user. API keys belong to one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub clinic_id: ClinicId,
    pub name: String,
    pub role: Role,
    /// Texts per day when the clinic's allowances are on; `None` or 0 blocks sending.
    #[serde(default)]
    pub daily_allowance: Option<u32>,
}

impl crate::clinic_records::ClinicRecord for User {
    const KIND: &'static str = "USER";

    fn id(&self) -> &str {
        &self.id
    }

    fn clinic_id(&self) -> &ClinicId {
        &self.clinic_id
    }
}
