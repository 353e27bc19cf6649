//! Records that Twilio reached us for a connection: when a patient's text last arrived on it (and
//! which message it became), when a status callback last came for a text sent through it, and a
//! connection-level error a delivery callback reports. The health endpoint and the checks read
//! these from the connection's item.
//!
//! Cheap by design: a time is refreshed only when the stored one is more than
//! [`REFRESH_EVERY`] old (a conditional `UpdateItem`), and each warm function remembers what it
//! refreshed, so most webhooks make no request for this at all (a refused conditional write
//! still costs a write unit).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use tracing::warn;

use crate::clinic::{ConnectionError, is_connection_error};
use crate::connection_health::InboundSeen;
use crate::ids::{ClinicId, ConnectionId, MessageId};
use crate::message::Message;
use crate::services::Services;

/// The resolution of the recorded times.
pub const REFRESH_EVERY: TimeDelta = TimeDelta::minutes(1);

/// What arrived for a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionActivity {
    Inbound(InboundSeen),
    StatusCallback(DateTime<Utc>),
}

impl ConnectionActivity {
    fn kind(&self) -> &'static str {
        match self {
            Self::Inbound(_) => "inbound",
            Self::StatusCallback(_) => "status",
        }
    }
}

/// A connection and the kind of activity refreshed on it.
type RefreshKey = (ClinicId, ConnectionId, &'static str);

/// What this process refreshed lately, per connection and kind: a refresh within
/// [`REFRESH_EVERY`] of the last is not even asked for.
#[derive(Debug, Clone, Default)]
pub struct RecentRefreshes(Arc<Mutex<HashMap<RefreshKey, DateTime<Utc>>>>);

impl RecentRefreshes {
    /// `true` (and remembered as done at `now`) when no refresh of this kind happened here within
    /// the interval.
    fn take_turn(&self, key: RefreshKey, now: DateTime<Utc>) -> bool {
        let mut done = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match done.get(&key) {
            Some(last) if now - *last < REFRESH_EVERY && *last <= now => false,
            _ => {
                done.insert(key, now);
                true
            }
        }
    }

    fn forget(&self, key: &RefreshKey) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
    }
}

/// A patient's text was stored as `message_id` on this connection.
pub async fn inbound_received(
    services: &Services,
    clinic: &ClinicId,
    connection: &ConnectionId,
    message_id: &MessageId,
) {
    let at = services.clock.now().trunc_subsecs(0);
    refresh(services, clinic, connection, ConnectionActivity::Inbound(InboundSeen { at, message_id: *message_id }))
        .await;
}

/// Twilio posted a status callback for `message` (whatever became of it), with `error_code`.
pub async fn status_callback_received(services: &Services, message: &Message, error_code: Option<u32>) {
    let at = services.clock.now().trunc_subsecs(0);
    if let Some(code) = error_code.filter(|c| is_connection_error(*c)) {
        // Rare (a broken connection's texts), and worth knowing at once: not throttled.
        let error = ConnectionError { code, at };
        if let Err(e) =
            services.clinics.set_connection_error_by_id(&message.clinic_id, &message.connection_id, &error).await
        {
            warn!(error = ?e, code, "could not record a connection error from a status callback");
        }
    }
    refresh(services, &message.clinic_id, &message.connection_id, ConnectionActivity::StatusCallback(at)).await;
}

/// Bookkeeping after the webhook's real work: a failure is logged, never passed on (Twilio would
/// retry a callback that was recorded fine).
async fn refresh(services: &Services, clinic: &ClinicId, connection: &ConnectionId, activity: ConnectionActivity) {
    let now = services.clock.now().trunc_subsecs(0);
    let key = (clinic.clone(), connection.clone(), activity.kind());
    if !services.recent_refreshes.take_turn(key.clone(), now) {
        return;
    }
    let result = services.clinics.refresh_connection_activity(clinic, connection, activity, now - REFRESH_EVERY).await;
    if let Err(e) = result {
        services.recent_refreshes.forget(&key);
        warn!(error = ?e, %connection, "could not record the connection's webhook activity");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_refreshes_each_connection_and_kind_at_most_once_a_minute() {
        let start = DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default();
        let recent = RecentRefreshes::default();
        let key = |connection: &str, kind| (ClinicId::new("c"), ConnectionId::new(connection), kind);
        assert!(recent.take_turn(key("a", "status"), start));
        assert!(!recent.take_turn(key("a", "status"), start + TimeDelta::seconds(59)));
        assert!(recent.take_turn(key("a", "inbound"), start), "each kind has its own turn");
        assert!(recent.take_turn(key("b", "status"), start), "each connection has its own turn");
        assert!(recent.take_turn(key("a", "status"), start + TimeDelta::seconds(60)));
        assert!(recent.take_turn(key("a", "status"), start - TimeDelta::hours(1)), "a clock set back starts over");
        recent.forget(&key("b", "status"));
        assert!(recent.take_turn(key("b", "status"), start), "a failed write is tried again next time");
    }
}
