//! Every sample in `events/` runs through its function's handler against the local stack.

use std::path::PathBuf;

use aws_lambda_events::sqs::SqsEvent;
use chrono::TimeDelta;
use http_body_util::BodyExt;
use lambda_runtime::{Context, LambdaEvent};
use shared::config::Settings;
use shared::ids::{ClinicId, ConnectionId, MessageId};
use shared::message::{Lane, Message, MessageBody};
use shared::message_status::MessageStatus;
use shared::phone::E164;
use shared::services::Services;
use tower::ServiceExt;

use crate::support::TestStack;

const SHOWN_ID: &str = "01JC3Z8R6X5Y7W2V9T4Q0N1B2C";
const QUEUED_ID: &str = "01JC3Z8R6X5Y7W2V9T4Q0N1B2D";

fn sample(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn message(t: &TestStack, id: &str, to: &str) -> Message {
    let mut m = Message::new_outbound(
        ClinicId::new("demo"),
        E164::parse(to, None).expect("valid number"),
        MessageBody::parse("Max's checkup is tomorrow at 9:00").expect("valid body"),
        ConnectionId::new("main"),
        Lane::Interactive,
        None,
        t.stack.services.clock.now(),
    );
    m.id = id.parse::<MessageId>().expect("a ULID");
    m
}

async fn run_http(app: axum::Router, event: &str) -> (u16, serde_json::Value) {
    let request = lambda_http::request::from_str(event).expect("an API Gateway event");
    let response = app.oneshot(request).await.expect("the router answers");
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.expect("a body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn every_sample_runs_through_its_handler() {
    let t = TestStack::start().await;
    let services = &t.stack.services;
    let now = services.clock.now();
    devstack::seed::front_desk(&services.clinics, "demo", "sample", now).await.expect("the sample user stored");

    // api: create
    let (status, body) = run_http(api::router(services.clone()), &sample("api-create-message.json")).await;
    assert_eq!(status, 202, "{body}");
    let created = t.wait_for_status(body["id"].as_str().expect("id"), "delivered").await;
    assert_eq!(created["to"], "+14155550199");

    // api: show, and twilio-webhooks: a delivered callback for a submitted message
    let sid = format!("SM{}", "5e".repeat(16));
    let shown = message(&t, SHOWN_ID, "+14155550199")
        .claim(now, TimeDelta::seconds(30))
        .and_then(|m| m.accepted(1, &sid, "queued", now))
        .expect("a submitted message");
    services.messages.insert(&shown).await.expect("stored");
    let (status, body) = run_http(api::router(services.clone()), &sample("api-get-message.json")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("submitted")), "{body}");

    let as_deployed = Services::new(
        Settings {
            public_base_url: "https://abc123.execute-api.us-east-1.amazonaws.com".parse().expect("url"),
            twilio: shared::config::TwilioSettings {
                auth_token: "sample-auth-token".into(),
                ..services.settings.twilio.clone()
            },
            ..(*services.settings).clone()
        },
        &t.stack.aws,
        services.clock.clone(),
        services.timing,
    )
    .expect("services");
    let (status, _) =
        run_http(twilio_webhooks::router(as_deployed.clone()), &sample("twilio-status-callback.json")).await;
    assert_eq!(status, 200);
    assert_eq!(t.wait_for_status(SHOWN_ID, "delivered").await["twilio_sid"], sid.as_str());

    // twilio-webhooks: a patient's text to the demo clinic's number
    let (status, _) = run_http(twilio_webhooks::router(as_deployed), &sample("twilio-inbound-text.json")).await;
    assert_eq!(status, 200);
    let received: Vec<_> =
        t.clinic_messages("demo").await.into_iter().filter(|m| m.status == MessageStatus::Received).collect();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body.as_str(), "Can we move Max to Friday?");

    // sender: one send job
    services.messages.insert(&message(&t, QUEUED_ID, "+14155550198")).await.expect("stored");
    let event: SqsEvent = serde_json::from_str(&sample("sender-send-job.json")).expect("an SQS event");
    let response = sender::handle(services, LambdaEvent::new(event, Context::default())).await.expect("handled");
    assert!(response.batch_item_failures.is_empty());
    let sent = services.messages.get(&QUEUED_ID.parse().expect("id")).await.expect("read").expect("exists");
    assert!(matches!(sent.status, MessageStatus::Submitted | MessageStatus::Sent | MessageStatus::Delivered));
    assert!(sent.twilio_sid.is_some());
}

#[tokio::test]
async fn the_scheduler_tick_and_the_mass_alert_samples_run_through_their_handlers() {
    let t = TestStack::start().await;
    let services = &t.stack.services;

    // scheduler: the every-minute tick (nothing due in a fresh stack: four empty sweeps)
    let tick: aws_lambda_events::eventbridge::EventBridgeEvent<serde_json::Value> =
        serde_json::from_str(&sample("scheduler-tick.json")).expect("an EventBridge event");
    let report = scheduler::handle(services, LambdaEvent::new(tick, Context::default())).await.expect("the tick runs");
    assert_eq!((report.reminders.errors, report.scheduled_texts, report.mass_alerts_closed), (0, 0, 0), "{report:?}");

    // mass-alert-fanout: a confirmed alert this stack does not hold is read, found absent, and
    // its record done with (nothing to fan out, nothing to retry)
    let confirmed: SqsEvent = serde_json::from_str(&sample("mass-alert-fanout.json")).expect("an SQS event");
    let response =
        mass_alert_fanout::handle(services, LambdaEvent::new(confirmed, Context::default())).await.expect("handled");
    assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);
    assert_eq!(t.message_count().await, 0, "nothing fanned out");
}
