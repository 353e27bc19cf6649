//! The simulator driven over HTTP, as a Twilio client would drive it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Form, Router};
use serde_json::{Value, json};
use shared::twilio::signature;
use twilio_sim::{Account, AccountKind, MessagingService, Outcome, SimConfig, Simulator};

const LIVE_TOKEN: &str = "live-auth-token";
const TEST_TOKEN: &str = "test-auth-token";
const LIVE_NUMBER: &str = "+15017122661";
const POOL: [&str; 2] = ["+15017122662", "+15017122663"];
const SETTLE: Duration = Duration::from_secs(5);

fn live_sid() -> String {
    format!("AC{}", "1".repeat(32))
}

fn test_sid() -> String {
    format!("AC{}", "3".repeat(32))
}

fn service_sid() -> String {
    format!("MG{}", "2".repeat(32))
}

fn config() -> SimConfig {
    SimConfig {
        accounts: vec![
            Account {
                sid: live_sid(),
                auth_token: LIVE_TOKEN.into(),
                kind: AccountKind::Live,
                numbers: vec![LIVE_NUMBER.into()],
                messaging_services: vec![MessagingService {
                    sid: service_sid(),
                    numbers: POOL.iter().map(|n| (*n).to_owned()).collect(),
                }],
            },
            Account {
                sid: test_sid(),
                auth_token: TEST_TOKEN.into(),
                kind: AccountKind::Test,
                numbers: Vec::new(),
                messaging_services: Vec::new(),
            },
        ],
        callback_delay: Duration::from_millis(5),
    }
}

/// A Twilio client for one account of one simulator.
struct Client {
    http: reqwest::Client,
    base: url::Url,
    account_sid: String,
    token: String,
}

impl Client {
    fn new(sim: &Simulator, account_sid: String, token: &str) -> Self {
        Self {
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            base: sim.base_url(),
            account_sid,
            token: token.into(),
        }
    }

    fn live(sim: &Simulator) -> Self {
        Self::new(sim, live_sid(), LIVE_TOKEN)
    }

    fn test(sim: &Simulator) -> Self {
        Self::new(sim, test_sid(), TEST_TOKEN)
    }

    fn messages_url(&self) -> url::Url {
        let path = format!("2010-04-01/Accounts/{}/Messages.json", self.account_sid);
        self.base.join(&path).unwrap()
    }

    async fn create(&self, fields: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.messages_url())
            .basic_auth(&self.account_sid, Some(&self.token))
            .form(fields)
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn fetch(&self, sid: &str) -> (StatusCode, Value) {
        let path = format!("2010-04-01/Accounts/{}/Messages/{sid}.json", self.account_sid);
        let response = self
            .http
            .get(self.base.join(&path).unwrap())
            .basic_auth(&self.account_sid, Some(&self.token))
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }
}

fn assert_twilio_error(status: StatusCode, body: &Value, http: u16, code: u32) {
    assert_eq!(status.as_u16(), http, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], http, "{body}");
    assert_eq!(body["more_info"], format!("https://www.twilio.com/docs/errors/{code}"));
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

/// One status callback as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    signature: Option<String>,
    params: Vec<(String, String)>,
}

impl Received {
    fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A webhook endpoint on 127.0.0.1 that records status callbacks and answers `status`.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(status: StatusCode) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().route("/twilio/status", post(receive)).with_state((Arc::clone(&received), status));
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            // A query string, so the test proves the exact URL is what gets signed.
            url: format!("http://{addr}/twilio/status?clinic=c1"),
            received,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

type ReceiverState = (Arc<Mutex<Vec<Received>>>, StatusCode);

async fn receive(
    State((received, status)): State<ReceiverState>,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) -> StatusCode {
    let signature = headers.get("X-Twilio-Signature").and_then(|v| v.to_str().ok()).map(str::to_owned);
    received.lock().unwrap().push(Received { signature, params });
    status
}

#[tokio::test]
async fn missing_or_wrong_credentials_are_refused_with_20003() {
    let sim = Simulator::start(config()).await.unwrap();
    let client = Client::live(&sim);
    let fields = [("To", "+15551234567"), ("From", LIVE_NUMBER), ("Body", "hi")];

    let response = client.http.post(client.messages_url()).form(&fields).send().await.unwrap();
    assert_eq!(response.headers().get("www-authenticate").unwrap(), r#"Basic realm="Twilio API""#);
    let status = response.status();
    assert_twilio_error(status, &response.json().await.unwrap(), 401, 20003);

    let wrong_token = Client::new(&sim, live_sid(), "not-the-token");
    let (status, body) = wrong_token.create(&fields).await;
    assert_twilio_error(status, &body, 401, 20003);

    // The test account's credentials against the live account's path.
    let response = client
        .http
        .post(client.messages_url())
        .basic_auth(test_sid(), Some(TEST_TOKEN))
        .form(&fields)
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert_twilio_error(status, &response.json().await.unwrap(), 401, 20003);

    let malformed_path = Client::new(&sim, "null".into(), LIVE_TOKEN);
    let (status, body) = malformed_path.create(&fields).await;
    assert_twilio_error(status, &body, 404, 20404);

    assert!(sim.messages().is_empty());
}

#[tokio::test]
async fn request_shape_errors() {
    let sim = Simulator::start(config()).await.unwrap();
    let client = Client::live(&sim);

    let (status, body) = client.create(&[("From", LIVE_NUMBER), ("Body", "hi")]).await;
    assert_twilio_error(status, &body, 400, 21604);

    let (status, body) = client.create(&[("To", "+15551234567"), ("Body", "hi")]).await;
    assert_twilio_error(status, &body, 400, 21603);

    let (status, body) = client.create(&[("To", "+15551234567"), ("From", LIVE_NUMBER)]).await;
    assert_twilio_error(status, &body, 400, 21602);

    let long = "a".repeat(1601);
    let (status, body) = client.create(&[("To", "+15551234567"), ("From", LIVE_NUMBER), ("Body", &long)]).await;
    assert_twilio_error(status, &body, 400, 21617);

    let (status, body) = client.create(&[("To", "555-1234"), ("From", LIVE_NUMBER), ("Body", "hi")]).await;
    assert_twilio_error(status, &body, 400, 21211);

    let (status, body) = client.create(&[("To", "+15551234567"), ("From", "+15559999999"), ("Body", "hi")]).await;
    assert_twilio_error(status, &body, 400, 21606);

    let (status, body) =
        client.create(&[("To", "+15551234567"), ("MessagingServiceSid", "MGnope"), ("Body", "hi")]).await;
    assert_twilio_error(status, &body, 400, 21705);

    let unknown_service = format!("MG{}", "9".repeat(32));
    let (status, body) =
        client.create(&[("To", "+15551234567"), ("MessagingServiceSid", &unknown_service), ("Body", "hi")]).await;
    assert_twilio_error(status, &body, 400, 21701);

    assert!(sim.messages().is_empty());
}

#[tokio::test]
async fn test_credentials_follow_the_magic_numbers_and_never_call_back() {
    let sim = Simulator::start(config()).await.unwrap();
    let receiver = Receiver::start(StatusCode::OK).await;
    let client = Client::test(&sim);

    let (status, body) = client
        .create(&[
            ("To", "+15551234567"),
            ("From", "+15005550006"),
            ("Body", "hello"),
            ("StatusCallback", &receiver.url),
        ])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "queued");

    let (status, body) = client.create(&[("To", "+15005550001"), ("From", "+15005550006"), ("Body", "hello")]).await;
    assert_twilio_error(status, &body, 400, 21211);

    let (status, body) = client.create(&[("To", "+15005550004"), ("From", "+15005550006"), ("Body", "hello")]).await;
    assert_twilio_error(status, &body, 400, 21610);

    let (status, body) = client.create(&[("To", "+15551234567"), ("From", "+15005550001"), ("Body", "hello")]).await;
    assert_twilio_error(status, &body, 400, 21212);

    // A live account's own number is not a sender for test credentials.
    let (status, body) = client.create(&[("To", "+15551234567"), ("From", LIVE_NUMBER), ("Body", "hello")]).await;
    assert_twilio_error(status, &body, 400, 21606);

    let (status, body) =
        client.create(&[("To", "+15551234567"), ("MessagingServiceSid", &service_sid()), ("Body", "hello")]).await;
    assert_twilio_error(status, &body, 400, 21701);

    assert!(sim.callbacks_settled(SETTLE).await);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(receiver.received().is_empty());
    let messages = sim.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].status, "queued");

    // Test credentials can create, not read.
    let (status, body) = client.fetch(&messages[0].sid).await;
    assert_twilio_error(status, &body, 403, 20008);
}

#[tokio::test]
async fn live_message_is_sent_then_delivered_with_signed_callbacks() {
    let sim = Simulator::start(config()).await.unwrap();
    let receiver = Receiver::start(StatusCode::OK).await;
    let client = Client::live(&sim);

    let (status, created) = client
        .create(&[
            ("To", "+15551234567"),
            ("From", LIVE_NUMBER),
            ("Body", "Your appointment is tomorrow at 10:00."),
            ("StatusCallback", &receiver.url),
            ("ValidityPeriod", "600"),
        ])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let sid = created["sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("SM") && sid.len() == 34);
    assert!(sid[2..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert_eq!(created["status"], "queued");
    assert_eq!(created["account_sid"], live_sid());
    assert_eq!(created["from"], LIVE_NUMBER);
    assert_eq!(created["messaging_service_sid"], Value::Null);
    assert_eq!(created["direction"], "outbound-api");
    assert_eq!(created["num_segments"], "1");
    assert_eq!(created["num_media"], "0");
    assert_eq!(created["price"], Value::Null);
    assert_eq!(created["price_unit"], "USD");
    assert_eq!(created["error_code"], Value::Null);
    assert_eq!(created["date_sent"], Value::Null);
    assert_eq!(created["api_version"], "2010-04-01");
    let date = created["date_created"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc2822(date).is_ok(), "{date}");
    assert!(date.ends_with(" +0000"), "{date}");
    let uri = format!("/2010-04-01/Accounts/{}/Messages/{sid}", live_sid());
    assert_eq!(created["uri"], format!("{uri}.json"));
    assert_eq!(created["subresource_uris"], json!({ "media": format!("{uri}/Media.json") }));

    assert!(sim.callbacks_settled(SETTLE).await);
    let callbacks = receiver.received();
    let statuses: Vec<_> = callbacks.iter().map(|c| c.param("MessageStatus").unwrap()).collect();
    assert_eq!(statuses, ["sent", "delivered"]);
    for callback in &callbacks {
        let signature = callback.signature.as_deref().unwrap();
        assert!(signature::verify(LIVE_TOKEN, &receiver.url, &callback.params, signature));
        assert!(!signature::verify("another-token", &receiver.url, &callback.params, signature));
        assert_eq!(callback.param("MessageSid"), Some(sid.as_str()));
        assert_eq!(callback.param("SmsSid"), Some(sid.as_str()));
        assert_eq!(callback.param("SmsStatus"), callback.param("MessageStatus"));
        assert_eq!(callback.param("AccountSid"), Some(live_sid().as_str()));
        assert_eq!(callback.param("From"), Some(LIVE_NUMBER));
        assert_eq!(callback.param("To"), Some("+15551234567"));
        assert_eq!(callback.param("ApiVersion"), Some("2010-04-01"));
        assert_eq!(callback.param("ErrorCode"), None);
        assert_eq!(callback.param("MessagingServiceSid"), None);
    }
    assert_eq!(callbacks[0].param("RawDlrDoneDate"), None);
    let dlr = callbacks[1].param("RawDlrDoneDate").unwrap();
    assert!(dlr.len() == 10 && dlr.bytes().all(|b| b.is_ascii_digit()), "{dlr}");

    let (status, fetched) = client.fetch(&sid).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched["status"], "delivered");
    assert!(fetched["date_sent"].is_string());
    assert_eq!(fetched["body"], "Your appointment is tomorrow at 10:00.");

    let (status, missing) = client.fetch(&format!("SM{}", "0".repeat(32))).await;
    assert_twilio_error(status, &missing, 404, 20404);
}

#[tokio::test]
async fn an_undelivered_override_reports_its_error_code() {
    let sim = Simulator::start(config()).await.unwrap();
    let receiver = Receiver::start(StatusCode::OK).await;
    let client = Client::live(&sim);
    sim.set_override("+15550000003", Outcome::Undelivered(30003));

    let (status, created) = client
        .create(&[("To", "+15550000003"), ("From", LIVE_NUMBER), ("Body", "hi"), ("StatusCallback", &receiver.url)])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(sim.callbacks_settled(SETTLE).await);

    let callbacks = receiver.received();
    let steps: Vec<_> = callbacks.iter().map(|c| (c.param("MessageStatus").unwrap(), c.param("ErrorCode"))).collect();
    assert_eq!(steps, [("sent", None), ("undelivered", Some("30003"))]);
    let last = &callbacks[1];
    assert!(last.param("RawDlrDoneDate").is_some());
    assert!(signature::verify(LIVE_TOKEN, &receiver.url, &last.params, last.signature.as_deref().unwrap()));

    let (_, fetched) = client.fetch(created["sid"].as_str().unwrap()).await;
    assert_eq!(fetched["status"], "undelivered");
    assert_eq!(fetched["error_code"], 30003);
    let stored = &sim.messages()[0];
    assert_eq!((stored.status.as_str(), stored.error_code), ("undelivered", Some(30003)));

    // Cleared overrides fall back to delivery.
    sim.clear_overrides();
    client.create(&[("To", "+15550000003"), ("From", LIVE_NUMBER), ("Body", "hi")]).await;
    assert!(sim.callbacks_settled(SETTLE).await);
    assert_eq!(sim.messages()[1].status, "delivered");
}

#[tokio::test]
async fn a_failed_override_set_over_http_skips_sent() {
    let sim = Simulator::start(config()).await.unwrap();
    let receiver = Receiver::start(StatusCode::OK).await;
    let client = Client::live(&sim);
    let control = sim.base_url().join("sim/overrides").unwrap();

    let response = client
        .http
        .post(control.clone())
        .json(&json!({ "to": "+15550000001", "outcome": "failed" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let response = client
        .http
        .post(control.clone())
        .json(&json!({ "to": "+15550000001", "outcome": "failed", "error_code": 30001 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    client
        .create(&[("To", "+15550000001"), ("From", LIVE_NUMBER), ("Body", "hi"), ("StatusCallback", &receiver.url)])
        .await;
    assert!(sim.callbacks_settled(SETTLE).await);
    let callbacks = receiver.received();
    assert_eq!(callbacks.len(), 1);
    assert_eq!(callbacks[0].param("MessageStatus"), Some("failed"));
    assert_eq!(callbacks[0].param("ErrorCode"), Some("30001"));
    assert_eq!(callbacks[0].param("RawDlrDoneDate"), None);

    let response = client.http.delete(control).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    client.create(&[("To", "+15550000001"), ("From", LIVE_NUMBER), ("Body", "hi")]).await;
    assert!(sim.callbacks_settled(SETTLE).await);
    assert_eq!(sim.messages()[1].status, "delivered");
}

#[tokio::test]
async fn a_messaging_service_picks_a_pool_sender_later() {
    let sim = Simulator::start(config()).await.unwrap();
    let receiver = Receiver::start(StatusCode::OK).await;
    let client = Client::live(&sim);
    let service = service_sid();

    let (status, created) = client
        .create(&[
            ("To", "+15551234567"),
            ("MessagingServiceSid", &service),
            ("Body", &"ç".repeat(71)),
            ("StatusCallback", &receiver.url),
        ])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["status"], "accepted");
    assert_eq!(created["from"], Value::Null);
    assert_eq!(created["messaging_service_sid"], service);
    assert_eq!(created["num_segments"], "0");

    assert!(sim.callbacks_settled(SETTLE).await);
    let callbacks = receiver.received();
    assert_eq!(callbacks.len(), 2);
    let from = callbacks[0].param("From").unwrap();
    assert!(POOL.contains(&from), "{from}");
    for callback in &callbacks {
        assert_eq!(callback.param("MessagingServiceSid"), Some(service.as_str()));
        assert_eq!(callback.param("From"), Some(from));
        assert!(signature::verify(LIVE_TOKEN, &receiver.url, &callback.params, callback.signature.as_deref().unwrap()));
    }
    let (_, fetched) = client.fetch(created["sid"].as_str().unwrap()).await;
    assert_eq!(fetched["from"], from);
    assert_eq!(fetched["num_segments"], "2");
}

#[tokio::test]
async fn a_refused_callback_is_not_retried() {
    let sim = Simulator::start(config()).await.unwrap();
    let receiver = Receiver::start(StatusCode::INTERNAL_SERVER_ERROR).await;
    let client = Client::live(&sim);
    client
        .create(&[("To", "+15551234567"), ("From", LIVE_NUMBER), ("Body", "hi"), ("StatusCallback", &receiver.url)])
        .await;
    assert!(sim.callbacks_settled(SETTLE).await);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(receiver.received().len(), 2);
    assert_eq!(sim.messages()[0].status, "delivered");
}

#[tokio::test]
async fn every_api_request_is_recorded_in_order() {
    let sim = Simulator::start(config()).await.unwrap();
    let client = Client::live(&sim);
    client.create(&[("From", LIVE_NUMBER), ("Body", "no recipient")]).await;
    let (_, created) = client.create(&[("To", "+15551234567"), ("From", LIVE_NUMBER), ("Body", "a+b & c")]).await;
    client.fetch(created["sid"].as_str().unwrap()).await;

    let requests = sim.requests();
    let summary: Vec<_> = requests.iter().map(|r| (r.method.as_str(), r.response_status)).collect();
    assert_eq!(summary, [("POST", 400), ("POST", 201), ("GET", 200)]);
    assert_eq!(
        requests[1].params,
        [
            ("To".to_owned(), "+15551234567".to_owned()),
            ("From".to_owned(), LIVE_NUMBER.to_owned()),
            ("Body".to_owned(), "a+b & c".to_owned()),
        ]
    );
    assert_eq!(requests[1].path, format!("/2010-04-01/Accounts/{}/Messages.json", live_sid()));
    assert!(requests.windows(2).all(|w| w[0].received_at <= w[1].received_at));

    // The same views over the control surface, which itself is not recorded.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let over_http: Value =
        http.get(sim.base_url().join("sim/requests").unwrap()).send().await.unwrap().json().await.unwrap();
    assert_eq!(over_http.as_array().unwrap().len(), 3);
    assert_eq!(over_http[1]["params"][2], json!(["Body", "a+b & c"]));
    let messages: Value =
        http.get(sim.base_url().join("sim/messages").unwrap()).send().await.unwrap().json().await.unwrap();
    assert_eq!(messages[0]["sid"], created["sid"]);
    assert_eq!(sim.requests().len(), 3);
}

#[tokio::test]
async fn unknown_routes_answer_in_twilio_shape() {
    let sim = Simulator::start(config()).await.unwrap();
    let client = Client::live(&sim);
    let response =
        client.http.get(client.messages_url()).basic_auth(live_sid(), Some(LIVE_TOKEN)).send().await.unwrap();
    let status = response.status();
    assert_twilio_error(status, &response.json().await.unwrap(), 405, 20004);

    let response =
        client.http.post(sim.base_url().join("2010-04-01/Accounts/x/Calls.json").unwrap()).send().await.unwrap();
    let status = response.status();
    assert_twilio_error(status, &response.json().await.unwrap(), 404, 20404);
    assert_eq!(sim.requests().len(), 2);
}
