//! Signing and verifying (§5.12-5.13): ECDSA, RSA PKCS#1 v1.5 and PSS, EdDSA and HMAC with
//! known-answer vectors and independent verification (aws-lc), and the operation rules.

use aws_lc_rs::signature as sig;
use pkcs11_sys::*;

use super::vectors::*;
use super::{ec_pair, ec_point, ed25519_pair, hmac_key, rsa_pair, secret_key, sha, Reg};
use crate::case::*;
use crate::ctx::{Ctx, Mech, Tpl};
use crate::p11;

fn sign_init_rv(
    ctx: &mut Ctx,
    h: CK_SESSION_HANDLE,
    mech: &mut Mech,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    let mut m = mech.raw();
    p11!(ctx.m, C_SignInit(h, &mut m, key))
}

fn verify_init_rv(
    ctx: &mut Ctx,
    h: CK_SESSION_HANDLE,
    mech: &mut Mech,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    let mut m = mech.raw();
    p11!(ctx.m, C_VerifyInit(h, &mut m, key))
}

fn sign_update(ctx: &mut Ctx, h: CK_SESSION_HANDLE, part: &[u8]) -> CK_RV {
    let mut p = part.to_vec();
    p11!(ctx.m, C_SignUpdate(h, p.as_mut_ptr(), p.len() as CK_ULONG))
}

fn verify_update(ctx: &mut Ctx, h: CK_SESSION_HANDLE, part: &[u8]) -> CK_RV {
    let mut p = part.to_vec();
    p11!(
        ctx.m,
        C_VerifyUpdate(h, p.as_mut_ptr(), p.len() as CK_ULONG)
    )
}

/// ECDSA over `curve` with CKM_ECDSA on a locally computed hash; aws-lc verifies it.
fn ecdsa_raw(
    ctx: &mut Ctx,
    curve: &[u8],
    hash: CK_MECHANISM_TYPE,
    len: usize,
    alg: &'static sig::EcdsaVerificationAlgorithm,
) -> CaseResult {
    ctx.need_mech(CKM_ECDSA)?;
    let h = ctx.user_session()?;
    let (p, q) = ec_pair(ctx, h, curve, &[])?;
    let msg = b"conformance: ECDSA known-answer check";
    let s = ctx.sign(h, &mut Mech::new(CKM_ECDSA), q, &sha(hash, msg))?;
    ensure(s.len() == len, || {
        format!("signature of {} bytes, expected {len}", s.len())
    })?;
    let point = ec_point(ctx, h, p)?;
    sig::UnparsedPublicKey::new(alg, &point)
        .verify(msg, &s)
        .map_err(|_| Failure::Fail("aws-lc rejects the signature".into()))?;
    let got = ctx.verify_rv(h, &mut Mech::new(CKM_ECDSA), p, &sha(hash, msg), &s)?;
    rv("C_Verify", got, CKR_OK)
}

fn hmac_kat(ctx: &mut Ctx, mech: CK_MECHANISM_TYPE, want: &str) -> CaseResult {
    ctx.need_mech(mech)?;
    let h = ctx.user_session()?;
    let k = hmac_key(ctx, h, &[0xaa; 131])?;
    let mac = ctx.sign(h, &mut Mech::new(mech), k, HMAC_6_DATA)?;
    same_bytes("HMAC", &mac, &unhex(want))?;
    let got = ctx.verify_rv(h, &mut Mech::new(mech), k, HMAC_6_DATA, &mac)?;
    rv("C_Verify", got, CKR_OK)
}

fn rsa_pkcs1_expected(msg: &[u8]) -> Result<Vec<u8>, Failure> {
    rsa_pkcs1_with(&sig::RSA_PKCS1_SHA256, msg)
}

/// The (deterministic) PKCS#1 v1.5 signature aws-lc makes with the suite's RSA key.
fn rsa_pkcs1_with(alg: &'static dyn sig::RsaEncoding, msg: &[u8]) -> Result<Vec<u8>, Failure> {
    let kp = sig::RsaKeyPair::from_pkcs8(&unhex(RSA_PKCS8))
        .map_err(|_| Failure::Fail("aws-lc cannot read the test key".into()))?;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let mut out = vec![0u8; kp.public_modulus_len()];
    kp.sign(alg, &rng, msg, &mut out)
        .map_err(|_| Failure::Fail("aws-lc cannot sign".into()))?;
    Ok(out)
}

/// A hash-then-sign ECDSA mechanism on `curve`: aws-lc verifies the signature.
fn ecdsa_hashed(
    ctx: &mut Ctx,
    mech: CK_MECHANISM_TYPE,
    curve: &[u8],
    alg: &'static sig::EcdsaVerificationAlgorithm,
) -> CaseResult {
    ctx.need_mech(mech)?;
    let h = ctx.user_session()?;
    let (p, q) = ec_pair(ctx, h, curve, &[])?;
    let point = ec_point(ctx, h, p)?;
    let msg = b"conformance: ECDSA with a hash";
    let s = ctx.sign(h, &mut Mech::new(mech), q, msg)?;
    sig::UnparsedPublicKey::new(alg, &point)
        .verify(msg, &s)
        .map_err(|_| Failure::Fail("aws-lc rejects the signature".into()))?;
    rv(
        "C_Verify",
        ctx.verify_rv(h, &mut Mech::new(mech), p, msg, &s)?,
        CKR_OK,
    )
}

/// A hash-then-sign PKCS#1 v1.5 mechanism: the exact signature aws-lc makes.
fn rsa_hashed(
    ctx: &mut Ctx,
    mech: CK_MECHANISM_TYPE,
    alg: &'static dyn sig::RsaEncoding,
) -> CaseResult {
    ctx.need_mech(mech)?;
    let h = ctx.user_session()?;
    let (_, q) = rsa_pair(ctx, h)?;
    let msg = b"conformance: RSA PKCS#1 v1.5 with a hash";
    let s = ctx.sign(h, &mut Mech::new(mech), q, msg)?;
    same_bytes("signature", &s, &rsa_pkcs1_with(alg, msg)?)
}

/// A hash-then-sign PSS mechanism: aws-lc verifies the signature.
fn pss_hashed(
    ctx: &mut Ctx,
    mech: CK_MECHANISM_TYPE,
    hash: CK_MECHANISM_TYPE,
    mgf: CK_RSA_PKCS_MGF_TYPE,
    salt: CK_ULONG,
    alg: &'static sig::RsaParameters,
) -> CaseResult {
    ctx.need_mech(mech)?;
    let h = ctx.user_session()?;
    let (p, q) = rsa_pair(ctx, h)?;
    let msg = b"conformance: RSA-PSS with a hash";
    let mut m = Mech::pss(mech, hash, mgf, salt);
    let s = ctx.sign(h, &mut m, q, msg)?;
    let (n, e) = (unhex(RSA_N), unhex(RSA_E));
    sig::RsaPublicKeyComponents { n: &n, e: &e }
        .verify(alg, msg, &s)
        .map_err(|_| Failure::Fail("aws-lc rejects the PSS signature".into()))?;
    rv("C_Verify", ctx.verify_rv(h, &mut m, p, msg, &s)?, CKR_OK)
}

/// The DER DigestInfo prefix of SHA-256 (RFC 8017 §9.2).
const SHA256_DIGEST_INFO: &str = "3031300d060960864801650304020105000420";

/// The cases of this chapter, in run order.
pub fn cases() -> Vec<Case> {
    let mut r = Reg::new(Chapter::SignVerify);
    r.add(
        "SIG-001",
        "5.12 C_Sign / CKM_ECDSA",
        "P-256: a 64-byte r||s signature of a SHA-256 hash that aws-lc verifies",
        "CKR_OK, verified",
        |ctx| ecdsa_raw(ctx, P256, CKM_SHA256, 64, &sig::ECDSA_P256_SHA256_FIXED),
    );
    r.add(
        "SIG-002",
        "5.12 C_Sign / CKM_ECDSA",
        "P-384: a 96-byte signature of a SHA-384 hash that aws-lc verifies",
        "CKR_OK, verified",
        |ctx| ecdsa_raw(ctx, P384, CKM_SHA384, 96, &sig::ECDSA_P384_SHA384_FIXED),
    );
    r.add(
        "SIG-003",
        "5.12 C_Sign / CKM_ECDSA",
        "P-521: a 132-byte signature of a SHA-512 hash that aws-lc verifies",
        "CKR_OK, verified",
        |ctx| ecdsa_raw(ctx, P521, CKM_SHA512, 132, &sig::ECDSA_P521_SHA512_FIXED),
    );
    r.add(
        "SIG-004",
        "5.12 C_SignUpdate / CKM_ECDSA_SHA256",
        "single-part and multi-part CKM_ECDSA_SHA256 signatures aws-lc verifies",
        "CKR_OK, verified",
        |ctx| {
            ctx.need_mech(CKM_ECDSA_SHA256)?;
            let h = ctx.user_session()?;
            let (p, q) = ec_pair(ctx, h, P256, &[])?;
            let point = ec_point(ctx, h, p)?;
            let msg = b"conformance: hash-then-sign";
            let one = ctx.sign(h, &mut Mech::new(CKM_ECDSA_SHA256), q, msg)?;
            setup(
                "C_SignInit",
                sign_init_rv(ctx, h, &mut Mech::new(CKM_ECDSA_SHA256), q),
            )?;
            rv("C_SignUpdate", sign_update(ctx, h, &msg[..10]), CKR_OK)?;
            rv("C_SignUpdate", sign_update(ctx, h, &msg[10..]), CKR_OK)?;
            let multi = ctx.output("C_SignFinal", |m, out, len| {
                p11!(m, C_SignFinal(h, out, len))
            })?;
            for (what, s) in [("single-part", &one), ("multi-part", &multi)] {
                sig::UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, &point)
                    .verify(msg, s)
                    .map_err(|_| Failure::Fail(format!("aws-lc rejects the {what} signature")))?;
            }
            Ok(())
        },
    );
    r.add(
        "SIG-005",
        "5.2 output convention / 5.12 C_Sign",
        "length query, then a short buffer, keep the operation; then it signs",
        "CKR_OK (64), CKR_BUFFER_TOO_SMALL (64), CKR_OK",
        |ctx| {
            ctx.need_mech(CKM_ECDSA)?;
            let h = ctx.user_session()?;
            let (_, q) = ec_pair(ctx, h, P256, &[])?;
            setup(
                "C_SignInit",
                sign_init_rv(ctx, h, &mut Mech::new(CKM_ECDSA), q),
            )?;
            let mut d = sha(CKM_SHA256, b"x");
            let mut len: CK_ULONG = 0;
            rv(
                "C_Sign(NULL)",
                p11!(
                    ctx.m,
                    C_Sign(h, d.as_mut_ptr(), 32, std::ptr::null_mut(), &mut len)
                ),
                CKR_OK,
            )?;
            ensure(len == 64, || format!("length {len}"))?;
            let mut buf = [0u8; 64];
            let mut small: CK_ULONG = 10;
            rv(
                "C_Sign(10-byte buffer)",
                p11!(
                    ctx.m,
                    C_Sign(h, d.as_mut_ptr(), 32, buf.as_mut_ptr(), &mut small)
                ),
                CKR_BUFFER_TOO_SMALL,
            )?;
            ensure(small == 64, || {
                format!("length after CKR_BUFFER_TOO_SMALL {small}")
            })?;
            let mut full: CK_ULONG = 64;
            rv(
                "C_Sign(64-byte buffer)",
                p11!(
                    ctx.m,
                    C_Sign(h, d.as_mut_ptr(), 32, buf.as_mut_ptr(), &mut full)
                ),
                CKR_OK,
            )?;
            ensure(full == 64, || format!("length {full}"))
        },
    );
    r.add(
        "SIG-006",
        "5.12 C_Sign",
        "C_Sign without C_SignInit",
        "CKR_OPERATION_NOT_INITIALIZED",
        |ctx| {
            let h = ctx.user_session()?;
            let mut d = [0u8; 32];
            let mut len: CK_ULONG = 0;
            rv(
                "C_Sign",
                p11!(
                    ctx.m,
                    C_Sign(h, d.as_mut_ptr(), 32, std::ptr::null_mut(), &mut len)
                ),
                CKR_OPERATION_NOT_INITIALIZED,
            )
        },
    );
    r.add(
        "SIG-007",
        "5.12 C_SignInit",
        "C_SignInit while a signature is active",
        "CKR_OPERATION_ACTIVE",
        |ctx| {
            ctx.need_mech(CKM_ECDSA)?;
            let h = ctx.user_session()?;
            let (_, q) = ec_pair(ctx, h, P256, &[])?;
            setup(
                "C_SignInit",
                sign_init_rv(ctx, h, &mut Mech::new(CKM_ECDSA), q),
            )?;
            rv(
                "second C_SignInit",
                sign_init_rv(ctx, h, &mut Mech::new(CKM_ECDSA), q),
                CKR_OPERATION_ACTIVE,
            )
        },
    );
    r.add(
        "SIG-008",
        "5.12 C_Sign",
        "a successful C_Sign ends the operation",
        "CKR_OPERATION_NOT_INITIALIZED",
        |ctx| {
            ctx.need_mech(CKM_ECDSA)?;
            let h = ctx.user_session()?;
            let (_, q) = ec_pair(ctx, h, P256, &[])?;
            ctx.sign(h, &mut Mech::new(CKM_ECDSA), q, &[1u8; 32])?;
            let mut d = [0u8; 32];
            let mut len: CK_ULONG = 0;
            rv(
                "C_Sign again",
                p11!(
                    ctx.m,
                    C_Sign(h, d.as_mut_ptr(), 32, std::ptr::null_mut(), &mut len)
                ),
                CKR_OPERATION_NOT_INITIALIZED,
            )
        },
    );
    r.add(
        "SIG-009",
        "5.12 C_SignInit / 4.9 CKA_SIGN",
        "a private key with CKA_SIGN=FALSE",
        "CKR_KEY_FUNCTION_NOT_PERMITTED",
        |ctx| {
            ctx.need_mech(CKM_ECDSA)?;
            let h = ctx.user_session()?;
            let (_, q) = ec_pair(ctx, h, P256, &[(CKA_SIGN, false)])?;
            rv(
                "C_SignInit(CKA_SIGN=FALSE)",
                sign_init_rv(ctx, h, &mut Mech::new(CKM_ECDSA), q),
                CKR_KEY_FUNCTION_NOT_PERMITTED,
            )
        },
    );
    r.add(
        "SIG-010",
        "5.12 C_SignInit",
        "CK_INVALID_HANDLE (0) as the key",
        "CKR_KEY_HANDLE_INVALID",
        |ctx| {
            ctx.need_mech(CKM_ECDSA)?;
            let h = ctx.user_session()?;
            rv(
                "C_SignInit(key 0)",
                sign_init_rv(ctx, h, &mut Mech::new(CKM_ECDSA), CK_INVALID_HANDLE),
                CKR_KEY_HANDLE_INVALID,
            )
        },
    );
    r.add(
        "SIG-011",
        "5.12 C_SignInit",
        "CKM_ECDSA with an RSA private key",
        "CKR_KEY_TYPE_INCONSISTENT",
        |ctx| {
            ctx.need_mech(CKM_ECDSA)?;
            let h = ctx.user_session()?;
            let (_, q) = rsa_pair(ctx, h)?;
            rv(
                "C_SignInit(CKM_ECDSA, RSA key)",
                sign_init_rv(ctx, h, &mut Mech::new(CKM_ECDSA), q),
                CKR_KEY_TYPE_INCONSISTENT,
            )
        },
    );
    r.add(
        "SIG-012",
        "5.12 C_SignInit",
        "NULL pMechanism",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let h = ctx.user_session()?;
            let (_, q) = rsa_pair(ctx, h)?;
            rv(
                "C_SignInit(NULL)",
                p11!(ctx.m, C_SignInit(h, std::ptr::null_mut(), q)),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "SIG-013",
        "5.12 C_SignInit",
        "a mechanism that does not exist",
        "CKR_MECHANISM_INVALID",
        |ctx| {
            let h = ctx.user_session()?;
            let (_, q) = rsa_pair(ctx, h)?;
            rv(
                "C_SignInit(unknown)",
                sign_init_rv(ctx, h, &mut Mech::new(CKM_VENDOR_DEFINED | 0x4b_3443), q),
                CKR_MECHANISM_INVALID,
            )
        },
    );
    r.add(
        "SIG-014",
        "5.12 C_Sign",
        "NULL pulSignatureLen",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            ctx.need_mech(CKM_SHA256_RSA_PKCS)?;
            let h = ctx.user_session()?;
            let (_, q) = rsa_pair(ctx, h)?;
            setup(
                "C_SignInit",
                sign_init_rv(ctx, h, &mut Mech::new(CKM_SHA256_RSA_PKCS), q),
            )?;
            let mut d = *b"data";
            let mut out = [0u8; 256];
            rv(
                "C_Sign(.., NULL)",
                p11!(
                    ctx.m,
                    C_Sign(h, d.as_mut_ptr(), 4, out.as_mut_ptr(), std::ptr::null_mut())
                ),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "SIG-015",
        "5.12 C_Sign / CKM_SHA256_RSA_PKCS",
        "PKCS#1 v1.5 is deterministic: the exact signature aws-lc computes",
        "identical bytes",
        |ctx| {
            ctx.need_mech(CKM_SHA256_RSA_PKCS)?;
            let h = ctx.user_session()?;
            let (_, q) = rsa_pair(ctx, h)?;
            let msg = b"conformance: RSA PKCS#1 v1.5 known answer";
            let s = ctx.sign(h, &mut Mech::new(CKM_SHA256_RSA_PKCS), q, msg)?;
            same_bytes("signature", &s, &rsa_pkcs1_expected(msg)?)
        },
    );
    r.add(
        "SIG-016",
        "5.13 C_Verify / CKM_SHA256_RSA_PKCS",
        "a signature made by aws-lc verifies; one flipped bit does not",
        "CKR_OK, then CKR_SIGNATURE_INVALID",
        |ctx| {
            ctx.need_mech(CKM_SHA256_RSA_PKCS)?;
            let h = ctx.user_session()?;
            let (p, _) = rsa_pair(ctx, h)?;
            let msg = b"conformance: verify an outside signature";
            let mut s = rsa_pkcs1_expected(msg)?;
            rv(
                "C_Verify",
                ctx.verify_rv(h, &mut Mech::new(CKM_SHA256_RSA_PKCS), p, msg, &s)?,
                CKR_OK,
            )?;
            s[100] ^= 1;
            rv(
                "C_Verify(flipped bit)",
                ctx.verify_rv(h, &mut Mech::new(CKM_SHA256_RSA_PKCS), p, msg, &s)?,
                CKR_SIGNATURE_INVALID,
            )
        },
    );
    r.add(
        "SIG-017",
        "5.12 C_Sign / CKM_SHA256_RSA_PKCS_PSS",
        "RSA-PSS (SHA-256, MGF1-SHA-256, 32-byte salt) aws-lc verifies",
        "CKR_OK, verified",
        |ctx| {
            ctx.need_mech(CKM_SHA256_RSA_PKCS_PSS)?;
            let h = ctx.user_session()?;
            let (p, q) = rsa_pair(ctx, h)?;
            let msg = b"conformance: RSA-PSS";
            let mut m = Mech::pss(CKM_SHA256_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256, 32);
            let s = ctx.sign(h, &mut m, q, msg)?;
            let (n, e) = (unhex(RSA_N), unhex(RSA_E));
            sig::RsaPublicKeyComponents { n: &n, e: &e }
                .verify(&sig::RSA_PSS_2048_8192_SHA256, msg, &s)
                .map_err(|_| Failure::Fail("aws-lc rejects the PSS signature".into()))?;
            rv("C_Verify", ctx.verify_rv(h, &mut m, p, msg, &s)?, CKR_OK)
        },
    );
    r.add(
        "SIG-018",
        "5.12 C_SignInit / CK_RSA_PKCS_PSS_PARAMS",
        "a PSS parameter of the wrong size",
        "CKR_MECHANISM_PARAM_INVALID",
        |ctx| {
            ctx.need_mech(CKM_RSA_PKCS_PSS)?;
            let h = ctx.user_session()?;
            let (_, q) = rsa_pair(ctx, h)?;
            let mut m = Mech::bytes(CKM_RSA_PKCS_PSS, &[0u8; 5]);
            rv(
                "C_SignInit(5-byte PSS params)",
                sign_init_rv(ctx, h, &mut m, q),
                CKR_MECHANISM_PARAM_INVALID,
            )
        },
    );
    r.add(
        "SIG-019",
        "5.12 C_SignInit / CKM_SHA256_RSA_PKCS_PSS",
        "hashAlg SHA-384 for CKM_SHA256_RSA_PKCS_PSS",
        "CKR_MECHANISM_PARAM_INVALID",
        |ctx| {
            ctx.need_mech(CKM_SHA256_RSA_PKCS_PSS)?;
            let h = ctx.user_session()?;
            let (_, q) = rsa_pair(ctx, h)?;
            let mut m = Mech::pss(CKM_SHA256_RSA_PKCS_PSS, CKM_SHA384, CKG_MGF1_SHA384, 48);
            rv(
                "C_SignInit(hash mismatch)",
                sign_init_rv(ctx, h, &mut m, q),
                CKR_MECHANISM_PARAM_INVALID,
            )
        },
    );
    r.add(
        "SIG-020",
        "5.12 C_Sign / CKM_EDDSA",
        "RFC 8032 §7.1 test 1 (empty message)",
        "the RFC's signature",
        |ctx| {
            let h = ctx.user_session()?;
            let (p, q) = ed25519_pair(ctx, h, ED25519_1_SECRET, ED25519_1_PUBLIC)?;
            let s = ctx.sign(h, &mut Mech::new(CKM_EDDSA), q, b"")?;
            same_bytes("signature", &s, &unhex(ED25519_1_SIG))?;
            rv(
                "C_Verify",
                ctx.verify_rv(h, &mut Mech::new(CKM_EDDSA), p, b"", &s)?,
                CKR_OK,
            )
        },
    );
    r.add(
        "SIG-021",
        "5.12 C_Sign / CKM_EDDSA",
        "RFC 8032 §7.1 test 2 (message 0x72)",
        "the RFC's signature",
        |ctx| {
            let h = ctx.user_session()?;
            let (p, q) = ed25519_pair(ctx, h, ED25519_2_SECRET, ED25519_2_PUBLIC)?;
            let s = ctx.sign(h, &mut Mech::new(CKM_EDDSA), q, &[0x72])?;
            same_bytes("signature", &s, &unhex(ED25519_2_SIG))?;
            rv(
                "C_Verify",
                ctx.verify_rv(h, &mut Mech::new(CKM_EDDSA), p, &[0x72], &s)?,
                CKR_OK,
            )
        },
    );
    r.add(
        "SIG-022",
        "5.12 C_Sign / CKM_SHA256_HMAC",
        "RFC 4231 test case 6, HMAC-SHA-256",
        "the RFC's MAC",
        |ctx| hmac_kat(ctx, CKM_SHA256_HMAC, HMAC_6_SHA256),
    );
    r.add(
        "SIG-023",
        "5.12 C_Sign / CKM_SHA384_HMAC",
        "RFC 4231 test case 6, HMAC-SHA-384",
        "the RFC's MAC",
        |ctx| hmac_kat(ctx, CKM_SHA384_HMAC, HMAC_6_SHA384),
    );
    r.add(
        "SIG-024",
        "5.12 C_Sign / CKM_SHA512_HMAC",
        "RFC 4231 test case 6, HMAC-SHA-512",
        "the RFC's MAC",
        |ctx| hmac_kat(ctx, CKM_SHA512_HMAC, HMAC_6_SHA512),
    );
    r.add(
        "SIG-025",
        "5.13 C_Verify",
        "an HMAC-SHA-256 of the wrong length",
        "CKR_SIGNATURE_LEN_RANGE",
        |ctx| {
            ctx.need_mech(CKM_SHA256_HMAC)?;
            let h = ctx.user_session()?;
            let k = hmac_key(ctx, h, &[0xaa; 131])?;
            let mac = unhex(HMAC_6_SHA256);
            rv(
                "C_Verify(31-byte MAC)",
                ctx.verify_rv(
                    h,
                    &mut Mech::new(CKM_SHA256_HMAC),
                    k,
                    HMAC_6_DATA,
                    &mac[..31],
                )?,
                CKR_SIGNATURE_LEN_RANGE,
            )
        },
    );
    r.add(
        "SIG-026",
        "5.13 C_Verify",
        "a wrong HMAC-SHA-256 of the right length",
        "CKR_SIGNATURE_INVALID",
        |ctx| {
            ctx.need_mech(CKM_SHA256_HMAC)?;
            let h = ctx.user_session()?;
            let k = hmac_key(ctx, h, &[0xaa; 131])?;
            let mut mac = unhex(HMAC_6_SHA256);
            mac[0] ^= 0x80;
            rv(
                "C_Verify(wrong MAC)",
                ctx.verify_rv(h, &mut Mech::new(CKM_SHA256_HMAC), k, HMAC_6_DATA, &mac)?,
                CKR_SIGNATURE_INVALID,
            )
        },
    );
    r.add(
        "SIG-027",
        "5.13 C_Verify / CKM_ECDSA",
        "a P-256 signature of 63 bytes",
        "CKR_SIGNATURE_LEN_RANGE",
        |ctx| {
            ctx.need_mech(CKM_ECDSA)?;
            let h = ctx.user_session()?;
            let (p, _) = ec_pair(ctx, h, P256, &[])?;
            rv(
                "C_Verify(63 bytes)",
                ctx.verify_rv(h, &mut Mech::new(CKM_ECDSA), p, &[5u8; 32], &[1u8; 63])?,
                CKR_SIGNATURE_LEN_RANGE,
            )
        },
    );
    r.add(
        "SIG-028",
        "5.13 C_Verify / CKM_ECDSA",
        "a P-256 signature with one flipped bit",
        "CKR_SIGNATURE_INVALID",
        |ctx| {
            ctx.need_mech(CKM_ECDSA)?;
            let h = ctx.user_session()?;
            let (p, q) = ec_pair(ctx, h, P256, &[])?;
            let d = sha(CKM_SHA256, b"tamper");
            let mut s = ctx.sign(h, &mut Mech::new(CKM_ECDSA), q, &d)?;
            if s.len() > 40 {
                s[40] ^= 0x01;
            }
            rv(
                "C_Verify(flipped bit)",
                ctx.verify_rv(h, &mut Mech::new(CKM_ECDSA), p, &d, &s)?,
                CKR_SIGNATURE_INVALID,
            )
        },
    );
    r.add(
        "SIG-029",
        "5.12 C_SignUpdate / C_SignFinal, 5.13",
        "multi-part HMAC-SHA-256 (3 parts) gives the RFC value; multi-part verify accepts it",
        "the RFC's MAC; C_VerifyFinal = CKR_OK",
        |ctx| {
            ctx.need_mech(CKM_SHA256_HMAC)?;
            let h = ctx.user_session()?;
            let k = hmac_key(ctx, h, &[0xaa; 131])?;
            setup(
                "C_SignInit",
                sign_init_rv(ctx, h, &mut Mech::new(CKM_SHA256_HMAC), k),
            )?;
            for part in HMAC_6_DATA.chunks(20) {
                rv("C_SignUpdate", sign_update(ctx, h, part), CKR_OK)?;
            }
            let mac = ctx.output("C_SignFinal", |m, out, len| {
                p11!(m, C_SignFinal(h, out, len))
            })?;
            same_bytes("HMAC", &mac, &unhex(HMAC_6_SHA256))?;
            setup(
                "C_VerifyInit",
                verify_init_rv(ctx, h, &mut Mech::new(CKM_SHA256_HMAC), k),
            )?;
            for part in HMAC_6_DATA.chunks(7) {
                rv("C_VerifyUpdate", verify_update(ctx, h, part), CKR_OK)?;
            }
            let mut m = mac.clone();
            rv(
                "C_VerifyFinal",
                p11!(ctx.m, C_VerifyFinal(h, m.as_mut_ptr(), m.len() as CK_ULONG)),
                CKR_OK,
            )
        },
    );
    r.add(
        "SIG-030",
        "5.12 C_SignUpdate / C_SignFinal",
        "C_SignUpdate and C_SignFinal without C_SignInit",
        "CKR_OPERATION_NOT_INITIALIZED",
        |ctx| {
            let h = ctx.user_session()?;
            rv(
                "C_SignUpdate",
                sign_update(ctx, h, b"x"),
                CKR_OPERATION_NOT_INITIALIZED,
            )?;
            let mut len: CK_ULONG = 0;
            rv(
                "C_SignFinal",
                p11!(ctx.m, C_SignFinal(h, std::ptr::null_mut(), &mut len)),
                CKR_OPERATION_NOT_INITIALIZED,
            )
        },
    );
    r.add(
        "SIG-031",
        "5.13 C_Verify* ",
        "C_Verify, C_VerifyUpdate and C_VerifyFinal without C_VerifyInit",
        "CKR_OPERATION_NOT_INITIALIZED",
        |ctx| {
            let h = ctx.open(false)?;
            let mut d = *b"data";
            let mut s = [0u8; 64];
            rv(
                "C_Verify",
                p11!(ctx.m, C_Verify(h, d.as_mut_ptr(), 4, s.as_mut_ptr(), 64)),
                CKR_OPERATION_NOT_INITIALIZED,
            )?;
            rv(
                "C_VerifyUpdate",
                verify_update(ctx, h, b"x"),
                CKR_OPERATION_NOT_INITIALIZED,
            )?;
            rv(
                "C_VerifyFinal",
                p11!(ctx.m, C_VerifyFinal(h, s.as_mut_ptr(), 64)),
                CKR_OPERATION_NOT_INITIALIZED,
            )
        },
    );
    r.add(
        "SIG-032",
        "5.13 C_VerifyInit",
        "C_VerifyInit while a verification is active",
        "CKR_OPERATION_ACTIVE",
        |ctx| {
            ctx.need_mech(CKM_SHA256_RSA_PKCS)?;
            let h = ctx.user_session()?;
            let (p, _) = rsa_pair(ctx, h)?;
            setup(
                "C_VerifyInit",
                verify_init_rv(ctx, h, &mut Mech::new(CKM_SHA256_RSA_PKCS), p),
            )?;
            rv(
                "second C_VerifyInit",
                verify_init_rv(ctx, h, &mut Mech::new(CKM_SHA256_RSA_PKCS), p),
                CKR_OPERATION_ACTIVE,
            )
        },
    );
    r.add(
        "SIG-033",
        "5.13 C_Verify",
        "C_Verify ends the operation",
        "CKR_OPERATION_NOT_INITIALIZED on a second C_Verify",
        |ctx| {
            ctx.need_mech(CKM_SHA256_RSA_PKCS)?;
            let h = ctx.user_session()?;
            let (p, _) = rsa_pair(ctx, h)?;
            let msg = b"once";
            let s = rsa_pkcs1_expected(msg)?;
            rv(
                "C_Verify",
                ctx.verify_rv(h, &mut Mech::new(CKM_SHA256_RSA_PKCS), p, msg, &s)?,
                CKR_OK,
            )?;
            let (mut d, mut ss) = (msg.to_vec(), s.clone());
            rv(
                "second C_Verify",
                p11!(
                    ctx.m,
                    C_Verify(
                        h,
                        d.as_mut_ptr(),
                        d.len() as CK_ULONG,
                        ss.as_mut_ptr(),
                        ss.len() as CK_ULONG
                    )
                ),
                CKR_OPERATION_NOT_INITIALIZED,
            )
        },
    );
    r.add(
        "SIG-034",
        "4.7 CKA_ALLOWED_MECHANISMS",
        "signing with a mechanism the key does not allow, then with the one it allows",
        "CKR_MECHANISM_INVALID, then CKR_OK",
        |ctx| {
            ctx.need_mech(CKM_SHA256_HMAC)?;
            ctx.need_mech(CKM_SHA384_HMAC)?;
            let h = ctx.user_session()?;
            let k = ctx.create(
                h,
                Tpl::new()
                    .class(CKO_SECRET_KEY)
                    .key_type(CKK_GENERIC_SECRET)
                    .bool(CKA_TOKEN, false)
                    .bool(CKA_SIGN, true)
                    .bytes(CKA_VALUE, &[0x5a; 64])
                    .mechanisms(CKA_ALLOWED_MECHANISMS, &[CKM_SHA256_HMAC]),
            )?;
            rv(
                "C_SignInit(CKM_SHA384_HMAC)",
                sign_init_rv(ctx, h, &mut Mech::new(CKM_SHA384_HMAC), k),
                CKR_MECHANISM_INVALID,
            )?;
            rv(
                "C_SignInit(CKM_SHA256_HMAC, allowed)",
                sign_init_rv(ctx, h, &mut Mech::new(CKM_SHA256_HMAC), k),
                CKR_OK,
            )
        },
    );
    r.add(
        "SIG-035",
        "4.9 CKA_ALWAYS_AUTHENTICATE / 5.12 C_Sign",
        "C_Sign with an always-authenticate key before CKU_CONTEXT_SPECIFIC login",
        "CKR_USER_NOT_LOGGED_IN",
        |ctx| {
            ctx.need_mech(CKM_ECDSA)?;
            let h = ctx.user_session()?;
            let (_, q) = ec_pair(ctx, h, P256, &[(CKA_ALWAYS_AUTHENTICATE, true)])?;
            setup(
                "C_SignInit",
                sign_init_rv(ctx, h, &mut Mech::new(CKM_ECDSA), q),
            )?;
            let mut d = sha(CKM_SHA256, b"x");
            let mut out = [0u8; 64];
            let mut len: CK_ULONG = 64;
            rv(
                "C_Sign",
                p11!(
                    ctx.m,
                    C_Sign(h, d.as_mut_ptr(), 32, out.as_mut_ptr(), &mut len)
                ),
                CKR_USER_NOT_LOGGED_IN,
            )
        },
    );
    r.add(
        "SIG-036",
        "4.9 CKA_ALWAYS_AUTHENTICATE / 5.6 C_Login",
        "C_Sign with an always-authenticate key after CKU_CONTEXT_SPECIFIC login",
        "C_Login = CKR_OK, C_Sign = CKR_OK",
        |ctx| {
            ctx.need_mech(CKM_ECDSA)?;
            let h = ctx.user_session()?;
            let (_, q) = ec_pair(ctx, h, P256, &[(CKA_ALWAYS_AUTHENTICATE, true)])?;
            setup(
                "C_SignInit",
                sign_init_rv(ctx, h, &mut Mech::new(CKM_ECDSA), q),
            )?;
            let user = ctx.user_pin();
            rv(
                "C_Login(CKU_CONTEXT_SPECIFIC)",
                ctx.login_rv(h, CKU_CONTEXT_SPECIFIC, &user),
                CKR_OK,
            )?;
            ctx.correct_pin(crate::guard::Role::User);
            let mut d = sha(CKM_SHA256, b"x");
            let mut out = [0u8; 64];
            let mut len: CK_ULONG = 64;
            rv(
                "C_Sign",
                p11!(
                    ctx.m,
                    C_Sign(h, d.as_mut_ptr(), 32, out.as_mut_ptr(), &mut len)
                ),
                CKR_OK,
            )
        },
    );
    r.add(
        "SIG-037",
        "5.12 C_Sign / CKM_RSA_PKCS",
        "raw PKCS#1 v1.5 input longer than k - 11 bytes",
        "CKR_DATA_LEN_RANGE",
        |ctx| {
            ctx.need_mech(CKM_RSA_PKCS)?;
            let h = ctx.user_session()?;
            let (_, q) = rsa_pair(ctx, h)?;
            setup(
                "C_SignInit",
                sign_init_rv(ctx, h, &mut Mech::new(CKM_RSA_PKCS), q),
            )?;
            let mut d = vec![0x11u8; 246];
            let mut out = [0u8; 256];
            let mut len: CK_ULONG = 256;
            rv(
                "C_Sign(246 bytes)",
                p11!(
                    ctx.m,
                    C_Sign(h, d.as_mut_ptr(), 246, out.as_mut_ptr(), &mut len)
                ),
                CKR_DATA_LEN_RANGE,
            )
        },
    );
    r.add(
        "SIG-038",
        "5.13 C_Verify",
        "NULL pSignature with a non-zero length",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            ctx.need_mech(CKM_SHA256_RSA_PKCS)?;
            let h = ctx.user_session()?;
            let (p, _) = rsa_pair(ctx, h)?;
            setup(
                "C_VerifyInit",
                verify_init_rv(ctx, h, &mut Mech::new(CKM_SHA256_RSA_PKCS), p),
            )?;
            let mut d = *b"data";
            rv(
                "C_Verify(NULL, 256)",
                p11!(
                    ctx.m,
                    C_Verify(h, d.as_mut_ptr(), 4, std::ptr::null_mut(), 256)
                ),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "SIG-039",
        "5.12 C_Sign / CKM_SHA256_HMAC_GENERAL",
        "a 16-byte HMAC-SHA-256 is the RFC 4231 value truncated",
        "the first 16 bytes of the RFC's MAC",
        |ctx| {
            ctx.need_mech(CKM_SHA256_HMAC_GENERAL)?;
            let h = ctx.user_session()?;
            let k = hmac_key(ctx, h, &[0xaa; 131])?;
            let len: CK_ULONG = 16;
            let mac = ctx.sign(
                h,
                &mut Mech::with(CKM_SHA256_HMAC_GENERAL, &len),
                k,
                HMAC_6_DATA,
            )?;
            same_bytes("HMAC", &mac, &unhex(HMAC_6_SHA256)[..16])
        },
    );
    r.add(
        "SIG-040",
        "5.13 C_Verify / CKM_ECDSA, 5.7 C_CreateObject",
        "an imported P-256 public key verifies a signature aws-lc made",
        "CKR_OK",
        |ctx| {
            ctx.need_mech(CKM_ECDSA)?;
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let pkcs8 =
                sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| Failure::Fail("aws-lc key generation".into()))?;
            let kp = sig::EcdsaKeyPair::from_pkcs8(
                &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                pkcs8.as_ref(),
            )
            .map_err(|_| Failure::Fail("aws-lc key parse".into()))?;
            let msg = b"conformance: outside ECDSA signature";
            let s = kp
                .sign(&rng, msg)
                .map_err(|_| Failure::Fail("aws-lc sign".into()))?;
            use aws_lc_rs::signature::KeyPair;
            let point = kp.public_key().as_ref().to_vec();
            let h = ctx.user_session()?;
            let p = ctx.create(
                h,
                Tpl::new()
                    .class(CKO_PUBLIC_KEY)
                    .key_type(CKK_EC)
                    .bool(CKA_TOKEN, false)
                    .bool(CKA_VERIFY, true)
                    .bytes(CKA_EC_PARAMS, P256)
                    .bytes(CKA_EC_POINT, &super::der_octet_string(&point)),
            )?;
            rv(
                "C_Verify",
                ctx.verify_rv(
                    h,
                    &mut Mech::new(CKM_ECDSA),
                    p,
                    &sha(CKM_SHA256, msg),
                    s.as_ref(),
                )?,
                CKR_OK,
            )
        },
    );
    r.add(
        "SIG-041",
        "4.9 CKA_SIGN / 5.12",
        "an HMAC key with CKA_SIGN=FALSE",
        "CKR_KEY_FUNCTION_NOT_PERMITTED",
        |ctx| {
            ctx.need_mech(CKM_SHA256_HMAC)?;
            let h = ctx.user_session()?;
            let k = secret_key(
                ctx,
                h,
                CKK_GENERIC_SECRET,
                &[0xaa; 64],
                &[(CKA_SIGN, false)],
            )?;
            rv(
                "C_SignInit(CKA_SIGN=FALSE)",
                sign_init_rv(ctx, h, &mut Mech::new(CKM_SHA256_HMAC), k),
                CKR_KEY_FUNCTION_NOT_PERMITTED,
            )
        },
    );
    more(&mut r);
    r.add(
        "SIG-053",
        "5.2 / 5.12 C_Sign / CKM_SHA256_HMAC",
        "CKR_ARGUMENTS_BAD (NULL pulSignatureLen) ends the operation, as every error but \
         CKR_BUFFER_TOO_SMALL does",
        "CKR_ARGUMENTS_BAD; CKR_OPERATION_NOT_INITIALIZED on the next C_Sign",
        |ctx| {
            ctx.need_mech(CKM_SHA256_HMAC)?;
            let h = ctx.user_session()?;
            let k = super::hmac_key(ctx, h, &[0x0b; 32])?;
            setup(
                "C_SignInit",
                sign_init_rv(ctx, h, &mut Mech::new(CKM_SHA256_HMAC), k),
            )?;
            let mut data = *b"conformance";
            let mut out = [0u8; 32];
            rv(
                "C_Sign(.., NULL)",
                p11!(
                    ctx.m,
                    C_Sign(
                        h,
                        data.as_mut_ptr(),
                        11,
                        out.as_mut_ptr(),
                        std::ptr::null_mut()
                    )
                ),
                CKR_ARGUMENTS_BAD,
            )?;
            let mut len: CK_ULONG = 32;
            rv(
                "C_Sign after it",
                p11!(
                    ctx.m,
                    C_Sign(h, data.as_mut_ptr(), 11, out.as_mut_ptr(), &mut len)
                ),
                CKR_OPERATION_NOT_INITIALIZED,
            )
        },
    );
    r.done()
}

fn more(r: &mut Reg) {
    r.add(
        "SIG-042",
        "5.2 output convention / 5.12 C_SignFinal",
        "C_SignFinal with a short buffer keeps the operation",
        "CKR_BUFFER_TOO_SMALL (32), then the RFC 4231 MAC",
        |ctx| {
            ctx.need_mech(CKM_SHA256_HMAC)?;
            let h = ctx.user_session()?;
            let k = hmac_key(ctx, h, &[0xaa; 131])?;
            setup(
                "C_SignInit",
                sign_init_rv(ctx, h, &mut Mech::new(CKM_SHA256_HMAC), k),
            )?;
            rv("C_SignUpdate", sign_update(ctx, h, HMAC_6_DATA), CKR_OK)?;
            let mut out = [0u8; 32];
            let mut small: CK_ULONG = 8;
            rv(
                "C_SignFinal(8-byte buffer)",
                p11!(ctx.m, C_SignFinal(h, out.as_mut_ptr(), &mut small)),
                CKR_BUFFER_TOO_SMALL,
            )?;
            ensure(small == 32, || {
                format!("length after CKR_BUFFER_TOO_SMALL {small}")
            })?;
            let mut full: CK_ULONG = 32;
            rv(
                "C_SignFinal",
                p11!(ctx.m, C_SignFinal(h, out.as_mut_ptr(), &mut full)),
                CKR_OK,
            )?;
            same_bytes("HMAC", &out, &unhex(HMAC_6_SHA256))
        },
    );
    r.add(
        "SIG-043",
        "5.12 C_Sign / CKM_ECDSA_SHA384",
        "P-384 with CKM_ECDSA_SHA384: aws-lc verifies",
        "CKR_OK, verified",
        |ctx| ecdsa_hashed(ctx, CKM_ECDSA_SHA384, P384, &sig::ECDSA_P384_SHA384_FIXED),
    );
    r.add(
        "SIG-044",
        "5.12 C_Sign / CKM_ECDSA_SHA512",
        "P-521 with CKM_ECDSA_SHA512: aws-lc verifies",
        "CKR_OK, verified",
        |ctx| ecdsa_hashed(ctx, CKM_ECDSA_SHA512, P521, &sig::ECDSA_P521_SHA512_FIXED),
    );
    r.add(
        "SIG-045",
        "5.12 C_Sign / CKM_SHA384_RSA_PKCS",
        "the exact PKCS#1 v1.5 SHA-384 signature",
        "aws-lc's bytes",
        |ctx| rsa_hashed(ctx, CKM_SHA384_RSA_PKCS, &sig::RSA_PKCS1_SHA384),
    );
    r.add(
        "SIG-046",
        "5.12 C_Sign / CKM_SHA512_RSA_PKCS",
        "the exact PKCS#1 v1.5 SHA-512 signature",
        "aws-lc's bytes",
        |ctx| rsa_hashed(ctx, CKM_SHA512_RSA_PKCS, &sig::RSA_PKCS1_SHA512),
    );
    r.add(
        "SIG-047",
        "5.12 C_Sign / CKM_SHA384_RSA_PKCS_PSS",
        "RSA-PSS SHA-384 (48-byte salt): aws-lc verifies",
        "CKR_OK, verified",
        |ctx| {
            pss_hashed(
                ctx,
                CKM_SHA384_RSA_PKCS_PSS,
                CKM_SHA384,
                CKG_MGF1_SHA384,
                48,
                &sig::RSA_PSS_2048_8192_SHA384,
            )
        },
    );
    r.add(
        "SIG-048",
        "5.12 C_Sign / CKM_SHA512_RSA_PKCS_PSS",
        "RSA-PSS SHA-512 (64-byte salt): aws-lc verifies",
        "CKR_OK, verified",
        |ctx| {
            pss_hashed(
                ctx,
                CKM_SHA512_RSA_PKCS_PSS,
                CKM_SHA512,
                CKG_MGF1_SHA512,
                64,
                &sig::RSA_PSS_2048_8192_SHA512,
            )
        },
    );
    r.add(
        "SIG-049",
        "5.12 C_Sign / CKM_RSA_PKCS",
        "raw PKCS#1 v1.5 over a SHA-256 DigestInfo is the SHA-256 signature",
        "aws-lc's bytes",
        |ctx| {
            ctx.need_mech(CKM_RSA_PKCS)?;
            let h = ctx.user_session()?;
            let (_, q) = rsa_pair(ctx, h)?;
            let msg = b"conformance: raw PKCS#1";
            let mut di = unhex(SHA256_DIGEST_INFO);
            di.extend(sha(CKM_SHA256, msg));
            let s = ctx.sign(h, &mut Mech::new(CKM_RSA_PKCS), q, &di)?;
            same_bytes("signature", &s, &rsa_pkcs1_expected(msg)?)
        },
    );
    r.add(
        "SIG-050",
        "5.12 C_Sign / CKM_RSA_PKCS_PSS",
        "PSS over a SHA-256 hash (SHA-256, MGF1-SHA-256, 32-byte salt): aws-lc verifies",
        "CKR_OK, verified",
        |ctx| {
            ctx.need_mech(CKM_RSA_PKCS_PSS)?;
            let h = ctx.user_session()?;
            let (_, q) = rsa_pair(ctx, h)?;
            let msg = b"conformance: raw PSS";
            let s = ctx.sign(
                h,
                &mut Mech::pss(CKM_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256, 32),
                q,
                &sha(CKM_SHA256, msg),
            )?;
            let (n, e) = (unhex(RSA_N), unhex(RSA_E));
            sig::RsaPublicKeyComponents { n: &n, e: &e }
                .verify(&sig::RSA_PSS_2048_8192_SHA256, msg, &s)
                .map_err(|_| Failure::Fail("aws-lc rejects the PSS signature".into()))
        },
    );
    r.add(
        "SIG-051",
        "5.12 C_SignUpdate / CKM_SHA256_RSA_PKCS",
        "multi-part PKCS#1 v1.5 SHA-256 (3 parts) is the exact signature",
        "aws-lc's bytes",
        |ctx| {
            ctx.need_mech(CKM_SHA256_RSA_PKCS)?;
            let h = ctx.user_session()?;
            let (_, q) = rsa_pair(ctx, h)?;
            let msg = b"conformance: multi-part RSA PKCS#1 v1.5 signature";
            setup(
                "C_SignInit",
                sign_init_rv(ctx, h, &mut Mech::new(CKM_SHA256_RSA_PKCS), q),
            )?;
            for part in msg.chunks(17) {
                rv("C_SignUpdate", sign_update(ctx, h, part), CKR_OK)?;
            }
            let s = ctx.output("C_SignFinal", |m, out, len| {
                p11!(m, C_SignFinal(h, out, len))
            })?;
            same_bytes("signature", &s, &rsa_pkcs1_expected(msg)?)
        },
    );
    r.add(
        "SIG-052",
        "5.12 C_Sign",
        "NULL pData with a non-zero length",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            ctx.need_mech(CKM_SHA256_RSA_PKCS)?;
            let h = ctx.user_session()?;
            let (_, q) = rsa_pair(ctx, h)?;
            setup(
                "C_SignInit",
                sign_init_rv(ctx, h, &mut Mech::new(CKM_SHA256_RSA_PKCS), q),
            )?;
            let mut out = [0u8; 256];
            let mut len: CK_ULONG = 256;
            rv(
                "C_Sign(NULL, 16)",
                p11!(
                    ctx.m,
                    C_Sign(h, std::ptr::null_mut(), 16, out.as_mut_ptr(), &mut len)
                ),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
}
