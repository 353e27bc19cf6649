//! The mailbox: each view shows exactly its messages, newest first, one page at a time (5,000
//! messages page through exactly once); search by every criterion within at most 31 days;
//! delete and restore a selection; one message by id, never another clinic's.

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};
use devstack::stack::OTHER_SENDER;
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use shared::ids::{ClinicId, ConnectionId, MessageId, UserId};
use shared::message::{Failure, Lane, Message, MessageBody};
use shared::message_status::MessageStatus;
use shared::phone::E164;
use shared::reason::Reason;

use crate::support::TestStack;

const ANA: &str = "+14155550123";
const BEN: &str = "+14155550456";

/// A message of the demo clinic in `status`, created at `at`, stored directly: states the
/// sender would take minutes to reach are one insert away.
fn message(status: MessageStatus, at: DateTime<Utc>, to: &str, body: &str) -> Message {
    let mut m = Message::new_outbound(
        ClinicId::new("demo"),
        E164::parse(to, None).expect("valid number"),
        MessageBody::parse(body).expect("valid body"),
        ConnectionId::new("main"),
        Lane::Interactive,
        Some(UserId::new("admin")),
        at,
    );
    m.status = status;
    m.failure = match status {
        MessageStatus::Undelivered => Some(Failure::twilio(30003, None)),
        MessageStatus::Failed => Some(Failure::twilio(30007, None)),
        MessageStatus::Skipped => Some(Failure::reason(Reason::NoMobileNumber)),
        _ => None,
    };
    if status == MessageStatus::Received {
        m.direction = shared::message::Direction::Inbound;
        m.from = m.to.take();
        m.to = E164::parse(devstack::stack::DEMO_SENDER, None).ok();
        m.created_by = None;
    }
    m
}

async fn insert(t: &TestStack, m: &Message) -> String {
    t.stack.services.messages.insert(m).await.expect("stored");
    m.id.to_string()
}

async fn get(t: &TestStack, path: &str) -> (u16, Value) {
    t.call(t.key(), Method::GET, path, None).await
}

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().expect("items").iter().map(|m| m["id"].as_str().expect("id").to_owned()).collect()
}

/// Every id of a view or search, page by page, checking each page is at most `limit` long.
async fn page_through(t: &TestStack, path: &str, limit: usize) -> Vec<String> {
    let separator = if path.contains('?') { '&' } else { '?' };
    let mut shown = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{path}{separator}limit={limit}");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let (status, page) = get(t, &url).await;
        assert_eq!(status, 200, "{url}: {page}");
        let page_ids = ids(&page);
        assert!(page_ids.len() <= limit, "{url}: {} items", page_ids.len());
        shown.extend(page_ids);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return shown,
        }
    }
}

fn newest_first(mut ids: Vec<String>) -> Vec<String> {
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids
}

fn assert_each_once_newest_first(shown: &[String], expected: &HashSet<String>, what: &str) {
    let distinct: HashSet<&String> = shown.iter().collect();
    assert_eq!(distinct.len(), shown.len(), "{what}: an id shown twice");
    assert_eq!(shown.len(), expected.len(), "{what}: shown {} of {}", shown.len(), expected.len());
    assert!(shown.iter().all(|id| expected.contains(id)), "{what}: an id that is not in the view");
    assert!(shown.windows(2).all(|w| w[0] > w[1]), "{what}: not newest first");
}

#[tokio::test]
async fn each_view_shows_exactly_its_messages_newest_first() {
    let t = TestStack::start().await;
    let now = t.stack.services.clock.now();
    let mut by_status = Vec::new();
    // Two of each status, a minute apart, oldest first.
    for (n, status) in MessageStatus::ALL.into_iter().cycle().take(2 * MessageStatus::ALL.len()).enumerate() {
        let at = now - TimeDelta::hours(2) + TimeDelta::minutes(i64::try_from(n).expect("small"));
        let id = insert(&t, &message(status, at, ANA, "Max is due for his booster")).await;
        by_status.push((status, id));
    }
    // Awaiting approval for longer than the view looks back (the scheduler expires these).
    let stale = insert(&t, &message(MessageStatus::AwaitingApproval, now - TimeDelta::days(31), ANA, "Old")).await;
    // Deleted ones, in two different states: only in Deleted.
    let mut deleted = Vec::new();
    for status in [MessageStatus::Delivered, MessageStatus::Queued] {
        let m = message(status, now - TimeDelta::minutes(5), BEN, "Deleted one")
            .deleted_by(&UserId::new("admin"), now)
            .expect("deletes");
        deleted.push(insert(&t, &m).await);
    }
    // Another clinic's messages show in none of the demo clinic's views.
    let other = t.other_clinic("other", OTHER_SENDER).await;
    for status in MessageStatus::ALL {
        let mut m = message(status, now - TimeDelta::minutes(1), ANA, "Other clinic");
        m.clinic_id = ClinicId::new("other");
        insert(&t, &m).await;
    }

    let with = |statuses: &[MessageStatus]| -> Vec<String> {
        newest_first(by_status.iter().filter(|(s, _)| statuses.contains(s)).map(|(_, id)| id.clone()).collect())
    };
    use MessageStatus::*;
    let mut all = with(&MessageStatus::ALL);
    all.push(stale.clone());
    let expected = [
        ("all", newest_first(all)),
        ("received", with(&[Received])),
        ("pending", with(&[Queued, Sending, Deferred, Scheduled])),
        ("ready_to_approve", with(&[AwaitingApproval])),
        ("outbox", with(&[Queued, Sending, Deferred, Scheduled, Failed, Undelivered])),
        ("sent", with(&[Submitted, Sent, Delivered, Undelivered])),
        ("failed", with(&[Failed, Undelivered])),
        ("did_not_trigger", with(&[Skipped])),
        ("deleted", newest_first(deleted.clone())),
    ];
    for (view, expected) in &expected {
        let (status, page) = get(&t, &format!("/v1/messages?view={view}")).await;
        assert_eq!(status, 200, "{view}: {page}");
        assert_eq!(page["view"], *view);
        assert_eq!(ids(&page), *expected, "{view}");
        assert_eq!(page["next_cursor"], Value::Null, "{view}");
        // And one at a time, through the cursors.
        assert_eq!(page_through(&t, &format!("/v1/messages?view={view}"), 3).await, *expected, "{view} paged");
    }
    let (_, default) = get(&t, "/v1/messages").await;
    assert_eq!((default["view"].as_str(), ids(&default)), (Some("all"), expected[0].1.clone()));

    // Sent shows an undelivered text's error with what it means; Did not trigger its reason.
    let (_, sent) = get(&t, "/v1/messages?view=sent").await;
    let undelivered = sent["items"].as_array().expect("items").iter().find(|m| m["status"] == "undelivered");
    let error = &undelivered.expect("an undelivered text")["error"];
    assert_eq!(error["code"], 30003);
    assert!(error["description"].as_str().is_some_and(|d| !d.is_empty()), "{error}");
    let (_, skipped) = get(&t, "/v1/messages?view=did_not_trigger").await;
    assert!(skipped["items"].as_array().expect("items").iter().all(|m| m["error"]["reason"] == "no_mobile_number"));
    // Each item is shown as GET /v1/messages/{id} shows it.
    let first = &default["items"][0];
    let (_, one) = t.get_message(first["id"].as_str().expect("id")).await;
    assert_eq!(*first, one);

    // The other clinic sees only its own.
    let (_, theirs) = t.call(&other.api_key, Method::GET, "/v1/messages?view=all", None).await;
    assert_eq!(ids(&theirs).len(), MessageStatus::ALL.len());
    assert!(ids(&theirs).iter().all(|id| !expected[0].1.contains(id)));
}

#[tokio::test]
async fn a_view_over_5000_messages_pages_through_each_once() {
    let t = TestStack::start().await;
    let now = t.stack.services.clock.now();
    use MessageStatus::*;
    // One in five is in the Outbox, from three of its buckets: 1,000 merged from three shows the
    // merge; more would only slow moto, whose every query reads the whole table.
    let statuses = [
        [Delivered, Queued, Delivered, Received, Undelivered],
        [Delivered, Sent, Received, Delivered, Skipped],
        [Delivered, Received, Failed, Delivered, Delivered],
        [Submitted, Delivered, Received, Delivered, Undelivered],
    ]
    .concat();
    let messages: Vec<Message> = (0..5000)
        .map(|n| {
            // Many share a millisecond: the ids' random part orders them.
            let at = now - TimeDelta::milliseconds(i64::from(n / 3));
            let status = statuses[usize::try_from(n).expect("small") % statuses.len()];
            message(status, at, ANA, "Max is due for his booster")
        })
        .collect();
    futures::stream::iter(&messages)
        .map(|m| t.stack.services.messages.insert(m))
        .buffer_unordered(32)
        .for_each(|stored| async move { stored.expect("stored") })
        .await;
    let of = |wanted: &[MessageStatus]| -> HashSet<String> {
        messages.iter().filter(|m| wanted.contains(&m.status)).map(|m| m.id.to_string()).collect()
    };

    let all = page_through(&t, "/v1/messages?view=all", 100).await;
    assert_each_once_newest_first(&all, &of(&statuses), "all");
    let outbox = page_through(&t, "/v1/messages?view=outbox", 100).await;
    let expected = of(&[Queued, Failed, Undelivered]);
    assert_eq!(expected.len(), 1000);
    assert_each_once_newest_first(&outbox, &expected, "outbox");
}

#[tokio::test]
async fn views_refuse_what_they_cannot_answer() {
    let t = TestStack::start().await;
    for (query, field) in [
        ("?view=inbox", "view"),
        ("?limit=101", "limit"),
        ("?limit=0", "limit"),
        ("?limit=lots", "limit"),
        ("?cursor=not-a-cursor", "cursor"),
    ] {
        let (status, problem) = get(&t, &format!("/v1/messages{query}")).await;
        assert_eq!((status, problem["field"].as_str()), (422, Some(field)), "{query}: {problem}");
    }
    let (status, problem) = get(&t, "/v1/messages?view=inbox").await;
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("ready_to_approve")), "{status} {problem}");
}

#[tokio::test]
async fn search_narrows_by_each_criterion_within_at_most_31_days() {
    let t = TestStack::start().await;
    let now = t.stack.services.clock.now();
    let day = TimeDelta::days(1);
    let at = |days_ago: i64| now - TimeDelta::days(days_ago);

    let mut ana_reminder = message(MessageStatus::Delivered, at(3), ANA, "Max is due for his Booster");
    ana_reminder.contact_id = Some("ana".into());
    let ana_reminder = insert(&t, &ana_reminder).await;
    let mut ben_failed = message(MessageStatus::Undelivered, at(2), BEN, "Bella's checkup is on Friday");
    ben_failed.created_by = Some(UserId::new("front-desk"));
    let ben_failed = insert(&t, &ben_failed).await;
    let ana_reply = insert(&t, &message(MessageStatus::Received, at(1), ANA, "Can we come at 10?")).await;
    let too_old = insert(&t, &message(MessageStatus::Delivered, at(40), ANA, "Booster reminder")).await;
    let deleted = message(MessageStatus::Delivered, at(1), ANA, "Booster, deleted")
        .deleted_by(&UserId::new("admin"), now)
        .expect("deletes");
    insert(&t, &deleted).await;
    let other = {
        let mut m = message(MessageStatus::Delivered, at(1), ANA, "Booster at the other clinic");
        m.clinic_id = ClinicId::new("other");
        insert(&t, &m).await
    };

    let range = format!("from={}&to={}", rfc3339(at(30)), rfc3339(now + day));
    let search = |criteria: &str| {
        let path = format!("/v1/messages/search?{range}{criteria}");
        let t = &t;
        async move {
            let (status, page) = get(t, &path).await;
            assert_eq!(status, 200, "{path}: {page}");
            ids(&page)
        }
    };
    assert_eq!(search("").await, [ana_reply.clone(), ben_failed.clone(), ana_reminder.clone()]);
    assert_eq!(search("&contact_id=ana").await, [ana_reminder.as_str()]);
    // The clinic's own country reads a national number; it matches texts to and from it.
    assert_eq!(search("&number=(415)%20555-0123").await, [ana_reply.clone(), ana_reminder.clone()]);
    assert_eq!(search("&status=undelivered").await, [ben_failed.as_str()]);
    assert_eq!(search("&error_code=30003").await, [ben_failed.as_str()]);
    assert_eq!(search("&error_code=30007").await, Vec::<String>::new());
    assert_eq!(search("&user=front-desk").await, [ben_failed.as_str()]);
    assert_eq!(search("&text=booster").await, [ana_reminder.as_str()], "any case; deleted and old ones aside");
    assert_eq!(search("&text=booster&number=%2B14155550123&status=delivered").await, [ana_reminder.as_str()]);
    let found: Vec<String> = search("&text=o").await;
    assert!(!found.contains(&too_old) && !found.contains(&other) && !found.contains(&deleted.id.to_string()));
    // The range: the 40-day-old text only when asked for, never more than 31 days at once.
    let (status, page) = get(&t, &format!("/v1/messages/search?from={}&to={}", rfc3339(at(41)), rfc3339(at(39)))).await;
    assert_eq!((status, ids(&page)), (200, vec![too_old.clone()]), "{page}");

    for (query, field) in [
        (format!("from={}&to={}", rfc3339(at(32)), rfc3339(now)), "to"),
        (format!("from={}&to={}", rfc3339(now), rfc3339(at(1))), "to"),
        (format!("to={}", rfc3339(now)), "from"),
        (format!("from={}", rfc3339(now)), "to"),
        (format!("from=yesterday&to={}", rfc3339(now)), "from"),
        (format!("{range}&number=12"), "number"),
        (format!("{range}&status=lost"), "status"),
        (format!("{range}&error_code=E30003"), "error_code"),
        (format!("{range}&limit=101"), "limit"),
        (format!("{range}&cursor=nope"), "cursor"),
    ] {
        let (status, problem) = get(&t, &format!("/v1/messages/search?{query}")).await;
        assert_eq!((status, problem["field"].as_str()), (422, Some(field)), "{query}: {problem}");
    }
}

#[tokio::test]
async fn search_pages_through_sparse_matches_exactly_once() {
    let t = TestStack::start().await;
    let now = t.stack.services.clock.now();
    let mut matching = HashSet::new();
    for n in 0..120_i64 {
        let at = now - TimeDelta::minutes(n);
        let body = if n % 4 == 0 { "Vaccination due" } else { "See you soon" };
        let id = insert(&t, &message(MessageStatus::Delivered, at, ANA, body)).await;
        if n % 4 == 0 {
            matching.insert(id);
        }
    }
    let path = format!(
        "/v1/messages/search?from={}&to={}&text=VACCINATION",
        rfc3339(now - TimeDelta::days(1)),
        rfc3339(now + TimeDelta::minutes(1))
    );
    for limit in [4, 7, 100] {
        let shown = page_through(&t, &path, limit).await;
        assert_each_once_newest_first(&shown, &matching, &format!("limit {limit}"));
    }
}

#[tokio::test]
async fn deleting_moves_a_message_to_deleted_and_restoring_brings_it_back() {
    let t = TestStack::start().await;
    let now = t.stack.services.clock.now();
    let delivered = insert(&t, &message(MessageStatus::Delivered, now, ANA, "Max is due for his booster")).await;
    let mut approved = message(MessageStatus::Queued, now, BEN, "Bella's checkup is on Friday");
    approved.approved_by = Some(UserId::new("vet"));
    let queued = insert(&t, &approved).await;
    let view = |name: &'static str| {
        let t = &t;
        async move { ids(&get(t, &format!("/v1/messages?view={name}")).await.1) }
    };
    assert_eq!(t.get_message(&queued).await.1["approved_by"], "vet");
    assert_eq!(t.get_message(&delivered).await.1["created_by"], "admin");

    let (status, answer) = mark(&t, "delete", json!([delivered])).await;
    assert_eq!((status, answer["results"].clone()), (200, json!([{"id": delivered, "outcome": "deleted"}])));
    assert_eq!(view("deleted").await, [delivered.as_str()]);
    assert!(!view("sent").await.contains(&delivered) && !view("all").await.contains(&delivered));
    // Still shown by id, with who deleted it; its status is untouched.
    let (status, shown) = t.get_message(&delivered).await;
    assert_eq!(
        (status, shown["status"].as_str(), shown["deleted"]["by"].as_str()),
        (200, Some("delivered"), Some("admin"))
    );
    assert!(shown["deleted"]["at"].is_string(), "{shown}");
    let range = format!("from={}&to={}", rfc3339(now - TimeDelta::days(1)), rfc3339(now + TimeDelta::days(1)));
    assert_eq!(ids(&get(&t, &format!("/v1/messages/search?{range}")).await.1), [queued.as_str()], "not searched");

    let (status, again) = mark(&t, "delete", json!([delivered])).await;
    assert_eq!((status, again["results"][0]["outcome"].as_str()), (409, Some("already_deleted")), "{again}");

    let (status, answer) = mark(&t, "restore", json!([delivered])).await;
    assert_eq!((status, answer["results"].clone()), (200, json!([{"id": delivered, "outcome": "restored"}])));
    assert_eq!(view("sent").await, [delivered.as_str()], "back in the view its status puts it in");
    assert!(view("deleted").await.is_empty());
    let (_, restored) = t.get_message(&delivered).await;
    assert_eq!(restored["deleted"], Value::Null);
    let notes: Vec<&str> =
        restored["history"].as_array().expect("history").iter().filter_map(|h| h["note"].as_str()).collect();
    assert_eq!(notes, ["deleted by admin", "restored by admin"]);

    // Restoring what was never deleted: 409.
    let (status, problem) = mark(&t, "restore", json!([queued])).await;
    assert_eq!((status, problem["results"][0]["outcome"].as_str()), (409, Some("not_deleted")), "{problem}");
    assert_eq!(view("pending").await, [queued.as_str()]);
}

#[tokio::test]
async fn a_selection_answers_each_id_and_never_reveals_another_clinics() {
    let t = TestStack::start().await;
    let now = t.stack.services.clock.now();
    let ours = insert(&t, &message(MessageStatus::Delivered, now, ANA, "Max is due for his booster")).await;
    let gone = message(MessageStatus::Failed, now, BEN, "Already deleted")
        .deleted_by(&UserId::new("admin"), now)
        .expect("deletes");
    let gone = insert(&t, &gone).await;
    let other = t.other_clinic("other", OTHER_SENDER).await;
    let mut theirs = message(MessageStatus::Delivered, now, ANA, "The other clinic's");
    theirs.clinic_id = ClinicId::new("other");
    let theirs = insert(&t, &theirs).await;
    let unknown = MessageId::generate(now).to_string();

    let (status, answer) = mark(&t, "delete", json!([ours, unknown, theirs, "not-an-id", gone, ours])).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["results"],
        json!([
            {"id": ours, "outcome": "deleted"},
            {"id": unknown, "outcome": "not_found"},
            {"id": theirs, "outcome": "not_found"},
            {"id": "not-an-id", "outcome": "not_found"},
            {"id": gone, "outcome": "already_deleted"},
        ]),
        "each id once, in the order given"
    );
    // The other clinic's message is untouched and stays theirs.
    let (status, shown) = t.call(&other.api_key, Method::GET, &format!("/v1/messages/{theirs}"), None).await;
    assert_eq!((status, &shown["deleted"]), (200, &Value::Null));
    assert_eq!(t.get_message(&theirs).await.0, 404, "another clinic's message by id");
    assert_eq!(t.get_message("not-an-id").await.0, 404);

    for action in ["delete", "restore"] {
        let (status, problem) = mark(&t, action, json!([unknown, theirs])).await;
        assert_eq!(status, 404, "{action}: {problem}");
        assert_eq!(problem["results"][1], json!({"id": theirs, "outcome": "not_found"}));
        let (status, problem) = mark(&t, action, json!([])).await;
        assert_eq!((status, problem["field"].as_str()), (422, Some("ids")), "{action}: {problem}");
        let many: Vec<String> = (0..101).map(|_| MessageId::generate(now).to_string()).collect();
        let (status, problem) = mark(&t, action, json!(many)).await;
        assert_eq!((status, problem["field"].as_str()), (422, Some("ids")), "{action}: {problem}");
        assert!(problem["detail"].as_str().is_some_and(|d| d.contains("100")), "{problem}");
        let (status, problem) =
            t.call(t.key(), Method::POST, &format!("/v1/messages/{action}"), Some(&json!({}))).await;
        assert_eq!((status, problem["field"].as_str()), (422, Some("ids")), "{action}: {problem}");
    }
    // 150 copies of one id are one message.
    let (status, answer) = mark(&t, "restore", json!(vec![gone.clone(); 150])).await;
    assert_eq!((status, answer["results"].clone()), (200, json!([{"id": gone, "outcome": "restored"}])));
}

async fn mark(t: &TestStack, action: &str, ids: Value) -> (u16, Value) {
    t.call(t.key(), Method::POST, &format!("/v1/messages/{action}"), Some(&json!({ "ids": ids }))).await
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[tokio::test]
async fn the_items_behind_repeated_index_entries_are_read_once_in_the_entries_order() {
    let t = TestStack::start().await;
    let first = t.send_text("+14155550141").await;
    let second = t.send_text("+14155550142").await;
    let dynamo = aws_sdk_dynamodb::Client::new(&t.stack.aws);
    let table = &t.stack.resources.tables.messages;
    let entries = dynamo
        .query()
        .table_name(table)
        .index_name("gsi1")
        .key_condition_expression("gsi1pk = :c")
        .expression_attribute_values(":c", aws_sdk_dynamodb::types::AttributeValue::S("CLINIC#demo".into()))
        .scan_index_forward(false)
        .send()
        .await
        .expect("query")
        .items
        .unwrap_or_default();
    assert_eq!(entries.len(), 2);
    // An entry twice (its key moved while a query paged): BatchGetItem would refuse the request.
    let repeated = [entries.clone(), entries].concat();
    let items = shared::dynamo::items_behind(&dynamo, table, &repeated).await.expect("read once");
    let ids: Vec<&str> = items.iter().filter_map(|i| i.get("id")?.as_s().ok().map(String::as_str)).collect();
    assert_eq!(ids, [second.as_str(), first.as_str()], "newest first, each once");
}
