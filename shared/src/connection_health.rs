//! Is a Twilio connection working? The pure judgements behind `GET /v1/connections/{id}/health`
//! and the `connection_healthy` and `inbound_texts_arriving` checks of the sms-check and
//! reminder-check endpoints: from what the connection's item records (its last Twilio error,
//! when a patient's text and a status callback last arrived) and the clinic's latest texts.
//!
//! A broken connection rarely fails loudly: a wrong webhook URL or auth token only shows as
//! callbacks and replies that never come, so these checks warn about silence and say what to do.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::clinic::{Connection, ConnectionError};
use crate::config::Settings;
use crate::dynamo::StoreError;
use crate::ids::{ConnectionId, MessageId};
use crate::message::Direction;
use crate::message_status::MessageStatus;
use crate::reminder_checks::{Check, fail, pass, warn};
use crate::services::Services;
use crate::twilio::error_catalogue;
use crate::webhook_rejections::WebhookRoute;

/// Twilio usually posts `sent` within seconds; a text still without any callback after this long
/// means callbacks are not reaching us.
pub const CALLBACK_GRACE: TimeDelta = TimeDelta::minutes(15);

/// Texts keep going out but no patient has replied for this long: inbound is probably broken.
pub const INBOUND_QUIET: TimeDelta = TimeDelta::days(14);

/// How many of the clinic's latest texts the checks look at.
pub const RECENT_TEXTS: i32 = 50;

/// The last text a patient sent through the connection, as recorded on the connection's item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundSeen {
    pub at: DateTime<Utc>,
    pub message_id: MessageId,
}

/// What the checks need of one of the clinic's recent texts (read with a projection, not whole).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TextFact {
    pub connection_id: ConnectionId,
    pub status: MessageStatus,
    #[serde(default)]
    pub direction: Direction,
    #[serde(default)]
    pub twilio_sid: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// What the clinic's latest texts say about one connection's outbound traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecentSends {
    /// The latest text Twilio took from this connection.
    pub last_sent_at: Option<DateTime<Utc>>,
    /// The oldest text Twilio took more than [`CALLBACK_GRACE`] ago that no callback has moved
    /// on since (still `submitted`), and how many there are.
    pub oldest_silent_at: Option<DateTime<Utc>>,
    pub silent: usize,
}

/// Reads `texts` (any order, any connection) for the traffic of `connection`.
pub fn recent_sends(texts: &[TextFact], connection: &ConnectionId, now: DateTime<Utc>) -> RecentSends {
    let mut sends = RecentSends::default();
    let outbound = texts
        .iter()
        .filter(|t| t.connection_id == *connection && t.direction == Direction::Outbound && t.twilio_sid.is_some());
    for text in outbound {
        sends.last_sent_at = sends.last_sent_at.max(Some(text.updated_at));
        // `submitted` changes only with a callback (or a status check hours later): a text that
        // stayed there past the grace period heard nothing from Twilio.
        if text.status == MessageStatus::Submitted && text.updated_at <= now - CALLBACK_GRACE {
            sends.silent += 1;
            sends.oldest_silent_at = Some(sends.oldest_silent_at.map_or(text.updated_at, |t| t.min(text.updated_at)));
        }
    }
    sends
}

/// Whether an error Twilio gave stops the connection sending at all (`true`), or only some texts
/// (one country, unverified numbers on a trial account, filtered wording).
pub fn blocks_sending(code: u32) -> bool {
    matches!(code, 20003 | 21212 | 21606 | 30002 | 30034)
}

/// The connection's last error about itself (credentials, sending number, account,
/// registration): failing when it stops every text, a warning when it stops some.
pub fn connection_healthy(connection: &Connection) -> Check {
    let Some(ConnectionError { code, at }) = &connection.last_error else {
        return pass(
            "connection_healthy",
            format!("Twilio has reported no problem with {} since its last accepted text.", connection.label),
        );
    };
    let detail = format!(
        "{}: Twilio's last error about the connection ({}) was {code}: {}",
        connection.label,
        at.format("%Y-%m-%d %H:%M UTC"),
        error_catalogue::describe(*code)
    );
    let what_to_do = error_catalogue::lookup(*code)
        .map_or("An administrator should look the error up in Twilio's console and fix the connection.", |info| {
            info.what_to_do
        });
    if blocks_sending(*code) {
        fail("connection_healthy", detail, None, what_to_do)
    } else {
        warn("connection_healthy", detail, what_to_do)
    }
}

/// Whether Twilio's webhooks reach us for this connection: status callbacks for the texts it
/// sends, and patients' texts. Silence is only ever a warning: it may be innocent (nobody
/// replied), and the text itself may still have gone out.
pub fn inbound_texts_arriving(connection: &Connection, sends: &RecentSends, now: DateTime<Utc>) -> Check {
    const NAME: &str = "inbound_texts_arriving";
    let label = &connection.label;
    if let Some(oldest) = sends.oldest_silent_at {
        let callback_since = connection.last_status_callback_at.is_some_and(|at| at >= oldest);
        if !callback_since {
            return warn(
                NAME,
                format!(
                    "{} recent text(s) sent through {label} since {} have had no status callback from Twilio after {} minutes.",
                    sends.silent,
                    oldest.format("%Y-%m-%d %H:%M UTC"),
                    CALLBACK_GRACE.num_minutes()
                ),
                "An administrator should open the connection's health: the status callback URL must reach this service, and signature rejections there mean the stored Twilio auth token is wrong.",
            );
        }
    }
    let Some(last_sent) = sends.last_sent_at else {
        return pass(NAME, format!("No recent texts through {label} to expect callbacks or replies for."));
    };
    match &connection.last_inbound {
        None => warn(
            NAME,
            format!("Texts go out through {label}, but no text from a patient has ever arrived on it."),
            "If patients reply to your texts, an administrator should set the number's (or Messaging Service's) incoming message webhook in Twilio to the inbound URL shown in the connection's health.",
        ),
        Some(seen) if now - seen.at > INBOUND_QUIET && last_sent > seen.at => warn(
            NAME,
            format!(
                "No text from a patient has arrived on {label} since {}, though texts still go out.",
                seen.at.format("%Y-%m-%d")
            ),
            "If patients say they replied, an administrator should compare the number's incoming message webhook in Twilio with the inbound URL shown in the connection's health.",
        ),
        Some(seen) => pass(
            NAME,
            format!(
                "Twilio's callbacks arrive; the last text from a patient came {}.",
                seen.at.format("%Y-%m-%d %H:%M UTC")
            ),
        ),
    }
}

/// Both checks, in the order a person works through them.
pub fn connection_checks(connection: &Connection, sends: &RecentSends, now: DateTime<Utc>) -> Vec<Check> {
    vec![connection_healthy(connection), inbound_texts_arriving(connection, sends, now)]
}

/// The URLs to paste into Twilio, built from the public base URL the webhooks verify
/// signatures against (a URL that differs in any byte fails every signature).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookUrls {
    /// Where Twilio posts delivery status; the sender also names it on every text it sends.
    pub status_callback: String,
    /// The number's (or Messaging Service's) "a message comes in" webhook, method POST.
    pub inbound: String,
}

pub fn webhook_urls(settings: &Settings) -> WebhookUrls {
    WebhookUrls {
        status_callback: settings.webhook_url(WebhookRoute::Status.path()),
        inbound: settings.webhook_url(WebhookRoute::Inbound.path()),
    }
}

/// Both checks for `connection` as things stand now: one `Query` of the clinic's latest texts.
pub async fn current_checks(services: &Services, connection: &Connection) -> Result<Vec<Check>, StoreError> {
    let texts = services.messages.recent_texts(&connection.clinic_id, RECENT_TEXTS).await?;
    let now = services.clock.now();
    Ok(connection_checks(connection, &recent_sends(&texts, &connection.id, now), now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ClinicId;
    use crate::phone::E164;
    use crate::reminder_checks::Outcome;
    use crate::twilio::client::SenderId;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default() + TimeDelta::minutes(minute)
    }

    fn connection() -> Connection {
        let Ok(sender) = E164::parse("+15017122661", None) else { panic!("valid number") };
        Connection {
            id: ConnectionId::new("main"),
            clinic_id: ClinicId::new("c"),
            label: "Main".into(),
            sender: SenderId::Number(sender),
            pool_numbers: vec![],
            mps: 1,
            enabled: true,
            last_error: None,
            last_inbound: None,
            last_status_callback_at: None,
        }
    }

    fn text(connection: &str, status: MessageStatus, minute: i64) -> TextFact {
        TextFact {
            connection_id: ConnectionId::new(connection),
            status,
            direction: Direction::Outbound,
            twilio_sid: Some("SMx".into()),
            updated_at: at(minute),
        }
    }

    #[test]
    fn only_this_connections_accepted_texts_count_and_silence_needs_the_grace_period() {
        let mut inbound = text("main", MessageStatus::Received, 50);
        inbound.direction = Direction::Inbound;
        let mut never_sent = text("main", MessageStatus::Failed, 55);
        never_sent.twilio_sid = None;
        let texts = [
            text("main", MessageStatus::Submitted, 0),
            text("main", MessageStatus::Submitted, 10),
            text("main", MessageStatus::Submitted, 40),
            text("main", MessageStatus::Delivered, 20),
            text("other", MessageStatus::Submitted, -30),
            inbound,
            never_sent,
        ];
        let sends = recent_sends(&texts, &ConnectionId::new("main"), at(30));
        assert_eq!(sends, RecentSends { last_sent_at: Some(at(40)), oldest_silent_at: Some(at(0)), silent: 2 });
    }

    #[test]
    fn texts_without_callbacks_warn_until_a_callback_comes_after_them() {
        let mut c = connection();
        c.last_inbound = Some(InboundSeen { at: at(5), message_id: MessageId::generate(at(5)) });
        let sends = RecentSends { last_sent_at: Some(at(10)), oldest_silent_at: Some(at(10)), silent: 1 };
        let check = inbound_texts_arriving(&c, &sends, at(60));
        assert_eq!((check.outcome, check.passed), (Outcome::Warning, true), "a warning, not a failure: {check:?}");
        assert!(check.detail.contains("no status callback") && check.what_to_do.is_some(), "{check:?}");

        c.last_status_callback_at = Some(at(9));
        assert_eq!(
            inbound_texts_arriving(&c, &sends, at(60)).outcome,
            Outcome::Warning,
            "an older callback proves nothing"
        );
        c.last_status_callback_at = Some(at(11));
        assert_eq!(inbound_texts_arriving(&c, &sends, at(60)).outcome, Outcome::Passed);
    }

    #[test]
    fn a_connection_that_sends_but_never_heard_from_a_patient_gets_a_warning() {
        let mut c = connection();
        c.last_status_callback_at = Some(at(1));
        let idle = RecentSends::default();
        assert_eq!(
            inbound_texts_arriving(&c, &idle, at(60)).outcome,
            Outcome::Passed,
            "nothing sent, nothing to expect"
        );

        let sending = RecentSends { last_sent_at: Some(at(0)), ..RecentSends::default() };
        let check = inbound_texts_arriving(&c, &sending, at(60));
        assert_eq!(check.outcome, Outcome::Warning);
        assert!(check.what_to_do.is_some_and(|w| w.contains("inbound URL")), "{check:?}");

        let long_ago = at(0) - INBOUND_QUIET - TimeDelta::days(1);
        c.last_inbound = Some(InboundSeen { at: long_ago, message_id: MessageId::generate(long_ago) });
        assert_eq!(inbound_texts_arriving(&c, &sending, at(60)).outcome, Outcome::Warning, "quiet for weeks");
        c.last_inbound = Some(InboundSeen { at: at(-60), message_id: MessageId::generate(at(-60)) });
        assert_eq!(inbound_texts_arriving(&c, &sending, at(60)).outcome, Outcome::Passed);
    }

    #[test]
    fn the_last_connection_error_fails_or_warns_with_the_catalogues_words() {
        let mut c = connection();
        assert_eq!(connection_healthy(&c).outcome, Outcome::Passed);

        c.last_error = Some(ConnectionError { code: 20003, at: at(0) });
        let check = connection_healthy(&c);
        assert_eq!((check.outcome, check.passed), (Outcome::Failed, false));
        let info = error_catalogue::lookup(20003).map(|i| (i.description, i.what_to_do));
        let Some((description, what_to_do)) = info else { panic!("20003 is in the catalogue") };
        assert!(check.detail.contains("20003") && check.detail.contains(description), "{check:?}");
        assert_eq!(check.what_to_do, Some(what_to_do));

        for code in [21212, 21606, 30002, 30034] {
            c.last_error = Some(ConnectionError { code, at: at(0) });
            assert_eq!(connection_healthy(&c).outcome, Outcome::Failed, "{code}");
        }
        for code in [21408, 21608, 30007] {
            c.last_error = Some(ConnectionError { code, at: at(0) });
            assert_eq!(connection_healthy(&c).outcome, Outcome::Warning, "{code} stops only some texts");
        }
    }
}
