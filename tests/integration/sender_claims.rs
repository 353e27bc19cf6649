//! One number (or Messaging Service) answers for one connection of one clinic: inbound texts are
//! routed by it.

use devstack::stack::{DEMO_SENDER, OTHER_SENDER};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::TestStack;

const SERVICE_SID: &str = "MG0123456789abcdef0123456789abcdef";
const SPARE: &str = "+15017122663";

#[track_caller]
fn assert_taken(answer: &(u16, Value), field: &str) {
    let (status, body) = answer;
    assert_eq!(*status, 409, "{body}");
    assert_eq!(body["type"], "urn:clinic-sms:problem:sender-taken", "{body}");
    assert_eq!(body["field"], field, "{body}");
}

#[tokio::test]
async fn a_number_another_clinic_uses_is_refused_and_freed_when_it_lets_go() {
    let t = TestStack::start().await;
    let a = t.key().to_owned();
    let b = t.other_clinic("other", OTHER_SENDER).await.api_key;

    let numbers = json!({"label": "Borrowed", "sender": DEMO_SENDER, "mps": 1});
    let refused = t.call(&b, Method::POST, "/v1/connections", Some(&numbers)).await;
    assert_taken(&refused, "sender");
    let detail = refused.1["detail"].as_str().unwrap_or_default();
    assert!(!detail.contains("main") && !detail.contains("demo"), "another clinic is never named: {detail}");

    // A pool number taken elsewhere: refused by its field, and the service itself not left claimed.
    let service = json!({"label": "Pool", "sender": SERVICE_SID, "pool_numbers": [SPARE, DEMO_SENDER], "mps": 1});
    assert_taken(&t.call(&b, Method::POST, "/v1/connections", Some(&service)).await, "pool_numbers[1]");
    let (status, body) = t
        .call(
            &a,
            Method::POST,
            "/v1/connections",
            Some(&json!({"label": "S", "sender": SERVICE_SID, "pool_numbers": [SPARE], "mps": 1})),
        )
        .await;
    assert_eq!(status, 201, "nothing was left claimed by the refused create: {body}");
    let a_service = body["id"].as_str().expect("an id").to_owned();

    // The same clinic's other connection is named.
    let second = t
        .call(&a, Method::POST, "/v1/connections", Some(&json!({"label": "Dup", "sender": DEMO_SENDER, "mps": 1})))
        .await;
    assert_taken(&second, "sender");
    assert!(second.1["detail"].as_str().unwrap_or_default().contains("main"), "{}", second.1);
    let connections = t.call(&a, Method::GET, "/v1/connections", None).await.1;
    assert_eq!(connections["items"].as_array().map(Vec::len), Some(2), "nothing created: {connections}");

    // A moves its main line to another number: the old one is free for B, the new one is A's.
    let moved = json!({"label": "Main", "sender": "+15017122664", "mps": 10});
    assert_eq!(t.call(&a, Method::PUT, "/v1/connections/main", Some(&moved)).await.0, 200);
    let (status, body) = t.call(&b, Method::POST, "/v1/connections", Some(&numbers)).await;
    assert_eq!(status, 201, "{body}");
    let taken = json!({"label": "Taken", "sender": "+15017122664", "mps": 1});
    assert_taken(&t.call(&b, Method::POST, "/v1/connections", Some(&taken)).await, "sender");

    // A deletes its service: its SID and pool number are free for B.
    let path = format!("/v1/connections/{a_service}");
    assert_eq!(t.call(&a, Method::DELETE, &path, None).await.0, 204);
    let (status, body) = t
        .call(
            &b,
            Method::POST,
            "/v1/connections",
            Some(&json!({"label": "P", "sender": SERVICE_SID, "pool_numbers": [SPARE], "mps": 1})),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // Routing follows the claims.
    let clinics = &t.stack.services.clinics;
    let owner = |address: &'static str| async move {
        clinics.sender_claim(address).await.expect("read").map(|c| c.clinic_id.to_string())
    };
    assert_eq!(owner(DEMO_SENDER).await.as_deref(), Some("other"));
    assert_eq!(owner(SPARE).await.as_deref(), Some("other"));
    assert_eq!(owner("+15017122664").await.as_deref(), Some("demo"));
}

#[tokio::test]
async fn a_new_clinic_cannot_start_on_a_number_in_use() {
    let t = TestStack::start().await;
    let services = &t.stack.services;
    let result = devstack::seed::clinic_with_connection(
        &services.clinics,
        &services.counters,
        "copycat",
        DEMO_SENDER,
        None,
        services.clock.now(),
    )
    .await;
    assert!(result.is_err(), "refused");
    assert_eq!(services.clinics.clinic(&shared::ids::ClinicId::new("copycat")).await.expect("read"), None);
}
