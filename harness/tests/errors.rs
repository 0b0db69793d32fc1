//! Modules that cannot be used are reported in one sentence, never with a panic.

mod common;

use std::process::Command;

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .output()
        .expect("run the harness");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_missing_module_is_one_error_line() {
    let (ok, _, err) = run(&["jwt", "--module", "/nonexistent/libnothing.so"]);
    assert!(!ok);
    assert!(
        err.starts_with("harness: cannot load /nonexistent/libnothing.so"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_library_without_pkcs11_symbols_is_reported() {
    let libm = "/lib/x86_64-linux-gnu/libm.so.6";
    if !common::require::check(&[common::require::file(libm, "apt-get install libc6")]) {
        return;
    }
    let (ok, _, err) = run(&["jwt", "--module", libm]);
    assert!(!ok);
    assert!(err.contains("C_GetFunctionList"), "{err}");
}

#[test]
fn bench_reports_an_unusable_module_and_measures_the_others() {
    let Some(softhsm) = common::softhsm() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("bench.json");
    let (ok, _, err) = run(&[
        "bench",
        "--quick",
        "--module",
        "/nonexistent/libnothing.so",
        "--module",
        softhsm.to_str().expect("UTF-8 path"),
        "--find-sizes",
        "10",
        "--threads",
        "1",
        "--cold-starts",
        "0",
        "--json",
        json.to_str().expect("UTF-8 path"),
    ]);
    assert!(!ok, "a module that cannot be loaded fails the run");
    assert!(err.contains("could not benchmark nothing"), "{err}");
    let report = common::read_json(&json);
    let modules = report["modules"].as_array().expect("modules");
    assert!(modules[0]["status"]
        .as_str()
        .unwrap_or("")
        .starts_with("failed: cannot load"));
    assert_eq!(modules[1]["status"], "ok");
}

#[test]
fn an_unknown_vendor_needs_a_slot_and_pins() {
    let proxy = "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so";
    if !common::require::check(&[common::require::file(
        proxy,
        "apt-get install p11-kit-modules",
    )]) {
        return;
    }
    let (ok, _, err) = run(&["jwt", "--module", proxy]);
    assert!(!ok);
    assert!(err.contains("--slot, --so-pin and --user-pin"), "{err}");
}
