//! Status callbacks: signature first, then forward-only, each once. These use the simulator's
//! test account, which (like Twilio's) sends no callbacks of its own, so the test posts them.

use devstack::stack::{TEST_AUTH_TOKEN, TwilioAccount};
use serde_json::Value;

use crate::support::{TestStack, signed_form};

struct Submitted {
    t: TestStack,
    id: String,
    sid: String,
    callback_url: String,
}

async fn submitted_text() -> Submitted {
    let t = TestStack::start_with(TwilioAccount::Test).await;
    let id = t.send_text("+14155550127").await;
    let shown = t.wait_for_status(&id, "submitted").await;
    let sid = shown["twilio_sid"].as_str().expect("sid").to_owned();
    let callback_url = t.url(&format!("/twilio/status?m={id}&a=1"));
    Submitted { t, id, sid, callback_url }
}

impl Submitted {
    async fn post(&self, body: String, signature: Option<&str>) -> u16 {
        let mut request =
            self.t.http.post(&self.callback_url).header("content-type", "application/x-www-form-urlencoded").body(body);
        if let Some(signature) = signature {
            request = request.header("X-Twilio-Signature", signature);
        }
        request.send().await.expect("webhook answers").status().as_u16()
    }

    async fn callback(&self, status: &str, error_code: Option<&str>) -> u16 {
        let mut params = vec![
            ("MessageSid", self.sid.as_str()),
            ("SmsSid", self.sid.as_str()),
            ("MessageStatus", status),
            ("SmsStatus", status),
            ("AccountSid", devstack::stack::TEST_ACCOUNT_SID),
            ("To", "+14155550127"),
            ("From", devstack::stack::TEST_SENDER),
            ("ApiVersion", "2010-04-01"),
            ("SomeFieldTwilioAddedLater", "x"),
        ];
        if let Some(code) = error_code {
            params.push(("ErrorCode", code));
        }
        let (body, signature) = signed_form(TEST_AUTH_TOKEN, &self.callback_url, &params);
        self.post(body, Some(&signature)).await
    }

    async fn shown(&self) -> Value {
        self.t.get_message(&self.id).await.1
    }
}

fn twilio_entries(shown: &Value) -> Vec<(String, bool)> {
    shown["history"]
        .as_array()
        .map(|h| {
            h.iter()
                .filter(|e| e["actor"] == "twilio")
                .map(|e| (e["twilio_status"].as_str().unwrap_or_default().to_owned(), e["applied"] == true))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn unsigned_or_forged_callbacks_are_refused_and_change_nothing() {
    let s = submitted_text().await;
    let before = s.shown().await;
    let params = [("MessageSid", s.sid.as_str()), ("MessageStatus", "failed"), ("ErrorCode", "30007")];

    let (body, _) = signed_form(TEST_AUTH_TOKEN, &s.callback_url, &params);
    assert_eq!(s.post(body.clone(), None).await, 403, "unsigned");
    let (_, wrong_token) = signed_form("not-the-token", &s.callback_url, &params);
    assert_eq!(s.post(body.clone(), Some(&wrong_token)).await, 403, "wrong token");
    let (_, other_url) = signed_form(TEST_AUTH_TOKEN, "https://attacker.example/twilio/status", &params);
    assert_eq!(s.post(body.clone(), Some(&other_url)).await, 403, "signed for another URL");
    let (_, signed) = signed_form(TEST_AUTH_TOKEN, &s.callback_url, &params);
    let tampered = body.replace("failed", "delivered");
    assert_eq!(s.post(tampered, Some(&signed)).await, 403, "body changed after signing");

    assert_eq!(s.shown().await, before, "nothing changed");
}

#[tokio::test]
async fn callbacks_twice_and_out_of_order_end_delivered_with_full_history() {
    let s = submitted_text().await;
    for status in ["delivered", "sent", "delivered", "sent"] {
        assert_eq!(s.callback(status, None).await, 200, "{status}");
    }
    let shown = s.shown().await;
    assert_eq!(shown["status"], "delivered");
    assert_eq!(twilio_entries(&shown), [("delivered".into(), true), ("sent".into(), false)]);
}

#[tokio::test]
async fn a_late_callback_without_a_code_keeps_the_stored_error() {
    let s = submitted_text().await;
    assert_eq!(s.callback("undelivered", Some("30005")).await, 200);
    assert_eq!(s.callback("sent", None).await, 200);
    let shown = s.shown().await;
    assert_eq!(shown["status"], "undelivered");
    assert_eq!(shown["error"]["code"], 30005);
}

#[tokio::test]
async fn a_callback_missing_its_status_is_a_bad_request() {
    let s = submitted_text().await;
    let (body, signature) = signed_form(TEST_AUTH_TOKEN, &s.callback_url, &[("MessageSid", s.sid.as_str())]);
    assert_eq!(s.post(body, Some(&signature)).await, 400);
    assert_eq!(s.shown().await["status"], "submitted");
}

#[tokio::test]
async fn a_callback_for_a_message_we_do_not_know_is_acknowledged() {
    let s = submitted_text().await;
    let url = s.t.url("/twilio/status?m=01J00000000000000000000000&a=1");
    let params = [("MessageSid", s.sid.as_str()), ("MessageStatus", "delivered")];
    let (body, signature) = signed_form(TEST_AUTH_TOKEN, &url, &params);
    let status =
        s.t.http
            .post(&url)
            .header("X-Twilio-Signature", signature)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("answers")
            .status();
    assert_eq!(status, 200, "acknowledged so Twilio does not retry");
    assert_eq!(s.shown().await["status"], "submitted");
}
