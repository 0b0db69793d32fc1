//! Key material: parsing a key's attributes into a crypto-layer key (on import and on first
//! use), the attributes a key derives from its material (CKA_EC_POINT, CKA_PUBLIC_KEY_INFO,
//! CKA_VALUE_LEN, CKA_MODULUS_BITS, ...), and key generation.

use std::sync::OnceLock;

use pkcs11_sys::*;
use zeroize::Zeroizing;

use super::attributes::Value;
use super::error::{Error, Result};
use super::object::{Attributes, SecretAttributes};
use crate::crypto::digest::HashAlg;
use crate::crypto::ec::{EcCurve, EcPrivateKey, EcPublicKey};
use crate::crypto::eddsa::{parse_ed_params, Ed25519PrivateKey, Ed25519PublicKey};
use crate::crypto::error::CryptoError;
use crate::crypto::hmac::HmacKey;
use crate::crypto::rsa::{RsaPrivateComponents, RsaPrivateKey, RsaPublicKey};

/// A generic-secret or AES key, with its HMAC key schedules built on first use.
pub struct SecretKey {
    /// The key bytes.
    pub bytes: Zeroizing<Vec<u8>>,
    hmac: [OnceLock<HmacKey>; 3],
}

impl SecretKey {
    /// Wraps key bytes.
    pub fn new(bytes: Vec<u8>) -> SecretKey {
        SecretKey {
            bytes: Zeroizing::new(bytes),
            hmac: Default::default(),
        }
    }

    /// The HMAC key for `hash` (SHA-256/384/512), built once.
    pub fn hmac(&self, hash: HashAlg) -> Result<&HmacKey> {
        let slot = match hash {
            HashAlg::Sha256 => &self.hmac[0],
            HashAlg::Sha384 => &self.hmac[1],
            HashAlg::Sha512 => &self.hmac[2],
            HashAlg::Sha1 => return Err(Error::MechanismInvalid),
        };
        if let Some(k) = slot.get() {
            return Ok(k);
        }
        let key = HmacKey::new(hash, &self.bytes)?;
        Ok(slot.get_or_init(|| key))
    }
}

/// A key ready for operations. Always behind an `Arc`, so the size of the largest variant
/// costs one allocation per key, not per operation.
#[allow(clippy::large_enum_variant)]
pub enum KeyMaterial {
    /// Generic secret or AES key.
    Secret(SecretKey),
    /// EC private key (ECDSA).
    EcPrivate(EcPrivateKey),
    /// EC public key.
    EcPublic(EcPublicKey),
    /// RSA private key.
    RsaPrivate(RsaPrivateKey),
    /// RSA public key.
    RsaPublic(RsaPublicKey),
    /// Ed25519 private key.
    EdPrivate(Ed25519PrivateKey),
    /// Ed25519 public key.
    EdPublic(Ed25519PublicKey),
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyMaterial::Secret(k) => write!(f, "Secret({} bytes)", k.bytes.len()),
            KeyMaterial::EcPrivate(k) => write!(f, "EcPrivate({:?})", k.curve()),
            KeyMaterial::EcPublic(k) => write!(f, "EcPublic({:?})", k.curve()),
            KeyMaterial::RsaPrivate(k) => write!(f, "RsaPrivate({} bits)", k.bits()),
            KeyMaterial::RsaPublic(k) => write!(f, "RsaPublic({} bits)", k.bits()),
            KeyMaterial::EdPrivate(_) => write!(f, "EdPrivate"),
            KeyMaterial::EdPublic(_) => write!(f, "EdPublic"),
        }
    }
}

impl From<CryptoError> for Error {
    fn from(e: CryptoError) -> Error {
        match e {
            CryptoError::KeyInvalid => Error::AttributeValueInvalid,
            CryptoError::CurveNotSupported => Error::CurveNotSupported,
            CryptoError::KeySizeRange => Error::KeySizeRange,
            CryptoError::DataLenRange => Error::DataLenRange,
            CryptoError::DataInvalid => Error::DataInvalid,
            CryptoError::SignatureInvalid => Error::SignatureInvalid,
            CryptoError::SignatureLenRange => Error::SignatureLenRange,
            CryptoError::EncryptedDataInvalid => Error::EncryptedDataInvalid,
            CryptoError::EncryptedDataLenRange => Error::EncryptedDataLenRange,
            CryptoError::WrappedKeyInvalid => Error::WrappedKeyInvalid,
            CryptoError::WrappedKeyLenRange => Error::WrappedKeyLenRange,
            CryptoError::MechanismParamInvalid => Error::MechanismParamInvalid,
            CryptoError::Internal(what) => Error::GeneralError(what.into()),
        }
    }
}

/// Key types the token stores, per class.
pub fn key_type_supported(class: CK_OBJECT_CLASS, key_type: CK_KEY_TYPE) -> bool {
    match class {
        CKO_SECRET_KEY => matches!(key_type, CKK_GENERIC_SECRET | CKK_AES),
        CKO_PUBLIC_KEY | CKO_PRIVATE_KEY => matches!(key_type, CKK_EC | CKK_RSA | CKK_EC_EDWARDS),
        _ => false,
    }
}

fn bytes(attrs: &Attributes, ty: CK_ATTRIBUTE_TYPE) -> Result<&[u8]> {
    attrs
        .get(&ty)
        .and_then(Value::as_bytes)
        .ok_or(Error::TemplateIncomplete)
}

fn secret(secrets: &SecretAttributes, ty: CK_ATTRIBUTE_TYPE) -> Result<&[u8]> {
    secrets
        .get(ty)
        .and_then(Value::as_bytes)
        .ok_or(Error::TemplateIncomplete)
}

fn optional_secret(
    secrets: &SecretAttributes,
    ty: CK_ATTRIBUTE_TYPE,
) -> Option<Zeroizing<Vec<u8>>> {
    secrets
        .get(ty)
        .and_then(Value::as_bytes)
        .map(|b| Zeroizing::new(b.to_vec()))
}

/// The curve CKA_EC_PARAMS names (P-256, P-384, P-521).
pub fn ec_curve(params: &[u8]) -> Result<EcCurve> {
    EcCurve::from_params(params).map_err(|e| match e {
        CryptoError::CurveNotSupported => Error::CurveNotSupported,
        _ => Error::DomainParamsInvalid,
    })
}

/// Checks CKA_EC_PARAMS of an Edwards key (Ed25519, as OID or as curve name).
pub fn ed_params(params: &[u8]) -> Result<()> {
    parse_ed_params(params).map(|_| ()).map_err(|e| match e {
        CryptoError::CurveNotSupported => Error::CurveNotSupported,
        _ => Error::DomainParamsInvalid,
    })
}

/// Checks an AES key length.
pub fn check_aes_len(len: usize) -> Result<()> {
    if matches!(len, 16 | 24 | 32) {
        Ok(())
    } else {
        Err(Error::AttributeValueInvalid)
    }
}

/// The attributes a key's material determines, added to (or replacing) the object's.
pub fn derived_attributes(material: &KeyMaterial, attrs: &mut Attributes) -> Result<()> {
    match material {
        KeyMaterial::Secret(k) => {
            let len = k.bytes.len() as u64;
            if attrs
                .get(&CKA_VALUE_LEN)
                .is_some_and(|v| v.as_ulong() != Some(len))
            {
                return Err(Error::TemplateInconsistent);
            }
            attrs.insert(CKA_VALUE_LEN, Value::Ulong(len));
        }
        KeyMaterial::EcPublic(k) => {
            attrs.insert(CKA_EC_POINT, Value::Bytes(k.ec_point_der()));
            attrs.insert(CKA_PUBLIC_KEY_INFO, Value::Bytes(k.spki_der()));
        }
        KeyMaterial::EcPrivate(k) => {
            attrs.insert(
                CKA_PUBLIC_KEY_INFO,
                Value::Bytes(k.public_key()?.spki_der()),
            );
        }
        KeyMaterial::RsaPublic(k) => {
            attrs.insert(CKA_MODULUS, Value::Bytes(k.modulus().to_vec()));
            attrs.insert(
                CKA_PUBLIC_EXPONENT,
                Value::Bytes(k.public_exponent().to_vec()),
            );
            attrs.insert(CKA_MODULUS_BITS, Value::Ulong(k.bits() as u64));
            attrs.insert(CKA_PUBLIC_KEY_INFO, Value::Bytes(k.spki_der()));
        }
        KeyMaterial::RsaPrivate(k) => {
            let public = k.public_key();
            attrs.insert(CKA_MODULUS, Value::Bytes(public.modulus().to_vec()));
            attrs.insert(
                CKA_PUBLIC_EXPONENT,
                Value::Bytes(public.public_exponent().to_vec()),
            );
            attrs.insert(CKA_MODULUS_BITS, Value::Ulong(public.bits() as u64));
            attrs.insert(CKA_PUBLIC_KEY_INFO, Value::Bytes(public.spki_der()));
        }
        KeyMaterial::EdPublic(k) => {
            attrs.insert(CKA_EC_POINT, Value::Bytes(k.ec_point_der()));
            attrs.insert(CKA_PUBLIC_KEY_INFO, Value::Bytes(k.spki_der()));
        }
        KeyMaterial::EdPrivate(k) => {
            attrs.insert(
                CKA_PUBLIC_KEY_INFO,
                Value::Bytes(k.public_key()?.spki_der()),
            );
        }
    }
    Ok(())
}

/// The secret attributes of a private or secret key, for storing (sealed).
pub fn secret_attributes(material: &KeyMaterial) -> Result<SecretAttributes> {
    let b = |v: &[u8]| Value::Bytes(v.to_vec());
    Ok(SecretAttributes(match material {
        KeyMaterial::Secret(k) => vec![(CKA_VALUE as u64, b(&k.bytes))],
        KeyMaterial::EcPrivate(k) => vec![(CKA_VALUE as u64, b(&k.scalar()?))],
        KeyMaterial::EdPrivate(k) => vec![(CKA_VALUE as u64, b(&*k.seed()))],
        KeyMaterial::RsaPrivate(k) => {
            let c = k.components();
            let mut v = vec![(CKA_PRIVATE_EXPONENT as u64, b(&c.private_exponent))];
            for (ty, part) in [
                (CKA_PRIME_1, &c.prime_1),
                (CKA_PRIME_2, &c.prime_2),
                (CKA_EXPONENT_1, &c.exponent_1),
                (CKA_EXPONENT_2, &c.exponent_2),
                (CKA_COEFFICIENT, &c.coefficient),
            ] {
                if let Some(p) = part {
                    v.push((ty as u64, b(p)));
                }
            }
            v
        }
        KeyMaterial::EcPublic(_) | KeyMaterial::RsaPublic(_) | KeyMaterial::EdPublic(_) => {
            Vec::new()
        }
    }))
}

/// C_CreateObject of a key: parses and checks the material and adds the attributes it
/// determines.
pub fn import(
    class: CK_OBJECT_CLASS,
    key_type: CK_KEY_TYPE,
    attrs: &mut Attributes,
    secrets: &SecretAttributes,
) -> Result<KeyMaterial> {
    let material = KeyMaterial::from_attributes(class, key_type, attrs, secrets)?;
    derived_attributes(&material, attrs)?;
    Ok(material)
}

impl KeyMaterial {
    /// Parses a stored key's attributes.
    pub fn from_attributes(
        class: CK_OBJECT_CLASS,
        key_type: CK_KEY_TYPE,
        attrs: &Attributes,
        secrets: &SecretAttributes,
    ) -> Result<KeyMaterial> {
        Ok(match (class, key_type) {
            (CKO_SECRET_KEY, kt) => {
                let value = secret(secrets, CKA_VALUE)?;
                if value.is_empty() {
                    return Err(Error::AttributeValueInvalid);
                }
                if kt == CKK_AES {
                    check_aes_len(value.len())?;
                }
                KeyMaterial::Secret(SecretKey::new(value.to_vec()))
            }
            (CKO_PUBLIC_KEY, CKK_EC) => KeyMaterial::EcPublic(EcPublicKey::from_point(
                ec_curve(bytes(attrs, CKA_EC_PARAMS)?)?,
                bytes(attrs, CKA_EC_POINT)?,
            )?),
            (CKO_PRIVATE_KEY, CKK_EC) => KeyMaterial::EcPrivate(EcPrivateKey::from_scalar(
                ec_curve(bytes(attrs, CKA_EC_PARAMS)?)?,
                secret(secrets, CKA_VALUE)?,
            )?),
            (CKO_PUBLIC_KEY, CKK_EC_EDWARDS) => {
                ed_params(bytes(attrs, CKA_EC_PARAMS)?)?;
                KeyMaterial::EdPublic(Ed25519PublicKey::from_point(bytes(attrs, CKA_EC_POINT)?)?)
            }
            (CKO_PRIVATE_KEY, CKK_EC_EDWARDS) => {
                ed_params(bytes(attrs, CKA_EC_PARAMS)?)?;
                KeyMaterial::EdPrivate(Ed25519PrivateKey::from_seed(secret(secrets, CKA_VALUE)?)?)
            }
            (CKO_PUBLIC_KEY, CKK_RSA) => KeyMaterial::RsaPublic(RsaPublicKey::from_components(
                bytes(attrs, CKA_MODULUS)?,
                bytes(attrs, CKA_PUBLIC_EXPONENT)?,
            )?),
            (CKO_PRIVATE_KEY, CKK_RSA) => {
                let components = RsaPrivateComponents {
                    modulus: bytes(attrs, CKA_MODULUS)?.to_vec(),
                    public_exponent: bytes(attrs, CKA_PUBLIC_EXPONENT)?.to_vec(),
                    private_exponent: Zeroizing::new(
                        secret(secrets, CKA_PRIVATE_EXPONENT)?.to_vec(),
                    ),
                    prime_1: optional_secret(secrets, CKA_PRIME_1),
                    prime_2: optional_secret(secrets, CKA_PRIME_2),
                    exponent_1: optional_secret(secrets, CKA_EXPONENT_1),
                    exponent_2: optional_secret(secrets, CKA_EXPONENT_2),
                    coefficient: optional_secret(secrets, CKA_COEFFICIENT),
                };
                KeyMaterial::RsaPrivate(RsaPrivateKey::from_components(&components)?)
            }
            _ => return Err(Error::KeyTypeInconsistent),
        })
    }
}
