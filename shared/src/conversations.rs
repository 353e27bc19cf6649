//! Conversations: the texts a clinic and one patient exchange. A received text joins the
//! patient's active conversation or opens one; the clinic's replies and manual texts to that
//! patient join it; nothing else opens one (a mass alert or reminder alone does not). A text from
//! a number no contact has opens an unknown-contact conversation the clinic can later link to a
//! contact. The rules here are pure; `conversations_table` stores what they return.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ClinicId, ConnectionId};
use crate::phone::E164;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    Open,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// A ULID (lowercase), so ids sort by when the conversation opened.
    pub id: String,
    pub clinic_id: ClinicId,
    /// `None` for an unknown-contact conversation until it is linked.
    #[serde(default)]
    pub contact_id: Option<String>,
    /// The patient's number.
    pub number: E164,
    /// The connection the patient last wrote through (replies go out through it).
    pub connection_id: ConnectionId,
    pub status: ConversationStatus,
    pub opened_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    #[serde(default)]
    pub closed_at: Option<DateTime<Utc>>,
    /// Bumped by every whole-item write; each such write is conditional on it.
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversationRefused {
    #[error("the conversation is already linked to a contact")]
    AlreadyLinked,
}

/// Who a conversation is with, as a key: the contact, or the number for an unknown contact. At
/// most one conversation per party is active.
pub fn party_key(clinic: &ClinicId, contact_id: Option<&str>, number: &E164) -> String {
    match contact_id {
        Some(contact) => format!("{clinic}#CONTACT#{contact}"),
        None => format!("{clinic}#NUMBER#{number}"),
    }
}

/// A UTC instant to the millisecond, fixed width, so keys sort by time.
pub fn activity_key(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

impl Conversation {
    pub fn open(
        id: String,
        clinic_id: ClinicId,
        contact_id: Option<String>,
        number: E164,
        connection_id: ConnectionId,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            clinic_id,
            contact_id,
            number,
            connection_id,
            status: ConversationStatus::Open,
            opened_at: now,
            last_activity_at: now,
            closed_at: None,
            version: 1,
        }
    }

    pub fn party_key(&self) -> String {
        party_key(&self.clinic_id, self.contact_id.as_deref(), &self.number)
    }

    /// Where it sorts in the clinic's list, read backwards: open before closed, then newest
    /// activity first (`OPEN` > `CLOSED`, later instants > earlier ones).
    pub fn list_key(&self) -> String {
        let state = match self.status {
            ConversationStatus::Open => "OPEN",
            ConversationStatus::Closed => "CLOSED",
        };
        format!("{state}#{}#{}", activity_key(self.last_activity_at), self.id)
    }

    /// Closed at `now`; closing a closed conversation changes nothing.
    pub fn closed(&self, now: DateTime<Utc>) -> Self {
        let mut next = self.clone();
        if self.status == ConversationStatus::Open {
            next.status = ConversationStatus::Closed;
            next.closed_at = Some(now);
            next.version = self.version + 1;
        }
        next
    }

    /// An unknown-contact conversation now with `contact_id`.
    pub fn linked(&self, contact_id: &str) -> Result<Self, ConversationRefused> {
        if self.contact_id.is_some() {
            return Err(ConversationRefused::AlreadyLinked);
        }
        let mut next = self.clone();
        next.contact_id = Some(contact_id.to_owned());
        next.version = self.version + 1;
        Ok(next)
    }
}

/// Reads a list cursor (a list key) back into the conversation id it ends with.
pub fn id_in_list_key(key: &str) -> Option<&str> {
    let mut parts = key.splitn(3, '#');
    let state = parts.next()?;
    let at = parts.next()?;
    let id = parts.next()?;
    let well_formed = matches!(state, "OPEN" | "CLOSED")
        && at.len() == 24
        && DateTime::parse_from_rfc3339(at).is_ok()
        && ulid::Ulid::from_string(id).is_ok();
    well_formed.then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).map(|t| t.to_utc()).unwrap_or_default()
    }

    fn conversation(id: &str, last: &str) -> Conversation {
        let number = E164::try_from("+14155550123".to_owned()).unwrap_or_else(|_| panic!("E.164"));
        let mut c =
            Conversation::open(id.into(), ClinicId::new("k"), None, number, ConnectionId::new("main"), at(last));
        c.last_activity_at = at(last);
        c
    }

    #[test]
    fn read_backwards_the_list_puts_open_first_then_newest_activity() {
        let old_open = conversation("01jc3z8r6x5y7w2v9t4q0n1b2a", "2026-06-10T09:00:00Z");
        let new_open = conversation("01jc3z8r6x5y7w2v9t4q0n1b2b", "2026-06-10T09:00:00.001Z");
        let new_closed =
            conversation("01jc3z8r6x5y7w2v9t4q0n1b2c", "2026-06-11T09:00:00Z").closed(at("2026-06-11T10:00:00Z"));
        let mut keys = [&old_open, &new_closed, &new_open].map(|c| (c.list_key(), c.id.clone()));
        keys.sort();
        keys.reverse();
        let order: Vec<_> = keys.iter().map(|(_, id)| id.as_str()).collect();
        assert_eq!(order, [new_open.id.as_str(), old_open.id.as_str(), new_closed.id.as_str()]);
    }

    #[test]
    fn a_contact_has_one_party_key_and_an_unknown_number_another() {
        let number = E164::try_from("+14155550123".to_owned()).unwrap_or_else(|_| panic!("E.164"));
        let clinic = ClinicId::new("k");
        assert_eq!(party_key(&clinic, Some("c1"), &number), "k#CONTACT#c1");
        assert_eq!(party_key(&clinic, None, &number), "k#NUMBER#+14155550123");
    }

    #[test]
    fn closing_twice_and_linking_twice() {
        let c = conversation("01jc3z8r6x5y7w2v9t4q0n1b2a", "2026-06-10T09:00:00Z");
        let closed = c.closed(at("2026-06-10T10:00:00Z"));
        assert_eq!((closed.status, closed.version), (ConversationStatus::Closed, 2));
        assert_eq!(closed.closed(at("2026-06-10T11:00:00Z")), closed, "no change");
        let Ok(linked) = c.linked("c9") else { panic!("links") };
        assert_eq!(linked.contact_id.as_deref(), Some("c9"));
        assert_eq!(linked.party_key(), "k#CONTACT#c9");
        assert_eq!(linked.linked("c8"), Err(ConversationRefused::AlreadyLinked));
    }

    #[test]
    fn cursors_are_list_keys_only() {
        let c = conversation("01jc3z8r6x5y7w2v9t4q0n1b2a", "2026-06-10T09:00:00Z");
        assert_eq!(id_in_list_key(&c.list_key()), Some(c.id.as_str()));
        for bad in [
            "",
            "OPEN#x#y",
            "MSG#2026-06-10T09:00:00.000Z#01jc3z8r6x5y7w2v9t4q0n1b2a",
            "OPEN#2026-06-10T09:00:00.000Z#a#b",
        ] {
            assert_eq!(id_in_list_key(bad), None, "{bad}");
        }
    }
}
