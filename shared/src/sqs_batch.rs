//! An SQS batch with each record on its own: a record whose body cannot be read, or whose job
//! asks to run again or panics, is reported alone as a batch item failure, and the rest of the
//! batch is deleted as usual.
//!
//! Every record's job runs in its own task (the release profile keeps `panic = "unwind"`, so a
//! panic ends only that task). The tasks belong to the batch: when the invocation is cut short
//! (Lambda's timeout, a crash, the local runner's simulated crash) the jobs stop with it rather
//! than running on unseen, as they would on a real Lambda.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{error, warn};

/// What becomes of a record once its job has run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Done: the record may be deleted.
    Delete,
    /// Stays in the queue; SQS delivers it again when it is visible again.
    Keep,
    /// Stays in the queue, hidden until about this time (see [`run_prepared`]): it is waiting,
    /// not failing.
    HideUntil(DateTime<Utc>),
}

/// A record to hide until `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToHide {
    pub queue_arn: String,
    pub receipt_handle: String,
    pub until: DateTime<Utc>,
}

/// A record's body, read, with what a job needs to act on the record itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery<T> {
    pub body: T,
    pub sqs_message_id: Option<String>,
    pub queue_arn: Option<String>,
    pub receipt_handle: Option<String>,
    /// SQS's `ApproximateReceiveCount`: 1 the first time (also when SQS does not say).
    pub receive_count: u32,
}

/// Runs `job` on every record whose body reads as a `T`, all at once, and reports the records
/// to keep: unreadable ones, those whose job said [`Disposition::Keep`] (or to hide them: `run`
/// keeps them as they are; [`run_prepared`] hides them), and those whose job panicked. Unreadable
/// bodies are logged by SQS message id only: a body may hold a phone number or a text.
pub async fn run<T, J, F>(records: Vec<SqsMessage>, job: J) -> SqsBatchResponse
where
    T: DeserializeOwned + Clone + Send + 'static,
    J: Fn(Delivery<T>) -> F + Clone + Send + 'static,
    F: Future<Output = Disposition> + Send + 'static,
{
    let prepare = |_: Vec<Delivery<T>>| async { Vec::<()>::new() };
    // `run`'s jobs keep or delete; one that asks to be hidden is kept as it is.
    let hide = |_: Vec<ToHide>| async {};
    run_prepared(records, prepare, move |delivery, ()| job(delivery), hide).await
}

/// How long a record to hide waits for others to hide with it: the jobs of a batch that must
/// wait decide within moments of each other (their slots were granted together).
const HIDE_LINGER: Duration = Duration::from_millis(50);
/// The most records hidden together (`ChangeMessageVisibilityBatch` takes ten).
const HIDE_TOGETHER: usize = 10;

/// [`run`], with work done once for the whole batch first: `prepare` gets the readable records
/// and returns something for each, in order, that its job then gets. `prepare` runs in a task of
/// its own too: if it panics, or returns fewer, a job gets `P::default()`. A record whose job
/// said [`Disposition::HideUntil`] is handed to `hide` as soon as its job ends, with the others
/// that end within `HIDE_LINGER` (up to ten), not when the whole batch is done: a job that
/// waits for its second in place, or a slow Twilio answer, must not hold back another's hide
/// past the time it should come back.
pub async fn run_prepared<T, P, R, RF, J, F, H, HF>(
    records: Vec<SqsMessage>,
    prepare: R,
    job: J,
    hide: H,
) -> SqsBatchResponse
where
    T: DeserializeOwned + Clone + Send + 'static,
    P: Default + Send + 'static,
    R: FnOnce(Vec<Delivery<T>>) -> RF + Send + 'static,
    RF: Future<Output = Vec<P>> + Send + 'static,
    J: Fn(Delivery<T>, P) -> F + Clone + Send + 'static,
    F: Future<Output = Disposition> + Send + 'static,
    H: Fn(Vec<ToHide>) -> HF,
    HF: Future<Output = ()>,
{
    let mut dispositions = vec![Disposition::Keep; records.len()];
    let ids: Vec<Option<String>> = records.iter().map(|r| r.message_id.clone()).collect();
    let mut deliveries = Vec::new();
    for (position, record) in records.into_iter().enumerate() {
        let Some(body) = record.body.as_deref().and_then(|body| serde_json::from_str::<T>(body).ok()) else {
            warn!(sqs_message_id = ?record.message_id, "unreadable record; kept for the DLQ");
            continue;
        };
        let receive_count = record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1);
        let delivery = Delivery {
            body,
            sqs_message_id: record.message_id,
            queue_arn: record.event_source_arn,
            receipt_handle: record.receipt_handle,
            receive_count,
        };
        deliveries.push((position, delivery));
    }
    let readable = deliveries.iter().map(|(_, d)| d.clone()).collect();
    let prepared = match tokio::spawn(async move { prepare(readable).await }).await {
        Ok(prepared) => prepared,
        Err(join_error) => {
            error!(error = %join_error, "preparing the batch panicked; each record runs without it");
            Vec::new()
        }
    };
    let mut prepared = prepared.into_iter();
    let (to_hide, hiding) = mpsc::unbounded_channel();
    let mut tasks = JoinSet::new();
    let mut position_of_task = HashMap::new();
    for (position, delivery) in deliveries {
        let prepared = prepared.next().unwrap_or_default();
        // The job is called inside the task, so even a panic before its first await stays there.
        let job = job.clone();
        let to_hide = to_hide.clone();
        let handle = delivery.queue_arn.clone().zip(delivery.receipt_handle.clone());
        let task = tasks.spawn(async move {
            let disposition = job(delivery, prepared).await;
            if let (Disposition::HideUntil(until), Some((queue_arn, receipt_handle))) = (disposition, handle) {
                // The batch outlives its tasks, so the receiver is still there.
                let _ = to_hide.send(ToHide { queue_arn, receipt_handle, until });
            }
            disposition
        });
        position_of_task.insert(task.id(), position);
    }
    // Only the tasks hold senders now: hiding ends once every job has.
    drop(to_hide);
    let jobs = async {
        while let Some(joined) = tasks.join_next_with_id().await {
            let (task, disposition) = match joined {
                Ok((task, disposition)) => (task, disposition),
                Err(join_error) => {
                    let task = join_error.id();
                    let id = position_of_task.get(&task).and_then(|p| ids[*p].as_deref());
                    error!(sqs_message_id = ?id, error = %join_error, "a record's job panicked; kept for a retry");
                    (task, Disposition::Keep)
                }
            };
            if let Some(position) = position_of_task.get(&task) {
                dispositions[*position] = disposition;
            }
        }
    };
    tokio::join!(jobs, hide_as_they_come(hiding, hide));
    let mut response = SqsBatchResponse::default();
    for (id, disposition) in ids.into_iter().zip(dispositions) {
        if disposition == Disposition::Delete {
            continue;
        }
        match id {
            Some(id) => {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
            // Lambda always names its records; one without a name cannot be reported.
            None => warn!("a record to keep has no SQS message id"),
        }
    }
    response
}

/// Hands the records to hide to `hide` as they come, each with those that follow it within
/// `HIDE_LINGER`, up to `HIDE_TOGETHER` at a time, until every job has ended.
async fn hide_as_they_come<H, HF>(mut hiding: mpsc::UnboundedReceiver<ToHide>, hide: H)
where
    H: Fn(Vec<ToHide>) -> HF,
    HF: Future<Output = ()>,
{
    while let Some(first) = hiding.recv().await {
        let mut together = vec![first];
        let linger = tokio::time::sleep(HIDE_LINGER);
        tokio::pin!(linger);
        while together.len() < HIDE_TOGETHER {
            tokio::select! {
                more = hiding.recv() => match more {
                    Some(more) => together.push(more),
                    None => break,
                },
                () = &mut linger => break,
            }
        }
        hide(together).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::sync::watch;

    use super::*;

    fn record(id: &str, body: Option<&str>) -> SqsMessage {
        let mut record = SqsMessage::default();
        record.message_id = Some(id.to_owned());
        record.body = body.map(str::to_owned);
        record
    }

    fn reported(response: &SqsBatchResponse) -> Vec<&str> {
        response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect()
    }

    type Finished = Arc<Mutex<Vec<String>>>;

    fn finished(list: &Finished) -> Vec<String> {
        let mut names = list.lock().map(|l| l.clone()).unwrap_or_default();
        names.sort();
        names
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_job_fails_alone_and_the_others_finish() {
        let done = Finished::default();
        // The others finish only after the panic, so the batch must outlive it.
        let (panicked_tx, panicked_rx) = watch::channel(false);
        let job = {
            let done = done.clone();
            move |delivery: Delivery<String>| {
                let (done, panicked_tx, mut panicked_rx) = (done.clone(), panicked_tx.clone(), panicked_rx.clone());
                async move {
                    if delivery.body == "bad" {
                        panicked_tx.send_replace(true);
                        panic!("a job that panics");
                    }
                    let _ = panicked_rx.wait_for(|panicked| *panicked).await;
                    if let Ok(mut done) = done.lock() {
                        done.push(delivery.body);
                    }
                    Disposition::Delete
                }
            }
        };
        let records = vec![
            record("m1", Some("\"one\"")),
            record("m2", Some("\"bad\"")),
            record("m3", Some("\"three\"")),
            record("m4", Some("\"four\"")),
        ];

        let response = run(records, job).await;

        assert_eq!(reported(&response), ["m2"]);
        assert_eq!(finished(&done), ["four", "one", "three"]);
    }

    #[tokio::test]
    async fn an_unreadable_body_is_reported_alone() {
        let done = Finished::default();
        let job = {
            let done = done.clone();
            move |delivery: Delivery<String>| {
                let done = done.clone();
                async move {
                    if let Ok(mut done) = done.lock() {
                        done.push(delivery.body);
                    }
                    Disposition::Delete
                }
            }
        };
        let records = vec![
            record("m1", Some("\"one\"")),
            record("m2", Some("{\"not\": \"a string\"")),
            record("m3", None),
            record("m4", Some("\"four\"")),
        ];

        let response = run(records, job).await;

        assert_eq!(reported(&response), ["m2", "m3"]);
        assert_eq!(finished(&done), ["four", "one"], "every readable record ran, and only those");
    }

    #[tokio::test]
    async fn a_record_its_job_keeps_is_reported_in_batch_order() {
        let job = |delivery: Delivery<u32>| async move {
            if delivery.body.is_multiple_of(2) { Disposition::Keep } else { Disposition::Delete }
        };
        let records = (1..=5).map(|n| record(&format!("m{n}"), Some(&n.to_string()))).collect();

        let response = run(records, job).await;

        assert_eq!(reported(&response), ["m2", "m4"]);
    }

    #[tokio::test]
    async fn each_job_gets_its_record_with_its_queue_and_receipt() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let job = {
            let seen = seen.clone();
            move |delivery: Delivery<String>| {
                let seen = seen.clone();
                async move {
                    if let Ok(mut seen) = seen.lock() {
                        seen.push(delivery);
                    }
                    Disposition::Delete
                }
            }
        };
        let mut one = record("m1", Some("\"one\""));
        one.event_source_arn = Some("arn:aws:sqs:us-east-1:000000000000:lane".into());
        one.receipt_handle = Some("receipt-1".into());
        one.attributes.insert("ApproximateReceiveCount".into(), "2".into());

        let response = run(vec![one], job).await;

        assert!(reported(&response).is_empty());
        let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(
            seen,
            [Delivery {
                body: "one".to_owned(),
                sqs_message_id: Some("m1".into()),
                queue_arn: Some("arn:aws:sqs:us-east-1:000000000000:lane".into()),
                receipt_handle: Some("receipt-1".into()),
                receive_count: 2,
            }]
        );
    }

    #[tokio::test]
    async fn records_to_hide_are_kept_and_hidden_together_as_their_jobs_end() {
        let until = chrono::DateTime::<chrono::Utc>::from_timestamp(1_790_000_000, 0).unwrap_or_default();
        let job = move |delivery: Delivery<u32>, (): ()| async move {
            match delivery.body {
                1 => Disposition::Delete,
                2 => Disposition::Keep,
                // A job that waits in place: the others' hides must not wait for it.
                5 => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    Disposition::HideUntil(until)
                }
                n => Disposition::HideUntil(until + chrono::TimeDelta::seconds(i64::from(n))),
            }
        };
        let records = (1..=5)
            .map(|n| {
                let mut r = record(&format!("m{n}"), Some(&n.to_string()));
                r.event_source_arn = Some("arn:aws:sqs:us-east-1:000000000000:lane".into());
                r.receipt_handle = Some(format!("receipt-{n}"));
                r
            })
            .collect();
        let started = std::time::Instant::now();
        // Each hide: its receipts, and when it was made.
        type Hides = Arc<Mutex<Vec<(Vec<String>, Duration)>>>;
        let hidden: Hides = Arc::default();
        let hide = {
            let hidden = hidden.clone();
            move |jobs: Vec<ToHide>| {
                let hidden = hidden.clone();
                async move {
                    let receipts = jobs.iter().map(|h| h.receipt_handle.clone()).collect();
                    if let Ok(mut hidden) = hidden.lock() {
                        hidden.push((receipts, started.elapsed()));
                    }
                }
            }
        };

        let response =
            run_prepared(records, |all: Vec<Delivery<u32>>| async move { vec![(); all.len()] }, job, hide).await;

        assert_eq!(reported(&response), ["m2", "m3", "m4", "m5"]);
        let hidden = hidden.lock().map(|h| h.clone()).unwrap_or_default();
        let mut first: Vec<String> = hidden.first().map(|(r, _)| r.clone()).unwrap_or_default();
        first.sort();
        assert_eq!(first, ["receipt-3", "receipt-4"], "hidden together, {hidden:?}");
        assert!(hidden[0].1 < Duration::from_millis(400), "without waiting for the slow job: {hidden:?}");
        assert_eq!(hidden.get(1).map(|(r, _)| r.clone()), Some(vec!["receipt-5".to_owned()]));
    }

    /// As when Lambda ends an invocation: its records' jobs stop, none runs on.
    #[tokio::test]
    async fn a_batch_cut_short_stops_every_job() {
        let done = Finished::default();
        let (started_tx, mut started_rx) = watch::channel(0usize);
        let (release_tx, release_rx) = watch::channel(false);
        let job = {
            let done = done.clone();
            move |delivery: Delivery<String>| {
                let (done, started_tx, mut release_rx) = (done.clone(), started_tx.clone(), release_rx.clone());
                async move {
                    started_tx.send_modify(|n| *n += 1);
                    let _ = release_rx.wait_for(|go| *go).await;
                    if let Ok(mut done) = done.lock() {
                        done.push(delivery.body);
                    }
                    Disposition::Delete
                }
            }
        };
        let records = vec![record("m1", Some("\"one\"")), record("m2", Some("\"two\""))];
        let invocation = tokio::spawn(run(records, job));
        started_rx.wait_for(|n| *n == 2).await.expect("both jobs start");

        invocation.abort();
        assert!(invocation.await.is_err_and(|e| e.is_cancelled()));
        // A job still alive would now finish.
        release_tx.send_replace(true);
        // Every job, and the batch's copy of the job, drops its receiver once it is gone; the
        // bound only keeps a failing run from hanging.
        let gone = tokio::time::timeout(std::time::Duration::from_secs(10), release_tx.closed()).await;
        assert!(gone.is_ok(), "every job stopped with its batch");
        assert!(finished(&done).is_empty(), "no job ran on");
    }
}
