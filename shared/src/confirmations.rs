//! A patient confirms an appointment by replying one of the clinic's confirmation keywords (`C`
//! or `CONFIRM` unless the clinic chose others) to a reminder. The reply confirms the appointment
//! the latest reminder *sent* to that number was about, if it is still booked at the time the
//! reminder gave; any other reply is just a conversation message. A newer reminder still waiting
//! (for approval, quiet hours or its turn) is not what the patient answered.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::clinic::Clinic;
use crate::clinic_records::ClinicRecord;
use crate::dynamo::StoreError;
use crate::ids::{ClinicId, MessageId};
use crate::message_status::MessageStatus;
use crate::phone::E164;
use crate::services::Services;
use crate::twilio::keywords;

/// How many of a number's latest reminders a confirmation looks back through for one that was
/// sent: more would only reach reminders for appointments long past.
const LOOK_BACK: i32 = 5;

/// A reminder the scheduler made for a number: what a confirmation reply may be about. One per
/// reminder (`REMINDED#<E.164>:<message id>`), so writing one never races another; message ids
/// sort by their window's opening, so the last ids are the latest reminders. Each expires a day
/// after its appointment, when nothing can confirm it any more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminded {
    /// `<E.164>:<message id>`.
    pub id: String,
    pub clinic_id: ClinicId,
    pub number: E164,
    pub appointment_id: String,
    /// The appointment's start the reminder gave.
    pub start: DateTime<Utc>,
    pub message_id: MessageId,
    pub at: DateTime<Utc>,
    /// Epoch seconds; DynamoDB's time to live.
    pub expires_at: i64,
}

impl Reminded {
    pub fn new(
        clinic_id: ClinicId,
        number: E164,
        appointment_id: String,
        start: DateTime<Utc>,
        message_id: MessageId,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: format!("{}{message_id}", Self::prefix(&number)),
            expires_at: (start + Duration::days(1)).timestamp(),
            clinic_id,
            number,
            appointment_id,
            start,
            message_id,
            at,
        }
    }

    fn prefix(number: &E164) -> String {
        format!("{}:", number.as_str())
    }
}

impl ClinicRecord for Reminded {
    const KIND: &'static str = "REMINDED";

    fn id(&self) -> &str {
        &self.id
    }

    fn clinic_id(&self) -> &ClinicId {
        &self.clinic_id
    }
}

/// Whether a reminder in this state reached the patient's phone, or may have: Twilio took it
/// and no one has said it failed.
pub fn was_sent(status: MessageStatus) -> bool {
    matches!(status, MessageStatus::Submitted | MessageStatus::Sent | MessageStatus::Delivered)
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

/// Confirms the appointment of the latest reminder sent to `number` when `body` is a
/// confirmation; returns its id when one was confirmed (or already was).
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
    let Some(reminded) = latest_sent(services, &clinic.id, number).await? else {
        info!(clinic_id = %clinic.id, "confirmation reply with no reminder sent to confirm");
        return Ok(None);
    };
    let confirmed = services.appointments.confirm(&clinic.id, &reminded.appointment_id, reminded.start, now).await?;
    info!(clinic_id = %clinic.id, appointment_id = %reminded.appointment_id, confirmed, "confirmation reply");
    Ok(confirmed.then_some(reminded.appointment_id))
}

/// Of the number's latest reminders, the one Twilio accepted last: one `Query`, then a
/// `GetItem` per reminder (a handful at most: each expires a day after its appointment).
async fn latest_sent(services: &Services, clinic: &ClinicId, number: &E164) -> Result<Option<Reminded>, StoreError> {
    let recent = services.clinics.last_records::<Reminded>(clinic, &Reminded::prefix(number), LOOK_BACK).await?;
    let mut latest: Option<(DateTime<Utc>, Reminded)> = None;
    for reminded in recent {
        let Some(message) = services.messages.get(&reminded.message_id).await? else { continue };
        if message.clinic_id != *clinic || !was_sent(message.status) {
            continue;
        }
        let sent_at = message.accepted_at().unwrap_or(message.updated_at);
        if latest.as_ref().is_none_or(|(at, _)| sent_at > *at) {
            latest = Some((sent_at, reminded));
        }
    }
    Ok(latest.map(|(_, reminded)| reminded))
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
    fn only_a_reminder_twilio_took_counts_as_sent() {
        use MessageStatus::*;
        let sent: Vec<_> = MessageStatus::ALL.into_iter().filter(|s| was_sent(*s)).collect();
        assert_eq!(sent, [Submitted, Sent, Delivered]);
    }

    #[test]
    fn a_numbers_reminders_share_one_prefix_and_expire_after_the_appointment() {
        let Ok(number) = E164::parse("+14155550123", None) else { panic!("a valid number") };
        let Ok(start) = "2026-06-10T13:00:00Z".parse::<DateTime<Utc>>() else { panic!("a valid time") };
        let id = MessageId::generate(start);
        let reminded = Reminded::new(ClinicId::new("c1"), number.clone(), "a1".into(), start, id, start);
        assert_eq!(reminded.id, format!("+14155550123:{id}"));
        assert!(reminded.id.starts_with(&Reminded::prefix(&number)));
        assert!(crate::dynamo::plausible_id(&reminded.id));
        assert_eq!(reminded.expires_at, start.timestamp() + 86_400);
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
