//! Secrets at rest: after a workload that generates EC, RSA, Ed25519, AES and generic secret
//! keys, imports keys whose bytes are known, wraps and unwraps, and changes PINs, no file of the
//! store (nor the module's log, at the most verbose level) holds any private or secret key's
//! bytes or any PIN that was ever set or tried.
//!
//! Generated keys are made extractable and not sensitive so that their material can be read
//! while the User is logged in: those are the bytes searched for. Every secret is searched for
//! whole and by every 16-byte window (a partial leak counts too).

// `call!` passes raw pointers to the module: that is what these tests are for.
#![allow(clippy::macro_metavars_in_unsafe)]

mod common;
use common::*;

use std::ptr::null_mut;

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

fn mech(m: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: m,
        pParameter: null_mut(),
        ulParameterLen: 0,
    }
}

/// Generates a token key pair whose private half can be read (not sensitive, extractable).
fn readable_pair(
    lib: &Lib,
    h: CK_SESSION_HANDLE,
    m: CK_MECHANISM_TYPE,
    public: &[(CK_ATTRIBUTE_TYPE, A)],
    label: &str,
) -> CK_OBJECT_HANDLE {
    let mut items = vec![(CKA_TOKEN, A::B(true)), (CKA_LABEL, A::S(label.as_bytes()))];
    for (t, a) in public {
        items.push((
            *t,
            match a {
                A::U(u) => A::U(*u),
                A::B(b) => A::B(*b),
                A::S(s) => A::S(s),
            },
        ));
    }
    let mut pub_t = Tpl::new(&items);
    let mut priv_t = Tpl::new(&[
        (CKA_TOKEN, A::B(true)),
        (CKA_LABEL, A::S(label.as_bytes())),
        (CKA_SENSITIVE, A::B(false)),
        (CKA_EXTRACTABLE, A::B(true)),
    ]);
    let mut m = mech(m);
    let (mut p, mut q) = (0, 0);
    assert_rv!(
        call!(
            lib,
            C_GenerateKeyPair,
            h,
            &mut m,
            pub_t.ptr(),
            pub_t.len(),
            priv_t.ptr(),
            priv_t.len(),
            &mut p,
            &mut q
        ),
        CKR_OK
    );
    q
}

fn readable_secret(
    lib: &Lib,
    h: CK_SESSION_HANDLE,
    m: CK_MECHANISM_TYPE,
    len: CK_ULONG,
    label: &str,
) -> CK_OBJECT_HANDLE {
    let mut t = Tpl::new(&[
        (CKA_TOKEN, A::B(true)),
        (CKA_LABEL, A::S(label.as_bytes())),
        (CKA_VALUE_LEN, A::U(len)),
        (CKA_SENSITIVE, A::B(false)),
        (CKA_EXTRACTABLE, A::B(true)),
    ]);
    let mut m = mech(m);
    let mut k = 0;
    assert_rv!(
        call!(lib, C_GenerateKey, h, &mut m, t.ptr(), t.len(), &mut k),
        CKR_OK
    );
    k
}

/// Every secret byte string an object holds, read while the User is logged in.
fn material(
    lib: &Lib,
    h: CK_SESSION_HANDLE,
    o: CK_OBJECT_HANDLE,
    types: &[CK_ATTRIBUTE_TYPE],
) -> Vec<(String, Vec<u8>)> {
    types
        .iter()
        .map(|&t| {
            let v = lib.attr(h, o, t);
            assert!(
                v.len() >= 16,
                "attribute {t:#x} of object {o} is only {} bytes",
                v.len()
            );
            (format!("object {o} attribute {t:#x}"), v)
        })
        .collect()
}

#[test]
fn no_secret_in_the_store_files_or_the_log() {
    const NAME: &str = "no_secret_in_the_store_files_or_the_log";
    isolated_reporting(NAME, "log_level = \"trace\"", || {
        let dir = store_dir().parent().unwrap().to_path_buf();
        let log = dir.join("module.log");
        std::env::set_var("KEY4C_LOG_FILE", &log);
        let lib = Lib::load();
        lib.init();
        lib.provision();
        let h = lib.user_session();
        let mut secrets: Vec<(String, Vec<u8>)> = Vec::new();
        // Generated keys, read back.
        let rsa_priv = [
            CKA_PRIVATE_EXPONENT,
            CKA_PRIME_1,
            CKA_PRIME_2,
            CKA_EXPONENT_1,
            CKA_EXPONENT_2,
            CKA_COEFFICIENT,
        ];
        for (m, public, label, types) in [
            (
                CKM_EC_KEY_PAIR_GEN,
                vec![(CKA_EC_PARAMS, A::S(P256))],
                "ec256",
                &[CKA_VALUE][..],
            ),
            (
                CKM_EC_KEY_PAIR_GEN,
                vec![(CKA_EC_PARAMS, A::S(P384))],
                "ec384",
                &[CKA_VALUE][..],
            ),
            (
                CKM_EC_EDWARDS_KEY_PAIR_GEN,
                vec![(CKA_EC_PARAMS, A::S(ED25519))],
                "ed",
                &[CKA_VALUE][..],
            ),
            (
                CKM_RSA_PKCS_KEY_PAIR_GEN,
                vec![(CKA_MODULUS_BITS, A::U(2048))],
                "rsa",
                &rsa_priv[..],
            ),
        ] {
            let q = readable_pair(&lib, h, m, &public, label);
            secrets.extend(material(&lib, h, q, types));
        }
        for (m, len, label) in [
            (CKM_AES_KEY_GEN, 16, "aes128"),
            (CKM_AES_KEY_GEN, 32, "aes256"),
            (CKM_GENERIC_SECRET_KEY_GEN, 48, "hmac"),
        ] {
            let k = readable_secret(&lib, h, m, len, label);
            secrets.extend(material(&lib, h, k, &[CKA_VALUE]));
        }
        // Imported keys with known bytes: default (sensitive) and readable.
        let known_aes: Vec<u8> = (0..32).map(|i| 0xa0 ^ i as u8).collect();
        let known_hmac: Vec<u8> = (0..64).map(|i| (i * 37 + 11) as u8).collect();
        let known_data: Vec<u8> = b"a private data object's secret payload, 2024".to_vec();
        for (ty, value, label, sensitive) in [
            (CKK_AES, &known_aes, "known-aes", true),
            (CKK_GENERIC_SECRET, &known_hmac, "known-hmac", false),
        ] {
            lib.create(
                h,
                &[
                    (CKA_CLASS, A::U(CKO_SECRET_KEY)),
                    (CKA_KEY_TYPE, A::U(ty)),
                    (CKA_TOKEN, A::B(true)),
                    (CKA_LABEL, A::S(label.as_bytes())),
                    (CKA_VALUE, A::S(value)),
                    (CKA_SENSITIVE, A::B(sensitive)),
                ],
            )
            .expect("import a secret key");
            secrets.push((label.to_string(), value.clone()));
        }
        // An EC private key imported from a known scalar: the public point comes from it.
        let scalar: Vec<u8> = (1..=32).map(|i| i as u8).collect();
        lib.create(
            h,
            &[
                (CKA_CLASS, A::U(CKO_PRIVATE_KEY)),
                (CKA_KEY_TYPE, A::U(CKK_EC)),
                (CKA_TOKEN, A::B(true)),
                (CKA_LABEL, A::S(b"known-ec")),
                (CKA_EC_PARAMS, A::S(P256)),
                (CKA_VALUE, A::S(&scalar)),
            ],
        )
        .expect("import an EC private key");
        secrets.push(("known-ec".into(), scalar));
        // A key unwrapped from known bytes (AES key wrap under the readable AES-256 key).
        let wrapping = lib.find(h, &[(CKA_LABEL, A::S(b"aes256"))])[0];
        let unwrapped: Vec<u8> = (0..32).map(|i| (i * 5 + 3) as u8).collect();
        let wrapped = {
            // Wrap it ourselves with the same key through a session copy of the known key.
            let tmp = lib
                .create(
                    h,
                    &[
                        (CKA_CLASS, A::U(CKO_SECRET_KEY)),
                        (CKA_KEY_TYPE, A::U(CKK_AES)),
                        (CKA_VALUE, A::S(&unwrapped)),
                        (CKA_EXTRACTABLE, A::B(true)),
                    ],
                )
                .expect("session key");
            let mut m = mech(CKM_AES_KEY_WRAP);
            let mut out = vec![0u8; 64];
            let mut len = 64;
            assert_rv!(
                call!(
                    lib,
                    C_WrapKey,
                    h,
                    &mut m,
                    wrapping,
                    tmp,
                    out.as_mut_ptr(),
                    &mut len
                ),
                CKR_OK
            );
            out.truncate(len as usize);
            out
        };
        let mut t = Tpl::new(&[
            (CKA_CLASS, A::U(CKO_SECRET_KEY)),
            (CKA_KEY_TYPE, A::U(CKK_AES)),
            (CKA_TOKEN, A::B(true)),
            (CKA_LABEL, A::S(b"unwrapped")),
        ]);
        let mut m = mech(CKM_AES_KEY_WRAP);
        let mut k = 0;
        let mut w = wrapped.clone();
        assert_rv!(
            call!(
                lib,
                C_UnwrapKey,
                h,
                &mut m,
                wrapping,
                w.as_mut_ptr(),
                w.len() as CK_ULONG,
                t.ptr(),
                t.len(),
                &mut k
            ),
            CKR_OK
        );
        secrets.push(("unwrapped".into(), unwrapped));
        lib.create(
            h,
            &[
                (CKA_CLASS, A::U(CKO_DATA)),
                (CKA_TOKEN, A::B(true)),
                (CKA_PRIVATE, A::B(true)),
                (CKA_LABEL, A::S(b"private data")),
                (CKA_VALUE, A::S(&known_data)),
            ],
        )
        .expect("private data object");
        // Use the keys (unsealing them) so that decrypted material has been in memory.
        for label in ["ec256", "ed", "rsa", "hmac"] {
            let o = lib.find(
                h,
                &[(CKA_LABEL, A::S(label.as_bytes())), (CKA_SIGN, A::B(true))],
            );
            let m = match label {
                "rsa" => CKM_SHA256_RSA_PKCS,
                "ed" => CKM_EDDSA,
                "hmac" => CKM_SHA256_HMAC,
                _ => CKM_ECDSA_SHA256,
            };
            let mut m = mech(m);
            assert_rv!(call!(lib, C_SignInit, h, &mut m, o[0]), CKR_OK);
            let mut data = [3u8; 20];
            let mut sig = vec![0u8; 512];
            let mut len = 512;
            assert_rv!(
                call!(
                    lib,
                    C_Sign,
                    h,
                    data.as_mut_ptr(),
                    20,
                    sig.as_mut_ptr(),
                    &mut len
                ),
                CKR_OK
            );
        }
        // PINs: wrong ones tried, the SO PIN changed twice, the User PIN reset by the SO.
        let mut pins: Vec<&[u8]> = vec![
            SO_PIN,
            USER_PIN,
            OTHER_PIN,
            WRONG_PIN,
            b"Ab1!cD2@e",
            b"Hello World 7!",
        ];
        assert_rv!(lib.logout(h), CKR_OK);
        assert_rv!(lib.login(h, CKU_USER, WRONG_PIN), CKR_PIN_INCORRECT);
        assert_rv!(lib.login(h, CKU_SO, WRONG_PIN), CKR_PIN_INCORRECT);
        assert_rv!(lib.login(h, CKU_SO, SO_PIN), CKR_OK);
        assert_rv!(lib.set_pin(h, SO_PIN, OTHER_PIN), CKR_OK);
        assert_rv!(lib.set_pin(h, OTHER_PIN, b"Ab1!cD2@e"), CKR_OK);
        assert_rv!(lib.init_pin(h, b"Hello World 7!"), CKR_OK);
        assert_rv!(lib.logout(h), CKR_OK);
        assert_rv!(lib.login(h, CKU_USER, b"Hello World 7!"), CKR_OK);
        // Reading the key material once more under the new User PIN: still the same bytes.
        let again = lib.find(h, &[(CKA_LABEL, A::S(b"aes256"))])[0];
        assert!(secrets
            .iter()
            .any(|(_, v)| *v == lib.attr(h, again, CKA_VALUE)));
        assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
        pins.sort();
        pins.dedup();

        // The scan: every file of the store, and the log.
        let mut files = files_under(&store_dir());
        let log_text = std::fs::read(&log).unwrap_or_default();
        assert!(
            !log_text.is_empty(),
            "the trace log is empty: the scan of it would prove nothing"
        );
        files.insert("module log".into(), log_text);
        let total: usize = files.values().map(Vec::len).sum();
        let mut found = Vec::new();
        let mut needles = 0;
        for (what, secret) in secrets
            .iter()
            .map(|(w, s)| (w.as_str(), s.as_slice()))
            .chain(pins.iter().map(|p| ("a PIN", *p)))
        {
            let windows: Vec<&[u8]> = if secret.len() > 16 {
                secret.windows(16).collect()
            } else {
                vec![secret]
            };
            needles += windows.len();
            for (name, bytes) in &files {
                if windows
                    .iter()
                    .any(|w| bytes.windows(w.len()).any(|b| b == *w))
                {
                    found.push(format!("{what} ({} bytes) in {name}", secret.len()));
                }
            }
        }
        eprintln!(
            "REPORT {NAME}: {} secrets and {} PINs, {needles} byte patterns, searched in {} files ({total} bytes, log included)",
            secrets.len(),
            pins.len(),
            files.len()
        );
        assert!(found.is_empty(), "secrets at rest: {found:#?}");
    });
}
