//! Texts whose status callbacks were lost: the scheduler's tick asks Twilio where they are.

use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, TimeDelta, Utc};
use lambda_runtime::{Context, LambdaEvent};
use shared::message::{MAX_STATUS_CHECKS, Message};
use shared::status_checks;
use twilio_sim::Outcome;

use crate::support::TestStack;

const LOST_DELIVERED: &str = "+14155550131";
const LOST_UNDELIVERED: &str = "+14155550132";
const HELD: &str = "+14155550133";
const CALLED_BACK: &str = "+14155550134";

async fn stored(t: &TestStack, id: &str) -> Message {
    t.stack.services.messages.get(&id.parse().expect("an id")).await.expect("readable").expect("stored")
}

/// How often the simulator was asked for the message with this SID.
fn fetches(t: &TestStack, sid: &str) -> usize {
    let path = format!("/Messages/{sid}.json");
    t.stack.simulator.requests().iter().filter(|r| r.method == "GET" && r.path.ends_with(&path)).count()
}

async fn scheduler_tick(t: &TestStack, at: DateTime<Utc>) -> scheduler::SchedulerReport {
    let mut event = EventBridgeEvent::<serde_json::Value>::default();
    event.detail_type = "Scheduled Event".into();
    event.source = "aws.events".into();
    event.time = Some(at);
    scheduler::handle(&t.stack.services, LambdaEvent::new(event, Context::default())).await.expect("tick runs")
}

#[tokio::test]
async fn a_tick_asks_twilio_about_texts_whose_callbacks_were_lost() {
    let t = TestStack::start().await;
    let sim = &t.stack.simulator;
    sim.lose_callbacks_to(LOST_DELIVERED);
    sim.set_override(LOST_UNDELIVERED, Outcome::Undelivered(30003));
    sim.lose_callbacks_to(LOST_UNDELIVERED);
    sim.set_override(HELD, Outcome::Hold);

    let mut ids = Vec::new();
    for to in [LOST_DELIVERED, LOST_UNDELIVERED, HELD, CALLED_BACK] {
        ids.push(t.send_text(to).await);
    }
    let [lost_delivered, lost_undelivered, held, called_back] = [&ids[0], &ids[1], &ids[2], &ids[3]];
    t.wait_for_status(called_back, "delivered").await;
    for id in [lost_delivered, lost_undelivered, held] {
        t.wait_for_status(id, "submitted").await;
    }
    assert!(sim.callbacks_settled(Duration::from_secs(60)).await, "Twilio's side has played out");
    let mut sids = Vec::new();
    for id in &ids {
        sids.push(stored(&t, id).await.twilio_sid.expect("a SID"));
    }
    for id in [lost_delivered, lost_undelivered] {
        assert_eq!(t.get_message(id).await.1["status"], "submitted", "its callbacks were lost");
    }

    // Not quiet long enough yet: nobody is asked.
    let after = t.stack.services.timing.status_check_after;
    let now = Utc::now();
    let early = status_checks::run(&t.stack.services, now + after - TimeDelta::minutes(5)).await.expect("runs");
    assert_eq!(early, status_checks::StatusCheckReport::default());

    // Quiet for longer: the tick asks Twilio about the three texts it holds, not the delivered one.
    let mut at = now + after + TimeDelta::minutes(1);
    let report = scheduler_tick(&t, at).await.status_checks;
    assert_eq!((report.checked, report.updated, report.unanswered), (3, 2, 0));
    let delivered = t.get_message(lost_delivered).await.1;
    assert_eq!(delivered["status"], "delivered");
    let fetched = delivered["history"].as_array().and_then(|h| h.last()).cloned().unwrap_or_default();
    assert_eq!((fetched["actor"].as_str(), fetched["applied"].as_bool()), (Some("twilio"), Some(true)));
    assert!(fetched["note"].as_str().is_some_and(|n| n.contains("asked Twilio")), "{fetched}");
    let undelivered = t.get_message(lost_undelivered).await.1;
    assert_eq!(
        (undelivered["status"].as_str(), undelivered["error"]["code"].as_u64()),
        (Some("undelivered"), Some(30003))
    );
    assert_eq!(stored(&t, held).await.status_checks, 1);
    assert_eq!(t.get_message(held).await.1["status"], "submitted");
    let asked: Vec<usize> = sids.iter().map(|sid| fetches(&t, sid)).collect();
    assert_eq!(asked, [1, 1, 1, 0]);

    // The held text is asked again each time it has been quiet long enough, and then no more.
    for _ in 1..MAX_STATUS_CHECKS + 2 {
        at += after + TimeDelta::minutes(1);
        status_checks::run(&t.stack.services, at).await.expect("runs");
    }
    assert_eq!(stored(&t, held).await.status_checks, MAX_STATUS_CHECKS);
    let asked: Vec<usize> = sids.iter().map(|sid| fetches(&t, sid)).collect();
    let max = usize::try_from(MAX_STATUS_CHECKS).expect("small");
    assert_eq!(asked, [1, 1, max, 0], "final texts are not asked again; the held one {max} times in all");
}
