//! Texts patients send to a clinic's numbers: signed, routed by `To` to one clinic, matched to a
//! contact by `From` within it, stored once however often Twilio delivers them. The last tests
//! have the simulator post them, as Twilio would.

use std::sync::Arc;

use devstack::stack::{DEMO_SENDER, OTHER_SENDER};
use reqwest::Method;
use serde_json::json;
use shared::message::Direction;
use shared::message_status::MessageStatus;
use tokio::task::JoinSet;
use twilio_sim::{InboundText, OptOutType};

use crate::support::TestStack;

const PATIENT: &str = "+14155550123";
const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#;

fn sid(n: usize) -> String {
    format!("SM{n:032x}")
}

async fn contact(t: &TestStack, key: &str, name: &str, number: &str) -> String {
    let body = json!({"first_name": name, "phones": [{"kind": "mobile", "number": number}]});
    let (status, created) = t.call(key, Method::POST, "/v1/contacts", Some(&body)).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().expect("an id").to_owned()
}

#[tokio::test]
async fn a_hundred_texts_each_delivered_twice_are_stored_once_each() {
    let t = Arc::new(TestStack::start().await);
    let mut posts = JoinSet::new();
    let gate = Arc::new(tokio::sync::Semaphore::new(16));
    for delivery in 0..2 {
        for n in 0..100 {
            let (t, gate) = (Arc::clone(&t), Arc::clone(&gate));
            posts.spawn(async move {
                let _turn = gate.acquire().await.expect("open");
                let body = format!("Reply number {n}");
                let answer = t.inbound(&sid(n), PATIENT, DEMO_SENDER, &body, &[]).await;
                (delivery, n, answer)
            });
        }
    }
    while let Some(done) = posts.join_next().await {
        let (delivery, n, (status, body, content_type)) = done.expect("posted");
        assert_eq!((status, body.as_str(), content_type.as_str()), (200, EMPTY_TWIML, "text/xml"), "{delivery}/{n}");
    }
    let stored = t.clinic_messages("demo").await;
    assert_eq!(stored.len(), 100);
    let mut sids: Vec<_> = stored.iter().filter_map(|m| m.twilio_sid.clone()).collect();
    sids.sort();
    sids.dedup();
    assert_eq!(sids.len(), 100, "one message per MessageSid");
    let mut conversations: Vec<_> = stored.iter().map(|m| m.conversation_id.clone()).collect();
    conversations.dedup();
    assert!(matches!(conversations.as_slice(), [Some(_)]), "one patient, one conversation: {conversations:?}");
    for m in &stored {
        assert_eq!((m.status, m.direction), (MessageStatus::Received, Direction::Inbound));
        assert_eq!(m.from.as_ref().map(|f| f.as_str()), Some(PATIENT));
        assert_eq!(m.to.as_ref().map(|f| f.as_str()), Some(DEMO_SENDER));
    }
    // Shown through the API like any other message.
    let (status, shown) = t.get_message(&stored[0].id.to_string()).await;
    assert_eq!(
        (status, shown["status"].as_str(), shown["direction"].as_str()),
        (200, Some("received"), Some("inbound"))
    );
}

#[tokio::test]
async fn a_text_missing_its_sid_sender_or_number_is_a_bad_request_and_unknown_fields_are_accepted() {
    let t = TestStack::start().await;
    let full =
        [("MessageSid", "SM0123456789abcdef0123456789abcdef"), ("From", PATIENT), ("To", DEMO_SENDER), ("Body", "Hi")];
    for missing in ["MessageSid", "From", "To"] {
        let without: Vec<_> = full.iter().copied().filter(|(k, _)| *k != missing).collect();
        let (status, _, _) = t.post_inbound_form(&without).await;
        assert_eq!(status, 400, "without {missing}");
    }
    assert!(t.clinic_messages("demo").await.is_empty(), "nothing stored");

    let extra = [("FieldTwilioAddsNextYear", "1"), ("FromCity", "SAN FRANCISCO"), ("MediaUrl0", "")];
    let (status, body, content_type) =
        t.inbound("SM0123456789abcdef0123456789abcdef", PATIENT, DEMO_SENDER, "Hi", &extra).await;
    assert_eq!((status, body.as_str(), content_type.as_str()), (200, EMPTY_TWIML, "text/xml"));
    assert_eq!(t.clinic_messages("demo").await.len(), 1);

    // Unsigned: refused before anything is read.
    let url = t.url("/twilio/inbound");
    let form = "MessageSid=SM1&From=%2B14155550123&To=%2B15017122661&Body=STOP";
    let response = t.http.post(&url).header("content-type", "application/x-www-form-urlencoded").body(form).send();
    assert_eq!(response.await.expect("answers").status(), 403);
    assert_eq!(t.clinic_messages("demo").await.len(), 1);
}

#[tokio::test]
async fn a_text_to_one_clinics_number_never_touches_another_clinic() {
    let t = TestStack::start().await;
    let a = t.key().to_owned();
    let b = t.other_clinic("other", OTHER_SENDER).await.api_key;
    let a_contact = contact(&t, &a, "Ana", PATIENT).await;
    let b_contact = contact(&t, &b, "Bea", PATIENT).await;

    assert_eq!(t.inbound(&sid(1), PATIENT, DEMO_SENDER, "Hello A", &[]).await.0, 200);
    let in_a = t.clinic_messages("demo").await;
    assert_eq!(in_a.len(), 1);
    assert_eq!(in_a[0].contact_id.as_deref(), Some(a_contact.as_str()), "A's own contact, never B's");
    assert!(t.clinic_messages("other").await.is_empty(), "B has nothing");

    assert_eq!(t.inbound(&sid(2), PATIENT, OTHER_SENDER, "Hello B", &[]).await.0, 200);
    let in_b = t.clinic_messages("other").await;
    assert_eq!(in_b.len(), 1);
    assert_eq!(in_b[0].contact_id.as_deref(), Some(b_contact.as_str()));
    assert_eq!(t.clinic_messages("demo").await.len(), 1, "A unchanged");

    // B cannot read A's text through the API either.
    let (status, _) = t.call(&b, Method::GET, &format!("/v1/messages/{}", in_a[0].id), None).await;
    assert_eq!(status, 404);

    // A number nobody answers on: acknowledged, stored nowhere.
    assert_eq!(t.inbound(&sid(3), PATIENT, "+15017122699", "Hello?", &[]).await.0, 200);
    assert_eq!((t.clinic_messages("demo").await.len(), t.clinic_messages("other").await.len()), (1, 1));
}

/// A phone texting a clinic number through the simulator, which posts Twilio's own webhook.
async fn text_via_twilio(t: &TestStack, text: InboundText) -> twilio_sim::InboundDelivery {
    let delivery = t.stack.simulator.send_inbound(text).await.expect("Twilio routes it");
    assert!(delivery.response_statuses.iter().all(|s| *s == 200), "{:?}", delivery.response_statuses);
    delivery
}

#[tokio::test]
async fn a_text_twilio_delivers_twice_is_stored_once() {
    let t = TestStack::start().await;
    let mut text = InboundText::new(PATIENT, DEMO_SENDER, "Running 10 minutes late");
    text.duplicate = true;
    let delivery = text_via_twilio(&t, text).await;
    assert_eq!(delivery.response_statuses.len(), 2, "posted twice");
    let stored = t.clinic_messages("demo").await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].twilio_sid.as_deref(), Some(delivery.message_sid.as_str()));
    assert_eq!(stored[0].body.as_str(), "Running 10 minutes late");
}

#[tokio::test]
async fn stop_with_twilios_opt_out_type_records_the_opt_out() {
    let t = TestStack::start().await;
    let key = t.key().to_owned();
    let ana = contact(&t, &key, "Ana", PATIENT).await;
    let mut text = InboundText::new(PATIENT, DEMO_SENDER, "Arrêtez");
    text.opt_out_type = Some(OptOutType::Stop);
    text_via_twilio(&t, text).await;

    let (status, check) = t.call(&key, Method::GET, &format!("/v1/contacts/{ana}/sms-check"), None).await;
    assert_eq!(status, 200, "{check}");
    let opt_out = check["checks"].as_array().and_then(|c| c.iter().find(|c| c["check"] == "opt_out")).cloned();
    assert_eq!(opt_out.map(|c| c["passed"].clone()), Some(json!(false)), "{check}");
    let (status, refused) =
        t.call(&key, Method::POST, "/v1/messages", Some(&json!({"to": PATIENT, "body": "Hello"}))).await;
    assert_eq!(status, 409, "an opted-out number is not texted: {refused}");

    let mut start = InboundText::new(PATIENT, DEMO_SENDER, "Start");
    start.opt_out_type = Some(OptOutType::Start);
    text_via_twilio(&t, start).await;
    let (status, _) = t.call(&key, Method::POST, "/v1/messages", Some(&json!({"to": PATIENT, "body": "Hello"}))).await;
    assert_eq!(status, 202, "opted back in");
}

#[tokio::test]
async fn a_text_twilio_posts_for_one_clinics_number_never_touches_another_clinic() {
    let t = TestStack::start().await;
    let b = t.other_clinic("other", OTHER_SENDER).await.api_key;
    let b_contact = contact(&t, &b, "Bea", PATIENT).await;
    let mut stop = InboundText::new(PATIENT, DEMO_SENDER, "STOP");
    stop.duplicate = true;
    text_via_twilio(&t, stop).await;

    assert_eq!(t.clinic_messages("demo").await.len(), 1);
    assert!(t.clinic_messages("other").await.is_empty(), "B has nothing");
    let (status, check) = t.call(&b, Method::GET, &format!("/v1/contacts/{b_contact}/sms-check"), None).await;
    assert_eq!(status, 200, "{check}");
    let opt_out = check["checks"].as_array().and_then(|c| c.iter().find(|c| c["check"] == "opt_out")).cloned();
    assert_eq!(opt_out.map(|c| c["passed"].clone()), Some(json!(true)), "A's STOP is not B's: {check}");
    let (_, b_health) = t.call(&b, Method::GET, "/v1/connections/main/health", None).await;
    assert_eq!(b_health["last_inbound"], serde_json::Value::Null, "{b_health}");
    let (_, a_health) = t.call(t.key(), Method::GET, "/v1/connections/main/health", None).await;
    assert!(a_health["last_inbound"]["message_id"].is_string(), "{a_health}");
}
