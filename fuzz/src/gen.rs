//! Turning fuzzer bytes into PKCS#11 arguments. The format is a plain byte stream read front to
//! back (an exhausted input reads as zeros), so seeds can be written by hand with [`Writer`]:
//! each reader method has a writer method that produces the bytes it consumes.

use pkcs11_sys::*;

use crate::{In, Mech, Template, ED25519, P256, P384, P521};

/// Reads the fuzzer's bytes.
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.u8();
        }
        u64::from_le_bytes(b)
    }

    /// A length-prefixed byte string (u8 length, up to 255 bytes).
    pub fn bytes(&mut self) -> Vec<u8> {
        let n = self.u8() as usize;
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head.to_vec()
    }

    /// A longer byte string (u16 length, capped at `max`).
    pub fn long_bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (self.u16() as usize).min(max).min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head.to_vec()
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.u8() as usize % items.len()]
    }

    /// A CK_ULONG: mostly small or interesting values, sometimes any 64 bits.
    pub fn ulong(&mut self) -> CK_ULONG {
        match self.u8() {
            0..=127 => self.u8() as CK_ULONG,
            128..=191 => self.u16() as CK_ULONG,
            192..=223 => self.pick(&INTERESTING),
            _ => self.u64() as CK_ULONG,
        }
    }

    /// An input buffer; 1 in 16 is NULL with a length.
    pub fn input(&mut self) -> In {
        if self.u8() % 16 == 15 {
            In::Null(self.ulong())
        } else {
            In::Bytes(self.bytes())
        }
    }

    /// An output buffer: NULL (a length query, `*pulLen` any value) or a real buffer.
    pub fn output(&mut self) -> crate::Out {
        match self.u8() % 8 {
            0 => crate::Out::null(self.ulong()),
            1 => crate::Out::with_len(self.u8() as usize),
            2 => crate::Out::with_len(self.u16() as usize % 4097),
            _ => {
                crate::Out::with_len(self.pick(&[0usize, 16, 32, 64, 72, 96, 132, 256, 512, 1024]))
            }
        }
    }

    /// An attribute type: one the token knows, or any.
    pub fn attr_type(&mut self) -> CK_ATTRIBUTE_TYPE {
        match self.u8() {
            0..=239 => self.pick(&ATTRS),
            240..=247 => CKA_VENDOR_DEFINED | self.u8() as CK_ULONG,
            _ => self.u64() as CK_ULONG,
        }
    }

    /// A value for `ty`: usually well-formed for it, sometimes anything.
    pub fn attr_value(&mut self, ty: CK_ATTRIBUTE_TYPE) -> AttrValue {
        match self.u8() % 8 {
            0 => AttrValue::Bytes(self.bytes()),
            1 => AttrValue::Null(self.ulong()),
            2 => AttrValue::Bytes(vec![self.u8()]),
            3 => AttrValue::Bytes(self.ulong().to_ne_bytes().to_vec()),
            _ => AttrValue::Bytes(self.good_value(ty)),
        }
    }

    /// A plausible value for `ty`.
    fn good_value(&mut self, ty: CK_ATTRIBUTE_TYPE) -> Vec<u8> {
        let ul = |v: CK_ULONG| v.to_ne_bytes().to_vec();
        match ty {
            CKA_CLASS => ul(self.pick(&[
                CKO_DATA,
                CKO_CERTIFICATE,
                CKO_PUBLIC_KEY,
                CKO_PRIVATE_KEY,
                CKO_SECRET_KEY,
                CKO_DOMAIN_PARAMETERS,
                CKO_PROFILE,
            ])),
            CKA_KEY_TYPE => ul(self.pick(&[
                CKK_RSA,
                CKK_EC,
                CKK_EC_EDWARDS,
                CKK_AES,
                CKK_GENERIC_SECRET,
                CKK_DES3,
                CKK_SHA256_HMAC,
            ])),
            CKA_CERTIFICATE_TYPE => ul(self.pick(&[CKC_X_509, CKC_WTLS, CKC_X_509_ATTR_CERT])),
            CKA_EC_PARAMS => match self.u8() % 6 {
                0 => P256.to_vec(),
                1 => P384.to_vec(),
                2 => P521.to_vec(),
                3 => ED25519.to_vec(),
                4 => b"\x13\x0cedwards25519".to_vec(),
                _ => {
                    let mut v = P256.to_vec();
                    let i = self.u8() as usize % v.len();
                    v[i] ^= self.u8() | 1;
                    v
                }
            },
            CKA_VALUE_LEN => ul(self.pick(&[0, 1, 16, 24, 32, 33, 48, 64, 512, 513])),
            CKA_MODULUS_BITS => ul(self.pick(&[0, 512, 1024, 2048, 2049])),
            CKA_PUBLIC_EXPONENT => self
                .pick(&[&[1u8, 0, 1][..], &[3], &[1], &[], &[0, 1, 0, 1]])
                .to_vec(),
            CKA_VALUE => {
                let n = self.pick(&[0usize, 1, 16, 24, 32, 48, 64, 100]);
                vec![self.u8(); n]
            }
            CKA_START_DATE | CKA_END_DATE => self
                .pick(&[&b"20240131"[..], b"", b"2024013x", b"2024"])
                .to_vec(),
            CKA_ALLOWED_MECHANISMS => {
                let n = self.u8() % 4;
                (0..n)
                    .flat_map(|_| self.mech_type().to_ne_bytes())
                    .collect()
            }
            CKA_KEY_GEN_MECHANISM | CKA_NAME_HASH_ALGORITHM => ul(self.mech_type()),
            CKA_CERTIFICATE_CATEGORY | CKA_JAVA_MIDP_SECURITY_DOMAIN => {
                ul(self.u8() as CK_ULONG % 4)
            }
            ty if BOOLS.contains(&ty) => vec![self.pick(&[0u8, 1, 1, 2, 0xff])],
            _ => self.bytes(),
        }
    }

    /// A template of up to 15 attributes.
    pub fn template(&mut self) -> Template {
        let mut t = Template::default();
        let n = self.u8() % 16;
        for _ in 0..n {
            let ty = self.attr_type();
            match self.attr_value(ty) {
                AttrValue::Bytes(b) => t.add(ty, &b),
                AttrValue::Null(n) => t.add_null(ty, n),
            };
        }
        t
    }

    /// A mechanism type: one the token knows, a few it does not, or any.
    pub fn mech_type(&mut self) -> CK_MECHANISM_TYPE {
        match self.u8() {
            0..=239 => self.pick(&MECHS),
            _ => self.u64() as CK_ULONG,
        }
    }

    /// A mechanism with a parameter: the right one for it, or any other shape.
    pub fn mechanism(&mut self) -> Mech {
        let ty = self.mech_type();
        self.mechanism_of(ty)
    }

    /// A parameter for `ty`.
    pub fn mechanism_of(&mut self, ty: CK_MECHANISM_TYPE) -> Mech {
        match self.u8() % 12 {
            0 => Mech::plain(ty),
            1 => Mech::raw_len(ty, None, self.ulong()),
            2 => Mech::raw(ty, Some(self.bytes())),
            3 => Mech::raw(ty, Some(self.ulong().to_ne_bytes().to_vec())),
            4 => {
                let hash = self.hash_mech();
                let mgf = self.mgf();
                let slen = self.ulong();
                Mech::pss(ty, hash, mgf, slen)
            }
            5 => {
                let hash = self.hash_mech();
                let mgf = self.mgf();
                let source = self.pick(&[0, CKZ_DATA_SPECIFIED, CKZ_DATA_SPECIFIED, 2]);
                let label = self.input();
                let mut m = Mech::oaep(hash, mgf, source, label);
                m.mech.mechanism = ty;
                m
            }
            6 => {
                let iv = self.input();
                let iv_bits = self.ulong();
                let aad = self.input();
                let tag = self.pick(&[0, 32, 64, 96, 104, 112, 120, 128, 129, 256]);
                let mut m = Mech::gcm(iv, iv_bits, aad, tag);
                m.mech.mechanism = ty;
                m
            }
            7 => {
                let ph = self.bool();
                let ctx = self.input();
                let mut m = Mech::eddsa(ph, ctx);
                m.mech.mechanism = ty;
                m
            }
            _ => self.good_mechanism(ty),
        }
    }

    /// The parameter a careful caller gives `ty`, with a few fields left to the fuzzer.
    fn good_mechanism(&mut self, ty: CK_MECHANISM_TYPE) -> Mech {
        let pss_hash = |ty| match ty {
            CKM_SHA384_RSA_PKCS_PSS => (CKM_SHA384, CKG_MGF1_SHA384),
            CKM_SHA512_RSA_PKCS_PSS => (CKM_SHA512, CKG_MGF1_SHA512),
            _ => (CKM_SHA256, CKG_MGF1_SHA256),
        };
        match ty {
            CKM_RSA_PKCS_PSS
            | CKM_SHA256_RSA_PKCS_PSS
            | CKM_SHA384_RSA_PKCS_PSS
            | CKM_SHA512_RSA_PKCS_PSS => {
                let (h, m) = pss_hash(ty);
                let slen = self.pick(&[0, 20, 32, 48, 64, 222, 223, 1000]);
                Mech::pss(ty, h, m, slen)
            }
            CKM_RSA_PKCS_OAEP => {
                let (h, m) = self.pick(&[
                    (CKM_SHA_1, CKG_MGF1_SHA1),
                    (CKM_SHA256, CKG_MGF1_SHA256),
                    (CKM_SHA384, CKG_MGF1_SHA384),
                    (CKM_SHA512, CKG_MGF1_SHA512),
                ]);
                let label = self.bytes();
                let source = if label.is_empty() {
                    0
                } else {
                    CKZ_DATA_SPECIFIED
                };
                Mech::oaep(h, m, source, In::Bytes(label))
            }
            CKM_AES_GCM => {
                let iv = vec![self.u8(); self.pick(&[12usize, 12, 1, 16, 0, 128])];
                let bits = iv.len() as CK_ULONG * 8;
                let aad = self.bytes();
                let tag = self.pick(&[128, 96, 120, 64]);
                Mech::gcm(In::Bytes(iv), bits, In::Bytes(aad), tag)
            }
            CKM_AES_CBC_PAD => Mech::raw(ty, Some(vec![self.u8(); 16])),
            CKM_EDDSA => {
                if self.bool() {
                    Mech::plain(ty)
                } else {
                    let ph = self.bool();
                    let ctx = self.bytes();
                    Mech::eddsa(ph, In::Bytes(ctx))
                }
            }
            CKM_SHA256_HMAC_GENERAL | CKM_SHA384_HMAC_GENERAL | CKM_SHA512_HMAC_GENERAL => {
                Mech::raw(
                    ty,
                    Some((self.u8() as CK_ULONG % 70).to_ne_bytes().to_vec()),
                )
            }
            CKM_AES_KEY_WRAP => Mech::raw(ty, Some(vec![0xa6; 8])),
            CKM_AES_KEY_WRAP_PAD => Mech::raw(ty, Some(vec![0xa6, 0x59, 0x59, 0xa6])),
            _ => Mech::plain(ty),
        }
    }

    fn hash_mech(&mut self) -> CK_MECHANISM_TYPE {
        match self.u8() % 8 {
            7 => self.ulong(),
            _ => self.pick(&[
                CKM_SHA_1, CKM_SHA224, CKM_SHA256, CKM_SHA384, CKM_SHA512, CKM_MD5,
            ]),
        }
    }

    fn mgf(&mut self) -> CK_ULONG {
        match self.u8() % 8 {
            7 => self.ulong(),
            _ => self.pick(&[
                CKG_MGF1_SHA1,
                CKG_MGF1_SHA224,
                CKG_MGF1_SHA256,
                CKG_MGF1_SHA384,
                CKG_MGF1_SHA512,
                0,
            ]),
        }
    }
}

/// An attribute's value as the caller passes it.
pub enum AttrValue {
    Bytes(Vec<u8>),
    /// NULL pValue with this ulValueLen.
    Null(CK_ULONG),
}

/// Values that often matter at boundaries.
pub const INTERESTING: [CK_ULONG; 12] = [
    0,
    1,
    7,
    8,
    16,
    32,
    255,
    256,
    0x7fff_ffff,
    0xffff_ffff,
    CK_UNAVAILABLE_INFORMATION,
    CK_UNAVAILABLE_INFORMATION - 1,
];

/// Every attribute the token knows, and a few it does not.
pub const ATTRS: [CK_ATTRIBUTE_TYPE; 62] = [
    CKA_ALLOWED_MECHANISMS,
    CKA_ALWAYS_AUTHENTICATE,
    CKA_ALWAYS_SENSITIVE,
    CKA_APPLICATION,
    CKA_CERTIFICATE_CATEGORY,
    CKA_CERTIFICATE_TYPE,
    CKA_CHECK_VALUE,
    CKA_CLASS,
    CKA_COEFFICIENT,
    CKA_COPYABLE,
    CKA_DECRYPT,
    CKA_DERIVE,
    CKA_DESTROYABLE,
    CKA_EC_PARAMS,
    CKA_EC_POINT,
    CKA_ENCRYPT,
    CKA_END_DATE,
    CKA_EXPONENT_1,
    CKA_EXPONENT_2,
    CKA_EXTRACTABLE,
    CKA_HASH_OF_ISSUER_PUBLIC_KEY,
    CKA_HASH_OF_SUBJECT_PUBLIC_KEY,
    CKA_ID,
    CKA_ISSUER,
    CKA_JAVA_MIDP_SECURITY_DOMAIN,
    CKA_KEY_GEN_MECHANISM,
    CKA_KEY_TYPE,
    CKA_LABEL,
    CKA_LOCAL,
    CKA_MODIFIABLE,
    CKA_MODULUS,
    CKA_MODULUS_BITS,
    CKA_NAME_HASH_ALGORITHM,
    CKA_NEVER_EXTRACTABLE,
    CKA_OBJECT_ID,
    CKA_PRIME_1,
    CKA_PRIME_2,
    CKA_PRIVATE,
    CKA_PRIVATE_EXPONENT,
    CKA_PUBLIC_EXPONENT,
    CKA_PUBLIC_KEY_INFO,
    CKA_SENSITIVE,
    CKA_SERIAL_NUMBER,
    CKA_SIGN,
    CKA_SIGN_RECOVER,
    CKA_START_DATE,
    CKA_SUBJECT,
    CKA_TOKEN,
    CKA_TRUSTED,
    CKA_UNIQUE_ID,
    CKA_UNWRAP,
    CKA_URL,
    CKA_VALUE,
    CKA_VALUE_LEN,
    CKA_VERIFY,
    CKA_VERIFY_RECOVER,
    CKA_WRAP,
    CKA_WRAP_WITH_TRUSTED,
    // Not supported by the token.
    CKA_PRIME,
    CKA_WRAP_TEMPLATE,
    CKA_OTP_FORMAT,
    CKA_DERIVE_TEMPLATE,
];

/// Boolean attributes.
pub const BOOLS: [CK_ATTRIBUTE_TYPE; 22] = [
    CKA_ALWAYS_AUTHENTICATE,
    CKA_ALWAYS_SENSITIVE,
    CKA_COPYABLE,
    CKA_DECRYPT,
    CKA_DERIVE,
    CKA_DESTROYABLE,
    CKA_ENCRYPT,
    CKA_EXTRACTABLE,
    CKA_LOCAL,
    CKA_MODIFIABLE,
    CKA_NEVER_EXTRACTABLE,
    CKA_PRIVATE,
    CKA_SENSITIVE,
    CKA_SIGN,
    CKA_SIGN_RECOVER,
    CKA_TOKEN,
    CKA_TRUSTED,
    CKA_UNWRAP,
    CKA_VERIFY,
    CKA_VERIFY_RECOVER,
    CKA_WRAP,
    CKA_WRAP_WITH_TRUSTED,
];

/// Every mechanism the token implements, and a few it does not.
pub const MECHS: [CK_MECHANISM_TYPE; 38] = [
    CKM_AES_CBC_PAD,
    CKM_AES_GCM,
    CKM_AES_KEY_GEN,
    CKM_AES_KEY_WRAP,
    CKM_AES_KEY_WRAP_PAD,
    CKM_ECDSA,
    CKM_ECDSA_SHA256,
    CKM_ECDSA_SHA384,
    CKM_ECDSA_SHA512,
    CKM_EC_EDWARDS_KEY_PAIR_GEN,
    CKM_EC_KEY_PAIR_GEN,
    CKM_EDDSA,
    CKM_GENERIC_SECRET_KEY_GEN,
    CKM_RSA_PKCS,
    CKM_RSA_PKCS_KEY_PAIR_GEN,
    CKM_RSA_PKCS_OAEP,
    CKM_RSA_PKCS_PSS,
    CKM_SHA256,
    CKM_SHA256_HMAC,
    CKM_SHA256_HMAC_GENERAL,
    CKM_SHA256_RSA_PKCS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_SHA384,
    CKM_SHA384_HMAC,
    CKM_SHA384_HMAC_GENERAL,
    CKM_SHA384_RSA_PKCS,
    CKM_SHA384_RSA_PKCS_PSS,
    CKM_SHA512,
    CKM_SHA512_HMAC,
    CKM_SHA512_HMAC_GENERAL,
    CKM_SHA512_RSA_PKCS,
    CKM_SHA512_RSA_PKCS_PSS,
    // Not implemented.
    CKM_SHA_1,
    CKM_MD5,
    CKM_AES_ECB,
    CKM_DES3_CBC,
    CKM_ECDH1_DERIVE,
    CKM_RSA_X_509,
];

/// Builds inputs for the readers above, for seeds.
#[derive(Default)]
pub struct Writer {
    pub data: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.data.push(v);
        self
    }

    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.data.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        assert!(v.len() < 256);
        self.data.push(v.len() as u8);
        self.data.extend_from_slice(v);
        self
    }

    /// Index of `v` in `list`, for [`Reader::pick`].
    pub fn pick<T: PartialEq + std::fmt::Debug>(&mut self, list: &[T], v: T) -> &mut Self {
        let i = list
            .iter()
            .position(|x| *x == v)
            .unwrap_or_else(|| panic!("{v:?} not in list"));
        self.u8(i as u8)
    }

    /// A small CK_ULONG (< 256) for [`Reader::ulong`].
    pub fn small(&mut self, v: u8) -> &mut Self {
        self.u8(0).u8(v)
    }

    /// An input buffer with these bytes for [`Reader::input`].
    pub fn input(&mut self, v: &[u8]) -> &mut Self {
        self.u8(0).bytes(v)
    }

    /// An output buffer of a fixed size class for [`Reader::output`]: index into its list.
    pub fn output(&mut self, size: usize) -> &mut Self {
        let sizes = [0usize, 16, 32, 64, 72, 96, 132, 256, 512, 1024];
        self.u8(3).pick(&sizes, size)
    }

    /// A NULL output buffer (length query).
    pub fn output_query(&mut self) -> &mut Self {
        self.u8(0).small(0)
    }

    /// An attribute of a known type with a well-formed raw value.
    pub fn attr(&mut self, ty: CK_ATTRIBUTE_TYPE, value: &[u8]) -> &mut Self {
        self.u8(0).pick(&ATTRS, ty).u8(0).bytes(value)
    }

    /// A template header: `n` attributes follow.
    pub fn template(&mut self, n: u8) -> &mut Self {
        self.u8(n)
    }

    /// A known mechanism with no parameter.
    pub fn mech_plain(&mut self, ty: CK_MECHANISM_TYPE) -> &mut Self {
        self.u8(0).pick(&MECHS, ty).u8(0)
    }

    /// A known mechanism with its "good" parameter; the caller writes what that reads.
    pub fn mech_good(&mut self, ty: CK_MECHANISM_TYPE) -> &mut Self {
        self.u8(0).pick(&MECHS, ty).u8(8)
    }
}
