//! `cargo xtask check`: the checks CI runs, in order, stopping at the first failure.

use std::process::Command;

use anyhow::{Context, bail};
use devstack::moto::MotoServer;
use devstack::tools;

pub fn run() -> anyhow::Result<()> {
    let root = tools::project_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    step("cargo fmt --check", Command::new(&cargo).args(["fmt", "--all", "--check"]))?;
    step(
        "cargo clippy",
        Command::new(&cargo).args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]),
    )?;
    tools::ensure_venv()?;
    let template = root.join("template.yaml");
    step("cfn-lint template.yaml", Command::new(tools::venv_bin("cfn-lint")).arg(&template))?;
    for args in [&["validate", "--lint"][..], &["validate"][..]] {
        let mut sam = Command::new(tools::venv_bin("sam"));
        sam.args(args)
            .arg("--template-file")
            .arg(&template)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("SAM_CLI_TELEMETRY", "0")
            .current_dir(&root);
        step(&format!("sam {}", args.join(" ")), &mut sam)?;
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let moto = runtime.block_on(MotoServer::start())?;
    let mut tests = if has_nextest(&cargo) {
        let mut c = Command::new(&cargo);
        c.args(["nextest", "run", "--workspace", "--locked", "--no-fail-fast"]);
        c
    } else {
        let mut c = Command::new(&cargo);
        c.args(["test", "--workspace", "--locked", "--no-fail-fast"]);
        c
    };
    tests.env("CLINIC_SMS_MOTO_ENDPOINT", &moto.endpoint);
    let result = step("unit and integration tests", &mut tests);
    drop(moto);
    result
}

fn has_nextest(cargo: &str) -> bool {
    Command::new(cargo).args(["nextest", "--version"]).output().is_ok_and(|o| o.status.success())
}

fn step(name: &str, command: &mut Command) -> anyhow::Result<()> {
    eprintln!("==> {name}");
    let status = command.status().with_context(|| format!("running {name}"))?;
    if !status.success() {
        bail!("{name} failed ({status})");
    }
    Ok(())
}
