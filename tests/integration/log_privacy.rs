//! Logs never hold a patient's phone number, a message's text or a secret. Every log line of a
//! full flow is captured — a reminder, texts sent through the API and delivered or failed, a
//! patient's reply, STOP, a refused number, a forged webhook — at the level deployed functions log
//! (INFO, and DEBUG for the project's own crates, which is more than they log) and searched for
//! each number in every way it could be written, each text, the auth token and the API key.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde_json::json;
use twilio_sim::Outcome;

use crate::reminders::{appointment, call, contact, mobile, nine_am, setup, stack, tick};

/// Everything every thread logged since the test began.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

/// Installs the capturing subscriber for the whole process (once). `None` when another
/// subscriber got there first (RUST_LOG set for a `cargo test` run), which the test reports.
fn capture() -> Option<&'static Captured> {
    static CAPTURED: OnceLock<Option<Captured>> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let writer = captured.clone();
            let filter = "info,shared=debug,api=debug,sender=debug,twilio_webhooks=debug,scheduler=debug,\
                          mass_alert_fanout=debug,devstack=debug";
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .try_init()
                .ok()
                .map(|()| captured)
        })
        .as_ref()
}

/// Every way a log line could spell out this US number (`+1` and ten digits).
fn spellings(e164: &str) -> Vec<String> {
    let digits = e164.trim_start_matches('+');
    let national = &digits[1..];
    vec![
        e164.to_owned(),
        digits.to_owned(),
        national.to_owned(),
        format!("({}) {}-{}", &national[..3], &national[3..6], &national[6..]),
        format!("{}-{}-{}", &national[..3], &national[3..6], &national[6..]),
        format!("%2B{digits}"),
    ]
}

/// A `+` and eight or more digits in a row: a whole E.164 number, whoever's it is.
fn whole_numbers(logs: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in logs.match_indices('+') {
        let digits: String = logs[at + 1..].chars().take_while(char::is_ascii_digit).collect();
        if digits.len() >= 8 {
            found.push(format!("+{digits}"));
        }
    }
    found
}

#[tokio::test]
async fn a_full_flow_logs_no_phone_number_no_text_and_no_secret() {
    let Some(captured) = capture() else {
        panic!("another tracing subscriber is installed (RUST_LOG?): run this test without one");
    };
    let t = stack(2).await;
    let patient = "+14155550187";
    let unreachable = "+14155550188";
    let stopping = "+14155550189";
    let forger = "+14155550190";
    let reminded = "+14155550191";
    let sent_text = "Bella's x-ray results are ready, call us back";
    let failed_text = "Your prescription for Bella is ready for pickup";
    let reply_text = "Thanks, can Bella come Thursday instead";
    let refused_text = "This one has a bad number";
    let forged_text = "Forged webhook with a patient text";

    // A reminder: contact, appointment, the window opens, the text goes and is delivered.
    let ids = setup(&t).await;
    let client = contact(&t, "Rosa", mobile("(415) 555-0191"), None).await;
    appointment(&t, &client, &ids.business, &ids.with_template, "2026-06-11T09:30:00-04:00", "booked").await;
    let report = tick(&t, nine_am() + chrono::TimeDelta::hours(1)).await;
    assert_eq!(report.reminders, 1, "{report:?}");

    // Texts through the API: one delivered, one the handset never gets.
    t.stack.simulator.set_override(unreachable, Outcome::Undelivered(30003));
    let (status, body, _) = t.post_message(&json!({"to": patient, "body": sent_text})).await;
    assert_eq!(status, 202, "{body}");
    let delivered = body["id"].as_str().expect("an id").to_owned();
    let (status, body, _) = t.post_message(&json!({"to": unreachable, "body": failed_text})).await;
    assert_eq!(status, 202, "{body}");
    let undelivered = body["id"].as_str().expect("an id").to_owned();
    t.wait_for_status(&delivered, "delivered").await;
    t.wait_for_status(&undelivered, "undelivered").await;

    // The patient replies; another texts STOP.
    let clinic_number = devstack::stack::DEMO_SENDER;
    let (status, _, _) = t.inbound("SM00000000000000000000000000000187", patient, clinic_number, reply_text, &[]).await;
    assert_eq!(status, 200);
    let (status, _, _) = t.inbound("SM00000000000000000000000000000189", stopping, clinic_number, "STOP", &[]).await;
    assert_eq!(status, 200);

    // A number that is not one, and a webhook nobody signed.
    let (status, body, _) = t.post_message(&json!({"to": "+1415555018", "body": refused_text})).await;
    assert_eq!(status, 422, "{body}");
    let forged = t
        .http
        .post(t.url("/twilio/inbound"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", "bm90IGEgc2lnbmF0dXJl")
        .body(format!("MessageSid=SM1&From=%2B14155550190&To=%2B15017122661&Body={}", forged_text.replace(' ', "+")))
        .send()
        .await
        .expect("webhook answers");
    assert_eq!(forged.status(), 403);
    let (status, shown) = call(&t, reqwest::Method::GET, &format!("/v1/messages/{delivered}"), None).await;
    assert_eq!((status, shown["to"].as_str()), (200, Some(patient)), "the API itself shows the number");
    assert!(t.stack.simulator.callbacks_settled(std::time::Duration::from_secs(30)).await);

    let logs = captured.text();
    // The capture works: the flow's own lines are there (numbers masked).
    assert!(logs.contains("inbound text stored"), "no inbound line captured:\n{logs}");
    assert!(logs.contains("+1••••••••87"), "the masked number is not in the logs:\n{logs}");

    let mut leaks = Vec::new();
    for number in [patient, unreachable, stopping, forger, reminded, "+1415555018"] {
        leaks.extend(spellings(number).into_iter().filter(|s| logs.contains(s.as_str())));
    }
    for text in [sent_text, failed_text, reply_text, refused_text, forged_text, "x-ray results", "Rosa"] {
        if logs.contains(text) || logs.contains(&text.replace(' ', "+")) {
            leaks.push(text.to_owned());
        }
    }
    let settings = &t.stack.services.settings;
    for secret in [settings.twilio.auth_token.as_str(), t.key()] {
        if logs.contains(secret) {
            leaks.push("a secret".to_owned());
        }
    }
    leaks.extend(whole_numbers(&logs));
    assert!(leaks.is_empty(), "the logs hold {leaks:?}:\n{logs}");
}
