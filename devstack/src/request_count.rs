//! Counting the requests an AWS SDK client makes, by service and operation, for benchmarks: an
//! interceptor added to the clients of the code being measured.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextRef,
    BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

/// Counts the HTTP requests (attempts, retries included) and operations of the clients it is
/// added to, by service and operation, with the bytes of each request's body and the time from
/// sending a request to receiving its response (moto's time plus loopback; the rest of a tick's
/// wall time is the client's and the tick's own work). Round trips are timed only while requests
/// do not overlap, as in the tick, which awaits one at a time; overlaps are counted instead.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter {
    state: Arc<Mutex<CounterState>>,
}

#[derive(Debug, Default)]
struct CounterState {
    counts: Counts,
    in_flight: Option<(OpKey, Instant)>,
    overlapped: u64,
}

pub type OpKey = (String, String);
pub type Counts = BTreeMap<OpKey, OpCount>;

#[derive(Debug, Clone, Copy, Default)]
pub struct OpCount {
    pub operations: u64,
    pub requests: u64,
    pub body_bytes: u64,
    pub round_trip: Duration,
    /// DynamoDB read and write request units, as the project's moto reckons them
    /// (`tools/moto_server.py` started metered, header `x-clinic-sms-capacity`); 0 for other
    /// services and on an unmetered moto.
    pub read_units: f64,
    pub write_units: f64,
}

/// What the counter saw between a reset and a snapshot.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub counts: Counts,
    pub overlapped: u64,
}

fn op_key(cfg: &ConfigBag) -> OpKey {
    cfg.load::<Metadata>()
        .map_or_else(|| ("?".to_owned(), "?".to_owned()), |m| (m.service().to_owned(), m.name().to_owned()))
}

impl RequestCounter {
    fn with<R>(&self, f: impl FnOnce(&mut CounterState) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn reset(&self) {
        self.with(|state| *state = CounterState::default());
    }

    pub fn snapshot(&self) -> Seen {
        self.with(|state| Seen { counts: state.counts.clone(), overlapped: state.overlapped })
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    /// Once per operation (`read_before_execution` comes before the operation's `Metadata` is in the bag).
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let key = op_key(cfg);
        self.with(|state| state.counts.entry(key).or_default().operations += 1);
        Ok(())
    }

    /// Once per HTTP request.
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let bytes = u64::try_from(context.request().body().bytes().map_or(0, <[u8]>::len)).unwrap_or(u64::MAX);
        let key = op_key(cfg);
        self.with(|state| {
            let count = state.counts.entry(key.clone()).or_default();
            count.requests += 1;
            count.body_bytes += bytes;
            if state.in_flight.replace((key, Instant::now())).is_some() {
                state.overlapped += 1;
            }
        });
        Ok(())
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (read, write) = context.response().headers().get(CAPACITY_HEADER).map_or((0.0, 0.0), capacity);
        let key = op_key(cfg);
        self.with(|state| {
            let count = state.counts.entry(key).or_default();
            count.read_units += read;
            count.write_units += write;
            if let Some((key, sent)) = state.in_flight.take() {
                state.counts.entry(key).or_default().round_trip += sent.elapsed();
            }
        });
        Ok(())
    }
}

/// SDK clients for the services built from `aws`, each counting its requests in `counter`.
pub fn counted_clients(aws: &aws_config::SdkConfig, counter: &RequestCounter) -> shared::services::AwsClients {
    shared::services::AwsClients {
        dynamo: aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(aws).interceptor(counter.clone()).build(),
        ),
        sqs: aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(aws).interceptor(counter.clone()).build(),
        ),
        events: aws_sdk_eventbridge::Client::from_conf(
            aws_sdk_eventbridge::config::Builder::from(aws).interceptor(counter.clone()).build(),
        ),
        s3: aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(aws).force_path_style(true).interceptor(counter.clone()).build(),
        ),
    }
}

/// The header the project's moto adds to every DynamoDB answer: "read=<units>;write=<units>".
const CAPACITY_HEADER: &str = "x-clinic-sms-capacity";

fn capacity(header: &str) -> (f64, f64) {
    let mut units = (0.0, 0.0);
    for part in header.split(';') {
        match part.split_once('=') {
            Some(("read", v)) => units.0 = v.parse().unwrap_or(0.0),
            Some(("write", v)) => units.1 = v.parse().unwrap_or(0.0),
            _ => {}
        }
    }
    units
}

/// Every operation's counts added up.
pub fn total(counts: &Counts) -> OpCount {
    counts.values().fold(OpCount::default(), |sum, c| OpCount {
        operations: sum.operations + c.operations,
        requests: sum.requests + c.requests,
        body_bytes: sum.body_bytes + c.body_bytes,
        round_trip: sum.round_trip + c.round_trip,
        read_units: sum.read_units + c.read_units,
        write_units: sum.write_units + c.write_units,
    })
}
