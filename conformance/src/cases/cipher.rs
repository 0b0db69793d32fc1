//! Encryption and decryption (§5.8-5.9): AES-GCM and AES-CBC-PAD known answers, RSA OAEP and
//! PKCS#1 v1.5 with an independent decryption (aws-lc), and the operation rules.

use pkcs11_sys::*;

use super::vectors::*;
use super::{aes_key, rsa_pair, rsa_pair_with, secret_key, Reg};
use crate::case::*;
use crate::ctx::{Ctx, Mech};
use crate::p11;

fn encrypt_init_rv(
    ctx: &mut Ctx,
    h: CK_SESSION_HANDLE,
    mech: &mut Mech,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    let mut m = mech.raw();
    p11!(ctx.m, C_EncryptInit(h, &mut m, key))
}

fn decrypt_init_rv(
    ctx: &mut Ctx,
    h: CK_SESSION_HANDLE,
    mech: &mut Mech,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    let mut m = mech.raw();
    p11!(ctx.m, C_DecryptInit(h, &mut m, key))
}

/// C_Decrypt into a buffer of `cap` bytes; returns the code and what was written.
fn decrypt_rv(ctx: &mut Ctx, h: CK_SESSION_HANDLE, data: &[u8], cap: usize) -> (CK_RV, Vec<u8>) {
    let mut d = data.to_vec();
    let mut out = vec![0u8; cap.max(1)];
    let mut len = cap as CK_ULONG;
    let got = p11!(
        ctx.m,
        C_Decrypt(
            h,
            d.as_mut_ptr(),
            d.len() as CK_ULONG,
            out.as_mut_ptr(),
            &mut len
        )
    );
    out.truncate((len as usize).min(cap));
    (got, out)
}

fn gcm_key(ctx: &mut Ctx, h: CK_SESSION_HANDLE) -> Result<CK_OBJECT_HANDLE, Failure> {
    ctx.need_mech(CKM_AES_GCM)?;
    aes_key(ctx, h, &unhex(GCM_KEY))
}

fn cbc(ctx: &mut Ctx) -> Result<(CK_SESSION_HANDLE, CK_OBJECT_HANDLE), Failure> {
    ctx.need_mech(CKM_AES_CBC_PAD)?;
    let h = ctx.user_session()?;
    let k = aes_key(ctx, h, &unhex(CBC_KEY))?;
    Ok((h, k))
}

fn cbc_mech() -> Mech {
    Mech::bytes(CKM_AES_CBC_PAD, &unhex(CBC_IV))
}

/// The cases of this chapter, in run order.
pub fn cases() -> Vec<Case> {
    let mut r = Reg::new(Chapter::EncryptDecrypt);
    r.add(
        "ENC-001",
        "5.8 C_Encrypt / CKM_AES_GCM",
        "GCM specification test case 3 (AES-128, 96-bit IV, 128-bit tag)",
        "the specification's ciphertext || tag",
        |ctx| {
            let h = ctx.user_session()?;
            let k = gcm_key(ctx, h)?;
            let ct = ctx.encrypt(
                h,
                &mut Mech::gcm(&unhex(GCM_IV), &[], 128),
                k,
                &unhex(GCM_PT),
            )?;
            same_bytes("ciphertext", &ct, &unhex(GCM_3_CT))
        },
    );
    r.add(
        "ENC-002",
        "5.8-5.9 / CKM_AES_GCM",
        "GCM test case 4 (with AAD): encrypt, then decrypt back",
        "the specification's bytes; the plaintext back",
        |ctx| {
            let h = ctx.user_session()?;
            let k = gcm_key(ctx, h)?;
            let pt = unhex(GCM_PT)[..60].to_vec();
            let aad = unhex(GCM_4_AAD);
            let ct = ctx.encrypt(h, &mut Mech::gcm(&unhex(GCM_IV), &aad, 128), k, &pt)?;
            same_bytes("ciphertext", &ct, &unhex(GCM_4_CT))?;
            let back = ctx.decrypt(h, &mut Mech::gcm(&unhex(GCM_IV), &aad, 128), k, &ct)?;
            same_bytes("plaintext", &back, &pt)
        },
    );
    r.add(
        "ENC-003",
        "5.9 C_Decrypt / CKM_AES_GCM",
        "a ciphertext whose tag does not verify",
        "CKR_ENCRYPTED_DATA_INVALID or CKR_AEAD_DECRYPT_FAILED",
        |ctx| {
            let h = ctx.user_session()?;
            let k = gcm_key(ctx, h)?;
            let mut ct = unhex(GCM_3_CT);
            let last = ct.len() - 1;
            ct[last] ^= 1;
            setup(
                "C_DecryptInit",
                decrypt_init_rv(ctx, h, &mut Mech::gcm(&unhex(GCM_IV), &[], 128), k),
            )?;
            let (got, out) = decrypt_rv(ctx, h, &ct, 128);
            rv_in(
                "C_Decrypt(bad tag)",
                got,
                &[CKR_ENCRYPTED_DATA_INVALID, CKR_AEAD_DECRYPT_FAILED],
            )?;
            ensure(!out.starts_with(&unhex(GCM_PT)[..16]), || {
                "plaintext released despite a bad tag".into()
            })
        },
    );
    r.add(
        "ENC-004",
        "5.2 output convention / 5.8 C_Encrypt",
        "GCM: length query, short buffer, then the exact output",
        "CKR_OK (80), CKR_BUFFER_TOO_SMALL (80), CKR_OK and the known bytes",
        |ctx| {
            let h = ctx.user_session()?;
            let k = gcm_key(ctx, h)?;
            setup(
                "C_EncryptInit",
                encrypt_init_rv(ctx, h, &mut Mech::gcm(&unhex(GCM_IV), &[], 128), k),
            )?;
            let mut pt = unhex(GCM_PT);
            let mut len: CK_ULONG = 0;
            rv(
                "C_Encrypt(NULL)",
                p11!(
                    ctx.m,
                    C_Encrypt(h, pt.as_mut_ptr(), 64, std::ptr::null_mut(), &mut len)
                ),
                CKR_OK,
            )?;
            ensure(len == 80, || format!("length {len}, expected 80"))?;
            let mut out = [0u8; 80];
            let mut small: CK_ULONG = 10;
            rv(
                "C_Encrypt(10-byte buffer)",
                p11!(
                    ctx.m,
                    C_Encrypt(h, pt.as_mut_ptr(), 64, out.as_mut_ptr(), &mut small)
                ),
                CKR_BUFFER_TOO_SMALL,
            )?;
            ensure(small == 80, || {
                format!("length after CKR_BUFFER_TOO_SMALL {small}")
            })?;
            let mut full: CK_ULONG = 80;
            rv(
                "C_Encrypt",
                p11!(
                    ctx.m,
                    C_Encrypt(h, pt.as_mut_ptr(), 64, out.as_mut_ptr(), &mut full)
                ),
                CKR_OK,
            )?;
            same_bytes(
                "ciphertext",
                &out[..(full as usize).min(80)],
                &unhex(GCM_3_CT),
            )
        },
    );
    r.add(
        "ENC-005",
        "5.8 C_EncryptInit / CK_GCM_PARAMS",
        "a tag length of 200 bits",
        "CKR_MECHANISM_PARAM_INVALID",
        |ctx| {
            let h = ctx.user_session()?;
            let k = gcm_key(ctx, h)?;
            rv(
                "C_EncryptInit(ulTagBits 200)",
                encrypt_init_rv(ctx, h, &mut Mech::gcm(&unhex(GCM_IV), &[], 200), k),
                CKR_MECHANISM_PARAM_INVALID,
            )
        },
    );
    r.add(
        "ENC-006",
        "5.8-5.9 / CKM_AES_CBC_PAD",
        "NIST SP 800-38A F.2.5 plus the padding block; decrypt back",
        "the known 80 bytes; the plaintext back",
        |ctx| {
            let (h, k) = cbc(ctx)?;
            let ct = ctx.encrypt(h, &mut cbc_mech(), k, &unhex(CBC_PT))?;
            same_bytes("ciphertext", &ct, &unhex(CBC_PAD_CT))?;
            let back = ctx.decrypt(h, &mut cbc_mech(), k, &ct)?;
            same_bytes("plaintext", &back, &unhex(CBC_PT))
        },
    );
    r.add(
        "ENC-007",
        "5.8 C_EncryptUpdate / C_EncryptFinal",
        "multi-part CBC-PAD (parts of 20, 20, 24 bytes) equals single-part; multi-part decrypt",
        "the same 80 bytes; the plaintext back",
        |ctx| {
            let (h, k) = cbc(ctx)?;
            setup("C_EncryptInit", encrypt_init_rv(ctx, h, &mut cbc_mech(), k))?;
            let pt = unhex(CBC_PT);
            let mut ct = Vec::new();
            for part in [&pt[..20], &pt[20..40], &pt[40..]] {
                let mut p = part.to_vec();
                let out = ctx.output("C_EncryptUpdate", |m, o, l| {
                    p11!(
                        m,
                        C_EncryptUpdate(h, p.as_mut_ptr(), p.len() as CK_ULONG, o, l)
                    )
                })?;
                ct.extend(out);
            }
            ct.extend(ctx.output("C_EncryptFinal", |m, o, l| p11!(m, C_EncryptFinal(h, o, l)))?);
            same_bytes("ciphertext", &ct, &unhex(CBC_PAD_CT))?;
            setup("C_DecryptInit", decrypt_init_rv(ctx, h, &mut cbc_mech(), k))?;
            let mut back = Vec::new();
            for part in ct.chunks(24) {
                let mut p = part.to_vec();
                back.extend(ctx.output("C_DecryptUpdate", |m, o, l| {
                    p11!(
                        m,
                        C_DecryptUpdate(h, p.as_mut_ptr(), p.len() as CK_ULONG, o, l)
                    )
                })?);
            }
            back.extend(ctx.output("C_DecryptFinal", |m, o, l| p11!(m, C_DecryptFinal(h, o, l)))?);
            same_bytes("plaintext", &back, &pt)
        },
    );
    r.add(
        "ENC-008",
        "5.9 C_Decrypt / CKM_AES_CBC_PAD",
        "a ciphertext whose padding is invalid",
        "CKR_ENCRYPTED_DATA_INVALID",
        |ctx| {
            let (h, k) = cbc(ctx)?;
            // Flipping bit 4 of the last byte of the next-to-last block turns the 0x10 padding
            // into 0x00, which no padding is.
            let mut ct = unhex(CBC_PAD_CT);
            ct[63] ^= 0x10;
            setup("C_DecryptInit", decrypt_init_rv(ctx, h, &mut cbc_mech(), k))?;
            let (got, _) = decrypt_rv(ctx, h, &ct, 96);
            rv("C_Decrypt(bad padding)", got, CKR_ENCRYPTED_DATA_INVALID)
        },
    );
    r.add(
        "ENC-009",
        "5.9 C_Decrypt / CKM_AES_CBC_PAD",
        "a ciphertext of 33 bytes",
        "CKR_ENCRYPTED_DATA_LEN_RANGE",
        |ctx| {
            let (h, k) = cbc(ctx)?;
            setup("C_DecryptInit", decrypt_init_rv(ctx, h, &mut cbc_mech(), k))?;
            let (got, _) = decrypt_rv(ctx, h, &[0x42u8; 33], 64);
            rv("C_Decrypt(33 bytes)", got, CKR_ENCRYPTED_DATA_LEN_RANGE)
        },
    );
    r.add(
        "ENC-010",
        "5.8 C_EncryptInit / CKM_AES_CBC_PAD",
        "an 8-byte IV",
        "CKR_MECHANISM_PARAM_INVALID",
        |ctx| {
            let (h, k) = cbc(ctx)?;
            rv(
                "C_EncryptInit(8-byte IV)",
                encrypt_init_rv(ctx, h, &mut Mech::bytes(CKM_AES_CBC_PAD, &[0u8; 8]), k),
                CKR_MECHANISM_PARAM_INVALID,
            )
        },
    );
    r.add(
        "ENC-011",
        "5.8 C_EncryptInit",
        "C_EncryptInit while an encryption is active",
        "CKR_OPERATION_ACTIVE",
        |ctx| {
            let (h, k) = cbc(ctx)?;
            setup("C_EncryptInit", encrypt_init_rv(ctx, h, &mut cbc_mech(), k))?;
            rv(
                "second C_EncryptInit",
                encrypt_init_rv(ctx, h, &mut cbc_mech(), k),
                CKR_OPERATION_ACTIVE,
            )
        },
    );
    r.add(
        "ENC-012",
        "5.8 C_Encrypt*",
        "C_Encrypt, C_EncryptUpdate and C_EncryptFinal without C_EncryptInit",
        "CKR_OPERATION_NOT_INITIALIZED",
        |ctx| {
            let h = ctx.open(false)?;
            let mut d = [0u8; 16];
            let mut out = [0u8; 64];
            let mut len: CK_ULONG = 64;
            rv(
                "C_Encrypt",
                p11!(
                    ctx.m,
                    C_Encrypt(h, d.as_mut_ptr(), 16, out.as_mut_ptr(), &mut len)
                ),
                CKR_OPERATION_NOT_INITIALIZED,
            )?;
            len = 64;
            rv(
                "C_EncryptUpdate",
                p11!(
                    ctx.m,
                    C_EncryptUpdate(h, d.as_mut_ptr(), 16, out.as_mut_ptr(), &mut len)
                ),
                CKR_OPERATION_NOT_INITIALIZED,
            )?;
            len = 64;
            rv(
                "C_EncryptFinal",
                p11!(ctx.m, C_EncryptFinal(h, out.as_mut_ptr(), &mut len)),
                CKR_OPERATION_NOT_INITIALIZED,
            )
        },
    );
    r.add(
        "ENC-013",
        "5.9 C_Decrypt*",
        "C_Decrypt, C_DecryptUpdate and C_DecryptFinal without C_DecryptInit",
        "CKR_OPERATION_NOT_INITIALIZED",
        |ctx| {
            let h = ctx.open(false)?;
            let mut d = [0u8; 16];
            let mut out = [0u8; 64];
            let mut len: CK_ULONG = 64;
            rv(
                "C_Decrypt",
                p11!(
                    ctx.m,
                    C_Decrypt(h, d.as_mut_ptr(), 16, out.as_mut_ptr(), &mut len)
                ),
                CKR_OPERATION_NOT_INITIALIZED,
            )?;
            len = 64;
            rv(
                "C_DecryptUpdate",
                p11!(
                    ctx.m,
                    C_DecryptUpdate(h, d.as_mut_ptr(), 16, out.as_mut_ptr(), &mut len)
                ),
                CKR_OPERATION_NOT_INITIALIZED,
            )?;
            len = 64;
            rv(
                "C_DecryptFinal",
                p11!(ctx.m, C_DecryptFinal(h, out.as_mut_ptr(), &mut len)),
                CKR_OPERATION_NOT_INITIALIZED,
            )
        },
    );
    r.add(
        "ENC-014",
        "5.8 C_EncryptInit / 4.9 CKA_ENCRYPT",
        "a key with CKA_ENCRYPT=FALSE",
        "CKR_KEY_FUNCTION_NOT_PERMITTED",
        |ctx| {
            ctx.need_mech(CKM_AES_CBC_PAD)?;
            let h = ctx.user_session()?;
            let k = secret_key(ctx, h, CKK_AES, &unhex(CBC_KEY), &[(CKA_ENCRYPT, false)])?;
            rv(
                "C_EncryptInit(CKA_ENCRYPT=FALSE)",
                encrypt_init_rv(ctx, h, &mut cbc_mech(), k),
                CKR_KEY_FUNCTION_NOT_PERMITTED,
            )
        },
    );
    r.add(
        "ENC-015",
        "5.8 C_EncryptInit",
        "an AES mechanism with an RSA public key (CKA_ENCRYPT=TRUE)",
        "CKR_KEY_TYPE_INCONSISTENT",
        |ctx| {
            ctx.need_mech(CKM_AES_CBC_PAD)?;
            let h = ctx.user_session()?;
            let (p, _) = rsa_pair(ctx, h)?;
            rv(
                "C_EncryptInit(CBC-PAD, RSA key)",
                encrypt_init_rv(ctx, h, &mut cbc_mech(), p),
                CKR_KEY_TYPE_INCONSISTENT,
            )
        },
    );
    r.add(
        "ENC-016",
        "5.8 C_EncryptInit",
        "CK_INVALID_HANDLE (0) as the key",
        "CKR_KEY_HANDLE_INVALID",
        |ctx| {
            ctx.need_mech(CKM_AES_CBC_PAD)?;
            let h = ctx.user_session()?;
            rv(
                "C_EncryptInit(key 0)",
                encrypt_init_rv(ctx, h, &mut cbc_mech(), CK_INVALID_HANDLE),
                CKR_KEY_HANDLE_INVALID,
            )
        },
    );
    r.add("ENC-017", "5.8-5.9 / CKM_RSA_PKCS_OAEP", "OAEP (SHA-256, MGF1-SHA-256): aws-lc decrypts what the module encrypts; the module decrypts it too",
        "the plaintext, both ways", |ctx| {
            ctx.need_mech(CKM_RSA_PKCS_OAEP)?;
            let h = ctx.user_session()?;
            let (p, q) = rsa_pair(ctx, h)?;
            let msg = b"conformance: OAEP plaintext";
            let ct = ctx.encrypt(h, &mut Mech::oaep(CKM_SHA256, CKG_MGF1_SHA256), p, msg)?;
            ensure(ct.len() == 256, || format!("ciphertext of {} bytes", ct.len()))?;
            use aws_lc_rs::rsa::{OaepPrivateDecryptingKey, PrivateDecryptingKey, OAEP_SHA256_MGF1SHA256};
            let key = PrivateDecryptingKey::from_pkcs8(&unhex(RSA_PKCS8))
                .ok()
                .and_then(|k| OaepPrivateDecryptingKey::new(k).ok())
                .ok_or_else(|| Failure::Fail("aws-lc cannot read the test key".into()))?;
            let mut out = vec![0u8; 256];
            let pt = key.decrypt(&OAEP_SHA256_MGF1SHA256, &ct, &mut out, None)
                .map_err(|_| Failure::Fail("aws-lc cannot decrypt the module's OAEP ciphertext".into()))?;
            same_bytes("aws-lc's plaintext", pt, msg)?;
            let back = ctx.decrypt(h, &mut Mech::oaep(CKM_SHA256, CKG_MGF1_SHA256), q, &ct)?;
            same_bytes("the module's plaintext", &back, msg)
        });
    r.add(
        "ENC-018",
        "5.9 C_Decrypt / CKM_RSA_PKCS_OAEP (SHA-1)",
        "256 bytes that are no OAEP ciphertext",
        "CKR_ENCRYPTED_DATA_INVALID",
        |ctx| {
            ctx.need_mech(CKM_RSA_PKCS_OAEP)?;
            let h = ctx.user_session()?;
            let (_, q) = rsa_pair(ctx, h)?;
            setup(
                "C_DecryptInit",
                decrypt_init_rv(ctx, h, &mut Mech::oaep(CKM_SHA_1, CKG_MGF1_SHA1), q),
            )?;
            let mut junk = vec![0x01u8; 256];
            junk[255] = 0x33;
            let (got, _) = decrypt_rv(ctx, h, &junk, 256);
            rv("C_Decrypt(junk)", got, CKR_ENCRYPTED_DATA_INVALID)
        },
    );
    r.add(
        "ENC-019",
        "5.8 C_Encrypt / CKM_RSA_PKCS",
        "PKCS#1 v1.5 input of k - 10 bytes",
        "CKR_DATA_LEN_RANGE",
        |ctx| {
            ctx.need_mech(CKM_RSA_PKCS)?;
            let h = ctx.user_session()?;
            let (p, _) = rsa_pair(ctx, h)?;
            setup(
                "C_EncryptInit",
                encrypt_init_rv(ctx, h, &mut Mech::new(CKM_RSA_PKCS), p),
            )?;
            let mut d = vec![0x22u8; 246];
            let mut out = vec![0u8; 256];
            let mut len: CK_ULONG = 256;
            rv(
                "C_Encrypt(246 bytes)",
                p11!(
                    ctx.m,
                    C_Encrypt(h, d.as_mut_ptr(), 246, out.as_mut_ptr(), &mut len)
                ),
                CKR_DATA_LEN_RANGE,
            )
        },
    );
    r.add(
        "ENC-020",
        "5.9 C_Decrypt / CKM_RSA_PKCS_OAEP (SHA-1)",
        "a ciphertext of 255 bytes for a 2048-bit key",
        "CKR_ENCRYPTED_DATA_LEN_RANGE",
        |ctx| {
            ctx.need_mech(CKM_RSA_PKCS_OAEP)?;
            let h = ctx.user_session()?;
            let (_, q) = rsa_pair(ctx, h)?;
            setup(
                "C_DecryptInit",
                decrypt_init_rv(ctx, h, &mut Mech::oaep(CKM_SHA_1, CKG_MGF1_SHA1), q),
            )?;
            let (got, _) = decrypt_rv(ctx, h, &[0x01u8; 255], 256);
            rv("C_Decrypt(255 bytes)", got, CKR_ENCRYPTED_DATA_LEN_RANGE)
        },
    );
    r.add(
        "ENC-021",
        "5.8 C_EncryptUpdate",
        "NULL pulEncryptedPartLen",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let (h, k) = cbc(ctx)?;
            setup("C_EncryptInit", encrypt_init_rv(ctx, h, &mut cbc_mech(), k))?;
            let mut d = [0u8; 16];
            let mut out = [0u8; 32];
            rv(
                "C_EncryptUpdate(.., NULL)",
                p11!(
                    ctx.m,
                    C_EncryptUpdate(
                        h,
                        d.as_mut_ptr(),
                        16,
                        out.as_mut_ptr(),
                        std::ptr::null_mut()
                    )
                ),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "ENC-022",
        "5.9 C_Decrypt",
        "a failed C_Decrypt ends the operation",
        "CKR_OPERATION_NOT_INITIALIZED on the next C_Decrypt",
        |ctx| {
            let (h, k) = cbc(ctx)?;
            setup("C_DecryptInit", decrypt_init_rv(ctx, h, &mut cbc_mech(), k))?;
            let (first, _) = decrypt_rv(ctx, h, &[0x42u8; 33], 64);
            ensure(first != CKR_OK && first != CKR_BUFFER_TOO_SMALL, || {
                format!("C_Decrypt(33 bytes) returned {}", crate::names::ckr(first))
            })?;
            let (got, _) = decrypt_rv(ctx, h, &unhex(CBC_PAD_CT), 96);
            rv(
                "C_Decrypt after a failure",
                got,
                CKR_OPERATION_NOT_INITIALIZED,
            )
        },
    );
    r.add(
        "ENC-023",
        "5.9 C_DecryptInit / 4.9 CKA_DECRYPT",
        "a key with CKA_DECRYPT=FALSE",
        "CKR_KEY_FUNCTION_NOT_PERMITTED",
        |ctx| {
            ctx.need_mech(CKM_AES_CBC_PAD)?;
            let h = ctx.user_session()?;
            let k = secret_key(ctx, h, CKK_AES, &unhex(CBC_KEY), &[(CKA_DECRYPT, false)])?;
            rv(
                "C_DecryptInit(CKA_DECRYPT=FALSE)",
                decrypt_init_rv(ctx, h, &mut cbc_mech(), k),
                CKR_KEY_FUNCTION_NOT_PERMITTED,
            )
        },
    );
    r.add(
        "ENC-024",
        "5.8-5.9 / CKM_RSA_PKCS",
        "PKCS#1 v1.5 encryption of 245 bytes (k - 11) decrypts back",
        "the plaintext back",
        |ctx| {
            ctx.need_mech(CKM_RSA_PKCS)?;
            let h = ctx.user_session()?;
            let (p, q) = rsa_pair(ctx, h)?;
            let msg: Vec<u8> = (0..245u32).map(|i| (i * 13) as u8).collect();
            let ct = ctx.encrypt(h, &mut Mech::new(CKM_RSA_PKCS), p, &msg)?;
            ensure(ct.len() == 256, || {
                format!("ciphertext of {} bytes", ct.len())
            })?;
            let back = ctx.decrypt(h, &mut Mech::new(CKM_RSA_PKCS), q, &ct)?;
            same_bytes("plaintext", &back, &msg)
        },
    );
    r.add(
        "ENC-025",
        "5.8 C_EncryptInit / CK_RSA_PKCS_OAEP_PARAMS",
        "an OAEP parameter of the wrong size",
        "CKR_MECHANISM_PARAM_INVALID",
        |ctx| {
            ctx.need_mech(CKM_RSA_PKCS_OAEP)?;
            let h = ctx.user_session()?;
            let (p, _) = rsa_pair(ctx, h)?;
            rv(
                "C_EncryptInit(3-byte OAEP params)",
                encrypt_init_rv(ctx, h, &mut Mech::bytes(CKM_RSA_PKCS_OAEP, &[1, 2, 3]), p),
                CKR_MECHANISM_PARAM_INVALID,
            )
        },
    );
    r.add(
        "ENC-026",
        "5.2 output convention / 5.8 C_Encrypt",
        "CBC-PAD: a short buffer keeps the operation; then the exact output",
        "CKR_BUFFER_TOO_SMALL (80), then the known 80 bytes",
        |ctx| {
            let (h, k) = cbc(ctx)?;
            setup("C_EncryptInit", encrypt_init_rv(ctx, h, &mut cbc_mech(), k))?;
            let mut pt = unhex(CBC_PT);
            let mut out = [0u8; 80];
            let mut small: CK_ULONG = 64;
            rv(
                "C_Encrypt(64-byte buffer)",
                p11!(
                    ctx.m,
                    C_Encrypt(h, pt.as_mut_ptr(), 64, out.as_mut_ptr(), &mut small)
                ),
                CKR_BUFFER_TOO_SMALL,
            )?;
            ensure(small == 80, || {
                format!("length after CKR_BUFFER_TOO_SMALL {small}")
            })?;
            let mut full: CK_ULONG = 80;
            rv(
                "C_Encrypt",
                p11!(
                    ctx.m,
                    C_Encrypt(h, pt.as_mut_ptr(), 64, out.as_mut_ptr(), &mut full)
                ),
                CKR_OK,
            )?;
            same_bytes(
                "ciphertext",
                &out[..(full as usize).min(80)],
                &unhex(CBC_PAD_CT),
            )
        },
    );
    r.add(
        "ENC-027",
        "5.9 C_DecryptInit / CK_GCM_PARAMS",
        "NULL pParameter with a non-zero ulParameterLen",
        "CKR_MECHANISM_PARAM_INVALID or CKR_ARGUMENTS_BAD",
        |ctx| {
            let h = ctx.user_session()?;
            let k = gcm_key(ctx, h)?;
            let mut m = Mech::raw_param(
                CKM_AES_GCM,
                None,
                std::mem::size_of::<CK_GCM_PARAMS>() as CK_ULONG,
            );
            rv_in(
                "C_DecryptInit(NULL parameter)",
                decrypt_init_rv(ctx, h, &mut m, k),
                &[CKR_MECHANISM_PARAM_INVALID, CKR_ARGUMENTS_BAD],
            )
        },
    );
    r.add(
        "ENC-028",
        "4.9 CKA_ALWAYS_AUTHENTICATE / 5.9 C_Decrypt",
        "C_Decrypt with an always-authenticate key before CKU_CONTEXT_SPECIFIC login",
        "CKR_USER_NOT_LOGGED_IN",
        |ctx| {
            ctx.need_mech(CKM_RSA_PKCS)?;
            let h = ctx.user_session()?;
            let (p, q) = rsa_pair_with(ctx, h, &[(CKA_ALWAYS_AUTHENTICATE, true)])?;
            let ct = ctx.encrypt(h, &mut Mech::new(CKM_RSA_PKCS), p, b"always authenticate")?;
            setup(
                "C_DecryptInit",
                decrypt_init_rv(ctx, h, &mut Mech::new(CKM_RSA_PKCS), q),
            )?;
            let (got, _) = decrypt_rv(ctx, h, &ct, 256);
            rv("C_Decrypt", got, CKR_USER_NOT_LOGGED_IN)
        },
    );
    more(&mut r);
    r.done()
}

fn more(r: &mut Reg) {
    r.add(
        "ENC-029",
        "5.2 output convention / 5.9 C_Decrypt",
        "C_Decrypt with a short buffer keeps the operation",
        "CKR_BUFFER_TOO_SMALL, then the plaintext",
        |ctx| {
            let (h, k) = cbc(ctx)?;
            setup("C_DecryptInit", decrypt_init_rv(ctx, h, &mut cbc_mech(), k))?;
            let mut ct = unhex(CBC_PAD_CT);
            let mut out = [0u8; 80];
            let mut small: CK_ULONG = 10;
            rv(
                "C_Decrypt(10-byte buffer)",
                p11!(
                    ctx.m,
                    C_Decrypt(h, ct.as_mut_ptr(), 80, out.as_mut_ptr(), &mut small)
                ),
                CKR_BUFFER_TOO_SMALL,
            )?;
            ensure((64..=80).contains(&small), || {
                format!("length after CKR_BUFFER_TOO_SMALL {small}")
            })?;
            let mut full: CK_ULONG = 80;
            rv(
                "C_Decrypt",
                p11!(
                    ctx.m,
                    C_Decrypt(h, ct.as_mut_ptr(), 80, out.as_mut_ptr(), &mut full)
                ),
                CKR_OK,
            )?;
            same_bytes("plaintext", &out[..(full as usize).min(80)], &unhex(CBC_PT))
        },
    );
    r.add(
        "ENC-030",
        "5.2 output convention / 5.8 C_EncryptUpdate",
        "C_EncryptUpdate with a short buffer keeps the operation",
        "CKR_BUFFER_TOO_SMALL, then the first 32 bytes",
        |ctx| {
            let (h, k) = cbc(ctx)?;
            setup("C_EncryptInit", encrypt_init_rv(ctx, h, &mut cbc_mech(), k))?;
            let mut pt = unhex(CBC_PT);
            let mut out = [0u8; 48];
            let mut small: CK_ULONG = 8;
            rv(
                "C_EncryptUpdate(8-byte buffer)",
                p11!(
                    ctx.m,
                    C_EncryptUpdate(h, pt.as_mut_ptr(), 32, out.as_mut_ptr(), &mut small)
                ),
                CKR_BUFFER_TOO_SMALL,
            )?;
            ensure(small >= 32, || {
                format!("length after CKR_BUFFER_TOO_SMALL {small}")
            })?;
            let mut full: CK_ULONG = 48;
            rv(
                "C_EncryptUpdate",
                p11!(
                    ctx.m,
                    C_EncryptUpdate(h, pt.as_mut_ptr(), 32, out.as_mut_ptr(), &mut full)
                ),
                CKR_OK,
            )?;
            same_bytes(
                "ciphertext",
                &out[..(full as usize).min(48)],
                &unhex(CBC_PAD_CT)[..32],
            )
        },
    );
    r.add(
        "ENC-031",
        "5.2 output convention / 5.8 C_EncryptFinal",
        "C_EncryptFinal with a short buffer keeps the operation",
        "CKR_BUFFER_TOO_SMALL (16), then the padding block",
        |ctx| {
            let (h, k) = cbc(ctx)?;
            setup("C_EncryptInit", encrypt_init_rv(ctx, h, &mut cbc_mech(), k))?;
            let mut pt = unhex(CBC_PT);
            let head = ctx.output("C_EncryptUpdate", |m, o, l| {
                p11!(m, C_EncryptUpdate(h, pt.as_mut_ptr(), 64, o, l))
            })?;
            same_bytes("C_EncryptUpdate output", &head, &unhex(CBC_PAD_CT)[..64])?;
            let mut out = [0u8; 16];
            let mut small: CK_ULONG = 4;
            rv(
                "C_EncryptFinal(4-byte buffer)",
                p11!(ctx.m, C_EncryptFinal(h, out.as_mut_ptr(), &mut small)),
                CKR_BUFFER_TOO_SMALL,
            )?;
            ensure(small == 16, || {
                format!("length after CKR_BUFFER_TOO_SMALL {small}")
            })?;
            let mut full: CK_ULONG = 16;
            rv(
                "C_EncryptFinal",
                p11!(ctx.m, C_EncryptFinal(h, out.as_mut_ptr(), &mut full)),
                CKR_OK,
            )?;
            same_bytes(
                "last block",
                &out[..(full as usize).min(16)],
                &unhex(CBC_PAD_CT)[64..],
            )
        },
    );
    r.add(
        "ENC-032",
        "5.2 output convention / 5.9 C_DecryptFinal",
        "C_DecryptFinal with a short buffer keeps the operation",
        "CKR_BUFFER_TOO_SMALL, then the rest of the plaintext",
        |ctx| {
            let (h, k) = cbc(ctx)?;
            let pt: Vec<u8> = (1..=20).collect();
            let ct = ctx.encrypt(h, &mut cbc_mech(), k, &pt)?;
            setup("C_DecryptInit", decrypt_init_rv(ctx, h, &mut cbc_mech(), k))?;
            let mut c = ct.clone();
            let mut got = ctx.output("C_DecryptUpdate", |m, o, l| {
                p11!(
                    m,
                    C_DecryptUpdate(h, c.as_mut_ptr(), c.len() as CK_ULONG, o, l)
                )
            })?;
            let mut need: CK_ULONG = 0;
            setup(
                "C_DecryptFinal(length query)",
                p11!(ctx.m, C_DecryptFinal(h, std::ptr::null_mut(), &mut need)),
            )?;
            ensure(need as usize + got.len() >= pt.len() && need <= 32, || {
                format!(
                    "C_DecryptFinal length {need} after {} bytes from C_DecryptUpdate",
                    got.len()
                )
            })?;
            if need >= 2 {
                let mut out = [0u8; 32];
                let mut small: CK_ULONG = 1;
                rv(
                    "C_DecryptFinal(1-byte buffer)",
                    p11!(ctx.m, C_DecryptFinal(h, out.as_mut_ptr(), &mut small)),
                    CKR_BUFFER_TOO_SMALL,
                )?;
            }
            got.extend(ctx.output("C_DecryptFinal", |m, o, l| p11!(m, C_DecryptFinal(h, o, l)))?);
            same_bytes("plaintext", &got, &pt)
        },
    );
    r.add(
        "ENC-033",
        "5.8 C_Encrypt",
        "NULL pData with a non-zero length",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let (h, k) = cbc(ctx)?;
            setup("C_EncryptInit", encrypt_init_rv(ctx, h, &mut cbc_mech(), k))?;
            let mut out = [0u8; 32];
            let mut len: CK_ULONG = 32;
            rv(
                "C_Encrypt(NULL, 16)",
                p11!(
                    ctx.m,
                    C_Encrypt(h, std::ptr::null_mut(), 16, out.as_mut_ptr(), &mut len)
                ),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "ENC-034",
        "5.8-5.9 / CKM_AES_KEY_WRAP",
        "RFC 3394 §4.6 through C_Encrypt and C_Decrypt (when the token offers them)",
        "the RFC's bytes; the key data back",
        |ctx| {
            ctx.need_mech_flags(CKM_AES_KEY_WRAP, CKF_ENCRYPT | CKF_DECRYPT)?;
            let h = ctx.user_session()?;
            let kek = aes_key(ctx, h, &unhex(KW_KEK))?;
            let ct = ctx.encrypt(h, &mut Mech::new(CKM_AES_KEY_WRAP), kek, &unhex(KW_KEY))?;
            same_bytes("ciphertext", &ct, &unhex(KW_WRAPPED))?;
            let back = ctx.decrypt(h, &mut Mech::new(CKM_AES_KEY_WRAP), kek, &ct)?;
            same_bytes("plaintext", &back, &unhex(KW_KEY))
        },
    );
    r.add("ENC-035", "5.8-5.9 C_EncryptUpdate / C_DecryptUpdate / CKM_AES_GCM", "multi-part GCM (test case 3) gives the single-part bytes; multi-part decryption the plaintext",
        "the specification's ciphertext || tag; the plaintext", |ctx| {
            let h = ctx.user_session()?;
            let k = gcm_key(ctx, h)?;
            setup("C_EncryptInit", encrypt_init_rv(ctx, h, &mut Mech::gcm(&unhex(GCM_IV), &[], 128), k))?;
            let pt = unhex(GCM_PT);
            let mut ct = Vec::new();
            for part in pt.chunks(40) {
                let mut p = part.to_vec();
                ct.extend(ctx.output("C_EncryptUpdate", |m, o, l| p11!(m, C_EncryptUpdate(h, p.as_mut_ptr(), p.len() as CK_ULONG, o, l)))?);
            }
            ct.extend(ctx.output("C_EncryptFinal", |m, o, l| p11!(m, C_EncryptFinal(h, o, l)))?);
            same_bytes("ciphertext", &ct, &unhex(GCM_3_CT))?;
            setup("C_DecryptInit", decrypt_init_rv(ctx, h, &mut Mech::gcm(&unhex(GCM_IV), &[], 128), k))?;
            let mut back = Vec::new();
            for part in ct.chunks(30) {
                let mut p = part.to_vec();
                back.extend(ctx.output("C_DecryptUpdate", |m, o, l| p11!(m, C_DecryptUpdate(h, p.as_mut_ptr(), p.len() as CK_ULONG, o, l)))?);
            }
            back.extend(ctx.output("C_DecryptFinal", |m, o, l| p11!(m, C_DecryptFinal(h, o, l)))?);
            same_bytes("plaintext", &back, &pt)
        });
}
