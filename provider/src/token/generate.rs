//! Key generation (PKCS#11 3.0 section 5.14): C_GenerateKey and C_GenerateKeyPair.

use pkcs11_sys::*;

use super::attributes::{RawAttribute, Value};
use super::error::{Error, Result};
use super::keys::{self, KeyMaterial, SecretKey};
use super::mechanisms::Mechanism;
use super::object::Attributes;
use super::objects::{build_attributes, class_and_key_type, decode_template, Origin, Template};
use super::Token;
use crate::crypto::digest::HashAlg;
use crate::crypto::ec::EcPrivateKey;
use crate::crypto::eddsa::Ed25519PrivateKey;
use crate::crypto::rsa::{RsaPrivateKey, RsaPublicKey};

/// RSA sizes the token generates.
pub const RSA_GENERATE_BITS: [usize; 3] = [2048, 3072, 4096];
/// The longest generic secret the token generates, in bytes.
pub const MAX_GENERIC_SECRET_LEN: usize = 512;

/// Adds CKA_CLASS (and CKA_KEY_TYPE) to a template that left them out; a template that
/// names other ones is inconsistent with the mechanism.
fn with_class(
    mut template: Template,
    class: CK_OBJECT_CLASS,
    key_type: CK_KEY_TYPE,
) -> Result<Template> {
    for (ty, want) in [(CKA_CLASS, class as u64), (CKA_KEY_TYPE, key_type as u64)] {
        match template.iter().find(|(t, _)| *t == ty) {
            Some((_, v)) if v.as_ulong() != Some(want) => return Err(Error::TemplateInconsistent),
            Some(_) => {}
            None => template.push((ty, Value::Ulong(want))),
        }
    }
    Ok(template)
}

/// The attributes generation sets (PKCS#11 table footnotes: LOCAL, KEY_GEN_MECHANISM,
/// ALWAYS_SENSITIVE, NEVER_EXTRACTABLE).
fn mark_generated(attrs: &mut Attributes, mechanism: CK_MECHANISM_TYPE) {
    attrs.insert(CKA_LOCAL, Value::Bool(true));
    attrs.insert(CKA_KEY_GEN_MECHANISM, Value::Ulong(mechanism as u64));
    if attrs.contains_key(&CKA_SENSITIVE) {
        let sensitive = attrs
            .get(&CKA_SENSITIVE)
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let extractable = attrs
            .get(&CKA_EXTRACTABLE)
            .and_then(Value::as_bool)
            .unwrap_or(false);
        attrs.insert(CKA_ALWAYS_SENSITIVE, Value::Bool(sensitive));
        attrs.insert(CKA_NEVER_EXTRACTABLE, Value::Bool(!extractable));
    }
}

impl Token {
    /// C_GenerateKey: AES and generic secret keys.
    pub fn generate_key(
        &self,
        handle: CK_SESSION_HANDLE,
        mechanism: Mechanism,
        raw: &[RawAttribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        let session = self.session(handle)?;
        let key_type = match mechanism {
            Mechanism::AesKeyGen => CKK_AES,
            Mechanism::GenericSecretKeyGen => CKK_GENERIC_SECRET,
            _ => return Err(Error::MechanismInvalid),
        };
        let template = with_class(decode_template(raw)?, CKO_SECRET_KEY, key_type)?;
        let (class, key_type) = class_and_key_type(&template, Some(key_type))?;
        let token = template
            .iter()
            .any(|(t, v)| *t == CKA_TOKEN && v.as_bool() == Some(true));
        self.check_may_write(&session, class, token, true)?;
        let (mut attrs, _) = build_attributes(class, key_type, &template, Origin::Generate)?;
        let len = attrs
            .get(&CKA_VALUE_LEN)
            .and_then(Value::as_ulong)
            .ok_or(Error::TemplateIncomplete)? as usize;
        match key_type {
            Some(CKK_AES) => keys::check_aes_len(len)?,
            _ if !(1..=MAX_GENERIC_SECRET_LEN).contains(&len) => {
                return Err(Error::AttributeValueInvalid)
            }
            _ => {}
        }
        let mut bytes = vec![0u8; len];
        crate::crypto::random_fill(&mut bytes)
            .map_err(|_| Error::DeviceError("the random generator failed".into()))?;
        let material = KeyMaterial::Secret(SecretKey::new(bytes));
        keys::derived_attributes(&material, &mut attrs)?;
        mark_generated(&mut attrs, mechanism.ck_type());
        let secrets = keys::secret_attributes(&material)?;
        self.add_object(&session, attrs, secrets, Some(material))
    }

    /// C_GenerateKeyPair: EC (P-256/384/521), RSA (2048/3072/4096), Ed25519.
    pub fn generate_key_pair(
        &self,
        handle: CK_SESSION_HANDLE,
        mechanism: Mechanism,
        public_raw: &[RawAttribute],
        private_raw: &[RawAttribute],
    ) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)> {
        let session = self.session(handle)?;
        let key_type = match mechanism {
            Mechanism::EcKeyPairGen => CKK_EC,
            Mechanism::EdwardsKeyPairGen => CKK_EC_EDWARDS,
            Mechanism::RsaKeyPairGen => CKK_RSA,
            _ => return Err(Error::MechanismInvalid),
        };
        let public_t = with_class(decode_template(public_raw)?, CKO_PUBLIC_KEY, key_type)?;
        let mut private_t = with_class(decode_template(private_raw)?, CKO_PRIVATE_KEY, key_type)?;
        let is_token = |t: &Template| {
            t.iter()
                .any(|(ty, v)| *ty == CKA_TOKEN && v.as_bool() == Some(true))
        };
        self.check_may_write(&session, CKO_PUBLIC_KEY, is_token(&public_t), false)?;
        self.check_may_write(&session, CKO_PRIVATE_KEY, is_token(&private_t), true)?;
        // The domain parameters come with the public template; the private key has them too.
        for ty in [CKA_EC_PARAMS, CKA_MODULUS_BITS] {
            if let Some(v) = public_t
                .iter()
                .find(|(t, _)| *t == ty)
                .map(|(_, v)| v.clone())
            {
                if !private_t.iter().any(|(t, _)| *t == ty) {
                    private_t.push((ty, v));
                }
            }
        }
        let (mut public, _) =
            build_attributes(CKO_PUBLIC_KEY, Some(key_type), &public_t, Origin::Generate)?;
        let (mut private, _) = build_attributes(
            CKO_PRIVATE_KEY,
            Some(key_type),
            &private_t,
            Origin::Generate,
        )?;
        if key_type == CKK_RSA {
            // CKA_MODULUS_BITS describes the public key; the private one gets it derived.
            private.remove(&CKA_MODULUS_BITS);
        }
        let (private_key, public_key) = match key_type {
            CKK_EC => {
                let curve = keys::ec_curve(
                    public
                        .get(&CKA_EC_PARAMS)
                        .and_then(Value::as_bytes)
                        .unwrap_or(&[]),
                )?;
                let k = EcPrivateKey::generate(curve)?;
                let p = k.public_key()?;
                (KeyMaterial::EcPrivate(k), KeyMaterial::EcPublic(p))
            }
            CKK_EC_EDWARDS => {
                keys::ed_params(
                    public
                        .get(&CKA_EC_PARAMS)
                        .and_then(Value::as_bytes)
                        .unwrap_or(&[]),
                )?;
                let k = Ed25519PrivateKey::generate()?;
                let p = k.public_key()?;
                (KeyMaterial::EdPrivate(k), KeyMaterial::EdPublic(p))
            }
            _ => {
                let bits = public
                    .get(&CKA_MODULUS_BITS)
                    .and_then(Value::as_ulong)
                    .unwrap_or(0) as usize;
                if !RSA_GENERATE_BITS.contains(&bits) {
                    return Err(Error::KeySizeRange);
                }
                let exponent = public
                    .get(&CKA_PUBLIC_EXPONENT)
                    .and_then(Value::as_bytes)
                    .map(<[u8]>::to_vec);
                let k = RsaPrivateKey::generate(bits, exponent.as_deref())?;
                let p = RsaPublicKey::from_components(
                    k.public_key().modulus(),
                    k.public_key().public_exponent(),
                )?;
                (KeyMaterial::RsaPrivate(k), KeyMaterial::RsaPublic(p))
            }
        };
        keys::derived_attributes(&public_key, &mut public)?;
        keys::derived_attributes(&private_key, &mut private)?;
        share_id(&mut public, &mut private);
        mark_generated(&mut public, mechanism.ck_type());
        mark_generated(&mut private, mechanism.ck_type());
        let secrets = keys::secret_attributes(&private_key)?;
        let public = self.prepare_object(&session, public, Default::default(), Some(public_key))?;
        let private = self.prepare_object(&session, private, secrets, Some(private_key))?;
        // One batch: a crash leaves both halves on disk or neither.
        let handles = self.commit_objects(vec![public, private])?;
        Ok((handles[0], handles[1]))
    }
}

/// A pair's halves share a CKA_ID: the one given, else the SHA-1 of the public key's
/// SubjectPublicKeyInfo (20 bytes, as many tools compute it).
fn share_id(public: &mut Attributes, private: &mut Attributes) {
    let id_of = |a: &Attributes| {
        a.get(&CKA_ID)
            .and_then(Value::as_bytes)
            .filter(|v| !v.is_empty())
            .map(<[u8]>::to_vec)
    };
    let id = id_of(public).or_else(|| id_of(private)).unwrap_or_else(|| {
        let spki = public
            .get(&CKA_PUBLIC_KEY_INFO)
            .and_then(Value::as_bytes)
            .unwrap_or(&[]);
        HashAlg::Sha1.digest(spki)
    });
    for attrs in [public, private] {
        if id_of(attrs).is_none() {
            attrs.insert(CKA_ID, Value::Bytes(id.clone()));
        }
    }
}
