//! The attribute policy, kept as data: for every attribute the token knows, its value type,
//! the object classes and key types it belongs to, and the rules of the PKCS#11 3.0 tables
//! (required when created or generated, set by the token, sensitive, modifiable), and how long
//! a caller's value of it may be ([`raw_len`]), checked before a byte of it is read.

use pkcs11_sys::*;
use serde::{Deserialize, Serialize};

use super::error::{Error, Result};

/// An attribute value, independent of the machine's CK_ULONG width.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    /// CK_BBOOL.
    Bool(bool),
    /// CK_ULONG (class, key type, lengths, mechanism, ...).
    Ulong(u64),
    /// Byte strings, dates, big integers, DER. (As bytes, not as a sequence of u8: the same
    /// encoding in the store, decoded by one copy instead of byte by byte.)
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
    /// CK_MECHANISM_TYPE array (CKA_ALLOWED_MECHANISMS).
    Ulongs(Vec<u64>),
    /// An attribute array (CKF_ARRAY_ATTRIBUTE: CKA_WRAP_TEMPLATE, CKA_UNWRAP_TEMPLATE,
    /// CKA_DERIVE_TEMPLATE): the attributes it holds, by type, none of them an array itself.
    /// (Added after the first stores: records holding one are of format 3, see
    /// `store::records`.)
    Template(Vec<(u64, Value)>),
}

impl Value {
    /// The value in PKCS#11's in-memory encoding on this machine.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Value::Bool(b) => vec![u8::from(*b)],
            Value::Ulong(v) => (*v as CK_ULONG).to_ne_bytes().to_vec(),
            Value::Bytes(b) => b.clone(),
            Value::Ulongs(v) => v
                .iter()
                .flat_map(|x| (*x as CK_ULONG).to_ne_bytes())
                .collect(),
            // An attribute array has no encoding of its own in one buffer: C_GetAttributeValue
            // hands it out element by element (`objects::AttributeRead::Array`).
            Value::Template(_) => Vec::new(),
        }
    }

    /// Length of [`Value::encode`]'s output without building it.
    pub fn encoded_len(&self) -> usize {
        const UL: usize = std::mem::size_of::<CK_ULONG>();
        match self {
            Value::Bool(_) => 1,
            Value::Ulong(_) => UL,
            Value::Bytes(b) => b.len(),
            Value::Ulongs(v) => v.len() * UL,
            Value::Template(t) => {
                t.len() * std::mem::size_of::<CK_ATTRIBUTE>()
                    + t.iter().map(|(_, v)| v.encoded_len()).sum::<usize>()
            }
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_ulong(&self) -> Option<u64> {
        match self {
            Value::Ulong(v) => Some(*v),
            _ => None,
        }
    }

    /// The bytes, if this is a byte string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The attributes of an attribute array, if this is one.
    pub fn as_template(&self) -> Option<&[(u64, Value)]> {
        match self {
            Value::Template(t) => Some(t),
            _ => None,
        }
    }
}

/// A caller's attribute value as the ABI layer read it, before the policy decodes it: the
/// bytes, or for an attribute array the attributes it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawValue<'a> {
    /// The value's bytes.
    Bytes(&'a [u8]),
    /// The elements of an attribute array (CKF_ARRAY_ATTRIBUTE), each read as its own kind.
    Array(Vec<RawAttribute<'a>>),
}

/// One attribute of a caller's template: its type and raw value.
pub type RawAttribute<'a> = (CK_ATTRIBUTE_TYPE, RawValue<'a>);

/// The longest byte-array value a template may give (CKA_VALUE of a data object or a
/// certificate, a modulus, ...): 1 MiB. A longer one is CKR_ATTRIBUTE_VALUE_INVALID, refused
/// before it is read.
pub const MAX_VALUE_LEN: usize = 1 << 20;
/// The longest name a template may give (CKA_LABEL, CKA_ID, CKA_APPLICATION, CKA_OBJECT_ID,
/// CKA_URL): 4 KiB. Names are copied into the find index; no real name comes near this.
pub const MAX_NAME_LEN: usize = 4096;
/// Attributes whose values are names, capped at [`MAX_NAME_LEN`].
const NAMES: [CK_ATTRIBUTE_TYPE; 5] = [CKA_LABEL, CKA_ID, CKA_APPLICATION, CKA_OBJECT_ID, CKA_URL];
/// The most mechanisms a CKA_ALLOWED_MECHANISMS may list.
pub const MAX_MECHANISMS: usize = 1024;
/// The most attributes an attribute array (CKA_WRAP_TEMPLATE, ...) may hold.
pub const MAX_ARRAY_ATTRIBUTES: usize = 64;

/// What the ABI layer may read of a caller's attribute value, decided from its declared
/// length before a byte of it is read ([`raw_len`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawLen {
    /// An attribute the token does not know: its value is never read (no object has it).
    Unread,
    /// Read this many bytes.
    Bytes(usize),
    /// An attribute array of this many CK_ATTRIBUTEs, each checked the same way.
    Array(usize),
}

/// Checks the length a caller declares for an attribute of type `ty` (`nested`: inside an
/// attribute array) before its value is read: a CK_BBOOL must be 1 byte, a CK_ULONG
/// `sizeof(CK_ULONG)`, a date 0 or 8, a mechanism list a whole number of CK_ULONGs up to
/// [`MAX_MECHANISMS`], a name up to [`MAX_NAME_LEN`], any other byte array up to
/// [`MAX_VALUE_LEN`], an attribute array a whole number of CK_ATTRIBUTEs up to
/// [`MAX_ARRAY_ATTRIBUTES`], and never inside another. Anything else is
/// CKR_ATTRIBUTE_VALUE_INVALID (PKCS#11 3.0 section 5.1: "an invalid value was specified for
/// a particular attribute in a template"; CKR_TEMPLATE_INCONSISTENT is for attributes that
/// conflict with each other, not for one that is malformed).
pub fn raw_len(ty: CK_ATTRIBUTE_TYPE, len: u64, nested: bool) -> Result<RawLen> {
    const UL: u64 = std::mem::size_of::<CK_ULONG>() as u64;
    const ATTR: u64 = std::mem::size_of::<CK_ATTRIBUTE>() as u64;
    let Some(kind) = kind_of(ty) else {
        return Ok(RawLen::Unread);
    };
    let ok = match kind {
        Kind::Bool => len == 1,
        Kind::Ulong => len == UL,
        Kind::Date => len == 0 || len == 8,
        Kind::Ulongs => len % UL == 0 && len / UL <= MAX_MECHANISMS as u64,
        Kind::Bytes if NAMES.contains(&ty) => len <= MAX_NAME_LEN as u64,
        Kind::Bytes => len <= MAX_VALUE_LEN as u64,
        Kind::Template => {
            return if !nested && len % ATTR == 0 && len / ATTR <= MAX_ARRAY_ATTRIBUTES as u64 {
                Ok(RawLen::Array((len / ATTR) as usize))
            } else {
                Err(Error::AttributeValueInvalid)
            };
        }
    };
    if ok {
        Ok(RawLen::Bytes(len as usize))
    } else {
        Err(Error::AttributeValueInvalid)
    }
}

/// How an attribute's value is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// CK_BBOOL.
    Bool,
    /// CK_ULONG.
    Ulong,
    /// Bytes.
    Bytes,
    /// CK_DATE (8 bytes) or empty.
    Date,
    /// Array of CK_MECHANISM_TYPE.
    Ulongs,
    /// Array of CK_ATTRIBUTE (CKF_ARRAY_ATTRIBUTE).
    Template,
}

impl Kind {
    /// Decodes a caller's raw value. The elements of an attribute array are decoded each as
    /// its own kind, sorted by type; an unknown one is CKR_ATTRIBUTE_TYPE_INVALID, one given
    /// twice CKR_TEMPLATE_INCONSISTENT, an array inside CKR_ATTRIBUTE_VALUE_INVALID.
    pub fn decode(self, raw: &RawValue) -> Result<Value> {
        const UL: usize = std::mem::size_of::<CK_ULONG>();
        let raw = match (self, raw) {
            (Kind::Template, RawValue::Array(elements)) => {
                let mut out: Vec<(u64, Value)> = Vec::with_capacity(elements.len());
                for (ty, value) in elements {
                    let kind = kind_of(*ty).ok_or(Error::AttributeTypeInvalid)?;
                    if kind == Kind::Template {
                        return Err(Error::AttributeValueInvalid);
                    }
                    if out.iter().any(|(t, _)| *t == *ty as u64) {
                        return Err(Error::TemplateInconsistent);
                    }
                    out.push((*ty as u64, kind.decode(value)?));
                }
                out.sort_by_key(|(t, _)| *t);
                return Ok(Value::Template(out));
            }
            (Kind::Template, RawValue::Bytes(_)) | (_, RawValue::Array(_)) => {
                return Err(Error::AttributeValueInvalid)
            }
            (_, RawValue::Bytes(raw)) => *raw,
        };
        match self {
            Kind::Bool if raw.len() == 1 => Ok(Value::Bool(raw[0] != 0)),
            Kind::Ulong if raw.len() == UL => {
                let mut b = [0u8; UL];
                b.copy_from_slice(raw);
                Ok(Value::Ulong(CK_ULONG::from_ne_bytes(b) as u64))
            }
            Kind::Bytes => Ok(Value::Bytes(raw.to_vec())),
            Kind::Date
                if raw.is_empty() || (raw.len() == 8 && raw.iter().all(u8::is_ascii_digit)) =>
            {
                Ok(Value::Bytes(raw.to_vec()))
            }
            Kind::Ulongs if raw.len() % UL == 0 => Ok(Value::Ulongs(
                raw.chunks_exact(UL)
                    .map(|c| {
                        let mut b = [0u8; UL];
                        b.copy_from_slice(c);
                        CK_ULONG::from_ne_bytes(b) as u64
                    })
                    .collect(),
            )),
            _ => Err(Error::AttributeValueInvalid),
        }
    }
}

/// Required in C_CreateObject's template (PKCS#11 table footnote 1).
pub const REQUIRED_CREATE: u16 = 1 << 0;
/// Set by the token only: never in a template (footnote 2 / 4, e.g. CKA_LOCAL).
pub const TOKEN_SET: u16 = 1 << 1;
/// Required in C_GenerateKey(Pair)'s template (footnote 3).
pub const REQUIRED_GENERATE: u16 = 1 << 2;
/// Not allowed in C_GenerateKey(Pair)'s template: the token computes it (footnote 4).
pub const NO_GENERATE: u16 = 1 << 3;
/// Key material: never revealed while the key is sensitive or non-extractable (footnote 6),
/// kept encrypted in the store.
pub const SECRET: u16 = 1 << 4;
/// Can be changed with C_SetAttributeValue (footnote 8).
pub const MODIFIABLE: u16 = 1 << 5;
/// Can be changed with C_CopyObject's template (footnote 7).
pub const COPY_MODIFIABLE: u16 = 1 << 6;
/// Not allowed in C_UnwrapKey's template: the token computes it from the unwrapped value.
pub const NO_UNWRAP: u16 = 1 << 7;

/// Which objects an attribute belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every object.
    Any,
    /// Data objects.
    Data,
    /// Certificates.
    Certificate,
    /// Every key.
    Key,
    /// Public keys.
    PublicKey,
    /// Private keys.
    PrivateKey,
    /// Private and secret keys.
    PrivateOrSecretKey,
    /// Public and secret keys.
    PublicOrSecretKey,
    /// Secret keys.
    SecretKey,
    /// Public and private keys.
    PublicOrPrivateKey,
    /// RSA keys of either half.
    Rsa,
    /// RSA private keys.
    RsaPrivate,
    /// EC and Edwards keys of either half.
    EcOrEdwards,
    /// EC and Edwards public keys.
    EcOrEdwardsPublic,
    /// Key material: secret keys' value, EC / Edwards private keys' scalar.
    SecretValue,
    /// Secret keys with a length (generic secret, AES).
    SecretLength,
}

/// One row of the policy table.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The attribute.
    pub ty: CK_ATTRIBUTE_TYPE,
    /// Its encoding.
    pub kind: Kind,
    /// Where it belongs.
    pub scope: Scope,
    /// Footnote flags.
    pub flags: u16,
}

const fn rule(ty: CK_ATTRIBUTE_TYPE, kind: Kind, scope: Scope, flags: u16) -> Rule {
    Rule {
        ty,
        kind,
        scope,
        flags,
    }
}

use Kind::*;
use Scope::*;

/// The table. Attributes not in it are CKR_ATTRIBUTE_TYPE_INVALID.
pub const RULES: &[Rule] = &[
    rule(CKA_CLASS, Ulong, Any, REQUIRED_CREATE),
    rule(CKA_TOKEN, Bool, Any, COPY_MODIFIABLE),
    rule(CKA_PRIVATE, Bool, Any, COPY_MODIFIABLE),
    rule(CKA_MODIFIABLE, Bool, Any, COPY_MODIFIABLE),
    rule(CKA_COPYABLE, Bool, Any, COPY_MODIFIABLE),
    rule(CKA_DESTROYABLE, Bool, Any, COPY_MODIFIABLE | MODIFIABLE),
    rule(CKA_LABEL, Bytes, Any, MODIFIABLE | COPY_MODIFIABLE),
    rule(CKA_UNIQUE_ID, Bytes, Any, TOKEN_SET),
    // Data objects.
    rule(CKA_APPLICATION, Bytes, Data, MODIFIABLE | COPY_MODIFIABLE),
    rule(CKA_OBJECT_ID, Bytes, Data, MODIFIABLE | COPY_MODIFIABLE),
    // CKA_VALUE is shared by data objects, certificates and keys; its rules depend on the
    // class and are applied in `rules_for`.
    rule(CKA_VALUE, Bytes, Any, 0),
    // Certificates (X.509 public key certificates).
    rule(CKA_CERTIFICATE_TYPE, Ulong, Certificate, REQUIRED_CREATE),
    rule(CKA_TRUSTED, Bool, Certificate, 0),
    rule(CKA_CERTIFICATE_CATEGORY, Ulong, Certificate, 0),
    rule(CKA_CHECK_VALUE, Bytes, Certificate, 0),
    rule(CKA_SUBJECT, Bytes, Certificate, REQUIRED_CREATE),
    rule(CKA_ISSUER, Bytes, Certificate, MODIFIABLE),
    rule(CKA_SERIAL_NUMBER, Bytes, Certificate, MODIFIABLE),
    rule(CKA_URL, Bytes, Certificate, 0),
    rule(CKA_HASH_OF_SUBJECT_PUBLIC_KEY, Bytes, Certificate, 0),
    rule(CKA_HASH_OF_ISSUER_PUBLIC_KEY, Bytes, Certificate, 0),
    rule(CKA_JAVA_MIDP_SECURITY_DOMAIN, Ulong, Certificate, 0),
    rule(CKA_NAME_HASH_ALGORITHM, Ulong, Certificate, 0),
    // Keys, and certificates for the ones they share.
    rule(CKA_KEY_TYPE, Ulong, Key, REQUIRED_CREATE),
    rule(CKA_ID, Bytes, Any, MODIFIABLE | COPY_MODIFIABLE),
    rule(CKA_START_DATE, Date, Any, MODIFIABLE | COPY_MODIFIABLE),
    rule(CKA_END_DATE, Date, Any, MODIFIABLE | COPY_MODIFIABLE),
    rule(CKA_DERIVE, Bool, Key, MODIFIABLE | COPY_MODIFIABLE),
    rule(CKA_LOCAL, Bool, Key, TOKEN_SET),
    rule(CKA_KEY_GEN_MECHANISM, Ulong, Key, TOKEN_SET),
    rule(CKA_ALLOWED_MECHANISMS, Ulongs, Key, 0),
    rule(CKA_PUBLIC_KEY_INFO, Bytes, PublicOrPrivateKey, 0),
    rule(
        CKA_ENCRYPT,
        Bool,
        PublicOrSecretKey,
        MODIFIABLE | COPY_MODIFIABLE,
    ),
    rule(
        CKA_VERIFY,
        Bool,
        PublicOrSecretKey,
        MODIFIABLE | COPY_MODIFIABLE,
    ),
    rule(
        CKA_VERIFY_RECOVER,
        Bool,
        PublicKey,
        MODIFIABLE | COPY_MODIFIABLE,
    ),
    rule(
        CKA_WRAP,
        Bool,
        PublicOrSecretKey,
        MODIFIABLE | COPY_MODIFIABLE,
    ),
    rule(
        CKA_DECRYPT,
        Bool,
        PrivateOrSecretKey,
        MODIFIABLE | COPY_MODIFIABLE,
    ),
    rule(
        CKA_SIGN,
        Bool,
        PrivateOrSecretKey,
        MODIFIABLE | COPY_MODIFIABLE,
    ),
    rule(
        CKA_SIGN_RECOVER,
        Bool,
        PrivateKey,
        MODIFIABLE | COPY_MODIFIABLE,
    ),
    rule(
        CKA_UNWRAP,
        Bool,
        PrivateOrSecretKey,
        MODIFIABLE | COPY_MODIFIABLE,
    ),
    rule(
        CKA_SENSITIVE,
        Bool,
        PrivateOrSecretKey,
        MODIFIABLE | COPY_MODIFIABLE,
    ),
    rule(
        CKA_EXTRACTABLE,
        Bool,
        PrivateOrSecretKey,
        MODIFIABLE | COPY_MODIFIABLE,
    ),
    rule(CKA_ALWAYS_SENSITIVE, Bool, PrivateOrSecretKey, TOKEN_SET),
    rule(CKA_NEVER_EXTRACTABLE, Bool, PrivateOrSecretKey, TOKEN_SET),
    rule(
        CKA_WRAP_WITH_TRUSTED,
        Bool,
        PrivateOrSecretKey,
        MODIFIABLE | COPY_MODIFIABLE,
    ),
    rule(CKA_ALWAYS_AUTHENTICATE, Bool, PrivateKey, 0),
    // Attribute arrays: what a key wraps (its wrap template: the attributes a key must have to
    // be wrapped with it), unwraps (its unwrap template: the attributes every key unwrapped
    // with it gets) and derives. Fixed once the key exists (no footnote 8 in the tables).
    rule(CKA_WRAP_TEMPLATE, Template, PublicOrSecretKey, 0),
    rule(CKA_UNWRAP_TEMPLATE, Template, PrivateOrSecretKey, 0),
    rule(CKA_DERIVE_TEMPLATE, Template, PrivateOrSecretKey, 0),
    // RSA.
    rule(CKA_MODULUS, Bytes, Rsa, REQUIRED_CREATE | NO_GENERATE),
    rule(CKA_MODULUS_BITS, Ulong, Rsa, REQUIRED_GENERATE),
    rule(CKA_PUBLIC_EXPONENT, Bytes, Rsa, 0),
    rule(
        CKA_PRIVATE_EXPONENT,
        Bytes,
        RsaPrivate,
        REQUIRED_CREATE | NO_GENERATE | SECRET,
    ),
    rule(CKA_PRIME_1, Bytes, RsaPrivate, NO_GENERATE | SECRET),
    rule(CKA_PRIME_2, Bytes, RsaPrivate, NO_GENERATE | SECRET),
    rule(CKA_EXPONENT_1, Bytes, RsaPrivate, NO_GENERATE | SECRET),
    rule(CKA_EXPONENT_2, Bytes, RsaPrivate, NO_GENERATE | SECRET),
    rule(CKA_COEFFICIENT, Bytes, RsaPrivate, NO_GENERATE | SECRET),
    // EC and Edwards.
    rule(
        CKA_EC_PARAMS,
        Bytes,
        EcOrEdwards,
        REQUIRED_CREATE | REQUIRED_GENERATE,
    ),
    rule(
        CKA_EC_POINT,
        Bytes,
        EcOrEdwardsPublic,
        REQUIRED_CREATE | NO_GENERATE,
    ),
    // Secret keys.
    rule(CKA_VALUE_LEN, Ulong, SecretLength, NO_UNWRAP),
];

/// The rule for `ty`, as it applies to an object of `class` / `key_type`; `None` when the
/// attribute does not belong to such an object.
pub fn rule_for(
    ty: CK_ATTRIBUTE_TYPE,
    class: CK_OBJECT_CLASS,
    key_type: Option<CK_KEY_TYPE>,
) -> Option<Rule> {
    let r = *RULES.iter().find(|r| r.ty == ty)?;
    if ty == CKA_VALUE {
        return value_rule(class, key_type);
    }
    let is_key = matches!(class, CKO_PUBLIC_KEY | CKO_PRIVATE_KEY | CKO_SECRET_KEY);
    let rsa = key_type == Some(CKK_RSA);
    let ec = matches!(key_type, Some(CKK_EC) | Some(CKK_EC_EDWARDS));
    let fits = match r.scope {
        Any => true,
        Data => class == CKO_DATA,
        Certificate => class == CKO_CERTIFICATE,
        Key => is_key,
        PublicKey => class == CKO_PUBLIC_KEY,
        PrivateKey => class == CKO_PRIVATE_KEY,
        SecretKey => class == CKO_SECRET_KEY,
        PrivateOrSecretKey => matches!(class, CKO_PRIVATE_KEY | CKO_SECRET_KEY),
        PublicOrSecretKey => matches!(class, CKO_PUBLIC_KEY | CKO_SECRET_KEY),
        PublicOrPrivateKey => {
            matches!(class, CKO_PUBLIC_KEY | CKO_PRIVATE_KEY) || class == CKO_CERTIFICATE
        }
        Rsa => rsa && matches!(class, CKO_PUBLIC_KEY | CKO_PRIVATE_KEY),
        RsaPrivate => rsa && class == CKO_PRIVATE_KEY,
        EcOrEdwards => ec && matches!(class, CKO_PUBLIC_KEY | CKO_PRIVATE_KEY),
        EcOrEdwardsPublic => ec && class == CKO_PUBLIC_KEY,
        SecretValue => false,
        SecretLength => class == CKO_SECRET_KEY,
    };
    // The ID, dates and subject of certificates and keys; data objects have none.
    let fits = fits && !(class == CKO_DATA && matches!(ty, CKA_ID | CKA_START_DATE | CKA_END_DATE));
    let fits = fits || (ty == CKA_SUBJECT && matches!(class, CKO_PUBLIC_KEY | CKO_PRIVATE_KEY));
    if !fits {
        return None;
    }
    let mut r = r;
    // A key's subject is optional and modifiable; a certificate's is required.
    if ty == CKA_SUBJECT && is_key {
        r.flags = MODIFIABLE | COPY_MODIFIABLE;
    }
    // CKA_PUBLIC_EXPONENT: needed to import an RSA key, optional when generating.
    if ty == CKA_PUBLIC_EXPONENT {
        r.flags = REQUIRED_CREATE;
    }
    Some(r)
}

fn value_rule(class: CK_OBJECT_CLASS, key_type: Option<CK_KEY_TYPE>) -> Option<Rule> {
    let flags = match (class, key_type) {
        (CKO_DATA, _) => MODIFIABLE | COPY_MODIFIABLE,
        (CKO_CERTIFICATE, _) => REQUIRED_CREATE,
        (CKO_SECRET_KEY, _) => REQUIRED_CREATE | NO_GENERATE | SECRET,
        (CKO_PRIVATE_KEY, Some(CKK_EC) | Some(CKK_EC_EDWARDS)) => {
            REQUIRED_CREATE | NO_GENERATE | SECRET
        }
        _ => return None,
    };
    Some(Rule {
        ty: CKA_VALUE,
        kind: Bytes,
        scope: Any,
        flags,
    })
}

/// Every rule that applies to an object of this class and key type.
pub fn rules_for(
    class: CK_OBJECT_CLASS,
    key_type: Option<CK_KEY_TYPE>,
) -> impl Iterator<Item = Rule> {
    RULES
        .iter()
        .filter_map(move |r| rule_for(r.ty, class, key_type))
}

/// The kind of a known attribute, wherever it belongs (for decoding find templates).
pub fn kind_of(ty: CK_ATTRIBUTE_TYPE) -> Option<Kind> {
    RULES.iter().find(|r| r.ty == ty).map(|r| r.kind)
}

/// Object classes the token stores.
pub fn class_supported(class: CK_OBJECT_CLASS) -> bool {
    matches!(
        class,
        CKO_DATA | CKO_CERTIFICATE | CKO_PUBLIC_KEY | CKO_PRIVATE_KEY | CKO_SECRET_KEY
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        assert!(rule_for(CKA_MODULUS, CKO_PUBLIC_KEY, Some(CKK_RSA)).is_some());
        assert!(rule_for(CKA_MODULUS, CKO_SECRET_KEY, Some(CKK_AES)).is_none());
        assert!(rule_for(CKA_SIGN, CKO_PUBLIC_KEY, Some(CKK_EC)).is_none());
        assert!(rule_for(CKA_VALUE, CKO_PUBLIC_KEY, Some(CKK_EC)).is_none());
        assert_ne!(
            rule_for(CKA_VALUE, CKO_SECRET_KEY, Some(CKK_AES))
                .unwrap()
                .flags
                & SECRET,
            0
        );
        assert_eq!(
            rule_for(CKA_VALUE, CKO_DATA, None).unwrap().flags & SECRET,
            0
        );
        assert!(rule_for(CKA_ID, CKO_DATA, None).is_none());
        assert!(rule_for(CKA_ID, CKO_CERTIFICATE, None).is_some());
        assert!(rule_for(0x7fff_0000, CKO_DATA, None).is_none());
    }

    #[test]
    fn decode_checks_lengths() {
        let b = |v: &'static [u8]| RawValue::Bytes(v);
        assert_eq!(Kind::Bool.decode(&b(&[1])), Ok(Value::Bool(true)));
        assert_eq!(
            Kind::Bool.decode(&b(&[1, 0])),
            Err(Error::AttributeValueInvalid)
        );
        let seven = 7u64.to_ne_bytes();
        assert_eq!(
            Kind::Ulong.decode(&RawValue::Bytes(&seven)),
            Ok(Value::Ulong(7))
        );
        assert_eq!(
            Kind::Ulong.decode(&b(&[7])),
            Err(Error::AttributeValueInvalid)
        );
        assert_eq!(
            Kind::Date.decode(&b(b"20261126")),
            Ok(Value::Bytes(b"20261126".to_vec()))
        );
        assert_eq!(
            Kind::Date.decode(&b(b"2026-11-")),
            Err(Error::AttributeValueInvalid)
        );
        assert_eq!(Value::Ulongs(vec![1, 2]).encode().len(), 16);
    }

    #[test]
    fn raw_lengths_are_capped_per_kind() {
        const UL: u64 = std::mem::size_of::<CK_ULONG>() as u64;
        const ATTR: u64 = std::mem::size_of::<CK_ATTRIBUTE>() as u64;
        let bad = Err(Error::AttributeValueInvalid);
        assert_eq!(raw_len(CKA_TOKEN, 1, false), Ok(RawLen::Bytes(1)));
        assert_eq!(raw_len(CKA_TOKEN, 0, false), bad);
        assert_eq!(
            raw_len(CKA_CLASS, UL, false),
            Ok(RawLen::Bytes(UL as usize))
        );
        assert_eq!(raw_len(CKA_CLASS, 4 << 30, false), bad);
        assert_eq!(raw_len(CKA_START_DATE, 0, false), Ok(RawLen::Bytes(0)));
        assert_eq!(raw_len(CKA_START_DATE, 9, false), bad);
        assert_eq!(
            raw_len(CKA_VALUE, MAX_VALUE_LEN as u64, false),
            Ok(RawLen::Bytes(MAX_VALUE_LEN))
        );
        assert_eq!(raw_len(CKA_VALUE, MAX_VALUE_LEN as u64 + 1, false), bad);
        assert_eq!(
            raw_len(CKA_LABEL, MAX_NAME_LEN as u64, false),
            Ok(RawLen::Bytes(MAX_NAME_LEN))
        );
        assert_eq!(raw_len(CKA_LABEL, MAX_NAME_LEN as u64 + 1, false), bad);
        for huge in [4 << 30, u32::MAX as u64, u64::MAX, i64::MAX as u64 + 1] {
            assert_eq!(raw_len(CKA_VALUE, huge, false), bad);
            assert_eq!(raw_len(CKA_LABEL, huge, true), bad);
            assert_eq!(raw_len(CKA_ALLOWED_MECHANISMS, huge, false), bad);
            assert_eq!(raw_len(CKA_WRAP_TEMPLATE, huge, false), bad);
            // An attribute the token does not know is never read, whatever it declares.
            assert_eq!(raw_len(0x7fff_0000, huge, false), Ok(RawLen::Unread));
        }
        assert_eq!(
            raw_len(CKA_ALLOWED_MECHANISMS, UL * MAX_MECHANISMS as u64, false),
            Ok(RawLen::Bytes(UL as usize * MAX_MECHANISMS))
        );
        assert_eq!(raw_len(CKA_ALLOWED_MECHANISMS, UL + 1, false), bad);
        assert_eq!(
            raw_len(CKA_WRAP_TEMPLATE, 2 * ATTR, false),
            Ok(RawLen::Array(2))
        );
        assert_eq!(raw_len(CKA_WRAP_TEMPLATE, 2 * ATTR, true), bad);
        assert_eq!(raw_len(CKA_UNWRAP_TEMPLATE, ATTR + 1, false), bad);
        assert_eq!(
            raw_len(
                CKA_DERIVE_TEMPLATE,
                (MAX_ARRAY_ATTRIBUTES as u64 + 1) * ATTR,
                false
            ),
            bad
        );
    }

    #[test]
    fn attribute_arrays_decode_sorted_flat_and_unique() {
        let t = 1u8;
        let class = (CKO_SECRET_KEY as CK_ULONG).to_ne_bytes();
        let raw = RawValue::Array(vec![
            (CKA_SENSITIVE, RawValue::Bytes(std::slice::from_ref(&t))),
            (CKA_CLASS, RawValue::Bytes(&class)),
        ]);
        assert_eq!(
            Kind::Template.decode(&raw),
            Ok(Value::Template(vec![
                (CKA_CLASS as u64, Value::Ulong(CKO_SECRET_KEY as u64)),
                (CKA_SENSITIVE as u64, Value::Bool(true)),
            ]))
        );
        let twice = RawValue::Array(vec![
            (CKA_SENSITIVE, RawValue::Bytes(&[1])),
            (CKA_SENSITIVE, RawValue::Bytes(&[0])),
        ]);
        assert_eq!(
            Kind::Template.decode(&twice),
            Err(Error::TemplateInconsistent)
        );
        let unknown = RawValue::Array(vec![(0x7fff_0000, RawValue::Bytes(&[1]))]);
        assert_eq!(
            Kind::Template.decode(&unknown),
            Err(Error::AttributeTypeInvalid)
        );
        let nested = RawValue::Array(vec![(CKA_WRAP_TEMPLATE, RawValue::Array(Vec::new()))]);
        assert_eq!(
            Kind::Template.decode(&nested),
            Err(Error::AttributeValueInvalid)
        );
        assert_eq!(
            Kind::Template.decode(&RawValue::Bytes(&[])),
            Err(Error::AttributeValueInvalid)
        );
        assert_eq!(
            Kind::Bytes.decode(&RawValue::Array(Vec::new())),
            Err(Error::AttributeValueInvalid)
        );
    }
}
