//! The sender's reads and writes that span tables, each a single DynamoDB request: everything a
//! send is checked against (the clinic, the connection, the recipient's opt-out, the appointment
//! and the connection's current rate-limit window) in one `BatchGetItem`, and the claim together
//! with the credits it costs in one `TransactWriteItems`. Together with reading the message and
//! recording Twilio's answer, a text costs five requests from dequeue to `submitted`.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{KeysAndAttributes, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use crate::appointments::{Appointment, AppointmentsTable};
use crate::clinic::{Clinic, Connection};
use crate::clinics_table::ClinicsTable;
use crate::contacts::OptOut;
use crate::counters_table::CountersTable;
use crate::dynamo::{Item, StoreError, from_item, n, s};
use crate::message::Message;
use crate::messages_table::MessagesTable;
use crate::pacing::{self, RateSnapshot};

/// `BatchGetItem` may leave keys unprocessed under load; they are asked for again this often.
const UNPROCESSED_RETRIES: u32 = 8;
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
        let clinic = &message.clinic_id;
        let profile = ClinicsTable::profile_key(clinic);
        let connection = ClinicsTable::record_key::<Connection>(clinic, message.connection_id.as_str());
        let opt_out = message.to.as_ref().map(|to| ClinicsTable::record_key::<OptOut>(clinic, to.as_str()));
        let appointment = message.appointment.as_ref().map(|a| AppointmentsTable::key(&a.id));
        // A client has a handful of appointments in a week; more than this adds nothing.
        let alert_appointments: Vec<_> = message
            .mass_alert
            .iter()
            .flat_map(|link| link.appointment_ids.iter().take(MAX_ALERT_APPOINTMENTS))
            .map(|id| AppointmentsTable::key(id))
            .collect();
        let rate = rate_key.map(|k| pacing::snapshot_keys(k, message.lane, now));

        let mut wanted: HashMap<String, Vec<Key>> = HashMap::new();
        let clinic_keys = wanted.entry(self.clinics.clone()).or_default();
        clinic_keys.push(key(profile.0.clone(), profile.1.clone()));
        clinic_keys.push(key(connection.0.clone(), connection.1.clone()));
        if let Some((pk, sk)) = &opt_out {
            clinic_keys.push(key(pk.clone(), sk.clone()));
        }
        for (pk, sk) in appointment.iter().chain(&alert_appointments) {
            wanted.entry(self.appointments.clone()).or_default().push(key(pk.clone(), sk.clone()));
        }
        if let Some(rate) = &rate {
            let counters = wanted.entry(self.counters.clone()).or_default();
            for (pk, sk) in rate.keys() {
                counters.push(key(pk, sk));
            }
        }
        let mut found = self.batch_get(wanted).await?;
        let mut take = |table: &str, k: &(String, String)| found.remove(&(table.to_owned(), k.0.clone(), k.1.clone()));

        let mut facts = SendFacts {
            clinic: take(&self.clinics, &profile).map(from_item).transpose()?,
            connection: take(&self.clinics, &connection).map(from_item).transpose()?,
            ..SendFacts::default()
        };
        facts.opted_out = opt_out.is_some_and(|k| take(&self.clinics, &k).is_some());
        if let Some(k) = appointment {
            let stored: Option<Appointment> = take(&self.appointments, &k).map(from_item).transpose()?;
            // An id names an appointment of this clinic only.
            facts.appointment = stored.filter(|a| a.clinic_id == message.clinic_id);
        }
        for k in &alert_appointments {
            let stored: Option<Appointment> = take(&self.appointments, k).map(from_item).transpose()?;
            facts.alert_appointments.extend(stored.filter(|a| a.clinic_id == message.clinic_id));
        }
        if let Some(rate) = rate {
            let [frontier, window, next] = rate.keys();
            let frontier = take(&self.counters, &frontier);
            let window = take(&self.counters, &window);
            let next = take(&self.counters, &next);
            facts.rate = Some(rate.read(frontier.as_ref(), window.as_ref(), next.as_ref()));
        }
        Ok(facts)
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
                    let keys = KeysAndAttributes::builder().set_keys(Some(keys)).consistent_read(true).build()?;
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
