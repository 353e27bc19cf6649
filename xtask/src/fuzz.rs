//! `cargo xtask fuzz`: schemathesis against the API's own description. Starts the system as
//! `cargo xtask up` does (its own moto, simulator and runner, on a free port), then runs every
//! operation of `/openapi.json` with generated valid and invalid inputs and the demo clinic's
//! admin key, and fails on any 5xx or any answer the description does not allow.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use devstack::moto::MotoServer;
use devstack::runner::SenderConcurrency;
use devstack::stack::{Stack, StackOptions, TwilioAccount};
use devstack::tools;

const USAGE: &str = "usage: cargo xtask fuzz [--examples <per operation, default 25>] [--seed <n, default 1>] \
                     [--port <n, default a free one>] [-- <more schemathesis run options>]";

/// What schemathesis checks. `positive_data_acceptance` is left out: the description gives
/// field types, not every business rule (a `to` is a string there, an E.164 number here), so a
/// schema-valid body is still rightly refused with a 422 naming the field. The stateful checks
/// (`use_after_free`, `ensure_resource_availability`) need links the description does not have.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance,negative_data_rejection,\
                      missing_required_header,unsupported_method,ignored_auth";

struct Options {
    examples: u32,
    seed: u64,
    port: u16,
    extra: Vec<String>,
}

fn options(args: &[String]) -> anyhow::Result<Options> {
    let (ours, extra) = match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], args[i + 1..].to_vec()),
        None => (args, Vec::new()),
    };
    let mut options = Options { examples: 25, seed: 1, port: 0, extra };
    let mut rest = ours.iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().with_context(|| format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--examples" => options.examples = value?.parse().context("--examples must be a number")?,
            "--seed" => options.seed = value?.parse().context("--seed must be a number")?,
            "--port" => options.port = value?.parse().context("--port must be a number")?,
            _ => bail!("unknown option {flag}\n{USAGE}"),
        }
    }
    if options.examples == 0 {
        bail!("--examples must be at least 1");
    }
    Ok(options)
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let options = options(args)?;
    tools::FUZZ.ensure()?;
    fuzz(options)
}

#[tokio::main]
async fn fuzz(options: Options) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "error,aws_config=off".into()),
        )
        .init();
    let moto = MotoServer::start().await?;
    // As `cargo xtask up` runs it (timings as deployed, the demo key), minus the scheduler's
    // ticks, which nothing here waits for.
    let stack_options = StackOptions {
        time_scale: 1,
        http_addr: SocketAddr::from(([127, 0, 0, 1], options.port)),
        account: TwilioAccount::Live,
        key_seed: Some("demo".into()),
        sender_concurrency: SenderConcurrency::AsDeployed,
        ..StackOptions::for_tests("fuzz")
    };
    let stack = Stack::start(&moto.endpoint, stack_options).await?;
    let schema = format!("{}/openapi.json", stack.base_url);
    eprintln!("fuzzing {schema} with the demo clinic's admin key ...");
    let status = tokio::process::Command::new(tools::FUZZ.bin("schemathesis"))
        .arg("run")
        .arg(&schema)
        .args(["--header", &format!("Authorization: Bearer {}", stack.demo.api_key)])
        .args(["--checks", CHECKS])
        .args(["--max-examples", &options.examples.to_string()])
        .args(["--seed", &options.seed.to_string()])
        // Nothing kept between runs: a run is reproduced by its seed, not by a local database.
        .args(["--generation-database", "none"])
        // The runner drains the send lanes on the same two cores; one worker keeps answers in order.
        .args(["--workers", "1"])
        .arg("--continue-on-failure")
        .args(&options.extra)
        .status()
        .await
        .context("running schemathesis")?;
    drop(stack);
    drop(moto);
    if !status.success() {
        bail!("schemathesis found failures ({status}); rerun with the same --seed to reproduce them");
    }
    Ok(())
}
