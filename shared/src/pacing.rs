//! Reserving a send slot for a message on its connection: the first second, now or later, where
//! the connection's throughput and the lane's share have room (`rate_limit`). The reservation is
//! one conditional `UpdateItem` on the window's counter item, so every concurrent sender sees the
//! same budget. A per-lane frontier remembers the first window that may still have room, so a
//! long backlog does not rescan full windows. Senders refused twice spread out over the free
//! places after the second they lost rather than all asking for the next one.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, TimeDelta, Utc};

use crate::counters_table::CountersTable;
use crate::dynamo::{Item, StoreError, get_consistent, n, number_of, s};
use crate::message::Lane;
use crate::rate_limit::{self, LaneUse, Limits, WINDOW_SECS, WindowUsage, nth_fit};

/// How far ahead a slot is searched for before the message is told to come back later.
const HORIZON_WINDOWS: i64 = 360;
/// A refused grant costs one request (it returns the window), so a burst of senders after the
/// same seconds can afford many.
const CONFLICT_RETRIES: u64 = 48;
/// After refusals a sender picks among at most 2^this free places (64): enough for the lanes'
/// 100 texts in flight to spread out within a few refusals.
const SPREAD_DOUBLINGS: u64 = 6;

fn lane_name(lane: Lane) -> &'static str {
    match lane {
        Lane::Interactive => "interactive",
        Lane::Scheduled => "scheduled",
        Lane::Bulk => "bulk",
    }
}

fn window_of(t: DateTime<Utc>) -> (i64, usize) {
    let secs = t.timestamp();
    let window = secs - secs.rem_euclid(WINDOW_SECS as i64);
    (window, usize::try_from(secs - window).unwrap_or(0))
}

fn frontier_sk(lane: Lane) -> String {
    format!("FRONTIER#{}", lane_name(lane))
}

/// A window's counter item: `s{i}` every lane's segments in second `i`; `scheduled`, `bulk` and
/// `shared` the shared lanes' segments over the window; `scheduled{i}`, `bulk{i}`, `shared{i}`
/// the same per second. `shared` is kept beside its parts because a condition cannot add.
fn usage_of(item: Option<&Item>) -> WindowUsage {
    let mut usage = WindowUsage::default();
    for (i, slot) in usage.per_second.iter_mut().enumerate() {
        *slot = number_of(item, &format!("s{i}"));
    }
    usage.lanes = LaneUse { scheduled: number_of(item, "scheduled"), bulk: number_of(item, "bulk") };
    for (i, lanes) in usage.lanes_per_second.iter_mut().enumerate() {
        *lanes = LaneUse {
            scheduled: number_of(item, &format!("scheduled{i}")),
            bulk: number_of(item, &format!("bulk{i}")),
        };
    }
    usage
}

/// A connection's rate-limit state for one lane as it stood when the sender read it, so a
/// reservation can start without reading it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSnapshot {
    window: i64,
    frontier: i64,
    usage: WindowUsage,
    /// The window after: a connection used to the full is granting there within seconds.
    next: Option<WindowUsage>,
}

/// A granted slot, with the window it is in as the grant left it: enough for a text that
/// misses the slot to take another without reading the window again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    pub slot: DateTime<Utc>,
    pub after: RateSnapshot,
}

impl RateSnapshot {
    /// Whether every segment of the second before `now`'s was granted: the connection is being
    /// used to the full. Unknown (so `false`) in a window's first second, whose previous second
    /// is in the window before.
    pub fn last_second_full(&self, now: DateTime<Utc>, per_second: u32) -> bool {
        let (window, offset) = window_of(now);
        window == self.window && offset > 0 && self.usage.per_second[offset - 1] >= per_second
    }

    /// The usage of `window` as read, if the snapshot holds it.
    fn usage_of(&self, window: i64) -> Option<WindowUsage> {
        if window == self.window {
            Some(self.usage)
        } else if window == self.window + WINDOW_SECS as i64 {
            self.next
        } else {
            None
        }
    }
}

/// The items a snapshot is made of: the lane's frontier, the current window and the next.
#[derive(Debug, Clone)]
pub struct SnapshotKeys {
    key: String,
    lane: Lane,
    window: i64,
}

/// What to read for a snapshot of `key`'s state for `lane` at `now`.
pub fn snapshot_keys(key: &str, lane: Lane, now: DateTime<Utc>) -> SnapshotKeys {
    SnapshotKeys { key: key.to_owned(), lane, window: window_of(now).0 }
}

impl SnapshotKeys {
    /// `[frontier, current window, next window]` as `(pk, sk)`.
    pub fn keys(&self) -> [(String, String); 3] {
        let pk = format!("RATE#{}", self.key);
        let next = self.window + WINDOW_SECS as i64;
        [(pk.clone(), frontier_sk(self.lane)), (pk.clone(), self.window.to_string()), (pk, next.to_string())]
    }

    pub fn read(&self, frontier: Option<&Item>, window: Option<&Item>, next: Option<&Item>) -> RateSnapshot {
        RateSnapshot {
            window: self.window,
            frontier: number_of(frontier, "window"),
            usage: usage_of(window),
            next: Some(usage_of(next)),
        }
    }
}

/// What a grant came to.
enum Granted {
    /// The window with the grant in it.
    Yes(WindowUsage),
    /// Someone took the room first; the window as it stands now, when DynamoDB said.
    No(Option<WindowUsage>),
}

impl CountersTable {
    async fn window_usage(&self, key: &str, window: i64) -> Result<WindowUsage, StoreError> {
        let item = get_consistent(self.client(), self.table(), format!("RATE#{key}"), window.to_string()).await?;
        Ok(usage_of(item.as_ref()))
    }

    /// Tries to grant `segments` in second `second` of `window` if the budget still allows it.
    async fn grant(
        &self,
        key: &str,
        window: i64,
        second: usize,
        lane: Lane,
        segments: u32,
        limits: &Limits,
    ) -> Result<Granted, StoreError> {
        // Every name through a placeholder: TOTAL and others are DynamoDB reserved words.
        let mut update = "ADD #s :n, #total :n SET #expires = :expires".to_owned();
        let mut condition = if segments > limits.per_second {
            "(attribute_not_exists(#s) OR #s = :zero)".to_owned()
        } else {
            "(attribute_not_exists(#s) OR #s <= :second_cap)".to_owned()
        };
        let mut request = self
            .client()
            .update_item()
            .table_name(self.table())
            .key("pk", s(format!("RATE#{key}")))
            .key("sk", s(window.to_string()))
            .expression_attribute_names("#s", format!("s{second}"))
            .expression_attribute_names("#total", "total")
            .expression_attribute_names("#expires", "expires_at")
            .expression_attribute_values(":n", n(segments))
            .expression_attribute_values(":expires", n(window + 3600));
        request = if segments > limits.per_second {
            request.expression_attribute_values(":zero", n(0))
        } else {
            request.expression_attribute_values(":second_cap", n(limits.per_second - segments))
        };
        if let (Some(window_cap), Some(second_cap)) = (limits.window.lane(lane), limits.second.lane(lane)) {
            let name = if lane == Lane::Scheduled { "scheduled" } else { "bulk" };
            update = "ADD #s :n, #total :n, #lane :n, #shared :n, #lane_s :n, #shared_s :n SET #expires = :expires"
                .to_owned();
            condition.push_str(
                " AND (attribute_not_exists(#lane) OR #lane <= :lane_cap) AND (attribute_not_exists(#shared) OR #shared <= :shared_cap)",
            );
            request = request
                .expression_attribute_names("#lane", name)
                .expression_attribute_names("#shared", "shared")
                .expression_attribute_names("#lane_s", format!("{name}{second}"))
                .expression_attribute_names("#shared_s", format!("shared{second}"))
                .expression_attribute_values(":lane_cap", n(window_cap.saturating_sub(segments)))
                .expression_attribute_values(
                    ":shared_cap",
                    n(limits.window.scheduled_and_bulk.saturating_sub(segments)),
                );
            // The same rule as `rate_limit::nth_fit`: at 1 MPS nothing shared beside it.
            if rate_limit::shared_lanes_alternate(limits) {
                for (i, beside) in rate_limit::neighbours(second).enumerate() {
                    let name = format!("#beside{i}");
                    condition.push_str(&format!(" AND (attribute_not_exists({name}) OR {name} = :none)"));
                    request = request.expression_attribute_names(name, format!("shared{beside}"));
                }
                request = request.expression_attribute_values(":none", n(0));
            }
            // The same rule as `rate_limit::nth_fit`: longer than the lane's share of a
            // second, it goes where the shared lanes have sent nothing yet.
            if segments > second_cap.min(limits.second.scheduled_and_bulk) {
                condition.push_str(" AND (attribute_not_exists(#shared_s) OR #shared_s = :zero)");
                request = request.expression_attribute_values(":zero", n(0));
            } else {
                condition.push_str(
                    " AND (attribute_not_exists(#lane_s) OR #lane_s <= :lane_s_cap) AND (attribute_not_exists(#shared_s) OR #shared_s <= :shared_s_cap)",
                );
                request = request
                    .expression_attribute_values(":lane_s_cap", n(second_cap - segments))
                    .expression_attribute_values(":shared_s_cap", n(limits.second.scheduled_and_bulk - segments));
            }
        }
        let result = request
            .update_expression(update)
            .condition_expression(condition)
            // A refused grant returns the window as it now stands, so the next try needs no read;
            // a grant returns it too, for a text that misses its slot and must take another.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(granted) => Ok(Granted::Yes(usage_of(granted.attributes.as_ref()))),
            Err(err) => match err.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(refused) => {
                    Ok(Granted::No(refused.item.as_ref().map(|item| usage_of(Some(item)))))
                }
                other => Err(StoreError::Dynamo(Box::new(other.into()))),
            },
        }
    }

    async fn frontier(&self, key: &str, lane: Lane) -> Result<i64, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .key("pk", s(format!("RATE#{key}")))
            .key("sk", s(frontier_sk(lane)))
            .send()
            .await?;
        Ok(number_of(out.item.as_ref(), "window"))
    }

    async fn advance_frontier(&self, key: &str, lane: Lane, window: i64) -> Result<(), StoreError> {
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .key("pk", s(format!("RATE#{key}")))
            .key("sk", s(frontier_sk(lane)))
            .update_expression("SET #w = :w, #expires = :expires")
            .expression_attribute_names("#expires", "expires_at")
            .condition_expression("attribute_not_exists(#w) OR #w < :w")
            .expression_attribute_names("#w", "window")
            .expression_attribute_values(":w", n(window))
            .expression_attribute_values(":expires", n(window + 3600))
            .send()
            .await;
        match result.map_err(StoreError::from) {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Reserves the first second at or after `now` where `segments` fit for `lane` on the
    /// connection identified by `key` (after two refusals, one a little later: the spreading
    /// below). `None` when nothing fits within the horizon (an hour).
    /// A `snapshot` read moments ago saves reading the frontier and the current window again.
    pub async fn reserve_send_slot(
        &self,
        key: &str,
        lane: Lane,
        segments: u32,
        limits: &Limits,
        now: DateTime<Utc>,
        snapshot: Option<RateSnapshot>,
    ) -> Result<Option<Reservation>, StoreError> {
        let (current, offset) = window_of(now);
        let step = WINDOW_SECS as i64;
        let snapshot = snapshot.filter(|s| s.usage_of(current).is_some());
        let frontier = match snapshot {
            Some(s) => s.frontier,
            None => self.frontier(key, lane).await?,
        };
        let mut window = current.max(frontier);
        let mut known_usage = snapshot.and_then(|s| s.usage_of(window));
        let mut conflicts = 0;
        // Free places left to others: none at first, more after each refusal.
        let mut skip = 0;
        while window <= current + HORIZON_WINDOWS * step {
            let from = if window == current { offset } else { 0 };
            let usage = match known_usage.take() {
                Some(usage) => usage,
                None => self.window_usage(key, window).await?,
            };
            match nth_fit(&usage, limits, lane, segments, from, skip) {
                Ok(second) => {
                    // Segments granted to others between this look at the window and the refusal.
                    let raced = match self.grant(key, window, second, lane, segments, limits).await? {
                        Granted::Yes(usage) => {
                            let at = DateTime::from_timestamp(window + i64::try_from(second).unwrap_or(0), 0);
                            let slot = at.unwrap_or(now).max(now - TimeDelta::seconds(1));
                            let next = snapshot.and_then(|s| s.usage_of(window + step));
                            let after = RateSnapshot { window, frontier, usage, next };
                            return Ok(Some(Reservation { slot, after }));
                        }
                        // Someone took it first: look at this window again, as it now stands.
                        Granted::No(as_it_stands) => {
                            known_usage = as_it_stands;
                            as_it_stands.map_or(1, |stands| stands.granted().saturating_sub(usage.granted()))
                        }
                    };
                    conflicts += 1;
                    if conflicts > CONFLICT_RETRIES {
                        return Ok(None);
                    }
                    // Many senders after the same second: spread the next tries out, in time and
                    // over the free places. Each asking for the first free place, n senders
                    // would make n²/2 requests between them (at 1 MPS, every refused sender but
                    // one is refused again); spread over the places, about n log n. Refused once,
                    // a sender still asks for the first free place, so a conversation text on a
                    // busy connection is not sent seconds away. Refused again, it picks among as
                    // many places as were granted while it was refused (about how many are
                    // racing, so the last few of a burst leave few seconds empty behind them),
                    // and at most 2^(refusals + 2), 64 at most.
                    let jitter = rand::random::<u64>() % (2 * conflicts.min(10) + 1);
                    tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
                    let spread = if conflicts < 2 {
                        1
                    } else {
                        raced.div_ceil(segments.max(1)).min(1 << (conflicts + 2).min(SPREAD_DOUBLINGS)).max(2)
                    };
                    skip = rand::random::<u32>() % spread;
                }
                Err(places) => {
                    // No place left here (the lane's share is spent, or every second is full), or
                    // fewer than the places to leave: the rest of those are in the next window.
                    if from == 0 && places == 0 {
                        self.advance_frontier(key, lane, window + step).await?;
                    }
                    skip -= places;
                    window += step;
                    known_usage = snapshot.and_then(|s| s.usage_of(window));
                }
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).expect("valid time").with_timezone(&Utc)
    }

    #[test]
    fn a_connection_is_busy_when_its_last_second_was_granted_in_full() {
        // 15:00:03 is the fourth second of the window that starts at 15:00:00.
        let now = at("2026-06-10T15:00:03.500Z");
        let mut usage = WindowUsage::default();
        usage.per_second[2] = 10;
        let snapshot = RateSnapshot { window: window_of(now).0, frontier: 0, usage, next: None };
        assert!(snapshot.last_second_full(now, 10));
        assert!(!snapshot.last_second_full(now, 11), "one segment still free");
        assert!(!snapshot.last_second_full(at("2026-06-10T15:00:04.100Z"), 10), "the second before was empty");
        assert!(!snapshot.last_second_full(at("2026-06-10T15:00:10.100Z"), 10), "another window");
    }
}
