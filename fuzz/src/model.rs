//! Reference models the targets compare the module against, written from the specification
//! (`shared/spec/key4c-v3-token.md`) without looking at how the module does it.

/// What the Key4C V3 PIN policy says about a new PIN (rules 1 to 5, first failure wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinVerdict {
    Ok,
    /// Rule 1: CKR_PIN_LEN_RANGE.
    Length,
    /// Rule 2: CKR_PIN_INVALID.
    Character,
    /// Rule 3: CKR_PIN_TOO_WEAK.
    MissingClass,
    /// Rule 4: CKR_PIN_TOO_WEAK.
    Repeated,
    /// Rule 5: CKR_PIN_TOO_WEAK.
    Sequential,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Upper,
    Lower,
    Digit,
    Special,
    Other,
}

fn class(c: u8) -> Class {
    match c {
        b'A'..=b'Z' => Class::Upper,
        b'a'..=b'z' => Class::Lower,
        b'0'..=b'9' => Class::Digit,
        b'(' | b')' | b',' | b'.' | b'!' | b'@' | b'#' | b'$' | b'%' | b'^' | b'&' | b'*'
        | b'-' | b':' | b';' | b' ' => Class::Special,
        _ => Class::Other,
    }
}

/// The character a letter stands for whatever its case; other characters as they are.
fn fold(c: u8) -> u8 {
    if class(c) == Class::Upper {
        c - b'A' + b'a'
    } else {
        c
    }
}

fn is_letter(c: u8) -> bool {
    matches!(class(c), Class::Upper | Class::Lower)
}

/// The reference verdict: one pass per rule, counting runs as they go.
pub fn pin_verdict(pin: &[u8]) -> PinVerdict {
    if pin.len() < 9 || pin.len() > 255 {
        return PinVerdict::Length;
    }
    if pin.iter().any(|&c| class(c) == Class::Other) {
        return PinVerdict::Character;
    }
    let mut seen = [false; 4];
    for &c in pin {
        match class(c) {
            Class::Upper => seen[0] = true,
            Class::Lower => seen[1] = true,
            Class::Digit => seen[2] = true,
            Class::Special => seen[3] = true,
            Class::Other => unreachable!(),
        }
    }
    if seen.contains(&false) {
        return PinVerdict::MissingClass;
    }
    let mut run = 1;
    for i in 1..pin.len() {
        if fold(pin[i]) == fold(pin[i - 1]) {
            run += 1;
            if run >= 4 {
                return PinVerdict::Repeated;
            }
        } else {
            run = 1;
        }
    }
    let (mut up, mut down) = (1, 1);
    for i in 1..pin.len() {
        let (a, b) = (fold(pin[i - 1]), fold(pin[i]));
        let same_kind = (a.is_ascii_digit() && b.is_ascii_digit())
            || (is_letter(pin[i - 1]) && is_letter(pin[i]));
        up = if same_kind && b == a.wrapping_add(1) {
            up + 1
        } else {
            1
        };
        down = if same_kind && a == b.wrapping_add(1) {
            down + 1
        } else {
            1
        };
        if up >= 4 || down >= 4 {
            return PinVerdict::Sequential;
        }
    }
    PinVerdict::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples() {
        assert_eq!(pin_verdict(b"short"), PinVerdict::Length);
        assert_eq!(pin_verdict(b"Abcdefg1_"), PinVerdict::Character);
        assert_eq!(pin_verdict(b"abcdefg1!"), PinVerdict::MissingClass);
        assert_eq!(pin_verdict(b"Ab1!aAaAx"), PinVerdict::Repeated);
        assert_eq!(pin_verdict(b"Ab1!    x"), PinVerdict::Repeated);
        assert_eq!(pin_verdict(b"Xy.9-DcBa"), PinVerdict::Sequential);
        assert_eq!(pin_verdict(b"Xy.7890-a"), PinVerdict::Ok);
        assert_eq!(pin_verdict(b"Xy.yzab-1"), PinVerdict::Ok);
        assert_eq!(pin_verdict(b"So-Pin.2024x"), PinVerdict::Ok);
    }
}

/// The repository's copy of the spec's PIN vectors.
pub const PIN_VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../provider/tests/data/pin-vectors.tsv"
);

/// The PIN vectors ([`PIN_VECTORS`], the repository's copy of `shared/spec/pin-vectors.tsv`,
/// which provider/tests/token.rs keeps equal to the spec), decoded: (PIN, expected CKR name).
/// A missing or empty file is an error: the checks they feed must never be skipped quietly.
pub fn pin_vectors() -> Vec<(Vec<u8>, String)> {
    let text = std::fs::read_to_string(PIN_VECTORS).unwrap_or_else(|e| {
        panic!("the PIN vectors {PIN_VECTORS} cannot be read ({e}): they are part of the repository (git checkout provider/tests/data/pin-vectors.tsv)")
    });
    let vectors: Vec<(Vec<u8>, String)> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (pin, want) = l.split_once('\t').expect("two columns");
            (decode_vector(pin), want.trim().to_string())
        })
        .collect();
    assert!(
        vectors.len() > 10,
        "{PIN_VECTORS}: only {} vectors",
        vectors.len()
    );
    vectors
}

/// One PIN of the vectors file: `\xNN` is a byte, `X*N` N copies of X, `(empty)` nothing.
fn decode_vector(s: &str) -> Vec<u8> {
    if s == "(empty)" {
        return Vec::new();
    }
    if let Some((c, n)) = s.rsplit_once('*') {
        if let Ok(n) = n.parse::<usize>() {
            return c.as_bytes().repeat(n);
        }
    }
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') && i + 3 < b.len() {
            out.push(u8::from_str_radix(&s[i + 2..i + 4], 16).expect("hex"));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// The CKR name the model gives a PIN.
pub fn verdict_ckr(v: PinVerdict) -> &'static str {
    match v {
        PinVerdict::Ok => "CKR_OK",
        PinVerdict::Length => "CKR_PIN_LEN_RANGE",
        PinVerdict::Character => "CKR_PIN_INVALID",
        _ => "CKR_PIN_TOO_WEAK",
    }
}

#[cfg(test)]
mod vectors {
    use super::*;

    #[test]
    fn the_model_agrees_with_the_spec_vectors() {
        let vectors = pin_vectors();
        for (pin, want) in vectors {
            let got = verdict_ckr(pin_verdict(&pin));
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(&pin));
        }
    }
}
