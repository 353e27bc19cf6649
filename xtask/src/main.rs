//! The README's two commands.
//!
//! - `cargo xtask up`: the whole system on 127.0.0.1 (moto, the Twilio simulator, the API and
//!   webhooks on port 3000, the send lanes drained), with a demo clinic and its admin key.
//! - `cargo xtask check`: every check CI runs: formatting, clippy, the template linters, and all
//!   unit and integration tests against a local moto server.

mod check;
mod up;

fn main() -> anyhow::Result<()> {
    let command = std::env::args().nth(1).unwrap_or_default();
    match command.as_str() {
        "up" => up::run(),
        "check" => check::run(),
        _ => {
            eprintln!(
                "usage: cargo xtask <up|check>\n  up     run the whole system locally\n  check  run every check and test"
            );
            std::process::exit(2)
        }
    }
}
