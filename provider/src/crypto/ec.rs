//! ECDSA over the NIST curves P-256, P-384 and P-521 (CKM_ECDSA, CKM_ECDSA_SHA256/384/512).
//!
//! Signing and verification go through aws-lc-rs. aws-lc-rs signs a caller-supplied digest
//! only when that digest has the length of the key pair's own hash (SHA-256 for P-256,
//! SHA-384 for P-384, SHA-512 for P-521), so a CKM_ECDSA input of another length is first
//! mapped to an equivalent one: ECDSA (FIPS 186-5 §6.4.1, SEC 1 §4.1.3) only uses the integer
//! formed by the leftmost `min(8·len, order bits)` bits of the input, so a shorter input is
//! left-padded with zeros and a longer one cut to the order's byte length (P-256/P-384 orders
//! are whole bytes). The one case no such mapping exists for is P-521 with an input longer
//! than 64 bytes (its order has 521 bits, an aws-lc-rs digest at most 512): that case is
//! signed and verified with the pure-Rust `p521` crate, fed the already truncated integer.

use std::sync::OnceLock;

use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, EcdsaVerificationAlgorithm, KeyPair, ParsedPublicKey,
};
use p521::ecdsa::signature::hazmat::{PrehashVerifier, RandomizedPrehashSigner};
use zeroize::Zeroizing;

use super::der;
use super::digest::HashAlg;
use super::error::{CryptoError, CryptoResult};
use super::rng::LcRng;

/// DER of the id-ecPublicKey OID (1.2.840.10045.2.1).
const ID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

/// Byte length of a P-521 scalar / field element.
const P521_LEN: usize = 66;

/// A supported named curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EcCurve {
    /// NIST P-256 (secp256r1, prime256v1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
    /// NIST P-521 (secp521r1).
    P521,
}

impl EcCurve {
    /// All supported curves.
    pub const ALL: [EcCurve; 3] = [EcCurve::P256, EcCurve::P384, EcCurve::P521];

    /// CKA_EC_PARAMS for this curve: the DER of its named-curve OID.
    pub const fn params_der(self) -> &'static [u8] {
        match self {
            EcCurve::P256 => &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
            EcCurve::P384 => &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22],
            EcCurve::P521 => &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23],
        }
    }

    /// Parses CKA_EC_PARAMS. Only the namedCurve form (an OID) is accepted.
    ///
    /// Errors: `KeyInvalid` when the bytes are not one DER OID; `CurveNotSupported` for a
    /// well-formed OID (or other well-formed TLV such as explicit parameters) naming no curve
    /// of ours.
    pub fn from_params(params: &[u8]) -> CryptoResult<Self> {
        if let Some(curve) = Self::ALL.into_iter().find(|c| c.params_der() == params) {
            return Ok(curve);
        }
        let mut r = der::Reader::new(params);
        match r.read_any() {
            Some(_) if r.is_empty() => Err(CryptoError::CurveNotSupported),
            _ => Err(CryptoError::KeyInvalid),
        }
    }

    /// Byte length of a field element and of a scalar: 32, 48 or 66.
    pub const fn field_len(self) -> usize {
        match self {
            EcCurve::P256 => 32,
            EcCurve::P384 => 48,
            EcCurve::P521 => P521_LEN,
        }
    }

    /// Bit length of the group order: 256, 384 or 521 (also the CKA key size in bits).
    pub const fn order_bits(self) -> usize {
        match self {
            EcCurve::P256 => 256,
            EcCurve::P384 => 384,
            EcCurve::P521 => 521,
        }
    }

    /// Length of a CKM_ECDSA signature, r‖s.
    pub const fn signature_len(self) -> usize {
        2 * self.field_len()
    }

    /// Length of the uncompressed point 04‖X‖Y.
    pub const fn point_len(self) -> usize {
        1 + 2 * self.field_len()
    }

    fn signing_alg(self) -> &'static EcdsaSigningAlgorithm {
        match self {
            EcCurve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            EcCurve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            EcCurve::P521 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
        }
    }

    fn verification_alg(self) -> &'static EcdsaVerificationAlgorithm {
        match self {
            EcCurve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
            EcCurve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
            EcCurve::P521 => &signature::ECDSA_P521_SHA512_FIXED,
        }
    }

    /// The hash bound to this curve's aws-lc-rs algorithm (its digests are what it signs).
    fn digest_alg(self) -> &'static digest::Algorithm {
        match self {
            EcCurve::P256 => &digest::SHA256,
            EcCurve::P384 => &digest::SHA384,
            EcCurve::P521 => &digest::SHA512,
        }
    }

    /// Maps a CKM_ECDSA input onto an aws-lc-rs digest denoting the same ECDSA integer, or
    /// `None` when there is none (P-521, input longer than 64 bytes).
    fn input_to_digest(self, input: &[u8]) -> Option<Digest> {
        let alg = self.digest_alg();
        let len = alg.output_len();
        let mut buf = [0u8; digest::MAX_OUTPUT_LEN];
        match self {
            // Order bit length is 8·len: the leftmost `len` bytes are exactly what ECDSA uses.
            EcCurve::P256 | EcCurve::P384 if input.len() >= len => {
                buf[..len].copy_from_slice(&input[..len]);
            }
            EcCurve::P521 if input.len() > len => return None,
            // Shorter than the order: its integer value, left-padded.
            _ => buf[len - input.len()..len].copy_from_slice(input),
        }
        Digest::import_less_safe(&buf[..len], alg).ok()
    }
}

/// The P-521 ECDSA integer of an input, as 66 big-endian bytes: the leftmost 521 bits of
/// the input (all of it when shorter).
fn p521_integer(input: &[u8]) -> [u8; P521_LEN] {
    let take = input.len().min(P521_LEN);
    let mut out = [0u8; P521_LEN];
    out[P521_LEN - take..].copy_from_slice(&input[..take]);
    if take == P521_LEN {
        // 528 bits taken: drop the 7 rightmost.
        for i in (1..P521_LEN).rev() {
            out[i] = (out[i] >> 7) | (out[i - 1] << 1);
        }
        out[0] >>= 7;
    }
    out
}

/// An EC private key (CKK_EC) usable for ECDSA. The scalar lives inside aws-lc (freed and
/// cleansed by it); the lazily built `p521` fallback key zeroizes itself on drop.
pub struct EcPrivateKey {
    curve: EcCurve,
    key_pair: EcdsaKeyPair,
    p521_fallback: OnceLock<p521::ecdsa::SigningKey>,
}

impl std::fmt::Debug for EcPrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcPrivateKey")
            .field("curve", &self.curve)
            .finish_non_exhaustive()
    }
}

impl EcPrivateKey {
    fn new(curve: EcCurve, key_pair: EcdsaKeyPair) -> Self {
        EcPrivateKey {
            curve,
            key_pair,
            p521_fallback: OnceLock::new(),
        }
    }

    /// A fresh random key (C_GenerateKeyPair).
    pub fn generate(curve: EcCurve) -> CryptoResult<Self> {
        let key_pair = EcdsaKeyPair::generate(curve.signing_alg())
            .map_err(|_| CryptoError::Internal("EC key generation failed"))?;
        Ok(Self::new(curve, key_pair))
    }

    /// Imports CKA_VALUE, the big-endian private scalar. Leading zeros and shorter encodings
    /// are accepted; the value must lie in [1, n-1] (else `KeyInvalid`).
    pub fn from_scalar(curve: EcCurve, d: &[u8]) -> CryptoResult<Self> {
        let d = der::strip_leading_zeros(d);
        let flen = curve.field_len();
        if d.is_empty() || d.len() > flen {
            return Err(CryptoError::KeyInvalid);
        }
        // RFC 5915 ECPrivateKey without the optional public key; aws-lc derives it.
        //   SEQUENCE { INTEGER 1, OCTET STRING d, [0] { OID } }
        let params = curve.params_der();
        let ctx0_len = der::tlv_len(params.len());
        let content_len = 3 + der::tlv_len(flen) + ctx0_len;
        let mut buf = Zeroizing::new(Vec::with_capacity(der::tlv_len(content_len)));
        buf.push(der::TAG_SEQUENCE);
        der::push_len(&mut buf, content_len);
        buf.extend_from_slice(&[der::TAG_INTEGER, 1, 1]);
        buf.push(der::TAG_OCTET_STRING);
        der::push_len(&mut buf, flen);
        let padded_len = buf.len() + flen - d.len();
        buf.resize(padded_len, 0);
        buf.extend_from_slice(d);
        der::push_tlv(&mut buf, 0xa0, params);
        let key_pair = EcdsaKeyPair::from_private_key_der(curve.signing_alg(), &buf)
            .map_err(|_| CryptoError::KeyInvalid)?;
        Ok(Self::new(curve, key_pair))
    }

    /// The curve.
    pub fn curve(&self) -> EcCurve {
        self.curve
    }

    /// The private scalar, big-endian, exactly `field_len()` bytes (CKA_VALUE on export).
    pub fn scalar(&self) -> CryptoResult<Zeroizing<Vec<u8>>> {
        let bin = self
            .key_pair
            .private_key()
            .as_be_bytes()
            .map_err(|_| CryptoError::Internal("EC private key export failed"))?;
        let bytes = bin.as_ref();
        let flen = self.curve.field_len();
        if bytes.len() > flen {
            return Err(CryptoError::Internal(
                "EC private key export has the wrong length",
            ));
        }
        let mut out = Zeroizing::new(vec![0u8; flen]);
        out[flen - bytes.len()..].copy_from_slice(bytes);
        Ok(out)
    }

    /// The public point, uncompressed: 04‖X‖Y.
    pub fn public_point(&self) -> &[u8] {
        self.key_pair.public_key().as_ref()
    }

    /// The matching public key.
    pub fn public_key(&self) -> CryptoResult<EcPublicKey> {
        EcPublicKey::from_point(self.curve, self.public_point())
    }

    /// CKM_ECDSA: signs `input` (normally a hash; any length, see the module doc).
    /// Returns r‖s, `2·field_len()` bytes.
    pub fn sign_prehashed(&self, input: &[u8]) -> CryptoResult<Vec<u8>> {
        match self.curve.input_to_digest(input) {
            Some(digest) => self
                .key_pair
                .sign_digest(&digest)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| CryptoError::Internal("ECDSA signing failed")),
            None => self.sign_p521_fallback(input),
        }
    }

    /// CKM_ECDSA_SHA256/384/512: hashes `msg` with `hash`, then signs as CKM_ECDSA. Any hash
    /// goes with any curve. (A streaming caller hashes with [`HashAlg::context`] and calls
    /// [`EcPrivateKey::sign_prehashed`] on the result: that is the same operation.)
    pub fn sign(&self, hash: HashAlg, msg: &[u8]) -> CryptoResult<Vec<u8>> {
        self.sign_prehashed(hash.hash(msg).as_ref())
    }

    fn sign_p521_fallback(&self, input: &[u8]) -> CryptoResult<Vec<u8>> {
        if self.curve != EcCurve::P521 {
            return Err(CryptoError::Internal(
                "ECDSA fallback used for a curve other than P-521",
            ));
        }
        let key = match self.p521_fallback.get() {
            Some(key) => key,
            None => {
                let scalar = self.scalar()?;
                let key = p521::ecdsa::SigningKey::from_slice(&scalar)
                    .map_err(|_| CryptoError::Internal("P-521 scalar rejected by fallback"))?;
                self.p521_fallback.get_or_init(|| key)
            }
        };
        let z = p521_integer(input);
        let mut rng = LcRng::new();
        let sig: p521::ecdsa::Signature = key
            .sign_prehash_with_rng(&mut rng, &z)
            .map_err(|_| CryptoError::Internal("P-521 signing failed"))?;
        rng.check(sig.to_bytes().to_vec())
    }
}

/// An EC public key (CKK_EC) usable for ECDSA verification.
pub struct EcPublicKey {
    curve: EcCurve,
    point: Vec<u8>,
    parsed: ParsedPublicKey,
    p521_fallback: OnceLock<p521::ecdsa::VerifyingKey>,
}

impl std::fmt::Debug for EcPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcPublicKey")
            .field("curve", &self.curve)
            .field("point", &self.point)
            .finish_non_exhaustive()
    }
}

impl EcPublicKey {
    /// Imports CKA_EC_POINT: either the DER OCTET STRING the spec prescribes or the bare
    /// point. Only uncompressed points (04‖X‖Y) are accepted; the point must lie on the curve
    /// (else `KeyInvalid`).
    pub fn from_point(curve: EcCurve, data: &[u8]) -> CryptoResult<Self> {
        let raw_len = curve.point_len();
        let point = if data.len() == raw_len && data[0] == 0x04 {
            data
        } else {
            der::read_single(data, der::TAG_OCTET_STRING).ok_or(CryptoError::KeyInvalid)?
        };
        if point.len() != raw_len || point[0] != 0x04 {
            return Err(CryptoError::KeyInvalid);
        }
        let parsed = ParsedPublicKey::new(curve.verification_alg(), point)
            .map_err(|_| CryptoError::KeyInvalid)?;
        Ok(EcPublicKey {
            curve,
            point: point.to_vec(),
            parsed,
            p521_fallback: OnceLock::new(),
        })
    }

    /// The curve.
    pub fn curve(&self) -> EcCurve {
        self.curve
    }

    /// The bare uncompressed point 04‖X‖Y.
    pub fn point(&self) -> &[u8] {
        &self.point
    }

    /// CKA_EC_POINT: the point wrapped in a DER OCTET STRING.
    pub fn ec_point_der(&self) -> Vec<u8> {
        der::tlv(der::TAG_OCTET_STRING, &self.point)
    }

    /// CKA_PUBLIC_KEY_INFO: DER SubjectPublicKeyInfo (id-ecPublicKey, namedCurve).
    pub fn spki_der(&self) -> Vec<u8> {
        let params = self.curve.params_der();
        let mut alg_id = Vec::with_capacity(der::tlv_len(ID_EC_PUBLIC_KEY.len() + params.len()));
        alg_id.push(der::TAG_SEQUENCE);
        der::push_len(&mut alg_id, ID_EC_PUBLIC_KEY.len() + params.len());
        alg_id.extend_from_slice(ID_EC_PUBLIC_KEY);
        alg_id.extend_from_slice(params);
        der::spki(&alg_id, &self.point)
    }

    /// CKM_ECDSA verification of r‖s over `input` (any length, as for signing).
    /// `SignatureLenRange` if `signature` is not `2·field_len()` bytes, `SignatureInvalid`
    /// if it does not verify.
    pub fn verify_prehashed(&self, input: &[u8], signature: &[u8]) -> CryptoResult<()> {
        if signature.len() != self.curve.signature_len() {
            return Err(CryptoError::SignatureLenRange);
        }
        match self.curve.input_to_digest(input) {
            Some(digest) => self
                .parsed
                .verify_digest_sig(&digest, signature)
                .map_err(|_| CryptoError::SignatureInvalid),
            None => self.verify_p521_fallback(input, signature),
        }
    }

    /// CKM_ECDSA_SHA256/384/512 verification.
    pub fn verify(&self, hash: HashAlg, msg: &[u8], signature: &[u8]) -> CryptoResult<()> {
        self.verify_prehashed(hash.hash(msg).as_ref(), signature)
    }

    fn verify_p521_fallback(&self, input: &[u8], signature: &[u8]) -> CryptoResult<()> {
        if self.curve != EcCurve::P521 {
            return Err(CryptoError::Internal(
                "ECDSA fallback used for a curve other than P-521",
            ));
        }
        let key = match self.p521_fallback.get() {
            Some(key) => key,
            None => {
                let key = p521::ecdsa::VerifyingKey::from_sec1_bytes(&self.point)
                    .map_err(|_| CryptoError::Internal("P-521 point rejected by fallback"))?;
                self.p521_fallback.get_or_init(|| key)
            }
        };
        let sig = p521::ecdsa::Signature::from_slice(signature)
            .map_err(|_| CryptoError::SignatureInvalid)?;
        key.verify_prehash(&p521_integer(input), &sig)
            .map_err(|_| CryptoError::SignatureInvalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::digest::hex;
    use crate::crypto::testutil::{openssl_ok, write_pub_pem};

    const HASHES: [HashAlg; 3] = [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512];

    fn flip(sig: &[u8], bit: usize) -> Vec<u8> {
        let mut s = sig.to_vec();
        s[bit / 8] ^= 1 << (bit % 8);
        s
    }

    /// r‖s as a DER ECDSA-Sig-Value, for OpenSSL.
    fn sig_to_der(sig: &[u8]) -> Vec<u8> {
        let (r, s) = sig.split_at(sig.len() / 2);
        let mut content = Vec::new();
        der::push_uint(&mut content, r);
        der::push_uint(&mut content, s);
        der::tlv(der::TAG_SEQUENCE, &content)
    }

    #[test]
    fn params_round_trip_and_rejects() {
        for c in EcCurve::ALL {
            assert_eq!(EcCurve::from_params(c.params_der()), Ok(c));
        }
        // secp256k1: a well-formed OID we do not support.
        assert_eq!(
            EcCurve::from_params(&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a]),
            Err(CryptoError::CurveNotSupported)
        );
        assert_eq!(
            EcCurve::from_params(&[0x06, 0x05, 0x2b]),
            Err(CryptoError::KeyInvalid)
        );
        assert_eq!(EcCurve::from_params(&[]), Err(CryptoError::KeyInvalid));
        let mut trailing = EcCurve::P256.params_der().to_vec();
        trailing.push(0);
        assert_eq!(
            EcCurve::from_params(&trailing),
            Err(CryptoError::KeyInvalid)
        );
    }

    #[test]
    fn sign_verify_all_curves_and_hashes() {
        for c in EcCurve::ALL {
            let k = EcPrivateKey::generate(c).unwrap();
            let pubk = k.public_key().unwrap();
            for h in HASHES {
                let sig = k.sign(h, b"message").unwrap();
                assert_eq!(sig.len(), c.signature_len());
                pubk.verify(h, b"message", &sig).unwrap();
                assert_eq!(
                    pubk.verify(h, b"message", &flip(&sig, 5)),
                    Err(CryptoError::SignatureInvalid)
                );
                assert_eq!(
                    pubk.verify(h, b"messagf", &sig),
                    Err(CryptoError::SignatureInvalid)
                );
                assert_eq!(
                    pubk.verify(h, b"message", &sig[1..]),
                    Err(CryptoError::SignatureLenRange)
                );
                // CKM_ECDSA over the hash is the same operation.
                pubk.verify_prehashed(&h.digest(b"message"), &sig).unwrap();
            }
        }
    }

    #[test]
    fn scalar_import_export() {
        for c in EcCurve::ALL {
            let k = EcPrivateKey::generate(c).unwrap();
            let d = k.scalar().unwrap();
            assert_eq!(d.len(), c.field_len());
            let k2 = EcPrivateKey::from_scalar(c, &d).unwrap();
            assert_eq!(k2.public_point(), k.public_point());
            assert_eq!(k2.public_point().len(), c.point_len());
            // Extra leading zeros are accepted.
            let mut padded = vec![0u8; 5];
            padded.extend_from_slice(&d);
            let k3 = EcPrivateKey::from_scalar(c, &padded).unwrap();
            assert_eq!(k3.public_point(), k.public_point());
            // d = 1: the public point is the generator; the scalar exports at full length.
            let one = EcPrivateKey::from_scalar(c, &[1]).unwrap();
            let mut want = vec![0u8; c.field_len()];
            want[c.field_len() - 1] = 1;
            assert_eq!(&one.scalar().unwrap()[..], &want[..]);
            // Out of range.
            assert_eq!(
                EcPrivateKey::from_scalar(c, &[0, 0]).unwrap_err(),
                CryptoError::KeyInvalid
            );
            assert_eq!(
                EcPrivateKey::from_scalar(c, &[]).unwrap_err(),
                CryptoError::KeyInvalid
            );
            let too_long = vec![0xffu8; c.field_len() + 1];
            assert_eq!(
                EcPrivateKey::from_scalar(c, &too_long).unwrap_err(),
                CryptoError::KeyInvalid
            );
            let ff = vec![0xffu8; c.field_len()];
            assert_eq!(
                EcPrivateKey::from_scalar(c, &ff).unwrap_err(),
                CryptoError::KeyInvalid
            );
        }
        let g = EcPrivateKey::from_scalar(EcCurve::P256, &[1]).unwrap();
        assert_eq!(
            g.public_point(),
            &hex(
                "04 6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296
                    4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"
            )[..]
        );
        // n, the P-256 order, is out of range.
        let n = hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
        assert_eq!(
            EcPrivateKey::from_scalar(EcCurve::P256, &n).unwrap_err(),
            CryptoError::KeyInvalid
        );
    }

    #[test]
    fn point_encodings() {
        for c in EcCurve::ALL {
            let k = EcPrivateKey::generate(c).unwrap();
            let raw = k.public_point().to_vec();
            let from_raw = EcPublicKey::from_point(c, &raw).unwrap();
            let der_point = from_raw.ec_point_der();
            assert_eq!(
                der::read_single(&der_point, der::TAG_OCTET_STRING),
                Some(&raw[..])
            );
            let from_der = EcPublicKey::from_point(c, &der_point).unwrap();
            assert_eq!(from_der.point(), &raw[..]);
            let sig = k.sign_prehashed(&[7u8; 32]).unwrap();
            from_der.verify_prehashed(&[7u8; 32], &sig).unwrap();
            // Off the curve.
            let mut bad = raw.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert_eq!(
                EcPublicKey::from_point(c, &bad).unwrap_err(),
                CryptoError::KeyInvalid
            );
            // Wrong curve, truncated, compressed.
            let other = if c == EcCurve::P256 {
                EcCurve::P384
            } else {
                EcCurve::P256
            };
            assert_eq!(
                EcPublicKey::from_point(other, &raw).unwrap_err(),
                CryptoError::KeyInvalid
            );
            assert_eq!(
                EcPublicKey::from_point(c, &raw[..raw.len() - 1]).unwrap_err(),
                CryptoError::KeyInvalid
            );
            let mut compressed = vec![0x02 | (raw[raw.len() - 1] & 1)];
            compressed.extend_from_slice(&raw[1..1 + c.field_len()]);
            assert_eq!(
                EcPublicKey::from_point(c, &compressed).unwrap_err(),
                CryptoError::KeyInvalid
            );
        }
    }

    #[test]
    fn openssl_verifies_hash_and_sign() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("msg"), b"the quick brown fox").unwrap();
        for c in EcCurve::ALL {
            let k = EcPrivateKey::generate(c).unwrap();
            write_pub_pem(&p.join("pub.pem"), &k.public_key().unwrap().spki_der());
            for h in HASHES {
                let sig = k.sign(h, b"the quick brown fox").unwrap();
                std::fs::write(p.join("sig.der"), sig_to_der(&sig)).unwrap();
                let dg = match h {
                    HashAlg::Sha256 => "-sha256",
                    HashAlg::Sha384 => "-sha384",
                    _ => "-sha512",
                };
                assert!(
                    openssl_ok(
                        p,
                        &[
                            "dgst",
                            dg,
                            "-verify",
                            "pub.pem",
                            "-signature",
                            "sig.der",
                            "msg"
                        ]
                    ),
                    "{c:?} {h:?}"
                );
                std::fs::write(p.join("sig.der"), sig_to_der(&flip(&sig, 100))).unwrap();
                assert!(!openssl_ok(
                    p,
                    &[
                        "dgst",
                        dg,
                        "-verify",
                        "pub.pem",
                        "-signature",
                        "sig.der",
                        "msg"
                    ]
                ));
            }
        }
    }

    /// CKM_ECDSA with inputs shorter than, equal to and longer than the order; each signature
    /// must verify as a signature over the equivalent input (left-padded / truncated), and
    /// OpenSSL (which applies the standard's truncation itself) must accept it for inputs up
    /// to 64 bytes, the most `pkeyutl` takes.
    #[test]
    fn prehashed_input_lengths() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let input: Vec<u8> = (0..200u32).map(|i| (i * 31 + 17) as u8 | 0x80).collect();
        for c in EcCurve::ALL {
            let k = EcPrivateKey::generate(c).unwrap();
            let pubk = k.public_key().unwrap();
            write_pub_pem(&p.join("pub.pem"), &pubk.spki_der());
            let order_bytes = c.order_bits().div_ceil(8);
            for len in [0usize, 1, 20, 32, 47, 48, 64, 65, 66, 67, 80, 200] {
                let msg = &input[..len];
                let sig = k.sign_prehashed(msg).unwrap();
                pubk.verify_prehashed(msg, &sig).unwrap();
                assert_eq!(
                    pubk.verify_prehashed(msg, &flip(&sig, 3)),
                    Err(CryptoError::SignatureInvalid)
                );
                if len < order_bytes || (c == EcCurve::P521 && len == 65) {
                    // A smaller integer: the same as its zero-padded form of field length,
                    // when that form needs no bit truncation (P-256/P-384 always; P-521 only
                    // if padded to at most 65 bytes).
                    let pad_to = if c == EcCurve::P521 { 65 } else { order_bytes };
                    let mut padded = vec![0u8; pad_to - len];
                    padded.extend_from_slice(msg);
                    pubk.verify_prehashed(&padded, &sig).unwrap();
                } else {
                    // Longer: only the leading order-length bytes count.
                    pubk.verify_prehashed(&msg[..order_bytes], &sig).unwrap();
                    let mut changed_tail = msg.to_vec();
                    for b in &mut changed_tail[order_bytes..] {
                        *b ^= 0x55;
                    }
                    pubk.verify_prehashed(&changed_tail, &sig).unwrap();
                }
                if len <= 64 && len > 0 {
                    std::fs::write(p.join("in"), msg).unwrap();
                    std::fs::write(p.join("sig.der"), sig_to_der(&sig)).unwrap();
                    assert!(
                        openssl_ok(
                            p,
                            &[
                                "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-in", "in",
                                "-sigfile", "sig.der"
                            ]
                        ),
                        "{c:?} len {len}"
                    );
                }
            }
        }
    }

    /// The P-521 fallback agrees with aws-lc-rs where both apply, and truncates to 521 bits.
    #[test]
    fn p521_fallback_consistent() {
        let k = EcPrivateKey::generate(EcCurve::P521).unwrap();
        let pubk = k.public_key().unwrap();
        let h = HashAlg::Sha512.digest(b"x");
        // Fallback signature over a 64-byte input, verified by aws-lc-rs.
        let sig = k.sign_p521_fallback(&h).unwrap();
        pubk.verify_prehashed(&h, &sig).unwrap();
        // aws-lc-rs signature, verified by the fallback.
        let sig = k.sign_prehashed(&h).unwrap();
        pubk.verify_p521_fallback(&h, &sig).unwrap();
        assert_eq!(
            pubk.verify_p521_fallback(&h, &flip(&sig, 9)),
            Err(CryptoError::SignatureInvalid)
        );
        // The 521-bit integer of a 66-byte input is the input shifted right by 7.
        let mut input = [0u8; 66];
        input[0] = 0x80;
        input[65] = 0x7f;
        let z = p521_integer(&input);
        assert_eq!(z[0], 0x01);
        assert_eq!(&z[1..65], &[0u8; 64][..]);
        assert_eq!(z[65], 0x00);
        let z = p521_integer(&[0xab; 65]);
        assert_eq!(z[0], 0);
        assert_eq!(&z[1..], &[0xab; 65][..]);
    }
}
