//! The project's Python tools (moto server, cfn-lint, SAM CLI) in `./.venv`, installed from
//! `tools/requirements.txt` when missing or when the requirements changed.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The workspace root (this crate lives one level below it).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

pub fn venv_dir() -> PathBuf {
    project_root().join(".venv")
}

pub fn venv_bin(tool: &str) -> PathBuf {
    venv_dir().join("bin").join(tool)
}

/// Creates the venv and installs the pinned tools unless the same requirements are installed.
pub fn ensure_venv() -> anyhow::Result<()> {
    let root = project_root();
    let requirements = root.join("tools/requirements.txt");
    let wanted =
        std::fs::read_to_string(&requirements).with_context(|| format!("reading {}", requirements.display()))?;
    let stamp = venv_dir().join(".installed-requirements");
    if std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted) && venv_bin("moto_server").exists() {
        return Ok(());
    }
    if !venv_bin("python").exists() {
        eprintln!("creating {} ...", venv_dir().display());
        run(Command::new("python3").args(["-m", "venv"]).arg(venv_dir()))?;
    }
    eprintln!("installing the pinned tools from tools/requirements.txt (about a minute the first time) ...");
    run(Command::new(venv_bin("python"))
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&requirements))?;
    std::fs::write(&stamp, wanted).context("writing the venv's stamp")?;
    Ok(())
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = command.status().with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}
