//! The workspace's one rule for a test whose required component is missing (included by every
//! crate's `tests/common/mod.rs` with `#[path]`, so the rule exists once):
//!
//! - with the `CI` environment variable set (CI sets it, and so does `.ci/run`, hence a local
//!   `scripts/test`), the test **fails**, naming what is missing and what installs it;
//! - otherwise it prints `SKIPPED <test>: ...` straight to stderr (not captured by libtest,
//!   so it is seen) with the same advice, and the caller returns.
//!
//! `scripts/install-deps` installs every package named here.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

/// One component a test needs: what it is, whether it is there, what installs it.
pub struct Need {
    what: String,
    present: bool,
    install: String,
}

/// A file (a library, a header, a data file) that `install` provides.
pub fn file(path: impl AsRef<Path>, install: &str) -> Need {
    let path = path.as_ref();
    Need {
        what: path.display().to_string(),
        present: path.exists(),
        install: install.to_string(),
    }
}

/// An executable on PATH that `install` provides.
pub fn tool(name: &str, install: &str) -> Need {
    Need {
        what: format!("`{name}` on PATH"),
        present: which(name).is_some(),
        install: install.to_string(),
    }
}

/// Root (euid 0): CI runs as root, so a root-only test always runs there.
pub fn root(why: &str) -> Need {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc_geteuid() };
    Need {
        what: format!("root ({why})"),
        present: euid == 0,
        install: "run the tests as root (CI does)".into(),
    }
}

/// Something only the caller can judge (a compiler that builds a helper, a mount).
pub fn custom(what: &str, present: bool, install: &str) -> Need {
    Need {
        what: what.to_string(),
        present,
        install: install.to_string(),
    }
}

/// SoftHSM2's module as Debian's softhsm2 package installs it.
pub const SOFTHSM2: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// SoftHSM2's module.
pub fn softhsm2() -> Need {
    file(SOFTHSM2, "apt-get install softhsm2")
}

/// The PKCS#11 header of p11-kit (the C test modules include it).
pub fn p11_kit_header() -> Need {
    file(
        "/usr/include/p11-kit-1/p11-kit/pkcs11.h",
        "apt-get install libp11-kit-dev",
    )
}

/// True when every need is met. Otherwise fails the test when `CI` is set, and elsewhere
/// prints what to install and returns false (the test returns without checking anything).
/// The test is named by its thread (libtest names each test's thread after the test).
pub fn check(needs: &[Need]) -> bool {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("this test");
    let missing: Vec<String> = needs
        .iter()
        .filter(|n| !n.present)
        .map(|n| format!("{} missing ({})", n.what, n.install))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let what = missing.join("; ");
    if in_ci() {
        panic!(
            "{test}: {what}. CI is set, so a missing component fails the test: run scripts/install-deps"
        );
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {what}. Run scripts/install-deps (with CI set this test fails)"
    );
    false
}

/// Whether this run is CI's (env `CI` set).
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// The path of an executable on PATH.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
