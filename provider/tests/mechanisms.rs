//! Mechanisms through the built `.so`: key generation, signatures (checked by OpenSSL),
//! encryption, key wrapping and digests, with the exact return codes and the output rules
//! of PKCS#11 3.0 (sections 5.2, 5.8 to 5.14) and the key profile of spec section 6.

// `call!` passes raw pointers to the module: that is what these tests are for.
#![allow(clippy::macro_metavars_in_unsafe)]

mod common;
use common::*;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::path::PathBuf;
use std::process::Command;
use std::ptr::null_mut;
use A::{B, S, U};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
/// secp256k1: a well-formed curve OID the token does not support.
const SECP256K1: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];
const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const ED25519_NAME: &[u8] = b"\x13\x0cedwards25519";

/// SubjectPublicKeyInfo prefixes (up to the BIT STRING's unused-bits byte).
const SPKI_P256: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";
const SPKI_P384: &str = "3076301006072a8648ce3d020106052b81040022036200";
const SPKI_P521: &str = "30819b301006072a8648ce3d020106052b8104002303818600";
const SPKI_ED25519: &str = "302a300506032b6570032100";

/// DigestInfo prefix of SHA-256 (PKCS#1 v2.2 section 9.2 note 1).
const DIGEST_INFO_SHA256: &str = "3031300d060960864801650304020105000420";

const KEK: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31,
];
const MSG: &[u8] = b"The quick brown fox jumps over the lazy dog";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sha256(d: &[u8]) -> Vec<u8> {
    Sha256::digest(d).to_vec()
}

fn flip(v: &[u8], i: usize) -> Vec<u8> {
    let mut v = v.to_vec();
    v[i] ^= 0x01;
    v
}

/// A mechanism without parameters.
fn mech(ty: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: ty,
        pParameter: null_mut(),
        ulParameterLen: 0,
    }
}

/// A mechanism with a parameter structure (leaked: each test is its own short process).
fn mech_with<T: 'static>(ty: CK_MECHANISM_TYPE, param: T) -> CK_MECHANISM {
    let p: &'static mut T = Box::leak(Box::new(param));
    CK_MECHANISM {
        mechanism: ty,
        pParameter: p as *mut T as CK_VOID_PTR,
        ulParameterLen: std::mem::size_of::<T>() as CK_ULONG,
    }
}

fn leak(b: &[u8]) -> *mut u8 {
    Box::leak(b.to_vec().into_boxed_slice()).as_mut_ptr()
}

fn pss(
    hash: CK_MECHANISM_TYPE,
    mgf: CK_RSA_PKCS_MGF_TYPE,
    s_len: CK_ULONG,
) -> CK_RSA_PKCS_PSS_PARAMS {
    CK_RSA_PKCS_PSS_PARAMS {
        hashAlg: hash,
        mgf,
        sLen: s_len,
    }
}

fn oaep(label: &[u8]) -> CK_MECHANISM {
    mech_with(
        CKM_RSA_PKCS_OAEP,
        CK_RSA_PKCS_OAEP_PARAMS {
            hashAlg: CKM_SHA256,
            mgf: CKG_MGF1_SHA256,
            source: CKZ_DATA_SPECIFIED,
            pSourceData: leak(label) as CK_VOID_PTR,
            ulSourceDataLen: label.len() as CK_ULONG,
        },
    )
}

fn gcm(iv: &[u8], aad: &[u8], tag_bits: CK_ULONG) -> CK_MECHANISM {
    mech_with(
        CKM_AES_GCM,
        CK_GCM_PARAMS {
            pIv: leak(iv),
            ulIvLen: iv.len() as CK_ULONG,
            ulIvBits: 8 * iv.len() as CK_ULONG,
            pAAD: leak(aad),
            ulAADLen: aad.len() as CK_ULONG,
            ulTagBits: tag_bits,
        },
    )
}

fn cbc_pad(iv: [u8; 16]) -> CK_MECHANISM {
    mech_with(CKM_AES_CBC_PAD, iv)
}

fn p(d: &[u8]) -> *mut u8 {
    d.as_ptr() as *mut u8
}

fn n(d: &[u8]) -> CK_ULONG {
    d.len() as CK_ULONG
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

/// The output rules of a producing call whose result is `want` bytes: a length query and a
/// too-small buffer keep the operation, success ends it. Returns the output.
fn output_rules(mut f: impl FnMut(*mut u8, &mut CK_ULONG) -> CK_RV, want: usize) -> Vec<u8> {
    for _ in 0..2 {
        let mut len: CK_ULONG = 0;
        assert_rv!(f(null_mut(), &mut len), CKR_OK);
        assert_eq!(len as usize, want, "length query");
    }
    let mut small = vec![0u8; want - 1];
    let mut len = small.len() as CK_ULONG;
    assert_rv!(f(small.as_mut_ptr(), &mut len), CKR_BUFFER_TOO_SMALL);
    assert_eq!(len as usize, want, "length after CKR_BUFFER_TOO_SMALL");
    let mut out = vec![0u8; want + 7];
    let mut len = out.len() as CK_ULONG;
    assert_rv!(f(out.as_mut_ptr(), &mut len), CKR_OK);
    assert_eq!(len as usize, want, "length written");
    let mut len2 = out.len() as CK_ULONG;
    assert_rv!(
        f(out.as_mut_ptr(), &mut len2),
        CKR_OPERATION_NOT_INITIALIZED
    );
    out.truncate(want);
    out
}

fn sign_init(lib: &Lib, h: CK_SESSION_HANDLE, m: &CK_MECHANISM, key: CK_OBJECT_HANDLE) -> CK_RV {
    let mut m = *m;
    call!(lib, C_SignInit, h, &mut m, key)
}

fn sign(
    lib: &Lib,
    h: CK_SESSION_HANDLE,
    m: &CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
    data: &[u8],
) -> Vec<u8> {
    assert_rv!(sign_init(lib, h, m, key), CKR_OK);
    produce(|o, l| call!(lib, C_Sign, h, p(data), n(data), o, l))
        .unwrap_or_else(|rv| panic!("C_Sign: {}", ckr_name(rv)))
}

fn verify(
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

/// Token verification: the good signature, one flipped bit, a wrong length.
fn verify_all(
    lib: &Lib,
    h: CK_SESSION_HANDLE,
    m: &CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
    data: &[u8],
    sig: &[u8],
) {
    assert_rv!(verify(lib, h, m, key, data, sig), CKR_OK);
    assert_rv!(
        verify(lib, h, m, key, data, &flip(sig, sig.len() / 2)),
        CKR_SIGNATURE_INVALID
    );
    assert_rv!(
        verify(lib, h, m, key, data, &flip(sig, 0)),
        CKR_SIGNATURE_INVALID
    );
    assert_rv!(
        verify(lib, h, m, key, data, &sig[..sig.len() - 1]),
        CKR_SIGNATURE_LEN_RANGE
    );
    let mut longer = sig.to_vec();
    longer.push(0);
    assert_rv!(
        verify(lib, h, m, key, data, &longer),
        CKR_SIGNATURE_LEN_RANGE
    );
    let other: Vec<u8> = data.iter().map(|b| b ^ 0x20).collect();
    if !other.is_empty() {
        assert_rv!(verify(lib, h, m, key, &other, sig), CKR_SIGNATURE_INVALID);
    }
}

fn encrypt(
    lib: &Lib,
    h: CK_SESSION_HANDLE,
    m: &CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
    data: &[u8],
) -> Result<Vec<u8>, CK_RV> {
    let mut m = *m;
    match call!(lib, C_EncryptInit, h, &mut m, key) {
        CKR_OK => produce(|o, l| call!(lib, C_Encrypt, h, p(data), n(data), o, l)),
        rv => Err(rv),
    }
}

fn decrypt(
    lib: &Lib,
    h: CK_SESSION_HANDLE,
    m: &CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
    data: &[u8],
) -> Result<Vec<u8>, CK_RV> {
    let mut m = *m;
    match call!(lib, C_DecryptInit, h, &mut m, key) {
        CKR_OK => produce(|o, l| call!(lib, C_Decrypt, h, p(data), n(data), o, l)),
        rv => Err(rv),
    }
}

fn gen_pair(
    lib: &Lib,
    h: CK_SESSION_HANDLE,
    ty: CK_MECHANISM_TYPE,
    public: &[(CK_ATTRIBUTE_TYPE, A)],
    private: &[(CK_ATTRIBUTE_TYPE, A)],
) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE), CK_RV> {
    let mut m = mech(ty);
    let mut pt = Tpl::new(public);
    let mut st = Tpl::new(private);
    let (mut pubk, mut privk) = (0, 0);
    match call!(
        lib,
        C_GenerateKeyPair,
        h,
        &mut m,
        pt.ptr(),
        pt.len(),
        st.ptr(),
        st.len(),
        &mut pubk,
        &mut privk
    ) {
        CKR_OK => Ok((pubk, privk)),
        rv => Err(rv),
    }
}

fn gen_key(
    lib: &Lib,
    h: CK_SESSION_HANDLE,
    ty: CK_MECHANISM_TYPE,
    items: &[(CK_ATTRIBUTE_TYPE, A)],
) -> Result<CK_OBJECT_HANDLE, CK_RV> {
    let mut m = mech(ty);
    let mut t = Tpl::new(items);
    let mut k = 0;
    match call!(lib, C_GenerateKey, h, &mut m, t.ptr(), t.len(), &mut k) {
        CKR_OK => Ok(k),
        rv => Err(rv),
    }
}

fn ec_pair(lib: &Lib, h: CK_SESSION_HANDLE, params: &[u8]) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    gen_pair(
        lib,
        h,
        CKM_EC_KEY_PAIR_GEN,
        &[(CKA_EC_PARAMS, S(params))],
        &[],
    )
    .unwrap_or_else(|rv| panic!("EC key pair: {}", ckr_name(rv)))
}

fn ed_pair(lib: &Lib, h: CK_SESSION_HANDLE, params: &[u8]) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    gen_pair(
        lib,
        h,
        CKM_EC_EDWARDS_KEY_PAIR_GEN,
        &[(CKA_EC_PARAMS, S(params))],
        &[],
    )
    .unwrap_or_else(|rv| panic!("Ed25519 key pair: {}", ckr_name(rv)))
}

fn rsa_pair(
    lib: &Lib,
    h: CK_SESSION_HANDLE,
    private: &[(CK_ATTRIBUTE_TYPE, A)],
) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    gen_pair(
        lib,
        h,
        CKM_RSA_PKCS_KEY_PAIR_GEN,
        &[
            (CKA_MODULUS_BITS, U(2048)),
            (CKA_PUBLIC_EXPONENT, S(&[1, 0, 1])),
        ],
        private,
    )
    .unwrap_or_else(|rv| panic!("RSA key pair: {}", ckr_name(rv)))
}

/// A session secret key with known bytes, readable (non-sensitive, extractable).
fn known_secret(
    lib: &Lib,
    h: CK_SESSION_HANDLE,
    key_type: CK_KEY_TYPE,
    value: &[u8],
    extra: &[(CK_ATTRIBUTE_TYPE, A)],
) -> CK_OBJECT_HANDLE {
    let mut items = vec![
        (CKA_CLASS, U(CKO_SECRET_KEY)),
        (CKA_KEY_TYPE, U(key_type)),
        (CKA_VALUE, S(value)),
        (CKA_SENSITIVE, B(false)),
        (CKA_EXTRACTABLE, B(true)),
    ];
    for (t, a) in extra {
        let a = match a {
            U(u) => U(*u),
            B(b) => B(*b),
            S(s) => S(s),
        };
        items.retain(|(ty, _)| ty != t);
        items.push((*t, a));
    }
    lib.create(h, &items)
        .unwrap_or_else(|rv| panic!("C_CreateObject secret: {}", ckr_name(rv)))
}

/// An initialised, provisioned token with a User R/W session.
fn ready() -> (Lib, CK_SESSION_HANDLE) {
    let lib = Lib::load();
    lib.init();
    lib.provision();
    let h = lib.user_session();
    (lib, h)
}

/// A scratch directory for OpenSSL.
struct Ossl {
    dir: tempfile::TempDir,
}

impl Ossl {
    fn new() -> Ossl {
        Ossl {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.path(name), bytes).expect("write file");
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).expect("read file")
    }

    /// Runs openssl in the scratch directory: (success, stdout, stderr).
    fn run(&self, args: &[&str]) -> (bool, Vec<u8>, String) {
        let out = Command::new("/usr/bin/openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("run openssl");
        (
            out.status.success(),
            out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> Vec<u8> {
        let (ok, out, err) = self.run(args);
        assert!(
            ok,
            "openssl {args:?} failed:\n{}\n{err}",
            String::from_utf8_lossy(&out)
        );
        out
    }

    /// Writes `name`.pem from a SubjectPublicKeyInfo (and checks OpenSSL parses it).
    fn public_key(&self, name: &str, spki: &[u8]) -> String {
        let der = format!("{name}.der");
        let pem = format!("{name}.pem");
        self.write(&der, spki);
        self.ok(&[
            "pkey", "-pubin", "-inform", "DER", "-in", &der, "-out", &pem,
        ]);
        pem
    }

    fn public_key_of(&self, lib: &Lib, h: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> String {
        self.public_key("pub", &lib.attr(h, key, CKA_PUBLIC_KEY_INFO))
    }

    /// `openssl dgst -<hash> -verify` of a message (extra options before the file).
    fn dgst_verify(&self, pem: &str, hash: &str, data: &[u8], sig: &[u8], opts: &[&str]) -> bool {
        self.write("data.bin", data);
        self.write("sig.bin", sig);
        let mut args = vec!["dgst", hash, "-verify", pem, "-signature", "sig.bin"];
        args.extend_from_slice(opts);
        args.push("data.bin");
        let (ok, out, _) = self.run(&args);
        ok && String::from_utf8_lossy(&out).contains("Verified OK")
    }

    /// `openssl pkeyutl -verify` of a raw input (a hash, or a message with -rawin).
    fn pkeyutl_verify(&self, pem: &str, input: &[u8], sig: &[u8], opts: &[&str]) -> bool {
        self.write("in.bin", input);
        self.write("sig.bin", sig);
        let mut args = vec!["pkeyutl", "-verify", "-pubin", "-inkey", pem];
        args.extend_from_slice(opts);
        args.extend_from_slice(&["-in", "in.bin", "-sigfile", "sig.bin"]);
        let (ok, out, _) = self.run(&args);
        ok && String::from_utf8_lossy(&out).contains("Signature Verified Successfully")
    }
}

fn der_len(n: usize) -> Vec<u8> {
    match n {
        0..=127 => vec![n as u8],
        128..=255 => vec![0x81, n as u8],
        _ => vec![0x82, (n >> 8) as u8, n as u8],
    }
}

fn der_int(v: &[u8]) -> Vec<u8> {
    let mut v: &[u8] = v;
    while v.len() > 1 && v[0] == 0 {
        v = &v[1..];
    }
    let mut body = Vec::new();
    if v[0] & 0x80 != 0 {
        body.push(0);
    }
    body.extend_from_slice(v);
    let mut out = vec![0x02];
    out.extend(der_len(body.len()));
    out.extend(body);
    out
}

/// Raw r‖s (CKM_ECDSA output) as the DER Ecdsa-Sig-Value OpenSSL reads.
fn ecdsa_der(sig: &[u8]) -> Vec<u8> {
    let (r, s) = sig.split_at(sig.len() / 2);
    let mut body = der_int(r);
    body.extend(der_int(s));
    let mut out = vec![0x30];
    out.extend(der_len(body.len()));
    out.extend(body);
    out
}

/// A big-endian number shifted right by 7 bits (same length).
fn shift_right_7(v: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; v.len()];
    for i in (0..v.len()).rev() {
        let prev = if i == 0 { 0 } else { v[i - 1] };
        out[i] = (v[i] >> 7) | (prev << 1);
    }
    out
}

fn boolean(lib: &Lib, h: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> bool {
    match lib.attr(h, o, ty).as_slice() {
        [0] => false,
        [1] => true,
        other => panic!("attribute 0x{ty:x} is not a CK_BBOOL: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// 1. Key generation
// ---------------------------------------------------------------------------------------

/// What every generated key pair carries (PKCS#11 3.0 section 4.8 / 4.9 footnotes; spec 6).
fn check_generated_pair(
    lib: &Lib,
    h: CK_SESSION_HANDLE,
    public: CK_OBJECT_HANDLE,
    private: CK_OBJECT_HANDLE,
    mechanism: CK_MECHANISM_TYPE,
) {
    for o in [public, private] {
        assert!(boolean(lib, h, o, CKA_LOCAL));
        assert_eq!(lib.attr(h, o, CKA_KEY_GEN_MECHANISM), ul(mechanism));
        assert!(!boolean(lib, h, o, CKA_TOKEN));
    }
    assert_eq!(lib.attr(h, public, CKA_CLASS), ul(CKO_PUBLIC_KEY));
    assert_eq!(lib.attr(h, private, CKA_CLASS), ul(CKO_PRIVATE_KEY));
    assert!(!boolean(lib, h, public, CKA_PRIVATE));
    assert!(boolean(lib, h, private, CKA_PRIVATE));
    assert!(boolean(lib, h, private, CKA_SENSITIVE));
    assert!(!boolean(lib, h, private, CKA_EXTRACTABLE));
    assert!(boolean(lib, h, private, CKA_ALWAYS_SENSITIVE));
    assert!(boolean(lib, h, private, CKA_NEVER_EXTRACTABLE));
    assert!(boolean(lib, h, private, CKA_SIGN));
    assert!(boolean(lib, h, public, CKA_VERIFY));
    // Both halves share one CKA_ID; the public key info is the same on both.
    let id = lib.attr(h, public, CKA_ID);
    assert!(!id.is_empty());
    assert_eq!(lib.attr(h, private, CKA_ID), id);
    assert_eq!(
        lib.attr(h, private, CKA_PUBLIC_KEY_INFO),
        lib.attr(h, public, CKA_PUBLIC_KEY_INFO)
    );
}

#[test]
fn keygen_ec_curves() {
    isolated("keygen_ec_curves", "", || {
        let (lib, h) = ready();
        let ossl = Ossl::new();
        for (params, spki_prefix, point_prefix, field) in [
            (P256, SPKI_P256, "044104", 32),
            (P384, SPKI_P384, "046104", 48),
            (P521, SPKI_P521, "04818504", 66),
        ] {
            let (public, private) = ec_pair(&lib, h, params);
            check_generated_pair(&lib, h, public, private, CKM_EC_KEY_PAIR_GEN);
            assert_eq!(lib.attr(h, public, CKA_KEY_TYPE), ul(CKK_EC));
            assert_eq!(lib.attr(h, private, CKA_KEY_TYPE), ul(CKK_EC));
            assert_eq!(lib.attr(h, public, CKA_EC_PARAMS), params);
            assert_eq!(lib.attr(h, private, CKA_EC_PARAMS), params);
            // CKA_EC_POINT: DER OCTET STRING of the uncompressed point.
            let point = lib.attr(h, public, CKA_EC_POINT);
            assert!(hex(&point).starts_with(point_prefix), "{}", hex(&point));
            let raw = &point[point.len() - (1 + 2 * field)..];
            assert_eq!(raw[0], 0x04);
            assert_eq!(point.len(), point_prefix.len() / 2 - 1 + 2 * field + 1);
            // CKA_PUBLIC_KEY_INFO: the SPKI of that point, which OpenSSL reads.
            let spki = lib.attr(h, public, CKA_PUBLIC_KEY_INFO);
            assert_eq!(hex(&spki), format!("{spki_prefix}{}", hex(raw)));
            ossl.public_key("ec", &spki);
            // The generated CKA_ID: SHA-1 of the SPKI.
            assert_eq!(lib.attr(h, public, CKA_ID), Sha1::digest(&spki).to_vec());
            // The private value never leaves.
            assert_eq!(
                lib.attr_rv(h, private, CKA_VALUE).0,
                CKR_ATTRIBUTE_SENSITIVE
            );
        }
        // A CKA_ID given (in either template) is kept, and shared.
        let (public, private) = gen_pair(
            &lib,
            h,
            CKM_EC_KEY_PAIR_GEN,
            &[(CKA_EC_PARAMS, S(P256))],
            &[(CKA_ID, S(b"my-key-1")), (CKA_LABEL, S(b"signer"))],
        )
        .unwrap();
        assert_eq!(lib.attr(h, public, CKA_ID), b"my-key-1");
        assert_eq!(lib.attr(h, private, CKA_ID), b"my-key-1");
        assert_eq!(lib.attr(h, private, CKA_LABEL), b"signer");
        let (public, private) = gen_pair(
            &lib,
            h,
            CKM_EC_KEY_PAIR_GEN,
            &[(CKA_EC_PARAMS, S(P384)), (CKA_ID, S(&[9, 9]))],
            &[(CKA_ID, S(&[9, 9]))],
        )
        .unwrap();
        assert_eq!(lib.attr(h, public, CKA_ID), [9, 9]);
        assert_eq!(lib.attr(h, private, CKA_ID), [9, 9]);
        // A generated key asked to be extractable / not sensitive was not always so.
        let (_, private) = gen_pair(
            &lib,
            h,
            CKM_EC_KEY_PAIR_GEN,
            &[(CKA_EC_PARAMS, S(P256))],
            &[(CKA_SENSITIVE, B(false)), (CKA_EXTRACTABLE, B(true))],
        )
        .unwrap();
        assert!(!boolean(&lib, h, private, CKA_ALWAYS_SENSITIVE));
        assert!(!boolean(&lib, h, private, CKA_NEVER_EXTRACTABLE));
        assert_eq!(lib.attr(h, private, CKA_VALUE).len(), 32);
    });
}

#[test]
fn keygen_rsa_2048() {
    isolated("keygen_rsa_2048", "", || {
        let (lib, h) = ready();
        let (public, private) = rsa_pair(&lib, h, &[]);
        check_generated_pair(&lib, h, public, private, CKM_RSA_PKCS_KEY_PAIR_GEN);
        assert_eq!(lib.attr(h, public, CKA_KEY_TYPE), ul(CKK_RSA));
        let modulus = lib.attr(h, public, CKA_MODULUS);
        assert_eq!(modulus.len(), 256);
        assert!(modulus[0] & 0x80 != 0);
        assert!(modulus[255] & 1 == 1);
        assert_eq!(lib.attr(h, public, CKA_PUBLIC_EXPONENT), [1, 0, 1]);
        assert_eq!(lib.attr(h, public, CKA_MODULUS_BITS), ul(2048));
        assert_eq!(lib.attr(h, private, CKA_MODULUS), modulus);
        assert_eq!(lib.attr(h, private, CKA_PUBLIC_EXPONENT), [1, 0, 1]);
        for ty in [
            CKA_PRIVATE_EXPONENT,
            CKA_PRIME_1,
            CKA_PRIME_2,
            CKA_COEFFICIENT,
        ] {
            assert_eq!(lib.attr_rv(h, private, ty).0, CKR_ATTRIBUTE_SENSITIVE);
        }
        // RSA keys do everything by default.
        assert!(boolean(&lib, h, public, CKA_ENCRYPT));
        assert!(boolean(&lib, h, private, CKA_DECRYPT));
        // The SPKI carries that modulus.
        let ossl = Ossl::new();
        let spki = lib.attr(h, public, CKA_PUBLIC_KEY_INFO);
        ossl.write("rsa.der", &spki);
        let out = ossl.ok(&[
            "rsa", "-pubin", "-inform", "DER", "-in", "rsa.der", "-noout", "-modulus",
        ]);
        assert_eq!(
            String::from_utf8_lossy(&out).trim(),
            format!("Modulus={}", hex(&modulus).to_uppercase())
        );
        assert_eq!(lib.attr(h, public, CKA_ID), Sha1::digest(&spki).to_vec());
        // 3072 bits, default exponent (65537).
        let (public, private) = gen_pair(
            &lib,
            h,
            CKM_RSA_PKCS_KEY_PAIR_GEN,
            &[(CKA_MODULUS_BITS, U(3072))],
            &[],
        )
        .unwrap();
        assert_eq!(lib.attr(h, public, CKA_MODULUS).len(), 384);
        assert_eq!(lib.attr(h, private, CKA_MODULUS_BITS), ul(3072));
        assert_eq!(lib.attr(h, public, CKA_PUBLIC_EXPONENT), [1, 0, 1]);
        let m = mech(CKM_SHA256_RSA_PKCS);
        let sig = sign(&lib, h, &m, private, MSG);
        assert_eq!(sig.len(), 384);
        let pem = ossl.public_key_of(&lib, h, public);
        assert!(ossl.dgst_verify(&pem, "-sha256", MSG, &sig, &[]));
    });
}

#[test]
fn keygen_ed25519_both_param_forms() {
    isolated("keygen_ed25519_both_param_forms", "", || {
        let (lib, h) = ready();
        let ossl = Ossl::new();
        for params in [ED25519_OID, ED25519_NAME] {
            let (public, private) = ed_pair(&lib, h, params);
            check_generated_pair(&lib, h, public, private, CKM_EC_EDWARDS_KEY_PAIR_GEN);
            assert_eq!(lib.attr(h, public, CKA_KEY_TYPE), ul(CKK_EC_EDWARDS));
            assert_eq!(lib.attr(h, public, CKA_EC_PARAMS), params);
            let point = lib.attr(h, public, CKA_EC_POINT);
            assert_eq!(point.len(), 34);
            assert_eq!(point[..2], [0x04, 0x20]);
            let spki = lib.attr(h, public, CKA_PUBLIC_KEY_INFO);
            assert_eq!(hex(&spki), format!("{SPKI_ED25519}{}", hex(&point[2..])));
            ossl.public_key("ed", &spki);
            assert_eq!(
                lib.attr_rv(h, private, CKA_VALUE).0,
                CKR_ATTRIBUTE_SENSITIVE
            );
        }
    });
}

#[test]
fn keygen_secret_keys() {
    isolated("keygen_secret_keys", "", || {
        let (lib, h) = ready();
        for len in [16, 24, 32] {
            let k = gen_key(&lib, h, CKM_AES_KEY_GEN, &[(CKA_VALUE_LEN, U(len))]).unwrap();
            assert_eq!(lib.attr(h, k, CKA_CLASS), ul(CKO_SECRET_KEY));
            assert_eq!(lib.attr(h, k, CKA_KEY_TYPE), ul(CKK_AES));
            assert_eq!(lib.attr(h, k, CKA_VALUE_LEN), ul(len));
            assert!(boolean(&lib, h, k, CKA_LOCAL));
            assert_eq!(lib.attr(h, k, CKA_KEY_GEN_MECHANISM), ul(CKM_AES_KEY_GEN));
            assert!(boolean(&lib, h, k, CKA_PRIVATE));
            assert!(boolean(&lib, h, k, CKA_SENSITIVE));
            assert!(!boolean(&lib, h, k, CKA_EXTRACTABLE));
            assert!(boolean(&lib, h, k, CKA_ALWAYS_SENSITIVE));
            assert!(boolean(&lib, h, k, CKA_NEVER_EXTRACTABLE));
            assert!(boolean(&lib, h, k, CKA_ENCRYPT));
            assert_eq!(lib.attr_rv(h, k, CKA_VALUE).0, CKR_ATTRIBUTE_SENSITIVE);
        }
        let g = gen_key(
            &lib,
            h,
            CKM_GENERIC_SECRET_KEY_GEN,
            &[(CKA_VALUE_LEN, U(32))],
        )
        .unwrap();
        assert_eq!(lib.attr(h, g, CKA_KEY_TYPE), ul(CKK_GENERIC_SECRET));
        assert_eq!(lib.attr(h, g, CKA_VALUE_LEN), ul(32));
        assert_eq!(
            lib.attr(h, g, CKA_KEY_GEN_MECHANISM),
            ul(CKM_GENERIC_SECRET_KEY_GEN)
        );
        assert!(boolean(&lib, h, g, CKA_LOCAL));
        assert!(boolean(&lib, h, g, CKA_ALWAYS_SENSITIVE));
        assert!(boolean(&lib, h, g, CKA_NEVER_EXTRACTABLE));
        assert!(boolean(&lib, h, g, CKA_SIGN));
        // Readable when asked: random, of the length asked, and not "always sensitive".
        let a = gen_key(
            &lib,
            h,
            CKM_AES_KEY_GEN,
            &[
                (CKA_VALUE_LEN, U(16)),
                (CKA_SENSITIVE, B(false)),
                (CKA_EXTRACTABLE, B(true)),
            ],
        )
        .unwrap();
        let b = gen_key(
            &lib,
            h,
            CKM_AES_KEY_GEN,
            &[
                (CKA_VALUE_LEN, U(16)),
                (CKA_SENSITIVE, B(false)),
                (CKA_EXTRACTABLE, B(true)),
            ],
        )
        .unwrap();
        let (va, vb) = (lib.attr(h, a, CKA_VALUE), lib.attr(h, b, CKA_VALUE));
        assert_eq!(va.len(), 16);
        assert_ne!(va, vb);
        assert!(!boolean(&lib, h, a, CKA_ALWAYS_SENSITIVE));
        assert!(!boolean(&lib, h, a, CKA_NEVER_EXTRACTABLE));
    });
}

#[test]
fn keygen_errors() {
    isolated("keygen_errors", "", || {
        let lib = Lib::load();
        lib.init();
        lib.provision();
        // Without a login, no key is generated.
        let h = lib.open_rw();
        assert_eq!(
            gen_pair(
                &lib,
                h,
                CKM_EC_KEY_PAIR_GEN,
                &[(CKA_EC_PARAMS, S(P256))],
                &[]
            ),
            Err(CKR_USER_NOT_LOGGED_IN)
        );
        assert_eq!(
            gen_key(&lib, h, CKM_AES_KEY_GEN, &[(CKA_VALUE_LEN, U(32))]),
            Err(CKR_USER_NOT_LOGGED_IN)
        );
        assert_rv!(lib.login(h, CKU_USER, USER_PIN), CKR_OK);
        assert_eq!(
            gen_pair(
                &lib,
                h,
                CKM_RSA_PKCS_KEY_PAIR_GEN,
                &[(CKA_MODULUS_BITS, U(1024))],
                &[]
            ),
            Err(CKR_KEY_SIZE_RANGE)
        );
        assert_eq!(
            gen_pair(
                &lib,
                h,
                CKM_EC_KEY_PAIR_GEN,
                &[(CKA_EC_PARAMS, S(SECP256K1))],
                &[]
            ),
            Err(CKR_CURVE_NOT_SUPPORTED)
        );
        assert_eq!(
            gen_pair(&lib, h, CKM_EC_KEY_PAIR_GEN, &[(CKA_VERIFY, B(true))], &[]),
            Err(CKR_TEMPLATE_INCOMPLETE)
        );
        assert_eq!(
            gen_pair(
                &lib,
                h,
                CKM_EC_EDWARDS_KEY_PAIR_GEN,
                &[(CKA_EC_PARAMS, S(P256))],
                &[]
            ),
            Err(CKR_CURVE_NOT_SUPPORTED)
        );
        // An AES key of 15 bytes: the value length is not one AES has.
        assert_eq!(
            gen_key(&lib, h, CKM_AES_KEY_GEN, &[(CKA_VALUE_LEN, U(15))]),
            Err(CKR_ATTRIBUTE_VALUE_INVALID)
        );
        assert_eq!(
            gen_key(&lib, h, CKM_AES_KEY_GEN, &[]),
            Err(CKR_TEMPLATE_INCOMPLETE)
        );
        // A key-pair mechanism is no C_GenerateKey mechanism, and the other way round.
        assert_eq!(
            gen_key(&lib, h, CKM_EC_KEY_PAIR_GEN, &[(CKA_VALUE_LEN, U(32))]),
            Err(CKR_MECHANISM_INVALID)
        );
        assert_eq!(
            gen_pair(&lib, h, CKM_AES_KEY_GEN, &[(CKA_EC_PARAMS, S(P256))], &[]),
            Err(CKR_MECHANISM_INVALID)
        );
        // Nothing half-made was left behind.
        assert!(lib.find(h, &[(CKA_CLASS, U(CKO_PUBLIC_KEY))]).is_empty());
        assert!(lib.find(h, &[(CKA_CLASS, U(CKO_SECRET_KEY))]).is_empty());
    });
}

// ---------------------------------------------------------------------------------------
// 2. Signatures, verified by OpenSSL
// ---------------------------------------------------------------------------------------

#[test]
fn ecdsa_signatures_verify_with_openssl() {
    isolated("ecdsa_signatures_verify_with_openssl", "", || {
        let (lib, h) = ready();
        let ossl = Ossl::new();
        for (params, field, m, dgst) in [
            (P256, 32, CKM_ECDSA_SHA256, "-sha256"),
            (P384, 48, CKM_ECDSA_SHA384, "-sha384"),
            (P521, 66, CKM_ECDSA_SHA512, "-sha512"),
        ] {
            let (public, private) = ec_pair(&lib, h, params);
            let pem = ossl.public_key_of(&lib, h, public);
            // CKM_ECDSA: the input is a hash; SHA-256 on every curve, plus a longer input
            // than the order (truncated) and, on P-521, one of 66 bytes.
            let mut inputs = vec![sha256(MSG), Sha512::digest(MSG).to_vec()];
            if field == 66 {
                // 66 bytes, of which P-521 uses the leftmost 521 bits (the input >> 7).
                // `openssl pkeyutl` takes at most 64 bytes: with the 9 top bits clear, that
                // integer fits in 64 bytes, which OpenSSL then uses as they are.
                let mut long: Vec<u8> = (0..66u8).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
                long[0] = 0;
                long[1] &= 0x7f;
                inputs.push(long);
            }
            for input in inputs {
                let raw = mech(CKM_ECDSA);
                let sig = sign(&lib, h, &raw, private, &input);
                assert_eq!(sig.len(), 2 * field);
                let for_openssl = if input.len() == 66 {
                    shift_right_7(&input)[2..].to_vec()
                } else {
                    input.clone()
                };
                assert!(
                    ossl.pkeyutl_verify(&pem, &for_openssl, &ecdsa_der(&sig), &[]),
                    "CKM_ECDSA, {}-byte input, field {field}",
                    input.len()
                );
                verify_all(&lib, h, &raw, public, &input, &sig);
            }
            // CKM_ECDSA_SHAx over a message.
            let m = mech(m);
            let sig = sign(&lib, h, &m, private, MSG);
            assert_eq!(sig.len(), 2 * field);
            assert!(ossl.dgst_verify(&pem, dgst, MSG, &ecdsa_der(&sig), &[]));
            // OpenSSL does not accept just anything.
            assert!(!ossl.dgst_verify(&pem, dgst, MSG, &ecdsa_der(&flip(&sig, 3)), &[]));
            verify_all(&lib, h, &m, public, MSG, &sig);
            // ECDSA is randomised: two signatures differ, both verify.
            let again = sign(&lib, h, &m, private, MSG);
            assert_ne!(again, sig);
            assert_rv!(verify(&lib, h, &m, public, MSG, &again), CKR_OK);
        }
        // An empty message is a message.
        let (public, private) = ec_pair(&lib, h, P256);
        let m = mech(CKM_ECDSA_SHA256);
        let sig = sign(&lib, h, &m, private, b"");
        assert!(ossl.dgst_verify(
            &ossl.public_key_of(&lib, h, public),
            "-sha256",
            b"",
            &ecdsa_der(&sig),
            &[]
        ));
        assert_rv!(verify(&lib, h, &m, public, b"", &sig), CKR_OK);
    });
}

#[test]
fn rsa_signatures_verify_with_openssl() {
    isolated("rsa_signatures_verify_with_openssl", "", || {
        let (lib, h) = ready();
        let ossl = Ossl::new();
        let (public, private) = rsa_pair(&lib, h, &[]);
        let pem = ossl.public_key_of(&lib, h, public);
        for (m, dgst) in [
            (CKM_SHA256_RSA_PKCS, "-sha256"),
            (CKM_SHA384_RSA_PKCS, "-sha384"),
            (CKM_SHA512_RSA_PKCS, "-sha512"),
        ] {
            let m = mech(m);
            let sig = sign(&lib, h, &m, private, MSG);
            assert_eq!(sig.len(), 256);
            assert!(ossl.dgst_verify(&pem, dgst, MSG, &sig, &[]), "{dgst}");
            // PKCS#1 v1.5 is deterministic.
            assert_eq!(sign(&lib, h, &m, private, MSG), sig);
            verify_all(&lib, h, &m, public, MSG, &sig);
        }
        // CKM_RSA_PKCS over a DigestInfo: OpenSSL recovers exactly that DigestInfo.
        let digest_info = [unhex(DIGEST_INFO_SHA256), sha256(MSG)].concat();
        let raw = mech(CKM_RSA_PKCS);
        let sig = sign(&lib, h, &raw, private, &digest_info);
        assert_eq!(sig.len(), 256);
        ossl.write("sig.bin", &sig);
        let recovered = ossl.ok(&[
            "pkeyutl",
            "-verifyrecover",
            "-pubin",
            "-inkey",
            &pem,
            "-in",
            "sig.bin",
        ]);
        assert_eq!(recovered, digest_info);
        // ... which is the CKM_SHA256_RSA_PKCS signature of the message.
        assert_eq!(sign(&lib, h, &mech(CKM_SHA256_RSA_PKCS), private, MSG), sig);
        verify_all(&lib, h, &raw, public, &digest_info, &sig);
        // PSS, salt 32, over the message and over its hash.
        let m = mech_with(
            CKM_SHA256_RSA_PKCS_PSS,
            pss(CKM_SHA256, CKG_MGF1_SHA256, 32),
        );
        let sig = sign(&lib, h, &m, private, MSG);
        assert_eq!(sig.len(), 256);
        let pss_opts = [
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:32",
        ];
        assert!(ossl.dgst_verify(&pem, "-sha256", MSG, &sig, &pss_opts));
        // Salt 32 exactly: OpenSSL refuses it as salt 20.
        assert!(!ossl.dgst_verify(
            &pem,
            "-sha256",
            MSG,
            &sig,
            &[
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:20"
            ]
        ));
        assert_ne!(sign(&lib, h, &m, private, MSG), sig, "PSS is randomised");
        verify_all(&lib, h, &m, public, MSG, &sig);
        let m = mech_with(CKM_RSA_PKCS_PSS, pss(CKM_SHA256, CKG_MGF1_SHA256, 32));
        let hash = sha256(MSG);
        let sig = sign(&lib, h, &m, private, &hash);
        assert!(ossl.pkeyutl_verify(
            &pem,
            &hash,
            &sig,
            &[
                "-pkeyopt",
                "digest:sha256",
                "-pkeyopt",
                "rsa_padding_mode:pss",
                "-pkeyopt",
                "rsa_pss_saltlen:32"
            ]
        ));
        assert!(ossl.dgst_verify(&pem, "-sha256", MSG, &sig, &pss_opts));
        verify_all(&lib, h, &m, public, &hash, &sig);
        // CKM_RSA_PKCS_PSS takes a hash of the parameters' length only.
        assert_rv!(sign_init(&lib, h, &m, private), CKR_OK);
        let mut len = 512;
        let mut out = vec![0u8; 512];
        assert_rv!(
            call!(lib, C_Sign, h, p(MSG), n(MSG), out.as_mut_ptr(), &mut len),
            CKR_DATA_LEN_RANGE
        );
        assert_rv!(
            call!(
                lib,
                C_Sign,
                h,
                p(&hash),
                n(&hash),
                out.as_mut_ptr(),
                &mut len
            ),
            CKR_OPERATION_NOT_INITIALIZED
        );
    });
}

#[test]
fn eddsa_signatures_verify_with_openssl() {
    isolated("eddsa_signatures_verify_with_openssl", "", || {
        let (lib, h) = ready();
        let ossl = Ossl::new();
        for params in [ED25519_OID, ED25519_NAME] {
            let (public, private) = ed_pair(&lib, h, params);
            let pem = ossl.public_key_of(&lib, h, public);
            let m = mech(CKM_EDDSA);
            for data in [MSG, b"".as_slice(), &[0x5au8; 1000]] {
                let sig = sign(&lib, h, &m, private, data);
                assert_eq!(sig.len(), 64);
                // (OpenSSL 3.0's pkeyutl cannot read an empty -rawin input.)
                if !data.is_empty() {
                    assert!(ossl.pkeyutl_verify(&pem, data, &sig, &["-rawin"]));
                }
                // Ed25519 is deterministic.
                assert_eq!(sign(&lib, h, &m, private, data), sig);
                verify_all(&lib, h, &m, public, data, &sig);
            }
        }
        // RFC 8032 section 7.1, tests 1 (empty message) and 2, with imported keys.
        for (seed, public_key, data, want) in [
            (
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                "",
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
                 5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
            ),
            (
                "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
                "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
                "72",
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
                 085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
            ),
        ] {
            let private = lib
                .create(
                    h,
                    &[
                        (CKA_CLASS, U(CKO_PRIVATE_KEY)),
                        (CKA_KEY_TYPE, U(CKK_EC_EDWARDS)),
                        (CKA_EC_PARAMS, S(ED25519_OID)),
                        (CKA_VALUE, S(&unhex(seed))),
                    ],
                )
                .unwrap();
            let point = [&[0x04, 0x20][..], &unhex(public_key)].concat();
            let public = lib
                .create(
                    h,
                    &[
                        (CKA_CLASS, U(CKO_PUBLIC_KEY)),
                        (CKA_KEY_TYPE, U(CKK_EC_EDWARDS)),
                        (CKA_EC_PARAMS, S(ED25519_NAME)),
                        (CKA_EC_POINT, S(&point)),
                    ],
                )
                .unwrap();
            // The private key knows its public half.
            assert_eq!(
                hex(&lib.attr(h, private, CKA_PUBLIC_KEY_INFO)),
                format!("{SPKI_ED25519}{public_key}")
            );
            let m = mech(CKM_EDDSA);
            let data = unhex(data);
            let sig = sign(&lib, h, &m, private, &data);
            assert_eq!(hex(&sig), want);
            verify_all(&lib, h, &m, public, &data, &sig);
        }
    });
}

#[test]
fn hmac_signatures_match_openssl() {
    isolated("hmac_signatures_match_openssl", "", || {
        let (lib, h) = ready();
        let ossl = Ossl::new();
        let value: Vec<u8> = (0..32u8)
            .map(|i| i.wrapping_mul(7).wrapping_add(3))
            .collect();
        let key = known_secret(&lib, h, CKK_GENERIC_SECRET, &value, &[]);
        ossl.write("data.bin", MSG);
        let keyopt = format!("hexkey:{}", hex(&value));
        for (m, dgst, len) in [
            (CKM_SHA256_HMAC, "-sha256", 32),
            (CKM_SHA384_HMAC, "-sha384", 48),
            (CKM_SHA512_HMAC, "-sha512", 64),
        ] {
            let m = mech(m);
            let mac = sign(&lib, h, &m, key, MSG);
            assert_eq!(mac.len(), len);
            let want = ossl.ok(&[
                "dgst", dgst, "-mac", "HMAC", "-macopt", &keyopt, "-binary", "data.bin",
            ]);
            assert_eq!(mac, want, "{dgst}");
            verify_all(&lib, h, &m, key, MSG, &mac);
        }
        // CKM_SHA256_HMAC_GENERAL: the leftmost bytes.
        let full = ossl.ok(&[
            "dgst", "-sha256", "-mac", "HMAC", "-macopt", &keyopt, "-binary", "data.bin",
        ]);
        let general = mech_with(CKM_SHA256_HMAC_GENERAL, 16 as CK_ULONG);
        let mac = sign(&lib, h, &general, key, MSG);
        assert_eq!(mac, full[..16]);
        verify_all(&lib, h, &general, key, MSG, &mac);
        // Its length must be 1..=32.
        for bad in [0 as CK_ULONG, 33] {
            assert_rv!(
                sign_init(&lib, h, &mech_with(CKM_SHA256_HMAC_GENERAL, bad), key),
                CKR_MECHANISM_PARAM_INVALID
            );
        }
        assert_rv!(
            sign_init(&lib, h, &mech(CKM_SHA256_HMAC_GENERAL), key),
            CKR_MECHANISM_PARAM_INVALID
        );
        // HS* keys are at least 32 bytes (spec section 6).
        let short = known_secret(&lib, h, CKK_GENERIC_SECRET, &[1u8; 16], &[]);
        assert_rv!(
            sign_init(&lib, h, &mech(CKM_SHA256_HMAC), short),
            CKR_KEY_SIZE_RANGE
        );
        assert_rv!(
            call!(lib, C_VerifyInit, h, &mut mech(CKM_SHA256_HMAC), short),
            CKR_KEY_SIZE_RANGE
        );
        // A generated 32-byte secret works.
        let g = gen_key(
            &lib,
            h,
            CKM_GENERIC_SECRET_KEY_GEN,
            &[(CKA_VALUE_LEN, U(32))],
        )
        .unwrap();
        let m = mech(CKM_SHA512_HMAC);
        let mac = sign(&lib, h, &m, g, MSG);
        verify_all(&lib, h, &m, g, MSG, &mac);
    });
}

// ---------------------------------------------------------------------------------------
// 3. Output rules, multi-part, init errors
// ---------------------------------------------------------------------------------------

#[test]
fn sign_output_rules() {
    isolated("sign_output_rules", "", || {
        let (lib, h) = ready();
        let (ec_pub, ec_priv) = ec_pair(&lib, h, P384);
        let m = mech(CKM_ECDSA_SHA384);
        // C_Sign.
        assert_rv!(sign_init(&lib, h, &m, ec_priv), CKR_OK);
        let sig = output_rules(|o, l| call!(lib, C_Sign, h, p(MSG), n(MSG), o, l), 96);
        assert_rv!(verify(&lib, h, &m, ec_pub, MSG, &sig), CKR_OK);
        // C_SignFinal.
        assert_rv!(sign_init(&lib, h, &m, ec_priv), CKR_OK);
        assert_rv!(call!(lib, C_SignUpdate, h, p(MSG), n(MSG)), CKR_OK);
        let sig = output_rules(|o, l| call!(lib, C_SignFinal, h, o, l), 96);
        assert_rv!(verify(&lib, h, &m, ec_pub, MSG, &sig), CKR_OK);
        // A zero-length buffer is too small as well.
        assert_rv!(sign_init(&lib, h, &m, ec_priv), CKR_OK);
        let mut buf = [0u8; 1];
        let mut len = 0;
        assert_rv!(
            call!(lib, C_Sign, h, p(MSG), n(MSG), buf.as_mut_ptr(), &mut len),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(len, 96);
        assert_rv!(call!(lib, C_SessionCancel, h, CKF_SIGN), CKR_OK);
        assert_rv!(
            call!(lib, C_Sign, h, p(MSG), n(MSG), null_mut(), &mut len),
            CKR_OPERATION_NOT_INITIALIZED
        );
        // Any other error ends the operation: raw RSA input longer than k - 11.
        let (rsa_pub, rsa_priv) = rsa_pair(&lib, h, &[]);
        let raw = mech(CKM_RSA_PKCS);
        assert_rv!(sign_init(&lib, h, &raw, rsa_priv), CKR_OK);
        let long = [7u8; 246];
        let mut out = vec![0u8; 256];
        let mut len = 256;
        assert_rv!(
            call!(
                lib,
                C_Sign,
                h,
                p(&long),
                n(&long),
                out.as_mut_ptr(),
                &mut len
            ),
            CKR_DATA_LEN_RANGE
        );
        let mut len = 256;
        assert_rv!(
            call!(
                lib,
                C_Sign,
                h,
                p(&long[..245]),
                245,
                out.as_mut_ptr(),
                &mut len
            ),
            CKR_OPERATION_NOT_INITIALIZED
        );
        // k - 11 itself is fine.
        let sig = sign(&lib, h, &raw, rsa_priv, &long[..245]);
        assert_rv!(verify(&lib, h, &raw, rsa_pub, &long[..245], &sig), CKR_OK);
        // C_Verify ends the operation whatever its result.
        let mut m2 = m;
        assert_rv!(call!(lib, C_VerifyInit, h, &mut m2, ec_pub), CKR_OK);
        assert_rv!(
            call!(lib, C_Verify, h, p(MSG), n(MSG), p(&sig[..96]), 96),
            CKR_SIGNATURE_INVALID
        );
        assert_rv!(
            call!(lib, C_Verify, h, p(MSG), n(MSG), p(&sig[..96]), 96),
            CKR_OPERATION_NOT_INITIALIZED
        );
    });
}

#[test]
fn multi_part_signatures() {
    isolated("multi_part_signatures", "", || {
        let (lib, h) = ready();
        let ossl = Ossl::new();
        let (part1, part2) = MSG.split_at(10);
        let multi = |m: &CK_MECHANISM, key| -> Vec<u8> {
            assert_rv!(sign_init(&lib, h, m, key), CKR_OK);
            assert_rv!(call!(lib, C_SignUpdate, h, p(part1), n(part1)), CKR_OK);
            assert_rv!(call!(lib, C_SignUpdate, h, p(part2), n(part2)), CKR_OK);
            produce(|o, l| call!(lib, C_SignFinal, h, o, l)).unwrap()
        };
        let verify_multi = |m: &CK_MECHANISM, key, sig: &[u8]| -> CK_RV {
            let mut m = *m;
            assert_rv!(call!(lib, C_VerifyInit, h, &mut m, key), CKR_OK);
            assert_rv!(call!(lib, C_VerifyUpdate, h, p(part1), n(part1)), CKR_OK);
            assert_rv!(call!(lib, C_VerifyUpdate, h, p(part2), n(part2)), CKR_OK);
            call!(lib, C_VerifyFinal, h, p(sig), n(sig))
        };
        // ECDSA with SHA-256: randomised, so checked by OpenSSL and the token.
        let (public, private) = ec_pair(&lib, h, P256);
        let m = mech(CKM_ECDSA_SHA256);
        let sig = multi(&m, private);
        let pem = ossl.public_key_of(&lib, h, public);
        assert!(ossl.dgst_verify(&pem, "-sha256", MSG, &ecdsa_der(&sig), &[]));
        assert_rv!(verify(&lib, h, &m, public, MSG, &sig), CKR_OK);
        assert_rv!(verify_multi(&m, public, &sig), CKR_OK);
        assert_rv!(
            verify_multi(&m, public, &flip(&sig, 5)),
            CKR_SIGNATURE_INVALID
        );
        assert_rv!(verify_multi(&m, public, &sig[1..]), CKR_SIGNATURE_LEN_RANGE);
        // RSA PKCS#1 v1.5 with SHA-256: equal to the single-part signature.
        let (public, private) = rsa_pair(&lib, h, &[]);
        let m = mech(CKM_SHA256_RSA_PKCS);
        let sig = multi(&m, private);
        assert_eq!(sig, sign(&lib, h, &m, private, MSG));
        let pem = ossl.public_key_of(&lib, h, public);
        assert!(ossl.dgst_verify(&pem, "-sha256", MSG, &sig, &[]));
        assert_rv!(verify_multi(&m, public, &sig), CKR_OK);
        assert_rv!(
            verify_multi(&m, public, &flip(&sig, 100)),
            CKR_SIGNATURE_INVALID
        );
        assert_rv!(verify_multi(&m, public, &sig[1..]), CKR_SIGNATURE_LEN_RANGE);
        // PSS with SHA-256, multi-part.
        let m = mech_with(
            CKM_SHA256_RSA_PKCS_PSS,
            pss(CKM_SHA256, CKG_MGF1_SHA256, 32),
        );
        let sig = multi(&m, private);
        assert!(ossl.dgst_verify(
            &pem,
            "-sha256",
            MSG,
            &sig,
            &[
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:32"
            ]
        ));
        assert_rv!(verify_multi(&m, public, &sig), CKR_OK);
        // HMAC-SHA256: equal to the single-part MAC.
        let key = known_secret(&lib, h, CKK_GENERIC_SECRET, &[0x42; 32], &[]);
        let m = mech(CKM_SHA256_HMAC);
        let mac = multi(&m, key);
        assert_eq!(mac, sign(&lib, h, &m, key, MSG));
        assert_rv!(verify_multi(&m, key, &mac), CKR_OK);
        assert_rv!(
            verify_multi(&m, key, &flip(&mac, 31)),
            CKR_SIGNATURE_INVALID
        );
        assert_rv!(verify_multi(&m, key, &mac[..31]), CKR_SIGNATURE_LEN_RANGE);
        // No updates at all: the signature of the empty message.
        assert_rv!(sign_init(&lib, h, &m, key), CKR_OK);
        let empty = produce(|o, l| call!(lib, C_SignFinal, h, o, l)).unwrap();
        assert_eq!(empty, sign(&lib, h, &m, key, b""));
    });
}

#[test]
fn single_part_mechanisms_refuse_update() {
    isolated("single_part_mechanisms_refuse_update", "", || {
        let (lib, h) = ready();
        let (ec_pub, ec_priv) = ec_pair(&lib, h, P256);
        let (ed_pub, ed_priv) = ed_pair(&lib, h, ED25519_OID);
        let (rsa_pub, rsa_priv) = rsa_pair(&lib, h, &[]);
        let hash = sha256(MSG);
        for (m, private, public) in [
            (mech(CKM_ECDSA), ec_priv, ec_pub),
            (mech(CKM_EDDSA), ed_priv, ed_pub),
            (mech(CKM_RSA_PKCS), rsa_priv, rsa_pub),
            (
                mech_with(CKM_RSA_PKCS_PSS, pss(CKM_SHA256, CKG_MGF1_SHA256, 32)),
                rsa_priv,
                rsa_pub,
            ),
        ] {
            assert_rv!(sign_init(&lib, h, &m, private), CKR_OK);
            assert_rv!(
                call!(lib, C_SignUpdate, h, p(&hash), n(&hash)),
                CKR_FUNCTION_NOT_SUPPORTED
            );
            let mut len = 0;
            assert_rv!(
                call!(lib, C_Sign, h, p(&hash), n(&hash), null_mut(), &mut len),
                CKR_OPERATION_NOT_INITIALIZED
            );
            assert_rv!(
                call!(lib, C_SignFinal, h, null_mut(), &mut len),
                CKR_OPERATION_NOT_INITIALIZED
            );
            let mut mv = m;
            assert_rv!(call!(lib, C_VerifyInit, h, &mut mv, public), CKR_OK);
            assert_rv!(
                call!(lib, C_VerifyUpdate, h, p(&hash), n(&hash)),
                CKR_FUNCTION_NOT_SUPPORTED
            );
            assert_rv!(
                call!(lib, C_VerifyFinal, h, p(&hash), n(&hash)),
                CKR_OPERATION_NOT_INITIALIZED
            );
            // A new operation can start.
            assert_rv!(sign_init(&lib, h, &m, private), CKR_OK);
            assert_rv!(call!(lib, C_SessionCancel, h, CKF_SIGN), CKR_OK);
        }
    });
}

#[test]
fn sign_init_errors() {
    isolated("sign_init_errors", "", || {
        let (lib, h) = ready();
        let (ec_pub, ec_priv) = ec_pair(&lib, h, P256);
        let m = mech(CKM_ECDSA);
        let hash = sha256(MSG);
        // Twice: CKR_OPERATION_ACTIVE, and the first operation goes on.
        assert_rv!(sign_init(&lib, h, &m, ec_priv), CKR_OK);
        assert_rv!(
            sign_init(&lib, h, &mech(CKM_ECDSA_SHA256), ec_priv),
            CKR_OPERATION_ACTIVE
        );
        let sig = produce(|o, l| call!(lib, C_Sign, h, p(&hash), n(&hash), o, l)).unwrap();
        assert_eq!(sig.len(), 64);
        assert_rv!(verify(&lib, h, &m, ec_pub, &hash, &sig), CKR_OK);
        let mut mv = m;
        assert_rv!(call!(lib, C_VerifyInit, h, &mut mv, ec_pub), CKR_OK);
        assert_rv!(
            call!(lib, C_VerifyInit, h, &mut mv, ec_pub),
            CKR_OPERATION_ACTIVE
        );
        assert_rv!(call!(lib, C_SessionCancel, h, CKF_VERIFY), CKR_OK);
        // A key without CKA_SIGN.
        let (_, no_sign) = gen_pair(
            &lib,
            h,
            CKM_EC_KEY_PAIR_GEN,
            &[(CKA_EC_PARAMS, S(P256))],
            &[(CKA_SIGN, B(false))],
        )
        .unwrap();
        assert_rv!(
            sign_init(&lib, h, &m, no_sign),
            CKR_KEY_FUNCTION_NOT_PERMITTED
        );
        // A public key does not sign; a private key does not verify.
        assert_rv!(
            sign_init(&lib, h, &m, ec_pub),
            CKR_KEY_FUNCTION_NOT_PERMITTED
        );
        // An RSA mechanism on an EC key, and the other way round.
        assert_rv!(
            sign_init(&lib, h, &mech(CKM_SHA256_RSA_PKCS), ec_priv),
            CKR_KEY_TYPE_INCONSISTENT
        );
        let (rsa_pub, rsa_priv) = rsa_pair(&lib, h, &[]);
        assert_rv!(sign_init(&lib, h, &m, rsa_priv), CKR_KEY_TYPE_INCONSISTENT);
        assert_rv!(
            sign_init(&lib, h, &mech(CKM_EDDSA), ec_priv),
            CKR_KEY_TYPE_INCONSISTENT
        );
        assert_rv!(
            call!(lib, C_VerifyInit, h, &mut mech(CKM_ECDSA), rsa_pub),
            CKR_KEY_TYPE_INCONSISTENT
        );
        // Nothing was left active by the refusals.
        assert_rv!(sign_init(&lib, h, &m, ec_priv), CKR_OK);
        assert_rv!(call!(lib, C_SessionCancel, h, CKF_SIGN), CKR_OK);
        // PSS parameters: the MGF must use the hash; the hash must be the mechanism's.
        for bad in [
            mech_with(CKM_SHA256_RSA_PKCS_PSS, pss(CKM_SHA256, CKG_MGF1_SHA1, 32)),
            mech_with(
                CKM_SHA256_RSA_PKCS_PSS,
                pss(CKM_SHA384, CKG_MGF1_SHA384, 32),
            ),
            mech_with(CKM_RSA_PKCS_PSS, pss(CKM_SHA256, CKG_MGF1_SHA512, 32)),
            mech(CKM_SHA256_RSA_PKCS_PSS),
            mech_with(CKM_SHA256_RSA_PKCS_PSS, 32 as CK_ULONG),
        ] {
            assert_rv!(
                sign_init(&lib, h, &bad, rsa_priv),
                CKR_MECHANISM_PARAM_INVALID
            );
        }
        // CKA_ALLOWED_MECHANISMS.
        let allowed = ul(CKM_ECDSA);
        let (_, only_raw) = gen_pair(
            &lib,
            h,
            CKM_EC_KEY_PAIR_GEN,
            &[(CKA_EC_PARAMS, S(P256))],
            &[(CKA_ALLOWED_MECHANISMS, S(&allowed))],
        )
        .unwrap();
        assert_eq!(lib.attr(h, only_raw, CKA_ALLOWED_MECHANISMS), allowed);
        assert_rv!(
            sign_init(&lib, h, &mech(CKM_ECDSA_SHA256), only_raw),
            CKR_MECHANISM_INVALID
        );
        let sig = sign(&lib, h, &m, only_raw, &hash);
        assert_eq!(sig.len(), 64);
        // Unknown mechanisms.
        assert_rv!(
            sign_init(&lib, h, &mech(CKM_MD5_RSA_PKCS), rsa_priv),
            CKR_MECHANISM_INVALID
        );
        assert_rv!(
            sign_init(&lib, h, &mech(CKM_SHA256), ec_priv),
            CKR_MECHANISM_INVALID
        );
        assert_rv!(
            sign_init(&lib, h, &mech(CKM_AES_GCM), ec_priv),
            CKR_MECHANISM_PARAM_INVALID
        );
        assert_rv!(sign_init(&lib, h, &m, 0xdead), CKR_KEY_HANDLE_INVALID);
        // An HMAC key shorter than 32 bytes (spec section 6).
        let short = known_secret(&lib, h, CKK_GENERIC_SECRET, &[3u8; 16], &[]);
        assert_rv!(
            sign_init(&lib, h, &mech(CKM_SHA256_HMAC), short),
            CKR_KEY_SIZE_RANGE
        );
        let short31 = known_secret(&lib, h, CKK_GENERIC_SECRET, &[3u8; 31], &[]);
        assert_rv!(
            sign_init(&lib, h, &mech(CKM_SHA384_HMAC), short31),
            CKR_KEY_SIZE_RANGE
        );
        // Private keys need the User.
        assert_rv!(lib.logout(h), CKR_OK);
        assert_rv!(sign_init(&lib, h, &m, ec_priv), CKR_KEY_HANDLE_INVALID);
    });
}

// ---------------------------------------------------------------------------------------
// 4. CKA_ALWAYS_AUTHENTICATE
// ---------------------------------------------------------------------------------------

#[test]
fn always_authenticate_sign() {
    isolated("always_authenticate_sign", "", || {
        let (lib, h) = ready();
        let (public, private) = gen_pair(
            &lib,
            h,
            CKM_EC_KEY_PAIR_GEN,
            &[(CKA_EC_PARAMS, S(P256))],
            &[(CKA_ALWAYS_AUTHENTICATE, B(true))],
        )
        .unwrap();
        assert!(boolean(&lib, h, private, CKA_ALWAYS_AUTHENTICATE));
        let m = mech(CKM_ECDSA_SHA256);
        // No operation waits: a context login has nothing to do.
        assert_rv!(
            lib.login(h, CKU_CONTEXT_SPECIFIC, USER_PIN),
            CKR_OPERATION_NOT_INITIALIZED
        );
        assert_rv!(sign_init(&lib, h, &m, private), CKR_OK);
        let mut out = [0u8; 64];
        let mut len = 64;
        assert_rv!(
            call!(lib, C_Sign, h, p(MSG), n(MSG), out.as_mut_ptr(), &mut len),
            CKR_USER_NOT_LOGGED_IN
        );
        assert_eq!(lib.flags() & CKF_USER_PIN_COUNT_LOW, 0);
        assert_rv!(
            lib.login(h, CKU_CONTEXT_SPECIFIC, WRONG_PIN),
            CKR_PIN_INCORRECT
        );
        assert_ne!(
            lib.flags() & CKF_USER_PIN_COUNT_LOW,
            0,
            "the wrong PIN counts"
        );
        assert_rv!(lib.login(h, CKU_CONTEXT_SPECIFIC, USER_PIN), CKR_OK);
        assert_eq!(
            lib.flags() & CKF_USER_PIN_COUNT_LOW,
            0,
            "the right PIN resets it"
        );
        let sig = produce(|o, l| call!(lib, C_Sign, h, p(MSG), n(MSG), o, l)).unwrap();
        assert_rv!(verify(&lib, h, &m, public, MSG, &sig), CKR_OK);
        // Every use needs its own login.
        assert_rv!(sign_init(&lib, h, &m, private), CKR_OK);
        let mut len = 64;
        assert_rv!(
            call!(lib, C_Sign, h, p(MSG), n(MSG), out.as_mut_ptr(), &mut len),
            CKR_USER_NOT_LOGGED_IN
        );
        assert_rv!(lib.login(h, CKU_CONTEXT_SPECIFIC, USER_PIN), CKR_OK);
        let sig = produce(|o, l| call!(lib, C_Sign, h, p(MSG), n(MSG), o, l)).unwrap();
        assert_rv!(verify(&lib, h, &m, public, MSG, &sig), CKR_OK);
        // Multi-part as well.
        assert_rv!(sign_init(&lib, h, &m, private), CKR_OK);
        assert_rv!(call!(lib, C_SignUpdate, h, p(MSG), n(MSG)), CKR_OK);
        let mut len = 64;
        assert_rv!(
            call!(lib, C_SignFinal, h, out.as_mut_ptr(), &mut len),
            CKR_USER_NOT_LOGGED_IN
        );
        assert_rv!(lib.login(h, CKU_CONTEXT_SPECIFIC, USER_PIN), CKR_OK);
        let sig = produce(|o, l| call!(lib, C_SignFinal, h, o, l)).unwrap();
        assert_rv!(verify(&lib, h, &m, public, MSG, &sig), CKR_OK);
    });
}

/// PKCS#11 3.0 section 4.9 (CKA_ALWAYS_AUTHENTICATE): "the user has to supply the PIN for
/// each use (sign or decrypt) with the key" — decryption included.
#[test]
fn always_authenticate_decrypt() {
    isolated("always_authenticate_decrypt", "", || {
        let (lib, h) = ready();
        let (public, private) = rsa_pair(&lib, h, &[(CKA_ALWAYS_AUTHENTICATE, B(true))]);
        let m = mech(CKM_RSA_PKCS);
        let ct = encrypt(&lib, h, &m, public, b"secret").unwrap();
        let mut mm = m;
        assert_rv!(call!(lib, C_DecryptInit, h, &mut mm, private), CKR_OK);
        let mut out = [0u8; 256];
        let mut len = 256;
        assert_rv!(
            call!(
                lib,
                C_Decrypt,
                h,
                p(&ct),
                n(&ct),
                out.as_mut_ptr(),
                &mut len
            ),
            CKR_USER_NOT_LOGGED_IN
        );
        assert_rv!(lib.login(h, CKU_CONTEXT_SPECIFIC, USER_PIN), CKR_OK);
        let mut len = 256;
        assert_rv!(
            call!(
                lib,
                C_Decrypt,
                h,
                p(&ct),
                n(&ct),
                out.as_mut_ptr(),
                &mut len
            ),
            CKR_OK
        );
        assert_eq!(&out[..len as usize], b"secret");
    });
}

// ---------------------------------------------------------------------------------------
// 5. Encryption
// ---------------------------------------------------------------------------------------

#[test]
fn aes_gcm() {
    isolated("aes_gcm", "", || {
        let (lib, h) = ready();
        // The GCM specification's test case 4 (AES-128, 96-bit IV, AAD, 128-bit tag).
        let key = known_secret(
            &lib,
            h,
            CKK_AES,
            &unhex("feffe9928665731c6d6a8f9467308308"),
            &[],
        );
        let iv = unhex("cafebabefacedbaddecaf888");
        let aad = unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let pt = unhex(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
             1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        );
        let want = unhex(
            "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e\
             21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091\
             5bc94fbc3221a5db94fae95ae7121a47",
        );
        let m = gcm(&iv, &aad, 128);
        let ct = encrypt(&lib, h, &m, key, &pt).unwrap();
        assert_eq!(hex(&ct), hex(&want));
        assert_eq!(decrypt(&lib, h, &m, key, &ct).unwrap(), pt);
        // Output rules on C_Encrypt and C_Decrypt.
        let mut mm = m;
        assert_rv!(call!(lib, C_EncryptInit, h, &mut mm, key), CKR_OK);
        let out = output_rules(
            |o, l| call!(lib, C_Encrypt, h, p(&pt), n(&pt), o, l),
            pt.len() + 16,
        );
        assert_eq!(out, want);
        assert_rv!(call!(lib, C_DecryptInit, h, &mut mm, key), CKR_OK);
        let out = output_rules(
            |o, l| call!(lib, C_Decrypt, h, p(&ct), n(&ct), o, l),
            pt.len(),
        );
        assert_eq!(out, pt);
        // Multi-part: the output comes at the end.
        assert_rv!(call!(lib, C_EncryptInit, h, &mut mm, key), CKR_OK);
        let mut total = Vec::new();
        for chunk in pt.chunks(25) {
            let got =
                produce(|o, l| call!(lib, C_EncryptUpdate, h, p(chunk), n(chunk), o, l)).unwrap();
            total.extend(got);
        }
        total.extend(produce(|o, l| call!(lib, C_EncryptFinal, h, o, l)).unwrap());
        assert_eq!(total, want);
        assert_rv!(call!(lib, C_DecryptInit, h, &mut mm, key), CKR_OK);
        let mut total = Vec::new();
        for chunk in ct.chunks(17) {
            let got =
                produce(|o, l| call!(lib, C_DecryptUpdate, h, p(chunk), n(chunk), o, l)).unwrap();
            total.extend(got);
        }
        total.extend(produce(|o, l| call!(lib, C_DecryptFinal, h, o, l)).unwrap());
        assert_eq!(total, pt);
        // A generated 256-bit key, a random message, round trip.
        let k = gen_key(&lib, h, CKM_AES_KEY_GEN, &[(CKA_VALUE_LEN, U(32))]).unwrap();
        let m = gcm(&[0x11; 12], b"header", 128);
        let ct = encrypt(&lib, h, &m, k, MSG).unwrap();
        assert_eq!(ct.len(), MSG.len() + 16);
        assert_eq!(decrypt(&lib, h, &m, k, &ct).unwrap(), MSG);
        // Any changed bit (ciphertext, tag), other AAD or IV: CKR_ENCRYPTED_DATA_INVALID.
        for i in [0, MSG.len() - 1, MSG.len(), ct.len() - 1] {
            assert_eq!(
                decrypt(&lib, h, &m, k, &flip(&ct, i)),
                Err(CKR_ENCRYPTED_DATA_INVALID)
            );
        }
        assert_eq!(
            decrypt(&lib, h, &gcm(&[0x11; 12], b"headex", 128), k, &ct),
            Err(CKR_ENCRYPTED_DATA_INVALID)
        );
        assert_eq!(
            decrypt(&lib, h, &gcm(&[0x12; 12], b"header", 128), k, &ct),
            Err(CKR_ENCRYPTED_DATA_INVALID)
        );
        // ... and the failure ends the operation.
        let mut mm = m;
        assert_rv!(call!(lib, C_DecryptInit, h, &mut mm, k), CKR_OK);
        let bad = flip(&ct, 2);
        let mut out = vec![0u8; 100];
        let mut len = 100;
        assert_rv!(
            call!(
                lib,
                C_Decrypt,
                h,
                p(&bad),
                n(&bad),
                out.as_mut_ptr(),
                &mut len
            ),
            CKR_ENCRYPTED_DATA_INVALID
        );
        let mut len = 100;
        assert_rv!(
            call!(
                lib,
                C_Decrypt,
                h,
                p(&ct),
                n(&ct),
                out.as_mut_ptr(),
                &mut len
            ),
            CKR_OPERATION_NOT_INITIALIZED
        );
        // Shorter than the tag.
        assert_eq!(
            decrypt(&lib, h, &m, k, &ct[..15]),
            Err(CKR_ENCRYPTED_DATA_LEN_RANGE)
        );
        // Tampered, multi-part: found at C_DecryptFinal.
        assert_rv!(call!(lib, C_DecryptInit, h, &mut mm, k), CKR_OK);
        let bad = flip(&ct, 0);
        let mut len = 100;
        assert_rv!(
            call!(
                lib,
                C_DecryptUpdate,
                h,
                p(&bad),
                n(&bad),
                out.as_mut_ptr(),
                &mut len
            ),
            CKR_OK
        );
        assert_eq!(len, 0);
        let mut len = 100;
        assert_rv!(
            call!(lib, C_DecryptFinal, h, out.as_mut_ptr(), &mut len),
            CKR_ENCRYPTED_DATA_INVALID
        );
        let mut len = 100;
        assert_rv!(
            call!(lib, C_DecryptFinal, h, out.as_mut_ptr(), &mut len),
            CKR_OPERATION_NOT_INITIALIZED
        );
        // A 96-bit tag gives 12 bytes; shorter tags are refused (the token takes 96..=128).
        let m12 = gcm(&[0x11; 12], b"", 96);
        let ct12 = encrypt(&lib, h, &m12, k, MSG).unwrap();
        assert_eq!(ct12.len(), MSG.len() + 12);
        assert_eq!(decrypt(&lib, h, &m12, k, &ct12).unwrap(), MSG);
        assert_eq!(
            encrypt(&lib, h, &gcm(&[0x11; 12], b"", 64), k, MSG),
            Err(CKR_MECHANISM_PARAM_INVALID)
        );
        assert_eq!(
            encrypt(&lib, h, &gcm(&[0x11; 12], b"", 100), k, MSG),
            Err(CKR_MECHANISM_PARAM_INVALID)
        );
        assert_eq!(
            encrypt(&lib, h, &gcm(&[], b"", 128), k, MSG),
            Err(CKR_MECHANISM_PARAM_INVALID)
        );
        // Another IV length (GHASH-derived counter) still round-trips.
        let m16 = gcm(&[0x22; 16], b"aad", 128);
        let ct16 = encrypt(&lib, h, &m16, k, MSG).unwrap();
        assert_eq!(decrypt(&lib, h, &m16, k, &ct16).unwrap(), MSG);
        // A key without CKA_ENCRYPT / a non-AES key.
        let no_enc = known_secret(&lib, h, CKK_AES, &[5; 16], &[(CKA_ENCRYPT, B(false))]);
        assert_eq!(
            encrypt(&lib, h, &m, no_enc, MSG),
            Err(CKR_KEY_FUNCTION_NOT_PERMITTED)
        );
        let generic = known_secret(
            &lib,
            h,
            CKK_GENERIC_SECRET,
            &[5; 32],
            &[(CKA_ENCRYPT, B(true))],
        );
        assert_eq!(
            encrypt(&lib, h, &m, generic, MSG),
            Err(CKR_KEY_TYPE_INCONSISTENT)
        );
    });
}

#[test]
fn aes_cbc_pad_matches_openssl() {
    isolated("aes_cbc_pad_matches_openssl", "", || {
        let (lib, h) = ready();
        let ossl = Ossl::new();
        let value: Vec<u8> = (0..32u8).map(|i| 0xf0 ^ i).collect();
        let key = known_secret(&lib, h, CKK_AES, &value, &[]);
        let iv: [u8; 16] = core::array::from_fn(|i| (i as u8) * 3);
        let m = cbc_pad(iv);
        let pt: Vec<u8> = (0..37u8).collect();
        ossl.write("pt.bin", &pt);
        let want = ossl.ok(&[
            "enc",
            "-aes-256-cbc",
            "-K",
            &hex(&value),
            "-iv",
            &hex(&iv),
            "-in",
            "pt.bin",
        ]);
        assert_eq!(want.len(), 48);
        // Single-part, with the output rules.
        let mut mm = m;
        assert_rv!(call!(lib, C_EncryptInit, h, &mut mm, key), CKR_OK);
        let ct = output_rules(|o, l| call!(lib, C_Encrypt, h, p(&pt), n(&pt), o, l), 48);
        assert_eq!(ct, want);
        assert_rv!(call!(lib, C_DecryptInit, h, &mut mm, key), CKR_OK);
        let back = output_rules(|o, l| call!(lib, C_Decrypt, h, p(&ct), n(&ct), o, l), 37);
        assert_eq!(back, pt);
        // Multi-part encryption: whole blocks as they are complete.
        assert_rv!(call!(lib, C_EncryptInit, h, &mut mm, key), CKR_OK);
        let mut got = Vec::new();
        for (chunk, out_len) in [(&pt[..20], 16), (&pt[20..21], 0), (&pt[21..], 16)] {
            let mut len: CK_ULONG = 0;
            assert_rv!(
                call!(
                    lib,
                    C_EncryptUpdate,
                    h,
                    p(chunk),
                    n(chunk),
                    null_mut(),
                    &mut len
                ),
                CKR_OK
            );
            assert_eq!(len, out_len);
            let part =
                produce(|o, l| call!(lib, C_EncryptUpdate, h, p(chunk), n(chunk), o, l)).unwrap();
            assert_eq!(part.len(), out_len as usize);
            assert_eq!(part.len() % 16, 0);
            got.extend(part);
        }
        let last = output_rules(|o, l| call!(lib, C_EncryptFinal, h, o, l), 16);
        got.extend(last);
        assert_eq!(got, want);
        // Multi-part decryption holds back the last block.
        assert_rv!(call!(lib, C_DecryptInit, h, &mut mm, key), CKR_OK);
        let mut back = Vec::new();
        for (chunk, out_len) in [(&ct[..16], 0), (&ct[16..32], 16), (&ct[32..], 16)] {
            let mut len: CK_ULONG = 0;
            assert_rv!(
                call!(
                    lib,
                    C_DecryptUpdate,
                    h,
                    p(chunk),
                    n(chunk),
                    null_mut(),
                    &mut len
                ),
                CKR_OK
            );
            assert_eq!(len as usize, out_len);
            let part =
                produce(|o, l| call!(lib, C_DecryptUpdate, h, p(chunk), n(chunk), o, l)).unwrap();
            assert_eq!(
                part.len(),
                out_len,
                "DecryptUpdate of {} bytes",
                chunk.len()
            );
            back.extend(part);
        }
        let last = output_rules(|o, l| call!(lib, C_DecryptFinal, h, o, l), 5);
        back.extend(last);
        assert_eq!(back, pt);
        // Not on block boundaries: what is surely not the last block comes out.
        assert_rv!(call!(lib, C_DecryptInit, h, &mut mm, key), CKR_OK);
        let mut back = Vec::new();
        for (chunk, out_len) in [(&ct[..5], 0), (&ct[5..40], 32), (&ct[40..], 0)] {
            let part =
                produce(|o, l| call!(lib, C_DecryptUpdate, h, p(chunk), n(chunk), o, l)).unwrap();
            assert_eq!(
                part.len(),
                out_len,
                "DecryptUpdate of {} bytes",
                chunk.len()
            );
            back.extend(part);
        }
        back.extend(produce(|o, l| call!(lib, C_DecryptFinal, h, o, l)).unwrap());
        assert_eq!(back, pt);
        // The empty message is one block of padding.
        ossl.write("empty.bin", b"");
        let want_empty = ossl.ok(&[
            "enc",
            "-aes-256-cbc",
            "-K",
            &hex(&value),
            "-iv",
            &hex(&iv),
            "-in",
            "empty.bin",
        ]);
        assert_eq!(encrypt(&lib, h, &m, key, b"").unwrap(), want_empty);
        assert_eq!(decrypt(&lib, h, &m, key, &want_empty).unwrap(), b"");
        // A ciphertext OpenSSL made decrypts.
        let long: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        ossl.write("long.bin", &long);
        let long_ct = ossl.ok(&[
            "enc",
            "-aes-256-cbc",
            "-K",
            &hex(&value),
            "-iv",
            &hex(&iv),
            "-in",
            "long.bin",
        ]);
        assert_eq!(decrypt(&lib, h, &m, key, &long_ct).unwrap(), long);
        // Wrong padding: the last plaintext byte becomes 0x8b (changed through the
        // previous ciphertext block), and a block of zeros made without padding.
        let mut bad = ct.clone();
        bad[31] ^= 0x80;
        assert_eq!(
            decrypt(&lib, h, &m, key, &bad),
            Err(CKR_ENCRYPTED_DATA_INVALID)
        );
        ossl.write("zeros.bin", &[0u8; 32]);
        let nopad = ossl.ok(&[
            "enc",
            "-aes-256-cbc",
            "-nopad",
            "-K",
            &hex(&value),
            "-iv",
            &hex(&iv),
            "-in",
            "zeros.bin",
        ]);
        assert_eq!(
            decrypt(&lib, h, &m, key, &nopad),
            Err(CKR_ENCRYPTED_DATA_INVALID)
        );
        assert_rv!(call!(lib, C_DecryptInit, h, &mut mm, key), CKR_OK);
        let mut out = vec![0u8; 64];
        let mut len = 64;
        assert_rv!(
            call!(
                lib,
                C_DecryptUpdate,
                h,
                p(&nopad),
                n(&nopad),
                out.as_mut_ptr(),
                &mut len
            ),
            CKR_OK
        );
        assert_eq!(len, 16);
        let mut len = 64;
        assert_rv!(
            call!(lib, C_DecryptFinal, h, out.as_mut_ptr(), &mut len),
            CKR_ENCRYPTED_DATA_INVALID
        );
        let mut len = 64;
        assert_rv!(
            call!(lib, C_DecryptFinal, h, out.as_mut_ptr(), &mut len),
            CKR_OPERATION_NOT_INITIALIZED
        );
        // Not a multiple of 16 bytes (or empty).
        assert_eq!(
            decrypt(&lib, h, &m, key, &ct[..47]),
            Err(CKR_ENCRYPTED_DATA_LEN_RANGE)
        );
        assert_eq!(
            decrypt(&lib, h, &m, key, b""),
            Err(CKR_ENCRYPTED_DATA_LEN_RANGE)
        );
        assert_rv!(call!(lib, C_DecryptInit, h, &mut mm, key), CKR_OK);
        let mut len = 64;
        assert_rv!(
            call!(
                lib,
                C_DecryptUpdate,
                h,
                p(&ct[..47]),
                47,
                out.as_mut_ptr(),
                &mut len
            ),
            CKR_OK
        );
        let mut len = 64;
        assert_rv!(
            call!(lib, C_DecryptFinal, h, out.as_mut_ptr(), &mut len),
            CKR_ENCRYPTED_DATA_LEN_RANGE
        );
        // Bad IV length.
        let short_iv = mech_with(CKM_AES_CBC_PAD, [0u8; 8]);
        assert_eq!(
            encrypt(&lib, h, &short_iv, key, MSG),
            Err(CKR_MECHANISM_PARAM_INVALID)
        );
        // C_EncryptInit twice.
        assert_rv!(call!(lib, C_EncryptInit, h, &mut mm, key), CKR_OK);
        assert_rv!(
            call!(lib, C_EncryptInit, h, &mut mm, key),
            CKR_OPERATION_ACTIVE
        );
    });
}

#[test]
fn rsa_encryption() {
    isolated("rsa_encryption", "", || {
        let (lib, h) = ready();
        let ossl = Ossl::new();
        let (public, private) = rsa_pair(&lib, h, &[]);
        let pem = ossl.public_key_of(&lib, h, public);
        // OAEP, SHA-256, label "lbl".
        let m = oaep(b"lbl");
        let ct = encrypt(&lib, h, &m, public, MSG).unwrap();
        assert_eq!(ct.len(), 256);
        assert_ne!(
            encrypt(&lib, h, &m, public, MSG).unwrap(),
            ct,
            "OAEP is randomised"
        );
        assert_eq!(decrypt(&lib, h, &m, private, &ct).unwrap(), MSG);
        // The output rules on C_Decrypt.
        let mut mm = m;
        assert_rv!(call!(lib, C_DecryptInit, h, &mut mm, private), CKR_OK);
        let back = output_rules(
            |o, l| call!(lib, C_Decrypt, h, p(&ct), n(&ct), o, l),
            MSG.len(),
        );
        assert_eq!(back, MSG);
        // A ciphertext OpenSSL made.
        ossl.write("pt.bin", b"from openssl");
        ossl.ok(&[
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-inkey",
            &pem,
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            "rsa_oaep_md:sha256",
            "-pkeyopt",
            "rsa_mgf1_md:sha256",
            "-pkeyopt",
            "rsa_oaep_label:6c626c",
            "-in",
            "pt.bin",
            "-out",
            "ct.bin",
        ]);
        let ossl_ct = ossl.read("ct.bin");
        assert_eq!(
            decrypt(&lib, h, &m, private, &ossl_ct).unwrap(),
            b"from openssl"
        );
        // The wrong label, a changed bit, a wrong length.
        assert_eq!(
            decrypt(&lib, h, &oaep(b"lbm"), private, &ct),
            Err(CKR_ENCRYPTED_DATA_INVALID)
        );
        assert_eq!(
            decrypt(&lib, h, &oaep(b""), private, &ct),
            Err(CKR_ENCRYPTED_DATA_INVALID)
        );
        assert_eq!(
            decrypt(&lib, h, &m, private, &flip(&ct, 100)),
            Err(CKR_ENCRYPTED_DATA_INVALID)
        );
        assert_eq!(
            decrypt(&lib, h, &m, private, &ct[1..]),
            Err(CKR_ENCRYPTED_DATA_LEN_RANGE)
        );
        // Too long a message: k - 2·32 - 2 = 190 bytes at most.
        assert_eq!(
            encrypt(&lib, h, &m, public, &[1u8; 190]).map(|c| c.len()),
            Ok(256)
        );
        assert_eq!(
            encrypt(&lib, h, &m, public, &[1u8; 191]),
            Err(CKR_DATA_LEN_RANGE)
        );
        // Single-part only.
        assert_rv!(call!(lib, C_EncryptInit, h, &mut mm, public), CKR_OK);
        let mut out = vec![0u8; 256];
        let mut len = 256;
        assert_rv!(
            call!(
                lib,
                C_EncryptUpdate,
                h,
                p(MSG),
                n(MSG),
                out.as_mut_ptr(),
                &mut len
            ),
            CKR_FUNCTION_NOT_SUPPORTED
        );
        let mut len = 256;
        assert_rv!(
            call!(
                lib,
                C_Encrypt,
                h,
                p(MSG),
                n(MSG),
                out.as_mut_ptr(),
                &mut len
            ),
            CKR_OPERATION_NOT_INITIALIZED
        );
        // Encryption is the public key's, decryption the private key's.
        assert_eq!(
            encrypt(&lib, h, &m, private, MSG),
            Err(CKR_KEY_FUNCTION_NOT_PERMITTED)
        );
        assert_eq!(
            decrypt(&lib, h, &m, public, &ct),
            Err(CKR_KEY_FUNCTION_NOT_PERMITTED)
        );
        // OAEP whose MGF does not use the hash: refused when the operation starts.
        let mixed = mech_with(
            CKM_RSA_PKCS_OAEP,
            CK_RSA_PKCS_OAEP_PARAMS {
                hashAlg: CKM_SHA256,
                mgf: CKG_MGF1_SHA1,
                source: CKZ_DATA_SPECIFIED,
                pSourceData: null_mut(),
                ulSourceDataLen: 0,
            },
        );
        let mut mixed_m = mixed;
        assert_rv!(
            call!(lib, C_EncryptInit, h, &mut mixed_m, public),
            CKR_MECHANISM_PARAM_INVALID
        );
        // PKCS#1 v1.5 encryption.
        let m = mech(CKM_RSA_PKCS);
        let ct = encrypt(&lib, h, &m, public, MSG).unwrap();
        assert_eq!(ct.len(), 256);
        assert_eq!(decrypt(&lib, h, &m, private, &ct).unwrap(), MSG);
        assert_eq!(
            encrypt(&lib, h, &m, public, &[2u8; 246]),
            Err(CKR_DATA_LEN_RANGE)
        );
        ossl.ok(&[
            "pkeyutl", "-encrypt", "-pubin", "-inkey", &pem, "-in", "pt.bin", "-out", "ct1.bin",
        ]);
        assert_eq!(
            decrypt(&lib, h, &m, private, &ossl.read("ct1.bin")).unwrap(),
            b"from openssl"
        );
        assert_eq!(
            decrypt(&lib, h, &m, private, &ct[..255]),
            Err(CKR_ENCRYPTED_DATA_LEN_RANGE)
        );
    });
}

// ---------------------------------------------------------------------------------------
// 6. Key wrapping
// ---------------------------------------------------------------------------------------

#[test]
fn aes_key_wrap_matches_openssl() {
    isolated("aes_key_wrap_matches_openssl", "", || {
        let (lib, h) = ready();
        let ossl = Ossl::new();
        let kek = known_secret(&lib, h, CKK_AES, &KEK, &[]);
        let value: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(11) ^ 0x5c).collect();
        let target = known_secret(&lib, h, CKK_AES, &value, &[]);
        ossl.write("key.bin", &value);
        let wrap = |m: &CK_MECHANISM, key| -> Result<Vec<u8>, CK_RV> {
            let mut m = *m;
            produce(|o, l| call!(lib, C_WrapKey, h, &mut m, kek, key, o, l))
        };
        let unwrap = |m: &CK_MECHANISM, wrapped: &[u8], items: &[(CK_ATTRIBUTE_TYPE, A)]| {
            let mut m = *m;
            let mut t = Tpl::new(items);
            let mut k = 0;
            match call!(
                lib,
                C_UnwrapKey,
                h,
                &mut m,
                kek,
                p(wrapped),
                n(wrapped),
                t.ptr(),
                t.len(),
                &mut k
            ) {
                CKR_OK => Ok(k),
                rv => Err(rv),
            }
        };
        let aes_template = [
            (CKA_CLASS, U(CKO_SECRET_KEY)),
            (CKA_KEY_TYPE, U(CKK_AES)),
            (CKA_ENCRYPT, B(true)),
            (CKA_DECRYPT, B(true)),
        ];
        for (m, cipher, iv) in [
            (
                mech(CKM_AES_KEY_WRAP),
                "-id-aes256-wrap",
                "A6A6A6A6A6A6A6A6",
            ),
            (
                mech(CKM_AES_KEY_WRAP_PAD),
                "-id-aes256-wrap-pad",
                "A65959A6",
            ),
        ] {
            let wrapped = wrap(&m, target).unwrap();
            assert_eq!(wrapped.len(), 40);
            let want = ossl.ok(&["enc", cipher, "-K", &hex(&KEK), "-iv", iv, "-in", "key.bin"]);
            assert_eq!(hex(&wrapped), hex(&want), "{cipher}");
            // Length query, too small, then the bytes.
            let mut mm = m;
            let mut len: CK_ULONG = 0;
            assert_rv!(
                call!(
                    lib,
                    C_WrapKey,
                    h,
                    &mut mm,
                    kek,
                    target,
                    null_mut(),
                    &mut len
                ),
                CKR_OK
            );
            assert_eq!(len, 40);
            let mut buf = [0u8; 64];
            let mut len = 39;
            assert_rv!(
                call!(
                    lib,
                    C_WrapKey,
                    h,
                    &mut mm,
                    kek,
                    target,
                    buf.as_mut_ptr(),
                    &mut len
                ),
                CKR_BUFFER_TOO_SMALL
            );
            assert_eq!(len, 40);
            // Unwrapped: a new key that encrypts as the original.
            let k = unwrap(&m, &wrapped, &aes_template).unwrap();
            assert_eq!(lib.attr(h, k, CKA_VALUE_LEN), ul(32));
            assert_eq!(lib.attr(h, k, CKA_KEY_TYPE), ul(CKK_AES));
            assert!(!boolean(&lib, h, k, CKA_LOCAL));
            assert!(!boolean(&lib, h, k, CKA_ALWAYS_SENSITIVE));
            assert!(!boolean(&lib, h, k, CKA_NEVER_EXTRACTABLE));
            assert!(boolean(&lib, h, k, CKA_SENSITIVE));
            let cbc = cbc_pad([9; 16]);
            assert_eq!(
                encrypt(&lib, h, &cbc, k, MSG).unwrap(),
                encrypt(&lib, h, &cbc, target, MSG).unwrap()
            );
            // Tampered, or cut: refused.
            for i in [0, 20, 39] {
                assert_eq!(
                    unwrap(&m, &flip(&wrapped, i), &aes_template),
                    Err(CKR_WRAPPED_KEY_INVALID)
                );
            }
            assert_eq!(
                unwrap(&m, &wrapped[..39], &aes_template),
                Err(CKR_WRAPPED_KEY_LEN_RANGE)
            );
        }
        // A 20-byte generic secret: KEY_WRAP_PAD only.
        let secret20: Vec<u8> = (100..120u8).collect();
        let g = known_secret(&lib, h, CKK_GENERIC_SECRET, &secret20, &[]);
        ossl.write("g.bin", &secret20);
        let wrapped = wrap(&mech(CKM_AES_KEY_WRAP_PAD), g).unwrap();
        let want = ossl.ok(&[
            "enc",
            "-id-aes256-wrap-pad",
            "-K",
            &hex(&KEK),
            "-iv",
            "A65959A6",
            "-in",
            "g.bin",
        ]);
        assert_eq!(wrapped, want);
        assert_eq!(wrap(&mech(CKM_AES_KEY_WRAP), g), Err(CKR_KEY_SIZE_RANGE));
        let back = unwrap(
            &mech(CKM_AES_KEY_WRAP_PAD),
            &wrapped,
            &[
                (CKA_CLASS, U(CKO_SECRET_KEY)),
                (CKA_KEY_TYPE, U(CKK_GENERIC_SECRET)),
                (CKA_SENSITIVE, B(false)),
                (CKA_EXTRACTABLE, B(true)),
            ],
        )
        .unwrap();
        assert_eq!(lib.attr(h, back, CKA_VALUE), secret20);
        assert_eq!(lib.attr(h, back, CKA_VALUE_LEN), ul(20));
        // 20 bytes are no AES key.
        assert_eq!(
            unwrap(&mech(CKM_AES_KEY_WRAP_PAD), &wrapped, &aes_template),
            Err(CKR_WRAPPED_KEY_INVALID)
        );
        // The refusals.
        let sealed = known_secret(&lib, h, CKK_AES, &value, &[(CKA_EXTRACTABLE, B(false))]);
        assert_eq!(
            wrap(&mech(CKM_AES_KEY_WRAP), sealed),
            Err(CKR_KEY_UNEXTRACTABLE)
        );
        let generated = gen_key(&lib, h, CKM_AES_KEY_GEN, &[(CKA_VALUE_LEN, U(32))]).unwrap();
        assert_eq!(
            wrap(&mech(CKM_AES_KEY_WRAP), generated),
            Err(CKR_KEY_UNEXTRACTABLE)
        );
        let trusted_only = known_secret(
            &lib,
            h,
            CKK_AES,
            &value,
            &[(CKA_WRAP_WITH_TRUSTED, B(true))],
        );
        assert_eq!(
            wrap(&mech(CKM_AES_KEY_WRAP), trusted_only),
            Err(CKR_KEY_NOT_WRAPPABLE)
        );
        let no_wrap = known_secret(&lib, h, CKK_AES, &KEK, &[(CKA_WRAP, B(false))]);
        let mut mm = mech(CKM_AES_KEY_WRAP);
        let mut len: CK_ULONG = 0;
        assert_rv!(
            call!(
                lib,
                C_WrapKey,
                h,
                &mut mm,
                no_wrap,
                target,
                null_mut(),
                &mut len
            ),
            CKR_KEY_FUNCTION_NOT_PERMITTED
        );
        let no_unwrap = known_secret(&lib, h, CKK_AES, &KEK, &[(CKA_UNWRAP, B(false))]);
        let mut t = Tpl::new(&aes_template);
        let mut k = 0;
        let w = wrap(&mech(CKM_AES_KEY_WRAP), target).unwrap();
        assert_rv!(
            call!(
                lib,
                C_UnwrapKey,
                h,
                &mut mm,
                no_unwrap,
                p(&w),
                n(&w),
                t.ptr(),
                t.len(),
                &mut k
            ),
            CKR_KEY_FUNCTION_NOT_PERMITTED
        );
        assert_rv!(
            call!(
                lib,
                C_WrapKey,
                h,
                &mut mm,
                0xdead,
                target,
                null_mut(),
                &mut len
            ),
            CKR_WRAPPING_KEY_HANDLE_INVALID
        );
        assert_rv!(
            call!(
                lib,
                C_WrapKey,
                h,
                &mut mm,
                kek,
                0xdead,
                null_mut(),
                &mut len
            ),
            CKR_KEY_HANDLE_INVALID
        );
    });
}

// ---------------------------------------------------------------------------------------
// 7. Digests
// ---------------------------------------------------------------------------------------

#[test]
fn digests() {
    isolated("digests", "", || {
        let lib = Lib::load();
        lib.init();
        lib.provision();
        // FIPS 180-4 examples ("abc"), in a public R/O session.
        let ro = lib.open(false).unwrap();
        let digest = |ty, data: &[u8]| {
            let mut m = mech(ty);
            assert_rv!(call!(lib, C_DigestInit, ro, &mut m), CKR_OK);
            produce(|o, l| call!(lib, C_Digest, ro, p(data), n(data), o, l)).unwrap()
        };
        let abc = [
            (
                CKM_SHA256,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                CKM_SHA384,
                "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
                 8086072ba1e7cc2358baeca134c825a7",
            ),
            (
                CKM_SHA512,
                "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
                 2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            ),
        ];
        for (ty, want) in abc {
            assert_eq!(hex(&digest(ty, b"abc")), want);
            // Multi-part equals single-part.
            let mut m = mech(ty);
            assert_rv!(call!(lib, C_DigestInit, ro, &mut m), CKR_OK);
            for part in [b"a".as_slice(), b"", b"bc"] {
                assert_rv!(call!(lib, C_DigestUpdate, ro, p(part), n(part)), CKR_OK);
            }
            let got = output_rules(|o, l| call!(lib, C_DigestFinal, ro, o, l), want.len() / 2);
            assert_eq!(hex(&got), want);
            // The output rules on C_Digest.
            assert_rv!(call!(lib, C_DigestInit, ro, &mut m), CKR_OK);
            let got = output_rules(
                |o, l| call!(lib, C_Digest, ro, p(b"abc"), 3, o, l),
                want.len() / 2,
            );
            assert_eq!(hex(&got), want);
        }
        let long: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(digest(CKM_SHA256, &long), sha256(&long));
        assert_eq!(digest(CKM_SHA384, &long), Sha384::digest(&long).to_vec());
        assert_eq!(digest(CKM_SHA512, &long), Sha512::digest(&long).to_vec());
        // C_DigestInit twice; a non-digest mechanism.
        let mut m = mech(CKM_SHA256);
        assert_rv!(call!(lib, C_DigestInit, ro, &mut m), CKR_OK);
        assert_rv!(call!(lib, C_DigestInit, ro, &mut m), CKR_OPERATION_ACTIVE);
        assert_rv!(call!(lib, C_SessionCancel, ro, CKF_DIGEST), CKR_OK);
        assert_rv!(
            call!(lib, C_DigestInit, ro, &mut mech(CKM_ECDSA)),
            CKR_MECHANISM_INVALID
        );
        assert_rv!(
            call!(lib, C_DigestInit, ro, &mut mech(CKM_SHA_1)),
            CKR_MECHANISM_INVALID
        );
        // C_DigestKey: the secret key's value enters the digest.
        let h = lib.user_session();
        let value: Vec<u8> = (0..32u8).rev().collect();
        let key = known_secret(&lib, h, CKK_GENERIC_SECRET, &value, &[]);
        let mut m = mech(CKM_SHA256);
        assert_rv!(call!(lib, C_DigestInit, h, &mut m), CKR_OK);
        assert_rv!(call!(lib, C_DigestKey, h, key), CKR_OK);
        let got = produce(|o, l| call!(lib, C_DigestFinal, h, o, l)).unwrap();
        assert_eq!(got, sha256(&value));
        // Mixed with data.
        assert_rv!(call!(lib, C_DigestInit, h, &mut m), CKR_OK);
        assert_rv!(call!(lib, C_DigestUpdate, h, p(b"abc"), 3), CKR_OK);
        assert_rv!(call!(lib, C_DigestKey, h, key), CKR_OK);
        let got = produce(|o, l| call!(lib, C_DigestFinal, h, o, l)).unwrap();
        assert_eq!(got, sha256(&[b"abc".as_slice(), &value].concat()));
        // A sensitive generated key digests too (its value never leaves).
        let g = gen_key(&lib, h, CKM_AES_KEY_GEN, &[(CKA_VALUE_LEN, U(16))]).unwrap();
        assert_rv!(call!(lib, C_DigestInit, h, &mut m), CKR_OK);
        assert_rv!(call!(lib, C_DigestKey, h, g), CKR_OK);
        assert_eq!(
            produce(|o, l| call!(lib, C_DigestFinal, h, o, l))
                .unwrap()
                .len(),
            32
        );
        // A public key is not digestible, and that ends the operation.
        let (ec_pub, _) = ec_pair(&lib, h, P256);
        assert_rv!(call!(lib, C_DigestInit, h, &mut m), CKR_OK);
        assert_rv!(call!(lib, C_DigestKey, h, ec_pub), CKR_KEY_INDIGESTIBLE);
        let mut len = 0;
        assert_rv!(
            call!(lib, C_DigestFinal, h, null_mut(), &mut len),
            CKR_OPERATION_NOT_INITIALIZED
        );
        assert_rv!(
            call!(lib, C_DigestKey, h, key),
            CKR_OPERATION_NOT_INITIALIZED
        );
    });
}

// ---------------------------------------------------------------------------------------
// 8. The mechanism list
// ---------------------------------------------------------------------------------------

#[test]
fn mechanism_list_and_info() {
    isolated("mechanism_list_and_info", "", || {
        let lib = Lib::load();
        lib.init();
        let slot = lib.slot();
        let mut count: CK_ULONG = 0;
        assert_rv!(
            call!(lib, C_GetMechanismList, slot, null_mut(), &mut count),
            CKR_OK
        );
        assert!(count > 0);
        let mut list = vec![0 as CK_MECHANISM_TYPE; count as usize];
        let mut small = count - 1;
        assert_rv!(
            call!(lib, C_GetMechanismList, slot, list.as_mut_ptr(), &mut small),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(small, count);
        assert_rv!(
            call!(lib, C_GetMechanismList, slot, list.as_mut_ptr(), &mut count),
            CKR_OK
        );
        let want: &[(CK_MECHANISM_TYPE, CK_FLAGS)] = &[
            (CKM_EC_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR),
            (CKM_RSA_PKCS_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR),
            (CKM_EC_EDWARDS_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR),
            (CKM_AES_KEY_GEN, CKF_GENERATE),
            (CKM_GENERIC_SECRET_KEY_GEN, CKF_GENERATE),
            (CKM_ECDSA, CKF_SIGN | CKF_VERIFY),
            (CKM_ECDSA_SHA256, CKF_SIGN | CKF_VERIFY),
            (CKM_ECDSA_SHA384, CKF_SIGN | CKF_VERIFY),
            (CKM_ECDSA_SHA512, CKF_SIGN | CKF_VERIFY),
            (
                CKM_RSA_PKCS,
                CKF_SIGN | CKF_VERIFY | CKF_ENCRYPT | CKF_DECRYPT,
            ),
            (CKM_SHA256_RSA_PKCS, CKF_SIGN | CKF_VERIFY),
            (CKM_SHA384_RSA_PKCS, CKF_SIGN | CKF_VERIFY),
            (CKM_SHA512_RSA_PKCS, CKF_SIGN | CKF_VERIFY),
            (CKM_RSA_PKCS_PSS, CKF_SIGN | CKF_VERIFY),
            (CKM_SHA256_RSA_PKCS_PSS, CKF_SIGN | CKF_VERIFY),
            (CKM_RSA_PKCS_OAEP, CKF_ENCRYPT | CKF_DECRYPT),
            (CKM_EDDSA, CKF_SIGN | CKF_VERIFY),
            (CKM_SHA256_HMAC, CKF_SIGN | CKF_VERIFY),
            (CKM_SHA384_HMAC, CKF_SIGN | CKF_VERIFY),
            (CKM_SHA512_HMAC, CKF_SIGN | CKF_VERIFY),
            (CKM_SHA256_HMAC_GENERAL, CKF_SIGN | CKF_VERIFY),
            (CKM_AES_GCM, CKF_ENCRYPT | CKF_DECRYPT),
            (
                CKM_AES_CBC_PAD,
                CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP,
            ),
            (CKM_AES_KEY_WRAP, CKF_WRAP | CKF_UNWRAP),
            (CKM_AES_KEY_WRAP_PAD, CKF_WRAP | CKF_UNWRAP),
            (CKM_SHA256, CKF_DIGEST),
            (CKM_SHA384, CKF_DIGEST),
            (CKM_SHA512, CKF_DIGEST),
        ];
        for &(m, flags) in want {
            assert!(list.contains(&m), "mechanism 0x{m:x} missing from the list");
            let mut info = CK_MECHANISM_INFO::default();
            assert_rv!(call!(lib, C_GetMechanismInfo, slot, m, &mut info), CKR_OK);
            assert_eq!(info.flags & flags, flags, "flags of mechanism 0x{m:x}");
        }
        // Every listed mechanism has its info; no duplicates.
        for (i, &m) in list.iter().enumerate() {
            assert!(!list[..i].contains(&m), "0x{m:x} listed twice");
            let mut info = CK_MECHANISM_INFO::default();
            assert_rv!(call!(lib, C_GetMechanismInfo, slot, m, &mut info), CKR_OK);
        }
        let mut info = CK_MECHANISM_INFO::default();
        assert_rv!(
            call!(lib, C_GetMechanismInfo, slot, CKM_ECDSA, &mut info),
            CKR_OK
        );
        assert_eq!((info.ulMinKeySize, info.ulMaxKeySize), (256, 521));
        assert_eq!(info.flags & (CKF_SIGN | CKF_VERIFY), CKF_SIGN | CKF_VERIFY);
        assert_eq!(info.flags & (CKF_ENCRYPT | CKF_DECRYPT), 0);
        assert_rv!(
            call!(
                lib,
                C_GetMechanismInfo,
                slot,
                CKM_RSA_PKCS_KEY_PAIR_GEN,
                &mut info
            ),
            CKR_OK
        );
        assert_eq!((info.ulMinKeySize, info.ulMaxKeySize), (2048, 4096));
        for unknown in [
            CKM_MD5,
            CKM_DES3_CBC,
            CKM_SHA_1,
            CKM_VENDOR_DEFINED | 0x4b34,
        ] {
            assert_rv!(
                call!(lib, C_GetMechanismInfo, slot, unknown, &mut info),
                CKR_MECHANISM_INVALID
            );
        }
        assert_rv!(
            call!(lib, C_GetMechanismInfo, slot + 1, CKM_ECDSA, &mut info),
            CKR_SLOT_ID_INVALID
        );
    });
}
