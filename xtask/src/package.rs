//! `cargo xtask package [--x86_64]`: `sam build` as a deployment runs it, then each function's
//! zip as Lambda receives it, with its size against the goal (8 MB per function).
//!
//! The build tools (cargo-lambda and zig, from PyPI) are installed into `./.venv` from
//! `tools/requirements-build.txt` on first use; the SAM CLI comes from `tools/requirements.txt`.
//! The template deploys arm64 (Graviton); `--x86_64` builds from a copy of it with
//! `Architectures: [x86_64]` for machines without the aarch64 Rust target; `sam deploy` deploys
//! the built template (`.aws-sam/build/template.yaml`), so that build deploys as x86_64.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use devstack::tools;

const USAGE: &str = "usage: cargo xtask package [--x86_64]\n  \
                     package    sam build (arm64, as deployed) and each function's zip size; --x86_64 where the \
                     aarch64-unknown-linux-gnu target cannot be installed";

const AARCH64_TARGET: &str = "aarch64-unknown-linux-gnu";
/// The goal per function's zip.
pub const ZIP_GOAL_BYTES: u64 = 8_000_000;
/// Lambda's limit for a zip uploaded directly (50 MB).
const LAMBDA_ZIP_LIMIT_BYTES: u64 = 50 * 1024 * 1024;
const ARM64_LINE: &str = "Architectures: [arm64]";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arch {
    Arm64,
    X86_64,
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let arch = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => Arch::Arm64,
        ["--x86_64"] => Arch::X86_64,
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2)
        }
    };
    let root = tools::project_root();
    tools::ensure_venv()?;
    ensure_build_tools()?;
    if arch == Arch::Arm64 {
        ensure_aarch64_target()?;
    }

    let mut sam = Command::new(tools::venv_bin("sam"));
    sam.arg("build");
    if arch == Arch::X86_64 {
        let template = x86_64_template(&root)?;
        // The copy lives in .aws-sam/, so CodeUri "." must still mean the project root.
        sam.arg("--template-file").arg(&template).arg("--base-dir").arg(&root);
    }
    let path = std::env::join_paths(
        std::iter::once(tools::venv_dir().join("bin"))
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .context("building PATH")?;
    sam.current_dir(&root)
        .env("PATH", path)
        .env("SAM_CLI_TELEMETRY", "0")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .stdin(Stdio::null());
    eprintln!("==> sam build ({}; a first build takes 20 to 30 minutes on 2 idle cores)", arch.name());
    let started = Instant::now();
    let status = sam.status().context("running sam build")?;
    ensure!(status.success(), "sam build failed ({status})");
    let build_time = started.elapsed();

    let build_dir = root.join(".aws-sam/build");
    let zips = root.join(".aws-sam/zips");
    std::fs::create_dir_all(&zips).with_context(|| format!("creating {}", zips.display()))?;
    let mut functions: Vec<(String, PathBuf)> = std::fs::read_dir(&build_dir)
        .with_context(|| format!("reading {}", build_dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| (entry.file_name().to_string_lossy().into_owned(), entry.path().join("bootstrap")))
        .filter(|(_, bootstrap)| bootstrap.is_file())
        .collect();
    functions.sort();
    ensure!(functions.len() == 5, "expected a bootstrap for each of the 5 functions in {}", build_dir.display());

    println!(
        "\nsam build ({}) took {:.0} s; each bootstrap zipped as `sam deploy` uploads it (deflate):\n",
        arch.name(),
        build_time.as_secs_f64()
    );
    println!("| function | bootstrap | zip | goal ≤ 8 MB |");
    println!("|---|---|---|---|");
    let mut all_within = true;
    for (function, bootstrap) in &functions {
        let machine = elf_machine(bootstrap)?;
        ensure!(
            machine == arch.elf_machine(),
            "{} is a {} binary, not {}",
            bootstrap.display(),
            machine,
            arch.elf_machine()
        );
        let size = std::fs::metadata(bootstrap)?.len();
        let zip = zip_like_sam(bootstrap, &zips.join(format!("{function}.zip")))?;
        ensure!(zip <= LAMBDA_ZIP_LIMIT_BYTES, "{function}'s zip is over Lambda's 50 MB limit");
        let within = zip <= ZIP_GOAL_BYTES;
        all_within &= within;
        println!("| {function} | {} | {} | {} |", mb(size), mb(zip), if within { "yes" } else { "NO" });
    }
    println!("\nevery bootstrap is an ELF 64-bit {} executable; zips in {}", arch.elf_machine(), zips.display());
    if !all_within {
        // A goal, not a limit: the build still deploys.
        println!("a function's zip is over the 8 MB goal (Lambda's limit is 50 MB)");
    }
    Ok(())
}

impl Arch {
    fn name(self) -> &'static str {
        match self {
            Arch::Arm64 => "arm64",
            Arch::X86_64 => "x86_64",
        }
    }

    fn elf_machine(self) -> &'static str {
        match self {
            Arch::Arm64 => "aarch64",
            Arch::X86_64 => "x86-64",
        }
    }
}

/// Installs cargo-lambda and zig into the venv unless the same pins are installed.
fn ensure_build_tools() -> anyhow::Result<()> {
    let requirements = tools::project_root().join("tools/requirements-build.txt");
    let wanted =
        std::fs::read_to_string(&requirements).with_context(|| format!("reading {}", requirements.display()))?;
    let stamp = tools::venv_dir().join(".installed-build-requirements");
    if std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted)
        && tools::venv_bin("cargo-lambda").exists()
    {
        return Ok(());
    }
    eprintln!(
        "installing the pinned build tools from tools/requirements-build.txt (cargo-lambda, zig; about 150 MB) ..."
    );
    let status = Command::new(tools::venv_bin("python"))
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&requirements)
        .status()
        .context("running pip")?;
    ensure!(status.success(), "installing the build tools failed ({status})");
    std::fs::write(&stamp, wanted).context("writing the build tools' stamp")?;
    Ok(())
}

/// The aarch64 standard library, which cargo-lambda links the arm64 bootstraps against.
fn ensure_aarch64_target() -> anyhow::Result<()> {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    if installed.as_ref().is_ok_and(|o| {
        o.status.success() && String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == AARCH64_TARGET)
    }) {
        return Ok(());
    }
    eprintln!("==> rustup target add {AARCH64_TARGET}");
    let added = Command::new("rustup").args(["target", "add", AARCH64_TARGET]).status();
    if added.is_ok_and(|s| s.success()) {
        return Ok(());
    }
    bail!(
        "the Rust target {AARCH64_TARGET} is not installed and `rustup target add {AARCH64_TARGET}` failed; \
         build for x86_64 instead with `cargo xtask package --x86_64`"
    )
}

/// A copy of the template with the x86_64 architecture, in `.aws-sam/`.
fn x86_64_template(root: &Path) -> anyhow::Result<PathBuf> {
    let text = std::fs::read_to_string(root.join("template.yaml")).context("reading template.yaml")?;
    ensure!(
        text.matches(ARM64_LINE).count() == 1,
        "template.yaml should set `{ARM64_LINE}` once, in Globals; change the architecture by hand"
    );
    let dir = root.join(".aws-sam");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("template-x86_64.yaml");
    std::fs::write(&path, text.replace(ARM64_LINE, "Architectures: [x86_64]"))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// `file`'s name for an ELF file's machine (x86-64, aarch64), read from its header.
pub fn elf_machine(path: &Path) -> anyhow::Result<&'static str> {
    let mut header = [0u8; 20];
    std::io::Read::read_exact(&mut std::fs::File::open(path)?, &mut header)
        .with_context(|| format!("reading {}", path.display()))?;
    ensure!(
        &header[..4] == b"\x7fELF" && header[4] == 2 && header[5] == 1,
        "{} is not a 64-bit little-endian ELF file",
        path.display()
    );
    Ok(match u16::from_le_bytes([header[18], header[19]]) {
        0x3e => "x86-64",
        0xb7 => "aarch64",
        _ => "unknown machine",
    })
}

/// Zips `bootstrap` (executable, deflate) the way the SAM CLI does before uploading it, with
/// Python's zipfile from the venv, and returns the zip's size in bytes.
pub fn zip_like_sam(bootstrap: &Path, zip: &Path) -> anyhow::Result<u64> {
    const SCRIPT: &str = "import sys, zipfile\n\
        src, dst = sys.argv[1], sys.argv[2]\n\
        info = zipfile.ZipInfo('bootstrap', (1980, 1, 1, 0, 0, 0))\n\
        info.external_attr = 0o100755 << 16\n\
        info.compress_type = zipfile.ZIP_DEFLATED\n\
        with zipfile.ZipFile(dst, 'w', zipfile.ZIP_DEFLATED) as z, open(src, 'rb') as f:\n\
        \x20   z.writestr(info, f.read())\n";
    let status = Command::new(tools::venv_bin("python"))
        .args(["-c", SCRIPT])
        .arg(bootstrap)
        .arg(zip)
        .status()
        .context("running python's zipfile")?;
    ensure!(status.success(), "zipping {} failed ({status})", bootstrap.display());
    Ok(std::fs::metadata(zip)?.len())
}

/// Megabytes (10^6 bytes), as Lambda's limits are written.
pub fn mb(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}
