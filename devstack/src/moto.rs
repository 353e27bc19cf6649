//! A moto server on 127.0.0.1, from the project's venv, stopped when dropped.

use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use crate::tools;

pub struct MotoServer {
    pub endpoint: String,
    _child: Child,
}

impl MotoServer {
    /// moto as `tools/moto_server.py` runs it: each DynamoDB request applied atomically, as
    /// DynamoDB does (plain moto lets two conditional writes of one item both pass), and without
    /// two costs plain moto has and AWS has not (whole-table copies per transaction, a queue
    /// count per received message).
    pub async fn start() -> anyhow::Result<Self> {
        Self::spawn(Self::command()?).await
    }

    /// As [`MotoServer::start`], and every DynamoDB answer also carries the request units the
    /// request would consume on AWS (header `x-clinic-sms-capacity`), for the cost benchmark.
    /// Not the default: reckoning them slows every request.
    pub async fn start_metered() -> anyhow::Result<Self> {
        let mut command = Self::command()?;
        command.env("CLINIC_SMS_MOTO_CAPACITY", "1");
        Self::spawn(command).await
    }

    fn command() -> anyhow::Result<Command> {
        tools::ensure_venv()?;
        let mut command = Command::new(tools::venv_bin("python"));
        command.arg(tools::project_root().join("tools/moto_server.py"));
        Ok(command)
    }

    async fn spawn(mut command: Command) -> anyhow::Result<Self> {
        let port = free_port()?;
        let child = command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting moto_server")?;
        let endpoint = format!("http://127.0.0.1:{port}");
        wait_until_up(&endpoint).await?;
        Ok(Self { endpoint, _child: child })
    }
}

/// Waits for moto's own API to answer (well under a second on this machine).
pub async fn wait_until_up(endpoint: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client.get(format!("{endpoint}/moto-api/")).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("moto server at {endpoint} did not start within 10 s")
}

pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}
