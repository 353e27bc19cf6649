//! The OpenAPI description: served at `/openapi.json`, and true. The router is built from the
//! same table as the description (`api::table`), so every route is described; these tests check
//! that the description holds every entry and that every described route answers (with
//! placeholder ids and empty bodies: a refusal is fine, "no such endpoint" is not).

use reqwest::Method;
use serde_json::Value;

use crate::support::TestStack;

#[tokio::test]
async fn every_route_is_described_and_every_described_route_exists() {
    let t = TestStack::start().await;
    let response = t.http.get(t.url("/openapi.json")).send().await.expect("API answers");
    assert_eq!(response.status(), 200, "served without a key");
    let doc: Value = response.json().await.expect("JSON");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", doc["openapi"]);

    let table = api::table();
    let described: usize =
        doc["paths"].as_object().expect("paths").values().map(|item| item.as_object().map_or(0, |o| o.len())).sum();
    let operations_in_table = table.len();
    assert!(described >= operations_in_table, "{described} operations described, {operations_in_table} in the table");

    for endpoint in &table {
        let method = endpoint.method_name();
        let operation = &doc["paths"][&endpoint.path][method.to_ascii_lowercase()];
        assert!(operation.is_object(), "{method} {} is not described", endpoint.path);
        assert!(operation["responses"][endpoint.success.to_string()].is_object(), "{method} {}", endpoint.path);

        let path = endpoint
            .path
            .replace("{id}", "01J00000000000000000000000")
            .replace("{key_id}", "nope")
            .replace("{code}", "30003");
        let method = Method::from_bytes(method.as_bytes()).expect("a method");
        let body = serde_json::json!({});
        let (status, answer) = t.call(t.key(), method.clone(), &path, Some(&body)).await;
        assert_ne!(status, 405, "{method} {path}: {answer}");
        assert_ne!(answer["type"], "urn:clinic-sms:problem:no-such-endpoint", "{method} {path}: {answer}");
        assert!(status < 500, "{method} {path} → {status}: {answer}");
    }

    let (status, answer) = t.call(t.key(), Method::GET, "/v1/nothing-here", None).await;
    assert_eq!((status, answer["type"].as_str()), (404, Some("urn:clinic-sms:problem:no-such-endpoint")));
}

#[tokio::test]
async fn request_bodies_are_described_from_the_types_the_handlers_read() {
    let t = TestStack::start().await;
    let doc: Value = t.http.get(t.url("/openapi.json")).send().await.expect("answers").json().await.expect("JSON");
    let send = &doc["components"]["schemas"]["SendBody"];
    let properties: Vec<&str> =
        send["properties"].as_object().expect("properties").keys().map(String::as_str).collect();
    for field in ["to", "recipients", "body", "connection", "send_at"] {
        assert!(properties.contains(&field), "{field} in {properties:?}");
    }
    assert_eq!(send["required"], serde_json::json!(["body"]));
    let contact = &doc["components"]["schemas"]["ContactInput"];
    assert!(contact["properties"]["phones"].is_object(), "{contact}");
    assert!(doc["components"]["schemas"]["ReminderWindow"]["properties"]["days_ahead"].is_object());
    assert!(doc["components"]["schemas"]["Problem"]["properties"]["type"].is_object());
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
}
