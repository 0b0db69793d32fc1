//! `harness compare`: the same module twice shows no difference; SoftHSM2 against key4c shows
//! key4c's PIN policy and lockout.

mod common;

use serde_json::Value;

fn compare(modules: &[&std::path::Path]) -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("compare.json");
    let md = dir.path().join("compare.md");
    let mut args = vec!["compare".to_string()];
    for m in modules {
        args.push("--module".into());
        args.push(m.display().to_string());
    }
    args.extend([
        "--json".into(),
        json.display().to_string(),
        "--markdown".into(),
        md.display().to_string(),
    ]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    common::harness(&argv);
    let markdown = std::fs::read_to_string(&md).expect("the Markdown table");
    assert!(markdown.contains("| section | check |"), "{markdown}");
    common::read_json(&json)
}

fn value<'a>(c: &'a Value, section: &str, check: &str, i: usize) -> &'a str {
    c["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["section"] == section && r["check"] == check)
        .and_then(|r| r["values"][i].as_str())
        .unwrap_or_else(|| panic!("no row {section} / {check}"))
}

#[test]
fn the_same_module_twice_does_not_differ() {
    for module in common::modules() {
        let c = compare(&[&module, &module]);
        let differing: Vec<&Value> = c["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .filter(|r| r["differs"] == true)
            .collect();
        assert!(differing.is_empty(), "{}: {differing:#?}", module.display());
        assert_eq!(c["differences"], 0);
        assert_eq!(value(&c, "module", "open and provision", 0), "ok");
        let rows = c["rows"].as_array().expect("rows").len();
        assert!(rows > 60, "only {rows} rows");
    }
}

#[test]
fn key4c_policy_and_lockout_differ_from_softhsm() {
    let (Some(softhsm), Some(key4c)) = (common::softhsm(), common::key4c()) else {
        return;
    };
    let c = compare(&[&softhsm, &key4c]);
    assert!(c["differences"].as_u64().unwrap_or(0) > 0);
    assert_eq!(value(&c, "identity", "C_GetTokenInfo model", 1), "Key4C V3");
    assert_eq!(
        value(
            &c,
            "identity",
            "C_GetTokenInfo ulMinPinLen / ulMaxPinLen",
            1
        ),
        "9 / 255"
    );
    assert_eq!(
        value(
            &c,
            "PIN policy",
            "C_InitPIN ascending run 1234 \"Xy.1234zq\"",
            1
        ),
        "CKR_PIN_TOO_WEAK"
    );
    assert_eq!(
        value(
            &c,
            "PIN policy",
            "C_InitPIN tab character \"Ab1.\\tx9yz\"",
            1
        ),
        "CKR_PIN_INVALID"
    );
    for i in 1..=4 {
        assert!(value(&c, "lockout", &format!("wrong User PIN #{i}"), 1)
            .starts_with("CKR_PIN_INCORRECT"),);
    }
    assert_eq!(
        value(&c, "lockout", "wrong User PIN #5", 1),
        "CKR_PIN_LOCKED; flags USER_COUNT_LOW USER_LOCKED"
    );
    assert!(value(&c, "lockout", "right User PIN after 5 wrong", 1).starts_with("CKR_PIN_LOCKED"));
    assert_eq!(
        value(&c, "lockout", "right User PIN after the unlock", 1),
        "CKR_OK"
    );
}
