//! `cargo xtask bench mass-alerts`: mass alerts against a local moto server and the Twilio
//! simulator. A benchmark, not a test; docs/benchmarks.md has the figures and what they mean.
//!
//! 1. **Fan-out**: `--recipients` clients (default 10,000), each with an appointment in the
//!    range; one alert fanned out by `mass_alert_fanout::fan_out` on clients that count their
//!    requests. Reports the time to read who the alert reaches (what preview and confirm do), the
//!    fan-out's time, its AWS requests per recipient by operation, and the process's peak memory.
//! 2. **Drain**: `--drain` clients (default 100) on a 1-MPS connection, the alert confirmed
//!    through the API (event, rule, queue, fan-out, bulk lane, as deployed). Reports when the
//!    last text reached the simulator, beside seed 004's pace ("100 ≈ 20 minutes"), and the
//!    latency of conversation texts sent while it drains.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::{TimeDelta, Utc};
use devstack::request_count::RequestCounter;
use devstack::stack::Stack;
use futures::{StreamExt, TryStreamExt, stream};
use shared::appointments::{Appointment, AppointmentStatus};
use shared::contacts::{Contact, ContactPhone, PhoneKind};
use shared::ids::{ClinicId, UserId};
use shared::mass_alert::{AlertRange, MassAlert};
use shared::mass_alert_fanout::{self, MassAlertConfirmed};
use shared::message::MessageBody;

use crate::bench_sending::{
    arrivals, counted, latencies_ms, param, per_second, percentile, post_conversation_text, print_requests, stack,
    wait_for,
};

pub const USAGE: &str = "cargo xtask bench mass-alerts [--recipients 10000] [--drain 100]";

/// Records written at once while seeding.
const SEED_CONCURRENCY: usize = 16;
const ALERT_TEXT: &str = "The clinic is closed tomorrow because of the storm; we will call to rebook.";

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let (mut recipients, mut drain) = (10_000usize, 100usize);
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--recipients" => recipients = value.parse().with_context(|| format!("--recipients {value:?}"))?,
            "--drain" => drain = value.parse().with_context(|| format!("--drain {value:?}"))?,
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    bench(recipients, drain)
}

#[tokio::main]
async fn bench(recipients: usize, drain: usize) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "error".into()))
        .init();
    let moto = devstack::moto::MotoServer::start().await?;
    println!("moto at {}\n", moto.endpoint);
    if recipients > 0 {
        fan_out(&moto.endpoint, recipients).await?;
    }
    if drain > 0 {
        drain_at_one_mps(&moto.endpoint, drain).await?;
    }
    Ok(())
}

/// `count` clients with a mobile number each (`+1415<first + i>`) and one booked appointment
/// five hours ahead.
async fn seed_clients(stack: &Stack, count: usize, first: usize) -> anyhow::Result<()> {
    let services = &stack.services;
    let now = Utc::now();
    stream::iter(0..count)
        .map(|i| async move {
            let id = format!("client{i:05}");
            let contact = Contact {
                id: id.clone(),
                clinic_id: ClinicId::new("demo"),
                first_name: format!("Client{i}"),
                last_name: "Bench".into(),
                phones: vec![ContactPhone::new(PhoneKind::Mobile, &format!("+1415{:07}", first + i), None)],
                reminder_preference: None,
                group_ids: vec![],
                created_at: now,
            };
            services.clinics.put_record(&contact).await?;
            let appointment = Appointment {
                id: format!("appt{i:05}"),
                clinic_id: ClinicId::new("demo"),
                business_id: "main".into(),
                contact_id: id,
                type_id: "checkup".into(),
                patient_names: vec!["Rex".into()],
                start: now + TimeDelta::hours(5),
                status: AppointmentStatus::Booked,
                decided_start: None,
                reminder_message_id: None,
                created_at: now,
                updated_at: now,
            };
            services.appointments.put(&appointment).await?;
            anyhow::Ok(())
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// The process's peak resident memory (Linux `VmHWM`), in MiB.
fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

async fn fan_out(endpoint: &str, recipients: usize) -> anyhow::Result<()> {
    println!("fan-out of {recipients} recipients");
    let stack = stack(endpoint, "fanout", 10).await?;
    let seeding = Instant::now();
    seed_clients(&stack, recipients, 5_600_000).await?;
    println!("  seeded in       {:.1} s", seeding.elapsed().as_secs_f64());
    let memory_before = peak_memory_mib();

    let counter = RequestCounter::default();
    let (services, _) = counted(&stack, &counter)?;
    let now = Utc::now();
    let range = AlertRange::new(now, now + TimeDelta::days(1), now)?;
    let clinic = services.clinics.clinic(&ClinicId::new("demo")).await?.context("the demo clinic")?;
    let selecting = Instant::now();
    let selection = mass_alert_fanout::select_recipients(&services, &clinic, &range, now).await?;
    let selected_in = selecting.elapsed();
    ensure!(selection.texts() == recipients, "selected {} of {recipients}", selection.texts());
    counter.reset();

    let alert = MassAlert::new(
        ClinicId::new("demo"),
        stack.demo.connection.id.clone(),
        range,
        MessageBody::parse(ALERT_TEXT)?,
        UserId::new("admin"),
        now,
    );
    // Stored without its event: only this benchmark fans it out, on counted clients.
    services.mass_alerts.create(&alert).await?;
    let event = MassAlertConfirmed { clinic_id: alert.clinic_id.clone(), alert_id: alert.id.clone() };
    let started = Instant::now();
    let summary = mass_alert_fanout::fan_out(&services, &event).await?;
    let took = started.elapsed();
    let seen = counter.snapshot();
    ensure!(summary.stored == recipients, "stored {} of {recipients}", summary.stored);
    let counts = services.mass_alerts.counts(&alert.id).await?;
    ensure!(counts.tally.recipients == recipients as u64, "counted {} recipients", counts.tally.recipients);

    println!(
        "  who it reaches  {:.1} s (appointments, contacts and opt-outs: what preview and confirm read)",
        selected_in.as_secs_f64()
    );
    println!(
        "  fan-out         {:.1} s for {recipients} recipients ({:.2} ms each)",
        took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / recipients as f64
    );
    print_requests(&seen, recipients);
    if let (Some(before), Some(after)) = (memory_before, peak_memory_mib()) {
        println!(
            "  peak memory     {after:.0} MiB for the whole process ({before:.0} MiB before the fan-out; moto apart)"
        );
    }
    println!();
    Ok(())
}

async fn drain_at_one_mps(endpoint: &str, count: usize) -> anyhow::Result<()> {
    println!(
        "drain: {count} recipients on a 1-MPS connection (bulk share at most 0.5/s), a conversation text every 10 s"
    );
    let mut stack = stack(endpoint, "drain", 1).await?;
    let services = stack.services.clone();
    let mut clinic = services.clinics.clinic(&ClinicId::new("demo")).await?.context("the demo clinic")?;
    clinic.two_way_texting = true;
    services.clinics.put_clinic(&clinic).await?;
    seed_clients(&stack, count, 5_610_000).await?;
    for i in 0..count {
        stack.simulator.lose_callbacks_to(&format!("+1415{:07}", 5_610_000 + i));
    }
    let counter = RequestCounter::default();
    let (counted_services, sqs) = counted(&stack, &counter)?;
    stack.drain_lanes(counted_services, sqs, devstack::runner::SenderConcurrency::AsDeployed);

    let http = reqwest::Client::new();
    let now = Utc::now();
    let alert = serde_json::json!({
        "from": now.to_rfc3339(), "to": (now + TimeDelta::days(1)).to_rfc3339(), "body": ALERT_TEXT, "confirm": true
    });
    let started = Instant::now();
    let confirmed = http
        .post(format!("{}/v1/mass-alerts", stack.base_url))
        .bearer_auth(&stack.demo.api_key)
        .json(&alert)
        .send()
        .await?;
    ensure!(confirmed.status().as_u16() == 202, "POST /v1/mass-alerts answered {}", confirmed.status());
    let is_alert = |p: &[(String, String)]| param(p, "Body") == Some(ALERT_TEXT);

    let mut posted = Vec::new();
    let mut i = 0;
    while arrivals(&stack, is_alert).len() < count && started.elapsed() < Duration::from_secs(1800) {
        let to = format!("+1415558{i:04}");
        stack.simulator.lose_callbacks_to(&to);
        let sent_at = post_conversation_text(&http, &stack, &to).await?;
        posted.push((to, sent_at));
        i += 1;
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    ensure!(wait_for(&stack, count, Duration::from_secs(60), is_alert).await, "the alert did not drain");
    let alert_arrivals = arrivals(&stack, is_alert);
    let first = alert_arrivals.iter().min().copied().context("no alert text arrived")?;
    let last = alert_arrivals.iter().max().copied().context("no alert text arrived")?;
    let drained = started.elapsed();
    let seen = counter.snapshot();

    let latencies = latencies_ms(&stack, &posted);
    let busiest = per_second(&alert_arrivals).values().copied().max().unwrap_or(0);
    let seed_pace = count as f64 / 100.0 * 20.0;
    println!(
        "  drained         {:.1} min from confirming to the last text ({:.1} min first to last); seed 004: about {seed_pace:.0} min",
        drained.as_secs_f64() / 60.0,
        (last - first).num_milliseconds() as f64 / 60_000.0
    );
    println!(
        "  pace            {:.2} texts/s; busiest second {busiest} alert texts",
        count as f64 / ((last - first).num_milliseconds().max(1) as f64 / 1000.0)
    );
    println!(
        "  conversation    {} texts during the drain: p50 {:.0} ms, max {:.0} ms from POST to the simulator",
        latencies.len(),
        percentile(&latencies, 50.0),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    print_requests(&seen, count + latencies.len());
    println!();
    Ok(())
}
