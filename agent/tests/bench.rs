//! `key4c-jwt-server bench` runs end to end: both phases measured, no request failed.

mod common;

use std::process::Command;

use common::*;

#[test]
fn bench_reports_c_sign_and_issue_rates_without_errors() {
    let service = Service::create(&[("ES256", "k-es256")]);
    let config = service.config("config.json", |_| {});
    let out = Command::new(agent_bin())
        .args(["bench", "-config"])
        .arg(&config)
        .args([
            "--connections",
            "4",
            "--seconds",
            "1",
            "--sign-seconds",
            "1",
            "--json",
        ])
        .env("KEY4C_CONF", &service.module_conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["alg"], "ES256");
    assert_eq!(report["connections"], 4);
    for phase in [
        "c_sign_1_thread",
        "c_sign_pool_threads",
        "http_issue",
        "c_sign_1_thread_after",
    ] {
        assert_eq!(report[phase]["errors"], 0, "{phase}: {report}");
        assert!(
            report[phase]["ops"].as_u64().unwrap() > 0,
            "{phase}: {report}"
        );
        let (p50, p99) = (
            report[phase]["p50_ms"].as_f64().unwrap(),
            report[phase]["p99_ms"].as_f64().unwrap(),
        );
        assert!(p50 > 0.0 && p50 <= p99, "{phase}: {report}");
    }
}
