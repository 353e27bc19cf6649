//! Webhook requests refused because their `X-Twilio-Signature` did not verify, counted per route
//! and hour in the `counters` table so the connection health can show the last 24 hours.
//!
//! Counted for the whole deployment, never per clinic: nothing in a request that failed its
//! signature is trusted, not even the `To` number or the message id that would name a clinic.
//! The EMF metric (`metrics::webhook_signature_rejected`) is still written for alarms.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use tracing::warn;

use crate::services::Services;

/// The partition every hourly item lives in: one `Query` reads a day of them.
pub const PARTITION: &str = "WEBHOOK_REJECTIONS";

/// The webhook routes Twilio calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookRoute {
    Status,
    Inbound,
}

impl WebhookRoute {
    pub const ALL: [WebhookRoute; 2] = [WebhookRoute::Status, WebhookRoute::Inbound];

    /// The route's path below the public base URL.
    pub fn path(self) -> &'static str {
        match self {
            Self::Status => "/twilio/status",
            Self::Inbound => "/twilio/inbound",
        }
    }

    /// Its name in counter keys and in the health report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Inbound => "inbound",
        }
    }
}

/// The hour a rejection is counted in, as a sortable key part (`2026-06-10T13`).
pub fn hour_key(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H").to_string()
}

/// The sort key of a route's count for the hour of `at`.
pub fn item_key(at: DateTime<Utc>, route: &str) -> String {
    format!("{}#{route}", hour_key(at))
}

/// The sort-key range of the last 24 hourly items: from the hour 23 hours ago to the end of the
/// current hour (`~` sorts after every route name).
pub fn last_day(now: DateTime<Utc>) -> (String, String) {
    (hour_key(now - TimeDelta::hours(23)), format!("{}#~", hour_key(now)))
}

/// Rejections per route over the last 24 hourly items.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RejectionsLastDay {
    pub status: u64,
    pub inbound: u64,
}

/// Sums hourly items (sort key, count) per route; items of other routes are ignored.
pub fn sum(items: &[(String, u64)]) -> RejectionsLastDay {
    let mut total = RejectionsLastDay::default();
    for (sk, count) in items {
        match sk.split_once('#').map(|(_, route)| route) {
            Some(route) if route == WebhookRoute::Status.name() => total.status += count,
            Some(route) if route == WebhookRoute::Inbound.name() => total.inbound += count,
            _ => {}
        }
    }
    total
}

/// Counts one rejected request on `route`. A failure to count is logged: the request is refused
/// either way.
pub async fn count(services: &Services, route: WebhookRoute) {
    if let Err(e) = services.counters.count_webhook_rejection(route.name(), services.clock.now()).await {
        warn!(error = ?e, route = route.path(), "could not count a webhook signature rejection");
    }
}

/// The last day's rejections, per route.
pub async fn last_day_totals(services: &Services) -> Result<RejectionsLastDay, crate::dynamo::StoreError> {
    Ok(sum(&services.counters.webhook_rejections(services.clock.now()).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).map(|t| t.to_utc()).unwrap_or_default()
    }

    #[test]
    fn an_hour_is_one_item_per_route() {
        let now = at("2026-06-10T13:59:59Z");
        assert_eq!(item_key(now, "status"), "2026-06-10T13#status");
        assert_eq!(item_key(at("2026-06-10T13:00:00Z"), "status"), item_key(now, "status"));
    }

    #[test]
    fn the_last_day_is_this_hour_and_the_twenty_three_before() {
        let now = at("2026-06-10T13:20:00Z");
        let (from, to) = last_day(now);
        let inside = |key: &str| from.as_str() <= key && key <= to.as_str();
        assert!(inside(&item_key(now, "inbound")) && inside(&item_key(now, "status")));
        assert!(inside(&item_key(at("2026-06-09T14:00:00Z"), "status")), "23 hours before");
        assert!(!inside(&item_key(at("2026-06-09T13:59:00Z"), "status")), "24 hours before");
        assert!(!inside(&item_key(at("2026-06-10T14:00:00Z"), "status")), "the next hour");
    }

    #[test]
    fn counts_are_summed_per_route() {
        let items = [
            ("2026-06-10T12#status".to_owned(), 2),
            ("2026-06-10T13#status".to_owned(), 3),
            ("2026-06-10T13#inbound".to_owned(), 4),
            ("2026-06-10T13#something-else".to_owned(), 9),
        ];
        assert_eq!(sum(&items), RejectionsLastDay { status: 5, inbound: 4 });
        assert_eq!(sum(&[]), RejectionsLastDay::default());
    }
}
