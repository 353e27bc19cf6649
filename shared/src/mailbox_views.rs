//! The mailbox's rules, without I/O: which bucket a message is in, which buckets make each view,
//! how pages from several buckets merge, what a search may ask for, and what a delete or
//! restore of a selection answers.
//!
//! Views are filters, not folders: an undelivered text shows in Sent (with its error), in Failed
//! (to be resent) and in the Outbox. Each message is in exactly one *bucket*, stored on the
//! message as `gsi4pk = VIEW#<clinic>#<bucket>`, `gsi4sk = <id>`; a view is the union of its
//! buckets. docs/data-model.md has the queries.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::ids::{ClinicId, MessageId, UserId};
use crate::message::{Message, Refused};
use crate::message_status::MessageStatus;
use crate::phone::E164;

/// How far back Ready to approve looks: texts older than this expire instead of going out.
pub const APPROVAL_WINDOW: TimeDelta = crate::messages_table::APPROVAL_LIFETIME;

/// The most messages a view or search page holds, and the default.
pub const MAX_PAGE: usize = 100;
pub const DEFAULT_PAGE: usize = 50;

/// The longest date range one search covers.
pub const MAX_SEARCH_RANGE: TimeDelta = TimeDelta::days(31);

/// The most ids one delete or restore takes (one `BatchGetItem` worth).
pub const MAX_SELECTION: usize = 100;

/// Where a message is kept for the views; one per message, computed from its state alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    Received,
    Pending,
    Approve,
    Sent,
    Undelivered,
    Failed,
    DidNotTrigger,
    /// Expired or cancelled: in All only.
    Closed,
    /// Any message with the deleted mark, whatever its status.
    Deleted,
}

impl Bucket {
    pub const ALL: [Bucket; 9] = [
        Bucket::Received,
        Bucket::Pending,
        Bucket::Approve,
        Bucket::Sent,
        Bucket::Undelivered,
        Bucket::Failed,
        Bucket::DidNotTrigger,
        Bucket::Closed,
        Bucket::Deleted,
    ];

    pub fn of(status: MessageStatus, deleted: bool) -> Self {
        use MessageStatus::*;
        if deleted {
            return Bucket::Deleted;
        }
        match status {
            Received => Bucket::Received,
            Scheduled | Queued | Deferred | Sending => Bucket::Pending,
            AwaitingApproval => Bucket::Approve,
            Submitted | Sent | Delivered => Bucket::Sent,
            Undelivered => Bucket::Undelivered,
            Failed => Bucket::Failed,
            Skipped => Bucket::DidNotTrigger,
            Expired | Cancelled => Bucket::Closed,
        }
    }

    pub fn of_message(message: &Message) -> Self {
        Self::of(message.status, message.deleted.is_some())
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Received => "received",
            Bucket::Pending => "pending",
            Bucket::Approve => "approve",
            Bucket::Sent => "sent",
            Bucket::Undelivered => "undelivered",
            Bucket::Failed => "failed",
            Bucket::DidNotTrigger => "did_not_trigger",
            Bucket::Closed => "closed",
            Bucket::Deleted => "deleted",
        }
    }

    /// The bucket's partition in `gsi4`.
    pub fn partition(self, clinic: &ClinicId) -> String {
        format!("VIEW#{clinic}#{}", self.as_str())
    }
}

/// `gsi4pk` and `gsi4sk` of a message: written with every write of the item, so the views can
/// never disagree with the state. The index projects keys only, so a write that leaves the
/// bucket as it was costs the index nothing.
pub fn index_keys(message: &Message) -> [(&'static str, String); 2] {
    [("gsi4pk", Bucket::of_message(message).partition(&message.clinic_id)), ("gsi4sk", message.id.to_string())]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    All,
    Received,
    Pending,
    ReadyToApprove,
    Outbox,
    Sent,
    Failed,
    DidNotTrigger,
    Deleted,
}

impl View {
    pub const ALL: [View; 9] = [
        View::All,
        View::Received,
        View::Pending,
        View::ReadyToApprove,
        View::Outbox,
        View::Sent,
        View::Failed,
        View::DidNotTrigger,
        View::Deleted,
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|view| view.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            View::All => "all",
            View::Received => "received",
            View::Pending => "pending",
            View::ReadyToApprove => "ready_to_approve",
            View::Outbox => "outbox",
            View::Sent => "sent",
            View::Failed => "failed",
            View::DidNotTrigger => "did_not_trigger",
            View::Deleted => "deleted",
        }
    }

    /// The buckets the view shows.
    pub fn buckets(self) -> &'static [Bucket] {
        use Bucket as B;
        match self {
            View::All => {
                &[B::Received, B::Pending, B::Approve, B::Sent, B::Undelivered, B::Failed, B::DidNotTrigger, B::Closed]
            }
            View::Received => &[B::Received],
            View::Pending => &[B::Pending],
            View::ReadyToApprove => &[B::Approve],
            View::Outbox => &[B::Pending, B::Failed, B::Undelivered],
            View::Sent => &[B::Sent, B::Undelivered],
            View::Failed => &[B::Failed, B::Undelivered],
            View::DidNotTrigger => &[B::DidNotTrigger],
            View::Deleted => &[B::Deleted],
        }
    }

    /// The ids the view can show at `now`: Ready to approve only the last 30 days' texts.
    pub fn range(self, now: DateTime<Utc>) -> IdRange {
        match self {
            View::ReadyToApprove => IdRange::since(MessageId::first_at(now - APPROVAL_WINDOW)),
            _ => IdRange::everything(),
        }
    }

    pub fn shows(self, message: &Message) -> bool {
        self.buckets().contains(&Bucket::of_message(message))
    }
}

/// Ids from `oldest` to `newest`, both included. ULIDs are fixed-length, so the strings sort
/// exactly as the ids do and a range is one `BETWEEN` on an index's sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub oldest: MessageId,
    pub newest: MessageId,
}

impl IdRange {
    pub fn everything() -> Self {
        Self { oldest: MessageId::from_ulid(ulid::Ulid(0)), newest: MessageId::from_ulid(ulid::Ulid(u128::MAX)) }
    }

    pub fn since(oldest: MessageId) -> Self {
        Self { oldest, ..Self::everything() }
    }

    /// What is left to show after a page that ended at `cursor` (shown, or the last one looked
    /// at): the ids strictly older. `None` when nothing is left.
    pub fn older_than(self, cursor: Option<MessageId>) -> Option<Self> {
        let newest = match cursor {
            None => self.newest,
            Some(cursor) => cursor.before()?.min(self.newest),
        };
        (self.oldest <= newest).then_some(Self { newest, ..self })
    }
}

/// One page: the ids from each bucket (each newest first, each holding up to `limit + 1` of
/// its ids in the range, or all of them) merged newest first. The page ends at the `limit`-th
/// id; the next page starts right below it, so however many buckets a view has, every message
/// shows exactly once. The cursor is given only when an id is left beyond the page.
pub fn merge_newest_first(lists: Vec<Vec<MessageId>>, limit: usize) -> (Vec<MessageId>, Option<MessageId>) {
    let mut merged: Vec<MessageId> = lists.into_iter().flatten().collect();
    merged.sort_unstable_by(|a, b| b.cmp(a));
    // A message that changed bucket between two of the queries can be in two lists.
    merged.dedup();
    let more = merged.len() > limit;
    merged.truncate(limit);
    let cursor = if more { merged.last().copied() } else { None };
    (merged, cursor)
}

/// The `Limit` of the next `Query` when a filter drops items: at first one more than the page
/// still needs (so a query no item fails reads the page and learns whether more follow), then
/// as many as the items kept so far suggest, with a margin, between that and 1,000.
pub fn next_query_limit(still_needed: usize, evaluated: usize, kept: usize) -> i32 {
    let floor = still_needed + 1;
    let estimate = match (evaluated, kept) {
        (0, _) => floor,
        (seen, 0) => seen.saturating_mul(4),
        (seen, kept) => still_needed.saturating_mul(seen).div_ceil(kept).saturating_mul(5).div_ceil(4) + 1,
    };
    i32::try_from(estimate.clamp(floor, 1000.max(floor))).unwrap_or(i32::MAX)
}

/// A search over the clinic's messages (never deleted ones) created in `[from, to]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub contact_id: Option<String>,
    /// Matches the number a text went to or came from.
    pub number: Option<E164>,
    pub status: Option<MessageStatus>,
    /// A Twilio error code of the message's current failure.
    pub error_code: Option<u32>,
    /// Who created the message.
    pub user: Option<UserId>,
    /// Part of the body, any case.
    pub text: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SearchRangeError {
    #[error("`to` is before `from`")]
    Reversed,
    #[error("the range is longer than 31 days")]
    TooLong,
}

impl Search {
    /// A search over `[from, to]` with no other criteria, if the range can be searched.
    pub fn between(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Self, SearchRangeError> {
        if to < from {
            return Err(SearchRangeError::Reversed);
        }
        if to - from > MAX_SEARCH_RANGE {
            return Err(SearchRangeError::TooLong);
        }
        Ok(Self { from, to, contact_id: None, number: None, status: None, error_code: None, user: None, text: None })
    }

    pub fn range(&self) -> IdRange {
        IdRange { oldest: MessageId::first_at(self.from), newest: MessageId::last_at(self.to) }
    }

    /// The criteria DynamoDB cannot judge: the body, in any case.
    pub fn body_matches(&self, message: &Message) -> bool {
        self.text.as_deref().is_none_or(|text| contains_ignoring_case(message.body.as_str(), text))
    }

    /// Every criterion, as the stored message is judged (the store asks DynamoDB for most of
    /// them; this is the whole rule in one place).
    pub fn matches(&self, message: &Message) -> bool {
        let id = message.id;
        let range = self.range();
        message.deleted.is_none()
            && range.oldest <= id
            && id <= range.newest
            && self.contact_id.as_ref().is_none_or(|c| message.contact_id.as_ref() == Some(c))
            && self.number.as_ref().is_none_or(|n| message.to.as_ref() == Some(n) || message.from.as_ref() == Some(n))
            && self.status.is_none_or(|s| message.status == s)
            && self.error_code.is_none_or(|code| message.failure.as_ref().and_then(|f| f.code) == Some(code))
            && self.user.as_ref().is_none_or(|u| message.created_by.as_ref() == Some(u))
            && self.body_matches(message)
    }
}

fn contains_ignoring_case(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// Delete or restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailboxAction {
    Delete,
    Restore,
}

impl MailboxAction {
    pub fn apply(self, message: &Message, by: &UserId, now: DateTime<Utc>) -> Result<Message, Refused> {
        match self {
            MailboxAction::Delete => message.deleted_by(by, now),
            MailboxAction::Restore => message.restored(by, now),
        }
    }

    pub fn done(self) -> Outcome {
        match self {
            MailboxAction::Delete => Outcome::Deleted,
            MailboxAction::Restore => Outcome::Restored,
        }
    }

    /// What a refusal means: a delete is refused only for a deleted message, a restore only for
    /// one that is not deleted.
    pub fn refused(self) -> Outcome {
        match self {
            MailboxAction::Delete => Outcome::AlreadyDeleted,
            MailboxAction::Restore => Outcome::NotDeleted,
        }
    }
}

/// What happened to one id of a selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Deleted,
    Restored,
    /// Unknown, malformed or another clinic's: the same answer for all three.
    NotFound,
    AlreadyDeleted,
    NotDeleted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    #[error("no ids were given")]
    Empty,
    #[error("{0} ids were given; at most {MAX_SELECTION} can be changed at once")]
    TooMany(usize),
}

/// The distinct ids of a selection, in the order first given.
pub fn selection(ids: &[String]) -> Result<Vec<String>, SelectionError> {
    let mut distinct: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        if seen.insert(id.as_str()) {
            distinct.push(id.clone());
        }
    }
    match distinct.len() {
        0 => Err(SelectionError::Empty),
        n if n > MAX_SELECTION => Err(SelectionError::TooMany(n)),
        _ => Ok(distinct),
    }
}

/// How a whole delete or restore is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// At least one id changed: 200 with every id's outcome.
    Changed,
    /// No id names a message of the clinic: 404.
    NoneFound,
    /// Nothing changed, and some ids were already as asked: 409.
    NoneChanged,
}

pub fn verdict(outcomes: &[Outcome]) -> Verdict {
    if outcomes.iter().any(|o| matches!(o, Outcome::Deleted | Outcome::Restored)) {
        Verdict::Changed
    } else if outcomes.iter().all(|o| *o == Outcome::NotFound) {
        Verdict::NoneFound
    } else {
        Verdict::NoneChanged
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use ulid::Ulid;

    use super::*;
    use crate::ids::ConnectionId;
    use crate::message::{Lane, MessageBody};

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default()
    }

    fn message(status: MessageStatus) -> Message {
        let to = E164::parse("+14155550123", None).ok();
        let body = MessageBody::parse("Max is due for his vaccination").ok();
        let (Some(to), Some(body)) = (to, body) else { panic!("valid fixtures") };
        let mut m = Message::new_outbound(
            ClinicId::new("c1"),
            to,
            body,
            ConnectionId::new("k1"),
            Lane::Interactive,
            None,
            t0(),
        );
        m.status = status;
        m
    }

    fn id(n: u128) -> MessageId {
        MessageId::from_ulid(Ulid(n))
    }

    #[test]
    fn every_status_has_one_bucket_and_the_deleted_mark_overrides_it() {
        use MessageStatus::*;
        let expected = [
            (AwaitingApproval, Bucket::Approve),
            (Scheduled, Bucket::Pending),
            (Queued, Bucket::Pending),
            (Deferred, Bucket::Pending),
            (Sending, Bucket::Pending),
            (Submitted, Bucket::Sent),
            (Sent, Bucket::Sent),
            (Delivered, Bucket::Sent),
            (Undelivered, Bucket::Undelivered),
            (Failed, Bucket::Failed),
            (Skipped, Bucket::DidNotTrigger),
            (Expired, Bucket::Closed),
            (Cancelled, Bucket::Closed),
            (Received, Bucket::Received),
        ];
        assert_eq!(expected.len(), MessageStatus::ALL.len());
        for status in MessageStatus::ALL {
            let bucket = expected.iter().find(|(s, _)| *s == status).map(|(_, b)| *b);
            assert_eq!(Some(Bucket::of(status, false)), bucket, "{status}");
            assert_eq!(Bucket::of(status, true), Bucket::Deleted, "{status}");
        }
    }

    #[test]
    fn views_show_what_the_product_promises() {
        use MessageStatus::*;
        let shown = |view: View| -> Vec<MessageStatus> {
            MessageStatus::ALL.into_iter().filter(|s| view.shows(&message(*s))).collect()
        };
        assert_eq!(shown(View::Received), [Received]);
        assert_eq!(shown(View::Pending), [Scheduled, Queued, Deferred, Sending]);
        assert_eq!(shown(View::ReadyToApprove), [AwaitingApproval]);
        assert_eq!(shown(View::Outbox), [Scheduled, Queued, Deferred, Sending, Undelivered, Failed]);
        assert_eq!(shown(View::Sent), [Submitted, Sent, Delivered, Undelivered]);
        assert_eq!(shown(View::Failed), [Undelivered, Failed]);
        assert_eq!(shown(View::DidNotTrigger), [Skipped]);
        assert_eq!(shown(View::All), MessageStatus::ALL);
        assert!(shown(View::Deleted).is_empty());
        for status in MessageStatus::ALL {
            let Ok(deleted) = message(status).deleted_by(&UserId::new("u1"), t0()) else { panic!("deletes") };
            let views: Vec<View> = View::ALL.into_iter().filter(|v| v.shows(&deleted)).collect();
            assert_eq!(views, [View::Deleted], "{status}");
        }
        // The views cover every bucket, and All is every bucket but Deleted.
        for bucket in Bucket::ALL {
            assert_eq!(View::All.buckets().contains(&bucket), bucket != Bucket::Deleted);
        }
    }

    #[test]
    fn view_names_round_trip_and_unknown_ones_are_refused() {
        for view in View::ALL {
            assert_eq!(View::parse(view.as_str()), Some(view));
        }
        assert_eq!(View::parse("inbox"), None);
        assert_eq!(View::parse("All"), None);
    }

    #[test]
    fn index_keys_follow_the_state() {
        let m = message(MessageStatus::Queued);
        let [(pk_name, pk), (sk_name, sk)] = index_keys(&m);
        assert_eq!((pk_name, pk.as_str(), sk_name), ("gsi4pk", "VIEW#c1#pending", "gsi4sk"));
        assert_eq!(sk, m.id.to_string());
        let Ok(deleted) = m.deleted_by(&UserId::new("u1"), t0()) else { panic!("deletes") };
        assert_eq!(index_keys(&deleted)[0].1, "VIEW#c1#deleted");
    }

    #[test]
    fn ready_to_approve_covers_the_last_30_days() {
        let range = View::ReadyToApprove.range(t0());
        assert_eq!(range.oldest, MessageId::first_at(t0() - TimeDelta::days(30)));
        assert!(MessageId::generate(t0() - TimeDelta::days(30) - TimeDelta::milliseconds(1)) < range.oldest);
        assert_eq!(View::Pending.range(t0()), IdRange::everything());
    }

    #[test]
    fn a_cursor_leaves_the_strictly_older_ids() {
        let all = IdRange::everything();
        assert_eq!(all.older_than(None), Some(all));
        assert_eq!(all.older_than(Some(id(10))), Some(IdRange { oldest: id(0), newest: id(9) }));
        assert_eq!(all.older_than(Some(id(0))), None);
        let since = IdRange::since(id(5));
        assert_eq!(since.older_than(Some(id(6))), Some(IdRange { oldest: id(5), newest: id(5) }));
        assert_eq!(since.older_than(Some(id(5))), None);
        // A cursor newer than the range keeps the range's own end.
        let narrow = IdRange { oldest: id(5), newest: id(8) };
        assert_eq!(narrow.older_than(Some(id(100))), Some(narrow));
    }

    #[test]
    fn merging_buckets_pages_through_each_id_once_newest_first() {
        // Three buckets with interleaved ids, paged as the store does: each bucket gives at
        // most `limit + 1` of its ids below the cursor.
        let buckets: Vec<Vec<u128>> =
            vec![(0..40).map(|n| n * 3).collect(), (0..25).map(|n| n * 3 + 1).collect(), vec![2, 50, 98, 200, 201]];
        for limit in [1, 2, 7, 10, 100] {
            let mut cursor: Option<MessageId> = None;
            let mut shown = Vec::new();
            let mut pages = 0;
            loop {
                let lists = buckets
                    .iter()
                    .map(|ids| {
                        let mut below: Vec<MessageId> =
                            ids.iter().map(|n| id(*n)).filter(|i| cursor.is_none_or(|c| *i < c)).collect();
                        below.sort_unstable_by(|a, b| b.cmp(a));
                        below.truncate(limit + 1);
                        below
                    })
                    .collect();
                let (page, next) = merge_newest_first(lists, limit);
                assert!(page.len() <= limit);
                shown.extend(page.iter().copied());
                pages += 1;
                match next {
                    Some(next) => {
                        assert_eq!(page.len(), limit, "a cursor only after a full page");
                        assert_eq!(Some(next), page.last().copied());
                        cursor = Some(next);
                    }
                    None => break,
                }
            }
            let mut expected: Vec<MessageId> = buckets.iter().flatten().map(|n| id(*n)).collect();
            expected.sort_unstable_by(|a, b| b.cmp(a));
            expected.dedup();
            assert_eq!(shown, expected, "limit {limit}");
            assert_eq!(pages, expected.len().div_ceil(limit).max(1), "no empty last page, limit {limit}");
        }
    }

    #[test]
    fn merging_drops_an_id_seen_in_two_buckets_and_ends_without_a_cursor() {
        let (page, next) = merge_newest_first(vec![vec![id(9), id(4)], vec![id(7), id(4)], vec![]], 3);
        assert_eq!((page, next), (vec![id(9), id(7), id(4)], None));
        let (page, next) = merge_newest_first(vec![vec![], vec![]], 3);
        assert_eq!((page, next), (vec![], None));
        let (page, next) = merge_newest_first(vec![vec![id(3), id(2)], vec![id(5), id(1)]], 2);
        assert_eq!((page, next), (vec![id(5), id(3)], Some(id(3))));
    }

    #[test]
    fn query_limits_start_at_the_page_and_grow_with_what_the_filter_drops() {
        assert_eq!(next_query_limit(50, 0, 0), 51);
        assert_eq!(next_query_limit(25, 51, 25), 65, "about half kept: twice what is needed, and a margin");
        assert_eq!(next_query_limit(50, 51, 0), 204, "nothing kept yet: four times as many");
        assert_eq!(next_query_limit(50, 100_000, 1), 1000, "never above 1,000");
        assert_eq!(next_query_limit(10, 20, 20), 14, "everything kept: just above what is needed");
    }

    #[test]
    fn a_search_range_is_at_most_31_days_and_not_reversed() {
        let month = TimeDelta::days(31);
        assert!(Search::between(t0(), t0() + month).is_ok());
        assert!(Search::between(t0(), t0()).is_ok());
        assert_eq!(Search::between(t0(), t0() + month + TimeDelta::seconds(1)), Err(SearchRangeError::TooLong));
        assert_eq!(Search::between(t0(), t0() - TimeDelta::seconds(1)), Err(SearchRangeError::Reversed));
    }

    #[test]
    fn search_criteria_each_narrow_the_match() {
        let Ok(all) = Search::between(t0() - TimeDelta::days(1), t0() + TimeDelta::days(1)) else { panic!("range") };
        let mut m = message(MessageStatus::Failed);
        m.failure = Some(crate::message::Failure::twilio(30003, None));
        m.created_by = Some(UserId::new("u1"));
        m.contact_id = Some("ct1".into());
        assert!(all.matches(&m));
        let with = |change: &dyn Fn(&mut Search)| {
            let mut search = all.clone();
            change(&mut search);
            search.matches(&m)
        };
        assert!(with(&|s| s.text = Some("VACCINATION".into())), "any case");
        assert!(!with(&|s| s.text = Some("flea".into())));
        assert!(with(&|s| s.number = E164::parse("+14155550123", None).ok()));
        assert!(!with(&|s| s.number = E164::parse("+14155550124", None).ok()));
        assert!(with(&|s| s.status = Some(MessageStatus::Failed)));
        assert!(!with(&|s| s.status = Some(MessageStatus::Delivered)));
        assert!(with(&|s| s.error_code = Some(30003)));
        assert!(!with(&|s| s.error_code = Some(30005)));
        assert!(with(&|s| s.user = Some(UserId::new("u1"))));
        assert!(!with(&|s| s.user = Some(UserId::new("u2"))));
        assert!(with(&|s| s.contact_id = Some("ct1".into())));
        assert!(!with(&|s| s.contact_id = Some("ct2".into())));
        assert!(!with(&|s| s.from = t0() + TimeDelta::seconds(1)), "created before the range");
        let Ok(deleted) = m.deleted_by(&UserId::new("u1"), t0()) else { panic!("deletes") };
        assert!(!all.matches(&deleted), "deleted messages are not searched");
    }

    #[test]
    fn a_selection_counts_each_id_once_and_holds_at_most_100() {
        let ids = |n: usize| (0..n).map(|i| format!("id{i}")).collect::<Vec<_>>();
        assert_eq!(selection(&[]), Err(SelectionError::Empty));
        assert_eq!(selection(&ids(100)).map(|s| s.len()), Ok(100));
        assert_eq!(selection(&ids(101)), Err(SelectionError::TooMany(101)));
        let mut repeated = ids(100);
        repeated.extend(ids(100));
        assert_eq!(selection(&repeated), Ok(ids(100)), "duplicates counted once, first order kept");
    }

    #[test]
    fn delete_and_restore_answer_by_what_changed() {
        use Outcome::*;
        assert_eq!(verdict(&[Deleted, NotFound, AlreadyDeleted]), Verdict::Changed);
        assert_eq!(verdict(&[Restored]), Verdict::Changed);
        assert_eq!(verdict(&[NotFound, NotFound]), Verdict::NoneFound);
        assert_eq!(verdict(&[NotDeleted]), Verdict::NoneChanged);
        assert_eq!(verdict(&[AlreadyDeleted, NotFound]), Verdict::NoneChanged);
        let m = message(MessageStatus::Delivered);
        let clerk = UserId::new("u1");
        assert_eq!(MailboxAction::Restore.apply(&m, &clerk, t0()).err(), Some(Refused::NotDeleted));
        let Ok(deleted) = MailboxAction::Delete.apply(&m, &clerk, t0()) else { panic!("deletes") };
        assert_eq!(MailboxAction::Delete.apply(&deleted, &clerk, t0()).err(), Some(Refused::AlreadyDeleted));
        assert_eq!((MailboxAction::Delete.refused(), MailboxAction::Restore.refused()), (AlreadyDeleted, NotDeleted));
    }
}
