//! Test support: which PKCS#11 modules to drive, and running the harness binary.
//!
//! The modules are SoftHSM2 and key4c's built `libkey4c_pkcs11.so`; a missing one fails the
//! test in CI and is reported as SKIPPED elsewhere (`require`, the workspace's one rule). Every keyed scenario of the harness
//! depends on the module's `C_GetMechanismList`, so a test covers key4c as far as its
//! mechanisms go, and automatically grows with them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "../../../test-support/require.rs"]
pub mod require;

/// Where Debian's softhsm2 package puts the module.
pub const SOFTHSM: &str = require::SOFTHSM2;

/// SoftHSM2's module; absent: fails in CI, `None` after printing SKIPPED elsewhere.
pub fn softhsm() -> Option<PathBuf> {
    require::check(&[require::softhsm2()]).then(|| PathBuf::from(SOFTHSM))
}

/// key4c's module: `KEY4C_MODULE` if set, else the one built next to this test (the same
/// target directory and profile, as `cargo test --workspace` builds it), else
/// `target/{debug,release}` of the workspace or of `CARGO_TARGET_DIR`.
pub fn key4c() -> Option<PathBuf> {
    const FILE: &str = "libkey4c_pkcs11.so";
    if let Some(p) = std::env::var_os("KEY4C_MODULE") {
        return Some(PathBuf::from(p));
    }
    let mut candidates = Vec::new();
    // <target>/<profile>/deps/<test binary>: `cargo test` leaves the fresh module in deps/
    // and copies it up to <profile>/ only on `cargo build`.
    if let Ok(exe) = std::env::current_exe() {
        if let Some(deps) = exe.parent() {
            candidates.push(deps.join(FILE));
            if let Some(profile_dir) = deps.parent() {
                candidates.push(profile_dir.join(FILE));
            }
        }
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut targets = vec![workspace.join("target")];
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        targets.push(PathBuf::from(t));
    }
    for t in targets {
        for profile in ["debug", "release"] {
            candidates.push(t.join(profile).join(FILE));
        }
    }
    let found = candidates.into_iter().find(|p| p.exists());
    match &found {
        Some(p) => println!("key4c module: {}", p.display()),
        // In CI the module is always built first: its absence is a failure, not a skip.
        None => {
            require::check(&[require::custom(
                "key4c's module libkey4c_pkcs11.so",
                false,
                "cargo build -p key4c",
            )]);
        }
    }
    found
}

/// Every module to test: SoftHSM2 and key4c, those that are present.
pub fn modules() -> Vec<PathBuf> {
    softhsm().into_iter().chain(key4c()).collect()
}

/// True for SoftHSM2's module.
pub fn is_softhsm(p: &Path) -> bool {
    p.to_string_lossy().contains("softhsm")
}

/// Runs the harness with these arguments; panics with its output when it fails.
pub fn harness(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .output()
        .expect("run the harness binary");
    assert!(
        out.status.success(),
        "harness {} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Reads a JSON file the harness wrote.
pub fn read_json(p: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", p.display()))
}
