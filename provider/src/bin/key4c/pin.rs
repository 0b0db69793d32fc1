//! `key4c pin`: change the SO PIN, set, reset or unlock the User PIN, and set the token's
//! retry limit. All need the SO PIN (the Key4C V3 has no self-service change of the User PIN).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use key4c_pkcs11::token::service::PinState;
use key4c_pkcs11::token::Error;

use crate::context::{login, Ctx, Role};
use crate::error::{CliError, Result};
use crate::pin_input::{self, NEW_SO_PIN, SO_PIN, USER_PIN};

/// `key4c pin ...`
#[derive(Subcommand)]
pub enum PinCommand {
    /// Change the SO PIN (C_SetPIN in an SO session): needs the current SO PIN.
    ChangeSo(ChangeSoArgs),
    /// Set, reset or unlock the User PIN (C_InitPIN as the SO): needs the SO PIN. A locked
    /// User PIN is unlocked by setting a new one.
    #[command(visible_aliases = ["reset-user", "unlock-user"])]
    SetUser(SetUserArgs),
    /// Set the token's PIN retry limit (consecutive wrong PINs that lock a role, 1..=15):
    /// needs the SO PIN. The token keeps its own limit; the configuration's `pin_retry_limit`
    /// only sets it when the token is created.
    RetryLimit(RetryLimitArgs),
}

/// Options of `pin retry-limit`.
#[derive(Args)]
pub struct RetryLimitArgs {
    /// The new limit, 1..=15.
    #[arg(value_name = "N", value_parser = clap::value_parser!(u32).range(1..=15))]
    limit: u32,
    /// File holding the SO PIN (else KEY4C_SO_PIN, else a prompt on a terminal).
    #[arg(long, value_name = "FILE")]
    so_pin_file: Option<PathBuf>,
}

/// Options of `pin change-so`.
#[derive(Args)]
pub struct ChangeSoArgs {
    /// File holding the current SO PIN (else KEY4C_SO_PIN, else a prompt on a terminal).
    #[arg(long, value_name = "FILE")]
    so_pin_file: Option<PathBuf>,
    /// File holding the new SO PIN (else KEY4C_NEW_SO_PIN, else a prompt on a terminal).
    #[arg(long, value_name = "FILE")]
    new_so_pin_file: Option<PathBuf>,
}

/// Options of `pin set-user`.
#[derive(Args)]
pub struct SetUserArgs {
    /// File holding the SO PIN (else KEY4C_SO_PIN, else a prompt on a terminal).
    #[arg(long, value_name = "FILE")]
    so_pin_file: Option<PathBuf>,
    /// File holding the new User PIN (else KEY4C_USER_PIN, else a prompt on a terminal).
    #[arg(long, value_name = "FILE")]
    user_pin_file: Option<PathBuf>,
}

/// Runs a `pin` command.
pub fn run(ctx: &Ctx, command: PinCommand) -> Result<()> {
    match command {
        PinCommand::ChangeSo(a) => change_so(ctx, a),
        PinCommand::SetUser(a) => set_user(ctx, a),
        PinCommand::RetryLimit(a) => retry_limit(ctx, a),
    }
}

fn same_pin(what: &str) -> CliError {
    CliError::new(format!(
        "the new {what} is the same as the current one: choose another"
    ))
}

/// `pin change-so`: the new PIN is checked (policy, differs) before the token is touched.
fn change_so(ctx: &Ctx, args: ChangeSoArgs) -> Result<()> {
    let old = pin_input::read(&SO_PIN, args.so_pin_file.as_deref(), false)?;
    let new = pin_input::read(&NEW_SO_PIN, args.new_so_pin_file.as_deref(), true)?;
    pin_input::check_policy("new SO PIN", &new)?;
    if *old == *new {
        return Err(same_pin("SO PIN"));
    }
    let token = ctx.open()?;
    let session = login(&token, Role::So, &old)?;
    token
        .set_pin(session.handle, &old, &new)
        .map_err(|e| match e {
            Error::PinInvalid => same_pin("SO PIN"),
            e => e.into(),
        })?;
    println!("SO PIN changed.");
    Ok(())
}

/// `pin set-user`.
fn set_user(ctx: &Ctx, args: SetUserArgs) -> Result<()> {
    let so_pin = pin_input::read(&SO_PIN, args.so_pin_file.as_deref(), false)?;
    let new = pin_input::read(&USER_PIN, args.user_pin_file.as_deref(), true)?;
    pin_input::check_policy("new User PIN", &new)?;
    let token = ctx.open()?;
    let (before, _) = Role::User.state(&token);
    let session = login(&token, Role::So, &so_pin)?;
    token.init_pin(session.handle, &new).map_err(|e| match e {
        Error::PinInvalid => same_pin("User PIN"),
        e => e.into(),
    })?;
    println!(
        "{}",
        match before {
            PinState::NotSet => "User PIN set.",
            PinState::Locked => "User PIN unlocked: the new PIN is set and its counter is reset.",
            _ => "User PIN reset.",
        }
    );
    Ok(())
}

/// `pin retry-limit N`.
fn retry_limit(ctx: &Ctx, args: RetryLimitArgs) -> Result<()> {
    let so_pin = pin_input::read(&SO_PIN, args.so_pin_file.as_deref(), false)?;
    let token = ctx.open()?;
    let session = login(&token, Role::So, &so_pin)?;
    let old = token.set_pin_retry_limit(session.handle, args.limit)?;
    if old == args.limit {
        println!("The PIN retry limit stays {old}.");
    } else {
        println!("PIN retry limit changed from {old} to {}.", args.limit);
    }
    Ok(())
}
