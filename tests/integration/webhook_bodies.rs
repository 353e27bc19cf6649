//! Malformed, absurd and oversized bodies on both Twilio webhooks, each posted unsigned and signed
//! as Twilio would sign it (over the form fields the body decodes to): every one is a 4xx, never a
//! 5xx, and nothing is stored. The one write an unsigned request may cause is the count of
//! signature rejections the connection health shows.
//!
//! What is acknowledged with a 200 instead, and why, is said where it is tested: a well-formed
//! callback for a message we did not send, and a well-formed status Twilio may add one day.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::AttributeValue;
use devstack::stack::{TEST_ACCOUNT_SID, TEST_SENDER, TwilioAccount};
use shared::webhook_rejections::{self, WebhookRoute};

use crate::support::TestStack;

const PATIENT: &str = "+14155550127";
/// A number no connection answers on.
const UNCLAIMED: &str = "+15017129999";
const OTHER_ACCOUNT: &str = "ACffffffffffffffffffffffffffffffff";
const FORM: &str = "application/x-www-form-urlencoded";

/// One request as posted: a name for failure messages, its content type and raw bytes.
struct Post {
    name: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
}

fn post(name: &'static str, content_type: &'static str, body: impl Into<Vec<u8>>) -> Post {
    Post { name, content_type, body: body.into() }
}

/// A form of `params`, encoded as Twilio encodes one.
fn form(name: &'static str, params: &[(&str, &str)]) -> Post {
    post(name, FORM, url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish())
}

/// Twilio's signature over the fields `body` decodes to (leniently, as the webhook reads it).
fn signature(t: &TestStack, url: &str, body: &[u8]) -> String {
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let pairs = fields.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    shared::twilio::signature::sign(&t.stack.services.settings.twilio.auth_token, url, pairs)
}

/// Posts `request` to `url`, unsigned or signed; returns the status.
async fn send(t: &TestStack, url: &str, request: &Post, signed: bool) -> u16 {
    let mut builder = t.http.post(url).header("content-type", request.content_type).body(request.body.clone());
    if signed {
        builder = builder.header("X-Twilio-Signature", signature(t, url, &request.body));
    }
    builder.send().await.expect("the webhook answers").status().as_u16()
}

/// Every item of every table, except the signature-rejection counts (the one write an unsigned
/// request may make).
async fn everything_stored(t: &TestStack) -> BTreeSet<String> {
    let dynamo = aws_sdk_dynamodb::Client::new(&t.stack.aws);
    let tables = &t.stack.resources.tables;
    let mut stored = BTreeSet::new();
    for table in [&tables.clinics, &tables.messages, &tables.counters, &tables.appointments] {
        let mut pages = dynamo.scan().table_name(table).into_paginator().items().send();
        while let Some(item) = pages.try_next().await.expect("scan works") {
            let rejection_count = item.get("pk") == Some(&AttributeValue::S(webhook_rejections::PARTITION.to_owned()));
            if !rejection_count {
                // Ordered by attribute name, at every depth: the same item always reads the same
                // (not as JSON: a message's history is binary, which JSON cannot hold).
                stored.insert(format!("{table}: {}", canonical(&AttributeValue::M(item))));
            }
        }
    }
    stored
}

/// An attribute value as text, maps ordered by name.
fn canonical(value: &AttributeValue) -> String {
    match value {
        AttributeValue::M(map) => {
            let ordered: BTreeSet<String> = map.iter().map(|(k, v)| format!("{k}: {}", canonical(v))).collect();
            format!("{{{}}}", ordered.into_iter().collect::<Vec<_>>().join(", "))
        }
        AttributeValue::L(list) => format!("[{}]", list.iter().map(canonical).collect::<Vec<_>>().join(", ")),
        other => format!("{other:?}"),
    }
}

async fn rejections(t: &TestStack, route: WebhookRoute) -> u64 {
    let totals = webhook_rejections::last_day_totals(&t.stack.services).await.expect("counts read");
    match route {
        WebhookRoute::Status => totals.status,
        WebhookRoute::Inbound => totals.inbound,
    }
}

/// Posts every request unsigned and signed: each answered 4xx (unsigned: 403 before anything is
/// read, or 413 before the body is), nothing stored, one rejection counted per unsigned 403.
async fn assert_refused_and_nothing_stored(t: &TestStack, route: WebhookRoute, url: &str, requests: &[Post]) {
    let before = everything_stored(t).await;
    let rejected_before = rejections(t, route).await;
    let mut unsigned_403 = 0;
    for request in requests {
        let unsigned = send(t, url, request, false).await;
        assert!(matches!(unsigned, 403 | 413), "{} unsigned → {unsigned}", request.name);
        unsigned_403 += u64::from(unsigned == 403);
        let signed = send(t, url, request, true).await;
        assert!((400..500).contains(&signed), "{} signed → {signed}", request.name);
        if request.body.len() > 64 * 1024 {
            assert_eq!(signed, 413, "{} is refused for its size", request.name);
        }
    }
    let after = everything_stored(t).await;
    let added: Vec<_> = after.difference(&before).collect();
    let removed: Vec<_> = before.difference(&after).collect();
    assert!(added.is_empty() && removed.is_empty(), "stored: {added:#?}\nremoved: {removed:#?}");
    assert_eq!(rejections(t, route).await - rejected_before, unsigned_403, "one rejection per unsigned request");
}

/// A text sent through the simulator's test account (which, like Twilio's, sends no callbacks of
/// its own), submitted to Twilio: its id and Twilio SID.
async fn submitted_text(t: &TestStack) -> (String, String) {
    let id = t.send_text(PATIENT).await;
    let shown = t.wait_for_status(&id, "submitted").await;
    (id, shown["twilio_sid"].as_str().expect("a SID").to_owned())
}

/// `params` and then `extra`.
fn plus<'a>(params: &[(&'a str, &'a str)], extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    params.iter().chain(extra).copied().collect()
}

/// A filler field value of `len` bytes.
fn padding(len: usize) -> String {
    "x".repeat(len)
}

#[tokio::test]
async fn malformed_status_callbacks_are_refused_and_change_nothing() {
    let t = TestStack::start_with(TwilioAccount::Test).await;
    let (id, sid) = submitted_text(&t).await;
    let url = t.url(&format!("/twilio/status?m={id}&a=1"));
    let long_sid = format!("SM{}", "a".repeat(10 * 1024));
    let big = padding(1024 * 1024);
    let huge = padding(11 * 1024 * 1024);
    let callback = [("MessageSid", sid.as_str()), ("MessageStatus", "delivered"), ("AccountSid", TEST_ACCOUNT_SID)];
    let base = |extra| plus(&callback, extra);
    let requests = [
        post("plain text", "text/plain", "the message was delivered, honestly"),
        post(
            "invalid percent-encoding",
            FORM,
            format!("MessageSid=%ZZ{sid}%&MessageStatus=deliver%E0%A4%&AccountSid=%"),
        ),
        post(
            "non-UTF-8 bytes",
            FORM,
            [
                b"MessageSid=SM\xff\xfe\x80&MessageStatus=deliv\xc3\x28ered&AccountSid=".as_slice(),
                TEST_ACCOUNT_SID.as_bytes(),
            ]
            .concat(),
        ),
        post("JSON", "application/json", format!(r#"{{"MessageSid":"{sid}","MessageStatus":"delivered"}}"#)),
        form("no MessageStatus", &[("MessageSid", &sid), ("AccountSid", TEST_ACCOUNT_SID)]),
        form("no MessageSid", &[("MessageStatus", "delivered"), ("AccountSid", TEST_ACCOUNT_SID)]),
        form(
            "another account's AccountSid",
            &[("MessageSid", &sid), ("MessageStatus", "delivered"), ("AccountSid", OTHER_ACCOUNT)],
        ),
        form("a 10 kB MessageSid", &[("MessageSid", &long_sid), ("MessageStatus", "delivered")]),
        form("a negative ErrorCode", &base(&[("ErrorCode", "-30003")])),
        form("a garbage ErrorCode", &base(&[("ErrorCode", "30003; DROP TABLE")])),
        form("an ErrorCode beyond u32", &base(&[("ErrorCode", "4294967296")])),
        form("a status that is not a word", &[("MessageSid", &sid), ("MessageStatus", "delivered<script>")]),
        form("a 10 kB status", &[("MessageSid", &sid), ("MessageStatus", &padding(10 * 1024))]),
        form("1 MiB", &base(&[("Padding", &big)])),
        form("11 MiB, beyond API Gateway's 10 MB", &base(&[("Padding", &huge)])),
    ];
    assert_refused_and_nothing_stored(&t, WebhookRoute::Status, &url, &requests).await;
    assert_eq!(t.get_message(&id).await.1["status"], "submitted");

    // Malformed is malformed whichever message the URL names (or none): refused before `m` is read.
    for url in [t.url("/twilio/status"), t.url("/twilio/status?m=01J00000000000000000000000&a=1")] {
        let garbage = form("a garbage ErrorCode", &plus(&callback, &[("ErrorCode", "abc")]));
        assert_eq!(send(&t, &url, &garbage, true).await, 400, "{url}");
    }
}

/// A well-formed callback naming a message we do not know is acknowledged, not refused: Twilio
/// retries what is not a 2xx, and no retry will ever find the message. Nothing is stored.
#[tokio::test]
async fn a_well_formed_callback_for_no_message_of_ours_is_acknowledged_and_stores_nothing() {
    let t = TestStack::start_with(TwilioAccount::Test).await;
    let (_, sid) = submitted_text(&t).await;
    let before = everything_stored(&t).await;
    let params = [("MessageSid", sid.as_str()), ("MessageStatus", "delivered"), ("AccountSid", TEST_ACCOUNT_SID)];
    for url in [t.url("/twilio/status"), t.url("/twilio/status?m=01J00000000000000000000000&a=1")] {
        assert_eq!(send(&t, &url, &form("unknown message", &params), true).await, 200, "{url}");
    }
    assert_eq!(everything_stored(&t).await, before);
}

/// A status we do not know but that reads as one of Twilio's (a lowercase word) is acknowledged and
/// kept in the history without moving the message: Twilio adds statuses (`read`,
/// `partially_delivered` came late), and refusing one would make Twilio retry it for nothing.
#[tokio::test]
async fn a_well_formed_status_we_do_not_know_is_kept_in_the_history_only() {
    let t = TestStack::start_with(TwilioAccount::Test).await;
    let (id, sid) = submitted_text(&t).await;
    let url = t.url(&format!("/twilio/status?m={id}&a=1"));
    let params = [("MessageSid", sid.as_str()), ("MessageStatus", "exploded"), ("AccountSid", TEST_ACCOUNT_SID)];
    assert_eq!(send(&t, &url, &form("unknown status", &params), true).await, 200);
    let shown = t.get_message(&id).await.1;
    assert_eq!(shown["status"], "submitted");
    let entry = shown["history"].as_array().and_then(|h| h.iter().find(|e| e["twilio_status"] == "exploded")).cloned();
    assert_eq!(entry.map(|e| e["applied"].clone()), Some(false.into()), "{shown:#}");
}

#[tokio::test]
async fn malformed_inbound_texts_are_refused_and_store_nothing() {
    let t = TestStack::start_with(TwilioAccount::Test).await;
    let url = t.url("/twilio/inbound");
    let sid = "SM0123456789abcdef0123456789abcdef";
    let long_sid = format!("SM{}", "a".repeat(10 * 1024));
    let long_service = format!("MG{}", "a".repeat(10 * 1024));
    let big = padding(1024 * 1024);
    let huge = padding(11 * 1024 * 1024);
    let valid = [("MessageSid", sid), ("AccountSid", TEST_ACCOUNT_SID), ("From", PATIENT), ("To", TEST_SENDER)];
    let text = |extra| plus(&valid, extra);
    let requests = [
        post("plain text", "text/plain", "Hi, this is Ann, can I move my appointment?"),
        post("invalid percent-encoding", FORM, "MessageSid=%ZZ%&From=%2B1415555%&To=%2B15005550006&Body=%E0%A4%"),
        post(
            "non-UTF-8 bytes",
            FORM,
            b"MessageSid=SM\xff\xfe&From=%2B1415\xc3\x28&To=%2B15005550006&Body=\x80".as_slice(),
        ),
        post(
            "JSON",
            "application/json",
            format!(r#"{{"MessageSid":"{sid}","From":"{PATIENT}","To":"{TEST_SENDER}"}}"#),
        ),
        form("no From", &[("MessageSid", sid), ("AccountSid", TEST_ACCOUNT_SID), ("To", TEST_SENDER), ("Body", "Hi")]),
        form("no To", &[("MessageSid", sid), ("AccountSid", TEST_ACCOUNT_SID), ("From", PATIENT), ("Body", "Hi")]),
        form(
            "another account's AccountSid",
            &[
                ("MessageSid", sid),
                ("AccountSid", OTHER_ACCOUNT),
                ("From", PATIENT),
                ("To", TEST_SENDER),
                ("Body", "Hi"),
            ],
        ),
        form("a 10 kB MessageSid", &[("MessageSid", &long_sid), ("From", PATIENT), ("To", TEST_SENDER)]),
        form("a From that is not a number", &[("MessageSid", sid), ("From", "'; DROP TABLE"), ("To", TEST_SENDER)]),
        form(
            "a 10 kB MessagingServiceSid to a number nobody answers on",
            &[("MessageSid", sid), ("From", PATIENT), ("To", UNCLAIMED), ("MessagingServiceSid", &long_service)],
        ),
        form("a 10 kB OptOutType", &text(&[("Body", "STOP"), ("OptOutType", &padding(10 * 1024))])),
        form("a 1 MiB Body", &text(&[("Body", &big)])),
        form("11 MiB, beyond API Gateway's 10 MB", &text(&[("Body", &huge)])),
    ];
    assert_refused_and_nothing_stored(&t, WebhookRoute::Inbound, &url, &requests).await;
    assert!(t.clinic_messages("demo").await.iter().all(|m| m.direction != shared::message::Direction::Inbound));
}
