//! `cargo xtask up`: runs the system locally until Ctrl-C.

use std::net::SocketAddr;

use devstack::moto::MotoServer;
use devstack::runner::SenderConcurrency;
use devstack::stack::{Stack, StackOptions, TwilioAccount};
use shared::clock::Clock;

#[tokio::main]
pub async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,aws_config=warn".into()),
        )
        .init();
    let moto = MotoServer::start().await?;
    let options = StackOptions {
        prefix: "local".into(),
        time_scale: 1,
        http_addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
        account: TwilioAccount::Live,
        key_seed: Some("demo".into()),
        clock: Clock::system(),
        sender_concurrency: SenderConcurrency::AsDeployed,
        crashes: None,
        scheduler_ticks: true,
        shares: shared::rate_limit::Shares::default(),
        report_link_valid_for: shared::config::AlertSettings::default().report_link_valid_for,
        request_counter: None,
    };
    let stack = Stack::start(&moto.endpoint, options).await?;
    let key = &stack.demo.api_key;
    let url = &stack.base_url;
    println!(
        "\nclinic-sms is running.\n\n  API:            {url}\n  Admin API key:  {key}\n  Twilio sim:     {sim}\n  moto (AWS):     {moto}\n\n\
         Send a text:\n  curl -s -X POST {url}/v1/messages -H 'Authorization: Bearer {key}' \\\n    -H 'Content-Type: application/json' -d '{{\"to\": \"+14155550123\", \"body\": \"Hello from clinic-sms\"}}'\n\n\
         Show it (use the id printed above):\n  curl -s {url}/v1/messages/<id> -H 'Authorization: Bearer {key}'\n\nCtrl-C stops everything.",
        sim = stack.simulator.base_url(),
        moto = moto.endpoint,
    );
    tokio::signal::ctrl_c().await?;
    drop(stack);
    drop(moto);
    Ok(())
}
