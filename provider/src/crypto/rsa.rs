//! RSA: PKCS#1 v1.5 and PSS signatures, PKCS#1 v1.5 and OAEP encryption.
//!
//! # Engines
//! aws-lc-rs does every operation it has an API for, on moduli of 2048..=8192 bits. The
//! pure-Rust `rsa` crate (blinded private operations) covers what it has none for:
//! * CKM_RSA_PKCS signing of data that is not a SHA-256/384/512 `DigestInfo` (aws-lc-rs only
//!   pads digests of those hashes; SHA-1 `DigestInfo`s included). PKCS#1 v1.5 is
//!   deterministic, so the bytes are those aws-lc would give.
//! * PSS whose hash is SHA-1 (aws-lc-rs has no SHA-1 PSS algorithm).
//! * Keys of 1024..2047 or 8193..=16384 bits, which aws-lc-rs refuses: every operation.
//!   That crate's big-number arithmetic is not constant-time (RUSTSEC-2023-0071, "Marvin"):
//!   private-key operations on such keys, decryption above all, may leak timing. They are
//!   legacy sizes kept for interoperability. OAEP labels must then be UTF-8 (the crate takes
//!   a `String`), else `MechanismParamInvalid`.
//!
//! PSS with a salt length other than the hash length stays in aws-lc-rs: its
//! `RsaPssSaltLength::Custom` needs `'static` algorithm values, which are built once per
//! (hash, salt length) and kept for the life of the process (at most 3 × ~1000 small values).
//!
//! Key generation: 2048, 3072 or 4096 bits, public exponent 65537 only.

use std::collections::HashMap;
use std::sync::OnceLock;

use aws_lc_rs::digest::Digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeyPair as LcKeyPair, KeyPairComponents, KeySize, OaepAlgorithm, OaepPrivateDecryptingKey,
    OaepPublicEncryptingKey, Pkcs1PrivateDecryptingKey, Pkcs1PublicEncryptingKey,
    PrivateDecryptingKey, PublicEncryptingKey, PublicKeyComponents,
};
use aws_lc_rs::signature::{
    self, ParsedPublicKey, RsaParameters, RsaPssSaltLength, RsaSignatureEncoding,
};
use parking_lot::Mutex;
use rsa::traits::PrivateKeyParts;
use rsa::{BigUint, Oaep, Pkcs1v15Encrypt, Pkcs1v15Sign, Pss};
use zeroize::Zeroizing;

use super::der;
use super::digest::HashAlg;
use super::error::{CryptoError, CryptoResult};
use super::rng::LcRng;

/// Smallest modulus accepted on import, in bits.
pub const MIN_BITS: usize = 1024;
/// Largest modulus accepted on import, in bits.
pub const MAX_BITS: usize = 16384;
/// Modulus sizes [`RsaPrivateKey::generate`] accepts.
pub const GENERATE_BITS: [usize; 3] = [2048, 3072, 4096];
/// The only public exponent generation supports: 65537.
pub const GENERATE_PUBLIC_EXPONENT: [u8; 3] = [0x01, 0x00, 0x01];

const LC_MIN_BITS: usize = 2048;
const LC_MAX_BITS: usize = 8192;
/// PKCS#1 v1.5 padding overhead.
const PKCS1_OVERHEAD: usize = 11;

/// DER AlgorithmIdentifier { rsaEncryption, NULL }.
const RSA_ALG_ID: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

/// The PKCS#11 components of an RSA private key (CKA_MODULUS ... CKA_COEFFICIENT), big-endian
/// unsigned integers. On import the five CRT values are optional (all of them may be absent,
/// or only the three CRT exponents); on export all are present.
#[derive(Clone)]
pub struct RsaPrivateComponents {
    /// CKA_MODULUS, n.
    pub modulus: Vec<u8>,
    /// CKA_PUBLIC_EXPONENT, e.
    pub public_exponent: Vec<u8>,
    /// CKA_PRIVATE_EXPONENT, d.
    pub private_exponent: Zeroizing<Vec<u8>>,
    /// CKA_PRIME_1, p.
    pub prime_1: Option<Zeroizing<Vec<u8>>>,
    /// CKA_PRIME_2, q.
    pub prime_2: Option<Zeroizing<Vec<u8>>>,
    /// CKA_EXPONENT_1, d mod (p-1).
    pub exponent_1: Option<Zeroizing<Vec<u8>>>,
    /// CKA_EXPONENT_2, d mod (q-1).
    pub exponent_2: Option<Zeroizing<Vec<u8>>>,
    /// CKA_COEFFICIENT, q⁻¹ mod p.
    pub coefficient: Option<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for RsaPrivateComponents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaPrivateComponents")
            .field("modulus", &self.modulus)
            .field("public_exponent", &self.public_exponent)
            .finish_non_exhaustive()
    }
}

/// Parameters of CKM_RSA_PKCS_PSS and CKM_SHAx_RSA_PKCS_PSS (CK_RSA_PKCS_PSS_PARAMS), with
/// the CKM_/CKG_ constants already mapped to hashes by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PssParams {
    /// hashAlg.
    pub hash: HashAlg,
    /// The hash of MGF1 (mgf); must equal `hash`.
    pub mgf_hash: HashAlg,
    /// sLen, in bytes.
    pub salt_len: usize,
}

/// Parameters of CKM_RSA_PKCS_OAEP (CK_RSA_PKCS_OAEP_PARAMS), with the constants mapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OaepParams {
    /// hashAlg.
    pub hash: HashAlg,
    /// The hash of MGF1 (mgf); must equal `hash`.
    pub mgf_hash: HashAlg,
    /// pSourceData (source CKZ_DATA_SPECIFIED); empty when absent.
    pub label: Vec<u8>,
}

impl OaepParams {
    fn aws(&self) -> CryptoResult<&'static OaepAlgorithm> {
        if self.hash != self.mgf_hash {
            return Err(CryptoError::MechanismParamInvalid);
        }
        Ok(match self.hash {
            HashAlg::Sha1 => &aws_lc_rs::rsa::OAEP_SHA1_MGF1SHA1,
            HashAlg::Sha256 => &aws_lc_rs::rsa::OAEP_SHA256_MGF1SHA256,
            HashAlg::Sha384 => &aws_lc_rs::rsa::OAEP_SHA384_MGF1SHA384,
            HashAlg::Sha512 => &aws_lc_rs::rsa::OAEP_SHA512_MGF1SHA512,
        })
    }

    fn fallback(&self) -> CryptoResult<Oaep> {
        self.aws()?;
        let label = match std::str::from_utf8(&self.label) {
            Ok("") => None,
            Ok(s) => Some(s),
            Err(_) => return Err(CryptoError::MechanismParamInvalid),
        };
        macro_rules! oaep {
            ($d:ty) => {
                match label {
                    Some(l) => Oaep::new_with_label::<$d, _>(l),
                    None => Oaep::new::<$d>(),
                }
            };
        }
        Ok(match self.hash {
            HashAlg::Sha1 => oaep!(sha1::Sha1),
            HashAlg::Sha256 => oaep!(sha2::Sha256),
            HashAlg::Sha384 => oaep!(sha2::Sha384),
            HashAlg::Sha512 => oaep!(sha2::Sha512),
        })
    }

    fn label(&self) -> Option<&[u8]> {
        (!self.label.is_empty()).then_some(&self.label[..])
    }
}

fn pkcs1_encoding(hash: HashAlg) -> Option<&'static RsaSignatureEncoding> {
    match hash {
        HashAlg::Sha1 => None,
        HashAlg::Sha256 => Some(&signature::RSA_PKCS1_SHA256),
        HashAlg::Sha384 => Some(&signature::RSA_PKCS1_SHA384),
        HashAlg::Sha512 => Some(&signature::RSA_PKCS1_SHA512),
    }
}

/// Index of a cached verification key: PKCS#1 v1.5 or PSS (salt = hash length) per hash.
fn verify_slot(pss: bool, hash: HashAlg) -> Option<(usize, &'static RsaParameters)> {
    Some(match (pss, hash) {
        (_, HashAlg::Sha1) => return None,
        (false, HashAlg::Sha256) => (0, &signature::RSA_PKCS1_2048_8192_SHA256),
        (false, HashAlg::Sha384) => (1, &signature::RSA_PKCS1_2048_8192_SHA384),
        (false, HashAlg::Sha512) => (2, &signature::RSA_PKCS1_2048_8192_SHA512),
        (true, HashAlg::Sha256) => (3, &signature::RSA_PSS_2048_8192_SHA256),
        (true, HashAlg::Sha384) => (4, &signature::RSA_PSS_2048_8192_SHA384),
        (true, HashAlg::Sha512) => (5, &signature::RSA_PSS_2048_8192_SHA512),
    })
}

/// aws-lc-rs PSS algorithms for a hash and salt length.
#[derive(Clone, Copy)]
struct PssAlgs {
    sign: &'static RsaSignatureEncoding,
    verify: &'static RsaParameters,
}

/// PSS algorithm values with a custom salt length, built once each and kept: aws-lc-rs wants
/// `'static` references. Bounded by 3 hashes × the salt lengths an 8192-bit key allows.
static PSS_CUSTOM: OnceLock<Mutex<HashMap<(HashAlg, u16), PssAlgs>>> = OnceLock::new();

fn pss_algs(hash: HashAlg, salt_len: usize) -> Option<PssAlgs> {
    let (sign, verify): (&'static RsaSignatureEncoding, &'static RsaParameters) = match hash {
        HashAlg::Sha1 => return None,
        HashAlg::Sha256 => (
            &signature::RSA_PSS_SHA256,
            &signature::RSA_PSS_2048_8192_SHA256,
        ),
        HashAlg::Sha384 => (
            &signature::RSA_PSS_SHA384,
            &signature::RSA_PSS_2048_8192_SHA384,
        ),
        HashAlg::Sha512 => (
            &signature::RSA_PSS_SHA512,
            &signature::RSA_PSS_2048_8192_SHA512,
        ),
    };
    if salt_len == hash.output_len() {
        return Some(PssAlgs { sign, verify });
    }
    let salt = u16::try_from(salt_len).ok()?;
    let mut cache = PSS_CUSTOM.get_or_init(Default::default).lock();
    let algs = cache.entry((hash, salt)).or_insert_with(|| {
        let custom = RsaPssSaltLength::Custom(salt);
        let base_sign = match hash {
            HashAlg::Sha384 => signature::RSA_PSS_SHA384,
            HashAlg::Sha512 => signature::RSA_PSS_SHA512,
            _ => signature::RSA_PSS_SHA256,
        };
        let base_verify = match hash {
            HashAlg::Sha384 => signature::RSA_PSS_2048_8192_SHA384,
            HashAlg::Sha512 => signature::RSA_PSS_2048_8192_SHA512,
            _ => signature::RSA_PSS_2048_8192_SHA256,
        };
        PssAlgs {
            sign: Box::leak(Box::new(base_sign.with_pss_salt_length(custom))),
            verify: Box::leak(Box::new(base_verify.with_pss_salt_length(custom))),
        }
    });
    Some(*algs)
}

fn fallback_pss(hash: HashAlg, salt_len: usize) -> Pss {
    match hash {
        HashAlg::Sha1 => Pss::new_with_salt::<sha1::Sha1>(salt_len),
        HashAlg::Sha256 => Pss::new_with_salt::<sha2::Sha256>(salt_len),
        HashAlg::Sha384 => Pss::new_with_salt::<sha2::Sha384>(salt_len),
        HashAlg::Sha512 => Pss::new_with_salt::<sha2::Sha512>(salt_len),
    }
}

fn big(bytes: &[u8]) -> BigUint {
    BigUint::from_bytes_be(bytes)
}

fn secret_bytes(n: &BigUint) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(n.to_bytes_be())
}

fn bit_len(n: &[u8]) -> usize {
    let n = der::strip_leading_zeros(n);
    match n.first() {
        None => 0,
        Some(b) => 8 * n.len() - b.leading_zeros() as usize,
    }
}

struct LcPublic {
    pkcs1: Pkcs1PublicEncryptingKey,
    oaep: OaepPublicEncryptingKey,
    /// Parsed verification keys, by [`verify_slot`].
    verifiers: [OnceLock<ParsedPublicKey>; 6],
}

/// An RSA public key (CKK_RSA), 1024..=16384 bits.
pub struct RsaPublicKey {
    n: Vec<u8>,
    e: Vec<u8>,
    bits: usize,
    lc: Option<LcPublic>,
    fallback: OnceLock<rsa::RsaPublicKey>,
}

impl std::fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaPublicKey")
            .field("bits", &self.bits)
            .finish_non_exhaustive()
    }
}

impl RsaPublicKey {
    /// Imports CKA_MODULUS and CKA_PUBLIC_EXPONENT (big-endian; leading zeros allowed).
    /// `KeySizeRange` outside 1024..=16384 bits; `KeyInvalid` for an even modulus or an
    /// exponent that is even, 1, ≥ n or longer than 33 bits.
    pub fn from_components(modulus: &[u8], public_exponent: &[u8]) -> CryptoResult<Self> {
        let n = der::strip_leading_zeros(modulus).to_vec();
        let e = der::strip_leading_zeros(public_exponent).to_vec();
        let bits = bit_len(&n);
        if !(MIN_BITS..=MAX_BITS).contains(&bits) {
            return Err(CryptoError::KeySizeRange);
        }
        let fallback = rsa::RsaPublicKey::new_with_max_size(big(&n), big(&e), MAX_BITS)
            .map_err(|_| CryptoError::KeyInvalid)?;
        let lc = if (LC_MIN_BITS..=LC_MAX_BITS).contains(&bits) {
            let comps = PublicKeyComponents {
                n: &n[..],
                e: &e[..],
            };
            let enc: PublicEncryptingKey = comps.try_into().map_err(|_| CryptoError::KeyInvalid)?;
            Some(LcPublic {
                pkcs1: Pkcs1PublicEncryptingKey::new(enc.clone())
                    .map_err(|_| CryptoError::Internal("RSA PKCS#1 key setup failed"))?,
                oaep: OaepPublicEncryptingKey::new(enc)
                    .map_err(|_| CryptoError::Internal("RSA OAEP key setup failed"))?,
                verifiers: Default::default(),
            })
        } else {
            None
        };
        let cell = OnceLock::new();
        let _ = cell.set(fallback);
        Ok(RsaPublicKey {
            n,
            e,
            bits,
            lc,
            fallback: cell,
        })
    }

    /// CKA_MODULUS, without leading zeros.
    pub fn modulus(&self) -> &[u8] {
        &self.n
    }

    /// CKA_PUBLIC_EXPONENT, without leading zeros.
    pub fn public_exponent(&self) -> &[u8] {
        &self.e
    }

    /// CKA_MODULUS_BITS.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// k: the byte length of the modulus, of signatures and of ciphertexts.
    pub fn modulus_len(&self) -> usize {
        self.n.len()
    }

    /// CKA_PUBLIC_KEY_INFO: DER SubjectPublicKeyInfo (rsaEncryption).
    pub fn spki_der(&self) -> Vec<u8> {
        let content_len = der::uint_tlv_len(&self.n) + der::uint_tlv_len(&self.e);
        let mut rsa_pub = Vec::with_capacity(der::tlv_len(content_len));
        rsa_pub.push(der::TAG_SEQUENCE);
        der::push_len(&mut rsa_pub, content_len);
        der::push_uint(&mut rsa_pub, &self.n);
        der::push_uint(&mut rsa_pub, &self.e);
        der::spki(RSA_ALG_ID, &rsa_pub)
    }

    fn fallback(&self) -> CryptoResult<&rsa::RsaPublicKey> {
        if let Some(k) = self.fallback.get() {
            return Ok(k);
        }
        let k = rsa::RsaPublicKey::new_with_max_size(big(&self.n), big(&self.e), MAX_BITS)
            .map_err(|_| CryptoError::Internal("RSA public key rejected by fallback"))?;
        Ok(self.fallback.get_or_init(|| k))
    }

    fn verifier(&self, pss: bool, hash: HashAlg) -> CryptoResult<Option<&ParsedPublicKey>> {
        let (Some(lc), Some((slot, params))) = (&self.lc, verify_slot(pss, hash)) else {
            return Ok(None);
        };
        let cell = &lc.verifiers[slot];
        if let Some(p) = cell.get() {
            return Ok(Some(p));
        }
        let parsed = PublicKeyComponents {
            n: &self.n[..],
            e: &self.e[..],
        }
        .to_parsed_public_key(params)
        .map_err(|_| CryptoError::Internal("RSA verification key setup failed"))?;
        Ok(Some(cell.get_or_init(|| parsed)))
    }

    fn check_sig_len(&self, signature: &[u8]) -> CryptoResult<()> {
        if signature.len() == self.modulus_len() {
            Ok(())
        } else {
            Err(CryptoError::SignatureLenRange)
        }
    }

    /// CKM_RSA_PKCS verification: `data` is what was signed (normally a `DigestInfo`).
    pub fn verify_pkcs1_raw(&self, data: &[u8], signature: &[u8]) -> CryptoResult<()> {
        if data.len() + PKCS1_OVERHEAD > self.modulus_len() {
            return Err(CryptoError::DataLenRange);
        }
        self.check_sig_len(signature)?;
        if let Some((hash, value)) = HashAlg::parse_digest_info(data) {
            if let Some(v) = self.verifier(false, hash)? {
                let digest = Digest::import_less_safe(value, hash.aws())
                    .map_err(|_| CryptoError::Internal("digest import failed"))?;
                return v
                    .verify_digest_sig(&digest, signature)
                    .map_err(|_| CryptoError::SignatureInvalid);
            }
        }
        self.fallback()?
            .verify(Pkcs1v15Sign::new_unprefixed(), data, signature)
            .map_err(|_| CryptoError::SignatureInvalid)
    }

    /// PKCS#1 v1.5 verification of a hash computed by the caller (streaming CKM_SHAx_RSA_PKCS).
    pub fn verify_pkcs1_hashed(
        &self,
        hash: HashAlg,
        digest: &[u8],
        signature: &[u8],
    ) -> CryptoResult<()> {
        if digest.len() != hash.output_len() {
            return Err(CryptoError::DataLenRange);
        }
        self.verify_pkcs1_raw(&hash.digest_info(digest), signature)
    }

    /// CKM_SHA256/384/512_RSA_PKCS verification of a message.
    pub fn verify_pkcs1(&self, hash: HashAlg, msg: &[u8], signature: &[u8]) -> CryptoResult<()> {
        self.verify_pkcs1_hashed(hash, hash.hash(msg).as_ref(), signature)
    }

    /// CKM_RSA_PKCS_PSS verification: `digest` is the hash (its length must match
    /// `params.hash`, else `DataLenRange`). The salt length must be exactly `params.salt_len`.
    pub fn verify_pss(
        &self,
        params: &PssParams,
        digest: &[u8],
        signature: &[u8],
    ) -> CryptoResult<()> {
        check_pss(params, self.bits, digest)?;
        self.check_sig_len(signature)?;
        if self.lc.is_some() {
            if let Some(algs) = pss_algs(params.hash, params.salt_len) {
                let d = Digest::import_less_safe(digest, params.hash.aws())
                    .map_err(|_| CryptoError::Internal("digest import failed"))?;
                if params.salt_len == params.hash.output_len() {
                    if let Some(v) = self.verifier(true, params.hash)? {
                        return v
                            .verify_digest_sig(&d, signature)
                            .map_err(|_| CryptoError::SignatureInvalid);
                    }
                }
                let v = PublicKeyComponents {
                    n: &self.n[..],
                    e: &self.e[..],
                }
                .to_parsed_public_key(algs.verify)
                .map_err(|_| CryptoError::Internal("RSA verification key setup failed"))?;
                return v
                    .verify_digest_sig(&d, signature)
                    .map_err(|_| CryptoError::SignatureInvalid);
            }
        }
        self.fallback()?
            .verify(
                fallback_pss(params.hash, params.salt_len),
                digest,
                signature,
            )
            .map_err(|_| CryptoError::SignatureInvalid)
    }

    /// CKM_SHA256/384/512_RSA_PKCS_PSS verification of a message; `hash` is the mechanism's
    /// hash, which `params.hash` must equal (else `MechanismParamInvalid`).
    pub fn verify_pss_message(
        &self,
        hash: HashAlg,
        params: &PssParams,
        msg: &[u8],
        signature: &[u8],
    ) -> CryptoResult<()> {
        if params.hash != hash {
            return Err(CryptoError::MechanismParamInvalid);
        }
        self.verify_pss(params, hash.hash(msg).as_ref(), signature)
    }

    /// CKM_RSA_PKCS encryption. `DataLenRange` if longer than k-11 bytes.
    pub fn encrypt_pkcs1(&self, plaintext: &[u8]) -> CryptoResult<Vec<u8>> {
        if plaintext.len() + PKCS1_OVERHEAD > self.modulus_len() {
            return Err(CryptoError::DataLenRange);
        }
        if let Some(lc) = &self.lc {
            let mut out = vec![0u8; self.modulus_len()];
            let n = lc
                .pkcs1
                .encrypt(plaintext, &mut out)
                .map_err(|_| CryptoError::Internal("RSA encryption failed"))?
                .len();
            out.truncate(n);
            return Ok(out);
        }
        let mut rng = LcRng::new();
        let ct = self
            .fallback()?
            .encrypt(&mut rng, Pkcs1v15Encrypt, plaintext)
            .map_err(|_| CryptoError::Internal("RSA encryption failed"))?;
        rng.check(ct)
    }

    /// CKM_RSA_PKCS_OAEP encryption. `DataLenRange` if longer than k-2·hLen-2 bytes;
    /// `MechanismParamInvalid` if the MGF1 hash differs from the hash.
    pub fn encrypt_oaep(&self, params: &OaepParams, plaintext: &[u8]) -> CryptoResult<Vec<u8>> {
        let alg = params.aws()?;
        if plaintext.len() + 2 * params.hash.output_len() + 2 > self.modulus_len() {
            return Err(CryptoError::DataLenRange);
        }
        if let Some(lc) = &self.lc {
            let mut out = vec![0u8; self.modulus_len()];
            let n = lc
                .oaep
                .encrypt(alg, plaintext, &mut out, params.label())
                .map_err(|_| CryptoError::Internal("RSA encryption failed"))?
                .len();
            out.truncate(n);
            return Ok(out);
        }
        let scheme = params.fallback()?;
        let mut rng = LcRng::new();
        let ct = self
            .fallback()?
            .encrypt(&mut rng, scheme, plaintext)
            .map_err(|_| CryptoError::Internal("RSA encryption failed"))?;
        rng.check(ct)
    }
}

fn check_pss(params: &PssParams, bits: usize, digest: &[u8]) -> CryptoResult<()> {
    if params.mgf_hash != params.hash {
        return Err(CryptoError::MechanismParamInvalid);
    }
    if digest.len() != params.hash.output_len() {
        return Err(CryptoError::DataLenRange);
    }
    // emLen = ceil((modBits - 1) / 8) >= hLen + sLen + 2.
    let em_len = (bits - 1).div_ceil(8);
    if params.hash.output_len() + params.salt_len + 2 > em_len {
        return Err(CryptoError::MechanismParamInvalid);
    }
    Ok(())
}

struct LcPrivate {
    key_pair: LcKeyPair,
    pkcs1: Pkcs1PrivateDecryptingKey,
    oaep: OaepPrivateDecryptingKey,
}

/// An RSA private key (CKK_RSA). The components are kept (zeroized on drop) for export and
/// for the fallback engine; the aws-lc key objects are cleansed by aws-lc.
pub struct RsaPrivateKey {
    comps: RsaPrivateComponents,
    public: RsaPublicKey,
    lc: Option<LcPrivate>,
    fallback: OnceLock<rsa::RsaPrivateKey>,
}

impl std::fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaPrivateKey")
            .field("bits", &self.public.bits)
            .finish_non_exhaustive()
    }
}

/// Parses a PKCS#8 PrivateKeyInfo holding an RSAPrivateKey into components.
fn components_from_pkcs8(pkcs8: &[u8]) -> Option<RsaPrivateComponents> {
    let info = der::read_single(pkcs8, der::TAG_SEQUENCE)?;
    let mut r = der::Reader::new(info);
    r.read_uint()?;
    r.read(der::TAG_SEQUENCE)?;
    let key = r.read(der::TAG_OCTET_STRING)?;
    components_from_pkcs1(key)
}

/// Parses a PKCS#1 RSAPrivateKey into components.
fn components_from_pkcs1(key: &[u8]) -> Option<RsaPrivateComponents> {
    let seq = der::read_single(key, der::TAG_SEQUENCE)?;
    let mut r = der::Reader::new(seq);
    if !r.read_uint()?.is_empty() {
        return None; // multi-prime
    }
    let mut next = || r.read_uint().map(|v| Zeroizing::new(v.to_vec()));
    Some(RsaPrivateComponents {
        modulus: next()?.to_vec(),
        public_exponent: next()?.to_vec(),
        private_exponent: next()?,
        prime_1: Some(next()?),
        prime_2: Some(next()?),
        exponent_1: Some(next()?),
        exponent_2: Some(next()?),
        coefficient: Some(next()?),
    })
}

/// Components with every CRT value filled in, computing missing ones with the `rsa` crate.
/// Returns them with the `rsa` crate key when it had to build one.
fn complete_components(
    c: &RsaPrivateComponents,
) -> CryptoResult<(RsaPrivateComponents, Option<rsa::RsaPrivateKey>)> {
    let strip = |v: &[u8]| Zeroizing::new(der::strip_leading_zeros(v).to_vec());
    let n = der::strip_leading_zeros(&c.modulus).to_vec();
    let e = der::strip_leading_zeros(&c.public_exponent).to_vec();
    let d = strip(&c.private_exponent);
    let all_crt = [
        &c.prime_1,
        &c.prime_2,
        &c.exponent_1,
        &c.exponent_2,
        &c.coefficient,
    ];
    if all_crt.iter().all(|v| v.is_some()) {
        let get = |v: &Option<Zeroizing<Vec<u8>>>| v.as_ref().map(|v| strip(v));
        return Ok((
            RsaPrivateComponents {
                modulus: n,
                public_exponent: e,
                private_exponent: d,
                prime_1: get(&c.prime_1),
                prime_2: get(&c.prime_2),
                exponent_1: get(&c.exponent_1),
                exponent_2: get(&c.exponent_2),
                coefficient: get(&c.coefficient),
            },
            None,
        ));
    }
    let primes = match (&c.prime_1, &c.prime_2) {
        (Some(p), Some(q)) => vec![big(p), big(q)],
        (None, None) => Vec::new(),
        _ => return Err(CryptoError::KeyInvalid),
    };
    let mut key = rsa::RsaPrivateKey::from_components(big(&n), big(&e), big(&d), primes)
        .map_err(|_| CryptoError::KeyInvalid)?;
    key.precompute().map_err(|_| CryptoError::KeyInvalid)?;
    let [p, q] = key.primes() else {
        return Err(CryptoError::KeyInvalid);
    };
    let (Some(dp), Some(dq), Some(qinv)) = (key.dp(), key.dq(), key.crt_coefficient()) else {
        return Err(CryptoError::KeyInvalid);
    };
    let qinv = Zeroizing::new(qinv);
    let full = RsaPrivateComponents {
        modulus: n,
        public_exponent: e,
        private_exponent: d,
        prime_1: Some(secret_bytes(p)),
        prime_2: Some(secret_bytes(q)),
        exponent_1: Some(secret_bytes(dp)),
        exponent_2: Some(secret_bytes(dq)),
        coefficient: Some(secret_bytes(&qinv)),
    };
    Ok((full, Some(key)))
}

/// Whether the CRT values present in `given` are those of `key`.
fn crt_matches(given: &RsaPrivateComponents, key: &rsa::RsaPrivateKey) -> bool {
    let qinv = key.crt_coefficient().map(Zeroizing::new);
    let computed = [
        key.dp().map(secret_bytes),
        key.dq().map(secret_bytes),
        qinv.as_deref().map(secret_bytes),
    ];
    let supplied = [&given.exponent_1, &given.exponent_2, &given.coefficient];
    supplied
        .iter()
        .zip(computed.iter())
        .all(|(s, c)| match (s, c) {
            (None, _) => true,
            (Some(s), Some(c)) => der::strip_leading_zeros(s) == &c[..],
            (Some(_), None) => false,
        })
}

fn opt(v: &Option<Zeroizing<Vec<u8>>>) -> &[u8] {
    v.as_ref().map(|v| &v[..]).unwrap_or(&[])
}

impl RsaPrivateKey {
    /// A fresh key pair of 2048, 3072 or 4096 bits (else `KeySizeRange`). `public_exponent`
    /// (CKA_PUBLIC_EXPONENT from the template), when given, must be 65537 (leading zeros
    /// allowed), else `KeyInvalid`: aws-lc generates with 65537 only.
    pub fn generate(bits: usize, public_exponent: Option<&[u8]>) -> CryptoResult<Self> {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            _ => return Err(CryptoError::KeySizeRange),
        };
        if let Some(e) = public_exponent {
            if der::strip_leading_zeros(e) != GENERATE_PUBLIC_EXPONENT {
                return Err(CryptoError::KeyInvalid);
            }
        }
        let key_pair = LcKeyPair::generate(size)
            .map_err(|_| CryptoError::Internal("RSA key generation failed"))?;
        let pkcs8 = key_pair
            .as_der()
            .map_err(|_| CryptoError::Internal("RSA key export failed"))?;
        let comps = components_from_pkcs8(pkcs8.as_ref())
            .ok_or(CryptoError::Internal("RSA key export unparsable"))?;
        let lc = Self::lc_from_key_pair(key_pair, pkcs8.as_ref())?;
        let public = RsaPublicKey::from_components(&comps.modulus, &comps.public_exponent)?;
        Ok(RsaPrivateKey {
            comps,
            public,
            lc: Some(lc),
            fallback: OnceLock::new(),
        })
    }

    fn lc_from_key_pair(key_pair: LcKeyPair, pkcs8: &[u8]) -> CryptoResult<LcPrivate> {
        let dec = PrivateDecryptingKey::from_pkcs8(pkcs8).map_err(|_| CryptoError::KeyInvalid)?;
        Ok(LcPrivate {
            key_pair,
            pkcs1: Pkcs1PrivateDecryptingKey::new(dec.clone())
                .map_err(|_| CryptoError::Internal("RSA PKCS#1 key setup failed"))?,
            oaep: OaepPrivateDecryptingKey::new(dec)
                .map_err(|_| CryptoError::Internal("RSA OAEP key setup failed"))?,
        })
    }

    /// Imports the PKCS#11 components. n, e and d are required; p and q may both be absent
    /// (recovered from n, e, d; needs 2^16 < e < 2^256) and the CRT values may be absent
    /// (computed). Inconsistent components: `KeyInvalid`. Size outside 1024..=16384 bits:
    /// `KeySizeRange`.
    pub fn from_components(c: &RsaPrivateComponents) -> CryptoResult<Self> {
        let bits = bit_len(&c.modulus);
        if !(MIN_BITS..=MAX_BITS).contains(&bits) {
            return Err(CryptoError::KeySizeRange);
        }
        let public = RsaPublicKey::from_components(&c.modulus, &c.public_exponent)?;
        let (comps, fallback_key) = complete_components(c)?;
        let computed = fallback_key.is_some();
        let lc = if (LC_MIN_BITS..=LC_MAX_BITS).contains(&bits) {
            let kc = KeyPairComponents {
                public_key: PublicKeyComponents {
                    n: &comps.modulus[..],
                    e: &comps.public_exponent[..],
                },
                d: &comps.private_exponent[..],
                p: opt(&comps.prime_1),
                q: opt(&comps.prime_2),
                dP: opt(&comps.exponent_1),
                dQ: opt(&comps.exponent_2),
                qInv: opt(&comps.coefficient),
            };
            // Validates every component, CRT values included.
            let key_pair = LcKeyPair::from_components(&kc).map_err(|_| CryptoError::KeyInvalid)?;
            let pkcs8 = key_pair
                .as_der()
                .map_err(|_| CryptoError::Internal("RSA key export failed"))?;
            Some(Self::lc_from_key_pair(key_pair, pkcs8.as_ref())?)
        } else {
            None
        };
        let key = RsaPrivateKey {
            comps,
            public,
            lc,
            fallback: OnceLock::new(),
        };
        if let Some(k) = fallback_key {
            let _ = key.fallback.set(k);
        }
        if key.lc.is_none() || computed {
            // The `rsa` crate checks n = pq and d·e ≡ 1 but ignores supplied CRT values: they
            // must match the ones it computes. (Supplied without primes they are ignored, as
            // recovered primes may come in either order.)
            let fb = key.fallback()?;
            if c.prime_1.is_some() && !crt_matches(c, fb) {
                return Err(CryptoError::KeyInvalid);
            }
        }
        Ok(key)
    }

    /// All components (CKA_MODULUS ... CKA_COEFFICIENT), each `Some`, without leading zeros.
    pub fn components(&self) -> &RsaPrivateComponents {
        &self.comps
    }

    /// The public half.
    pub fn public_key(&self) -> &RsaPublicKey {
        &self.public
    }

    /// CKA_MODULUS_BITS.
    pub fn bits(&self) -> usize {
        self.public.bits
    }

    fn fallback(&self) -> CryptoResult<&rsa::RsaPrivateKey> {
        if let Some(k) = self.fallback.get() {
            return Ok(k);
        }
        let c = &self.comps;
        let mut k = rsa::RsaPrivateKey::from_components(
            big(&c.modulus),
            big(&c.public_exponent),
            big(&c.private_exponent),
            vec![big(opt(&c.prime_1)), big(opt(&c.prime_2))],
        )
        .map_err(|_| CryptoError::KeyInvalid)?;
        k.precompute().map_err(|_| CryptoError::KeyInvalid)?;
        Ok(self.fallback.get_or_init(|| k))
    }

    fn sign_fallback<S: rsa::traits::SignatureScheme>(
        &self,
        scheme: S,
        data: &[u8],
    ) -> CryptoResult<Vec<u8>> {
        let mut rng = LcRng::new();
        let sig = self
            .fallback()?
            .sign_with_rng(&mut rng, scheme, data)
            .map_err(|_| CryptoError::Internal("RSA signing failed"))?;
        rng.check(sig)
    }

    /// CKM_RSA_PKCS signing: `data` (normally a `DigestInfo`, at most k-11 bytes, else
    /// `DataLenRange`) is PKCS#1 v1.5 type-1 padded and signed.
    pub fn sign_pkcs1_raw(&self, data: &[u8]) -> CryptoResult<Vec<u8>> {
        if data.len() + PKCS1_OVERHEAD > self.public.modulus_len() {
            return Err(CryptoError::DataLenRange);
        }
        if let (Some(lc), Some((hash, value))) = (&self.lc, HashAlg::parse_digest_info(data)) {
            if let Some(enc) = pkcs1_encoding(hash) {
                let digest = Digest::import_less_safe(value, hash.aws())
                    .map_err(|_| CryptoError::Internal("digest import failed"))?;
                let mut sig = vec![0u8; self.public.modulus_len()];
                lc.key_pair
                    .sign_digest(enc, &digest, &mut sig)
                    .map_err(|_| CryptoError::Internal("RSA signing failed"))?;
                return Ok(sig);
            }
        }
        self.sign_fallback(Pkcs1v15Sign::new_unprefixed(), data)
    }

    /// PKCS#1 v1.5 signing of a hash computed by the caller (streaming CKM_SHAx_RSA_PKCS).
    pub fn sign_pkcs1_hashed(&self, hash: HashAlg, digest: &[u8]) -> CryptoResult<Vec<u8>> {
        if digest.len() != hash.output_len() {
            return Err(CryptoError::DataLenRange);
        }
        self.sign_pkcs1_raw(&hash.digest_info(digest))
    }

    /// CKM_SHA256/384/512_RSA_PKCS signing of a message.
    pub fn sign_pkcs1(&self, hash: HashAlg, msg: &[u8]) -> CryptoResult<Vec<u8>> {
        self.sign_pkcs1_hashed(hash, hash.hash(msg).as_ref())
    }

    /// CKM_RSA_PKCS_PSS signing of `digest`, a hash of `params.hash` (else `DataLenRange`).
    /// `MechanismParamInvalid` if the MGF1 hash differs or the salt does not fit
    /// (sLen > emLen - hLen - 2).
    pub fn sign_pss(&self, params: &PssParams, digest: &[u8]) -> CryptoResult<Vec<u8>> {
        check_pss(params, self.public.bits, digest)?;
        if let (Some(lc), Some(algs)) = (&self.lc, pss_algs(params.hash, params.salt_len)) {
            let d = Digest::import_less_safe(digest, params.hash.aws())
                .map_err(|_| CryptoError::Internal("digest import failed"))?;
            let mut sig = vec![0u8; self.public.modulus_len()];
            lc.key_pair
                .sign_digest(algs.sign, &d, &mut sig)
                .map_err(|_| CryptoError::Internal("RSA signing failed"))?;
            return Ok(sig);
        }
        self.sign_fallback(fallback_pss(params.hash, params.salt_len), digest)
    }

    /// CKM_SHA256/384/512_RSA_PKCS_PSS signing of a message; `hash` is the mechanism's hash,
    /// which `params.hash` must equal (else `MechanismParamInvalid`).
    pub fn sign_pss_message(
        &self,
        hash: HashAlg,
        params: &PssParams,
        msg: &[u8],
    ) -> CryptoResult<Vec<u8>> {
        if params.hash != hash {
            return Err(CryptoError::MechanismParamInvalid);
        }
        self.sign_pss(params, hash.hash(msg).as_ref())
    }

    fn check_ct_len(&self, ciphertext: &[u8]) -> CryptoResult<()> {
        if ciphertext.len() == self.public.modulus_len() {
            Ok(())
        } else {
            Err(CryptoError::EncryptedDataLenRange)
        }
    }

    /// CKM_RSA_PKCS decryption. `EncryptedDataLenRange` unless the ciphertext is k bytes;
    /// `EncryptedDataInvalid` for bad padding or a ciphertext ≥ n.
    pub fn decrypt_pkcs1(&self, ciphertext: &[u8]) -> CryptoResult<Zeroizing<Vec<u8>>> {
        self.check_ct_len(ciphertext)?;
        if let Some(lc) = &self.lc {
            let mut out = Zeroizing::new(vec![0u8; lc.pkcs1.min_output_size()]);
            let n = lc
                .pkcs1
                .decrypt(ciphertext, &mut out)
                .map_err(|_| CryptoError::EncryptedDataInvalid)?
                .len();
            out.truncate(n);
            return Ok(out);
        }
        let mut rng = LcRng::new();
        let pt = self
            .fallback()?
            .decrypt_blinded(&mut rng, Pkcs1v15Encrypt, ciphertext)
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::EncryptedDataInvalid)?;
        rng.check(pt)
    }

    /// CKM_RSA_PKCS_OAEP decryption; errors as [`RsaPrivateKey::decrypt_pkcs1`], plus
    /// `MechanismParamInvalid` for mismatched hashes.
    pub fn decrypt_oaep(
        &self,
        params: &OaepParams,
        ciphertext: &[u8],
    ) -> CryptoResult<Zeroizing<Vec<u8>>> {
        let alg = params.aws()?;
        self.check_ct_len(ciphertext)?;
        if let Some(lc) = &self.lc {
            let mut out = Zeroizing::new(vec![0u8; lc.oaep.min_output_size()]);
            let n = lc
                .oaep
                .decrypt(alg, ciphertext, &mut out, params.label())
                .map_err(|_| CryptoError::EncryptedDataInvalid)?
                .len();
            out.truncate(n);
            return Ok(out);
        }
        let scheme = params.fallback()?;
        let mut rng = LcRng::new();
        let pt = self
            .fallback()?
            .decrypt_blinded(&mut rng, scheme, ciphertext)
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::EncryptedDataInvalid)?;
        rng.check(pt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::testutil::{openssl_ok, openssl_out, write_pub_pem};
    use std::path::Path;

    const SIG_HASHES: [HashAlg; 3] = [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512];
    const ALL_HASHES: [HashAlg; 4] = [
        HashAlg::Sha1,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ];

    fn key2048() -> &'static RsaPrivateKey {
        static K: OnceLock<RsaPrivateKey> = OnceLock::new();
        K.get_or_init(|| RsaPrivateKey::generate(2048, None).unwrap())
    }

    /// A 1024-bit key made by OpenSSL: below aws-lc-rs's range, so the fallback engine.
    fn key1024() -> &'static RsaPrivateKey {
        static K: OnceLock<RsaPrivateKey> = OnceLock::new();
        K.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let der = openssl_out(
                dir.path(),
                &[
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:1024",
                    "-outform",
                    "DER",
                ],
            );
            // OpenSSL writes RSA keys as PKCS#1 RSAPrivateKey here; accept PKCS#8 too.
            let c = components_from_pkcs8(&der)
                .or_else(|| components_from_pkcs1(&der))
                .unwrap();
            let k = RsaPrivateKey::from_components(&c).unwrap();
            assert!(k.lc.is_none());
            k
        })
    }

    fn flip(sig: &[u8], bit: usize) -> Vec<u8> {
        let mut s = sig.to_vec();
        s[bit / 8] ^= 1 << (bit % 8);
        s
    }

    fn md(h: HashAlg) -> &'static str {
        match h {
            HashAlg::Sha1 => "sha1",
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha384 => "sha384",
            HashAlg::Sha512 => "sha512",
        }
    }

    /// PKCS#1 RSAPrivateKey DER of a key, as a PEM file OpenSSL can read.
    fn write_priv_pem(path: &Path, k: &RsaPrivateKey) {
        let c = k.components();
        let fields: [&[u8]; 8] = [
            &c.modulus,
            &c.public_exponent,
            &c.private_exponent,
            opt(&c.prime_1),
            opt(&c.prime_2),
            opt(&c.exponent_1),
            opt(&c.exponent_2),
            opt(&c.coefficient),
        ];
        let mut content = vec![0x02, 0x01, 0x00];
        for f in fields {
            der::push_uint(&mut content, f);
        }
        let der_bytes = der::tlv(der::TAG_SEQUENCE, &content);
        let dir = path.parent().unwrap();
        std::fs::write(dir.join("priv.der"), der_bytes).unwrap();
        assert!(openssl_ok(
            dir,
            &[
                "pkey",
                "-inform",
                "DER",
                "-in",
                "priv.der",
                "-out",
                path.to_str().unwrap()
            ]
        ));
    }

    fn setup_dir(k: &RsaPrivateKey) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write_pub_pem(&dir.path().join("pub.pem"), &k.public_key().spki_der());
        write_priv_pem(&dir.path().join("priv.pem"), k);
        dir
    }

    #[test]
    fn generate_sizes_and_exponent() {
        assert_eq!(
            RsaPrivateKey::generate(1024, None).unwrap_err(),
            CryptoError::KeySizeRange
        );
        assert_eq!(
            RsaPrivateKey::generate(2047, None).unwrap_err(),
            CryptoError::KeySizeRange
        );
        assert_eq!(
            RsaPrivateKey::generate(8192, None).unwrap_err(),
            CryptoError::KeySizeRange
        );
        assert_eq!(
            RsaPrivateKey::generate(2048, Some(&[3])).unwrap_err(),
            CryptoError::KeyInvalid
        );
        for bits in [3072, 4096] {
            let k = RsaPrivateKey::generate(bits, Some(&[0, 1, 0, 1])).unwrap();
            assert_eq!(k.bits(), bits);
            assert_eq!(k.public_key().public_exponent(), &GENERATE_PUBLIC_EXPONENT);
            let sig = k.sign_pkcs1(HashAlg::Sha256, b"m").unwrap();
            assert_eq!(sig.len(), bits / 8);
            k.public_key()
                .verify_pkcs1(HashAlg::Sha256, b"m", &sig)
                .unwrap();
        }
        let k = key2048();
        assert_eq!(k.bits(), 2048);
        assert_eq!(k.public_key().modulus_len(), 256);
    }

    #[test]
    fn components_round_trip() {
        let k = key2048();
        let c = k.components().clone();
        let k2 = RsaPrivateKey::from_components(&c).unwrap();
        assert_eq!(k2.components().modulus, c.modulus);
        assert_eq!(opt(&k2.components().coefficient), opt(&c.coefficient));
        // The same deterministic signature.
        assert_eq!(
            k.sign_pkcs1(HashAlg::Sha256, b"x").unwrap(),
            k2.sign_pkcs1(HashAlg::Sha256, b"x").unwrap()
        );
        // Leading zeros on input are fine.
        let mut padded = c.clone();
        padded.modulus.insert(0, 0);
        padded.private_exponent.insert(0, 0);
        RsaPrivateKey::from_components(&padded).unwrap();
        // Without CRT values, and without primes at all: recomputed / recovered.
        let mut no_crt = c.clone();
        no_crt.exponent_1 = None;
        no_crt.exponent_2 = None;
        no_crt.coefficient = None;
        let k3 = RsaPrivateKey::from_components(&no_crt).unwrap();
        assert_eq!(opt(&k3.components().coefficient), opt(&c.coefficient));
        let mut bare = no_crt.clone();
        bare.prime_1 = None;
        bare.prime_2 = None;
        let k4 = RsaPrivateKey::from_components(&bare).unwrap();
        let (p4, q4) = (opt(&k4.components().prime_1), opt(&k4.components().prime_2));
        assert!(
            (p4 == opt(&c.prime_1) && q4 == opt(&c.prime_2))
                || (p4 == opt(&c.prime_2) && q4 == opt(&c.prime_1))
        );
        assert_eq!(
            k4.sign_pkcs1(HashAlg::Sha256, b"x").unwrap(),
            k.sign_pkcs1(HashAlg::Sha256, b"x").unwrap()
        );
        // Inconsistent values.
        let mut bad = c.clone();
        let last = bad.private_exponent.len() - 1;
        bad.private_exponent[last] ^= 2;
        assert_eq!(
            RsaPrivateKey::from_components(&bad).unwrap_err(),
            CryptoError::KeyInvalid
        );
        let mut bad = no_crt.clone();
        bad.exponent_1 = Some(Zeroizing::new(vec![5]));
        assert_eq!(
            RsaPrivateKey::from_components(&bad).unwrap_err(),
            CryptoError::KeyInvalid
        );
        let mut bad = c.clone();
        bad.prime_2 = None;
        assert_eq!(
            RsaPrivateKey::from_components(&bad).unwrap_err(),
            CryptoError::KeyInvalid
        );
        // Too small.
        let mut small = c.clone();
        small.modulus.truncate(100);
        assert_eq!(
            RsaPrivateKey::from_components(&small).unwrap_err(),
            CryptoError::KeySizeRange
        );
        assert_eq!(
            RsaPublicKey::from_components(&[0xff; 64], &[1, 0, 1]).unwrap_err(),
            CryptoError::KeySizeRange
        );
        let mut even = c.modulus.clone();
        *even.last_mut().unwrap() &= 0xfe;
        assert_eq!(
            RsaPublicKey::from_components(&even, &[1, 0, 1]).unwrap_err(),
            CryptoError::KeyInvalid
        );
    }

    /// PKCS#1 v1.5 is deterministic: our signatures must equal OpenSSL's, byte for byte, on
    /// both the aws-lc-rs path (SHA-2 DigestInfo) and the fallback (other data).
    #[test]
    fn pkcs1_known_answer_against_openssl() {
        for k in [key2048(), key1024()] {
            let dir = setup_dir(k);
            let p = dir.path();
            std::fs::write(p.join("msg"), b"hello pkcs1").unwrap();
            for h in SIG_HASHES {
                let ours = k.sign_pkcs1(h, b"hello pkcs1").unwrap();
                let theirs = openssl_out(
                    p,
                    &["dgst", &format!("-{}", md(h)), "-sign", "priv.pem", "msg"],
                );
                assert_eq!(ours, theirs, "{h:?}");
            }
            // Raw data that is no DigestInfo: the fallback path.
            let data = b"arbitrary data, 36 bytes: md5+sha1!!";
            std::fs::write(p.join("raw"), data).unwrap();
            let ours = k.sign_pkcs1_raw(data).unwrap();
            let theirs = openssl_out(p, &["pkeyutl", "-sign", "-inkey", "priv.pem", "-in", "raw"]);
            assert_eq!(ours, theirs);
            k.public_key().verify_pkcs1_raw(data, &ours).unwrap();
        }
    }

    #[test]
    fn pkcs1_paths_agree_and_reject() {
        let k = key2048();
        let pubk = k.public_key();
        let di = HashAlg::Sha256.digest_info(&HashAlg::Sha256.digest(b"abc"));
        let fast = k.sign_pkcs1_raw(&di).unwrap();
        let slow = k
            .sign_fallback(Pkcs1v15Sign::new_unprefixed(), &di)
            .unwrap();
        assert_eq!(fast, slow);
        assert_eq!(fast, k.sign_pkcs1(HashAlg::Sha256, b"abc").unwrap());
        // aws-lc-rs's own verifier accepts it.
        signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, {
            let c = k.components();
            let mut content = Vec::new();
            der::push_uint(&mut content, &c.modulus);
            der::push_uint(&mut content, &c.public_exponent);
            der::tlv(der::TAG_SEQUENCE, &content)
        })
        .verify(b"abc", &fast)
        .unwrap();
        for k in [key2048(), key1024()] {
            let pubk = k.public_key();
            for h in ALL_HASHES {
                let sig = k.sign_pkcs1(h, b"msg").unwrap();
                pubk.verify_pkcs1(h, b"msg", &sig).unwrap();
                assert_eq!(
                    pubk.verify_pkcs1(h, b"msg", &flip(&sig, 77)),
                    Err(CryptoError::SignatureInvalid)
                );
                assert_eq!(
                    pubk.verify_pkcs1(h, b"msh", &sig),
                    Err(CryptoError::SignatureInvalid)
                );
                assert_eq!(
                    pubk.verify_pkcs1(h, b"msg", &sig[1..]),
                    Err(CryptoError::SignatureLenRange)
                );
            }
            let max = vec![0x42u8; pubk.modulus_len() - 11];
            let sig = k.sign_pkcs1_raw(&max).unwrap();
            pubk.verify_pkcs1_raw(&max, &sig).unwrap();
            assert_eq!(
                pubk.verify_pkcs1_raw(&max[1..], &sig),
                Err(CryptoError::SignatureInvalid)
            );
            assert_eq!(
                k.sign_pkcs1_raw(&[0u8; 1024][..pubk.modulus_len() - 10])
                    .unwrap_err(),
                CryptoError::DataLenRange
            );
            assert_eq!(
                k.sign_pkcs1_hashed(HashAlg::Sha256, &[0; 31]).unwrap_err(),
                CryptoError::DataLenRange
            );
        }
        assert_eq!(
            pubk.verify_pkcs1_raw(&di, &flip(&fast, 2000)),
            Err(CryptoError::SignatureInvalid)
        );
    }

    #[test]
    fn pss_sign_verify_against_openssl() {
        for k in [key2048(), key1024()] {
            let dir = setup_dir(k);
            let p = dir.path();
            let pubk = k.public_key();
            let em_len = (k.bits() - 1).div_ceil(8);
            for h in ALL_HASHES {
                let hash = h.digest(b"pss message");
                std::fs::write(p.join("hash"), &hash).unwrap();
                let max_salt = em_len - h.output_len() - 2;
                for salt in [h.output_len(), 0, 20, 33, max_salt] {
                    if salt > max_salt {
                        continue; // SHA-512 with a hash-length salt does not fit 1024 bits
                    }
                    let params = PssParams {
                        hash: h,
                        mgf_hash: h,
                        salt_len: salt,
                    };
                    let sig = k.sign_pss(&params, &hash).unwrap();
                    assert_eq!(sig.len(), pubk.modulus_len());
                    pubk.verify_pss(&params, &hash, &sig).unwrap();
                    assert_eq!(
                        pubk.verify_pss(&params, &hash, &flip(&sig, 9)),
                        Err(CryptoError::SignatureInvalid)
                    );
                    // A different salt length does not verify.
                    let other = PssParams {
                        salt_len: if salt == 0 { 1 } else { salt - 1 },
                        ..params
                    };
                    assert_eq!(
                        pubk.verify_pss(&other, &hash, &sig),
                        Err(CryptoError::SignatureInvalid)
                    );
                    std::fs::write(p.join("sig"), &sig).unwrap();
                    let salt_opt = format!("rsa_pss_saltlen:{salt}");
                    let digest_opt = format!("digest:{}", md(h));
                    assert!(
                        openssl_ok(
                            p,
                            &[
                                "pkeyutl",
                                "-verify",
                                "-pubin",
                                "-inkey",
                                "pub.pem",
                                "-in",
                                "hash",
                                "-sigfile",
                                "sig",
                                "-pkeyopt",
                                &digest_opt,
                                "-pkeyopt",
                                "rsa_padding_mode:pss",
                                "-pkeyopt",
                                &salt_opt
                            ]
                        ),
                        "{h:?} salt {salt} bits {}",
                        k.bits()
                    );
                }
                // Salt too long, hash length wrong, MGF mismatch.
                let too_long = PssParams {
                    hash: h,
                    mgf_hash: h,
                    salt_len: max_salt + 1,
                };
                assert_eq!(
                    k.sign_pss(&too_long, &hash).unwrap_err(),
                    CryptoError::MechanismParamInvalid
                );
                let p_ok = PssParams {
                    hash: h,
                    mgf_hash: h,
                    salt_len: 0,
                };
                assert_eq!(
                    k.sign_pss(&p_ok, &hash[1..]).unwrap_err(),
                    CryptoError::DataLenRange
                );
                let other_mgf = if h == HashAlg::Sha256 {
                    HashAlg::Sha384
                } else {
                    HashAlg::Sha256
                };
                let bad_mgf = PssParams {
                    hash: h,
                    mgf_hash: other_mgf,
                    salt_len: 0,
                };
                assert_eq!(
                    k.sign_pss(&bad_mgf, &hash).unwrap_err(),
                    CryptoError::MechanismParamInvalid
                );
                assert_eq!(
                    pubk.verify_pss(&bad_mgf, &hash, &vec![0; pubk.modulus_len()])
                        .unwrap_err(),
                    CryptoError::MechanismParamInvalid
                );
            }
            // OpenSSL-made PSS signature (random salt of hash length) verifies with us.
            std::fs::write(p.join("msg"), b"from openssl").unwrap();
            let sig = openssl_out(
                p,
                &[
                    "dgst",
                    "-sha384",
                    "-sign",
                    "priv.pem",
                    "-sigopt",
                    "rsa_padding_mode:pss",
                    "-sigopt",
                    "rsa_pss_saltlen:48",
                    "msg",
                ],
            );
            let params = PssParams {
                hash: HashAlg::Sha384,
                mgf_hash: HashAlg::Sha384,
                salt_len: 48,
            };
            pubk.verify_pss_message(HashAlg::Sha384, &params, b"from openssl", &sig)
                .unwrap();
            let sig2 = k
                .sign_pss_message(HashAlg::Sha384, &params, b"from openssl")
                .unwrap();
            pubk.verify_pss_message(HashAlg::Sha384, &params, b"from openssl", &sig2)
                .unwrap();
            assert_eq!(
                k.sign_pss_message(HashAlg::Sha256, &params, b"x")
                    .unwrap_err(),
                CryptoError::MechanismParamInvalid
            );
        }
    }

    #[test]
    fn encrypt_decrypt_and_openssl() {
        for k in [key2048(), key1024()] {
            let dir = setup_dir(k);
            let p = dir.path();
            let pubk = k.public_key();
            let klen = pubk.modulus_len();
            // PKCS#1 v1.5.
            let pt = b"secret key bytes";
            let ct = pubk.encrypt_pkcs1(pt).unwrap();
            assert_eq!(ct.len(), klen);
            assert_eq!(&k.decrypt_pkcs1(&ct).unwrap()[..], pt);
            std::fs::write(p.join("ct"), &ct).unwrap();
            assert_eq!(
                openssl_out(
                    p,
                    &["pkeyutl", "-decrypt", "-inkey", "priv.pem", "-in", "ct"]
                ),
                pt
            );
            std::fs::write(p.join("pt"), pt).unwrap();
            let theirs = openssl_out(
                p,
                &[
                    "pkeyutl", "-encrypt", "-pubin", "-inkey", "pub.pem", "-in", "pt",
                ],
            );
            assert_eq!(&k.decrypt_pkcs1(&theirs).unwrap()[..], pt);
            assert_eq!(
                k.decrypt_pkcs1(&ct[1..]).unwrap_err(),
                CryptoError::EncryptedDataLenRange
            );
            assert_eq!(
                k.decrypt_pkcs1(&flip(&ct, 1000)).unwrap_err(),
                CryptoError::EncryptedDataInvalid
            );
            assert_eq!(
                k.decrypt_pkcs1(&vec![0xff; klen]).unwrap_err(),
                CryptoError::EncryptedDataInvalid
            );
            let max = vec![7u8; klen - 11];
            assert_eq!(
                &k.decrypt_pkcs1(&pubk.encrypt_pkcs1(&max).unwrap()).unwrap()[..],
                &max[..]
            );
            assert_eq!(
                pubk.encrypt_pkcs1(&vec![7u8; klen - 10]).unwrap_err(),
                CryptoError::DataLenRange
            );
            // OAEP, every hash, with and without label.
            for h in ALL_HASHES {
                if 2 * h.output_len() + 2 + pt.len() > klen {
                    // SHA-512 OAEP leaves no room on a 1024-bit key.
                    let params = OaepParams {
                        hash: h,
                        mgf_hash: h,
                        label: Vec::new(),
                    };
                    assert_eq!(
                        pubk.encrypt_oaep(&params, b"").unwrap_err(),
                        CryptoError::DataLenRange
                    );
                    continue;
                }
                for label in [&b""[..], b"label"] {
                    let params = OaepParams {
                        hash: h,
                        mgf_hash: h,
                        label: label.to_vec(),
                    };
                    let ct = pubk.encrypt_oaep(&params, pt).unwrap();
                    assert_eq!(&k.decrypt_oaep(&params, &ct).unwrap()[..], pt);
                    std::fs::write(p.join("ct"), &ct).unwrap();
                    let md_opt = format!("rsa_oaep_md:{}", md(h));
                    let mgf_opt = format!("rsa_mgf1_md:{}", md(h));
                    let label_opt = format!(
                        "rsa_oaep_label:{}",
                        label.iter().map(|b| format!("{b:02x}")).collect::<String>()
                    );
                    let mut args = vec![
                        "pkeyutl",
                        "-decrypt",
                        "-inkey",
                        "priv.pem",
                        "-in",
                        "ct",
                        "-pkeyopt",
                        "rsa_padding_mode:oaep",
                        "-pkeyopt",
                        &md_opt,
                        "-pkeyopt",
                        &mgf_opt,
                    ];
                    if !label.is_empty() {
                        args.extend(["-pkeyopt", &label_opt]);
                    }
                    assert_eq!(openssl_out(p, &args), pt, "{h:?}");
                    // And the other way round.
                    let mut args = vec![
                        "pkeyutl",
                        "-encrypt",
                        "-pubin",
                        "-inkey",
                        "pub.pem",
                        "-in",
                        "pt",
                        "-pkeyopt",
                        "rsa_padding_mode:oaep",
                        "-pkeyopt",
                        &md_opt,
                        "-pkeyopt",
                        &mgf_opt,
                    ];
                    if !label.is_empty() {
                        args.extend(["-pkeyopt", &label_opt]);
                    }
                    let theirs = openssl_out(p, &args);
                    assert_eq!(&k.decrypt_oaep(&params, &theirs).unwrap()[..], pt);
                    // Wrong label, tampered, wrong length.
                    let wrong = OaepParams {
                        label: b"other".to_vec(),
                        ..params.clone()
                    };
                    assert_eq!(
                        k.decrypt_oaep(&wrong, &ct).unwrap_err(),
                        CryptoError::EncryptedDataInvalid
                    );
                    assert_eq!(
                        k.decrypt_oaep(&params, &flip(&ct, 500)).unwrap_err(),
                        CryptoError::EncryptedDataInvalid
                    );
                    assert_eq!(
                        k.decrypt_oaep(&params, &ct[..klen - 1]).unwrap_err(),
                        CryptoError::EncryptedDataLenRange
                    );
                }
                let params = OaepParams {
                    hash: h,
                    mgf_hash: h,
                    label: Vec::new(),
                };
                let max = vec![1u8; klen - 2 * h.output_len() - 2];
                let ct = pubk.encrypt_oaep(&params, &max).unwrap();
                assert_eq!(&k.decrypt_oaep(&params, &ct).unwrap()[..], &max[..]);
                let over = vec![1u8; max.len() + 1];
                assert_eq!(
                    pubk.encrypt_oaep(&params, &over).unwrap_err(),
                    CryptoError::DataLenRange
                );
            }
            let mixed = OaepParams {
                hash: HashAlg::Sha256,
                mgf_hash: HashAlg::Sha1,
                label: Vec::new(),
            };
            assert_eq!(
                pubk.encrypt_oaep(&mixed, pt).unwrap_err(),
                CryptoError::MechanismParamInvalid
            );
            assert_eq!(
                k.decrypt_oaep(&mixed, &ct).unwrap_err(),
                CryptoError::MechanismParamInvalid
            );
        }
        // A binary label is fine with aws-lc-rs, refused by the fallback.
        let bin = OaepParams {
            hash: HashAlg::Sha256,
            mgf_hash: HashAlg::Sha256,
            label: vec![0xff, 0xfe],
        };
        let ct = key2048().public_key().encrypt_oaep(&bin, b"x").unwrap();
        assert_eq!(&key2048().decrypt_oaep(&bin, &ct).unwrap()[..], b"x");
        assert_eq!(
            key1024().public_key().encrypt_oaep(&bin, b"x").unwrap_err(),
            CryptoError::MechanismParamInvalid
        );
    }

    #[test]
    fn spki_is_what_openssl_reads() {
        let k = key2048();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("spki.der"), k.public_key().spki_der()).unwrap();
        let text = openssl_out(
            dir.path(),
            &[
                "pkey", "-pubin", "-inform", "DER", "-in", "spki.der", "-noout", "-text",
            ],
        );
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("Public-Key: (2048 bit)"), "{text}");
        assert!(text.contains("Exponent: 65537"), "{text}");
    }
}
