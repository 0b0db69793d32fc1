//! `harness jwt`: sign compact JWS tokens with keys in a token, verify them through the token,
//! and export the public keys as a JWKS.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cryptoki::object::AttributeType;
use cryptoki::session::Session;
use serde::Serialize;
use serde_json::{json, Value};

use crate::ckr;
use crate::keys::{self, Curve, Hash, Key, KeyKind, KeyOptions, SigMech};
use crate::module::{Module, ModuleArgs};
use crate::status;

/// A JWS algorithm (RFC 7518, RFC 8037).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[allow(clippy::upper_case_acronyms)]
pub enum Alg {
    /// ECDSA P-256 SHA-256.
    #[value(name = "ES256")]
    ES256,
    /// ECDSA P-384 SHA-384.
    #[value(name = "ES384")]
    ES384,
    /// ECDSA P-521 SHA-512.
    #[value(name = "ES512")]
    ES512,
    /// RSASSA-PKCS1-v1_5 SHA-256.
    #[value(name = "RS256")]
    RS256,
    /// RSASSA-PKCS1-v1_5 SHA-384.
    #[value(name = "RS384")]
    RS384,
    /// RSASSA-PKCS1-v1_5 SHA-512.
    #[value(name = "RS512")]
    RS512,
    /// RSASSA-PSS SHA-256, MGF1 SHA-256, 32-byte salt.
    #[value(name = "PS256")]
    PS256,
    /// RSASSA-PSS SHA-384, MGF1 SHA-384, 48-byte salt.
    #[value(name = "PS384")]
    PS384,
    /// RSASSA-PSS SHA-512, MGF1 SHA-512, 64-byte salt.
    #[value(name = "PS512")]
    PS512,
    /// Ed25519.
    #[value(name = "EdDSA")]
    EdDSA,
    /// HMAC SHA-256 with a 32-byte secret.
    #[value(name = "HS256")]
    HS256,
    /// HMAC SHA-384 with a 48-byte secret.
    #[value(name = "HS384")]
    HS384,
    /// HMAC SHA-512 with a 64-byte secret.
    #[value(name = "HS512")]
    HS512,
}

impl Alg {
    /// Every algorithm, in the order reports list them.
    pub const ALL: [Alg; 13] = [
        Alg::ES256,
        Alg::ES384,
        Alg::ES512,
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::EdDSA,
        Alg::HS256,
        Alg::HS384,
        Alg::HS512,
    ];

    /// The `alg` header value.
    pub fn name(self) -> String {
        format!("{self:?}")
    }

    /// The key the algorithm needs.
    pub fn key_kind(self) -> KeyKind {
        match self {
            Alg::ES256 => KeyKind::Ec(Curve::P256),
            Alg::ES384 => KeyKind::Ec(Curve::P384),
            Alg::ES512 => KeyKind::Ec(Curve::P521),
            Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512 => {
                KeyKind::Rsa(2048)
            }
            Alg::EdDSA => KeyKind::Ed25519,
            Alg::HS256 => KeyKind::Secret(32),
            Alg::HS384 => KeyKind::Secret(48),
            Alg::HS512 => KeyKind::Secret(64),
        }
    }

    fn hash(self) -> Hash {
        match self {
            Alg::ES256 | Alg::RS256 | Alg::PS256 | Alg::HS256 | Alg::EdDSA => Hash::Sha256,
            Alg::ES384 | Alg::RS384 | Alg::PS384 | Alg::HS384 => Hash::Sha384,
            Alg::ES512 | Alg::RS512 | Alg::PS512 | Alg::HS512 => Hash::Sha512,
        }
    }

    /// The mechanism, and whether the harness hashes the signing input first. ECDSA uses the
    /// module's `CKM_ECDSA_SHA*` when listed, else `CKM_ECDSA` over the harness's digest.
    pub fn mechanism(self, module: &Module) -> (SigMech, Option<Hash>) {
        let h = self.hash();
        match self {
            Alg::ES256 | Alg::ES384 | Alg::ES512 => {
                let combined = SigMech::EcdsaSha(h);
                if module.has_mechanism(combined.mechanism_type()) {
                    (combined, None)
                } else {
                    (SigMech::Ecdsa, Some(h))
                }
            }
            Alg::RS256 | Alg::RS384 | Alg::RS512 => (SigMech::RsaPkcs(h), None),
            Alg::PS256 | Alg::PS384 | Alg::PS512 => (SigMech::RsaPss(h), None),
            Alg::EdDSA => (SigMech::Eddsa, None),
            Alg::HS256 | Alg::HS384 | Alg::HS512 => (SigMech::Hmac(h), None),
        }
    }
}

/// Options of `harness jwt`.
#[derive(Clone, Debug, clap::Args)]
pub struct JwtArgs {
    /// The module (exactly one) and how to reach its token.
    #[command(flatten)]
    pub modules: ModuleArgs,
    /// Algorithms, comma-separated (default: all of them).
    #[arg(long, value_delimiter = ',', ignore_case = true)]
    pub alg: Vec<Alg>,
    /// Write the public keys as a JWKS to this file.
    #[arg(long, value_name = "FILE")]
    pub jwks: Option<PathBuf>,
    /// Write the results (tokens, C_Verify results) as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Generate the HMAC secrets extractable and write them as a JWKS of `oct` keys to this
    /// file (for checking the HS* tokens elsewhere; without it the secrets never leave the token).
    #[arg(long, value_name = "FILE")]
    pub secrets: Option<PathBuf>,
    /// The `sub` claim.
    #[arg(long, default_value = "harness")]
    pub sub: String,
    /// Lifetime of the tokens in seconds (`exp` = `iat` + this).
    #[arg(long, default_value_t = 3600)]
    pub ttl: u64,
}

/// What became of one algorithm.
#[derive(Clone, Debug, Serialize)]
pub struct AlgResult {
    /// The `alg` value.
    pub alg: String,
    /// `ok`, `not supported: ...` or `failed: ...`.
    pub status: String,
    /// Key ID: hex of `CKA_ID`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The key.
    pub key: String,
    /// The PKCS#11 mechanism used.
    pub mechanism: String,
    /// True when the harness computed the digest and the token signed it (`CKM_ECDSA`).
    pub prehashed_by_harness: bool,
    /// The compact JWS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// `C_Verify` of the token through the module.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<String>,
    /// `C_Verify` of the token with one bit of the signature flipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tampered_signature: Option<String>,
    /// `C_Verify` of the token with one bit of the payload flipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tampered_payload: Option<String>,
}

/// The report of a run.
#[derive(Clone, Debug, Serialize)]
pub struct JwtReport {
    /// Module name.
    pub module: String,
    /// Module path.
    pub path: String,
    /// One entry per requested algorithm.
    pub results: Vec<AlgResult>,
}

/// Runs `harness jwt`; fails when any algorithm failed (not when one is unsupported).
pub fn run(args: &JwtArgs) -> Result<JwtReport> {
    let specs = args.modules.specs();
    let [spec] = specs.as_slice() else {
        bail!("jwt takes exactly one --module");
    };
    let algs: Vec<Alg> = if args.alg.is_empty() {
        Alg::ALL.to_vec()
    } else {
        args.alg.clone()
    };
    let module = Module::open(spec)?;
    let result = sign_all(&module, args, &algs);
    let close = module.close();
    let (report, jwks, secrets) = result?;
    close?;

    for r in &report.results {
        println!(
            "{:<6} {:<20} {}",
            r.alg,
            r.status,
            match (&r.kid, &r.verify) {
                (Some(kid), Some(v)) => format!(
                    "kid {kid}  {}{}  C_Verify {v}  tampered signature {}  tampered payload {}",
                    r.mechanism,
                    if r.prehashed_by_harness {
                        " (digest by the harness)"
                    } else {
                        ""
                    },
                    r.tampered_signature.as_deref().unwrap_or("-"),
                    r.tampered_payload.as_deref().unwrap_or("-"),
                ),
                _ => String::new(),
            }
        );
        if let Some(t) = &r.token {
            println!("       {t}");
        }
    }
    let write = |path: &Option<PathBuf>, v: &Value| -> Result<()> {
        if let Some(p) = path {
            std::fs::write(p, serde_json::to_string_pretty(v)?)
                .map_err(|e| anyhow!("cannot write {}: {e}", p.display()))?;
        }
        Ok(())
    };
    write(&args.jwks, &json!({ "keys": jwks }))?;
    write(&args.secrets, &json!({ "keys": secrets }))?;
    write(&args.out, &serde_json::to_value(&report)?)?;
    let failed = report
        .results
        .iter()
        .filter(|r| r.status.starts_with("failed"))
        .count();
    if failed > 0 {
        bail!("{failed} algorithm(s) failed");
    }
    Ok(report)
}

type Signed = (JwtReport, Vec<Value>, Vec<Value>);

fn sign_all(module: &Module, args: &JwtArgs, algs: &[Alg]) -> Result<Signed> {
    let session = module.user_session()?;
    let mut results = Vec::new();
    let mut jwks = Vec::new();
    let mut secrets = Vec::new();
    for &alg in algs {
        let (mech, prehash) = alg.mechanism(module);
        let mut r = AlgResult {
            alg: alg.name(),
            status: "ok".into(),
            kid: None,
            key: alg.key_kind().to_string(),
            mechanism: mech.name(),
            prehashed_by_harness: prehash.is_some(),
            token: None,
            verify: None,
            tampered_signature: None,
            tampered_payload: None,
        };
        match one(module, &session, args, alg, mech, prehash, &mut r) {
            Ok((jwk, secret)) => {
                jwks.extend(jwk);
                secrets.extend(secret);
            }
            Err(e) => r.status = status::status_of(&e),
        }
        results.push(r);
    }
    Ok((
        JwtReport {
            module: module.name.clone(),
            path: module.path.display().to_string(),
            results,
        },
        jwks,
        secrets,
    ))
}

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

fn hex(v: &[u8]) -> String {
    v.iter().map(|b| format!("{b:02x}")).collect()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The JWK of a key's public part (or, for a secret, its `oct` JWK when extractable).
fn jwk(session: &Session, key: &Key, alg: Alg, kid: &str, extractable: bool) -> Result<Value> {
    let base = |mut v: Value| {
        v["kid"] = json!(kid);
        v["alg"] = json!(alg.name());
        v["use"] = json!("sig");
        v
    };
    Ok(match key.kind {
        KeyKind::Ec(curve) => {
            let n = curve.field_len();
            let point = keys::unwrap_ec_point(
                &keys::read_bytes(session, key.public, AttributeType::EcPoint)?,
                1 + 2 * n,
            )?;
            if point[0] != 0x04 {
                bail!("CKA_EC_POINT is not an uncompressed point");
            }
            base(json!({
                "kty": "EC",
                "crv": curve.jwk_name(),
                "x": b64(&point[1..1 + n]),
                "y": b64(&point[1 + n..]),
            }))
        }
        KeyKind::Rsa(_) => {
            let strip = |v: Vec<u8>| {
                let i = v
                    .iter()
                    .position(|b| *b != 0)
                    .unwrap_or(v.len().saturating_sub(1));
                v[i..].to_vec()
            };
            let n = strip(keys::read_bytes(
                session,
                key.public,
                AttributeType::Modulus,
            )?);
            let e = strip(keys::read_bytes(
                session,
                key.public,
                AttributeType::PublicExponent,
            )?);
            base(json!({ "kty": "RSA", "n": b64(&n), "e": b64(&e) }))
        }
        KeyKind::Ed25519 => {
            let x = keys::unwrap_ec_point(
                &keys::read_bytes(session, key.public, AttributeType::EcPoint)?,
                32,
            )?;
            base(json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(&x) }))
        }
        KeyKind::Secret(_) => {
            if !extractable {
                return Ok(Value::Null);
            }
            let k = keys::read_bytes(session, key.private, AttributeType::Value)?;
            base(json!({ "kty": "oct", "k": b64(&k) }))
        }
    })
}

type Jwks = (Option<Value>, Option<Value>);

fn one(
    module: &Module,
    session: &Session,
    args: &JwtArgs,
    alg: Alg,
    mech: SigMech,
    prehash: Option<Hash>,
    r: &mut AlgResult,
) -> Result<Jwks> {
    keys::require(module, mech.mechanism_type())?;
    let kind = alg.key_kind();
    let mut id = [0u8; 8];
    aws_lc_rs::rand::fill(&mut id).map_err(|_| anyhow!("no random bytes for CKA_ID"))?;
    let extractable = matches!(kind, KeyKind::Secret(_)) && args.secrets.is_some();
    let key = keys::generate(
        module,
        session,
        kind,
        &KeyOptions {
            label: format!("jwt-{}", alg.name()),
            id: id.to_vec(),
            token: module.owns_store(),
            extractable,
        },
    )?;
    let kid = hex(&keys::read_bytes(session, key.private, AttributeType::Id)?);
    r.kid = Some(kid.clone());
    let jwk = jwk(session, &key, alg, &kid, extractable)?;

    let header = json!({ "alg": alg.name(), "kid": kid, "typ": "JWT" });
    let iat = now();
    let claims = json!({ "sub": args.sub, "iat": iat, "exp": iat + args.ttl });
    let signing_input = format!(
        "{}.{}",
        b64(&serde_json::to_vec(&header)?),
        b64(&serde_json::to_vec(&claims)?)
    );
    let to_sign = |input: &[u8]| match prehash {
        Some(h) => h.digest(input),
        None => input.to_vec(),
    };
    let sig = session.sign(
        &mech.mechanism(),
        key.private,
        &to_sign(signing_input.as_bytes()),
    )?;
    if let KeyKind::Ec(c) = kind {
        if sig.len() != 2 * c.field_len() {
            bail!(
                "the ECDSA signature has {} bytes, not r||s of {}",
                sig.len(),
                2 * c.field_len()
            );
        }
    }
    r.token = Some(format!("{signing_input}.{}", b64(&sig)));

    let verify = |input: &[u8], sig: &[u8]| -> String {
        match session.verify(&mech.mechanism(), key.public, &to_sign(input), sig) {
            Ok(()) => "CKR_OK".into(),
            Err(e) => ckr::error_name(&e),
        }
    };
    let good = verify(signing_input.as_bytes(), &sig);
    let mut bad_sig = sig.clone();
    bad_sig[sig.len() / 2] ^= 0x01;
    let tampered_sig = verify(signing_input.as_bytes(), &bad_sig);
    let mut bad_input = signing_input.clone().into_bytes();
    let last = bad_input.len() - 1;
    bad_input[last] ^= 0x01;
    let tampered_payload = verify(&bad_input, &sig);
    let ok = good == "CKR_OK" && tampered_sig != "CKR_OK" && tampered_payload != "CKR_OK";
    r.verify = Some(good);
    r.tampered_signature = Some(tampered_sig);
    r.tampered_payload = Some(tampered_payload);
    if !ok {
        bail!("C_Verify did not accept the token and reject both tampered copies");
    }
    Ok(match kind {
        KeyKind::Secret(_) => (None, (!jwk.is_null()).then_some(jwk)),
        _ => (Some(jwk), None),
    })
}
