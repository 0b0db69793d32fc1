//! `harness`: drives any PKCS#11 module through cryptoki.
//!
//! - `bench`: throughput and latency per mechanism, key generation, login, search, threads and
//!   cold start, for several modules side by side (terminal table, JSON, SVG); with
//!   `--processes`, many worker processes on one token instead.
//! - `compare`: one scenario against every module, and a table of where they differ.
//! - `jwt`: compact JWS tokens signed and verified by a token, and the JWKS of its keys.
#![deny(unsafe_code)]

mod bench;
mod ckr;
mod compare;
mod jwt;
mod keys;
mod module;
mod processes;
mod raw;
mod report;
mod status;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Drives PKCS#11 modules: benchmarks, behaviour comparison, JWT signing.
#[derive(Debug, Parser)]
#[command(name = "harness", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Benchmark sign/verify, key generation, login, search, threads and cold start.
    Bench(bench::BenchArgs),
    /// Run one scenario against every module and show where they differ.
    Compare(compare::CompareArgs),
    /// Sign JWTs with keys in a token, verify them through it, export the JWKS.
    Jwt(jwt::JwtArgs),
    /// The child process of the cold start cases.
    #[command(hide = true)]
    ColdStart(bench::ColdStartArgs),
    /// A worker process of `bench --processes`.
    #[command(hide = true)]
    ProcessWorker(processes::WorkerArgs),
    /// The process that checks the token after the workers of `bench --processes`.
    #[command(hide = true)]
    ProcessCheck(processes::CheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Cmd::Bench(a) if !a.processes.is_empty() => processes::run(a),
        Cmd::Bench(a) => bench::run(a).map(|_| ()),
        Cmd::Compare(a) => compare::run(a).map(|_| ()),
        Cmd::Jwt(a) => jwt::run(a).map(|_| ()),
        Cmd::ColdStart(a) => bench::cold_start_child(a),
        Cmd::ProcessWorker(a) => processes::worker_child(a),
        Cmd::ProcessCheck(a) => processes::check_child(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("harness: {}", status::describe(&e));
            ExitCode::FAILURE
        }
    }
}
