//! The token's signing keys as JWT keys: which `alg`s each serves, its PKCS#11 mechanism, and
//! its public JWK.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A JWS algorithm (RFC 7518, RFC 8037).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(clippy::upper_case_acronyms)]
pub enum JwtAlg {
    ES256,
    ES384,
    ES512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    EdDSA,
    HS256,
    HS384,
    HS512,
}

/// What a key is, as far as JWT cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    /// ECDSA on P-256, P-384 or P-521: exactly one `alg`.
    Ec(JwtAlg),
    Rsa,
    Ed25519,
    /// A generic secret: HS256/384/512.
    Hmac,
}

impl JwtAlg {
    /// The `alg` header value.
    pub fn name(self) -> &'static str {
        match self {
            JwtAlg::ES256 => "ES256",
            JwtAlg::ES384 => "ES384",
            JwtAlg::ES512 => "ES512",
            JwtAlg::RS256 => "RS256",
            JwtAlg::RS384 => "RS384",
            JwtAlg::RS512 => "RS512",
            JwtAlg::PS256 => "PS256",
            JwtAlg::PS384 => "PS384",
            JwtAlg::PS512 => "PS512",
            JwtAlg::EdDSA => "EdDSA",
            JwtAlg::HS256 => "HS256",
            JwtAlg::HS384 => "HS384",
            JwtAlg::HS512 => "HS512",
        }
    }

    /// Parses an `alg` header value (case-sensitive, as RFC 7515 says).
    pub fn from_name(s: &str) -> Option<JwtAlg> {
        serde_json::from_value(Value::String(s.to_string())).ok()
    }

    /// Whether a key of this family can produce this `alg`.
    pub fn fits(self, family: KeyFamily) -> bool {
        use JwtAlg::*;
        match family {
            KeyFamily::Ec(alg) => alg == self,
            KeyFamily::Rsa => matches!(self, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            KeyFamily::Ed25519 => self == EdDSA,
            KeyFamily::Hmac => matches!(self, HS256 | HS384 | HS512),
        }
    }

    /// The digest the algorithm uses (EdDSA hashes inside the signature scheme).
    fn hash(self) -> Option<MechanismType> {
        use JwtAlg::*;
        match self {
            ES256 | RS256 | PS256 | HS256 => Some(MechanismType::SHA256),
            ES384 | RS384 | PS384 | HS384 => Some(MechanismType::SHA384),
            ES512 | RS512 | PS512 | HS512 => Some(MechanismType::SHA512),
            EdDSA => None,
        }
    }

    /// The mechanism that signs the signing input as it is (the token hashes it).
    pub fn mechanism(self) -> Mechanism<'static> {
        use JwtAlg::*;
        let pss = |hash_alg: MechanismType, mgf: PkcsMgfType, s_len: u64| PkcsPssParams {
            hash_alg,
            mgf,
            s_len: s_len.into(),
        };
        match self {
            ES256 => Mechanism::EcdsaSha256,
            ES384 => Mechanism::EcdsaSha384,
            ES512 => Mechanism::EcdsaSha512,
            RS256 => Mechanism::Sha256RsaPkcs,
            RS384 => Mechanism::Sha384RsaPkcs,
            RS512 => Mechanism::Sha512RsaPkcs,
            PS256 => Mechanism::Sha256RsaPkcsPss(pss(
                MechanismType::SHA256,
                PkcsMgfType::MGF1_SHA256,
                32,
            )),
            PS384 => Mechanism::Sha384RsaPkcsPss(pss(
                MechanismType::SHA384,
                PkcsMgfType::MGF1_SHA384,
                48,
            )),
            PS512 => Mechanism::Sha512RsaPkcsPss(pss(
                MechanismType::SHA512,
                PkcsMgfType::MGF1_SHA512,
                64,
            )),
            EdDSA => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            HS256 => Mechanism::Sha256Hmac,
            HS384 => Mechanism::Sha384Hmac,
            HS512 => Mechanism::Sha512Hmac,
        }
    }

    /// For ECDSA on a module without `CKM_ECDSA_SHA*` (SoftHSM2 has only `CKM_ECDSA`): the
    /// digest the agent computes before the token signs it.
    pub fn ecdsa_prehash(self, data: &[u8]) -> Vec<u8> {
        let alg = match self.hash() {
            Some(MechanismType::SHA384) => &aws_lc_rs::digest::SHA384,
            Some(MechanismType::SHA512) => &aws_lc_rs::digest::SHA512,
            _ => &aws_lc_rs::digest::SHA256,
        };
        aws_lc_rs::digest::digest(alg, data).as_ref().to_vec()
    }

    /// Whether this is RSA (PKCS#1 v1.5 or PSS).
    pub fn is_rsa(self) -> bool {
        self.fits(KeyFamily::Rsa)
    }

    /// Whether this is ECDSA.
    pub fn is_ecdsa(self) -> bool {
        matches!(self, JwtAlg::ES256 | JwtAlg::ES384 | JwtAlg::ES512)
    }
}

/// One key of the token that JWTs are signed or verified with.
#[derive(Debug, Clone)]
pub struct Key {
    /// Hex of `CKA_ID`: the JWT `kid`.
    pub kid: String,
    pub label: String,
    pub family: KeyFamily,
    /// The private key (or the secret key).
    pub private: ObjectHandle,
    /// The public key (the secret key again for HMAC).
    pub public: ObjectHandle,
    /// The public JWK (none for a secret key).
    pub jwk: Option<Value>,
}

impl Key {
    /// The `alg` used when a request names none.
    pub fn default_alg(&self, configured: Option<JwtAlg>) -> JwtAlg {
        match configured {
            Some(alg) if alg.fits(self.family) => alg,
            _ => match self.family {
                KeyFamily::Ec(alg) => alg,
                KeyFamily::Rsa => JwtAlg::RS256,
                KeyFamily::Ed25519 => JwtAlg::EdDSA,
                KeyFamily::Hmac => JwtAlg::HS256,
            },
        }
    }
}

/// Every usable key of the token, by `kid`.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    pub by_kid: HashMap<String, Key>,
}

impl KeySet {
    /// The key a label or a hex CKA_ID names.
    pub fn find(&self, label: Option<&str>, kid: Option<&str>) -> Option<&Key> {
        match (label, kid) {
            (_, Some(kid)) => self.by_kid.get(&kid.to_ascii_lowercase()),
            (Some(label), None) => self.by_kid.values().find(|k| k.label == label),
            (None, None) => None,
        }
    }

    /// The JWKS document of the public keys, sorted by `kid` so it is stable.
    pub fn jwks(&self) -> Value {
        let mut keys: Vec<&Key> = self.by_kid.values().filter(|k| k.jwk.is_some()).collect();
        keys.sort_by(|a, b| a.kid.cmp(&b.kid));
        json!({ "keys": keys.iter().filter_map(|k| k.jwk.clone()).collect::<Vec<_>>() })
    }
}

/// Lower-case hex.
pub fn hex(v: &[u8]) -> String {
    v.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex (either case) to bytes.
pub fn parse_hex(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() || s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

/// DER of the named-curve OIDs in `CKA_EC_PARAMS`.
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];

fn bytes(session: &Session, h: ObjectHandle, t: AttributeType) -> cryptoki::error::Result<Vec<u8>> {
    let attrs = session.get_attributes(h, &[t])?;
    Ok(attrs
        .into_iter()
        .find_map(|a| match a {
            Attribute::Id(v)
            | Attribute::EcParams(v)
            | Attribute::EcPoint(v)
            | Attribute::Modulus(v)
            | Attribute::PublicExponent(v)
            | Attribute::Label(v) => Some(v),
            _ => None,
        })
        .unwrap_or_default())
}

fn key_type(session: &Session, h: ObjectHandle) -> cryptoki::error::Result<Option<KeyType>> {
    let attrs = session.get_attributes(h, &[AttributeType::KeyType])?;
    Ok(attrs.into_iter().find_map(|a| match a {
        Attribute::KeyType(t) => Some(t),
        _ => None,
    }))
}

/// `CKA_EC_POINT` as the bare point: the token returns a DER OCTET STRING (some return it bare).
fn ec_point(v: &[u8], point_len: usize) -> Option<Vec<u8>> {
    if v.len() == point_len {
        return Some(v.to_vec());
    }
    // 04 len point, with a one- or two-byte length.
    let body = match v {
        [0x04, n, rest @ ..] if usize::from(*n) == rest.len() => rest,
        [0x04, 0x81, n, rest @ ..] if usize::from(*n) == rest.len() => rest,
        _ => return None,
    };
    (body.len() == point_len).then(|| body.to_vec())
}

fn strip_zeros(v: &[u8]) -> &[u8] {
    let i = v
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(v.len().saturating_sub(1));
    &v[i..]
}

/// Reads every signing key of the token (the session must be the User's). Keys the agent
/// cannot use are skipped with a log line saying why.
pub fn discover(session: &Session) -> cryptoki::error::Result<KeySet> {
    let mut set = KeySet::default();
    let mut found = |key: Key| {
        if set.by_kid.contains_key(&key.kid) {
            log::warn!(
                "two signing keys have CKA_ID {}: {:?} is skipped (give each key its own CKA_ID)",
                key.kid,
                key.label
            );
        } else {
            set.by_kid.insert(key.kid.clone(), key);
        }
    };
    let privates = session.find_objects(&[
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::Sign(true),
    ])?;
    for private in privates {
        let id = bytes(session, private, AttributeType::Id)?;
        let label =
            String::from_utf8_lossy(&bytes(session, private, AttributeType::Label)?).into_owned();
        if id.is_empty() {
            log::warn!("private key {label:?} has no CKA_ID: skipped (the kid is its CKA_ID)");
            continue;
        }
        let kid = hex(&id);
        let publics = session.find_objects(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Id(id.clone()),
        ])?;
        let Some(&public) = publics.first() else {
            log::warn!(
                "private key {label:?} (kid {kid}) has no public key with its CKA_ID: skipped"
            );
            continue;
        };
        let Some((family, jwk)) = public_jwk(session, private, public, &kid)? else {
            log::warn!("key {label:?} (kid {kid}) is of a type no JWT alg uses: skipped");
            continue;
        };
        found(Key {
            kid,
            label,
            family,
            private,
            public,
            jwk: Some(jwk),
        });
    }
    let secrets = session.find_objects(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Sign(true),
    ])?;
    for secret in secrets {
        let id = bytes(session, secret, AttributeType::Id)?;
        let label =
            String::from_utf8_lossy(&bytes(session, secret, AttributeType::Label)?).into_owned();
        if id.is_empty() {
            log::warn!("secret key {label:?} has no CKA_ID: skipped (the kid is its CKA_ID)");
            continue;
        }
        found(Key {
            kid: hex(&id),
            label,
            family: KeyFamily::Hmac,
            private: secret,
            public: secret,
            jwk: None,
        });
    }
    Ok(set)
}

/// The family and public JWK of an asymmetric key; `None` for a type JWT has no `alg` for.
fn public_jwk(
    session: &Session,
    private: ObjectHandle,
    public: ObjectHandle,
    kid: &str,
) -> cryptoki::error::Result<Option<(KeyFamily, Value)>> {
    let with_kid = |mut v: Value, alg: Option<JwtAlg>| {
        v["kid"] = json!(kid);
        v["use"] = json!("sig");
        if let Some(alg) = alg {
            v["alg"] = json!(alg.name());
        }
        v
    };
    let Some(kt) = key_type(session, private)? else {
        return Ok(None);
    };
    Ok(if kt == KeyType::EC {
        let params = bytes(session, public, AttributeType::EcParams)?;
        let (alg, crv, n) = match params.as_slice() {
            p if p == P256 => (JwtAlg::ES256, "P-256", 32),
            p if p == P384 => (JwtAlg::ES384, "P-384", 48),
            p if p == P521 => (JwtAlg::ES512, "P-521", 66),
            _ => return Ok(None),
        };
        let Some(point) = ec_point(&bytes(session, public, AttributeType::EcPoint)?, 1 + 2 * n)
        else {
            return Ok(None);
        };
        if point[0] != 0x04 {
            return Ok(None);
        }
        let jwk =
            json!({"kty": "EC", "crv": crv, "x": b64(&point[1..1 + n]), "y": b64(&point[1 + n..])});
        Some((KeyFamily::Ec(alg), with_kid(jwk, Some(alg))))
    } else if kt == KeyType::RSA {
        let n = bytes(session, public, AttributeType::Modulus)?;
        let e = bytes(session, public, AttributeType::PublicExponent)?;
        let jwk = json!({"kty": "RSA", "n": b64(strip_zeros(&n)), "e": b64(strip_zeros(&e))});
        // No `alg`: the key serves RS* and PS*.
        Some((KeyFamily::Rsa, with_kid(jwk, None)))
    } else if kt == KeyType::EC_EDWARDS {
        let Some(x) = ec_point(&bytes(session, public, AttributeType::EcPoint)?, 32) else {
            return Ok(None);
        };
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&x)});
        Some((KeyFamily::Ed25519, with_kid(jwk, Some(JwtAlg::EdDSA))))
    } else {
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_refusals() {
        assert_eq!(parse_hex("0aFf"), Some(vec![0x0a, 0xff]));
        assert_eq!(hex(&[0x0a, 0xff]), "0aff");
        assert_eq!(parse_hex("abc"), None);
        assert_eq!(parse_hex("zz"), None);
        assert_eq!(parse_hex(""), None);
    }

    #[test]
    fn algs_fit_families() {
        assert!(JwtAlg::PS384.fits(KeyFamily::Rsa));
        assert!(!JwtAlg::ES384.fits(KeyFamily::Ec(JwtAlg::ES256)));
        assert!(JwtAlg::HS512.fits(KeyFamily::Hmac));
        assert!(!JwtAlg::EdDSA.fits(KeyFamily::Rsa));
        assert_eq!(JwtAlg::from_name("EdDSA"), Some(JwtAlg::EdDSA));
        assert_eq!(JwtAlg::from_name("none"), None);
        assert_eq!(JwtAlg::from_name("es256"), None);
    }

    #[test]
    fn ec_point_forms() {
        let point = [0x04u8; 65];
        let mut der = vec![0x04, 65];
        der.extend_from_slice(&point);
        assert_eq!(ec_point(&der, 65).as_deref(), Some(&point[..]));
        assert_eq!(ec_point(&point, 65).as_deref(), Some(&point[..]));
        let mut der133 = vec![0x04, 0x81, 133];
        der133.extend_from_slice(&[4u8; 133]);
        assert_eq!(ec_point(&der133, 133).map(|p| p.len()), Some(133));
        assert_eq!(ec_point(&[0x04, 3, 1, 2, 3], 65), None);
    }
}
