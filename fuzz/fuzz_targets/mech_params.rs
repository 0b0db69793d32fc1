//! Mechanism parameters through C_SignInit / C_VerifyInit / C_EncryptInit / C_DecryptInit:
//! RSA-PSS (hash, MGF, salt length), RSA-OAEP (hash, MGF, source, label), AES-GCM (IV, IV bits,
//! AAD, tag bits), AES-CBC-PAD IVs, EdDSA (pre-hash flag, context), HMAC-GENERAL lengths, key
//! wrap IVs, plus every other shape of parameter block for every mechanism.
//!
//! Properties, besides "no panic, only PKCS#11 codes, nothing written past a buffer":
//! - the length query is exact or an upper bound, and a buffer of that length suffices;
//! - what is signed verifies with the same parameters, and a changed message does not;
//! - what is encrypted decrypts to the same data with the same parameters;
//! - multi-part output equals single-part output where the mechanism is deterministic.
#![no_main]

use std::sync::OnceLock;

use key4c_fuzz::gen::Reader;
use key4c_fuzz::*;
use libfuzzer_sys::fuzz_target;

#[derive(Clone, Copy, PartialEq)]
enum Family {
    Rsa,
    Ec,
    Ed,
    Aes,
    Hmac,
}

const RSA_SIGN: [CK_MECHANISM_TYPE; 8] = [
    CKM_RSA_PKCS,
    CKM_SHA256_RSA_PKCS,
    CKM_SHA384_RSA_PKCS,
    CKM_SHA512_RSA_PKCS,
    CKM_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_SHA384_RSA_PKCS_PSS,
    CKM_SHA512_RSA_PKCS_PSS,
];
const EC_SIGN: [CK_MECHANISM_TYPE; 4] = [
    CKM_ECDSA,
    CKM_ECDSA_SHA256,
    CKM_ECDSA_SHA384,
    CKM_ECDSA_SHA512,
];
const HMAC: [CK_MECHANISM_TYPE; 6] = [
    CKM_SHA256_HMAC,
    CKM_SHA384_HMAC,
    CKM_SHA512_HMAC,
    CKM_SHA256_HMAC_GENERAL,
    CKM_SHA384_HMAC_GENERAL,
    CKM_SHA512_HMAC_GENERAL,
];
const AES: [CK_MECHANISM_TYPE; 4] = [
    CKM_AES_GCM,
    CKM_AES_CBC_PAD,
    CKM_AES_KEY_WRAP,
    CKM_AES_KEY_WRAP_PAD,
];

/// Deterministic signatures: multi-part must equal single-part.
fn deterministic(ty: CK_MECHANISM_TYPE) -> bool {
    matches!(
        ty,
        CKM_SHA256_RSA_PKCS | CKM_SHA384_RSA_PKCS | CKM_SHA512_RSA_PKCS | CKM_RSA_PKCS | CKM_EDDSA
    ) || HMAC.contains(&ty)
}

struct Fixture {
    session: CK_SESSION_HANDLE,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        env();
        let h = open(false);
        ok!(login(h, CKU_USER, USER_PIN));
        Fixture { session: h }
    })
}

/// Runs a producing call the way careful callers do: a length query (NULL buffer), then
/// sometimes a buffer one byte short (CKR_BUFFER_TOO_SMALL, operation kept), then a buffer
/// of the length said. Returns the final rv and output.
fn produce(
    what: &str,
    r: &mut Reader,
    mut f: impl FnMut(CK_BYTE_PTR, &mut CK_ULONG) -> CK_RV,
) -> (CK_RV, Vec<u8>) {
    let mut len: CK_ULONG = r.ulong();
    let rv = f(std::ptr::null_mut(), &mut len);
    check_rv(what, rv);
    if rv != CKR_OK {
        return (rv, Vec::new());
    }
    let said = len as usize;
    assert!(said <= 1 << 20, "{what}: length query said {said}");
    if said > 0 && r.bool() {
        let mut short = Out::with_len(said - 1);
        let rv = f(short.ptr(), &mut short.ul);
        check_rv(what, rv);
        short.check(what, rv);
        if rv != CKR_BUFFER_TOO_SMALL {
            // A shorter buffer may suffice when the query gave an upper bound.
            assert_eq!(rv, CKR_OK, "{what}: one byte short gave {}", ckr_name(rv));
            return (rv, short.bytes().to_vec());
        }
    }
    let mut out = Out::with_len(said);
    let rv = f(out.ptr(), &mut out.ul);
    check_rv(what, rv);
    out.check(what, rv);
    assert_ne!(
        rv, CKR_BUFFER_TOO_SMALL,
        "{what}: the length the query said was too small"
    );
    (rv, out.bytes().to_vec())
}

fn sign_verify(r: &mut Reader, h: CK_SESSION_HANDLE, family: Family) {
    let keys = env().keys;
    let (ty, private, public) = match family {
        Family::Rsa => (r.pick(&RSA_SIGN), keys.rsa_priv, keys.rsa_pub),
        Family::Ec => (r.pick(&EC_SIGN), keys.ec_priv, keys.ec_pub),
        Family::Ed => (CKM_EDDSA, keys.ed_priv, keys.ed_pub),
        _ => (r.pick(&HMAC), keys.hmac, keys.hmac),
    };
    let mut m = r.mechanism_of(ty);
    let data = r.long_bytes(2048);
    let multi = r.bool();
    let rv = call!(C_SignInit, h, m.ptr(), private);
    check_rv("C_SignInit", rv);
    if rv != CKR_OK {
        // Verification must refuse the same parameters the same way (or have no key issue).
        let rv2 = call!(C_VerifyInit, h, m.ptr(), public);
        check_rv("C_VerifyInit", rv2);
        if rv2 == CKR_OK {
            let _ = call!(C_SessionCancel, h, CKF_VERIFY);
        }
        return;
    }
    let mut data_in = data.clone();
    let (rv, sig) = if multi {
        let mid = data.len() / 2;
        let rv = call!(C_SignUpdate, h, data_in.as_mut_ptr(), mid as CK_ULONG);
        check_rv("C_SignUpdate", rv);
        if rv != CKR_OK {
            // Single-part-only mechanisms end the operation here.
            return;
        }
        let rv = call!(
            C_SignUpdate,
            h,
            data_in[mid..].as_mut_ptr(),
            (data.len() - mid) as CK_ULONG
        );
        check_rv("C_SignUpdate", rv);
        if rv != CKR_OK {
            return;
        }
        produce("C_SignFinal", r, |p, l| call!(C_SignFinal, h, p, l))
    } else {
        produce("C_Sign", r, |p, l| {
            call!(
                C_Sign,
                h,
                data_in.as_mut_ptr(),
                data.len() as CK_ULONG,
                p,
                l
            )
        })
    };
    if rv != CKR_OK {
        return;
    }
    // Verify with the same parameters.
    let mut sig_in = sig.clone();
    ok!(call!(C_VerifyInit, h, m.ptr(), public));
    let rv = call!(
        C_Verify,
        h,
        data_in.as_mut_ptr(),
        data.len() as CK_ULONG,
        sig_in.as_mut_ptr(),
        sig.len() as CK_ULONG
    );
    assert_eq!(
        rv,
        CKR_OK,
        "a fresh signature does not verify: {}",
        ckr_name(rv)
    );
    // A changed message does not verify.
    let mut other = data.clone();
    other.push(1);
    ok!(call!(C_VerifyInit, h, m.ptr(), public));
    let rv = call!(
        C_Verify,
        h,
        other.as_mut_ptr(),
        other.len() as CK_ULONG,
        sig_in.as_mut_ptr(),
        sig.len() as CK_ULONG
    );
    // Raw ECDSA and RSA PKCS#1 sign a (truncated / padded) value: an extra byte may change
    // nothing the signature covers only for ECDSA inputs longer than the order.
    // A MAC cut to a few bytes (HMAC-GENERAL) collides by chance: only 8 bytes and more
    // are expected to tell the messages apart.
    if !(ty == CKM_ECDSA && data.len() >= 32) && sig.len() >= 8 {
        assert!(
            rv == CKR_SIGNATURE_INVALID || rv == CKR_DATA_LEN_RANGE || rv == CKR_DATA_INVALID,
            "a changed message verified: {}",
            ckr_name(rv)
        );
    }
    if deterministic(ty) && !multi {
        // Multi-part gives the same signature.
        let mid = data.len() / 3;
        ok!(call!(C_SignInit, h, m.ptr(), private));
        let rv = call!(C_SignUpdate, h, data_in.as_mut_ptr(), mid as CK_ULONG);
        if rv == CKR_OK {
            ok!(call!(
                C_SignUpdate,
                h,
                data_in[mid..].as_mut_ptr(),
                (data.len() - mid) as CK_ULONG
            ));
            let (rv, again) = produce("C_SignFinal", r, |p, l| call!(C_SignFinal, h, p, l));
            assert_eq!(rv, CKR_OK);
            assert_eq!(again, sig, "multi-part signature differs from single-part");
        } else {
            assert_eq!(
                rv,
                CKR_FUNCTION_NOT_SUPPORTED,
                "C_SignUpdate: {}",
                ckr_name(rv)
            );
        }
    }
}

fn encrypt_decrypt(r: &mut Reader, h: CK_SESSION_HANDLE, family: Family) {
    let keys = env().keys;
    let (ty, enc_key, dec_key) = match family {
        Family::Rsa => (
            r.pick(&[CKM_RSA_PKCS_OAEP, CKM_RSA_PKCS_OAEP, CKM_RSA_PKCS]),
            keys.rsa_pub,
            keys.rsa_priv,
        ),
        _ => {
            let ty = r.pick(&AES);
            (ty, keys.aes, keys.aes)
        }
    };
    let mut m = r.mechanism_of(ty);
    let data = r.long_bytes(1024);
    let mut data_in = data.clone();
    let rv = call!(C_EncryptInit, h, m.ptr(), enc_key);
    check_rv("C_EncryptInit", rv);
    if rv != CKR_OK {
        return;
    }
    let (rv, ct) = produce("C_Encrypt", r, |p, l| {
        call!(
            C_Encrypt,
            h,
            data_in.as_mut_ptr(),
            data.len() as CK_ULONG,
            p,
            l
        )
    });
    if rv != CKR_OK {
        return;
    }
    let mut ct_in = ct.clone();
    let rv = call!(C_DecryptInit, h, m.ptr(), dec_key);
    assert_eq!(
        rv,
        CKR_OK,
        "C_DecryptInit with the parameters that encrypted: {}",
        ckr_name(rv)
    );
    let (rv, pt) = produce("C_Decrypt", r, |p, l| {
        call!(C_Decrypt, h, ct_in.as_mut_ptr(), ct.len() as CK_ULONG, p, l)
    });
    assert_eq!(
        rv,
        CKR_OK,
        "decrypting a fresh ciphertext: {}",
        ckr_name(rv)
    );
    assert_eq!(pt, data, "decryption does not give back the plaintext");
    // Deterministic AES modes: multi-part encryption equals single-part.
    if matches!(ty, CKM_AES_GCM | CKM_AES_CBC_PAD) {
        ok!(call!(C_EncryptInit, h, m.ptr(), enc_key));
        let mut total = Vec::new();
        for chunk in data_in.chunks_mut(7) {
            let mut out = Out::with_len(chunk.len() + 32);
            let rv = call!(
                C_EncryptUpdate,
                h,
                chunk.as_mut_ptr(),
                chunk.len() as CK_ULONG,
                out.ptr(),
                &mut out.ul
            );
            out.check("C_EncryptUpdate", rv);
            assert_eq!(rv, CKR_OK, "C_EncryptUpdate: {}", ckr_name(rv));
            total.extend_from_slice(out.bytes());
        }
        let (rv, last) = produce("C_EncryptFinal", r, |p, l| call!(C_EncryptFinal, h, p, l));
        assert_eq!(rv, CKR_OK, "C_EncryptFinal: {}", ckr_name(rv));
        total.extend_from_slice(&last);
        assert_eq!(total, ct, "multi-part ciphertext differs from single-part");
    }
}

fuzz_target!(|data: &[u8]| {
    let h = fixture().session;
    let mut r = Reader::new(data);
    for _ in 0..4 {
        if r.is_empty() {
            break;
        }
        let family = r.pick(&[
            Family::Rsa,
            Family::Ec,
            Family::Ed,
            Family::Aes,
            Family::Hmac,
        ]);
        match (r.u8() % 3, family) {
            (0, Family::Rsa | Family::Aes) => encrypt_decrypt(&mut r, h, family),
            (1, _) => {
                // Any mechanism, any parameter, any key, through every init.
                let mut m = r.mechanism();
                let key = r.pick(&env().keys.all());
                for (name, rv) in [
                    ("C_SignInit", call!(C_SignInit, h, m.ptr(), key)),
                    ("C_VerifyInit", call!(C_VerifyInit, h, m.ptr(), key)),
                    ("C_EncryptInit", call!(C_EncryptInit, h, m.ptr(), key)),
                    ("C_DecryptInit", call!(C_DecryptInit, h, m.ptr(), key)),
                    ("C_DigestInit", call!(C_DigestInit, h, m.ptr())),
                ] {
                    check_rv(name, rv);
                }
            }
            _ => sign_verify(&mut r, h, family),
        }
        // Whatever is left active goes.
        let rv = call!(
            C_SessionCancel,
            h,
            CKF_SIGN | CKF_VERIFY | CKF_ENCRYPT | CKF_DECRYPT | CKF_DIGEST | CKF_FIND_OBJECTS
        );
        assert_eq!(rv, CKR_OK, "C_SessionCancel: {}", ckr_name(rv));
    }
});
