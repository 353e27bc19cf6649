//! The sender's reads and writes that span tables, each a single DynamoDB request where it can
//! be: a batch's messages together with the slots they hold, and everything a send is checked
//! against (the clinic, the connection, the recipient's opt-out, the appointment and the
//! connection's current rate-limit window), each in one `BatchGetItem`; the slots a batch's
//! waiting texts hold in one `BatchWriteItem`; and the claim together with the credits it costs
//! in one `TransactWriteItems`. Together with recording Twilio's answer, a text that need not
//! wait costs five requests from dequeue to `submitted`, fewer in a batch.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{KeysAndAttributes, Put, PutRequest, TransactWriteItem, Update, WriteRequest};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::appointments::{Appointment, AppointmentsTable};
use crate::clinic::{Clinic, Connection};
use crate::clinics_table::ClinicsTable;
use crate::contacts::OptOut;
use crate::counters_table::CountersTable;
use crate::dynamo::{Item, StoreError, from_item, n, s};
use crate::ids::{ClinicId, ConnectionId, MessageId};
use crate::message::{Lane, Message};
use crate::message_status::MessageStatus;
use crate::messages_table::MessagesTable;
use crate::pacing::{self, RateSnapshot};
use crate::phone::E164;

/// `BatchGetItem` may leave keys unprocessed under load; they are asked for again this often.
const UNPROCESSED_RETRIES: u32 = 8;
/// The most keys one `BatchGetItem` takes.
const BATCH_GET_KEYS: usize = 100;
/// The most items one `BatchWriteItem` takes.
const BATCH_WRITE_ITEMS: usize = 25;
/// A held slot's record outlives its second by this much, then DynamoDB deletes it.
const HELD_SLOT_KEPT: TimeDelta = TimeDelta::days(1);
/// The most of a mass alert client's appointments read before their text goes.
const MAX_ALERT_APPOINTMENTS: usize = 20;

#[derive(Clone, Debug)]
pub struct SenderStore {
    client: Client,
    clinics: String,
    appointments: String,
    counters: String,
    messages: String,
}

/// What a queued message is checked against before it is sent.
#[derive(Debug, Clone, Default)]
pub struct SendFacts {
    pub clinic: Option<Clinic>,
    pub connection: Option<Connection>,
    pub opted_out: bool,
    /// The appointment a reminder is for (read only for reminders).
    pub appointment: Option<Appointment>,
    /// The appointments that made a mass alert's client a recipient (read only for those texts).
    pub alert_appointments: Vec<Appointment>,
    /// The connection's rate-limit state for the message's lane (read only when it needs a slot).
    pub rate: Option<RateSnapshot>,
}

/// The second a queued message holds on its connection's rate limit while its job is hidden,
/// for the message as it was at `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldSlot {
    pub slot: DateTime<Utc>,
    pub version: u64,
    /// Epoch seconds: DynamoDB deletes the record a day after its second.
    expires_at: i64,
}

impl HeldSlot {
    pub fn new(slot: DateTime<Utc>, version: u64) -> Self {
        Self { slot, version, expires_at: (slot + HELD_SLOT_KEPT).timestamp() }
    }
}

fn held_slot_key(id: &MessageId) -> (String, String) {
    (format!("SLOT#{id}"), "SLOT".to_owned())
}

/// What became of a claim made together with its credits.
#[derive(Debug)]
pub enum Claim {
    Claimed,
    /// The message changed since it was read; read it again.
    Changed,
    /// The clinic's balance does not cover the text; nothing was written.
    NoCredits,
}

type Key = HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

fn key(pk: String, sk: String) -> Key {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn key_of(item: &Item) -> Option<(String, String)> {
    let pk = item.get("pk")?.as_s().ok()?.clone();
    let sk = item.get("sk")?.as_s().ok()?.clone();
    Some((pk, sk))
}

/// What a message is checked against before it goes, by the fields that name those items. A
/// job carries it (`SendJob::checks`) so that its items can be read with the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checks {
    pub clinic_id: ClinicId,
    pub connection_id: ConnectionId,
    pub lane: Lane,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<E164>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appointment_id: Option<String>,
    /// A mass alert client's appointments, as many as are read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alert_appointment_ids: Vec<String>,
}

impl Checks {
    pub fn of(message: &Message) -> Self {
        Self {
            clinic_id: message.clinic_id.clone(),
            connection_id: message.connection_id.clone(),
            lane: message.lane,
            to: message.to.clone(),
            appointment_id: message.appointment.as_ref().map(|a| a.id.clone()),
            // A client has a handful of appointments in a week; more than this adds nothing.
            alert_appointment_ids: message
                .mass_alert
                .iter()
                .flat_map(|link| link.appointment_ids.iter().take(MAX_ALERT_APPOINTMENTS).cloned())
                .collect(),
        }
    }

    /// The key of the connection's rate limit.
    pub fn rate_key(&self) -> String {
        pacing::rate_key(&self.clinic_id, &self.connection_id)
    }
}

/// The items a message's facts are read from, as `(pk, sk)`.
struct FactKeys {
    profile: (String, String),
    connection: (String, String),
    opt_out: Option<(String, String)>,
    appointment: Option<(String, String)>,
    alert_appointments: Vec<(String, String)>,
    rate: Option<pacing::SnapshotKeys>,
}

impl FactKeys {
    /// With the connection's rate windows when `with_rate`.
    fn of(checks: &Checks, with_rate: bool, now: DateTime<Utc>) -> Self {
        let clinic = &checks.clinic_id;
        Self {
            profile: ClinicsTable::profile_key(clinic),
            connection: ClinicsTable::record_key::<Connection>(clinic, checks.connection_id.as_str()),
            opt_out: checks.to.as_ref().map(|to| ClinicsTable::record_key::<OptOut>(clinic, to.as_str())),
            appointment: checks.appointment_id.as_ref().map(|id| AppointmentsTable::key(id)),
            alert_appointments: checks.alert_appointment_ids.iter().map(|id| AppointmentsTable::key(id)).collect(),
            rate: with_rate.then(|| pacing::snapshot_keys(&checks.rate_key(), checks.lane, now)),
        }
    }

    /// Every item to read, with its table.
    fn all(&self, store: &SenderStore) -> Vec<(String, (String, String))> {
        let mut all =
            vec![(store.clinics.clone(), self.profile.clone()), (store.clinics.clone(), self.connection.clone())];
        all.extend(self.opt_out.iter().map(|k| (store.clinics.clone(), k.clone())));
        for k in self.appointment.iter().chain(&self.alert_appointments) {
            all.push((store.appointments.clone(), k.clone()));
        }
        for k in self.rate.iter().flat_map(|rate| rate.keys()) {
            all.push((store.counters.clone(), k));
        }
        all
    }
}

/// Items read together, by `(table, pk, sk)`.
type Found = HashMap<(String, String, String), Item>;

/// A job to read for: its message, and what the job says the message is checked against, with
/// the connection's rate windows too if the message will likely need a slot.
#[derive(Debug, Clone)]
pub struct JobRead {
    pub message_id: MessageId,
    pub checks: Option<Checks>,
    pub with_rate: bool,
}

/// What was read for a job: the message (with the slot it holds), and its facts when the job's
/// checks named the message's own items (with the rate windows if they were asked for).
#[derive(Debug, Default)]
pub struct JobFound {
    pub message: Option<Message>,
    pub facts: Option<SendFacts>,
    pub rate_read: bool,
}

impl SenderStore {
    pub fn new(client: Client, settings: &crate::config::Settings) -> Self {
        let tables = &settings.tables;
        Self {
            client,
            clinics: tables.clinics.clone(),
            appointments: tables.appointments.clone(),
            counters: tables.counters.clone(),
            messages: tables.messages.clone(),
        }
    }

    /// Reads the facts for `message` in one request. `rate_key` is the connection's rate-limit
    /// key when the message still needs a slot.
    pub async fn facts(
        &self,
        message: &Message,
        rate_key: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<SendFacts, StoreError> {
        let mut facts = self.facts_of_many(&[(message, rate_key)], now).await?;
        Ok(facts.pop().unwrap_or_default())
    }

    /// The facts of several messages (each with its rate-limit key, if it needs a slot), in as
    /// few requests as `BatchGetItem` allows: what they share (the clinic, the connection, the
    /// rate windows) is read once.
    pub async fn facts_of_many(
        &self,
        messages: &[(&Message, Option<&str>)],
        now: DateTime<Utc>,
    ) -> Result<Vec<SendFacts>, StoreError> {
        let wanted: Vec<(Checks, FactKeys)> = messages
            .iter()
            .map(|(m, rate_key)| {
                let checks = Checks::of(m);
                let keys = FactKeys::of(&checks, rate_key.is_some(), now);
                (checks, keys)
            })
            .collect();
        let mut keys = Vec::new();
        for (_, w) in &wanted {
            keys.extend(w.all(self));
        }
        let found = self.read_all(keys).await?;
        wanted.iter().map(|(checks, w)| self.facts_from(&found, checks, w)).collect()
    }

    /// A batch's messages (with the slots they hold) and, for each job whose checks name its
    /// message's own items, the message's facts: all in one `BatchGetItem` for up to 100 items.
    /// A message that is gone, or whose item cannot be read, is `None`: its job reads it on its
    /// own and fails alone.
    pub async fn messages_with_facts(&self, jobs: &[JobRead], now: DateTime<Utc>) -> Result<Vec<JobFound>, StoreError> {
        let wanted: Vec<Option<FactKeys>> =
            jobs.iter().map(|job| job.checks.as_ref().map(|c| FactKeys::of(c, job.with_rate, now))).collect();
        let mut keys = Vec::new();
        for (job, facts) in jobs.iter().zip(&wanted) {
            keys.push((self.messages.clone(), MessagesTable::key(&job.message_id)));
            keys.push((self.counters.clone(), held_slot_key(&job.message_id)));
            keys.extend(facts.iter().flat_map(|w| w.all(self)));
        }
        let mut found = self.read_all(keys).await?;
        let mut all = Vec::with_capacity(jobs.len());
        for (job, facts) in jobs.iter().zip(&wanted) {
            let message = self.message_from(&mut found, &job.message_id);
            // A hint only: the message's own items, or none.
            let checks = job.checks.as_ref().filter(|c| message.as_ref().is_some_and(|m| Checks::of(m) == **c));
            let facts = match (checks, facts) {
                (Some(checks), Some(w)) => Some(self.facts_from(&found, checks, w)?),
                _ => None,
            };
            all.push(JobFound { rate_read: facts.is_some() && job.with_rate, message, facts });
        }
        Ok(all)
    }

    /// Messages by id, read together (consistently), each with the slot it holds
    /// ([`SenderStore::hold_slots`]) in `send_slot`. A message that is gone, or whose item
    /// cannot be read, is `None`.
    pub async fn messages(&self, ids: &[MessageId]) -> Result<Vec<Option<Message>>, StoreError> {
        let keys = ids
            .iter()
            .flat_map(|id| {
                [(self.messages.clone(), MessagesTable::key(id)), (self.counters.clone(), held_slot_key(id))]
            })
            .collect();
        let mut found = self.read_all(keys).await?;
        Ok(ids.iter().map(|id| self.message_from(&mut found, id)).collect())
    }

    /// The message `id` from `found`, with the slot it holds in `send_slot` when the slot was
    /// held for the message as it still is.
    fn message_from(&self, found: &mut Found, id: &MessageId) -> Option<Message> {
        let mut take = |table: &str, (pk, sk): (String, String)| found.remove(&(table.to_owned(), pk, sk));
        let message: Option<Message> =
            take(&self.messages, MessagesTable::key(id)).and_then(|item| from_item(item).ok());
        let held: Option<HeldSlot> = take(&self.counters, held_slot_key(id)).and_then(|item| from_item(item).ok());
        message.map(|mut message| {
            if let Some(held) = held.filter(|h| h.version == message.version)
                && message.status == MessageStatus::Queued
            {
                // Written for this very version, it is newer than any slot the message keeps.
                message.send_slot = Some(held.slot);
            }
            message
        })
    }

    fn facts_from(&self, found: &Found, checks: &Checks, w: &FactKeys) -> Result<SendFacts, StoreError> {
        let get = |table: &str, k: &(String, String)| found.get(&(table.to_owned(), k.0.clone(), k.1.clone()));
        let mut facts = SendFacts {
            clinic: get(&self.clinics, &w.profile).cloned().map(from_item).transpose()?,
            connection: get(&self.clinics, &w.connection).cloned().map(from_item).transpose()?,
            ..SendFacts::default()
        };
        facts.opted_out = w.opt_out.as_ref().is_some_and(|k| get(&self.clinics, k).is_some());
        if let Some(k) = &w.appointment {
            let stored: Option<Appointment> = get(&self.appointments, k).cloned().map(from_item).transpose()?;
            // An id names an appointment of this clinic only.
            facts.appointment = stored.filter(|a| a.clinic_id == checks.clinic_id);
        }
        for k in &w.alert_appointments {
            let stored: Option<Appointment> = get(&self.appointments, k).cloned().map(from_item).transpose()?;
            facts.alert_appointments.extend(stored.filter(|a| a.clinic_id == checks.clinic_id));
        }
        if let Some(rate) = &w.rate {
            let [frontier, window, next] = rate.keys();
            let item = |k: &(String, String)| get(&self.counters, k);
            facts.rate = Some(rate.read(item(&frontier), item(&window), item(&next)));
        }
        Ok(facts)
    }

    /// Every item named, once each, in as few `BatchGetItem`s as take them.
    async fn read_all(&self, mut keys: Vec<(String, (String, String))>) -> Result<Found, StoreError> {
        keys.sort();
        keys.dedup();
        let mut found = HashMap::new();
        for chunk in keys.chunks(BATCH_GET_KEYS) {
            let mut request: HashMap<String, Vec<Key>> = HashMap::new();
            for (table, (pk, sk)) in chunk {
                request.entry(table.clone()).or_default().push(key(pk.clone(), sk.clone()));
            }
            found.extend(self.batch_get(request).await?);
        }
        Ok(found)
    }

    /// Records the second each message holds on its connection's rate limit while its job is
    /// hidden (`SLOT#<message>` / `SLOT` in the counters table, read back by
    /// [`SenderStore::messages`]), for the message at `version`: a message that changes
    /// meanwhile (claimed, deferred) no longer holds it. Not on the message, whose item is ten
    /// times the size and is written for each state anyway; and as one `BatchWriteItem` for a
    /// batch's texts. Unconditional: a job delivered twice may overwrite the other's slot, and
    /// then both wait for the later one (only one can claim). Returns the messages recorded.
    pub async fn hold_slots(&self, held: &[(MessageId, HeldSlot)]) -> Result<Vec<MessageId>, StoreError> {
        let mut recorded = Vec::new();
        for chunk in held.chunks(BATCH_WRITE_ITEMS) {
            let mut left = Vec::new();
            for (id, slot) in chunk {
                let (pk, sk) = held_slot_key(id);
                let item = crate::dynamo::to_item(slot, &[("pk", pk), ("sk", sk)])?;
                left.push((
                    *id,
                    WriteRequest::builder().put_request(PutRequest::builder().set_item(Some(item)).build()?).build(),
                ));
            }
            for round in 0..=UNPROCESSED_RETRIES {
                if round > 0 {
                    tokio::time::sleep(Duration::from_millis(10 << round.min(6))).await;
                }
                let requests = left.iter().map(|(_, request)| request.clone()).collect();
                let out = self.client.batch_write_item().request_items(self.counters.clone(), requests).send().await?;
                let unprocessed: Vec<Item> = out
                    .unprocessed_items
                    .unwrap_or_default()
                    .into_values()
                    .flatten()
                    .filter_map(|request| request.put_request.map(|put| put.item))
                    .collect();
                let (again, done): (Vec<_>, Vec<_>) = left.into_iter().partition(|(id, _)| {
                    let (pk, _) = held_slot_key(id);
                    unprocessed.iter().any(|item| item.get("pk").and_then(|v| v.as_s().ok()) == Some(&pk))
                });
                recorded.extend(done.into_iter().map(|(id, _)| id));
                left = again;
                if left.is_empty() {
                    break;
                }
            }
        }
        Ok(recorded)
    }

    async fn batch_get(
        &self,
        mut wanted: HashMap<String, Vec<Key>>,
    ) -> Result<HashMap<(String, String, String), Item>, StoreError> {
        let mut found = HashMap::new();
        for round in 0..=UNPROCESSED_RETRIES {
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(10 << round.min(6))).await;
            }
            let request_items = wanted
                .drain()
                .map(|(table, keys)| {
                    // The counters read here (rate windows, held slots) only guide: a grant is
                    // conditional on the window as it is, and a slot missed is reserved again.
                    // Read eventually consistent, they cost half. What decides whether a text
                    // goes (the message, an opt-out, the appointment) is read as it is now.
                    let consistent = table != self.counters;
                    let keys = KeysAndAttributes::builder().set_keys(Some(keys)).consistent_read(consistent).build()?;
                    Ok((table, keys))
                })
                .collect::<Result<HashMap<_, _>, StoreError>>()?;
            let out = self.client.batch_get_item().set_request_items(Some(request_items)).send().await?;
            for (table, items) in out.responses.unwrap_or_default() {
                for item in items {
                    if let Some((pk, sk)) = key_of(&item) {
                        found.insert((table.clone(), pk, sk), item);
                    }
                }
            }
            for (table, left) in out.unprocessed_keys.unwrap_or_default() {
                if !left.keys.is_empty() {
                    wanted.insert(table, left.keys);
                }
            }
            if wanted.is_empty() {
                return Ok(found);
            }
        }
        Err(StoreError::Unprocessed)
    }

    /// Writes `claimed` (read at `read_version`) and takes `credits` from the clinic's balance,
    /// both or neither.
    pub async fn claim_with_credits(
        &self,
        claimed: &Message,
        read_version: u64,
        credits: u64,
    ) -> Result<Claim, StoreError> {
        let put = Put::builder()
            .table_name(&self.messages)
            .set_item(Some(MessagesTable::item(claimed)?))
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", n(read_version))
            .build()?;
        let (pk, sk) = CountersTable::balance_key(&claimed.clinic_id);
        let debit = Update::builder()
            .table_name(&self.counters)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression("SET balance = balance - :n")
            .condition_expression("balance >= :n")
            .expression_attribute_values(":n", n(credits))
            .build()?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(debit).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Claimed),
            Err(err) => match err.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                    let failed = |i: usize| {
                        cancelled
                            .cancellation_reasons()
                            .get(i)
                            .and_then(|r| r.code())
                            .is_some_and(|code| code == "ConditionalCheckFailed")
                    };
                    if failed(0) {
                        Ok(Claim::Changed)
                    } else if failed(1) {
                        Ok(Claim::NoCredits)
                    } else {
                        // Cancelled for a conflict with another transaction: as if changed.
                        Ok(Claim::Changed)
                    }
                }
                other => Err(StoreError::Dynamo(Box::new(other.into()))),
            },
        }
    }
}
