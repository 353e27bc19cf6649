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
use twilio_sim::{
    Account, AccountKind, Fault, FaultPlan, InboundText, MessagingService, OptOutType, Outcome, SimConfig, Simulator,
};

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

    /// `GET …/Messages.json` with this query.
    async fn list(&self, query: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut url = self.messages_url();
        url.query_pairs_mut().extend_pairs(query);
        self.get(url.as_str()).await
    }

    /// A GET of a path-and-query such as a page's `next_page_uri`, or of a full URL.
    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(self.base.join(uri).unwrap())
            .basic_auth(&self.account_sid, Some(&self.token))
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
        let app = Router::new()
            .route("/twilio/status", post(receive))
            .route("/twilio/inbound", post(receive))
            .with_state((Arc::clone(&received), status));
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
        client.http.delete(client.messages_url()).basic_auth(live_sid(), Some(LIVE_TOKEN)).send().await.unwrap();
    let status = response.status();
    assert_twilio_error(status, &response.json().await.unwrap(), 405, 20004);

    let response =
        client.http.post(sim.base_url().join("2010-04-01/Accounts/x/Calls.json").unwrap()).send().await.unwrap();
    let status = response.status();
    assert_twilio_error(status, &response.json().await.unwrap(), 404, 20404);
    assert_eq!(sim.requests().len(), 2);
}

fn sids(page: &Value) -> Vec<String> {
    page["messages"].as_array().unwrap().iter().map(|m| m["sid"].as_str().unwrap().to_owned()).collect()
}

/// The UTC day of a message's RFC 2822 `date_sent`.
fn day_sent(message: &Value) -> chrono::NaiveDate {
    chrono::DateTime::parse_from_rfc2822(message["date_sent"].as_str().unwrap()).unwrap().date_naive()
}

#[tokio::test]
async fn the_list_filters_by_recipient_sender_and_date_sent_newest_first() {
    let sim = Simulator::start(config()).await.unwrap();
    let receiver = Receiver::start(StatusCode::OK).await;
    let client = Client::live(&sim);
    // Held in Twilio's queue: never sent, so no date_sent.
    let response = client
        .http
        .post(sim.base_url().join("sim/overrides").unwrap())
        .json(&json!({ "to": "+15550000009", "outcome": "hold" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let mut created = Vec::new();
    for to in ["+15550000001", "+15550000002", "+15550000001", "+15550000009", "+15550000001"] {
        let (status, body) = client
            .create(&[("To", to), ("From", LIVE_NUMBER), ("Body", "hi"), ("StatusCallback", &receiver.url)])
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        created.push(body["sid"].as_str().unwrap().to_owned());
    }
    assert!(sim.callbacks_settled(SETTLE).await);

    let (status, all) = client.list(&[]).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let newest_first: Vec<_> = created.iter().rev().cloned().collect();
    assert_eq!(sids(&all), newest_first);
    let path = format!("/2010-04-01/Accounts/{}/Messages.json", live_sid());
    assert_eq!(all["page"], 0);
    assert_eq!(all["page_size"], 50);
    assert_eq!((all["start"].as_u64(), all["end"].as_u64()), (Some(0), Some(4)));
    assert_eq!(all["first_page_uri"], format!("{path}?PageSize=50&Page=0"));
    assert_eq!(all["uri"], format!("{path}?PageSize=50&Page=0"));
    assert_eq!(all["next_page_uri"], Value::Null);
    assert_eq!(all["previous_page_uri"], Value::Null);
    for message in all["messages"].as_array().unwrap() {
        assert!(message.get("status_callback").is_none(), "{message}");
        assert_eq!(message["account_sid"], live_sid());
    }
    // The simulator still knows the callback URL of every message.
    assert!(sim.messages().iter().all(|m| m.status_callback.as_deref() == Some(receiver.url.as_str())));

    let (_, to_one) = client.list(&[("To", "+15550000001")]).await;
    assert_eq!(sids(&to_one), [created[4].clone(), created[2].clone(), created[0].clone()]);
    assert_eq!(to_one["uri"], format!("{path}?To=%2B15550000001&PageSize=50&Page=0"));
    let (_, from_ours) = client.list(&[("From", LIVE_NUMBER), ("To", "+15550000002")]).await;
    assert_eq!(sids(&from_ours), [created[1].clone()]);
    let (_, from_other) = client.list(&[("From", "+15017129999")]).await;
    assert_eq!(sids(&from_other), Vec::<String>::new());
    assert_eq!((from_other["start"].as_u64(), from_other["end"].as_u64()), (Some(0), Some(0)));

    // The held message is still queued with no date_sent; the others were sent.
    let (_, held) = client.list(&[("To", "+15550000009")]).await;
    assert_eq!(held["messages"][0]["status"], "queued");
    assert_eq!(held["messages"][0]["date_sent"], Value::Null);
    let sent_messages = to_one["messages"].as_array().unwrap();
    let today = day_sent(&sent_messages[0]);
    assert!(sent_messages.iter().all(|m| m["status"] == "delivered" && day_sent(m) == today));
    let day = |offset: i64| (today + chrono::Duration::days(offset)).format("%Y-%m-%d").to_string();

    let sent = [created[4].clone(), created[2].clone(), created[1].clone(), created[0].clone()];
    let (status, on_the_day) = client.list(&[("DateSent", &day(0))]).await;
    assert_eq!(status, StatusCode::OK, "{on_the_day}");
    assert_eq!(sids(&on_the_day), sent);
    assert_eq!(sids(&client.list(&[("DateSent", &day(-1))]).await.1), Vec::<String>::new());
    assert_eq!(sids(&client.list(&[("DateSent>", &day(0))]).await.1), sent);
    assert_eq!(sids(&client.list(&[("DateSent>", &day(1))]).await.1), Vec::<String>::new());
    assert_eq!(sids(&client.list(&[("DateSent<", &day(0))]).await.1), sent);
    assert_eq!(sids(&client.list(&[("DateSent<", &day(-1))]).await.1), Vec::<String>::new());
    let (_, window) = client.list(&[("DateSent>", &day(-1)), ("DateSent<", &day(1)), ("To", "+15550000002")]).await;
    assert_eq!(sids(&window), [created[1].clone()]);
    let (_, held_by_date) = client.list(&[("DateSent", &day(0)), ("To", "+15550000009")]).await;
    assert_eq!(sids(&held_by_date), Vec::<String>::new());

    // `DateSent<=…` written raw in the URL is the `DateSent<` parameter.
    let (status, raw) = client.get(&format!("{path}?DateSent<={}&To=%2B15550000002", day(0))).await;
    assert_eq!(status, StatusCode::OK, "{raw}");
    assert_eq!(sids(&raw), [created[1].clone()]);
    let (status, body) = client.list(&[("DateSent", "yesterday")]).await;
    assert_twilio_error(status, &body, 400, 20001);
    let (status, body) = client.list(&[("PageSize", "1001")]).await;
    assert_twilio_error(status, &body, 400, 20001);

    let (status, body) = Client::test(&sim).list(&[]).await;
    assert_twilio_error(status, &body, 403, 20008);
    let (status, body) = Client::new(&sim, live_sid(), "wrong").list(&[]).await;
    assert_twilio_error(status, &body, 401, 20003);
}

#[tokio::test]
async fn the_list_pages_by_token_until_next_page_uri_is_null() {
    let sim = Simulator::start(config()).await.unwrap();
    let client = Client::live(&sim);
    let mut created = Vec::new();
    for n in 0..7 {
        let (_, body) =
            client.create(&[("To", "+15550000001"), ("From", LIVE_NUMBER), ("Body", &format!("#{n}"))]).await;
        created.push(body["sid"].as_str().unwrap().to_owned());
    }
    // Another recipient's messages are filtered out of every page.
    client.create(&[("To", "+15550000002"), ("From", LIVE_NUMBER), ("Body", "other")]).await;

    let (status, first) = client.list(&[("To", "+15550000001"), ("PageSize", "3")]).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    // A message created after the first page shifts nothing: pages continue after a message.
    client.create(&[("To", "+15550000001"), ("From", LIVE_NUMBER), ("Body", "late")]).await;

    let mut pages = vec![first];
    while let Some(next) = pages.last().unwrap()["next_page_uri"].as_str().map(str::to_owned) {
        assert!(next.contains("To=%2B15550000001") && next.contains("PageToken=PASM"), "{next}");
        let (status, page) = client.get(&next).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["uri"], next);
        pages.push(page);
        assert!(pages.len() < 10, "next_page_uri never ends");
    }
    let summary: Vec<_> = pages
        .iter()
        .map(|p| (p["page"].as_u64().unwrap(), p["start"].as_u64().unwrap(), p["end"].as_u64().unwrap()))
        .collect();
    assert_eq!(summary, [(0, 0, 2), (1, 3, 5), (2, 6, 6)]);
    assert!(pages.iter().all(|p| p["page_size"] == 3 && p["first_page_uri"] == pages[0]["first_page_uri"]));
    let listed: Vec<_> = pages.iter().flat_map(sids).collect();
    assert_eq!(listed, created.iter().rev().cloned().collect::<Vec<_>>());

    // Back from the last page to the middle one.
    assert_eq!(pages[0]["previous_page_uri"], Value::Null);
    let previous = pages[2]["previous_page_uri"].as_str().unwrap();
    let (_, middle) = client.get(previous).await;
    assert_eq!(sids(&middle), sids(&pages[1]));

    // Twilio refuses a page number without a token.
    let (status, body) = client.list(&[("PageSize", "3"), ("Page", "1")]).await;
    assert_twilio_error(status, &body, 400, 70002);
}

const FIELDS: [(&str, &str); 3] = [("To", "+15551234567"), ("From", LIVE_NUMBER), ("Body", "hi")];

fn statuses_and_faults(sim: &Simulator) -> Vec<(u16, Option<String>)> {
    sim.requests().into_iter().map(|r| (r.response_status, r.fault)).collect()
}

#[tokio::test]
async fn a_throttled_create_is_a_429_with_retry_after_and_creates_nothing() {
    let sim = Simulator::start(config()).await.unwrap();
    let client = Client::live(&sim);
    sim.inject(Fault::Throttle { retry_after_secs: Some(3) }, FaultPlan::next(1));

    let response = client
        .http
        .post(client.messages_url())
        .basic_auth(live_sid(), Some(LIVE_TOKEN))
        .form(&FIELDS)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers().get("retry-after").unwrap(), "3");
    let status = response.status();
    assert_twilio_error(status, &response.json().await.unwrap(), 429, 20429);
    assert!(sim.messages().is_empty());

    // Spent after one request.
    let (status, _) = client.create(&FIELDS).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(sim.messages().len(), 1);

    sim.inject(Fault::Throttle { retry_after_secs: None }, FaultPlan::next(1));
    let response = client
        .http
        .post(client.messages_url())
        .basic_auth(live_sid(), Some(LIVE_TOKEN))
        .form(&FIELDS)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().get("retry-after").is_none());
    assert_eq!(
        statuses_and_faults(&sim),
        [(429, Some("throttle".to_owned())), (201, None), (429, Some("throttle".to_owned()))]
    );
}

#[tokio::test]
async fn a_500_may_or_may_not_have_created_the_message() {
    let sim = Simulator::start(config()).await.unwrap();
    let receiver = Receiver::start(StatusCode::OK).await;
    let client = Client::live(&sim);
    let fields = [("To", "+15551234567"), ("From", LIVE_NUMBER), ("Body", "hi"), ("StatusCallback", &receiver.url)];

    sim.inject(Fault::ServerErrorNotCreated, FaultPlan::next(1));
    let (status, body) = client.create(&fields).await;
    assert_twilio_error(status, &body, 500, 20500);
    assert!(sim.messages().is_empty());

    sim.inject(Fault::ServerErrorCreated, FaultPlan::next(1));
    let (status, body) = client.create(&fields).await;
    assert_twilio_error(status, &body, 500, 20500);
    let messages = sim.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].status_callback.as_deref(), Some(receiver.url.as_str()));

    // The created message lives on: it is delivered and calls back like any other.
    assert!(sim.callbacks_settled(SETTLE).await);
    let callbacks = receiver.received();
    assert_eq!(callbacks.len(), 2);
    assert!(callbacks.iter().all(|c| c.param("MessageSid") == Some(messages[0].sid.as_str())));
    assert_eq!(sim.messages()[0].status, "delivered");
    assert_eq!(
        statuses_and_faults(&sim),
        [(500, Some("server_error_not_created".to_owned())), (500, Some("server_error_created".to_owned()))]
    );
}

#[tokio::test]
async fn a_slow_answer_times_the_client_out_with_or_without_the_message() {
    let sim = Simulator::start(config()).await.unwrap();
    let mut client = Client::live(&sim);
    client.http = reqwest::Client::builder().no_proxy().timeout(Duration::from_millis(200)).build().unwrap();

    sim.inject(Fault::Slow { delay_ms: 1500, created: true }, FaultPlan::next(1));
    let error =
        client.http.post(client.messages_url()).basic_auth(live_sid(), Some(LIVE_TOKEN)).form(&FIELDS).send().await;
    assert!(error.unwrap_err().is_timeout());
    assert_eq!(sim.messages().len(), 1);

    sim.inject(Fault::Slow { delay_ms: 1500, created: false }, FaultPlan::next(1));
    let error =
        client.http.post(client.messages_url()).basic_auth(live_sid(), Some(LIVE_TOKEN)).form(&FIELDS).send().await;
    assert!(error.unwrap_err().is_timeout());
    assert_eq!(sim.messages().len(), 1);

    assert_eq!(statuses_and_faults(&sim), [(201, Some("slow".to_owned())), (503, Some("slow".to_owned()))]);

    // A patient client gets the late answer.
    let patient = Client::live(&sim);
    sim.inject(Fault::Slow { delay_ms: 300, created: true }, FaultPlan::next(1));
    let (status, body) = patient.create(&FIELDS).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(sim.messages().len(), 2);
}

#[tokio::test]
async fn a_dropped_connection_is_a_connection_error_not_a_status() {
    let sim = Simulator::start(config()).await.unwrap();
    let client = Client::live(&sim);
    let send = || client.http.post(client.messages_url()).basic_auth(live_sid(), Some(LIVE_TOKEN)).form(&FIELDS).send();

    sim.inject(Fault::DropAfterRead { created: true }, FaultPlan::next(1));
    let error = send().await.unwrap_err();
    assert!(error.status().is_none() && !error.is_timeout() && !error.is_status(), "{error:?}");
    assert!(error.is_request() || error.is_connect(), "{error:?}");
    assert_eq!(sim.messages().len(), 1);

    sim.inject(Fault::DropAfterRead { created: false }, FaultPlan::next(1));
    let error = send().await.unwrap_err();
    assert!(error.status().is_none() && !error.is_timeout(), "{error:?}");
    assert_eq!(sim.messages().len(), 1);

    // The client recovers on a new connection; nothing was retried behind its back.
    assert_eq!(send().await.unwrap().status(), StatusCode::CREATED);
    assert_eq!(sim.messages().len(), 2);
    assert_eq!(
        statuses_and_faults(&sim),
        [(0, Some("drop_after_read".to_owned())), (0, Some("drop_after_read".to_owned())), (201, None)]
    );
}

#[tokio::test]
async fn a_full_queue_is_21611_and_a_plan_can_target_one_recipient() {
    let sim = Simulator::start(config()).await.unwrap();
    let client = Client::live(&sim);
    sim.inject(Fault::QueueFull, FaultPlan::always().only_to("+15550000002"));

    let (status, body) = client.create(&[("To", "+15550000002"), ("From", LIVE_NUMBER), ("Body", "hi")]).await;
    assert_twilio_error(status, &body, 400, 21611);
    let (status, _) = client.create(&[("To", "+15550000001"), ("From", LIVE_NUMBER), ("Body", "hi")]).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = client.create(&[("To", "+15550000002"), ("From", LIVE_NUMBER), ("Body", "hi")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(sim.messages().len(), 1);

    sim.clear_faults();
    let (status, _) = client.create(&[("To", "+15550000002"), ("From", LIVE_NUMBER), ("Body", "hi")]).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(sim.messages().len(), 2);
}

/// The statuses of `n` create requests.
async fn create_statuses(client: &Client, n: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..n {
        statuses.push(client.create(&FIELDS).await.0.as_u16());
    }
    statuses
}

#[tokio::test]
async fn times_and_seeded_probabilities_are_deterministic() {
    let sim = Simulator::start(config()).await.unwrap();
    let client = Client::live(&sim);
    sim.inject(Fault::ServerErrorNotCreated, FaultPlan::next(2));
    sim.inject(Fault::QueueFull, FaultPlan::next(1));
    assert_eq!(create_statuses(&client, 5).await, [500, 500, 400, 201, 201]);

    // The same seeded plan, set over HTTP on two simulators, picks the same requests.
    let mut runs = Vec::new();
    for _ in 0..2 {
        let sim = Simulator::start(config()).await.unwrap();
        let client = Client::live(&sim);
        let response = client
            .http
            .post(sim.base_url().join("sim/faults").unwrap())
            .json(&json!({
                "fault": { "kind": "server_error_not_created" },
                "plan": { "probability": 0.5, "seed": 7 },
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let statuses = create_statuses(&client, 16).await;
        let failures = statuses.iter().filter(|s| **s == 500).count();
        assert_eq!(sim.messages().len(), 16 - failures);
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(runs[0].contains(&500) && runs[0].contains(&201), "{:?}", runs[0]);

    // With `times` as well, the draw picks at most that many.
    let sim = Simulator::start(config()).await.unwrap();
    let client = Client::live(&sim);
    sim.inject(Fault::ServerErrorNotCreated, FaultPlan { times: Some(2), ..FaultPlan::seeded_chance(0.5, 7) });
    let statuses = create_statuses(&client, 16).await;
    assert_eq!(statuses.iter().filter(|s| **s == 500).count(), 2);
    let first_two: Vec<_> = runs[0].iter().enumerate().filter(|(_, s)| **s == 500).map(|(i, _)| i).take(2).collect();
    let capped: Vec<_> = statuses.iter().enumerate().filter(|(_, s)| **s == 500).map(|(i, _)| i).collect();
    assert_eq!(first_two, capped);
}

#[tokio::test]
async fn faults_over_http_are_checked_and_cleared() {
    let sim = Simulator::start(config()).await.unwrap();
    let client = Client::live(&sim);
    let control = sim.base_url().join("sim/faults").unwrap();
    let post = |body: Value| client.http.post(control.clone()).json(&body).send();

    let response = post(json!({ "fault": { "kind": "queue_full" }, "plan": { "probability": 2.0 } })).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let response = post(json!({ "fault": { "kind": "melt_down" } })).await.unwrap();
    assert!(response.status().is_client_error());

    let response = post(json!({ "fault": { "kind": "slow", "delay_ms": 10, "created": true } })).await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response =
        post(json!({ "fault": { "kind": "throttle", "retry_after_secs": 1 }, "plan": { "to": "+15550000002" } }))
            .await
            .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    // The first plan matches everything, so the throttle never gets its turn.
    let (status, _) = client.create(&[("To", "+15550000002"), ("From", LIVE_NUMBER), ("Body", "hi")]).await;
    assert_eq!(status, StatusCode::CREATED);

    assert_eq!(client.http.delete(control.clone()).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    client.create(&FIELDS).await;
    assert_eq!(statuses_and_faults(&sim), [(201, Some("slow".to_owned())), (201, None)]);
}

#[tokio::test]
async fn a_phone_texts_a_number_and_the_inbound_webhook_gets_twilios_signed_fields() {
    let sim = Simulator::start(config()).await.unwrap();
    let receiver = Receiver::start(StatusCode::OK).await;
    let inbound_url = receiver.url.replace("/twilio/status", "/twilio/inbound");
    sim.set_inbound_url(LIVE_NUMBER, &inbound_url);

    let mut text = InboundText::new("+14155550123", LIVE_NUMBER, "Stop");
    text.opt_out_type = Some(OptOutType::Stop);
    text.duplicate = true;
    let delivery = sim.send_inbound(text).await.unwrap();
    assert_eq!(delivery.response_statuses, [200, 200], "posted twice");
    assert_eq!(delivery.url, inbound_url);
    let received = receiver.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].params, received[1].params, "the same text, same MessageSid");
    let first = &received[0];
    let sid = first.param("MessageSid").unwrap();
    assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");
    for (name, expected) in [
        ("SmsSid", sid),
        ("SmsMessageSid", sid),
        ("AccountSid", live_sid().as_str()),
        ("From", "+14155550123"),
        ("To", LIVE_NUMBER),
        ("Body", "Stop"),
        ("NumMedia", "0"),
        ("NumSegments", "1"),
        ("SmsStatus", "received"),
        ("ApiVersion", "2010-04-01"),
        ("FromCountry", "US"),
        ("ToCountry", "US"),
        ("OptOutType", "STOP"),
    ] {
        assert_eq!(first.param(name), Some(expected), "{name}");
    }
    assert_eq!(first.param("MessagingServiceSid"), None, "the number is in no service");
    let signature = first.signature.as_deref().unwrap();
    assert!(signature::verify(LIVE_TOKEN, &inbound_url, &first.params, signature), "signed as Twilio signs");
    assert_eq!(sim.inbound_deliveries(), [delivery]);
}

#[tokio::test]
async fn a_pool_number_names_its_service_and_an_unknown_number_or_url_is_refused_over_http() {
    let sim = Simulator::start(config()).await.unwrap();
    let receiver = Receiver::start(StatusCode::OK).await;
    let inbound_url = receiver.url.replace("/twilio/status", "/twilio/inbound");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let control = |path: &str| sim.base_url().join(path).unwrap();

    let no_url = json!({"from": "+14155550123", "to": POOL[0], "body": "Hi"});
    let answer = http.post(control("/sim/inbound")).json(&no_url).send().await.unwrap();
    assert_eq!(answer.status(), 422, "no URL configured yet");
    let set = json!({"number": service_sid(), "url": inbound_url});
    assert_eq!(http.post(control("/sim/inbound-urls")).json(&set).send().await.unwrap().status(), 204);

    let answer = http.post(control("/sim/inbound")).json(&no_url).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let delivery: Value = answer.json().await.unwrap();
    assert_eq!(delivery["response_statuses"], json!([200]));
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].param("MessagingServiceSid"), Some(service_sid().as_str()));
    assert_eq!(received[0].param("OptOutType"), None);

    let nobodys = json!({"from": "+14155550123", "to": "+15017122699", "body": "Hi", "url": inbound_url});
    assert_eq!(http.post(control("/sim/inbound")).json(&nobodys).send().await.unwrap().status(), 422);
    let listed: Value = http.get(control("/sim/inbound")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
}
