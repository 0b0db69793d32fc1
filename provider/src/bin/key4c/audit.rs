//! `key4c audit`: the token's audit log (login failures, locks, PIN changes, token init, key
//! generation and deletion, the SO unlock steps and the notice's delivery). It never holds a
//! PIN or key material.

use clap::Args;
use key4c_pkcs11::store::audit::AUDIT_FILE;
use serde_json::json;

use crate::context::Ctx;
use crate::error::Result;
use crate::util::print_json;

/// Options of `audit`.
#[derive(Args)]
pub struct AuditArgs {
    /// Print as JSON (an array of {time, event, subject, outcome}).
    #[arg(long)]
    json: bool,
    /// Only the last N events.
    #[arg(long, value_name = "N")]
    last: Option<usize>,
}

/// Runs `audit`.
pub fn run(ctx: &Ctx, args: AuditArgs) -> Result<()> {
    let token = ctx.open()?;
    let log = token.audit_log()?;
    if log.damaged > 0 {
        eprintln!(
            "warning: {} line(s) of {} are not events (cut short by a crash, or damaged) and were skipped",
            log.damaged,
            token.store_path().join(AUDIT_FILE).display()
        );
    }
    let records = log.records;
    let skip = args.last.map_or(0, |n| records.len().saturating_sub(n));
    let records = &records[skip..];
    if args.json {
        print_json(&serde_json::Value::Array(
            records
                .iter()
                .map(|r| {
                    json!({
                        "time": r.time,
                        "event": r.event,
                        "subject": r.subject,
                        "outcome": r.outcome,
                    })
                })
                .collect(),
        ));
        return Ok(());
    }
    if records.is_empty() {
        println!("The audit log is empty.");
    }
    for r in records {
        println!(
            "{:<31} {:<24} {:<40} {}",
            r.time, r.event, r.subject, r.outcome
        );
    }
    Ok(())
}
