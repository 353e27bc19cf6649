//! What the API shows of a message.

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::message::{Deleted, Direction, HistoryEntry, Message};
use shared::message_status::MessageStatus;
use shared::reason::Reason;
use shared::twilio::error_catalogue;

#[derive(Serialize)]
pub struct Accepted {
    pub id: String,
    pub status: MessageStatus,
}

#[derive(Serialize)]
pub struct MessageView<'a> {
    pub id: String,
    pub direction: Direction,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub contact_id: Option<&'a str>,
    pub conversation_id: Option<&'a str>,
    pub body: &'a str,
    pub status: MessageStatus,
    pub attempt: u32,
    pub twilio_sid: Option<&'a str>,
    pub error: Option<ErrorView>,
    pub created_by: Option<&'a str>,
    pub approved_by: Option<&'a str>,
    /// For a text scheduled for later: when it goes.
    pub send_at: Option<DateTime<Utc>>,
    /// When and by whom the message was put in the Deleted view, while it is there.
    pub deleted: Option<&'a Deleted>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub history: Vec<HistoryView<'a>>,
}

/// A history entry, with the catalogue's description next to any Twilio error code in it.
#[derive(Serialize)]
pub struct HistoryView<'a> {
    #[serde(flatten)]
    pub entry: &'a HistoryEntry,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

impl<'a> From<&'a HistoryEntry> for HistoryView<'a> {
    fn from(entry: &'a HistoryEntry) -> Self {
        Self { entry, error_description: entry.error_code.map(error_catalogue::describe) }
    }
}

/// A failure with what it means: the catalogue's words for a Twilio code, or our reason.
#[derive(Serialize)]
pub struct ErrorView {
    pub code: Option<u32>,
    pub reason: Option<Reason>,
    pub description: String,
    pub common_cause: Option<&'static str>,
    pub what_to_do: Option<&'static str>,
    pub twilio_message: Option<String>,
}

impl<'a> From<&'a Message> for MessageView<'a> {
    fn from(m: &'a Message) -> Self {
        let error = m.failure.as_ref().map(|f| {
            let info = f.code.and_then(error_catalogue::lookup);
            let description = match (f.code, f.reason) {
                (Some(code), _) => error_catalogue::describe(code),
                (None, Some(reason)) => reason.description().to_owned(),
                (None, None) => "The text could not be sent.".to_owned(),
            };
            ErrorView {
                code: f.code,
                reason: f.reason,
                description,
                common_cause: info.map(|i| i.common_cause),
                what_to_do: info.map(|i| i.what_to_do),
                twilio_message: f.twilio_message.clone(),
            }
        });
        Self {
            id: m.id.to_string(),
            direction: m.direction,
            from: m.from.as_ref().map(|f| f.as_str()),
            to: m.to.as_ref().map(|t| t.as_str()),
            contact_id: m.contact_id.as_deref(),
            conversation_id: m.conversation_id.as_deref(),
            body: m.body.as_str(),
            status: m.status,
            attempt: m.attempt,
            twilio_sid: m.twilio_sid.as_deref(),
            error,
            created_by: m.created_by.as_ref().map(|u| u.as_str()),
            approved_by: m.approved_by.as_ref().map(|u| u.as_str()),
            send_at: m.send_at,
            deleted: m.deleted.as_ref(),
            created_at: m.created_at,
            updated_at: m.updated_at,
            history: m.history.iter().map(HistoryView::from).collect(),
        }
    }
}
