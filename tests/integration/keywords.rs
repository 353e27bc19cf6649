//! Patients' keyword replies: STOP stops every text from the clinic until START on the same
//! connection; a confirmation keyword confirms the appointment the latest reminder was about.
//! The reminder engine runs on a manual clock: 09:00 in New York on 10 June 2026, a 10:00–11:00
//! window for tomorrow's appointments.

use chrono::{DateTime, Utc};
use devstack::stack::{DEMO_SENDER, OTHER_SENDER};
use reqwest::Method;
use serde_json::{Value, json};
use shared::clock::Clock;
use shared::ids::MessageId;
use shared::message::Message;
use shared::message_status::MessageStatus;
use shared::reason::Reason;
use shared::reminder_run;
use shared::send_queue::SendJob;
use shared::sending;

use crate::support::TestStack;

const ANA: &str = "+14155550123";
const SECOND_LINE: &str = "+15017122664";
const TOMORROW: &str = "2026-06-11T09:30:00-04:00";

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).expect("a valid time").to_utc()
}

struct Clinic {
    t: TestStack,
    ana: String,
    business: String,
    kind: String,
}

impl Clinic {
    /// A business, a reminder template and type, and Ana; nothing sent unless a test sends it.
    async fn start() -> Self {
        let t = TestStack::start_custom(|o| {
            o.clock = Clock::manual(at("2026-06-10T13:00:00Z"));
            o.sender_concurrency = devstack::runner::SenderConcurrency::PerLane(0);
        })
        .await;
        let mut c = Clinic { t, ana: String::new(), business: String::new(), kind: String::new() };
        let template =
            c.create("/v1/templates", json!({"name": "R", "body": "See you tomorrow. Reply C to confirm."})).await;
        let window = json!({"start": "10:00", "end": "11:00", "days_ahead": 1});
        c.business = c
            .create("/v1/businesses", json!({"name": "Uptown Vet", "time_zone": "America/New_York", "window": window}))
            .await;
        c.kind = c.create("/v1/appointment-types", json!({"name": "Check-up", "reminder_template_id": template})).await;
        c.ana =
            c.create("/v1/contacts", json!({"first_name": "Ana", "phones": [{"kind": "mobile", "number": ANA}]})).await;
        c
    }

    async fn create(&self, path: &str, body: Value) -> String {
        let (status, created) = self.t.call(self.t.key(), Method::POST, path, Some(&body)).await;
        assert_eq!(status, 201, "POST {path} → {created}");
        created["id"].as_str().expect("an id").to_owned()
    }

    async fn appointment(&self, start: &str) -> String {
        let body = json!({"contact_id": self.ana, "business_id": self.business, "type_id": self.kind, "patient_names": ["Max"], "start": start, "status": "booked"});
        self.create("/v1/appointments", body).await
    }

    async fn text(&self, n: usize, to: &str, body: &str, extra: &[(&str, &str)]) {
        let (status, answer, _) = self.t.inbound(&format!("SM{n:032x}"), ANA, to, body, extra).await;
        assert_eq!(status, 200, "{answer}");
    }

    async fn manual_send(&self) -> (u16, Value) {
        let (status, body, _) = self.t.post_message(&json!({"to": ANA, "body": "Hello from the clinic"})).await;
        (status, body)
    }

    /// The reminder decision for `appointment` after the window's first tick.
    async fn tick_and_decision(&self, appointment: &str) -> Message {
        let now = at("2026-06-10T14:00:00Z");
        self.t.stack.services.clock.set(now);
        reminder_run::tick(&self.t.stack.services, now).await.expect("tick runs");
        self.t
            .clinic_messages("demo")
            .await
            .into_iter()
            .find(|m| m.appointment.as_ref().is_some_and(|a| a.id == appointment))
            .expect("a decision")
    }

    async fn send_now(&self, id: MessageId) -> Message {
        sending::send(&self.t.stack.services, &SendJob::named(id)).await.expect("send runs");
        self.t.stack.services.messages.get(&id).await.expect("read").expect("exists")
    }
}

fn reason(m: &Message) -> Option<Reason> {
    m.failure.as_ref().and_then(|f| f.reason)
}

#[tokio::test]
async fn stop_on_any_number_stops_every_text_until_start_on_that_connection() {
    let c = Clinic::start().await;
    c.create("/v1/connections", json!({"label": "Second line", "sender": SECOND_LINE, "mps": 5})).await;
    let b = c.t.other_clinic("other", OTHER_SENDER).await.api_key;
    let queued_before = c.appointment(TOMORROW).await;
    let reminder = c.tick_and_decision(&queued_before).await;
    assert_eq!(reminder.status, MessageStatus::Queued);

    // STOP through the second line stops texts from every number of the clinic.
    c.text(1, SECOND_LINE, " stop ", &[]).await;
    let (status, refused) = c.manual_send().await;
    assert_eq!(
        (status, refused["type"].as_str(), refused["field"].as_str()),
        (409, Some("urn:clinic-sms:problem:opted-out"), Some("to")),
        "{refused}"
    );
    let sent = c.send_now(reminder.id).await;
    assert_eq!((sent.status, reason(&sent)), (MessageStatus::Skipped, Some(Reason::OptedOut)), "the queued reminder");
    let next = c.appointment("2026-06-11T11:00:00-04:00").await;
    let decided = c.tick_and_decision(&next).await;
    assert_eq!(
        (decided.status, reason(&decided)),
        (MessageStatus::Skipped, Some(Reason::OptedOut)),
        "the next reminder"
    );
    assert!(c.t.stack.simulator.requests().is_empty(), "nothing reached Twilio");

    // Another clinic is not affected.
    let (status, other) = c.t.call(&b, Method::POST, "/v1/messages", Some(&json!({"to": ANA, "body": "Hi"}))).await;
    assert_eq!(status, 202, "{other}");

    // START through another connection leaves it (Twilio still blocks that line); through the
    // line that recorded it, clears it.
    c.text(2, DEMO_SENDER, "START", &[]).await;
    assert_eq!(c.manual_send().await.0, 409);
    c.text(3, SECOND_LINE, "Unstop", &[]).await;
    let (status, accepted) = c.manual_send().await;
    assert_eq!(status, 202, "sendable again: {accepted}");

    // Twilio's own reading (Advanced Opt-Out) counts even for words not on the default list.
    c.text(4, DEMO_SENDER, "ARRET", &[("OptOutType", "STOP")]).await;
    assert_eq!(c.manual_send().await.0, 409);
    c.text(5, DEMO_SENDER, "yes", &[]).await;
    assert_eq!(c.manual_send().await.0, 202);

    // Every keyword text is still a message in the conversation.
    let received =
        c.t.clinic_messages("demo").await.into_iter().filter(|m| m.status == MessageStatus::Received).count();
    assert_eq!(received, 5);
}

async fn appointment_status(c: &Clinic, id: &str) -> String {
    let (status, shown) = c.t.call(c.t.key(), Method::GET, &format!("/v1/appointments/{id}"), None).await;
    assert_eq!(status, 200, "{shown}");
    shown["status"].as_str().expect("a status").to_owned()
}

#[tokio::test]
async fn a_confirmation_reply_confirms_the_appointment_of_the_latest_reminder() {
    let c = Clinic::start().await;
    let reminded = c.appointment(TOMORROW).await;
    let later = c.appointment("2026-06-12T09:30:00-04:00").await;
    let reminder = c.tick_and_decision(&reminded).await;
    assert!(c.send_now(reminder.id).await.twilio_sid.is_some(), "the reminder went to Twilio");

    c.text(1, DEMO_SENDER, "Can I bring both dogs?", &[]).await;
    assert_eq!(appointment_status(&c, &reminded).await, "booked", "just a conversation message");
    c.text(2, DEMO_SENDER, " c ", &[]).await;
    assert_eq!(appointment_status(&c, &reminded).await, "confirmed");
    assert_eq!(appointment_status(&c, &later).await, "booked", "only the reminded appointment");

    // Keywords are the clinic's choice, never one of Twilio's.
    let (_, clinic) = c.t.call(c.t.key(), Method::GET, "/v1/clinic", None).await;
    let connection = clinic["default_connection_id"].clone();
    let settings = |keywords: Value| json!({"name": "Demo", "default_country": "US", "time_zone": "America/New_York", "default_connection_id": connection, "confirmation_keywords": keywords});
    let (status, refused) = c.t.call(c.t.key(), Method::PUT, "/v1/clinic", Some(&settings(json!(["YES"])))).await;
    assert_eq!((status, refused["field"].as_str()), (422, Some("confirmation_keywords")), "{refused}");
    let (status, saved) = c.t.call(c.t.key(), Method::PUT, "/v1/clinic", Some(&settings(json!(["ok"])))).await;
    assert_eq!((status, saved["confirmation_keywords"].clone()), (200, json!(["OK"])), "{saved}");
    let third = c.appointment("2026-06-11T10:30:00-04:00").await;
    let reminder = c.tick_and_decision(&third).await;
    c.t.stack.services.clock.set(at("2026-06-10T14:05:00Z"));
    let sent = c.send_now(reminder.id).await;
    assert!(sent.twilio_sid.is_some(), "the third reminder went to Twilio: {sent:?}");
    c.text(3, DEMO_SENDER, "C", &[]).await;
    assert_eq!(appointment_status(&c, &third).await, "booked", "C is no longer a keyword here");
    c.text(4, DEMO_SENDER, "Ok", &[]).await;
    assert_eq!(appointment_status(&c, &third).await, "confirmed");
}

#[tokio::test]
async fn a_confirmation_is_about_the_latest_reminder_sent_not_one_still_waiting() {
    let c = Clinic::start().await;
    let first = c.appointment("2026-06-11T16:00:00-04:00").await;
    let reminder = c.tick_and_decision(&first).await;
    assert!(c.send_now(reminder.id).await.twilio_sid.is_some(), "the first reminder went to Twilio");

    // The next day's window makes a newer reminder, still queued when the patient answers.
    let second = c.appointment("2026-06-12T09:30:00-04:00").await;
    let next_day = at("2026-06-11T14:00:00Z");
    c.t.stack.services.clock.set(next_day);
    reminder_run::tick(&c.t.stack.services, next_day).await.expect("tick runs");
    let waiting =
        c.t.clinic_messages("demo")
            .await
            .into_iter()
            .find(|m| m.appointment.as_ref().is_some_and(|a| a.id == second))
            .expect("a decision for the second appointment");
    assert_eq!(waiting.status, MessageStatus::Queued);

    c.text(1, DEMO_SENDER, "C", &[]).await;
    assert_eq!(appointment_status(&c, &first).await, "confirmed", "the reminder the patient read");
    assert_eq!(appointment_status(&c, &second).await, "booked", "a reminder not yet sent");

    // Once the newer reminder has gone, it is the one a confirmation answers.
    assert!(c.send_now(waiting.id).await.twilio_sid.is_some(), "the second reminder went to Twilio");
    c.text(2, DEMO_SENDER, "confirm", &[]).await;
    assert_eq!(appointment_status(&c, &second).await, "confirmed");
}
