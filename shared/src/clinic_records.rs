//! Records a clinic owns (businesses, contacts, templates, …), stored under the clinic's own
//! partition: `pk = CLINIC#<clinic id>`, `sk = <KIND>#<record id>`. A caller can only ever name
//! records inside its clinic's partition, so tenant isolation is a property of the key, not of a
//! check someone might forget.

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clinics_table::ClinicsTable;
use crate::dynamo::{StoreError, from_item, plausible_id, s, to_item};
use crate::ids::ClinicId;

pub trait ClinicRecord: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// The sort-key prefix, e.g. `BUSINESS`.
    const KIND: &'static str;
    fn id(&self) -> &str;
    fn clinic_id(&self) -> &ClinicId;
    /// `gsi1pk`/`gsi1sk` for records found through the index (see docs/data-model.md).
    fn index_keys(&self) -> Option<(String, String)> {
        None
    }
}

/// One page of a list, and the cursor for the next (absent on the last page).
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("the cursor is not one this list gave out")]
    BadCursor,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn clinic_pk(clinic: &ClinicId) -> String {
    format!("CLINIC#{clinic}")
}

fn sort_key<T: ClinicRecord>(id: &str) -> String {
    format!("{}#{id}", T::KIND)
}

impl ClinicsTable {
    /// The key of a record, for batched reads.
    pub(crate) fn record_key<T: ClinicRecord>(clinic: &ClinicId, id: &str) -> (String, String) {
        (clinic_pk(clinic), sort_key::<T>(id))
    }

    fn item<T: ClinicRecord>(record: &T) -> Result<crate::dynamo::Item, StoreError> {
        let mut keys = vec![("pk", clinic_pk(record.clinic_id())), ("sk", sort_key::<T>(record.id()))];
        if let Some((pk, sk)) = record.index_keys() {
            keys.extend([("gsi1pk", pk), ("gsi1sk", sk)]);
        }
        to_item(record, &keys)
    }

    /// Creates a record; `Conflict` if one with that id exists.
    pub async fn insert_record<T: ClinicRecord>(&self, record: &T) -> Result<(), StoreError> {
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(Self::item(record)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await?;
        Ok(())
    }

    /// Replaces an existing record; `Conflict` if it does not exist.
    pub async fn replace_record<T: ClinicRecord>(&self, record: &T) -> Result<(), StoreError> {
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(Self::item(record)?))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await?;
        Ok(())
    }

    /// Writes a record whether or not it exists.
    pub async fn put_record<T: ClinicRecord>(&self, record: &T) -> Result<(), StoreError> {
        self.client().put_item().table_name(self.table()).set_item(Some(Self::item(record)?)).send().await?;
        Ok(())
    }

    pub async fn record<T: ClinicRecord>(&self, clinic: &ClinicId, id: &str) -> Result<Option<T>, StoreError> {
        if !plausible_id(id) {
            return Ok(None);
        }
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .key("pk", s(clinic_pk(clinic)))
            .key("sk", s(sort_key::<T>(id)))
            .send()
            .await?;
        out.item.map(from_item).transpose()
    }

    /// The clinic's records with these ids (any number; unknown ones are left out).
    pub async fn records_by_id<T: ClinicRecord>(
        &self,
        clinic: &ClinicId,
        ids: &[String],
    ) -> Result<Vec<T>, StoreError> {
        let keys = ids
            .iter()
            .filter(|id| plausible_id(id))
            .map(|id| crate::dynamo::key(clinic_pk(clinic), sort_key::<T>(id)))
            .collect();
        crate::dynamo::batch_get(self.client(), self.table(), keys, false).await?.into_iter().map(from_item).collect()
    }

    /// Deletes a record; `false` if there was none.
    pub async fn delete_record<T: ClinicRecord>(&self, clinic: &ClinicId, id: &str) -> Result<bool, StoreError> {
        if !plausible_id(id) {
            return Ok(false);
        }
        let result = self
            .client()
            .delete_item()
            .table_name(self.table())
            .key("pk", s(clinic_pk(clinic)))
            .key("sk", s(sort_key::<T>(id)))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        crate::dynamo::applied(result)
    }

    /// Deletes a record and returns it as it was (what it held may need releasing); `None` if
    /// there was none.
    pub async fn take_record<T: ClinicRecord>(&self, clinic: &ClinicId, id: &str) -> Result<Option<T>, StoreError> {
        if !plausible_id(id) {
            return Ok(None);
        }
        let result = self
            .client()
            .delete_item()
            .table_name(self.table())
            .key("pk", s(clinic_pk(clinic)))
            .key("sk", s(sort_key::<T>(id)))
            .condition_expression("attribute_exists(pk)")
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await;
        match result.map_err(StoreError::from) {
            Ok(out) => out.attributes.map(from_item).transpose(),
            Err(StoreError::Conflict) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// The records of one kind filed under an index key (`gsi1pk`), in `gsi1sk` order, at most
    /// `limit`.
    pub async fn by_index_key<T: ClinicRecord>(&self, index_pk: &str, limit: i32) -> Result<Vec<T>, StoreError> {
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :pk AND begins_with(gsi1sk, :kind)")
            .expression_attribute_values(":pk", s(index_pk))
            .expression_attribute_values(":kind", s(format!("{}#", T::KIND)))
            .limit(limit.clamp(1, 100))
            .send()
            .await?;
        out.items.unwrap_or_default().into_iter().map(from_item).collect()
    }

    /// The last `limit` records of one kind whose ids start with `id_prefix`, highest id first.
    pub async fn last_records<T: ClinicRecord>(
        &self,
        clinic: &ClinicId,
        id_prefix: &str,
        limit: i32,
    ) -> Result<Vec<T>, StoreError> {
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(clinic_pk(clinic)))
            .expression_attribute_values(":prefix", s(sort_key::<T>(id_prefix)))
            .scan_index_forward(false)
            .limit(limit.clamp(1, 100))
            .send()
            .await?;
        out.items.unwrap_or_default().into_iter().map(from_item).collect()
    }

    /// Every contact of a clinic in a group, in id order (the clinic's contacts read through,
    /// filtered on `group_ids`).
    pub async fn contacts_in_group(
        &self,
        clinic: &ClinicId,
        group_id: &str,
    ) -> Result<Vec<crate::contacts::Contact>, StoreError> {
        let mut pages = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("pk = :pk AND begins_with(sk, :kind)")
            .filter_expression("contains(group_ids, :group)")
            .expression_attribute_values(":pk", s(clinic_pk(clinic)))
            .expression_attribute_values(":kind", s("CONTACT#"))
            .expression_attribute_values(":group", s(group_id))
            .into_paginator()
            .items()
            .send();
        let mut members = Vec::new();
        while let Some(item) = pages.try_next().await? {
            members.push(from_item(item)?);
        }
        Ok(members)
    }

    /// A page of a clinic's records of one kind, in id order. The cursor is opaque to callers;
    /// it only ever continues within this clinic's partition and this kind.
    pub async fn list<T: ClinicRecord>(
        &self,
        clinic: &ClinicId,
        cursor: Option<&str>,
        limit: i32,
    ) -> Result<Page<T>, ListError> {
        let prefix = format!("{}#", T::KIND);
        let mut query = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("pk = :pk AND begins_with(sk, :kind)")
            .expression_attribute_values(":pk", s(clinic_pk(clinic)))
            .expression_attribute_values(":kind", s(&prefix))
            .limit(limit.clamp(1, 100));
        if let Some(cursor) = cursor {
            let after = decode_cursor(cursor)
                .filter(|sk| sk.starts_with(&prefix) && sk.len() <= prefix.len() + 128)
                .ok_or(ListError::BadCursor)?;
            query = query
                .exclusive_start_key("pk", s(clinic_pk(clinic)))
                .exclusive_start_key("sk", AttributeValue::S(after));
        }
        let out = query.send().await.map_err(StoreError::from)?;
        let items = out.items.unwrap_or_default().into_iter().map(from_item).collect::<Result<Vec<T>, _>>()?;
        let next_cursor = out
            .last_evaluated_key
            .and_then(|key| key.get("sk").and_then(|v| v.as_s().ok()).cloned())
            .map(|sk| URL_SAFE_NO_PAD.encode(sk));
        Ok(Page { items, next_cursor })
    }
}

fn decode_cursor(cursor: &str) -> Option<String> {
    URL_SAFE_NO_PAD.decode(cursor).ok().and_then(|bytes| String::from_utf8(bytes).ok())
}
