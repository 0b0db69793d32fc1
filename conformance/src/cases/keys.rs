//! Key management (§5.14): generating keys and key pairs, wrapping and unwrapping, with the
//! attributes generation must set (§4.7-4.10).

use pkcs11_sys::*;

use super::vectors::*;
use super::{aes_key, der_octet_unwrap, ec_pair, secret_key, unique, Reg};
use crate::case::*;
use crate::ctx::{Ctx, Mech, Tpl};
use crate::p11;

/// C_GenerateKey; returns the code and the handle.
pub fn gen_key_rv(
    ctx: &mut Ctx,
    h: CK_SESSION_HANDLE,
    mech: &mut Mech,
    mut t: Tpl,
) -> (CK_RV, CK_OBJECT_HANDLE) {
    let mut m = mech.raw();
    let mut a = t.attrs();
    let mut k: CK_OBJECT_HANDLE = 0;
    let got = p11!(
        ctx.m,
        C_GenerateKey(h, &mut m, a.as_mut_ptr(), a.len() as CK_ULONG, &mut k)
    );
    (got, k)
}

fn aes_template(len: CK_ULONG) -> Tpl {
    Tpl::new()
        .bool(CKA_TOKEN, false)
        .bool(CKA_ENCRYPT, true)
        .bool(CKA_DECRYPT, true)
        .ulong(CKA_VALUE_LEN, len)
}

/// C_WrapKey; returns the code and the output (length-query protocol, first call decides).
pub fn wrap_rv(
    ctx: &mut Ctx,
    h: CK_SESSION_HANDLE,
    mech: &mut Mech,
    wrapping: CK_OBJECT_HANDLE,
    key: CK_OBJECT_HANDLE,
) -> Result<(CK_RV, Vec<u8>), Failure> {
    let mut m = mech.raw();
    let mut len: CK_ULONG = 0;
    let got = p11!(
        ctx.m,
        C_WrapKey(h, &mut m, wrapping, key, std::ptr::null_mut(), &mut len)
    );
    if got != CKR_OK {
        return Ok((got, Vec::new()));
    }
    let out = ctx.output("C_WrapKey", |m, out, l| {
        let mut mm = mech.raw();
        p11!(m, C_WrapKey(h, &mut mm, wrapping, key, out, l))
    })?;
    Ok((CKR_OK, out))
}

/// C_UnwrapKey; returns the code and the new handle.
pub fn unwrap_rv(
    ctx: &mut Ctx,
    h: CK_SESSION_HANDLE,
    mech: &mut Mech,
    unwrapping: CK_OBJECT_HANDLE,
    wrapped: &[u8],
    mut t: Tpl,
) -> (CK_RV, CK_OBJECT_HANDLE) {
    let mut m = mech.raw();
    let mut w = wrapped.to_vec();
    let mut a = t.attrs();
    let mut k: CK_OBJECT_HANDLE = 0;
    let got = p11!(
        ctx.m,
        C_UnwrapKey(
            h,
            &mut m,
            unwrapping,
            w.as_mut_ptr(),
            w.len() as CK_ULONG,
            a.as_mut_ptr(),
            a.len() as CK_ULONG,
            &mut k
        )
    );
    (got, k)
}

fn unwrap_template(kt: CK_KEY_TYPE) -> Tpl {
    Tpl::new()
        .class(CKO_SECRET_KEY)
        .key_type(kt)
        .bool(CKA_TOKEN, false)
        .bool(CKA_SENSITIVE, false)
        .bool(CKA_EXTRACTABLE, true)
        .label(&unique("unwrapped"))
}

/// The cases of this chapter, in run order.
pub fn cases() -> Vec<Case> {
    let mut r = Reg::new(Chapter::KeyManagement);
    r.add("KEY-001", "5.14 C_GenerateKey / 4.7, 4.10", "an AES-256 key: class, type, length and the attributes generation sets",
        "CKA_LOCAL TRUE, CKA_KEY_GEN_MECHANISM CKM_AES_KEY_GEN, ALWAYS_SENSITIVE = SENSITIVE, NEVER_EXTRACTABLE = !EXTRACTABLE", |ctx| {
            ctx.need_mech(CKM_AES_KEY_GEN)?;
            let h = ctx.user_session()?;
            let k = ctx.gen_key(h, &mut Mech::new(CKM_AES_KEY_GEN), aes_template(32))?;
            let v = ctx.attr_ulong(h, k, CKA_CLASS)?;
            ensure(v == CKO_SECRET_KEY, || format!("CKA_CLASS {v}"))?;
            let v = ctx.attr_ulong(h, k, CKA_KEY_TYPE)?;
            ensure(v == CKK_AES, || format!("CKA_KEY_TYPE 0x{v:x}"))?;
            let v = ctx.attr_ulong(h, k, CKA_VALUE_LEN)?;
            ensure(v == 32, || format!("CKA_VALUE_LEN {v}"))?;
            ensure(ctx.attr_bool(h, k, CKA_LOCAL)?, || "CKA_LOCAL is FALSE".into())?;
            let mech = ctx.attr_ulong(h, k, CKA_KEY_GEN_MECHANISM)?;
            ensure(mech == CKM_AES_KEY_GEN, || format!("CKA_KEY_GEN_MECHANISM 0x{mech:x}"))?;
            let (s, e) = (ctx.attr_bool(h, k, CKA_SENSITIVE)?, ctx.attr_bool(h, k, CKA_EXTRACTABLE)?);
            ensure(ctx.attr_bool(h, k, CKA_ALWAYS_SENSITIVE)? == s, || "CKA_ALWAYS_SENSITIVE differs from CKA_SENSITIVE".into())?;
            ensure(ctx.attr_bool(h, k, CKA_NEVER_EXTRACTABLE)? != e, || "CKA_NEVER_EXTRACTABLE differs from !CKA_EXTRACTABLE".into())
        });
    r.add(
        "KEY-002",
        "5.14 C_GenerateKey",
        "CKM_AES_KEY_GEN without CKA_VALUE_LEN",
        "CKR_TEMPLATE_INCOMPLETE",
        |ctx| {
            ctx.need_mech(CKM_AES_KEY_GEN)?;
            let h = ctx.user_session()?;
            let (got, _) = gen_key_rv(
                ctx,
                h,
                &mut Mech::new(CKM_AES_KEY_GEN),
                Tpl::new().bool(CKA_TOKEN, false),
            );
            rv(
                "C_GenerateKey(no CKA_VALUE_LEN)",
                got,
                CKR_TEMPLATE_INCOMPLETE,
            )
        },
    );
    r.add(
        "KEY-003",
        "5.14 C_GenerateKey",
        "CKM_AES_KEY_GEN with CKA_VALUE_LEN 17",
        "CKR_ATTRIBUTE_VALUE_INVALID or CKR_KEY_SIZE_RANGE",
        |ctx| {
            ctx.need_mech(CKM_AES_KEY_GEN)?;
            let h = ctx.user_session()?;
            let (got, _) = gen_key_rv(ctx, h, &mut Mech::new(CKM_AES_KEY_GEN), aes_template(17));
            rv_in(
                "C_GenerateKey(17 bytes)",
                got,
                &[CKR_ATTRIBUTE_VALUE_INVALID, CKR_KEY_SIZE_RANGE],
            )
        },
    );
    r.add(
        "KEY-004",
        "5.14 C_GenerateKey",
        "a mechanism that does not exist",
        "CKR_MECHANISM_INVALID",
        |ctx| {
            let h = ctx.user_session()?;
            let (got, _) = gen_key_rv(
                ctx,
                h,
                &mut Mech::new(CKM_VENDOR_DEFINED | 0x4b_3443),
                aes_template(16),
            );
            rv(
                "C_GenerateKey(unknown mechanism)",
                got,
                CKR_MECHANISM_INVALID,
            )
        },
    );
    r.add(
        "KEY-005",
        "5.14 C_GenerateKey",
        "CKM_AES_KEY_GEN with CKA_CLASS = CKO_PUBLIC_KEY",
        "CKR_TEMPLATE_INCONSISTENT",
        |ctx| {
            ctx.need_mech(CKM_AES_KEY_GEN)?;
            let h = ctx.user_session()?;
            let (got, _) = gen_key_rv(
                ctx,
                h,
                &mut Mech::new(CKM_AES_KEY_GEN),
                aes_template(16).class(CKO_PUBLIC_KEY),
            );
            rv(
                "C_GenerateKey(CKO_PUBLIC_KEY)",
                got,
                CKR_TEMPLATE_INCONSISTENT,
            )
        },
    );
    r.add(
        "KEY-006",
        "5.14 C_GenerateKey",
        "NULL phKey",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            ctx.need_mech(CKM_AES_KEY_GEN)?;
            let h = ctx.user_session()?;
            let mut m = Mech::new(CKM_AES_KEY_GEN).raw();
            let mut t = aes_template(16);
            let mut a = t.attrs();
            rv(
                "C_GenerateKey(.., NULL)",
                p11!(
                    ctx.m,
                    C_GenerateKey(
                        h,
                        &mut m,
                        a.as_mut_ptr(),
                        a.len() as CK_ULONG,
                        std::ptr::null_mut()
                    )
                ),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "KEY-007",
        "5.14 C_GenerateKey",
        "NULL pMechanism",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let h = ctx.user_session()?;
            let mut t = aes_template(16);
            let mut a = t.attrs();
            let mut k: CK_OBJECT_HANDLE = 0;
            rv(
                "C_GenerateKey(NULL mechanism)",
                p11!(
                    ctx.m,
                    C_GenerateKey(
                        h,
                        std::ptr::null_mut(),
                        a.as_mut_ptr(),
                        a.len() as CK_ULONG,
                        &mut k
                    )
                ),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "KEY-008",
        "4.1 table footnote 4 / 5.14 C_GenerateKey",
        "CKA_VALUE in a C_GenerateKey template",
        "CKR_TEMPLATE_INCONSISTENT or CKR_ATTRIBUTE_READ_ONLY",
        |ctx| {
            ctx.need_mech(CKM_AES_KEY_GEN)?;
            let h = ctx.user_session()?;
            let (got, _) = gen_key_rv(
                ctx,
                h,
                &mut Mech::new(CKM_AES_KEY_GEN),
                aes_template(16).bytes(CKA_VALUE, &[0u8; 16]),
            );
            rv_in(
                "C_GenerateKey(CKA_VALUE)",
                got,
                &[CKR_TEMPLATE_INCONSISTENT, CKR_ATTRIBUTE_READ_ONLY],
            )
        },
    );
    r.add(
        "KEY-009",
        "5.14 C_GenerateKey / 5.6 session states",
        "a token key in a R/O session",
        "CKR_SESSION_READ_ONLY",
        |ctx| {
            ctx.need_mech(CKM_AES_KEY_GEN)?;
            let h = ctx.open(false)?;
            ctx.login(h, crate::guard::Role::User)?;
            let (got, k) = gen_key_rv(
                ctx,
                h,
                &mut Mech::new(CKM_AES_KEY_GEN),
                aes_template(16).bool(CKA_TOKEN, true),
            );
            if got == CKR_OK {
                let _ = ctx.destroy(h, k);
            }
            rv(
                "C_GenerateKey(CKA_TOKEN=TRUE, R/O)",
                got,
                CKR_SESSION_READ_ONLY,
            )
        },
    );
    r.add(
        "KEY-010",
        "5.14 C_GenerateKeyPair / 4.8-4.9 EC keys",
        "an EC P-256 pair: CKA_EC_POINT, CKA_LOCAL, CKA_KEY_GEN_MECHANISM",
        "CKA_EC_POINT = DER OCTET STRING of a 65-byte uncompressed point; both halves local",
        |ctx| {
            let h = ctx.user_session()?;
            let (p, q) = ec_pair(ctx, h, P256, &[])?;
            let point = ctx.attr(h, p, CKA_EC_POINT)?;
            let inner = der_octet_unwrap(&point).ok_or_else(|| {
                Failure::Fail(format!(
                    "CKA_EC_POINT is not a DER OCTET STRING: {}",
                    hex(&point)
                ))
            })?;
            ensure(inner.len() == 65 && inner[0] == 0x04, || {
                format!("point {}", hex(inner))
            })?;
            same_bytes(
                "public CKA_EC_PARAMS",
                &ctx.attr(h, p, CKA_EC_PARAMS)?,
                P256,
            )?;
            for (what, o) in [("public", p), ("private", q)] {
                let kt = ctx.attr_ulong(h, o, CKA_KEY_TYPE)?;
                ensure(kt == CKK_EC, || format!("{what} CKA_KEY_TYPE 0x{kt:x}"))?;
                ensure(ctx.attr_bool(h, o, CKA_LOCAL)?, || {
                    format!("{what} CKA_LOCAL is FALSE")
                })?;
                let m = ctx.attr_ulong(h, o, CKA_KEY_GEN_MECHANISM)?;
                ensure(m == CKM_EC_KEY_PAIR_GEN, || {
                    format!("{what} CKA_KEY_GEN_MECHANISM 0x{m:x}")
                })?;
            }
            Ok(())
        },
    );
    r.add(
        "KEY-011",
        "5.14 C_GenerateKeyPair",
        "CKA_EC_PARAMS naming no curve the token has",
        "CKR_CURVE_NOT_SUPPORTED or CKR_DOMAIN_PARAMS_INVALID",
        |ctx| {
            ctx.need_mech(CKM_EC_KEY_PAIR_GEN)?;
            let h = ctx.user_session()?;
            let (got, _, _) = ctx.gen_pair_rv(
                h,
                &mut Mech::new(CKM_EC_KEY_PAIR_GEN),
                &mut Tpl::new()
                    .bool(CKA_TOKEN, false)
                    .bytes(CKA_EC_PARAMS, BOGUS_CURVE),
                &mut Tpl::new().bool(CKA_TOKEN, false),
            );
            rv_in(
                "C_GenerateKeyPair(OID 1.2.3.4.5)",
                got,
                &[CKR_CURVE_NOT_SUPPORTED, CKR_DOMAIN_PARAMS_INVALID],
            )
        },
    );
    r.add(
        "KEY-012",
        "5.14 C_GenerateKeyPair",
        "CKM_EC_KEY_PAIR_GEN without CKA_EC_PARAMS",
        "CKR_TEMPLATE_INCOMPLETE",
        |ctx| {
            ctx.need_mech(CKM_EC_KEY_PAIR_GEN)?;
            let h = ctx.user_session()?;
            let (got, _, _) = ctx.gen_pair_rv(
                h,
                &mut Mech::new(CKM_EC_KEY_PAIR_GEN),
                &mut Tpl::new().bool(CKA_TOKEN, false),
                &mut Tpl::new().bool(CKA_TOKEN, false),
            );
            rv(
                "C_GenerateKeyPair(no CKA_EC_PARAMS)",
                got,
                CKR_TEMPLATE_INCOMPLETE,
            )
        },
    );
    r.add("KEY-013", "5.14 C_GenerateKeyPair / RSA keys", "an RSA-2048 pair: modulus, exponent, a signature aws-lc verifies, private exponent sensitive",
        "256-byte modulus, CKA_PUBLIC_EXPONENT 010001, CKR_ATTRIBUTE_SENSITIVE for CKA_PRIVATE_EXPONENT", |ctx| {
            ctx.need_mech(CKM_RSA_PKCS_KEY_PAIR_GEN)?;
            ctx.need_mech(CKM_SHA256_RSA_PKCS)?;
            let h = ctx.user_session()?;
            let (p, q) = ctx.gen_pair(h, &mut Mech::new(CKM_RSA_PKCS_KEY_PAIR_GEN),
                Tpl::new().bool(CKA_TOKEN, false).bool(CKA_VERIFY, true).ulong(CKA_MODULUS_BITS, 2048).bytes(CKA_PUBLIC_EXPONENT, &[1, 0, 1]),
                Tpl::new().bool(CKA_TOKEN, false).bool(CKA_PRIVATE, true).bool(CKA_SENSITIVE, true).bool(CKA_SIGN, true))?;
            let n = ctx.attr(h, p, CKA_MODULUS)?;
            ensure(n.len() == 256 && n[0] & 0x80 != 0, || format!("modulus of {} bytes", n.len()))?;
            let bits = ctx.attr_ulong(h, p, CKA_MODULUS_BITS)?;
            ensure(bits == 2048, || format!("CKA_MODULUS_BITS {bits}"))?;
            let e = ctx.attr(h, p, CKA_PUBLIC_EXPONENT)?;
            let e_trim: Vec<u8> = e.iter().copied().skip_while(|b| *b == 0).collect();
            same_bytes("CKA_PUBLIC_EXPONENT", &e_trim, &[1, 0, 1])?;
            let got = ctx.attr_rv(h, q, CKA_PRIVATE_EXPONENT).err().unwrap_or(CKR_OK);
            rv("C_GetAttributeValue(CKA_PRIVATE_EXPONENT)", got, CKR_ATTRIBUTE_SENSITIVE)?;
            let msg = b"conformance: RSA key generation";
            let sig = ctx.sign(h, &mut Mech::new(CKM_SHA256_RSA_PKCS), q, msg)?;
            let pk = aws_lc_rs::signature::RsaPublicKeyComponents { n: &n, e: &e };
            pk.verify(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256, msg, &sig)
                .map_err(|_| Failure::Fail("aws-lc rejects the signature made with the generated key".into()))
        });
    r.add(
        "KEY-014",
        "5.14 C_GenerateKeyPair",
        "CKM_RSA_PKCS_KEY_PAIR_GEN without CKA_MODULUS_BITS",
        "CKR_TEMPLATE_INCOMPLETE",
        |ctx| {
            ctx.need_mech(CKM_RSA_PKCS_KEY_PAIR_GEN)?;
            let h = ctx.user_session()?;
            let (got, _, _) = ctx.gen_pair_rv(
                h,
                &mut Mech::new(CKM_RSA_PKCS_KEY_PAIR_GEN),
                &mut Tpl::new().bool(CKA_TOKEN, false),
                &mut Tpl::new().bool(CKA_TOKEN, false),
            );
            rv(
                "C_GenerateKeyPair(no CKA_MODULUS_BITS)",
                got,
                CKR_TEMPLATE_INCOMPLETE,
            )
        },
    );
    r.add(
        "KEY-015",
        "5.14 C_GenerateKeyPair",
        "NULL phPublicKey",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            ctx.need_mech(CKM_EC_KEY_PAIR_GEN)?;
            let h = ctx.user_session()?;
            let mut m = Mech::new(CKM_EC_KEY_PAIR_GEN).raw();
            let mut pt = Tpl::new().bool(CKA_TOKEN, false).bytes(CKA_EC_PARAMS, P256);
            let mut qt = Tpl::new().bool(CKA_TOKEN, false);
            let (mut pa, mut qa) = (pt.attrs(), qt.attrs());
            let mut q: CK_OBJECT_HANDLE = 0;
            rv(
                "C_GenerateKeyPair(NULL public handle)",
                p11!(
                    ctx.m,
                    C_GenerateKeyPair(
                        h,
                        &mut m,
                        pa.as_mut_ptr(),
                        pa.len() as CK_ULONG,
                        qa.as_mut_ptr(),
                        qa.len() as CK_ULONG,
                        std::ptr::null_mut(),
                        &mut q
                    )
                ),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "KEY-016",
        "5.14 C_GenerateKeyPair / Edwards keys",
        "an Ed25519 pair: a 32-byte point and a signature aws-lc verifies",
        "CKA_EC_POINT = DER OCTET STRING of 32 bytes",
        |ctx| {
            ctx.need_mech(CKM_EC_EDWARDS_KEY_PAIR_GEN)?;
            ctx.need_mech(CKM_EDDSA)?;
            let h = ctx.user_session()?;
            let (p, q) = ctx.gen_pair(
                h,
                &mut Mech::new(CKM_EC_EDWARDS_KEY_PAIR_GEN),
                Tpl::new()
                    .bool(CKA_TOKEN, false)
                    .bool(CKA_VERIFY, true)
                    .bytes(CKA_EC_PARAMS, ED25519),
                Tpl::new()
                    .bool(CKA_TOKEN, false)
                    .bool(CKA_PRIVATE, true)
                    .bool(CKA_SIGN, true),
            )?;
            let point = ctx.attr(h, p, CKA_EC_POINT)?;
            let inner = der_octet_unwrap(&point)
                .ok_or_else(|| {
                    Failure::Fail(format!(
                        "CKA_EC_POINT is not a DER OCTET STRING: {}",
                        hex(&point)
                    ))
                })?
                .to_vec();
            ensure(inner.len() == 32, || {
                format!("point of {} bytes", inner.len())
            })?;
            let msg = b"conformance: Ed25519";
            let sig = ctx.sign(h, &mut Mech::new(CKM_EDDSA), q, msg)?;
            aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, &inner)
                .verify(msg, &sig)
                .map_err(|_| Failure::Fail("aws-lc rejects the Ed25519 signature".into()))
        },
    );
    r.add(
        "KEY-017",
        "5.14 C_WrapKey / CKM_AES_KEY_WRAP",
        "RFC 3394 §4.6: wrapping a 256-bit key under a 256-bit KEK; length query and short buffer",
        "the RFC's 40 bytes; CKR_BUFFER_TOO_SMALL with length 40",
        |ctx| {
            ctx.need_mech(CKM_AES_KEY_WRAP)?;
            let h = ctx.user_session()?;
            let kek = aes_key(ctx, h, &unhex(KW_KEK))?;
            let key = aes_key(ctx, h, &unhex(KW_KEY))?;
            let mut mech = Mech::new(CKM_AES_KEY_WRAP);
            let mut m = mech.raw();
            let mut len: CK_ULONG = 0;
            rv(
                "C_WrapKey(length query)",
                p11!(
                    ctx.m,
                    C_WrapKey(h, &mut m, kek, key, std::ptr::null_mut(), &mut len)
                ),
                CKR_OK,
            )?;
            ensure(len == 40, || format!("length {len}, expected 40"))?;
            let mut small = [0u8; 16];
            let mut slen: CK_ULONG = 16;
            rv(
                "C_WrapKey(16-byte buffer)",
                p11!(
                    ctx.m,
                    C_WrapKey(h, &mut m, kek, key, small.as_mut_ptr(), &mut slen)
                ),
                CKR_BUFFER_TOO_SMALL,
            )?;
            ensure(slen == 40, || {
                format!("length after CKR_BUFFER_TOO_SMALL {slen}")
            })?;
            let mut out = [0u8; 40];
            let mut olen: CK_ULONG = 40;
            rv(
                "C_WrapKey",
                p11!(
                    ctx.m,
                    C_WrapKey(h, &mut m, kek, key, out.as_mut_ptr(), &mut olen)
                ),
                CKR_OK,
            )?;
            same_bytes(
                "wrapped key",
                &out[..(olen as usize).min(40)],
                &unhex(KW_WRAPPED),
            )
        },
    );
    r.add(
        "KEY-018",
        "5.14 C_UnwrapKey / CKM_AES_KEY_WRAP",
        "RFC 3394 §4.6: unwrapping gives the key back",
        "CKR_OK; CKA_VALUE = the RFC's key data, CKA_VALUE_LEN 32",
        |ctx| {
            ctx.need_mech(CKM_AES_KEY_WRAP)?;
            let h = ctx.user_session()?;
            let kek = aes_key(ctx, h, &unhex(KW_KEK))?;
            let (got, k) = unwrap_rv(
                ctx,
                h,
                &mut Mech::new(CKM_AES_KEY_WRAP),
                kek,
                &unhex(KW_WRAPPED),
                unwrap_template(CKK_AES),
            );
            rv("C_UnwrapKey", got, CKR_OK)?;
            same_bytes(
                "unwrapped CKA_VALUE",
                &ctx.attr(h, k, CKA_VALUE)?,
                &unhex(KW_KEY),
            )?;
            let v = ctx.attr_ulong(h, k, CKA_VALUE_LEN)?;
            ensure(v == 32, || format!("CKA_VALUE_LEN {v}, expected 32"))
        },
    );
    r.add(
        "KEY-019",
        "5.14 C_WrapKey / 4.9 CKA_EXTRACTABLE",
        "wrapping a non-extractable key",
        "CKR_KEY_UNEXTRACTABLE",
        |ctx| {
            ctx.need_mech(CKM_AES_KEY_WRAP)?;
            let h = ctx.user_session()?;
            let kek = aes_key(ctx, h, &unhex(KW_KEK))?;
            let key = secret_key(
                ctx,
                h,
                CKK_AES,
                &[3u8; 32],
                &[(CKA_EXTRACTABLE, false), (CKA_SENSITIVE, true)],
            )?;
            let (got, _) = wrap_rv(ctx, h, &mut Mech::new(CKM_AES_KEY_WRAP), kek, key)?;
            rv("C_WrapKey(non-extractable)", got, CKR_KEY_UNEXTRACTABLE)
        },
    );
    r.add(
        "KEY-020",
        "5.14 C_WrapKey",
        "an invalid wrapping key handle",
        "CKR_WRAPPING_KEY_HANDLE_INVALID",
        |ctx| {
            ctx.need_mech(CKM_AES_KEY_WRAP)?;
            let h = ctx.user_session()?;
            let key = aes_key(ctx, h, &[3u8; 32])?;
            let (got, _) = wrap_rv(
                ctx,
                h,
                &mut Mech::new(CKM_AES_KEY_WRAP),
                CK_INVALID_HANDLE,
                key,
            )?;
            rv(
                "C_WrapKey(wrapping key 0)",
                got,
                CKR_WRAPPING_KEY_HANDLE_INVALID,
            )
        },
    );
    r.add(
        "KEY-021",
        "5.14 C_WrapKey",
        "an invalid handle for the key to wrap",
        "CKR_KEY_HANDLE_INVALID",
        |ctx| {
            ctx.need_mech(CKM_AES_KEY_WRAP)?;
            let h = ctx.user_session()?;
            let kek = aes_key(ctx, h, &unhex(KW_KEK))?;
            let (got, _) = wrap_rv(
                ctx,
                h,
                &mut Mech::new(CKM_AES_KEY_WRAP),
                kek,
                CK_INVALID_HANDLE,
            )?;
            rv("C_WrapKey(key 0)", got, CKR_KEY_HANDLE_INVALID)
        },
    );
    r.add(
        "KEY-022",
        "5.14 C_WrapKey / 4.9 CKA_WRAP",
        "a wrapping key with CKA_WRAP=FALSE",
        "CKR_KEY_FUNCTION_NOT_PERMITTED",
        |ctx| {
            ctx.need_mech(CKM_AES_KEY_WRAP)?;
            let h = ctx.user_session()?;
            let kek = secret_key(ctx, h, CKK_AES, &unhex(KW_KEK), &[(CKA_WRAP, false)])?;
            let key = aes_key(ctx, h, &[3u8; 32])?;
            let (got, _) = wrap_rv(ctx, h, &mut Mech::new(CKM_AES_KEY_WRAP), kek, key)?;
            rv(
                "C_WrapKey(CKA_WRAP=FALSE)",
                got,
                CKR_KEY_FUNCTION_NOT_PERMITTED,
            )
        },
    );
    r.add(
        "KEY-023",
        "5.14 C_UnwrapKey",
        "40 bytes that fail the RFC 3394 integrity check",
        "CKR_WRAPPED_KEY_INVALID",
        |ctx| {
            ctx.need_mech(CKM_AES_KEY_WRAP)?;
            let h = ctx.user_session()?;
            let kek = aes_key(ctx, h, &unhex(KW_KEK))?;
            let mut bad = unhex(KW_WRAPPED);
            bad[5] ^= 0x40;
            let (got, _) = unwrap_rv(
                ctx,
                h,
                &mut Mech::new(CKM_AES_KEY_WRAP),
                kek,
                &bad,
                unwrap_template(CKK_AES),
            );
            rv("C_UnwrapKey(corrupted)", got, CKR_WRAPPED_KEY_INVALID)
        },
    );
    r.add(
        "KEY-024",
        "5.14 C_UnwrapKey",
        "a wrapped key whose length is not a multiple of 8",
        "CKR_WRAPPED_KEY_LEN_RANGE",
        |ctx| {
            ctx.need_mech(CKM_AES_KEY_WRAP)?;
            let h = ctx.user_session()?;
            let kek = aes_key(ctx, h, &unhex(KW_KEK))?;
            let (got, _) = unwrap_rv(
                ctx,
                h,
                &mut Mech::new(CKM_AES_KEY_WRAP),
                kek,
                &[0x55u8; 37],
                unwrap_template(CKK_AES),
            );
            rv("C_UnwrapKey(37 bytes)", got, CKR_WRAPPED_KEY_LEN_RANGE)
        },
    );
    r.add(
        "KEY-025",
        "5.14 C_UnwrapKey",
        "an invalid unwrapping key handle",
        "CKR_UNWRAPPING_KEY_HANDLE_INVALID",
        |ctx| {
            ctx.need_mech(CKM_AES_KEY_WRAP)?;
            let h = ctx.user_session()?;
            let (got, _) = unwrap_rv(
                ctx,
                h,
                &mut Mech::new(CKM_AES_KEY_WRAP),
                CK_INVALID_HANDLE,
                &unhex(KW_WRAPPED),
                unwrap_template(CKK_AES),
            );
            rv(
                "C_UnwrapKey(unwrapping key 0)",
                got,
                CKR_UNWRAPPING_KEY_HANDLE_INVALID,
            )
        },
    );
    r.add(
        "KEY-026",
        "5.14 C_UnwrapKey",
        "NULL phKey",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            ctx.need_mech(CKM_AES_KEY_WRAP)?;
            let h = ctx.user_session()?;
            let kek = aes_key(ctx, h, &unhex(KW_KEK))?;
            let mut m = Mech::new(CKM_AES_KEY_WRAP).raw();
            let mut w = unhex(KW_WRAPPED);
            let mut t = unwrap_template(CKK_AES);
            let mut a = t.attrs();
            rv(
                "C_UnwrapKey(.., NULL)",
                p11!(
                    ctx.m,
                    C_UnwrapKey(
                        h,
                        &mut m,
                        kek,
                        w.as_mut_ptr(),
                        w.len() as CK_ULONG,
                        a.as_mut_ptr(),
                        a.len() as CK_ULONG,
                        std::ptr::null_mut()
                    )
                ),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "KEY-027",
        "5.14 C_UnwrapKey",
        "a template without CKA_KEY_TYPE",
        "CKR_TEMPLATE_INCOMPLETE",
        |ctx| {
            ctx.need_mech(CKM_AES_KEY_WRAP)?;
            let h = ctx.user_session()?;
            let kek = aes_key(ctx, h, &unhex(KW_KEK))?;
            let (got, _) = unwrap_rv(
                ctx,
                h,
                &mut Mech::new(CKM_AES_KEY_WRAP),
                kek,
                &unhex(KW_WRAPPED),
                Tpl::new().class(CKO_SECRET_KEY).bool(CKA_TOKEN, false),
            );
            rv("C_UnwrapKey(no CKA_KEY_TYPE)", got, CKR_TEMPLATE_INCOMPLETE)
        },
    );
    r.add(
        "KEY-028",
        "5.14 C_WrapKey / CKM_AES_KEY_WRAP_PAD",
        "RFC 5649 §6: wrapping a 20-byte key under a 192-bit KEK",
        "the RFC's 32 bytes",
        |ctx| {
            ctx.need_mech(CKM_AES_KEY_WRAP_PAD)?;
            let h = ctx.user_session()?;
            let kek = aes_key(ctx, h, &unhex(KWP_KEK))?;
            let key = secret_key(ctx, h, CKK_GENERIC_SECRET, &unhex(KWP_KEY), &[])?;
            let (got, out) = wrap_rv(ctx, h, &mut Mech::new(CKM_AES_KEY_WRAP_PAD), kek, key)?;
            rv("C_WrapKey(CKM_AES_KEY_WRAP_PAD)", got, CKR_OK)?;
            same_bytes("wrapped key", &out, &unhex(KWP_WRAPPED))
        },
    );
    r.add(
        "KEY-029",
        "4.9 CKA_WRAP_WITH_TRUSTED / 5.14 C_WrapKey",
        "a key with CKA_WRAP_WITH_TRUSTED under an untrusted wrapping key",
        "CKR_KEY_NOT_WRAPPABLE",
        |ctx| {
            ctx.need_mech(CKM_AES_KEY_WRAP)?;
            let h = ctx.user_session()?;
            let kek = aes_key(ctx, h, &unhex(KW_KEK))?;
            let key = secret_key(
                ctx,
                h,
                CKK_AES,
                &[9u8; 32],
                &[(CKA_WRAP_WITH_TRUSTED, true)],
            )?;
            let (got, _) = wrap_rv(ctx, h, &mut Mech::new(CKM_AES_KEY_WRAP), kek, key)?;
            rv(
                "C_WrapKey(CKA_WRAP_WITH_TRUSTED)",
                got,
                CKR_KEY_NOT_WRAPPABLE,
            )
        },
    );
    r.add(
        "KEY-030",
        "5.14 C_GenerateKey / generic secret",
        "a 32-byte generic secret: length, CKA_LOCAL, CKA_KEY_GEN_MECHANISM",
        "CKA_VALUE_LEN 32, CKA_LOCAL TRUE, CKM_GENERIC_SECRET_KEY_GEN",
        |ctx| {
            ctx.need_mech(CKM_GENERIC_SECRET_KEY_GEN)?;
            let h = ctx.user_session()?;
            let k = ctx.gen_key(
                h,
                &mut Mech::new(CKM_GENERIC_SECRET_KEY_GEN),
                Tpl::new()
                    .bool(CKA_TOKEN, false)
                    .bool(CKA_SIGN, true)
                    .ulong(CKA_VALUE_LEN, 32),
            )?;
            let v = ctx.attr_ulong(h, k, CKA_KEY_TYPE)?;
            ensure(v == CKK_GENERIC_SECRET, || format!("CKA_KEY_TYPE 0x{v:x}"))?;
            let v = ctx.attr_ulong(h, k, CKA_VALUE_LEN)?;
            ensure(v == 32, || format!("CKA_VALUE_LEN {v}"))?;
            ensure(ctx.attr_bool(h, k, CKA_LOCAL)?, || {
                "CKA_LOCAL is FALSE".into()
            })?;
            let m = ctx.attr_ulong(h, k, CKA_KEY_GEN_MECHANISM)?;
            ensure(m == CKM_GENERIC_SECRET_KEY_GEN, || {
                format!("CKA_KEY_GEN_MECHANISM 0x{m:x}")
            })
        },
    );
    r.add(
        "KEY-031",
        "5.14 C_UnwrapKey / 4.9 CKA_UNWRAP",
        "an unwrapping key with CKA_UNWRAP=FALSE",
        "CKR_KEY_FUNCTION_NOT_PERMITTED",
        |ctx| {
            ctx.need_mech(CKM_AES_KEY_WRAP)?;
            let h = ctx.user_session()?;
            let kek = secret_key(ctx, h, CKK_AES, &unhex(KW_KEK), &[(CKA_UNWRAP, false)])?;
            let (got, _) = unwrap_rv(
                ctx,
                h,
                &mut Mech::new(CKM_AES_KEY_WRAP),
                kek,
                &unhex(KW_WRAPPED),
                unwrap_template(CKK_AES),
            );
            rv(
                "C_UnwrapKey(CKA_UNWRAP=FALSE)",
                got,
                CKR_KEY_FUNCTION_NOT_PERMITTED,
            )
        },
    );
    r.add(
        "KEY-032",
        "5.14 C_WrapKey",
        "a digest mechanism for wrapping",
        "CKR_MECHANISM_INVALID",
        |ctx| {
            let h = ctx.user_session()?;
            let kek = aes_key(ctx, h, &unhex(KW_KEK))?;
            let key = aes_key(ctx, h, &[3u8; 32])?;
            let (got, _) = wrap_rv(ctx, h, &mut Mech::new(CKM_SHA256), kek, key)?;
            rv("C_WrapKey(CKM_SHA256)", got, CKR_MECHANISM_INVALID)
        },
    );
    r.add(
        "KEY-033",
        "5.14 C_GenerateKeyPair",
        "a secret-key generation mechanism for a key pair",
        "CKR_MECHANISM_INVALID",
        |ctx| {
            ctx.need_mech(CKM_AES_KEY_GEN)?;
            let h = ctx.user_session()?;
            let (got, _, _) = ctx.gen_pair_rv(
                h,
                &mut Mech::new(CKM_AES_KEY_GEN),
                &mut Tpl::new().bool(CKA_TOKEN, false),
                &mut Tpl::new().bool(CKA_TOKEN, false),
            );
            rv(
                "C_GenerateKeyPair(CKM_AES_KEY_GEN)",
                got,
                CKR_MECHANISM_INVALID,
            )
        },
    );
    r.add(
        "KEY-034",
        "5.14 C_GenerateKey",
        "a key-pair generation mechanism for a secret key",
        "CKR_MECHANISM_INVALID",
        |ctx| {
            ctx.need_mech(CKM_EC_KEY_PAIR_GEN)?;
            let h = ctx.user_session()?;
            let (got, _) = gen_key_rv(
                ctx,
                h,
                &mut Mech::new(CKM_EC_KEY_PAIR_GEN),
                Tpl::new().bool(CKA_TOKEN, false).bytes(CKA_EC_PARAMS, P256),
            );
            rv(
                "C_GenerateKey(CKM_EC_KEY_PAIR_GEN)",
                got,
                CKR_MECHANISM_INVALID,
            )
        },
    );
    more(&mut r);
    r.done()
}

fn more(r: &mut Reg) {
    r.add(
        "KEY-035",
        "5.14 C_WrapKey / CKM_AES_CBC_PAD",
        "wrapping with CBC-PAD is encrypting the key value: C_Decrypt with the KEK gives it back",
        "the key value",
        |ctx| {
            ctx.need_mech_flags(CKM_AES_CBC_PAD, CKF_WRAP | CKF_DECRYPT)?;
            let h = ctx.user_session()?;
            let kek = aes_key(ctx, h, &unhex(KW_KEK))?;
            let value: Vec<u8> = (50..82).collect();
            let key = aes_key(ctx, h, &value)?;
            let iv = [7u8; 16];
            let (got, wrapped) = wrap_rv(ctx, h, &mut Mech::bytes(CKM_AES_CBC_PAD, &iv), kek, key)?;
            rv("C_WrapKey(CKM_AES_CBC_PAD)", got, CKR_OK)?;
            ensure(wrapped.len() == 48, || {
                format!("wrapped key of {} bytes, expected 48", wrapped.len())
            })?;
            let back = ctx.decrypt(h, &mut Mech::bytes(CKM_AES_CBC_PAD, &iv), kek, &wrapped)?;
            same_bytes("decrypted wrapped key", &back, &value)
        },
    );
    r.add(
        "KEY-036",
        "5.14 C_WrapKey / CKM_RSA_PKCS_OAEP",
        "wrapping a secret key with RSA-OAEP (SHA-1): aws-lc decrypts the key value",
        "the key value",
        |ctx| {
            ctx.need_mech_flags(CKM_RSA_PKCS_OAEP, CKF_WRAP)?;
            let h = ctx.user_session()?;
            let (p, _) = super::rsa_pair(ctx, h)?;
            let value: Vec<u8> = (90..122).collect();
            let key = aes_key(ctx, h, &value)?;
            let (got, wrapped) =
                wrap_rv(ctx, h, &mut Mech::oaep(CKM_SHA_1, CKG_MGF1_SHA1), p, key)?;
            rv("C_WrapKey(CKM_RSA_PKCS_OAEP)", got, CKR_OK)?;
            use aws_lc_rs::rsa::{
                OaepPrivateDecryptingKey, PrivateDecryptingKey, OAEP_SHA1_MGF1SHA1,
            };
            let dk = PrivateDecryptingKey::from_pkcs8(&unhex(RSA_PKCS8))
                .ok()
                .and_then(|k| OaepPrivateDecryptingKey::new(k).ok())
                .ok_or_else(|| Failure::Fail("aws-lc cannot read the test key".into()))?;
            let mut out = vec![0u8; 256];
            let pt = dk
                .decrypt(&OAEP_SHA1_MGF1SHA1, &wrapped, &mut out, None)
                .map_err(|_| Failure::Fail("aws-lc cannot decrypt the wrapped key".into()))?;
            same_bytes("unwrapped by aws-lc", pt, &value)
        },
    );
    r.add(
        "KEY-037",
        "5.14 C_UnwrapKey / CKM_RSA_PKCS_OAEP",
        "unwrapping an RSA-OAEP (SHA-1) encrypted AES key",
        "CKR_OK; CKA_VALUE as encrypted",
        |ctx| {
            ctx.need_mech_flags(CKM_RSA_PKCS_OAEP, CKF_UNWRAP | CKF_ENCRYPT)?;
            let h = ctx.user_session()?;
            let (p, q) = super::rsa_pair(ctx, h)?;
            let value: Vec<u8> = (10..26).collect();
            let wrapped = ctx.encrypt(h, &mut Mech::oaep(CKM_SHA_1, CKG_MGF1_SHA1), p, &value)?;
            let (got, k) = unwrap_rv(
                ctx,
                h,
                &mut Mech::oaep(CKM_SHA_1, CKG_MGF1_SHA1),
                q,
                &wrapped,
                unwrap_template(CKK_AES),
            );
            rv("C_UnwrapKey(CKM_RSA_PKCS_OAEP)", got, CKR_OK)?;
            same_bytes("unwrapped CKA_VALUE", &ctx.attr(h, k, CKA_VALUE)?, &value)
        },
    );
    r.add("KEY-038", "5.8-5.14 key handles", "a destroyed key in every function that takes a key",
        "CKR_KEY_HANDLE_INVALID (Sign/Verify/Encrypt/DecryptInit, C_DigestKey), CKR_WRAPPING_/UNWRAPPING_KEY_HANDLE_INVALID", |ctx| {
            let h = ctx.user_session()?;
            let k = aes_key(ctx, h, &[0x21; 16])?;
            let other = aes_key(ctx, h, &[0x22; 16])?;
            setup("C_DestroyObject", ctx.destroy(h, k))?;
            let mut bad = Vec::new();
            let mut check = |what: &str, got: CK_RV, want: CK_RV| {
                if got != want {
                    bad.push(format!("{what}: {}", crate::names::ckr(got)));
                }
            };
            let mut cbc = Mech::bytes(CKM_AES_CBC_PAD, &[0u8; 16]);
            let mut hmac = Mech::new(CKM_SHA256_HMAC);
            let mut kw = Mech::new(CKM_AES_KEY_WRAP);
            let (mut m1, mut m2, mut m3) = (cbc.raw(), hmac.raw(), kw.raw());
            check("C_EncryptInit", p11!(ctx.m, C_EncryptInit(h, &mut m1, k)), CKR_KEY_HANDLE_INVALID);
            check("C_DecryptInit", p11!(ctx.m, C_DecryptInit(h, &mut m1, k)), CKR_KEY_HANDLE_INVALID);
            check("C_SignInit", p11!(ctx.m, C_SignInit(h, &mut m2, k)), CKR_KEY_HANDLE_INVALID);
            check("C_VerifyInit", p11!(ctx.m, C_VerifyInit(h, &mut m2, k)), CKR_KEY_HANDLE_INVALID);
            let mut len: CK_ULONG = 0;
            check("C_WrapKey(wrapping)", p11!(ctx.m, C_WrapKey(h, &mut m3, k, other, std::ptr::null_mut(), &mut len)), CKR_WRAPPING_KEY_HANDLE_INVALID);
            check("C_WrapKey(key)", p11!(ctx.m, C_WrapKey(h, &mut m3, other, k, std::ptr::null_mut(), &mut len)), CKR_KEY_HANDLE_INVALID);
            let mut w = unhex(KW_WRAPPED);
            let mut t = unwrap_template(CKK_AES);
            let mut a = t.attrs();
            let mut nk: CK_OBJECT_HANDLE = 0;
            check("C_UnwrapKey", p11!(ctx.m, C_UnwrapKey(h, &mut m3, k, w.as_mut_ptr(), w.len() as CK_ULONG, a.as_mut_ptr(), a.len() as CK_ULONG, &mut nk)), CKR_UNWRAPPING_KEY_HANDLE_INVALID);
            let mut dm = Mech::new(CKM_SHA256).raw();
            if p11!(ctx.m, C_DigestInit(h, &mut dm)) == CKR_OK {
                let got = p11!(ctx.m, C_DigestKey(h, k));
                if got != CKR_FUNCTION_NOT_SUPPORTED {
                    check("C_DigestKey", got, CKR_KEY_HANDLE_INVALID);
                }
            }
            ensure(bad.is_empty(), || bad.join("; "))
        });
    r.add(
        "KEY-039",
        "5.1 / 5.14 C_GenerateKey",
        "a closed session with an unknown mechanism: the session is checked first",
        "CKR_SESSION_HANDLE_INVALID",
        |ctx| {
            let h = ctx.open(true)?;
            setup("C_CloseSession", ctx.close(h))?;
            let mut m = Mech::new(CKM_VENDOR_DEFINED | 0x1234).raw();
            let mut t = aes_template(16);
            let mut a = t.attrs();
            let mut k: CK_OBJECT_HANDLE = 0;
            rv(
                "C_GenerateKey(closed, CKM_VENDOR_DEFINED | 0x1234)",
                p11!(
                    ctx.m,
                    C_GenerateKey(h, &mut m, a.as_mut_ptr(), a.len() as CK_ULONG, &mut k)
                ),
                CKR_SESSION_HANDLE_INVALID,
            )
        },
    );
}
