//! The on-disk records and their encoding.
//!
//! Every record is `varint(format version) || postcard(body)`. postcard writes every integer
//! as a LEB128 varint, so nothing depends on the width of `usize` or `CK_ULONG` on the machine
//! that wrote it. A record from a newer format is refused, never rewritten.
//!
//! Formats: 1, the first; 2 added the token's own retry limit at the end of [`TokenRecord`]
//! (every other body is unchanged, so a format-1 record of any other kind decodes as it is,
//! and a format-1 token record through [`decode_token`]); 3 added a last kind of attribute
//! value, the attribute array (`Value::Template`: CKA_WRAP_TEMPLATE, CKA_UNWRAP_TEMPLATE,
//! CKA_DERIVE_TEMPLATE), to object records. No body of format 1 or 2 changed meaning (none
//! holds an attribute array), so they decode as they are; a key4c of format 2 refuses the
//! records of this one as newer rather than taking an attribute array for damage.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::crypto::master_key::WrappedMasterKey;

/// The format version this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 3;

/// The retry limits a token may have (spec section 3: 1..=15).
pub const PIN_RETRY_LIMITS: std::ops::RangeInclusive<u32> = 1..=15;

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Written by a newer key4c.
    #[error("record format {0} is newer than this key4c understands ({FORMAT_VERSION})")]
    Newer(u32),
    /// Truncated or damaged bytes.
    #[error("record is corrupt: {0}")]
    Corrupt(String),
}

/// Encodes `body` with the current format version.
pub fn encode<T: Serialize>(body: &T) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(64);
    write_varint(&mut out, u64::from(FORMAT_VERSION));
    postcard::to_extend(body, out).map_err(|e| format!("cannot encode record: {e}"))
}

/// Decodes a record written by [`encode`] (this or an older format). A token record is
/// decoded with [`decode_token`]: its body changed in format 2.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let (_, rest) = split_version(bytes)?;
    decode_body(rest)
}

/// Decodes the token record of any format: one of format 1 has no retry limit
/// ([`TokenRecord::pin_retry_limit`] `None`).
pub fn decode_token(bytes: &[u8]) -> Result<TokenRecord, DecodeError> {
    let (version, rest) = split_version(bytes)?;
    if version == 1 {
        let v1: TokenRecordV1 = decode_body(rest)?;
        return Ok(TokenRecord {
            label: v1.label,
            created: v1.created,
            so: v1.so,
            user: v1.user,
            so_unlock_request: v1.so_unlock_request,
            pin_retry_limit: None,
        });
    }
    decode_body(rest)
}

/// The format version and the body after it.
fn split_version(bytes: &[u8]) -> Result<(u32, &[u8]), DecodeError> {
    let (version, rest) =
        read_varint(bytes).ok_or_else(|| DecodeError::Corrupt("no format version".into()))?;
    let version = u32::try_from(version)
        .map_err(|_| DecodeError::Corrupt("format version overflows".into()))?;
    if version > FORMAT_VERSION {
        return Err(DecodeError::Newer(version));
    }
    if version == 0 {
        return Err(DecodeError::Corrupt("format version 0".into()));
    }
    Ok((version, rest))
}

fn decode_body<T: DeserializeOwned>(rest: &[u8]) -> Result<T, DecodeError> {
    let (body, tail) =
        postcard::take_from_bytes(rest).map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    if !tail.is_empty() {
        return Err(DecodeError::Corrupt(format!(
            "{} trailing bytes",
            tail.len()
        )));
    }
    Ok(body)
}

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn read_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut v = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, &bytes[i + 1..]));
        }
    }
    None
}

/// The service around the token: created with the store, kept across C_InitToken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// The service UUID (customer identifier); the token serial is its first 16 hex digits.
    pub uuid: [u8; 16],
    /// SHA-256 of the service's API key, once one was issued (the key itself is shown once).
    pub api_key_sha256: Option<[u8; 32]>,
}

/// One role's PIN state (SO or User).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinRecord {
    /// The master key wrapped under this role's PIN; `None` while no PIN is set.
    pub wrapped_master_key: Option<WrappedMasterKey>,
    /// Consecutive failed authentications.
    pub failures: u32,
    /// Locked: every attempt fails with CKR_PIN_LOCKED, until an unlock.
    pub locked: bool,
}

/// The token: label, dates, PINs. Absent until the first C_InitToken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// CK_TOKEN_INFO.label, 32 bytes blank-padded.
    pub label: [u8; 32],
    /// When C_InitToken last ran, RFC 3339 UTC.
    pub created: String,
    /// The SO's PIN state.
    pub so: PinRecord,
    /// The User's PIN state.
    pub user: PinRecord,
    /// A pending request to unlock the locked SO PIN (spec section 5).
    pub so_unlock_request: Option<UnlockRequest>,
    /// Consecutive wrong PINs that lock a role (1..=15): the token's own, fixed when it is
    /// created (from the configuration of that moment) and changed only by the SO. `None` only
    /// in a record of format 1, written before the token kept its limit: the token then uses
    /// its configuration's and writes that into the record at its next write of it.
    pub pin_retry_limit: Option<u32>,
}

/// [`TokenRecord`] as format 1 wrote it (without the retry limit).
#[derive(Deserialize)]
struct TokenRecordV1 {
    label: [u8; 32],
    created: String,
    so: PinRecord,
    user: PinRecord,
    so_unlock_request: Option<UnlockRequest>,
}

/// The SO PIN holder's request for the vendor to unlock the SO PIN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnlockRequest {
    /// Random request identifier; the vendor's approval signs it.
    pub id: [u8; 16],
    /// Where the "unlock completed" notice goes.
    pub email: String,
    /// When it was filed, RFC 3339 UTC.
    pub requested: String,
}

/// One security event of the audit log. Never holds a PIN or key material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When, RFC 3339 UTC.
    pub time: String,
    /// What: `login`, `pin.lock`, `pin.change`, `token.init`, `key.generate`, ...
    pub event: String,
    /// Who or what it concerned: a role, a key label.
    pub subject: String,
    /// `ok` or the CKR name of the failure.
    pub outcome: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_width_independence() {
        let rec = PinRecord {
            wrapped_master_key: None,
            failures: 300,
            locked: true,
        };
        let bytes = encode(&rec).unwrap();
        // version 3, Option None, varint 300 = ac 02, true.
        assert_eq!(bytes, vec![3, 0, 0xac, 0x02, 1]);
        assert_eq!(decode::<PinRecord>(&bytes).unwrap(), rec);
        // Its body is format 1's and 2's: records of those formats decode the same.
        assert_eq!(decode::<PinRecord>(&[1, 0, 0xac, 0x02, 1]).unwrap(), rec);
        assert_eq!(decode::<PinRecord>(&[2, 0, 0xac, 0x02, 1]).unwrap(), rec);
    }

    /// A token record of this format, byte for byte, and the same token as format 1 wrote it.
    fn token_bytes(version: u8, limit: Option<u8>) -> Vec<u8> {
        let mut b = vec![version];
        b.extend(*b"T                               ");
        b.extend([20]);
        b.extend(b"2026-12-03T16:00:00Z");
        // SO: a wrapped master key (salt, iterations 600,000 = c0 cf 24, nonce, ciphertext),
        // 2 failures, not locked.
        b.extend([1]);
        b.extend([0x5a; 16]);
        b.extend([0xc0, 0xcf, 0x24]);
        b.extend([0x0c; 12]);
        b.extend([3, 0xaa, 0xbb, 0xcc]);
        b.extend([2, 0]);
        // User: no PIN, 0 failures, locked (as C_InitToken leaves it: it is never set so).
        b.extend([0, 0, 1]);
        // No unlock request.
        b.extend([0]);
        if let Some(limit) = limit {
            b.extend([1, limit]);
        }
        b
    }

    fn token(limit: Option<u32>) -> TokenRecord {
        use crate::crypto::master_key::Sealed;
        TokenRecord {
            label: *b"T                               ",
            created: "2026-12-03T16:00:00Z".into(),
            so: PinRecord {
                wrapped_master_key: Some(WrappedMasterKey {
                    salt: [0x5a; 16],
                    iterations: 600_000,
                    sealed: Sealed {
                        nonce: [0x0c; 12],
                        ciphertext: vec![0xaa, 0xbb, 0xcc],
                    },
                }),
                failures: 2,
                locked: false,
            },
            user: PinRecord {
                wrapped_master_key: None,
                failures: 0,
                locked: true,
            },
            so_unlock_request: None,
            pin_retry_limit: limit,
        }
    }

    #[test]
    fn token_record_bytes_of_format_2_and_format_1() {
        let rec = token(Some(7));
        let bytes = encode(&rec).unwrap();
        assert_eq!(bytes, token_bytes(3, Some(7)));
        assert_eq!(decode_token(&bytes).unwrap(), rec);
        // Format 3 left the token record as format 2 wrote it.
        assert_eq!(decode_token(&token_bytes(2, Some(7))).unwrap(), rec);
        // What key4c wrote before the token kept its limit: no limit, decoded as `None`.
        let old = token_bytes(1, None);
        assert_eq!(decode_token(&old).unwrap(), token(None));
        // The generic decoder knows only this format's body.
        assert!(matches!(
            decode::<TokenRecord>(&old),
            Err(DecodeError::Corrupt(_))
        ));
        // A format-1 body with a limit after it, or a format-2 body without one: damaged.
        assert!(matches!(
            decode_token(&token_bytes(1, Some(7))),
            Err(DecodeError::Corrupt(_))
        ));
        assert!(matches!(
            decode_token(&token_bytes(2, None)),
            Err(DecodeError::Corrupt(_))
        ));
        let mut newer = bytes.clone();
        newer[0] = 4;
        assert_eq!(decode_token(&newer), Err(DecodeError::Newer(4)));
    }

    #[test]
    fn newer_truncated_and_trailing_are_refused() {
        let mut bytes = encode(&PinRecord::default()).unwrap();
        bytes[0] = 4;
        assert_eq!(decode::<PinRecord>(&bytes), Err(DecodeError::Newer(4)));
        assert!(matches!(
            decode::<PinRecord>(&[2, 0]),
            Err(DecodeError::Corrupt(_))
        ));
        assert!(matches!(
            decode::<PinRecord>(&[]),
            Err(DecodeError::Corrupt(_))
        ));
        let mut bytes = encode(&PinRecord::default()).unwrap();
        bytes.push(7);
        assert!(matches!(
            decode::<PinRecord>(&bytes),
            Err(DecodeError::Corrupt(_))
        ));
        assert!(matches!(
            decode::<PinRecord>(&[0x80; 12]),
            Err(DecodeError::Corrupt(_))
        ));
    }

    #[test]
    fn object_record_body_is_format_1s() {
        use crate::crypto::master_key::Sealed;
        use crate::token::attributes::Value;
        use crate::token::object::ObjectRecord;
        let rec = ObjectRecord {
            class: 2,
            key_type: Some(3),
            attrs: [
                (0x03, Value::Bytes(b"ab".to_vec())),
                (0x01, Value::Bool(true)),
                (0x210, Value::Ulongs(vec![0x1041])),
            ]
            .into_iter()
            .collect(),
            sealed: Some(Sealed {
                nonce: [7; 12],
                ciphertext: vec![9, 8],
            }),
        };
        // Attributes as a count and (type, value) pairs in type order; byte strings as a length
        // and the bytes: what stores written before the attributes became a map hold. The
        // body is format 1's; only the version in front is 3.
        let mut expected = vec![3, 2, 1, 3, 3];
        expected.extend([0x01, 0, 1]);
        expected.extend([0x03, 2, 2, b'a', b'b']);
        expected.extend([0x90, 0x04, 3, 1, 0xc1, 0x20]);
        expected.extend([1]);
        expected.extend([7; 12]);
        expected.extend([2, 9, 8]);
        let bytes = encode(&rec).unwrap();
        assert_eq!(bytes, expected);
        assert_eq!(decode::<ObjectRecord>(&bytes).unwrap(), rec);
        for older in [1, 2] {
            expected[0] = older;
            assert_eq!(decode::<ObjectRecord>(&expected).unwrap(), rec);
        }
        // Pairs out of order or repeated (no writer made them, a damaged store could) still
        // decode; of a repeated type the last value stays, as inserting them in turn would.
        let mut unordered = vec![1, 2, 1, 3, 3];
        unordered.extend([0x03, 2, 2, b'a', b'b']);
        unordered.extend([0x01, 0, 0]);
        unordered.extend([0x01, 0, 1]);
        unordered.push(0);
        let back = decode::<ObjectRecord>(&unordered).unwrap();
        assert_eq!(
            back.attrs.iter().collect::<Vec<_>>(),
            [
                (&0x01, &Value::Bool(true)),
                (&0x03, &Value::Bytes(b"ab".to_vec()))
            ]
        );
    }

    #[test]
    fn object_record_with_an_attribute_array() {
        use crate::token::attributes::Value;
        use crate::token::object::ObjectRecord;
        // CKA_UNWRAP_TEMPLATE (0x40000212) holding CKA_EXTRACTABLE (0x162) = false.
        let rec = ObjectRecord {
            class: 4,
            key_type: Some(0x1f),
            attrs: [(
                0x4000_0212,
                Value::Template(vec![(0x162, Value::Bool(false))]),
            )]
            .into_iter()
            .collect(),
            sealed: None,
        };
        // Version 3; class, Some(key type); one attribute: its type, the fifth kind of value
        // (4), one element: CKA_EXTRACTABLE, a bool (0), false; no sealed material.
        let mut expected = vec![3, 4, 1, 0x1f, 1];
        expected.extend([0x92, 0x84, 0x80, 0x80, 0x04]);
        expected.extend([4, 1, 0xe2, 0x02, 0, 0]);
        expected.push(0);
        let bytes = encode(&rec).unwrap();
        assert_eq!(bytes, expected);
        assert_eq!(decode::<ObjectRecord>(&bytes).unwrap(), rec);
    }
}
