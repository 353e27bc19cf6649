//! `Idempotency-Key` for POSTs that create texts: the first request with a key is processed and
//! its answer stored for 24 hours; a repeat with the same body gets that answer and creates
//! nothing, and a repeat with a different body is refused. Concurrent repeats wait for the first.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::counters_table::CountersTable;
use crate::dynamo::{StoreError, from_item, n, s, to_item};
use crate::ids::ClinicId;

pub const KEY_LIFETIME: TimeDelta = TimeDelta::hours(24);

/// A stored answer to replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAnswer {
    pub status: u16,
    pub body: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    fingerprint: String,
    #[serde(default)]
    answer: Option<StoredAnswer>,
    expires_at: i64,
}

/// What to do with a request that carries a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First time: process it, then `finish` (or `abandon` on a failure of ours).
    Proceed,
    /// Seen before with this body: answer this.
    Replay(StoredAnswer),
    /// Seen before with a different body.
    Mismatch,
    /// The first request with this key is still being processed.
    InProgress,
}

pub fn fingerprint(method_and_path: &str, body: &[u8]) -> String {
    let digest = Sha256::new().chain_update(method_and_path.as_bytes()).chain_update([0]).chain_update(body).finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Keys are chosen by clients: 1 to 255 visible ASCII characters.
pub fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.chars().all(|c| c.is_ascii_graphic())
}

fn pk(clinic: &ClinicId, key: &str) -> String {
    format!("IDEMPOTENCY#{clinic}#{key}")
}

impl CountersTable {
    /// Claims the key for this request, or says what the earlier request with it decided.
    pub async fn claim_idempotency_key(
        &self,
        clinic: &ClinicId,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let record =
            Record { fingerprint: fingerprint.to_owned(), answer: None, expires_at: (now + KEY_LIFETIME).timestamp() };
        let item = to_item(&record, &[("pk", pk(clinic, key)), ("sk", "KEY".to_owned())])?;
        // An expired key that DynamoDB has not removed yet counts as free.
        let put = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", n(now.timestamp()))
            .send()
            .await;
        match put.map_err(StoreError::from) {
            Ok(_) => return Ok(Claim::Proceed),
            Err(StoreError::Conflict) => {}
            Err(other) => return Err(other),
        }
        // Someone has it: wait briefly for their answer.
        for _ in 0..20 {
            let out = self
                .client()
                .get_item()
                .table_name(self.table())
                .key("pk", s(pk(clinic, key)))
                .key("sk", s("KEY"))
                .consistent_read(true)
                .send()
                .await?;
            let Some(item) = out.item else {
                // Abandoned meanwhile: the caller may try again.
                return Ok(Claim::InProgress);
            };
            let stored: Record = from_item(item)?;
            if stored.fingerprint != fingerprint {
                return Ok(Claim::Mismatch);
            }
            if let Some(answer) = stored.answer {
                return Ok(Claim::Replay(answer));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Claim::InProgress)
    }

    /// Stores the answer to replay for this key.
    pub async fn finish_idempotency_key(
        &self,
        clinic: &ClinicId,
        key: &str,
        answer: &StoredAnswer,
    ) -> Result<(), StoreError> {
        self.client()
            .update_item()
            .table_name(self.table())
            .key("pk", s(pk(clinic, key)))
            .key("sk", s("KEY"))
            .update_expression("SET answer = :answer")
            .expression_attribute_values(":answer", serde_dynamo::to_attribute_value(answer)?)
            .send()
            .await?;
        Ok(())
    }

    /// Frees the key after a failure of ours, so the client's retry is processed afresh.
    pub async fn abandon_idempotency_key(&self, clinic: &ClinicId, key: &str) -> Result<(), StoreError> {
        self.client()
            .delete_item()
            .table_name(self.table())
            .key("pk", s(pk(clinic, key)))
            .key("sk", s("KEY"))
            .send()
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_differ_with_the_body_and_the_route() {
        let a = fingerprint("POST /v1/messages", br#"{"to":"+1"}"#);
        assert_eq!(a, fingerprint("POST /v1/messages", br#"{"to":"+1"}"#));
        assert_ne!(a, fingerprint("POST /v1/messages", br#"{"to":"+2"}"#));
        assert_ne!(a, fingerprint("POST /v1/other", br#"{"to":"+1"}"#));
    }

    #[test]
    fn keys_are_short_visible_ascii() {
        assert!(valid_key("order-123_abc"));
        assert!(!valid_key(""));
        assert!(!valid_key("has space"));
        assert!(!valid_key(&"k".repeat(256)));
    }
}
