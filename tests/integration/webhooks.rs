//! Status callbacks: signature first, then forward-only, each once. These use the simulator's
//! test account, which (like Twilio's) sends no callbacks of its own, so the test posts them.

use devstack::stack::{TEST_AUTH_TOKEN, TwilioAccount};
use http_body_util::BodyExt;
use serde_json::Value;
use shared::config::{Settings, TwilioSettings};
use shared::services::Services;
use tower::ServiceExt;

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
        let response = request.send().await.expect("webhook answers");
        let status = response.status().as_u16();
        if status == 200 {
            assert_eq!(response.text().await.expect("a body"), "", "Twilio needs no content");
        }
        status
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

    // The error is shown with the catalogue's words, on the message and on its history entry,
    // the same as the catalogue endpoint gives.
    let catalogue = shared::twilio::error_catalogue::lookup(30005).expect("30005 explained");
    assert_eq!(shown["error"]["description"], catalogue.description);
    assert_eq!(shown["error"]["common_cause"], catalogue.common_cause);
    assert_eq!(shown["error"]["what_to_do"], catalogue.what_to_do);
    let entry = shown["history"].as_array().and_then(|h| h.iter().find(|e| e["error_code"] == 30005)).cloned();
    assert_eq!(entry.map(|e| e["error_description"].clone()), Some(Value::from(catalogue.description)));
    let served = s.t.http.get(s.t.url("/v1/error-codes/30005")).bearer_auth(s.t.key()).send().await.expect("answers");
    let (status, served, _) = crate::support::read(served).await;
    assert_eq!((status, &served["description"]), (200, &shown["error"]["description"]));
}

#[tokio::test]
async fn a_callback_missing_its_sid_or_status_is_a_bad_request() {
    let s = submitted_text().await;
    let incomplete: [&[(&str, &str)]; 4] = [
        &[("MessageSid", s.sid.as_str())],
        &[("MessageStatus", "delivered")],
        &[("MessageSid", ""), ("MessageStatus", "delivered")],
        &[("MessageSid", s.sid.as_str()), ("MessageStatus", "")],
    ];
    for params in incomplete {
        let (body, signature) = signed_form(TEST_AUTH_TOKEN, &s.callback_url, params);
        assert_eq!(s.post(body, Some(&signature)).await, 400, "{params:?}");
    }
    assert_eq!(s.shown().await["status"], "submitted");
    assert_eq!(twilio_entries(&s.shown().await), []);
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

/// One callback as Twilio would post it for `sid`, with the fields of a real SMS callback.
fn callback_params<'a>(sid: &'a str, status: &'a str, code: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut params = vec![
        ("MessageSid", sid),
        ("SmsSid", sid),
        ("MessageStatus", status),
        ("SmsStatus", status),
        ("AccountSid", devstack::stack::TEST_ACCOUNT_SID),
        ("To", "+14155550127"),
        ("From", devstack::stack::TEST_SENDER),
        ("ApiVersion", "2010-04-01"),
    ];
    if let Some(code) = code {
        params.push(("ErrorCode", code));
    }
    if matches!(status, "delivered" | "undelivered") {
        params.push(("RawDlrDoneDate", "2611232201"));
    }
    params
}

async fn post_signed(http: &reqwest::Client, url: &str, params: &[(&str, &str)]) -> u16 {
    let (body, signature) = signed_form(TEST_AUTH_TOKEN, url, params);
    let response = http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", signature)
        .body(body)
        .send()
        .await
        .expect("webhook answers");
    let status = response.status().as_u16();
    assert_eq!(response.text().await.expect("a body"), "");
    status
}

fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut tail in permutations(&rest) {
            tail.insert(0, first.clone());
            out.push(tail);
        }
    }
    out
}

#[tokio::test]
async fn callbacks_in_every_order_each_twice_give_the_right_final_state_and_history() {
    let t = TestStack::start_with(TwilioAccount::Test).await;
    // (Twilio status, error code); the last of each set is the final one.
    let delivered: [(&str, Option<&str>); 3] = [("queued", None), ("sent", None), ("delivered", None)];
    let undelivered: [(&str, Option<&str>); 3] = [("queued", None), ("sent", None), ("undelivered", Some("30003"))];
    let mut cases = Vec::new();
    for set in [delivered, undelivered] {
        for order in permutations(&set) {
            let id = t.send_text("+14155550127").await;
            cases.push((id, order));
        }
    }
    for (id, order) in &cases {
        let shown = t.wait_for_status(id, "submitted").await;
        let sid = shown["twilio_sid"].as_str().expect("sid").to_owned();
        let url = t.url(&format!("/twilio/status?m={id}&a=1"));
        // The whole order, then the whole order again: every callback twice.
        for (status, code) in order.iter().chain(order.iter()) {
            assert_eq!(post_signed(&t.http, &url, &callback_params(&sid, status, *code)).await, 200);
        }
        let shown = t.get_message(id).await.1;
        let (final_status, final_code) =
            order.iter().find(|(s, _)| s.ends_with("delivered")).copied().expect("a final");
        assert_eq!(shown["status"], final_status, "{order:?}");
        assert_eq!(shown["error"]["code"].as_u64().map(|c| c.to_string()).as_deref(), final_code, "{order:?}");
        // Each distinct callback once, in arrival order; it moved the message only if it was
        // further along than everything before it.
        let rank = |s: &str| ["queued", "sent"].iter().position(|r| *r == s).unwrap_or(2);
        let mut furthest = 0; // submitted, where Twilio's `queued` also lands
        let expected: Vec<(String, bool)> = order
            .iter()
            .map(|(s, _)| {
                let moved = rank(s) > furthest;
                furthest = furthest.max(rank(s));
                ((*s).to_owned(), moved)
            })
            .collect();
        assert_eq!(twilio_entries(&shown), expected, "{order:?}");
        for entry in shown["history"].as_array().expect("history").iter().filter(|e| e["actor"] == "twilio") {
            assert_eq!(entry["twilio_sid"], sid.as_str());
            assert!(entry["at"].is_string(), "received at");
            let carrier_report = entry["twilio_status"].as_str().is_some_and(|s| s.ends_with("delivered"));
            assert_eq!(entry["raw_dlr_done_date"].as_str(), carrier_report.then_some("2611232201"), "{entry}");
            let code = entry["error_code"].as_u64().map(|c| c.to_string());
            assert_eq!(code.as_deref(), order.iter().find(|(s, _)| *s == entry["twilio_status"]).and_then(|(_, c)| *c));
        }
    }
}

#[tokio::test]
async fn the_same_callbacks_arriving_at_once_are_each_recorded_once() {
    let s = submitted_text().await;
    let sid = s.sid.clone();
    let mut posts = tokio::task::JoinSet::new();
    for status in ["sent", "delivered", "queued", "delivered", "sent", "queued"] {
        let (http, url, sid) = (s.t.http.clone(), s.callback_url.clone(), sid.clone());
        posts.spawn(async move { post_signed(&http, &url, &callback_params(&sid, status, None)).await });
    }
    while let Some(answer) = posts.join_next().await {
        assert_eq!(answer.expect("the post ran"), 200);
    }
    let shown = s.shown().await;
    assert_eq!(shown["status"], "delivered");
    let mut recorded: Vec<String> = twilio_entries(&shown).into_iter().map(|(status, _)| status).collect();
    recorded.sort();
    assert_eq!(recorded, ["delivered", "queued", "sent"]);
}

/// The services of `t` as deployed behind `public_base_url`, signing with `auth_token`.
fn deployed(t: &TestStack, public_base_url: &str, auth_token: &str) -> Services {
    deployed_for(t, public_base_url, auth_token, &t.stack.services.settings.twilio.account_sid)
}

/// The same, for the Twilio account `account_sid`.
fn deployed_for(t: &TestStack, public_base_url: &str, auth_token: &str, account_sid: &str) -> Services {
    let services = &t.stack.services;
    Services::new(
        Settings {
            public_base_url: public_base_url.parse().expect("a URL"),
            twilio: TwilioSettings {
                auth_token: auth_token.into(),
                account_sid: account_sid.into(),
                ..services.settings.twilio.clone()
            },
            ..(*services.settings).clone()
        },
        &t.stack.aws,
        services.clock.clone(),
        services.timing,
    )
    .expect("services")
}

/// Posts through the router itself, as API Gateway would hand it a request for `host`.
async fn post_to_router(services: Services, host: &str, path_and_query: &str, body: String, signature: &str) -> u16 {
    let request = http::Request::post(path_and_query)
        .header("host", host)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature)
        .body(axum::body::Body::from(body))
        .expect("a request");
    let response = twilio_webhooks::router(services).oneshot(request).await.expect("answers");
    response.status().as_u16()
}

#[tokio::test]
async fn the_documented_status_callback_vector_verifies_against_the_configured_url() {
    let t = TestStack::start_with(TwilioAccount::Test).await;
    let sid = format!("SM{}", "a".repeat(32));
    let account = format!("AC{}", "a".repeat(32));
    let params = [
        ("MessageSid", sid.as_str()),
        ("MessageStatus", "delivered"),
        ("AccountSid", account.as_str()),
        ("From", "+15005550006"),
        ("To", "+15551234567"),
        ("ApiVersion", "2010-04-01"),
        ("SmsSid", sid.as_str()),
        ("SmsStatus", "delivered"),
    ];
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    let vector = "FoIsk/Nzr58xdafJ/XqhT23bkCQ=";
    // Whatever host or scheme the request arrived with, the configured URL is what counts.
    for host in ["example.com", "attacker.example", "internal-alb.local:8080"] {
        let services = deployed_for(&t, "https://example.com", "12345", &account);
        assert_eq!(post_to_router(services, host, "/twilio/status", body.clone(), vector).await, 200, "{host}");
    }
    let other_base = deployed_for(&t, "https://example.org", "12345", &account);
    assert_eq!(post_to_router(other_base, "example.com", "/twilio/status", body.clone(), vector).await, 403);
    let other_token = deployed_for(&t, "https://example.com", "54321", &account);
    assert_eq!(post_to_router(other_token, "example.com", "/twilio/status", body.clone(), vector).await, 403);
    // Signed with our token but for another account: no request of Twilio's for ours.
    let other_account = deployed(&t, "https://example.com", "12345");
    assert_eq!(post_to_router(other_account, "example.com", "/twilio/status", body.clone(), vector).await, 403);

    // During a token rotation Twilio still signs with the old token until the new one is
    // promoted: the previous token verifies too, and only while it is configured.
    let rotating_with = |previous: &str| {
        let mut settings = (*deployed_for(&t, "https://example.com", "54321", &account).settings).clone();
        settings.twilio.previous_auth_token = Some(previous.into());
        Services::new(settings, &t.stack.aws, t.stack.services.clock.clone(), t.stack.services.timing)
            .expect("services")
    };
    assert_eq!(
        post_to_router(rotating_with("12345"), "example.com", "/twilio/status", body.clone(), vector).await,
        200
    );
    assert_eq!(post_to_router(rotating_with("99999"), "example.com", "/twilio/status", body, vector).await, 403);
}

#[tokio::test]
async fn explicit_ports_and_the_query_string_are_part_of_what_is_signed() {
    let s = submitted_text().await;
    let path = format!("/twilio/status?m={}&a=1", s.id);
    let params = callback_params(&s.sid, "sent", None);
    let base = "https://hooks.example.com:8443";
    let (body, signature) = signed_form("tok", &format!("{base}{path}"), &params);
    // Signed without the port (as some proxies rewrite it): refused.
    let (_, portless) = signed_form("tok", &format!("https://hooks.example.com{path}"), &params);
    assert_eq!(post_to_router(deployed(&s.t, base, "tok"), "x", &path, body.clone(), &portless).await, 403);
    // The query string as received: a reordered one is another URL.
    let reordered = format!("/twilio/status?a=1&m={}", s.id);
    assert_eq!(post_to_router(deployed(&s.t, base, "tok"), "x", &reordered, body.clone(), &signature).await, 403);
    assert_eq!(s.shown().await["status"], "submitted", "nothing stored from refused calls");
    assert_eq!(post_to_router(deployed(&s.t, base, "tok"), "x", &path, body, &signature).await, 200);
    assert_eq!(s.shown().await["status"], "sent");
}

#[tokio::test]
async fn a_named_api_gateway_stage_is_part_of_the_public_url_not_of_the_route() {
    let s = submitted_text().await;
    let base = "https://abc123.execute-api.us-east-1.amazonaws.com/prod";
    let query = format!("m={}&a=1", s.id);
    let params = callback_params(&s.sid, "delivered", None);
    let (body, signature) = signed_form("tok", &format!("{base}/twilio/status?{query}"), &params);
    let event = serde_json::json!({
        "version": "2.0",
        "routeKey": "POST /twilio/{proxy+}",
        "rawPath": "/prod/twilio/status",
        "rawQueryString": query,
        "headers": {
            "content-type": "application/x-www-form-urlencoded",
            "host": "abc123.execute-api.us-east-1.amazonaws.com",
            "x-twilio-signature": signature,
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "http": {"method": "POST", "path": "/prod/twilio/status", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.10"},
            "requestId": "r1",
            "routeKey": "POST /twilio/{proxy+}",
            "stage": "prod",
            "time": "23/Nov/2026:22:00:00 +0000",
            "timeEpoch": 1795471200000_u64,
        },
        "body": body,
        "isBase64Encoded": false,
    });
    let request = lambda_http::request::from_str(&event.to_string()).expect("an API Gateway event");
    let app = twilio_webhooks::on_api_gateway(twilio_webhooks::router(deployed(&s.t, base, "tok")));
    let response = app.oneshot(request).await.expect("answers");
    assert_eq!(response.status(), 200);
    let content = response.into_body().collect().await.expect("a body").to_bytes();
    assert!(content.is_empty());
    assert_eq!(s.shown().await["status"], "delivered");
}
