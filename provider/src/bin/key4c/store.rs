//! `key4c store`: the store as files. A store put back from an earlier copy is refused (it
//! rolls the PIN counters back); the SO accepts a deliberate restore here.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::context::{login, Ctx, Role};
use crate::error::Result;
use crate::pin_input::{self, SO_PIN};

/// `key4c store ...`
#[derive(Subcommand)]
pub enum StoreCommand {
    /// Accept the store after restoring it from a backup on purpose: needs the SO PIN. Until
    /// then the module refuses a store older than what this user has seen of it.
    AcceptRestore(AcceptRestoreArgs),
}

/// Options of `store accept-restore`.
#[derive(Args)]
pub struct AcceptRestoreArgs {
    /// File holding the SO PIN (else KEY4C_SO_PIN, else a prompt on a terminal).
    #[arg(long, value_name = "FILE")]
    so_pin_file: Option<PathBuf>,
}

/// Runs a `store` command.
pub fn run(ctx: &Ctx, command: StoreCommand) -> Result<()> {
    match command {
        StoreCommand::AcceptRestore(a) => accept_restore(ctx, a),
    }
}

fn accept_restore(ctx: &Ctx, args: AcceptRestoreArgs) -> Result<()> {
    let so_pin = pin_input::read(&SO_PIN, args.so_pin_file.as_deref(), false)?;
    let token = ctx.open_accepting_restore()?;
    let session = login(&token, Role::So, &so_pin)?;
    let seq = token.accept_restore(session.handle)?;
    println!(
        "Restore accepted: the store {} (write #{seq}) opens again. Its PIN failure counters are those of the copy.",
        ctx.store.display()
    );
    Ok(())
}
