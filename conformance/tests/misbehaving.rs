//! A module that crashes in one call and hangs in another does not take the report down: the
//! two cases fail (crash / timeout), the others run in a new worker.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use conformance::report::Status;

#[test]
fn a_crashing_or_hanging_module_fails_its_cases_and_the_report_is_written() {
    if !require::check(&[
        require::softhsm2(),
        require::p11_kit_header(),
        require::tool("cc", "apt-get install gcc"),
    ]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let so = dir.path().join("libmisbehaving.so");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/misbehaving.c");
    let cc = Command::new("cc")
        .args(["-shared", "-fPIC", "-I/usr/include/p11-kit-1", "-o"])
        .arg(&so)
        .arg(&src)
        .arg("-ldl")
        .output();
    // The compiler and header are there (checked above): a failed build is a failure.
    match cc {
        Ok(o) => assert!(
            o.status.success(),
            "cc failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("cannot run cc: {e}"),
    }
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\n",
            tokens.display()
        ),
    )
    .unwrap();
    let reports = dir.path().join("report");
    let out = run(
        &[
            "--module",
            so.to_str().unwrap(),
            "--so-pin",
            SO_PIN,
            "--user-pin",
            USER_PIN,
            "--profile",
            "generic",
            "--case-timeout",
            "2",
            "--only",
            "RNG-",
            "--only",
            "DIG-001",
            "--report-dir",
            reports.to_str().unwrap(),
        ],
        &[
            ("SOFTHSM2_CONF", &conf),
            ("WRAPPED_MODULE", Path::new(require::SOFTHSM2)),
        ],
    );
    assert_reports(&reports, &out);
    let report = results(&reports);
    let summary = report.summary();
    let get = |id: &str| {
        report
            .records
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("{id} missing\n{summary}"))
    };
    let crash = get("RNG-001");
    assert_eq!(crash.status, Status::Fail, "{summary}");
    assert!(crash.detail.contains("signal 11"), "{}", crash.detail);
    let hang = get("RNG-005");
    assert_eq!(hang.status, Status::Fail, "{summary}");
    assert!(hang.detail.contains("timeout"), "{}", hang.detail);
    assert_eq!(get("DIG-001").status, Status::Pass, "{summary}");
    assert_eq!(out.status.code(), Some(1), "{summary}");
}
