//! The suite against SoftHSM2 from Debian: the report is produced, and the cases that fail are
//! exactly the ones expected/softhsm2.toml lists (so a change either way is noticed).

mod common;

use std::process::Command;

use common::*;
use conformance::report::Status;

const SOFTHSM2: &str = require::SOFTHSM2;

#[test]
fn softhsm2_fails_exactly_its_listed_deviations() {
    if !require::check(&[require::softhsm2()]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    let reports = dir.path().join("report");
    let expected = workspace().join("conformance/expected/softhsm2.toml");
    let out = run(
        &[
            "--module",
            SOFTHSM2,
            "--so-pin",
            SO_PIN,
            "--user-pin",
            USER_PIN,
            "--profile",
            "key4c",
            "--report-dir",
            reports.to_str().unwrap(),
            "--expected",
            expected.to_str().unwrap(),
        ],
        &[("SOFTHSM2_CONF", &conf)],
    );
    assert_reports(&reports, &out);
    let report = results(&reports);
    let summary = report.summary();
    let failed = ids_with(&report, &[Status::Fail, Status::ExpectedFail]);
    let listed = expected_ids(&expected);
    let new: Vec<_> = failed.difference(&listed).collect();
    let gone: Vec<_> = listed.difference(&failed).collect();
    assert!(
        new.is_empty() && gone.is_empty(),
        "SoftHSM2 changed: new failures {new:?}, listed deviations that no longer fail {gone:?}\n{summary}"
    );
    assert!(report.stale_expected.is_empty());
    let junit = std::fs::read_to_string(reports.join("junit.xml")).unwrap();
    assert!(junit.contains("<testsuites") && junit.contains("expected failure"));
    assert!(
        out.status.success(),
        "exit status {:?}\n{summary}",
        out.status
    );
}

#[test]
fn a_token_with_objects_is_refused_unless_destruction_is_allowed() {
    if !require::check(&[
        require::softhsm2(),
        require::tool("softhsm2-util", "apt-get install softhsm2"),
        require::tool("pkcs11-tool", "apt-get install opensc"),
    ]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
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
    let ok = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            "vendor",
            "--so-pin",
            SO_PIN,
            "--pin",
            USER_PIN,
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let data = dir.path().join("data.bin");
    std::fs::write(&data, b"keep me").unwrap();
    let ok = Command::new("pkcs11-tool")
        .args([
            "--module",
            SOFTHSM2,
            "--token-label",
            "vendor",
            "--login",
            "--pin",
            USER_PIN,
            "--write-object",
        ])
        .arg(&data)
        .args(["--type", "data", "--label", "keep", "--private"])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let reports = dir.path().join("report");
    let args = |extra: &'static [&'static str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "--module",
            SOFTHSM2,
            "--so-pin",
            SO_PIN,
            "--user-pin",
            USER_PIN,
            "--token-label",
            "vendor",
            "--only",
            "RNG-001",
            "--report-dir",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.push(reports.display().to_string());
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let refused = run(
        &args(&[]).iter().map(String::as_str).collect::<Vec<_>>(),
        &[("SOFTHSM2_CONF", &conf)],
    );
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("has 1 object(s)") && err.contains("--allow-destroy"),
        "{err}"
    );
    let allowed = run(
        &args(&["--allow-destroy"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &[("SOFTHSM2_CONF", &conf)],
    );
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stdout)
    );
    assert!(!results(&reports).info.fresh_token);
}
