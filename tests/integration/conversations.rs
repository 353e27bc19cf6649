//! Conversations: a patient's text opens one or joins the active one; the clinic's texts to that
//! patient join it; a text from the clinic alone opens none; listed open first, newest activity
//! first; closed; an unknown number's thread linked to a contact.

use devstack::stack::{DEMO_SENDER, OTHER_SENDER};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::TestStack;

const ANA: &str = "+14155550123";

fn sid(n: usize) -> String {
    format!("SM{n:032x}")
}

async fn contact(t: &TestStack, name: &str, number: &str) -> String {
    let body = json!({"first_name": name, "phones": [{"kind": "mobile", "number": number}]});
    let (status, created) = t.call(t.key(), Method::POST, "/v1/contacts", Some(&body)).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().expect("an id").to_owned()
}

async fn reply(t: &TestStack, n: usize, from: &str, body: &str) {
    let (status, answer, _) = t.inbound(&sid(n), from, DEMO_SENDER, body, &[]).await;
    assert_eq!(status, 200, "{answer}");
}

async fn list(t: &TestStack, query: &str) -> Value {
    let (status, page) = t.call(t.key(), Method::GET, &format!("/v1/conversations{query}"), None).await;
    assert_eq!(status, 200, "{page}");
    page
}

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().expect("items").iter().map(|c| c["id"].as_str().expect("id").to_owned()).collect()
}

async fn show(t: &TestStack, id: &str) -> Value {
    let (status, conversation) = t.call(t.key(), Method::GET, &format!("/v1/conversations/{id}"), None).await;
    assert_eq!(status, 200, "{conversation}");
    conversation
}

async fn close(t: &TestStack, id: &str) -> Value {
    let (status, closed) = t.call(t.key(), Method::POST, &format!("/v1/conversations/{id}/close"), None).await;
    assert_eq!(status, 200, "{closed}");
    closed
}

#[tokio::test]
async fn a_reply_opens_a_conversation_the_clinics_texts_join_and_closing_ends_it() {
    let t = TestStack::start().await;
    let ana = contact(&t, "Ana", ANA).await;

    // The clinic's text alone (like a mass alert) opens nothing.
    let first = t.send_text(ANA).await;
    assert!(ids(&list(&t, "").await).is_empty());
    assert_eq!(t.get_message(&first).await.1["conversation_id"], Value::Null);

    reply(&t, 1, ANA, "Can we move to Friday?").await;
    let open = ids(&list(&t, "").await);
    assert_eq!(open.len(), 1);
    let conversation = &open[0];
    let answer = t.send_text(ANA).await;
    reply(&t, 2, ANA, "Thanks!").await;

    let shown = show(&t, conversation).await;
    assert_eq!((shown["status"].as_str(), shown["contact_id"].as_str()), (Some("open"), Some(ana.as_str())));
    let messages = shown["messages"].as_array().expect("messages");
    let order: Vec<_> = messages.iter().map(|m| (m["direction"].as_str(), m["body"].as_str())).collect();
    assert_eq!(
        order,
        [
            (Some("inbound"), Some("Can we move to Friday?")),
            (Some("outbound"), Some("Reminder: checkup tomorrow 9am")),
            (Some("inbound"), Some("Thanks!")),
        ]
    );
    assert_eq!(messages[1]["id"], answer.as_str());
    assert!(messages.iter().all(|m| m["conversation_id"] == conversation.as_str()));

    // Another clinic cannot see it.
    let b = t.other_clinic("other", OTHER_SENDER).await.api_key;
    assert_eq!(t.call(&b, Method::GET, &format!("/v1/conversations/{conversation}"), None).await.0, 404);
    assert_eq!(t.call(&b, Method::POST, &format!("/v1/conversations/{conversation}/close"), None).await.0, 404);
    assert_eq!(t.call(&b, Method::GET, "/v1/conversations", None).await.1["items"], json!([]));

    // Closed: the clinic's texts join nothing; Ana's next text opens a new conversation.
    assert_eq!(close(&t, conversation).await["status"], "closed");
    assert_eq!(close(&t, conversation).await["status"], "closed", "closing twice is harmless");
    let after = t.send_text(ANA).await;
    assert_eq!(t.get_message(&after).await.1["conversation_id"], Value::Null);
    reply(&t, 3, ANA, "One more thing").await;
    let both = ids(&list(&t, "").await);
    assert_eq!(both.len(), 2);
    assert_eq!(both[1], *conversation, "open first, the closed one after");
    assert_eq!(show(&t, &both[0]).await["messages"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn conversations_list_open_first_newest_activity_first_one_page_at_a_time() {
    let t = TestStack::start().await;
    let numbers = ["+14155550101", "+14155550102", "+14155550103", "+14155550104"];
    for (n, number) in numbers.iter().enumerate() {
        reply(&t, n, number, "Hello").await;
    }
    let by_number = |page: &Value, number: &str| -> String {
        let items = page["items"].as_array().expect("items");
        let found = items.iter().find(|c| c["number"] == number).expect("listed");
        found["id"].as_str().expect("id").to_owned()
    };
    let all = list(&t, "").await;
    let [first, second, third, fourth] = numbers.map(|n| by_number(&all, n));
    close(&t, &second).await;
    // The first number writes again: its conversation has the newest activity.
    reply(&t, 10, numbers[0], "Still there?").await;
    let expected = [first, fourth, third, second];
    assert_eq!(ids(&list(&t, "").await), expected);

    let mut paged = Vec::new();
    let mut query = "?limit=1".to_owned();
    loop {
        let page = list(&t, &query).await;
        paged.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(paged, expected, "every conversation once, in order");
    let (status, problem) = t.call(t.key(), Method::GET, "/v1/conversations?cursor=bm90LWEta2V5", None).await;
    assert_eq!((status, problem["field"].as_str()), (422, Some("cursor")), "{problem}");
}

#[tokio::test]
async fn an_unknown_numbers_thread_is_linked_to_a_contact_and_their_texts_join_it() {
    let t = TestStack::start().await;
    reply(&t, 1, ANA, "Hi, this is Ana's new phone").await;
    let unknown = ids(&list(&t, "").await).remove(0);
    assert_eq!(show(&t, &unknown).await["contact_id"], Value::Null);

    let ana = contact(&t, "Ana", ANA).await;
    let path = format!("/v1/conversations/{unknown}/link");
    let (status, linked) = t.call(t.key(), Method::POST, &path, Some(&json!({"contact_id": ana}))).await;
    assert_eq!((status, linked["contact_id"].as_str()), (200, Some(ana.as_str())), "{linked}");
    let (status, again) = t.call(t.key(), Method::POST, &path, Some(&json!({"contact_id": ana}))).await;
    assert_eq!((status, again["type"].as_str()), (409, Some("urn:clinic-sms:problem:already-linked")), "{again}");
    let (status, missing) = t.call(t.key(), Method::POST, &path, Some(&json!({"contact_id": "nobody"}))).await;
    assert_eq!((status, missing["field"].as_str()), (422, Some("contact_id")), "{missing}");

    // Ana's texts now join the linked conversation, and the clinic's texts to her too.
    reply(&t, 2, ANA, "Did you get my message?").await;
    let answer = t.send_text(ANA).await;
    assert_eq!(ids(&list(&t, "").await), std::slice::from_ref(&unknown));
    assert_eq!(show(&t, &unknown).await["messages"].as_array().map(Vec::len), Some(3));
    assert_eq!(t.get_message(&answer).await.1["conversation_id"], unknown.as_str());

    // A contact with an active conversation cannot take a second one.
    reply(&t, 3, "+14155550177", "Unknown again").await;
    let other = ids(&list(&t, "").await).into_iter().find(|id| *id != unknown).expect("a second thread");
    let path = format!("/v1/conversations/{other}/link");
    let (status, busy) = t.call(t.key(), Method::POST, &path, Some(&json!({"contact_id": ana}))).await;
    assert_eq!((status, busy["field"].as_str()), (409, Some("contact_id")), "{busy}");
}
