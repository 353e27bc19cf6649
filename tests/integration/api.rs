//! The API's answers to bad input and to callers who are not allowed.

use serde_json::json;

use crate::support::TestStack;

async fn assert_refused(t: &TestStack, body: serde_json::Value, field: Option<&str>) {
    let (status, problem, content_type) = t.post_message(&body).await;
    assert_eq!(status, 422, "{body} → {problem}");
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(problem["field"].as_str(), field, "{problem}");
    assert!(problem["type"].as_str().is_some_and(|t| t.starts_with("urn:clinic-sms:problem:")));
    assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
}

#[tokio::test]
async fn bad_input_gets_a_clear_problem_and_stores_nothing() {
    let t = TestStack::start().await;
    assert_refused(&t, json!({"body": "hi"}), Some("to")).await;
    assert_refused(&t, json!({"to": "+14155550123"}), Some("body")).await;
    assert_refused(&t, json!({"to": 4155550123u64, "body": "hi"}), Some("to")).await;
    assert_refused(&t, json!({"to": "+14155550123", "body": "a".repeat(1601)}), Some("body")).await;
    assert_refused(&t, json!({"to": "+14155550123", "body": "   "}), Some("body")).await;
    assert_refused(&t, json!({"to": "415-555-CALL", "body": "hi"}), Some("to")).await;
    assert_refused(&t, json!({"to": "+15551230000", "body": "hi"}), Some("to")).await;
    assert_refused(&t, json!({"to": "555-12", "body": "hi"}), Some("to")).await;

    for raw in ["{\"to\": \"+14155550123\", ", "[]", "not json", ""] {
        let response = t
            .http
            .post(t.url("/v1/messages"))
            .bearer_auth(t.key())
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .expect("answers");
        let (status, problem, content_type) = crate::support::read(response).await;
        assert_eq!(status, 400, "{raw:?} → {problem}");
        assert_eq!(content_type, "application/problem+json");
    }

    assert_eq!(t.message_count().await, 0, "nothing stored");
    assert!(t.stack.simulator.requests().is_empty(), "nothing sent");
}

#[tokio::test]
async fn a_1600_character_body_is_accepted() {
    let t = TestStack::start().await;
    let (status, body, _) = t.post_message(&json!({"to": "+14155550123", "body": "é".repeat(1600)})).await;
    assert_eq!(status, 202, "{body}");
}

#[tokio::test]
async fn no_key_or_a_wrong_key_is_401() {
    let t = TestStack::start().await;
    let id = t.send_text("+14155550123").await;
    let body = json!({"to": "+14155550123", "body": "hi"});
    let wrong = format!("{}x", t.key());
    let cases: [(&str, Option<String>); 4] = [
        ("none", None),
        ("wrong secret", Some(format!("Bearer {wrong}"))),
        ("not a key", Some("Bearer hello".into())),
        ("basic scheme", Some(format!("Basic {}", t.key()))),
    ];
    for (name, header) in cases {
        for request in
            [t.http.post(t.url("/v1/messages")).json(&body), t.http.get(t.url(&format!("/v1/messages/{id}")))]
        {
            let request = match &header {
                Some(h) => request.header("authorization", h),
                None => request,
            };
            let response = request.send().await.expect("answers");
            let (status, problem, content_type) = crate::support::read(response).await;
            assert_eq!(status, 401, "{name}: {problem}");
            assert_eq!(content_type, "application/problem+json", "{name}");
        }
    }
    assert_eq!(t.message_count().await, 1, "only the first, authorised text exists");
}

#[tokio::test]
async fn another_clinics_message_is_not_found() {
    let t = TestStack::start().await;
    let id = t.send_text("+14155550123").await;
    let other = devstack::seed::clinic_with_connection(
        &t.stack.services.clinics,
        &t.stack.services.counters,
        "other",
        devstack::stack::OTHER_SENDER,
        None,
        t.stack.services.clock.now(),
    )
    .await
    .expect("second clinic");
    let response =
        t.http.get(t.url(&format!("/v1/messages/{id}"))).bearer_auth(&other.api_key).send().await.expect("answers");
    let (status, problem, _) = crate::support::read(response).await;
    assert_eq!(status, 404, "{problem}");
    let (status, _) = t.get_message("not-an-id").await;
    assert_eq!(status, 404);
    let (status, _) = t.get_message("01J00000000000000000000000").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn impossible_ids_and_oversized_values_are_4xx_never_5xx() {
    let t = TestStack::start().await;
    let huge = "x".repeat(5000);
    for path in [
        format!("/v1/contacts/{huge}"),
        format!("/v1/appointments/{huge}"),
        "/v1/contacts/a%23b".to_owned(),
        format!("/v1/messages/{huge}"),
        format!("/v1/appointments/{huge}/reminder-check"),
    ] {
        let response = t.http.get(t.url(&path)).bearer_auth(t.key()).send().await.expect("answers");
        assert_eq!(response.status(), 404, "{}", &path[..40.min(path.len())]);
    }
    let contact = json!({"first_name": "A", "last_name": huge, "phones": []});
    let response =
        t.http.post(t.url("/v1/contacts")).bearer_auth(t.key()).json(&contact).send().await.expect("answers");
    let (status, problem, _) = crate::support::read(response).await;
    assert_eq!((status, problem["field"].as_str()), (422, Some("last_name")), "{problem}");
    let appointment = json!({"contact_id": huge, "business_id": "b", "type_id": "t", "start": "2030-01-01T09:00:00Z"});
    let response =
        t.http.post(t.url("/v1/appointments")).bearer_auth(t.key()).json(&appointment).send().await.expect("answers");
    assert_eq!(response.status(), 422);
    let (status, _, _) = crate::support::read(
        t.http.get(t.url(&format!("/v1/groups?cursor={huge}"))).bearer_auth(t.key()).send().await.expect("answers"),
    )
    .await;
    assert_eq!(status, 422);
}
