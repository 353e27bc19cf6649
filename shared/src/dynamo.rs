//! What the table adapters share: item conversion and the errors of a conditional write.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub type Item = HashMap<String, AttributeValue>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write found the item changed since it was read, or already there.
    #[error("the item changed since it was read")]
    Conflict,
    #[error("DynamoDB request failed")]
    Dynamo(#[source] Box<aws_sdk_dynamodb::Error>),
    #[error("an item could not be converted")]
    Item(#[from] serde_dynamo::Error),
    #[error("a DynamoDB request could not be built")]
    Build(#[from] aws_sdk_dynamodb::error::BuildError),
    /// DynamoDB kept leaving part of a batch unprocessed (it is throttling the table).
    #[error("DynamoDB left part of a batch unprocessed")]
    Unprocessed,
}

impl<E> From<aws_sdk_dynamodb::error::SdkError<E>> for StoreError
where
    aws_sdk_dynamodb::Error: From<aws_sdk_dynamodb::error::SdkError<E>>,
{
    fn from(err: aws_sdk_dynamodb::error::SdkError<E>) -> Self {
        let err = aws_sdk_dynamodb::Error::from(err);
        match err {
            aws_sdk_dynamodb::Error::ConditionalCheckFailedException(_) => Self::Conflict,
            other => Self::Dynamo(Box::new(other)),
        }
    }
}

/// The outcome of a conditional write: `true` if it was made, `false` if its condition failed
/// (the item was not as required), an error otherwise.
pub fn applied<T, E>(result: Result<T, E>) -> Result<bool, StoreError>
where
    StoreError: From<E>,
{
    match result.map_err(StoreError::from) {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict) => Ok(false),
        Err(other) => Err(other),
    }
}

/// Serialises `value` and adds the item's key (and index) attributes.
pub fn to_item<T: Serialize>(value: &T, keys: &[(&str, String)]) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(value)?;
    for (name, key) in keys {
        item.insert((*name).to_owned(), AttributeValue::S(key.clone()));
    }
    Ok(item)
}

/// An item's size as DynamoDB reckons it for billing and its 400 KB limit: each attribute's name
/// plus its value (strings and binaries by length; numbers about a byte per two digits plus one;
/// lists and maps 3 bytes plus a byte per element, with a map's names). A write costs one unit
/// per started kilobyte of it.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

fn value_size(value: &AttributeValue) -> usize {
    let number = |n: &str| n.bytes().filter(u8::is_ascii_digit).count().div_ceil(2) + 1;
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::N(n) => number(n),
        AttributeValue::Ss(all) => all.iter().map(String::len).sum(),
        AttributeValue::Ns(all) => all.iter().map(|n| number(n)).sum(),
        AttributeValue::Bs(all) => all.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(list) => 3 + list.iter().map(|v| value_size(v) + 1).sum::<usize>(),
        AttributeValue::M(map) => 3 + map.iter().map(|(k, v)| k.len() + value_size(v) + 1).sum::<usize>(),
        _ => 1,
    }
}

pub fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    Ok(serde_dynamo::from_item(item)?)
}

/// Reads one item by its key, strongly consistent (what the caller decides from must be current).
pub async fn get_consistent(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    pk: String,
    sk: String,
) -> Result<Option<Item>, StoreError> {
    let out =
        client.get_item().table_name(table).key("pk", s(pk)).key("sk", s(sk)).consistent_read(true).send().await?;
    Ok(out.item)
}

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A UTC instant as a sortable key part (`2026-03-08T15:00:00Z`).
pub fn index_instant(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Whether a caller-supplied id can name an item at all: short, printable, no key separator.
/// Anything else cannot exist, so adapters answer "not found" instead of sending DynamoDB a key
/// it would reject.
pub fn plausible_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.chars().all(|c| c.is_ascii_graphic() && c != '#')
}

/// A number attribute of an item (0 when absent or not a number of that type).
pub fn number_of<T: std::str::FromStr + Default>(item: Option<&Item>, name: &str) -> T {
    item.and_then(|i| i.get(name)).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or_default()
}

/// How often keys DynamoDB left unprocessed in a batch are asked for again, backing off.
const UNPROCESSED_RETRIES: u32 = 8;
/// The most keys one `BatchGetItem` takes.
const BATCH_GET_LIMIT: usize = 100;

/// Chunks read at once: a fan-out's few hundred batches of contacts go in parallel, as far as
/// the table's capacity lets them.
const BATCH_GET_CONCURRENCY: usize = 8;

/// Reads the items with these keys from one table, any number of them: `BatchGetItem`s of 100,
/// several at once, each repeated (backing off) for what DynamoDB leaves unprocessed. Missing
/// items are simply not in the answer, which is in no particular order.
pub async fn batch_get(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: Vec<Item>,
    consistent: bool,
) -> Result<Vec<Item>, StoreError> {
    use futures::{StreamExt, TryStreamExt};
    let chunks: Vec<_> =
        keys.chunks(BATCH_GET_LIMIT).map(|chunk| batch_get_chunk(client, table, chunk.to_vec(), consistent)).collect();
    let found: Vec<Vec<Item>> =
        futures::stream::iter(chunks).buffer_unordered(BATCH_GET_CONCURRENCY).try_collect().await?;
    Ok(found.into_iter().flatten().collect())
}

async fn batch_get_chunk(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    mut wanted: Vec<Item>,
    consistent: bool,
) -> Result<Vec<Item>, StoreError> {
    let mut found = Vec::with_capacity(wanted.len());
    for round in 0..=UNPROCESSED_RETRIES {
        if wanted.is_empty() {
            return Ok(found);
        }
        if round > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10 << round.min(6))).await;
        }
        let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
            .set_keys(Some(std::mem::take(&mut wanted)))
            .consistent_read(consistent)
            .build()?;
        let out = client.batch_get_item().request_items(table, request).send().await?;
        found.extend(out.responses.unwrap_or_default().remove(table).unwrap_or_default());
        wanted = out.unprocessed_keys.unwrap_or_default().remove(table).map(|k| k.keys).unwrap_or_default();
    }
    if wanted.is_empty() { Ok(found) } else { Err(StoreError::Unprocessed) }
}

/// The whole items behind index entries (from an index that projects less than `ALL`), in the
/// entries' order. An item deleted since the index was read is left out.
pub async fn items_behind(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    entries: &[Item],
) -> Result<Vec<Item>, StoreError> {
    let key_of = |item: &Item| -> Option<(String, String)> {
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        Some((text("pk")?, text("sk")?))
    };
    // An entry whose key moved while a query paged can come twice, and BatchGetItem refuses a
    // request naming one key twice: each item is asked for once, and shown once.
    let mut distinct = std::collections::HashSet::new();
    let keys: Vec<(String, String)> =
        entries.iter().filter_map(key_of).filter(|k| distinct.insert(k.clone())).collect();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let wanted = keys.iter().map(|(pk, sk)| key(pk.as_str(), sk.as_str())).collect();
    let mut found: HashMap<(String, String), Item> = batch_get(client, table, wanted, false)
        .await?
        .into_iter()
        .filter_map(|item| Some((key_of(&item)?, item)))
        .collect();
    Ok(keys.iter().filter_map(|k| found.remove(k)).collect())
}

/// The key of an item in a table keyed `pk`/`sk`.
pub fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_items_size_follows_dynamodbs_rules() {
        let item: Item = HashMap::from([
            ("name".to_owned(), s("abc")),
            ("count".to_owned(), n(12_345)),
            ("blob".to_owned(), AttributeValue::B(vec![0u8; 10].into())),
            ("flag".to_owned(), AttributeValue::Bool(true)),
            ("list".to_owned(), AttributeValue::L(vec![s("ab"), n(7)])),
            ("map".to_owned(), AttributeValue::M(HashMap::from([("k".to_owned(), s("vv"))]))),
        ]);
        // name 4+3; count 5+(5 digits → 3)+1; blob 4+10; flag 4+1; list 4+3+(2+1)+(1+1+1); map 3+3+(1+2+1).
        assert_eq!(item_size(&item), 7 + 9 + 14 + 5 + 13 + 10);
    }
}
