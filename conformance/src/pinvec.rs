//! The PIN-policy vectors (`pin-vectors.tsv`): one PIN and the return code setting it must give.
//!
//! Format: `PIN<TAB>CKR_NAME`, `#` comments. In the PIN column `\xNN` is that byte, `X*N` is N
//! copies of X, and `(empty)` is the empty PIN.

use pkcs11_sys::*;

use crate::protocol::PinVector;

/// The vectors shipped with the suite (a copy of `shared/spec/pin-vectors.tsv`).
pub const BUILTIN: &str = include_str!("../data/pin-vectors.tsv");

/// The return code a vector names.
pub fn expected_rv(name: &str) -> Option<CK_RV> {
    Some(match name {
        "CKR_OK" => CKR_OK,
        "CKR_PIN_LEN_RANGE" => CKR_PIN_LEN_RANGE,
        "CKR_PIN_INVALID" => CKR_PIN_INVALID,
        "CKR_PIN_TOO_WEAK" => CKR_PIN_TOO_WEAK,
        "CKR_ARGUMENTS_BAD" => CKR_ARGUMENTS_BAD,
        _ => return None,
    })
}

/// Parses the vectors file.
pub fn parse(text: &str) -> Result<Vec<PinVector>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (pin, expect) = line
            .split_once('\t')
            .ok_or_else(|| format!("line {}: no TAB", n + 1))?;
        let expect = expect.trim().to_string();
        if expected_rv(&expect).is_none() {
            return Err(format!("line {}: unknown result {expect:?}", n + 1));
        }
        out.push(PinVector {
            index: out.len() + 1,
            pin: decode_pin(pin).map_err(|e| format!("line {}: {e}", n + 1))?,
            shown: pin.to_string(),
            expect,
        });
    }
    Ok(out)
}

fn decode_pin(s: &str) -> Result<Vec<u8>, String> {
    if s == "(empty)" {
        return Ok(Vec::new());
    }
    let b = s.as_bytes();
    if b.len() >= 3 && b[1] == b'*' && b[2..].iter().all(u8::is_ascii_digit) {
        let n: usize = s[2..].parse().map_err(|_| "bad repeat count".to_string())?;
        return Ok(vec![b[0]; n]);
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') && i + 4 <= b.len() {
            let hex =
                std::str::from_utf8(&b[i + 2..i + 4]).map_err(|_| "bad escape".to_string())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad escape \\x{hex}"))?);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_vectors_decode() {
        let v = parse(BUILTIN).unwrap();
        assert_eq!(v.len(), 27);
        let find = |s: &str| v.iter().find(|x| x.shown == s).unwrap();
        assert_eq!(find("A*256").pin, vec![b'A'; 256]);
        assert!(find("(empty)").pin.is_empty());
        assert_eq!(find("Key4C-Pin.9x\\x0a").pin, b"Key4C-Pin.9x\n".to_vec());
        assert_eq!(
            find("Key4C-P\\xc3\\xadn.9x").pin,
            "Key4C-Pín.9x".as_bytes().to_vec()
        );
        assert_eq!(find("Ab1!cD2@").expect, "CKR_PIN_LEN_RANGE");
    }

    #[test]
    fn builtin_copy_matches_the_shared_spec() {
        let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/spec/pin-vectors.tsv");
        if let Ok(text) = std::fs::read_to_string(shared) {
            assert_eq!(
                text, BUILTIN,
                "conformance/data/pin-vectors.tsv differs from shared/spec"
            );
        }
    }
}
