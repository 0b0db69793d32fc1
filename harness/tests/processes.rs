//! `harness bench --processes`: workers in separate processes on one token, then the check by
//! a new process. A short run: the point is that every part works end to end (workers start,
//! run every kind of operation, report; the check sees every acknowledged write), not the
//! figures.

mod common;

#[test]
fn processes_share_one_token_and_lose_no_acknowledged_write() {
    let (Some(softhsm), Some(key4c)) = (common::softhsm(), common::key4c()) else {
        return;
    };
    let modules = [key4c, softhsm];
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("processes.json");
    let mut args = vec!["bench".to_string()];
    for m in &modules {
        args.push("--module".into());
        args.push(m.display().to_string());
    }
    args.extend(
        [
            "--processes",
            "1,2",
            "--seconds",
            "2",
            // Destroys only follow creates, so both happen in two seconds.
            "--mix",
            "sign=25,create=35,destroy=25,find=15",
            "--json",
        ]
        .map(String::from),
    );
    args.push(json.display().to_string());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    // Exit 0: every run was made and checked, and no acknowledged write was lost.
    let out = common::harness(&argv);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("write p99"), "{table}");

    let report = common::read_json(&json);
    assert_eq!(report["settings"]["seconds"], 2);
    let reports = report["modules"].as_array().expect("modules");
    assert_eq!(reports.len(), modules.len());
    for (m, vendor) in reports.iter().zip(["key4c", "softhsm2"]) {
        assert_eq!(m["vendor"], vendor, "{m}");
        let runs = m["runs"].as_array().expect("runs");
        assert_eq!(runs.len(), 2, "{m}");
        for (run, n) in runs.iter().zip([1, 2]) {
            assert_eq!(run["processes"], n, "{run}");
            assert_eq!(run["status"], "ok", "{run}");
            assert_eq!(run["check_status"], "ok", "{run}");
            let lost = &run["lost"];
            assert_eq!(
                lost["live_missing"].as_array().map(Vec::len),
                Some(0),
                "{run}"
            );
            assert_eq!(
                lost["gone_present"].as_array().map(Vec::len),
                Some(0),
                "{run}"
            );
            let workers = run["workers"].as_array().expect("workers");
            assert_eq!(workers.len(), n, "{run}");
            for w in workers {
                assert_eq!(w["status"], "ok", "{w}");
                assert_eq!(w["began"], true, "{w}");
            }
            for kind in ["sign", "create", "destroy", "find", "start", "finalize"] {
                let ok = run["calls"][kind]["ok"].as_u64().unwrap_or(0);
                assert!(ok > 0, "{kind} never succeeded: {run}");
            }
            assert!(run["ops_per_sec"].as_f64().unwrap_or(0.0) > 0.0, "{run}");
            assert!(run["acknowledged_live"].as_u64().unwrap_or(0) > 0, "{run}");
            assert!(run["acknowledged_gone"].as_u64().unwrap_or(0) > 0, "{run}");
        }
    }
}
