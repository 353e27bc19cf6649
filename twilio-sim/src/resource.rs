//! The message resource: what the simulator stores per message and the JSON Twilio returns for it.

use chrono::{DateTime, Utc};
use serde::Serialize;

pub(crate) const API_VERSION: &str = "2010-04-01";

/// A message as the simulator holds it; `GET /sim/messages` and [`crate::Simulator::messages`]
/// return these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimMessage {
    pub sid: String,
    pub account_sid: String,
    pub to: String,
    /// `None` until a Messaging Service has picked a sender from its pool.
    pub from: Option<String>,
    pub messaging_service_sid: Option<String>,
    pub body: String,
    /// Twilio's status word: `accepted`, `queued`, `sent`, `delivered`, `undelivered` or `failed`.
    pub status: String,
    pub error_code: Option<u32>,
    /// The `StatusCallback` the create request gave. Kept for tests; like Twilio, the message
    /// resource (create, fetch, list) never shows it.
    pub status_callback: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The statuses the simulator moves a message through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Accepted,
    Queued,
    Sent,
    Delivered,
    Undelivered,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
            Self::Failed => "failed",
        }
    }
}

/// A stored message: the public view plus the bookkeeping the resource JSON needs.
#[derive(Debug, Clone)]
pub(crate) struct MessageRecord {
    pub message: SimMessage,
    pub num_segments: u32,
    pub updated_at: DateTime<Utc>,
    /// `date_sent`: `None` while the message is `accepted` or `queued`.
    pub sent_at: Option<DateTime<Utc>>,
}

impl MessageRecord {
    pub fn set_status(&mut self, status: Status, error_code: Option<u32>, now: DateTime<Utc>) {
        self.message.status = status.as_str().to_owned();
        self.message.error_code = error_code;
        self.updated_at = now;
        // `date_sent` stays null while Twilio holds the message, and is set when it leaves:
        // `sent`, or straight to `failed`.
        if self.sent_at.is_none() && !matches!(status, Status::Accepted | Status::Queued) {
            self.sent_at = Some(now);
        }
    }

    pub fn to_resource(&self) -> MessageResource {
        let m = &self.message;
        let uri_base = format!("/{API_VERSION}/Accounts/{}/Messages/{}", m.account_sid, m.sid);
        // A Messaging Service counts segments only once it has picked a sender.
        let num_segments = if m.status == Status::Accepted.as_str() { 0 } else { self.num_segments };
        MessageResource {
            account_sid: m.account_sid.clone(),
            api_version: API_VERSION,
            body: m.body.clone(),
            date_created: rfc2822(m.created_at),
            date_sent: self.sent_at.map(rfc2822),
            date_updated: rfc2822(self.updated_at),
            direction: "outbound-api",
            error_code: m.error_code,
            // Twilio's texts are not for programs, and clients here must not rely on them.
            error_message: None,
            from: m.from.clone(),
            messaging_service_sid: m.messaging_service_sid.clone(),
            // Twilio counts media asynchronously; a fresh resource says "0" even for MMS.
            num_media: "0",
            num_segments: num_segments.to_string(),
            price: None,
            price_unit: "USD",
            sid: m.sid.clone(),
            status: m.status.clone(),
            subresource_uris: SubresourceUris { media: format!("{uri_base}/Media.json") },
            to: m.to.clone(),
            uri: format!("{uri_base}.json"),
        }
    }
}

/// Twilio's `api.v2010.account.message`. Counts are strings on the wire, dates RFC 2822.
#[derive(Debug, Serialize)]
pub(crate) struct MessageResource {
    account_sid: String,
    api_version: &'static str,
    body: String,
    date_created: String,
    date_sent: Option<String>,
    date_updated: String,
    direction: &'static str,
    error_code: Option<u32>,
    error_message: Option<String>,
    from: Option<String>,
    messaging_service_sid: Option<String>,
    num_media: &'static str,
    num_segments: String,
    price: Option<String>,
    price_unit: &'static str,
    sid: String,
    status: String,
    subresource_uris: SubresourceUris,
    to: String,
    uri: String,
}

#[derive(Debug, Serialize)]
struct SubresourceUris {
    media: String,
}

/// `Thu, 24 Aug 2023 05:01:45 +0000`: always two-digit days and a numeric zone, as Twilio writes them.
fn rfc2822(at: DateTime<Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S %z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn dates_look_like_twilios() {
        let at = Utc.with_ymd_and_hms(2023, 8, 4, 5, 1, 45).unwrap();
        assert_eq!(rfc2822(at), "Fri, 04 Aug 2023 05:01:45 +0000");
    }
}
