//! `cargo xtask bench cost`: what AWS charges for reminders, end to end, priced per 1,000 texts.
//!
//! `--reminders` appointments for tomorrow in a clinic whose reminder window is open now; one
//! scheduler tick decides them all and queues the texts; the sender drains the lanes as deployed;
//! the Twilio simulator posts each text's `sent` and `delivered` callbacks to the webhooks. Each
//! function's AWS clients count their requests, and the project's moto reckons each DynamoDB
//! request's read and write request units by DynamoDB's rules (`tools/moto_server.py`), so the
//! DynamoDB figure is units, not calls. Lambda, API Gateway and log volume are reckoned from the
//! invocations the run made and the durations stated below. List prices are in [`Prices`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, TimeDelta, Timelike, Utc};
use devstack::moto::MotoServer;
use devstack::request_count::{OpCount, RequestCounter, Seen, counted_clients, total};
use devstack::runner::SenderConcurrency;
use devstack::stack::{OTHER_SENDER, Stack, StackOptions};
use shared::ids::ConnectionId;
use shared::reminder_run::{self, TickReport};
use shared::reminder_window::{ReminderWindow, WindowState};
use shared::services::Services;
use shared::{mass_alert_closing, scheduled_texts, status_checks};

use crate::bench::{self, Place};
use crate::bench_sending::wait_for;

pub const USAGE: &str = "cargo xtask bench cost [--reminders 500] [--mps 100]\n  \
                         cost       reminders end to end (tick, sender, callbacks): AWS requests and request units, priced per 1,000 texts";

/// AWS list prices, us-east-1, November 2026, after free tiers.
struct Prices;

impl Prices {
    /// Lambda, arm64: per request and per GB-second.
    const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
    /// API Gateway HTTP API, per request (first 300 million a month).
    const HTTP_API_REQUEST: f64 = 1.00 / 1e6;
    /// DynamoDB on-demand, per write and per read request unit.
    const DYNAMO_WRITE_UNIT: f64 = 0.625 / 1e6;
    const DYNAMO_READ_UNIT: f64 = 0.125 / 1e6;
    /// SQS standard queues, per request (each 64 KB chunk of a payload).
    const SQS_REQUEST: f64 = 0.40 / 1e6;
    /// EventBridge custom events, per event published.
    const EVENT: f64 = 1.00 / 1e6;
    /// CloudWatch Logs, per GB ingested.
    const LOG_GB: f64 = 0.50;
    /// Twilio, an SMS segment to a US number, before carrier fees.
    const TWILIO_SEGMENT: f64 = 0.0083;
}

/// What the run cannot measure on this machine, stated rather than hidden.
struct Assumed;

impl Assumed {
    /// Every function's memory (template.yaml Globals).
    const MEMORY_GB: f64 = 0.25;
    /// Twilio's API answers a create in about 0.3 s; the simulator here in a millisecond.
    const TWILIO_LATENCY: Duration = Duration::from_millis(300);
    /// A DynamoDB or SQS request from Lambda in the same region. Durations here are moto's,
    /// which serialises every DynamoDB request and is many times slower than DynamoDB, so
    /// billed time is reckoned from the requests each function made, taken one after another
    /// (records of a batch run at once on AWS, so this overstates it).
    const AWS_ROUND_TRIP: Duration = Duration::from_millis(10);
    /// Lambda's own records per invocation: with `SystemLogLevel: WARN` (template.yaml) a
    /// successful invocation writes none; this allows for the odd one that does (a timeout, an
    /// init report) and for the JSON envelope of each of the functions' lines.
    const PLATFORM_LOG_BYTES_PER_INVOCATION: u64 = 300;
    /// Callbacks per text: Twilio posts `sent` and `delivered`.
    const CALLBACKS_PER_TEXT: usize = 2;
}

struct Options {
    reminders: usize,
    /// The connection's throughput. Below what a tick queues in a few seconds, most texts wait
    /// for their second: they reserve it, are hidden and are read again, which costs more.
    mps: u32,
}

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let mut options = Self { reminders: 500, mps: 100 };
        let mut rest = args.iter();
        while let Some(flag) = rest.next() {
            let value = rest.next().with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
            match flag.as_str() {
                "--reminders" => options.reminders = value.parse().with_context(|| format!("--reminders {value:?}"))?,
                "--mps" => options.mps = value.parse().with_context(|| format!("--mps {value:?}"))?,
                other => bail!("unknown argument {other:?}\n{USAGE}"),
            }
        }
        ensure!(options.reminders > 0, "--reminders must be positive");
        ensure!(options.mps > 0, "--mps must be positive");
        Ok(options)
    }
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    cost(Options::parse(args)?)
}

#[tokio::main]
async fn cost(options: Options) -> anyhow::Result<()> {
    // The functions' own log lines at the level they are deployed with (INFO), counted, not shown;
    // and the sender's waits for its slots, which Lambda bills.
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    let log_lines = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(|| LogBytes)
        .with_filter(EnvFilter::new("info,devstack=off,twilio_sim=off,aws_config=off"));
    let waits = Waits.with_filter(EnvFilter::new("off,shared::sending=debug"));
    tracing_subscriber::registry().with(log_lines).with(waits).init();
    let n = options.reminders;
    println!(
        "bench cost: {n} reminders end to end on a {} MPS connection (moto and the Twilio simulator on 127.0.0.1)\n",
        options.mps
    );
    let moto = MotoServer::start_metered().await?;

    // The API and the webhooks count here; the tick and the sender get counters of their own.
    let webhooks = RequestCounter::default();
    let mut stack_options =
        StackOptions::for_tests(format!("bench-cost-{}-{}", std::process::id(), Utc::now().timestamp_millis()));
    stack_options.time_scale = 1;
    stack_options.sender_concurrency = SenderConcurrency::PerLane(0);
    stack_options.request_counter = Some(webhooks.clone());
    let mut stack = Stack::start(&moto.endpoint, stack_options).await?;

    let now = Utc::now();
    let (zone, window) = window_open_at(now)?;
    let place = Place { time_zone: &zone, sender: OTHER_SENDER };
    let tz = bench::business("probe", &shared::ids::ClinicId::new("x"), place, window, now).tz();
    let WindowState::Open { opened_at, target_date, .. } = window.state_at(tz, now) else {
        bail!("the window {window:?} in {zone} should be open at {now}");
    };
    let sizes = bench::Options { appointments: n, businesses: n.div_ceil(100), contacts: n };
    let clinic_id = bench::seed(&stack.services, sizes, place, window, opened_at, target_date).await?;
    let main = ConnectionId::new("main");
    let mut connection = stack.services.clinics.connection(&clinic_id, &main).await?.context("the connection")?;
    connection.mps = options.mps;
    stack.services.clinics.put_connection(&connection).await?;

    // 1. The scheduler's tick decides every appointment and queues its text.
    let tick = RequestCounter::default();
    let tick_services = counted(&stack, &tick)?;
    LOGGED.store(0, Ordering::Relaxed);
    let started = Instant::now();
    let report = scheduler_tick(&tick_services, now).await?;
    let tick_time = started.elapsed();
    ensure!(report.reminders == n && report.errors == 0, "the tick should queue {n} reminders: {report:?}");

    // 2. The sender drains the scheduled lane; 3. the simulator calls back.
    let sender = RequestCounter::default();
    let sender_clients = counted_clients(&stack.aws, &sender);
    let event_source = aws_sdk_sqs::Client::new(&stack.aws);
    let sender_services = Services::from_clients(
        (*stack.services.settings).clone(),
        sender_clients,
        stack.services.clock.clone(),
        stack.services.timing,
    )?;
    webhooks.reset();
    let logged_by_tick = LOGGED.swap(0, Ordering::Relaxed);
    let draining = Instant::now();
    stack.drain_lanes(sender_services, event_source, SenderConcurrency::AsDeployed);
    // The scheduled lane has 70 % of the connection, and the drain's start and moto take time.
    let drain_limit = Duration::from_secs((600 + 2 * n as u64 / u64::from(options.mps)).max(600));
    ensure!(wait_for(&stack, n, drain_limit, |_| true).await, "not every reminder reached the simulator");
    ensure!(stack.simulator.callbacks_settled(Duration::from_secs(120)).await, "callbacks still pending");
    let drained = draining.elapsed();
    let (invocations, invoked_for) = stack.sender_invocations();
    let invocations = invocations.max(1);
    let sent = sender.snapshot();
    let called_back = webhooks.snapshot();
    let logged = logged_by_tick + LOGGED.load(Ordering::Relaxed);
    let segments: usize = stack.simulator.messages().iter().map(|m| segments_of(&m.body)).sum();

    println!("tick {:.1} s; drained and called back in {:.1} s\n", tick_time.as_secs_f64(), drained.as_secs_f64());
    let tick_seen = tick.snapshot();
    print_function("scheduler tick", &tick_seen, n);
    print_function("sender", &sent, n);
    print_function("twilio-webhooks (callbacks)", &called_back, n);
    print_message_item(&stack, &clinic_id).await?;

    let callbacks = n * Assumed::CALLBACKS_PER_TEXT;
    let lambda_invocations = 1 + invocations + callbacks;
    let requests_made = |seen: &Seen| u32::try_from(total(&seen.counts).requests).unwrap_or(u32::MAX);
    let tick_billed = Assumed::AWS_ROUND_TRIP * requests_made(&tick_seen);
    // Jobs of one invocation wait side by side, and the sum counts each: never more than the
    // invocations' own time on moto (which is more than they would take on AWS).
    let waited = Duration::from_millis(WAITED_MS.load(Ordering::Relaxed));
    let sender_billed = (Assumed::AWS_ROUND_TRIP * requests_made(&sent)
        + Assumed::TWILIO_LATENCY * u32::try_from(invocations).unwrap_or(u32::MAX)
        + waited)
        .min(invoked_for.max(Assumed::AWS_ROUND_TRIP * requests_made(&sent)));
    let callbacks_billed = Assumed::AWS_ROUND_TRIP * requests_made(&called_back);
    let gb_seconds = Assumed::MEMORY_GB * (tick_billed + sender_billed + callbacks_billed).as_secs_f64();
    let all = [&tick_seen, &sent, &called_back];
    let dynamo = |f: fn(&OpCount) -> f64| -> f64 {
        all.iter().flat_map(|seen| seen.counts.iter()).filter(|((s, _), _)| is_dynamo(s)).map(|(_, c)| f(c)).sum()
    };
    let requests_of = |service: &str| -> u64 {
        all.iter()
            .flat_map(|seen| seen.counts.iter())
            .filter(|((s, _), _)| s.eq_ignore_ascii_case(service))
            .map(|(_, c)| c.requests)
            .sum()
    };
    // The event source's own receive and delete: one receive per invocation's batch and one
    // delete per batch (Lambda's pollers; the idle long polls are a fixed cost, below).
    let sqs_requests = requests_of("sqs") as f64 + 2.0 * invocations as f64;
    let log_bytes = logged as f64 + lambda_invocations as f64 * Assumed::PLATFORM_LOG_BYTES_PER_INVOCATION as f64;
    let per_1000 = 1000.0 / n as f64;
    let lines = [
        (
            "Lambda requests",
            format!("{lambda_invocations} invocations (1 tick, {invocations} sender, {callbacks} callbacks)"),
            lambda_invocations as f64 * Prices::LAMBDA_REQUEST,
        ),
        (
            "Lambda duration",
            format!(
                "{gb_seconds:.2} GB-s: tick {:.1} s, sender {:.1} s (jobs waited {:.1} s for their slots), callbacks \
                 {:.1} s billed ({} ms a request, {} ms a Twilio call; here they ran {:.1} s, {:.1} s on moto)",
                tick_billed.as_secs_f64(),
                sender_billed.as_secs_f64(),
                waited.as_secs_f64(),
                callbacks_billed.as_secs_f64(),
                Assumed::AWS_ROUND_TRIP.as_millis(),
                Assumed::TWILIO_LATENCY.as_millis(),
                tick_time.as_secs_f64(),
                invoked_for.as_secs_f64(),
            ),
            gb_seconds * Prices::LAMBDA_GB_SECOND,
        ),
        ("API Gateway", format!("{callbacks} callback requests"), callbacks as f64 * Prices::HTTP_API_REQUEST),
        (
            "DynamoDB writes",
            format!("{:.0} write request units", dynamo(|c| c.write_units)),
            dynamo(|c| c.write_units) * Prices::DYNAMO_WRITE_UNIT,
        ),
        (
            "DynamoDB reads",
            format!("{:.1} read request units", dynamo(|c| c.read_units)),
            dynamo(|c| c.read_units) * Prices::DYNAMO_READ_UNIT,
        ),
        (
            "SQS",
            format!("{sqs_requests:.0} requests (with the event source's receive and delete)"),
            sqs_requests * Prices::SQS_REQUEST,
        ),
        (
            "EventBridge",
            format!("{} events", requests_of("eventbridge")),
            requests_of("eventbridge") as f64 * Prices::EVENT,
        ),
        ("S3", "none (reports are for mass alerts)".to_owned(), requests_of("s3") as f64 * 0.005 / 1000.0),
        (
            "CloudWatch Logs",
            format!(
                "{:.0} KB ingested: the functions' own lines ({:.0} B a text here) and {} B of Lambda's per invocation",
                log_bytes / 1000.0,
                logged as f64 / n as f64,
                Assumed::PLATFORM_LOG_BYTES_PER_INVOCATION
            ),
            log_bytes / 1e9 * Prices::LOG_GB,
        ),
    ];
    println!("per 1,000 texts (the run's figures × {per_1000:.2}):");
    let mut sum = 0.0;
    for (what, basis, dollars) in &lines {
        let scaled = dollars * per_1000;
        sum += scaled;
        println!("  {what:<16} ${scaled:>9.5}   {basis}");
    }
    println!("  {:<16} ${sum:>9.5}   goal ≤ $0.02", "AWS in all");
    let twilio = segments as f64 * Prices::TWILIO_SEGMENT * per_1000;
    println!(
        "  {:<16} ${twilio:>9.2}   {segments} segments at ${} (US, before carrier fees): AWS is {:.2} % of it\n",
        "Twilio",
        Prices::TWILIO_SEGMENT,
        100.0 * sum / twilio
    );
    // A tick a minute later, with nothing to do: what every minute costs.
    tick.reset();
    let idle_started = Instant::now();
    scheduler_tick(&tick_services, now + TimeDelta::minutes(1)).await?;
    print_fixed(idle_started.elapsed(), &tick.snapshot());
    drop(moto);
    Ok(())
}

/// Bytes the functions logged since the counter was last taken.
static LOGGED: AtomicU64 = AtomicU64::new(0);

/// Milliseconds sender jobs waited in place for their slots (`waited_ms` in `shared::sending`'s
/// debug events). Summed over jobs: where several jobs of one invocation wait at once, Lambda
/// bills only the longest, so this is more than is billed (hence the cap at the invocations'
/// own time).
static WAITED_MS: AtomicU64 = AtomicU64::new(0);

/// Adds up the `waited_ms` of the events it sees.
struct Waits;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Waits {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Waited;
        impl tracing::field::Visit for Waited {
            fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
                if field.name() == "waited_ms" {
                    WAITED_MS.fetch_add(value, Ordering::Relaxed);
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        event.record(&mut Waited);
    }
}

/// A log writer that only counts.
struct LogBytes;

impl std::io::Write for LogBytes {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        LOGGED.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A time zone where it is now between 10:00 and 11:00, and a reminder window there that
/// opened at the top of the hour and runs two hours.
fn window_open_at(now: DateTime<Utc>) -> anyhow::Result<(String, ReminderWindow)> {
    // Etc/GMT+h is UTC−h (POSIX signs): local hour = UTC hour − h.
    let h = i64::from(now.hour()) - 10;
    let h = if h > 12 {
        h - 24
    } else if h < -14 {
        h + 24
    } else {
        h
    };
    let zone = match h.signum() {
        0 => "Etc/GMT".to_owned(),
        1 => format!("Etc/GMT+{h}"),
        _ => format!("Etc/GMT{h}"),
    };
    let start = chrono::NaiveTime::from_hms_opt(10, 0, 0).context("10:00")?;
    let end = start + TimeDelta::hours(2);
    Ok((zone, ReminderWindow::new(start, end, 1)?))
}

/// Everything the scheduler function does in one tick (functions/scheduler).
async fn scheduler_tick(services: &Services, now: DateTime<Utc>) -> anyhow::Result<TickReport> {
    scheduled_texts::release_due(services, now).await?;
    let reminders = reminder_run::tick(services, now).await?;
    status_checks::run(services, now).await?;
    mass_alert_closing::close_due(services, now).await?;
    Ok(reminders)
}

/// A delivered reminder's item, attribute by attribute: its size sets every write's units.
async fn print_message_item(stack: &Stack, clinic: &shared::ids::ClinicId) -> anyhow::Result<()> {
    let dynamo = aws_sdk_dynamodb::Client::new(&stack.aws);
    let entries = dynamo
        .query()
        .table_name(&stack.resources.tables.messages)
        .index_name("gsi1")
        .key_condition_expression("gsi1pk = :clinic")
        .expression_attribute_values(":clinic", shared::dynamo::s(format!("CLINIC#{clinic}")))
        .limit(1)
        .send()
        .await?
        .items
        .unwrap_or_default();
    let item = shared::dynamo::items_behind(&dynamo, &stack.resources.tables.messages, &entries)
        .await?
        .into_iter()
        .next()
        .context("a message")?;
    let mut sizes: Vec<(usize, &String)> =
        item.iter().map(|(name, value)| (name.len() + bench::value_size(value), name)).collect();
    sizes.sort_by(|a, b| b.cmp(a));
    let listed: Vec<String> = sizes.iter().map(|(size, name)| format!("{name} {size}")).collect();
    println!("a delivered reminder's item: {} B ({})\n", bench::item_size(&item), listed.join(", "));
    Ok(())
}

/// Services for one function, on clients that count into `counter`.
fn counted(stack: &Stack, counter: &RequestCounter) -> anyhow::Result<Services> {
    let base = &stack.services;
    let mut services = Services::from_clients(
        (*base.settings).clone(),
        counted_clients(&stack.aws, counter),
        base.clock.clone(),
        base.timing,
    )?;
    services.shares = base.shares;
    Ok(services)
}

fn is_dynamo(service: &str) -> bool {
    service.eq_ignore_ascii_case("dynamodb")
}

fn segments_of(body: &str) -> usize {
    usize::try_from(shared::segments::analyse(body).segments).unwrap_or(usize::MAX)
}

fn print_function(name: &str, seen: &Seen, texts: usize) {
    let all = total(&seen.counts);
    let per = |v: f64| v / texts.max(1) as f64;
    println!(
        "{name}: {:.2} AWS requests per text; DynamoDB {:.2} write units, {:.2} read units per text",
        per(all.requests as f64),
        per(all.write_units),
        per(all.read_units)
    );
    for ((service, operation), c) in &seen.counts {
        println!(
            "    {service:<9} {operation:<22} {:>6.2} requests {:>6.2} WRU {:>6.2} RRU per text",
            per(c.requests as f64),
            per(c.write_units),
            per(c.read_units)
        );
    }
    println!();
}

/// What runs whether or not anything is sent: a month of idle ticks, and the event sources'
/// long polls.
fn print_fixed(idle_tick: Duration, seen: &Seen) {
    let ticks = 60.0 * 24.0 * 30.0;
    let all = total(&seen.counts);
    let billed = Assumed::AWS_ROUND_TRIP * u32::try_from(all.requests).unwrap_or(u32::MAX);
    let per_tick = Prices::LAMBDA_REQUEST
        + Assumed::MEMORY_GB * billed.as_secs_f64() * Prices::LAMBDA_GB_SECOND
        + all.write_units * Prices::DYNAMO_WRITE_UNIT
        + all.read_units * Prices::DYNAMO_READ_UNIT
        + Assumed::PLATFORM_LOG_BYTES_PER_INVOCATION as f64 / 1e9 * Prices::LOG_GB;
    // Lambda keeps about five pollers per SQS event source, each long-polling 20 s at a time.
    let polls = 4.0 * 5.0 * (30.0 * 24.0 * 3600.0 / 20.0);
    println!("fixed, a month, whatever is sent:");
    println!(
        "  {ticks:.0} scheduler ticks   ${:>6.2}   an idle tick: {} requests, {:.1} RRU, {:.1} WRU ({:.0} ms on moto)",
        ticks * per_tick,
        all.requests,
        all.read_units,
        all.write_units,
        idle_tick.as_secs_f64() * 1000.0
    );
    println!("  4 queues' pollers        ${:>6.2}   {polls:.0} long polls", polls * Prices::SQS_REQUEST);
}
