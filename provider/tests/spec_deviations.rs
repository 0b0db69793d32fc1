//! The bugs and spec deviations of issue 14, each through the built `.so` with the exact
//! return codes, bytes and flags: template lengths checked before they are read (1), the
//! multi-part AES-GCM buffer capped (2), CKR_ARGUMENTS_BAD ending the operation (3), the
//! session checked first (4), Ed25519ctx / Ed25519ph (5), parameters refused by the mechanisms
//! that take none (6), and the wrap / unwrap / derive templates (8).

// `call!` passes raw pointers to the module: that is what these tests are for.
#![allow(clippy::macro_metavars_in_unsafe)]

mod common;
use common::*;
use std::ptr::null_mut;
use A::{B, S, U};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// An initialised, provisioned token with a User R/W session.
fn ready() -> (Lib, CK_SESSION_HANDLE) {
    let lib = Lib::load();
    lib.init();
    lib.provision();
    let h = lib.user_session();
    (lib, h)
}

/// A mechanism without parameters.
fn mech(ty: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: ty,
        pParameter: null_mut(),
        ulParameterLen: 0,
    }
}

/// Bytes that live as long as the test process (each test is its own short process).
fn leak(b: &[u8]) -> *mut u8 {
    Box::leak(b.to_vec().into_boxed_slice()).as_mut_ptr()
}

/// A mechanism with a raw parameter of these bytes.
fn mech_bytes(ty: CK_MECHANISM_TYPE, param: &[u8]) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: ty,
        pParameter: leak(param) as CK_VOID_PTR,
        ulParameterLen: param.len() as CK_ULONG,
    }
}

/// A mechanism with a parameter structure.
fn mech_with<T: 'static>(ty: CK_MECHANISM_TYPE, param: T) -> CK_MECHANISM {
    let p: &'static mut T = Box::leak(Box::new(param));
    CK_MECHANISM {
        mechanism: ty,
        pParameter: p as *mut T as CK_VOID_PTR,
        ulParameterLen: std::mem::size_of::<T>() as CK_ULONG,
    }
}

fn p(d: &[u8]) -> *mut u8 {
    d.as_ptr() as *mut u8
}

fn n(d: &[u8]) -> CK_ULONG {
    d.len() as CK_ULONG
}

/// One raw attribute whose value is these bytes (kept alive by leaking them).
fn raw(ty: CK_ATTRIBUTE_TYPE, value: &[u8]) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_: ty,
        pValue: leak(value) as CK_VOID_PTR,
        ulValueLen: value.len() as CK_ULONG,
    }
}

/// An attribute array attribute (CKA_WRAP_TEMPLATE, ...) holding `elements`.
fn array(ty: CK_ATTRIBUTE_TYPE, elements: Vec<CK_ATTRIBUTE>) -> CK_ATTRIBUTE {
    let len = elements.len() * std::mem::size_of::<CK_ATTRIBUTE>();
    CK_ATTRIBUTE {
        type_: ty,
        pValue: Box::leak(elements.into_boxed_slice()).as_mut_ptr() as CK_VOID_PTR,
        ulValueLen: len as CK_ULONG,
    }
}

fn create_raw(
    lib: &Lib,
    h: CK_SESSION_HANDLE,
    mut attrs: Vec<CK_ATTRIBUTE>,
) -> Result<CK_OBJECT_HANDLE, CK_RV> {
    let mut o = 0;
    match call!(
        lib,
        C_CreateObject,
        h,
        attrs.as_mut_ptr(),
        attrs.len() as CK_ULONG,
        &mut o
    ) {
        CKR_OK => Ok(o),
        rv => Err(rv),
    }
}

/// A session secret key with known bytes, readable (non-sensitive, extractable).
fn secret(
    lib: &Lib,
    h: CK_SESSION_HANDLE,
    key_type: CK_KEY_TYPE,
    value: &[u8],
    id: &[u8],
) -> CK_OBJECT_HANDLE {
    lib.create(
        h,
        &[
            (CKA_CLASS, U(CKO_SECRET_KEY)),
            (CKA_KEY_TYPE, U(key_type)),
            (CKA_VALUE, S(value)),
            (CKA_ID, S(id)),
            (CKA_SENSITIVE, B(false)),
            (CKA_EXTRACTABLE, B(true)),
        ],
    )
    .unwrap_or_else(|rv| panic!("C_CreateObject secret: {}", ckr_name(rv)))
}

/// Runs a producing call the usual way: length query, then a buffer of that size.
fn produce(mut f: impl FnMut(*mut u8, &mut CK_ULONG) -> CK_RV) -> Result<Vec<u8>, CK_RV> {
    let mut len: CK_ULONG = 0;
    match f(null_mut(), &mut len) {
        CKR_OK => {}
        rv => return Err(rv),
    }
    let mut out = vec![0u8; len as usize];
    match f(out.as_mut_ptr(), &mut len) {
        CKR_OK => {}
        rv => return Err(rv),
    }
    out.truncate(len as usize);
    Ok(out)
}

/// Every object the session sees.
fn all_objects(lib: &Lib, h: CK_SESSION_HANDLE) -> Vec<CK_OBJECT_HANDLE> {
    lib.find(h, &[])
}

// ---------------------------------------------------------------------------------------
// 1. Template lengths
// ---------------------------------------------------------------------------------------

/// Issue 14 item 1; PKCS#11 3.0 section 5.1 (CKR_ATTRIBUTE_VALUE_INVALID: "an invalid value
/// was specified for a particular attribute in a template") and section 5.7. Every function
/// that reads a template checks each declared length against its cap before reading: a
/// CK_BBOOL / CK_ULONG of any other size, a byte array over 1 MiB, a name over 4 KiB, lengths
/// of 4 GiB, u32::MAX, u64::MAX and isize::MAX + 1 over a 3-byte buffer, directly or inside
/// an attribute array, are CKR_ATTRIBUTE_VALUE_INVALID and nothing is created; the host does
/// not crash (before the fix, it read 4 GiB from the 3-byte buffer and died of SIGSEGV).
#[test]
fn template_lengths_are_checked_before_reading() {
    isolated("template_lengths_are_checked_before_reading", "", || {
        let (lib, h) = ready();
        assert_eq!(key4c_pkcs11::token::attributes::MAX_VALUE_LEN, 1 << 20);
        assert_eq!(key4c_pkcs11::token::attributes::MAX_NAME_LEN, 4096);
        let data = lib
            .create(h, &[(CKA_CLASS, U(CKO_DATA)), (CKA_LABEL, S(b"data"))])
            .unwrap();
        let kek = secret(&lib, h, CKK_AES, &[7; 32], b"kek");
        let wrapped = {
            let target = secret(&lib, h, CKK_AES, &[9; 16], b"target");
            let mut m = mech(CKM_AES_KEY_WRAP_PAD);
            produce(|o, l| call!(lib, C_WrapKey, h, &mut m, kek, target, o, l)).unwrap()
        };
        let before = all_objects(&lib, h);
        let three = [1u8, 2, 3];
        let over = |ty: CK_ATTRIBUTE_TYPE, len: CK_ULONG| CK_ATTRIBUTE {
            type_: ty,
            pValue: three.as_ptr() as CK_VOID_PTR,
            ulValueLen: len,
        };
        let class = |c: CK_OBJECT_CLASS| raw(CKA_CLASS, &ul(c));
        let huge: [CK_ULONG; 4] = [
            4 << 30,
            u32::MAX as CK_ULONG,
            CK_ULONG::MAX,
            isize::MAX as CK_ULONG + 1,
        ];
        let mut cases: Vec<(CK_ATTRIBUTE_TYPE, CK_ULONG)> = Vec::new();
        for len in huge {
            for ty in [CKA_LABEL, CKA_VALUE, CKA_ID, CKA_TOKEN, CKA_CLASS] {
                cases.push((ty, len));
            }
        }
        // Just past the caps, still over the 3-byte buffer.
        cases.push((CKA_VALUE, (1 << 20) + 1));
        cases.push((CKA_LABEL, 4097));
        cases.push((CKA_TOKEN, 2));
        cases.push((CKA_CLASS, 4));
        for (ty, len) in cases {
            let what = format!("{ty:#x} declaring {len} bytes");
            let bad = over(ty, len);
            // C_CreateObject (a data object's label and value; the class of a data object).
            let mut t = vec![class(CKO_DATA), bad];
            if ty == CKA_CLASS {
                t.remove(0);
            }
            assert_eq!(
                create_raw(&lib, h, t).map_err(ckr_name),
                Err("CKR_ATTRIBUTE_VALUE_INVALID"),
                "C_CreateObject, {what}"
            );
            // C_FindObjectsInit.
            let mut t = [bad];
            assert_rv!(
                call!(lib, C_FindObjectsInit, h, t.as_mut_ptr(), 1),
                CKR_ATTRIBUTE_VALUE_INVALID
            );
            // C_SetAttributeValue and C_CopyObject on the data object.
            assert_rv!(
                call!(lib, C_SetAttributeValue, h, data, t.as_mut_ptr(), 1),
                CKR_ATTRIBUTE_VALUE_INVALID
            );
            let mut o = 0;
            assert_rv!(
                call!(lib, C_CopyObject, h, data, t.as_mut_ptr(), 1, &mut o),
                CKR_ATTRIBUTE_VALUE_INVALID
            );
            // C_GenerateKey.
            let mut m = mech(CKM_AES_KEY_GEN);
            let mut t = [raw(CKA_VALUE_LEN, &ul(32)), bad];
            assert_rv!(
                call!(lib, C_GenerateKey, h, &mut m, t.as_mut_ptr(), 2, &mut o),
                CKR_ATTRIBUTE_VALUE_INVALID
            );
            // C_GenerateKeyPair, in the public and in the private template.
            let p256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
            let mut m = mech(CKM_EC_KEY_PAIR_GEN);
            for in_public in [true, false] {
                let mut public = vec![raw(CKA_EC_PARAMS, p256)];
                let mut private = vec![raw(CKA_SIGN, &[1])];
                if in_public {
                    public.push(bad);
                } else {
                    private.push(bad);
                }
                let (mut a, mut b) = (0, 0);
                assert_rv!(
                    call!(
                        lib,
                        C_GenerateKeyPair,
                        h,
                        &mut m,
                        public.as_mut_ptr(),
                        public.len() as CK_ULONG,
                        private.as_mut_ptr(),
                        private.len() as CK_ULONG,
                        &mut a,
                        &mut b
                    ),
                    CKR_ATTRIBUTE_VALUE_INVALID
                );
            }
            // C_UnwrapKey.
            let mut m = mech(CKM_AES_KEY_WRAP_PAD);
            let mut t = [class(CKO_SECRET_KEY), raw(CKA_KEY_TYPE, &ul(CKK_AES)), bad];
            assert_rv!(
                call!(
                    lib,
                    C_UnwrapKey,
                    h,
                    &mut m,
                    kek,
                    p(&wrapped),
                    n(&wrapped),
                    t.as_mut_ptr(),
                    3,
                    &mut o
                ),
                CKR_ATTRIBUTE_VALUE_INVALID
            );
            // Inside an attribute array.
            let t = vec![
                class(CKO_SECRET_KEY),
                raw(CKA_KEY_TYPE, &ul(CKK_AES)),
                raw(CKA_VALUE, &[5; 16]),
                array(CKA_UNWRAP_TEMPLATE, vec![bad]),
            ];
            assert_eq!(
                create_raw(&lib, h, t).map_err(ckr_name),
                Err("CKR_ATTRIBUTE_VALUE_INVALID"),
                "CKA_UNWRAP_TEMPLATE holding {what}"
            );
        }
        // An attribute array declaring 4 GiB of CK_ATTRIBUTEs over the 3 bytes.
        for len in huge {
            let t = vec![
                class(CKO_SECRET_KEY),
                raw(CKA_KEY_TYPE, &ul(CKK_AES)),
                raw(CKA_VALUE, &[5; 16]),
                over(CKA_WRAP_TEMPLATE, len),
            ];
            assert_eq!(
                create_raw(&lib, h, t).map_err(ckr_name),
                Err("CKR_ATTRIBUTE_VALUE_INVALID")
            );
        }
        assert_eq!(all_objects(&lib, h), before, "nothing was created");
        // Up to the caps, real buffers are taken; one byte more is refused.
        let mib = vec![0xa5u8; 1 << 20];
        let big = lib
            .create(h, &[(CKA_CLASS, U(CKO_DATA)), (CKA_VALUE, S(&mib))])
            .unwrap();
        assert_eq!(lib.attr(h, big, CKA_VALUE), mib);
        let more = vec![0xa5u8; (1 << 20) + 1];
        assert_eq!(
            lib.create(h, &[(CKA_CLASS, U(CKO_DATA)), (CKA_VALUE, S(&more))]),
            Err(CKR_ATTRIBUTE_VALUE_INVALID)
        );
        let name = vec![b'n'; 4096];
        let named = lib
            .create(h, &[(CKA_CLASS, U(CKO_DATA)), (CKA_LABEL, S(&name))])
            .unwrap();
        assert_eq!(lib.find(h, &[(CKA_LABEL, S(&name))]), vec![named]);
        assert_eq!(
            lib.create(
                h,
                &[(CKA_CLASS, U(CKO_DATA)), (CKA_LABEL, S(&[b'n'; 4097]))]
            ),
            Err(CKR_ATTRIBUTE_VALUE_INVALID)
        );
        // An attribute the token does not know is never read, whatever it declares: a search
        // for it finds nothing, a template giving it is CKR_ATTRIBUTE_TYPE_INVALID.
        let mut t = [over(0x7fff_0000, 4 << 30)];
        assert_rv!(call!(lib, C_FindObjectsInit, h, t.as_mut_ptr(), 1), CKR_OK);
        let (mut found, mut count) = ([0 as CK_OBJECT_HANDLE; 4], 0);
        assert_rv!(
            call!(lib, C_FindObjects, h, found.as_mut_ptr(), 4, &mut count),
            CKR_OK
        );
        assert_eq!(count, 0);
        assert_rv!(call!(lib, C_FindObjectsFinal, h), CKR_OK);
        assert_eq!(
            create_raw(&lib, h, vec![class(CKO_DATA), over(0x7fff_0000, 4 << 30)])
                .map_err(ckr_name),
            Err("CKR_ATTRIBUTE_TYPE_INVALID")
        );
    });
}

// ---------------------------------------------------------------------------------------
// 2. The multi-part AES-GCM buffer
// ---------------------------------------------------------------------------------------

fn gcm(iv: &[u8]) -> CK_MECHANISM {
    mech_with(
        CKM_AES_GCM,
        CK_GCM_PARAMS {
            pIv: leak(iv),
            ulIvLen: iv.len() as CK_ULONG,
            ulIvBits: 8 * iv.len() as CK_ULONG,
            pAAD: null_mut(),
            ulAADLen: 0,
            ulTagBits: 128,
        },
    )
}

/// C_EncryptUpdate / C_DecryptUpdate of `part` with an output buffer (GCM hands out nothing
/// before the end).
fn update(lib: &Lib, h: CK_SESSION_HANDLE, decrypt: bool, part: &[u8]) -> CK_RV {
    let mut out = [0u8; 16];
    let mut len = out.len() as CK_ULONG;
    if decrypt {
        call!(
            lib,
            C_DecryptUpdate,
            h,
            p(part),
            n(part),
            out.as_mut_ptr(),
            &mut len
        )
    } else {
        call!(
            lib,
            C_EncryptUpdate,
            h,
            p(part),
            n(part),
            out.as_mut_ptr(),
            &mut len
        )
    }
}

/// 4 GiB of readable zero pages that cost no memory (MAP_NORESERVE): a part as large as the
/// one that took 8 GiB before the cap.
fn four_gib() -> &'static [u8] {
    let len = 4usize << 30;
    // SAFETY: an anonymous private read-only mapping, never unmapped (the test process ends).
    let ptr = unsafe {
        libc::mmap(
            null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    assert_ne!(ptr, libc::MAP_FAILED, "mmap 4 GiB");
    unsafe { std::slice::from_raw_parts(ptr as *const u8, len) }
}

/// Issue 14 item 2; PKCS#11 3.0 sections 5.8 and 5.10 (C_EncryptUpdate / C_DecryptUpdate: "a
/// call ... which results in an error terminates the current ... operation"). A multi-part
/// AES-GCM operation gathers at most 16 MiB of plaintext (a decryption also its tag): exactly
/// that much encrypts and decrypts, one byte more is CKR_DATA_LEN_RANGE (encrypting) or
/// CKR_ENCRYPTED_DATA_LEN_RANGE (decrypting) and ends the operation, and a 4 GiB part is
/// refused at once without being copied.
#[test]
fn multi_part_gcm_buffer_is_capped() {
    isolated("multi_part_gcm_buffer_is_capped", "", || {
        let (lib, h) = ready();
        let cap = key4c_pkcs11::token::cipher::MAX_MULTI_PART_GCM;
        assert_eq!(cap, 16 << 20, "the README's figure");
        let key = secret(&lib, h, CKK_AES, &[0x42; 32], b"gcm");
        let mut m = gcm(&[0x24; 12]);
        let plain: Vec<u8> = (0..cap).map(|i| (i % 251) as u8).collect();
        // The single-part answer.
        assert_rv!(call!(lib, C_EncryptInit, h, &mut m, key), CKR_OK);
        let want = produce(|o, l| call!(lib, C_Encrypt, h, p(&plain), n(&plain), o, l)).unwrap();
        assert_eq!(want.len(), cap + 16);
        // Exactly the cap, in two parts, each way.
        assert_rv!(call!(lib, C_EncryptInit, h, &mut m, key), CKR_OK);
        let (a, b) = plain.split_at(cap / 2);
        assert_rv!(update(&lib, h, false, a), CKR_OK);
        assert_rv!(update(&lib, h, false, b), CKR_OK);
        let got = produce(|o, l| call!(lib, C_EncryptFinal, h, o, l)).unwrap();
        assert!(got == want, "multi-part ciphertext differs");
        assert_rv!(call!(lib, C_DecryptInit, h, &mut m, key), CKR_OK);
        let (a, b) = want.split_at(cap / 2);
        assert_rv!(update(&lib, h, true, a), CKR_OK);
        assert_rv!(update(&lib, h, true, b), CKR_OK);
        let got = produce(|o, l| call!(lib, C_DecryptFinal, h, o, l)).unwrap();
        assert!(got == plain, "multi-part plaintext differs");
        // One byte more: refused, and the operation is over.
        let mut len: CK_ULONG = 64;
        let mut out = [0u8; 64];
        assert_rv!(call!(lib, C_EncryptInit, h, &mut m, key), CKR_OK);
        assert_rv!(update(&lib, h, false, &plain), CKR_OK);
        assert_rv!(update(&lib, h, false, &[1]), CKR_DATA_LEN_RANGE);
        assert_rv!(
            call!(lib, C_EncryptFinal, h, out.as_mut_ptr(), &mut len),
            CKR_OPERATION_NOT_INITIALIZED
        );
        assert_rv!(update(&lib, h, false, &[1]), CKR_OPERATION_NOT_INITIALIZED);
        assert_rv!(call!(lib, C_DecryptInit, h, &mut m, key), CKR_OK);
        assert_rv!(update(&lib, h, true, &want), CKR_OK);
        assert_rv!(update(&lib, h, true, &[1]), CKR_ENCRYPTED_DATA_LEN_RANGE);
        assert_rv!(
            call!(lib, C_DecryptFinal, h, out.as_mut_ptr(), &mut len),
            CKR_OPERATION_NOT_INITIALIZED
        );
        // A length query past the cap is refused the same way.
        assert_rv!(call!(lib, C_EncryptInit, h, &mut m, key), CKR_OK);
        let mut qlen: CK_ULONG = 0;
        let big = vec![0u8; cap + 1];
        assert_rv!(
            call!(
                lib,
                C_EncryptUpdate,
                h,
                p(&big),
                n(&big),
                null_mut(),
                &mut qlen
            ),
            CKR_DATA_LEN_RANGE
        );
        assert_rv!(update(&lib, h, false, &[1]), CKR_OPERATION_NOT_INITIALIZED);
        // One 4 GiB part: refused at once (nothing is copied), the operation ended, a new one
        // starts.
        let huge = four_gib();
        for decrypt in [true, false] {
            let started = std::time::Instant::now();
            if decrypt {
                assert_rv!(call!(lib, C_DecryptInit, h, &mut m, key), CKR_OK);
                assert_rv!(update(&lib, h, true, huge), CKR_ENCRYPTED_DATA_LEN_RANGE);
                assert_rv!(update(&lib, h, true, &[1]), CKR_OPERATION_NOT_INITIALIZED);
                assert_rv!(call!(lib, C_DecryptInit, h, &mut m, key), CKR_OK);
            } else {
                assert_rv!(call!(lib, C_EncryptInit, h, &mut m, key), CKR_OK);
                assert_rv!(update(&lib, h, false, huge), CKR_DATA_LEN_RANGE);
                assert_rv!(update(&lib, h, false, &[1]), CKR_OPERATION_NOT_INITIALIZED);
                assert_rv!(call!(lib, C_EncryptInit, h, &mut m, key), CKR_OK);
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(2),
                "the 4 GiB part was processed, not refused: {:?}",
                started.elapsed()
            );
        }
    });
}

// ---------------------------------------------------------------------------------------
// 3. CKR_ARGUMENTS_BAD ends the operation
// ---------------------------------------------------------------------------------------

/// A call of a case, made as often as the case needs.
type Call<'a> = &'a dyn Fn() -> CK_RV;
/// (what, the call with a NULL pointer, the well-formed call that follows it).
type Case<'a, W> = (W, Call<'a>, Call<'a>);

/// One case: `init` starts the operation (CKR_OK), `bad` is a call with a NULL pointer
/// (CKR_ARGUMENTS_BAD), after which `next`, a well-formed call, finds no operation
/// (CKR_OPERATION_NOT_INITIALIZED) and `init` starts a new one (CKR_OK), then cancelled with
/// `flag`.
fn ends_operation(
    lib: &Lib,
    h: CK_SESSION_HANDLE,
    what: &str,
    flag: CK_FLAGS,
    init: Call,
    bad: Call,
    next: Call,
) {
    assert_eq!(ckr_name(init()), "CKR_OK", "{what}: init");
    assert_eq!(ckr_name(bad()), "CKR_ARGUMENTS_BAD", "{what}");
    assert_eq!(
        ckr_name(next()),
        "CKR_OPERATION_NOT_INITIALIZED",
        "{what}: the next call"
    );
    assert_eq!(ckr_name(init()), "CKR_OK", "{what}: a new init");
    assert_rv!(call!(lib, C_SessionCancel, h, flag), CKR_OK);
}

/// Issue 14 item 3; PKCS#11 3.0 section 5.2 and the descriptions of C_Digest, C_DigestUpdate,
/// C_DigestFinal, C_Sign..., C_Verify..., C_Encrypt..., C_Decrypt...: every error but
/// CKR_BUFFER_TOO_SMALL (and a successful length query) ends the operation. A NULL data, part,
/// signature or length pointer is CKR_ARGUMENTS_BAD and ends it, in single-part, update and
/// final calls, before any part and after one.
#[test]
fn arguments_bad_ends_the_operation() {
    isolated("arguments_bad_ends_the_operation", "", || {
        let (lib, h) = ready();
        let data = [0x61u8; 16];
        let mut out = vec![0u8; 256];
        let o = out.as_mut_ptr();
        let hmac = secret(&lib, h, CKK_GENERIC_SECRET, &[0x0b; 32], b"hmac");
        let aes = secret(&lib, h, CKK_AES, &[0x0c; 16], b"aes");
        let cbc = mech_bytes(CKM_AES_CBC_PAD, &[0; 16]);
        let ok_len = || -> *mut CK_ULONG { Box::leak(Box::new(256 as CK_ULONG)) };

        // Digests.
        let init = || call!(lib, C_DigestInit, h, &mut mech(CKM_SHA256));
        let next_update = || call!(lib, C_DigestUpdate, h, p(&data), n(&data));
        let next_final = || call!(lib, C_DigestFinal, h, o, ok_len());
        let digest_cases: [Case<&str>; 4] = [
            (
                "C_Digest(NULL data)",
                &|| call!(lib, C_Digest, h, null_mut(), 16, o, ok_len()),
                &|| call!(lib, C_Digest, h, p(&data), n(&data), o, ok_len()),
            ),
            (
                "C_Digest(NULL length)",
                &|| call!(lib, C_Digest, h, p(&data), n(&data), o, null_mut()),
                &next_update,
            ),
            (
                "C_DigestUpdate(NULL part)",
                &|| call!(lib, C_DigestUpdate, h, null_mut(), 16),
                &next_final,
            ),
            (
                "C_DigestFinal(NULL length)",
                &|| call!(lib, C_DigestFinal, h, o, null_mut()),
                &next_final,
            ),
        ];
        for (what, bad, next) in digest_cases {
            ends_operation(&lib, h, what, CKF_DIGEST, &init, bad, next);
        }
        // After a part: C_DigestUpdate then a NULL one.
        let init_and_part = || match init() {
            CKR_OK => next_update(),
            rv => rv,
        };
        ends_operation(
            &lib,
            h,
            "C_DigestUpdate(NULL part) after a part",
            CKF_DIGEST,
            &init_and_part,
            &|| call!(lib, C_DigestUpdate, h, null_mut(), 1),
            &next_final,
        );

        // Signatures and verifications (HMAC: single- and multi-part).
        let init = || call!(lib, C_SignInit, h, &mut mech(CKM_SHA256_HMAC), hmac);
        let sign_update = || call!(lib, C_SignUpdate, h, p(&data), n(&data));
        let sign_final = || call!(lib, C_SignFinal, h, o, ok_len());
        let sign_cases: [Case<&str>; 4] = [
            (
                "C_Sign(NULL data)",
                &|| call!(lib, C_Sign, h, null_mut(), 16, o, ok_len()),
                &|| call!(lib, C_Sign, h, p(&data), n(&data), o, ok_len()),
            ),
            (
                "C_Sign(NULL length)",
                &|| call!(lib, C_Sign, h, p(&data), n(&data), o, null_mut()),
                &sign_final,
            ),
            (
                "C_SignUpdate(NULL part)",
                &|| call!(lib, C_SignUpdate, h, null_mut(), 16),
                &sign_update,
            ),
            (
                "C_SignFinal(NULL length)",
                &|| call!(lib, C_SignFinal, h, o, null_mut()),
                &sign_final,
            ),
        ];
        for (what, bad, next) in sign_cases {
            ends_operation(&lib, h, what, CKF_SIGN, &init, bad, next);
        }
        let sig = [0u8; 32];
        let init = || call!(lib, C_VerifyInit, h, &mut mech(CKM_SHA256_HMAC), hmac);
        let verify_update = || call!(lib, C_VerifyUpdate, h, p(&data), n(&data));
        let verify_final = || call!(lib, C_VerifyFinal, h, p(&sig), n(&sig));
        let verify_cases: [Case<&str>; 4] = [
            (
                "C_Verify(NULL data)",
                &|| call!(lib, C_Verify, h, null_mut(), 16, p(&sig), n(&sig)),
                &verify_update,
            ),
            (
                "C_Verify(NULL signature)",
                &|| call!(lib, C_Verify, h, p(&data), n(&data), null_mut(), 32),
                &verify_final,
            ),
            (
                "C_VerifyUpdate(NULL part)",
                &|| call!(lib, C_VerifyUpdate, h, null_mut(), 16),
                &verify_update,
            ),
            (
                "C_VerifyFinal(NULL signature)",
                &|| call!(lib, C_VerifyFinal, h, null_mut(), 32),
                &verify_final,
            ),
        ];
        for (what, bad, next) in verify_cases {
            ends_operation(&lib, h, what, CKF_VERIFY, &init, bad, next);
        }

        // Encryption and decryption (AES-CBC-PAD: single- and multi-part).
        let block = [0x33u8; 32];
        for decrypt in [false, true] {
            let (flag, name) = if decrypt {
                (CKF_DECRYPT, "C_Decrypt")
            } else {
                (CKF_ENCRYPT, "C_Encrypt")
            };
            let init = || {
                let mut m = cbc;
                if decrypt {
                    call!(lib, C_DecryptInit, h, &mut m, aes)
                } else {
                    call!(lib, C_EncryptInit, h, &mut m, aes)
                }
            };
            let one = |d: *mut u8, l: CK_ULONG, len: *mut CK_ULONG| {
                if decrypt {
                    call!(lib, C_Decrypt, h, d, l, o, len)
                } else {
                    call!(lib, C_Encrypt, h, d, l, o, len)
                }
            };
            let upd = |d: *mut u8, l: CK_ULONG, len: *mut CK_ULONG| {
                if decrypt {
                    call!(lib, C_DecryptUpdate, h, d, l, o, len)
                } else {
                    call!(lib, C_EncryptUpdate, h, d, l, o, len)
                }
            };
            let fin = |len: *mut CK_ULONG| {
                if decrypt {
                    call!(lib, C_DecryptFinal, h, o, len)
                } else {
                    call!(lib, C_EncryptFinal, h, o, len)
                }
            };
            let next_update = || upd(p(&block), n(&block), ok_len());
            let next_final = || fin(ok_len());
            let cases: [Case<String>; 5] = [
                (
                    format!("{name}(NULL data)"),
                    &|| one(null_mut(), 32, ok_len()),
                    &|| one(p(&block), n(&block), ok_len()),
                ),
                (
                    format!("{name}(NULL length)"),
                    &|| one(p(&block), n(&block), null_mut()),
                    &next_final,
                ),
                (
                    format!("{name}Update(NULL part)"),
                    &|| upd(null_mut(), 32, ok_len()),
                    &next_update,
                ),
                (
                    format!("{name}Update(NULL length)"),
                    &|| upd(p(&block), n(&block), null_mut()),
                    &next_final,
                ),
                (
                    format!("{name}Final(NULL length)"),
                    &|| fin(null_mut()),
                    &next_final,
                ),
            ];
            for (what, bad, next) in cases {
                ends_operation(&lib, h, &what, flag, &init, bad, next);
            }
        }
    });
}

// ---------------------------------------------------------------------------------------
// 4. The session first
// ---------------------------------------------------------------------------------------

/// Issue 14 item 4; PKCS#11 3.0 section 5.1 (CKR_SESSION_HANDLE_INVALID) and 5.6: every call
/// on a session checks it before its other arguments, so a closed or never-opened session is
/// CKR_SESSION_HANDLE_INVALID even when the mechanism is unknown, the template bad or a
/// pointer NULL (before the fix: CKR_MECHANISM_INVALID, CKR_ARGUMENTS_BAD). On a valid session
/// the same calls give the other error.
#[test]
fn session_is_checked_before_anything_else() {
    isolated("session_is_checked_before_anything_else", "", || {
        let (lib, h) = ready();
        let aes = secret(&lib, h, CKK_AES, &[1; 16], b"aes");
        let closed = lib.open_rw();
        assert_rv!(lib.close(closed), CKR_OK);
        let vendor: CK_MECHANISM_TYPE = CKM_VENDOR_DEFINED | 0x1234;
        let mut t = [raw(CKA_VALUE_LEN, &ul(16)), raw(0x7fff_0000, &[1])];
        let mut t2 = [raw(CKA_SIGN, &[1])];
        let (mut o, mut o2) = (0, 0);
        let mut len: CK_ULONG = 0;
        let wrapped = [0u8; 24];
        for session in [closed, 0, 0xdead_beef] {
            let calls: Vec<(&str, CK_RV)> = vec![
                (
                    "C_DigestInit(unknown mechanism)",
                    call!(lib, C_DigestInit, session, &mut mech(vendor)),
                ),
                (
                    "C_DigestInit(NULL mechanism)",
                    call!(lib, C_DigestInit, session, null_mut()),
                ),
                (
                    "C_GenerateKey(unknown mechanism)",
                    call!(
                        lib,
                        C_GenerateKey,
                        session,
                        &mut mech(vendor),
                        t.as_mut_ptr(),
                        1,
                        &mut o
                    ),
                ),
                (
                    "C_GenerateKey(unknown attribute)",
                    call!(
                        lib,
                        C_GenerateKey,
                        session,
                        &mut mech(CKM_AES_KEY_GEN),
                        t.as_mut_ptr(),
                        2,
                        &mut o
                    ),
                ),
                (
                    "C_GenerateKeyPair(unknown mechanism)",
                    call!(
                        lib,
                        C_GenerateKeyPair,
                        session,
                        &mut mech(vendor),
                        t2.as_mut_ptr(),
                        1,
                        t2.as_mut_ptr(),
                        1,
                        &mut o,
                        &mut o2
                    ),
                ),
                (
                    "C_SignInit(unknown mechanism)",
                    call!(lib, C_SignInit, session, &mut mech(vendor), aes),
                ),
                (
                    "C_VerifyInit(unknown mechanism)",
                    call!(lib, C_VerifyInit, session, &mut mech(vendor), aes),
                ),
                (
                    "C_EncryptInit(unknown mechanism)",
                    call!(lib, C_EncryptInit, session, &mut mech(vendor), aes),
                ),
                (
                    "C_DecryptInit(unknown mechanism)",
                    call!(lib, C_DecryptInit, session, &mut mech(vendor), aes),
                ),
                (
                    "C_WrapKey(unknown mechanism)",
                    call!(
                        lib,
                        C_WrapKey,
                        session,
                        &mut mech(vendor),
                        aes,
                        aes,
                        null_mut(),
                        &mut len
                    ),
                ),
                (
                    "C_UnwrapKey(unknown mechanism)",
                    call!(
                        lib,
                        C_UnwrapKey,
                        session,
                        &mut mech(vendor),
                        aes,
                        p(&wrapped),
                        n(&wrapped),
                        t2.as_mut_ptr(),
                        1,
                        &mut o
                    ),
                ),
                (
                    "C_CreateObject(NULL template)",
                    call!(lib, C_CreateObject, session, null_mut(), 1, &mut o),
                ),
                (
                    "C_FindObjectsInit(NULL template)",
                    call!(lib, C_FindObjectsInit, session, null_mut(), 1),
                ),
                (
                    "C_Digest(NULL pointers)",
                    call!(
                        lib,
                        C_Digest,
                        session,
                        null_mut(),
                        3,
                        null_mut(),
                        null_mut()
                    ),
                ),
                (
                    "C_Login(NULL PIN)",
                    call!(lib, C_Login, session, CKU_USER, null_mut(), 5),
                ),
                (
                    "C_GetSessionInfo(NULL info)",
                    call!(lib, C_GetSessionInfo, session, null_mut()),
                ),
            ];
            for (what, rv) in calls {
                assert_eq!(
                    ckr_name(rv),
                    "CKR_SESSION_HANDLE_INVALID",
                    "{what} on session {session:#x}"
                );
            }
        }
        // On the valid session, the other error.
        assert_rv!(
            call!(lib, C_DigestInit, h, &mut mech(vendor)),
            CKR_MECHANISM_INVALID
        );
        assert_rv!(call!(lib, C_DigestInit, h, null_mut()), CKR_ARGUMENTS_BAD);
        assert_rv!(
            call!(
                lib,
                C_GenerateKey,
                h,
                &mut mech(vendor),
                t.as_mut_ptr(),
                1,
                &mut o
            ),
            CKR_MECHANISM_INVALID
        );
        assert_rv!(
            call!(
                lib,
                C_GenerateKey,
                h,
                &mut mech(CKM_AES_KEY_GEN),
                t.as_mut_ptr(),
                2,
                &mut o
            ),
            CKR_ATTRIBUTE_TYPE_INVALID
        );
        assert_rv!(
            call!(lib, C_SignInit, h, &mut mech(vendor), aes),
            CKR_MECHANISM_INVALID
        );
        // A function the token does not implement says so whatever the session.
        assert_rv!(
            call!(lib, C_SignRecoverInit, closed, &mut mech(vendor), aes),
            CKR_FUNCTION_NOT_SUPPORTED
        );
    });
}

// ---------------------------------------------------------------------------------------
// 5. Ed25519ctx and Ed25519ph
// ---------------------------------------------------------------------------------------

fn eddsa(prehash: bool, context: Option<&[u8]>) -> CK_MECHANISM {
    let (ptr, len) = match context {
        Some(c) => (leak(c), c.len() as CK_ULONG),
        None => (null_mut(), 0),
    };
    mech_with(
        CKM_EDDSA,
        CK_EDDSA_PARAMS {
            phFlag: u8::from(prehash),
            ulContextDataLen: len,
            pContextData: ptr,
        },
    )
}

/// An imported Ed25519 key pair from an RFC 8032 seed and public key.
fn ed_pair(
    lib: &Lib,
    h: CK_SESSION_HANDLE,
    seed: &str,
    public: &str,
) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    let oid: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
    let private = lib
        .create(
            h,
            &[
                (CKA_CLASS, U(CKO_PRIVATE_KEY)),
                (CKA_KEY_TYPE, U(CKK_EC_EDWARDS)),
                (CKA_EC_PARAMS, S(oid)),
                (CKA_VALUE, S(&unhex(seed))),
            ],
        )
        .unwrap();
    let point = [&[0x04, 0x20][..], &unhex(public)].concat();
    let public = lib
        .create(
            h,
            &[
                (CKA_CLASS, U(CKO_PUBLIC_KEY)),
                (CKA_KEY_TYPE, U(CKK_EC_EDWARDS)),
                (CKA_EC_PARAMS, S(oid)),
                (CKA_EC_POINT, S(&point)),
            ],
        )
        .unwrap();
    (public, private)
}

fn sign_with(
    lib: &Lib,
    h: CK_SESSION_HANDLE,
    m: &CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
    data: &[u8],
) -> Result<Vec<u8>, CK_RV> {
    let mut m = *m;
    match call!(lib, C_SignInit, h, &mut m, key) {
        CKR_OK => produce(|o, l| call!(lib, C_Sign, h, p(data), n(data), o, l)),
        rv => Err(rv),
    }
}

fn verify_with(
    lib: &Lib,
    h: CK_SESSION_HANDLE,
    m: &CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
    data: &[u8],
    sig: &[u8],
) -> CK_RV {
    let mut m = *m;
    match call!(lib, C_VerifyInit, h, &mut m, key) {
        CKR_OK => call!(lib, C_Verify, h, p(data), n(data), p(sig), n(sig)),
        rv => rv,
    }
}

/// Issue 14 item 5; PKCS#11 3.0 mechanisms specification section 2.3.14 (CKM_EDDSA: no
/// parameter is Ed25519, CK_EDDSA_PARAMS select Ed25519ctx with phFlag false and Ed25519ph
/// with phFlag true) and RFC 8032 sections 7.2 and 7.3 (test vectors, exact signatures).
/// Ed25519ctx without a context is refused (RFC 8032 section 5.1), never taken for Ed25519 (as
/// it was before the fix), and so is a context over 255 bytes.
#[test]
fn eddsa_params_select_ed25519ctx_and_ed25519ph() {
    isolated("eddsa_params_select_ed25519ctx_and_ed25519ph", "", || {
        let (lib, h) = ready();
        let k1 = (
            "0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6",
            "dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292",
        );
        let vectors: [((&str, &str), &str, CK_MECHANISM, &str); 4] = [
            (
                k1,
                "f726936d19c800494e3fdaff20b276a8",
                eddsa(false, Some(&b"foo"[..])),
                "55a4cc2f70a54e04288c5f4cd1e45a7bb520b36292911876cada7323198dd87a\
                 8b36950b95130022907a7fb7c4e9b2d5f6cca685a587b4b21f4b888e4e7edb0d",
            ),
            (
                k1,
                "f726936d19c800494e3fdaff20b276a8",
                eddsa(false, Some(&b"bar"[..])),
                "fc60d5872fc46b3aa69f8b5b4351d5808f92bcc044606db097abab6dbcb1aee3\
                 216c48e8b3b66431b5b186d1d28f8ee15a5ca2df6668346291c2043d4eb3e90d",
            ),
            (
                (
                    "ab9c2853ce297ddab85c993b3ae14bcad39b2c682beabc27d6d4eb20711d6560",
                    "0f1d1274943b91415889152e893d80e93275a1fc0b65fd71b4b0dda10ad7d772",
                ),
                "f726936d19c800494e3fdaff20b276a8",
                eddsa(false, Some(&b"foo"[..])),
                "21655b5f1aa965996b3f97b3c849eafba922a0a62992f73b3d1b73106a84ad85\
                 e9b86a7b6005ea868337ff2d20a7f5fbd4cd10b0be49a68da2b2e0dc0ad8960f",
            ),
            (
                (
                    "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
                    "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
                ),
                "616263",
                eddsa(true, None),
                "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41\
                 31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406",
            ),
        ];
        let pure = mech(CKM_EDDSA);
        for ((seed, public_key), msg, m, want) in vectors {
            let (public, private) = ed_pair(&lib, h, seed, public_key);
            let msg = unhex(msg);
            let sig = sign_with(&lib, h, &m, private, &msg).unwrap();
            assert_eq!(sig, unhex(want));
            assert_rv!(verify_with(&lib, h, &m, public, &msg, &sig), CKR_OK);
            // Not a signature of plain Ed25519 nor of the other variant.
            assert_rv!(
                verify_with(&lib, h, &pure, public, &msg, &sig),
                CKR_SIGNATURE_INVALID
            );
            let other = if want.starts_with("98a7") {
                eddsa(false, Some(&b"foo"[..]))
            } else {
                eddsa(true, None)
            };
            assert_rv!(
                verify_with(&lib, h, &other, public, &msg, &sig),
                CKR_SIGNATURE_INVALID
            );
            let mut bad = sig.clone();
            bad[3] ^= 0x10;
            assert_rv!(
                verify_with(&lib, h, &m, public, &msg, &bad),
                CKR_SIGNATURE_INVALID
            );
        }
        // No parameter: plain Ed25519 (RFC 8032 section 7.1, test 1).
        let (public, private) = ed_pair(
            &lib,
            h,
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        );
        assert_eq!(
            sign_with(&lib, h, &pure, private, b"").unwrap(),
            unhex(
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bac\
                 c61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
            )
        );
        // Ed25519ctx without a context (NULL or empty), a context over 255 bytes, a parameter
        // of the wrong size: CKR_MECHANISM_PARAM_INVALID at C_SignInit / C_VerifyInit.
        let refused = [
            eddsa(false, None),
            eddsa(false, Some(&b""[..])),
            eddsa(false, Some(&[7u8; 256][..])),
            eddsa(true, Some(&[7u8; 256][..])),
            mech_bytes(CKM_EDDSA, &[0; 4]),
        ];
        for m in refused {
            let mut mm = m;
            assert_rv!(
                call!(lib, C_SignInit, h, &mut mm, private),
                CKR_MECHANISM_PARAM_INVALID
            );
            assert_rv!(
                call!(lib, C_VerifyInit, h, &mut mm, public),
                CKR_MECHANISM_PARAM_INVALID
            );
        }
        // A 255-byte context is the longest, and Ed25519ph takes a context too.
        for m in [
            eddsa(false, Some(&[7u8; 255][..])),
            eddsa(true, Some(&b"foo"[..])),
        ] {
            let sig = sign_with(&lib, h, &m, private, b"msg").unwrap();
            assert_eq!(sig.len(), 64);
            assert_rv!(verify_with(&lib, h, &m, public, b"msg", &sig), CKR_OK);
        }
    });
}

// ---------------------------------------------------------------------------------------
// 6. Parameterless mechanisms
// ---------------------------------------------------------------------------------------

/// Issue 14 item 6; PKCS#11 3.0 section 5.1 (CKR_MECHANISM_PARAM_INVALID: "invalid parameters
/// were supplied to the mechanism") and the mechanisms specification, which gives these
/// mechanisms no parameter: a parameter (16 bytes, or a NULL pointer with a length) is
/// refused by digest, sign, verify, encrypt and key generation inits; a length of 0 is no
/// parameter, whatever the pointer.
#[test]
fn parameterless_mechanisms_refuse_a_parameter() {
    isolated("parameterless_mechanisms_refuse_a_parameter", "", || {
        let (lib, h) = ready();
        let hmac = secret(&lib, h, CKK_GENERIC_SECRET, &[0x0b; 32], b"hmac");
        let aes = secret(&lib, h, CKK_AES, &[0x0c; 16], b"aes");
        let p256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        let mut public = [raw(CKA_EC_PARAMS, p256)];
        let mut private = [raw(CKA_SIGN, &[1])];
        let (mut ec_pub, mut ec_priv) = (0, 0);
        assert_rv!(
            call!(
                lib,
                C_GenerateKeyPair,
                h,
                &mut mech(CKM_EC_KEY_PAIR_GEN),
                public.as_mut_ptr(),
                1,
                private.as_mut_ptr(),
                1,
                &mut ec_pub,
                &mut ec_priv
            ),
            CKR_OK
        );
        let before = all_objects(&lib, h);
        let with_param = |ty| mech_bytes(ty, &[0x5a; 16]);
        let null_with_len = |ty| CK_MECHANISM {
            mechanism: ty,
            pParameter: null_mut(),
            ulParameterLen: 16,
        };
        let mut t = [raw(CKA_VALUE_LEN, &ul(16))];
        let mut o = 0;
        let makers: [fn(CK_MECHANISM_TYPE) -> CK_MECHANISM; 2] = [with_param, null_with_len];
        for m in makers {
            for ty in [CKM_SHA256, CKM_SHA384, CKM_SHA512] {
                assert_rv!(
                    call!(lib, C_DigestInit, h, &mut m(ty)),
                    CKR_MECHANISM_PARAM_INVALID
                );
            }
            for (ty, key) in [
                (CKM_ECDSA, ec_priv),
                (CKM_ECDSA_SHA256, ec_priv),
                (CKM_SHA256_HMAC, hmac),
                (CKM_SHA512_HMAC, hmac),
            ] {
                assert_rv!(
                    call!(lib, C_SignInit, h, &mut m(ty), key),
                    CKR_MECHANISM_PARAM_INVALID
                );
            }
            assert_rv!(
                call!(lib, C_VerifyInit, h, &mut m(CKM_ECDSA_SHA384), ec_pub),
                CKR_MECHANISM_PARAM_INVALID
            );
            assert_rv!(
                call!(lib, C_EncryptInit, h, &mut m(CKM_RSA_PKCS), aes),
                CKR_MECHANISM_PARAM_INVALID
            );
            for ty in [CKM_AES_KEY_GEN, CKM_GENERIC_SECRET_KEY_GEN] {
                assert_rv!(
                    call!(lib, C_GenerateKey, h, &mut m(ty), t.as_mut_ptr(), 1, &mut o),
                    CKR_MECHANISM_PARAM_INVALID
                );
            }
            let (mut a, mut b) = (0, 0);
            assert_rv!(
                call!(
                    lib,
                    C_GenerateKeyPair,
                    h,
                    &mut m(CKM_EC_KEY_PAIR_GEN),
                    public.as_mut_ptr(),
                    1,
                    private.as_mut_ptr(),
                    1,
                    &mut a,
                    &mut b
                ),
                CKR_MECHANISM_PARAM_INVALID
            );
        }
        assert_eq!(all_objects(&lib, h), before, "nothing was generated");
        // A length of 0 is no parameter: a pointer with it is not read.
        let mut zero = CK_MECHANISM {
            mechanism: CKM_SHA256,
            pParameter: leak(&[1, 2, 3]) as CK_VOID_PTR,
            ulParameterLen: 0,
        };
        assert_rv!(call!(lib, C_DigestInit, h, &mut zero), CKR_OK);
        let d = produce(|o, l| call!(lib, C_Digest, h, p(b"abc"), 3, o, l)).unwrap();
        assert_eq!(
            d,
            unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        // The mechanisms with a parameter still take theirs.
        let mut general = mech_bytes(CKM_SHA256_HMAC_GENERAL, &ul(32));
        assert_rv!(call!(lib, C_SignInit, h, &mut general, hmac), CKR_OK);
        assert_rv!(call!(lib, C_SessionCancel, h, CKF_SIGN), CKR_OK);
    });
}

// ---------------------------------------------------------------------------------------
// 8. Wrap, unwrap and derive templates
// ---------------------------------------------------------------------------------------

/// Reads an attribute array the two-call way: the element count, then each element's type and
/// length (every pValue NULL), then the values. Returns (type, value) in the token's order.
fn read_array(
    lib: &Lib,
    h: CK_SESSION_HANDLE,
    o: CK_OBJECT_HANDLE,
    ty: CK_ATTRIBUTE_TYPE,
) -> Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)> {
    let size = std::mem::size_of::<CK_ATTRIBUTE>();
    let mut a = CK_ATTRIBUTE {
        type_: ty,
        pValue: null_mut(),
        ulValueLen: 0,
    };
    assert_rv!(call!(lib, C_GetAttributeValue, h, o, &mut a, 1), CKR_OK);
    assert_eq!(a.ulValueLen as usize % size, 0);
    let count = a.ulValueLen as usize / size;
    let mut elements = vec![
        CK_ATTRIBUTE {
            type_: 0,
            pValue: null_mut(),
            ulValueLen: 0,
        };
        count
    ];
    a.pValue = elements.as_mut_ptr() as CK_VOID_PTR;
    assert_rv!(call!(lib, C_GetAttributeValue, h, o, &mut a, 1), CKR_OK);
    assert_eq!(a.ulValueLen as usize, count * size);
    let mut values: Vec<Vec<u8>> = elements
        .iter()
        .map(|e| vec![0u8; e.ulValueLen as usize])
        .collect();
    for (e, v) in elements.iter_mut().zip(values.iter_mut()) {
        e.pValue = v.as_mut_ptr() as CK_VOID_PTR;
    }
    assert_rv!(call!(lib, C_GetAttributeValue, h, o, &mut a, 1), CKR_OK);
    elements
        .iter()
        .zip(values)
        .map(|(e, v)| (e.type_, v[..e.ulValueLen as usize].to_vec()))
        .collect()
}

fn wrap(
    lib: &Lib,
    h: CK_SESSION_HANDLE,
    kek: CK_OBJECT_HANDLE,
    key: CK_OBJECT_HANDLE,
) -> Result<Vec<u8>, CK_RV> {
    let mut m = mech(CKM_AES_KEY_WRAP);
    produce(|o, l| call!(lib, C_WrapKey, h, &mut m, kek, key, o, l))
}

fn unwrap(
    lib: &Lib,
    h: CK_SESSION_HANDLE,
    kek: CK_OBJECT_HANDLE,
    wrapped: &[u8],
    mut t: Vec<CK_ATTRIBUTE>,
) -> Result<CK_OBJECT_HANDLE, CK_RV> {
    let mut m = mech(CKM_AES_KEY_WRAP);
    let mut o = 0;
    match call!(
        lib,
        C_UnwrapKey,
        h,
        &mut m,
        kek,
        p(wrapped),
        n(wrapped),
        t.as_mut_ptr(),
        t.len() as CK_ULONG,
        &mut o
    ) {
        CKR_OK => Ok(o),
        rv => Err(rv),
    }
}

/// Issue 14 item 8; PKCS#11 3.0 section 4.9 / 4.10 (CKA_WRAP_TEMPLATE, CKA_UNWRAP_TEMPLATE,
/// CKA_DERIVE_TEMPLATE: attribute arrays, CKF_ARRAY_ATTRIBUTE), section 5.7 (C_GetAttributeValue
/// and its note on attribute arrays) and the C_WrapKey / C_UnwrapKey descriptions. The
/// templates are stored with the key (token objects across C_Finalize), read back element by
/// element, cannot be changed, and enforced: only keys matching the wrap template are wrapped
/// (else CKR_KEY_NOT_WRAPPABLE), every unwrapped key gets the unwrap template (a contradicting
/// template is CKR_TEMPLATE_INCONSISTENT). Before the fix they were
/// CKR_ATTRIBUTE_TYPE_INVALID.
#[test]
fn wrap_and_unwrap_templates() {
    isolated("wrap_and_unwrap_templates", "", || {
        let (lib, h) = ready();
        let size = std::mem::size_of::<CK_ATTRIBUTE>();
        let kek_template = |token: bool| {
            vec![
                raw(CKA_CLASS, &ul(CKO_SECRET_KEY)),
                raw(CKA_KEY_TYPE, &ul(CKK_AES)),
                raw(CKA_VALUE, &[0x4b; 32]),
                raw(CKA_TOKEN, &[u8::from(token)]),
                raw(CKA_LABEL, b"kek"),
                array(
                    CKA_WRAP_TEMPLATE,
                    vec![raw(CKA_ID, b"wrap-ok"), raw(CKA_KEY_TYPE, &ul(CKK_AES))],
                ),
                array(
                    CKA_UNWRAP_TEMPLATE,
                    vec![
                        raw(CKA_LABEL, b"unwrapped"),
                        raw(CKA_ENCRYPT, &[0]),
                        raw(CKA_EXTRACTABLE, &[1]),
                    ],
                ),
                array(CKA_DERIVE_TEMPLATE, vec![raw(CKA_SENSITIVE, &[1])]),
            ]
        };
        let kek = create_raw(&lib, h, kek_template(false)).unwrap();
        // Read back, in type order, each element's exact bytes.
        assert_eq!(
            read_array(&lib, h, kek, CKA_WRAP_TEMPLATE),
            vec![(CKA_KEY_TYPE, ul(CKK_AES)), (CKA_ID, b"wrap-ok".to_vec()),]
        );
        let unwrap_template = vec![
            (CKA_LABEL, b"unwrapped".to_vec()),
            (CKA_ENCRYPT, vec![0]),
            (CKA_EXTRACTABLE, vec![1]),
        ];
        assert_eq!(
            read_array(&lib, h, kek, CKA_UNWRAP_TEMPLATE),
            unwrap_template
        );
        assert_eq!(
            read_array(&lib, h, kek, CKA_DERIVE_TEMPLATE),
            vec![(CKA_SENSITIVE, vec![1])]
        );
        // A key given no template has an empty one.
        let plain = secret(&lib, h, CKK_AES, &[3; 16], b"plain");
        assert_eq!(lib.attr_rv(h, plain, CKA_WRAP_TEMPLATE), (CKR_OK, 0));
        // The read rules: too small an array; an element too small; an element of a type the
        // template does not hold; an element with a NULL pValue among others.
        let mut one = [CK_ATTRIBUTE {
            type_: 0,
            pValue: null_mut(),
            ulValueLen: 0,
        }];
        let mut a = CK_ATTRIBUTE {
            type_: CKA_WRAP_TEMPLATE,
            pValue: one.as_mut_ptr() as CK_VOID_PTR,
            ulValueLen: size as CK_ULONG,
        };
        assert_rv!(
            call!(lib, C_GetAttributeValue, h, kek, &mut a, 1),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(a.ulValueLen, CK_UNAVAILABLE_INFORMATION);
        let mut id = [0u8; 3];
        let mut key_type = [0u8; 8];
        let mut two = [
            CK_ATTRIBUTE {
                type_: CKA_ID,
                pValue: id.as_mut_ptr() as CK_VOID_PTR,
                ulValueLen: 3,
            },
            CK_ATTRIBUTE {
                type_: CKA_KEY_TYPE,
                pValue: key_type.as_mut_ptr() as CK_VOID_PTR,
                ulValueLen: 8,
            },
        ];
        let mut a = CK_ATTRIBUTE {
            type_: CKA_WRAP_TEMPLATE,
            pValue: two.as_mut_ptr() as CK_VOID_PTR,
            ulValueLen: (2 * size) as CK_ULONG,
        };
        assert_rv!(
            call!(lib, C_GetAttributeValue, h, kek, &mut a, 1),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(a.ulValueLen as usize, 2 * size);
        assert_eq!(two[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        assert_eq!(two[1].ulValueLen, 8);
        assert_eq!(key_type.to_vec(), ul(CKK_AES));
        two[0] = CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: id.as_mut_ptr() as CK_VOID_PTR,
            ulValueLen: 3,
        };
        assert_rv!(
            call!(lib, C_GetAttributeValue, h, kek, &mut a, 1),
            CKR_ATTRIBUTE_TYPE_INVALID
        );
        assert_eq!(two[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        two[0] = CK_ATTRIBUTE {
            type_: CKA_ID,
            pValue: null_mut(),
            ulValueLen: 0,
        };
        assert_rv!(call!(lib, C_GetAttributeValue, h, kek, &mut a, 1), CKR_OK);
        assert_eq!(two[0].ulValueLen, 7);
        // Fixed once the key exists.
        let mut t = [array(CKA_WRAP_TEMPLATE, vec![raw(CKA_ID, b"any")])];
        assert_rv!(
            call!(lib, C_SetAttributeValue, h, kek, t.as_mut_ptr(), 1),
            CKR_ATTRIBUTE_READ_ONLY
        );
        let mut o = 0;
        assert_rv!(
            call!(lib, C_CopyObject, h, kek, t.as_mut_ptr(), 1, &mut o),
            CKR_ATTRIBUTE_READ_ONLY
        );
        assert_eq!(
            read_array(&lib, h, kek, CKA_WRAP_TEMPLATE),
            vec![(CKA_KEY_TYPE, ul(CKK_AES)), (CKA_ID, b"wrap-ok".to_vec()),]
        );
        // A search by the template finds the key, whatever the order of its elements.
        let mut t = [array(
            CKA_WRAP_TEMPLATE,
            vec![raw(CKA_KEY_TYPE, &ul(CKK_AES)), raw(CKA_ID, b"wrap-ok")],
        )];
        assert_rv!(call!(lib, C_FindObjectsInit, h, t.as_mut_ptr(), 1), CKR_OK);
        let (mut found, mut count) = ([0 as CK_OBJECT_HANDLE; 4], 0);
        assert_rv!(
            call!(lib, C_FindObjects, h, found.as_mut_ptr(), 4, &mut count),
            CKR_OK
        );
        assert_eq!(&found[..count as usize], &[kek]);
        assert_rv!(call!(lib, C_FindObjectsFinal, h), CKR_OK);

        // C_WrapKey: an AES key with CKA_ID "wrap-ok" is wrapped; another ID, or a generic
        // secret with that ID, is not.
        let ok = secret(&lib, h, CKK_AES, &[0x11; 16], b"wrap-ok");
        let other_id = secret(&lib, h, CKK_AES, &[0x12; 16], b"other");
        let generic = secret(&lib, h, CKK_GENERIC_SECRET, &[0x13; 32], b"wrap-ok");
        let wrapped = wrap(&lib, h, kek, ok).unwrap();
        assert_eq!(wrapped.len(), 24);
        assert_eq!(wrap(&lib, h, kek, other_id), Err(CKR_KEY_NOT_WRAPPABLE));
        assert_eq!(wrap(&lib, h, kek, generic), Err(CKR_KEY_NOT_WRAPPABLE));
        // Without a wrap template, the same key wraps any.
        let free = {
            let mut t = kek_template(false);
            t.truncate(5);
            create_raw(&lib, h, t).unwrap()
        };
        assert_eq!(wrap(&lib, h, free, other_id).unwrap().len(), 24);

        // C_UnwrapKey: the unwrapped key gets the unwrap template; repeating it is fine,
        // contradicting it is not.
        let base = || {
            vec![
                raw(CKA_CLASS, &ul(CKO_SECRET_KEY)),
                raw(CKA_KEY_TYPE, &ul(CKK_AES)),
                raw(CKA_SENSITIVE, &[0]),
            ]
        };
        let k = unwrap(&lib, h, kek, &wrapped, base()).unwrap();
        assert_eq!(lib.attr(h, k, CKA_LABEL), b"unwrapped");
        assert_eq!(lib.attr(h, k, CKA_ENCRYPT), [0]);
        assert_eq!(lib.attr(h, k, CKA_EXTRACTABLE), [1]);
        assert_eq!(lib.attr(h, k, CKA_VALUE), [0x11; 16]);
        let mut same = base();
        same.push(raw(CKA_ENCRYPT, &[0]));
        let k2 = unwrap(&lib, h, kek, &wrapped, same).unwrap();
        assert_eq!(lib.attr(h, k2, CKA_ENCRYPT), [0]);
        let before = all_objects(&lib, h);
        for (ty, value) in [
            (CKA_ENCRYPT, vec![1u8]),
            (CKA_LABEL, b"mine".to_vec()),
            (CKA_EXTRACTABLE, vec![0]),
        ] {
            let mut t = base();
            t.push(raw(ty, &value));
            assert_eq!(
                unwrap(&lib, h, kek, &wrapped, t),
                Err(CKR_TEMPLATE_INCONSISTENT),
                "{ty:#x}"
            );
        }
        assert_eq!(all_objects(&lib, h), before);
        // Without an unwrap template, the caller's template alone.
        let mut t = base();
        t.push(raw(CKA_ENCRYPT, &[1]));
        let k3 = unwrap(&lib, h, free, &wrapped, t).unwrap();
        assert_eq!(lib.attr(h, k3, CKA_ENCRYPT), [1]);
        assert_eq!(lib.attr(h, k3, CKA_LABEL), b"");

        // What a template may not hold: an unknown attribute, an attribute array, a length
        // that is no whole number of CK_ATTRIBUTEs, one attribute twice; and where it does not
        // belong (a data object has no wrap template, a public key no unwrap template).
        let with = |extra: CK_ATTRIBUTE| {
            let mut t = kek_template(false);
            t.truncate(5);
            t.push(extra);
            create_raw(&lib, h, t).map_err(ckr_name)
        };
        assert_eq!(
            with(array(CKA_WRAP_TEMPLATE, vec![raw(0x7fff_0000, &[1])])),
            Err("CKR_ATTRIBUTE_TYPE_INVALID")
        );
        assert_eq!(
            with(array(
                CKA_UNWRAP_TEMPLATE,
                vec![array(CKA_WRAP_TEMPLATE, Vec::new())]
            )),
            Err("CKR_ATTRIBUTE_VALUE_INVALID")
        );
        let mut odd = array(CKA_WRAP_TEMPLATE, vec![raw(CKA_ID, b"x")]);
        odd.ulValueLen -= 1;
        assert_eq!(with(odd), Err("CKR_ATTRIBUTE_VALUE_INVALID"));
        assert_eq!(
            with(array(
                CKA_WRAP_TEMPLATE,
                vec![raw(CKA_ID, b"x"), raw(CKA_ID, b"y")]
            )),
            Err("CKR_TEMPLATE_INCONSISTENT")
        );
        assert_eq!(
            create_raw(
                &lib,
                h,
                vec![
                    raw(CKA_CLASS, &ul(CKO_DATA)),
                    array(CKA_WRAP_TEMPLATE, vec![raw(CKA_ID, b"x")]),
                ]
            )
            .map_err(ckr_name),
            Err("CKR_ATTRIBUTE_TYPE_INVALID")
        );

        // A token key keeps its templates across C_Finalize / C_Initialize (the store).
        let token_kek = create_raw(&lib, h, kek_template(true)).unwrap();
        assert_ne!(token_kek, 0);
        assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
        lib.init();
        let h = lib.user_session();
        let found = lib.find(h, &[(CKA_LABEL, S(b"kek")), (CKA_TOKEN, B(true))]);
        assert_eq!(found.len(), 1);
        assert_eq!(
            read_array(&lib, h, found[0], CKA_UNWRAP_TEMPLATE),
            unwrap_template
        );
        assert_eq!(
            read_array(&lib, h, found[0], CKA_WRAP_TEMPLATE),
            vec![(CKA_KEY_TYPE, ul(CKK_AES)), (CKA_ID, b"wrap-ok".to_vec()),]
        );
        let ok = secret(&lib, h, CKK_AES, &[0x11; 16], b"wrap-ok");
        let other_id = secret(&lib, h, CKK_AES, &[0x12; 16], b"other");
        assert_eq!(wrap(&lib, h, found[0], ok).unwrap(), wrapped);
        assert_eq!(
            wrap(&lib, h, found[0], other_id),
            Err(CKR_KEY_NOT_WRAPPABLE)
        );
    });
}

/// PKCS#11 3.0 section 5.7 (C_GetAttributeValue) and section 5.1 (CKR_ARGUMENTS_BAD): a
/// template count of 2^32 over a buffer of one attribute is refused before anything is read
/// or allocated (before, the module allocated for 2^32 attributes and aborted its host), like
/// 4097, one past the bound every template reader has; 4096 real attributes still read.
#[test]
fn get_attribute_value_refuses_an_absurd_count() {
    isolated("get_attribute_value_refuses_an_absurd_count", "", || {
        let (lib, h) = ready();
        let data = lib
            .create(h, &[(CKA_CLASS, U(CKO_DATA)), (CKA_LABEL, S(b"data"))])
            .unwrap();
        let mut one = [CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: null_mut(),
            ulValueLen: 0,
        }];
        for count in [1u64 << 32, u64::MAX, 4097] {
            assert_rv!(
                call!(
                    lib,
                    C_GetAttributeValue,
                    h,
                    data,
                    one.as_mut_ptr(),
                    count as CK_ULONG
                ),
                CKR_ARGUMENTS_BAD
            );
        }
        let mut many: Vec<CK_ATTRIBUTE> = (0..4096)
            .map(|_| CK_ATTRIBUTE {
                type_: CKA_LABEL,
                pValue: null_mut(),
                ulValueLen: 0,
            })
            .collect();
        assert_rv!(
            call!(lib, C_GetAttributeValue, h, data, many.as_mut_ptr(), 4096),
            CKR_OK
        );
        assert!(many.iter().all(|a| a.ulValueLen == 4));
    });
}
