//! The service around the token (spec sections 1 and 5): its UUID and API key, the binding
//! of a module configuration to one service, and the vendor-approved SO unlock.

use pkcs11_sys::*;

use super::error::{Error, Result};
use super::lockout;
use super::Token;
use crate::crypto::digest::HashAlg;
use crate::crypto::eddsa::Ed25519PublicKey;
use crate::store::records::{PinRecord, UnlockRequest};

/// A role's PIN state, as the vendor console shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinState {
    /// No failed attempt since the last success.
    Normal,
    /// At least one failed attempt.
    CountLow,
    /// One attempt left.
    FinalTry,
    /// Locked.
    Locked,
    /// Locked, and the holder asked the vendor to unlock it (SO only).
    UnlockRequested,
    /// No PIN set (User before C_InitPIN, or no token).
    NotSet,
}

impl PinState {
    /// The console's words for the state.
    pub fn name(self) -> &'static str {
        match self {
            PinState::Normal => "normal",
            PinState::CountLow => "count low",
            PinState::FinalTry => "final try",
            PinState::Locked => "locked",
            PinState::UnlockRequested => "unlock requested",
            PinState::NotSet => "not set",
        }
    }
}

/// What the console's service page shows.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    /// Service UUID, 32 hex digits.
    pub uuid: String,
    /// When the token was (last) initialised, RFC 3339, if it was.
    pub token_created: Option<String>,
    /// Token label, if initialised.
    pub label: Option<String>,
    /// Whether an API key was issued.
    pub api_key_issued: bool,
    /// SO PIN state.
    pub so: PinState,
    /// Consecutive SO failures.
    pub so_failures: u32,
    /// User PIN state.
    pub user: PinState,
    /// Consecutive User failures.
    pub user_failures: u32,
    /// The token's retry limit (its own, not the configuration's), when it is initialised.
    pub pin_retry_limit: Option<u32>,
    /// The pending SO unlock request.
    pub unlock_request: Option<UnlockRequest>,
}

/// Whether the approval or the rejection of a request is being signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Unlock the SO PIN.
    Approve,
    /// Leave it locked.
    Reject,
}

fn pin_state(pin: &PinRecord, limit: u32, requested: bool) -> PinState {
    if pin.wrapped_master_key.is_none() {
        return PinState::NotSet;
    }
    let flags = lockout::pin_flags(pin, limit, false);
    if pin.locked {
        if requested {
            PinState::UnlockRequested
        } else {
            PinState::Locked
        }
    } else if flags & CKF_USER_PIN_FINAL_TRY != 0 {
        PinState::FinalTry
    } else if flags & CKF_USER_PIN_COUNT_LOW != 0 {
        PinState::CountLow
    } else {
        PinState::Normal
    }
}

/// The bytes the vendor signs to decide on one request of one service.
pub fn unlock_message(
    service_uuid: &[u8; 16],
    request_id: &[u8; 16],
    decision: Decision,
) -> Vec<u8> {
    let mut m = b"key4c SO unlock v1\\0".to_vec();
    m.extend_from_slice(service_uuid);
    m.extend_from_slice(request_id);
    m.extend_from_slice(match decision {
        Decision::Approve => b"approve",
        Decision::Reject => b"reject",
    });
    m
}

/// A plausible e-mail address: one `@`, no spaces or control characters (which could
/// inject mail headers), at most 254 bytes.
pub fn check_email(email: &str) -> Result<()> {
    let ok = email.len() <= 254
        && email.matches('@').count() == 1
        && !email.starts_with('@')
        && !email.ends_with('@')
        && email.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(Error::ArgumentsBad)
    }
}

impl Token {
    /// The service page.
    pub fn service_info(&self) -> ServiceInfo {
        if let Err(e) = self.sync() {
            log::warn!("service page: {e}");
        }
        let state = self.state.lock();
        let record = state.record.as_ref();
        let limit = record.map_or(self.config.pin_retry_limit, |r| self.retry_limit(r));
        let requested = record.is_some_and(|r| r.so_unlock_request.is_some());
        ServiceInfo {
            uuid: self.service_uuid(),
            token_created: record.map(|r| r.created.clone()),
            label: record.map(|r| String::from_utf8_lossy(&r.label).trim_end().to_string()),
            api_key_issued: self.service.lock().api_key_sha256.is_some(),
            so: record.map_or(PinState::NotSet, |r| pin_state(&r.so, limit, requested)),
            so_failures: record.map_or(0, |r| r.so.failures),
            user: record.map_or(PinState::NotSet, |r| pin_state(&r.user, limit, false)),
            user_failures: record.map_or(0, |r| r.user.failures),
            pin_retry_limit: record.map(|_| limit),
            unlock_request: record.and_then(|r| r.so_unlock_request.clone()),
        }
    }

    /// Issues the service's API key: only its SHA-256 is kept.
    pub fn set_api_key(&self, api_key: &str) -> Result<()> {
        let _lease = self.lease()?;
        let mut service = self.service.lock();
        let mut updated = service.clone();
        updated.api_key_sha256 = Some(api_key_digest(api_key));
        self.audit("service.api_key", "service", "ok");
        self.store
            .put_service_durable(&updated)
            .map_err(|e| Error::DeviceError(e.to_string()))?;
        *service = updated;
        Ok(())
    }

    /// Whether the configuration's `uuid` and `api_key` name this store's service. When they
    /// do not, the slot shows no token and the reason is logged.
    pub(crate) fn binding_matches(&self) -> bool {
        // Copied out so the guard is gone before service_uuid() takes the same lock.
        let api_key_sha256 = self.service.lock().api_key_sha256;
        if let Some(uuid) = &self.config.uuid {
            let want = uuid.trim().replace('-', "").to_ascii_lowercase();
            if want != self.service_uuid() {
                log::error!(
                    "the configured service uuid {uuid} is not the one of the store {} ({}): the slot shows no token",
                    self.store.path().display(),
                    self.service_uuid()
                );
                return false;
            }
        }
        if let Some(key) = &self.config.api_key {
            if api_key_sha256 != Some(api_key_digest(key)) {
                log::error!(
                    "the configured api_key is not the API key of service {}: the slot shows no token",
                    self.service_uuid()
                );
                return false;
            }
        }
        true
    }

    /// Files a request to the vendor to unlock the locked SO PIN.
    pub fn request_so_unlock(&self, email: &str) -> Result<UnlockRequest> {
        check_email(email)?;
        let _lease = self.lease()?;
        let mut state = self.state.lock();
        let mut record = state.record.clone().ok_or(Error::TokenNotRecognized)?;
        if !record.so.locked {
            return Err(Error::ActionProhibited);
        }
        let request = UnlockRequest {
            id: crate::crypto::random_array()
                .map_err(|_| Error::DeviceError("the random generator failed".into()))?,
            email: email.to_string(),
            requested: super::now_rfc3339(),
        };
        record.so_unlock_request = Some(request.clone());
        self.audit("so.unlock.request", email, "ok");
        self.commit(&mut state, record)?;
        Ok(request)
    }

    /// The vendor's decision on the pending request, signed with the vendor's key. Approval
    /// resets the SO counter (the SO PIN itself is unchanged); rejection leaves it locked.
    pub fn decide_so_unlock(&self, decision: Decision, signature: &[u8]) -> Result<UnlockRequest> {
        let vendor = self.vendor_key()?;
        let _lease = self.lease()?;
        let mut state = self.state.lock();
        let mut record = state.record.clone().ok_or(Error::TokenNotRecognized)?;
        let request = record
            .so_unlock_request
            .clone()
            .ok_or(Error::OperationNotInitialized)?;
        let message = unlock_message(&self.service.lock().uuid, &request.id, decision);
        let event = match decision {
            Decision::Approve => "so.unlock.approve",
            Decision::Reject => "so.unlock.reject",
        };
        if vendor.verify(None, &message, signature).is_err() {
            self.audit_durable(event, &request.email, "CKR_SIGNATURE_INVALID");
            return Err(Error::SignatureInvalid);
        }
        record.so_unlock_request = None;
        if decision == Decision::Approve {
            record.so.failures = 0;
            record.so.locked = false;
        }
        self.audit(event, &request.email, "ok");
        self.commit(&mut state, record)?;
        Ok(request)
    }

    fn vendor_key(&self) -> Result<Ed25519PublicKey> {
        let path = self.config.vendor_public_key.as_ref().ok_or_else(|| {
            Error::GeneralError(
                "no vendor_public_key is configured: the vendor's approval cannot be checked"
                    .into(),
            )
        })?;
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::GeneralError(format!(
                "cannot read the vendor public key {}: {e}",
                path.display()
            ))
        })?;
        let bytes = hex_decode(text.trim()).ok_or_else(|| {
            Error::GeneralError(format!(
                "{} is not a hex Ed25519 public key",
                path.display()
            ))
        })?;
        Ed25519PublicKey::from_point(&bytes).map_err(|_| {
            Error::GeneralError(format!("{} is not an Ed25519 public key", path.display()))
        })
    }
}

fn api_key_digest(api_key: &str) -> [u8; 32] {
    let mut d = [0u8; 32];
    d.copy_from_slice(&HashAlg::Sha256.digest(api_key.as_bytes()));
    d
}

/// Lower- or upper-case hex to bytes.
pub fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
