//! Ed25519 (CKK_EC_EDWARDS, CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA) in its three RFC 8032
//! variants, chosen as the PKCS#11 3.0 mechanisms specification (section 2.3.14, CKM_EDDSA)
//! says: no parameter is Ed25519; CK_EDDSA_PARAMS select Ed25519ctx (`phFlag` false) or
//! Ed25519ph (`phFlag` true), with the context they carry (at most 255 bytes, RFC 8032
//! section 5.1). Ed25519ctx needs a non-empty context (RFC 8032: "SHOULD NOT be empty"; aws-lc
//! refuses an empty one): parameters with `phFlag` false and no context are
//! `MechanismParamInvalid`, never taken for plain Ed25519. Ed25519ph hashes the message with
//! SHA-512 itself (the input is the message).
//!
//! Plain Ed25519 goes through aws-lc-rs; aws-lc-rs does not wrap Ed25519ctx and Ed25519ph, so
//! they are called in aws-lc itself (`ED25519ctx_sign`, `ED25519ph_sign`, ... through
//! aws-lc-sys, the same library build): the only foreign calls of this layer.

use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair, ParsedPublicKey};
use zeroize::Zeroizing;

use super::der;
use super::error::{CryptoError, CryptoResult};

/// Length of a seed (CKA_VALUE), of a public key and half a signature.
pub const ED25519_KEY_LEN: usize = 32;
/// Length of a signature.
pub const ED25519_SIG_LEN: usize = 64;

/// DER of the id-Ed25519 OID 1.3.101.112.
const ED25519_OID_DER: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// DER PrintableString "edwards25519".
const ED25519_NAME_DER: &[u8] = &[
    0x13, 0x0c, b'e', b'd', b'w', b'a', b'r', b'd', b's', b'2', b'5', b'5', b'1', b'9',
];

/// How CKA_EC_PARAMS named Curve25519's Edwards form; the token echoes back what it got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EdParamsEncoding {
    /// The OID 1.3.101.112 (RFC 8410 id-Ed25519).
    Oid,
    /// The PrintableString "edwards25519" (PKCS#11 3.0 curve name).
    CurveName,
}

impl EdParamsEncoding {
    /// The DER of this encoding, for CKA_EC_PARAMS.
    pub const fn der(self) -> &'static [u8] {
        match self {
            EdParamsEncoding::Oid => ED25519_OID_DER,
            EdParamsEncoding::CurveName => ED25519_NAME_DER,
        }
    }
}

/// Parses CKA_EC_PARAMS of an Edwards key. `CurveNotSupported` for another well-formed
/// OID or string (Ed448 for instance), `KeyInvalid` for anything else.
pub fn parse_ed_params(params: &[u8]) -> CryptoResult<EdParamsEncoding> {
    if params == ED25519_OID_DER {
        return Ok(EdParamsEncoding::Oid);
    }
    if params == ED25519_NAME_DER {
        return Ok(EdParamsEncoding::CurveName);
    }
    let mut r = der::Reader::new(params);
    match r.read_any() {
        Some(_) if r.is_empty() => Err(CryptoError::CurveNotSupported),
        _ => Err(CryptoError::KeyInvalid),
    }
}

/// CK_EDDSA_PARAMS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EddsaParams {
    /// phFlag: pre-hashed variant (Ed25519ph).
    pub prehash: bool,
    /// pContextData (Ed25519ctx when non-empty).
    pub context: Vec<u8>,
}

/// The longest context RFC 8032 allows (its length is one octet of dom2).
pub const MAX_CONTEXT_LEN: usize = 255;

/// The RFC 8032 variant CKM_EDDSA parameters select.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant<'a> {
    /// Ed25519 (no parameters).
    Pure,
    /// Ed25519ctx with this (non-empty) context.
    Ctx(&'a [u8]),
    /// Ed25519ph with this (maybe empty) context.
    Ph(&'a [u8]),
}

/// Checks CKM_EDDSA parameters: none (Ed25519), `phFlag` false with a context of 1 to 255
/// bytes (Ed25519ctx), `phFlag` true with one of at most 255 (Ed25519ph).
pub fn check_eddsa_params(params: Option<&EddsaParams>) -> CryptoResult<()> {
    variant(params).map(|_| ())
}

fn variant(params: Option<&EddsaParams>) -> CryptoResult<Variant<'_>> {
    match params {
        None => Ok(Variant::Pure),
        Some(p) if p.context.len() > MAX_CONTEXT_LEN => Err(CryptoError::MechanismParamInvalid),
        Some(p) if p.prehash => Ok(Variant::Ph(&p.context)),
        Some(p) if p.context.is_empty() => Err(CryptoError::MechanismParamInvalid),
        Some(p) => Ok(Variant::Ctx(&p.context)),
    }
}

/// aws-lc's `ED25519ctx_sign` / `ED25519ph_sign`: (signature, message, its length, private
/// key, context, its length) → 1 on success.
type AwsLcSign =
    unsafe extern "C" fn(*mut u8, *const u8, usize, *const u8, *const u8, usize) -> i32;
/// aws-lc's `ED25519ctx_verify` / `ED25519ph_verify`: (message, its length, signature, public
/// key, context, its length) → 1 when the signature verifies.
type AwsLcVerify =
    unsafe extern "C" fn(*const u8, usize, *const u8, *const u8, *const u8, usize) -> i32;

/// An Ed25519 private key. The seed is kept (zeroized on drop) for CKA_VALUE export.
pub struct Ed25519PrivateKey {
    seed: Zeroizing<[u8; ED25519_KEY_LEN]>,
    key_pair: Ed25519KeyPair,
}

impl std::fmt::Debug for Ed25519PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ed25519PrivateKey")
            .field("public", &self.key_pair.public_key().as_ref())
            .finish_non_exhaustive()
    }
}

impl Ed25519PrivateKey {
    /// A fresh key: a random seed.
    pub fn generate() -> CryptoResult<Self> {
        let mut seed = Zeroizing::new([0u8; ED25519_KEY_LEN]);
        super::random_fill(&mut seed[..])
            .map_err(|_| CryptoError::Internal("random generator failed"))?;
        Self::from_seed(&seed[..])
    }

    /// Imports CKA_VALUE, the 32-byte seed (RFC 8032 private key). Other lengths:
    /// `KeyInvalid`.
    pub fn from_seed(seed: &[u8]) -> CryptoResult<Self> {
        let mut kept = Zeroizing::new([0u8; ED25519_KEY_LEN]);
        if seed.len() != ED25519_KEY_LEN {
            return Err(CryptoError::KeyInvalid);
        }
        kept.copy_from_slice(seed);
        let key_pair =
            Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| CryptoError::KeyInvalid)?;
        Ok(Ed25519PrivateKey {
            seed: kept,
            key_pair,
        })
    }

    /// The seed (CKA_VALUE on export).
    pub fn seed(&self) -> Zeroizing<[u8; ED25519_KEY_LEN]> {
        self.seed.clone()
    }

    /// The raw 32-byte public key.
    pub fn public_key_bytes(&self) -> [u8; ED25519_KEY_LEN] {
        let mut out = [0u8; ED25519_KEY_LEN];
        out.copy_from_slice(self.key_pair.public_key().as_ref());
        out
    }

    /// The matching public key.
    pub fn public_key(&self) -> CryptoResult<Ed25519PublicKey> {
        Ed25519PublicKey::from_point(&self.public_key_bytes())
    }

    /// CKM_EDDSA signing (64 bytes): Ed25519, Ed25519ctx or Ed25519ph as `params` say (see
    /// [`check_eddsa_params`]).
    pub fn sign(
        &self,
        params: Option<&EddsaParams>,
        msg: &[u8],
    ) -> CryptoResult<[u8; ED25519_SIG_LEN]> {
        let (sign, context): (AwsLcSign, &[u8]) = match variant(params)? {
            Variant::Pure => return self.sign_pure(msg),
            Variant::Ctx(c) => (aws_lc_sys::ED25519ctx_sign, c),
            Variant::Ph(c) => (aws_lc_sys::ED25519ph_sign, c),
        };
        // aws-lc's private key: the seed, then the public key.
        let mut private = Zeroizing::new([0u8; 2 * ED25519_KEY_LEN]);
        private[..ED25519_KEY_LEN].copy_from_slice(&self.seed[..]);
        private[ED25519_KEY_LEN..].copy_from_slice(&self.public_key_bytes());
        let mut out = [0u8; ED25519_SIG_LEN];
        // SAFETY: `out` has room for the 64-byte signature, `private` is the 64-byte private
        // key, and each of `msg` and `context` is a valid buffer of the length passed with it.
        let ok = unsafe {
            sign(
                out.as_mut_ptr(),
                msg.as_ptr(),
                msg.len(),
                private.as_ptr(),
                context.as_ptr(),
                context.len(),
            )
        };
        if ok != 1 {
            return Err(CryptoError::Internal(
                "Ed25519ctx / Ed25519ph signing failed",
            ));
        }
        Ok(out)
    }

    fn sign_pure(&self, msg: &[u8]) -> CryptoResult<[u8; ED25519_SIG_LEN]> {
        let sig = self
            .key_pair
            .try_sign(msg)
            .map_err(|_| CryptoError::Internal("Ed25519 signing failed"))?;
        let mut out = [0u8; ED25519_SIG_LEN];
        if sig.as_ref().len() != ED25519_SIG_LEN {
            return Err(CryptoError::Internal(
                "Ed25519 signature has the wrong length",
            ));
        }
        out.copy_from_slice(sig.as_ref());
        Ok(out)
    }
}

/// An Ed25519 public key.
pub struct Ed25519PublicKey {
    raw: [u8; ED25519_KEY_LEN],
    parsed: ParsedPublicKey,
}

impl std::fmt::Debug for Ed25519PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ed25519PublicKey")
            .field("raw", &self.raw)
            .finish_non_exhaustive()
    }
}

impl Ed25519PublicKey {
    /// Imports CKA_EC_POINT: 32 raw bytes or a DER OCTET STRING of them (04 20 ‖ key).
    pub fn from_point(data: &[u8]) -> CryptoResult<Self> {
        let raw = if data.len() == ED25519_KEY_LEN {
            data
        } else {
            der::read_single(data, der::TAG_OCTET_STRING).ok_or(CryptoError::KeyInvalid)?
        };
        let raw: [u8; ED25519_KEY_LEN] = raw.try_into().map_err(|_| CryptoError::KeyInvalid)?;
        let parsed =
            ParsedPublicKey::new(&signature::ED25519, raw).map_err(|_| CryptoError::KeyInvalid)?;
        Ok(Ed25519PublicKey { raw, parsed })
    }

    /// The raw 32-byte key.
    pub fn point(&self) -> &[u8; ED25519_KEY_LEN] {
        &self.raw
    }

    /// CKA_EC_POINT: DER OCTET STRING of the raw key.
    pub fn ec_point_der(&self) -> Vec<u8> {
        der::tlv(der::TAG_OCTET_STRING, &self.raw)
    }

    /// CKA_PUBLIC_KEY_INFO: DER SubjectPublicKeyInfo (RFC 8410).
    pub fn spki_der(&self) -> Vec<u8> {
        der::spki(&der::tlv(der::TAG_SEQUENCE, ED25519_OID_DER), &self.raw)
    }

    /// CKM_EDDSA verification (Ed25519, Ed25519ctx or Ed25519ph as `params` say):
    /// `SignatureLenRange` unless 64 bytes, `SignatureInvalid` if it does not verify.
    pub fn verify(
        &self,
        params: Option<&EddsaParams>,
        msg: &[u8],
        signature: &[u8],
    ) -> CryptoResult<()> {
        let variant = variant(params)?;
        if signature.len() != ED25519_SIG_LEN {
            return Err(CryptoError::SignatureLenRange);
        }
        let (verify, context): (AwsLcVerify, &[u8]) = match variant {
            Variant::Pure => {
                return self
                    .parsed
                    .verify_sig(msg, signature)
                    .map_err(|_| CryptoError::SignatureInvalid)
            }
            Variant::Ctx(c) => (aws_lc_sys::ED25519ctx_verify, c),
            Variant::Ph(c) => (aws_lc_sys::ED25519ph_verify, c),
        };
        // SAFETY: `signature` is 64 bytes and the public key 32, as aws-lc reads them; `msg`
        // and `context` are valid buffers of the lengths passed with them.
        let ok = unsafe {
            verify(
                msg.as_ptr(),
                msg.len(),
                signature.as_ptr(),
                self.raw.as_ptr(),
                context.as_ptr(),
                context.len(),
            )
        };
        if ok == 1 {
            Ok(())
        } else {
            Err(CryptoError::SignatureInvalid)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::digest::hex;
    use crate::crypto::testutil::{openssl_ok, write_pub_pem};

    #[test]
    fn rfc8032_test_1() {
        let k = Ed25519PrivateKey::from_seed(&hex(
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        ))
        .unwrap();
        assert_eq!(
            k.public_key_bytes().to_vec(),
            hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        );
        let sig = k.sign(None, b"").unwrap();
        assert_eq!(
            sig.to_vec(),
            hex(
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bac\
                 c61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
            )
        );
        let pubk = k.public_key().unwrap();
        pubk.verify(None, b"", &sig).unwrap();
        let mut bad = sig;
        bad[10] ^= 0x20;
        assert_eq!(
            pubk.verify(None, b"", &bad),
            Err(CryptoError::SignatureInvalid)
        );
        assert_eq!(
            pubk.verify(None, b"x", &sig),
            Err(CryptoError::SignatureInvalid)
        );
        assert_eq!(
            pubk.verify(None, b"", &sig[..63]),
            Err(CryptoError::SignatureLenRange)
        );
        assert_eq!(
            &k.seed()[..],
            &hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")[..]
        );
    }

    #[test]
    fn params_and_points() {
        assert_eq!(
            parse_ed_params(&hex("06032b6570")),
            Ok(EdParamsEncoding::Oid)
        );
        assert_eq!(
            parse_ed_params(&hex("130c656477617264733235353139")),
            Ok(EdParamsEncoding::CurveName)
        );
        for e in [EdParamsEncoding::Oid, EdParamsEncoding::CurveName] {
            assert_eq!(parse_ed_params(e.der()), Ok(e));
        }
        // Ed448 OID and name: not ours.
        assert_eq!(
            parse_ed_params(&hex("06032b6571")),
            Err(CryptoError::CurveNotSupported)
        );
        assert_eq!(
            parse_ed_params(&hex("130a65647761726473343438")),
            Err(CryptoError::CurveNotSupported)
        );
        assert_eq!(parse_ed_params(&hex("0603")), Err(CryptoError::KeyInvalid));

        let k = Ed25519PrivateKey::generate().unwrap();
        let raw = k.public_key_bytes();
        let a = Ed25519PublicKey::from_point(&raw).unwrap();
        let wrapped = a.ec_point_der();
        assert_eq!(&wrapped[..2], &[0x04, 0x20]);
        let b = Ed25519PublicKey::from_point(&wrapped).unwrap();
        assert_eq!(b.point(), &raw);
        assert_eq!(
            Ed25519PublicKey::from_point(&raw[1..]).unwrap_err(),
            CryptoError::KeyInvalid
        );
        assert_eq!(
            Ed25519PublicKey::from_point(&wrapped[..33]).unwrap_err(),
            CryptoError::KeyInvalid
        );
        assert_eq!(
            Ed25519PrivateKey::from_seed(&[1u8; 31]).unwrap_err(),
            CryptoError::KeyInvalid
        );
        // Seed round trip.
        let k2 = Ed25519PrivateKey::from_seed(&k.seed()[..]).unwrap();
        assert_eq!(k2.public_key_bytes(), raw);
        // Parameters: phFlag false with no context is Ed25519ctx without its context,
        // refused, never plain Ed25519; a context longer than 255 bytes neither.
        assert_eq!(
            k.sign(Some(&EddsaParams::default()), b"m").unwrap_err(),
            CryptoError::MechanismParamInvalid
        );
        let sig = k.sign(None, b"m").unwrap();
        assert_eq!(
            b.verify(Some(&EddsaParams::default()), b"m", &sig),
            Err(CryptoError::MechanismParamInvalid)
        );
        for prehash in [false, true] {
            let long = EddsaParams {
                prehash,
                context: vec![7; MAX_CONTEXT_LEN + 1],
            };
            assert_eq!(
                k.sign(Some(&long), b"m").unwrap_err(),
                CryptoError::MechanismParamInvalid
            );
            let longest = EddsaParams {
                prehash,
                context: vec![7; MAX_CONTEXT_LEN],
            };
            let sig = k.sign(Some(&longest), b"m").unwrap();
            b.verify(Some(&longest), b"m", &sig).unwrap();
        }
    }

    /// RFC 8032 section 7.2 (Ed25519ctx, its four tests) and 7.3 (Ed25519ph, "abc", no
    /// context): exact signatures, each verified, and refused under another variant.
    #[test]
    fn rfc8032_ed25519ctx_and_ed25519ph() {
        let ctx = |c: &str| EddsaParams {
            prehash: false,
            context: hex(c),
        };
        let ph = EddsaParams {
            prehash: true,
            context: Vec::new(),
        };
        let k1 = "0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6";
        let k2 = "ab9c2853ce297ddab85c993b3ae14bcad39b2c682beabc27d6d4eb20711d6560";
        let cases = [
            (
                k1,
                "dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292",
                "f726936d19c800494e3fdaff20b276a8",
                ctx("666f6f"),
                "55a4cc2f70a54e04288c5f4cd1e45a7bb520b36292911876cada7323198dd87a\
                 8b36950b95130022907a7fb7c4e9b2d5f6cca685a587b4b21f4b888e4e7edb0d",
            ),
            (
                k1,
                "dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292",
                "f726936d19c800494e3fdaff20b276a8",
                ctx("626172"),
                "fc60d5872fc46b3aa69f8b5b4351d5808f92bcc044606db097abab6dbcb1aee3\
                 216c48e8b3b66431b5b186d1d28f8ee15a5ca2df6668346291c2043d4eb3e90d",
            ),
            (
                k1,
                "dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292",
                "508e9e6882b979fea900f62adceaca35",
                ctx("666f6f"),
                "8b70c1cc8310e1de20ac53ce28ae6e7207f33c3295e03bb5c0732a1d20dc6490\
                 8922a8b052cf99b7c4fe107a5abb5b2c4085ae75890d02df26269d8945f84b0b",
            ),
            (
                k2,
                "0f1d1274943b91415889152e893d80e93275a1fc0b65fd71b4b0dda10ad7d772",
                "f726936d19c800494e3fdaff20b276a8",
                ctx("666f6f"),
                "21655b5f1aa965996b3f97b3c849eafba922a0a62992f73b3d1b73106a84ad85\
                 e9b86a7b6005ea868337ff2d20a7f5fbd4cd10b0be49a68da2b2e0dc0ad8960f",
            ),
            (
                "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
                "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
                "616263",
                ph.clone(),
                "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41\
                 31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406",
            ),
        ];
        for (seed, public, msg, params, want) in cases {
            let k = Ed25519PrivateKey::from_seed(&hex(seed)).unwrap();
            assert_eq!(k.public_key_bytes().to_vec(), hex(public));
            let msg = hex(msg);
            let sig = k.sign(Some(&params), &msg).unwrap();
            assert_eq!(sig.to_vec(), hex(want), "{params:?}");
            let p = k.public_key().unwrap();
            p.verify(Some(&params), &msg, &sig).unwrap();
            let mut bad = sig;
            bad[5] ^= 1;
            assert_eq!(
                p.verify(Some(&params), &msg, &bad),
                Err(CryptoError::SignatureInvalid)
            );
            // The same signature is no signature of another variant.
            assert_eq!(
                p.verify(None, &msg, &sig),
                Err(CryptoError::SignatureInvalid)
            );
            let other = if params.prehash {
                ctx("666f6f")
            } else {
                ph.clone()
            };
            assert_eq!(
                p.verify(Some(&other), &msg, &sig),
                Err(CryptoError::SignatureInvalid)
            );
        }
    }

    #[test]
    fn openssl_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let k = Ed25519PrivateKey::generate().unwrap();
        write_pub_pem(&p.join("pub.pem"), &k.public_key().unwrap().spki_der());
        let msg = b"ed25519 over openssl";
        std::fs::write(p.join("msg"), msg).unwrap();
        let sig = k.sign(None, msg).unwrap();
        std::fs::write(p.join("sig"), sig).unwrap();
        let args = [
            "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "msg",
            "-sigfile", "sig",
        ];
        assert!(openssl_ok(p, &args));
        let mut bad = sig;
        bad[40] ^= 1;
        std::fs::write(p.join("sig"), bad).unwrap();
        assert!(!openssl_ok(p, &args));
    }
}
