//! `GET /v1/error-codes/{code}`: the catalogue, as clinics read it.

use crate::support::{TestStack, read};

async fn get(t: &TestStack, code: &str, key: Option<&str>) -> (u16, serde_json::Value, String) {
    let mut request = t.http.get(t.url(&format!("/v1/error-codes/{code}")));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    read(request.send().await.expect("API answers")).await
}

#[tokio::test]
async fn a_known_code_is_explained_and_anything_else_is_a_clear_problem() {
    let t = TestStack::start().await;
    let (status, body, _) = get(&t, "30003", Some(t.key())).await;
    assert_eq!(status, 200, "{body}");
    let catalogue = shared::twilio::error_catalogue::lookup(30003).expect("30003 explained");
    assert_eq!(body["code"], 30003);
    assert_eq!(body["description"], catalogue.description);
    assert_eq!(body["common_cause"], catalogue.common_cause);
    assert_eq!(body["what_to_do"], catalogue.what_to_do);
    assert_eq!(body["twilio_reference"], "https://www.twilio.com/docs/errors/30003");

    // Numbers we do not know (even ones too long to be a code) are not found.
    for unknown in ["99999", "30126", "123456789012345678901234567890"] {
        let (status, problem, content_type) = get(&t, unknown, Some(t.key())).await;
        assert_eq!((status, content_type.as_str()), (404, "application/problem+json"), "{unknown}: {problem}");
        assert_eq!(problem["type"], "urn:clinic-sms:problem:not-found");
    }
    // Anything that is not a number is the caller's mistake, in the `code` segment.
    for not_a_number in ["abc", "3e4", "-30003", "30003.0", "%2030003"] {
        let (status, problem, content_type) = get(&t, not_a_number, Some(t.key())).await;
        assert_eq!((status, content_type.as_str()), (400, "application/problem+json"), "{not_a_number}: {problem}");
        assert_eq!(problem["field"], "code", "{problem}");
    }
    let (status, _, _) = get(&t, "30003", None).await;
    assert_eq!(status, 401, "an API key is needed");
}
