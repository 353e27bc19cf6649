//! The README's two commands.
//!
//! - `cargo xtask up`: the whole system on 127.0.0.1 (moto, the Twilio simulator, the API and
//!   webhooks on port 3000, the send lanes drained), with a demo clinic and its admin key.
//! - `cargo xtask check`: every check CI runs: formatting, clippy, the template linters, and all
//!   unit and integration tests against a local moto server.
//! - `cargo xtask fuzz`: schemathesis against the local API's `/openapi.json`.

mod bench;
mod bench_cold_start;
mod bench_cost;
mod bench_load;
mod bench_mass_alerts;
mod bench_sending;
mod check;
mod create_clinic;
mod fuzz;
mod package;
mod up;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str).unwrap_or_default() {
        "up" => up::run(),
        "check" => check::run(),
        "create-clinic" => create_clinic::run(&args[1..]),
        "fuzz" => fuzz::run(&args[1..]),
        "package" => package::run(&args[1..]),
        "bench" if args.get(1).map(String::as_str) == Some("sending") => bench_sending::run(&args[2..]),
        "bench" if args.get(1).map(String::as_str) == Some("cost") => bench_cost::run(&args[2..]),
        "bench" if args.get(1).map(String::as_str) == Some("load") => bench_load::run(&args[2..]),
        "bench" if args.get(1).map(String::as_str) == Some("mass-alerts") => bench_mass_alerts::run(&args[2..]),
        "bench" if args.get(1).map(String::as_str) == Some("cold-start") => bench_cold_start::run(&args[2..]),
        "bench" => bench::run(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <up|check|fuzz|create-clinic|package|bench>\n  up             run the whole system locally\n  \
                 check          run every check and test\n  \
                 fuzz           schemathesis against the local API's /openapi.json\n  create-clinic  (operator) create a clinic and its first admin key\n  \
                 package        sam build and each function's zip size (`package --x86_64` without the aarch64 target)\n  \
                 bench          benchmarks against a local moto server: `bench reminders` (one scheduler tick), `bench sending` (throughput and priority), `bench mass-alerts` (fan-out and drain), `bench cold-start` (init and first invocation of each release binary), `bench cost` (AWS cost per 1,000 reminders), `bench load` (the API at a fixed rate)"
            );
            std::process::exit(2)
        }
    }
}
