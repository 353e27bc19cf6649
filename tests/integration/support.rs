//! One fresh system per test: its own tables, queues and simulator on a shared moto server.

use std::time::Duration;

use devstack::moto::MotoServer;
use devstack::stack::{Stack, StackOptions, TwilioAccount};
use serde_json::Value;

pub struct TestStack {
    pub stack: Stack,
    pub http: reqwest::Client,
    /// Present when this test started its own moto (no `CLINIC_SMS_MOTO_ENDPOINT` given).
    _moto: Option<MotoServer>,
}

/// A name prefix no other test uses (lowercase: it also names an S3 bucket).
pub fn unique_prefix() -> String {
    format!("t{}", ulid::Ulid::new().to_string().to_ascii_lowercase())
}

impl TestStack {
    pub async fn start() -> Self {
        Self::start_with(TwilioAccount::Live).await
    }

    pub async fn start_with(account: TwilioAccount) -> Self {
        Self::start_custom(|options| options.account = account).await
    }

    /// A stack with test options changed by `configure`.
    pub async fn start_custom(configure: impl FnOnce(&mut StackOptions)) -> Self {
        if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        }
        let (endpoint, moto) = match std::env::var("CLINIC_SMS_MOTO_ENDPOINT") {
            Ok(endpoint) => (endpoint, None),
            Err(_) => {
                let moto = MotoServer::start().await.expect("moto server starts");
                (moto.endpoint.clone(), Some(moto))
            }
        };
        let mut options = StackOptions::for_tests(unique_prefix());
        configure(&mut options);
        let stack = Stack::start(&endpoint, options).await.expect("local stack starts");
        Self { stack, http: reqwest::Client::new(), _moto: moto }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.stack.base_url)
    }

    pub fn key(&self) -> &str {
        &self.stack.demo.api_key
    }

    /// POSTs a JSON body to `/v1/messages` with the demo admin key.
    pub async fn post_message(&self, body: &Value) -> (u16, Value, String) {
        let response = self
            .http
            .post(self.url("/v1/messages"))
            .bearer_auth(self.key())
            .json(body)
            .send()
            .await
            .expect("API answers");
        read(response).await
    }

    /// Calls the API with `key` and an optional JSON body.
    pub async fn call(&self, key: &str, method: reqwest::Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let (status, body, _) = read(request.send().await.expect("API answers")).await;
        (status, body)
    }

    /// A second clinic in this stack, texting from `sender`.
    pub async fn other_clinic(&self, id: &str, sender: &str) -> devstack::seed::SeededClinic {
        let services = &self.stack.services;
        devstack::seed::clinic_with_connection(
            &services.clinics,
            &services.counters,
            id,
            sender,
            None,
            services.clock.now(),
        )
        .await
        .expect("second clinic")
    }

    pub async fn get_message(&self, id: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(&format!("/v1/messages/{id}")))
            .bearer_auth(self.key())
            .send()
            .await
            .expect("API answers");
        let (status, body, _) = read(response).await;
        (status, body)
    }

    /// Sends a text and returns its id.
    pub async fn send_text(&self, to: &str) -> String {
        let (status, body, _) =
            self.post_message(&serde_json::json!({"to": to, "body": "Reminder: checkup tomorrow 9am"})).await;
        assert_eq!(status, 202, "{body}");
        body["id"].as_str().expect("an id").to_owned()
    }

    /// Polls the API until the message reaches `status` (generous: this is about order, not speed).
    pub async fn wait_for_status(&self, id: &str, status: &str) -> Value {
        let mut last = Value::Null;
        // Up to a minute: CI runs every test at once on two cores.
        for _ in 0..1200 {
            let (_, body) = self.get_message(id).await;
            if body["status"] == status {
                return body;
            }
            last = body;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("message {id} never reached {status}; last seen: {last:#}");
    }

    /// How many messages the demo clinic has, through the clinic index.
    pub async fn message_count(&self) -> usize {
        let dynamo = aws_sdk_dynamodb::Client::new(&self.stack.aws);
        let out = dynamo
            .query()
            .table_name(&self.stack.resources.tables.messages)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :c")
            .expression_attribute_values(":c", aws_sdk_dynamodb::types::AttributeValue::S("CLINIC#demo".into()))
            .send()
            .await
            .expect("query works");
        out.items.unwrap_or_default().len()
    }
}

impl TestStack {
    /// Posts an inbound text to `/twilio/inbound` as Twilio would, signed with this stack's
    /// token; `extra` fields are added to Twilio's usual ones. Returns status, body, content type.
    pub async fn inbound(
        &self,
        sid: &str,
        from: &str,
        to: &str,
        body: &str,
        extra: &[(&str, &str)],
    ) -> (u16, String, String) {
        let mut params = vec![
            ("MessageSid", sid),
            ("SmsSid", sid),
            ("SmsMessageSid", sid),
            ("AccountSid", self.stack.services.settings.twilio.account_sid.as_str()),
            ("From", from),
            ("To", to),
            ("Body", body),
            ("NumMedia", "0"),
            ("NumSegments", "1"),
            ("SmsStatus", "received"),
            ("ApiVersion", "2010-04-01"),
        ];
        params.extend_from_slice(extra);
        self.post_inbound_form(&params).await
    }

    /// Posts exactly these fields, signed, to `/twilio/inbound`.
    pub async fn post_inbound_form(&self, params: &[(&str, &str)]) -> (u16, String, String) {
        let url = self.url("/twilio/inbound");
        let (body, signature) = signed_form(&self.stack.services.settings.twilio.auth_token, &url, params);
        let response = self
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", signature)
            .body(body)
            .send()
            .await
            .expect("webhook answers");
        let status = response.status().as_u16();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        (status, response.text().await.expect("a body"), content_type)
    }

    /// Every message of `clinic`, oldest first, through the clinic index.
    pub async fn clinic_messages(&self, clinic: &str) -> Vec<shared::message::Message> {
        let dynamo = aws_sdk_dynamodb::Client::new(&self.stack.aws);
        let mut pages = dynamo
            .query()
            .table_name(&self.stack.resources.tables.messages)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :c")
            .expression_attribute_values(":c", aws_sdk_dynamodb::types::AttributeValue::S(format!("CLINIC#{clinic}")))
            .into_paginator()
            .items()
            .send();
        let mut entries = Vec::new();
        while let Some(entry) = pages.try_next().await.expect("query works") {
            entries.push(entry);
        }
        let table = &self.stack.resources.tables.messages;
        let items = shared::dynamo::items_behind(&dynamo, table, &entries).await.expect("items");
        items.into_iter().map(|item| serde_dynamo::from_item(item).expect("a message")).collect()
    }
}

pub async fn read(response: reqwest::Response) -> (u16, Value, String) {
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let text = response.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)), content_type)
}

/// Form fields and signature as Twilio would post them to `url`.
pub fn signed_form(token: &str, url: &str, params: &[(&str, &str)]) -> (String, String) {
    let signature = shared::twilio::signature::sign(token, url, params.iter().copied());
    let body = serde_urlencoded_form(params);
    (body, signature)
}

fn serde_urlencoded_form(params: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish()
}
