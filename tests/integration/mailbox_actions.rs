//! The mailbox's actions on the live local stack: sending to named recipients, approval (Send
//! Now), scheduling (edit, cancel, release by the scheduler) and resending failed texts.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use shared::clock::Clock;
use shared::scheduled_texts;
use twilio_sim::Outcome as SimOutcome;

use crate::support::TestStack;

async fn create(t: &TestStack, path: &str, body: Value) -> String {
    let (status, created) = t.call(t.key(), Method::POST, path, Some(&body)).await;
    assert_eq!(status, 201, "POST {path} → {created}");
    created["id"].as_str().expect("an id").to_owned()
}

async fn contact(t: &TestStack, name: &str, mobile: Option<&str>, groups: &[&str]) -> String {
    let phones = mobile.map_or(json!([]), |n| json!([{"kind": "mobile", "number": n}]));
    create(t, "/v1/contacts", json!({"first_name": name, "phones": phones, "group_ids": groups})).await
}

async fn require_approval(t: &TestStack) {
    let (_, clinic) = t.call(t.key(), Method::GET, "/v1/clinic", None).await;
    let settings = json!({
        "name": clinic["name"], "default_country": "US", "time_zone": "America/New_York",
        "default_connection_id": clinic["default_connection_id"], "two_way_texting": true, "send_mode": "approval_required"
    });
    let (status, body) = t.call(t.key(), Method::PUT, "/v1/clinic", Some(&settings)).await;
    assert_eq!(status, 200, "{body}");
}

fn outcomes_by_recipient(answer: &Value) -> Vec<(String, String, Option<String>)> {
    answer["outcomes"]
        .as_array()
        .expect("outcomes")
        .iter()
        .map(|o| {
            (
                o["recipient"].as_str().unwrap_or_default().to_owned(),
                o["outcome"].as_str().unwrap_or_default().to_owned(),
                o["reason"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_send_to_recipients_texts_each_number_once_and_says_what_became_of_each() {
    let t = TestStack::start().await;
    let dogs = create(&t, "/v1/groups", json!({"name": "Dog owners"})).await;
    let ana = contact(&t, "Ana", Some("+14155550140"), &[&dogs]).await;
    let ben = contact(&t, "Ben", Some("+14155550141"), &[&dogs]).await;
    let no_mobile = contact(&t, "Cy", None, &[]).await;
    let bad_mobile = contact(&t, "Di", Some("12"), &[]).await;

    let recipients = json!([ana, dogs, "(415) 555-0140", "+14155550142", no_mobile, bad_mobile, "nobody-here", "12"]);
    let (status, answer, _) = t.post_message(&json!({"recipients": recipients, "body": "Clinic closed Friday"})).await;
    assert_eq!(status, 202, "{answer}");
    let outcomes = outcomes_by_recipient(&answer);
    let expected: Vec<(String, String, Option<String>)> = [
        (ana.as_str(), "queued", None),
        (dogs.as_str(), "queued", None), // Ben
        ("+14155550142", "queued", None),
        (no_mobile.as_str(), "refused", Some("no_mobile_number")),
        (bad_mobile.as_str(), "refused", Some("invalid_number")),
        ("nobody-here", "refused", Some("unknown_recipient")),
        ("12", "refused", Some("invalid_number")),
        (dogs.as_str(), "duplicate", None),    // Ana again, through the group
        ("(415) 555-0140", "duplicate", None), // Ana's number typed in
    ]
    .into_iter()
    .map(|(r, o, why)| (r.to_owned(), o.to_owned(), why.map(str::to_owned)))
    .collect();
    assert_eq!(outcomes, expected, "{answer:#}");
    assert_eq!((answer["accepted"].as_u64(), answer["refused"].as_u64()), (Some(3), Some(4)));
    let ben_outcome = &answer["outcomes"][1];
    assert_eq!(ben_outcome["contact_id"], json!(ben));

    // Each unique number got exactly one text, and it arrived.
    for outcome in answer["outcomes"].as_array().expect("outcomes").iter().take(3) {
        let id = outcome["id"].as_str().expect("a message id");
        let shown = t.wait_for_status(id, "delivered").await;
        assert_eq!(shown["created_by"], json!("admin"), "{shown}");
    }
    let mut per_number: HashMap<String, usize> = HashMap::new();
    for m in t.stack.simulator.messages() {
        *per_number.entry(m.to).or_default() += 1;
    }
    assert_eq!(per_number.len(), 3, "{per_number:?}");
    assert!(per_number.values().all(|n| *n == 1), "{per_number:?}");
}

#[tokio::test]
async fn a_send_nobody_can_receive_is_refused_with_the_reason_for_each() {
    let t = TestStack::start().await;
    let no_mobile = contact(&t, "Cy", None, &[]).await;
    let (status, problem, _) = t.post_message(&json!({"recipients": [no_mobile, "nobody"], "body": "Hi"})).await;
    assert_eq!((status, problem["field"].as_str()), (422, Some("recipients")), "{problem}");
    let reasons: Vec<_> = outcomes_by_recipient(&problem).into_iter().map(|(_, _, why)| why).collect();
    assert_eq!(reasons, [Some("no_mobile_number".to_owned()), Some("unknown_recipient".to_owned())]);

    let cases = [
        (json!({"recipients": [], "body": "Hi"}), "recipients"),
        (json!({"recipients": "+14155550140", "body": "Hi"}), "recipients"),
        (
            json!({"recipients": (0..101).map(|i| format!("+1415555{i:04}")).collect::<Vec<_>>(), "body": "Hi"}),
            "recipients",
        ),
        (json!({"recipients": ["+14155550140"], "body": ""}), "body"),
        (json!({"recipients": ["+14155550140"], "body": "Hi", "connection": "nope"}), "connection"),
        (json!({"recipients": ["+14155550140"], "body": "Hi", "send_at": "2020-01-01T00:00:00Z"}), "send_at"),
        (json!({"recipients": ["+14155550140"], "body": "Hi", "send_at": "2026-06-11T09:30:00"}), "send_at"),
    ];
    for (request, field) in cases {
        let (status, problem, _) = t.post_message(&request).await;
        assert_eq!((status, problem["field"].as_str()), (422, Some(field)), "{request} → {problem}");
    }
    assert_eq!(t.message_count().await, 0, "nothing was created");
}

#[tokio::test]
async fn send_now_pressed_by_two_people_at_once_sends_each_text_once() {
    let t = TestStack::start().await;
    require_approval(&t).await;
    let numbers: Vec<String> = (0..5).map(|i| format!("+1415555016{i}")).collect();
    let (status, answer, _) = t.post_message(&json!({"recipients": numbers, "body": "Your results are in"})).await;
    assert_eq!(status, 202, "{answer}");
    let ids: Vec<String> = answer["outcomes"]
        .as_array()
        .expect("outcomes")
        .iter()
        .map(|o| o["id"].as_str().expect("id").to_owned())
        .collect();
    assert!(answer["outcomes"].as_array().expect("outcomes").iter().all(|o| o["outcome"] == "awaiting_approval"));
    assert!(t.stack.simulator.messages().is_empty(), "nothing goes before approval");

    let approve = json!({"ids": ids});
    let (first, second) = tokio::join!(
        t.call(t.key(), Method::POST, "/v1/messages/approve", Some(&approve)),
        t.call(t.key(), Method::POST, "/v1/messages/approve", Some(&approve)),
    );
    let approved_by = |answer: &Value| {
        answer["outcomes"].as_array().map_or(0, |o| o.iter().filter(|o| o["outcome"] == "approved").count())
    };
    assert_eq!(approved_by(&first.1) + approved_by(&second.1), 5, "{first:?} {second:?}");
    for id in &ids {
        let shown = t.wait_for_status(id, "delivered").await;
        assert_eq!(shown["approved_by"], json!("admin"), "{shown}");
    }
    assert_eq!(t.stack.simulator.messages().len(), 5, "each text went to Twilio once");

    // Pressing it again does nothing; unknown and another clinic's ids are not found.
    let (status, again) = t.call(t.key(), Method::POST, "/v1/messages/approve", Some(&approve)).await;
    assert_eq!(status, 409, "{again}");
    let other = t.other_clinic("other", devstack::stack::OTHER_SENDER).await;
    let (status, _) = t.call(&other.api_key, Method::POST, "/v1/messages/approve", Some(&approve)).await;
    assert_eq!(status, 404);
    let (status, _) = t.call(t.key(), Method::POST, "/v1/messages/approve", Some(&json!({"ids": ["nope"]}))).await;
    assert_eq!(status, 404);
    let (status, empty) = t.call(t.key(), Method::POST, "/v1/messages/approve", Some(&json!({"ids": []}))).await;
    assert_eq!((status, empty["field"].as_str()), (422, Some("ids")), "{empty}");
    let many: Vec<String> = (0..101).map(|i| i.to_string()).collect();
    let (status, refused) = t.call(t.key(), Method::POST, "/v1/messages/approve", Some(&json!({"ids": many}))).await;
    assert_eq!((status, refused["field"].as_str()), (422, Some("ids")), "{refused}");
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).expect("a valid time").to_utc()
}

#[tokio::test]
async fn a_scheduled_text_waits_can_be_edited_or_cancelled_and_goes_at_its_minute() {
    let t = TestStack::start_custom(|o| o.clock = Clock::manual(at("2026-06-10T13:00:00Z"))).await;
    let schedule = |to: &str, send_at: &str| json!({"recipients": [to], "body": "Pick up Max's medicine today", "send_at": send_at});
    let (status, answer, _) = t.post_message(&schedule("+14155550170", "2026-06-10T10:30:00-04:00")).await;
    assert_eq!((status, answer["outcomes"][0]["outcome"].as_str()), (202, Some("scheduled")), "{answer}");
    let going = answer["outcomes"][0]["id"].as_str().expect("id").to_owned();
    let (_, answer, _) = t.post_message(&schedule("+14155550171", "2026-06-10T11:00:00-04:00")).await;
    let cancelled = answer["outcomes"][0]["id"].as_str().expect("id").to_owned();

    // Times too close, in the past or beyond 35 days are refused.
    for when in ["2026-06-10T09:00:30-04:00", "2026-06-09T10:30:00-04:00", "2026-07-16T10:30:00-04:00"] {
        let (status, problem, _) = t.post_message(&schedule("+14155550172", when)).await;
        assert_eq!((status, problem["field"].as_str()), (422, Some("send_at")), "{when}: {problem}");
    }

    // Edit the time and words, cancel the other.
    let edit = json!({"send_at": "2026-06-10T10:45:00-04:00", "body": "Max's medicine is ready"});
    let (status, edited) = t.call(t.key(), Method::PATCH, &format!("/v1/messages/{going}"), Some(&edit)).await;
    assert_eq!((status, edited["status"].as_str()), (200, Some("scheduled")), "{edited}");
    let (status, shown) = t.call(t.key(), Method::POST, &format!("/v1/messages/{cancelled}/cancel"), None).await;
    assert_eq!((status, shown["status"].as_str()), (200, Some("cancelled")), "{shown}");

    // The scheduler releases it at its minute, not before.
    let services = &t.stack.services;
    let tick = |now: DateTime<Utc>| async move {
        services.clock.set(now);
        scheduled_texts::release_due(services, now).await.expect("release runs")
    };
    assert_eq!(tick(at("2026-06-10T14:44:00Z")).await, 0);
    assert_eq!(tick(at("2026-06-10T14:45:00Z")).await, 1);
    assert_eq!(tick(at("2026-06-10T15:00:00Z")).await, 0, "released once; the cancelled one never");
    let shown = t.wait_for_status(&going, "delivered").await;
    assert_eq!(shown["body"], json!("Max's medicine is ready"));
    let sent: Vec<_> = t.stack.simulator.messages().into_iter().map(|m| m.to).collect();
    assert_eq!(sent, ["+14155550170"]);

    // Once queued, it can no longer be changed or cancelled.
    let late_edit = json!({"body": "Too late"});
    let (status, _) = t.call(t.key(), Method::PATCH, &format!("/v1/messages/{going}"), Some(&late_edit)).await;
    assert_eq!(status, 409);
    let (status, _) = t.call(t.key(), Method::POST, &format!("/v1/messages/{going}/cancel"), None).await;
    assert_eq!(status, 409);
    let (status, _) = t.call(t.key(), Method::POST, "/v1/messages/01J00000000000000000000000/cancel", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_failed_text_is_resent_to_the_contacts_corrected_number_after_a_confirmation() {
    let t = TestStack::start().await;
    t.stack.simulator.set_override("+14155550180", SimOutcome::Undelivered(30005));
    let kim = contact(&t, "Kim", Some("+14155550180"), &[]).await;
    let (_, answer, _) = t.post_message(&json!({"recipients": [kim], "body": "Your dog's vaccine is due"})).await;
    let id = answer["outcomes"][0]["id"].as_str().expect("id").to_owned();
    t.wait_for_status(&id, "undelivered").await;
    let delivered = t.send_text("+14155550181").await;
    t.wait_for_status(&delivered, "delivered").await;

    // The first call only says what would happen.
    let ids = json!({"ids": [id, delivered, "nope"]});
    let (status, preview) = t.call(t.key(), Method::POST, "/v1/messages/resend", Some(&ids)).await;
    assert_eq!((status, preview["would_resend"].as_u64()), (200, Some(1)), "{preview}");
    let outcomes: Vec<_> =
        preview["outcomes"].as_array().expect("outcomes").iter().map(|o| o["outcome"].clone()).collect();
    assert_eq!(outcomes, [json!("would_resend"), json!("not_applicable"), json!("not_found")]);
    assert_eq!(t.get_message(&id).await.1["status"], "undelivered", "nothing moved yet");

    // Fix the number, then resend: the new attempt goes to the new number.
    let (status, _) = t
        .call(
            t.key(),
            Method::PUT,
            &format!("/v1/contacts/{kim}"),
            Some(&json!({"first_name": "Kim", "phones": [{"kind": "mobile", "number": "+14155550182"}]})),
        )
        .await;
    assert_eq!(status, 200);
    let confirm = json!({"ids": [id], "confirm": true});
    let (first, second) = tokio::join!(
        t.call(t.key(), Method::POST, "/v1/messages/resend", Some(&confirm)),
        t.call(t.key(), Method::POST, "/v1/messages/resend", Some(&confirm)),
    );
    let resent = [&first.1, &second.1].iter().filter(|a| a["outcomes"][0]["outcome"] == "resent").count();
    assert_eq!(resent, 1, "{first:?} {second:?}");
    let shown = t.wait_for_status(&id, "delivered").await;
    assert_eq!((shown["to"].as_str(), shown["attempt"].as_u64()), (Some("+14155550182"), Some(2)), "{shown}");
    let to_new: Vec<_> = t.stack.simulator.messages().into_iter().filter(|m| m.to == "+14155550182").collect();
    assert_eq!(to_new.len(), 1);

    // A contact with no usable number cannot be resent to, and says why.
    t.stack.simulator.set_override("+14155550183", SimOutcome::Failed(30006));
    let lee = contact(&t, "Lee", Some("+14155550183"), &[]).await;
    let (_, answer, _) = t.post_message(&json!({"recipients": [lee], "body": "Hi"})).await;
    let failed = answer["outcomes"][0]["id"].as_str().expect("id").to_owned();
    t.wait_for_status(&failed, "failed").await;
    t.call(t.key(), Method::PUT, &format!("/v1/contacts/{lee}"), Some(&json!({"first_name": "Lee", "phones": []})))
        .await;
    let (status, problem) = t.call(t.key(), Method::POST, "/v1/messages/resend", Some(&json!({"ids": [failed]}))).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["outcomes"][0]["outcome"], "cannot_resend");
    assert!(problem["outcomes"][0]["detail"].as_str().is_some_and(|d| d.contains("no mobile number")), "{problem}");
}

/// The id of the received text with `sid` (inbound texts are listed through the clinic index).
async fn received_id(t: &TestStack, sid: &str) -> shared::message::Message {
    t.clinic_messages("demo").await.into_iter().find(|m| m.twilio_sid.as_deref() == Some(sid)).expect("stored")
}

#[tokio::test]
async fn replies_go_once_per_sender_into_their_conversations_even_when_approval_is_required() {
    let t = TestStack::start().await;
    require_approval(&t).await;
    let ana = contact(&t, "Ana", Some("+14155550190"), &[]).await;
    let sender = devstack::stack::DEMO_SENDER;
    for (sid, from, body) in [
        ("SM0000000000000000000000000000a001", "+14155550190", "Is Max ready?"),
        ("SM0000000000000000000000000000a002", "+14155550190", "Also, can I pay by card?"),
        ("SM0000000000000000000000000000a003", "+14155550191", "Running late"),
    ] {
        let (status, answer, _) = t.inbound(sid, from, sender, body, &[]).await;
        assert_eq!(status, 200, "{answer}");
    }
    let first = received_id(&t, "SM0000000000000000000000000000a001").await;
    let second = received_id(&t, "SM0000000000000000000000000000a002").await;
    let third = received_id(&t, "SM0000000000000000000000000000a003").await;
    let mine = t.send_text("+14155550192").await;

    let ids = json!([first.id.to_string(), second.id.to_string(), third.id.to_string(), mine, "nope"]);
    let request = json!({"ids": ids, "body": "Yes, see you soon"});
    let (status, answer) = t.call(t.key(), Method::POST, "/v1/messages/reply", Some(&request)).await;
    assert_eq!((status, answer["replied"].as_u64()), (202, Some(2)), "{answer}");
    let kinds: Vec<_> = answer["outcomes"].as_array().expect("outcomes").iter().map(|o| o["outcome"].clone()).collect();
    assert_eq!(
        kinds,
        [json!("replied"), json!("same_sender"), json!("replied"), json!("not_received"), json!("not_found")]
    );
    assert_eq!(answer["outcomes"][0]["reply_id"], answer["outcomes"][1]["reply_id"]);

    let to_ana = answer["outcomes"][0]["reply_id"].as_str().expect("a reply").to_owned();
    let shown = t.wait_for_status(&to_ana, "delivered").await;
    assert_eq!(shown["contact_id"], json!(ana));
    assert_eq!(shown["conversation_id"].as_str(), first.conversation_id.as_deref(), "joins Ana's conversation");
    let to_stranger = answer["outcomes"][2]["reply_id"].as_str().expect("a reply").to_owned();
    let shown = t.wait_for_status(&to_stranger, "delivered").await;
    assert_eq!(shown["conversation_id"].as_str(), third.conversation_id.as_deref());

    let (status, _) = t.call(t.key(), Method::POST, "/v1/messages/reply", Some(&json!({"ids": [], "body": "x"}))).await;
    assert_eq!(status, 422);
    let (status, _) =
        t.call(t.key(), Method::POST, "/v1/messages/reply", Some(&json!({"ids": ["nope"], "body": "x"}))).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_text_is_forwarded_one_at_a_time_as_is_or_edited_and_a_test_text_goes_at_once() {
    let t = TestStack::start().await;
    let sender = devstack::stack::DEMO_SENDER;
    t.inbound("SM0000000000000000000000000000b001", "+14155550193", sender, "Lost dog found on Elm St", &[]).await;
    let received = received_id(&t, "SM0000000000000000000000000000b001").await;
    let vet = contact(&t, "Dr Vega", Some("+14155550194"), &[]).await;
    let nurse = contact(&t, "Nurse Lo", Some("+14155550195"), &[]).await;

    let path = format!("/v1/messages/{}/forward", received.id);
    let (status, answer) = t.call(t.key(), Method::POST, &path, Some(&json!({"recipients": [vet]}))).await;
    assert_eq!((status, answer["accepted"].as_u64()), (202, Some(1)), "{answer}");
    let forwarded = answer["outcomes"][0]["id"].as_str().expect("id").to_owned();
    assert_eq!(t.wait_for_status(&forwarded, "delivered").await["body"], "Lost dog found on Elm St");
    let edited = json!({"recipients": [vet, nurse], "body": "FYI: lost dog found on Elm St"});
    let (status, answer) = t.call(t.key(), Method::POST, &path, Some(&edited)).await;
    assert_eq!((status, answer["accepted"].as_u64()), (202, Some(2)), "{answer}");
    let to_nurse = answer["outcomes"][1]["id"].as_str().expect("id").to_owned();
    assert_eq!(t.wait_for_status(&to_nurse, "delivered").await["body"], "FYI: lost dog found on Elm St");

    let several = json!({"ids": [received.id.to_string(), forwarded], "recipients": [vet]});
    let (status, refused) = t.call(t.key(), Method::POST, &path, Some(&several)).await;
    assert_eq!((status, refused["field"].as_str()), (422, Some("ids")), "{refused}");
    let (status, _) =
        t.call(t.key(), Method::POST, "/v1/messages/nope/forward", Some(&json!({"recipients": [vet]}))).await;
    assert_eq!(status, 404);

    // A test text goes now to the contact's number, approval or not.
    require_approval(&t).await;
    let (status, test) = t.call(t.key(), Method::POST, &format!("/v1/contacts/{nurse}/test-sms"), None).await;
    assert_eq!((status, test["status"].as_str()), (202, Some("queued")), "{test}");
    let shown = t.wait_for_status(test["id"].as_str().expect("id"), "delivered").await;
    assert_eq!(shown["to"], "+14155550195");
    let (status, _) = t.call(t.key(), Method::POST, "/v1/contacts/nobody/test-sms", None).await;
    assert_eq!(status, 404);
    let no_mobile = contact(&t, "Cy", None, &[]).await;
    let (status, problem) = t.call(t.key(), Method::POST, &format!("/v1/contacts/{no_mobile}/test-sms"), None).await;
    assert_eq!((status, problem["field"].as_str()), (409, Some("phones")), "{problem}");
}

#[tokio::test]
async fn the_usage_report_lists_a_periods_messages_with_errors_segments_credits_and_totals() {
    let t = TestStack::start().await;
    t.stack.simulator.set_override("+14155550197", SimOutcome::Undelivered(30003));
    let delivered = t.send_text("+14155550196").await;
    let undelivered = t.send_text("+14155550197").await;
    t.wait_for_status(&delivered, "delivered").await;
    t.wait_for_status(&undelivered, "undelivered").await;
    let other = t.other_clinic("other", devstack::stack::OTHER_SENDER).await;
    let (status, _) = t
        .call(&other.api_key, Method::POST, "/v1/messages", Some(&json!({"to": "+14155550198", "body": "Not theirs"})))
        .await;
    assert_eq!(status, 202);

    let now = t.stack.services.clock.now();
    let period = |format: &str| {
        let from = (now - chrono::TimeDelta::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let to = (now + chrono::TimeDelta::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        format!("/v1/reports/usage?from={from}&to={to}&format={format}")
    };
    let (status, report) = t.call(t.key(), Method::GET, &period("json"), None).await;
    assert_eq!(status, 200, "{report}");
    let ids: Vec<_> = report["messages"].as_array().expect("rows").iter().map(|r| r["id"].clone()).collect();
    assert_eq!(ids, [json!(delivered), json!(undelivered)], "this clinic's, oldest first");
    assert_eq!(report["totals"]["messages"], 2);
    assert_eq!(report["totals"]["credits"], 2);
    assert_eq!(report["totals"]["by_status"], json!({"delivered": 1, "undelivered": 1}));
    assert_eq!(report["totals"]["by_error_code"], json!({"30003": 1}));
    let row = &report["messages"][1];
    assert_eq!(
        (row["error_code"].as_u64(), row["user"].as_str(), row["segments"].as_u64()),
        (Some(30003), Some("admin"), Some(1))
    );
    assert!(row["error_description"].as_str().is_some_and(|d| d.contains("switched off")), "{row}");

    let response = t.http.get(t.url(&period("csv"))).bearer_auth(t.key()).send().await.expect("API answers");
    assert_eq!(response.status(), 200);
    assert!(response.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap_or_default().starts_with("text/csv"));
    let csv = response.text().await.expect("a body");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[2].contains(&undelivered) && lines[2].contains(",30003,"), "{csv}");

    let too_long = "/v1/reports/usage?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:01Z";
    let (status, problem) = t.call(t.key(), Method::GET, too_long, None).await;
    assert_eq!((status, problem["field"].as_str()), (422, Some("to")), "{problem}");
    let (status, problem) = t.call(t.key(), Method::GET, "/v1/reports/usage?to=2026-02-01T00:00:00Z", None).await;
    assert_eq!((status, problem["field"].as_str()), (422, Some("from")), "{problem}");
}

#[tokio::test]
async fn out_of_credits_is_not_a_refusal_the_text_is_created_and_fails_insufficient_credits() {
    let t = TestStack::start().await;
    let counters = &t.stack.services.counters;
    let clinic = shared::ids::ClinicId::new("demo");
    let balance = counters.credit_balance(&clinic).await.expect("balance");
    assert!(counters.reserve_credits(&clinic, balance).await.expect("reserve").is_ok(), "spend everything");

    let (status, answer, _) = t.post_message(&json!({"recipients": ["+14155550199"], "body": "Hello"})).await;
    assert_eq!((status, answer["outcomes"][0]["outcome"].as_str()), (202, Some("queued")), "{answer}");
    let id = answer["outcomes"][0]["id"].as_str().expect("id");
    let shown = t.wait_for_status(id, "failed").await;
    assert_eq!(shown["error"]["reason"], "insufficient_credits", "{shown}");
    assert!(t.stack.simulator.messages().is_empty(), "nothing reached Twilio");
}
