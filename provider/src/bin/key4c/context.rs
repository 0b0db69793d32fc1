//! What every command starts from: the configuration and store, the token opened on them,
//! and sessions logged in as the SO or the User (with PIN errors explained in words).

use std::path::{Path, PathBuf};

use key4c_pkcs11::config::{Config, ENV_STORE};
use key4c_pkcs11::token::admin::{Binding, BindingCheck};
use key4c_pkcs11::token::service::PinState;
use key4c_pkcs11::token::{Error, Token};
use pkcs11_sys::*;
use zeroize::Zeroizing;

use crate::error::{describe, CliError, Result};
use crate::util::plural;

/// The configuration and store a command works on.
pub struct Ctx {
    /// The configuration, with the store resolved and the binding (`uuid`, `api_key`) taken
    /// out: the admin tool works on the store's service whichever key the module is given.
    pub config: Config,
    /// The store directory.
    pub store: PathBuf,
    uuid: Option<String>,
    api_key: Option<Zeroizing<String>>,
}

impl Ctx {
    /// Reads the configuration file (if any) and resolves the store: `--store`, else
    /// `KEY4C_STORE`, else the file's `store`, else the default.
    pub fn load(config: Option<&Path>, store: Option<&Path>) -> Result<Ctx> {
        let mut config = match config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(dir) = store {
            config.store = Some(dir.to_path_buf());
        } else if let Some(dir) = std::env::var_os(ENV_STORE) {
            config.store = Some(PathBuf::from(dir));
        }
        config.resolve_store()?;
        let store = config.store_dir();
        let uuid = config.uuid.take();
        let api_key = config.api_key.take().map(Zeroizing::new);
        Ok(Ctx {
            config,
            store,
            uuid,
            api_key,
        })
    }

    /// Opens the token of an existing store.
    pub fn open(&self) -> Result<Token> {
        if !self.store.exists() {
            return Err(CliError::new(format!(
                "there is no store at {}: create the service with `key4c service create`, or name the store with --store or KEY4C_STORE",
                self.store.display()
            )));
        }
        self.open_or_create()
    }

    /// Opens the token, creating the store (and its service UUID) if there is none yet.
    pub fn open_or_create(&self) -> Result<Token> {
        let token = Token::open(self.config.clone()).map_err(|e| CliError::new(describe(&e)))?;
        if self.binding(&token).uuid == BindingCheck::Mismatch {
            return Err(CliError::new(format!(
                "the configuration's uuid {} is not the service of the store {} ({}): check the store path",
                self.uuid.as_deref().unwrap_or_default(),
                self.store.display(),
                crate::util::hyphenated(&token.service_uuid())
            )));
        }
        Ok(token)
    }

    /// Opens the token of an existing store even when it is older than what this user has
    /// seen of it: for the SO to accept a deliberate restore.
    pub fn open_accepting_restore(&self) -> Result<Token> {
        let mut config = self.config.clone();
        config.accept_restore = true;
        Token::open(config).map_err(|e| CliError::new(describe(&e)))
    }

    /// How the configuration's `uuid` and `api_key` relate to the store's service.
    pub fn binding(&self, token: &Token) -> Binding {
        token.binding(
            self.uuid.as_deref(),
            self.api_key.as_ref().map(|k| k.as_str()),
        )
    }

    /// The Maildir that receives the "unlock completed" notice.
    pub fn outbox(&self) -> PathBuf {
        match &self.config.outbox {
            Some(dir) => dir.clone(),
            None => self
                .store
                .parent()
                .unwrap_or_else(|| Path::new("."))
                .join("outbox"),
        }
    }
}

/// The two roles that log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The Security Officer.
    So,
    /// The User.
    User,
}

impl Role {
    fn pin_name(self) -> &'static str {
        match self {
            Role::So => "SO PIN",
            Role::User => "User PIN",
        }
    }

    fn user_type(self) -> CK_USER_TYPE {
        match self {
            Role::So => CKU_SO,
            Role::User => CKU_USER,
        }
    }

    /// This role's PIN state and failure count.
    pub fn state(self, token: &Token) -> (PinState, u32) {
        let info = token.service_info();
        match self {
            Role::So => (info.so, info.so_failures),
            Role::User => (info.user, info.user_failures),
        }
    }

    /// What unlocks this role's PIN.
    pub fn unlock_advice(self) -> &'static str {
        match self {
            Role::So => {
                "file an unlock request with `key4c unlock request --email ADDR` for the vendor to approve"
            }
            Role::User => "the SO unlocks it by setting a new one with `key4c pin set-user`",
        }
    }
}

/// A read/write session, closed (and so logged out) when dropped.
pub struct Session<'a> {
    token: &'a Token,
    /// The session handle.
    pub handle: CK_SESSION_HANDLE,
}

impl<'a> Session<'a> {
    /// Opens a read/write session.
    pub fn open(token: &'a Token) -> Result<Session<'a>> {
        let handle = token.open_session(token.slot_id(), CKF_SERIAL_SESSION | CKF_RW_SESSION)?;
        Ok(Session { token, handle })
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = self.token.close_session(self.handle);
    }
}

/// Opens a read/write session and logs `role` in with `pin`; a wrong or locked PIN is
/// explained with the attempts left or what unlocks it.
pub fn login<'a>(token: &'a Token, role: Role, pin: &[u8]) -> Result<Session<'a>> {
    let session = Session::open(token)?;
    let (before, _) = role.state(token);
    match token.login(session.handle, role.user_type(), pin) {
        Ok(()) => Ok(session),
        Err(e) => Err(login_error(token, role, &e, before)),
    }
}

fn login_error(token: &Token, role: Role, e: &Error, before: PinState) -> CliError {
    let limit = token
        .service_info()
        .pin_retry_limit
        .unwrap_or(token.config().pin_retry_limit);
    match e {
        Error::PinIncorrect => {
            let (_, failures) = role.state(token);
            let left = u64::from(limit.saturating_sub(failures).max(1));
            let tail = if left == 1 {
                ": the next wrong one locks it"
            } else {
                " before it locks"
            };
            CliError::new(format!(
                "the {} is wrong: {left} attempt{} left{tail}",
                role.pin_name(),
                plural(left)
            ))
        }
        Error::PinLocked if matches!(before, PinState::Locked | PinState::UnlockRequested) => {
            CliError::new(format!(
                "the {} is locked: {}",
                role.pin_name(),
                role.unlock_advice()
            ))
        }
        Error::PinLocked => CliError::new(format!(
            "the {} is wrong, and after {limit} wrong attempts in a row it is now locked: {}",
            role.pin_name(),
            role.unlock_advice()
        )),
        other => CliError::new(describe(other)),
    }
}
