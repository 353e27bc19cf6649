//! Identifiers. Messages use ULIDs (timestamp from the project clock, then randomness), so ids sort by creation time and views can page by id.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use ulid::Ulid;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A clinic (tenant).
    ClinicId
);
string_id!(
    /// A Twilio sender configured for a clinic.
    ConnectionId
);
string_id!(
    /// A clinic user; API keys belong to one.
    UserId
);
string_id!(
    /// A mass alert: a ULID, so a clinic's alerts list newest first by id.
    AlertId
);

/// A message id: a ULID, shown and accepted in its canonical 26-character form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageId(Ulid);

impl MessageId {
    /// A fresh id for something created at `now` (from the project's clock, so ids sort in the
    /// same order as the times the product records).
    pub fn generate(now: chrono::DateTime<chrono::Utc>) -> Self {
        Self(Ulid::from_datetime(now.into()))
    }

    pub fn from_ulid(ulid: Ulid) -> Self {
        Self(ulid)
    }

    /// The smallest id anything created at `t` (to the millisecond) can have.
    pub fn first_at(t: chrono::DateTime<chrono::Utc>) -> Self {
        Self(Ulid::from_parts(ulid_millis(t), 0))
    }

    /// The largest id anything created at `t` (to the millisecond) can have.
    pub fn last_at(t: chrono::DateTime<chrono::Utc>) -> Self {
        Self(Ulid::from_parts(ulid_millis(t), u128::MAX))
    }

    /// The id just before this one, so an exclusive bound can be written as an inclusive one
    /// (`BETWEEN`); `None` before the very first id.
    pub fn before(self) -> Option<Self> {
        self.0.0.checked_sub(1).map(|n| Self(Ulid(n)))
    }
}

/// A ULID's 48-bit millisecond time, clamped rather than wrapped: a time before 1970 is the
/// first instant, one past the year 10889 the last.
fn ulid_millis(t: chrono::DateTime<chrono::Utc>) -> u64 {
    const MAX_MILLIS: u64 = (1 << 48) - 1;
    u64::try_from(t.timestamp_millis()).unwrap_or(0).min(MAX_MILLIS)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a message id (expected a 26-character ULID)")]
pub struct BadMessageId;

impl FromStr for MessageId {
    type Err = BadMessageId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ulid::from_string(s).map(Self).map_err(|_| BadMessageId)
    }
}

impl TryFrom<String> for MessageId {
    type Error = BadMessageId;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<MessageId> for String {
    fn from(value: MessageId) -> Self {
        value.0.to_string()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_round_trip_and_reject_garbage() {
        let id = MessageId::generate(chrono::Utc::now());
        assert_eq!(id.to_string().parse::<MessageId>(), Ok(id));
        assert_eq!("not-an-id".parse::<MessageId>(), Err(BadMessageId));
        assert_eq!("".parse::<MessageId>(), Err(BadMessageId));
    }

    #[test]
    fn bounds_at_a_time_enclose_every_id_of_that_millisecond() {
        let t = chrono::DateTime::from_timestamp_millis(1_790_000_000_123).unwrap_or_default();
        let id = MessageId::generate(t);
        assert!(MessageId::first_at(t) <= id && id <= MessageId::last_at(t));
        let next_ms = t + chrono::TimeDelta::milliseconds(1);
        assert_eq!(MessageId::last_at(t).0.0 + 1, MessageId::first_at(next_ms).0.0);
        assert_eq!(MessageId::first_at(next_ms).before(), Some(MessageId::last_at(t)));
        assert_eq!(MessageId::from_ulid(Ulid(0)).before(), None);
        let before_1970 = chrono::DateTime::from_timestamp(-5, 0).unwrap_or_default();
        assert_eq!(MessageId::first_at(before_1970), MessageId::from_ulid(Ulid(0)));
    }

    #[test]
    fn message_ids_sort_by_creation() {
        let first = MessageId::from_ulid(Ulid::from_parts(1_000, 5));
        let second = MessageId::from_ulid(Ulid::from_parts(2_000, 1));
        assert!(first < second);
        assert!(first.to_string() < second.to_string());
    }
}
