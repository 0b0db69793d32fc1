//! C_CreateObject of keys made elsewhere (EC, RSA, certificates), through the built `.so`:
//! the imported keys work and match what OpenSSL made.

// `call!` passes raw pointers to the module: that is what these tests are for.
#![allow(clippy::macro_metavars_in_unsafe)]

mod common;
use common::*;
use std::process::Command;
use A::{B, S, U};

const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The hex block after `name:` in `openssl rsa -text` output.
fn rsa_field(text: &str, name: &str) -> Vec<u8> {
    let start = text
        .find(&format!("{name}:"))
        .unwrap_or_else(|| panic!("{name} in {text}"));
    let rest = &text[start + name.len() + 1..];
    let block: String = rest
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .collect();
    let mut v = hex(&block);
    while v.len() > 1 && v[0] == 0 {
        v.remove(0);
    }
    v
}

fn verify(
    lib: &Lib,
    h: CK_SESSION_HANDLE,
    key: CK_OBJECT_HANDLE,
    mechanism: CK_MECHANISM_TYPE,
    data: &[u8],
    sig: &[u8],
) -> CK_RV {
    let mut m = CK_MECHANISM {
        mechanism,
        pParameter: std::ptr::null_mut(),
        ulParameterLen: 0,
    };
    assert_rv!(call!(lib, C_VerifyInit, h, &mut m, key), CKR_OK);
    call!(
        lib,
        C_Verify,
        h,
        data.as_ptr() as *mut u8,
        data.len() as CK_ULONG,
        sig.as_ptr() as *mut u8,
        sig.len() as CK_ULONG
    )
}

#[test]
fn ec_key_import_rfc6979_vector() {
    isolated("ec_key_import_rfc6979_vector", "", || {
        let lib = Lib::load();
        lib.init();
        lib.provision();
        let h = lib.user_session();
        // RFC 6979 A.2.5 (P-256).
        let d = hex("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721");
        let mut point = vec![4u8];
        point.extend(hex(
            "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6",
        ));
        point.extend(hex(
            "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299",
        ));
        let private = lib
            .create(
                h,
                &[
                    (CKA_CLASS, U(CKO_PRIVATE_KEY)),
                    (CKA_KEY_TYPE, U(CKK_EC)),
                    (CKA_EC_PARAMS, S(P256_PARAMS)),
                    (CKA_VALUE, S(&d)),
                    (CKA_TOKEN, B(true)),
                    (CKA_ID, S(b"\x69")),
                ],
            )
            .unwrap();
        // The public point as the spec's DER OCTET STRING and as the bare point.
        let mut der = vec![0x04, 0x41];
        der.extend_from_slice(&point);
        let public = lib
            .create(
                h,
                &[
                    (CKA_CLASS, U(CKO_PUBLIC_KEY)),
                    (CKA_KEY_TYPE, U(CKK_EC)),
                    (CKA_EC_PARAMS, S(P256_PARAMS)),
                    (CKA_EC_POINT, S(&der)),
                ],
            )
            .unwrap();
        let bare = lib
            .create(
                h,
                &[
                    (CKA_CLASS, U(CKO_PUBLIC_KEY)),
                    (CKA_KEY_TYPE, U(CKK_EC)),
                    (CKA_EC_PARAMS, S(P256_PARAMS)),
                    (CKA_EC_POINT, S(&point)),
                ],
            )
            .unwrap();
        assert_eq!(
            lib.attr(h, bare, CKA_EC_POINT),
            der,
            "stored as DER either way"
        );
        assert_eq!(
            lib.attr(h, private, CKA_PUBLIC_KEY_INFO),
            lib.attr(h, public, CKA_PUBLIC_KEY_INFO)
        );
        assert_eq!(lib.attr(h, private, CKA_LOCAL), [0]);
        assert_eq!(
            lib.attr_rv(h, private, CKA_VALUE).0,
            CKR_ATTRIBUTE_SENSITIVE
        );
        let sig = lib.sign(h, private, CKM_ECDSA_SHA256, b"sample");
        assert_rv!(
            verify(&lib, h, public, CKM_ECDSA_SHA256, b"sample", &sig),
            CKR_OK
        );
        assert_rv!(
            verify(&lib, h, bare, CKM_ECDSA_SHA256, b"sampla", &sig),
            CKR_SIGNATURE_INVALID
        );
        // A point off the curve, a scalar out of range, a curve we do not have.
        let mut off = der.clone();
        off[40] ^= 1;
        let bad_point = lib.create(
            h,
            &[
                (CKA_CLASS, U(CKO_PUBLIC_KEY)),
                (CKA_KEY_TYPE, U(CKK_EC)),
                (CKA_EC_PARAMS, S(P256_PARAMS)),
                (CKA_EC_POINT, S(&off)),
            ],
        );
        assert_eq!(bad_point, Err(CKR_ATTRIBUTE_VALUE_INVALID));
        let n = hex("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551");
        let bad_scalar = lib.create(
            h,
            &[
                (CKA_CLASS, U(CKO_PRIVATE_KEY)),
                (CKA_KEY_TYPE, U(CKK_EC)),
                (CKA_EC_PARAMS, S(P256_PARAMS)),
                (CKA_VALUE, S(&n)),
            ],
        );
        assert_eq!(bad_scalar, Err(CKR_ATTRIBUTE_VALUE_INVALID));
        let secp256k1 = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];
        let other = lib.create(
            h,
            &[
                (CKA_CLASS, U(CKO_PRIVATE_KEY)),
                (CKA_KEY_TYPE, U(CKK_EC)),
                (CKA_EC_PARAMS, S(&secp256k1)),
                (CKA_VALUE, S(&d)),
            ],
        );
        assert_eq!(other, Err(CKR_CURVE_NOT_SUPPORTED));
        // The imported token key survives the session and signs after a new login.
        assert_rv!(call!(lib, C_CloseAllSessions, lib.slot()), CKR_OK);
        let h = lib.user_session();
        let found = lib.find(h, &[(CKA_CLASS, U(CKO_PRIVATE_KEY)), (CKA_ID, S(b"\x69"))]);
        assert_eq!(found.len(), 1);
        let public = lib
            .create(
                h,
                &[
                    (CKA_CLASS, U(CKO_PUBLIC_KEY)),
                    (CKA_KEY_TYPE, U(CKK_EC)),
                    (CKA_EC_PARAMS, S(P256_PARAMS)),
                    (CKA_EC_POINT, S(&der)),
                ],
            )
            .unwrap();
        let sig = lib.sign(h, found[0], CKM_ECDSA_SHA256, b"sample");
        assert_rv!(
            verify(&lib, h, public, CKM_ECDSA_SHA256, b"sample", &sig),
            CKR_OK
        );
    });
}

#[test]
fn rsa_key_import_from_openssl() {
    isolated("rsa_key_import_from_openssl", "", || {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("k.pem").display().to_string();
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            &pem,
        ]);
        let text = String::from_utf8(openssl(&["rsa", "-in", &pem, "-text", "-noout"])).unwrap();
        let n = rsa_field(&text, "modulus");
        let d = rsa_field(&text, "privateExponent");
        let p = rsa_field(&text, "prime1");
        let q = rsa_field(&text, "prime2");
        let dp = rsa_field(&text, "exponent1");
        let dq = rsa_field(&text, "exponent2");
        let qinv = rsa_field(&text, "coefficient");
        let lib = Lib::load();
        lib.init();
        lib.provision();
        let h = lib.user_session();
        let key = lib
            .create(
                h,
                &[
                    (CKA_CLASS, U(CKO_PRIVATE_KEY)),
                    (CKA_KEY_TYPE, U(CKK_RSA)),
                    (CKA_MODULUS, S(&n)),
                    (CKA_PUBLIC_EXPONENT, S(&[1, 0, 1])),
                    (CKA_PRIVATE_EXPONENT, S(&d)),
                    (CKA_PRIME_1, S(&p)),
                    (CKA_PRIME_2, S(&q)),
                    (CKA_EXPONENT_1, S(&dp)),
                    (CKA_EXPONENT_2, S(&dq)),
                    (CKA_COEFFICIENT, S(&qinv)),
                ],
            )
            .unwrap();
        assert_eq!(lib.attr(h, key, CKA_MODULUS), n);
        assert_eq!(lib.attr(h, key, CKA_MODULUS_BITS), ul(2048));
        assert_eq!(lib.attr_rv(h, key, CKA_PRIME_1).0, CKR_ATTRIBUTE_SENSITIVE);
        // The token's SPKI is OpenSSL's.
        let spki = openssl(&["pkey", "-in", &pem, "-pubout", "-outform", "DER"]);
        assert_eq!(lib.attr(h, key, CKA_PUBLIC_KEY_INFO), spki);
        // PKCS#1 v1.5 is deterministic: the token's signature is OpenSSL's.
        let data = dir.path().join("data");
        std::fs::write(&data, b"payload").unwrap();
        let theirs = openssl(&[
            "dgst",
            "-sha256",
            "-sign",
            &pem,
            &data.display().to_string(),
        ]);
        assert_eq!(lib.sign(h, key, CKM_SHA256_RSA_PKCS, b"payload"), theirs);
        // A private exponent that does not fit the modulus is refused.
        let mut bad = d.clone();
        bad[10] ^= 0x40;
        let refused = lib.create(
            h,
            &[
                (CKA_CLASS, U(CKO_PRIVATE_KEY)),
                (CKA_KEY_TYPE, U(CKK_RSA)),
                (CKA_MODULUS, S(&n)),
                (CKA_PUBLIC_EXPONENT, S(&[1, 0, 1])),
                (CKA_PRIVATE_EXPONENT, S(&bad)),
                (CKA_PRIME_1, S(&p)),
                (CKA_PRIME_2, S(&q)),
                (CKA_EXPONENT_1, S(&dp)),
                (CKA_EXPONENT_2, S(&dq)),
                (CKA_COEFFICIENT, S(&qinv)),
            ],
        );
        assert_eq!(refused, Err(CKR_ATTRIBUTE_VALUE_INVALID));
        // Public half.
        let public = lib
            .create(
                h,
                &[
                    (CKA_CLASS, U(CKO_PUBLIC_KEY)),
                    (CKA_KEY_TYPE, U(CKK_RSA)),
                    (CKA_MODULUS, S(&n)),
                    (CKA_PUBLIC_EXPONENT, S(&[1, 0, 1])),
                ],
            )
            .unwrap();
        assert_rv!(
            verify(&lib, h, public, CKM_SHA256_RSA_PKCS, b"payload", &theirs),
            CKR_OK
        );
        assert_eq!(lib.attr(h, public, CKA_MODULUS_BITS), ul(2048));
    });
}

#[test]
fn certificates_are_stored_and_found() {
    isolated("certificates_are_stored_and_found", "", || {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.pem").display().to_string();
        let cert = dir.path().join("c.der").display().to_string();
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-subj",
            "/CN=key4c test",
            "-days",
            "1",
            "-outform",
            "DER",
            "-out",
            &cert,
        ]);
        let der = std::fs::read(&cert).unwrap();
        let subject = openssl(&[
            "x509", "-inform", "DER", "-in", &cert, "-noout", "-subject", "-nameopt", "RFC2253",
        ]);
        assert!(String::from_utf8_lossy(&subject).contains("CN=key4c test"));
        let lib = Lib::load();
        lib.init();
        lib.provision();
        let h = lib.user_session();
        // The subject as DER: the Name inside the certificate is what matters to finders;
        // any bytes are accepted, as PKCS#11 does not parse it.
        let c = lib
            .create(
                h,
                &[
                    (CKA_CLASS, U(CKO_CERTIFICATE)),
                    (CKA_CERTIFICATE_TYPE, U(CKC_X_509)),
                    (CKA_TOKEN, B(true)),
                    (
                        CKA_SUBJECT,
                        S(b"0\x151\x130\x11\x06\x03U\x04\x03\x0c\nkey4c test"),
                    ),
                    (CKA_ID, S(b"\x01")),
                    (CKA_LABEL, S(b"cert")),
                    (CKA_VALUE, S(&der)),
                ],
            )
            .unwrap();
        assert_eq!(
            lib.find(h, &[(CKA_CLASS, U(CKO_CERTIFICATE)), (CKA_ID, S(b"\x01"))]),
            vec![c]
        );
        assert_eq!(lib.attr(h, c, CKA_VALUE), der);
        assert_eq!(lib.attr(h, c, CKA_PRIVATE), [0]);
        assert_eq!(lib.attr(h, c, CKA_TRUSTED), [0]);
        assert_eq!(lib.attr(h, c, CKA_CERTIFICATE_CATEGORY), ul(0));
        // A certificate is public: a R/O public session sees it.
        assert_rv!(lib.logout(h), CKR_OK);
        let ro = lib.open(false).unwrap();
        assert_eq!(lib.find(ro, &[(CKA_LABEL, S(b"cert"))]), vec![c]);
        // Required attributes.
        assert_rv!(lib.login(ro, CKU_USER, USER_PIN), CKR_OK);
        let h = lib.open_rw();
        assert_eq!(
            lib.create(
                h,
                &[
                    (CKA_CLASS, U(CKO_CERTIFICATE)),
                    (CKA_CERTIFICATE_TYPE, U(CKC_X_509)),
                    (CKA_VALUE, S(&der))
                ]
            ),
            Err(CKR_TEMPLATE_INCOMPLETE)
        );
        assert_eq!(
            lib.create(
                h,
                &[
                    (CKA_CLASS, U(CKO_CERTIFICATE)),
                    (CKA_SUBJECT, S(b"x")),
                    (CKA_VALUE, S(&der))
                ]
            ),
            Err(CKR_TEMPLATE_INCOMPLETE)
        );
        assert_eq!(
            lib.create(
                h,
                &[
                    (CKA_CLASS, U(CKO_CERTIFICATE)),
                    (CKA_CERTIFICATE_TYPE, U(CKC_WTLS)),
                    (CKA_SUBJECT, S(b"x")),
                    (CKA_VALUE, S(&der))
                ]
            ),
            Err(CKR_ATTRIBUTE_VALUE_INVALID)
        );
    });
}
