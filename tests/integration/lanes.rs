//! The local runner drains the lanes with Lambda's semantics, and the sender never sends a
//! message twice however often its job arrives.

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use shared::ids::MessageId;
use shared::message::Lane;
use shared::send_queue::SendJob;

use crate::support::TestStack;

async fn queue_depth(t: &TestStack, url: &str) -> (u64, u64) {
    let out = aws_sdk_sqs::Client::new(&t.stack.aws)
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("queue attributes");
    let attrs = out.attributes.unwrap_or_default();
    let number = |name: QueueAttributeName| attrs.get(&name).and_then(|v| v.parse().ok()).unwrap_or(0);
    (
        number(QueueAttributeName::ApproximateNumberOfMessages),
        number(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

async fn wait_until_drained(t: &TestStack, url: &str) {
    for _ in 0..200 {
        if queue_depth(t, url).await == (0, 0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("queue {url} never drained");
}

fn creates(t: &TestStack) -> usize {
    t.stack.simulator.requests().iter().filter(|r| r.method == "POST" && r.path.ends_with("/Messages.json")).count()
}

#[tokio::test]
async fn a_job_delivered_again_never_reaches_twilio_twice() {
    let t = TestStack::start().await;
    let id = t.send_text("+14155550123").await;
    let before = t.wait_for_status(&id, "delivered").await;
    let job = SendJob { message_id: id.parse::<MessageId>().expect("id") };
    for _ in 0..3 {
        t.stack.services.queues.enqueue(Lane::Interactive, &job).await.expect("queued");
    }
    wait_until_drained(&t, &t.stack.resources.queues.interactive).await;
    assert_eq!(creates(&t), 1, "one Twilio request for one message");
    assert_eq!(t.get_message(&id).await.1, before, "nothing changed");
}

#[tokio::test]
async fn a_poison_job_goes_to_the_dlq_and_the_rest_of_its_batch_is_sent() {
    // Visibility 180 s / 180 = 1 s, so the 20 receives before the DLQ take seconds.
    let t = TestStack::start_custom(|options| options.time_scale = 180).await;
    let sqs = aws_sdk_sqs::Client::new(&t.stack.aws);
    let lane = t.stack.resources.queues.interactive.clone();
    sqs.send_message().queue_url(&lane).message_body("{\"not\": \"a job\"}").send().await.expect("sent");
    let id = t.send_text("+14155550123").await;
    t.wait_for_status(&id, "delivered").await;

    let dlq = t.stack.resources.dlqs[0].clone();
    let mut moved = false;
    for _ in 0..600 {
        if queue_depth(&t, &dlq).await.0 == 1 {
            moved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(moved, "the poison job reached the DLQ after maxReceiveCount receives");
    let received = sqs.receive_message().queue_url(&dlq).send().await.expect("receive").messages.unwrap_or_default();
    assert_eq!(received.first().and_then(|m| m.body.as_deref()), Some("{\"not\": \"a job\"}"));
    assert_eq!(creates(&t), 1);
}
