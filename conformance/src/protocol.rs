//! What the runner and its worker processes exchange: the run configuration, a worker's task,
//! and the events a worker writes (one JSON object per line, flushed as they happen, so that
//! a module that kills its process loses nothing already reported).

use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::case::{Mode, Outcome};
use crate::guard::{PinGuard, Role};

/// One line of pin-vectors.tsv: a PIN and the CKR the Key4C policy gives it when it is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinVector {
    /// 1-based position among the vectors (gives the case its id).
    pub index: usize,
    /// The PIN bytes.
    pub pin: Vec<u8>,
    /// The PIN as written in the file.
    pub shown: String,
    /// The expected return code's name.
    pub expect: String,
}

/// Everything a run needs, decided by the runner and handed to every worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunConfig {
    /// The module.
    pub module: PathBuf,
    /// The SO PIN.
    pub so_pin: Vec<u8>,
    /// The User PIN.
    pub user_pin: Vec<u8>,
    /// The token label the suite gives the token (and finds it by afterwards).
    pub label: String,
    /// `--slot`: the slot to provision.
    pub slot: Option<u64>,
    /// `--token-label`: the existing token to provision.
    pub select_label: Option<String>,
    /// `--allow-destroy`: re-initialise a token that has objects.
    pub allow_destroy: bool,
    /// `--allow-lockout`: run the SO-lockout cases on a token the suite did not create.
    pub allow_lockout: bool,
    /// Run the Key4C profile.
    pub key4c: bool,
    /// The token was uninitialised when the suite found it (the suite created it).
    pub fresh_token: bool,
    /// The lockout limit the wrong-PIN guard assumes.
    pub pin_limit: u32,
    /// The token's slot as provisioning left it (in the provisioning process).
    pub provisioned_slot: Option<u64>,
    /// The PIN-policy vectors.
    pub pin_vectors: Vec<PinVector>,
}

/// What one worker process does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Task {
    /// Find the token, check it may be destroyed, (re-)initialise it and set the User PIN.
    Provision,
    /// Run these cases, in order.
    Cases {
        /// Case ids.
        ids: Vec<String>,
        /// Their mode (all the same).
        mode: Mode,
    },
}

/// A worker's instructions, written by the runner to a private file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerSpec {
    /// The run.
    pub cfg: RunConfig,
    /// The task.
    pub task: Task,
    /// The wrong-PIN counts so far.
    pub guard: PinGuard,
    /// Where to write events.
    pub events: PathBuf,
}

/// What provisioning found and did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProvisionInfo {
    /// The token's slot after provisioning.
    pub slot: u64,
    /// CK_INFO.cryptokiVersion.
    pub cryptoki_version: String,
    /// CK_INFO.manufacturerID.
    pub library_manufacturer: String,
    /// CK_INFO.libraryDescription.
    pub library_description: String,
    /// CK_INFO.libraryVersion.
    pub library_version: String,
    /// CK_TOKEN_INFO.model.
    pub model: String,
    /// CK_TOKEN_INFO.manufacturerID.
    pub token_manufacturer: String,
    /// CK_TOKEN_INFO.serialNumber.
    pub serial: String,
    /// The token was uninitialised when found.
    pub fresh_token: bool,
    /// Objects found on the token before it was re-initialised.
    pub objects_found: u64,
    /// The module offers the PKCS#11 3.0 interface.
    pub has_v3: bool,
    /// C_GetMechanismList.
    pub mechanisms: Vec<u64>,
}

/// One line of a worker's event file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Event {
    /// A case starts.
    Start {
        /// Case id.
        id: String,
    },
    /// A case ended.
    End {
        /// Case id.
        id: String,
        /// How.
        outcome: Outcome,
        /// Its duration.
        ms: u64,
    },
    /// A PIN was sent: wrong ones before they are sent, correct ones once accepted.
    Pin {
        /// Whose.
        role: Role,
        /// Correct (accepted) or wrong (about to be sent).
        correct: bool,
    },
    /// Provisioning finished.
    Provisioned(ProvisionInfo),
    /// The worker cannot go on; the run stops.
    Fatal {
        /// Why.
        reason: String,
    },
    /// Something the report should say.
    Note {
        /// What.
        text: String,
    },
}

/// Appends events to a worker's event file, one unbuffered write each.
pub struct EventSink {
    file: Option<std::fs::File>,
}

impl EventSink {
    /// Opens (creates) the event file.
    pub fn open(path: &std::path::Path) -> std::io::Result<EventSink> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(EventSink { file: Some(file) })
    }

    /// A sink that drops everything (for library users and unit tests).
    pub fn discard() -> EventSink {
        EventSink { file: None }
    }

    /// Writes one event to the file.
    pub fn emit(&mut self, event: &Event) {
        if let Some(f) = &mut self.file {
            if let Ok(mut line) = serde_json::to_vec(event) {
                line.push(b'\n');
                // One unbuffered write: once it returns, the kernel has the line even if the
                // module kills this process next. A lost event only weakens the report.
                let _ = f.write_all(&line);
            }
        }
    }
}

/// Reads the events a worker wrote (a torn last line, from a killed worker, is ignored).
pub fn read_events(path: &std::path::Path) -> Vec<Event> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
