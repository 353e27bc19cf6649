//! The clinic's own records over the API: tenant isolation on every endpoint, who may change what,
//! validation that names the field at fault, contacts that keep bad numbers, cursor pagination,
//! template previews and SMS credits.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::TestStack;

/// An appointment start far enough ahead that no reminder window touches it during a test.
const START: &str = "2030-11-24T09:00:00-05:00";
/// A range of `GET /v1/appointments` that holds `START`.
const RANGE: &str = "from=2030-11-20T00:00:00Z&to=2030-11-30T00:00:00Z";
/// A Messaging Service SID (no number to parse).
const SERVICE_SID: &str = "MG0123456789abcdef0123456789abcdef";

struct Answer {
    status: u16,
    body: Value,
    content_type: String,
}

async fn call(t: &TestStack, key: &str, method: Method, path: &str, body: Option<&Value>) -> Answer {
    let mut request = t.http.request(method, t.url(path)).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("API answers");
    let (status, body, content_type) = crate::support::read(response).await;
    Answer { status, body, content_type }
}

async fn call_raw(t: &TestStack, key: &str, method: Method, path: &str, raw: &str) -> Answer {
    let response = t
        .http
        .request(method, t.url(path))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(raw.to_owned())
        .send()
        .await
        .expect("API answers");
    let (status, body, content_type) = crate::support::read(response).await;
    Answer { status, body, content_type }
}

async fn get(t: &TestStack, key: &str, path: &str) -> Answer {
    call(t, key, Method::GET, path, None).await
}

async fn post(t: &TestStack, key: &str, path: &str, body: &Value) -> Answer {
    call(t, key, Method::POST, path, Some(body)).await
}

async fn put(t: &TestStack, key: &str, path: &str, body: &Value) -> Answer {
    call(t, key, Method::PUT, path, Some(body)).await
}

async fn delete(t: &TestStack, key: &str, path: &str) -> Answer {
    call(t, key, Method::DELETE, path, None).await
}

/// POSTs and expects `201 Created`; returns the record as shown.
async fn create(t: &TestStack, key: &str, path: &str, body: &Value) -> Value {
    let answer = post(t, key, path, body).await;
    assert_eq!(answer.status, 201, "POST {path} {body} → {}", answer.body);
    assert!(answer.body["id"].is_string(), "POST {path} gives an id: {}", answer.body);
    answer.body
}

/// GETs and expects `200`; returns the body.
async fn read_ok(t: &TestStack, key: &str, path: &str) -> Value {
    let answer = get(t, key, path).await;
    assert_eq!(answer.status, 200, "GET {path} → {}", answer.body);
    answer.body
}

fn id_of(record: &Value) -> String {
    record["id"].as_str().unwrap_or_else(|| panic!("a record with an id: {record}")).to_owned()
}

fn ids(list: &Value) -> Vec<String> {
    list["items"].as_array().unwrap_or_else(|| panic!("a list: {list}")).iter().map(id_of).collect()
}

/// The key id of a full key `csk_<key id>_<secret>`.
fn key_id(full_key: &str) -> String {
    full_key.split('_').nth(1).unwrap_or_else(|| panic!("a key: {full_key}")).to_owned()
}

#[track_caller]
fn assert_problem(answer: &Answer, status: u16, slug: &str, what: &str) {
    assert_eq!(answer.status, status, "{what} → {}", answer.body);
    assert_eq!(answer.content_type, "application/problem+json", "{what}");
    assert_eq!(answer.body["type"], format!("urn:clinic-sms:problem:{slug}"), "{what} → {}", answer.body);
    assert_eq!(answer.body["status"], status, "{what}");
    assert!(answer.body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{what} → {}", answer.body);
}

/// A 422 naming `field`.
#[track_caller]
fn assert_invalid(answer: &Answer, field: &str, what: &str) {
    assert_problem(answer, 422, "invalid-field", what);
    assert_eq!(answer.body["field"], field, "{what} → {}", answer.body);
}

fn detail(answer: &Answer) -> &str {
    answer.body["detail"].as_str().unwrap_or_default()
}

/// A second clinic in the same stack; its admin key.
async fn second_clinic(t: &TestStack) -> String {
    devstack::seed::clinic_with_connection(
        &t.stack.services.clinics,
        &t.stack.services.counters,
        "other",
        devstack::stack::OTHER_SENDER,
        None,
        t.stack.services.clock.now(),
    )
    .await
    .expect("second clinic")
    .api_key
}

fn business_body(name: &str) -> Value {
    json!({
        "name": name,
        "time_zone": "America/New_York",
        "phone": "+1 415 555 0100",
        "window": {"start": "10:00", "end": "12:00", "days_ahead": 1},
    })
}

fn appointment_body(contact: &str, business: &str, kind: &str) -> Value {
    json!({
        "contact_id": contact,
        "business_id": business,
        "type_id": kind,
        "patient_names": ["Max"],
        "start": START,
    })
}

/// Settings as `PUT /v1/clinic` takes them, keeping the seeded connection.
fn settings_body(name: &str) -> Value {
    json!({
        "name": name,
        "default_country": "US",
        "time_zone": "America/New_York",
        "default_connection_id": "main",
        "two_way_texting": true,
        "low_credit_threshold": 50,
        "confirmation_keywords": ["C", "CONFIRM"],
    })
}

/// A contact, a business and an appointment type: what an appointment needs.
async fn appointment_parts(t: &TestStack, key: &str) -> (String, String, String) {
    let contact = create(
        t,
        key,
        "/v1/contacts",
        &json!({"first_name": "Dana", "phones": [{"kind": "mobile", "number": "+14155550123"}]}),
    )
    .await;
    let business = create(t, key, "/v1/businesses", &business_body("Harbour Vets")).await;
    let kind = create(t, key, "/v1/appointment-types", &json!({"name": "Check-up"})).await;
    (id_of(&contact), id_of(&business), id_of(&kind))
}

/// Unpadded base64url, as the list cursors are written.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

#[tokio::test]
async fn another_clinic_can_neither_see_nor_change_nor_delete_anything_of_this_clinic() {
    let t = TestStack::start().await;
    let a = t.key().to_owned();
    let b = second_clinic(&t).await;

    // Clinic A: one of each kind, with distinct settings and more credits than B.
    let a_settings = json!({
        "name": "Harbour Vets A",
        "default_country": "US",
        "time_zone": "America/Los_Angeles",
        "default_connection_id": "main",
        "two_way_texting": true,
        "low_credit_threshold": 7,
        "confirmation_keywords": ["OK"],
    });
    assert_eq!(put(&t, &a, "/v1/clinic", &a_settings).await.status, 200);
    assert_eq!(post(&t, &a, "/v1/clinic/credits", &json!({"credits": 500})).await.status, 200);
    let template =
        create(&t, &a, "/v1/templates", &json!({"name": "Reminder", "body": "Hi {{client_first_name}}"})).await;
    let business = create(&t, &a, "/v1/businesses", &business_body("Downtown")).await;
    let group = create(&t, &a, "/v1/groups", &json!({"name": "Dogs"})).await;
    let contact = create(
        &t,
        &a,
        "/v1/contacts",
        &json!({
            "first_name": "Dana",
            "last_name": "Whitfield",
            "phones": [{"kind": "mobile", "number": "+14155550123"}],
            "group_ids": [id_of(&group)],
        }),
    )
    .await;
    let kind = create(
        &t,
        &a,
        "/v1/appointment-types",
        &json!({"name": "Vaccination", "reminder_template_id": id_of(&template)}),
    )
    .await;
    let user = create(&t, &a, "/v1/users", &json!({"name": "Sam", "role": "staff", "daily_allowance": 20})).await;
    let connection =
        create(&t, &a, "/v1/connections", &json!({"label": "Second line", "sender": SERVICE_SID, "mps": 5})).await;
    let appointment =
        create(&t, &a, "/v1/appointments", &appointment_body(&id_of(&contact), &id_of(&business), &id_of(&kind))).await;
    let message = t.send_text("+14155550123").await;

    // What B would write: bodies valid in B's own clinic, so only the id is foreign.
    let (b_contact, b_business, b_kind) = appointment_parts(&t, &b).await;
    let records = [
        ("templates", &template, json!({"name": "Changed", "body": "Changed"})),
        ("businesses", &business, business_body("Changed")),
        ("groups", &group, json!({"name": "Changed"})),
        ("contacts", &contact, json!({"first_name": "Changed"})),
        ("appointment-types", &kind, json!({"name": "Changed"})),
        ("users", &user, json!({"name": "Changed", "role": "admin"})),
        ("connections", &connection, json!({"label": "Changed", "sender": SERVICE_SID, "mps": 1})),
        ("appointments", &appointment, appointment_body(&b_contact, &b_business, &b_kind)),
    ];
    for (kind_path, record, b_body) in &records {
        let path = format!("/v1/{kind_path}/{}", id_of(record));
        assert_problem(&get(&t, &b, &path).await, 404, "not-found", &format!("B: GET {path}"));
        assert_problem(&put(&t, &b, &path, b_body).await, 404, "not-found", &format!("B: PUT {path}"));
        assert_problem(&delete(&t, &b, &path).await, 404, "not-found", &format!("B: DELETE {path}"));
        // B's replace created nothing under A's id in B's clinic either.
        assert_problem(&get(&t, &b, &path).await, 404, "not-found", &format!("B: GET {path} after PUT"));
        assert_eq!(&read_ok(&t, &a, &path).await, *record, "A's {kind_path} record is unchanged");

        let list = if *kind_path == "appointments" {
            format!("/v1/appointments?{RANGE}")
        } else {
            format!("/v1/{kind_path}?limit=100")
        };
        let seen_by_b = ids(&read_ok(&t, &b, &list).await);
        assert!(!seen_by_b.contains(&id_of(record)), "B's {list} shows A's record: {seen_by_b:?}");
        assert!(ids(&read_ok(&t, &a, &list).await).contains(&id_of(record)), "A's {list} shows it");
    }
    // B's lists hold B's records only.
    assert_eq!(ids(&read_ok(&t, &b, "/v1/contacts").await), [b_contact]);
    assert_eq!(ids(&read_ok(&t, &b, "/v1/users").await), ["admin"]);
    assert_eq!(ids(&read_ok(&t, &b, "/v1/connections").await), ["main"]);
    assert!(ids(&read_ok(&t, &b, "/v1/groups").await).is_empty());
    assert!(ids(&read_ok(&t, &b, "/v1/templates").await).is_empty());

    // Messages: B cannot read A's; there is no way to change or delete one (for A either).
    let message_path = format!("/v1/messages/{message}");
    assert_problem(&get(&t, &b, &message_path).await, 404, "not-found", "B: GET message");
    for method in [Method::PUT, Method::DELETE] {
        let by_a = call(&t, &a, method.clone(), &message_path, Some(&json!({"body": "x"}))).await;
        let by_b = call(&t, &b, method.clone(), &message_path, Some(&json!({"body": "x"}))).await;
        assert_eq!(by_a.status, 405, "{method} on a message: {}", by_a.body);
        assert_eq!(by_b.status, by_a.status, "B's {method} answers as A's: {}", by_b.body);
    }
    let shown = read_ok(&t, &a, &message_path).await;
    assert_eq!((shown["id"].as_str(), shown["to"].as_str()), (Some(message.as_str()), Some("+14155550123")));

    // The checks of A's appointment and contact.
    let reminder_check = format!("/v1/appointments/{}/reminder-check", id_of(&appointment));
    let sms_check = format!("/v1/contacts/{}/sms-check", id_of(&contact));
    assert_problem(&get(&t, &b, &reminder_check).await, 404, "not-found", "B: reminder check");
    assert_problem(&get(&t, &b, &sms_check).await, 404, "not-found", "B: SMS check");
    assert_eq!(read_ok(&t, &a, &reminder_check).await["appointment_id"], id_of(&appointment));
    assert_eq!(read_ok(&t, &a, &sms_check).await["contact_id"], id_of(&contact));

    // References to A's records from B's writes are unknown ids.
    let with_a_group = json!({"first_name": "Eve", "group_ids": [id_of(&group)]});
    assert_invalid(&post(&t, &b, "/v1/contacts", &with_a_group).await, "group_ids", "B: contact in A's group");
    let with_a_template = json!({"name": "Eve", "reminder_template_id": id_of(&template)});
    let answer = post(&t, &b, "/v1/appointment-types", &with_a_template).await;
    assert_invalid(&answer, "reminder_template_id", "B: type with A's template");
    let with_a_contact = appointment_body(&id_of(&contact), &b_business, &b_kind);
    assert_invalid(&post(&t, &b, "/v1/appointments", &with_a_contact).await, "contact_id", "B: A's contact");
    let answer = post(&t, &b, "/v1/api-keys", &json!({"user_id": id_of(&user)})).await;
    assert_invalid(&answer, "user_id", "B: a key for A's user");

    // A's API key.
    let answer = delete(&t, &b, &format!("/v1/api-keys/{}", key_id(&a))).await;
    assert_problem(&answer, 404, "not-found", "B: DELETE A's key");
    assert_eq!(read_ok(&t, &a, "/v1/clinic").await["id"], "demo", "A's key still works");

    // Settings: each clinic sees and changes its own.
    let b_clinic = read_ok(&t, &b, "/v1/clinic").await;
    assert_eq!(b_clinic["id"], "other");
    assert_eq!(b_clinic["name"], "Demo Veterinary Clinic");
    assert_eq!(b_clinic["time_zone"], "America/New_York");
    assert_eq!(b_clinic["confirmation_keywords"], json!(["C", "CONFIRM"]));
    assert_eq!(b_clinic["low_credit_threshold"], 50);
    assert_eq!(b_clinic["credit_balance"], devstack::seed::STARTING_CREDITS, "B's balance, not A's topped-up one");
    assert_eq!(put(&t, &b, "/v1/clinic", &settings_body("Clinic B")).await.status, 200);
    let a_clinic = read_ok(&t, &a, "/v1/clinic").await;
    assert_eq!(a_clinic["name"], "Harbour Vets A");
    assert_eq!(a_clinic["time_zone"], "America/Los_Angeles");
    assert_eq!(a_clinic["confirmation_keywords"], json!(["OK"]));
    assert_eq!(read_ok(&t, &b, "/v1/clinic").await["name"], "Clinic B");
}

#[tokio::test]
async fn staff_keys_change_contacts_groups_and_appointments_but_nothing_admin_only() {
    let t = TestStack::start().await;
    let admin = t.key().to_owned();
    let staff_user = create(&t, &admin, "/v1/users", &json!({"name": "Sam", "role": "staff"})).await;
    assert_eq!(staff_user["role"], "staff");
    let issued = post(&t, &admin, "/v1/api-keys", &json!({"user_id": id_of(&staff_user)})).await;
    assert_eq!(issued.status, 201, "{}", issued.body);
    assert_eq!(issued.body["role"], "staff");
    assert_eq!(issued.body["user_id"], id_of(&staff_user));
    let staff = issued.body["api_key"].as_str().expect("the full key").to_owned();
    assert_eq!(issued.body["key_id"], key_id(&staff));

    // Admin-only kinds: the admin's records, then every write by staff refused and nothing changed.
    let template = create(&t, &admin, "/v1/templates", &json!({"name": "Reminder", "body": "Hi"})).await;
    let business = create(&t, &admin, "/v1/businesses", &business_body("Downtown")).await;
    let kind = create(&t, &admin, "/v1/appointment-types", &json!({"name": "Check-up"})).await;
    let connection =
        create(&t, &admin, "/v1/connections", &json!({"label": "Line 2", "sender": SERVICE_SID, "mps": 5})).await;
    let admin_only = [
        ("templates", &template, json!({"name": "Staff's", "body": "Hi"})),
        ("businesses", &business, business_body("Staff's")),
        ("appointment-types", &kind, json!({"name": "Staff's"})),
        ("users", &staff_user, json!({"name": "Sam", "role": "admin"})),
        ("connections", &connection, json!({"label": "Staff's", "sender": SERVICE_SID, "mps": 5})),
    ];
    for (kind_path, record, body) in &admin_only {
        let list = format!("/v1/{kind_path}");
        let before = read_ok(&t, &staff, &list).await;
        assert_problem(&post(&t, &staff, &list, body).await, 403, "forbidden", &format!("staff: POST {list}"));
        let path = format!("{list}/{}", id_of(record));
        assert_problem(&put(&t, &staff, &path, body).await, 403, "forbidden", &format!("staff: PUT {path}"));
        assert_problem(&delete(&t, &staff, &path).await, 403, "forbidden", &format!("staff: DELETE {path}"));
        assert_eq!(&read_ok(&t, &staff, &path).await, *record, "staff can read {path}; it is unchanged");
        assert_eq!(read_ok(&t, &admin, &list).await, before, "staff created nothing in {list}");
    }
    let settings_before = read_ok(&t, &admin, "/v1/clinic").await;
    let answer = put(&t, &staff, "/v1/clinic", &settings_body("Staff's clinic")).await;
    assert_problem(&answer, 403, "forbidden", "staff: PUT /v1/clinic");
    let answer = post(&t, &staff, "/v1/clinic/credits", &json!({"credits": 500})).await;
    assert_problem(&answer, 403, "forbidden", "staff: POST /v1/clinic/credits");
    assert_eq!(read_ok(&t, &staff, "/v1/clinic").await, settings_before, "settings and balance unchanged");
    let answer = post(&t, &staff, "/v1/api-keys", &json!({"user_id": id_of(&staff_user)})).await;
    assert_problem(&answer, 403, "forbidden", "staff: POST /v1/api-keys");
    let answer = delete(&t, &staff, &format!("/v1/api-keys/{}", key_id(&admin))).await;
    assert_problem(&answer, 403, "forbidden", "staff: DELETE the admin's key");
    assert_eq!(read_ok(&t, &admin, "/v1/clinic").await["id"], "demo", "the admin's key still works");

    // Contacts, groups and appointments are everyday work.
    let group = create(&t, &staff, "/v1/groups", &json!({"name": "Cats"})).await;
    let group_path = format!("/v1/groups/{}", id_of(&group));
    let renamed = put(&t, &staff, &group_path, &json!({"name": "Cats and kittens"})).await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(read_ok(&t, &admin, &group_path).await["name"], "Cats and kittens");

    let contact =
        create(&t, &staff, "/v1/contacts", &json!({"first_name": "Dana", "group_ids": [id_of(&group)]})).await;
    let contact_path = format!("/v1/contacts/{}", id_of(&contact));
    let changed = json!({"first_name": "Dana", "last_name": "Whitfield", "phones": [{"kind": "mobile", "number": "+14155550123"}]});
    let answer = put(&t, &staff, &contact_path, &changed).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let stored = read_ok(&t, &admin, &contact_path).await;
    assert_eq!(stored["last_name"], "Whitfield");
    assert_eq!(stored["phones"][0]["e164"], "+14155550123");

    let appointment =
        create(&t, &staff, "/v1/appointments", &appointment_body(&id_of(&contact), &id_of(&business), &id_of(&kind)))
            .await;
    assert_eq!(appointment["status"], "booked");
    let appointment_path = format!("/v1/appointments/{}", id_of(&appointment));
    let mut moved = appointment_body(&id_of(&contact), &id_of(&business), &id_of(&kind));
    moved["start"] = json!("2030-11-25T14:30:00-05:00");
    moved["status"] = json!("confirmed");
    let answer = put(&t, &staff, &appointment_path, &moved).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let stored = read_ok(&t, &admin, &appointment_path).await;
    assert_eq!(stored["start"], "2030-11-25T19:30:00Z");
    assert_eq!(stored["status"], "confirmed");

    assert_eq!(delete(&t, &staff, &appointment_path).await.status, 204);
    assert_eq!(delete(&t, &staff, &contact_path).await.status, 204);
    assert_eq!(delete(&t, &staff, &group_path).await.status, 204);
    for path in [&appointment_path, &contact_path, &group_path] {
        assert_problem(&get(&t, &admin, path).await, 404, "not-found", &format!("{path} after its DELETE"));
    }

    // A revoked key is refused from then on; the admin's is not affected.
    let revoked = delete(&t, &admin, &format!("/v1/api-keys/{}", key_id(&staff))).await;
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    for (method, path) in [(Method::GET, "/v1/contacts"), (Method::POST, "/v1/groups"), (Method::GET, "/v1/clinic")] {
        let answer = call(&t, &staff, method.clone(), path, Some(&json!({"name": "After"}))).await;
        assert_problem(&answer, 401, "unauthorized", &format!("revoked key: {method} {path}"));
    }
    assert!(ids(&read_ok(&t, &admin, "/v1/groups").await).is_empty(), "nothing created with the revoked key");
}

/// A user and a key of theirs.
async fn user_with_key(t: &TestStack, admin: &str, role: &str) -> (String, String) {
    let user = create(t, admin, "/v1/users", &json!({"name": "Jo", "role": role})).await;
    let issued = post(t, admin, "/v1/api-keys", &json!({"user_id": id_of(&user)})).await;
    assert_eq!(issued.status, 201, "{}", issued.body);
    (format!("/v1/users/{}", id_of(&user)), issued.body["api_key"].as_str().expect("the full key").to_owned())
}

/// A key acts for its user: with what the user may do now, not what they could when it was issued.
#[tokio::test]
async fn a_demoted_users_key_loses_admin_rights() {
    let t = TestStack::start().await;
    let admin = t.key().to_owned();
    let (user_path, jo) = user_with_key(&t, &admin, "admin").await;
    create(&t, &jo, "/v1/templates", &json!({"name": "As admin", "body": "Hi"})).await;

    let demoted = put(&t, &admin, &user_path, &json!({"name": "Jo", "role": "staff"})).await;
    assert_eq!(demoted.status, 200, "{}", demoted.body);
    assert_eq!(read_ok(&t, &admin, &user_path).await["role"], "staff");
    let answer = post(&t, &jo, "/v1/templates", &json!({"name": "After demotion", "body": "Hi"})).await;
    assert_problem(&answer, 403, "forbidden", "a demoted user's key creating a template");
    let answer = post(&t, &jo, "/v1/clinic/credits", &json!({"credits": 1000})).await;
    assert_problem(&answer, 403, "forbidden", "a demoted user's key topping up credits");
    assert_eq!(ids(&read_ok(&t, &admin, "/v1/templates").await).len(), 1, "only the template made as admin");
    create(&t, &jo, "/v1/groups", &json!({"name": "Staff work"})).await;
}

/// A key acts for its user: once the user is deleted, nobody is left for it to act for.
#[tokio::test]
async fn a_deleted_users_key_is_refused() {
    let t = TestStack::start().await;
    let admin = t.key().to_owned();
    let (user_path, jo) = user_with_key(&t, &admin, "staff").await;
    create(&t, &jo, "/v1/groups", &json!({"name": "Before"})).await;

    assert_eq!(delete(&t, &admin, &user_path).await.status, 204);
    assert_problem(&get(&t, &admin, &user_path).await, 404, "not-found", "the deleted user");
    let answer = get(&t, &jo, "/v1/contacts").await;
    assert_problem(&answer, 401, "unauthorized", "a deleted user's key reading contacts");
    let answer = post(&t, &jo, "/v1/groups", &json!({"name": "After deletion"})).await;
    assert_problem(&answer, 401, "unauthorized", "a deleted user's key creating a group");
    assert_eq!(ids(&read_ok(&t, &admin, "/v1/groups").await).len(), 1, "nothing made after the deletion");
}

#[tokio::test]
async fn a_business_with_a_bad_time_zone_window_or_days_ahead_is_refused_by_field_and_not_stored() {
    let t = TestStack::start().await;
    let key = t.key().to_owned();
    let with = |change: &dyn Fn(&mut Value)| {
        let mut body = business_body("Downtown");
        change(&mut body);
        body
    };

    let answer = post(&t, &key, "/v1/businesses", &with(&|b| b["time_zone"] = json!("Mars/Olympus_Mons"))).await;
    assert_invalid(&answer, "time_zone", "unknown time zone");
    assert!(detail(&answer).contains("Mars/Olympus_Mons"), "{}", answer.body);

    let windows = [
        (json!({"start": "12:00", "end": "10:00", "days_ahead": 1}), "end before start"),
        (json!({"start": "10:00", "end": "10:00", "days_ahead": 1}), "empty window"),
        (json!({"start": "10:00", "end": "12:00", "days_ahead": 20}), "20 days ahead"),
        (json!({"start": "10:00", "end": "25:00", "days_ahead": 1}), "no such hour"),
    ];
    for (window, what) in windows {
        let answer = post(&t, &key, "/v1/businesses", &with(&|b| b["window"] = window.clone())).await;
        assert_problem(&answer, 422, "invalid-field", what);
        let field = answer.body["field"].as_str().unwrap_or_default();
        assert!(field == "window" || field.starts_with("window."), "{what}: {}", answer.body);
    }
    let answer = post(
        &t,
        &key,
        "/v1/businesses",
        &with(&|b| b["window"] = json!({"start": "10:00", "end": "12:00", "days_ahead": 20})),
    )
    .await;
    assert!(detail(&answer).contains("20") && detail(&answer).contains("14"), "names the limit: {}", answer.body);
    let answer = post(&t, &key, "/v1/businesses", &with(&|b| b["name"] = json!("   "))).await;
    assert_invalid(&answer, "name", "blank name");
    let answer = post(&t, &key, "/v1/businesses", &with(&|b| b["window"] = Value::Null)).await;
    assert_invalid(&answer, "window", "no window");

    assert!(ids(&read_ok(&t, &key, "/v1/businesses").await).is_empty(), "no business was stored");
}

#[tokio::test]
async fn an_unknown_placeholder_or_a_missing_reminder_template_is_refused_and_not_stored() {
    let t = TestStack::start().await;
    let key = t.key().to_owned();

    let answer = post(
        &t,
        &key,
        "/v1/templates",
        &json!({"name": "Reminder", "body": "{{pet_name}} is due on {{appointment_date}}"}),
    )
    .await;
    assert_invalid(&answer, "body", "{{pet_name}}");
    assert!(detail(&answer).contains("pet_name"), "{}", answer.body);
    assert!(detail(&answer).contains("patient_name"), "lists the placeholders to use: {}", answer.body);
    let answer = post(&t, &key, "/v1/templates", &json!({"name": "Reminder", "body": "Hi {{client_first_name"})).await;
    assert_invalid(&answer, "body", "unclosed placeholder");
    let answer = post(&t, &key, "/v1/templates", &json!({"name": "Reminder", "body": "  "})).await;
    assert_invalid(&answer, "body", "blank body");
    assert!(ids(&read_ok(&t, &key, "/v1/templates").await).is_empty(), "no template was stored");

    let missing = "01kzzzzzzzzzzzzzzzzzzzzzzz";
    let answer =
        post(&t, &key, "/v1/appointment-types", &json!({"name": "Vaccination", "reminder_template_id": missing})).await;
    assert_invalid(&answer, "reminder_template_id", "missing template");
    assert!(detail(&answer).contains(missing), "{}", answer.body);
    assert!(ids(&read_ok(&t, &key, "/v1/appointment-types").await).is_empty(), "no type was stored");
}

#[tokio::test]
async fn an_appointment_naming_an_unknown_contact_business_or_type_is_refused_and_not_stored() {
    let t = TestStack::start().await;
    let key = t.key().to_owned();
    let (contact, business, kind) = appointment_parts(&t, &key).await;
    let missing = "01kzzzzzzzzzzzzzzzzzzzzzzz";

    let cases = [
        (appointment_body(missing, &business, &kind), "contact_id"),
        (appointment_body(&contact, missing, &kind), "business_id"),
        (appointment_body(&contact, &business, missing), "type_id"),
        // Ids of the wrong kind are unknown too.
        (appointment_body(&business, &business, &kind), "contact_id"),
        (appointment_body(&contact, &kind, &kind), "business_id"),
    ];
    for (body, field) in &cases {
        let answer = post(&t, &key, "/v1/appointments", body).await;
        assert_invalid(&answer, field, &format!("{body}"));
    }
    let mut body = appointment_body(&contact, &business, &kind);
    body["start"] = json!("tomorrow at 9");
    assert_invalid(&post(&t, &key, "/v1/appointments", &body).await, "start", "unreadable start");
    body["start"] = json!("2030-11-24T09:00:00");
    assert_invalid(&post(&t, &key, "/v1/appointments", &body).await, "start", "start without an offset");
    let Some(object) = body.as_object_mut() else { panic!("an object") };
    object.remove("start");
    assert_invalid(&post(&t, &key, "/v1/appointments", &body).await, "start", "no start");

    let listed = read_ok(&t, &key, &format!("/v1/appointments?{RANGE}")).await;
    assert!(ids(&listed).is_empty(), "no appointment was stored: {listed}");
}

#[tokio::test]
async fn a_contact_without_a_first_name_or_with_an_unknown_phone_kind_is_refused_and_not_stored() {
    let t = TestStack::start().await;
    let key = t.key().to_owned();
    let phone = |kind: &str| json!({"kind": kind, "number": "+14155550123"});
    let cases = [
        (json!({"last_name": "Whitfield"}), "first_name"),
        (json!({"first_name": "   "}), "first_name"),
        (json!({"first_name": "Dana", "phones": [phone("pager")]}), "phones[0].kind"),
        (json!({"first_name": "Dana", "phones": [phone("mobile"), phone("fax")]}), "phones[1].kind"),
        (json!({"first_name": "Dana", "phones": [{"kind": "mobile"}]}), "phones[0].number"),
        (json!({"first_name": "Dana", "phones": vec![phone("mobile"); 11]}), "phones"),
        (json!({"first_name": "Dana", "group_ids": ["01kzzzzzzzzzzzzzzzzzzzzzzz"]}), "group_ids"),
        (json!({"first_name": "Dana", "reminder_preference": "pigeon"}), "reminder_preference"),
    ];
    for (body, field) in &cases {
        let answer = post(&t, &key, "/v1/contacts", body).await;
        assert_invalid(&answer, field, &format!("{body}"));
    }
    let answer = post(&t, &key, "/v1/contacts", &cases[2].0).await;
    assert!(detail(&answer).contains("pager"), "names the kind given: {}", answer.body);
    assert!(ids(&read_ok(&t, &key, "/v1/contacts").await).is_empty(), "no contact was stored");
}

#[tokio::test]
async fn confirmation_keywords_twilio_answers_itself_are_refused_and_settings_stay_as_they_were() {
    let t = TestStack::start().await;
    let key = t.key().to_owned();
    let before = read_ok(&t, &key, "/v1/clinic").await;
    for keywords in [json!(["YES"]), json!(["STOP"]), json!(["stop"]), json!(["C", " Yes "]), json!(["HELP"])] {
        let mut body = settings_body("Renamed");
        body["confirmation_keywords"] = keywords.clone();
        let answer = put(&t, &key, "/v1/clinic", &body).await;
        assert_invalid(&answer, "confirmation_keywords", &format!("{keywords}"));
    }
    let mut body = settings_body("Renamed");
    body["confirmation_keywords"] = json!(["STOP"]);
    assert!(detail(&put(&t, &key, "/v1/clinic", &body).await).contains("STOP"), "names the word");
    body["confirmation_keywords"] = json!(["two words"]);
    assert_invalid(&put(&t, &key, "/v1/clinic", &body).await, "confirmation_keywords", "two words");

    let mut body = settings_body("Renamed");
    body["time_zone"] = json!("Mars/Olympus_Mons");
    assert_invalid(&put(&t, &key, "/v1/clinic", &body).await, "time_zone", "unknown zone");
    let mut body = settings_body("Renamed");
    body["default_country"] = json!("USA");
    assert_invalid(&put(&t, &key, "/v1/clinic", &body).await, "default_country", "three letters");
    let mut body = settings_body("Renamed");
    body["default_connection_id"] = json!("nope");
    assert_invalid(&put(&t, &key, "/v1/clinic", &body).await, "default_connection_id", "no such connection");

    let after = read_ok(&t, &key, "/v1/clinic").await;
    assert_eq!(after, before, "nothing was changed");
    assert_eq!(after["confirmation_keywords"], json!(["C", "CONFIRM"]));

    // Lowercase words that are allowed are stored in capitals.
    let mut body = settings_body("Renamed");
    body["confirmation_keywords"] = json!(["ok", "Confirm"]);
    let answer = put(&t, &key, "/v1/clinic", &body).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(read_ok(&t, &key, "/v1/clinic").await["confirmation_keywords"], json!(["OK", "CONFIRM"]));
}

#[tokio::test]
async fn an_unknown_field_is_422_and_malformed_json_is_400_on_every_write_and_nothing_is_stored() {
    let t = TestStack::start().await;
    let key = t.key().to_owned();
    let (contact, business, kind) = appointment_parts(&t, &key).await;
    let lists = ["businesses", "contacts", "groups", "templates", "appointment-types", "users", "connections"];
    let mut before = Vec::new();
    for list in lists {
        before.push(ids(&read_ok(&t, &key, &format!("/v1/{list}")).await));
    }
    let clinic_before = read_ok(&t, &key, "/v1/clinic").await;
    let user = id_of(&read_ok(&t, &key, "/v1/users/admin").await);

    let writes = [
        (Method::POST, "/v1/businesses".to_owned(), business_body("Uptown")),
        (Method::PUT, format!("/v1/businesses/{business}"), business_body("Uptown")),
        (Method::POST, "/v1/contacts".to_owned(), json!({"first_name": "Eve"})),
        (Method::PUT, format!("/v1/contacts/{contact}"), json!({"first_name": "Eve"})),
        (Method::POST, "/v1/groups".to_owned(), json!({"name": "Cats"})),
        (Method::POST, "/v1/templates".to_owned(), json!({"name": "T", "body": "Hi"})),
        (Method::POST, "/v1/appointment-types".to_owned(), json!({"name": "Surgery"})),
        (Method::PUT, format!("/v1/appointment-types/{kind}"), json!({"name": "Surgery"})),
        (Method::POST, "/v1/users".to_owned(), json!({"name": "Sam", "role": "staff"})),
        (Method::POST, "/v1/connections".to_owned(), json!({"label": "L", "sender": SERVICE_SID, "mps": 5})),
        (Method::POST, "/v1/appointments".to_owned(), appointment_body(&contact, &business, &kind)),
        (Method::PUT, "/v1/clinic".to_owned(), settings_body("Renamed")),
        (Method::POST, "/v1/clinic/credits".to_owned(), json!({"credits": 10})),
        (Method::POST, "/v1/api-keys".to_owned(), json!({"user_id": user})),
        (Method::POST, "/v1/templates/preview".to_owned(), json!({"body": "Hi"})),
    ];
    for (method, path, body) in &writes {
        let what = format!("{method} {path}");
        let mut extra = body.clone();
        extra["nickname"] = json!("Dee");
        let answer = call(&t, &key, method.clone(), path, Some(&extra)).await;
        assert_problem(&answer, 422, "invalid-field", &format!("{what} with an unknown field"));
        assert!(detail(&answer).contains("nickname"), "{what}: names the field: {}", answer.body);
        for raw in ["{\"name\": ", "not json", "[]", ""] {
            let answer = call_raw(&t, &key, method.clone(), path, raw).await;
            assert_problem(&answer, 400, "malformed-json", &format!("{what} with {raw:?}"));
        }
    }

    for (list, before) in lists.iter().zip(&before) {
        assert_eq!(&ids(&read_ok(&t, &key, &format!("/v1/{list}")).await), before, "{list} unchanged");
    }
    let listed = ids(&read_ok(&t, &key, &format!("/v1/appointments?{RANGE}")).await);
    assert!(listed.is_empty(), "no appointment was stored: {listed:?}");
    assert_eq!(read_ok(&t, &key, "/v1/clinic").await, clinic_before, "settings and credits unchanged");
}

/// `field` names an unknown field itself, as it does a missing one.
#[tokio::test]
async fn an_unknown_field_is_named_in_the_problems_field() {
    let t = TestStack::start().await;
    let key = t.key().to_owned();
    let answer = post(&t, &key, "/v1/groups", &json!({"name": "Cats", "nickname": "Dee"})).await;
    assert_invalid(&answer, "nickname", "unknown top-level field");
    let phones = json!([{"kind": "mobile", "number": "+14155550123", "extension": "12"}]);
    let answer = post(&t, &key, "/v1/contacts", &json!({"first_name": "Dana", "phones": phones})).await;
    assert_invalid(&answer, "phones[0].extension", "unknown nested field");
}

#[tokio::test]
async fn a_contact_keeps_numbers_that_cannot_be_texted_and_says_why() {
    let t = TestStack::start().await;
    let key = t.key().to_owned();
    let body = json!({
        "first_name": "Dana",
        "last_name": "Whitfield",
        "phones": [
            {"kind": "mobile", "number": "555-CALL-NOW"},
            {"kind": "home", "number": "(415) 555-0123"},
        ],
    });
    let created = create(&t, &key, "/v1/contacts", &body).await;
    assert_eq!(created["first_name"], "Dana");
    assert_eq!(created["last_name"], "Whitfield");
    assert_eq!(
        created["phones"],
        json!([
            {"kind": "mobile", "entered": "555-CALL-NOW", "e164": null, "problem": "contains_letters"},
            {"kind": "home", "entered": "(415) 555-0123", "e164": "+14155550123", "problem": null},
        ])
    );
    let warnings = created["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0]["field"], "phones[0].number");
    assert_eq!(warnings[0]["problem"], "contains_letters");
    assert!(warnings[0]["detail"].as_str().is_some_and(|d| d.contains("555-CALL-NOW")), "{}", warnings[0]);

    let path = format!("/v1/contacts/{}", id_of(&created));
    assert_eq!(read_ok(&t, &key, &path).await, created, "stored as answered");
    assert_eq!(ids(&read_ok(&t, &key, "/v1/contacts").await), [id_of(&created)]);

    let check = read_ok(&t, &key, &format!("{path}/sms-check")).await;
    assert_eq!(check["contact_id"], id_of(&created));
    assert_eq!(check["all_passed"], false);
    let checks = check["checks"].as_array().expect("checks");
    let named = |name: &str| {
        checks.iter().find(|c| c["check"] == name).unwrap_or_else(|| panic!("a {name} check in {check}")).clone()
    };
    let mobile = named("mobile_number");
    assert_eq!(mobile["passed"], false, "{mobile}");
    let mobile_detail = mobile["detail"].as_str().unwrap_or_default();
    assert!(mobile_detail.contains("555-CALL-NOW") && mobile_detail.contains("contains_letters"), "{mobile}");
    assert!(mobile["what_to_do"].as_str().is_some_and(|w| !w.is_empty()), "{mobile}");
    for other in ["credits", "reminder_preference", "opt_out", "connection"] {
        let c = named(other);
        assert_eq!(c["passed"], true, "{c}");
        assert!(c["what_to_do"].is_null(), "{c}");
    }

    // Corrected, it can be texted.
    let fixed = json!({"first_name": "Dana", "phones": [{"kind": "mobile", "number": "415 555 0123"}]});
    let answer = put(&t, &key, &path, &fixed).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["warnings"], json!([]));
    let check = read_ok(&t, &key, &format!("{path}/sms-check")).await;
    assert_eq!(check["all_passed"], true, "{check}");
}

/// Replacing a record changes what was sent, not when the record was created.
#[tokio::test]
async fn replacing_a_contact_keeps_when_it_was_created() {
    let t = TestStack::start().await;
    let key = t.key().to_owned();
    let created = create(&t, &key, "/v1/contacts", &json!({"first_name": "Dana"})).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let path = format!("/v1/contacts/{}", id_of(&created));
    let answer = put(&t, &key, &path, &json!({"first_name": "Dana", "last_name": "Whitfield"})).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["last_name"], "Whitfield");
    assert_eq!(answer.body["created_at"], created["created_at"], "the answer keeps created_at");
    assert_eq!(read_ok(&t, &key, &path).await["created_at"], created["created_at"], "the stored record keeps it");
}

#[tokio::test]
async fn groups_page_by_cursor_through_every_record_exactly_once() {
    let t = TestStack::start().await;
    let key = t.key().to_owned();
    let mut created = HashSet::new();
    for i in 0..23 {
        created.insert(id_of(&create(&t, &key, "/v1/groups", &json!({"name": format!("Group {i}")})).await));
    }
    assert_eq!(created.len(), 23);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/groups?limit=10&cursor={c}"),
            None => "/v1/groups?limit=10".to_owned(),
        };
        let page = read_ok(&t, &key, &path).await;
        let page_ids = ids(&page);
        assert!(page_ids.len() <= 10, "{page}");
        pages.push(page_ids.len());
        seen.extend(page_ids);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => {
                assert!(page["next_cursor"].is_null(), "{page}");
                break;
            }
        }
        assert!(pages.len() < 10, "paging never ends: {pages:?}");
    }
    assert_eq!(seen.len(), 23, "every group once: {pages:?}");
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), created);
    assert_eq!(&pages[..2], [10, 10]);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "in id order");
    assert_eq!(ids(&read_ok(&t, &key, "/v1/groups?limit=100").await), seen, "one page of 100 holds them all");

    // Cursors this list never gave out.
    let first = read_ok(&t, &key, "/v1/groups?limit=10").await;
    let good = first["next_cursor"].as_str().expect("a cursor").to_owned();
    let users_cursor = read_ok(&t, &key, "/v1/users?limit=1").await;
    let users_cursor = users_cursor["next_cursor"].as_str().map(str::to_owned);
    let mut bad = vec!["not-a-cursor!".to_owned(), "%%%".to_owned(), format!("{good}@"), "AAAA".to_owned()];
    bad.extend(users_cursor);
    for cursor in &bad {
        let answer = get(&t, &key, &format!("/v1/groups?limit=10&cursor={cursor}")).await;
        assert_invalid(&answer, "cursor", &format!("cursor {cursor:?}"));
    }
    for limit in ["0", "101", "-1"] {
        let answer = get(&t, &key, &format!("/v1/groups?limit={limit}")).await;
        assert_invalid(&answer, "limit", &format!("limit={limit}"));
    }
}

/// A cursor is only a position in the caller's own list: one edited by hand still decodes, but it
/// can only ever continue among this clinic's records of this kind, never reach another's.
#[tokio::test]
async fn an_edited_cursor_stays_inside_the_callers_own_list() {
    let t = TestStack::start().await;
    let key = t.key().to_owned();
    let mut mine = Vec::new();
    for i in 0..3 {
        mine.push(id_of(&create(&t, &key, "/v1/groups", &json!({"name": format!("Group {i}")})).await));
    }
    let page = read_ok(&t, &key, "/v1/groups?limit=1").await;
    let good = page["next_cursor"].as_str().expect("a cursor");
    assert_eq!(good, base64url(format!("GROUP#{}", ids(&page)[0]).as_bytes()), "cursors are this encoding");
    for forged in ["GROUP#0", "GROUP#", "GROUP#zzzzzzzzzzzzzzzzzzzzzzzzzz"] {
        let cursor = base64url(forged.as_bytes());
        let answer = read_ok(&t, &key, &format!("/v1/groups?limit=10&cursor={cursor}")).await;
        assert!(ids(&answer).iter().all(|id| mine.contains(id)), "only this clinic's groups: {answer}");
    }
    for other_kind in ["CONTACT#0", "APIKEY#0", "PROFILE"] {
        let answer = get(&t, &key, &format!("/v1/groups?limit=10&cursor={}", base64url(other_kind.as_bytes()))).await;
        assert_invalid(&answer, "cursor", &format!("a cursor forged from {other_kind:?}"));
    }
}

/// Every other kind refuses a blank name; the clinic's name is texted to clients as
/// `{{clinic_name}}`.
#[tokio::test]
async fn a_blank_clinic_name_is_refused() {
    let t = TestStack::start().await;
    let key = t.key().to_owned();
    let before = read_ok(&t, &key, "/v1/clinic").await;
    for name in ["", "   "] {
        let answer = put(&t, &key, "/v1/clinic", &settings_body(name)).await;
        assert_invalid(&answer, "name", &format!("clinic name {name:?}"));
    }
    assert_eq!(read_ok(&t, &key, "/v1/clinic").await["name"], before["name"]);
}

/// Query parameters are input like any other: a value that cannot be read is a problem naming
/// the parameter, as `limit=0` is.
#[tokio::test]
async fn query_parameters_that_cannot_be_read_get_a_problem_naming_the_parameter() {
    let t = TestStack::start().await;
    let key = t.key().to_owned();
    let cases = [
        ("/v1/groups?limit=ten", "limit"),
        ("/v1/contacts?limit=1.5", "limit"),
        ("/v1/appointments?to=2030-11-30T00:00:00Z", "from"),
        ("/v1/appointments?from=2030-11-20T00:00:00Z", "to"),
        ("/v1/appointments?from=next%20week&to=2030-11-30T00:00:00Z", "from"),
    ];
    for (path, field) in cases {
        assert_invalid(&get(&t, &key, path).await, field, path);
    }
    let answer = get(&t, &key, "/v1/appointments?from=2030-11-20T00:00:00Z&to=2030-12-30T00:00:00Z").await;
    assert_invalid(&answer, "to", "a range over 31 days");
}

#[tokio::test]
async fn a_template_preview_shows_the_text_its_encoding_and_segments() {
    let t = TestStack::start().await;
    let key = t.key().to_owned();
    let plain: String = "Your pet is due for a check-up. ".chars().cycle().take(150).collect();
    assert_eq!(plain.chars().count(), 150);

    let answer =
        post(&t, &key, "/v1/templates/preview", &json!({"body": format!("{plain}{{{{client_first_name}}}}")})).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let preview = &answer.body;
    assert_eq!(preview["text"], format!("{plain}Alex"), "rendered with the sample client");
    assert_eq!(preview["encoding"], "gsm7");
    assert_eq!(preview["characters"], 154);
    assert_eq!(preview["units"], 154);
    let units = preview["units"].as_u64().expect("units");
    let segments = preview["segments"].as_u64().expect("segments");
    assert!(segments == 1 || segments == 2, "{preview}");
    assert_eq!(segments, if units <= 160 { 1 } else { units.div_ceil(153) }, "{preview}");
    assert_eq!(preview["units_left_in_segment"], 160 - units);

    let answer =
        post(&t, &key, "/v1/templates/preview", &json!({"body": format!("🐶 {plain}{{{{client_first_name}}}}")})).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let preview = &answer.body;
    assert_eq!(preview["text"], format!("🐶 {plain}Alex"));
    assert_eq!(preview["encoding"], "ucs2");
    assert_eq!(preview["characters"], 156);
    assert_eq!(preview["units"], 157, "the emoji is two UTF-16 units");
    assert_eq!(preview["segments"], 3, "157 units at 67 a segment");

    let answer = post(&t, &key, "/v1/templates/preview", &json!({"body": "See {{pet_name}} tomorrow"})).await;
    assert_invalid(&answer, "body", "unknown placeholder");
    assert!(detail(&answer).contains("pet_name"), "{}", answer.body);
    let answer = post(&t, &key, "/v1/templates/preview", &json!({"body": "Hi {{client_first_name"})).await;
    assert_invalid(&answer, "body", "unclosed placeholder");
    assert!(ids(&read_ok(&t, &key, "/v1/templates").await).is_empty(), "a preview stores nothing");
}

#[tokio::test]
async fn credits_top_up_the_balance_and_a_threshold_above_it_warns() {
    let t = TestStack::start().await;
    let key = t.key().to_owned();
    let clinic = read_ok(&t, &key, "/v1/clinic").await;
    let start = clinic["credit_balance"].as_u64().expect("a balance");
    assert_eq!(start, devstack::seed::STARTING_CREDITS);
    assert_eq!(clinic["warnings"], json!([]), "{clinic}");

    let answer = post(&t, &key, "/v1/clinic/credits", &json!({"credits": 500})).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["credit_balance"], start + 500);
    assert_eq!(read_ok(&t, &key, "/v1/clinic").await["credit_balance"], start + 500);
    for credits in [json!(0), json!(1_000_001), json!(-5), json!("500")] {
        let answer = post(&t, &key, "/v1/clinic/credits", &json!({"credits": credits})).await;
        assert_invalid(&answer, "credits", &format!("credits {credits}"));
    }
    assert_eq!(read_ok(&t, &key, "/v1/clinic").await["credit_balance"], start + 500, "refused top-ups add nothing");

    let mut settings = settings_body("Demo Veterinary Clinic");
    settings["low_credit_threshold"] = json!(start + 501);
    let answer = put(&t, &key, "/v1/clinic", &settings).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["low_credit_threshold"], start + 501);
    let warnings = answer.body["warnings"].as_array().expect("warnings").clone();
    assert_eq!(warnings.len(), 1, "{}", answer.body);
    let warning = warnings[0].as_str().unwrap_or_default();
    assert!(warning.contains(&(start + 500).to_string()), "names the balance: {warning}");
    assert_eq!(read_ok(&t, &key, "/v1/clinic").await["warnings"], json!(warnings));

    settings["low_credit_threshold"] = json!(10);
    assert_eq!(put(&t, &key, "/v1/clinic", &settings).await.body["warnings"], json!([]));
}
