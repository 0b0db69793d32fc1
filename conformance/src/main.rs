//! `conformance`: runs the PKCS#11 conformance suite against a module.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use conformance::runner::{self, Options, Profile};

/// Runs the PKCS#11 3.0 conformance suite (and the Key4C V3 profile) against a module.
///
/// The suite re-initialises the token it tests (C_InitToken with the SO PIN): it refuses a
/// token that has objects unless --allow-destroy is given. It counts every wrong PIN it sends
/// and never reaches the lockout limit outside the lockout cases, which run last.
#[derive(Parser, Debug)]
#[command(name = "conformance", version)]
struct Cli {
    /// The PKCS#11 module (.so) to test.
    #[arg(long, required_unless_present_any = ["list", "worker"])]
    module: Option<PathBuf>,
    /// The slot whose token is provisioned (default: an uninitialised token, or the only one).
    #[arg(long)]
    slot: Option<u64>,
    /// The token to provision, by label; also the label it is given (default "conformance").
    #[arg(long)]
    token_label: Option<String>,
    /// The SO PIN: sets a new token's SO PIN, or must be an existing token's SO PIN.
    #[arg(long, env = "CONFORMANCE_SO_PIN", hide_env_values = true, required_unless_present_any = ["list", "worker"])]
    so_pin: Option<String>,
    /// The User PIN the suite sets (with C_InitPIN) and logs in with.
    #[arg(long, env = "CONFORMANCE_USER_PIN", hide_env_values = true, required_unless_present_any = ["list", "worker"])]
    user_pin: Option<String>,
    /// Re-initialise the token even if it holds objects (they are destroyed).
    #[arg(long)]
    allow_destroy: bool,
    /// Run the SO-lockout cases even on a token the suite did not create (it may stay locked).
    #[arg(long)]
    allow_lockout: bool,
    /// Where report.md, junit.xml, results.json and worker logs go.
    #[arg(long, default_value = "conformance-report")]
    report_dir: PathBuf,
    /// The Key4C V3 profile: auto (when the token's model is "Key4C V3"), key4c, generic.
    #[arg(long, value_enum, default_value_t = ProfileArg::Auto)]
    profile: ProfileArg,
    /// Expected-deviation file (TOML): listed failures are expected, listed passes are news.
    #[arg(long)]
    expected: Option<PathBuf>,
    /// The module's lockout limit, if known (default: 5 with the Key4C profile, else 3).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pin_retry_limit: Option<u32>,
    /// Run only the cases whose id starts with this (repeatable).
    #[arg(long)]
    only: Vec<String>,
    /// Seconds a case may take before its worker is killed and the case failed.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    case_timeout: u64,
    /// A PIN-vectors file to use instead of the built-in copy of pin-vectors.tsv.
    #[arg(long)]
    pin_vectors: Option<PathBuf>,
    /// Print every case's outcome as it ends.
    #[arg(long, short)]
    verbose: bool,
    /// List the cases and exit.
    #[arg(long)]
    list: bool,
    /// (internal) run as a worker with this spec file.
    #[arg(long, hide = true)]
    worker: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ProfileArg {
    Auto,
    Key4c,
    Generic,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(spec) = &cli.worker {
        return ExitCode::from(conformance::worker::main(spec) as u8);
    }
    let opts = Options {
        module: cli.module.clone().unwrap_or_default(),
        slot: cli.slot,
        token_label: cli.token_label.clone(),
        so_pin: cli
            .so_pin
            .clone()
            .unwrap_or_else(|| "So-Pin.2024x".into())
            .into_bytes(),
        user_pin: cli
            .user_pin
            .clone()
            .unwrap_or_else(|| "Us3r#Pin.9k".into())
            .into_bytes(),
        allow_destroy: cli.allow_destroy,
        allow_lockout: cli.allow_lockout,
        report_dir: cli.report_dir.clone(),
        profile: match cli.profile {
            ProfileArg::Auto => Profile::Auto,
            ProfileArg::Key4c => Profile::Key4c,
            ProfileArg::Generic => Profile::Generic,
        },
        expected: cli.expected.clone(),
        pin_retry_limit: cli.pin_retry_limit,
        only: cli.only.clone(),
        case_timeout: Duration::from_secs(cli.case_timeout),
        pin_vectors: cli.pin_vectors.clone(),
        worker_exe: None,
        verbose: cli.verbose,
    };
    if cli.list {
        let cfg = match runner::base_config(&opts) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("conformance: {e}");
                return ExitCode::from(2);
            }
        };
        for c in conformance::cases::all(&cfg) {
            println!(
                "{}\t{:?}\t{}\t{}\t{}",
                c.id, c.chapter, c.section, c.title, c.expect
            );
        }
        return ExitCode::SUCCESS;
    }
    match runner::run(&opts) {
        Ok(report) => {
            print!("{}", report.summary());
            println!("  reports: {}", opts.report_dir.join("report.md").display());
            if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("conformance: {e}");
            ExitCode::from(2)
        }
    }
}
