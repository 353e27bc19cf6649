//! Asking Twilio where a text is when its callbacks never came. Twilio does not retry a status
//! callback we answered with a 5xx (or never received), so without this a text could stay
//! `submitted` or `sent` for good. The scheduler's tick runs it: messages Twilio holds sit in a
//! sparse index keyed by when Twilio took them or they were last checked (`Message::quiet_since`),
//! so only those quiet for longer than `Timing::status_check_after` are read, each checked at
//! most `MAX_STATUS_CHECKS` times.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{info, warn};

use crate::dynamo::StoreError;
use crate::ids::MessageId;
use crate::message::Refused;
use crate::messages_table::Update;
use crate::services::Services;
use crate::twilio::client::TwilioError;

/// At most this many messages are asked about per tick, the longest quiet first, so a tick
/// after an outage of our webhook still ends within its timeout; the rest wait a minute.
pub const MAX_CHECKS_PER_TICK: usize = 200;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatusCheckReport {
    /// Messages asked about.
    pub checked: usize,
    /// Messages whose status (or error code) Twilio's answer changed.
    pub updated: usize,
    /// Twilio could not answer; they are asked again at the next tick.
    pub unanswered: usize,
}

pub async fn run(services: &Services, now: DateTime<Utc>) -> Result<StatusCheckReport, StoreError> {
    let mut report = StatusCheckReport::default();
    let quiet = services.messages.awaiting_status_since(now - services.timing.status_check_after).await?;
    for id in quiet.into_iter().take(MAX_CHECKS_PER_TICK) {
        match check(services, &id, now).await {
            Ok(Some(true)) => {
                report.checked += 1;
                report.updated += 1;
            }
            Ok(Some(false)) => report.checked += 1,
            Ok(None) => {}
            Err(CheckError::Twilio(why)) => {
                warn!(message_id = %id, error = %why, "Twilio could not say where a message is");
                report.unanswered += 1;
            }
            Err(CheckError::Store(why)) => return Err(why),
        }
    }
    Ok(report)
}

#[derive(Debug, thiserror::Error)]
enum CheckError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Twilio(#[from] TwilioError),
}

/// `Some(changed)` when the message was checked, `None` when it no longer waits (a callback
/// or another tick got there first).
async fn check(services: &Services, id: &MessageId, now: DateTime<Utc>) -> Result<Option<bool>, CheckError> {
    let Some(message) = services.messages.get(id).await? else {
        return Ok(None);
    };
    let Some(sid) = message.twilio_sid.clone().filter(|_| message.awaits_status()) else {
        return Ok(None);
    };
    let fetched = match services.twilio.fetch_message(&sid).await {
        Ok(fetched) => fetched,
        // Twilio has no such message (e.g. deleted): nothing to learn, so the check counts.
        Err(TwilioError::Refused { http_status: 404, .. }) => {
            let counted = services.messages.update(id, |m| {
                if m.awaits_status() && m.twilio_sid.as_deref() == Some(sid.as_str()) {
                    Ok(m.status_unchanged_at_twilio(now))
                } else {
                    Err(Refused::OtherSid(sid.clone()))
                }
            });
            return Ok(matches!(counted.await?, Update::Applied(_)).then_some(false));
        }
        Err(other) => return Err(other.into()),
    };
    let Some(twilio_status) = fetched.status else {
        return Err(TwilioError::Ambiguous("Twilio's message has no status".into()).into());
    };
    let before = message.status;
    let outcome =
        services.messages.update(id, |m| m.with_fetched_status(&sid, &twilio_status, fetched.error_code, now)).await?;
    Ok(match outcome {
        Update::Applied(next) => {
            let changed = next.status_checks == 0;
            if changed {
                info!(message_id = %id, from = %before, to = %next.status, "status fetched from Twilio");
            }
            Some(changed)
        }
        Update::Refused(..) | Update::Missing => None,
    })
}
