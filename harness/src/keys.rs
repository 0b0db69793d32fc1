//! Key types, their generation templates, and the signature mechanisms the harness drives.

use std::fmt;

use anyhow::{anyhow, Result};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use crate::module::Module;
use crate::status::NotSupported;

/// DER of the named-curve OIDs, as `CKA_EC_PARAMS` takes them.
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

/// A NIST prime curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    /// secp256r1.
    P256,
    /// secp384r1.
    P384,
    /// secp521r1.
    P521,
}

impl Curve {
    /// The curve's name in JWK (`crv`).
    pub fn jwk_name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }

    /// Length in bytes of a coordinate (and of each of r and s).
    pub fn field_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    fn oid(self) -> &'static [u8] {
        match self {
            Curve::P256 => OID_P256,
            Curve::P384 => OID_P384,
            Curve::P521 => OID_P521,
        }
    }
}

/// The kind of key a scenario needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// An EC key pair on a NIST curve.
    Ec(Curve),
    /// An RSA key pair of this many bits (public exponent 65537).
    Rsa(u64),
    /// An Ed25519 key pair.
    Ed25519,
    /// A generic secret of this many bytes, for HMAC.
    Secret(u64),
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::Ec(c) => f.write_str(c.jwk_name()),
            KeyKind::Rsa(bits) => write!(f, "RSA-{bits}"),
            KeyKind::Ed25519 => f.write_str("Ed25519"),
            KeyKind::Secret(n) => write!(f, "secret-{n}B"),
        }
    }
}

impl KeyKind {
    /// The generation mechanism.
    pub fn gen_mechanism(self) -> Mechanism<'static> {
        match self {
            KeyKind::Ec(_) => Mechanism::EccKeyPairGen,
            KeyKind::Rsa(_) => Mechanism::RsaPkcsKeyPairGen,
            KeyKind::Ed25519 => Mechanism::EccEdwardsKeyPairGen,
            KeyKind::Secret(_) => Mechanism::GenericSecretKeyGen,
        }
    }

    /// The attribute that holds the private part (sensitive on a sensitive key).
    pub fn secret_attribute(self) -> AttributeType {
        match self {
            KeyKind::Rsa(_) => AttributeType::PrivateExponent,
            _ => AttributeType::Value,
        }
    }

    /// The attribute that holds the public part, if the key has one.
    pub fn public_attribute(self) -> Option<AttributeType> {
        match self {
            KeyKind::Ec(_) | KeyKind::Ed25519 => Some(AttributeType::EcPoint),
            KeyKind::Rsa(_) => Some(AttributeType::Modulus),
            KeyKind::Secret(_) => None,
        }
    }
}

/// Options of a generated key.
#[derive(Clone, Debug)]
pub struct KeyOptions {
    /// `CKA_LABEL`.
    pub label: String,
    /// `CKA_ID`.
    pub id: Vec<u8>,
    /// `CKA_TOKEN`: a persistent token object rather than a session object.
    pub token: bool,
    /// For secrets: `CKA_SENSITIVE = false`, `CKA_EXTRACTABLE = true`, so the value can be read.
    pub extractable: bool,
}

/// A generated key: the private (or secret) handle, and the public handle (the same for secrets).
#[derive(Clone, Copy, Debug)]
pub struct Key {
    /// What it is.
    pub kind: KeyKind,
    /// Private key, or the secret key.
    pub private: ObjectHandle,
    /// Public key, or the secret key.
    pub public: ObjectHandle,
}

impl Key {
    /// Destroys both objects, ignoring errors.
    pub fn destroy(&self, session: &Session) {
        let _ = session.destroy_object(self.private);
        if self.public != self.private {
            let _ = session.destroy_object(self.public);
        }
    }
}

/// Returns an error saying the mechanism is not offered, unless the module lists it.
pub fn require(module: &Module, m: MechanismType) -> Result<()> {
    if module.has_mechanism(m) {
        Ok(())
    } else {
        Err(anyhow!(NotSupported(format!(
            "CKR_MECHANISM_INVALID ({m} is not in C_GetMechanismList)"
        ))))
    }
}

/// Generates a key, after checking that the module lists the generation mechanism.
pub fn generate(module: &Module, session: &Session, kind: KeyKind, o: &KeyOptions) -> Result<Key> {
    require(module, kind.gen_mechanism().mechanism_type())?;
    generate_unchecked(session, kind, o)
}

/// Generates a key without looking at the mechanism list first.
pub fn generate_unchecked(session: &Session, kind: KeyKind, o: &KeyOptions) -> Result<Key> {
    let common = |private: bool| {
        vec![
            Attribute::Token(o.token),
            Attribute::Private(private),
            Attribute::Label(o.label.as_bytes().to_vec()),
            Attribute::Id(o.id.clone()),
        ]
    };
    let private_template = || {
        let mut t = common(true);
        t.extend([
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
        ]);
        t
    };
    let pair = |public: Vec<Attribute>| -> Result<Key> {
        let mut pub_t = common(false);
        pub_t.push(Attribute::Verify(true));
        pub_t.extend(public);
        let (public, private) =
            session.generate_key_pair(&kind.gen_mechanism(), &pub_t, &private_template())?;
        Ok(Key {
            kind,
            private,
            public,
        })
    };
    match kind {
        KeyKind::Ec(curve) => pair(vec![Attribute::EcParams(curve.oid().to_vec())]),
        KeyKind::Ed25519 => pair(vec![Attribute::EcParams(OID_ED25519.to_vec())]),
        KeyKind::Rsa(bits) => pair(vec![
            Attribute::ModulusBits(bits.into()),
            Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
        ]),
        KeyKind::Secret(len) => {
            let mut t = common(true);
            t.extend([
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::ValueLen(len.into()),
                Attribute::Sign(true),
                Attribute::Verify(true),
                Attribute::Sensitive(!o.extractable),
                Attribute::Extractable(o.extractable),
            ]);
            let h = session.generate_key(&kind.gen_mechanism(), &t)?;
            Ok(Key {
                kind,
                private: h,
                public: h,
            })
        }
    }
}

/// A SHA-2 hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl Hash {
    /// Output length in bytes.
    pub fn len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        use aws_lc_rs::digest;
        let alg = match self {
            Hash::Sha256 => &digest::SHA256,
            Hash::Sha384 => &digest::SHA384,
            Hash::Sha512 => &digest::SHA512,
        };
        digest::digest(alg, data).as_ref().to_vec()
    }

    fn mechanism(self) -> MechanismType {
        match self {
            Hash::Sha256 => MechanismType::SHA256,
            Hash::Sha384 => MechanismType::SHA384,
            Hash::Sha512 => MechanismType::SHA512,
        }
    }

    fn mgf(self) -> PkcsMgfType {
        match self {
            Hash::Sha256 => PkcsMgfType::MGF1_SHA256,
            Hash::Sha384 => PkcsMgfType::MGF1_SHA384,
            Hash::Sha512 => PkcsMgfType::MGF1_SHA512,
        }
    }
}

/// A signature (or MAC) mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigMech {
    /// `CKM_ECDSA` over a digest the caller computes.
    Ecdsa,
    /// `CKM_ECDSA_SHA256/384/512`.
    EcdsaSha(Hash),
    /// `CKM_SHA256/384/512_RSA_PKCS`.
    RsaPkcs(Hash),
    /// `CKM_SHA256/384/512_RSA_PKCS_PSS`, MGF1 with the same hash, salt length = hash length.
    RsaPss(Hash),
    /// `CKM_EDDSA` (pure Ed25519).
    Eddsa,
    /// `CKM_SHA256/384/512_HMAC`.
    Hmac(Hash),
}

impl SigMech {
    /// The cryptoki mechanism, with its parameters.
    pub fn mechanism(self) -> Mechanism<'static> {
        let pss = |h: Hash| PkcsPssParams {
            hash_alg: h.mechanism(),
            mgf: h.mgf(),
            s_len: (h.len() as u64).into(),
        };
        match self {
            SigMech::Ecdsa => Mechanism::Ecdsa,
            SigMech::EcdsaSha(Hash::Sha256) => Mechanism::EcdsaSha256,
            SigMech::EcdsaSha(Hash::Sha384) => Mechanism::EcdsaSha384,
            SigMech::EcdsaSha(Hash::Sha512) => Mechanism::EcdsaSha512,
            SigMech::RsaPkcs(Hash::Sha256) => Mechanism::Sha256RsaPkcs,
            SigMech::RsaPkcs(Hash::Sha384) => Mechanism::Sha384RsaPkcs,
            SigMech::RsaPkcs(Hash::Sha512) => Mechanism::Sha512RsaPkcs,
            SigMech::RsaPss(h @ Hash::Sha256) => Mechanism::Sha256RsaPkcsPss(pss(h)),
            SigMech::RsaPss(h @ Hash::Sha384) => Mechanism::Sha384RsaPkcsPss(pss(h)),
            SigMech::RsaPss(h @ Hash::Sha512) => Mechanism::Sha512RsaPkcsPss(pss(h)),
            SigMech::Eddsa => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            SigMech::Hmac(Hash::Sha256) => Mechanism::Sha256Hmac,
            SigMech::Hmac(Hash::Sha384) => Mechanism::Sha384Hmac,
            SigMech::Hmac(Hash::Sha512) => Mechanism::Sha512Hmac,
        }
    }

    /// The mechanism's type.
    pub fn mechanism_type(self) -> MechanismType {
        self.mechanism().mechanism_type()
    }

    /// The `CKM_*` name.
    pub fn name(self) -> String {
        self.mechanism_type().to_string()
    }

    /// Every mechanism, for [`SigMech::from_id`].
    pub fn all() -> Vec<SigMech> {
        let mut v = vec![SigMech::Ecdsa, SigMech::Eddsa];
        for h in [Hash::Sha256, Hash::Sha384, Hash::Sha512] {
            v.extend([
                SigMech::EcdsaSha(h),
                SigMech::RsaPkcs(h),
                SigMech::RsaPss(h),
                SigMech::Hmac(h),
            ]);
        }
        v
    }

    /// A short identifier for command lines: the `CKM_*` name in lower case without `ckm_`.
    pub fn id(self) -> String {
        self.name().trim_start_matches("CKM_").to_lowercase()
    }

    /// The mechanism [`SigMech::id`] names.
    pub fn from_id(id: &str) -> Option<SigMech> {
        Self::all().into_iter().find(|m| m.id() == id)
    }
}

/// Reads one attribute's bytes, or fails saying which attribute is missing.
pub fn read_bytes(session: &Session, h: ObjectHandle, t: AttributeType) -> Result<Vec<u8>> {
    for a in session.get_attributes(h, &[t])? {
        match a {
            Attribute::EcPoint(v)
            | Attribute::Modulus(v)
            | Attribute::PublicExponent(v)
            | Attribute::Value(v)
            | Attribute::Id(v)
            | Attribute::Label(v)
            | Attribute::PrivateExponent(v) => return Ok(v),
            _ => {}
        }
    }
    Err(anyhow!("the module did not return {t:?}"))
}

/// The uncompressed point `04 || x || y` (or the raw Edwards point) of `point_len` bytes from
/// `CKA_EC_POINT`, which PKCS#11 wraps in a DER OCTET STRING (some modules return it bare).
pub fn unwrap_ec_point(v: &[u8], point_len: usize) -> Result<Vec<u8>> {
    if v.len() == point_len {
        return Ok(v.to_vec());
    }
    let body = match v {
        [0x04, n, rest @ ..] if (*n as usize) < 0x80 => rest,
        [0x04, 0x81, _, rest @ ..] => rest,
        [0x04, 0x82, _, _, rest @ ..] => rest,
        _ => v,
    };
    if body.len() == point_len {
        Ok(body.to_vec())
    } else {
        Err(anyhow!(
            "CKA_EC_POINT of {} bytes is not a {point_len}-byte point",
            v.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_point_unwrapping() {
        let mut point = vec![0x04];
        point.extend([7u8; 64]);
        let mut der = vec![0x04, 65];
        der.extend(&point);
        assert_eq!(unwrap_ec_point(&der, 65).unwrap(), point);
        assert_eq!(unwrap_ec_point(&point, 65).unwrap(), point);
        let ed = [9u8; 32];
        let mut der = vec![0x04, 32];
        der.extend(ed);
        assert_eq!(unwrap_ec_point(&der, 32).unwrap(), ed);
        let mut p521 = vec![0x04];
        p521.extend([1u8; 132]);
        let mut der = vec![0x04, 0x81, 133];
        der.extend(&p521);
        assert_eq!(unwrap_ec_point(&der, 133).unwrap(), p521);
        assert!(unwrap_ec_point(&der, 65).is_err());
    }

    #[test]
    fn mechanism_ids_round_trip() {
        for m in SigMech::all() {
            assert_eq!(SigMech::from_id(&m.id()), Some(m), "{}", m.name());
        }
        assert_eq!(SigMech::Ecdsa.id(), "ecdsa");
    }
}
