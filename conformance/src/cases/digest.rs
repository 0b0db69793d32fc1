//! Message digesting (§5.10): FIPS 180-4 known answers, multi-part, C_DigestKey, and the
//! operation rules.

use pkcs11_sys::*;

use super::vectors::*;
use super::{aes_key, sha, Reg};
use crate::case::*;
use crate::ctx::{Ctx, Mech};
use crate::p11;

fn digest_init_rv(ctx: &mut Ctx, h: CK_SESSION_HANDLE, mech: CK_MECHANISM_TYPE) -> CK_RV {
    let mut m = Mech::new(mech).raw();
    p11!(ctx.m, C_DigestInit(h, &mut m))
}

fn digest_update(ctx: &mut Ctx, h: CK_SESSION_HANDLE, part: &[u8]) -> CK_RV {
    let mut p = part.to_vec();
    p11!(
        ctx.m,
        C_DigestUpdate(h, p.as_mut_ptr(), p.len() as CK_ULONG)
    )
}

fn kat(ctx: &mut Ctx, mech: CK_MECHANISM_TYPE, data: &[u8], want: &str) -> CaseResult {
    ctx.need_mech(mech)?;
    let h = ctx.open(false)?;
    let d = ctx.digest(h, mech, data)?;
    same_bytes("digest", &d, &unhex(want))
}

/// The cases of this chapter, in run order.
pub fn cases() -> Vec<Case> {
    let mut r = Reg::new(Chapter::Digest);
    r.add(
        "DIG-001",
        "5.10 C_Digest / CKM_SHA256",
        "SHA-256(\"abc\") in a R/O public session",
        "FIPS 180-4 value",
        |ctx| kat(ctx, CKM_SHA256, b"abc", SHA256_ABC),
    );
    r.add(
        "DIG-002",
        "5.10 C_Digest / CKM_SHA384",
        "SHA-384(\"abc\")",
        "FIPS 180-4 value",
        |ctx| kat(ctx, CKM_SHA384, b"abc", SHA384_ABC),
    );
    r.add(
        "DIG-003",
        "5.10 C_Digest / CKM_SHA512",
        "SHA-512(\"abc\")",
        "FIPS 180-4 value",
        |ctx| kat(ctx, CKM_SHA512, b"abc", SHA512_ABC),
    );
    r.add(
        "DIG-004",
        "5.10 C_Digest / CKM_SHA_1",
        "SHA-1(\"abc\")",
        "FIPS 180-4 value",
        |ctx| kat(ctx, CKM_SHA_1, b"abc", SHA1_ABC),
    );
    r.add(
        "DIG-005",
        "5.10 C_Digest / CKM_SHA224",
        "SHA-224(\"abc\")",
        "FIPS 180-4 value",
        |ctx| kat(ctx, CKM_SHA224, b"abc", SHA224_ABC),
    );
    r.add(
        "DIG-006",
        "5.10 C_Digest / CKM_SHA256",
        "SHA-256 of the empty message",
        "e3b0c442...",
        |ctx| kat(ctx, CKM_SHA256, b"", SHA256_EMPTY),
    );
    r.add(
        "DIG-007",
        "5.10 C_DigestUpdate / C_DigestFinal",
        "SHA-256 of \"a\" + \"bc\" in two parts",
        "SHA-256(\"abc\")",
        |ctx| {
            ctx.need_mech(CKM_SHA256)?;
            let h = ctx.open(false)?;
            setup("C_DigestInit", digest_init_rv(ctx, h, CKM_SHA256))?;
            rv("C_DigestUpdate(\"a\")", digest_update(ctx, h, b"a"), CKR_OK)?;
            rv(
                "C_DigestUpdate(\"bc\")",
                digest_update(ctx, h, b"bc"),
                CKR_OK,
            )?;
            let d = ctx.output("C_DigestFinal", |m, o, l| p11!(m, C_DigestFinal(h, o, l)))?;
            same_bytes("digest", &d, &unhex(SHA256_ABC))
        },
    );
    r.add(
        "DIG-008",
        "5.10 C_DigestUpdate",
        "1 MiB in 16 parts, SHA-512",
        "the digest aws-lc computes",
        |ctx| {
            ctx.need_mech(CKM_SHA512)?;
            let h = ctx.open(false)?;
            let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i ^ (i >> 8)) as u8).collect();
            setup("C_DigestInit", digest_init_rv(ctx, h, CKM_SHA512))?;
            for part in data.chunks(1 << 16) {
                rv("C_DigestUpdate", digest_update(ctx, h, part), CKR_OK)?;
            }
            let d = ctx.output("C_DigestFinal", |m, o, l| p11!(m, C_DigestFinal(h, o, l)))?;
            same_bytes("digest", &d, &sha(CKM_SHA512, &data))
        },
    );
    r.add(
        "DIG-009",
        "5.2 output convention / 5.10 C_Digest",
        "length query, short buffer keep the operation; then the digest",
        "CKR_OK (32), CKR_BUFFER_TOO_SMALL (32), CKR_OK",
        |ctx| {
            ctx.need_mech(CKM_SHA256)?;
            let h = ctx.open(false)?;
            setup("C_DigestInit", digest_init_rv(ctx, h, CKM_SHA256))?;
            let mut d = *b"abc";
            let mut len: CK_ULONG = 0;
            rv(
                "C_Digest(NULL)",
                p11!(
                    ctx.m,
                    C_Digest(h, d.as_mut_ptr(), 3, std::ptr::null_mut(), &mut len)
                ),
                CKR_OK,
            )?;
            ensure(len == 32, || format!("length {len}"))?;
            let mut out = [0u8; 32];
            let mut small: CK_ULONG = 31;
            rv(
                "C_Digest(31-byte buffer)",
                p11!(
                    ctx.m,
                    C_Digest(h, d.as_mut_ptr(), 3, out.as_mut_ptr(), &mut small)
                ),
                CKR_BUFFER_TOO_SMALL,
            )?;
            ensure(small == 32, || {
                format!("length after CKR_BUFFER_TOO_SMALL {small}")
            })?;
            let mut full: CK_ULONG = 32;
            rv(
                "C_Digest",
                p11!(
                    ctx.m,
                    C_Digest(h, d.as_mut_ptr(), 3, out.as_mut_ptr(), &mut full)
                ),
                CKR_OK,
            )?;
            same_bytes("digest", &out, &unhex(SHA256_ABC))
        },
    );
    r.add(
        "DIG-010",
        "5.10 C_Digest*",
        "C_Digest, C_DigestUpdate and C_DigestFinal without C_DigestInit",
        "CKR_OPERATION_NOT_INITIALIZED",
        |ctx| {
            let h = ctx.open(false)?;
            let mut d = *b"abc";
            let mut out = [0u8; 64];
            let mut len: CK_ULONG = 64;
            rv(
                "C_Digest",
                p11!(
                    ctx.m,
                    C_Digest(h, d.as_mut_ptr(), 3, out.as_mut_ptr(), &mut len)
                ),
                CKR_OPERATION_NOT_INITIALIZED,
            )?;
            rv(
                "C_DigestUpdate",
                digest_update(ctx, h, b"abc"),
                CKR_OPERATION_NOT_INITIALIZED,
            )?;
            len = 64;
            rv(
                "C_DigestFinal",
                p11!(ctx.m, C_DigestFinal(h, out.as_mut_ptr(), &mut len)),
                CKR_OPERATION_NOT_INITIALIZED,
            )
        },
    );
    r.add(
        "DIG-011",
        "5.10 C_DigestInit",
        "C_DigestInit while a digest is active",
        "CKR_OPERATION_ACTIVE",
        |ctx| {
            ctx.need_mech(CKM_SHA256)?;
            let h = ctx.open(false)?;
            setup("C_DigestInit", digest_init_rv(ctx, h, CKM_SHA256))?;
            rv(
                "second C_DigestInit",
                digest_init_rv(ctx, h, CKM_SHA256),
                CKR_OPERATION_ACTIVE,
            )
        },
    );
    r.add(
        "DIG-012",
        "5.10 C_DigestInit",
        "NULL pMechanism",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let h = ctx.open(false)?;
            rv(
                "C_DigestInit(NULL)",
                p11!(ctx.m, C_DigestInit(h, std::ptr::null_mut())),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "DIG-013",
        "5.10 C_DigestInit",
        "a mechanism that is not a digest (CKM_AES_KEY_GEN)",
        "CKR_MECHANISM_INVALID",
        |ctx| {
            let h = ctx.open(false)?;
            rv(
                "C_DigestInit(CKM_AES_KEY_GEN)",
                digest_init_rv(ctx, h, CKM_AES_KEY_GEN),
                CKR_MECHANISM_INVALID,
            )
        },
    );
    r.add(
        "DIG-014",
        "5.10 C_DigestKey",
        "digesting a secret key's value",
        "SHA-256 of the key bytes",
        |ctx| {
            ctx.need_mech(CKM_SHA256)?;
            let h = ctx.user_session()?;
            let value: Vec<u8> = (100..132).collect();
            let k = aes_key(ctx, h, &value)?;
            setup("C_DigestInit", digest_init_rv(ctx, h, CKM_SHA256))?;
            let got = p11!(ctx.m, C_DigestKey(h, k));
            optional("C_DigestKey", got)?;
            rv("C_DigestKey", got, CKR_OK)?;
            let d = ctx.output("C_DigestFinal", |m, o, l| p11!(m, C_DigestFinal(h, o, l)))?;
            same_bytes("digest", &d, &sha(CKM_SHA256, &value))
        },
    );
    r.add(
        "DIG-015",
        "5.10 C_DigestKey",
        "CK_INVALID_HANDLE (0) as the key",
        "CKR_KEY_HANDLE_INVALID",
        |ctx| {
            ctx.need_mech(CKM_SHA256)?;
            let h = ctx.user_session()?;
            setup("C_DigestInit", digest_init_rv(ctx, h, CKM_SHA256))?;
            let got = p11!(ctx.m, C_DigestKey(h, CK_INVALID_HANDLE));
            optional("C_DigestKey", got)?;
            rv("C_DigestKey(0)", got, CKR_KEY_HANDLE_INVALID)
        },
    );
    r.add(
        "DIG-016",
        "5.10 C_Digest",
        "a successful C_Digest ends the operation",
        "CKR_OPERATION_NOT_INITIALIZED on a second C_Digest",
        |ctx| {
            ctx.need_mech(CKM_SHA256)?;
            let h = ctx.open(false)?;
            ctx.digest(h, CKM_SHA256, b"once")?;
            let mut d = *b"abc";
            let mut len: CK_ULONG = 0;
            rv(
                "second C_Digest",
                p11!(
                    ctx.m,
                    C_Digest(h, d.as_mut_ptr(), 3, std::ptr::null_mut(), &mut len)
                ),
                CKR_OPERATION_NOT_INITIALIZED,
            )
        },
    );
    r.add(
        "DIG-017",
        "5.10 C_Digest",
        "NULL pulDigestLen",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            ctx.need_mech(CKM_SHA256)?;
            let h = ctx.open(false)?;
            setup("C_DigestInit", digest_init_rv(ctx, h, CKM_SHA256))?;
            let mut d = *b"abc";
            let mut out = [0u8; 32];
            rv(
                "C_Digest(.., NULL)",
                p11!(
                    ctx.m,
                    C_Digest(h, d.as_mut_ptr(), 3, out.as_mut_ptr(), std::ptr::null_mut())
                ),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "DIG-018",
        "5.2 output convention / 5.10 C_DigestFinal",
        "C_DigestFinal with a short buffer keeps the operation",
        "CKR_BUFFER_TOO_SMALL (48), then CKR_OK and SHA-384(\"abc\")",
        |ctx| {
            ctx.need_mech(CKM_SHA384)?;
            let h = ctx.open(false)?;
            setup("C_DigestInit", digest_init_rv(ctx, h, CKM_SHA384))?;
            rv("C_DigestUpdate", digest_update(ctx, h, b"abc"), CKR_OK)?;
            let mut out = [0u8; 48];
            let mut small: CK_ULONG = 20;
            rv(
                "C_DigestFinal(20-byte buffer)",
                p11!(ctx.m, C_DigestFinal(h, out.as_mut_ptr(), &mut small)),
                CKR_BUFFER_TOO_SMALL,
            )?;
            ensure(small == 48, || {
                format!("length after CKR_BUFFER_TOO_SMALL {small}")
            })?;
            let mut full: CK_ULONG = 48;
            rv(
                "C_DigestFinal",
                p11!(ctx.m, C_DigestFinal(h, out.as_mut_ptr(), &mut full)),
                CKR_OK,
            )?;
            same_bytes("digest", &out, &unhex(SHA384_ABC))
        },
    );
    r.add(
        "DIG-019",
        "5.10 C_DigestUpdate",
        "NULL pPart with a non-zero length",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            ctx.need_mech(CKM_SHA256)?;
            let h = ctx.open(false)?;
            setup("C_DigestInit", digest_init_rv(ctx, h, CKM_SHA256))?;
            rv(
                "C_DigestUpdate(NULL, 16)",
                p11!(ctx.m, C_DigestUpdate(h, std::ptr::null_mut(), 16)),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "DIG-020",
        "5.2 / 5.10 C_DigestUpdate",
        "CKR_ARGUMENTS_BAD (NULL pPart) ends the operation, as every error but \
         CKR_BUFFER_TOO_SMALL does",
        "CKR_ARGUMENTS_BAD; CKR_OPERATION_NOT_INITIALIZED on C_DigestFinal; C_DigestInit CKR_OK",
        |ctx| {
            ctx.need_mech(CKM_SHA256)?;
            let h = ctx.open(false)?;
            setup("C_DigestInit", digest_init_rv(ctx, h, CKM_SHA256))?;
            rv(
                "C_DigestUpdate(NULL, 16)",
                p11!(ctx.m, C_DigestUpdate(h, std::ptr::null_mut(), 16)),
                CKR_ARGUMENTS_BAD,
            )?;
            let mut out = [0u8; 32];
            let mut len: CK_ULONG = 32;
            rv(
                "C_DigestFinal after it",
                p11!(ctx.m, C_DigestFinal(h, out.as_mut_ptr(), &mut len)),
                CKR_OPERATION_NOT_INITIALIZED,
            )?;
            rv(
                "C_DigestInit again",
                digest_init_rv(ctx, h, CKM_SHA256),
                CKR_OK,
            )
        },
    );
    r.add(
        "DIG-021",
        "5.1 / 5.10 C_DigestInit",
        "a closed session with an unknown mechanism: the session is checked first",
        "CKR_SESSION_HANDLE_INVALID",
        |ctx| {
            let h = ctx.open(false)?;
            setup("C_CloseSession", ctx.close(h))?;
            rv(
                "C_DigestInit(closed, CKM_VENDOR_DEFINED | 0x1234)",
                digest_init_rv(ctx, h, CKM_VENDOR_DEFINED | 0x1234),
                CKR_SESSION_HANDLE_INVALID,
            )
        },
    );
    r.add(
        "DIG-022",
        "5.1 / 5.10 C_DigestInit / CKM_SHA256",
        "CKM_SHA256 (which takes no parameter) with a 16-byte parameter",
        "CKR_MECHANISM_PARAM_INVALID",
        |ctx| {
            ctx.need_mech(CKM_SHA256)?;
            let h = ctx.open(false)?;
            let mut m = Mech::bytes(CKM_SHA256, &[0x5a; 16]).raw();
            rv(
                "C_DigestInit(CKM_SHA256, 16 bytes)",
                p11!(ctx.m, C_DigestInit(h, &mut m)),
                CKR_MECHANISM_PARAM_INVALID,
            )
        },
    );
    r.done()
}
