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
    let job = SendJob::named(id.parse::<MessageId>().expect("id"));
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

/// The lane's record for a message received from SQS, as Lambda would hand it to the sender.
fn event_for(received: &aws_sdk_sqs::types::Message, arn: &str) -> aws_lambda_events::sqs::SqsEvent {
    let mut record = aws_lambda_events::sqs::SqsMessage::default();
    record.message_id = received.message_id.clone();
    record.receipt_handle = received.receipt_handle.clone();
    record.body = received.body.clone();
    record.event_source_arn = Some(arn.to_owned());
    let mut event = aws_lambda_events::sqs::SqsEvent::default();
    event.records.push(record);
    event
}

async fn receive_one(sqs: &aws_sdk_sqs::Client, url: &str) -> aws_sdk_sqs::types::Message {
    for _ in 0..30 {
        let out = sqs.receive_message().queue_url(url).wait_time_seconds(1).send().await.expect("receive");
        if let Some(message) = out.messages.unwrap_or_default().into_iter().next() {
            return message;
        }
    }
    panic!("nothing to receive from {url}");
}

fn kept(response: &aws_lambda_events::sqs::SqsBatchResponse) -> Vec<&str> {
    response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect()
}

/// SQS may hand the same job to a second invocation while the first still works on it (an
/// at-least-once redelivery, or a visibility timeout running out). The second finds the message
/// claimed; if it finished the job, SQS would delete the one job the claim has, and a claim whose
/// outcome turns out unknown would never be reconciled. It keeps the job instead.
#[tokio::test]
async fn a_job_delivered_again_during_its_claim_is_kept_until_the_claim_resolves() {
    use devstack::runner::SenderConcurrency;
    use lambda_runtime::{Context, LambdaEvent};
    use twilio_sim::{Fault, FaultPlan};

    // Unscaled timing: the Twilio call below lasts the client's whole timeout (10 s), ample time
    // for the second delivery to run while the first is inside it.
    let t = TestStack::start_custom(|o| {
        o.time_scale = 1;
        o.sender_concurrency = SenderConcurrency::PerLane(0);
    })
    .await;
    let timeout = u64::try_from(t.stack.services.timing.twilio_timeout.as_millis()).expect("millis");
    t.stack.simulator.inject(Fault::Slow { delay_ms: timeout + 5000, created: false }, FaultPlan::next(1));
    let id = t.send_text("+14155550123").await;
    let sqs = aws_sdk_sqs::Client::new(&t.stack.aws);
    let lane = t.stack.resources.queues.interactive.clone();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&lane)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("attributes")
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .expect("an ARN");

    let first = receive_one(&sqs, &lane).await;
    let services = t.stack.services.clone();
    let first_event = event_for(&first, &arn);
    let first_invocation =
        tokio::spawn(async move { sender::handle(&services, LambdaEvent::new(first_event, Context::default())).await });
    t.wait_for_status(&id, "sending").await;

    // The same job again, while the first invocation waits for Twilio under its claim.
    sqs.change_message_visibility()
        .queue_url(&lane)
        .receipt_handle(first.receipt_handle.clone().expect("a receipt"))
        .visibility_timeout(0)
        .send()
        .await
        .expect("visible again");
    let second = receive_one(&sqs, &lane).await;
    assert_eq!(second.message_id, first.message_id, "the same job");
    let response = sender::handle(&t.stack.services, LambdaEvent::new(event_for(&second, &arn), Context::default()))
        .await
        .expect("handled");
    let job = second.message_id.as_deref().expect("an id");
    assert_eq!(kept(&response), [job], "the second delivery keeps the job while the claim is live");

    let response = first_invocation.await.expect("ran").expect("handled");
    assert_eq!(kept(&response), [job], "the outcome at Twilio is unknown: reconcile later");
    assert_eq!(t.get_message(&id).await.1["status"], "sending");
    assert_eq!(creates(&t), 1);
}
