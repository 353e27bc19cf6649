//! One text end to end: API → DynamoDB → SQS → sender → Twilio → signed callbacks → status.

use serde_json::json;
use twilio_sim::Outcome;

use crate::support::TestStack;

#[tokio::test]
async fn a_text_is_queued_sent_and_delivered() {
    let t = TestStack::start().await;
    let (status, body, _) =
        t.post_message(&json!({"to": "(415) 555-0123", "body": "Your pet's checkup is tomorrow"})).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "queued");
    let id = body["id"].as_str().expect("id");

    let shown = t.wait_for_status(id, "delivered").await;
    assert_eq!(shown["to"], "+14155550123", "the local number was read with the clinic's country");
    let sid = shown["twilio_sid"].as_str().expect("a Twilio SID");
    assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");
    let steps: Vec<&str> =
        shown["history"].as_array().expect("history").iter().filter_map(|h| h["status"].as_str()).collect();
    assert_eq!(steps, ["queued", "sending", "submitted", "sent", "delivered"]);
    assert!(shown["history"].as_array().is_some_and(|h| h.iter().all(|e| e["at"].is_string())));
    assert!(shown["error"].is_null());

    // Twilio got exactly one create, with our callback URL naming this message.
    let creates: Vec<_> = t.stack.simulator.requests().into_iter().filter(|r| r.method == "POST").collect();
    assert_eq!(creates.len(), 1);
    let param = |name: &str| creates[0].params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    assert_eq!(param("To").as_deref(), Some("+14155550123"));
    assert_eq!(param("From").as_deref(), Some(devstack::stack::DEMO_SENDER));
    let callback = param("StatusCallback").expect("a status callback");
    assert!(callback.starts_with(&t.url("/twilio/status?m=")) && callback.contains(id), "{callback}");
}

#[tokio::test]
async fn an_undelivered_text_shows_the_code_and_what_it_means() {
    let t = TestStack::start().await;
    t.stack.simulator.set_override("+14155550124", Outcome::Undelivered(30003));
    let id = t.send_text("+14155550124").await;
    let shown = t.wait_for_status(&id, "undelivered").await;
    assert_eq!(shown["error"]["code"], 30003);
    let description = shown["error"]["description"].as_str().unwrap_or_default();
    assert!(description.contains("switched off"), "{description}");
    assert!(shown["error"]["what_to_do"].as_str().is_some_and(|s| !s.is_empty()));
}

#[tokio::test]
async fn a_failed_callback_after_acceptance_ends_failed() {
    let t = TestStack::start().await;
    t.stack.simulator.set_override("+14155550125", Outcome::Failed(30007));
    let id = t.send_text("+14155550125").await;
    let shown = t.wait_for_status(&id, "failed").await;
    assert_eq!(shown["error"]["code"], 30007);
}

#[tokio::test]
async fn the_test_account_refuses_the_magic_invalid_number_with_21211() {
    let t = TestStack::start_with(devstack::stack::TwilioAccount::Test).await;
    let id = t.send_text("+15005550001").await;
    let shown = t.wait_for_status(&id, "failed").await;
    assert_eq!(shown["error"]["code"], 21211);
    assert!(shown["error"]["description"].as_str().is_some_and(|d| d.contains("not a valid number")));
    assert!(shown["twilio_sid"].is_null());
    // A good number on the test account is accepted, and (as with Twilio) no callback follows.
    let ok = t.send_text("+14155550126").await;
    t.wait_for_status(&ok, "submitted").await;
}

#[tokio::test]
async fn a_sender_error_marks_the_connection_until_a_text_goes_through() {
    let t = TestStack::start_with(devstack::stack::TwilioAccount::Test).await;
    let clinics = &t.stack.services.clinics;
    let demo = shared::ids::ClinicId::new("demo");
    let main = shared::ids::ConnectionId::new("main");
    let mut connection = clinics.connection(&demo, &main).await.expect("read").expect("exists");
    let good_sender = connection.sender.clone();
    // Twilio's magic test sender that is not owned by the account.
    connection.sender =
        shared::twilio::client::SenderId::Number(shared::phone::E164::parse("+15005550007", None).expect("valid"));
    clinics.put_connection(&connection).await.expect("saved");

    let id = t.send_text("+14155550130").await;
    let shown = t.wait_for_status(&id, "failed").await;
    assert_eq!(shown["error"]["code"], 21606);
    let contact = json!({"first_name": "Lee", "phones": [{"kind": "mobile", "number": "+14155550130"}]});
    let response =
        t.http.post(t.url("/v1/contacts")).bearer_auth(t.key()).json(&contact).send().await.expect("answers");
    let (_, created, _) = crate::support::read(response).await;
    let check_url = t.url(&format!("/v1/contacts/{}/sms-check", created["id"].as_str().expect("id")));
    let (_, check, _) =
        crate::support::read(t.http.get(&check_url).bearer_auth(t.key()).send().await.expect("answers")).await;
    let connection_check =
        check["checks"].as_array().and_then(|c| c.iter().find(|c| c["check"] == "connection_healthy")).cloned();
    let connection_check = connection_check.expect("a connection_healthy check");
    assert_eq!(connection_check["passed"], false, "{connection_check}");
    assert!(connection_check["detail"].as_str().is_some_and(|d| d.contains("21606")));

    connection.sender = good_sender;
    clinics.put_connection(&connection).await.expect("saved");
    let ok = t.send_text("+14155550131").await;
    t.wait_for_status(&ok, "submitted").await;
    let healed = clinics.connection(&demo, &main).await.expect("read").expect("exists");
    assert!(healed.last_error.is_none(), "cleared by a successful send");
}

#[tokio::test]
async fn twilio_refusing_an_opted_out_number_records_the_opt_out() {
    let t = TestStack::start_with(devstack::stack::TwilioAccount::Test).await;
    // Twilio's magic test number for a recipient who replied STOP.
    let id = t.send_text("+15005550004").await;
    let shown = t.wait_for_status(&id, "failed").await;
    assert_eq!(shown["error"]["code"], 21610);
    let number = shared::phone::E164::parse("+15005550004", None).expect("valid");
    let opt_out: Option<shared::contacts::OptOut> =
        t.stack.services.clinics.record(&shared::ids::ClinicId::new("demo"), number.as_str()).await.expect("read");
    assert!(opt_out.is_some_and(|o| o.connection_id.is_some()));
    // The next manual text to it is refused with a clear error.
    let (status, problem, _) = t.post_message(&json!({"to": "+15005550004", "body": "hello"})).await;
    assert_eq!((status, problem["type"].as_str()), (409, Some("urn:clinic-sms:problem:opted-out")), "{problem}");
}
