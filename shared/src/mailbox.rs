//! The mailbox on the `messages` table: a page of a view, a search, and deleting or restoring
//! a selection. The rules (buckets, views, merging, what a search matches, the answers) are in
//! `mailbox_views`; this module only reads and writes.
//!
//! - A view other than All: one `Query` per bucket on `gsi4` (keys only), newest first, merged
//!   by id; then one `BatchGetItem` of the page's messages.
//! - All and search: a `Query` on the clinic's timeline (`gsi1`, whole items), newest first, with
//!   a filter; repeated until the page is full, the range ends, or the request's reading budget
//!   is spent.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use futures::{StreamExt, TryStreamExt};

use crate::dynamo::{Item, StoreError, from_item, s};
use crate::ids::{ClinicId, MessageId, UserId};
use crate::mailbox_views::{
    Bucket, IdRange, MAX_PAGE, MailboxAction, Outcome, Search, View, merge_newest_first, next_query_limit,
};
use crate::message::Message;
use crate::messages_table::{MessagesTable, SORT_KEY, Update, pk};

/// Queries one page of All or a search may make. A selective search over a busy month can
/// read many items for a few matches; past this, the page ends early with a cursor at the last
/// message looked at, and the next request goes on from there.
const MAX_QUERIES_PER_PAGE: usize = 8;
/// Messages deleted or restored at once by one request.
const MARK_CONCURRENCY: usize = 10;

/// A page of messages, newest first. `next_cursor` is the id to continue below; the page after
/// it may be empty when the last matches ended exactly at a full page.
#[derive(Debug, Clone)]
pub struct MessagePage {
    pub items: Vec<Message>,
    pub next_cursor: Option<MessageId>,
}

impl MessagePage {
    fn empty() -> Self {
        Self { items: Vec::new(), next_cursor: None }
    }
}

/// A DynamoDB filter built from conditions, with its names and values.
#[derive(Default)]
struct Filter {
    conditions: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Filter {
    fn new() -> Self {
        let mut filter = Self::default();
        // Absent, never null: `Message::deleted` is skipped when unset.
        filter.conditions.push("attribute_not_exists(#deleted)".to_owned());
        filter.names.insert("#deleted".to_owned(), "deleted".to_owned());
        filter
    }

    fn name(&mut self, attribute: &str) -> String {
        let placeholder = format!("#{attribute}");
        self.names.insert(placeholder.clone(), attribute.to_owned());
        placeholder
    }

    fn equals(&mut self, attribute: &str, value: AttributeValue) {
        let name = self.name(attribute);
        let placeholder = format!(":{attribute}");
        self.values.insert(placeholder.clone(), value);
        self.conditions.push(format!("{name} = {placeholder}"));
    }

    fn for_search(search: &Search) -> Self {
        let mut filter = Self::new();
        if let Some(contact) = &search.contact_id {
            filter.equals("contact_id", s(contact));
        }
        if let Some(number) = &search.number {
            let (to, from) = (filter.name("to"), filter.name("from"));
            filter.values.insert(":number".to_owned(), s(number.as_str()));
            filter.conditions.push(format!("({to} = :number OR {from} = :number)"));
        }
        // Status and error code change as a text goes; the index does not hold them
        // (`aws_resources::MESSAGES_GSI1`), so `Search::matches` decides on them after the read.
        if let Some(user) = &search.user {
            filter.equals("created_by", s(user.as_str()));
        }
        filter
    }
}

fn key_of(id: &MessageId) -> Item {
    HashMap::from([("pk".to_owned(), s(pk(id))), ("sk".to_owned(), s(SORT_KEY))])
}

fn clinic_partition(clinic: &ClinicId) -> String {
    format!("CLINIC#{clinic}")
}

impl MessagesTable {
    /// A page of `view`: messages strictly older than `cursor`, newest first.
    pub async fn view_page(
        &self,
        clinic: &ClinicId,
        view: View,
        cursor: Option<MessageId>,
        limit: usize,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<MessagePage, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let Some(range) = view.range(now).older_than(cursor) else {
            return Ok(MessagePage::empty());
        };
        if view == View::All {
            // Eight of the nine buckets: the clinic's timeline holds all of them already, and its
            // index holds `deleted`, so one query finds the page.
            return self.timeline(clinic, range, Filter::new(), &|m| View::All.shows(m), limit).await;
        }
        let lists = futures::future::try_join_all(
            view.buckets().iter().map(|bucket| self.bucket_ids(clinic, *bucket, range, limit + 1)),
        )
        .await?;
        let (ids, next_cursor) = merge_newest_first(lists, limit);
        let mut found = self.get_many(&ids).await?;
        // The index lags the table a little: a message that has just left the view is not shown
        // in it, and one that is gone is skipped.
        let items =
            ids.iter().filter_map(|id| found.remove(id)).filter(|m| m.clinic_id == *clinic && view.shows(m)).collect();
        Ok(MessagePage { items, next_cursor })
    }

    /// A page of a search: the clinic's messages matching `search`, strictly older than
    /// `cursor`, newest first.
    pub async fn search(
        &self,
        clinic: &ClinicId,
        search: &Search,
        cursor: Option<MessageId>,
        limit: usize,
    ) -> Result<MessagePage, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let Some(range) = search.range().older_than(cursor) else {
            return Ok(MessagePage::empty());
        };
        self.timeline(clinic, range, Filter::for_search(search), &|m| search.matches(m), limit).await
    }

    /// Up to `want` ids of one bucket in `range`, newest first.
    async fn bucket_ids(
        &self,
        clinic: &ClinicId,
        bucket: Bucket,
        range: IdRange,
        want: usize,
    ) -> Result<Vec<MessageId>, StoreError> {
        let mut ids = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("gsi4")
                .key_condition_expression("gsi4pk = :bucket AND gsi4sk BETWEEN :oldest AND :newest")
                .expression_attribute_values(":bucket", s(bucket.partition(clinic)))
                .expression_attribute_values(":oldest", s(range.oldest.to_string()))
                .expression_attribute_values(":newest", s(range.newest.to_string()))
                .scan_index_forward(false)
                .limit(i32::try_from(want - ids.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await?;
            ids.extend(
                out.items
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|item| item.get("gsi4sk")?.as_s().ok()?.parse::<MessageId>().ok()),
            );
            match out.last_evaluated_key {
                Some(key) if ids.len() < want => start = Some(key),
                _ => return Ok(ids),
            }
        }
    }

    /// The messages named, by id (at most 100: one `BatchGetItem`, repeated for what DynamoDB
    /// leaves unprocessed). Eventually consistent, as the index the ids came from is.
    pub(crate) async fn get_many(&self, ids: &[MessageId]) -> Result<HashMap<MessageId, Message>, StoreError> {
        let keys = ids.iter().map(key_of).collect();
        let mut found = HashMap::new();
        for item in crate::dynamo::batch_get(&self.client, &self.table, keys, false).await? {
            let message: Message = from_item(item)?;
            found.insert(message.id, message);
        }
        Ok(found)
    }

    /// The clinic's messages in `range` that pass `filter` and `keep`, newest first. When the
    /// page fills, the cursor is the last message shown; when the budget runs out first, the
    /// last one looked at. Either way the next page starts right after what was looked at, so
    /// nothing is skipped or shown twice.
    async fn timeline(
        &self,
        clinic: &ClinicId,
        range: IdRange,
        filter: Filter,
        keep: &(dyn Fn(&Message) -> bool + Sync),
        limit: usize,
    ) -> Result<MessagePage, StoreError> {
        let mut items: Vec<Message> = Vec::new();
        let (mut evaluated, mut start) = (0_usize, None);
        let mut values = filter.values;
        values.extend([
            (":clinic".to_owned(), s(clinic_partition(clinic))),
            (":oldest".to_owned(), s(format!("MSG#{}", range.oldest))),
            (":newest".to_owned(), s(format!("MSG#{}", range.newest))),
        ]);
        let condition = filter.conditions.join(" AND ");
        for _ in 0..MAX_QUERIES_PER_PAGE {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("gsi1")
                .key_condition_expression("gsi1pk = :clinic AND gsi1sk BETWEEN :oldest AND :newest")
                .filter_expression(&condition)
                .set_expression_attribute_names(Some(filter.names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(false)
                .limit(next_query_limit(limit - items.len(), evaluated, items.len()))
                .set_exclusive_start_key(start)
                .send()
                .await?;
            evaluated += usize::try_from(out.scanned_count).unwrap_or(0);
            let returned =
                crate::dynamo::items_behind(&self.client, &self.table, &out.items.unwrap_or_default()).await?;
            let count = returned.len();
            for (position, item) in returned.into_iter().enumerate() {
                let message: Message = from_item(item)?;
                if !keep(&message) {
                    continue;
                }
                items.push(message);
                if items.len() == limit {
                    let more = position + 1 < count || out.last_evaluated_key.is_some();
                    let next_cursor = more.then(|| items.last().map(|m| m.id)).flatten();
                    return Ok(MessagePage { items, next_cursor });
                }
            }
            match out.last_evaluated_key {
                None => return Ok(MessagePage { items, next_cursor: None }),
                Some(key) => start = Some(key),
            }
        }
        let looked_at = start
            .as_ref()
            .and_then(|key| key.get("gsi1sk")?.as_s().ok()?.strip_prefix("MSG#")?.parse::<MessageId>().ok());
        tracing::info!(clinic = %clinic, shown = items.len(), evaluated, "timeline page ended on its reading budget");
        Ok(MessagePage { items, next_cursor: looked_at })
    }

    /// Deletes or restores each of `ids` (distinct, at most 100) for `by`, answering each id's
    /// outcome in the order given. Another clinic's id is answered as an unknown one.
    pub async fn mark(
        &self,
        clinic: &ClinicId,
        by: &UserId,
        ids: &[String],
        action: MailboxAction,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<(String, Outcome)>, StoreError> {
        let outcomes: Vec<Outcome> = futures::stream::iter(ids.iter().cloned())
            .map(|raw| async move { self.mark_one(clinic, by, &raw, action, now).await })
            .buffered(MARK_CONCURRENCY)
            .try_collect()
            .await?;
        let changed = outcomes.iter().filter(|o| **o == action.done()).count();
        tracing::info!(clinic = %clinic, user = %by, ?action, asked = ids.len(), changed, "mailbox selection changed");
        Ok(ids.iter().cloned().zip(outcomes).collect())
    }

    async fn mark_one(
        &self,
        clinic: &ClinicId,
        by: &UserId,
        raw: &str,
        action: MailboxAction,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Outcome, StoreError> {
        let Some(current) = self.get_for_clinic(clinic, raw).await? else {
            return Ok(Outcome::NotFound);
        };
        Ok(match self.update_from(&current, |m| action.apply(m, by, now)).await? {
            Update::Applied(_) => action.done(),
            Update::Refused(..) => action.refused(),
            Update::Missing => Outcome::NotFound,
        })
    }
}
