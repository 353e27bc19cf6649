//! Runs a Twilio simulator on 127.0.0.1 until Ctrl-C, for the local stack and curl.
//!
//! Environment (all optional):
//! - `TWILIO_SIM_PORT`: port on 127.0.0.1 (default 0, any free port; the URL is printed)
//! - `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`: the live account (default `AC` + 32 `a`, `sim-auth-token`)
//! - `TWILIO_SIM_NUMBERS`: the live account's senders, comma-separated (default `+15017122661`)
//! - `TWILIO_SIM_MESSAGING_SERVICE_SID`: a Messaging Service of the live account whose pool is those numbers
//! - `TWILIO_SIM_TEST_ACCOUNT_SID`, `TWILIO_SIM_TEST_AUTH_TOKEN`: also simulate test credentials
//! - `TWILIO_SIM_CALLBACK_DELAY_MS`: pause before each status callback (default 20)

use std::env;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context as _;
use tracing_subscriber::EnvFilter;
use twilio_sim::{Account, AccountKind, MessagingService, SimConfig, Simulator};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();

    let port = parsed_var("TWILIO_SIM_PORT", 0u16)?;
    let sim = Simulator::start_on(config_from_env()?, SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    println!("twilio-sim listening on {}", sim.base_url());
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    Ok(())
}

fn config_from_env() -> anyhow::Result<SimConfig> {
    let numbers: Vec<String> = var("TWILIO_SIM_NUMBERS")
        .unwrap_or_else(|| "+15017122661".into())
        .split(',')
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect();
    let messaging_services = var("TWILIO_SIM_MESSAGING_SERVICE_SID")
        .map(|sid| MessagingService { sid, numbers: numbers.clone() })
        .into_iter()
        .collect();
    let mut accounts = vec![Account {
        sid: var("TWILIO_ACCOUNT_SID").unwrap_or_else(|| format!("AC{}", "a".repeat(32))),
        auth_token: var("TWILIO_AUTH_TOKEN").unwrap_or_else(|| "sim-auth-token".into()),
        kind: AccountKind::Live,
        numbers,
        messaging_services,
    }];
    if let (Some(sid), Some(auth_token)) = (var("TWILIO_SIM_TEST_ACCOUNT_SID"), var("TWILIO_SIM_TEST_AUTH_TOKEN")) {
        accounts.push(Account {
            sid,
            auth_token,
            kind: AccountKind::Test,
            numbers: Vec::new(),
            messaging_services: Vec::new(),
        });
    }
    Ok(SimConfig {
        accounts,
        callback_delay: Duration::from_millis(parsed_var("TWILIO_SIM_CALLBACK_DELAY_MS", 20u64)?),
    })
}

fn var(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.is_empty())
}

fn parsed_var<T>(name: &str, default: T) -> anyhow::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    var(name).map_or(Ok(default), |v| v.parse().with_context(|| format!("{name}={v:?}")))
}
