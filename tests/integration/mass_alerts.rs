//! Mass alerts end to end: preview, the refusals, one text per client through the fan-out and
//! the bulk lane, the send-time appointment check, closing with an S3 report fetched through its
//! presigned link, the activity list, a fan-out stopped midway and run again, and a reply.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use devstack::stack::DEMO_SENDER;
use reqwest::Method;
use serde_json::{Value, json};
use shared::appointments::{Appointment, AppointmentStatus};
use shared::clinic::{Role, User};
use shared::contacts::{Contact, ContactPhone, PhoneKind};
use shared::ids::{AlertId, ClinicId};
use shared::mass_alert::{AlertRange, MassAlert};
use shared::mass_alert_closing;
use shared::mass_alert_fanout::{self, MassAlertConfirmed};
use shared::message::MessageBody;
use shared::message_status::MessageStatus;
use shared::send_queue::SendJob;
use shared::sending::{self, JobOutcome};
use twilio_sim::Outcome;

use crate::support::TestStack;

const REPORT_LINK: Duration = Duration::from_secs(120);
const HEADER: [&str; 6] =
    ["Client Full Name", "Client Phone Number", "SMS Status", "Error Details", "Message Text", "Timestamp"];

fn demo() -> ClinicId {
    ClinicId::new("demo")
}

/// A stack whose lanes the test drives itself (so it decides when texts go), with two-way
/// texting on and reports linked for two minutes.
async fn stack(drain_lanes: bool) -> TestStack {
    let t = TestStack::start_custom(|o| {
        o.report_link_valid_for = REPORT_LINK;
        if !drain_lanes {
            o.sender_concurrency = devstack::runner::SenderConcurrency::PerLane(0);
        }
    })
    .await;
    two_way(&t, true).await;
    t
}

async fn two_way(t: &TestStack, on: bool) {
    let services = &t.stack.services;
    let mut clinic = services.clinics.clinic(&demo()).await.expect("read").expect("exists");
    clinic.two_way_texting = on;
    services.clinics.put_clinic(&clinic).await.expect("saved");
}

async fn client(t: &TestStack, id: &str, first: &str, mobile: Option<&str>) {
    let contact = Contact {
        id: id.into(),
        clinic_id: demo(),
        first_name: first.into(),
        last_name: "Client".into(),
        phones: mobile.map(|m| ContactPhone::new(PhoneKind::Mobile, m, None)).into_iter().collect(),
        reminder_preference: None,
        group_ids: vec![],
        created_at: Utc::now(),
    };
    t.stack.services.clinics.put_record(&contact).await.expect("contact stored");
}

async fn appointment(t: &TestStack, id: &str, contact: &str, start: DateTime<Utc>, status: AppointmentStatus) {
    let now = Utc::now();
    let appointment = Appointment {
        id: id.into(),
        clinic_id: demo(),
        business_id: "main".into(),
        contact_id: contact.into(),
        type_id: "checkup".into(),
        patient_names: vec!["Rex".into()],
        start,
        status,
        decided_start: None,
        reminder_message_id: None,
        created_at: now,
        updated_at: now,
    };
    t.stack.services.appointments.put(&appointment).await.expect("appointment stored");
}

/// A range from an hour ago to two days ahead.
fn range() -> (DateTime<Utc>, DateTime<Utc>) {
    let now = Utc::now();
    (now - TimeDelta::hours(1), now + TimeDelta::days(2))
}

fn alert_body(from: DateTime<Utc>, to: DateTime<Utc>, text: &str) -> Value {
    json!({"from": from.to_rfc3339(), "to": to.to_rfc3339(), "body": text, "confirm": true})
}

async fn post(t: &TestStack, key: &str, path: &str, body: &Value) -> (u16, Value) {
    t.call(key, Method::POST, path, Some(body)).await
}

/// Runs each job of `ids` in the sender until it is finished, as the bulk lane would.
async fn send_all(t: &TestStack, ids: &[shared::ids::MessageId]) {
    for id in ids {
        for _ in 0..200 {
            match sending::send(&t.stack.services, &SendJob::named(*id)).await.expect("sender works") {
                JobOutcome::Finished => break,
                JobOutcome::RetryAt(at) => {
                    let after = (at - t.stack.services.clock.now()).to_std().unwrap_or_default();
                    tokio::time::sleep(after.min(Duration::from_millis(500))).await;
                }
            }
        }
    }
}

/// Ann: two appointments in the range and one after it. Bob: one past, one cancelled, one ahead
/// (cancelled after the fan-out, before his text goes). Cat: no mobile number. Dan: his text
/// fails at the carrier. Eve: only a cancelled appointment and one after the range (not a
/// recipient at all).
async fn three_clients_and_more(t: &TestStack) {
    let (from, to) = range();
    let now = Utc::now();
    client(t, "ann", "Ann", Some("+14155550101")).await;
    client(t, "bob", "Bob", Some("+14155550102")).await;
    client(t, "cat", "Cat", None).await;
    client(t, "dan", "Dan", Some("+14155550104")).await;
    client(t, "eve", "Eve", Some("+14155550105")).await;
    use AppointmentStatus::*;
    appointment(t, "ann-1", "ann", now + TimeDelta::hours(3), Booked).await;
    appointment(t, "ann-2", "ann", now + TimeDelta::hours(20), Confirmed).await;
    appointment(t, "ann-3", "ann", to + TimeDelta::hours(5), Booked).await;
    appointment(t, "bob-1", "bob", from + TimeDelta::minutes(10), Booked).await;
    appointment(t, "bob-2", "bob", now + TimeDelta::hours(4), Cancelled).await;
    appointment(t, "bob-3", "bob", now + TimeDelta::hours(30), Booked).await;
    appointment(t, "cat-1", "cat", now + TimeDelta::hours(5), Booked).await;
    appointment(t, "dan-1", "dan", now + TimeDelta::hours(6), Booked).await;
    appointment(t, "eve-1", "eve", now + TimeDelta::hours(7), Cancelled).await;
    appointment(t, "eve-2", "eve", to + TimeDelta::days(1), Booked).await;
}

/// Waits until the fan-out (run by the local runner from the bus event) has stored every
/// recipient, then runs it once more itself: it must change nothing.
async fn fanned_out(t: &TestStack, alert: &str, recipients: usize) -> Vec<shared::ids::MessageId> {
    let services = &t.stack.services;
    let id = AlertId::new(alert);
    for _ in 0..600 {
        if services.mass_alerts.counts(&id).await.expect("counts").fanned_out {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let again = mass_alert_fanout::fan_out(services, &MassAlertConfirmed { clinic_id: demo(), alert_id: id.clone() })
        .await
        .expect("fan-out runs again");
    assert_eq!(again.stored, 0, "a second run stores nothing");
    let ids = services.mass_alerts.message_ids(&id).await.expect("ids");
    assert_eq!(ids.len(), recipients);
    ids
}

#[tokio::test]
async fn an_alert_texts_each_eligible_client_once_and_reports_every_client() {
    let t = stack(false).await;
    three_clients_and_more(&t).await;
    t.stack.simulator.set_override("+14155550104", Outcome::Undelivered(30003));
    let (from, to) = range();

    let (status, preview) =
        post(&t, t.key(), "/v1/mass-alerts/preview", &alert_body(from, to, "Closed at 3pm today.")).await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["recipients"], 3, "Ann, Bob and Dan: {preview}");
    let not_texted: Vec<_> = preview["not_texted"]
        .as_array()
        .expect("list")
        .iter()
        .map(|n| (n["contact_id"].clone(), n["reason"].clone()))
        .collect();
    assert_eq!(not_texted, vec![(json!("cat"), json!("no_mobile_number"))]);
    assert_eq!(preview["characters"]["used"], 20);
    assert_eq!(preview["characters"]["remaining"], 1580);
    assert_eq!(preview["characters"]["segments"], 1);
    assert_eq!(preview["characters"]["encoding"], "gsm7");
    assert_eq!(preview["credits"]["needed"], 3);
    assert_eq!(preview["credits"]["enough"], true);
    let first: DateTime<Utc> = serde_json::from_value(preview["first_appointment"].clone()).expect("a time");
    let last: DateTime<Utc> = serde_json::from_value(preview["last_appointment"].clone()).expect("a time");
    assert!(first > Utc::now() + TimeDelta::hours(2) && last > Utc::now() + TimeDelta::hours(29), "{preview}");

    let (status, created) = post(&t, t.key(), "/v1/mass-alerts", &alert_body(from, to, "Closed at 3pm today.")).await;
    assert_eq!(status, 202, "{created}");
    let alert = created["id"].as_str().expect("an id").to_owned();
    let ids = fanned_out(&t, &alert, 4).await;

    // Bob's only live appointment is cancelled before his text goes.
    let bob_3 = t.stack.services.appointments.get(&demo(), "bob-3").await.expect("read").expect("exists");
    appointment(&t, "bob-3", "bob", bob_3.start, AppointmentStatus::Cancelled).await;
    send_all(&t, &ids).await;
    assert!(t.stack.simulator.callbacks_settled(Duration::from_secs(30)).await);

    let texted: Vec<String> = t.stack.simulator.messages().into_iter().map(|m| m.to).collect();
    let mut sorted = texted.clone();
    sorted.sort();
    assert_eq!(sorted, vec!["+14155550101", "+14155550104"], "one text each to Ann and Dan, none to Bob");

    // No conversation opens for the alert alone; Ann's reply opens one.
    let (_, conversations) = t.call(t.key(), Method::GET, "/v1/conversations", None).await;
    assert_eq!(conversations["items"].as_array().map(Vec::len), Some(0), "{conversations}");
    let (status, answer, _) =
        t.inbound("SM00000000000000000000000000000a11", "+14155550101", DEMO_SENDER, "Thanks!", &[]).await;
    assert_eq!(status, 200, "{answer}");
    let (_, conversations) = t.call(t.key(), Method::GET, "/v1/conversations", None).await;
    let items = conversations["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{conversations}");
    assert_eq!(items[0]["contact_id"], "ann", "{conversations}");

    // Every text has a final state: the next tick closes the alert and writes the report.
    let closed = mass_alert_closing::close_due(&t.stack.services, Utc::now()).await.expect("closing works");
    assert_eq!(closed, 1);
    let (status, shown) = t.call(t.key(), Method::GET, &format!("/v1/mass-alerts/{alert}"), None).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["status"], "completed");
    assert_eq!(shown["counts"], json!({"recipients": 4, "sent": 2, "delivered": 1, "failed": 1, "not_sent": 2}));
    assert_eq!(shown["outcome"], json!({"color": "red", "not_texted": 3}));
    let link = shown["report_url"].as_str().expect("a report link").to_owned();
    let query: HashMap<String, String> =
        url::Url::parse(&link).expect("a URL").query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    assert_eq!(query.get("X-Amz-Expires").map(String::as_str), Some("120"));

    let response = reqwest::get(&link).await.expect("S3 answers");
    assert_eq!(response.status().as_u16(), 200);
    let csv = response.text().await.expect("a body");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(reader.headers().expect("a header").iter().collect::<Vec<_>>(), HEADER);
    let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().expect("rows");
    assert_eq!(rows.len(), 4, "one row per client: {csv}");
    let by_name: HashMap<&str, &csv::StringRecord> = rows.iter().map(|r| (&r[0], r)).collect();
    assert_eq!(&by_name["Ann Client"][2], "Delivered");
    assert_eq!(&by_name["Ann Client"][1], "+14155550101");
    assert_eq!(&by_name["Dan Client"][2], "Undelivered");
    assert!(by_name["Dan Client"][3].starts_with("30003"), "{csv}");
    assert_eq!(&by_name["Bob Client"][2], "Not sent");
    assert!(by_name["Bob Client"][3].starts_with("appointment_changed"), "{csv}");
    assert_eq!(&by_name["Cat Client"][2], "Not sent");
    assert!(by_name["Cat Client"][3].starts_with("no_mobile_number"), "{csv}");
    assert!(rows.iter().all(|r| &r[4] == "Closed at 3pm today."));
    let last_failure = rows.iter().rposition(|r| &r[2] != "Delivered" && &r[2] != "Sent");
    assert_eq!(last_failure, Some(2), "failures first: {csv}");

    // A fresh link on each call.
    let (_, again) = t.call(t.key(), Method::GET, &format!("/v1/mass-alerts/{alert}"), None).await;
    assert!(again["report_url"].is_string());

    let (status, activity) = t.call(t.key(), Method::GET, "/v1/mass-alerts", None).await;
    assert_eq!(status, 200, "{activity}");
    assert_eq!(activity["items"][0]["id"], alert.as_str());
    assert_eq!(activity["items"][0]["outcome"]["color"], "red");
}

#[tokio::test]
async fn an_alert_is_refused_with_the_reason_and_field_at_fault() {
    let t = stack(false).await;
    three_clients_and_more(&t).await;
    let (from, to) = range();
    let text = "Closed at 3pm today.";

    let (status, problem) =
        post(&t, t.key(), "/v1/mass-alerts", &alert_body(from, from + TimeDelta::days(8), text)).await;
    assert_eq!((status, problem["field"].clone()), (422, json!("to")), "{problem}");
    let ended = alert_body(from - TimeDelta::days(2), from, text);
    assert_eq!(post(&t, t.key(), "/v1/mass-alerts", &ended).await.0, 422);
    let (status, problem) = post(&t, t.key(), "/v1/mass-alerts", &alert_body(from, to, " ")).await;
    assert_eq!((status, problem["field"].clone()), (422, json!("body")), "{problem}");
    let (status, problem) = post(&t, t.key(), "/v1/mass-alerts", &alert_body(from, to, &"x".repeat(1601))).await;
    assert_eq!((status, problem["field"].clone()), (422, json!("body")), "{problem}");
    let unconfirmed = json!({"from": from.to_rfc3339(), "to": to.to_rfc3339(), "body": text});
    let (status, problem) = post(&t, t.key(), "/v1/mass-alerts", &unconfirmed).await;
    assert_eq!((status, problem["field"].clone()), (422, json!("confirm")), "{problem}");
    let no_offset = json!({"from": "2026-11-24T10:00:00", "to": to.to_rfc3339(), "body": text, "confirm": true});
    let (status, problem) = post(&t, t.key(), "/v1/mass-alerts", &no_offset).await;
    assert_eq!((status, problem["field"].clone()), (422, json!("from")), "{problem}");

    let staff =
        User { id: "desk".into(), clinic_id: demo(), name: "Desk".into(), role: Role::Staff, daily_allowance: None };
    t.stack.services.clinics.put_record(&staff).await.expect("user stored");
    let (status, issued) = post(&t, t.key(), "/v1/api-keys", &json!({"user_id": "desk"})).await;
    assert_eq!(status, 201, "{issued}");
    let staff_key = issued["api_key"].as_str().expect("a key");
    assert_eq!(post(&t, staff_key, "/v1/mass-alerts", &alert_body(from, to, text)).await.0, 403);
    assert_eq!(post(&t, staff_key, "/v1/mass-alerts/preview", &alert_body(from, to, text)).await.0, 403);
    assert_eq!(t.call(staff_key, Method::GET, "/v1/mass-alerts", None).await.0, 403);
    let (status, problem) = t.call(t.key(), Method::GET, "/v1/mass-alerts?cursor=not-an-id", None).await;
    assert_eq!((status, problem["field"].clone()), (422, json!("cursor")), "{problem}");

    two_way(&t, false).await;
    assert_eq!(post(&t, t.key(), "/v1/mass-alerts", &alert_body(from, to, text)).await.0, 409);
    two_way(&t, true).await;

    // Three texts of two segments each need six credits.
    let balance = t.stack.services.counters.credit_balance(&demo()).await.expect("balance");
    t.stack.services.counters.reserve_credits(&demo(), balance - 5).await.expect("store").expect("reserved");
    let (status, problem) = post(&t, t.key(), "/v1/mass-alerts", &alert_body(from, to, &"y".repeat(200))).await;
    assert_eq!(status, 402, "{problem}");
    assert_eq!((problem["needed"].clone(), problem["available"].clone()), (json!(6), json!(5)));

    let (_, activity) = t.call(t.key(), Method::GET, "/v1/mass-alerts", None).await;
    assert_eq!(activity["items"].as_array().map(Vec::len), Some(0), "nothing was sent: {activity}");
}

#[tokio::test]
async fn a_fan_out_stopped_midway_and_run_again_texts_no_client_twice() {
    let t = stack(true).await;
    let services = &t.stack.services;
    // A faster number, so 250 texts drain in seconds on the bulk lane's share.
    let mut connection = t.stack.demo.connection.clone();
    connection.mps = 200;
    services.clinics.put_connection(&connection).await.expect("saved");
    services.counters.add_credits(&demo(), 1000).await.expect("topped up");
    let clients = 250;
    let start = Utc::now() + TimeDelta::hours(5);
    for i in 0..clients {
        let id = format!("c{i:03}");
        client(&t, &id, &format!("Client{i}"), Some(&format!("+1415555{:04}", 1000 + i))).await;
        appointment(&t, &format!("a{i:03}"), &id, start, AppointmentStatus::Booked).await;
    }
    let (from, to) = range();
    let now = Utc::now();
    let alert = MassAlert::new(
        demo(),
        connection.id.clone(),
        AlertRange::new(from, to, now).expect("a range"),
        MessageBody::parse("Power cut: we open at noon.").expect("a body"),
        shared::ids::UserId::new("admin"),
        now,
    );
    // Stored without its event, so only this test fans it out.
    services.mass_alerts.create(&alert).await.expect("alert stored");
    let event = MassAlertConfirmed { clinic_id: demo(), alert_id: alert.id.clone() };

    let first = tokio::spawn({
        let services = services.clone();
        let event = event.clone();
        async move { mass_alert_fanout::fan_out(&services, &event).await.map(|_| ()).map_err(|e| e.to_string()) }
    });
    for _ in 0..2000 {
        if !services.mass_alerts.message_ids(&alert.id).await.expect("ids").is_empty() || first.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    first.abort();
    let stopped_at = services.mass_alerts.message_ids(&alert.id).await.expect("ids").len();

    let resumed = mass_alert_fanout::fan_out(services, &event).await.expect("the fan-out resumes");
    assert_eq!(resumed.recipients, clients);
    assert_eq!(resumed.stored + stopped_at.min(clients), clients, "the rerun stored only what was missing");
    let counts = services.mass_alerts.counts(&alert.id).await.expect("counts");
    assert_eq!(counts.tally.recipients, clients as u64, "each client counted once");

    // Every client's text goes out exactly once.
    for _ in 0..1200 {
        let settled = services.mass_alerts.counts(&alert.id).await.expect("counts").unsettled;
        if settled <= 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(t.stack.simulator.callbacks_settled(Duration::from_secs(30)).await);
    let texted: Vec<String> = t.stack.simulator.messages().into_iter().map(|m| m.to).collect();
    let unique: HashSet<&String> = texted.iter().collect();
    assert_eq!((texted.len(), unique.len()), (clients, clients), "one text per client");
    let messages = t.clinic_messages("demo").await;
    assert_eq!(messages.iter().filter(|m| m.status == MessageStatus::Delivered).count(), clients);
    assert_eq!(mass_alert_closing::close_due(services, Utc::now()).await.expect("closes"), 1);
}

#[tokio::test]
async fn a_text_no_carrier_reports_on_counts_as_sent_once_the_alert_closes_after_its_wait() {
    let t = stack(true).await;
    client(&t, "ann", "Ann", Some("+14155550101")).await;
    appointment(&t, "ann-1", "ann", Utc::now() + TimeDelta::hours(3), AppointmentStatus::Booked).await;
    t.stack.simulator.lose_callbacks_to("+14155550101");
    let (from, to) = range();

    // The same request with the same Idempotency-Key makes one alert.
    let mut ids = Vec::new();
    for _ in 0..2 {
        let response = t
            .http
            .post(t.url("/v1/mass-alerts"))
            .bearer_auth(t.key())
            .header("Idempotency-Key", "closure-2026-11-24")
            .json(&alert_body(from, to, "Closed at 3pm today."))
            .send()
            .await
            .expect("API answers");
        let (status, body, _) = crate::support::read(response).await;
        assert_eq!(status, 202, "{body}");
        ids.push(body["id"].as_str().expect("an id").to_owned());
    }
    assert_eq!(ids[0], ids[1]);
    let (_, activity) = t.call(t.key(), Method::GET, "/v1/mass-alerts", None).await;
    assert_eq!(activity["items"].as_array().map(Vec::len), Some(1), "{activity}");
    let (_, sending) = t.call(t.key(), Method::GET, &format!("/v1/mass-alerts/{}", ids[0]), None).await;
    assert_eq!((sending["status"].clone(), sending["outcome"].clone()), (json!("sending"), Value::Null));

    let alert = AlertId::new(ids[0].as_str());
    let services = &t.stack.services;
    let mut counts = services.mass_alerts.counts(&alert).await.expect("counts");
    for _ in 0..1200 {
        if counts.fanned_out && counts.unsent <= 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        counts = services.mass_alerts.counts(&alert).await.expect("counts");
    }
    assert_eq!((counts.tally.sent, counts.unsettled), (1, 1), "Twilio took it; no report came");

    let now = Utc::now();
    assert_eq!(
        mass_alert_closing::close_due(services, now).await.expect("closing works"),
        0,
        "a report may still come"
    );
    let later = now + services.settings.alerts.close_after + TimeDelta::minutes(1);
    assert_eq!(mass_alert_closing::close_due(services, later).await.expect("closing works"), 1);
    let (_, shown) = t.call(t.key(), Method::GET, &format!("/v1/mass-alerts/{}", ids[0]), None).await;
    assert_eq!(shown["status"], "completed");
    assert_eq!(shown["outcome"], json!({"color": "green"}), "{shown}");
    assert_eq!(shown["counts"], json!({"recipients": 1, "sent": 1, "delivered": 0, "failed": 0, "not_sent": 0}));
    let csv =
        reqwest::get(shown["report_url"].as_str().expect("a link")).await.expect("S3").text().await.expect("a body");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().expect("rows");
    assert_eq!((&rows[0][0], &rows[0][2], &rows[0][3]), ("Ann Client", "Sent", ""), "{csv}");
}
