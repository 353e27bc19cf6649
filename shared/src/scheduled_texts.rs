//! Texts scheduled for later: when a time may be chosen, and the scheduler's minute sweep that
//! sends the ones whose time has come. A scheduled text waits as `scheduled` with its `send_at`
//! (keyed in `gsi2` under `SCHEDULED` by that time), and goes on the scheduled lane when due.

use crate::dynamo::StoreError;
use crate::messages_table::Update;
use crate::send_queue::QueueError;
use crate::services::Services;
use chrono::{DateTime, TimeDelta, Utc};

/// A time closer than this is "now": sending it at once is what the clinic meant.
pub const MIN_AHEAD: TimeDelta = TimeDelta::minutes(1);
/// The furthest ahead a text may be scheduled.
pub const MAX_AHEAD: TimeDelta = TimeDelta::days(35);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendAtRefused {
    #[error("a time with its offset is required, e.g. 2026-06-11T09:30:00-04:00")]
    NotATime,
    #[error("the time must be more than a minute ahead")]
    TooSoon,
    #[error("the time must be at most 35 days ahead")]
    TooFar,
}

/// A `send_at` as the API takes it: RFC 3339 with an offset, more than a minute and at most
/// 35 days after `now`.
pub fn parse_send_at(input: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, SendAtRefused> {
    let at = DateTime::parse_from_rfc3339(input.trim()).map_err(|_| SendAtRefused::NotATime)?.to_utc();
    check_send_at(at, now)
}

pub fn check_send_at(at: DateTime<Utc>, now: DateTime<Utc>) -> Result<DateTime<Utc>, SendAtRefused> {
    if at <= now + MIN_AHEAD {
        Err(SendAtRefused::TooSoon)
    } else if at > now + MAX_AHEAD {
        Err(SendAtRefused::TooFar)
    } else {
        Ok(at)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Moves every scheduled text due at `now` (the tick's time) to `queued` and puts its job on
/// its lane; returns how many went. A text whose job could not be queued goes back to
/// `scheduled`, so the next tick tries again rather than leaving it with no job.
pub async fn release_due(services: &Services, now: DateTime<Utc>) -> Result<usize, ReleaseError> {
    let mut released = 0;
    for id in services.messages.scheduled_due(now).await? {
        let Some(before) = services.messages.get(&id).await? else { continue };
        let Update::Applied(message) = services.messages.update_from(&before, |m| m.released(now)).await? else {
            continue;
        };
        crate::mailbox_actions::queue_if_due(
            services,
            &before,
            &message,
            "could not be queued; tried again next minute",
            now,
        )
        .await?;
        released += 1;
    }
    Ok(released)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default()
    }

    #[test]
    fn a_time_must_be_more_than_a_minute_and_at_most_35_days_ahead() {
        let now = t0();
        assert_eq!(check_send_at(now + TimeDelta::seconds(61), now), Ok(now + TimeDelta::seconds(61)));
        assert_eq!(check_send_at(now + MIN_AHEAD, now), Err(SendAtRefused::TooSoon));
        assert_eq!(check_send_at(now - TimeDelta::hours(1), now), Err(SendAtRefused::TooSoon));
        assert_eq!(check_send_at(now + MAX_AHEAD, now), Ok(now + MAX_AHEAD));
        assert_eq!(check_send_at(now + MAX_AHEAD + TimeDelta::seconds(1), now), Err(SendAtRefused::TooFar));
    }

    #[test]
    fn a_time_needs_its_offset() {
        let now = DateTime::from_timestamp(1_781_000_000, 0).unwrap_or_default();
        assert_eq!(parse_send_at("2026-06-11T09:30:00", now), Err(SendAtRefused::NotATime));
        assert_eq!(parse_send_at("tomorrow", now), Err(SendAtRefused::NotATime));
        let Ok(at) = parse_send_at("2026-06-11T09:30:00-04:00", now) else { panic!("a valid time") };
        assert_eq!(at.to_rfc3339(), "2026-06-11T13:30:00+00:00");
    }
}
