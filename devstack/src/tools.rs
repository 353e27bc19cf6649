//! The project's Python tools (moto server, cfn-lint, SAM CLI) in `./.venv`, installed from
//! `tools/requirements.txt` when missing or when the requirements changed. `cargo xtask fuzz`
//! keeps schemathesis apart in `./.venv-fuzz` (`tools/requirements-fuzz.txt`), so what CI
//! installs does not grow with a tool only the fuzz run needs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The workspace root (this crate lives one level below it).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

/// A virtualenv of pinned tools: its directory under the root and its requirements file.
#[derive(Debug, Clone, Copy)]
pub struct Venv {
    pub dir: &'static str,
    pub requirements: &'static str,
    /// A tool the requirements install, whose absence means the venv is incomplete.
    pub probe: &'static str,
}

/// moto server, cfn-lint and the SAM CLI: what the stack, the tests and CI use.
pub const TOOLS: Venv = Venv { dir: ".venv", requirements: "tools/requirements.txt", probe: "moto_server" };
/// schemathesis, for `cargo xtask fuzz` only.
pub const FUZZ: Venv = Venv { dir: ".venv-fuzz", requirements: "tools/requirements-fuzz.txt", probe: "schemathesis" };

impl Venv {
    pub fn path(&self) -> PathBuf {
        project_root().join(self.dir)
    }

    pub fn bin(&self, tool: &str) -> PathBuf {
        self.path().join("bin").join(tool)
    }

    /// Creates the venv and installs the pinned tools unless the same requirements are installed.
    pub fn ensure(&self) -> anyhow::Result<()> {
        let requirements = project_root().join(self.requirements);
        let wanted =
            std::fs::read_to_string(&requirements).with_context(|| format!("reading {}", requirements.display()))?;
        let stamp = self.path().join(".installed-requirements");
        if std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted) && self.bin(self.probe).exists() {
            return Ok(());
        }
        if !self.bin("python").exists() {
            eprintln!("creating {} ...", self.path().display());
            run(Command::new("python3").args(["-m", "venv"]).arg(self.path()))?;
        }
        eprintln!("installing the pinned tools from {} (about a minute the first time) ...", self.requirements);
        run(Command::new(self.bin("python"))
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements))?;
        std::fs::write(&stamp, wanted).context("writing the venv's stamp")?;
        Ok(())
    }
}

pub fn venv_dir() -> PathBuf {
    TOOLS.path()
}

pub fn venv_bin(tool: &str) -> PathBuf {
    TOOLS.bin(tool)
}

/// Creates `./.venv` and installs the pinned tools unless the same requirements are installed.
pub fn ensure_venv() -> anyhow::Result<()> {
    TOOLS.ensure()
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = command.status().with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}
