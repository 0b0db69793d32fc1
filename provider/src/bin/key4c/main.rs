//! `key4c`: the admin command line of the Key4C V3 token emulator.
//!
//! The vendor's web console as commands: the service page (create, show, API key), the PINs,
//! the vendor-approved SO unlock, keys, and the audit log; plus the `demo` walk-through. Every
//! command works through the token API (`key4c_pkcs11::token::Token`), on the store the module
//! uses. The reference is `docs/cli.md`.

// CK_ULONG is 64 bits here and 32 on other targets; the casts between it and u64 are there on
// purpose.
#![allow(clippy::unnecessary_cast)]

mod audit;
mod context;
mod demo;
mod error;
mod keys;
mod mail;
mod manual;
mod pin;
mod pin_input;
mod progress;
mod service;
mod store;
mod unlock;
mod util;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use context::Ctx;
use error::Result;

#[derive(Parser)]
#[command(
    name = "key4c",
    version,
    about = "Key4C V3 HSM token emulator: admin tool (the vendor console as commands)",
    after_help = "PINs are never taken from the command line: give a file (--*-pin-file), an \
                  environment variable (KEY4C_SO_PIN, KEY4C_USER_PIN, KEY4C_NEW_SO_PIN) or type \
                  them at the prompt. Reference and worked example: docs/cli.md."
)]
pub(crate) struct Cli {
    /// The module's configuration file (the one libkey4c_pkcs11.so reads).
    #[arg(long, global = true, env = "KEY4C_CONF", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Store directory; default: KEY4C_STORE, then the configuration's `store`, then
    /// ~/.local/share/key4c/store. `demo` uses only this option (else a throw-away store).
    #[arg(long, global = true, value_name = "DIR")]
    store: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The service page: create the service and its token, show it, issue a new API key.
    #[command(subcommand)]
    Service(service::ServiceCommand),
    /// Change the SO PIN; set, reset or unlock the User PIN (both need the SO PIN).
    #[command(subcommand)]
    Pin(pin::PinCommand),
    /// Unlock a locked SO PIN: the holder's request, the vendor's approval or rejection.
    #[command(subcommand)]
    Unlock(unlock::UnlockCommand),
    /// The vendor's side: the key pair that decides SO unlock requests.
    #[command(subcommand)]
    Vendor(unlock::VendorCommand),
    /// Keys in the token (all need the User PIN): list, generate, delete, export.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Show the token's audit log of security events (oldest first).
    Audit(audit::AuditArgs),
    /// The store as files: accept a store deliberately restored from a copy.
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell).
    Completions(manual::CompletionsArgs),
    /// Write the man pages of key4c and its commands into a directory.
    Manpages(manual::ManpagesArgs),
    /// Walk through the token's life in a throw-away store: PIN policy, initialisation,
    /// login, lockout after 5 wrong PINs, and the SO's unlock.
    Demo,
}

fn main() -> ExitCode {
    // A bug must still end in one sentence, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown failure".into());
        eprintln!("key4c: internal error: {what}");
    }));
    let cli = Cli::parse();
    match std::panic::catch_unwind(move || run(cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("key4c: {e}");
            ExitCode::FAILURE
        }
        Err(_) => ExitCode::from(70),
    }
}

fn run(cli: Cli) -> Result<()> {
    let Cli {
        config,
        store,
        command,
    } = cli;
    let ctx = || Ctx::load(config.as_deref(), store.as_deref());
    match command {
        Command::Service(c) => service::run(&ctx()?, c),
        Command::Pin(c) => pin::run(&ctx()?, c),
        Command::Unlock(c) => unlock::run(&ctx()?, c),
        Command::Vendor(c) => unlock::run_vendor(c),
        Command::Keys(c) => keys::run(&ctx()?, c),
        Command::Audit(a) => audit::run(&ctx()?, a),
        Command::Store(c) => store::run(&ctx()?, c),
        Command::Completions(a) => manual::completions(a),
        Command::Manpages(a) => manual::manpages(a),
        Command::Demo => demo::run(store.clone()),
    }
}
