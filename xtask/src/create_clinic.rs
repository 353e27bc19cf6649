//! `cargo xtask create-clinic`: the operator command that creates a clinic and its first admin
//! key, against the tables named by `CLINICS_TABLE` and `COUNTERS_TABLE` in whatever AWS account
//! the environment's credentials reach (or a moto server through `AWS_ENDPOINT_URL`).

use anyhow::{Context, bail};
use aws_config::BehaviorVersion;
use shared::clinics_table::ClinicsTable;
use shared::clock::Clock;
use shared::counters_table::CountersTable;
use shared::onboarding::{self, NewClinic};

const USAGE: &str = "usage: cargo xtask create-clinic --id <id> --name <name> --country <CC> --time-zone <IANA zone> \
                     --sender <E.164 number or MG sid> [--mps <segments per second>] [--credits <starting credits>]";

#[tokio::main]
pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let required = |flag: &str| value(flag).with_context(|| format!("{flag} is required\n{USAGE}"));
    let new = NewClinic {
        id: required("--id")?,
        name: required("--name")?,
        default_country: required("--country")?,
        time_zone: required("--time-zone")?,
        sender: required("--sender")?,
        mps: value("--mps").map(|v| v.parse()).transpose().context("--mps must be a number")?.unwrap_or(1),
        starting_credits: value("--credits")
            .map(|v| v.parse())
            .transpose()
            .context("--credits must be a number")?
            .unwrap_or(0),
    };
    let (Ok(clinics_table), Ok(counters_table)) = (std::env::var("CLINICS_TABLE"), std::env::var("COUNTERS_TABLE"))
    else {
        bail!("set CLINICS_TABLE and COUNTERS_TABLE to the stack's table names (see the stack outputs)");
    };
    let aws = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let done = onboarding::create_clinic(
        &ClinicsTable::new(dynamo.clone(), clinics_table),
        &CountersTable::new(dynamo, counters_table),
        new,
        Clock::system().now(),
        None,
    )
    .await?;
    println!("Created clinic {} ({}).", done.clinic.id, done.clinic.name);
    println!("Admin API key (shown once, store it now): {}", done.admin_key.full_key);
    Ok(())
}
