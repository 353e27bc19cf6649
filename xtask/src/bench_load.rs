//! `cargo xtask bench load`: a bounded load run against the local runner. `POST /v1/messages`
//! at a fixed rate for a fixed time, open loop (each request leaves at its own moment, however
//! long the ones before take), while the sender drains the lanes and the simulator calls back.
//! Reports each answer's latency (p50, p99, max), the answers by status, and whether every
//! accepted text reached the simulator. Fails on any 5xx or transport error.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::Utc;
use devstack::moto::MotoServer;
use devstack::runner::SenderConcurrency;
use devstack::stack::{Stack, StackOptions};
use shared::ids::{ClinicId, ConnectionId};

use crate::bench_sending::{percentile, wait_for};

pub const USAGE: &str = "cargo xtask bench load [--rate 5] [--seconds 30] [--hold-sender]\n  \
                         load       POST /v1/messages at --rate a second for --seconds: latency p50/p99, answers by status, no 5xx";

struct Options {
    rate: u32,
    seconds: u32,
    /// Start the sender only once the load is over: the API alone on moto, whose DynamoDB
    /// serves one request at a time and is otherwise shared with the sender and the callbacks.
    hold_sender: bool,
}

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let mut options = Self { rate: 5, seconds: 30, hold_sender: false };
        let mut rest = args.iter();
        while let Some(flag) = rest.next() {
            if flag == "--hold-sender" {
                options.hold_sender = true;
                continue;
            }
            let value = rest.next().with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
            let number = || value.parse::<u32>().with_context(|| format!("{flag} {value:?} is not a number"));
            match flag.as_str() {
                "--rate" => options.rate = number()?,
                "--seconds" => options.seconds = number()?,
                other => bail!("unknown argument {other:?}\n{USAGE}"),
            }
        }
        ensure!(options.rate > 0 && options.seconds > 0, "--rate and --seconds must be positive");
        Ok(options)
    }
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    load(Options::parse(args)?)
}

/// One request's fate.
enum Answer {
    Status(u16, Duration),
    Transport(String),
}

#[tokio::main]
async fn load(options: Options) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "error".into()))
        .init();
    let Options { rate, seconds, hold_sender } = options;
    let total = usize::try_from(rate * seconds)?;
    println!(
        "bench load: POST /v1/messages, {rate} a second for {seconds} s ({total} requests), local runner on 127.0.0.1 \
         ({} build){}",
        if cfg!(debug_assertions) { "debug" } else { "release" },
        if hold_sender { "; the sender starts when the load ends" } else { "; the sender drains the lanes meanwhile" }
    );
    let moto = MotoServer::start().await?;
    let mut stack_options =
        StackOptions::for_tests(format!("bench-load-{}-{}", std::process::id(), Utc::now().timestamp_millis()));
    stack_options.time_scale = 1;
    stack_options.sender_concurrency =
        if hold_sender { SenderConcurrency::PerLane(0) } else { SenderConcurrency::AsDeployed };
    let counter = devstack::request_count::RequestCounter::default();
    stack_options.request_counter = Some(counter.clone());
    let mut stack = Stack::start(&moto.endpoint, stack_options).await?;
    // The connection keeps up with the offered load, so the run measures the API, not pacing.
    let demo = ClinicId::new("demo");
    let main = ConnectionId::new("main");
    let mut connection = stack.services.clinics.connection(&demo, &main).await?.context("the demo connection")?;
    connection.mps = rate.max(10);
    stack.services.clinics.put_connection(&connection).await?;
    stack.services.counters.add_credits(&demo, u64::try_from(total)? * 2).await?;

    counter.reset();
    let http = reqwest::Client::new();
    let url = format!("{}/v1/messages", stack.base_url);
    let period = Duration::from_secs(1) / rate;
    let started = tokio::time::Instant::now();
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..total {
        tokio::time::sleep_until(started + period * u32::try_from(i)?).await;
        let (http, url, key) = (http.clone(), url.clone(), stack.demo.api_key.clone());
        requests.spawn(async move {
            let body = serde_json::json!({
                "to": format!("+1415{:07}", 5_000_000 + i),
                "body": "Bella's check-up is on Thursday at 3 pm. Reply C to confirm.",
            });
            let sent = Instant::now();
            match http.post(url).bearer_auth(key).json(&body).send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    // The whole answer, not just its head.
                    let _ = response.bytes().await;
                    Answer::Status(status, sent.elapsed())
                }
                Err(e) => Answer::Transport(e.to_string()),
            }
        });
    }
    let offered_for = started.elapsed();
    let answers = requests.join_all().await;
    let seen = counter.snapshot();
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    let mut latencies = Vec::new();
    let mut transport = Vec::new();
    for answer in answers {
        match answer {
            Answer::Status(status, took) => {
                *by_status.entry(status).or_default() += 1;
                latencies.push(took.as_secs_f64() * 1000.0);
            }
            Answer::Transport(e) => transport.push(e),
        }
    }
    latencies.sort_by(f64::total_cmp);
    let accepted = by_status.get(&202).copied().unwrap_or(0);
    if hold_sender {
        let sqs = aws_sdk_sqs::Client::new(&stack.aws);
        stack.drain_lanes(stack.services.clone(), sqs, SenderConcurrency::AsDeployed);
    }
    let arrived = wait_for(&stack, accepted, Duration::from_secs(300), |_| true).await;
    let server_errors: usize = by_status.iter().filter(|(s, _)| **s >= 500).map(|(_, n)| n).sum();

    println!("  offered         {total} requests in {:.1} s", offered_for.as_secs_f64());
    println!("  answers         {by_status:?}; transport errors {}", transport.len());
    println!(
        "  latency         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (request sent → whole answer read)",
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    if hold_sender {
        println!("  the API's own requests, per POST:");
        crate::bench_sending::print_requests(&seen, total);
    }
    println!(
        "  sent            {} of {accepted} accepted texts reached the simulator",
        if arrived { accepted.to_string() } else { "not all".to_owned() }
    );
    ensure!(server_errors == 0 && transport.is_empty(), "{server_errors} 5xx answers, transport errors {transport:?}");
    ensure!(arrived, "some accepted texts never reached the simulator");
    drop(stack);
    drop(moto);
    Ok(())
}
