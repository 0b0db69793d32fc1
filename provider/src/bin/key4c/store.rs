//! `key4c store`: the store as files. A store put back from an earlier copy is refused (it
//! rolls the PIN counters back); the SO accepts a deliberate restore here. Which process has
//! the store and which wait for it, without opening it.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use key4c_pkcs11::store::holder::{self, Holder, HolderState};
use key4c_pkcs11::store::queue;
use serde_json::{json, Value};

use crate::context::{login, Ctx, Role};
use crate::error::Result;
use crate::pin_input::{self, SO_PIN};
use crate::util::print_json;

/// `key4c store ...`
#[derive(Subcommand)]
pub enum StoreCommand {
    /// Accept the store after restoring it from a backup on purpose: needs the SO PIN. Until
    /// then the module refuses a store older than what this user has seen of it.
    AcceptRestore(AcceptRestoreArgs),
    /// Which process has the store (and whether it is running, stopped or gone) and which
    /// processes wait for it, in order; the store is not opened.
    Status(StatusArgs),
}

/// Options of `store status`.
#[derive(Args)]
pub struct StatusArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
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
        StoreCommand::Status(a) => status(ctx, a),
    }
}

fn status(ctx: &Ctx, args: StatusArgs) -> Result<()> {
    let path = &ctx.store;
    let holder = holder::read(path).map(|h| {
        let answers = h
            .instance
            .as_deref()
            .is_some_and(|instance| holder::answers(path, instance));
        (h, answers)
    });
    let queued = queue::list(path);
    if args.json {
        print_json(&json!({
            "store": path.display().to_string(),
            "holder": holder.as_ref().map(|(h, answers)| {
                let mut v = process_json(h);
                v["answers"] = json!(answers);
                v
            }),
            "queue": queued
                .iter()
                .map(|q| {
                    let mut v = q.process.as_ref().map(process_json).unwrap_or(json!({}));
                    v["ticket"] = json!(q.number);
                    v
                })
                .collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    println!("store: {}", path.display());
    match &holder {
        Some((h, true)) => println!(
            "holder: {} ({}), answering",
            h.describe(),
            state_name(h.state())
        ),
        Some((h, false)) => println!(
            "holder: none now; the last was {} ({}), which no longer answers",
            h.describe(),
            state_name(h.state())
        ),
        None => println!("holder: none (no key4c has opened the store)"),
    }
    match queued.len() {
        0 => println!("queue: empty"),
        n => println!("queue: {n} waiting, first in line first"),
    }
    for q in &queued {
        match &q.process {
            Some(p) => println!(
                "  #{} {} ({})",
                q.number,
                p.describe(),
                state_name(p.state())
            ),
            None => println!("  #{} (its ticket names no process)", q.number),
        }
    }
    Ok(())
}

fn process_json(h: &Holder) -> Value {
    json!({
        "pid": h.pid,
        "program": h.exe,
        "instance": h.instance,
        "uid": h.uid,
        "pid_namespace": h.pid_namespace,
        "state": state_name(h.state()),
    })
}

fn state_name(state: HolderState) -> &'static str {
    match state {
        HolderState::Running => "running",
        HolderState::Stopped => "stopped",
        HolderState::Gone => "gone",
        HolderState::Unknown => "in another PID namespace",
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
