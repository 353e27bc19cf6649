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
use crate::ids::{ClinicId, ConnectionId};
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

/// The key of a connection's rate limit (its windows are `RATE#<key>`).
pub fn rate_key(clinic: &ClinicId, connection: &ConnectionId) -> String {
    format!("{clinic}#{connection}")
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

/// One text's place in a grant: `segments` in second `second` of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    second: usize,
    segments: u32,
}

/// The most texts one grant asks for: each second it touches adds a few clauses to the
/// condition, and DynamoDB takes at most 4 KB of expression.
const MAX_PLACES_PER_GRANT: usize = 10;

/// The `UpdateItem` that grants `places` of one lane together: the counters each place adds to,
/// and the rules of `rate_limit::nth_fit` as a condition on the window as it stands, for the
/// segments the request adds to each second and to the window. Every name goes through a
/// placeholder: TOTAL and others are DynamoDB reserved words.
#[derive(Debug, Default)]
struct GrantExpression {
    update: String,
    condition: String,
    names: Vec<(String, String)>,
    values: Vec<(String, u32)>,
}

impl GrantExpression {
    /// `places` fit the window as the sender last saw it, each after the ones before (so a
    /// text longer than a second's share is alone in its second).
    fn new(places: &[Place], lane: Lane, limits: &Limits) -> Self {
        let mut seconds = std::collections::BTreeMap::<usize, (u32, u32)>::new();
        for place in places {
            let (sum, longest) = seconds.entry(place.second).or_default();
            *sum += place.segments;
            *longest = (*longest).max(place.segments);
        }
        let total: u32 = places.iter().map(|p| p.segments).sum();
        let mut e = Self::default();
        let mut adds = vec!["#total :total".to_owned()];
        let mut conditions = Vec::new();
        e.name("#total", "total");
        e.name("#expires", "expires_at");
        e.values.push((":total".to_owned(), total));
        let shared = limits.window.lane(lane).zip(limits.second.lane(lane));
        let lane_name = if lane == Lane::Scheduled { "scheduled" } else { "bulk" };
        if let Some((window_cap, _)) = shared {
            e.name("#lane", lane_name);
            e.name("#shared", "shared");
            adds.extend(["#lane :total".to_owned(), "#shared :total".to_owned()]);
            conditions.push(at_most("#lane", ":lane_cap"));
            conditions.push(at_most("#shared", ":shared_cap"));
            e.values.push((":lane_cap".to_owned(), window_cap.saturating_sub(total)));
            e.values.push((":shared_cap".to_owned(), limits.window.scheduled_and_bulk.saturating_sub(total)));
        }
        let mut besides = std::collections::BTreeSet::new();
        let mut zero = false;
        for (k, (second, (sum, longest))) in seconds.into_iter().enumerate() {
            e.name(&format!("#s{k}"), &format!("s{second}"));
            e.values.push((format!(":n{k}"), sum));
            adds.push(format!("#s{k} :n{k}"));
            if longest > limits.per_second {
                conditions.push(nothing_yet(&format!("#s{k}")));
                zero = true;
            } else {
                conditions.push(at_most(&format!("#s{k}"), &format!(":c{k}")));
                e.values.push((format!(":c{k}"), limits.per_second.saturating_sub(sum)));
            }
            let Some((_, second_cap)) = shared else { continue };
            e.name(&format!("#l{k}"), &format!("{lane_name}{second}"));
            e.name(&format!("#h{k}"), &format!("shared{second}"));
            adds.extend([format!("#l{k} :n{k}"), format!("#h{k} :n{k}")]);
            // The same rules as `rate_limit::nth_fit`: at 1 MPS nothing shared beside it, and a
            // text longer than the lane's share of a second goes where the shared lanes have sent
            // nothing yet.
            if rate_limit::shared_lanes_alternate(limits) {
                besides.extend(rate_limit::neighbours(second));
            }
            if longest > second_cap.min(limits.second.scheduled_and_bulk) {
                conditions.push(nothing_yet(&format!("#h{k}")));
                zero = true;
            } else {
                conditions.push(at_most(&format!("#l{k}"), &format!(":lc{k}")));
                conditions.push(at_most(&format!("#h{k}"), &format!(":hc{k}")));
                e.values.push((format!(":lc{k}"), second_cap.saturating_sub(sum)));
                e.values.push((format!(":hc{k}"), limits.second.scheduled_and_bulk.saturating_sub(sum)));
            }
        }
        for (i, beside) in besides.into_iter().enumerate() {
            e.name(&format!("#b{i}"), &format!("shared{beside}"));
            conditions.push(nothing_yet(&format!("#b{i}")));
            zero = true;
        }
        if zero {
            e.values.push((":zero".to_owned(), 0));
        }
        e.update = format!("ADD {} SET #expires = :expires", adds.join(", "));
        e.condition = conditions.join(" AND ");
        e
    }

    fn name(&mut self, placeholder: &str, name: &str) {
        self.names.push((placeholder.to_owned(), name.to_owned()));
    }
}

fn at_most(name: &str, cap: &str) -> String {
    format!("(attribute_not_exists({name}) OR {name} <= {cap})")
}

fn nothing_yet(name: &str) -> String {
    format!("(attribute_not_exists({name}) OR {name} = :zero)")
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

    /// Grants every place of `places` in `window` together, if the budget still allows all of
    /// them: one conditional `UpdateItem`, however many texts.
    async fn grant(
        &self,
        key: &str,
        window: i64,
        places: &[Place],
        lane: Lane,
        limits: &Limits,
    ) -> Result<Granted, StoreError> {
        let expression = GrantExpression::new(places, lane, limits);
        let mut request = self
            .client()
            .update_item()
            .table_name(self.table())
            .key("pk", s(format!("RATE#{key}")))
            .key("sk", s(window.to_string()))
            .update_expression(expression.update)
            .condition_expression(expression.condition)
            .expression_attribute_values(":expires", n(window + 3600))
            // A refused grant returns the window as it now stands, so the next try needs no read;
            // a grant returns it too, for a text that misses its slot and must take another.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_values(ReturnValue::AllNew);
        for (placeholder, name) in expression.names {
            request = request.expression_attribute_names(placeholder, name);
        }
        for (placeholder, value) in expression.values {
            request = request.expression_attribute_values(placeholder, n(value));
        }
        match request.send().await {
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
        let mut reserved = self.reserve_send_slots(key, lane, &[segments], limits, now, snapshot).await?;
        Ok(reserved.pop().flatten())
    }

    /// Reserves a second for each of several texts of `lane` on one connection (given by their
    /// segments, in the order they should go): each the first free place after the texts
    /// before it, granted up to `MAX_PLACES_PER_GRANT` at a time in one request. A batch of
    /// texts for one connection costs a grant or two instead of one each, and its texts do not
    /// race each other for the same second. `None` for a text with no room within the hour.
    pub async fn reserve_send_slots(
        &self,
        key: &str,
        lane: Lane,
        segments: &[u32],
        limits: &Limits,
        now: DateTime<Utc>,
        snapshot: Option<RateSnapshot>,
    ) -> Result<Vec<Option<Reservation>>, StoreError> {
        let mut reserved = vec![None; segments.len()];
        let (current, offset) = window_of(now);
        let step = WINDOW_SECS as i64;
        let snapshot = snapshot.filter(|s| s.usage_of(current).is_some());
        let frontier = match snapshot {
            Some(s) => s.frontier,
            None => self.frontier(key, lane).await?,
        };
        let mut window = current.max(frontier);
        let mut known_usage = snapshot.and_then(|s| s.usage_of(window));
        // The first text not reserved yet.
        let mut first = 0;
        let mut conflicts = 0;
        // Free places left to others: none at first, more after each refusal.
        let mut skip = 0;
        // Where the frontier moves: past the full windows this walk found from its start. It is
        // written once, when the walk reaches room: written for each full window passed, a
        // backlog's senders walking the same full windows would each write each (at 1 MPS most
        // of the grant requests).
        let mut passed_full: Option<i64> = None;
        let mut passing = true;
        while first < segments.len() && window <= current + HORIZON_WINDOWS * step {
            let from = if window == current { offset } else { 0 };
            let usage = match known_usage.take() {
                Some(usage) => usage,
                None => self.window_usage(key, window).await?,
            };
            let (places, free) = places_for(&usage, limits, lane, &segments[first..], from, skip);
            if places.is_empty() {
                // No place left here (the lane's share is spent, or every second is full), or
                // fewer than the places to leave: the rest of those are in the next window.
                // The current window full only from `from` on still counts as passed, but is
                // not passed itself: a sender just behind may still find room in it.
                if passing && free == 0 {
                    if from == 0 {
                        passed_full = Some(window + step);
                    }
                } else {
                    passing = false;
                }
                skip -= free;
                window += step;
                known_usage = snapshot.and_then(|s| s.usage_of(window));
                continue;
            }
            if let Some(to) = passed_full.take().filter(|to| *to > frontier) {
                self.advance_frontier(key, lane, to).await?;
            }
            passing = false;
            // Segments granted to others between this look at the window and the refusal.
            let raced = match self.grant(key, window, &places, lane, limits).await? {
                Granted::Yes(after) => {
                    let next = snapshot.and_then(|s| s.usage_of(window + step));
                    for (reservation, place) in reserved[first..].iter_mut().zip(&places) {
                        let at = DateTime::from_timestamp(window + i64::try_from(place.second).unwrap_or(0), 0);
                        let slot = at.unwrap_or(now).max(now - TimeDelta::seconds(1));
                        let after = RateSnapshot { window, frontier, usage: after, next };
                        *reservation = Some(Reservation { slot, after });
                    }
                    first += places.len();
                    known_usage = Some(after);
                    (conflicts, skip) = (0, 0);
                    continue;
                }
                // Someone took it first: look at this window again, as it now stands.
                Granted::No(as_it_stands) => {
                    known_usage = as_it_stands;
                    as_it_stands.map_or(1, |stands| stands.granted().saturating_sub(usage.granted()))
                }
            };
            conflicts += 1;
            if conflicts > CONFLICT_RETRIES {
                break;
            }
            // Many senders after the same second: spread the next tries out, in time and
            // over the free places. Each asking for the first free place, n senders
            // would make n²/2 requests between them (at 1 MPS, every refused sender but
            // one is refused again); spread over the places, about n log n. Refused once,
            // a sender still asks for the first free place, so a conversation text on a
            // busy connection is not sent seconds away. Refused again, it picks among as
            // many places as were granted while it was refused (about how many are
            // racing, so the last few of a burst leave few seconds empty behind them),
            // and at most 2^(refusals + 2), 64 at most. A batch's grant counts the others in
            // batches like its own: spread over the places granted, batches of ten at 1 MPS
            // would leave up to nine seconds empty behind them, which only later texts fill.
            let jitter = rand::random::<u64>() % (2 * conflicts.min(10) + 1);
            tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
            let asked: u32 = places.iter().map(|p| p.segments).sum::<u32>().max(1);
            let spread = if conflicts < 2 {
                1
            } else {
                raced.div_ceil(asked).min(1 << (conflicts + 2).min(SPREAD_DOUBLINGS)).max(2)
            };
            skip = rand::random::<u32>() % spread;
        }
        if let Some(to) = passed_full.filter(|to| *to > frontier) {
            self.advance_frontier(key, lane, to).await?;
        }
        Ok(reserved)
    }
}

/// Places in a window as `usage` shows it for the texts of `segments`, in order, at most
/// `MAX_PLACES_PER_GRANT`: the first at free place number `skip` at or after second `from`
/// (`rate_limit::nth_fit`), each next one at the first free place after the one before. Stops
/// at the first text the window has no room for; when that is the first, also says how many
/// free places it had.
fn places_for(
    usage: &WindowUsage,
    limits: &Limits,
    lane: Lane,
    segments: &[u32],
    from: usize,
    skip: u32,
) -> (Vec<Place>, u32) {
    let mut usage = *usage;
    let mut places: Vec<Place> = Vec::new();
    for &segments in segments.iter().take(MAX_PLACES_PER_GRANT) {
        let (from, skip) = places.last().map_or((from, skip), |last| (last.second, 0));
        match nth_fit(&usage, limits, lane, segments, from, skip) {
            Ok(second) => {
                usage.take(lane, segments, second);
                places.push(Place { second, segments });
            }
            Err(free) => return (places, free),
        }
    }
    (places, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).expect("valid time").with_timezone(&Utc)
    }

    /// The `#name` and `:value` placeholders an expression uses.
    fn placeholders(expression: &str, sigil: char) -> std::collections::BTreeSet<String> {
        let mut found = std::collections::BTreeSet::new();
        let mut rest = expression;
        while let Some(at) = rest.find(sigil) {
            let tail = &rest[at..];
            let end = tail[1..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(tail.len(), |e| e + 1);
            found.insert(tail[..end].to_owned());
            rest = &tail[end..];
        }
        found
    }

    fn check_placeholders(e: &GrantExpression) {
        let text = format!("{} {}", e.update, e.condition);
        let names: std::collections::BTreeSet<_> = e.names.iter().map(|(p, _)| p.clone()).collect();
        let mut values: std::collections::BTreeSet<_> = e.values.iter().map(|(p, _)| p.clone()).collect();
        values.insert(":expires".to_owned());
        // DynamoDB refuses a request that defines a placeholder it does not use, or uses one it
        // does not define.
        assert_eq!(placeholders(&text, '#'), names, "{text}");
        assert_eq!(placeholders(&text, ':'), values, "{text}");
        assert_eq!(names.len(), e.names.len(), "a name defined twice");
    }

    #[test]
    fn a_grant_for_many_texts_adds_each_second_once_and_fits_dynamodbs_limits() {
        use crate::rate_limit::{Shares, limits};
        let place = |second, segments| Place { second, segments };
        // Ten texts, two to a second, on the scheduled lane at 20 MPS.
        let places: Vec<_> = (0..10).map(|i| place(i / 2, 1 + (i % 2) as u32)).collect();
        let e = GrantExpression::new(&places, Lane::Scheduled, &limits(20, Shares::default()));
        check_placeholders(&e);
        let value = |name: &str| e.values.iter().find(|(p, _)| p == name).map(|(_, v)| *v);
        assert_eq!(value(":total"), Some(15));
        assert_eq!(value(":n0"), Some(3), "second 0 adds both of its texts");
        assert_eq!(value(":c0"), Some(17), "room for them in a 20-segment second");
        assert_eq!(value(":lane_cap"), Some(140 - 15), "the scheduled lane's 70% of the window");
        assert_eq!(value(":n5"), None, "five seconds, five counters");

        // The longest condition: ten seconds at 1 MPS, where the shared lanes alternate and
        // each second brings its neighbours. DynamoDB takes 4 KB of expression.
        let places: Vec<_> = (0..10).map(|second| place(second, 2)).collect();
        let e = GrantExpression::new(&places, Lane::Bulk, &limits(1, Shares::default()));
        check_placeholders(&e);
        assert!(e.update.len() + e.condition.len() < 4096, "{} bytes", e.update.len() + e.condition.len());

        let e = GrantExpression::new(&[place(3, 1)], Lane::Interactive, &limits(5, Shares::default()));
        check_placeholders(&e);
        assert_eq!(e.condition, "(attribute_not_exists(#s0) OR #s0 <= :c0)", "conversations: only the second's room");
    }

    #[test]
    fn places_for_a_batch_follow_each_other_and_stop_where_the_window_is_full() {
        use crate::rate_limit::{Shares, limits};
        let at_1 = limits(1, Shares::default());
        let mut usage = WindowUsage::default();
        usage.per_second[2] = 1;
        let (places, _) = places_for(&usage, &at_1, Lane::Interactive, &[1; 12], 1, 0);
        let seconds: Vec<_> = places.iter().map(|p| p.second).collect();
        assert_eq!(seconds, [1, 3, 4, 5, 6, 7, 8, 9], "second 2 was taken; the rest go in the next window");
        let (places, _) = places_for(&usage, &at_1, Lane::Interactive, &[1; 3], 0, 2);
        let seconds: Vec<_> = places.iter().map(|p| p.second).collect();
        assert_eq!(seconds, [3, 4, 5], "the first after two places left to others, then the next ones");
        let (places, _) = places_for(&WindowUsage::default(), &at_1, Lane::Scheduled, &[1; 10], 0, 0);
        let seconds: Vec<_> = places.iter().map(|p| p.second).collect();
        assert_eq!(seconds, [0, 2, 4, 6, 8], "at 1 MPS the shared lanes take every other second");
        let (places, free) = places_for(&usage, &at_1, Lane::Interactive, &[1], 9, 3);
        assert!(places.is_empty());
        assert_eq!(free, 1, "one place in the window, three to leave: the next window leaves two");
        let most =
            places_for(&WindowUsage::default(), &limits(100, Shares::default()), Lane::Interactive, &[1; 50], 0, 0);
        assert_eq!(most.0.len(), MAX_PLACES_PER_GRANT);
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
