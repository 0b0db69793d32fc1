//! Storage: one sled database per token, opened by one process at a time.
//!
//! Layout (default tree): `format` → the store's format version, `service` → [`ServiceRecord`],
//! `token` → [`TokenRecord`] (absent until the first C_InitToken). Token objects live in the
//! `objects` tree. Every write that must survive a crash is flushed before the caller learns it
//! succeeded.

pub mod records;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use crate::crypto::master_key::{MAX_KDF_ITERATIONS, MIN_KDF_ITERATIONS};
use records::{
    decode, encode, AuditRecord, DecodeError, ServiceRecord, TokenRecord, FORMAT_VERSION,
};

const KEY_FORMAT: &[u8] = b"format";
const KEY_SERVICE: &[u8] = b"service";
const KEY_TOKEN: &[u8] = b"token";
const TREE_OBJECTS: &[u8] = b"objects";
const TREE_AUDIT: &[u8] = b"audit";
/// File in the store directory naming the process that has the store open.
pub const HOLDER_FILE: &str = "key4c.holder";
/// How long opening a store waits for this same process's previous instance to release it.
const OWN_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Why the store cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Another process (or another open in this one) holds the store.
    #[error("the store {path} is in use by {holder}; only one process can open a store at a time. To share one token between processes, run `p11-kit server` on this module and load p11-kit-client.so in the clients")]
    Locked {
        /// Store directory.
        path: PathBuf,
        /// Who holds it, as far as the holder file says.
        holder: String,
    },
    /// Written by a newer key4c: refused, left untouched.
    #[error("the store {path} was written by a newer key4c: {detail}; upgrade key4c, the store was not modified")]
    Newer {
        /// Store directory.
        path: PathBuf,
        /// What was newer.
        detail: String,
    },
    /// Damaged: refused, left untouched.
    #[error("the store {path} is corrupt ({detail}); it was not modified. Restore it from a backup or move it away to start a new token")]
    Corrupt {
        /// Store directory.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// An I/O failure (permissions, disk full, ...).
    #[error("store {path}: {detail}")]
    Io {
        /// Store directory.
        path: PathBuf,
        /// The failure.
        detail: String,
    },
}

/// An open token store.
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    objects: sled::Tree,
    audit: sled::Tree,
}

impl Store {
    /// Opens (creating if absent) the store in `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let io = |detail: String| StoreError::Io {
            path: path.to_path_buf(),
            detail,
        };
        std::fs::create_dir_all(path)
            .map_err(|e| io(format!("cannot create the directory: {e}")))?;
        // sled panics on some kinds of damage; a damaged store is an error, never a crash.
        let open = || {
            catch_unwind(AssertUnwindSafe(|| {
                sled::Config::new()
                    .path(path)
                    .flush_every_ms(None)
                    .mode(sled::Mode::LowSpace)
                    .open()
            }))
        };
        let is_lock = |e: &std::io::Error| {
            e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("lock")
        };
        // This process's previous instance (C_Finalize returned while calls in other threads,
        // or sled's own I/O threads, still hold it) lets go within moments: wait for it
        // rather than fail C_Initialize.
        let deadline = std::time::Instant::now() + OWN_LOCK_WAIT;
        let opened = loop {
            let opened = open();
            let own = matches!(&opened, Ok(Err(sled::Error::Io(e))) if is_lock(e))
                && read_holder(path).starts_with(&format!("process pid {} ", std::process::id()));
            if !own || std::time::Instant::now() >= deadline {
                break opened;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(sled::Error::Io(e))) if is_lock(&e) => {
                return Err(StoreError::Locked {
                    path: path.to_path_buf(),
                    holder: read_holder(path),
                });
            }
            Ok(Err(sled::Error::Io(e))) => return Err(io(e.to_string())),
            Ok(Err(e)) => {
                return Err(StoreError::Corrupt {
                    path: path.to_path_buf(),
                    detail: e.to_string(),
                })
            }
            Err(_) => {
                return Err(StoreError::Corrupt {
                    path: path.to_path_buf(),
                    detail: "the database could not be read".into(),
                })
            }
        };
        let objects = db.open_tree(TREE_OBJECTS).map_err(|e| io(e.to_string()))?;
        let audit = db.open_tree(TREE_AUDIT).map_err(|e| io(e.to_string()))?;
        let store = Store {
            path: path.to_path_buf(),
            db,
            objects,
            audit,
        };
        store.check_or_create_format()?;
        write_holder(path);
        Ok(store)
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_or_create_format(&self) -> Result<(), StoreError> {
        match self.get(KEY_FORMAT)? {
            Some(bytes) => {
                let version: u32 = self.decode(KEY_FORMAT, &bytes)?;
                if version > FORMAT_VERSION {
                    return Err(StoreError::Newer {
                        path: self.path.clone(),
                        detail: format!(
                            "store format {version}, this key4c reads up to {FORMAT_VERSION}"
                        ),
                    });
                }
                Ok(())
            }
            None if self.db.is_empty() && self.objects.is_empty() && self.audit.is_empty() => {
                let uuid = crate::crypto::random_array::<16>()
                    .map_err(|_| self.io("the random generator failed".into()))?;
                let uuid = *uuid::Builder::from_random_bytes(uuid)
                    .into_uuid()
                    .as_bytes();
                self.put(
                    KEY_SERVICE,
                    &ServiceRecord {
                        uuid,
                        api_key_sha256: None,
                    },
                )?;
                self.put(KEY_FORMAT, &FORMAT_VERSION)?;
                self.flush()
            }
            None => Err(StoreError::Corrupt {
                path: self.path.clone(),
                detail: "it has data but no format record".into(),
            }),
        }
    }

    /// The service record (created with the store).
    pub fn service(&self) -> Result<ServiceRecord, StoreError> {
        let bytes = self.get(KEY_SERVICE)?.ok_or_else(|| StoreError::Corrupt {
            path: self.path.clone(),
            detail: "the service record is missing".into(),
        })?;
        self.decode(KEY_SERVICE, &bytes)
    }

    /// Replaces the service record durably.
    pub fn put_service_durable(&self, service: &ServiceRecord) -> Result<(), StoreError> {
        self.put(KEY_SERVICE, service)?;
        self.flush()
    }

    /// Appends one audit record; durable once the next flush (every caller's own) returns.
    pub fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError> {
        let id = self.db.generate_id().map_err(|e| self.io(e.to_string()))?;
        let bytes = encode(record).map_err(|e| self.io(e))?;
        self.audit
            .insert(id.to_be_bytes(), bytes)
            .map_err(|e| self.io(e.to_string()))?;
        Ok(())
    }

    /// Appends one audit record and makes it durable.
    pub fn append_audit_durable(&self, record: &AuditRecord) -> Result<(), StoreError> {
        self.append_audit(record)?;
        self.flush()
    }

    /// The audit log, oldest first.
    pub fn audit_records(&self) -> Result<Vec<AuditRecord>, StoreError> {
        self.audit
            .iter()
            .map(|entry| {
                let (_, bytes) = entry.map_err(|e| self.io(e.to_string()))?;
                self.decode(b"audit", &bytes)
            })
            .collect()
    }

    /// The token record, `None` before the first C_InitToken.
    pub fn token(&self) -> Result<Option<TokenRecord>, StoreError> {
        let Some(bytes) = self.get(KEY_TOKEN)? else {
            return Ok(None);
        };
        let token: TokenRecord = self.decode(KEY_TOKEN, &bytes)?;
        // A tampered cost would make every login run for hours: refuse it like any damage.
        for pin in [&token.so, &token.user] {
            if let Some(w) = &pin.wrapped_master_key {
                if !(MIN_KDF_ITERATIONS..=MAX_KDF_ITERATIONS).contains(&w.iterations) {
                    return Err(StoreError::Corrupt {
                        path: self.path.clone(),
                        detail: format!(
                            "record \"token\": KDF iteration count {} is outside {MIN_KDF_ITERATIONS}..={MAX_KDF_ITERATIONS}",
                            w.iterations
                        ),
                    });
                }
            }
        }
        Ok(Some(token))
    }

    /// Writes the token record and makes it durable before returning.
    pub fn put_token_durable(&self, token: &TokenRecord) -> Result<(), StoreError> {
        self.put(KEY_TOKEN, token)?;
        self.flush()
    }

    /// Re-initialises the token: every object removed and the new token record written, as one
    /// durable unit.
    pub fn reinit_token_durable(&self, token: &TokenRecord) -> Result<(), StoreError> {
        self.objects.clear().map_err(|e| self.io(e.to_string()))?;
        self.put_token_durable(token)
    }

    /// Number of token objects in the store.
    pub fn object_count(&self) -> usize {
        self.objects.len()
    }

    /// A new, never used object record key.
    pub fn new_object_id(&self) -> Result<u64, StoreError> {
        self.db.generate_id().map_err(|e| self.io(e.to_string()))
    }

    /// Every object record, decoded.
    pub fn objects<T: serde::de::DeserializeOwned>(&self) -> Result<Vec<(u64, T)>, StoreError> {
        let mut out = Vec::with_capacity(self.objects.len());
        for entry in self.objects.iter() {
            let (key, bytes) = entry.map_err(|e| self.io(e.to_string()))?;
            let id = <[u8; 8]>::try_from(key.as_ref()).map_err(|_| StoreError::Corrupt {
                path: self.path.clone(),
                detail: "an object key is not 8 bytes".into(),
            })?;
            out.push((u64::from_be_bytes(id), self.decode(b"object", &bytes)?));
        }
        Ok(out)
    }

    /// Writes one object record and makes it durable before returning.
    pub fn put_object_durable<T: serde::Serialize>(
        &self,
        id: u64,
        record: &T,
    ) -> Result<(), StoreError> {
        let bytes = encode(record).map_err(|e| self.io(e))?;
        self.objects
            .insert(id.to_be_bytes(), bytes)
            .map_err(|e| self.io(e.to_string()))?;
        self.flush()
    }

    /// Writes several object records in one atomic batch, flushed before returning: after a
    /// crash either all of them are in the store or none is.
    pub fn put_objects_durable<T: serde::Serialize>(
        &self,
        records: &[(u64, T)],
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (id, record) in records {
            batch.insert(&id.to_be_bytes(), encode(record).map_err(|e| self.io(e))?);
        }
        self.objects
            .apply_batch(batch)
            .map_err(|e| self.io(e.to_string()))?;
        self.flush()
    }

    /// Deletes one object record durably.
    pub fn delete_object_durable(&self, id: u64) -> Result<(), StoreError> {
        self.objects
            .remove(id.to_be_bytes())
            .map_err(|e| self.io(e.to_string()))?;
        self.flush()
    }

    fn get(&self, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        self.db.get(key).map_err(|e| self.io(e.to_string()))
    }

    fn put<T: serde::Serialize>(&self, key: &[u8], value: &T) -> Result<(), StoreError> {
        let bytes = encode(value).map_err(|e| self.io(e))?;
        self.db
            .insert(key, bytes)
            .map_err(|e| self.io(e.to_string()))?;
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db
            .flush()
            .map_err(|e| self.io(format!("cannot make the write durable: {e}")))?;
        Ok(())
    }

    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
        bytes: &[u8],
    ) -> Result<T, StoreError> {
        let what = String::from_utf8_lossy(key);
        decode(bytes).map_err(|e| match e {
            DecodeError::Newer(v) => StoreError::Newer {
                path: self.path.clone(),
                detail: format!("record {what:?} has format {v}"),
            },
            DecodeError::Corrupt(d) => StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!("record {what:?}: {d}"),
            },
        })
    }

    fn io(&self, detail: String) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            detail,
        }
    }
}

fn write_holder(path: &Path) {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "?".into());
    let text = format!("pid {} ({exe})\n", std::process::id());
    if let Err(e) = std::fs::write(path.join(HOLDER_FILE), text) {
        log::debug!("cannot write the holder file in {}: {e}", path.display());
    }
}

fn read_holder(path: &Path) -> String {
    match std::fs::read_to_string(path.join(HOLDER_FILE)) {
        Ok(s) if !s.trim().is_empty() => format!("process {}", s.trim()),
        _ => "another process".into(),
    }
}
