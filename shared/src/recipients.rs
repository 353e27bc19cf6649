//! Who a text goes to when a clinic names its recipients: contact ids, group ids and phone
//! numbers, in any mix. Each becomes one or more numbers (a group is its members), and a number
//! named twice — directly, through a contact, or through two groups — gets one text.

use std::collections::HashMap;

use serde::Serialize;

use crate::clinic::Clinic;
use crate::contacts::{Contact, Group, SmsNumber};
use crate::dynamo::StoreError;
use crate::phone::E164;
use crate::services::Services;

/// At most this many entries in one request's `recipients`.
pub const MAX_RECIPIENTS: usize = 100;
/// At most this many texts from one request once groups are expanded; more is a mass alert.
pub const MAX_TEXTS: usize = 500;

/// Why a recipient gets no text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// No contact or group of this clinic has that id, and it is not a phone number.
    UnknownRecipient,
    NoMobileNumber,
    InvalidNumber,
    OptedOut,
    AllowanceExhausted,
}

/// One entry of `recipients` as written: a phone number (digits, spaces, `+()-.`) or an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named<'a> {
    Number(&'a str),
    Id(&'a str),
}

pub fn classify(entry: &str) -> Named<'_> {
    let entry = entry.trim();
    let number_like = !entry.is_empty()
        && entry.chars().any(|c| c.is_ascii_digit())
        && entry.chars().all(|c| c.is_ascii_digit() || " +()-.".contains(c));
    if number_like { Named::Number(entry) } else { Named::Id(entry) }
}

/// A person a text may go to, before opt-outs and allowances are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The entry of `recipients` this came from.
    pub recipient: String,
    pub contact_id: Option<String>,
    pub to: Result<E164, Refusal>,
}

/// Each entry's people, in the order named (a group's members in id order).
pub async fn resolve(services: &Services, clinic: &Clinic, entries: &[String]) -> Result<Vec<Resolved>, StoreError> {
    let mut resolved = Vec::new();
    for entry in entries {
        let recipient = entry.trim().to_owned();
        match classify(entry) {
            Named::Number(number) => {
                let to = E164::parse(number, clinic.country().ok()).map_err(|_| Refusal::InvalidNumber);
                resolved.push(Resolved { recipient, contact_id: None, to });
            }
            Named::Id(id) => {
                if let Some(contact) = services.clinics.record::<Contact>(&clinic.id, id).await? {
                    resolved.push(of_contact(&recipient, &contact));
                } else if services.clinics.record::<Group>(&clinic.id, id).await?.is_some() {
                    for member in services.clinics.contacts_in_group(&clinic.id, id).await? {
                        resolved.push(of_contact(&recipient, &member));
                    }
                } else {
                    resolved.push(Resolved { recipient, contact_id: None, to: Err(Refusal::UnknownRecipient) });
                }
            }
        }
    }
    Ok(resolved)
}

fn of_contact(recipient: &str, contact: &Contact) -> Resolved {
    let to = match contact.sms_number() {
        SmsNumber::Usable(number) => Ok(number),
        SmsNumber::Invalid { .. } => Err(Refusal::InvalidNumber),
        SmsNumber::NoMobile => Err(Refusal::NoMobileNumber),
    };
    Resolved { recipient: recipient.to_owned(), contact_id: Some(contact.id.clone()), to }
}

/// Splits people into the first to name each number and the repeats (with the index of the
/// first), keeping the order named.
pub fn first_per_number(people: Vec<Resolved>) -> (Vec<Resolved>, Vec<(Resolved, usize)>) {
    let mut seen: HashMap<E164, usize> = HashMap::new();
    let mut unique = Vec::new();
    let mut repeats = Vec::new();
    for person in people {
        match &person.to {
            Ok(number) => match seen.get(number) {
                Some(first) => repeats.push((person, *first)),
                None => {
                    seen.insert(number.clone(), unique.len());
                    unique.push(person);
                }
            },
            Err(_) => unique.push(person),
        }
    }
    (unique, repeats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(recipient: &str, number: &str) -> Resolved {
        let to = E164::parse(number, None).map_err(|_| Refusal::InvalidNumber);
        Resolved { recipient: recipient.into(), contact_id: None, to }
    }

    #[test]
    fn numbers_and_ids_are_told_apart() {
        assert_eq!(classify(" +1 (415) 555-0123 "), Named::Number("+1 (415) 555-0123"));
        assert_eq!(classify("4155550123"), Named::Number("4155550123"));
        assert_eq!(classify("01ktrxacr003bksqb668c38r01"), Named::Id("01ktrxacr003bksqb668c38r01"));
        assert_eq!(classify("front-desk"), Named::Id("front-desk"));
        assert_eq!(classify("+"), Named::Id("+"), "no digit: not a number");
    }

    #[test]
    fn a_number_named_twice_gets_one_text() {
        let people = vec![
            person("+14155550123", "+14155550123"),
            person("group-a", "+14155550124"),
            person("contact-1", "+1 415 555 0123"),
            person("bad", "12"),
            person("group-b", "+14155550124"),
        ];
        let (unique, repeats) = first_per_number(people);
        let names: Vec<_> = unique.iter().map(|p| p.recipient.as_str()).collect();
        assert_eq!(names, ["+14155550123", "group-a", "bad"]);
        let repeats: Vec<_> = repeats.iter().map(|(p, first)| (p.recipient.as_str(), *first)).collect();
        assert_eq!(repeats, [("contact-1", 0), ("group-b", 1)]);
    }
}
