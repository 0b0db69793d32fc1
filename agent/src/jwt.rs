//! Compact JWS (RFC 7515) for JWTs (RFC 7519): the signing input the token signs, and the
//! checks of a presented token that do not need the token (shape, header, time, issuer).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::keys::JwtAlg;

/// Claims the agent sets itself; a request may not give them.
pub const RESERVED_CLAIMS: [&str; 4] = ["iss", "iat", "exp", "jti"];

pub fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The `header.payload` part of a new token.
pub fn signing_input(alg: JwtAlg, kid: &str, claims: &Map<String, Value>) -> String {
    let header = json!({ "alg": alg.name(), "typ": "JWT", "kid": kid });
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(Value::Object(claims.clone()).to_string().as_bytes())
    )
}

/// A presented token, split and decoded.
#[derive(Debug)]
pub struct Presented {
    pub alg: JwtAlg,
    pub kid: String,
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    /// `header.payload` as presented: what the signature covers.
    pub signing_input: String,
    pub signature: Vec<u8>,
}

/// Why a presented token is not valid; the `reason` a verify answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    Malformed,
    UnsupportedAlg,
    UnknownKey,
    Signature,
    Expired,
    NotYetValid,
    Issuer,
}

impl Invalid {
    pub fn reason(self) -> &'static str {
        match self {
            Invalid::Malformed => "malformed",
            Invalid::UnsupportedAlg => "unsupported_alg",
            Invalid::UnknownKey => "unknown_key",
            Invalid::Signature => "bad_signature",
            Invalid::Expired => "expired",
            Invalid::NotYetValid => "not_yet_valid",
            Invalid::Issuer => "wrong_issuer",
        }
    }
}

fn object(part: &str) -> Result<Map<String, Value>, Invalid> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Invalid::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Invalid::Malformed),
    }
}

/// Splits and decodes a compact JWS; refuses `alg: none`, unknown algs and missing `kid`.
pub fn parse(token: &str) -> Result<Presented, Invalid> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Invalid::Malformed);
    };
    let header = object(h)?;
    let claims = object(p)?;
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| Invalid::Malformed)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(Invalid::Malformed)?;
    let alg = JwtAlg::from_name(alg).ok_or(Invalid::UnsupportedAlg)?;
    // "crit" names extensions the agent does not implement (RFC 7515 4.1.11).
    if header.contains_key("crit") {
        return Err(Invalid::UnsupportedAlg);
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(Invalid::UnknownKey)?
        .to_ascii_lowercase();
    Ok(Presented {
        alg,
        kid,
        header,
        claims,
        signing_input: format!("{h}.{p}"),
        signature,
    })
}

/// The claim checks after the signature: `exp` and `nbf` with `leeway`, and `iss`.
pub fn check_claims(
    claims: &Map<String, Value>,
    issuer: &str,
    leeway: u64,
    now: u64,
) -> Result<(), Invalid> {
    let time = |name: &str| -> Result<Option<u64>, Invalid> {
        match claims.get(name) {
            None => Ok(None),
            // NumericDate may be fractional; whole seconds are enough for the checks.
            Some(v) => v
                .as_f64()
                .filter(|f| *f >= 0.0)
                .map(|f| Some(f as u64))
                .ok_or(Invalid::Malformed),
        }
    };
    let exp = time("exp")?.ok_or(Invalid::Malformed)?;
    if now > exp.saturating_add(leeway) {
        return Err(Invalid::Expired);
    }
    if let Some(nbf) = time("nbf")? {
        if now.saturating_add(leeway) < nbf {
            return Err(Invalid::NotYetValid);
        }
    }
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(Invalid::Issuer);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("test claims are objects"),
        }
    }

    #[test]
    fn time_and_issuer_checks() {
        let c = claims(json!({"iss": "me", "exp": 1000, "nbf": 900}));
        assert_eq!(check_claims(&c, "me", 30, 1000), Ok(()));
        assert_eq!(check_claims(&c, "me", 30, 1030), Ok(()));
        assert_eq!(check_claims(&c, "me", 30, 1031), Err(Invalid::Expired));
        assert_eq!(check_claims(&c, "me", 30, 870), Ok(()));
        assert_eq!(check_claims(&c, "me", 30, 869), Err(Invalid::NotYetValid));
        assert_eq!(check_claims(&c, "you", 30, 1000), Err(Invalid::Issuer));
        let no_exp = claims(json!({"iss": "me"}));
        assert_eq!(check_claims(&no_exp, "me", 30, 1), Err(Invalid::Malformed));
    }

    #[test]
    fn parse_refuses_bad_shapes() {
        assert_eq!(parse("a.b").unwrap_err(), Invalid::Malformed);
        assert_eq!(parse("a.b.c.d").unwrap_err(), Invalid::Malformed);
        let none = format!("{}.{}.", b64(br#"{"alg":"none","kid":"01"}"#), b64(b"{}"));
        assert_eq!(parse(&none).unwrap_err(), Invalid::UnsupportedAlg);
        let no_kid = format!("{}.{}.", b64(br#"{"alg":"ES256"}"#), b64(b"{}"));
        assert_eq!(parse(&no_kid).unwrap_err(), Invalid::UnknownKey);
        let ok = format!(
            "{}.{}.AQ",
            b64(br#"{"alg":"ES256","kid":"0A"}"#),
            b64(b"{}")
        );
        let p = parse(&ok).unwrap();
        assert_eq!(
            (p.alg, p.kid.as_str(), p.signature),
            (JwtAlg::ES256, "0a", vec![1])
        );
    }
}
