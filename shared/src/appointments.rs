//! Appointments, in their own table: `pk = APPT#<id>`, `sk = APPOINTMENT`.
//!
//! - `gsi1` (`REMIND#<clinic id>#<business id>` / `<start>#<id>`) holds only appointments that still need a
//!   reminder decision for their current start time: the scheduler reads exactly those. Recording
//!   a decision removes the keys; moving the appointment puts them back.
//! - `gsi2` (`CLINIC#<clinic id>` / `<start>#<id>`): a clinic's appointments by start time.

use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::dynamo::{StoreError, from_item, get_consistent, index_instant, plausible_id, s, to_item};
use crate::ids::ClinicId;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStatus {
    Booked,
    Confirmed,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appointment {
    pub id: String,
    pub clinic_id: ClinicId,
    pub business_id: String,
    pub contact_id: String,
    pub type_id: String,
    #[serde(default)]
    pub patient_names: Vec<String>,
    /// Stored in UTC; shown in the business's zone.
    pub start: DateTime<Utc>,
    pub status: AppointmentStatus,
    /// The start time a reminder decision was recorded for.
    #[serde(default)]
    pub decided_start: Option<DateTime<Utc>>,
    /// The message holding that decision (a reminder or a did-not-trigger entry).
    #[serde(default)]
    pub reminder_message_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Appointment {
    pub fn needs_decision(&self) -> bool {
        self.decided_start != Some(self.start)
    }
}

#[derive(Clone, Debug)]
pub struct AppointmentsTable {
    client: Client,
    table: String,
}

fn pk(id: &str) -> String {
    format!("APPT#{id}")
}

fn by_start(a: &Appointment) -> String {
    format!("{}#{}", index_instant(a.start), a.id)
}

impl AppointmentsTable {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    /// An appointment's key, for batched reads.
    pub(crate) fn key(id: &str) -> (String, String) {
        (pk(id), "APPOINTMENT".to_owned())
    }

    fn item(a: &Appointment) -> Result<crate::dynamo::Item, StoreError> {
        let mut keys = vec![
            ("pk", pk(&a.id)),
            ("sk", "APPOINTMENT".to_owned()),
            ("gsi2pk", format!("CLINIC#{}", a.clinic_id)),
            ("gsi2sk", by_start(a)),
        ];
        if a.needs_decision() {
            keys.extend([("gsi1pk", format!("REMIND#{}#{}", a.clinic_id, a.business_id)), ("gsi1sk", by_start(a))]);
        }
        to_item(a, &keys)
    }

    pub async fn put(&self, a: &Appointment) -> Result<(), StoreError> {
        self.client.put_item().table_name(&self.table).set_item(Some(Self::item(a)?)).send().await?;
        Ok(())
    }

    /// An appointment of this clinic (another clinic's is `None`, as if it did not exist).
    pub async fn get(&self, clinic: &ClinicId, id: &str) -> Result<Option<Appointment>, StoreError> {
        if !plausible_id(id) {
            return Ok(None);
        }
        let (pk, sk) = Self::key(id);
        let found: Option<Appointment> =
            get_consistent(&self.client, &self.table, pk, sk).await?.map(from_item).transpose()?;
        Ok(found.filter(|a| &a.clinic_id == clinic))
    }

    pub async fn delete(&self, clinic: &ClinicId, id: &str) -> Result<bool, StoreError> {
        if !plausible_id(id) {
            return Ok(false);
        }
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(pk(id)))
            .key("sk", s("APPOINTMENT"))
            .condition_expression("clinic_id = :clinic")
            .expression_attribute_values(":clinic", s(clinic.as_str()))
            .send()
            .await;
        crate::dynamo::applied(result)
    }

    /// Appointments of a business awaiting a reminder decision, starting in `[from, to)`.
    pub async fn awaiting_decision(
        &self,
        clinic: &ClinicId,
        business_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Appointment>, StoreError> {
        self.query_range("gsi1", "gsi1pk", format!("REMIND#{clinic}#{business_id}"), "gsi1sk", from, to).await
    }

    /// A clinic's appointments starting in `[from, to)`, by start time.
    pub async fn of_clinic_between(
        &self,
        clinic: &ClinicId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Appointment>, StoreError> {
        self.query_range("gsi2", "gsi2pk", format!("CLINIC#{clinic}"), "gsi2sk", from, to).await
    }

    async fn query_range(
        &self,
        index: &str,
        pk_name: &str,
        pk_value: String,
        sk_name: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Appointment>, StoreError> {
        let mut found = Vec::new();
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
            .expression_attribute_names("#pk", pk_name)
            .expression_attribute_names("#sk", sk_name)
            .expression_attribute_values(":pk", s(pk_value))
            .expression_attribute_values(":from", s(index_instant(from)))
            // Keys are `<start>#<id>`: every key of the last second before `to` sorts below `<to>`.
            .expression_attribute_values(":to", s(index_instant(to)))
            .into_paginator()
            .items()
            .send();
        while let Some(entry) = pages.try_next().await? {
            found.push(entry);
        }
        // Both indexes hold keys only (`aws_resources::APPOINTMENTS_TABLE`).
        let items = crate::dynamo::items_behind(&self.client, &self.table, &found).await?;
        items.into_iter().map(from_item).collect()
    }

    /// Confirms a booked appointment of this clinic, if it still starts at `start`; `true` if it
    /// is confirmed now (or already was).
    pub async fn confirm(
        &self,
        clinic: &ClinicId,
        id: &str,
        start: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        if !plausible_id(id) {
            return Ok(false);
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk(id)))
            .key("sk", s("APPOINTMENT"))
            .update_expression("SET #status = :confirmed, updated_at = :now")
            .condition_expression("clinic_id = :clinic AND #start = :start AND #status IN (:booked, :confirmed)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#start", "start")
            .expression_attribute_values(":confirmed", serde_dynamo::to_attribute_value(AppointmentStatus::Confirmed)?)
            .expression_attribute_values(":booked", serde_dynamo::to_attribute_value(AppointmentStatus::Booked)?)
            .expression_attribute_values(":now", serde_dynamo::to_attribute_value(now)?)
            .expression_attribute_values(":clinic", s(clinic.as_str()))
            .expression_attribute_values(":start", serde_dynamo::to_attribute_value(start)?)
            .send()
            .await;
        crate::dynamo::applied(result)
    }

    /// Records that a reminder decision was made for `start`, unless the appointment has moved
    /// since (then it keeps waiting for a decision at its new time).
    pub async fn mark_decided(&self, id: &str, start: DateTime<Utc>, message_id: &str) -> Result<bool, StoreError> {
        let start_value = serde_dynamo::to_attribute_value(start)?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk(id)))
            .key("sk", s("APPOINTMENT"))
            .update_expression("SET decided_start = :start, reminder_message_id = :message REMOVE gsi1pk, gsi1sk")
            .condition_expression("#start = :start")
            .expression_attribute_names("#start", "start")
            .expression_attribute_values(":start", start_value)
            .expression_attribute_values(":message", s(message_id))
            .send()
            .await;
        crate::dynamo::applied(result)
    }
}
