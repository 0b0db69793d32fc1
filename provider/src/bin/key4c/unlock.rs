//! `key4c unlock` and `key4c vendor`: the vendor-approved unlock of a locked SO PIN
//! (spec section 5). The holder files a request with an e-mail address; the vendor signs its
//! decision with the vendor key (Ed25519, kept outside the token store); the token checks the
//! signature against the configured `vendor_public_key`. An approval resets the SO counter
//! and sends the "unlock completed" notice.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use key4c_pkcs11::crypto::eddsa::Ed25519PrivateKey;
use key4c_pkcs11::token::admin::AdminEvent;
use key4c_pkcs11::token::service::{check_email, unlock_message, Decision, PinState};
use key4c_pkcs11::token::{Error, Token};
use serde_json::json;
use zeroize::Zeroizing;

use crate::context::{Ctx, Role};
use crate::error::{CliError, Result};
use crate::mail;
use crate::util::{date_of, hex, hyphenated, print_json, unhex};

/// `key4c unlock ...`
#[derive(Subcommand)]
pub enum UnlockCommand {
    /// The holder's side: ask the vendor to unlock the locked SO PIN, naming the address
    /// that gets the "unlock completed" notice.
    Request {
        /// Where the notice goes.
        #[arg(long, value_name = "ADDR")]
        email: String,
    },
    /// Show the SO PIN's state and the pending unlock request.
    Status {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The vendor's side: approve the pending request with the vendor key; unlocks the SO
    /// PIN (unchanged) and delivers the notice.
    Approve {
        /// The vendor's secret key file (vendor.key from `key4c vendor keygen`).
        #[arg(long, value_name = "FILE")]
        vendor_key: PathBuf,
    },
    /// The vendor's side: reject the pending request with the vendor key; the SO PIN stays
    /// locked.
    Reject {
        /// The vendor's secret key file (vendor.key from `key4c vendor keygen`).
        #[arg(long, value_name = "FILE")]
        vendor_key: PathBuf,
    },
}

/// `key4c vendor ...`
#[derive(Subcommand)]
pub enum VendorCommand {
    /// Generate the vendor's Ed25519 key pair: DIR/vendor.key (the secret seed in hex, mode
    /// 0600, for the vendor only) and DIR/vendor.pub (the public key in hex, for the module
    /// configuration's `vendor_public_key`).
    Keygen {
        /// Directory for vendor.key and vendor.pub (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
}

/// Runs an `unlock` command.
pub fn run(ctx: &Ctx, command: UnlockCommand) -> Result<()> {
    match command {
        UnlockCommand::Request { email } => request(ctx, &email),
        UnlockCommand::Status { json } => status(ctx, json),
        UnlockCommand::Approve { vendor_key } => decide(ctx, Decision::Approve, &vendor_key),
        UnlockCommand::Reject { vendor_key } => decide(ctx, Decision::Reject, &vendor_key),
    }
}

/// `unlock request`.
fn request(ctx: &Ctx, email: &str) -> Result<()> {
    let bad = || CliError::new(format!("{email:?} is not an e-mail address"));
    check_email(email).map_err(|_| bad())?;
    email.parse::<lettre::Address>().map_err(|_| bad())?;
    let token = ctx.open()?;
    let (state, _) = Role::So.state(&token);
    let replaced = token.service_info().unlock_request;
    let request = token.request_so_unlock(email).map_err(|e| match e {
        Error::ActionProhibited => CliError::new(format!(
            "the SO PIN is not locked (state: {}): there is nothing to unlock",
            state.name()
        )),
        e => e.into(),
    })?;
    if let Some(old) = replaced {
        println!(
            "This request replaces the one filed {} for {}.",
            old.requested, old.email
        );
    }
    println!(
        "Unlock request {} filed; the notice will go to {}.",
        hex(&request.id),
        request.email
    );
    println!("SO PIN state: {}.", PinState::UnlockRequested.name());
    println!("The vendor approves it with `key4c unlock approve --vendor-key vendor.key`.");
    Ok(())
}

/// `unlock status`.
fn status(ctx: &Ctx, as_json: bool) -> Result<()> {
    let token = ctx.open()?;
    let info = token.service_info();
    let limit = info
        .pin_retry_limit
        .unwrap_or(token.config().pin_retry_limit);
    if as_json {
        print_json(&json!({
            "uuid": hyphenated(&info.uuid),
            "so_pin": {
                "state": info.so.name(),
                "failures": info.so_failures,
                "pin_retry_limit": limit,
            },
            "request": info.unlock_request.as_ref().map(|r| json!({
                "id": hex(&r.id),
                "email": r.email,
                "requested": r.requested,
            })),
        }));
        return Ok(());
    }
    println!("SO PIN: {}", info.so.name());
    match &info.unlock_request {
        Some(r) => println!(
            "Unlock request {} filed {} ({}); notice to {}.",
            hex(&r.id),
            date_of(&r.requested),
            r.requested,
            r.email
        ),
        None if matches!(info.so, PinState::Locked) => println!(
            "No unlock request is pending: file one with `key4c unlock request --email ADDR`."
        ),
        None => println!("No unlock request is pending."),
    }
    Ok(())
}

/// Reads a vendor.key file: the 32-byte Ed25519 seed in hex.
fn read_vendor_key(path: &Path) -> Result<Ed25519PrivateKey> {
    let text = Zeroizing::new(
        fs::read_to_string(path).map_err(|e| CliError::io("read the vendor key", path, e))?,
    );
    let seed = Zeroizing::new(unhex(&text).unwrap_or_default());
    if seed.len() != 32 {
        return Err(CliError::new(format!(
            "{} is not a vendor key (64 hex digits of an Ed25519 seed, as `key4c vendor keygen` writes)",
            path.display()
        )));
    }
    Ed25519PrivateKey::from_seed(&seed)
        .map_err(|_| CliError::new(format!("{} is not an Ed25519 key", path.display())))
}

/// `unlock approve` / `unlock reject`: signs the decision on the pending request with the
/// vendor key and hands it to the token, which verifies it with `vendor_public_key`.
fn decide(ctx: &Ctx, decision: Decision, key_file: &Path) -> Result<()> {
    let key = read_vendor_key(key_file)?;
    let token = ctx.open()?;
    let pending = token.service_info().unlock_request.ok_or_else(|| {
        CliError::new("no SO unlock request is pending: the holder files one with `key4c unlock request --email ADDR`")
    })?;
    let message = unlock_message(&token.service_uuid_bytes(), &pending.id, decision);
    let signature = key
        .sign(None, &message)
        .map_err(|_| CliError::new("signing the decision with the vendor key failed"))?;
    let request = token
        .decide_so_unlock(decision, &signature)
        .map_err(|e| match e {
            Error::SignatureInvalid => CliError::new(format!(
                "the key in {} is not the vendor's: its signature does not verify with the configured vendor_public_key, so nothing changed (the attempt is in the audit log)",
                key_file.display()
            )),
            Error::OperationNotInitialized => CliError::new("no SO unlock request is pending"),
            e => e.into(),
        })?;
    match decision {
        Decision::Reject => {
            println!(
                "Unlock request {} rejected: the SO PIN stays locked.",
                hex(&request.id)
            );
            Ok(())
        }
        Decision::Approve => {
            println!("SO PIN unlocked: its state is normal; the SO PIN itself is unchanged.");
            notify(ctx, &token, &request)
        }
    }
}

/// Delivers the "unlock completed" notice: the outbox always, SMTP when configured. Each
/// delivery is recorded in the audit log.
fn notify(
    ctx: &Ctx,
    token: &Token,
    request: &key4c_pkcs11::store::records::UnlockRequest,
) -> Result<()> {
    let config = token.config();
    let message = mail::unlock_completed(&config.mail_from, &token.service_uuid(), request)?;
    let outbox = ctx.outbox();
    let delivered = mail::to_maildir(&outbox, &message);
    let outcome = match &delivered {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("failed: {e}"),
    };
    token.record_admin_event(AdminEvent::NoticeOutbox, &request.email, &outcome);
    let path = delivered.map_err(|e| {
        CliError::new(format!(
            "the SO PIN is unlocked, but the notice could not be put into the outbox: {e}"
        ))
    })?;
    println!(
        "Notice \"{}\" to {} is in the outbox: {}",
        mail::SUBJECT,
        request.email,
        path.display()
    );
    if let Some(server) = &config.smtp_server {
        let sent = mail::by_smtp(server, &message);
        let outcome = match &sent {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("failed: {e}"),
        };
        token.record_admin_event(AdminEvent::NoticeSmtp, &request.email, &outcome);
        sent.map_err(|e| {
            CliError::new(format!(
                "the SO PIN is unlocked and the notice is in the outbox, but {e}"
            ))
        })?;
        println!("Notice sent by SMTP through {server}.");
    }
    Ok(())
}

/// Runs a `vendor` command.
pub fn run_vendor(command: VendorCommand) -> Result<()> {
    match command {
        VendorCommand::Keygen { out, force } => keygen(&out, force),
    }
}

/// `vendor keygen`.
fn keygen(out: &Path, force: bool) -> Result<()> {
    fs::create_dir_all(out).map_err(|e| CliError::io("create the directory", out, e))?;
    let secret = out.join("vendor.key");
    let public = out.join("vendor.pub");
    if !force {
        for path in [&secret, &public] {
            if path.exists() {
                return Err(CliError::new(format!(
                    "{} exists: add --force to replace it (the old key's approvals then no longer verify)",
                    path.display()
                )));
            }
        }
    }
    let key = Ed25519PrivateKey::generate()
        .map_err(|_| CliError::new("generating the vendor key failed"))?;
    let seed_hex = Zeroizing::new(hex(&key.seed()[..]));
    write_file(
        &secret,
        format!("{}\n", seed_hex.as_str()).as_bytes(),
        0o600,
    )?;
    write_file(
        &public,
        format!("{}\n", hex(&key.public_key_bytes())).as_bytes(),
        0o644,
    )?;
    let shown = fs::canonicalize(&public).unwrap_or(public.clone());
    println!(
        "Vendor key:   {} (secret: keep it with the vendor)",
        secret.display()
    );
    println!("Public key:   {}", public.display());
    println!(
        "Module configuration: vendor_public_key = {:?}",
        shown.display().to_string()
    );
    Ok(())
}

/// Writes `bytes` to `path` with `mode`, replacing any old file.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let _ = fs::remove_file(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| CliError::io("create", path, e))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| CliError::io("write", path, e))
}
