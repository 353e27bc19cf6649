//! The sending pipeline: idempotent creates, and pacing at the connection's throughput.

use serde_json::json;
use shared::ids::{ClinicId, ConnectionId};

use crate::support::TestStack;

async fn post_with_key(t: &TestStack, key: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let response = t
        .http
        .post(t.url("/v1/messages"))
        .bearer_auth(t.key())
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("answers");
    let (status, value, _) = crate::support::read(response).await;
    (status, value)
}

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_first_answer_and_creates_nothing() {
    let t = TestStack::start().await;
    let body = json!({"to": "+14155550123", "body": "Your prescription is ready"});
    let (first_status, first) = post_with_key(&t, "order-1", &body).await;
    assert_eq!(first_status, 202, "{first}");
    let (again_status, again) = post_with_key(&t, "order-1", &body).await;
    assert_eq!((again_status, &again), (202, &first), "the same answer");
    let other_body = json!({"to": "+14155550123", "body": "Something else"});
    let (status, problem) = post_with_key(&t, "order-1", &other_body).await;
    assert_eq!((status, problem["field"].as_str()), (422, Some("Idempotency-Key")), "{problem}");
    // A refused request is remembered too, and a new key is a new request.
    let bad = json!({"to": "not a number", "body": "x"});
    assert_eq!(post_with_key(&t, "order-2", &bad).await.0, 422);
    assert_eq!(post_with_key(&t, "order-2", &bad).await.0, 422);
    assert_eq!(post_with_key(&t, "order-3", &body).await.0, 202);
    assert_eq!(post_with_key(&t, "bad key with spaces", &body).await.0, 422);
    assert_eq!(t.message_count().await, 2);
}

#[tokio::test]
async fn the_same_idempotency_key_posted_concurrently_creates_one_message() {
    let t = TestStack::start().await;
    let body = json!({"to": "+14155550123", "body": "Only once"});
    let answers = futures_join(&t, &body).await;
    let ids: Vec<_> = answers.iter().filter(|(s, _)| *s == 202).map(|(_, v)| v["id"].clone()).collect();
    assert!(!ids.is_empty() && ids.iter().all(|id| *id == ids[0]), "{answers:?}");
    assert!(answers.iter().all(|(s, _)| *s == 202 || *s == 409), "{answers:?}");
    assert_eq!(t.message_count().await, 1);
}

async fn futures_join(t: &TestStack, body: &serde_json::Value) -> Vec<(u16, serde_json::Value)> {
    let (a, b, c, d) = tokio::join!(
        post_with_key(t, "same", body),
        post_with_key(t, "same", body),
        post_with_key(t, "same", body),
        post_with_key(t, "same", body),
    );
    vec![a, b, c, d]
}

#[tokio::test]
async fn two_hundred_texts_on_a_ten_mps_connection_never_exceed_ten_segments_a_second() {
    let t = TestStack::start_custom(|o| o.sender_concurrency = devstack::runner::SenderConcurrency::PerLane(2)).await;
    let clinics = &t.stack.services.clinics;
    let mut connection =
        clinics.connection(&ClinicId::new("demo"), &ConnectionId::new("main")).await.expect("read").expect("exists");
    connection.mps = 10;
    clinics.put_connection(&connection).await.expect("saved");
    t.stack.services.counters.add_credits(&ClinicId::new("demo"), 1000).await.expect("credits");

    let long = "Reminder: ".repeat(20); // 200 GSM characters: 2 segments.
    let mut ids = Vec::new();
    for i in 0..200 {
        let body = if i % 4 == 0 { long.clone() } else { format!("Short text {i}") };
        let (status, value, _) = t.post_message(&json!({"to": format!("+1415555{:04}", 1000 + i), "body": body})).await;
        assert_eq!(status, 202, "{value}");
        ids.push(value["id"].as_str().expect("id").to_owned());
    }
    for id in &ids {
        t.wait_for_status(id, "delivered").await;
    }

    // Grants, as the limiter recorded them: no aligned second over 10 segments.
    let dynamo = aws_sdk_dynamodb::Client::new(&t.stack.aws);
    let items = dynamo
        .query()
        .table_name(&t.stack.resources.tables.counters)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", aws_sdk_dynamodb::types::AttributeValue::S("RATE#demo#main".into()))
        .send()
        .await
        .expect("query")
        .items
        .unwrap_or_default();
    let mut granted = 0;
    for item in &items {
        for second in 0..10 {
            let used: u32 =
                item.get(&format!("s{second}")).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
            assert!(used <= 10, "a second granted {used} segments");
            granted += used;
        }
    }
    // A job that comes back after its second has passed (a slow machine) reserves a new one:
    // the missed second is capacity lost, never an extra send, so grants may exceed the segments.
    assert!(granted >= 150 + 2 * 50, "every segment was granted");

    // What reached the simulator: per aligned second, and over the whole run.
    let creates: Vec<_> = t.stack.simulator.requests().into_iter().filter(|r| r.method == "POST").collect();
    assert_eq!(creates.len(), 200);
    let first = creates.iter().map(|r| r.received_at).min().expect("first");
    let last = creates.iter().map(|r| r.received_at).max().expect("last");
    let elapsed = (last - first).num_seconds() + 1;
    assert!(250 <= 10 * (elapsed as usize + 1), "250 segments in {elapsed} s cannot stay under 10 MPS");
}

#[tokio::test]
async fn the_shared_lanes_leave_a_fifth_of_every_second_to_conversations() {
    use futures::{StreamExt, stream};
    use shared::message::Lane;
    use shared::rate_limit::{Shares, limits};

    let t = TestStack::start().await;
    let counters = &t.stack.services.counters;
    let limits = limits(20, Shares::default());
    // The start of a 10-second window, so every grant is counted against the same clock.
    let now = chrono::DateTime::from_timestamp(t.stack.services.clock.now().timestamp() / 10 * 10, 0).expect("time");
    let reserve = |lane: Lane, segments: u32| async move {
        let slot = counters.reserve_send_slot("per-second", lane, segments, &limits, now, None).await;
        (lane, segments, slot.expect("reserved").expect("within the horizon").slot)
    };
    // 60 bulk and 60 scheduled texts (every fifth of three segments) for the same seconds, one
    // reservation at a time: moto, unlike DynamoDB, can let two concurrent conditional updates
    // of one item both pass, so racing them here would test moto. What is tested is the caps.
    let shared_lanes = (0..120).map(|i| {
        let lane = if i % 2 == 0 { Lane::Bulk } else { Lane::Scheduled };
        reserve(lane, if i % 5 == 0 { 3 } else { 1 })
    });
    let mut grants: Vec<_> = stream::iter(shared_lanes).buffered(1).collect().await;
    // Then conversations: four segments still fit in the current second.
    for _ in 0..4 {
        let (lane, segments, at) = reserve(Lane::Interactive, 1).await;
        assert_eq!(at, now, "a conversation text goes in the current second");
        grants.push((lane, segments, at));
    }

    let mut per_second: std::collections::BTreeMap<i64, [u32; 3]> = Default::default();
    for (lane, segments, at) in &grants {
        let used = per_second.entry(at.timestamp()).or_default();
        let index = match lane {
            Lane::Interactive => 0,
            Lane::Scheduled => 1,
            Lane::Bulk => 2,
        };
        used[index] += segments;
    }
    for (second, [interactive, scheduled, bulk]) in &per_second {
        assert!(interactive + scheduled + bulk <= 20, "second {second}: {interactive}+{scheduled}+{bulk} over 20");
        assert!(scheduled + bulk <= 16, "second {second}: the shared lanes took {} of 20", scheduled + bulk);
        assert!(*scheduled <= 14, "second {second}: scheduled took {scheduled}");
        assert!(*bulk <= 10, "second {second}: bulk took {bulk}");
    }
    let total: u32 = grants.iter().map(|(_, segments, _)| segments).sum();
    assert_eq!(total, 24 * 3 + 96 + 4, "every segment granted once");
}

use twilio_sim::{Fault, FaultPlan};

/// Sends one text with `fault` on its first Twilio request; returns the message once delivered.
/// One text through `fault`, delivered in the end; also checks the clinic paid one credit for
/// it, however many attempts it took.
async fn through_fault(fault: Fault) -> (TestStack, serde_json::Value) {
    let t = TestStack::start().await;
    let demo = ClinicId::new("demo");
    let balance = || t.stack.services.counters.credit_balance(&demo);
    let before = balance().await.expect("balance");
    t.stack.simulator.inject(fault, FaultPlan::next(1));
    let id = t.send_text("+14155550150").await;
    let shown = t.wait_for_status(&id, "delivered").await;
    let after = balance().await.expect("balance");
    assert_eq!(before - after, 1, "one text of one segment costs one credit, whatever the attempts");
    (t, shown)
}

fn creates(t: &TestStack) -> usize {
    t.stack.simulator.requests().iter().filter(|r| r.method == "POST" && r.path.ends_with("/Messages.json")).count()
}

#[tokio::test]
async fn a_500_after_twilio_created_the_message_is_reconciled_not_resent() {
    let (t, shown) = through_fault(Fault::ServerErrorCreated).await;
    assert_eq!(t.stack.simulator.messages().len(), 1, "one text at Twilio");
    assert_eq!(creates(&t), 1, "never asked Twilio twice");
    let notes: Vec<_> =
        shown["history"].as_array().expect("history").iter().filter_map(|h| h["twilio_sid"].as_str()).collect();
    assert!(notes.iter().all(|sid| *sid == shown["twilio_sid"].as_str().unwrap_or_default()));
}

#[tokio::test]
async fn a_connection_dropped_after_twilio_created_the_message_is_reconciled_not_resent() {
    let (t, _) = through_fault(Fault::DropAfterRead { created: true }).await;
    assert_eq!(t.stack.simulator.messages().len(), 1);
    assert_eq!(creates(&t), 1);
}

#[tokio::test]
async fn a_500_without_a_message_at_twilio_is_sent_again_after_checking() {
    let (t, shown) = through_fault(Fault::ServerErrorNotCreated).await;
    assert_eq!(t.stack.simulator.messages().len(), 1, "exactly one text");
    assert_eq!(creates(&t), 2, "the second request after reconciling found nothing");
    assert_eq!(shown["attempt"], 2);
}

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after() {
    let (t, shown) = through_fault(Fault::Throttle { retry_after_secs: Some(1) }).await;
    assert_eq!(t.stack.simulator.messages().len(), 1);
    assert_eq!(creates(&t), 2);
    let notes: Vec<_> =
        shown["history"].as_array().expect("history").iter().filter_map(|h| h["note"].as_str()).collect();
    assert!(notes.iter().any(|n| n.contains("20429")), "{notes:?}");
}

#[tokio::test]
async fn a_conversation_text_overtakes_a_draining_mass_alert() {
    use shared::message::{Lane, Message, MessageBody};
    use shared::phone::E164;
    use shared::send_queue::SendJob;

    // One segment a second; bulk gets 2 per 10 s, i.e. one text about every 5 seconds.
    let t = TestStack::start_custom(|o| {
        o.shares = shared::rate_limit::Shares { scheduled: 0.7, bulk: 0.2, scheduled_and_bulk: 0.8 };
    })
    .await;
    let services = &t.stack.services;
    let clinics = &services.clinics;
    let mut connection =
        clinics.connection(&ClinicId::new("demo"), &ConnectionId::new("main")).await.expect("read").expect("exists");
    connection.mps = 1;
    clinics.put_connection(&connection).await.expect("saved");
    for i in 0..100 {
        let mut alert = Message::new_outbound(
            ClinicId::new("demo"),
            E164::parse(&format!("+1415555{:04}", 2000 + i), None).expect("valid"),
            MessageBody::parse("The clinic closes early today because of the storm.").expect("valid"),
            ConnectionId::new("main"),
            Lane::Bulk,
            None,
            services.clock.now(),
        );
        alert.lane = Lane::Bulk;
        services.messages.insert(&alert).await.expect("stored");
        services.queues.enqueue(Lane::Bulk, &SendJob::of(&alert)).await.expect("queued");
    }
    let bulk_at_sim = |t: &TestStack| {
        t.stack
            .simulator
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.params.iter().any(|(_, v)| v.contains("storm")))
            .count()
    };
    // Mid-drain: once two alerts have gone out.
    for _ in 0..600 {
        if bulk_at_sim(&t) >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(bulk_at_sim(&t) >= 2, "the drain started");
    let bulk_before = bulk_at_sim(&t);
    let id = t.send_text("+14155550199").await;
    let mut at_twilio = false;
    for _ in 0..600 {
        if !t.get_message(&id).await.1["twilio_sid"].is_null() {
            at_twilio = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(at_twilio, "the conversation text reached Twilio");
    let bulk_after = bulk_at_sim(&t);
    assert!(
        bulk_after <= bulk_before + 1,
        "the conversation text reached Twilio before the second alert after it ({bulk_before} → {bulk_after})"
    );
    assert!(bulk_after < 100, "the alert was still draining");
}

#[tokio::test]
async fn a_bulk_drain_hides_waiting_texts_instead_of_churning_sqs() {
    use shared::message::{Lane, Message, MessageBody};
    use shared::phone::E164;
    use shared::send_queue::SendJob;

    let t = TestStack::start().await;
    let services = &t.stack.services;
    let clinics = &services.clinics;
    let mut connection =
        clinics.connection(&ClinicId::new("demo"), &ConnectionId::new("main")).await.expect("read").expect("exists");
    connection.mps = 20;
    clinics.put_connection(&connection).await.expect("saved");
    services.counters.add_credits(&ClinicId::new("demo"), 1000).await.expect("credits");
    let mut ids = Vec::new();
    for i in 0..500 {
        let mut alert = Message::new_outbound(
            ClinicId::new("demo"),
            E164::parse(&format!("+1415556{:04}", i), None).expect("valid"),
            MessageBody::parse("Parking is closed tomorrow; please use the side entrance.").expect("valid"),
            ConnectionId::new("main"),
            Lane::Bulk,
            None,
            services.clock.now(),
        );
        alert.lane = Lane::Bulk;
        services.messages.insert(&alert).await.expect("stored");
        services.queues.enqueue(Lane::Bulk, &SendJob::of(&alert)).await.expect("queued");
        ids.push(alert.id);
    }
    // Bulk may use 50% of 20 MPS: about 50 seconds for 500 single-segment texts.
    for _ in 0..1800 {
        if t.stack.simulator.messages().len() >= 500 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(t.stack.simulator.messages().len(), 500, "every alert reached Twilio once");
    let counts = t.stack.receive_counts();
    let counted = ids.iter().filter(|id| counts.keys().any(|body| body.contains(&id.to_string()))).count();
    assert_eq!(counted, 500, "every job's receives were seen");
    let most = counts.values().copied().max().unwrap_or(0);
    assert!(most <= 3, "a job was received {most} times");
    let dlq = aws_sdk_sqs::Client::new(&t.stack.aws)
        .get_queue_attributes()
        .queue_url(&t.stack.resources.dlqs[2])
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .expect("attributes");
    let in_dlq = dlq
        .attributes
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages).cloned())
        .unwrap_or_default();
    assert_eq!(in_dlq, "0");
}

/// A claim whose lease ran out with nothing at Twilio (a timeout or a 5xx before Twilio stored
/// the text), stored as the reconciler finds it.
async fn lapsed_claim(t: &TestStack, attempts_before: u32) -> shared::message::Message {
    use chrono::TimeDelta;
    use shared::message::{Lane, Message, MessageBody};
    use shared::phone::E164;

    let services = &t.stack.services;
    let now = services.clock.now();
    let mut message = Message::new_outbound(
        ClinicId::new("demo"),
        E164::parse("+14155550177", None).expect("valid"),
        MessageBody::parse("Bella's bloodwork is back; all normal.").expect("valid"),
        ConnectionId::new("main"),
        Lane::Interactive,
        None,
        now - TimeDelta::minutes(3),
    );
    message.attempt = attempts_before;
    let claimed = message.claim(now - TimeDelta::minutes(2), TimeDelta::seconds(60)).expect("claims");
    services.messages.insert(&claimed).await.expect("stored");
    claimed
}

#[tokio::test]
async fn an_attempt_twilio_never_got_is_paid_back_and_retried_within_the_bound_then_failed() {
    use shared::message_status::MessageStatus;
    use shared::reason::Reason;
    use shared::retry_policy::MAX_ATTEMPTS;
    use shared::send_queue::SendJob;
    use shared::sending::{self, JobOutcome};

    let t = TestStack::start().await;
    let services = &t.stack.services;
    let demo = ClinicId::new("demo");
    for (attempts_before, last) in [(0, false), (MAX_ATTEMPTS - 1, true)] {
        let claimed = lapsed_claim(&t, attempts_before).await;
        let balance = services.counters.credit_balance(&demo).await.expect("balance");
        let started = services.clock.now();
        let outcome = sending::send(services, &SendJob::named(claimed.id)).await.expect("reconciles");
        let stored = services.messages.get(&claimed.id).await.expect("read").expect("exists");
        assert_eq!(services.counters.credit_balance(&demo).await.expect("balance"), balance + 1, "paid back");
        if last {
            assert_eq!(outcome, JobOutcome::Finished);
            assert_eq!(stored.status, MessageStatus::Failed);
            let failure = stored.failure.expect("a reason");
            assert_eq!(failure.reason, Some(Reason::RetriesExhausted));
            assert!(failure.twilio_message.is_some_and(|m| m.contains("did not answer")));
        } else {
            let JobOutcome::RetryAt(at) = outcome else { panic!("retried: {outcome:?}") };
            // The first retry's back-off: up to two seconds, never a fixed pause.
            assert!(at - started <= chrono::TimeDelta::seconds(3), "back in {:?}", at - started);
            assert_eq!((stored.status, stored.attempt), (MessageStatus::Queued, 1));
        }
    }
    let creates = t.stack.simulator.requests().iter().filter(|r| r.method == "POST").count();
    assert_eq!(creates, 0, "reconciling never sends");
}

#[tokio::test]
async fn senders_refused_the_same_second_spread_out_instead_of_all_asking_for_the_next() {
    use devstack::request_count::RequestCounter;
    use futures::future::join_all;
    use shared::counters_table::CountersTable;
    use shared::message::Lane;
    use shared::rate_limit::{Shares, limits};

    const SENDERS: usize = 30;
    let t = TestStack::start().await;
    let counter = RequestCounter::default();
    let dynamo = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&t.stack.aws).interceptor(counter.clone()).build(),
    );
    let counters = CountersTable::new(dynamo, t.stack.services.settings.tables.counters.clone());
    let limits = limits(1, Shares::default());
    let now = chrono::DateTime::from_timestamp(t.stack.services.clock.now().timestamp() / 10 * 10, 0).expect("time");

    // A burst at 1 MPS, as a backlog handed to many senders at once: all after the same second.
    let reserve = || counters.reserve_send_slot("burst", Lane::Interactive, 1, &limits, now, None);
    let slots: Vec<_> = join_all((0..SENDERS).map(|_| reserve())).await;
    let mut seconds: Vec<i64> =
        slots.into_iter().map(|s| s.expect("reserved").expect("within the horizon").slot.timestamp()).collect();
    seconds.sort_unstable();
    seconds.dedup();
    assert_eq!(seconds.len(), SENDERS, "one text a second at 1 MPS");
    let last = seconds.last().copied().unwrap_or_default() - now.timestamp();
    // Random picks late in the burst may leave a few seconds empty; never many.
    assert!(last < SENDERS as i64 + 10, "the burst took {last} s for {SENDERS} seconds' worth: seconds left empty");

    // Each asking for the first free second, the k-th would be refused k-1 times: up to 465
    // grant requests in all (340-380 measured). Spread out, five to seven a sender. The count
    // also holds the few writes that move the lane's frontier past a full window.
    let seen = counter.snapshot();
    let updates = seen.counts.get(&("DynamoDB".to_owned(), "UpdateItem".to_owned())).map_or(0, |c| c.requests);
    assert!(updates <= 10 * SENDERS as u64, "{updates} grant requests for {SENDERS} texts");
}

/// Counters on a client whose requests are counted.
fn counted_counters(t: &TestStack) -> (shared::counters_table::CountersTable, devstack::request_count::RequestCounter) {
    let counter = devstack::request_count::RequestCounter::default();
    let dynamo = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&t.stack.aws).interceptor(counter.clone()).build(),
    );
    (shared::counters_table::CountersTable::new(dynamo, t.stack.services.settings.tables.counters.clone()), counter)
}

fn grant_requests(counter: &devstack::request_count::RequestCounter) -> u64 {
    let seen = counter.snapshot();
    seen.counts.get(&("DynamoDB".to_owned(), "UpdateItem".to_owned())).map_or(0, |c| c.requests)
}

#[tokio::test]
async fn a_batch_for_one_connection_is_granted_together_and_keeps_the_shares() {
    use shared::message::Lane;
    use shared::rate_limit::{Shares, limits};

    let t = TestStack::start().await;
    let (counters, counter) = counted_counters(&t);
    let limits = limits(20, Shares::default());
    let now = chrono::DateTime::from_timestamp(t.stack.services.clock.now().timestamp() / 10 * 10, 0).expect("time");
    // Batches of ten, as the scheduled and bulk lanes hand them out, one of three segments each.
    let batch = [3, 1, 1, 1, 1, 1, 1, 1, 1, 1];
    let mut grants = Vec::new();
    for i in 0..12 {
        let lane = if i % 2 == 0 { Lane::Bulk } else { Lane::Scheduled };
        let slots = counters.reserve_send_slots("batched", lane, &batch, &limits, now, None).await.expect("reserved");
        for (slot, segments) in slots.into_iter().zip(batch) {
            grants.push((lane, segments, slot.expect("within the horizon").slot));
        }
    }
    for _ in 0..4 {
        let slot = counters.reserve_send_slot("batched", Lane::Interactive, 1, &limits, now, None).await;
        let at = slot.expect("reserved").expect("within the horizon").slot;
        assert_eq!(at, now, "a conversation text goes in the current second");
        grants.push((Lane::Interactive, 1, at));
    }
    let mut per_second: std::collections::BTreeMap<i64, [u32; 3]> = Default::default();
    for (lane, segments, at) in &grants {
        let index = match lane {
            Lane::Interactive => 0,
            Lane::Scheduled => 1,
            Lane::Bulk => 2,
        };
        per_second.entry(at.timestamp()).or_default()[index] += segments;
    }
    for (second, [interactive, scheduled, bulk]) in &per_second {
        assert!(interactive + scheduled + bulk <= 20, "second {second}: {interactive}+{scheduled}+{bulk} over 20");
        assert!(scheduled + bulk <= 16, "second {second}: the shared lanes took {} of 20", scheduled + bulk);
        assert!(*scheduled <= 14, "second {second}: scheduled took {scheduled}");
        assert!(*bulk <= 10, "second {second}: bulk took {bulk}");
    }
    assert_eq!(grants.iter().map(|(_, segments, _)| segments).sum::<u32>(), 12 * 12 + 4, "every segment once");
    // A batch fills what is left of one window in one request and goes on in the next: at
    // most two grants a batch, one for each conversation text, and the frontier's moves.
    let updates = grant_requests(&counter);
    assert!(updates <= 12 * 2 + 4 + 4, "{updates} grant requests for 12 batches and 4 texts");
}

#[tokio::test]
async fn batches_racing_for_a_slow_connection_take_one_second_per_text_in_few_requests() {
    use futures::future::join_all;
    use shared::message::Lane;
    use shared::rate_limit::{Shares, limits};

    const BATCHES: usize = 6;
    const PER_BATCH: usize = 5;
    let t = TestStack::start().await;
    let (counters, counter) = counted_counters(&t);
    let limits = limits(1, Shares::default());
    let now = chrono::DateTime::from_timestamp(t.stack.services.clock.now().timestamp() / 10 * 10, 0).expect("time");
    // Six invocations of the interactive lane's five texts, all for the same 1-MPS connection.
    let reserve = || counters.reserve_send_slots("racing", Lane::Interactive, &[1; PER_BATCH], &limits, now, None);
    let batches = join_all((0..BATCHES).map(|_| reserve())).await;
    let mut seconds: Vec<i64> = batches
        .into_iter()
        .flat_map(|slots| slots.expect("reserved"))
        .map(|slot| slot.expect("within the horizon").slot.timestamp())
        .collect();
    seconds.sort_unstable();
    seconds.dedup();
    assert_eq!(seconds.len(), BATCHES * PER_BATCH, "one text a second at 1 MPS");
    let last = seconds.last().copied().unwrap_or_default() - now.timestamp();
    assert!(last < (BATCHES * PER_BATCH) as i64 + 10, "the burst took {last} s: seconds left empty");
    // The same 30 texts reserved one by one took 150-215 grant requests; in batches, 23.
    let updates = grant_requests(&counter);
    assert!(updates <= 2 * (BATCHES * PER_BATCH) as u64, "{updates} grant requests for 30 texts");
    println!("{updates} grant requests for 30 texts in 6 batches");
}

#[tokio::test]
async fn a_held_slot_comes_back_with_its_message_until_the_message_changes() {
    use chrono::TimeDelta;
    use shared::message::{Lane, Message, MessageBody};
    use shared::phone::E164;
    use shared::sender_store::HeldSlot;

    let t = TestStack::start().await;
    let services = &t.stack.services;
    let now = services.clock.now();
    let mut messages = Vec::new();
    // More than one BatchWriteItem takes.
    for i in 0..30 {
        let message = Message::new_outbound(
            ClinicId::new("demo"),
            E164::parse(&format!("+1415557{i:04}"), None).expect("valid"),
            MessageBody::parse("The clinic opens at 10 tomorrow.").expect("valid"),
            ConnectionId::new("main"),
            Lane::Bulk,
            None,
            now,
        );
        services.messages.insert(&message).await.expect("stored");
        messages.push(message);
    }
    let slot_of = |i: usize| now + TimeDelta::seconds(60 + i as i64);
    let held: Vec<_> = messages.iter().enumerate().map(|(i, m)| (m.id, HeldSlot::new(slot_of(i), m.version))).collect();

    let recorded = services.sender_store.hold_slots(&held).await.expect("recorded");

    assert_eq!(recorded.len(), 30);
    let ids: Vec<_> = messages.iter().map(|m| m.id).collect();
    let read = services.sender_store.messages(&ids).await.expect("read");
    let slots: Vec<_> = read.iter().map(|m| m.as_ref().and_then(|m| m.send_slot)).collect();
    assert_eq!(slots, (0..30).map(|i| Some(slot_of(i))).collect::<Vec<_>>());
    let stored = services.messages.get(&ids[0]).await.expect("read").expect("exists");
    assert_eq!((stored.version, stored.send_slot), (1, None), "the message itself is not written");

    // Held for the message as it was: once it changes (here: held back and let go again by
    // quiet hours), the slot is no longer its.
    let deferred = services.messages.update_from(&stored, |m| m.deferred(now + TimeDelta::hours(8), now));
    let shared::messages_table::Update::Applied(deferred) = deferred.await.expect("written") else { panic!("defers") };
    let resumed = services.messages.update_from(&deferred, |m| m.resumed(now)).await.expect("written");
    assert!(matches!(resumed, shared::messages_table::Update::Applied(_)));
    let read = services.sender_store.messages(&ids[..2]).await.expect("read");
    let slots: Vec<_> = read.iter().map(|m| m.as_ref().and_then(|m| m.send_slot)).collect();
    assert_eq!(slots, [None, Some(slot_of(1))]);
}

/// A batch whose jobs name what their messages are checked against is read in one request, and
/// a job whose hint is wrong is checked against its message's own items all the same.
#[tokio::test]
async fn a_batch_is_read_in_one_request_and_a_wrong_hint_changes_nothing() {
    use shared::contacts::OptOut;
    use shared::message::{Lane, Message, MessageBody};
    use shared::message_status::MessageStatus;
    use shared::phone::E164;
    use shared::send_queue::SendJob;
    use shared::sending::{self, JobOutcome};
    use shared::sqs_batch::Delivery;

    let t = TestStack::start().await;
    let mut services = t.stack.services.clone();
    let counter = devstack::request_count::RequestCounter::default();
    let dynamo = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&t.stack.aws).interceptor(counter.clone()).build(),
    );
    services.sender_store = shared::sender_store::SenderStore::new(dynamo, &services.settings);
    services.counters.add_credits(&ClinicId::new("demo"), 100).await.expect("credits");
    let now = services.clock.now();
    let opted_out = E164::parse("+14155558000", None).expect("valid");
    services
        .clinics
        .put_record(&OptOut {
            clinic_id: ClinicId::new("demo"),
            number: opted_out.clone(),
            connection_id: None,
            at: now,
        })
        .await
        .expect("opted out");
    let mut jobs = Vec::new();
    for i in 0..6 {
        let to = if i == 5 {
            opted_out.clone()
        } else {
            E164::parse(&format!("+1415555{:04}", 8001 + i), None).expect("valid")
        };
        let text = Message::new_outbound(
            ClinicId::new("demo"),
            to,
            MessageBody::parse("Your test results are ready.").expect("valid"),
            ConnectionId::new("main"),
            Lane::Interactive,
            None,
            now,
        );
        services.messages.insert(&text).await.expect("stored");
        let mut job = SendJob::of(&text);
        if i == 5 {
            // A hint naming a number that has not opted out: the message's own number counts.
            job.checks = jobs.first().and_then(|d: &Delivery<SendJob>| d.body.checks.clone());
        }
        jobs.push(Delivery {
            body: job,
            sqs_message_id: None,
            queue_arn: None,
            receipt_handle: None,
            receive_count: 1,
        });
    }

    let prepared = sending::prepare(&services, &jobs).await;

    let reads =
        |name: &str| counter.snapshot().counts.get(&("DynamoDB".to_owned(), name.to_owned())).map_or(0, |c| c.requests);
    // The five true hints and their rate windows in one read; the wrong one read again alone.
    assert_eq!(reads("BatchGetItem"), 2);
    for (job, prepared) in jobs.iter().zip(prepared) {
        let outcome = sending::send_prepared(&services, &job.body, prepared).await.expect("sends");
        assert_eq!(outcome, JobOutcome::Finished);
    }
    assert_eq!(reads("BatchGetItem") + reads("GetItem"), 2, "no job read anything again");
    let statuses: Vec<_> = futures::future::join_all(jobs.iter().map(|j| services.messages.get(&j.body.message_id)))
        .await
        .into_iter()
        .map(|m| m.expect("read").expect("exists").status)
        .collect();
    let went = [MessageStatus::Submitted, MessageStatus::Sent, MessageStatus::Delivered];
    assert!(statuses[..5].iter().all(|s| went.contains(s)), "{statuses:?}");
    assert_eq!(statuses[5], MessageStatus::Skipped, "the opted-out number was not texted");
    assert_eq!(t.stack.simulator.messages().len(), 5);
}
