//! The Key4C V3 token as safe Rust: slot, token identity, sessions, login state, PINs.
//!
//! Lock order: `state` before `sessions`, never the other way round.

pub mod admin;
pub mod attributes;
pub mod cipher;
pub mod error;
mod generate;
pub mod keys;
pub mod lockout;
mod login;
pub mod mechanisms;
pub mod object;
pub mod objects;
pub mod operations;
pub mod pin_policy;
pub mod service;
pub mod session;

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use dashmap::DashMap;
use parking_lot::Mutex;
use pkcs11_sys::*;

use crate::config::Config;
use crate::crypto::master_key::MasterKey;
use crate::store::audit::AuditLog;
use crate::store::objects_cache::{self, Stamp};
use crate::store::records::{AuditRecord, ServiceRecord, TokenRecord};
use crate::store::{Lease, Store, StoreError};
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
    service: Mutex<ServiceRecord>,
    /// The configuration's uuid / api_key name this store's service: the token is present.
    present: bool,
    state: Mutex<TokenState>,
    /// Who is logged in, readable without the state lock (written under it).
    login: AtomicU8,
    /// The master key while the User is logged in: what unseals keys on first use.
    user_master_key: ArcSwapOption<MasterKey>,
    sessions: DashMap<CK_SESSION_HANDLE, Arc<Session>>,
    next_handle: AtomicU64,
    objects: object::Objects,
    /// One reload at a time.
    reloading: Mutex<()>,
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
        let started = std::time::Instant::now();
        let dir = config.store_dir();
        // The objects cache is read and decoded while sled opens in another thread: on a
        // large token the two are most of a cold start (store::objects_cache). This thread
        // decodes: its allocations come from the main heap, which grows in larger steps than a
        // thread's.
        let (store, cached) = std::thread::scope(|scope| {
            let opening = std::thread::Builder::new()
                .name("key4c-open".into())
                .spawn_scoped(scope, || Store::open(&dir, config.store_options()));
            let objects = object::Objects::default();
            let stamp = objects_cache::load(&dir, |id, record| {
                objects.insert(Arc::new(objects::stored_object(
                    objects.new_handle(),
                    id,
                    record,
                    None,
                )));
            });
            let store = match opening {
                Ok(thread) => thread.join().unwrap_or_else(|_| {
                    Err(StoreError::Io {
                        path: dir.clone(),
                        detail: "the thread opening the store failed".into(),
                    })
                }),
                Err(_) => Store::open(&dir, config.store_options()),
            };
            (store, stamp.map(|stamp| (stamp, objects)))
        });
        let store = store.map_err(|e| Error::DeviceError(e.to_string()))?;
        let opened = started.elapsed();
        let service = store
            .service()
            .map_err(|e| Error::DeviceError(e.to_string()))?;
        let record = store
            .token()
            .map_err(|e| Error::DeviceError(e.to_string()))?;
        let mut token = Token {
            config,
            store,
            service: Mutex::new(service),
            present: true,
            state: Mutex::new(TokenState {
                record,
                login: LoginState::Public,
                master_key: None,
            }),
            login: AtomicU8::new(LoginState::Public as u8),
            user_master_key: ArcSwapOption::empty(),
            sessions: DashMap::new(),
            next_handle: AtomicU64::new(1),
            objects: Default::default(),
            reloading: Mutex::new(()),
        };
        token.present = token.binding_matches();
        let uuid = token.service.lock().uuid;
        let seq = token.store.objects_generation().map_err(store_error)?;
        let from_cache = match cached {
            Some((stamp, objects)) if stamp == (Stamp { uuid, seq }) => {
                token.objects = objects;
                true
            }
            _ => {
                token.load_objects(uuid)?;
                false
            }
        };
        token.store.upgrade().map_err(store_error)?;
        log::debug!(
            "token opened in {:?} (store and cache {opened:?}, {} objects from the {})",
            started.elapsed(),
            token.objects.len(),
            if from_cache { "cache" } else { "store" }
        );
        Ok(token)
    }

    /// Keeps the store in this process for an operation that decides on what is stored (PIN
    /// counters, the token record, objects) and writes: when other processes wrote since this
    /// one last looked, reloads first.
    pub(crate) fn lease(&self) -> Result<Lease<'_>> {
        let lease = self.store.lease().map_err(store_error)?;
        if self.store.is_stale() {
            self.reload()?;
        }
        Ok(lease)
    }

    /// Where what other processes wrote must show (C_GetTokenInfo, C_FindObjectsInit, the
    /// service page): reloads when they wrote since. Nothing to do while this process holds
    /// the store, as it does when it is the only one using it.
    pub(crate) fn sync(&self) -> Result<()> {
        if self.store.moved() {
            drop(self.lease()?);
        }
        Ok(())
    }

    /// Reads the token record, the service record and the objects again (under a lease).
    fn reload(&self) -> Result<()> {
        let _one = self.reloading.lock();
        if !self.store.is_stale() {
            return Ok(());
        }
        let seq = self.store.seq().map_err(store_error)?;
        let service = self.store.service().map_err(store_error)?;
        let record = self.store.token().map_err(store_error)?;
        {
            let mut state = self.state.lock();
            *self.service.lock() = service;
            state.record = record;
        }
        let since = self.store.synced();
        let reloaded = match self.store.changed_since(since).map_err(store_error)? {
            Some(ids) => {
                self.reload_changed_objects(&ids)?;
                format!("{} changed objects", ids.len())
            }
            None => {
                self.reload_objects()?;
                "every object".to_string()
            }
        };
        self.store.mark_synced(seq);
        log::debug!(
            "store {}: reloaded at write #{seq} from #{since}, {reloaded} (other processes wrote to it)",
            self.store.path().display()
        );
        Ok(())
    }

    /// The directory of the token's store.
    pub fn store_path(&self) -> &std::path::Path {
        self.store.path()
    }

    /// Appends a security event to the audit log; it becomes durable with the state change
    /// that follows it (every audited event is followed by a durable write).
    pub(crate) fn audit(&self, event: &str, subject: &str, outcome: &str) {
        if let Err(e) = self
            .store
            .append_audit(&audit_record(event, subject, outcome))
        {
            log::error!("cannot append to the audit log: {e}");
        }
    }

    /// Appends a security event that no other write follows, durably.
    pub(crate) fn audit_durable(&self, event: &str, subject: &str, outcome: &str) {
        if let Err(e) = self
            .store
            .append_audit_durable(&audit_record(event, subject, outcome))
        {
            log::error!("cannot append to the audit log: {e}");
        }
    }

    /// The audit log, oldest first, and how many damaged lines it skipped.
    pub fn audit_log(&self) -> Result<AuditLog> {
        self.store
            .audit_log()
            .map_err(|e| Error::DeviceError(e.to_string()))
    }

    /// Who is logged in, without taking the state lock.
    pub fn login_state(&self) -> LoginState {
        LoginState::from_u8(self.login.load(Ordering::Acquire))
    }

    fn set_login(&self, state: &mut TokenState, login: LoginState, master_key: Option<MasterKey>) {
        state.login = login;
        self.login.store(login as u8, Ordering::Release);
        match (login, master_key) {
            (LoginState::User, Some(key)) => {
                self.user_master_key.store(Some(Arc::new(key.clone())));
                state.master_key = Some(key);
            }
            (_, key) => {
                self.user_master_key.store(None);
                state.master_key = key;
                // Decrypted key material lives only while the User is logged in.
                for object in self.objects.all() {
                    object.secret.forget();
                }
            }
        }
    }

    /// The configuration the token was opened with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The service UUID, as 32 lower-case hex digits.
    pub fn service_uuid(&self) -> String {
        uuid::Uuid::from_bytes(self.service.lock().uuid)
            .simple()
            .to_string()
    }

    /// The only slot's ID.
    pub fn slot_id(&self) -> CK_SLOT_ID {
        self.config.slot_id
    }

    /// Whether the slot shows its token (the configuration names this store's service).
    pub fn token_present(&self) -> bool {
        self.present
    }

    /// `Ok` when `slot` is this token's slot and the token is there.
    fn check_token(&self, slot: CK_SLOT_ID) -> Result<()> {
        self.check_slot(slot)?;
        if self.present {
            Ok(())
        } else {
            Err(Error::TokenNotPresent)
        }
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
            flags: if self.present { CKF_TOKEN_PRESENT } else { 0 },
            hardwareVersion: ck_version(self.config.hardware_version),
            firmwareVersion: ck_version(self.config.firmware_version),
        })
    }

    /// CK_TOKEN_INFO, including the six PIN-state flags.
    pub fn token_info(&self, slot: CK_SLOT_ID) -> Result<CK_TOKEN_INFO> {
        self.check_token(slot)?;
        self.sync()?;
        let state = self.state.lock();
        let mut flags = CKF_RNG | CKF_LOGIN_REQUIRED | CKF_CLOCK_ON_TOKEN;
        let mut label = [b' '; 32];
        if let Some(record) = &state.record {
            let limit = self.retry_limit(record);
            flags |= CKF_TOKEN_INITIALIZED;
            if record.user.wrapped_master_key.is_some() {
                flags |= CKF_USER_PIN_INITIALIZED;
            }
            flags |= lockout::pin_flags(&record.so, limit, true);
            flags |= lockout::pin_flags(&record.user, limit, false);
            label = record.label;
        }
        let total = self.sessions.len();
        let rw = self.sessions.iter().filter(|s| s.read_write).count();
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
        self.check_token(slot)?;
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
            .insert(handle, Arc::new(Session::new(handle, read_write)));
        Ok(handle)
    }

    /// C_CloseSession; closing the last session logs out.
    pub fn close_session(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        let mut state = self.state.lock();
        self.sessions
            .remove(&handle)
            .ok_or(Error::SessionHandleInvalid)?;
        self.objects.remove_where(|o| o.owner == Some(handle));
        if self.sessions.is_empty() {
            self.set_login(&mut state, LoginState::Public, None);
        }
        Ok(())
    }

    /// C_CloseAllSessions.
    pub fn close_all_sessions(&self, slot: CK_SLOT_ID) -> Result<()> {
        self.check_slot(slot)?;
        let mut state = self.state.lock();
        self.sessions.clear();
        self.objects.remove_where(|o| o.owner.is_some());
        self.set_login(&mut state, LoginState::Public, None);
        Ok(())
    }

    /// C_GetSessionInfo.
    pub fn session_info(&self, handle: CK_SESSION_HANDLE) -> Result<CK_SESSION_INFO> {
        let session = self.session(handle)?;
        Ok(session.info(self.config.slot_id, self.login_state()))
    }

    /// The session with this handle.
    pub fn session(&self, handle: CK_SESSION_HANDLE) -> Result<Arc<Session>> {
        self.sessions
            .get(&handle)
            .map(|s| s.clone())
            .ok_or(Error::SessionHandleInvalid)
    }

    /// C_GetMechanismList: the mechanisms the token implements.
    pub fn mechanism_list(&self, slot: CK_SLOT_ID) -> Result<Vec<CK_MECHANISM_TYPE>> {
        self.check_slot(slot)?;
        Ok(mechanisms::TABLE.iter().map(|m| m.0).collect())
    }

    /// C_GetMechanismInfo.
    pub fn mechanism_info(
        &self,
        slot: CK_SLOT_ID,
        mechanism: CK_MECHANISM_TYPE,
    ) -> Result<CK_MECHANISM_INFO> {
        self.check_slot(slot)?;
        mechanisms::info(mechanism)
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

fn audit_record(event: &str, subject: &str, outcome: &str) -> AuditRecord {
    AuditRecord {
        time: now_rfc3339(),
        event: event.into(),
        subject: subject.into(),
        outcome: outcome.into(),
    }
}

/// Now, RFC 3339 UTC.
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn store_error(e: crate::store::StoreError) -> Error {
    Error::DeviceError(e.to_string())
}
