//! A clinic (tenant), its Twilio connections and who may act for it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ClinicId, ConnectionId, UserId};
use crate::phone::{Country, E164, PhoneError};
use crate::twilio::client::SenderId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clinic {
    pub id: ClinicId,
    pub name: String,
    /// ISO 3166-1 alpha-2 country used to read numbers typed without a country code.
    pub default_country: String,
    /// IANA time zone, e.g. `America/New_York`.
    pub time_zone: String,
    #[serde(default)]
    pub default_connection_id: Option<ConnectionId>,
    pub created_at: DateTime<Utc>,
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
}

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
