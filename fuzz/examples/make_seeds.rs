//! Writes the committed seed corpora (fuzz/corpus/<target>/): small inputs that each reach one
//! meaningful path, written with the same reader/writer pair the targets decode with.
//!
//!     cd fuzz && cargo run --example make_seeds
//!
//! Seeds are inputs, not expectations: regenerate them when the input format changes.

// CK_ULONG is u64 here, not everywhere: the casts say what the store keeps.
#![allow(clippy::unnecessary_cast)]

use key4c_fuzz::gen::Writer;
use key4c_fuzz::*;
use key4c_pkcs11::crypto::master_key::{MasterKey, WrappedMasterKey};
use key4c_pkcs11::store::records::{encode, AuditRecord, PinRecord, ServiceRecord, TokenRecord};
use key4c_pkcs11::token::attributes::Value;
use key4c_pkcs11::token::object::ObjectRecord;

fn save(target: &str, name: &str, data: &[u8]) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), data).unwrap();
}

// Keys of the fixture, by index (key4c_fuzz::Keys::all order).
const EC_PUB: u8 = 0;
const EC_PRIV: u8 = 1;
const ED_PRIV: u8 = 3;
const RSA_PUB: u8 = 4;
const RSA_PRIV: u8 = 5;
const AES: u8 = 6;

/// api_sequence ops.
mod op {
    pub const INIT_TOKEN: u8 = 8;
    pub const SET_PIN: u8 = 10;
    pub const OPEN: u8 = 11;
    pub const LOGIN: u8 = 15;
    pub const CREATE: u8 = 18;
    pub const GET_ATTR: u8 = 22;
    pub const FIND_INIT: u8 = 24;
    pub const FIND: u8 = 25;
    pub const FIND_FINAL: u8 = 26;
    pub const ENCRYPT_INIT: u8 = 27;
    pub const ENCRYPT: u8 = 28;
    pub const DECRYPT_INIT: u8 = 31;
    pub const DECRYPT: u8 = 32;
    pub const SIGN_INIT: u8 = 40;
    pub const SIGN: u8 = 41;
    pub const VERIFY_INIT: u8 = 44;
    pub const VERIFY: u8 = 45;
    pub const KEYPAIR: u8 = 49;
    pub const RESTART: u8 = 57;
}

/// Pin choices of the api_sequence reader.
const PIN_SO: u8 = 0;
const PIN_USER: u8 = 2;
const PIN_OTHER: u8 = 4;
const PIN_WRONG: u8 = 5;
/// User types of the api_sequence reader.
const AS_USER: u8 = 0;
const AS_SO: u8 = 3;

fn open_rw(w: &mut Writer) {
    w.u8(op::OPEN).u8(0).u8(1);
}

fn login(w: &mut Writer, who: u8, pin: u8) {
    w.u8(op::LOGIN).u8(0).u8(who).u8(pin);
}

fn api_sequence() {
    // Sign with the EC key and verify the signature.
    let mut w = Writer::default();
    open_rw(&mut w);
    login(&mut w, AS_USER, PIN_USER);
    w.u8(op::SIGN_INIT)
        .u8(0)
        .mech_plain(CKM_ECDSA_SHA256)
        .u8(EC_PRIV);
    w.u8(op::SIGN).u8(0).input(b"the message").output(72);
    w.u8(op::VERIFY_INIT)
        .u8(0)
        .mech_plain(CKM_ECDSA_SHA256)
        .u8(EC_PUB);
    w.u8(op::VERIFY).u8(0).input(b"the message").u8(1);
    save("api_sequence", "sign-verify-ecdsa", &w.data);

    // RSA-PSS through the length query, then Ed25519.
    let mut w = Writer::default();
    open_rw(&mut w);
    login(&mut w, AS_USER, PIN_USER);
    w.u8(op::SIGN_INIT)
        .u8(0)
        .mech_good(CKM_SHA256_RSA_PKCS_PSS)
        .u8(3)
        .u8(RSA_PRIV);
    w.u8(op::SIGN)
        .u8(0)
        .input(b"jwt header.payload")
        .output_query();
    w.u8(op::SIGN)
        .u8(0)
        .input(b"jwt header.payload")
        .output(256);
    w.u8(op::VERIFY_INIT)
        .u8(0)
        .mech_good(CKM_SHA256_RSA_PKCS_PSS)
        .u8(3)
        .u8(RSA_PUB);
    w.u8(op::VERIFY).u8(0).input(b"jwt header.payload").u8(1);
    w.u8(op::SIGN_INIT).u8(0).mech_plain(CKM_EDDSA).u8(ED_PRIV);
    w.u8(op::SIGN).u8(0).input(b"ed").output(64);
    save("api_sequence", "sign-pss-eddsa", &w.data);

    // Five wrong SO PINs: the lockout, then a restart.
    let mut w = Writer::default();
    open_rw(&mut w);
    for _ in 0..6 {
        login(&mut w, AS_SO, PIN_WRONG);
    }
    w.u8(op::RESTART);
    open_rw(&mut w);
    login(&mut w, AS_SO, PIN_SO);
    save("api_sequence", "so-lockout-restart", &w.data);

    // The SO changes the SO PIN (wrong old one first), restart, log in with the new one.
    let mut w = Writer::default();
    open_rw(&mut w);
    login(&mut w, AS_SO, PIN_SO);
    w.u8(op::SET_PIN).u8(0).u8(PIN_WRONG).u8(PIN_OTHER);
    w.u8(op::SET_PIN).u8(0).u8(PIN_SO).u8(PIN_OTHER);
    w.u8(op::RESTART);
    open_rw(&mut w);
    login(&mut w, AS_SO, PIN_OTHER);
    save("api_sequence", "so-set-pin-restart", &w.data);

    // A token data object: create, find by label, read, restart, find again.
    let mut w = Writer::default();
    open_rw(&mut w);
    login(&mut w, AS_USER, PIN_USER);
    w.u8(op::CREATE).u8(0).template(4);
    w.attr(CKA_CLASS, &CKO_DATA.to_ne_bytes())
        .attr(CKA_TOKEN, &[1])
        .attr(CKA_LABEL, b"seed-object")
        .attr(CKA_VALUE, b"seed value");
    w.u8(op::FIND_INIT)
        .u8(0)
        .template(1)
        .attr(CKA_LABEL, b"seed-object");
    w.u8(op::FIND).u8(0).u8(4);
    w.u8(op::FIND_FINAL).u8(0);
    w.u8(op::GET_ATTR).u8(0).u8(200).u8(2);
    w.u8(0)
        .pick(&key4c_fuzz::gen::ATTRS, CKA_VALUE)
        .output_query();
    w.u8(0).pick(&key4c_fuzz::gen::ATTRS, CKA_LABEL).output(32);
    w.u8(op::RESTART);
    open_rw(&mut w);
    w.u8(op::FIND_INIT)
        .u8(0)
        .template(1)
        .attr(CKA_LABEL, b"seed-object");
    w.u8(op::FIND).u8(0).u8(4);
    save("api_sequence", "create-find-restart", &w.data);

    // A token EC key pair, then a restart.
    let mut w = Writer::default();
    open_rw(&mut w);
    login(&mut w, AS_USER, PIN_USER);
    w.u8(op::KEYPAIR).u8(0).mech_plain(CKM_EC_KEY_PAIR_GEN);
    w.template(2)
        .attr(CKA_TOKEN, &[1])
        .attr(CKA_EC_PARAMS, P256);
    w.template(2)
        .attr(CKA_TOKEN, &[1])
        .attr(CKA_LABEL, b"seed-pair");
    w.u8(op::RESTART);
    save("api_sequence", "keypair-restart", &w.data);

    // AES-GCM encrypt and decrypt the result.
    let mut w = Writer::default();
    open_rw(&mut w);
    login(&mut w, AS_USER, PIN_USER);
    w.u8(op::ENCRYPT_INIT).u8(0).mech_good(CKM_AES_GCM);
    w.u8(0x11).u8(0).bytes(b"aad").u8(0).u8(AES);
    w.u8(op::ENCRYPT).u8(0).input(b"plaintext").output(64);
    w.u8(op::DECRYPT_INIT).u8(0).mech_good(CKM_AES_GCM);
    w.u8(0x11).u8(0).bytes(b"aad").u8(0).u8(AES);
    w.u8(op::DECRYPT).u8(0).u8(1).output(64);
    save("api_sequence", "aes-gcm-round-trip", &w.data);

    // Re-initialise the token (needs the SO PIN), then restart.
    let mut w = Writer::default();
    w.u8(op::INIT_TOKEN).u8(0).u8(PIN_WRONG).bytes(b"again");
    w.u8(op::INIT_TOKEN).u8(0).u8(PIN_SO).bytes(b"again");
    w.u8(op::RESTART);
    save("api_sequence", "reinit-token-restart", &w.data);
}

fn templates() {
    // Create a session data object, read it, find it.
    let mut w = Writer::default();
    w.u8(0).template(3);
    w.attr(CKA_CLASS, &CKO_DATA.to_ne_bytes())
        .attr(CKA_LABEL, b"t")
        .attr(CKA_VALUE, b"v");
    w.u8(1).template(1).attr(CKA_LABEL, b"t");
    save("templates", "data-object", &w.data);
    // An AES key with known bytes (sensitive by default), then read its value.
    let mut w = Writer::default();
    w.u8(0).template(4);
    w.attr(CKA_CLASS, &CKO_SECRET_KEY.to_ne_bytes())
        .attr(CKA_KEY_TYPE, &CKK_AES.to_ne_bytes())
        .attr(CKA_LABEL, b"k")
        .attr(CKA_VALUE, &[7; 32]);
    w.u8(2).u8(0).u8(2);
    w.u8(0).pick(&key4c_fuzz::gen::ATTRS, CKA_VALUE).output(32);
    w.u8(0)
        .pick(&key4c_fuzz::gen::ATTRS, CKA_LABEL)
        .output_query();
    save("templates", "aes-key-read-value", &w.data);
    // An EC public key with a bare point, copied with a new label.
    let mut point = vec![4u8];
    point.extend_from_slice(&[1; 64]);
    let mut w = Writer::default();
    w.u8(0).template(4);
    w.attr(CKA_CLASS, &CKO_PUBLIC_KEY.to_ne_bytes())
        .attr(CKA_KEY_TYPE, &CKK_EC.to_ne_bytes())
        .attr(CKA_EC_PARAMS, P256)
        .attr(CKA_EC_POINT, &point);
    w.u8(4).u8(0).template(1).attr(CKA_LABEL, b"copy");
    save("templates", "ec-public-copy", &w.data);
    // A duplicate attribute and an unknown one.
    let mut w = Writer::default();
    w.u8(0).template(3);
    w.attr(CKA_CLASS, &CKO_DATA.to_ne_bytes())
        .attr(CKA_LABEL, b"a")
        .attr(CKA_LABEL, b"b");
    save("templates", "duplicate-attribute", &w.data);
}

fn mech_params() {
    // Family indices: Rsa 0, Ec 1, Ed 2, Aes 3, Hmac 4. Then 0 = encrypt/decrypt,
    // 2 = sign/verify.
    let sign = |family: u8, pick: u8, param: &dyn Fn(&mut Writer), name: &str| {
        let mut w = Writer::default();
        w.u8(family).u8(2);
        // Ed25519 has one mechanism: nothing to pick.
        if family != 2 {
            w.u8(pick);
        }
        param(&mut w);
        w.u16(5).data.extend_from_slice(b"hello");
        w.u8(0).small(0).u8(0);
        save("mech_params", name, &w.data);
    };
    // RSA-PSS SHA-256, salt 32 (good parameters: mode 8, salt choice index 2).
    sign(
        0,
        5,
        &|w| {
            w.u8(8).u8(2);
        },
        "rsa-pss-sha256",
    );
    // ECDSA-SHA384.
    sign(
        1,
        2,
        &|w| {
            w.u8(0);
        },
        "ecdsa-sha384",
    );
    // EdDSA with a context (good: not plain, no prehash, context "ctx").
    sign(
        2,
        0,
        &|w| {
            w.u8(8).u8(0).u8(0).bytes(b"ctx");
        },
        "eddsa-context",
    );
    // HMAC-SHA256-GENERAL, 16-byte MAC.
    sign(
        4,
        3,
        &|w| {
            w.u8(8).u8(16);
        },
        "hmac-general",
    );
    // RSA-OAEP SHA-256 with a label.
    let mut w = Writer::default();
    w.u8(0).u8(0).u8(0).u8(8).u8(1).bytes(b"label");
    w.u16(4).data.extend_from_slice(b"data");
    w.small(0).u8(0).small(0).u8(0);
    save("mech_params", "rsa-oaep-label", &w.data);
    // AES-GCM with AAD, 96-bit IV, 128-bit tag.
    let mut w = Writer::default();
    w.u8(3).u8(0).u8(0).u8(8).u8(0x42).u8(0).bytes(b"aad").u8(0);
    w.u16(20).data.extend_from_slice(&[9; 20]);
    w.small(0).u8(0).small(0).u8(0);
    save("mech_params", "aes-gcm-aad", &w.data);
    // AES-CBC-PAD.
    let mut w = Writer::default();
    w.u8(3).u8(0).u8(1).u8(8).u8(0x24);
    w.u16(33).data.extend_from_slice(&[5; 33]);
    w.small(0).u8(0).small(0).u8(0);
    save("mech_params", "aes-cbc-pad", &w.data);
}

fn pin_policy() {
    for (name, pin) in [
        ("ok-vendor", &b"Key4C-Pin.9x"[..]),
        ("ok-space", b"Hello World 7!"),
        ("short", b"Ab1!cD2@"),
        ("bad-char", b"Key4C_Pin.9x"),
        ("no-digit", b"KeyC-Pin.xx"),
        ("repeat-mixed-case", b"Ab1!aAaAx"),
        ("sequence-down", b"Xy.9-DcBa"),
        ("no-wrap", b"Xy.7890-a"),
        ("utf8", "Key4C-Pín.9x".as_bytes()),
    ] {
        save("pin_policy", name, pin);
    }
}

fn store_records() {
    let mk = MasterKey::generate().unwrap();
    let wrapped = WrappedMasterKey::wrap(&mk, b"Key4C-Pin.9x", 1000, b"role").unwrap();
    let pin = PinRecord {
        wrapped_master_key: Some(wrapped),
        failures: 3,
        locked: false,
    };
    let token = TokenRecord {
        label: *b"seed token                      ",
        created: "2026-01-01T00:00:00Z".into(),
        so: pin.clone(),
        user: PinRecord::default(),
        so_unlock_request: None,
        pin_retry_limit: Some(5),
    };
    let service = ServiceRecord {
        uuid: [0x11; 16],
        api_key_sha256: Some([0x22; 32]),
    };
    let audit = AuditRecord {
        time: "2026-01-01T00:00:00Z".into(),
        event: "login".into(),
        subject: "SO".into(),
        outcome: "CKR_PIN_INCORRECT".into(),
    };
    let object = ObjectRecord {
        class: CKO_PRIVATE_KEY as u64,
        key_type: Some(CKK_EC as u64),
        attrs: [
            (CKA_LABEL as u64, Value::Bytes(b"key".to_vec())),
            (CKA_SIGN as u64, Value::Bool(true)),
            (
                CKA_ALLOWED_MECHANISMS as u64,
                Value::Ulongs(vec![CKM_ECDSA as u64]),
            ),
            (
                CKA_KEY_GEN_MECHANISM as u64,
                Value::Ulong(CKM_EC_KEY_PAIR_GEN as u64),
            ),
        ]
        .into_iter()
        .collect(),
        sealed: pin.wrapped_master_key.as_ref().map(|w| w.sealed.clone()),
    };
    let with = |tag: u8, bytes: Vec<u8>| [vec![tag], bytes].concat();
    save(
        "store_records",
        "service",
        &with(0, encode(&service).unwrap()),
    );
    save("store_records", "token", &with(1, encode(&token).unwrap()));
    save("store_records", "pin", &with(2, encode(&pin).unwrap()));
    save("store_records", "audit", &with(3, encode(&audit).unwrap()));
    save(
        "store_records",
        "object",
        &with(4, encode(&object).unwrap()),
    );
    save("store_records", "format", &with(5, encode(&1u32).unwrap()));
    save(
        "store_records",
        "newer-token",
        &with(1, [vec![9], encode(&token).unwrap()[1..].to_vec()].concat()),
    );
}

fn store_open() {
    // Raw files: a short conf and a db of zeros.
    let mut w = Writer::default();
    w.u8(0).u8(1).u8(0).u16(4).data.extend_from_slice(b"conf");
    w.u8(1).u16(64).data.extend_from_slice(&[0; 64]);
    save("store_open", "raw-files", &w.data);
    // Record-level damage (mode 2): the token record's bytes flipped; an object replaced.
    let mut w = Writer::default();
    // One damage; default tree; an existing key, the third (format, service, token); flip.
    w.u8(2).u8(0).u8(0).u8(1).u8(2).u8(1).u16(3).u8(0x40);
    save("store_open", "flip-a-record", &w.data);
    let mut w = Writer::default();
    w.u8(2)
        .u8(1)
        .u8(1)
        .u8(1)
        .u8(0)
        .u8(2)
        .u16(5)
        .data
        .extend_from_slice(&[1, 0, 0, 0, 0]);
    w.u8(0).u8(0).bytes(b"format").u8(0);
    save("store_open", "replace-object-remove-format", &w.data);
    // Byte-level damage (mode 1): one bit of the log.
    let mut w = Writer::default();
    w.u8(1).u8(0).u8(1).u8(0).u16(2074).u8(0).u8(0);
    save("store_open", "flip-a-log-bit", &w.data);
}

/// store_log: a known-damage log (mode byte even: 2 segments of 3 and 2 messages, fillers,
/// acknowledged #3, replay from 0) with each kind of damage; and arbitrary bytes over a header.
fn store_log() {
    let base = [0x00, 0x01, 0x02, 5, 10, 20, 0x01, 7, 9, 0x03, 0x00];
    for (what, name) in [
        (0u8, "intact-two-segments"),
        (1, "flipped-segment-header"),
        (2, "flipped-message"),
        (3, "flipped-empty-tail"),
    ] {
        let mut data = base.to_vec();
        data.extend_from_slice(&[what, 0x05, 0x01, 0x03]);
        save("store_log", name, &data);
    }
    let mut data = vec![0x01, 0x81, 0x05, 0x00, 0x00];
    data.extend_from_slice(&[0x11; 40]);
    save("store_log", "arbitrary-bytes-over-a-header", &data);
}

fn main() {
    api_sequence();
    templates();
    mech_params();
    pin_policy();
    store_records();
    store_open();
    store_log();
    println!("seeds written under fuzz/corpus/");
}
