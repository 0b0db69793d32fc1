//! `harness jwt` round trip: every token the module signs verifies with independent JWT code
//! (jsonwebtoken, and p521 for ES512), and a tampered copy is rejected by that code and by the
//! module's C_Verify.

mod common;

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

const ALL: [&str; 13] = [
    "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA",
    "HS256", "HS384", "HS512",
];

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Claims {
    sub: String,
    iat: u64,
    exp: u64,
}

/// Verifies a token with jsonwebtoken, or with p521 for ES512 (which jsonwebtoken lacks).
fn verify(
    token: &str,
    alg: &str,
    jwks: &JwkSet,
    raw_jwks: &Value,
    secrets: &JwkSet,
) -> Result<(), String> {
    // The header is read by hand: jsonwebtoken's Header does not know ES512.
    let header_b64 = token.split('.').next().unwrap_or("");
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    assert_eq!(header["alg"], alg);
    assert_eq!(header["typ"], "JWT");
    let kid = header["kid"]
        .as_str()
        .ok_or("no kid in the header")?
        .to_string();
    if alg == "ES512" {
        return verify_es512(token, &kid, raw_jwks);
    }
    let algorithm: Algorithm = alg.parse().map_err(|e| format!("{e}"))?;
    let set = if alg.starts_with("HS") { secrets } else { jwks };
    let jwk = set
        .find(&kid)
        .ok_or(format!("kid {kid} is not in the JWKS"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(algorithm);
    validation.set_required_spec_claims(&["exp", "iat", "sub"]);
    let data =
        jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| e.to_string())?;
    assert_eq!(data.claims.sub, "harness");
    assert!(data.claims.exp > data.claims.iat);
    assert_eq!(data.header.typ.as_deref(), Some("JWT"));
    Ok(())
}

fn verify_es512(token: &str, kid: &str, jwks: &Value) -> Result<(), String> {
    use p521::ecdsa::signature::Verifier;
    let jwk = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid))
        .ok_or(format!("kid {kid} is not in the JWKS"))?;
    assert_eq!(jwk["kty"], "EC");
    assert_eq!(jwk["crv"], "P-521");
    let coord = |c: &str| {
        URL_SAFE_NO_PAD
            .decode(jwk[c].as_str().unwrap_or(""))
            .map_err(|e| e.to_string())
    };
    let mut point = vec![0x04];
    point.extend(coord("x")?);
    point.extend(coord("y")?);
    let key = p521::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(|e| e.to_string())?;
    let (input, sig) = token.rsplit_once('.').ok_or("not a compact JWS")?;
    let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|e| e.to_string())?;
    let sig = p521::ecdsa::Signature::from_slice(&sig).map_err(|e| e.to_string())?;
    key.verify(input.as_bytes(), &sig)
        .map_err(|e| e.to_string())
}

/// The token with one bit of its signature flipped, and with one bit of its payload flipped
/// (re-encoded, so the copy is well-formed and only the signature check can catch it).
fn tampered(token: &str) -> [String; 2] {
    let parts: Vec<&str> = token.split('.').collect();
    let mut sig = URL_SAFE_NO_PAD
        .decode(parts[2])
        .expect("signature is base64url");
    sig[0] ^= 0x01;
    let bad_sig = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig));
    let payload = URL_SAFE_NO_PAD
        .decode(parts[1])
        .expect("payload is base64url");
    // Change the subject "harness" to "harnest": still valid JSON with the same claims.
    let text = String::from_utf8(payload).expect("payload is UTF-8");
    let changed = text.replace("\"harness\"", "\"harnest\"");
    assert_ne!(text, changed, "the payload names the subject");
    let bad_payload = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(changed),
        parts[2]
    );
    [bad_sig, bad_payload]
}

fn round_trip(module: &Path) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("report.json");
    let jwks_path = dir.path().join("jwks.json");
    let secrets_path = dir.path().join("secrets.json");
    common::harness(&[
        "jwt",
        "--module",
        module.to_str().expect("UTF-8 path"),
        "--out",
        out.to_str().expect("UTF-8 path"),
        "--jwks",
        jwks_path.to_str().expect("UTF-8 path"),
        "--secrets",
        secrets_path.to_str().expect("UTF-8 path"),
    ]);
    let report = common::read_json(&out);
    let raw_jwks = common::read_json(&jwks_path);
    let jwks: JwkSet = serde_json::from_value(raw_jwks.clone()).expect("the JWKS parses as one");
    let secrets: JwkSet = serde_json::from_value(common::read_json(&secrets_path))
        .expect("the secrets parse as a JWKS");
    let results = report["results"].as_array().expect("results");
    assert_eq!(results.len(), ALL.len());
    let mut verified = Vec::new();
    for r in results {
        let alg = r["alg"].as_str().expect("alg");
        let status = r["status"].as_str().expect("status");
        if status.starts_with("not supported") {
            assert!(
                !common::is_softhsm(module),
                "SoftHSM2 supports {alg}, yet: {status}"
            );
            println!("{}: {alg} {status}", module.display());
            continue;
        }
        assert_eq!(status, "ok", "{alg}: {r}");
        let token = r["token"].as_str().expect("token");
        verify(token, alg, &jwks, &raw_jwks, &secrets)
            .unwrap_or_else(|e| panic!("{alg} token does not verify: {e}\n{token}"));
        for bad in tampered(token) {
            assert!(
                verify(&bad, alg, &jwks, &raw_jwks, &secrets).is_err(),
                "{alg}: the library accepted a tampered token {bad}"
            );
        }
        assert_eq!(r["verify"], "CKR_OK", "{alg}");
        for field in ["tampered_signature", "tampered_payload"] {
            let rv = r[field].as_str().expect(field);
            assert!(
                rv == "CKR_SIGNATURE_INVALID" || rv == "CKR_SIGNATURE_LEN_RANGE",
                "{alg}: C_Verify of the {field} copy gave {rv}"
            );
        }
        // kid is the hex of CKA_ID: 8 random bytes.
        let kid = r["kid"].as_str().expect("kid");
        assert_eq!(kid.len(), 16);
        verified.push(alg.to_string());
    }
    println!("{}: verified {}", module.display(), verified.join(" "));
    // Every public key is in the JWKS, every secret in the secrets file.
    let public = verified.iter().filter(|a| !a.starts_with("HS")).count();
    assert_eq!(jwks.keys.len(), public);
    assert_eq!(secrets.keys.len(), verified.len() - public);
}

#[test]
fn jwt_round_trip_on_every_module() {
    for module in common::modules() {
        round_trip(&module);
    }
}

#[test]
fn jwt_rejects_an_unknown_algorithm() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["jwt", "--module", common::SOFTHSM, "--alg", "XS256"])
        .output()
        .expect("run the harness");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("XS256"));
}
