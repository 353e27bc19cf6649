//! The reminder engine, driven by synthetic scheduler ticks on a manual clock: nothing here
//! depends on the time of day. The business is in New York with a 10:00–11:00 window for
//! tomorrow's appointments; the clock starts at 09:00 local on 10 June 2026 (EDT, UTC−4).

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use devstack::runner::SenderConcurrency;
use serde_json::{Value, json};
use shared::clock::Clock;
use shared::contacts::OptOut;
use shared::ids::{ClinicId, MessageId};
use shared::message::Message;
use shared::message_status::MessageStatus;
use shared::phone::E164;
use shared::reason::Reason;
use shared::reminder_run::{self, TickReport};
use shared::send_queue::SendJob;
use shared::sending;

use crate::support::TestStack;

pub(crate) fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).expect("a valid time").to_utc()
}

/// 09:00 in New York on 10 June 2026.
pub(crate) fn nine_am() -> DateTime<Utc> {
    at("2026-06-10T13:00:00Z")
}

pub(crate) async fn stack(pollers: usize) -> TestStack {
    TestStack::start_custom(|o| {
        o.clock = Clock::manual(nine_am());
        o.sender_concurrency = SenderConcurrency::PerLane(pollers);
    })
    .await
}

pub(crate) async fn call(t: &TestStack, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = t.http.request(method, t.url(path)).bearer_auth(t.key());
    if let Some(body) = body {
        request = request.json(&body);
    }
    let (status, value, _) = crate::support::read(request.send().await.expect("API answers")).await;
    (status, value)
}

pub(crate) async fn create(t: &TestStack, path: &str, body: Value) -> String {
    let (status, value) = call(t, reqwest::Method::POST, path, Some(body.clone())).await;
    assert_eq!(status, 201, "POST {path} {body} → {value}");
    value["id"].as_str().expect("an id").to_owned()
}

/// A clinic set up the way the seeds describe, returning the ids tests refer to.
pub(crate) struct Setup {
    pub(crate) business: String,
    pub(crate) business_off: String,
    pub(crate) with_template: String,
    pub(crate) without_template: String,
}

pub(crate) async fn setup(t: &TestStack) -> Setup {
    let template = create(
        t,
        "/v1/templates",
        json!({"name": "Reminder", "body": "Hi {{client_first_name}}, {{patient_name}} has a {{appointment_type}} on {{appointment_date}} at {{appointment_time}} at {{business_name}}. Reply C to confirm."}),
    )
    .await;
    let window = json!({"start": "10:00", "end": "11:00", "days_ahead": 1});
    Setup {
        business: create(t, "/v1/businesses", json!({"name": "Uptown Vet", "time_zone": "America/New_York", "window": window})).await,
        business_off: create(
            t,
            "/v1/businesses",
            json!({"name": "Downtown Vet", "time_zone": "America/New_York", "window": window, "reminders_enabled": false}),
        )
        .await,
        with_template: create(t, "/v1/appointment-types", json!({"name": "Check-up", "reminder_template_id": template})).await,
        without_template: create(t, "/v1/appointment-types", json!({"name": "Walk-in"})).await,
    }
}

pub(crate) async fn contact(t: &TestStack, first: &str, phones: Value, preference: Option<&str>) -> String {
    let mut body = json!({"first_name": first, "last_name": "Client", "phones": phones});
    if let Some(p) = preference {
        body["reminder_preference"] = json!(p);
    }
    create(t, "/v1/contacts", body).await
}

pub(crate) fn mobile(number: &str) -> Value {
    json!([{"kind": "mobile", "number": number}])
}

pub(crate) async fn appointment(
    t: &TestStack,
    contact: &str,
    business: &str,
    kind: &str,
    start: &str,
    status: &str,
) -> String {
    let body = json!({"contact_id": contact, "business_id": business, "type_id": kind, "patient_names": ["Max"], "start": start, "status": status});
    create(t, "/v1/appointments", body).await
}

pub(crate) async fn tick(t: &TestStack, now: DateTime<Utc>) -> TickReport {
    t.stack.services.clock.set(now);
    reminder_run::tick(&t.stack.services, now).await.expect("tick runs")
}

/// Every message of the demo clinic, through the clinic index.
async fn all_messages(t: &TestStack) -> Vec<Message> {
    let dynamo = aws_sdk_dynamodb::Client::new(&t.stack.aws);
    let out = dynamo
        .query()
        .table_name(&t.stack.resources.tables.messages)
        .index_name("gsi1")
        .key_condition_expression("gsi1pk = :c")
        .expression_attribute_values(":c", aws_sdk_dynamodb::types::AttributeValue::S("CLINIC#demo".into()))
        .send()
        .await
        .expect("query");
    let table = &t.stack.resources.tables.messages;
    let items = shared::dynamo::items_behind(&dynamo, table, &out.items.unwrap_or_default()).await.expect("items");
    items.into_iter().map(|i| serde_dynamo::from_item(i).expect("a message")).collect()
}

/// Every message of the demo clinic, keyed by the appointment it is about.
async fn decisions(t: &TestStack) -> HashMap<String, Message> {
    let mut by_appointment = HashMap::new();
    for m in all_messages(t).await {
        let id = m.appointment.as_ref().expect("a reminder").id.clone();
        assert!(by_appointment.insert(id, m).is_none(), "one decision per appointment");
    }
    by_appointment
}

fn reason(m: &Message) -> Option<Reason> {
    m.failure.as_ref().and_then(|f| f.reason)
}

#[tokio::test]
async fn each_appointment_gets_one_reminder_or_one_reason() {
    let t = stack(1).await;
    let s = setup(&t).await;
    let ok = contact(&t, "Ana", mobile("(415) 555-0101"), None).await;
    let landline_only = contact(&t, "Ben", json!([{"kind": "landline", "number": "415 555 0102"}]), None).await;
    let bad_mobile = contact(&t, "Cy", mobile("415-55"), None).await;
    let email = contact(&t, "Di", mobile("415 555 0104"), Some("email")).await;
    let none = contact(&t, "Ed", mobile("415 555 0105"), Some("none")).await;
    let stopped = contact(&t, "Flo", mobile("415 555 0106"), None).await;
    let opt_out = OptOut {
        clinic_id: ClinicId::new("demo"),
        number: E164::parse("+14155550106", None).expect("valid"),
        connection_id: None,
        at: nine_am(),
    };
    t.stack.services.clinics.put_record(&opt_out).await.expect("opt-out stored");

    let tomorrow = "2026-06-11T09:30:00-04:00";
    let expected = [
        (appointment(&t, &ok, &s.business, &s.with_template, tomorrow, "booked").await, None),
        (
            appointment(&t, &ok, &s.business_off, &s.with_template, tomorrow, "booked").await,
            Some(Reason::BusinessRemindersOff),
        ),
        (
            appointment(&t, &ok, &s.business, &s.without_template, tomorrow, "booked").await,
            Some(Reason::NoTemplateForType),
        ),
        (
            appointment(&t, &landline_only, &s.business, &s.with_template, tomorrow, "booked").await,
            Some(Reason::NoMobileNumber),
        ),
        (
            appointment(&t, &bad_mobile, &s.business, &s.with_template, tomorrow, "booked").await,
            Some(Reason::InvalidNumber),
        ),
        (
            appointment(&t, &email, &s.business, &s.with_template, tomorrow, "booked").await,
            Some(Reason::PreferenceEmail),
        ),
        (appointment(&t, &none, &s.business, &s.with_template, tomorrow, "booked").await, Some(Reason::PreferenceNone)),
        (appointment(&t, &stopped, &s.business, &s.with_template, tomorrow, "booked").await, Some(Reason::OptedOut)),
        (
            appointment(&t, &ok, &s.business, &s.with_template, tomorrow, "cancelled").await,
            Some(Reason::AppointmentCancelled),
        ),
    ];
    let later = appointment(&t, &ok, &s.business, &s.with_template, "2026-06-12T09:30:00-04:00", "booked").await;

    // Before the window opens: nothing.
    let before = tick(&t, at("2026-06-10T13:59:00Z")).await;
    assert_eq!((before.reminders, before.skipped), (0, 0));

    let report = tick(&t, at("2026-06-10T14:00:00Z")).await;
    assert_eq!((report.open_windows, report.reminders, report.skipped), (2, 1, 8), "{report:?}");
    let found = decisions(&t).await;
    assert_eq!(found.len(), expected.len(), "no decision for the day after tomorrow yet");
    assert!(!found.contains_key(&later));
    for (id, reason_expected) in &expected {
        let m = &found[id];
        assert_eq!(reason(m), *reason_expected, "appointment {id}");
        let status = if reason_expected.is_some() { MessageStatus::Skipped } else { MessageStatus::Queued };
        assert!(m.status == status || reason_expected.is_none(), "{id}: {:?}", m.status);
    }
    let reminder = &found[&expected[0].0];
    assert_eq!(
        reminder.body.as_str(),
        "Hi Ana, Max has a Check-up on Thursday 11 June at 9:30 AM at Uptown Vet. Reply C to confirm."
    );
    assert_eq!(reminder.to.as_ref().map(E164::as_str), Some("+14155550101"));

    // Ticks later in the window, or repeated, decide nothing again; the reminder is delivered.
    let again = tick(&t, at("2026-06-10T14:01:00Z")).await;
    assert_eq!((again.reminders, again.skipped), (0, 0));
    t.wait_for_status(&reminder.id.to_string(), "delivered").await;
    assert_eq!(decisions(&t).await.len(), expected.len());

    // The check explains each one.
    let (status, check) =
        call(&t, reqwest::Method::GET, &format!("/v1/appointments/{}/reminder-check", expected[7].0), None).await;
    assert_eq!(status, 200, "{check}");
    let failed: Vec<&str> = check["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["passed"] == false)
        .filter_map(|c| c["check"].as_str())
        .collect();
    assert_eq!(failed, ["opt_out"]);
    assert_eq!(check["reminder"]["status"], "skipped", "{check}");
    assert_eq!(check["reminder"]["error"]["reason"], "opted_out");
    let (_, ok_check) =
        call(&t, reqwest::Method::GET, &format!("/v1/appointments/{}/reminder-check", expected[0].0), None).await;
    assert_eq!(ok_check["all_passed"], true, "{ok_check}");
    assert_eq!(ok_check["reminder"]["status"], "delivered", "{ok_check}");
    let outcome = |name: &str| {
        let checks = ok_check["checks"].as_array().expect("checks");
        checks.iter().find(|c| c["check"] == name).map(|c| c["outcome"].clone()).unwrap_or_default()
    };
    assert_eq!(outcome("connection_healthy"), "passed", "{ok_check}");
    assert_eq!(outcome("inbound_texts_arriving"), "warning", "texts went out, no patient ever texted: {ok_check}");
}

#[tokio::test]
async fn bookings_made_while_the_window_is_open_are_included_and_none_after_it_closes() {
    let t = stack(0).await;
    let s = setup(&t).await;
    let c = contact(&t, "Mo", mobile("415 555 0701"), None).await;
    tick(&t, at("2026-06-10T14:00:00Z")).await;
    t.stack.services.clock.set(at("2026-06-10T14:20:00Z"));
    let during = appointment(&t, &c, &s.business, &s.with_template, "2026-06-11T12:00:00-04:00", "booked").await;
    assert_eq!(tick(&t, at("2026-06-10T14:21:00Z")).await.reminders, 1, "booked during the window");
    t.stack.services.clock.set(at("2026-06-10T15:10:00Z"));
    let after = appointment(&t, &c, &s.business, &s.with_template, "2026-06-11T13:00:00-04:00", "booked").await;
    let closed = tick(&t, at("2026-06-10T15:11:00Z")).await;
    assert_eq!((closed.open_windows, closed.reminders), (0, 0), "the window has closed");
    let found = decisions(&t).await;
    assert!(found.contains_key(&during) && !found.contains_key(&after));
}

#[tokio::test]
async fn concurrent_ticks_never_duplicate_a_reminder() {
    let t = stack(1).await;
    let s = setup(&t).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let c = contact(&t, &format!("P{i}"), mobile(&format!("415 555 02{i:02}")), None).await;
        ids.push(appointment(&t, &c, &s.business, &s.with_template, "2026-06-11T15:00:00-04:00", "booked").await);
    }
    let now = at("2026-06-10T14:00:00Z");
    t.stack.services.clock.set(now);
    let (a, b, c) = tokio::join!(
        reminder_run::tick(&t.stack.services, now),
        reminder_run::tick(&t.stack.services, now),
        reminder_run::tick(&t.stack.services, now),
    );
    let total: usize = [a, b, c].into_iter().map(|r| r.expect("tick").reminders).sum();
    assert!(total >= 5, "every appointment decided at least once across the ticks");
    let found = decisions(&t).await;
    assert_eq!(found.len(), 5);
    for m in found.values() {
        t.wait_for_status(&m.id.to_string(), "delivered").await;
    }
    let creates = t.stack.simulator.requests().iter().filter(|r| r.method == "POST").count();
    assert_eq!(creates, 5, "one Twilio request per appointment");
}

async fn send_now(t: &TestStack, id: MessageId) {
    sending::send(&t.stack.services, &SendJob::named(id)).await.expect("send runs");
}

#[tokio::test]
async fn an_appointment_cancelled_after_its_reminder_was_queued_is_skipped() {
    let t = stack(0).await;
    let s = setup(&t).await;
    let c = contact(&t, "Gus", mobile("415 555 0301"), None).await;
    let start = "2026-06-11T10:00:00-04:00";
    let id = appointment(&t, &c, &s.business, &s.with_template, start, "booked").await;
    tick(&t, at("2026-06-10T14:00:00Z")).await;
    let queued = decisions(&t).await[&id].clone();
    assert_eq!(queued.status, MessageStatus::Queued);

    let body = json!({"contact_id": c, "business_id": s.business, "type_id": s.with_template, "patient_names": ["Max"], "start": start, "status": "cancelled"});
    let (status, _) = call(&t, reqwest::Method::PUT, &format!("/v1/appointments/{id}"), Some(body)).await;
    assert_eq!(status, 200);
    send_now(&t, queued.id).await;
    let after = t.stack.services.messages.get(&queued.id).await.expect("read").expect("exists");
    assert_eq!((after.status, reason(&after)), (MessageStatus::Skipped, Some(Reason::AppointmentChanged)));
    assert!(t.stack.simulator.requests().is_empty(), "nothing reached Twilio");
}

#[tokio::test]
async fn a_moved_appointment_gets_a_new_decision_in_its_new_window() {
    let t = stack(0).await;
    let s = setup(&t).await;
    let c = contact(&t, "Hal", mobile("415 555 0401"), None).await;
    let id = appointment(&t, &c, &s.business, &s.with_template, "2026-06-11T10:00:00-04:00", "booked").await;
    tick(&t, at("2026-06-10T14:00:00Z")).await;
    let first = decisions(&t).await[&id].clone();

    let moved = json!({"contact_id": c, "business_id": s.business, "type_id": s.with_template, "patient_names": ["Max"], "start": "2026-06-12T10:00:00-04:00"});
    assert_eq!(call(&t, reqwest::Method::PUT, &format!("/v1/appointments/{id}"), Some(moved)).await.0, 200);
    send_now(&t, first.id).await;
    let old = t.stack.services.messages.get(&first.id).await.expect("read").expect("exists");
    assert_eq!(reason(&old), Some(Reason::AppointmentChanged));

    tick(&t, at("2026-06-10T14:30:00Z")).await;
    tick(&t, at("2026-06-11T14:00:00Z")).await;
    let report = tick(&t, at("2026-06-11T14:00:00Z")).await;
    assert_eq!(report.reminders, 0, "decided once");
    let all = all_messages(&t).await;
    assert_eq!(all.len(), 2, "the old reminder and one for the new time");
}

#[tokio::test]
async fn reminders_that_failed_for_credit_are_retried_on_the_hour_after_a_top_up() {
    let t = stack(0).await;
    let s = setup(&t).await;
    let counters = &t.stack.services.counters;
    let clinic = ClinicId::new("demo");
    let balance = counters.credit_balance(&clinic).await.expect("balance");
    assert!(counters.reserve_credits(&clinic, balance).await.expect("reserve").is_ok(), "spend everything");

    let events = bus_listener(&t).await;

    let paid = contact(&t, "Ivy", mobile("415 555 0501"), None).await;
    let unpaid = contact(&t, "Jo", mobile("415 555 0502"), None).await;
    let topped_up = appointment(&t, &paid, &s.business, &s.with_template, "2026-06-11T16:00:00-04:00", "booked").await;
    let never = appointment(&t, &unpaid, &s.business, &s.with_template, "2026-06-11T16:30:00-04:00", "booked").await;
    tick(&t, at("2026-06-10T14:00:00Z")).await;
    let found = decisions(&t).await;
    let (a, b) = (found[&topped_up].id, found[&never].id);
    let published = received_events(&t, &events).await;
    assert_eq!(published.len(), 1, "CreditsLow once: {published:?}");
    assert_eq!(published[0]["detail-type"], "CreditsLow");
    assert_eq!(published[0]["detail"]["balance"], 0);
    assert_eq!(published[0]["detail"]["needed_for_reminders"], 2);
    send_now(&t, a).await;
    send_now(&t, b).await;
    for id in [a, b] {
        let m = t.stack.services.messages.get(&id).await.expect("read").expect("exists");
        assert_eq!((m.status, reason(&m)), (MessageStatus::Failed, Some(Reason::InsufficientCredits)));
        assert_eq!(m.credit_retry_at, Some(at("2026-06-10T15:00:00Z")), "11:00 local");
    }

    // Not on the hour: nothing. On the hour with no credit: tried and failed again, next at 12:00.
    assert_eq!(tick(&t, at("2026-06-10T14:30:00Z")).await.credit_retries, 0);
    assert_eq!(tick(&t, at("2026-06-10T15:00:00Z")).await.credit_retries, 2);
    send_now(&t, a).await;
    send_now(&t, b).await;
    let m = t.stack.services.messages.get(&a).await.expect("read").expect("exists");
    assert_eq!(m.credit_retry_at, Some(at("2026-06-10T16:00:00Z")));

    // A top-up (one credit: only the first retried reminder can go) and the next on-the-hour tick.
    let (status, _) = call(&t, reqwest::Method::POST, "/v1/clinic/credits", Some(json!({"credits": 1}))).await;
    assert_eq!(status, 200);
    assert_eq!(tick(&t, at("2026-06-10T16:00:00Z")).await.credit_retries, 2);
    send_now(&t, a).await;
    send_now(&t, b).await;
    let sent = t.stack.services.messages.get(&a).await.expect("read").expect("exists");
    assert!(
        matches!(sent.status, MessageStatus::Submitted | MessageStatus::Sent | MessageStatus::Delivered),
        "{:?}",
        sent.status
    );

    // The unpaid one keeps failing until the last retry, five hours after the window opened (15:00).
    for hour in ["17", "18", "19"] {
        assert_eq!(tick(&t, at(&format!("2026-06-10T{hour}:00:00Z"))).await.credit_retries, 1, "{hour}:00Z");
        send_now(&t, b).await;
    }
    let last = t.stack.services.messages.get(&b).await.expect("read").expect("exists");
    assert_eq!((last.status, last.credit_retry_at), (MessageStatus::Failed, None), "no retry after 15:00 local");
    assert_eq!(tick(&t, at("2026-06-10T20:00:00Z")).await.credit_retries, 0);
    assert_eq!(counters.credit_balance(&clinic).await.expect("balance"), 0, "refunds never create credit");
}

#[tokio::test]
async fn twenty_concurrent_reservations_against_ten_credits_exactly_ten_succeed() {
    let t = stack(0).await;
    let counters = t.stack.services.counters.clone();
    let clinic = ClinicId::new("demo");
    let balance = counters.credit_balance(&clinic).await.expect("balance");
    counters.reserve_credits(&clinic, balance - 10).await.expect("reserve").expect("enough");
    let attempts = (0..20).map(|_| {
        let (counters, clinic) = (counters.clone(), clinic.clone());
        tokio::spawn(async move { counters.reserve_credits(&clinic, 1).await.expect("DynamoDB answers").is_ok() })
    });
    let mut granted = 0;
    for attempt in attempts {
        granted += usize::from(attempt.await.expect("task"));
    }
    assert_eq!(granted, 10);
    assert_eq!(counters.credit_balance(&clinic).await.expect("balance"), 0);
}

#[tokio::test]
async fn texts_awaiting_approval_expire_after_thirty_days() {
    let t = stack(0).await;
    let s = setup(&t).await;
    let (_, mut clinic) = call(&t, reqwest::Method::GET, "/v1/clinic", None).await;
    clinic["send_mode"] = json!("approval_required");
    let settings = json!({
        "name": clinic["name"], "default_country": "US", "time_zone": "America/New_York",
        "default_connection_id": clinic["default_connection_id"], "two_way_texting": true, "send_mode": "approval_required"
    });
    assert_eq!(call(&t, reqwest::Method::PUT, "/v1/clinic", Some(settings)).await.0, 200);
    let c = contact(&t, "Kim", mobile("415 555 0601"), None).await;
    let id = appointment(&t, &c, &s.business, &s.with_template, "2026-06-11T10:00:00-04:00", "booked").await;
    tick(&t, at("2026-06-10T14:00:00Z")).await;
    let waiting = decisions(&t).await[&id].clone();
    assert_eq!(waiting.status, MessageStatus::AwaitingApproval);
    assert_eq!(tick(&t, at("2026-07-10T13:59:00Z")).await.expired, 0);
    assert_eq!(tick(&t, at("2026-07-10T14:00:00Z") + TimeDelta::minutes(1)).await.expired, 1);
    let expired = t.stack.services.messages.get(&waiting.id).await.expect("read").expect("exists");
    assert_eq!(expired.status, MessageStatus::Expired);
}

/// A queue that receives every event on the bus (moto delivers rule targets).
async fn bus_listener(t: &TestStack) -> String {
    let sqs = aws_sdk_sqs::Client::new(&t.stack.aws);
    let url = sqs
        .create_queue()
        .queue_name(format!("{}-events", t.stack.resources.reports_bucket))
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("attributes")
        .attributes
        .and_then(|mut a| a.remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .expect("arn");
    let events = aws_sdk_eventbridge::Client::new(&t.stack.aws);
    let bus = &t.stack.resources.event_bus;
    events
        .put_rule()
        .name("all-clinic-sms-events")
        .event_bus_name(bus)
        .event_pattern(r#"{"source": ["clinic-sms"]}"#)
        .send()
        .await
        .expect("rule");
    let target = aws_sdk_eventbridge::types::Target::builder().id("listener").arn(arn).build().expect("target");
    events
        .put_targets()
        .rule("all-clinic-sms-events")
        .event_bus_name(bus)
        .targets(target)
        .send()
        .await
        .expect("target");
    url
}

async fn received_events(t: &TestStack, url: &str) -> Vec<Value> {
    let out = aws_sdk_sqs::Client::new(&t.stack.aws)
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("receive");
    out.messages
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.body.as_deref())
        .filter_map(|b| serde_json::from_str(b).ok())
        .collect()
}

#[tokio::test]
async fn quiet_hours_hold_reminders_until_they_end_but_never_conversation_texts() {
    let t = stack(0).await;
    let s = setup(&t).await;
    let mut clinic = t.stack.services.clinics.clinic(&ClinicId::new("demo")).await.expect("read").expect("exists");
    clinic.quiet_hours = serde_json::from_value(json!({"start": "09:30", "end": "12:00"})).ok();
    assert!(clinic.quiet_hours.is_some());
    t.stack.services.clinics.put_clinic(&clinic).await.expect("saved");
    let c = contact(&t, "Ned", mobile("415 555 0801"), None).await;
    let id = appointment(&t, &c, &s.business, &s.with_template, "2026-06-11T10:00:00-04:00", "booked").await;
    tick(&t, at("2026-06-10T14:00:00Z")).await;
    let reminder = decisions(&t).await[&id].id;
    send_now(&t, reminder).await;
    let held = t.stack.services.messages.get(&reminder).await.expect("read").expect("exists");
    assert_eq!(held.status, MessageStatus::Deferred);
    assert_eq!(held.deferred_until, Some(at("2026-06-10T16:00:00Z")), "noon in New York");
    assert!(held.history.last().and_then(|h| h.note.as_deref()).is_some_and(|n| n.contains("quiet hours")));

    // A conversation text at the same moment goes straight away.
    let manual = t.send_text("+14155550802").await;
    send_now(&t, manual.parse().expect("id")).await;
    let sent = t.stack.services.messages.get(&manual.parse().expect("id")).await.expect("read").expect("exists");
    assert_ne!(sent.status, MessageStatus::Deferred);
    assert_ne!(sent.status, MessageStatus::Queued);

    // Before the end it stays held; at the end it goes.
    t.stack.services.clock.set(at("2026-06-10T15:59:00Z"));
    send_now(&t, reminder).await;
    assert_eq!(
        t.stack.services.messages.get(&reminder).await.expect("read").expect("exists").status,
        MessageStatus::Deferred
    );
    t.stack.services.clock.set(at("2026-06-10T16:00:00Z"));
    send_now(&t, reminder).await;
    let gone = t.stack.services.messages.get(&reminder).await.expect("read").expect("exists");
    assert!(
        matches!(gone.status, MessageStatus::Submitted | MessageStatus::Sent | MessageStatus::Delivered),
        "{:?}",
        gone.status
    );
    let steps: Vec<_> = gone.history.iter().filter_map(|h| h.status).collect();
    assert!(steps.windows(2).any(|w| w == [MessageStatus::Deferred, MessageStatus::Queued]), "{steps:?}");
}

#[tokio::test]
async fn a_tick_that_stopped_after_writing_a_decision_is_completed_by_the_next_without_a_second_text() {
    let t = stack(0).await;
    let s = setup(&t).await;
    let c = contact(&t, "Ola", mobile("415 555 0901"), None).await;
    let id = appointment(&t, &c, &s.business, &s.with_template, "2026-06-11T10:00:00-04:00", "booked").await;
    tick(&t, at("2026-06-10T14:00:00Z")).await;
    let first = decisions(&t).await[&id].clone();

    // As if that tick had died after writing the reminder but before marking the appointment.
    let demo = ClinicId::new("demo");
    let mut undecided = t.stack.services.appointments.get(&demo, &id).await.expect("read").expect("exists");
    undecided.decided_start = None;
    undecided.reminder_message_id = None;
    t.stack.services.appointments.put(&undecided).await.expect("saved");

    let resumed = tick(&t, at("2026-06-10T14:05:00Z")).await;
    assert_eq!(resumed.reminders, 1, "picked up again");
    let found = decisions(&t).await;
    assert_eq!(found.len(), 1, "still one decision");
    assert_eq!(found[&id].id, first.id);
    let marked = t.stack.services.appointments.get(&demo, &id).await.expect("read").expect("exists");
    assert!(!marked.needs_decision());
    // Its job may now be queued twice; the text still goes to Twilio once.
    send_now(&t, first.id).await;
    send_now(&t, first.id).await;
    let creates = t.stack.simulator.requests().iter().filter(|r| r.method == "POST").count();
    assert_eq!(creates, 1);
}
