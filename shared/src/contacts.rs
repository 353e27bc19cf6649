//! Contacts (clients) and their phone numbers. Every number is kept as entered; those that parse
//! are also held in E.164, and those that don't carry the reason, so bad data blocks texts to that
//! record only and can be fixed, never silently dropped. Only `mobile` numbers receive SMS.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::clinic::Preference;
use crate::clinic_records::ClinicRecord;
use crate::ids::{ClinicId, ConnectionId};
use crate::phone::{Country, E164};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneKind {
    Mobile,
    Landline,
    Home,
    Work,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactPhone {
    pub kind: PhoneKind,
    /// Exactly what was entered.
    pub entered: String,
    #[serde(default)]
    pub e164: Option<E164>,
    /// Why the number cannot be used (a `PhoneError` code), when it cannot.
    #[serde(default)]
    pub problem: Option<String>,
}

impl ContactPhone {
    pub fn new(kind: PhoneKind, entered: &str, country: Option<Country>) -> Self {
        match E164::parse(entered, country) {
            Ok(number) => Self { kind, entered: entered.to_owned(), e164: Some(number), problem: None },
            Err(why) => Self { kind, entered: entered.to_owned(), e164: None, problem: Some(why.code().to_owned()) },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub id: String,
    pub clinic_id: ClinicId,
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub phones: Vec<ContactPhone>,
    /// Unset: the clinic's default.
    #[serde(default)]
    pub reminder_preference: Option<Preference>,
    #[serde(default)]
    pub group_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// The number texts go to, if the contact has a usable one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsNumber {
    Usable(E164),
    /// A mobile number is on file but cannot be made valid; the code says why.
    Invalid {
        entered: String,
        problem: String,
    },
    NoMobile,
}

impl Contact {
    /// The first usable mobile number; otherwise the first mobile number's problem.
    pub fn sms_number(&self) -> SmsNumber {
        let mobiles = || self.phones.iter().filter(|p| p.kind == PhoneKind::Mobile);
        if let Some(number) = mobiles().find_map(|p| p.e164.clone()) {
            return SmsNumber::Usable(number);
        }
        match mobiles().next() {
            Some(p) => SmsNumber::Invalid {
                entered: p.entered.clone(),
                problem: p.problem.clone().unwrap_or_else(|| "not_valid".into()),
            },
            None => SmsNumber::NoMobile,
        }
    }

    pub fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name).trim().to_owned()
    }
}

/// The index key under which a clinic's contacts are found by the number they text from.
pub fn number_index_key(clinic: &ClinicId, number: &E164) -> String {
    format!("CONTACTPHONE#{clinic}#{number}")
}

impl ClinicRecord for Contact {
    const KIND: &'static str = "CONTACT";

    fn id(&self) -> &str {
        &self.id
    }

    fn clinic_id(&self) -> &ClinicId {
        &self.clinic_id
    }

    /// Found by the number texts go to, which is the number their replies come from.
    fn index_keys(&self) -> Option<(String, String)> {
        match self.sms_number() {
            SmsNumber::Usable(number) => {
                Some((number_index_key(&self.clinic_id, &number), format!("CONTACT#{}", self.id)))
            }
            SmsNumber::Invalid { .. } | SmsNumber::NoMobile => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub clinic_id: ClinicId,
    pub name: String,
}

impl ClinicRecord for Group {
    const KIND: &'static str = "GROUP";

    fn id(&self) -> &str {
        &self.id
    }

    fn clinic_id(&self) -> &ClinicId {
        &self.clinic_id
    }
}

/// A number that asked not to be texted (STOP), per clinic: a STOP to any of the clinic's
/// numbers stops texts from all of them. Keyed by the E.164 number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptOut {
    pub clinic_id: ClinicId,
    pub number: E164,
    /// The connection the STOP came through.
    #[serde(default)]
    pub connection_id: Option<ConnectionId>,
    pub at: DateTime<Utc>,
}

impl ClinicRecord for OptOut {
    const KIND: &'static str = "OPTOUT";

    fn id(&self) -> &str {
        self.number.as_str()
    }

    fn clinic_id(&self) -> &ClinicId {
        &self.clinic_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(phones: Vec<ContactPhone>) -> Contact {
        Contact {
            id: "c1".into(),
            clinic_id: ClinicId::new("k"),
            first_name: "Ana".into(),
            last_name: "Lopez".into(),
            phones,
            reminder_preference: None,
            group_ids: vec![],
            created_at: Utc::now(),
        }
    }

    #[test]
    fn only_mobile_numbers_receive_texts() {
        let us = "US".parse().ok();
        let landline = ContactPhone::new(PhoneKind::Landline, "415 555 0123", us);
        assert_eq!(contact(vec![landline.clone()]).sms_number(), SmsNumber::NoMobile);
        let mobile = ContactPhone::new(PhoneKind::Mobile, "(415) 555-0199", us);
        let expected = mobile.e164.clone().map(SmsNumber::Usable);
        assert_eq!(Some(contact(vec![landline, mobile]).sms_number()), expected);
    }

    #[test]
    fn contacts_are_found_by_their_texting_number_within_their_clinic() {
        let us = "US".parse().ok();
        let with_mobile = contact(vec![ContactPhone::new(PhoneKind::Mobile, "(415) 555-0199", us)]);
        assert_eq!(with_mobile.index_keys(), Some(("CONTACTPHONE#k#+14155550199".to_owned(), "CONTACT#c1".to_owned())));
        assert_eq!(contact(vec![ContactPhone::new(PhoneKind::Home, "415 555 0199", us)]).index_keys(), None);
    }

    #[test]
    fn a_bad_mobile_number_is_kept_and_explained() {
        let phone = ContactPhone::new(PhoneKind::Mobile, "555-CALL-NOW", "US".parse().ok());
        assert_eq!(phone.entered, "555-CALL-NOW");
        assert_eq!(phone.problem.as_deref(), Some("contains_letters"));
        assert_eq!(
            contact(vec![phone]).sms_number(),
            SmsNumber::Invalid { entered: "555-CALL-NOW".into(), problem: "contains_letters".into() }
        );
    }
}
