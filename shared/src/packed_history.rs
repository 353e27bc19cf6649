//! How a message's history is stored: its entries as JSON, deflated, in one binary attribute.
//!
//! DynamoDB bills a write by the item's size in whole kilobytes, and a message is written four
//! or five times on its way to `delivered`. Stored as a list of maps, the history was half of a
//! reminder's item and took it over 1 KB, so every write cost two units. Deflated it is a third
//! of that (its entries repeat the same names, SIDs and dates). Nothing queries or filters on the
//! history, so it need not be readable by DynamoDB; the API shows it from the decoded entries.
//!
//! Items written before the history was packed (a list of maps) still read.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serializer};

use crate::message::HistoryEntry;

/// A history unpacks to at most this much JSON. DynamoDB items stop at 400 KB, so anything
/// larger is not a history we wrote.
const MAX_UNPACKED: u64 = 1 << 20;

pub fn serialize<S: Serializer>(history: &[HistoryEntry], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(&pack(history).map_err(S::Error::custom)?)
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<HistoryEntry>, D::Error> {
    // Entries first: an empty list would read as empty bytes too.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Entries(Vec<HistoryEntry>),
        Packed(#[serde(with = "serde_bytes")] Vec<u8>),
    }
    match Stored::deserialize(deserializer)? {
        Stored::Entries(entries) => Ok(entries),
        Stored::Packed(bytes) if bytes.is_empty() => Ok(Vec::new()),
        Stored::Packed(bytes) => unpack(&bytes).map_err(D::Error::custom),
    }
}

#[derive(Debug, thiserror::Error)]
enum PackError {
    #[error("history is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("history could not be (de)compressed: {0}")]
    Deflate(#[from] std::io::Error),
    #[error("history unpacks to more than {MAX_UNPACKED} bytes")]
    TooLarge,
}

fn pack(history: &[HistoryEntry]) -> Result<Vec<u8>, PackError> {
    let json = serde_json::to_vec(history)?;
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(&json)?;
    Ok(encoder.finish()?)
}

fn unpack(bytes: &[u8]) -> Result<Vec<HistoryEntry>, PackError> {
    let mut json = Vec::new();
    DeflateDecoder::new(bytes).take(MAX_UNPACKED + 1).read_to_end(&mut json)?;
    if json.len() as u64 > MAX_UNPACKED {
        return Err(PackError::TooLarge);
    }
    Ok(serde_json::from_slice(&json)?)
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeDelta, Utc};
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::message::Actor;
    use crate::message_status::MessageStatus;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Holder {
        #[serde(with = "super")]
        history: Vec<HistoryEntry>,
    }

    fn history() -> Vec<HistoryEntry> {
        let t0 = DateTime::<Utc>::from_timestamp(1_790_000_000, 123_456_789).unwrap_or_default();
        let mut callback = HistoryEntry::ours(t0 + TimeDelta::seconds(3), Actor::Twilio, 1, MessageStatus::Delivered);
        callback.twilio_sid = Some("SM0123456789abcdef0123456789abcdef".into());
        callback.twilio_status = Some("delivered".into());
        callback.raw_dlr_done_date = Some("2611250227".into());
        vec![
            HistoryEntry::ours(t0, Actor::Scheduler, 0, MessageStatus::Queued),
            HistoryEntry::ours(t0 + TimeDelta::milliseconds(1_200), Actor::Sender, 1, MessageStatus::Sending),
            callback,
        ]
    }

    #[test]
    fn a_history_is_stored_as_one_binary_attribute_and_reads_back_the_same() {
        let holder = Holder { history: history() };
        let Ok(item) = serde_dynamo::to_item::<_, crate::dynamo::Item>(&holder) else { panic!("serialises") };
        let Some(aws_sdk_dynamodb::types::AttributeValue::B(packed)) = item.get("history") else {
            panic!("a binary attribute: {item:?}")
        };
        let Ok(json) = serde_json::to_vec(&holder.history) else { panic!("json") };
        assert!(packed.as_ref().len() * 2 < json.len(), "{} packed from {}", packed.as_ref().len(), json.len());
        let back: Result<Holder, _> = serde_dynamo::from_item(item);
        assert_eq!(back.ok(), Some(holder));
    }

    #[test]
    fn a_history_stored_as_a_list_still_reads() {
        #[derive(Serialize)]
        struct Unpacked {
            history: Vec<HistoryEntry>,
        }
        let Ok(item) = serde_dynamo::to_item::<_, crate::dynamo::Item>(&Unpacked { history: history() }) else {
            panic!("serialises")
        };
        let back: Result<Holder, _> = serde_dynamo::from_item(item);
        assert_eq!(back.ok().map(|h| h.history), Some(history()));
    }

    #[test]
    fn an_empty_history_reads_as_a_list_or_as_bytes() {
        for stored in [
            aws_sdk_dynamodb::types::AttributeValue::L(Vec::new()),
            aws_sdk_dynamodb::types::AttributeValue::B(Vec::new().into()),
        ] {
            let item: crate::dynamo::Item = [("history".to_owned(), stored)].into_iter().collect();
            let back: Result<Holder, _> = serde_dynamo::from_item(item);
            assert_eq!(back.ok().map(|h| h.history), Some(Vec::new()));
        }
    }

    #[test]
    fn a_json_copy_round_trips_too() {
        let holder = Holder { history: history() };
        let back = serde_json::to_string(&holder).and_then(|json| serde_json::from_str::<Holder>(&json));
        assert_eq!(back.ok(), Some(holder));
    }

    #[test]
    fn bytes_that_are_not_a_packed_history_are_refused() {
        assert!(unpack(b"not deflate at all").is_err());
        let Ok(packed) = pack(&[]) else { panic!("packs") };
        assert_eq!(unpack(&packed).ok(), Some(Vec::new()));
    }
}
