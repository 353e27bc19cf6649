//! A patient confirms an appointment by replying one of the clinic's confirmation keywords (`C`
//! or `CONFIRM` unless the clinic chose others) to a reminder. The reply confirms the appointment
//! the latest reminder sent to that number was about, if it is still booked at the time the
//! reminder gave; any other reply is just a conversation message.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::clinic::Clinic;
use crate::clinic_records::ClinicRecord;
use crate::dynamo::StoreError;
use crate::ids::ClinicId;
use crate::phone::E164;
use crate::services::Services;
use crate::twilio::keywords;

/// The last reminder the scheduler created for a number: what a confirmation reply is about.
/// Kept per clinic and number (`REMINDED#<E.164>`), replaced by each newer reminder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatestReminder {
    pub clinic_id: ClinicId,
    pub number: E164,
    pub appointment_id: String,
    /// The appointment's start the reminder gave.
    pub start: DateTime<Utc>,
    pub message_id: String,
    pub at: DateTime<Utc>,
}

impl ClinicRecord for LatestReminder {
    const KIND: &'static str = "REMINDED";

    fn id(&self) -> &str {
        self.number.as_str()
    }

    fn clinic_id(&self) -> &ClinicId {
        &self.clinic_id
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeywordRefused {
    #[error("each keyword is a single word")]
    NotOneWord,
    #[error("{0} is one of Twilio's opt-out, opt-in or help words and cannot confirm appointments")]
    Reserved(String),
}

/// A clinic's confirmation keywords as stored: upper case, single words, none of Twilio's own.
pub fn confirmation_keywords(input: &[String]) -> Result<Vec<String>, KeywordRefused> {
    input
        .iter()
        .map(|keyword| {
            let word = keyword.trim().to_uppercase();
            if word.is_empty() || word.contains(char::is_whitespace) {
                Err(KeywordRefused::NotOneWord)
            } else if keywords::is_reserved(&word) {
                Err(KeywordRefused::Reserved(word))
            } else {
                Ok(word)
            }
        })
        .collect()
}

/// Whether a reply is one of the clinic's confirmation keywords (whole body, any case, trimmed).
pub fn is_confirmation(body: &str, keywords: &[String]) -> bool {
    let word = body.trim().to_uppercase();
    keywords.contains(&word)
}

/// Confirms the appointment of the latest reminder to `number` when `body` is a confirmation;
/// returns its id when one was confirmed (or already was).
pub async fn confirm_from_reply(
    services: &Services,
    clinic: &Clinic,
    number: &E164,
    body: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, StoreError> {
    if !is_confirmation(body, &clinic.confirmation_keywords) {
        return Ok(None);
    }
    let Some(latest) = services.clinics.record::<LatestReminder>(&clinic.id, number.as_str()).await? else {
        return Ok(None);
    };
    let confirmed = services.appointments.confirm(&clinic.id, &latest.appointment_id, latest.start, now).await?;
    info!(clinic_id = %clinic.id, appointment_id = %latest.appointment_id, confirmed, "confirmation reply");
    Ok(confirmed.then_some(latest.appointment_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn keywords_are_stored_in_upper_case_and_never_twilios() {
        assert_eq!(confirmation_keywords(&words(&["c", " Confirm "])), Ok(words(&["C", "CONFIRM"])));
        assert_eq!(confirmation_keywords(&words(&["C", "yes"])), Err(KeywordRefused::Reserved("YES".into())));
        for reserved in ["STOP", "start", "Help", "INFO", "unsubscribe"] {
            assert!(
                matches!(confirmation_keywords(&words(&[reserved])), Err(KeywordRefused::Reserved(_))),
                "{reserved}"
            );
        }
        assert_eq!(confirmation_keywords(&words(&["two words"])), Err(KeywordRefused::NotOneWord));
        assert_eq!(confirmation_keywords(&words(&[" "])), Err(KeywordRefused::NotOneWord));
    }

    #[test]
    fn only_a_whole_keyword_confirms() {
        let keywords = words(&["C", "CONFIRM"]);
        for yes in ["C", " c ", "confirm", "Confirm\n"] {
            assert!(is_confirmation(yes, &keywords), "{yes:?}");
        }
        for no in ["C please", "cc", "Can we move it?", "", "OK"] {
            assert!(!is_confirmation(no, &keywords), "{no:?}");
        }
    }
}
