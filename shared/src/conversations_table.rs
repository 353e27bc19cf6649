//! Conversations in the `messages` table, beside the messages they hold:
//! - the conversation: `CONV#<id>` / `CONVERSATION`, listed per clinic through `gsi1`
//!   (`CONVERSATIONS#<clinic>` / its list key: open first, newest activity first, read backwards);
//! - the party's active conversation: `ACTIVE#<party key>` / `CONVERSATION` → its id, written in
//!   one transaction with a new conversation, so concurrent texts from one patient open one;
//! - its messages: `gsi3` (`CONV#<id>` / `MSG#<message id>`, sparse), in time order.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};

use crate::clinic_records::{ListError, Page};
use crate::conversations::{Conversation, ConversationStatus, id_in_list_key};
use crate::dynamo::{Item, StoreError, from_item, get_consistent, n, plausible_id, s, to_item};
use crate::ids::ClinicId;
use crate::message::Message;

const SORT_KEY: &str = "CONVERSATION";
/// Attempts at opening or linking before giving up on a party that keeps changing.
const MAX_RACES: u32 = 5;

#[derive(Clone, Debug)]
pub struct ConversationsTable {
    client: Client,
    table: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the conversation is already linked to a contact")]
    AlreadyLinked,
    #[error("the contact already has an active conversation")]
    ContactBusy,
    #[error("no such conversation")]
    Missing,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn pk(id: &str) -> String {
    format!("CONV#{id}")
}

fn pointer_pk(party_key: &str) -> String {
    format!("ACTIVE#{party_key}")
}

fn list_pk(clinic: &ClinicId) -> String {
    format!("CONVERSATIONS#{clinic}")
}

/// Whether a failed transaction failed on one of its conditions (someone else got there first).
fn lost_race<E>(err: &aws_sdk_dynamodb::error::SdkError<E>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code()) == Some("TransactionCanceledException")
}

impl ConversationsTable {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    fn item(c: &Conversation) -> Result<Item, StoreError> {
        to_item(
            c,
            &[
                ("pk", pk(&c.id)),
                ("sk", SORT_KEY.to_owned()),
                ("gsi1pk", list_pk(&c.clinic_id)),
                ("gsi1sk", c.list_key()),
            ],
        )
    }

    /// One of the clinic's conversations (another clinic's is `None`, as if it did not exist).
    pub async fn get(&self, clinic: &ClinicId, id: &str) -> Result<Option<Conversation>, StoreError> {
        if !plausible_id(id) {
            return Ok(None);
        }
        let found: Option<Conversation> =
            get_consistent(&self.client, &self.table, pk(id), SORT_KEY.to_owned()).await?.map(from_item).transpose()?;
        Ok(found.filter(|c| &c.clinic_id == clinic))
    }

    /// The id the party's pointer names, if there is one.
    async fn pointer(&self, party_key: &str) -> Result<Option<String>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pointer_pk(party_key)))
            .key("sk", s(SORT_KEY))
            .consistent_read(true)
            .send()
            .await?;
        Ok(out.item.and_then(|i| i.get("conversation_id").and_then(|v| v.as_s().ok()).cloned()))
    }

    /// The party's active conversation, and the id of a stale pointer (to a closed one) if any.
    async fn active_or_stale(
        &self,
        clinic: &ClinicId,
        party_key: &str,
    ) -> Result<(Option<Conversation>, Option<String>), StoreError> {
        let Some(id) = self.pointer(party_key).await? else {
            return Ok((None, None));
        };
        match self.get(clinic, &id).await? {
            Some(c) if c.status == ConversationStatus::Open => Ok((Some(c), None)),
            _ => Ok((None, Some(id))),
        }
    }

    /// The party's active conversation, if it has one.
    pub async fn active(&self, clinic: &ClinicId, party_key: &str) -> Result<Option<Conversation>, StoreError> {
        Ok(self.active_or_stale(clinic, party_key).await?.0)
    }

    /// Joins the party's active conversation, or opens `fresh` as it. Concurrent callers for one
    /// party all end in the same conversation.
    pub async fn open_or_join(&self, fresh: &Conversation, at: DateTime<Utc>) -> Result<Conversation, StoreError> {
        let party = fresh.party_key();
        for _ in 0..MAX_RACES {
            let (active, stale) = self.active_or_stale(&fresh.clinic_id, &party).await?;
            if let Some(mut active) = active {
                self.touch(&active, at).await?;
                active.last_activity_at = active.last_activity_at.max(at);
                return Ok(active);
            }
            let pointer_condition = match &stale {
                Some(_) => "attribute_not_exists(pk) OR conversation_id = :stale",
                None => "attribute_not_exists(pk)",
            };
            let mut pointer = Put::builder()
                .table_name(&self.table)
                .item("pk", s(pointer_pk(&party)))
                .item("sk", s(SORT_KEY))
                .item("conversation_id", s(&fresh.id))
                .condition_expression(pointer_condition);
            if let Some(stale) = stale {
                pointer = pointer.expression_attribute_values(":stale", s(stale));
            }
            let conversation = Put::builder()
                .table_name(&self.table)
                .set_item(Some(Self::item(fresh)?))
                .condition_expression("attribute_not_exists(pk)");
            let written = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(pointer.build()?).build())
                .transact_items(TransactWriteItem::builder().put(conversation.build()?).build())
                .send()
                .await;
            match written {
                Ok(_) => return Ok(fresh.clone()),
                Err(e) if lost_race(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict)
    }

    /// Moves an open conversation's last activity forward to `at` (never back).
    pub async fn touch(&self, c: &Conversation, at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut moved = c.clone();
        moved.last_activity_at = at;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk(&c.id)))
            .key("sk", s(SORT_KEY))
            .update_expression("SET last_activity_at = :at, gsi1sk = :sk")
            .condition_expression("#status = :open AND gsi1sk < :sk")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":at", serde_dynamo::to_attribute_value(at)?)
            .expression_attribute_values(":sk", s(moved.list_key()))
            .expression_attribute_values(":open", s("open"))
            .send()
            .await;
        match result.map_err(StoreError::from) {
            // Closed meanwhile, or a later text already moved it.
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Writes `next` if the stored conversation is still at `expected_version`.
    async fn replace(&self, next: &Conversation, expected_version: u64) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::item(next)?))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(expected_version))
            .send()
            .await?;
        Ok(())
    }

    /// Closes the conversation; the party's next text opens a new one.
    pub async fn close(
        &self,
        clinic: &ClinicId,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Conversation>, StoreError> {
        for _ in 0..MAX_RACES {
            let Some(current) = self.get(clinic, id).await? else {
                return Ok(None);
            };
            let closed = current.closed(now);
            if closed == current {
                return Ok(Some(current));
            }
            match self.replace(&closed, current.version).await {
                Ok(()) => {
                    self.drop_pointer(&closed.party_key(), id).await?;
                    return Ok(Some(closed));
                }
                Err(StoreError::Conflict) => continue,
                Err(other) => return Err(other),
            }
        }
        Err(StoreError::Conflict)
    }

    /// Removes the party's pointer if it still names `id`.
    async fn drop_pointer(&self, party_key: &str, id: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(pointer_pk(party_key)))
            .key("sk", s(SORT_KEY))
            .condition_expression("conversation_id = :id")
            .expression_attribute_values(":id", s(id))
            .send()
            .await;
        match result.map_err(StoreError::from) {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Links an unknown-contact conversation to a contact. An open one becomes the contact's
    /// active conversation, so it is refused while the contact has another.
    pub async fn link(&self, clinic: &ClinicId, id: &str, contact_id: &str) -> Result<Conversation, LinkError> {
        for _ in 0..MAX_RACES {
            let current = self.get(clinic, id).await?.ok_or(LinkError::Missing)?;
            let linked = current.linked(contact_id).map_err(|_| LinkError::AlreadyLinked)?;
            if current.status == ConversationStatus::Closed {
                match self.replace(&linked, current.version).await {
                    Ok(()) => return Ok(linked),
                    Err(StoreError::Conflict) => continue,
                    Err(other) => return Err(other.into()),
                }
            }
            let (busy, stale) = self.active_or_stale(clinic, &linked.party_key()).await?;
            if busy.is_some() {
                return Err(LinkError::ContactBusy);
            }
            let mut pointer = Put::builder()
                .table_name(&self.table)
                .item("pk", s(pointer_pk(&linked.party_key())))
                .item("sk", s(SORT_KEY))
                .item("conversation_id", s(id))
                .condition_expression(if stale.is_some() {
                    "attribute_not_exists(pk) OR conversation_id = :stale"
                } else {
                    "attribute_not_exists(pk)"
                });
            if let Some(stale) = stale {
                pointer = pointer.expression_attribute_values(":stale", s(stale));
            }
            let conversation = Put::builder()
                .table_name(&self.table)
                .set_item(Some(Self::item(&linked)?))
                .condition_expression("version = :v")
                .expression_attribute_values(":v", n(current.version));
            let written = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(pointer.build().map_err(StoreError::from)?).build())
                .transact_items(
                    TransactWriteItem::builder().put(conversation.build().map_err(StoreError::from)?).build(),
                )
                .send()
                .await;
            match written {
                Ok(_) => {
                    self.drop_pointer(&current.party_key(), id).await?;
                    return Ok(linked);
                }
                Err(e) if lost_race(&e) => continue,
                Err(e) => return Err(StoreError::from(e).into()),
            }
        }
        Err(StoreError::Conflict.into())
    }

    /// A page of the clinic's conversations: open first, newest activity first.
    pub async fn list(
        &self,
        clinic: &ClinicId,
        cursor: Option<&str>,
        limit: i32,
    ) -> Result<Page<Conversation>, ListError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :pk")
            .expression_attribute_values(":pk", s(list_pk(clinic)))
            .scan_index_forward(false)
            .limit(limit.clamp(1, 100));
        if let Some(cursor) = cursor {
            let key = URL_SAFE_NO_PAD
                .decode(cursor)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or(ListError::BadCursor)?;
            let id = id_in_list_key(&key).ok_or(ListError::BadCursor)?.to_owned();
            query = query
                .exclusive_start_key("pk", s(pk(&id)))
                .exclusive_start_key("sk", s(SORT_KEY))
                .exclusive_start_key("gsi1pk", s(list_pk(clinic)))
                .exclusive_start_key("gsi1sk", AttributeValue::S(key));
        }
        let out = query.send().await.map_err(StoreError::from)?;
        let entries = out.items.unwrap_or_default();
        let items = crate::dynamo::items_behind(&self.client, &self.table, &entries)
            .await?
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<Conversation>, _>>()?;
        let next_cursor = out
            .last_evaluated_key
            .and_then(|key| key.get("gsi1sk").and_then(|v| v.as_s().ok()).cloned())
            .map(|sk| URL_SAFE_NO_PAD.encode(sk));
        Ok(Page { items, next_cursor })
    }

    /// The conversation's messages, oldest first.
    pub async fn messages(&self, id: &str) -> Result<Vec<Message>, StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("gsi3")
            .key_condition_expression("gsi3pk = :pk")
            .expression_attribute_values(":pk", s(pk(id)))
            .into_paginator()
            .items()
            .send();
        let mut found = Vec::new();
        while let Some(item) = pages.try_next().await? {
            found.push(from_item(item)?);
        }
        Ok(found)
    }
}
