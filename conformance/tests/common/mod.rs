//! Test support: find the modules, run the `conformance` binary, read its results.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use conformance::report::{Report, Status};

#[path = "../../../test-support/require.rs"]
pub mod require;

/// The SO and User PINs the tests use (valid under the Key4C policy).
pub const SO_PIN: &str = "So-Pin.2024x";
/// The User PIN.
pub const USER_PIN: &str = "Us3r#Pin.9k";

/// The workspace directory.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The freshest `libkey4c_pkcs11.so`: target/{debug,release}/ and target/debug/deps/, in the
/// target directory this test was built in and in the workspace's `target/`.
pub fn key4c_module() -> Option<PathBuf> {
    let mut roots = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        // <target>/<profile>/deps/<test binary>
        if let Some(target) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
            roots.push(target.to_path_buf());
        }
    }
    roots.push(workspace().join("target"));
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    for root in roots {
        for rel in [
            "debug/libkey4c_pkcs11.so",
            "release/libkey4c_pkcs11.so",
            "debug/deps/libkey4c_pkcs11.so",
        ] {
            let p = root.join(rel);
            if let Ok(t) = std::fs::metadata(&p).and_then(|m| m.modified()) {
                if best.as_ref().is_none_or(|(bt, _)| t > *bt) {
                    best = Some((t, p));
                }
            }
        }
    }
    best.map(|(_, p)| p)
}

/// Runs the `conformance` binary with these arguments and environment.
pub fn run(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_conformance"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run the conformance binary")
}

/// The report a run wrote.
pub fn results(dir: &Path) -> Report {
    let bytes = std::fs::read(dir.join("results.json")).expect("results.json written");
    serde_json::from_slice(&bytes).expect("results.json parses")
}

/// Ids of the cases with one of these statuses.
pub fn ids_with(report: &Report, statuses: &[Status]) -> BTreeSet<String> {
    report
        .records
        .iter()
        .filter(|r| statuses.contains(&r.status))
        .map(|r| r.id.clone())
        .collect()
}

/// Ids listed in an expected-deviation file.
pub fn expected_ids(file: &Path) -> BTreeSet<String> {
    conformance::expected::Expected::load(file)
        .expect("expected-deviation file")
        .deviations
        .into_iter()
        .map(|d| d.id)
        .collect()
}

/// Panics with the summary when the run did not write its reports.
pub fn assert_reports(dir: &Path, out: &Output) {
    for f in ["report.md", "junit.xml", "results.json"] {
        assert!(
            dir.join(f).exists(),
            "{f} not written; stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The pinned N/A list of a module (`expected/key4c-na.toml`): case id -> the exact detail
/// the suite reports. A case listed twice, or one without a reason, is an error.
pub fn not_applicable(file: &Path) -> std::collections::BTreeMap<String, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[allow(dead_code)]
        module: String,
        not_applicable: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Entry {
        id: String,
        detail: String,
        reason: String,
    }
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let parsed: File = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut out = std::collections::BTreeMap::new();
    for e in parsed.not_applicable {
        assert!(
            !e.reason.trim().is_empty(),
            "{}: {} has no reason",
            file.display(),
            e.id
        );
        assert!(
            out.insert(e.id.clone(), e.detail).is_none(),
            "{}: {} is listed twice",
            file.display(),
            e.id
        );
    }
    out
}
