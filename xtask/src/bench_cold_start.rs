//! `cargo xtask bench cold-start`: each function's release binary started fresh, as Lambda starts
//! it, against a minimal Lambda Runtime API on 127.0.0.1 (a benchmark, not a test; figures in
//! docs/benchmarks.md).
//!
//! For each function, `--runs` times (20 by default): a new process with the environment Lambda
//! and `template.yaml` give it (the tables, queues, bus and bucket of a stack provisioned in a
//! local moto server, the Twilio simulator as Twilio), then
//! - init: process spawned → its first `GET /runtime/invocation/next` arrives (everything `main`
//!   does before the runtime loop: the tracing subscriber, the settings, the SDK clients);
//! - first invocation: that `/next` answered with the function's sample event (`events/`) → its
//!   `/response` or `/error` arrives (the first AWS and Twilio calls, on fresh connections);
//!
//! then the process is killed. Medians and p90s are printed with the published hello-world init
//! figures beside them, and each native binary's size and deflated zip size.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{TimeDelta, Utc};
use devstack::moto::MotoServer;
use devstack::stack::{DEMO_SENDER, LIVE_ACCOUNT_SID, local_aws};
use devstack::tools;
use shared::clock::Clock;
use shared::config::{Settings, TwilioSettings};
use shared::ids::{ClinicId, ConnectionId, MessageId};
use shared::message::{Lane, Message, MessageBody};
use shared::phone::E164;
use shared::services::{Services, Timing};
use tokio::process::Command;
use tokio::sync::mpsc;
use twilio_sim::{Account, AccountKind, SimConfig, Simulator};

use crate::package::{ZIP_GOAL_BYTES, mb, zip_like_sam};

const USAGE: &str = "usage: cargo xtask bench cold-start [--runs N]\n  \
                     cold-start  init and first invocation of each function's release binary against a local Lambda \
                     Runtime API, N fresh processes each (default 20)";

const FUNCTIONS: [&str; 5] = ["api", "twilio-webhooks", "sender", "scheduler", "mass-alert-fanout"];
/// The goal for init (process start → first `/next`).
const INIT_GOAL: Duration = Duration::from_millis(20);
/// The sample events' fixed values (events/README.md).
const SAMPLE_AUTH_TOKEN: &str = "sample-auth-token";
const SAMPLE_PUBLIC_BASE_URL: &str = "https://abc123.execute-api.us-east-1.amazonaws.com";
const SHOWN_ID: &str = "01JC3Z8R6X5Y7W2V9T4Q0N1B2C";
const QUEUED_ID: &str = "01JC3Z8R6X5Y7W2V9T4Q0N1B2D";
const SHOWN_SID: &str = "SM5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let runs = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => 20,
        ["--runs", n] => n.parse::<usize>().ok().filter(|n| *n > 0).with_context(|| format!("--runs {n:?}"))?,
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2)
        }
    };
    let binaries = build_release()?;
    tokio::runtime::Runtime::new()?.block_on(bench(&binaries, runs))
}

/// `cargo build --release` of the five functions, as `sam build` builds them but for this
/// machine; returns the directory holding the binaries.
fn build_release() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = std::process::Command::new(&cargo);
    build.args(["build", "--release", "--locked"]).current_dir(tools::project_root());
    for function in FUNCTIONS {
        build.args(["-p", function]);
    }
    eprintln!("==> cargo build --release -p {}", FUNCTIONS.join(" -p "));
    ensure!(build.status().context("running cargo build")?.success(), "cargo build --release failed");
    let metadata = std::process::Command::new(&cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(tools::project_root())
        .output()
        .context("running cargo metadata")?;
    ensure!(metadata.status.success(), "cargo metadata failed");
    let metadata: serde_json::Value = serde_json::from_slice(&metadata.stdout)?;
    let target = metadata["target_directory"].as_str().context("cargo metadata without target_directory")?;
    Ok(Path::new(target).join("release"))
}

/// What the runtime API saw of one invocation.
#[derive(Debug)]
enum Hit {
    /// The first `/next`: when it arrived and when the event went back.
    Next {
        arrived: Instant,
        answered: Instant,
    },
    Response {
        at: Instant,
        body: Bytes,
    },
    Error {
        at: Instant,
        body: Bytes,
    },
    InitError {
        body: Bytes,
    },
}

/// The invocation the runtime API hands out next, and where it reports.
struct Pending {
    event: Option<Bytes>,
    request_id: String,
    function_arn: String,
    hits: mpsc::UnboundedSender<Hit>,
}

type Shared = Arc<Mutex<Option<Pending>>>;

fn runtime_api(state: Shared) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(state)
}

async fn next(State(state): State<Shared>) -> Response {
    let arrived = Instant::now();
    let handed = state.lock().ok().and_then(|mut pending| {
        let pending = pending.as_mut()?;
        let event = pending.event.take()?;
        Some((event, pending.request_id.clone(), pending.function_arn.clone(), pending.hits.clone()))
    });
    let Some((event, request_id, arn, hits)) = handed else {
        // Lambda holds a `/next` until there is an event; the process is killed before that.
        return std::future::pending().await;
    };
    let deadline = Utc::now().timestamp_millis() + 30_000;
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", request_id),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        ("lambda-runtime-invoked-function-arn", arn),
        ("lambda-runtime-trace-id", "Root=1-67a1b2c3-0123456789abcdef01234567;Sampled=0".into()),
        ("content-type", "application/json".into()),
    ] {
        if let Ok(value) = value.parse() {
            headers.insert(name, value);
        }
    }
    let answer = (headers, event).into_response();
    let _ = hits.send(Hit::Next { arrived, answered: Instant::now() });
    answer
}

fn report(state: &Shared, hit: Hit) -> StatusCode {
    if let Some(pending) = state.lock().ok().as_ref().and_then(|p| p.as_ref()) {
        let _ = pending.hits.send(hit);
    }
    StatusCode::ACCEPTED
}

async fn response(State(state): State<Shared>, UrlPath(_id): UrlPath<String>, body: Bytes) -> StatusCode {
    report(&state, Hit::Response { at: Instant::now(), body })
}

async fn error(State(state): State<Shared>, UrlPath(_id): UrlPath<String>, body: Bytes) -> StatusCode {
    report(&state, Hit::Error { at: Instant::now(), body })
}

async fn init_error(State(state): State<Shared>, body: Bytes) -> StatusCode {
    report(&state, Hit::InitError { body })
}

/// One fresh process's figures.
struct Run {
    init: Duration,
    first_invocation: Duration,
    succeeded: bool,
    outcome: String,
}

async fn bench(release: &Path, runs: usize) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "error".into()))
        .init();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "bench cold-start: {runs} fresh processes per function, native release binaries on this machine \
         ({cores} cores), Runtime API and moto on 127.0.0.1\n"
    );

    let moto = MotoServer::start().await?;
    let aws = local_aws(&moto.endpoint).await;
    let prefix = format!("cold-{}-{}", std::process::id(), Utc::now().timestamp_millis());
    let resources = devstack::provision::provision(&aws, &prefix, 1).await?;
    let simulator = Simulator::start(SimConfig {
        accounts: vec![Account {
            sid: LIVE_ACCOUNT_SID.into(),
            auth_token: SAMPLE_AUTH_TOKEN.into(),
            kind: AccountKind::Live,
            numbers: vec![DEMO_SENDER.into()],
            messaging_services: vec![],
        }],
        callback_delay: Duration::from_millis(20),
    })
    .await?;

    let state: Shared = Arc::new(Mutex::new(None));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let runtime_addr = listener.local_addr()?;
    let server = tokio::spawn(axum::serve(listener, runtime_api(state.clone())).into_future());

    let twilio = TwilioSettings {
        api_base: simulator.base_url(),
        account_sid: LIVE_ACCOUNT_SID.into(),
        auth_token: SAMPLE_AUTH_TOKEN.into(),
        previous_auth_token: None,
    };
    let settings = resources.settings(twilio, SAMPLE_PUBLIC_BASE_URL.parse()?);
    let services = Services::new(settings.clone(), &aws, Clock::system(), Timing::default())?;
    let connection = seed(&services).await?;

    let mut common = lambda_environment(&settings, &moto.endpoint, runtime_addr);
    common.sort();
    let logs = release.join("cold-start");
    std::fs::create_dir_all(&logs)?;

    let mut rows = Vec::new();
    for function in FUNCTIONS {
        let binary = release.join(function);
        let mut environment = common.clone();
        environment.extend(function_environment(function, runtime_addr));
        let mut figures = Vec::with_capacity(runs);
        for _ in 0..runs {
            // Runs 250 ms apart: the sender's texts then stay under the demo connection's 10 MPS,
            // so no run waits for a rate-limit slot, and the last process is gone.
            tokio::time::sleep(Duration::from_millis(250)).await;
            let event = sample_event(function, &services, &connection).await?;
            let log = std::fs::File::create(logs.join(format!("{function}.log")))?;
            figures.push(
                one_run(&state, &binary, function, &environment, event, log)
                    .await
                    .with_context(|| format!("{function}: see {}", logs.join(format!("{function}.log")).display()))?,
            );
        }
        let size = std::fs::metadata(&binary)?.len();
        let zip = zip_like_sam(&binary, &logs.join(format!("{function}.zip")))?;
        rows.push((function, figures, size, zip));
    }
    server.abort();

    println!(
        "| function | init median | init p90 | init max | first invocation median | p90 | min | outcome | init ≤ 20 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (function, figures, _, _) in &rows {
        let init: Vec<Duration> = figures.iter().map(|r| r.init).collect();
        let first: Vec<Duration> = figures.iter().map(|r| r.first_invocation).collect();
        let succeeded = figures.iter().filter(|r| r.succeeded).count();
        let outcome = figures.last().map_or("", |r| r.outcome.as_str());
        println!(
            "| {function} | {} | {} | {} | {} | {} | {} | {succeeded}/{} responses: {outcome} | {} |",
            ms(median(&init)),
            ms(percentile(&init, 90)),
            ms(percentile(&init, 100)),
            ms(median(&first)),
            ms(percentile(&first, 90)),
            ms(percentile(&first, 0)),
            figures.len(),
            if median(&init) <= INIT_GOAL { "yes" } else { "NO" },
        );
    }
    println!(
        "\ninit does no network in any function (the first AWS and Twilio connections are made by the first \
         invocation); the sender's first invocation includes its pacing: a text that would reach Twilio late \
         in a wall-clock second waits for the next one (shared::sending), hence its spread."
    );
    println!(
        "\npublished hello-world init durations on real Lambda (maxday/lambda-perf): Rust 13.9 ms, \
         Python 3.13 81 ms, Node 24 117 ms.\nOurs are a local process on this machine: no Firecracker \
         microVM, no code download, no sandbox; compare with care.\n"
    );
    println!("| function | native (x86_64) binary | zip (deflate) | zip ≤ 8 MB |");
    println!("|---|---|---|---|");
    for (function, _, size, zip) in &rows {
        println!(
            "| {function} | {} | {} | {} |",
            mb(*size),
            mb(*zip),
            if *zip <= ZIP_GOAL_BYTES { "yes" } else { "NO" }
        );
    }
    println!("\nthe arm64 packages as deployed: `cargo xtask package`");
    drop(simulator);
    drop(moto);
    Ok(())
}

/// The demo clinic, the sample API key, and message `SHOWN_ID` as the sample events expect them
/// (as the test `events::every_sample_runs_through_its_handler` sets them up).
async fn seed(services: &Services) -> anyhow::Result<ConnectionId> {
    let now = services.clock.now();
    let demo =
        devstack::seed::clinic_with_connection(&services.clinics, &services.counters, "demo", DEMO_SENDER, None, now)
            .await?;
    devstack::seed::front_desk(&services.clinics, "demo", "sample", now).await?;
    let shown = message(SHOWN_ID, &demo.connection.id, "+14155550199", now)?
        .claim(now, TimeDelta::seconds(30))
        .and_then(|m| m.accepted(1, SHOWN_SID, "queued", now))
        .context("a submitted message")?;
    services.messages.insert(&shown).await?;
    Ok(demo.connection.id)
}

fn message(id: &str, connection: &ConnectionId, to: &str, now: chrono::DateTime<Utc>) -> anyhow::Result<Message> {
    let mut m = Message::new_outbound(
        ClinicId::new("demo"),
        E164::parse(to, None).context("a valid number")?,
        MessageBody::parse("Max's checkup is tomorrow at 9:00").context("a valid body")?,
        connection.clone(),
        Lane::Interactive,
        None,
        now,
    );
    m.id = id.parse::<MessageId>().context("a ULID")?;
    Ok(m)
}

/// The function's sample event. The sender's names a new queued message each time, so every
/// run sends a text (the sample's own message would be sent once, then skipped as sent).
async fn sample_event(function: &str, services: &Services, connection: &ConnectionId) -> anyhow::Result<Bytes> {
    let read = |name: &str| {
        let path = tools::project_root().join("events").join(name);
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    };
    let text = match function {
        "api" => read("api-get-message.json")?,
        "twilio-webhooks" => read("twilio-status-callback.json")?,
        "sender" => {
            let now = services.clock.now();
            let fresh = MessageId::generate(now);
            services.messages.insert(&message(&fresh.to_string(), connection, "+14155550198", now)?).await?;
            read("sender-send-job.json")?.replace(QUEUED_ID, &fresh.to_string())
        }
        "scheduler" => read("scheduler-tick.json")?,
        "mass-alert-fanout" => read("mass-alert-fanout.json")?,
        other => bail!("no sample event for {other}"),
    };
    Ok(Bytes::from(text))
}

/// What Lambda sets in every function's environment, and what `template.yaml`'s Globals set,
/// pointing at the local stack.
fn lambda_environment(settings: &Settings, moto: &str, runtime: std::net::SocketAddr) -> Vec<(String, String)> {
    let fixed = [
        ("AWS_LAMBDA_RUNTIME_API", runtime.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_rapid".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_SESSION_TOKEN", "test".into()),
        // Not set on Lambda: the SDK's clients go to moto instead of AWS.
        ("AWS_ENDPOINT_URL", moto.to_owned()),
        ("_HANDLER", "bootstrap".into()),
        ("LANG", "en_US.UTF-8".into()),
        ("TZ", ":UTC".into()),
        ("PATH", "/usr/local/bin:/usr/bin:/bin".into()),
        ("CLINICS_TABLE", settings.tables.clinics.clone()),
        ("MESSAGES_TABLE", settings.tables.messages.clone()),
        ("COUNTERS_TABLE", settings.tables.counters.clone()),
        ("APPOINTMENTS_TABLE", settings.tables.appointments.clone()),
        ("INTERACTIVE_QUEUE_URL", settings.queues.interactive.clone()),
        ("SCHEDULED_QUEUE_URL", settings.queues.scheduled.clone()),
        ("BULK_QUEUE_URL", settings.queues.bulk.clone()),
        ("EVENT_BUS_NAME", settings.event_bus.clone()),
        ("REPORTS_BUCKET", settings.reports_bucket.clone()),
        ("TWILIO_API_BASE", settings.twilio.api_base.as_str().trim_end_matches('/').to_owned()),
        ("TWILIO_ACCOUNT_SID", settings.twilio.account_sid.clone()),
        ("TWILIO_AUTH_TOKEN", settings.twilio.auth_token.clone()),
        // Outside a rotation the secret holds the same token twice (template.yaml).
        ("TWILIO_PREVIOUS_AUTH_TOKEN", settings.twilio.auth_token.clone()),
        ("REPORT_LINK_SECONDS", "300".into()),
        ("MASS_ALERT_CLOSE_AFTER_SECONDS", "3600".into()),
    ];
    fixed.into_iter().map(|(name, value)| (name.to_owned(), value)).collect()
}

/// The per-function part: its name, memory, log stream, and the public base URL (the sample
/// callback is signed for the sample's; the others must not send the simulator's callbacks out of
/// this machine, so they name the runtime API's address, which answers them 404).
fn function_environment(function: &str, runtime: std::net::SocketAddr) -> Vec<(String, String)> {
    let memory = if function == "mass-alert-fanout" { "512" } else { "256" };
    let public =
        if function == "twilio-webhooks" { SAMPLE_PUBLIC_BASE_URL.to_owned() } else { format!("http://{runtime}") };
    [
        ("AWS_LAMBDA_FUNCTION_NAME", format!("clinic-sms-{function}")),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory.into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/clinic-sms-{function}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/23/[$LATEST]0123456789abcdef0123456789abcdef".into()),
        ("PUBLIC_BASE_URL", public),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

async fn one_run(
    state: &Shared,
    binary: &Path,
    function: &str,
    environment: &[(String, String)],
    event: Bytes,
    log: std::fs::File,
) -> anyhow::Result<Run> {
    let (hits_tx, mut hits) = mpsc::unbounded_channel();
    let request_id = format!("{:08x}-cold-start", rand_id());
    *state.lock().map_err(|_| anyhow::anyhow!("runtime state poisoned"))? = Some(Pending {
        event: Some(event),
        request_id,
        function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:clinic-sms-{function}"),
        hits: hits_tx,
    });
    let stderr = log.try_clone()?;
    let spawned = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .envs(environment.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;

    let result = async {
        let (arrived, answered) = tokio::select! {
            hit = tokio::time::timeout(Duration::from_secs(10), hits.recv()) => match hit {
                Ok(Some(Hit::Next { arrived, answered })) => (arrived, answered),
                Ok(Some(Hit::InitError { body })) => bail!("init error: {}", String::from_utf8_lossy(&body)),
                Ok(other) => bail!("expected the first /next, got {other:?}"),
                Err(_) => bail!("no /next within 10 s"),
            },
            status = child.wait() => bail!("exited before its first /next ({:?})", status?),
        };
        let (at, succeeded, body) = match tokio::time::timeout(Duration::from_secs(30), hits.recv()).await {
            Ok(Some(Hit::Response { at, body })) => (at, true, body),
            Ok(Some(Hit::Error { at, body })) => (at, false, body),
            Ok(other) => bail!("expected a response, got {other:?}"),
            Err(_) => bail!("no response within 30 s"),
        };
        Ok(Run {
            init: arrived - spawned,
            first_invocation: at - answered,
            succeeded,
            outcome: outcome(succeeded, &body),
        })
    }
    .await;
    let _ = child.start_kill();
    let _ = child.wait().await;
    *state.lock().map_err(|_| anyhow::anyhow!("runtime state poisoned"))? = None;
    result
}

/// What the function answered, in a few words.
fn outcome(succeeded: bool, body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
    if !succeeded {
        return format!("error {}", value["errorType"].as_str().unwrap_or("?"));
    }
    if let Some(status) = value["statusCode"].as_u64() {
        format!("HTTP {status}")
    } else if let Some(failures) = value["batchItemFailures"].as_array() {
        format!("{} batch item failures", failures.len())
    } else if value.is_string() {
        "report".into()
    } else {
        "ok".into()
    }
}

fn rand_id() -> u32 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    nanos ^ std::process::id()
}

fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    match sorted.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    }
}

/// Nearest-rank percentile (0 = the smallest, 100 = the largest).
fn percentile(values: &[Duration], p: usize) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = (p * sorted.len()).div_ceil(100).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}
