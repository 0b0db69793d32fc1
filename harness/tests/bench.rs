//! `harness bench --quick`: the JSON report has every case, with positive numbers where the
//! module supports the operation; the SVG chart is written.

mod common;

use serde_json::Value;

/// Cases every module runs, whatever its mechanisms.
const ALWAYS: [&str; 4] = [
    "C_Login User",
    "cold start: process start to C_Login",
    // The durable writes (once provider/tests/store_costs.rs).
    "C_Login wrong User PIN (durable failure counter)",
    "keygen P-256 token key pair (durable write)",
];

fn positive(v: &Value, path: &str) -> f64 {
    let x = v.pointer(path).and_then(Value::as_f64).unwrap_or(-1.0);
    assert!(x > 0.0, "{path} is {x} in {v}");
    x
}

#[test]
fn quick_bench_reports_every_case() {
    // Both modules: each is required (a missing one fails in CI), so none is benched alone.
    let (Some(softhsm), Some(key4c)) = (common::softhsm(), common::key4c()) else {
        return;
    };
    let modules = [softhsm, key4c];
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("bench.json");
    let svg = dir.path().join("bench.svg");
    let mut args = vec!["bench".to_string(), "--quick".into(), "--raw".into()];
    for m in &modules {
        args.push("--module".into());
        args.push(m.display().to_string());
    }
    args.extend([
        "--json".into(),
        json.display().to_string(),
        "--svg".into(),
        svg.display().to_string(),
    ]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = common::harness(&argv);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("sign CKM_ECDSA P-256"), "{table}");

    let report = common::read_json(&json);
    assert_eq!(report["settings"]["quick"], true);
    let reports = report["modules"].as_array().expect("modules");
    assert_eq!(
        reports.len(),
        modules.len() + 1,
        "one per module, then aws-lc-rs"
    );
    for (m, path) in reports.iter().zip(&modules) {
        assert_eq!(m["status"], "ok", "{m}");
        let results = m["results"].as_array().expect("results");
        let case = |name: &str| {
            results
                .iter()
                .find(|r| r["case"] == name)
                .unwrap_or_else(|| panic!("{}: no case {name}", path.display()))
        };
        for name in ALWAYS {
            let r = case(name);
            assert_eq!(r["status"], "ok", "{r}");
        }
        let mut supported = 0;
        for r in results {
            let status = r["status"].as_str().expect("status");
            assert!(!status.starts_with("failed"), "{}: {r}", path.display());
            if status == "ok" {
                supported += 1;
                positive(r, "/ops_per_sec/min");
                positive(r, "/ops_per_sec/median");
                positive(r, "/ops_per_sec/max");
                positive(r, "/latency_us/p50");
                positive(r, "/latency_us/p99");
                positive(r, "/ops");
            }
        }
        if common::is_softhsm(path) {
            // SoftHSM2 has every mechanism but CKM_ECDSA_SHA256; RSA-3072 is left out by --quick.
            for name in [
                "sign CKM_ECDSA P-256",
                "verify CKM_ECDSA P-384",
                "sign CKM_SHA256_RSA_PKCS_PSS RSA-2048",
                "sign CKM_EDDSA Ed25519",
                "verify CKM_SHA256_HMAC secret-32B",
                "keygen P-256",
                "keygen RSA-2048",
                "C_CreateObject data object",
                "C_FindObjects 1 label among 100 objects",
                "sign CKM_ECDSA P-256, 2 threads",
                "cold start: process start to first signature",
            ] {
                assert_eq!(case(name)["status"], "ok", "{name}");
            }
            assert!(case("sign CKM_ECDSA_SHA256 P-256")["status"]
                .as_str()
                .unwrap_or("")
                .starts_with("not supported: CKR_MECHANISM_INVALID"));
            assert_eq!(
                case("sign CKM_SHA256_RSA_PKCS RSA-3072")["status"],
                "skipped: --quick"
            );
            assert_eq!(case("sign CKM_ECDSA P-256")["ratio_vs_first"], 1.0);
        }
        println!("{}: {supported} cases measured", path.display());
    }
    let raw = reports.last().expect("aws-lc-rs");
    assert_eq!(raw["name"], "aws-lc-rs");
    // Sign and verify of three algorithms, and one offline PIN guess (PBKDF2 x 600,000).
    assert_eq!(raw["results"].as_array().map(Vec::len), Some(7));
    let kdf = raw["results"]
        .as_array()
        .and_then(|r| r.iter().find(|c| c["group"] == "kdf"))
        .expect("the PBKDF2 case");
    assert_eq!(
        kdf["case"],
        "PBKDF2-HMAC-SHA256 x 600,000 (one offline PIN guess)"
    );
    assert_eq!(kdf["status"], "ok");

    let chart = std::fs::read_to_string(&svg).expect("the SVG chart");
    assert!(chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"));
    assert!(chart.contains("sign CKM_ECDSA P-256"));
}
