//! The suite against our own module: every case passes or does not apply, except the known
//! deviations listed in expected/key4c.toml (each an open bug of the provider).

mod common;

use common::*;
use conformance::case::Chapter;
use conformance::report::Status;

#[test]
fn key4c_passes_every_case() {
    let module = key4c_module().expect(
        "no libkey4c_pkcs11.so found under target/{debug,release} or target/debug/deps: \
         build it with `cargo build -p key4c`",
    );
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let conf = dir.path().join("key4c.toml");
    std::fs::write(&conf, "kdf_iterations = 1000\n").unwrap();
    let reports = dir.path().join("report");
    let expected = workspace().join("conformance/expected/key4c.toml");
    let out = run(
        &[
            "--module",
            module.to_str().unwrap(),
            "--so-pin",
            SO_PIN,
            "--user-pin",
            USER_PIN,
            "--report-dir",
            reports.to_str().unwrap(),
            "--expected",
            expected.to_str().unwrap(),
        ],
        &[("KEY4C_STORE", &store), ("KEY4C_CONF", &conf)],
    );
    assert_reports(&reports, &out);
    let report = results(&reports);
    let summary = report.summary();
    assert!(
        report.key4c_profile,
        "the Key4C profile did not run:\n{summary}"
    );
    assert!(
        report.records.len() >= 300,
        "only {} cases:\n{summary}",
        report.records.len()
    );
    let bad = ids_with(&report, &[Status::Fail, Status::UnexpectedPass]);
    assert!(
        bad.is_empty(),
        "cases failed against key4c: {bad:?}\n{summary}"
    );
    // N/A is pinned, both ways: exactly the listed cases, each for its listed detail.
    let pinned = not_applicable(&workspace().join("conformance/expected/key4c-na.toml"));
    let na: std::collections::BTreeMap<String, String> = report
        .records
        .iter()
        .filter(|r| r.status == Status::NotApplicable)
        .map(|r| (r.id.clone(), r.detail.clone()))
        .collect();
    let unlisted: Vec<_> = na.keys().filter(|id| !pinned.contains_key(*id)).collect();
    let gone: Vec<_> = pinned.keys().filter(|id| !na.contains_key(*id)).collect();
    assert!(
        unlisted.is_empty() && gone.is_empty(),
        "N/A changed: new N/A cases {unlisted:?} (a function or mechanism stopped working?), \
         listed N/A cases that now run {gone:?} (delete them from expected/key4c-na.toml)\n{summary}"
    );
    for (id, detail) in &na {
        assert_eq!(detail, &pinned[id], "{id} is N/A for another reason");
    }
    // The token was created by the suite, so every lockout case ran.
    let lockout: Vec<_> = report
        .records
        .iter()
        .filter(|r| r.chapter == Chapter::Key4cLockout)
        .collect();
    assert!(
        lockout.iter().all(|r| r.status == Status::Pass),
        "lockout cases:\n{summary}"
    );
    assert!(lockout.iter().any(|r| r.id == "K4C-LOCK-S3"));
    // Wrong PINs are counted and reported.
    assert!(report.guard.total[0] > 0 && report.guard.total[1] > 0);
    let md = std::fs::read_to_string(reports.join("report.md")).unwrap();
    assert!(
        md.contains("wrong PINs sent"),
        "report.md lacks the wrong-PIN count"
    );
    assert!(
        out.status.success(),
        "exit status {:?}\n{summary}",
        out.status
    );
}
