//! `cargo xtask bench sending`: the sender against a local moto server (a fresh one for each
//! measurement) and the Twilio simulator, with the local runner draining the lanes as deployed
//! (batch sizes and maximum concurrency from `shared::aws_resources::QUEUES`, visibility timeouts
//! unscaled). A benchmark, not a test; see
//! docs/benchmarks.md for figures and what they mean.
//!
//! 1. **Throughput**, for each `--mps`: a connection at that many segments a second, `--seconds`
//!    times as many one-segment texts queued on the interactive lane first, then drained. It
//!    reports texts per aligned second at the simulator (achieved ÷ configured over the seconds
//!    between the first and the last, and the busiest second), the sender's AWS requests per text
//!    by operation (its own clients, counted; status callbacks are not the sender's), receives
//!    per text, and the process's CPU time per text.
//! 2. **Priority**: `--bulk` texts queued on the bulk lane of a 20-MPS connection (bulk share
//!    10 MPS); while they drain, one interactive text every second, each timed from its
//!    `POST /v1/messages` to its arrival at the simulator.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use cpu_time::ProcessTime;
use devstack::moto::MotoServer;
use devstack::request_count::{RequestCounter, total};
use devstack::runner::SenderConcurrency;
use devstack::stack::{Stack, StackOptions};
use futures::{StreamExt, TryStreamExt, stream};
use shared::ids::{ClinicId, ConnectionId};
use shared::message::{Lane, Message, MessageBody};
use shared::phone::E164;
use shared::send_queue::SendJob;
use shared::services::{AwsClients, Services};
use twilio_sim::Simulator;

pub const USAGE: &str = "cargo xtask bench sending [--mps 1,10,50] [--seconds 20] [--bulk 1000]\n  \
                         sending    throughput at each MPS, and interactive latency while a bulk lane drains";

/// Texts created at once while filling the queues.
const FILL_CONCURRENCY: usize = 16;

#[derive(Debug, Clone)]
struct Options {
    mps: Vec<u32>,
    seconds: u32,
    bulk: usize,
}

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let mut options = Self { mps: vec![1, 10, 50], seconds: 20, bulk: 1_000 };
        let mut rest = args.iter();
        while let Some(flag) = rest.next() {
            let value = rest.next().with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
            match flag.as_str() {
                "--mps" => {
                    options.mps = value
                        .split(',')
                        .map(|v| v.trim().parse::<u32>().with_context(|| format!("--mps {v:?} is not a number")))
                        .collect::<Result<_, _>>()?;
                }
                "--seconds" => options.seconds = value.parse().with_context(|| format!("--seconds {value:?}"))?,
                "--bulk" => options.bulk = value.parse().with_context(|| format!("--bulk {value:?}"))?,
                other => bail!("unknown argument {other:?}\n{USAGE}"),
            }
        }
        ensure!(options.mps.iter().all(|m| *m > 0) && options.seconds > 0, "MPS and seconds must be positive");
        Ok(options)
    }
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    sending(Options::parse(args)?)
}

#[tokio::main]
async fn sending(options: Options) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "error".into()))
        .init();
    // A moto of its own for each measurement: moto is one Python process near its limit at 50
    // MPS, and an earlier run's tables and garbage would weigh on the next one's figures.
    for mps in &options.mps {
        let moto = MotoServer::start().await?;
        throughput(&moto.endpoint, *mps, options.seconds).await?;
    }
    let moto = MotoServer::start().await?;
    priority(&moto.endpoint, options.bulk).await?;
    Ok(())
}

pub(crate) async fn stack(endpoint: &str, name: &str, mps: u32) -> anyhow::Result<Stack> {
    let prefix = format!("bench-{name}-{}-{}", std::process::id(), Utc::now().timestamp_millis());
    let mut options = StackOptions::for_tests(prefix);
    options.time_scale = 1;
    options.sender_concurrency = SenderConcurrency::PerLane(0);
    let stack = Stack::start(endpoint, options).await?;
    let services = &stack.services;
    let demo = ClinicId::new("demo");
    let mut connection =
        services.clinics.connection(&demo, &ConnectionId::new("main")).await?.context("the demo connection")?;
    connection.mps = mps;
    services.clinics.put_connection(&connection).await?;
    services.counters.add_credits(&demo, 1_000_000).await?;
    Ok(stack)
}

/// Services for the sender alone, on clients that count their requests.
pub(crate) fn counted(stack: &Stack, counter: &RequestCounter) -> anyhow::Result<(Services, aws_sdk_sqs::Client)> {
    let dynamo = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&stack.aws).interceptor(counter.clone()).build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&stack.aws).interceptor(counter.clone()).build(),
    );
    let events = aws_sdk_eventbridge::Client::new(&stack.aws);
    let base = &stack.services;
    let s3 = base.reports.client().clone();
    let clients = AwsClients { dynamo, sqs: sqs.clone(), events, s3 };
    let mut services = Services::from_clients((*base.settings).clone(), clients, base.clock.clone(), base.timing)?;
    services.shares = base.shares;
    Ok((services, sqs))
}

/// Queues `count` texts on `lane`, each to its own number (`+1415<first + i>`).
async fn fill(
    services: &Services,
    simulator: &Simulator,
    lane: Lane,
    count: usize,
    first: usize,
    body: &str,
) -> anyhow::Result<()> {
    let body = MessageBody::parse(body)?;
    stream::iter(0..count)
        .map(|i| {
            let body = body.clone();
            async move {
                let to = E164::parse(&format!("+1415{:07}", first + i), None)?;
                simulator.lose_callbacks_to(to.as_str());
                let now = services.clock.now();
                let message =
                    Message::new_outbound(ClinicId::new("demo"), to, body, ConnectionId::new("main"), lane, None, now);
                services.messages.insert(&message).await?;
                services.queues.enqueue(lane, &SendJob::of(&message)).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(FILL_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// When each create request matching `keep` reached the simulator.
pub(crate) fn arrivals(stack: &Stack, keep: impl Fn(&[(String, String)]) -> bool) -> Vec<DateTime<Utc>> {
    stack
        .simulator
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/Messages.json") && keep(&r.params))
        .map(|r| r.received_at)
        .collect()
}

pub(crate) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

pub(crate) async fn wait_for(
    stack: &Stack,
    count: usize,
    limit: Duration,
    keep: impl Fn(&[(String, String)]) -> bool,
) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if arrivals(stack, &keep).len() >= count {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// Texts per aligned second, from the first second with a text to the last.
pub(crate) fn per_second(arrivals: &[DateTime<Utc>]) -> BTreeMap<i64, u32> {
    let mut seconds = BTreeMap::new();
    for t in arrivals {
        *seconds.entry(t.timestamp()).or_insert(0) += 1;
    }
    if let (Some(first), Some(last)) = (seconds.keys().next().copied(), seconds.keys().last().copied()) {
        for s in first..=last {
            seconds.entry(s).or_insert(0);
        }
    }
    seconds
}

async fn throughput(endpoint: &str, mps: u32, seconds: u32) -> anyhow::Result<()> {
    let count = usize::try_from(mps * seconds)?;
    println!("throughput at {mps} MPS: {count} one-segment texts on the interactive lane");
    let mut stack = stack(endpoint, &format!("mps{mps}"), mps).await?;
    let fill_started = Instant::now();
    fill(
        &stack.services,
        &stack.simulator,
        Lane::Interactive,
        count,
        5_550_000,
        "Your pet's vaccination is due next week.",
    )
    .await?;
    println!("  queued in       {:.1} s", fill_started.elapsed().as_secs_f64());

    let counter = RequestCounter::default();
    let (services, sqs) = counted(&stack, &counter)?;
    let cpu = ProcessTime::now();
    let started = Instant::now();
    stack.drain_lanes(services, sqs, SenderConcurrency::AsDeployed);
    let limit = Duration::from_secs(u64::from(seconds) * 4 + 120);
    let all_sent = wait_for(&stack, count, limit, |_| true).await;
    let cpu = cpu.elapsed();
    let drained = started.elapsed();
    ensure!(all_sent, "only {} of {count} texts reached the simulator in {limit:?}", arrivals(&stack, |_| true).len());
    // Let the last jobs' deletes finish before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = counter.snapshot();

    let seconds_used = per_second(&arrivals(&stack, |_| true));
    let busiest = seconds_used.values().copied().max().unwrap_or(0);
    let over = seconds_used.values().filter(|n| **n > mps).count();
    // The first and last seconds are partial (the drain starts and ends inside them).
    let inner: Vec<u32> = seconds_used.values().copied().skip(1).collect::<Vec<_>>();
    let inner = &inner[..inner.len().saturating_sub(1)];
    let inner_rate = inner.iter().sum::<u32>() as f64 / inner.len().max(1) as f64;
    let whole_rate = count as f64 / seconds_used.len().max(1) as f64;
    println!("  drained in      {:.1} s", drained.as_secs_f64());
    println!("  seconds used    {} (first to last text at the simulator)", seconds_used.len());
    println!(
        "  achieved        {whole_rate:.2} texts/s over them = {:.3} of {mps}; {inner_rate:.2}/s = {:.3} without the first and last",
        whole_rate / f64::from(mps),
        inner_rate / f64::from(mps)
    );
    println!("  busiest second  {busiest} texts; seconds over {mps}: {over}");
    let grants = grants_per_second(&stack).await?;
    println!(
        "  limiter         most granted in a second: {} segments; seconds granted over {mps}: {}",
        grants.values().max().copied().unwrap_or(0),
        grants.values().filter(|g| **g > mps).count()
    );
    let series = |counts: &BTreeMap<i64, u32>| {
        seconds_used.keys().map(|s| counts.get(s).copied().unwrap_or(0).to_string()).collect::<Vec<_>>().join(" ")
    };
    println!("  per second      at the simulator: {}", series(&seconds_used));
    println!("                  granted:          {}", series(&grants));
    print_requests(&seen, count);
    print_beside_the_texts(&seen, stack.sender_invocations().0, count);
    print_receives(&stack, count);
    println!(
        "  CPU             {:.2} ms per text (the whole process: sender, simulator and status callbacks; moto apart)",
        cpu.as_secs_f64() * 1000.0 / count as f64
    );
    println!();
    Ok(())
}

/// Segments the limiter granted, per second, read from the demo connection's window items.
async fn grants_per_second(stack: &Stack) -> anyhow::Result<BTreeMap<i64, u32>> {
    let items = aws_sdk_dynamodb::Client::new(&stack.aws)
        .query()
        .table_name(&stack.services.settings.tables.counters)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", aws_sdk_dynamodb::types::AttributeValue::S("RATE#demo#main".into()))
        .send()
        .await?
        .items
        .unwrap_or_default();
    let mut grants = BTreeMap::new();
    for item in &items {
        let Some(window) = item.get("sk").and_then(|v| v.as_s().ok()).and_then(|w| w.parse::<i64>().ok()) else {
            continue;
        };
        for second in 0..10 {
            let granted = item.get(&format!("s{second}")).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok());
            if let Some(granted) = granted {
                grants.insert(window + second, granted);
            }
        }
    }
    Ok(grants)
}

pub(crate) fn print_requests(seen: &devstack::request_count::Seen, texts: usize) {
    let all = total(&seen.counts);
    let per = |n: u64| n as f64 / texts.max(1) as f64;
    let dynamo: u64 =
        seen.counts.iter().filter(|((s, _), _)| s.eq_ignore_ascii_case("dynamodb")).map(|(_, c)| c.requests).sum();
    println!(
        "  AWS requests    {:.2} per text ({:.2} DynamoDB, {:.2} SQS); by operation:",
        per(all.requests),
        per(dynamo),
        per(all.requests - dynamo)
    );
    for ((service, operation), c) in &seen.counts {
        println!("    {service:<9} {operation:<27} {:>7} {:>8.3} per text", c.requests, per(c.requests));
    }
}

/// The requests the event source makes whatever is queued: receives that found nothing (each
/// queue is long-polled all the time, as Lambda's pollers do) and its look-up of each queue's
/// ARN. Every other receive handed a batch to an invocation.
fn print_beside_the_texts(seen: &devstack::request_count::Seen, invocations: usize, texts: usize) {
    let requests = |operation: &str| {
        seen.counts.iter().filter(|((_, op), _)| op == operation).map(|(_, c)| c.requests).sum::<u64>()
    };
    let idle = requests("ReceiveMessage").saturating_sub(invocations as u64);
    let beside = idle + requests("GetQueueAttributes");
    let all = total(&seen.counts).requests;
    println!(
        "  for the texts   {:.2} per text without the event source's {beside} requests that do not grow with \
         them ({idle} receives that found nothing, and its queue look-ups)",
        all.saturating_sub(beside) as f64 / texts.max(1) as f64
    );
}

fn print_receives(stack: &Stack, texts: usize) {
    let receives = stack.receive_counts();
    let total: u32 = receives.values().sum();
    let most = receives.values().copied().max().unwrap_or(0);
    println!("  receives        {:.2} per text (most for one text: {most})", f64::from(total) / texts.max(1) as f64);
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn priority(endpoint: &str, bulk: usize) -> anyhow::Result<()> {
    const MPS: u32 = 20;
    println!("priority: {bulk} bulk texts on a {MPS}-MPS connection (bulk share 10/s), one interactive text a second");
    let mut stack = stack(endpoint, "priority", MPS).await?;
    let bulk_body = "The clinic is closed tomorrow because of the storm.";
    fill(&stack.services, &stack.simulator, Lane::Bulk, bulk, 5_560_000, bulk_body).await?;
    let is_bulk = |p: &[(String, String)]| param(p, "Body") == Some(bulk_body);

    let counter = RequestCounter::default();
    let (services, sqs) = counted(&stack, &counter)?;
    let started = Instant::now();
    stack.drain_lanes(services, sqs, SenderConcurrency::AsDeployed);
    let http = reqwest::Client::new();
    let mut posted = Vec::new();
    let mut i = 0;
    // Interactive texts while at least a tenth of the bulk is still waiting.
    while arrivals(&stack, is_bulk).len() < bulk * 9 / 10 {
        let to = format!("+1415557{i:04}");
        stack.simulator.lose_callbacks_to(&to);
        let sent_at = post_conversation_text(&http, &stack, &to).await?;
        posted.push((to, sent_at));
        i += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let interactive = posted.len();
    let all_bulk = wait_for(&stack, bulk, Duration::from_secs(600), is_bulk).await;
    let drained = started.elapsed();
    ensure!(all_bulk, "the bulk lane did not drain");
    ensure!(
        wait_for(&stack, bulk + interactive, Duration::from_secs(60), |_| true).await,
        "some interactive texts never reached the simulator"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = counter.snapshot();

    let latencies = latencies_ms(&stack, &posted);
    let bulk_seconds = per_second(&arrivals(&stack, is_bulk));
    let busiest_bulk = bulk_seconds.values().copied().max().unwrap_or(0);
    println!("  bulk drained in {:.1} s; busiest second {busiest_bulk} bulk texts", drained.as_secs_f64());
    println!(
        "  interactive     {} texts: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms from POST to the simulator (goal: p99 ≤ 1,050 ms)",
        latencies.len(),
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    print_requests(&seen, bulk + interactive);
    print_beside_the_texts(&seen, stack.sender_invocations().0, bulk + interactive);
    print_receives(&stack, bulk + interactive);
    println!();
    Ok(())
}

/// Posts a conversation text to `to` through the API; returns when it was posted.
pub(crate) async fn post_conversation_text(
    http: &reqwest::Client,
    stack: &Stack,
    to: &str,
) -> anyhow::Result<DateTime<Utc>> {
    let sent_at = Utc::now();
    let response = http
        .post(format!("{}/v1/messages", stack.base_url))
        .bearer_auth(&stack.demo.api_key)
        .json(&serde_json::json!({"to": to, "body": "Dr. Lee can see Bella at 3 pm today."}))
        .send()
        .await?;
    ensure!(response.status().as_u16() == 202, "POST /v1/messages answered {}", response.status());
    Ok(sent_at)
}

/// Milliseconds from each post to its text's arrival at the simulator, sorted.
pub(crate) fn latencies_ms(stack: &Stack, posted: &[(String, DateTime<Utc>)]) -> Vec<f64> {
    let requests = stack.simulator.requests();
    let mut latencies: Vec<f64> = posted
        .iter()
        .filter_map(|(to, sent_at)| {
            let arrived =
                requests.iter().find(|r| r.method == "POST" && param(&r.params, "To") == Some(to.as_str()))?;
            Some((arrived.received_at - *sent_at).num_microseconds()? as f64 / 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    latencies
}
