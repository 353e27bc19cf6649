//! `cargo xtask bench reminders`: the cost of one scheduler tick, measured against a local moto
//! server (a benchmark, not a test; see docs/benchmarks.md for figures and what they mean).
//!
//! It seeds one clinic with `--businesses` businesses (New York, window 10:00–11:00, one day
//! ahead) and `--appointments` appointments for tomorrow spread evenly over them, sharing
//! `--contacts` contacts, straight through the stores. Then it runs `reminder_run::tick` at the
//! window's opening and counts every DynamoDB and SQS request the tick makes, by operation, with
//! an interceptor on the SDK clients; then a tick a minute later (nothing left to do) and one at
//! the window's close. Setup time is printed apart from the ticks.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use devstack::moto::MotoServer;
use devstack::request_count::{RequestCounter, Seen, total};
use devstack::stack::{DEMO_SENDER, LIVE_ACCOUNT_SID, LIVE_AUTH_TOKEN, local_aws};
use futures::{StreamExt, TryStreamExt, stream};
use shared::appointment_types::{AppointmentType, SmsTemplate};
use shared::appointments::{Appointment, AppointmentStatus};
use shared::businesses::Business;
use shared::clock::Clock;
use shared::config::{TableNames, TwilioSettings};
use shared::contacts::{Contact, ContactPhone, PhoneKind};
use shared::dynamo::{Item, s};
use shared::ids::ClinicId;
use shared::onboarding::{self, NewClinic};
use shared::phone::Country;
use shared::reminder_run::{self, TickReport};
use shared::reminder_window::{ReminderWindow, WindowState, local_day_bounds};
use shared::services::{Services, Timing};
use shared::templates::TemplateBody;

const USAGE: &str = "usage: cargo xtask bench reminders [--appointments N] [--businesses M] [--contacts C]\n  \
                     reminders  one scheduler tick over N appointments (default 10000) in M businesses (default 100), \
                     sharing C contacts (default 1000)";

/// Requests in flight at once while seeding (the tick itself runs as in production).
const SEED_CONCURRENCY: usize = 16;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    match args.first().map(String::as_str) {
        Some("reminders") => reminders(Options::parse(&args[1..])?),
        _ => {
            eprintln!(
                "{USAGE}\n  or: {}\n  or: {}\n  or: {}",
                crate::bench_sending::USAGE,
                crate::bench_cost::USAGE,
                crate::bench_load::USAGE
            );
            std::process::exit(2)
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    pub(crate) appointments: usize,
    pub(crate) businesses: usize,
    pub(crate) contacts: usize,
}

/// Where the seeded clinic is: its businesses' time zone and its Twilio number.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place<'a> {
    pub(crate) time_zone: &'a str,
    pub(crate) sender: &'a str,
}

const NEW_YORK: Place<'static> = Place { time_zone: "America/New_York", sender: DEMO_SENDER };

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let mut options = Self { appointments: 10_000, businesses: 100, contacts: 1_000 };
        let mut rest = args.iter();
        while let Some(flag) = rest.next() {
            let target = match flag.as_str() {
                "--appointments" => &mut options.appointments,
                "--businesses" => &mut options.businesses,
                "--contacts" => &mut options.contacts,
                other => bail!("unknown argument {other:?}\n{USAGE}"),
            };
            let value = rest.next().with_context(|| format!("{flag} needs a number\n{USAGE}"))?;
            *target =
                value.replace(['_', ','], "").parse().with_context(|| format!("{flag} {value:?} is not a number"))?;
        }
        ensure!(options.appointments > 0 && options.businesses > 0 && options.contacts > 0, "sizes must be positive");
        // More contacts than appointments would only slow the setup down.
        options.contacts = options.contacts.min(options.appointments);
        Ok(options)
    }
}

#[tokio::main]
async fn reminders(options: Options) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    let Options { appointments, businesses, contacts } = options;
    println!(
        "bench reminders: {appointments} appointments in {businesses} businesses, {contacts} contacts \
         (moto on 127.0.0.1; {} build)",
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );

    let started = Instant::now();
    let moto = MotoServer::start().await?;
    let aws = local_aws(&moto.endpoint).await;
    let prefix = format!("bench-{}-{}", std::process::id(), Utc::now().timestamp_millis());
    let resources = devstack::provision::provision(&aws, &prefix, 1).await?;
    let counter = RequestCounter::default();
    // Never called: the benchmark runs no sender.
    let twilio = TwilioSettings {
        api_base: "http://127.0.0.1:9".parse()?,
        account_sid: LIVE_ACCOUNT_SID.into(),
        auth_token: LIVE_AUTH_TOKEN.into(),
        previous_auth_token: None,
    };
    let settings = resources.settings(twilio, "http://127.0.0.1:3000".parse()?);

    // 10:00 in New York on 10 June 2026 (EDT): the window opens; reminders are for 11 June.
    let window = ReminderWindow::new(hm(10, 0)?, hm(11, 0)?, 1)?;
    let probe = business("probe", &ClinicId::new("x"), NEW_YORK, window, DateTime::<Utc>::MIN_UTC);
    let tz = probe.tz();
    let day = NaiveDate::from_ymd_opt(2026, 6, 10).context("a valid date")?;
    let tick_time = window.opening_on(tz, day);
    let WindowState::Open { opened_at, closes_at, target_date } = window.state_at(tz, tick_time) else {
        bail!("the window should be open at {tick_time}");
    };
    let clock = Clock::manual(tick_time - TimeDelta::hours(1));
    let inspect = aws_sdk_dynamodb::Client::new(&aws);
    let clients = devstack::request_count::counted_clients(&aws, &counter);
    let services = Services::from_clients(settings, clients, clock.clone(), Timing::default())?;
    let infra = started.elapsed();

    let seeding = Instant::now();
    let clinic_id = seed(&services, options, NEW_YORK, window, opened_at, target_date).await?;
    let seed_time = seeding.elapsed();
    let setup_requests = total(&counter.snapshot().counts).requests;
    println!(
        "setup: moto and resources {:.1} s; seeding {:.1} s ({setup_requests} requests, {SEED_CONCURRENCY} at a time) \
         — not part of the measurement",
        infra.as_secs_f64(),
        seed_time.as_secs_f64()
    );
    println!("clinic {clinic_id}; tick at {tick_time} (10:00 America/New_York), reminding about {target_date}\n");

    // 1. The window opens: every appointment is decided.
    let first = measured_tick(&services, &counter, tick_time).await?;
    ensure!(
        first.report.reminders == appointments
            && first.report.skipped == 0
            && first.report.errors == 0
            && first.report.open_windows == businesses,
        "expected {appointments} reminders, none skipped, no errors, {businesses} open windows; the tick reported {:?}",
        first.report
    );
    first.print("tick 1 — the window opens", appointments, "appointment");

    // 2. A minute later: nothing left to decide.
    let second = measured_tick(&services, &counter, tick_time + TimeDelta::minutes(1)).await?;
    ensure!(
        second.report.reminders == 0 && second.report.skipped == 0 && second.report.errors == 0,
        "tick 2 should find nothing to do: {:?}",
        second.report
    );
    second.print("tick 2 — one minute later, nothing left to do", businesses, "business");

    // 3. The window closes: each business is moved to tomorrow's opening, once.
    let third = measured_tick(&services, &counter, closes_at).await?;
    ensure!(
        third.report.open_windows == 0 && third.report.errors == 0,
        "the window should close cleanly: {:?}",
        third.report
    );
    third.print("tick 3 — the window closes (businesses leave the due index)", businesses, "business");

    print_item_sizes(&inspect, &resources.tables, &clinic_id).await?;
    drop(moto);
    Ok(())
}

fn hm(hour: u32, minute: u32) -> anyhow::Result<NaiveTime> {
    NaiveTime::from_hms_opt(hour, minute, 0).context("a valid time")
}

pub(crate) fn business(
    id: &str,
    clinic_id: &ClinicId,
    place: Place<'_>,
    window: ReminderWindow,
    next_window_opening: DateTime<Utc>,
) -> Business {
    Business {
        id: id.to_owned(),
        clinic_id: clinic_id.clone(),
        name: format!("Branch {id}"),
        time_zone: place.time_zone.into(),
        phone: Some("+12125550100".into()),
        reminders_enabled: true,
        window,
        send_mode_override: None,
        next_window_opening,
    }
}

/// One clinic, a template and a type using it, the businesses, contacts and appointments.
pub(crate) async fn seed(
    services: &Services,
    options: Options,
    place: Place<'_>,
    window: ReminderWindow,
    opened_at: DateTime<Utc>,
    target_date: NaiveDate,
) -> anyhow::Result<ClinicId> {
    let now = services.clock.now();
    let new = NewClinic {
        id: "bench".into(),
        name: "Benchmark Veterinary Group".into(),
        default_country: "US".into(),
        time_zone: place.time_zone.into(),
        sender: place.sender.into(),
        mps: 10,
        starting_credits: u64::try_from(options.appointments).unwrap_or(u64::MAX) * 2,
    };
    let clinic = onboarding::create_clinic(&services.clinics, &services.counters, new, now, None).await?.clinic;
    let clinic_id = clinic.id.clone();
    let body = TemplateBody::parse(
        "Hi {{client_first_name}}, {{patient_name}} has a {{appointment_type}} on {{appointment_date}} at \
         {{appointment_time}} at {{business_name}}. Reply C to confirm.",
    )
    .map_err(|e| anyhow::anyhow!("template: {e}"))?;
    let template = SmsTemplate { id: "reminder".into(), clinic_id: clinic_id.clone(), name: "Reminder".into(), body };
    services.clinics.put_record(&template).await?;
    let kind = AppointmentType {
        id: "check-up".into(),
        clinic_id: clinic_id.clone(),
        name: "Check-up".into(),
        reminder_template_id: Some(template.id.clone()),
    };
    services.clinics.put_record(&kind).await?;

    let tz = business("probe", &clinic_id, place, window, opened_at).tz();
    let branches: Vec<Business> =
        (0..options.businesses).map(|b| business(&format!("b{b:04}"), &clinic_id, place, window, opened_at)).collect();
    put_all(branches.iter(), |b| services.clinics.put_record(b)).await.context("seeding businesses")?;

    let us: Option<Country> = "US".parse().ok();
    let people: Vec<Contact> = (0..options.contacts)
        .map(|c| Contact {
            id: format!("c{c:06}"),
            clinic_id: clinic_id.clone(),
            first_name: format!("Client{c}"),
            last_name: "Bench".into(),
            phones: vec![ContactPhone::new(
                PhoneKind::Mobile,
                &format!("(415) {:03}-{:04}", 200 + c / 10_000, c % 10_000),
                us,
            )],
            reminder_preference: None,
            group_ids: vec![],
            created_at: now,
        })
        .collect();
    if let Some(bad) = people.iter().find(|c| c.phones.iter().any(|p| p.e164.is_none())) {
        bail!("contact {} has an unusable number: {:?}", bad.id, bad.phones);
    }
    put_all(people.iter(), |c| services.clinics.put_record(c)).await.context("seeding contacts")?;

    // Spread over tomorrow from 08:00 local, every 5 minutes, 100 slots.
    let (day_start, _) = local_day_bounds(tz, target_date);
    let appointments: Vec<Appointment> = (0..options.appointments)
        .map(|i| Appointment {
            id: format!("a{i:07}"),
            clinic_id: clinic_id.clone(),
            business_id: branches[i % branches.len()].id.clone(),
            contact_id: people[i % people.len()].id.clone(),
            type_id: kind.id.clone(),
            patient_names: vec!["Max".into()],
            start: day_start + TimeDelta::hours(8) + TimeDelta::minutes(5 * i64::try_from(i % 100).unwrap_or(0)),
            status: AppointmentStatus::Booked,
            decided_start: None,
            reminder_message_id: None,
            created_at: now,
            updated_at: now,
        })
        .collect();
    put_all(appointments.iter(), |a| services.appointments.put(a)).await.context("seeding appointments")?;
    Ok(clinic_id)
}

async fn put_all<'a, T: 'a, F, Fut>(items: impl Iterator<Item = &'a T>, put: F) -> anyhow::Result<()>
where
    F: Fn(&'a T) -> Fut,
    Fut: Future<Output = Result<(), shared::dynamo::StoreError>>,
{
    stream::iter(items).map(put).buffer_unordered(SEED_CONCURRENCY).try_collect::<Vec<()>>().await?;
    Ok(())
}

struct Measured {
    report: TickReport,
    elapsed: Duration,
    seen: Seen,
}

async fn measured_tick(services: &Services, counter: &RequestCounter, at: DateTime<Utc>) -> anyhow::Result<Measured> {
    services.clock.set(at);
    counter.reset();
    let started = Instant::now();
    let report = reminder_run::tick(services, at).await.with_context(|| format!("the tick at {at} failed"))?;
    let elapsed = started.elapsed();
    Ok(Measured { report, elapsed, seen: counter.snapshot() })
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Measured {
    /// Prints time and requests, per `unit` (appointment or business) of which there are `units`.
    fn print(&self, title: &str, units: usize, unit: &str) {
        let counts = &self.seen.counts;
        let timed = self.seen.overlapped == 0;
        let secs = self.elapsed.as_secs_f64();
        let all = total(counts);
        let per = |n: u64| n as f64 / units.max(1) as f64;
        println!("{title}");
        println!("  report          {:?}", self.report);
        println!("  wall time       {secs:.2} s");
        if self.report.reminders > 0 {
            println!("  appointments/s  {:.1}", self.report.reminders as f64 / secs);
        }
        println!(
            "  requests        {} ({:.3} per {unit}); {:.2} ms of wall time per request",
            all.requests,
            per(all.requests),
            secs * 1000.0 / all.requests.max(1) as f64
        );
        if timed {
            let waiting = all.round_trip.as_secs_f64();
            println!(
                "  of which        {waiting:.2} s ({:.0} %) waiting for responses (moto), {:.2} s in the client and the tick",
                100.0 * waiting / secs.max(f64::EPSILON),
                (secs - waiting).max(0.0)
            );
        } else {
            println!("  note: {} requests overlapped, so round trips are not timed", self.seen.overlapped);
        }
        if all.requests != all.operations {
            println!("  note: {} operations took {} requests (retries)", all.operations, all.requests);
        }
        println!(
            "  {:<9} {:<15} {:>9} {:>15} {:>15} {:>15}",
            "service",
            "operation",
            "requests",
            format!("per {unit}"),
            "avg body bytes",
            "avg round trip"
        );
        for ((service, operation), c) in counts {
            let n = c.requests.max(1) as f64;
            let round_trip = if timed { format!("{:.2} ms", millis(c.round_trip) / n) } else { "-".to_owned() };
            println!(
                "  {service:<9} {operation:<15} {:>9} {:>15.3} {:>15.0} {round_trip:>15}",
                c.requests,
                per(c.requests),
                c.body_bytes as f64 / n,
            );
        }
        println!();
    }
}

/// What the items the tick reads and writes weigh by DynamoDB's sizing rules (numbers roughly),
/// which decide the request units of each read (4 KB units) and write (1 KB units).
async fn print_item_sizes(
    dynamo: &aws_sdk_dynamodb::Client,
    tables: &TableNames,
    clinic: &ClinicId,
) -> anyhow::Result<()> {
    let message = dynamo
        .query()
        .table_name(&tables.messages)
        .index_name("gsi1")
        .key_condition_expression("gsi1pk = :clinic")
        .expression_attribute_values(":clinic", s(format!("CLINIC#{clinic}")))
        .limit(1)
        .send()
        .await?
        .items
        .unwrap_or_default();
    let message = shared::dynamo::items_behind(dynamo, &tables.messages, &message).await?.into_iter().next();
    let clinic_pk = format!("CLINIC#{clinic}");
    let samples = [
        ("message (put once per reminder)", message),
        (
            "appointment (updated once per reminder)",
            get(dynamo, &tables.appointments, "APPT#a0000000", "APPOINTMENT").await?,
        ),
        ("contact (read once per appointment)", get(dynamo, &tables.clinics, &clinic_pk, "CONTACT#c000000").await?),
        ("business (read by every tick while due)", get(dynamo, &tables.clinics, &clinic_pk, "BUSINESS#b0000").await?),
    ];
    println!("item sizes (DynamoDB's rules; numbers approximate)");
    for (what, item) in samples {
        match item {
            Some(item) => println!("  {what:<42} {:>6} B", item_size(&item)),
            None => println!("  {what:<42} not found (have the keys changed?)"),
        }
    }
    Ok(())
}

async fn get(dynamo: &aws_sdk_dynamodb::Client, table: &str, pk: &str, sk: &str) -> anyhow::Result<Option<Item>> {
    Ok(dynamo.get_item().table_name(table).key("pk", s(pk)).key("sk", s(sk)).send().await?.item)
}

pub(crate) fn item_size(item: &Item) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

/// Strings and binaries by length, numbers one byte per two significant digits plus one, lists
/// and maps 3 bytes plus one per element (and the keys of a map).
pub(crate) fn value_size(value: &AttributeValue) -> usize {
    let number = |n: &str| n.chars().filter(char::is_ascii_digit).count().div_ceil(2) + 1;
    match value {
        AttributeValue::S(text) => text.len(),
        AttributeValue::N(n) => number(n),
        AttributeValue::B(bytes) => bytes.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(list) => 3 + list.iter().map(|v| value_size(v) + 1).sum::<usize>(),
        AttributeValue::M(map) => 3 + map.iter().map(|(k, v)| k.len() + value_size(v) + 1).sum::<usize>(),
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| number(n)).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        _ => 0,
    }
}
