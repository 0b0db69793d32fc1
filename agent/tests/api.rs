//! The agent's API end to end: the binary on a loopback port, a key4c token made by the
//! `key4c` CLI, tokens checked by independent code (jsonwebtoken; p521 for ES512, which
//! jsonwebtoken lacks) against the JWKS the agent serves.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use serde_json::{json, Value};

/// (alg the key is generated as, label).
const KEYS: [(&str, &str); 6] = [
    ("ES256", "k-es256"),
    ("ES384", "k-es384"),
    ("ES512", "k-es512"),
    ("RS256", "k-rsa"),
    ("EdDSA", "k-ed25519"),
    ("HS256", "k-hmac"),
];

/// (JWT alg, label of the key that signs it).
const ALGS: [(&str, &str); 13] = [
    ("ES256", "k-es256"),
    ("ES384", "k-es384"),
    ("ES512", "k-es512"),
    ("RS256", "k-rsa"),
    ("RS384", "k-rsa"),
    ("RS512", "k-rsa"),
    ("PS256", "k-rsa"),
    ("PS384", "k-rsa"),
    ("PS512", "k-rsa"),
    ("EdDSA", "k-ed25519"),
    ("HS256", "k-hmac"),
    ("HS384", "k-hmac"),
    ("HS512", "k-hmac"),
];

fn decode_part(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

/// Verifies with code that is not the agent's and not the token's.
fn independent_verify(token: &str, alg: &str, jwk: &Value) -> Value {
    if alg == "ES512" {
        use p521::ecdsa::signature::Verifier;
        let coord = |c: &str| {
            URL_SAFE_NO_PAD
                .decode(jwk[c].as_str().expect("coordinate"))
                .expect("base64url")
        };
        let mut point = vec![0x04];
        point.extend(coord("x"));
        point.extend(coord("y"));
        let key = p521::ecdsa::VerifyingKey::from_sec1_bytes(&point).expect("P-521 point");
        let (input, sig) = token.rsplit_once('.').expect("compact JWS");
        let sig = p521::ecdsa::Signature::from_slice(&URL_SAFE_NO_PAD.decode(sig).expect("b64"))
            .expect("r||s");
        key.verify(input.as_bytes(), &sig)
            .expect("ES512 signature verifies");
        return decode_part(token.split('.').nth(1).expect("payload"));
    }
    let jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(jwk.clone()).expect("a JWK jsonwebtoken reads");
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).expect("decoding key");
    let mut validation = jsonwebtoken::Validation::new(alg.parse().expect("alg"));
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&["billing"]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("{alg}: jsonwebtoken refuses the token: {e}"))
        .claims
}

#[tokio::test(flavor = "multi_thread")]
async fn every_alg_is_issued_and_verified_against_the_jwks() {
    let service = Service::create(&KEYS);
    let config = service.config("config.json", |c| c["agent"]["hmacSigning"] = json!(true));
    let agent = service.start(&config);

    let jwks = call(agent.addr, "GET", "/v1/jwks", None, b"").await;
    assert_eq!(jwks.status, 200);
    let jwks = jwks.json();
    let published: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    // Every asymmetric key, never the HMAC secret.
    assert_eq!(published.len(), 5, "{jwks}");
    assert!(!published.contains(&service.kid("k-hmac").as_str()));
    let well_known = call(agent.addr, "GET", "/.well-known/jwks.json", None, b"").await;
    assert_eq!(well_known.json(), jwks);

    for (alg, label) in ALGS {
        let kid = service.kid(label);
        let issued = issue(
            agent.addr,
            json!({"claims": {"sub": "alice", "aud": "billing", "role": ["a", "b"]}, "kid": kid, "alg": alg, "lifetime": 600}),
        )
        .await;
        let token = issued["token"].as_str().unwrap();
        assert_eq!(issued["alg"], alg);
        assert_eq!(issued["kid"], kid.as_str());
        let header = decode_part(token.split('.').next().unwrap());
        assert_eq!(header, json!({"alg": alg, "typ": "JWT", "kid": kid}));
        let claims = decode_part(token.split('.').nth(1).unwrap());
        let iat = claims["iat"].as_u64().unwrap();
        assert_eq!(claims["exp"].as_u64().unwrap(), iat + 600);
        assert_eq!(
            (issued["iat"].as_u64(), issued["exp"].as_u64()),
            (Some(iat), Some(iat + 600))
        );
        let jti = claims["jti"].as_str().unwrap();
        assert!(
            jti.len() == 32 && jti.chars().all(|c| c.is_ascii_hexdigit()),
            "{jti}"
        );
        assert_eq!(issued["jti"], jti);
        let expected = json!({"sub": "alice", "aud": "billing", "role": ["a", "b"], "iss": ISSUER, "iat": iat, "exp": iat + 600, "jti": jti});
        assert_eq!(claims, expected);

        if !alg.starts_with("HS") {
            let jwk = jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .find(|k| k["kid"] == kid.as_str())
                .expect("kid in JWKS");
            assert_eq!(independent_verify(token, alg, jwk), expected, "{alg}");
        }
        let verified = post(agent.addr, "/v1/jwt/verify", json!({"token": token})).await;
        assert_eq!(verified.status, 200);
        let verified = verified.json();
        assert_eq!(verified["valid"], true, "{alg}: {verified}");
        assert_eq!(verified["claims"], expected);
        assert_eq!(verified["kid"], kid.as_str());
    }

    // The default key (agent.keyLabel, the first key) and its own alg.
    let default = issue(agent.addr, json!({"claims": {"sub": "bob"}})).await;
    assert_eq!(
        (default["alg"].as_str(), default["kid"].as_str()),
        (Some("ES256"), Some(service.kid("k-es256").as_str()))
    );
    let claims = decode_part(
        default["token"]
            .as_str()
            .unwrap()
            .split('.')
            .nth(1)
            .unwrap(),
    );
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        3600
    );

    let health = call(agent.addr, "GET", "/v1/health", None, b"").await;
    assert_eq!(health.status, 200);
    let health = health.json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["keys"], 6);
    assert_eq!(
        health["token"]["serial"],
        service.uuid.replace('-', "")[..16]
    );
    assert!(!agent.stderr().contains(USER_PIN) && !agent.stderr().contains(&service.api_key));
}

/// Re-encodes a part of the token after `change` edits its JSON.
fn with_part(token: &str, index: usize, change: impl FnOnce(&mut Value)) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let mut v = decode_part(&parts[index]);
    change(&mut v);
    parts[index] = URL_SAFE_NO_PAD.encode(v.to_string());
    parts.join(".")
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_expired_early_and_foreign_tokens_are_refused() {
    let service = Service::create(&[
        ("ES256", "k-es256"),
        ("RS256", "k-rsa"),
        ("HS256", "k-hmac"),
    ]);
    let config = service.config("config.json", |c| c["agent"]["leewaySeconds"] = json!(0));
    let agent = service.start(&config);
    let reason = |body: Value| async move {
        let a = post(agent.addr, "/v1/jwt/verify", body).await;
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        let v = a.json();
        assert_eq!(v["valid"], false, "{v}");
        assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
        v["reason"].as_str().unwrap().to_string()
    };
    let token = issue(agent.addr, json!({"claims": {"sub": "alice"}})).await["token"]
        .as_str()
        .unwrap()
        .to_string();

    let more_rights = with_part(&token, 1, |c| c["sub"] = json!("admin"));
    assert_eq!(reason(json!({"token": more_rights})).await, "bad_signature");
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    sig[5] ^= 0x01;
    assert_eq!(
        reason(json!({"token": format!("{input}.{}", URL_SAFE_NO_PAD.encode(&sig))})).await,
        "bad_signature"
    );
    let short = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&sig[..10]));
    assert_eq!(reason(json!({"token": short})).await, "bad_signature");
    // The RSA key's kid with alg HS256: an HMAC check with a public key must never happen.
    let confused = with_part(&token, 0, |h| {
        h["alg"] = json!("HS256");
        h["kid"] = json!(service.kid("k-rsa"));
    });
    assert_eq!(reason(json!({"token": confused})).await, "unsupported_alg");
    let none = with_part(&token, 0, |h| h["alg"] = json!("none"));
    assert_eq!(reason(json!({"token": none})).await, "unsupported_alg");
    let stranger = with_part(&token, 0, |h| h["kid"] = json!("00112233"));
    assert_eq!(reason(json!({"token": stranger})).await, "unknown_key");
    assert_eq!(reason(json!({"token": "not.a.jwt"})).await, "malformed");
    assert_eq!(reason(json!({"token": "eyJ9"})).await, "malformed");

    let later = jsonwebtoken_free_now() + 600;
    let early = issue(
        agent.addr,
        json!({"claims": {"sub": "alice", "nbf": later}}),
    )
    .await;
    assert_eq!(
        reason(json!({"token": early["token"]})).await,
        "not_yet_valid"
    );

    let brief = issue(
        agent.addr,
        json!({"claims": {"sub": "alice"}, "lifetime": 1}),
    )
    .await;
    let brief = brief["token"].as_str().unwrap().to_string();
    // exp = iat + 1 and leeway 0: two seconds later it has expired.
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    assert_eq!(reason(json!({"token": brief})).await, "expired");

    // A second agent on the same token with another issuer: the signature is good, the
    // issuer is not.
    let other = service.start(&service.config("other.json", |c| {
        c["jwt"]["issuer"] = json!("https://other.example")
    }));
    let fresh = issue(agent.addr, json!({"claims": {"sub": "alice"}})).await;
    let answer = post(
        other.addr,
        "/v1/jwt/verify",
        json!({"token": fresh["token"]}),
    )
    .await
    .json();
    assert_eq!(answer, json!({"valid": false, "reason": "wrong_issuer"}));

    // HMAC keys verify but do not sign unless agent.hmacSigning.
    let hs = post(agent.addr, "/v1/jwt", json!({"kid": service.kid("k-hmac")})).await;
    assert_eq!(hs.status, 403);
    assert_eq!(hs.json()["error"], "hmac_signing_disabled");
}

fn jsonwebtoken_free_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_their_status_and_a_json_error() {
    let service = Service::create(&[("ES256", "k-es256")]);
    let agent = service.start(&service.config("config.json", |_| {}));
    let a = agent.addr;
    let good = basic(CLIENT, SECRET);
    let check = |answer: Answer, status: u16, code: &str| {
        assert_eq!(
            answer.status,
            status,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        let v = answer.json();
        assert_eq!(v["error"], code, "{v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        assert_eq!(answer.headers["content-type"], "application/json");
        answer
    };
    let claims = br#"{"claims":{"sub":"x"}}"#;

    let none = check(
        call(a, "POST", "/v1/jwt", None, claims).await,
        401,
        "unauthorized",
    );
    assert_eq!(
        none.headers["www-authenticate"],
        "Basic realm=\"key4c-jwt-server\""
    );
    check(
        call(
            a,
            "POST",
            "/v1/jwt",
            Some(&basic(CLIENT, "app-secret-0123456780")),
            claims,
        )
        .await,
        401,
        "unauthorized",
    );
    check(
        call(a, "POST", "/v1/jwt", Some(&basic("other", SECRET)), claims).await,
        401,
        "unauthorized",
    );
    check(
        call(a, "POST", "/v1/jwt", Some("Bearer abc"), claims).await,
        401,
        "unauthorized",
    );
    check(
        call(a, "POST", "/v1/jwt/verify", None, br#"{"token":"a.b.c"}"#).await,
        401,
        "unauthorized",
    );

    check(
        call(a, "POST", "/v1/jwt", Some(&good), b"{\"claims\": ").await,
        400,
        "bad_request",
    );
    check(
        call(a, "POST", "/v1/jwt", Some(&good), b"").await,
        400,
        "bad_request",
    );
    check(
        call(a, "POST", "/v1/jwt", Some(&good), br#"{"claims": [1]}"#).await,
        400,
        "bad_request",
    );
    check(
        call(a, "POST", "/v1/jwt", Some(&good), br#"{"claim": {}}"#).await,
        400,
        "bad_request",
    );
    let reserved = check(
        call(
            a,
            "POST",
            "/v1/jwt",
            Some(&good),
            br#"{"claims":{"exp":1}}"#,
        )
        .await,
        400,
        "bad_request",
    );
    assert!(reserved.json()["message"]
        .as_str()
        .unwrap()
        .contains("claim exp is set by the agent"));
    check(
        call(a, "POST", "/v1/jwt", Some(&good), br#"{"alg":"RS256"}"#).await,
        400,
        "bad_request",
    );
    check(
        call(a, "POST", "/v1/jwt", Some(&good), br#"{"alg":"XS256"}"#).await,
        400,
        "bad_request",
    );
    check(
        call(a, "POST", "/v1/jwt", Some(&good), br#"{"lifetime":0}"#).await,
        400,
        "bad_request",
    );
    check(
        call(a, "POST", "/v1/jwt", Some(&good), br#"{"lifetime":86401}"#).await,
        400,
        "bad_request",
    );
    check(
        call(a, "POST", "/v1/jwt/verify", Some(&good), br#"{"tok":"x"}"#).await,
        400,
        "bad_request",
    );
    let unknown = check(
        call(a, "POST", "/v1/jwt", Some(&good), br#"{"kid":"0badc0de"}"#).await,
        404,
        "unknown_key",
    );
    assert_eq!(unknown.json()["message"], "no key with kid 0badc0de");
    check(
        call(a, "GET", "/v1/nothing", None, b"").await,
        404,
        "not_found",
    );
    check(
        call(a, "GET", "/v1/jwt", Some(&good), b"").await,
        405,
        "method_not_allowed",
    );
    let big = format!(r#"{{"claims":{{"pad":"{}"}}}}"#, "x".repeat(70_000));
    check(
        call(a, "POST", "/v1/jwt", Some(&good), big.as_bytes()).await,
        413,
        "payload_too_large",
    );

    // Still serving after all of that.
    issue(a, json!({})).await;
    let log = agent.stderr();
    assert!(
        !log.contains(SECRET) && !log.contains(USER_PIN) && !log.contains(&service.api_key),
        "{log}"
    );
}

#[test]
fn version_prints_the_vendor_line() {
    for flag in ["-version", "--version"] {
        let out = std::process::Command::new(agent_bin())
            .arg(flag)
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "key4cJWTServer Version 1.0.0\n"
        );
    }
}

/// The last line the agent wrote: its reason for not starting.
fn refusal(service: &Service, config: &std::path::Path) -> String {
    let (code, stdout, stderr) = service.refused(config);
    assert_eq!(code, Some(1), "stdout {stdout} stderr {stderr}");
    assert!(
        !stderr.contains(USER_PIN) && !stderr.contains(&service.api_key),
        "{stderr}"
    );
    let mine: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("key4c-jwt-server: "))
        .collect();
    assert_eq!(mine.len(), 1, "{stderr}");
    mine[0].to_string()
}

#[test]
fn refuses_to_start_with_one_line_per_reason() {
    let service = Service::create(&[("ES256", "k-es256"), ("ES384", "k-es384")]);

    let mut other_uuid = service.uuid.clone();
    other_uuid.replace_range(
        0..1,
        if other_uuid.starts_with('0') {
            "1"
        } else {
            "0"
        },
    );
    let line = refusal(
        &service,
        &service.config("uuid.json", |c| c["key4c"]["uuid"] = json!(other_uuid)),
    );
    assert!(line.contains("key4c.uuid is wrong"), "{line}");
    let line = refusal(
        &service,
        &service.config("apikey.json", |c| {
            c["key4c"]["apiKey"] = json!("AAAAwrongkey")
        }),
    );
    assert!(line.contains("shows no token: key4c.apiKey"), "{line}");
    let line = refusal(
        &service,
        &service.config("nokey.json", |c| c["agent"]["keyLabel"] = json!("absent")),
    );
    assert!(line.ends_with("the token has no signing key labelled \"absent\" (or it has no public key with the same CKA_ID)"), "{line}");
    let line = refusal(
        &service,
        &service.config("noname.json", |c| c["agent"]["keyLabel"] = json!(null)),
    );
    assert!(
        line.ends_with(
            "the token has 2 signing keys: name the default one with agent.keyLabel or agent.keyId"
        ),
        "{line}"
    );
    let line = refusal(
        &service,
        &service.config("tls.json", |c| {
            c["server"]["tlsOptions"]["tlsType"] = json!(1)
        }),
    );
    assert!(line.contains("certFile and keyFile are required"), "{line}");
    assert_eq!(service.user_failures(), 0, "no refusal so far tried a PIN");

    // A wrong PIN is counted by the token, each time; the fifth locks it.
    let wrong = service.config("pin.json", |c| c["key4c"]["pin"] = json!("Wr0ng#Pin.9k"));
    for attempt in 1..=4 {
        let line = refusal(&service, &wrong);
        assert!(
            line.ends_with(
                "the token refused key4c.pin (CKR_PIN_INCORRECT; the token counted the attempt)"
            ),
            "{line}"
        );
        assert_eq!(service.user_failures(), attempt);
    }
    let line = refusal(&service, &wrong);
    assert!(
        line.contains("the User PIN is locked (CKR_PIN_LOCKED)"),
        "{line}"
    );
    // Now even the right PIN is refused.
    let line = refusal(&service, &service.config("right.json", |_| {}));
    assert!(
        line.contains("the User PIN is locked (CKR_PIN_LOCKED)"),
        "{line}"
    );
}

#[test]
fn sigterm_stops_gracefully() {
    let service = Service::create(&[("ES256", "k-es256")]);
    let mut agent = service.start(&service.config("config.json", |_| {}));
    agent.signal("TERM");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = agent.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed().as_secs() < 15,
            "still running 15 s after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    std::thread::sleep(std::time::Duration::from_millis(100));
    let log = agent.stderr();
    assert!(
        log.contains("SIGTERM: finishing the requests in flight, then stopping"),
        "{log}"
    );
    assert!(log.contains("logged out; the module is finalised"), "{log}");
    assert!(log.contains("stopped"), "{log}");
    // The token is free and intact: the CLI reads it.
    assert_eq!(service.user_failures(), 0);
}
