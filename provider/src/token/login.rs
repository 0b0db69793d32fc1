//! Login, logout and the PIN lifecycle: C_Login, C_Logout, C_InitToken, C_InitPIN, C_SetPIN
//! (spec sections 2 to 4).

use std::sync::atomic::{AtomicBool, Ordering};

use pkcs11_sys::*;

use super::error::{Error, Result};
use super::lockout::{self, Attempt};
use super::pin_policy;
use super::session::{LoginState, UserType};
use super::{Token, TokenState};
use crate::crypto::master_key::{MasterKey, WrappedMasterKey};
use crate::store::records::{PinRecord, TokenRecord};

/// The two roles that own a PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    So,
    User,
}

impl Role {
    /// The role's name in the audit log.
    fn name(self) -> &'static str {
        match self {
            Role::So => "SO",
            Role::User => "User",
        }
    }

    /// Binds a wrapped master key to its role, so the SO's copy never opens as the User's.
    fn aad(self) -> &'static [u8] {
        match self {
            Role::So => b"key4c master key / SO",
            Role::User => b"key4c master key / User",
        }
    }
}

impl Token {
    /// C_InitToken: the first time sets the SO PIN; afterwards needs the current SO PIN and
    /// wipes every object and the User PIN.
    pub fn init_token(&self, slot: CK_SLOT_ID, so_pin: &[u8], label: &[u8; 32]) -> Result<()> {
        self.check_token(slot)?;
        let _lease = self.lease()?;
        let mut state = self.state.lock();
        if !self.sessions.is_empty() {
            return Err(Error::SessionExists);
        }
        let so = match &state.record {
            None => {
                pin_policy::check_new_pin(so_pin)?;
                PinRecord::default()
            }
            Some(_) => {
                self.authenticate(&mut state, Role::So, so_pin)?;
                state
                    .record
                    .as_ref()
                    .map(|r| r.so.clone())
                    .unwrap_or_default()
            }
        };
        // A new token gets a new master key: nothing sealed under the old one survives.
        let master_key = MasterKey::generate().map_err(|_| rng_failed())?;
        let record = TokenRecord {
            label: *label,
            created: super::now_rfc3339(),
            so: PinRecord {
                wrapped_master_key: Some(self.wrap(&master_key, so_pin, Role::So)?),
                ..so
            },
            user: PinRecord::default(),
            so_unlock_request: None,
            // A new token's own limit: the configuration's of this moment.
            pin_retry_limit: Some(self.config.pin_retry_limit),
        };
        let reinit = state.record.is_some();
        self.audit(
            "token.init",
            String::from_utf8_lossy(label).trim_end(),
            "ok",
        );
        if reinit {
            self.store.reinit_token_durable(&record)
        } else {
            self.store.put_token_durable(&record)
        }
        .map_err(|e| Error::DeviceError(e.to_string()))?;
        log::info!(
            "token {} in {}",
            if reinit {
                "re-initialised"
            } else {
                "initialised"
            },
            self.store.path().display()
        );
        state.record = Some(record);
        self.objects.remove_where(|o| o.store_id.is_some());
        self.set_login(&mut state, LoginState::Public, None);
        Ok(())
    }

    /// C_Login.
    pub fn login(
        &self,
        handle: CK_SESSION_HANDLE,
        user_type: CK_USER_TYPE,
        pin: &[u8],
    ) -> Result<()> {
        let _lease = self.lease()?;
        let mut state = self.state.lock();
        self.session(handle)?;
        let role = match UserType::from_ck(user_type)? {
            UserType::So => {
                match state.login {
                    LoginState::So => return Err(Error::UserAlreadyLoggedIn),
                    LoginState::User => return Err(Error::UserAnotherAlreadyLoggedIn),
                    LoginState::Public => {}
                }
                if self.sessions.iter().any(|s| !s.read_write) {
                    return Err(Error::SessionReadOnlyExists);
                }
                Role::So
            }
            UserType::User => {
                match state.login {
                    LoginState::User => return Err(Error::UserAlreadyLoggedIn),
                    LoginState::So => return Err(Error::UserAnotherAlreadyLoggedIn),
                    LoginState::Public => {}
                }
                Role::User
            }
            UserType::ContextSpecific => {
                if state.login != LoginState::User {
                    return Err(Error::UserNotLoggedIn);
                }
                // Only an operation on a CKA_ALWAYS_AUTHENTICATE key waits for this login.
                let session = self.session(handle)?;
                self.context_login_target(&session)?;
                self.authenticate(&mut state, Role::User, pin)?;
                self.context_login_done(&session);
                return Ok(());
            }
        };
        let master_key = self.authenticate(&mut state, role, pin)?;
        let login = match role {
            Role::So => LoginState::So,
            Role::User => LoginState::User,
        };
        self.set_login(&mut state, login, Some(master_key));
        Ok(())
    }

    /// C_Logout.
    pub fn logout(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        let mut state = self.state.lock();
        self.session(handle)?;
        if state.login == LoginState::Public {
            return Err(Error::UserNotLoggedIn);
        }
        if state.login == LoginState::User {
            // PKCS#11 3.0 section 5.6 C_Logout: the application's private session objects
            // are destroyed, and its handles to private objects become invalid, even after
            // the User logs in again. (Closing the last session logs out implicitly and
            // keeps token-object handles, as applications that cache them expect.)
            self.objects
                .remove_where(|o| o.owner.is_some() && o.is_private());
            self.objects
                .rehandle_where(|o| o.store_id.is_some() && o.is_private());
        }
        self.set_login(&mut state, LoginState::Public, None);
        Ok(())
    }

    /// What the SO's own changes need: the session exists, the SO is logged in, and the
    /// session is R/W (checked in this order: spec section 5.6, C_InitPIN).
    pub(super) fn so_rw_session(
        &self,
        state: &TokenState,
        handle: CK_SESSION_HANDLE,
    ) -> Result<()> {
        let session = self.session(handle)?;
        if state.login != LoginState::So {
            return Err(Error::UserNotLoggedIn);
        }
        if !session.read_write {
            return Err(Error::SessionReadOnly);
        }
        Ok(())
    }

    /// C_InitPIN: the SO sets, resets or unlocks the User PIN.
    pub fn init_pin(&self, handle: CK_SESSION_HANDLE, pin: &[u8]) -> Result<()> {
        let _lease = self.lease()?;
        let mut state = self.state.lock();
        self.so_rw_session(&state, handle)?;
        pin_policy::check_new_pin(pin)?;
        let record = state.record.as_ref().ok_or(Error::TokenNotRecognized)?;
        if let Some(current) = &record.user.wrapped_master_key {
            if current.unwrap_with(pin, Role::User.aad()).is_some() {
                return Err(Error::PinInvalid);
            }
        }
        let master_key = state.master_key.as_ref().ok_or(Error::UserNotLoggedIn)?;
        let wrapped = self.wrap(master_key, pin, Role::User)?;
        let mut record = record.clone();
        record.user = PinRecord {
            wrapped_master_key: Some(wrapped),
            failures: 0,
            locked: false,
        };
        self.audit("pin.init", "User", "ok");
        self.commit(&mut state, record)
    }

    /// C_SetPIN: the SO changes the SO PIN in an SO R/W session; the User PIN only with the
    /// `allow_user_set_pin` switch, otherwise `CKR_USER_NOT_LOGGED_IN`.
    pub fn set_pin(&self, handle: CK_SESSION_HANDLE, old_pin: &[u8], new_pin: &[u8]) -> Result<()> {
        let _lease = self.lease()?;
        let mut state = self.state.lock();
        let session = self.session(handle)?;
        if !session.read_write {
            return Err(Error::SessionReadOnly);
        }
        let role = match state.login {
            LoginState::So => Role::So,
            LoginState::User | LoginState::Public if self.config.allow_user_set_pin => Role::User,
            _ => return Err(Error::UserNotLoggedIn),
        };
        if role == Role::User
            && state
                .record
                .as_ref()
                .is_some_and(|r| r.user.wrapped_master_key.is_none())
        {
            return Err(Error::UserPinNotInitialized);
        }
        pin_policy::check_new_pin(new_pin)?;
        let master_key = self.authenticate(&mut state, role, old_pin)?;
        if new_pin == old_pin {
            return Err(Error::PinInvalid);
        }
        let wrapped = self.wrap(&master_key, new_pin, role)?;
        let mut record = state.record.clone().ok_or(Error::TokenNotRecognized)?;
        role_pin(&mut record, role).wrapped_master_key = Some(wrapped);
        self.audit("pin.change", role.name(), "ok");
        self.commit(&mut state, record)
    }

    /// Checks `pin` for `role`, count first (spec section 3): the attempt is counted durably
    /// (failures + 1, locked when that reaches the limit) before the PIN is tried, and a correct
    /// PIN then resets the counter durably. A count that cannot be made durable fails the call
    /// with CKR_DEVICE_ERROR without trying the PIN; a reset that cannot be made durable fails
    /// it too (the attempt stays counted, nobody is logged in). The audit outcome is written
    /// only once the store holds the count; the in-memory record is always the store's.
    fn authenticate(&self, state: &mut TokenState, role: Role, pin: &[u8]) -> Result<MasterKey> {
        let record = state.record.as_ref().ok_or(Error::TokenNotRecognized)?;
        let current = match role {
            Role::So => &record.so,
            Role::User => &record.user,
        };
        if current.locked {
            self.audit_durable("login", role.name(), "CKR_PIN_LOCKED");
            return Err(Error::PinLocked);
        }
        let wrapped = current
            .wrapped_master_key
            .clone()
            .ok_or(Error::UserPinNotInitialized)?;
        let limit = self.retry_limit(record);
        let mut counted = record.clone();
        let attempt = lockout::count_attempt(role_pin(&mut counted, role), limit);
        self.commit(state, counted).inspect_err(|e| {
            log::error!(
                "{} PIN not tried: its attempt could not be counted durably ({e})",
                role.name()
            )
        })?;
        let Some(master_key) = wrapped.unwrap_with(pin, role.aad()) else {
            return Err(match attempt {
                Attempt::Incorrect => {
                    self.audit_durable("login", role.name(), "CKR_PIN_INCORRECT");
                    Error::PinIncorrect
                }
                Attempt::NowLocked => {
                    self.audit_durable("pin.lock", role.name(), "CKR_PIN_LOCKED");
                    log::warn!(
                        "{} PIN locked after {limit} consecutive failures",
                        role.name()
                    );
                    Error::PinLocked
                }
            });
        };
        let mut accepted = state.record.clone().ok_or(Error::TokenNotRecognized)?;
        lockout::accept(role_pin(&mut accepted, role));
        self.commit(state, accepted).inspect_err(|e| {
            log::error!(
                "{} PIN correct, but its counter could not be reset durably: not logged in ({e})",
                role.name()
            )
        })?;
        Ok(master_key)
    }

    /// Writes `record` durably, then makes it the token's state. When the write fails the
    /// state stays what the store holds. A record of format 1 gets the token's retry limit
    /// here, at its first write (store::records::TokenRecord::pin_retry_limit).
    pub(super) fn commit(&self, state: &mut TokenState, mut record: TokenRecord) -> Result<()> {
        if record.pin_retry_limit.is_none() {
            record.pin_retry_limit = Some(self.config.pin_retry_limit);
        }
        self.store
            .put_token_durable(&record)
            .map_err(|e| Error::DeviceError(e.to_string()))?;
        state.record = Some(record);
        Ok(())
    }

    /// The token's retry limit: its record's own (the configuration's `pin_retry_limit`, when
    /// it differs, is ignored with one warning per process), or for a record of format 1 the
    /// configuration's, which the next write of the record keeps.
    pub(super) fn retry_limit(&self, record: &TokenRecord) -> u32 {
        static WARNED: AtomicBool = AtomicBool::new(false);
        let configured = self.config.pin_retry_limit;
        match record.pin_retry_limit {
            Some(limit) => {
                if limit != configured && !WARNED.swap(true, Ordering::Relaxed) {
                    log::warn!(
                        "pin_retry_limit = {configured} in the configuration is ignored: the token's own retry limit is {limit} (fixed when the token was created; the SO changes it with `key4c pin retry-limit`)"
                    );
                }
                limit
            }
            None => configured,
        }
    }

    fn wrap(&self, master_key: &MasterKey, pin: &[u8], role: Role) -> Result<WrappedMasterKey> {
        WrappedMasterKey::wrap(master_key, pin, self.config.kdf_iterations, role.aad())
            .map_err(|_| rng_failed())
    }
}

fn role_pin(record: &mut TokenRecord, role: Role) -> &mut PinRecord {
    match role {
        Role::So => &mut record.so,
        Role::User => &mut record.user,
    }
}

fn rng_failed() -> Error {
    Error::DeviceError("the random generator failed".into())
}
