//! `GET /v1/connections/{id}/health` and the connection checks of sms-check: what Twilio last
//! did for a connection (callbacks, patients' texts, errors), the webhooks' signature rejections,
//! and warnings when the webhooks fall silent.

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use devstack::stack::{DEMO_SENDER, OTHER_SENDER, TwilioAccount};
use reqwest::Method;
use serde_json::{Value, json};
use shared::clock::Clock;
use shared::ids::{ClinicId, ConnectionId};
use shared::twilio::error_catalogue;
use twilio_sim::{InboundText, Outcome};

use crate::support::{TestStack, read};

const PATIENT: &str = "+14155550140";

async fn health(t: &TestStack, key: &str, connection: &str) -> (u16, Value) {
    t.call(key, Method::GET, &format!("/v1/connections/{connection}/health"), None).await
}

async fn contact(t: &TestStack, number: &str) -> String {
    let body = json!({"first_name": "Ana", "phones": [{"kind": "mobile", "number": number}]});
    let (status, created) = t.call(t.key(), Method::POST, "/v1/contacts", Some(&body)).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().expect("an id").to_owned()
}

/// The named check of a contact's sms-check.
async fn sms_check(t: &TestStack, contact: &str, name: &str) -> Value {
    let (status, answer) = t.call(t.key(), Method::GET, &format!("/v1/contacts/{contact}/sms-check"), None).await;
    assert_eq!(status, 200, "{answer}");
    let found = answer["checks"].as_array().and_then(|c| c.iter().find(|c| c["check"] == name)).cloned();
    found.unwrap_or_else(|| panic!("no {name} check in {answer}"))
}

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.to_utc()).expect("a time")
}

#[tokio::test]
async fn a_sent_text_its_callbacks_and_a_patients_text_show_in_the_health() {
    let t = TestStack::start().await;
    let (status, before) = health(&t, t.key(), "main").await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(
        before["webhook_urls"],
        json!({"status_callback": t.url("/twilio/status"), "inbound": t.url("/twilio/inbound")})
    );
    assert_eq!((before["last_inbound"].clone(), before["last_status_callback_at"].clone()), (Value::Null, Value::Null));
    assert_eq!(before["last_error"], Value::Null);
    assert_eq!(before["signature_rejections_24h"]["status"], 0);
    assert_eq!(before["signature_rejections_24h"]["scope"], "deployment");

    // The connection's times are recorded to the second.
    let sent_at = Utc::now() - TimeDelta::seconds(1);
    let id = t.send_text(PATIENT).await;
    t.wait_for_status(&id, "delivered").await;
    let delivery = t.stack.simulator.send_inbound(InboundText::new(PATIENT, DEMO_SENDER, "Thanks!")).await;
    assert_eq!(delivery.expect("routed").response_statuses, [200]);
    let received = t.clinic_messages("demo").await.into_iter().find(|m| m.from.is_some()).expect("the reply");

    let (status, after) = health(&t, t.key(), "main").await;
    assert_eq!(status, 200, "{after}");
    assert!(time(&after["last_status_callback_at"]) >= sent_at.trunc_subsecs(0), "{after}");
    assert_eq!(after["last_inbound"]["message_id"], received.id.to_string(), "{after}");
    assert!(time(&after["last_inbound"]["at"]) >= sent_at.trunc_subsecs(0));
    let checks = after["checks"].as_array().expect("checks");
    assert!(checks.iter().all(|c| c["outcome"] == "passed"), "{after}");
}

#[tokio::test]
async fn forged_webhook_requests_are_counted_per_route() {
    let t = TestStack::start().await;
    let form = "MessageSid=SM1&MessageStatus=delivered";
    let unsigned = t.http.post(t.url("/twilio/status")).header("content-type", "application/x-www-form-urlencoded");
    assert_eq!(unsigned.body(form).send().await.expect("answers").status(), 403);
    for _ in 0..2 {
        let forged = t
            .http
            .post(t.url("/twilio/inbound"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", "bm90IGEgc2lnbmF0dXJl")
            .body(format!("MessageSid=SM2&From=%2B14155550140&To=%2B{}&Body=STOP", &DEMO_SENDER[1..]));
        assert_eq!(forged.send().await.expect("answers").status(), 403);
    }
    let (status, shown) = health(&t, t.key(), "main").await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["signature_rejections_24h"]["status"], 1, "{shown}");
    assert_eq!(shown["signature_rejections_24h"]["inbound"], 2, "{shown}");
    assert!(shown["signature_rejections_24h"]["note"].as_str().is_some_and(|n| n.contains("whole service")));
    // Counted for the deployment: another clinic sees the same figures.
    let b = t.other_clinic("other", OTHER_SENDER).await.api_key;
    let (_, other) = health(&t, &b, "main").await;
    assert_eq!(other["signature_rejections_24h"]["inbound"], 2, "{other}");
}

#[tokio::test]
async fn a_connection_error_in_a_delivery_callback_shows_with_the_catalogues_words() {
    let t = TestStack::start().await;
    t.stack.simulator.set_override(PATIENT, Outcome::Undelivered(30007));
    let id = t.send_text(PATIENT).await;
    t.wait_for_status(&id, "undelivered").await;
    let (_, shown) = health(&t, t.key(), "main").await;
    let info = error_catalogue::lookup(30007).expect("30007 is explained");
    assert_eq!(shown["last_error"]["code"], 30007, "{shown}");
    assert_eq!(shown["last_error"]["description"], info.description);
    assert_eq!(shown["last_error"]["what_to_do"], info.what_to_do);
    let healthy = shown["checks"].as_array().and_then(|c| c.iter().find(|c| c["check"] == "connection_healthy"));
    let healthy = healthy.expect("a connection_healthy check");
    assert_eq!((healthy["outcome"].as_str(), healthy["passed"].as_bool()), (Some("warning"), Some(true)), "{healthy}");
}

#[tokio::test]
async fn a_refused_send_shows_as_the_last_error() {
    let t = TestStack::start_with(TwilioAccount::Test).await;
    let clinics = &t.stack.services.clinics;
    let (demo, main) = (ClinicId::new("demo"), ConnectionId::new("main"));
    let mut connection = clinics.connection(&demo, &main).await.expect("read").expect("exists");
    // Twilio's magic test sender that the account does not own: 21606.
    connection.sender =
        shared::twilio::client::SenderId::Number(shared::phone::E164::parse("+15005550007", None).expect("valid"));
    clinics.put_connection(&connection).await.expect("saved");
    let id = t.send_text(PATIENT).await;
    t.wait_for_status(&id, "failed").await;
    let (_, shown) = health(&t, t.key(), "main").await;
    assert_eq!(shown["last_error"]["code"], 21606, "{shown}");
    assert_eq!(shown["last_error"]["description"], error_catalogue::describe(21606));
    assert!(shown["last_error"]["at"].is_string());
    assert_eq!(shown["all_passed"], false, "{shown}");
}

#[tokio::test]
async fn an_unknown_or_another_clinics_connection_is_not_found() {
    let t = TestStack::start().await;
    let a = t.key().to_owned();
    let b = t.other_clinic("other", OTHER_SENDER).await.api_key;
    let second = json!({"label": "Second line", "sender": format!("MG{}", "a".repeat(32)), "mps": 1});
    let (status, created) = t.call(&a, Method::POST, "/v1/connections", Some(&second)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("an id");
    assert_eq!(health(&t, &a, id).await.0, 200);

    for (key, connection) in [(&b, id), (&a, "nope"), (&a, "bad#id")] {
        let response = t
            .http
            .get(t.url(&format!("/v1/connections/{}/health", connection.replace('#', "%23"))))
            .bearer_auth(key)
            .send()
            .await
            .expect("answers");
        let (status, body, content_type) = read(response).await;
        assert_eq!((status, content_type.as_str()), (404, "application/problem+json"), "{connection}: {body}");
        assert!(!body.to_string().contains("Second line"), "nothing of A's connection leaks: {body}");
    }
    let unauthenticated = t.http.get(t.url(&format!("/v1/connections/{id}/health"))).send().await.expect("answers");
    assert_eq!(unauthenticated.status(), 401);
}

#[tokio::test]
async fn a_contact_whose_connection_has_a_credentials_error_fails_the_connection_healthy_check() {
    let t = TestStack::start().await;
    let ana = contact(&t, PATIENT).await;
    assert_eq!(sms_check(&t, &ana, "connection_healthy").await["outcome"], "passed");

    let clinics = &t.stack.services.clinics;
    let connection = clinics.connection(&ClinicId::new("demo"), &ConnectionId::new("main")).await;
    let connection = connection.expect("read").expect("exists");
    let error = shared::clinic::ConnectionError { code: 20003, at: Utc::now() };
    clinics.set_connection_error(&connection, Some(&error)).await.expect("recorded");

    let check = sms_check(&t, &ana, "connection_healthy").await;
    assert_eq!((check["outcome"].as_str(), check["passed"].as_bool()), (Some("failed"), Some(false)), "{check}");
    let info = error_catalogue::lookup(20003).expect("20003 is explained");
    assert!(check["detail"].as_str().is_some_and(|d| d.contains("20003") && d.contains(info.description)), "{check}");
    assert_eq!(check["what_to_do"], info.what_to_do);
    let connection_check = sms_check(&t, &ana, "connection").await;
    assert_eq!(connection_check["passed"], true, "the connection exists and is enabled: {connection_check}");
}

#[tokio::test]
async fn texts_without_status_callbacks_or_replies_give_warnings_not_failures() {
    let start = DateTime::parse_from_rfc3339("2026-06-10T13:00:00Z").expect("valid").to_utc();
    let t = TestStack::start_custom(|o| o.clock = Clock::manual(start)).await;
    let ana = contact(&t, PATIENT).await;
    let arriving = sms_check(&t, &ana, "inbound_texts_arriving").await;
    assert_eq!(arriving["outcome"], "passed", "nothing sent yet: {arriving}");

    t.stack.simulator.lose_callbacks_to(PATIENT);
    let id = t.send_text(PATIENT).await;
    t.wait_for_status(&id, "submitted").await;
    t.stack.services.clock.advance(TimeDelta::minutes(16));
    let arriving = sms_check(&t, &ana, "inbound_texts_arriving").await;
    assert_eq!(
        (arriving["outcome"].as_str(), arriving["passed"].as_bool()),
        (Some("warning"), Some(true)),
        "{arriving}"
    );
    assert!(arriving["detail"].as_str().is_some_and(|d| d.contains("no status callback")), "{arriving}");
    assert!(arriving["what_to_do"].as_str().is_some_and(|w| w.contains("auth token")), "{arriving}");

    // Callbacks work again, but no patient has ever texted the number. The first text's own
    // callbacks must have played out (lost) first, or its `delivered` would go through now.
    let settled = t.stack.simulator.callbacks_settled(std::time::Duration::from_secs(60)).await;
    assert!(settled, "the first text's callbacks played out");
    t.stack.simulator.clear_overrides();
    let other = "+14155550141";
    let delivered = t.send_text(other).await;
    t.wait_for_status(&delivered, "delivered").await;
    t.wait_for_status(&id, "submitted").await;
    let arriving = sms_check(&t, &ana, "inbound_texts_arriving").await;
    assert_eq!(arriving["outcome"], "warning", "{arriving}");
    assert!(arriving["what_to_do"].as_str().is_some_and(|w| w.contains("inbound URL")), "{arriving}");

    let (status, check) = t.call(t.key(), Method::GET, &format!("/v1/contacts/{ana}/sms-check"), None).await;
    assert_eq!((status, check["all_passed"].as_bool()), (200, Some(true)), "warnings do not fail: {check}");
}
