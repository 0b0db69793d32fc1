//! The "unlock completed" notice (spec section 5): an RFC 5322 message built with lettre,
//! delivered into a Maildir outbox (`tmp/` then renamed into `new/`) and, when an SMTP
//! server is configured, handed to it (plain SMTP, no TLS: meant for a relay on loopback).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use key4c_pkcs11::store::records::UnlockRequest;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{Message, SmtpTransport, Transport};

use crate::error::{CliError, Result};
use crate::util::{hex, hyphenated};

/// Subject of the notice.
pub const SUBJECT: &str = "Key4C SO PIN unlock completed";

/// Builds the notice for an approved request.
pub fn unlock_completed(
    from: &str,
    service_uuid: &str,
    request: &UnlockRequest,
) -> Result<Message> {
    let from: Mailbox = from
        .parse()
        .map_err(|e| CliError::new(format!("mail_from {from:?} is not an e-mail address: {e}")))?;
    let to: Mailbox = request.email.parse().map_err(|e| {
        CliError::new(format!(
            "the request's address {:?} is not an e-mail address: {e}",
            request.email
        ))
    })?;
    let approved = key4c_now();
    let body = format!(
        "The SO PIN of your Key4C V3 token is unlocked: its state is normal again.\n\
         \n\
         Service UUID:   {uuid}\n\
         Request:        {id}\n\
         Requested:      {requested}\n\
         Approved:       {approved}\n\
         \n\
         The SO PIN itself is unchanged: log in with the SO PIN you had.\n\
         After 5 wrong SO PINs in a row it locks again.\n",
        uuid = hyphenated(service_uuid),
        id = hex(&request.id),
        requested = request.requested,
    );
    Message::builder()
        .from(from)
        .to(to)
        .subject(SUBJECT)
        .message_id(None)
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| CliError::new(format!("cannot build the notice e-mail: {e}")))
}

fn key4c_now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Delivers `message` into the Maildir `outbox` (created if missing): written and synced in
/// `tmp/`, then renamed into `new/`. Lines end in LF, as Maildir readers expect. Returns the
/// file's path.
pub fn to_maildir(outbox: &Path, message: &Message) -> Result<PathBuf> {
    for sub in ["tmp", "new", "cur"] {
        let dir = outbox.join(sub);
        fs::create_dir_all(&dir)
            .map_err(|e| CliError::io("create the outbox directory", &dir, e))?;
    }
    let name = unique_name();
    let tmp = outbox.join("tmp").join(&name);
    let new = outbox.join("new").join(&name);
    let text = String::from_utf8_lossy(&message.formatted()).replace("\r\n", "\n");
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| CliError::io("create", &tmp, e))?;
    file.write_all(text.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| CliError::io("write", &tmp, e))?;
    drop(file);
    fs::rename(&tmp, &new).map_err(|e| CliError::io("move the notice into", &new, e))?;
    // Make the rename durable too.
    if let Ok(dir) = File::open(outbox.join("new")) {
        let _ = dir.sync_all();
    }
    Ok(new)
}

/// A Maildir file name: time, microseconds, PID and random bits, then the host name.
fn unique_name() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let random: [u8; 4] = key4c_pkcs11::crypto::random_array().unwrap_or_default();
    let host = fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().replace(['/', ':'], "_"))
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!(
        "{}.M{}P{}R{}.{host}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        hex(&random)
    )
}

/// Hands `message` to the SMTP server at `server` (`host:port`), without TLS.
pub fn by_smtp(server: &str, message: &Message) -> Result<()> {
    let (host, port) = server
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.trim_matches(['[', ']']), p.parse::<u16>().ok()?)))
        .ok_or_else(|| CliError::new(format!("smtp_server {server:?} is not host:port")))?;
    let transport = SmtpTransport::builder_dangerous(host)
        .port(port)
        .timeout(Some(Duration::from_secs(20)))
        .build();
    transport.send(message).map(|_| ()).map_err(|e| {
        CliError::new(format!(
            "the SMTP server {server} did not take the notice: {e}"
        ))
    })
}
