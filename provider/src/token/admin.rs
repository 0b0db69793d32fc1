//! What the admin CLI needs from the token beyond the PKCS#11 calls: the service UUID as
//! bytes (for the vendor's signature), whether a configuration's `uuid` / `api_key` name this
//! store's service, the audit events that only the CLI sees (the delivery of the
//! "unlock completed" notice), the SO's change of the token's retry limit and the SO's
//! acceptance of a store restored from a copy.

use pkcs11_sys::CK_SESSION_HANDLE;

use super::error::{Error, Result};
use super::session::LoginState;
use super::Token;
use crate::crypto::digest::HashAlg;
use crate::store::records::PIN_RETRY_LIMITS;

/// Whether one binding field of a configuration (`uuid` or `api_key`) names this store's
/// service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingCheck {
    /// The configuration does not set it.
    NotConfigured,
    /// It names this store's service.
    Matches,
    /// It names another service (or an API key that is not this service's): the module
    /// shows no token.
    Mismatch,
}

impl BindingCheck {
    /// Words for the admin tool's output.
    pub fn name(self) -> &'static str {
        match self {
            BindingCheck::NotConfigured => "not configured",
            BindingCheck::Matches => "matches",
            BindingCheck::Mismatch => "does not match",
        }
    }
}

/// How a configuration's `uuid` and `api_key` relate to this store's service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// The configuration's `uuid`.
    pub uuid: BindingCheck,
    /// The configuration's `api_key`.
    pub api_key: BindingCheck,
}

impl Binding {
    /// Whether the module, given this configuration, shows the token.
    pub fn token_shown(&self) -> bool {
        self.uuid != BindingCheck::Mismatch && self.api_key != BindingCheck::Mismatch
    }
}

/// Security events the admin CLI records itself; the token records every other one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminEvent {
    /// The "unlock completed" notice was (or could not be) put into the Maildir outbox.
    NoticeOutbox,
    /// The "unlock completed" notice was (or could not be) handed to the SMTP server.
    NoticeSmtp,
}

impl AdminEvent {
    /// The event's name in the audit log.
    pub fn name(self) -> &'static str {
        match self {
            AdminEvent::NoticeOutbox => "so.unlock.notice.outbox",
            AdminEvent::NoticeSmtp => "so.unlock.notice.smtp",
        }
    }
}

impl Token {
    /// The service UUID's 16 bytes (what the vendor's unlock decision signs).
    pub fn service_uuid_bytes(&self) -> [u8; 16] {
        self.service.lock().uuid
    }

    /// Compares a configuration's `uuid` and `api_key` with this store's service, the way
    /// the module does when it decides whether its slot shows the token.
    pub fn binding(&self, uuid: Option<&str>, api_key: Option<&str>) -> Binding {
        let uuid = match uuid {
            None => BindingCheck::NotConfigured,
            Some(u) if u.trim().replace('-', "").to_ascii_lowercase() == self.service_uuid() => {
                BindingCheck::Matches
            }
            Some(_) => BindingCheck::Mismatch,
        };
        let api_key = match api_key {
            None => BindingCheck::NotConfigured,
            Some(key) => {
                let digest = HashAlg::Sha256.digest(key.as_bytes());
                match self.service.lock().api_key_sha256 {
                    Some(issued) if issued[..] == digest[..] => BindingCheck::Matches,
                    _ => BindingCheck::Mismatch,
                }
            }
        };
        Binding { uuid, api_key }
    }

    /// The SO sets the token's retry limit (1..=15) in an SO R/W session; returns the previous
    /// one. Audited (`pin.retry_limit`, subject `OLD -> NEW`). Counters and locks stay as they
    /// are: a locked PIN stays locked under a higher limit, and under a limit lowered to or
    /// below a role's failures its next wrong PIN locks it.
    pub fn set_pin_retry_limit(&self, handle: CK_SESSION_HANDLE, limit: u32) -> Result<u32> {
        let _lease = self.lease()?;
        let mut state = self.state.lock();
        self.so_rw_session(&state, handle)?;
        if !PIN_RETRY_LIMITS.contains(&limit) {
            return Err(Error::ArgumentsBad);
        }
        let mut record = state.record.clone().ok_or(Error::TokenNotRecognized)?;
        let old = self.retry_limit(&record);
        record.pin_retry_limit = Some(limit);
        self.audit("pin.retry_limit", &format!("{old} -> {limit}"), "ok");
        self.commit(&mut state, record)?;
        log::info!("the SO set the token's PIN retry limit from {old} to {limit}");
        Ok(old)
    }

    /// Appends an event of the admin CLI to the audit log, durably. `subject` and `outcome`
    /// must never hold a PIN or key material.
    pub fn record_admin_event(&self, event: AdminEvent, subject: &str, outcome: &str) {
        self.audit_durable(event.name(), subject, outcome);
    }

    /// The SO accepts the store as it is after a deliberate restore from a copy: its commit
    /// number becomes the newest this user has seen (`store::rollback`), so it opens again.
    /// Audited. Returns the store's commit number.
    pub fn accept_restore(&self, handle: CK_SESSION_HANDLE) -> Result<u64> {
        let _lease = self.lease()?;
        let state = self.state.lock();
        self.session(handle)?;
        if state.login != LoginState::So {
            return Err(Error::UserNotLoggedIn);
        }
        let seq = self.store.seq().map_err(super::store_error)?;
        self.audit_durable("store.restore.accept", &format!("write #{seq}"), "ok");
        self.store.accept_restore().map_err(super::store_error)?;
        log::warn!(
            "store {}: the SO accepted it as restored, at write #{seq}",
            self.store.path().display()
        );
        Ok(seq)
    }
}
