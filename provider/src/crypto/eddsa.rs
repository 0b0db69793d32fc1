//! Ed25519 (CKK_EC_EDWARDS, CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA), pure Ed25519 only.
//!
//! Ed25519ph and Ed25519ctx are not offered by aws-lc-rs: CKM_EDDSA parameters asking for
//! pre-hashing (`phFlag` true) or carrying a context are refused with `MechanismParamInvalid`.
//! Parameters with `phFlag` false and no context mean plain Ed25519, as with no parameters.

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

/// Checks CKM_EDDSA parameters: none, or pure Ed25519 ones.
pub fn check_eddsa_params(params: Option<&EddsaParams>) -> CryptoResult<()> {
    match params {
        Some(p) if p.prehash || !p.context.is_empty() => Err(CryptoError::MechanismParamInvalid),
        _ => Ok(()),
    }
}

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

    /// CKM_EDDSA signing (64 bytes). See [`check_eddsa_params`].
    pub fn sign(
        &self,
        params: Option<&EddsaParams>,
        msg: &[u8],
    ) -> CryptoResult<[u8; ED25519_SIG_LEN]> {
        check_eddsa_params(params)?;
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

    /// CKM_EDDSA verification: `SignatureLenRange` unless 64 bytes, `SignatureInvalid` if it
    /// does not verify.
    pub fn verify(
        &self,
        params: Option<&EddsaParams>,
        msg: &[u8],
        signature: &[u8],
    ) -> CryptoResult<()> {
        check_eddsa_params(params)?;
        if signature.len() != ED25519_SIG_LEN {
            return Err(CryptoError::SignatureLenRange);
        }
        self.parsed
            .verify_sig(msg, signature)
            .map_err(|_| CryptoError::SignatureInvalid)
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
        // Parameters.
        let sig = k.sign(Some(&EddsaParams::default()), b"m").unwrap();
        b.verify(None, b"m", &sig).unwrap();
        let ph = EddsaParams {
            prehash: true,
            context: Vec::new(),
        };
        let ctx = EddsaParams {
            prehash: false,
            context: b"ctx".to_vec(),
        };
        assert_eq!(
            k.sign(Some(&ph), b"m").unwrap_err(),
            CryptoError::MechanismParamInvalid
        );
        assert_eq!(
            k.sign(Some(&ctx), b"m").unwrap_err(),
            CryptoError::MechanismParamInvalid
        );
        assert_eq!(
            b.verify(Some(&ctx), b"m", &sig),
            Err(CryptoError::MechanismParamInvalid)
        );
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
