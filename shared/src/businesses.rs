//! Businesses (branches): each has its own time zone and reminder window. The scheduler finds
//! the businesses whose window has opened through `gsi1` (`REMINDER_WINDOWS` / the UTC instant
//! the window next opens), so a tick reads only the due ones.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::clinic::SendMode;
use crate::clinic_records::ClinicRecord;
use crate::dynamo::index_instant;
use crate::ids::ClinicId;
use crate::reminder_window::ReminderWindow;

pub const WINDOWS_INDEX_KEY: &str = "REMINDER_WINDOWS";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Business {
    pub id: String,
    pub clinic_id: ClinicId,
    pub name: String,
    /// IANA time zone; always one `chrono-tz` knows (checked when saved).
    pub time_zone: String,
    #[serde(default)]
    pub phone: Option<String>,
    pub reminders_enabled: bool,
    pub window: ReminderWindow,
    #[serde(default)]
    pub send_mode_override: Option<SendMode>,
    /// When the reminder window next opens, or the opening of the window in progress.
    pub next_window_opening: DateTime<Utc>,
}

impl Business {
    /// The zone, falling back to UTC for a stored value no longer known (never for new data).
    pub fn tz(&self) -> Tz {
        self.time_zone.parse().unwrap_or(Tz::UTC)
    }
}

impl ClinicRecord for Business {
    const KIND: &'static str = "BUSINESS";

    fn id(&self) -> &str {
        &self.id
    }

    fn clinic_id(&self) -> &ClinicId {
        &self.clinic_id
    }

    fn index_keys(&self) -> Option<(String, String)> {
        let sk = format!("{}#{}#{}", index_instant(self.next_window_opening), self.clinic_id, self.id);
        Some((WINDOWS_INDEX_KEY.to_owned(), sk))
    }
}
