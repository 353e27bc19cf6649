//! Where mass alerts are kept.
//!
//! - The alert: `messages` table, `pk = ALERT#<id>`, `sk = ALERT`; listed per clinic through
//!   `gsi1` (`ALERTS#<clinic>` / `ALERT#<id>`, ids are ULIDs so newest last) and, while it is
//!   sending, found by the scheduler through `gsi2` (`OPEN_ALERTS` / `<created>#<id>`, sparse).
//! - Its live counters: `counters` table, `pk = ALERT#<id>`, `sk = COUNTS`, in no index, so the
//!   two small writes each text makes to them cost one item each.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use crate::clinic_records::Page;
use crate::dynamo::{Item, StoreError, batch_get, from_item, get_consistent, index_instant, key, n, s, to_item};
use crate::ids::{AlertId, ClinicId, MessageId};
use crate::mass_alert::{AlertCounts, AlertStatus, CountsDelta, MassAlert};
use crate::message::Message;
use crate::message_status::MessageStatus;
use crate::messages_table::MessagesTable;

const ALERT: &str = "ALERT";
const COUNTS: &str = "COUNTS";
const OPEN_ALERTS: &str = "OPEN_ALERTS";
/// Transactions retried this often when they collide with another on the counters.
const MAX_TRANSACTION_TRIES: u32 = 20;

#[derive(Clone, Debug)]
pub struct MassAlertsTable {
    client: Client,
    /// The alerts themselves sit beside the messages they made.
    messages: String,
    counters: String,
}

pub(crate) fn pk(id: &AlertId) -> String {
    format!("ALERT#{id}")
}

/// The transaction part that moves an alert's counters along with a message write.
/// `recipients` is added too (by the fan-out, as it stores them).
pub(crate) fn counts_update(
    counters_table: &str,
    alert: &AlertId,
    delta: &CountsDelta,
    recipients: u64,
) -> Result<Update, StoreError> {
    let mut expression = String::from(
        "ADD unsent :unsent, unsettled :unsettled, sent :sent, delivered :delivered, failed :failed, \
         not_sent :not_sent, recipients :recipients",
    );
    let mut update = Update::builder()
        .table_name(counters_table)
        .key("pk", s(pk(alert)))
        .key("sk", s(COUNTS))
        .expression_attribute_values(":unsent", n(delta.unsent))
        .expression_attribute_values(":unsettled", n(delta.unsettled))
        .expression_attribute_values(":sent", n(delta.sent))
        .expression_attribute_values(":delivered", n(delta.delivered))
        .expression_attribute_values(":failed", n(delta.failed))
        .expression_attribute_values(":not_sent", n(delta.not_sent))
        .expression_attribute_values(":recipients", n(recipients));
    if let Some(at) = delta.sent_at {
        expression.push_str(" SET last_sent_at = :at");
        update = update.expression_attribute_values(":at", s(at.to_rfc3339()));
    }
    Ok(update.update_expression(expression).build()?)
}

impl MassAlertsTable {
    pub fn new(client: Client, messages: String, counters: String) -> Self {
        Self { client, messages, counters }
    }

    fn item(alert: &MassAlert) -> Result<Item, StoreError> {
        let mut keys = vec![
            ("pk", pk(&alert.id)),
            ("sk", ALERT.to_owned()),
            ("gsi1pk", format!("ALERTS#{}", alert.clinic_id)),
            ("gsi1sk", format!("ALERT#{}", alert.id)),
        ];
        if alert.status == AlertStatus::Sending {
            keys.extend([
                ("gsi2pk", OPEN_ALERTS.to_owned()),
                ("gsi2sk", format!("{}#{}", index_instant(alert.created_at), alert.id)),
            ]);
        }
        to_item(alert, &keys)
    }

    /// Stores a new alert; `Conflict` if its id exists.
    pub async fn create(&self, alert: &MassAlert) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.messages)
            .set_item(Some(Self::item(alert)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await?;
        Ok(())
    }

    /// The clinic's alert (another clinic's is `None`).
    pub async fn get(&self, clinic: &ClinicId, id: &str) -> Result<Option<MassAlert>, StoreError> {
        if ulid::Ulid::from_string(id).is_err() {
            return Ok(None);
        }
        let item = get_consistent(&self.client, &self.messages, pk(&AlertId::new(id)), ALERT.to_owned()).await?;
        let alert: Option<MassAlert> = item.map(from_item).transpose()?;
        Ok(alert.filter(|a| &a.clinic_id == clinic))
    }

    /// A page of the clinic's alerts, newest first. The cursor is the last alert's id.
    pub async fn list(
        &self,
        clinic: &ClinicId,
        limit: i32,
        after: Option<&str>,
    ) -> Result<Page<MassAlert>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.messages)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :clinic AND begins_with(gsi1sk, :alert)")
            .expression_attribute_values(":clinic", s(format!("ALERTS#{clinic}")))
            .expression_attribute_values(":alert", s("ALERT#"))
            .scan_index_forward(false)
            .limit(limit);
        if let Some(after) = after {
            let id = AlertId::new(after);
            query = query
                .exclusive_start_key("pk", s(pk(&id)))
                .exclusive_start_key("sk", s(ALERT))
                .exclusive_start_key("gsi1pk", s(format!("ALERTS#{clinic}")))
                .exclusive_start_key("gsi1sk", s(format!("ALERT#{id}")));
        }
        let out = query.send().await?;
        let entries = out.items.unwrap_or_default();
        let items: Vec<MassAlert> = crate::dynamo::items_behind(&self.client, &self.messages, &entries)
            .await?
            .into_iter()
            .map(from_item)
            .collect::<Result<_, _>>()?;
        // From the last entry read, not the last alert found: an alert removed since the index
        // was read must not end the list early.
        let next_cursor = out
            .last_evaluated_key
            .and_then(|key| key.get("gsi1sk")?.as_s().ok()?.strip_prefix("ALERT#").map(str::to_owned));
        Ok(Page { items, next_cursor })
    }

    /// Alerts still sending, in every clinic (the scheduler closes them).
    pub async fn open(&self) -> Result<Vec<MassAlert>, StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.messages)
            .index_name("gsi2")
            .key_condition_expression("gsi2pk = :open")
            .expression_attribute_values(":open", s(OPEN_ALERTS))
            .into_paginator()
            .items()
            .send();
        let mut entries = Vec::new();
        while let Some(entry) = pages.try_next().await? {
            entries.push(entry);
        }
        // Keys only: the alerts themselves are read from the table.
        let items = crate::dynamo::items_behind(&self.client, &self.messages, &entries).await?;
        items.into_iter().map(from_item).collect()
    }

    /// Marks the alert completed, with its final counts and report, if it is still sending.
    /// `false` if another closer got there first.
    pub async fn complete(&self, alert: &MassAlert) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.messages)
            .set_item(Some(Self::item(alert)?))
            .condition_expression("#status = :sending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":sending", s("sending"))
            .send()
            .await;
        crate::dynamo::applied(result)
    }

    /// Removes an alert whose fan-out was never asked for (its event could not be published).
    pub async fn remove_unstarted(&self, alert: &MassAlert) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.messages)
            .key("pk", s(pk(&alert.id)))
            .key("sk", s(ALERT))
            .send()
            .await?;
        Ok(())
    }

    /// The alert's live counters (all zero before anything was counted).
    pub async fn counts(&self, id: &AlertId) -> Result<AlertCounts, StoreError> {
        let item = get_consistent(&self.client, &self.counters, pk(id), COUNTS.to_owned()).await?;
        Ok(item.map(from_item).transpose()?.unwrap_or_default())
    }

    /// The live counters of several alerts (at most 100), by id.
    pub async fn counts_of(&self, ids: &[AlertId]) -> Result<HashMap<AlertId, AlertCounts>, StoreError> {
        let keys = ids.iter().map(|id| key(pk(id), COUNTS)).collect();
        let mut found = HashMap::new();
        for item in batch_get(&self.client, &self.counters, keys, false).await? {
            let Some(id) = item.get("pk").and_then(|v| v.as_s().ok()).and_then(|pk| pk.strip_prefix("ALERT#")) else {
                continue;
            };
            found.insert(AlertId::new(id), from_item(item.clone())?);
        }
        Ok(found)
    }

    /// Stores the alert's new messages (at most 99) and counts them in its counters, in one
    /// transaction. A message already stored (a fan-out run again) is left alone and not
    /// counted again. Returns the ids stored now.
    pub async fn insert_counted(&self, alert: &AlertId, messages: &[Message]) -> Result<Vec<MessageId>, StoreError> {
        let mut pending: Vec<&Message> = messages.iter().collect();
        for conflicts in 0..MAX_TRANSACTION_TRIES {
            if pending.is_empty() {
                return Ok(Vec::new());
            }
            if conflicts > 0 {
                let jitter = rand::random::<u64>() % (20 * u64::from(conflicts) + 1);
                tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
            }
            let mut items = Vec::with_capacity(pending.len() + 1);
            for m in &pending {
                let put = Put::builder()
                    .table_name(&self.messages)
                    .set_item(Some(MessagesTable::item(m)?))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()?;
                items.push(TransactWriteItem::builder().put(put).build());
            }
            let texts = pending.iter().filter(|m| m.status != MessageStatus::Skipped).count();
            let added = CountsDelta {
                unsent: i64::try_from(texts).unwrap_or(i64::MAX),
                unsettled: i64::try_from(texts).unwrap_or(i64::MAX),
                not_sent: (pending.len() - texts) as u64,
                ..CountsDelta::default()
            };
            let counts = counts_update(&self.counters, alert, &added, pending.len() as u64)?;
            items.push(TransactWriteItem::builder().update(counts).build());
            match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
                Ok(_) => return Ok(pending.iter().map(|m| m.id).collect()),
                Err(err) => match err.into_service_error() {
                    TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                        // Messages that exist already are dropped; a conflict with another
                        // transaction (a sender moving the counters) is simply tried again.
                        let reasons = cancelled.cancellation_reasons();
                        let stored = |i: usize| {
                            reasons.get(i).and_then(|r| r.code()).is_some_and(|c| c == "ConditionalCheckFailed")
                        };
                        pending =
                            pending.into_iter().enumerate().filter(|(i, _)| !stored(*i)).map(|(_, m)| m).collect();
                    }
                    other => return Err(StoreError::Dynamo(Box::new(other.into()))),
                },
            }
        }
        Err(StoreError::Conflict)
    }

    /// Records that every recipient of the alert is stored and counted, so it may close.
    pub async fn mark_fanned_out(&self, id: &AlertId, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.counters)
            .key("pk", s(pk(id)))
            .key("sk", s(COUNTS))
            .update_expression("SET fanned_out = :yes, fanned_out_at = if_not_exists(fanned_out_at, :now)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":now", s(now.to_rfc3339()))
            .send()
            .await?;
        Ok(())
    }

    /// The ids of all the alert's messages (one per client), through the keys-only index.
    pub async fn message_ids(&self, id: &AlertId) -> Result<Vec<MessageId>, StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.messages)
            .index_name("gsi5")
            .key_condition_expression("gsi5pk = :alert")
            .expression_attribute_values(":alert", s(pk(id)))
            .into_paginator()
            .items()
            .send();
        let mut ids = Vec::new();
        while let Some(item) = pages.try_next().await? {
            if let Some(id) = item.get("gsi5sk").and_then(|v| v.as_s().ok()).and_then(|v| v.parse().ok()) {
                ids.push(id);
            }
        }
        Ok(ids)
    }
}
