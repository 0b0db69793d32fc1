//! A spec-driven PKCS#11 3.0 conformance suite that drives any module by path.
//!
//! Cases are grouped by chapter of the specification (general purpose, slot and token,
//! session, object, key management, sign/verify, encrypt/decrypt, digest, random), each naming
//! the section it checks and asserting exact return codes, flags and bytes through the module's
//! raw function list. A Key4C V3 profile (PIN policy, lockout and PIN flags, role rules,
//! identity, key defaults) runs when the token reports model `Key4C V3` or when asked.
//!
//! The [`runner`] provisions a token it may destroy, runs every case in worker processes (a
//! module that crashes or hangs fails the case it was in, not the report), applies an
//! expected-deviation file ([`expected`]) and writes a terminal summary, `report.md`,
//! `junit.xml` and `results.json` ([`report`]). It never brute-forces a PIN ([`guard`]).

#![warn(missing_docs)]
#![allow(clippy::macro_metavars_in_unsafe)]

pub mod case;
pub mod cases;
pub mod ctx;
pub mod expected;
pub mod guard;
pub mod module;
pub mod names;
pub mod pinvec;
pub mod protocol;
pub mod report;
pub mod runner;
pub mod worker;
