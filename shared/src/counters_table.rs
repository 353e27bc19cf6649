//! The `counters` table: numbers that many writers change at once, each changed with one atomic
//! conditional update. SMS credits (`CREDITS#<clinic>` / `BALANCE`) and per-user daily allowances
//! (`ALLOWANCE#<clinic>#<user>` / `<local date>`, expiring two days later).

use aws_sdk_dynamodb::Client;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use crate::dynamo::{StoreError, get_consistent, n, number_of, s};
use crate::ids::ClinicId;

#[derive(Clone, Debug)]
pub struct CountersTable {
    client: Client,
    table: String,
}

/// Not enough left: nothing was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not enough left")]
pub struct Exhausted;

fn credits_pk(clinic: &ClinicId) -> String {
    format!("CREDITS#{clinic}")
}

impl CountersTable {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    /// The key of a clinic's credit balance, for transactions.
    pub(crate) fn balance_key(clinic: &ClinicId) -> (String, String) {
        (credits_pk(clinic), "BALANCE".to_owned())
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    pub async fn credit_balance(&self, clinic: &ClinicId) -> Result<u64, StoreError> {
        let (pk, sk) = Self::balance_key(clinic);
        Ok(number_of(get_consistent(&self.client, &self.table, pk, sk).await?.as_ref(), "balance"))
    }

    /// Adds credits (a top-up or a refund) and returns the new balance.
    pub async fn add_credits(&self, clinic: &ClinicId, credits: u64) -> Result<u64, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(credits_pk(clinic)))
            .key("sk", s("BALANCE"))
            .update_expression("ADD balance :n")
            .expression_attribute_values(":n", n(credits))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await?;
        Ok(number_of(out.attributes.as_ref(), "balance"))
    }

    /// Takes `credits` if at least that many are left, atomically: the balance never goes below
    /// zero however many senders reserve at once. Returns what is left.
    pub async fn reserve_credits(&self, clinic: &ClinicId, credits: u64) -> Result<Result<u64, Exhausted>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(credits_pk(clinic)))
            .key("sk", s("BALANCE"))
            .update_expression("SET balance = balance - :n")
            .condition_expression("balance >= :n")
            .expression_attribute_values(":n", n(credits))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await;
        match result.map_err(StoreError::from) {
            Ok(out) => Ok(Ok(number_of(out.attributes.as_ref(), "balance"))),
            Err(StoreError::Conflict) => Ok(Err(Exhausted)),
            Err(other) => Err(other),
        }
    }

    /// Counts one text against a user's allowance for `day` (the clinic's local date), unless
    /// `limit` texts were already counted. Returns how many are counted now.
    pub async fn count_allowance(
        &self,
        clinic: &ClinicId,
        user: &str,
        day: NaiveDate,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Result<u32, Exhausted>, StoreError> {
        let expires = (now + TimeDelta::days(2)).timestamp();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("ALLOWANCE#{clinic}#{user}")))
            .key("sk", s(day.to_string()))
            .update_expression("ADD used :one SET expires_at = :expires")
            .condition_expression("attribute_not_exists(used) OR used < :limit")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            .expression_attribute_values(":expires", n(expires))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await;
        match result.map_err(StoreError::from) {
            Ok(out) => Ok(Ok(number_of(out.attributes.as_ref(), "used"))),
            Err(StoreError::Conflict) => Ok(Err(Exhausted)),
            Err(other) => Err(other),
        }
    }

    /// `true` the first time it is called for this key (a once-only marker that expires after two
    /// days), `false` after that.
    pub async fn first_time(&self, key: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("ONCE#{key}")))
            .item("sk", s("ONCE"))
            .item("expires_at", n((now + TimeDelta::days(2)).timestamp()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        crate::dynamo::applied(result)
    }

    /// Gives back one counted text (its creation failed).
    pub async fn uncount_allowance(&self, clinic: &ClinicId, user: &str, day: NaiveDate) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("ALLOWANCE#{clinic}#{user}")))
            .key("sk", s(day.to_string()))
            .update_expression("ADD used :minus_one")
            .condition_expression("used > :zero")
            .expression_attribute_values(":minus_one", n(-1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match result.map_err(StoreError::from) {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Counts one webhook request refused for its signature, under its route and the hour it
    /// came in (one `ADD`; the item expires two days later).
    pub async fn count_webhook_rejection(&self, route: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(crate::webhook_rejections::PARTITION))
            .key("sk", s(crate::webhook_rejections::item_key(now, route)))
            .update_expression("ADD rejected :one SET expires_at = :expires")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expires", n((now + TimeDelta::days(2)).timestamp()))
            .send()
            .await?;
        Ok(())
    }

    /// The hourly rejection items of the last 24 hours (this hour and the 23 before), as
    /// (sort key, count): one `Query` over at most 24 items per route.
    pub async fn webhook_rejections(&self, now: DateTime<Utc>) -> Result<Vec<(String, u64)>, StoreError> {
        let (from, to) = crate::webhook_rejections::last_day(now);
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(crate::webhook_rejections::PARTITION))
            .expression_attribute_values(":from", s(from))
            .expression_attribute_values(":to", s(to))
            .consistent_read(true)
            .send()
            .await?;
        let items = out.items.unwrap_or_default();
        Ok(items
            .iter()
            .filter_map(|item| {
                let sk = item.get("sk").and_then(|v| v.as_s().ok())?.clone();
                Some((sk, number_of(Some(item), "rejected")))
            })
            .collect())
    }

    /// How many texts a user has sent on `day`.
    pub async fn allowance_used(&self, clinic: &ClinicId, user: &str, day: NaiveDate) -> Result<u32, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("ALLOWANCE#{clinic}#{user}")))
            .key("sk", s(day.to_string()))
            .send()
            .await?;
        Ok(number_of(out.item.as_ref(), "used"))
    }
}
