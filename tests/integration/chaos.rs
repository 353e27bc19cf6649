//! Chaos: 500 texts on all three lanes through a Twilio that fails about 30 % of create requests
//! in every way the simulator knows, while the runner cuts sender invocations short at random.
//! Every text reaches Twilio exactly once or fails with a reason: none lost, none sent twice.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::QueueAttributeName;
use devstack::runner::Crashes;
use shared::ids::{ClinicId, ConnectionId};
use shared::message::{Lane, Message, MessageBody};
use shared::message_status::MessageStatus;
use shared::phone::E164;
use shared::send_queue::SendJob;
use twilio_sim::{Fault, FaultPlan};

use crate::support::TestStack;

const TEXTS: usize = 500;
/// The share of create requests that meet a fault.
const FAULT_SHARE: f64 = 0.3;
/// Visibility 180 s / 10 = 18 s, Twilio timeout 1 s, lease 4.5 s: a crashed batch is back in
/// seconds, and a loaded machine still leaves the lease a margin over the Twilio call.
const TIME_SCALE: u32 = 10;
/// How long the whole run may take before the test gives up and lists what is unfinished.
const PATIENCE: Duration = Duration::from_secs(420);

/// Every fault the simulator can inject; a slow answer comes after `slow_ms`.
fn every_fault(slow_ms: u64) -> Vec<Fault> {
    vec![
        Fault::Throttle { retry_after_secs: Some(1) },
        Fault::Throttle { retry_after_secs: None },
        Fault::ServerErrorNotCreated,
        Fault::ServerErrorCreated,
        Fault::Slow { delay_ms: slow_ms, created: true },
        Fault::Slow { delay_ms: slow_ms, created: false },
        Fault::DropAfterRead { created: true },
        Fault::DropAfterRead { created: false },
        Fault::QueueFull,
    ]
}

/// Plans stack and the first whose draw comes up wins, so for each fault to take an equal share
/// `q` of all requests, plan `i` draws `q / (1 - i q)` among the requests the earlier ones spared.
/// Returns the faults' kinds, as requests record them.
fn inject_every_fault(t: &TestStack) -> BTreeSet<&'static str> {
    let slow_ms = u64::try_from(t.stack.services.timing.twilio_timeout.as_millis()).unwrap_or(1000) + 500;
    let faults = every_fault(slow_ms);
    let share = FAULT_SHARE / faults.len() as f64;
    for (i, fault) in faults.iter().enumerate() {
        let chance = share / (1.0 - i as f64 * share);
        t.stack.simulator.inject(*fault, FaultPlan::seeded_chance(chance, 4000 + i as u64));
    }
    faults.iter().map(Fault::name).collect()
}

fn lane_for(i: usize) -> Lane {
    match i % 3 {
        0 => Lane::Interactive,
        1 => Lane::Scheduled,
        _ => Lane::Bulk,
    }
}

/// Every message of the demo clinic, through the clinic index, all pages.
async fn all_messages(t: &TestStack) -> Vec<Message> {
    let dynamo = aws_sdk_dynamodb::Client::new(&t.stack.aws);
    let mut messages = Vec::new();
    let mut start = None;
    loop {
        let out = dynamo
            .query()
            .table_name(&t.stack.resources.tables.messages)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :c")
            .expression_attribute_values(":c", AttributeValue::S("CLINIC#demo".into()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("query");
        let table = &t.stack.resources.tables.messages;
        let items = shared::dynamo::items_behind(&dynamo, table, &out.items.unwrap_or_default()).await.expect("items");
        messages.extend(items.into_iter().map(|i| serde_dynamo::from_item::<_, Message>(i).expect("a message")));
        start = out.last_evaluated_key;
        if start.is_none() {
            return messages;
        }
    }
}

/// Jobs waiting or in flight on every lane, and jobs in every DLQ.
async fn jobs_left(t: &TestStack) -> (u64, u64) {
    let sqs = aws_sdk_sqs::Client::new(&t.stack.aws);
    let q = &t.stack.resources.queues;
    let mut counts = [0u64; 2];
    for (slot, urls) in [(0, vec![&q.interactive, &q.scheduled, &q.bulk]), (1, t.stack.resources.dlqs.iter().collect())]
    {
        for url in urls {
            let out = sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
                .send()
                .await
                .expect("queue attributes");
            let attributes = out.attributes.unwrap_or_default();
            counts[slot] += attributes.values().filter_map(|v| v.parse::<u64>().ok()).sum::<u64>();
        }
    }
    (counts[0], counts[1])
}

fn settled(status: MessageStatus) -> bool {
    matches!(status, MessageStatus::Submitted | MessageStatus::Sent | MessageStatus::Delivered | MessageStatus::Failed)
}

/// Our message id from the `StatusCallback` the sender gave Twilio (`…?m=<id>&a=<attempt>`).
fn message_id_in(callback: Option<&str>) -> Option<String> {
    let url = url::Url::parse(callback?).ok()?;
    url.query_pairs().find(|(name, _)| name == "m").map(|(_, id)| id.into_owned())
}

/// Text `i`, on its lane, queued; returns its id. Each has a number and a body of its own:
/// reconciliation matches on them.
async fn make_text(services: &shared::services::Services, i: usize) -> String {
    let lane = lane_for(i);
    let mut text = Message::new_outbound(
        ClinicId::new("demo"),
        E164::parse(&format!("+1415557{i:04}"), None).expect("valid"),
        MessageBody::parse(&format!("Chaos run text {i}: your pet's vaccination is due.")).expect("valid"),
        ConnectionId::new("main"),
        lane,
        None,
        services.clock.now(),
    );
    text.lane = lane;
    services.messages.insert(&text).await.expect("stored");
    services.queues.enqueue(lane, &SendJob::of(&text)).await.expect("queued");
    text.id.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_texts_through_faults_and_crashes_reach_twilio_once_each_or_fail_with_a_reason() {
    let t = TestStack::start_custom(|o| {
        o.time_scale = TIME_SCALE;
        let twilio_timeout = shared::services::Timing::default().scaled(TIME_SCALE).twilio_timeout;
        // Long enough to catch invocations mid-Twilio-call, short enough to let most finish.
        o.crashes = Some(Crashes { probability: 0.25, within: twilio_timeout * 2 });
    })
    .await;
    let services = &t.stack.services;
    let mut connection = services
        .clinics
        .connection(&ClinicId::new("demo"), &ConnectionId::new("main"))
        .await
        .expect("read")
        .expect("exists");
    connection.mps = 50;
    services.clinics.put_connection(&connection).await.expect("saved");
    services.counters.add_credits(&ClinicId::new("demo"), 2 * TEXTS as u64).await.expect("credits");
    let kinds = inject_every_fault(&t);

    let started = Instant::now();
    // Made and queued a few at a time, as the senders already drain the lanes.
    let mut making = tokio::task::JoinSet::new();
    let mut ids = HashSet::new();
    for i in 0..TEXTS {
        if making.len() >= 8
            && let Some(made) = making.join_next().await
        {
            ids.insert(made.expect("made"));
        }
        let services = services.clone();
        making.spawn(async move { make_text(&services, i).await });
    }
    while let Some(made) = making.join_next().await {
        ids.insert(made.expect("made"));
    }
    // Until no job is left anywhere that could still send a text, then until every text has
    // settled (callbacks may still be moving some along). The lanes' depth is cheap to ask; the
    // messages are read only once the lanes are empty.
    let mut messages = Vec::new();
    while started.elapsed() < PATIENCE {
        let jobs = jobs_left(&t).await;
        if jobs.0 == 0 {
            messages = all_messages(&t).await;
            if messages.iter().all(|m| settled(m.status)) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    if messages.is_empty() {
        messages = all_messages(&t).await;
    }
    let unsettled: Vec<String> = messages
        .iter()
        .filter(|m| !settled(m.status))
        .map(|m| {
            let history: Vec<String> = m
                .history
                .iter()
                .map(|h| {
                    format!("{} {:?} a{} {:?} {:?} {:?}", h.at, h.status, h.attempt, h.actor, h.note, h.twilio_status)
                })
                .collect();
            let to = m.to.as_ref().map(|n| n.as_str().to_owned()).unwrap_or_default();
            let requests: Vec<String> = t
                .stack
                .simulator
                .requests()
                .iter()
                .filter(|r| r.params.iter().any(|(k, v)| k == "To" && *v == to))
                .map(|r| format!("{} {} {} {:?}", r.received_at, r.method, r.response_status, r.fault))
                .collect();
            format!("{} {} attempt {} lease {:?}: {history:#?} {requests:#?}", m.id, m.status, m.attempt, m.lease_until)
        })
        .collect();
    let (jobs, dead) = jobs_left(&t).await;
    assert!(unsettled.is_empty(), "after {:?}, {} texts unsettled: {unsettled:#?}", started.elapsed(), unsettled.len());
    assert_eq!(jobs, 0, "jobs still queued or in flight");
    assert_eq!(dead, 0, "jobs in a DLQ");
    assert_eq!(messages.len(), TEXTS);

    // The chaos happened: invocations were cut short, every kind of fault was injected, about
    // 30 % of create requests met one.
    let creates: Vec<_> = t
        .stack
        .simulator
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/Messages.json"))
        .collect();
    let by_kind: BTreeMap<String, usize> =
        creates.iter().filter_map(|r| r.fault.clone()).fold(BTreeMap::new(), |mut counts, kind| {
            *counts.entry(kind).or_default() += 1;
            counts
        });
    let faulted: usize = by_kind.values().sum();
    let crashed = t.stack.crashed_invocations();
    eprintln!(
        "chaos run: {} create requests, {faulted} faulted {by_kind:?}, {crashed} invocations cut short, {:?}",
        creates.len(),
        started.elapsed()
    );
    assert!(crashed > 0, "no invocation was cut short");
    let share = faulted as f64 / creates.len() as f64;
    assert!((0.2..=0.4).contains(&share), "{faulted} of {} create requests faulted", creates.len());
    assert!(
        by_kind.keys().map(String::as_str).eq(kinds.iter().copied()),
        "every kind of fault was injected: {by_kind:?}"
    );

    // At Twilio: each text once, counted by our message id in its StatusCallback.
    let mut at_twilio: HashMap<String, Vec<String>> = HashMap::new();
    for m in t.stack.simulator.messages() {
        let id = message_id_in(m.status_callback.as_deref()).expect("every text carries our message id");
        at_twilio.entry(id).or_default().push(format!("{} {} at {}", m.sid, m.status, m.created_at));
    }
    let twice: BTreeMap<_, _> = at_twilio.iter().filter(|(_, texts)| texts.len() > 1).collect();
    assert!(twice.is_empty(), "texts sent more than once: {twice:#?}");
    assert!(at_twilio.keys().all(|id| ids.contains(id)), "a text at Twilio for a message we never made");

    // Every message: at Twilio and submitted/sent/delivered, or failed with a reason and not at
    // Twilio.
    let mut failed = Vec::new();
    for m in &messages {
        let id = m.id.to_string();
        if m.status == MessageStatus::Failed {
            let failure = m.failure.as_ref();
            assert!(
                failure.is_some_and(|f| f.reason.is_some() || f.code.is_some()),
                "{id} failed without a reason: {m:?}"
            );
            assert!(!at_twilio.contains_key(&id), "{id} is failed but its text reached Twilio");
            failed.push(id);
        } else {
            assert!(at_twilio.contains_key(&id), "{id} is {} but Twilio never got its text", m.status);
        }
    }
    assert_eq!(at_twilio.len() + failed.len(), TEXTS, "none lost: {} failed ({failed:?})", failed.len());
}
