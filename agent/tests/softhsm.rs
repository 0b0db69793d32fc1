//! The agent on another module: SoftHSM2, which has `CKM_ECDSA` but no `CKM_ECDSA_SHA*`, so
//! the agent hashes and the token signs the digest. Skipped (with a line saying so) only when
//! SoftHSM2 is not installed.

mod common;

use std::path::Path;
use std::process::Command;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use serde_json::{json, Value};

const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run a SoftHSM2 tool");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn es256_and_es384_through_softhsm2() {
    if !Path::new(SOFTHSM).exists() {
        println!("skipping: {SOFTHSM} is absent (scripts/install-deps installs softhsm2)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("softhsm2.conf");
    std::fs::create_dir(dir.path().join("tokens")).unwrap();
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}/tokens\nobjectstore.backend = file\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let tool = |program: &str| {
        let mut c = Command::new(program);
        c.env("SOFTHSM2_CONF", &conf);
        c
    };
    run(tool("softhsm2-util").args([
        "--init-token",
        "--free",
        "--label",
        "agent",
        "--so-pin",
        SO_PIN,
        "--pin",
        USER_PIN,
    ]));
    for (curve, id, label) in [
        ("EC:prime256v1", "01", "k-es256"),
        ("EC:secp384r1", "02", "k-es384"),
    ] {
        run(tool("pkcs11-tool").args([
            "--module",
            SOFTHSM,
            "--login",
            "--pin",
            USER_PIN,
            "--keypairgen",
            "--key-type",
            curve,
            "--id",
            id,
            "--label",
            label,
        ]));
    }
    let slots = run(tool("softhsm2-util").arg("--show-slots"));
    let serial = slots
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Serial number:"))
        .map(str::trim)
        .find(|s| s.len() == 16)
        .expect("the token's serial")
        .to_string();

    let config = dir.path().join("config.json");
    let v = json!({
        "server": {"ip": "", "port": 0, "tlsOptions": {"tlsType": 0}},
        "key4c": {"uuid": format!("{serial}0000000000000000"), "pin": USER_PIN, "apiKey": ""},
        "jwt": {"issuer": ISSUER},
        "agent": {"module": SOFTHSM, "listen": "127.0.0.1", "keyId": "01", "clients": [{"id": CLIENT, "secret": SECRET}]}
    });
    std::fs::write(&config, v.to_string()).unwrap();
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let agent = Running::start(&config, &dir.path().join("no-key4c.toml"))
        .unwrap_or_else(|(c, e)| panic!("{c:?}: {e}"));
    let jwks = call(agent.addr, "GET", "/v1/jwks", None, b"").await.json();
    for (kid, alg) in [("01", "ES256"), ("02", "ES384")] {
        let issued = issue(agent.addr, json!({"claims": {"sub": "alice"}, "kid": kid})).await;
        assert_eq!(issued["alg"], alg);
        let token = issued["token"].as_str().unwrap();
        let jwk: Value = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .unwrap()
            .clone();
        let key =
            jsonwebtoken::DecodingKey::from_jwk(&serde_json::from_value(jwk).unwrap()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(alg.parse().unwrap());
        validation.set_issuer(&[ISSUER]);
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .expect("jsonwebtoken accepts it")
            .claims;
        assert_eq!(claims["sub"], "alice");
        let sig = URL_SAFE_NO_PAD
            .decode(token.rsplit('.').next().unwrap())
            .unwrap();
        assert_eq!(sig.len(), if alg == "ES256" { 64 } else { 96 });
        let verified = post(agent.addr, "/v1/jwt/verify", json!({"token": token}))
            .await
            .json();
        assert_eq!(verified["valid"], true, "{verified}");
    }
}
