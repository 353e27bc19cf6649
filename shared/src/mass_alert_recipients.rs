//! Who a mass alert goes to (the rules, no I/O): every client with a booked or confirmed
//! appointment in the range that is still ahead, once however many appointments they have, and
//! for each client either the number to text or the reason they cannot be texted.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use ulid::Ulid;

use crate::appointments::{Appointment, AppointmentStatus};
use crate::clinic::Preference;
use crate::contacts::{Contact, SmsNumber};
use crate::ids::MessageId;
use crate::mass_alert::{AlertRange, MassAlert};
use crate::phone::E164;
use crate::reason::Reason;

/// One client of the alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub contact_id: String,
    pub client_name: String,
    /// Their appointments in the range, in start order.
    pub appointment_ids: Vec<String>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Text(E164),
    NotSent {
        reason: Reason,
        /// The number on file as entered, when there is one.
        entered_number: Option<String>,
    },
}

/// The recipients in contact-id order, and the span of the appointments that made them so.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub recipients: Vec<Recipient>,
    pub first_appointment: Option<DateTime<Utc>>,
    pub last_appointment: Option<DateTime<Utc>>,
}

impl Selection {
    pub fn texts(&self) -> usize {
        self.recipients.iter().filter(|r| matches!(r.verdict, Verdict::Text(_))).count()
    }

    pub fn not_sent(&self) -> usize {
        self.recipients.len() - self.texts()
    }
}

/// The clients with an appointment that counts (booked or confirmed, in the range, ahead of
/// `now`), each with those appointments, by contact id.
pub fn clients_in_range<'a>(
    appointments: &'a [Appointment],
    range: &AlertRange,
    now: DateTime<Utc>,
) -> BTreeMap<&'a str, Vec<&'a Appointment>> {
    let mut clients: BTreeMap<&str, Vec<&Appointment>> = BTreeMap::new();
    for a in appointments {
        let live = matches!(a.status, AppointmentStatus::Booked | AppointmentStatus::Confirmed);
        if live && range.covers(a.start, now) {
            clients.entry(a.contact_id.as_str()).or_default().push(a);
        }
    }
    for list in clients.values_mut() {
        list.sort_by_key(|a| (a.start, a.id.clone()));
    }
    clients
}

/// Decides each client: their number, or why not, in the order reminders check them (number,
/// preference, opt-out). Two clients sharing one number (a household) get one text: the first
/// by contact id, so a fan-out run again picks the same one.
pub fn select(
    clients: &BTreeMap<&str, Vec<&Appointment>>,
    contacts: &HashMap<String, Contact>,
    opted_out: &HashSet<E164>,
    default_preference: Preference,
) -> Selection {
    let mut selection = Selection::default();
    let mut numbers_taken = HashSet::new();
    for (contact_id, appointments) in clients {
        let contact = contacts.get(*contact_id);
        let verdict = match contact.map(Contact::sms_number) {
            None | Some(SmsNumber::NoMobile) => not_sent(Reason::NoMobileNumber, None),
            Some(SmsNumber::Invalid { entered, .. }) => not_sent(Reason::InvalidNumber, Some(entered)),
            Some(SmsNumber::Usable(number)) => {
                match contact.and_then(|c| c.reminder_preference).unwrap_or(default_preference) {
                    Preference::Email => not_sent(Reason::PreferenceEmail, Some(number.to_string())),
                    Preference::None => not_sent(Reason::PreferenceNone, Some(number.to_string())),
                    Preference::Sms if opted_out.contains(&number) => {
                        not_sent(Reason::OptedOut, Some(number.to_string()))
                    }
                    Preference::Sms if !numbers_taken.insert(number.clone()) => {
                        not_sent(Reason::SharedNumber, Some(number.to_string()))
                    }
                    Preference::Sms => Verdict::Text(number),
                }
            }
        };
        for a in appointments {
            selection.first_appointment = selection.first_appointment.min(Some(a.start)).or(Some(a.start));
            selection.last_appointment = selection.last_appointment.max(Some(a.start));
        }
        selection.recipients.push(Recipient {
            contact_id: (*contact_id).to_owned(),
            client_name: contact.map(Contact::full_name).unwrap_or_default(),
            appointment_ids: appointments.iter().map(|a| a.id.clone()).collect(),
            verdict,
        });
    }
    selection
}

fn not_sent(reason: Reason, entered_number: Option<String>) -> Verdict {
    Verdict::NotSent { reason, entered_number }
}

/// The id of the alert's message for one client: the same alert and client always give the
/// same id, so a fan-out run twice writes one message per client. Its time is the alert's, so
/// the texts sort with when the alert was made.
pub fn message_id(alert: &MassAlert, contact_id: &str) -> MessageId {
    let digest = Sha256::new().chain_update(alert.id.as_str()).chain_update([0]).chain_update(contact_id).finalize();
    let mut random = [0u8; 16];
    random[6..].copy_from_slice(&digest[..10]);
    let millis = u64::try_from(alert.created_at.timestamp_millis()).unwrap_or(0);
    MessageId::from_ulid(Ulid::from_parts(millis, u128::from_be_bytes(random)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contacts::{ContactPhone, PhoneKind};
    use crate::ids::ClinicId;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
    }

    const NOW: &str = "2026-11-24T12:00:00Z";

    fn range() -> AlertRange {
        AlertRange { from: at("2026-11-24T00:00:00Z"), to: at("2026-11-27T00:00:00Z") }
    }

    fn appointment(id: &str, contact: &str, start: &str, status: AppointmentStatus) -> Appointment {
        Appointment {
            id: id.into(),
            clinic_id: ClinicId::new("c"),
            business_id: "b".into(),
            contact_id: contact.into(),
            type_id: "t".into(),
            patient_names: vec![],
            start: at(start),
            status,
            decided_start: None,
            reminder_message_id: None,
            created_at: at(NOW),
            updated_at: at(NOW),
        }
    }

    fn contact(id: &str, mobile: Option<&str>, preference: Option<Preference>) -> Contact {
        Contact {
            id: id.into(),
            clinic_id: ClinicId::new("c"),
            first_name: format!("First{id}"),
            last_name: "Last".into(),
            phones: mobile.map(|m| ContactPhone::new(PhoneKind::Mobile, m, None)).into_iter().collect(),
            reminder_preference: preference,
            group_ids: vec![],
            created_at: at(NOW),
        }
    }

    fn number(text: &str) -> E164 {
        E164::parse(text, None).unwrap_or_else(|_| unreachable!("a valid number"))
    }

    #[test]
    fn one_entry_per_client_from_their_live_future_appointments_in_the_range() {
        use AppointmentStatus::*;
        let appointments = vec![
            appointment("a1", "ann", "2026-11-25T09:00:00Z", Booked),
            appointment("a2", "ann", "2026-11-26T09:00:00Z", Confirmed),
            appointment("a3", "ann", "2026-11-28T09:00:00Z", Booked), // after the range
            appointment("b1", "bob", "2026-11-24T08:00:00Z", Booked), // in the range, past
            appointment("c1", "cat", "2026-11-25T10:00:00Z", Cancelled),
            appointment("c2", "cat", "2026-11-26T10:00:00Z", Booked),
        ];
        let clients = clients_in_range(&appointments, &range(), at(NOW));
        let ids: Vec<_> =
            clients.iter().map(|(c, a)| (*c, a.iter().map(|a| a.id.as_str()).collect::<Vec<_>>())).collect();
        assert_eq!(ids, vec![("ann", vec!["a1", "a2"]), ("cat", vec!["c2"])]);
    }

    #[test]
    fn each_client_is_texted_or_given_the_reason_they_are_not() {
        use AppointmentStatus::*;
        let appointments = vec![
            appointment("1", "ok", "2026-11-25T09:00:00Z", Booked),
            appointment("2", "none", "2026-11-25T10:00:00Z", Booked),
            appointment("3", "bad", "2026-11-25T11:00:00Z", Booked),
            appointment("4", "email", "2026-11-25T12:00:00Z", Booked),
            appointment("5", "quiet", "2026-11-25T13:00:00Z", Booked),
            appointment("6", "stop", "2026-11-25T14:00:00Z", Booked),
            appointment("7", "zhousehold", "2026-11-25T15:00:00Z", Booked),
            appointment("8", "gone", "2026-11-26T15:00:00Z", Booked),
        ];
        let contacts: HashMap<String, Contact> = [
            contact("ok", Some("+14155550101"), None),
            contact("none", None, None),
            contact("bad", Some("12"), None),
            contact("email", Some("+14155550102"), Some(Preference::Email)),
            contact("quiet", Some("+14155550103"), Some(Preference::None)),
            contact("stop", Some("+14155550104"), None),
            contact("zhousehold", Some("+14155550101"), None),
        ]
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();
        let opted_out = HashSet::from([number("+14155550104")]);
        let clients = clients_in_range(&appointments, &range(), at(NOW));
        let selection = select(&clients, &contacts, &opted_out, Preference::Sms);
        let verdicts: HashMap<_, _> =
            selection.recipients.iter().map(|r| (r.contact_id.as_str(), r.verdict.clone())).collect();
        assert_eq!(verdicts["ok"], Verdict::Text(number("+14155550101")));
        let reason = |id: &str| match &verdicts[id] {
            Verdict::NotSent { reason, .. } => Some(*reason),
            Verdict::Text(_) => None,
        };
        assert_eq!(reason("none"), Some(Reason::NoMobileNumber));
        assert_eq!(reason("gone"), Some(Reason::NoMobileNumber), "a client record since removed");
        assert_eq!(reason("bad"), Some(Reason::InvalidNumber));
        assert_eq!(reason("email"), Some(Reason::PreferenceEmail));
        assert_eq!(reason("quiet"), Some(Reason::PreferenceNone));
        assert_eq!(reason("stop"), Some(Reason::OptedOut));
        assert_eq!(reason("zhousehold"), Some(Reason::SharedNumber), "one text per phone");
        assert_eq!((selection.texts(), selection.not_sent()), (1, 7));
        assert_eq!(selection.first_appointment, Some(at("2026-11-25T09:00:00Z")));
        assert_eq!(selection.last_appointment, Some(at("2026-11-26T15:00:00Z")));
        assert_eq!(selection.recipients[0].client_name, "Firstbad Last");
    }

    #[test]
    fn the_clinic_default_preference_applies_to_clients_who_have_not_chosen() {
        let appointments = vec![appointment("1", "ok", "2026-11-25T09:00:00Z", AppointmentStatus::Booked)];
        let contacts = HashMap::from([("ok".to_owned(), contact("ok", Some("+14155550101"), None))]);
        let clients = clients_in_range(&appointments, &range(), at(NOW));
        let selection = select(&clients, &contacts, &HashSet::new(), Preference::Email);
        assert!(matches!(selection.recipients[0].verdict, Verdict::NotSent { reason: Reason::PreferenceEmail, .. }));
    }

    #[test]
    fn a_client_has_one_message_id_per_alert() {
        let alert = MassAlert::new(
            ClinicId::new("c"),
            crate::ids::ConnectionId::new("k"),
            range(),
            crate::message::MessageBody::parse("Closed").unwrap_or_else(|_| unreachable!("a valid body")),
            crate::ids::UserId::new("u"),
            at(NOW),
        );
        assert_eq!(message_id(&alert, "ann"), message_id(&alert, "ann"));
        assert_ne!(message_id(&alert, "ann"), message_id(&alert, "bob"));
        assert_eq!(message_id(&alert, "ann").to_string()[..10], MessageId::first_at(at(NOW)).to_string()[..10]);
    }
}
