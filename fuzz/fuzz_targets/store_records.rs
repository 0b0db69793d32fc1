//! Every record the store holds, decoded from arbitrary bytes: an error or a value, never a
//! panic; and a value that decodes re-encodes to bytes that decode to the same value.
#![no_main]

use key4c_pkcs11::store::records::{
    decode, decode_token, encode, AuditRecord, DecodeError, PinRecord, ServiceRecord, TokenRecord,
    FORMAT_VERSION,
};
use key4c_pkcs11::token::object::{ObjectRecord, SecretAttributes};
use libfuzzer_sys::fuzz_target;
use serde::{de::DeserializeOwned, Serialize};

fn round_trip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(bytes: &[u8]) {
    match decode::<T>(bytes) {
        Ok(v) => {
            let again = encode(&v).expect("a decoded record encodes");
            assert_eq!(decode::<T>(&again).as_ref(), Ok(&v));
        }
        Err(DecodeError::Newer(v)) => assert!(v > FORMAT_VERSION),
        Err(DecodeError::Corrupt(_)) => {}
    }
}

/// The token record's own decoder (every format): what it decodes encodes and decodes again
/// to the same record.
fn token_round_trip(bytes: &[u8]) {
    match decode_token(bytes) {
        Ok(v) => {
            let again = encode(&v).expect("a decoded token record encodes");
            assert_eq!(decode_token(&again).as_ref(), Ok(&v));
        }
        Err(DecodeError::Newer(v)) => assert!(v > FORMAT_VERSION),
        Err(DecodeError::Corrupt(_)) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 8 {
        0 => round_trip::<ServiceRecord>(bytes),
        1 => {
            round_trip::<TokenRecord>(bytes);
            token_round_trip(bytes);
        }
        2 => round_trip::<PinRecord>(bytes),
        3 => round_trip::<AuditRecord>(bytes),
        4 => round_trip::<ObjectRecord>(bytes),
        // The format record is a bare u32.
        5 => round_trip::<u32>(bytes),
        // Sealed key material, once unsealed, is postcard without a version prefix.
        6 => {
            if let Ok(s) = postcard::from_bytes::<SecretAttributes>(bytes) {
                let again = postcard::to_allocvec(&s).expect("encodes");
                assert!(postcard::from_bytes::<SecretAttributes>(&again) == Ok(s));
            }
        }
        // Every decoder on the same bytes.
        _ => {
            round_trip::<ServiceRecord>(bytes);
            round_trip::<TokenRecord>(bytes);
            token_round_trip(bytes);
            round_trip::<PinRecord>(bytes);
            round_trip::<AuditRecord>(bytes);
            round_trip::<ObjectRecord>(bytes);
        }
    }
});
