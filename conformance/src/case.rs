//! What a case is, how it ends, and the assertion helpers cases are written with.

use std::sync::Arc;

use pkcs11_sys::*;
use serde::{Deserialize, Serialize};

use crate::ctx::Ctx;
use crate::names::{ckr, ckr_list};

/// The spec chapter (or Key4C profile part) a case belongs to; reports group by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Chapter {
    /// PKCS#11 3.0 §5.4 general-purpose functions and §5.2-5.3 function lists / interfaces.
    General,
    /// §5.5 slot and token management.
    SlotToken,
    /// §5.6 session management and login.
    Session,
    /// §5.7 object management.
    Object,
    /// §5.14 key management.
    KeyManagement,
    /// §5.12-5.13 signing and verifying.
    SignVerify,
    /// §5.8-5.9 encryption and decryption.
    EncryptDecrypt,
    /// §5.10 message digesting.
    Digest,
    /// §5.15 random number generation.
    Random,
    /// Key4C profile: identity (key4c-v3-token.md §1).
    Key4cIdentity,
    /// Key4C profile: PIN policy (§2, pin-vectors.tsv).
    Key4cPinPolicy,
    /// Key4C profile: failed-login counters, lockout and the six PIN flags (§3).
    Key4cLockout,
    /// Key4C profile: who may do what (§4).
    Key4cRoles,
    /// Key4C profile: keys and mechanisms (§6).
    Key4cKeys,
}

impl Chapter {
    /// Every chapter, in report order.
    pub const ALL: [Chapter; 14] = [
        Chapter::General,
        Chapter::SlotToken,
        Chapter::Session,
        Chapter::Object,
        Chapter::KeyManagement,
        Chapter::SignVerify,
        Chapter::EncryptDecrypt,
        Chapter::Digest,
        Chapter::Random,
        Chapter::Key4cIdentity,
        Chapter::Key4cPinPolicy,
        Chapter::Key4cLockout,
        Chapter::Key4cRoles,
        Chapter::Key4cKeys,
    ];

    /// A heading for reports.
    pub fn title(self) -> &'static str {
        match self {
            Chapter::General => "General purpose (PKCS#11 3.0 §5.2-5.4, §5.16)",
            Chapter::SlotToken => "Slot and token management (§5.5)",
            Chapter::Session => "Session management (§5.6)",
            Chapter::Object => "Object management (§5.7)",
            Chapter::KeyManagement => "Key management (§5.14)",
            Chapter::SignVerify => "Signing and verifying (§5.12-5.13)",
            Chapter::EncryptDecrypt => "Encryption and decryption (§5.8-5.9)",
            Chapter::Digest => "Message digesting (§5.10)",
            Chapter::Random => "Random number generation (§5.15)",
            Chapter::Key4cIdentity => "Key4C profile: identity (key4c-v3-token.md §1)",
            Chapter::Key4cPinPolicy => "Key4C profile: PIN policy (§2, pin-vectors.tsv)",
            Chapter::Key4cLockout => "Key4C profile: counters, lockout, PIN flags (§3)",
            Chapter::Key4cRoles => "Key4C profile: who may do what (§4)",
            Chapter::Key4cKeys => "Key4C profile: keys and mechanisms (§6)",
        }
    }

    /// A short name for JUnit suites.
    pub fn short(self) -> &'static str {
        match self {
            Chapter::General => "general",
            Chapter::SlotToken => "slot-token",
            Chapter::Session => "session",
            Chapter::Object => "object",
            Chapter::KeyManagement => "key-management",
            Chapter::SignVerify => "sign-verify",
            Chapter::EncryptDecrypt => "encrypt-decrypt",
            Chapter::Digest => "digest",
            Chapter::Random => "random",
            Chapter::Key4cIdentity => "key4c-identity",
            Chapter::Key4cPinPolicy => "key4c-pin-policy",
            Chapter::Key4cLockout => "key4c-lockout",
            Chapter::Key4cRoles => "key4c-roles",
            Chapter::Key4cKeys => "key4c-keys",
        }
    }

    /// Whether the chapter belongs to the Key4C profile.
    pub fn is_key4c(self) -> bool {
        matches!(
            self,
            Chapter::Key4cIdentity
                | Chapter::Key4cPinPolicy
                | Chapter::Key4cLockout
                | Chapter::Key4cRoles
                | Chapter::Key4cKeys
        )
    }
}

/// How a case must be run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// In the shared worker, with the module initialised and the token provisioned.
    Shared,
    /// Alone in a new process, with the module loaded but not initialised.
    Fresh,
    /// With the User-lockout group, after every other case, then the token is re-initialised.
    UserLockout,
    /// With the SO-lockout group, last of all; only on a token the suite created from scratch
    /// or with `--allow-lockout`.
    SoLockout,
}

/// The body of a case.
pub type CaseFn = Arc<dyn Fn(&mut Ctx) -> CaseResult + Send + Sync>;

/// One conformance case.
#[derive(Clone)]
pub struct Case {
    /// Stable identifier (`OBJ-012`), used by expected-deviation files.
    pub id: String,
    /// Where it is reported.
    pub chapter: Chapter,
    /// The specification section it checks (`5.7 C_CreateObject`).
    pub section: String,
    /// What it checks, in one line.
    pub title: String,
    /// The expected result, in words (`CKR_TEMPLATE_INCONSISTENT`).
    pub expect: String,
    /// How it is run.
    pub mode: Mode,
    /// The body.
    pub run: CaseFn,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case")
            .field("id", &self.id)
            .field("chapter", &self.chapter)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// Why a case did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The module did not do what the specification says: returned vs expected.
    Fail(String),
    /// The case does not apply: the mechanism or function is absent where the spec allows it.
    NotApplicable(String),
}

/// What a case body returns.
pub type CaseResult = Result<(), Failure>;

/// How one case ended in the worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "detail", rename_all = "snake_case")]
pub enum Outcome {
    /// As specified.
    Pass,
    /// Not as specified; the detail names the call, what it returned and what was expected.
    Fail(String),
    /// Not applicable, with the reason.
    NotApplicable(String),
}

impl From<CaseResult> for Outcome {
    fn from(r: CaseResult) -> Outcome {
        match r {
            Ok(()) => Outcome::Pass,
            Err(Failure::Fail(s)) => Outcome::Fail(s),
            Err(Failure::NotApplicable(s)) => Outcome::NotApplicable(s),
        }
    }
}

/// A failed case.
pub fn fail<T>(msg: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::Fail(msg.into()))
}

/// A case that does not apply.
pub fn na<T>(msg: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::NotApplicable(msg.into()))
}

/// `what` must have returned `want`.
pub fn rv(what: &str, got: CK_RV, want: CK_RV) -> CaseResult {
    if got == want {
        Ok(())
    } else {
        fail(format!(
            "{what}: returned {}, expected {}",
            ckr(got),
            ckr(want)
        ))
    }
}

/// `what` must have returned one of `wants` (where the specification allows several).
pub fn rv_in(what: &str, got: CK_RV, wants: &[CK_RV]) -> CaseResult {
    if wants.contains(&got) {
        Ok(())
    } else {
        fail(format!(
            "{what}: returned {}, expected {}",
            ckr(got),
            ckr_list(wants)
        ))
    }
}

/// A call that prepares a case must succeed; CKR_FUNCTION_NOT_SUPPORTED makes the case N/A.
pub fn setup(what: &str, got: CK_RV) -> CaseResult {
    match got {
        CKR_OK => Ok(()),
        CKR_FUNCTION_NOT_SUPPORTED => na(format!("{what}: CKR_FUNCTION_NOT_SUPPORTED")),
        _ => fail(format!(
            "setup {what}: returned {}, expected CKR_OK",
            ckr(got)
        )),
    }
}

/// For functions the module may leave out: CKR_FUNCTION_NOT_SUPPORTED makes the case N/A.
pub fn optional(what: &str, got: CK_RV) -> CaseResult {
    if got == CKR_FUNCTION_NOT_SUPPORTED {
        na(format!("{what}: CKR_FUNCTION_NOT_SUPPORTED"))
    } else {
        Ok(())
    }
}

/// A condition the specification requires.
pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> CaseResult {
    if cond {
        Ok(())
    } else {
        fail(msg())
    }
}

/// Bytes as lower-case hex (shortened past 64 bytes), for failure messages.
pub fn hex(b: &[u8]) -> String {
    let s: String = b.iter().take(64).map(|x| format!("{x:02x}")).collect();
    if b.len() > 64 {
        format!("{s}...({} bytes)", b.len())
    } else {
        s
    }
}

/// Decodes hex written in the source (test vectors). Whitespace is ignored.
pub fn unhex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => 0,
        })
        .collect();
    digits
        .chunks(2)
        .map(|p| (p[0] << 4) | p.get(1).copied().unwrap_or(0))
        .collect()
}

/// Byte strings must be equal.
pub fn same_bytes(what: &str, got: &[u8], want: &[u8]) -> CaseResult {
    if got == want {
        Ok(())
    } else {
        fail(format!("{what}: got {}, expected {}", hex(got), hex(want)))
    }
}
