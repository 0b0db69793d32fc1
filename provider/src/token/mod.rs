//! The Key4C V3 token as safe Rust: slot, token identity, sessions, login state, PINs.
//!
//! Lock order: `state` before `sessions`, never the other way round.

pub mod error;
pub mod lockout;
mod login;
pub mod pin_policy;
pub mod session;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use pkcs11_sys::*;

use crate::config::Config;
use crate::crypto::master_key::MasterKey;
use crate::store::records::{ServiceRecord, TokenRecord};
use crate::store::Store;
pub use error::{Error, Result};
use session::{LoginState, Session};

/// CK_TOKEN_INFO.model of every Key4C V3 token.
pub const MODEL: &str = "Key4C V3";
/// This library's version, reported in CK_INFO.libraryVersion.
pub const LIBRARY_VERSION: CK_VERSION = CK_VERSION { major: 0, minor: 1 };

/// The token behind the module's one slot.
pub struct Token {
    config: Config,
    store: Store,
    service: ServiceRecord,
    state: Mutex<TokenState>,
    sessions: RwLock<HashMap<CK_SESSION_HANDLE, Arc<Session>>>,
    next_handle: AtomicU64,
}

/// What changes under the state lock: the persisted token record (a cache of the store's
/// copy, which this process alone may write) and who is logged in.
struct TokenState {
    record: Option<TokenRecord>,
    login: LoginState,
    master_key: Option<MasterKey>,
}

impl Token {
    /// Opens the token's store as `config` says.
    pub fn open(config: Config) -> Result<Token> {
        let store =
            Store::open(&config.store_dir()).map_err(|e| Error::DeviceError(e.to_string()))?;
        let service = store
            .service()
            .map_err(|e| Error::DeviceError(e.to_string()))?;
        let record = store
            .token()
            .map_err(|e| Error::DeviceError(e.to_string()))?;
        Ok(Token {
            config,
            store,
            service,
            state: Mutex::new(TokenState {
                record,
                login: LoginState::Public,
                master_key: None,
            }),
            sessions: RwLock::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
        })
    }

    /// The configuration the token was opened with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The service UUID, as 32 lower-case hex digits.
    pub fn service_uuid(&self) -> String {
        uuid::Uuid::from_bytes(self.service.uuid)
            .simple()
            .to_string()
    }

    /// The only slot's ID.
    pub fn slot_id(&self) -> CK_SLOT_ID {
        self.config.slot_id
    }

    /// `Ok` when `slot` is this token's slot.
    pub fn check_slot(&self, slot: CK_SLOT_ID) -> Result<()> {
        if slot == self.config.slot_id {
            Ok(())
        } else {
            Err(Error::SlotIdInvalid)
        }
    }

    /// CK_INFO.
    pub fn library_info(&self) -> CK_INFO {
        CK_INFO {
            cryptokiVersion: CK_VERSION { major: 3, minor: 0 },
            manufacturerID: padded(&self.config.manufacturer),
            flags: 0,
            libraryDescription: padded("Key4C V3 token emulator"),
            libraryVersion: LIBRARY_VERSION,
        }
    }

    /// CK_SLOT_INFO of the one slot.
    pub fn slot_info(&self, slot: CK_SLOT_ID) -> Result<CK_SLOT_INFO> {
        self.check_slot(slot)?;
        Ok(CK_SLOT_INFO {
            slotDescription: padded("Key4C V3 slot"),
            manufacturerID: padded(&self.config.manufacturer),
            flags: CKF_TOKEN_PRESENT,
            hardwareVersion: ck_version(self.config.hardware_version),
            firmwareVersion: ck_version(self.config.firmware_version),
        })
    }

    /// CK_TOKEN_INFO, including the six PIN-state flags.
    pub fn token_info(&self, slot: CK_SLOT_ID) -> Result<CK_TOKEN_INFO> {
        self.check_slot(slot)?;
        let state = self.state.lock();
        let limit = self.config.pin_retry_limit;
        let mut flags = CKF_RNG | CKF_LOGIN_REQUIRED | CKF_CLOCK_ON_TOKEN;
        let mut label = [b' '; 32];
        if let Some(record) = &state.record {
            flags |= CKF_TOKEN_INITIALIZED;
            if record.user.wrapped_master_key.is_some() {
                flags |= CKF_USER_PIN_INITIALIZED;
            }
            flags |= lockout::pin_flags(&record.so, limit, true);
            flags |= lockout::pin_flags(&record.user, limit, false);
            label = record.label;
        }
        let (total, rw) = {
            let sessions = self.sessions.read();
            (
                sessions.len(),
                sessions.values().filter(|s| s.read_write).count(),
            )
        };
        let serial = self.service_uuid();
        Ok(CK_TOKEN_INFO {
            label,
            manufacturerID: padded(&self.config.manufacturer),
            model: padded(MODEL),
            serialNumber: padded(&serial[..16]),
            flags,
            ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
            ulSessionCount: total as CK_ULONG,
            ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
            ulRwSessionCount: rw as CK_ULONG,
            ulMaxPinLen: pin_policy::MAX_PIN_LEN as CK_ULONG,
            ulMinPinLen: pin_policy::MIN_PIN_LEN as CK_ULONG,
            ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
            hardwareVersion: ck_version(self.config.hardware_version),
            firmwareVersion: ck_version(self.config.firmware_version),
            utcTime: utc_time(),
        })
    }

    /// C_OpenSession.
    pub fn open_session(&self, slot: CK_SLOT_ID, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE> {
        self.check_slot(slot)?;
        if flags & CKF_SERIAL_SESSION == 0 {
            return Err(Error::SessionParallelNotSupported);
        }
        let read_write = flags & CKF_RW_SESSION != 0;
        let state = self.state.lock();
        if state.record.is_none() {
            return Err(Error::TokenNotRecognized);
        }
        if !read_write && state.login == LoginState::So {
            return Err(Error::SessionReadWriteSoExists);
        }
        // A 64-bit counter never wraps in a process lifetime, so handles are never reused.
        let handle = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.sessions
            .write()
            .insert(handle, Arc::new(Session { handle, read_write }));
        Ok(handle)
    }

    /// C_CloseSession; closing the last session logs out.
    pub fn close_session(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        let mut state = self.state.lock();
        let mut sessions = self.sessions.write();
        sessions
            .remove(&handle)
            .ok_or(Error::SessionHandleInvalid)?;
        if sessions.is_empty() {
            state.logout();
        }
        Ok(())
    }

    /// C_CloseAllSessions.
    pub fn close_all_sessions(&self, slot: CK_SLOT_ID) -> Result<()> {
        self.check_slot(slot)?;
        let mut state = self.state.lock();
        self.sessions.write().clear();
        state.logout();
        Ok(())
    }

    /// C_GetSessionInfo.
    pub fn session_info(&self, handle: CK_SESSION_HANDLE) -> Result<CK_SESSION_INFO> {
        let login = self.state.lock().login;
        let session = self.session(handle)?;
        Ok(session.info(self.config.slot_id, login))
    }

    /// The session with this handle.
    pub fn session(&self, handle: CK_SESSION_HANDLE) -> Result<Arc<Session>> {
        self.sessions
            .read()
            .get(&handle)
            .cloned()
            .ok_or(Error::SessionHandleInvalid)
    }

    /// C_GetMechanismList: the mechanisms the token implements.
    pub fn mechanism_list(&self, slot: CK_SLOT_ID) -> Result<Vec<CK_MECHANISM_TYPE>> {
        self.check_slot(slot)?;
        Ok(Vec::new())
    }

    /// C_GetMechanismInfo.
    pub fn mechanism_info(
        &self,
        slot: CK_SLOT_ID,
        _mechanism: CK_MECHANISM_TYPE,
    ) -> Result<CK_MECHANISM_INFO> {
        self.check_slot(slot)?;
        Err(Error::MechanismInvalid)
    }

    /// C_GenerateRandom.
    pub fn generate_random(&self, handle: CK_SESSION_HANDLE, out: &mut [u8]) -> Result<()> {
        self.session(handle)?;
        crate::crypto::random_fill(out)
            .map_err(|_| Error::DeviceError("the random generator failed".into()))
    }

    /// C_SeedRandom: aws-lc's DRBG reseeds itself from the OS and takes no outside seed.
    pub fn seed_random(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        self.session(handle)?;
        Err(Error::RandomSeedNotSupported)
    }
}

impl TokenState {
    fn logout(&mut self) {
        self.login = LoginState::Public;
        self.master_key = None;
    }
}

/// `s` in a blank-padded fixed field (truncated to fit).
pub fn padded<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [b' '; N];
    let n = s.len().min(N);
    out[..n].copy_from_slice(&s.as_bytes()[..n]);
    out
}

fn ck_version(v: crate::config::Version) -> CK_VERSION {
    CK_VERSION {
        major: v.major,
        minor: v.minor,
    }
}

fn utc_time() -> [u8; 16] {
    let now = time::OffsetDateTime::now_utc();
    let s = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}00",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    padded(&s)
}
