//! The `messages` table: one item per message (`pk = MSG#<id>`, `sk = MESSAGE`) holding its state
//! and history, listed per clinic through `gsi1` (`CLINIC#<id>` / `MSG#<id>`, newest last).
//!
//! Every write is conditional on the version that was read, so concurrent writers (a sender,
//! Twilio's callbacks, a second delivery of the same job) never overwrite each other.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

use chrono::{DateTime, Utc};

use crate::dynamo::{Item, StoreError, from_item, get_consistent, index_instant, n, s, to_item};
use crate::ids::MessageId;
use crate::message::{Message, Refused};
use crate::message_status::MessageStatus;

pub(crate) const SORT_KEY: &str = "MESSAGE";
const CREDIT_RETRY: &str = "CREDIT_RETRY";
const APPROVAL_EXPIRY: &str = "APPROVAL_EXPIRY";
const AWAITING_STATUS: &str = "AWAITING_STATUS";
const SCHEDULED: &str = "SCHEDULED";
/// Sort key of the marker that gives one inbound text (by Twilio's SID) one message id.
const INBOUND: &str = "INBOUND";
/// Texts waiting for approval longer than this expire (the approval view shows 30 days).
pub const APPROVAL_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::days(30);
/// Optimistic writes retried this many times before giving up on a hot item. A message has at
/// most a few writers at once (the sender, two or three callbacks); backing off with jitter
/// keeps them from colliding in lockstep, and a status callback that gave up would be lost
/// (Twilio does not retry callbacks by default).
const MAX_CONFLICTS: u32 = 20;

#[derive(Clone, Debug)]
pub struct MessagesTable {
    pub(crate) client: Client,
    pub(crate) table: String,
    /// Where mass alerts keep their counters, which their texts' writes move.
    counters: String,
}

/// The result of a read-decide-write.
#[derive(Debug)]
pub enum Update {
    Applied(Message),
    Refused(Refused, Message),
    Missing,
}

pub(crate) fn pk(id: &MessageId) -> String {
    format!("MSG#{id}")
}

impl MessagesTable {
    /// A message's `(pk, sk)`.
    pub(crate) fn key(id: &MessageId) -> (String, String) {
        (pk(id), SORT_KEY.to_owned())
    }

    pub fn new(client: Client, table: String, counters: String) -> Self {
        Self { client, table, counters }
    }

    pub(crate) fn item(message: &Message) -> Result<Item, StoreError> {
        let mut keys = vec![
            ("pk", pk(&message.id)),
            ("sk", SORT_KEY.to_owned()),
            ("gsi1pk", format!("CLINIC#{}", message.clinic_id)),
            ("gsi1sk", format!("MSG#{}", message.id)),
        ];
        // Sparse: only messages with something due at a time are in this index.
        let due = match (message.credit_retry_at, message.status) {
            (Some(at), _) => Some((CREDIT_RETRY, at)),
            (None, MessageStatus::AwaitingApproval) => Some((APPROVAL_EXPIRY, message.created_at + APPROVAL_LIFETIME)),
            (None, MessageStatus::Scheduled) => message.send_at.map(|at| (SCHEDULED, at)),
            // Keyed by when it last had news a check would bring: a `sent` callback leaves the
            // entry where it is, a check that found nothing moves it on.
            (None, _) if message.awaits_status() => Some((AWAITING_STATUS, message.quiet_since())),
            _ => None,
        };
        if let Some(conversation) = &message.conversation_id {
            keys.extend([("gsi3pk", format!("CONV#{conversation}")), ("gsi3sk", format!("MSG#{}", message.id))]);
        }
        if let Some((kind, at)) = due {
            keys.extend([("gsi2pk", kind.to_owned()), ("gsi2sk", format!("{}#{}", index_instant(at), message.id))]);
        }
        if let Some(link) = &message.mass_alert {
            keys.extend([("gsi5pk", crate::mass_alerts_table::pk(&link.id)), ("gsi5sk", message.id.to_string())]);
        }
        // Every message is in one of the mailbox's buckets, so the views follow each write.
        keys.extend(crate::mailbox_views::index_keys(message));
        to_item(message, &keys)
    }

    /// Reminders whose credit retry is due at or before `now`.
    pub async fn credit_retries_due(&self, now: DateTime<Utc>) -> Result<Vec<MessageId>, StoreError> {
        self.due(CREDIT_RETRY, now).await
    }

    /// Texts that have waited for approval longer than 30 days at `now`.
    pub async fn approvals_expired(&self, now: DateTime<Utc>) -> Result<Vec<MessageId>, StoreError> {
        self.due(APPROVAL_EXPIRY, now).await
    }

    /// Texts scheduled for `now` or earlier that are still waiting for their time.
    pub async fn scheduled_due(&self, now: DateTime<Utc>) -> Result<Vec<MessageId>, StoreError> {
        self.due(SCHEDULED, now).await
    }

    /// Messages Twilio holds that have had no news (Twilio's answer, a check) since `quiet_since`.
    pub async fn awaiting_status_since(&self, quiet_since: DateTime<Utc>) -> Result<Vec<MessageId>, StoreError> {
        self.due(AWAITING_STATUS, quiet_since).await
    }

    async fn due(&self, kind: &str, now: DateTime<Utc>) -> Result<Vec<MessageId>, StoreError> {
        let mut due = Vec::new();
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("gsi2")
            .key_condition_expression("gsi2pk = :kind AND gsi2sk <= :now")
            .expression_attribute_values(":kind", s(kind))
            // `~` sorts after every id character: everything due at `now` itself is included.
            .expression_attribute_values(":now", s(format!("{}#~", index_instant(now))))
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.try_next().await? {
            // Keys only: the id is the one in the table key.
            let id = item.get("pk").and_then(|v| v.as_s().ok()).and_then(|pk| pk.strip_prefix("MSG#"));
            if let Some(id) = id.and_then(|id| id.parse().ok()) {
                due.push(id);
            }
        }
        Ok(due)
    }

    /// The sending facts of a clinic's latest `limit` messages, newest first (one `Query` on
    /// the clinic index, only the attributes connection health judges by).
    pub async fn recent_texts(
        &self,
        clinic: &crate::ids::ClinicId,
        limit: i32,
    ) -> Result<Vec<crate::connection_health::TextFact>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :clinic AND begins_with(gsi1sk, :msg)")
            .expression_attribute_values(":clinic", s(format!("CLINIC#{clinic}")))
            .expression_attribute_values(":msg", s("MSG#"))
            .scan_index_forward(false)
            .limit(limit)
            .send()
            .await?;
        let entries = out.items.unwrap_or_default();
        crate::dynamo::items_behind(&self.client, &self.table, &entries).await?.into_iter().map(from_item).collect()
    }

    /// A clinic's messages created from `from` to `to` (inclusive), oldest first, at most `limit`.
    pub async fn created_between(
        &self,
        clinic: &crate::ids::ClinicId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let (low, high) = (format!("MSG#{}", MessageId::first_at(from)), format!("MSG#{}", MessageId::last_at(to)));
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :clinic AND gsi1sk BETWEEN :low AND :high")
            .expression_attribute_values(":clinic", s(format!("CLINIC#{clinic}")))
            .expression_attribute_values(":low", s(low))
            .expression_attribute_values(":high", s(high))
            .into_paginator()
            .items()
            .send();
        let mut entries = Vec::new();
        while let Some(entry) = pages.try_next().await? {
            entries.push(entry);
            if entries.len() >= limit {
                break;
            }
        }
        let items = crate::dynamo::items_behind(&self.client, &self.table, &entries).await?;
        items.into_iter().map(from_item).collect()
    }

    /// The clinic's message with a caller-given id; a malformed id, an unknown one and another
    /// clinic's are all simply not found.
    pub async fn get_for_clinic(
        &self,
        clinic: &crate::ids::ClinicId,
        raw_id: &str,
    ) -> Result<Option<Message>, StoreError> {
        let Ok(id) = raw_id.parse::<MessageId>() else { return Ok(None) };
        Ok(self.get(&id).await?.filter(|m| m.clinic_id == *clinic))
    }

    /// Stores a new message; fails with `Conflict` if the id exists.
    pub async fn insert(&self, message: &Message) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::item(message)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await?;
        Ok(())
    }

    pub async fn get(&self, id: &MessageId) -> Result<Option<Message>, StoreError> {
        get_consistent(&self.client, &self.table, pk(id), SORT_KEY.to_owned()).await?.map(from_item).transpose()
    }

    /// Writes `next` if the stored message is still at `expected_version`. A mass alert's text
    /// moves its alert's counters in the same transaction, when this write changes what it counts.
    pub async fn replace(&self, next: &mut Message, expected_version: u64) -> Result<(), StoreError> {
        let Some(delta) = crate::mass_alert::count(next) else {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(Self::item(next)?))
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", n(expected_version))
                .send()
                .await?;
            return Ok(());
        };
        let Some(link) = &next.mass_alert else { return Err(StoreError::Conflict) };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::item(next)?))
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", n(expected_version))
            .build()?;
        let counts = crate::mass_alerts_table::counts_update(&self.counters, &link.id, &delta, 0)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(counts).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => match err.into_service_error() {
                // The message changed since it was read, or another transaction held the
                // counters: either way, read again and decide again.
                TransactWriteItemsError::TransactionCanceledException(_) => Err(StoreError::Conflict),
                other => Err(StoreError::Dynamo(Box::new(other.into()))),
            },
        }
    }

    /// Deletes a message that nothing else has touched yet (used to undo a create whose job
    /// could not be queued).
    pub async fn delete_unchanged(&self, message: &Message) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(pk(&message.id)))
            .key("sk", s(SORT_KEY))
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", n(message.version))
            .send()
            .await?;
        Ok(())
    }

    /// Reads the message, lets `decide` compute its next state, and writes it conditionally;
    /// on a concurrent change, reads again and decides again.
    pub async fn update<F>(&self, id: &MessageId, decide: F) -> Result<Update, StoreError>
    where
        F: FnMut(&Message) -> Result<Message, Refused>,
    {
        self.update_known(id, None, decide).await
    }

    /// As `update`, starting from `current` as read moments ago: a single write when nobody
    /// changed the message meanwhile.
    pub async fn update_from<F>(&self, current: &Message, decide: F) -> Result<Update, StoreError>
    where
        F: FnMut(&Message) -> Result<Message, Refused>,
    {
        self.update_known(&current.id, Some(current.clone()), decide).await
    }

    async fn update_known<F>(
        &self,
        id: &MessageId,
        mut known: Option<Message>,
        mut decide: F,
    ) -> Result<Update, StoreError>
    where
        F: FnMut(&Message) -> Result<Message, Refused>,
    {
        for conflicts in 0..MAX_CONFLICTS {
            if conflicts > 0 {
                let jitter = rand::random::<u64>() % (5 * u64::from(conflicts.min(10)) + 1);
                tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
            }
            let current = match known.take() {
                Some(current) => current,
                None => match self.get(id).await? {
                    Some(current) => current,
                    None => return Ok(Update::Missing),
                },
            };
            let mut next = match decide(&current) {
                Ok(next) => next,
                Err(refused) => return Ok(Update::Refused(refused, current)),
            };
            // Every write moves the version on, whatever the rule changed, so two writers that
            // read the same version can never both succeed.
            next.version = current.version + 1;
            match self.replace(&mut next, current.version).await {
                Ok(()) => return Ok(Update::Applied(next)),
                Err(StoreError::Conflict) => continue,
                Err(other) => return Err(other),
            }
        }
        Err(StoreError::Conflict)
    }

    /// Reserves `id` for the inbound text Twilio calls `message_sid`, and returns the id reserved
    /// first: Twilio can deliver one inbound text twice, and both deliveries must name one message.
    pub async fn reserve_inbound(&self, message_sid: &str, id: MessageId) -> Result<MessageId, StoreError> {
        let key = format!("INBOUND#{message_sid}");
        let reserved = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&key))
            .item("sk", s(INBOUND))
            .item("id", s(id.to_string()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match reserved.map_err(StoreError::from) {
            Ok(_) => return Ok(id),
            Err(StoreError::Conflict) => {}
            Err(other) => return Err(other),
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .key("sk", s(INBOUND))
            .consistent_read(true)
            .send()
            .await?;
        out.item
            .as_ref()
            .and_then(|item| item.get("id"))
            .and_then(|v| v.as_s().ok())
            .and_then(|v| v.parse().ok())
            .ok_or(StoreError::Conflict)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeDelta, Utc};

    use super::*;
    use crate::dynamo::item_size;
    use crate::ids::{ClinicId, ConnectionId};
    use crate::message::{AppointmentRef, MessageBody, StatusCallback};
    use crate::phone::E164;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp_millis(1_790_000_000_123 + ms).unwrap_or_default()
    }

    /// DynamoDB bills a write by the larger of the item before and after it, per started KB.
    #[test]
    fn a_one_segment_reminder_is_under_a_kilobyte_at_every_write_to_delivered() {
        let body = "Hi Sam, this is Riverside Vet reminding you of Max's appointment on Tue, Nov 24 at 9:00 AM. \
                    Reply C to confirm, R to reschedule or call us at 555-0100. Thanks";
        assert_eq!(crate::segments::analyse(body).segments, 1, "{} characters", body.len());
        let (Ok(to), Ok(body)) = (E164::parse("+14155550123", None), MessageBody::parse(body)) else {
            panic!("valid fixtures")
        };
        let appointment = AppointmentRef {
            id: "appt-000123".into(),
            business_id: "biz-0001".into(),
            start: at(86_400_000),
            window_opened_at: at(0),
            time_zone: "America/New_York".into(),
        };
        let sid = "SM0123456789abcdef0123456789abcdef";
        let callback = |status: &str| StatusCallback {
            message_sid: sid.into(),
            message_status: status.into(),
            error_code: None,
            raw_dlr_done_date: Some("2611250227".into()),
            attempt: Some(1),
        };
        let queued = Message::new_reminder(
            MessageId::generate(at(0)),
            ClinicId::new("riverside-vet"),
            to,
            body,
            ConnectionId::new("main"),
            appointment,
            MessageStatus::Queued,
            at(0),
        );
        let claimed = queued.claim(at(12_345), TimeDelta::seconds(60));
        let submitted = claimed.as_ref().ok().and_then(|m| m.accepted(1, sid, "queued", at(12_732)).ok());
        let sent = submitted.as_ref().and_then(|m| m.with_callback(&callback("sent"), at(15_719)).ok());
        let delivered = sent.as_ref().and_then(|m| m.with_callback(&callback("delivered"), at(19_842)).ok());
        let (Ok(claimed), Some(submitted), Some(sent), Some(delivered)) = (claimed, submitted, sent, delivered) else {
            panic!("a reminder's way to delivered")
        };
        for (step, message) in [
            ("queued", queued),
            ("claimed", claimed),
            ("submitted", submitted),
            ("sent", sent),
            ("delivered", delivered),
        ] {
            let Ok(item) = MessagesTable::item(&message) else { panic!("serialises") };
            assert!(item_size(&item) < 1024, "{step}: {} bytes", item_size(&item));
        }
    }
}
