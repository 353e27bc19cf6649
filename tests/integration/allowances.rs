//! Per-user daily allowances: counted per text a user starts, reset at midnight in the clinic's
//! zone, and a blank or zero allowance blocks sending.

use chrono::DateTime;
use serde_json::{Value, json};
use shared::clinic::{Role, User};
use shared::clock::Clock;
use shared::ids::ClinicId;

use crate::support::TestStack;

async fn send(t: &TestStack, key: &str) -> (u16, Value) {
    let response = t
        .http
        .post(t.url("/v1/messages"))
        .bearer_auth(key)
        .json(&json!({"to": "+14155550123", "body": "Your results are ready"}))
        .send()
        .await
        .expect("API answers");
    let (status, body, _) = crate::support::read(response).await;
    (status, body)
}

async fn staff_key(t: &TestStack, user_id: &str, allowance: Option<u32>) -> String {
    let user = User {
        id: user_id.into(),
        clinic_id: ClinicId::new("demo"),
        name: user_id.into(),
        role: Role::Staff,
        daily_allowance: allowance,
    };
    t.stack.services.clinics.put_record(&user).await.expect("user stored");
    let response = t
        .http
        .post(t.url("/v1/api-keys"))
        .bearer_auth(t.key())
        .json(&json!({"user_id": user_id}))
        .send()
        .await
        .expect("answers");
    let (status, body, _) = crate::support::read(response).await;
    assert_eq!(status, 201, "{body}");
    body["api_key"].as_str().expect("a key").to_owned()
}

#[tokio::test]
async fn a_users_allowance_counts_their_texts_and_resets_at_the_clinics_midnight() {
    // 23:58 on 10 June in New York (03:58 UTC on the 11th).
    let start = DateTime::parse_from_rfc3339("2026-06-11T03:58:00Z").expect("time").to_utc();
    let t = TestStack::start_custom(|o| o.clock = Clock::manual(start)).await;
    let mut clinic = t.stack.services.clinics.clinic(&ClinicId::new("demo")).await.expect("read").expect("exists");
    clinic.allowances_enabled = true;
    t.stack.services.clinics.put_clinic(&clinic).await.expect("saved");

    let key = staff_key(&t, "front-desk", Some(2)).await;
    assert_eq!(send(&t, &key).await.0, 202);
    assert_eq!(send(&t, &key).await.0, 202);
    let (status, problem) = send(&t, &key).await;
    assert_eq!(status, 429, "{problem}");
    assert_eq!(problem["type"], "urn:clinic-sms:problem:allowance-exhausted");
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("all 2 texts")), "{problem}");

    // Still 10 June in New York although it is 11 June in UTC: still blocked.
    t.stack.services.clock.advance(chrono::TimeDelta::minutes(1));
    assert_eq!(send(&t, &key).await.0, 429);
    // Midnight in New York: a new day.
    t.stack.services.clock.advance(chrono::TimeDelta::minutes(2));
    assert_eq!(send(&t, &key).await.0, 202);
}

#[tokio::test]
async fn a_blank_or_zero_allowance_blocks_sending() {
    let t = TestStack::start().await;
    let mut clinic = t.stack.services.clinics.clinic(&ClinicId::new("demo")).await.expect("read").expect("exists");
    clinic.allowances_enabled = true;
    t.stack.services.clinics.put_clinic(&clinic).await.expect("saved");
    for (user, allowance) in [("blank", None), ("zero", Some(0))] {
        let key = staff_key(&t, user, allowance).await;
        let (status, problem) = send(&t, &key).await;
        assert_eq!(status, 429, "{user}: {problem}");
        assert!(problem["detail"].as_str().is_some_and(|d| d.contains("blank or 0")), "{problem}");
    }
    assert_eq!(t.message_count().await, 0);
}
