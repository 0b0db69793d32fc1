//! The mechanisms the token implements: the table behind C_GetMechanismList and
//! C_GetMechanismInfo, and a mechanism with its parameters as safe Rust.

use pkcs11_sys::*;

use super::error::{Error, Result};
use crate::crypto::digest::HashAlg;
use crate::crypto::eddsa::EddsaParams;
use crate::crypto::rsa::{OaepParams, PssParams};

const EC_FLAGS: CK_FLAGS = CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;

/// (mechanism, min key size, max key size, flags). Key sizes are in bits for RSA, EC and
/// generic-secret generation, in bytes for AES and HMAC keys, as PKCS#11 specifies per
/// mechanism.
pub const TABLE: &[(CK_MECHANISM_TYPE, CK_ULONG, CK_ULONG, CK_FLAGS)] = &[
    (
        CKM_EC_KEY_PAIR_GEN,
        256,
        521,
        CKF_GENERATE_KEY_PAIR | EC_FLAGS,
    ),
    (CKM_ECDSA, 256, 521, CKF_SIGN | CKF_VERIFY | EC_FLAGS),
    (CKM_ECDSA_SHA256, 256, 521, CKF_SIGN | CKF_VERIFY | EC_FLAGS),
    (CKM_ECDSA_SHA384, 256, 521, CKF_SIGN | CKF_VERIFY | EC_FLAGS),
    (CKM_ECDSA_SHA512, 256, 521, CKF_SIGN | CKF_VERIFY | EC_FLAGS),
    (CKM_RSA_PKCS_KEY_PAIR_GEN, 2048, 4096, CKF_GENERATE_KEY_PAIR),
    (
        CKM_RSA_PKCS,
        1024,
        16384,
        CKF_SIGN | CKF_VERIFY | CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP,
    ),
    (CKM_SHA256_RSA_PKCS, 1024, 16384, CKF_SIGN | CKF_VERIFY),
    (CKM_SHA384_RSA_PKCS, 1024, 16384, CKF_SIGN | CKF_VERIFY),
    (CKM_SHA512_RSA_PKCS, 1024, 16384, CKF_SIGN | CKF_VERIFY),
    (CKM_RSA_PKCS_PSS, 1024, 16384, CKF_SIGN | CKF_VERIFY),
    (CKM_SHA256_RSA_PKCS_PSS, 1024, 16384, CKF_SIGN | CKF_VERIFY),
    (CKM_SHA384_RSA_PKCS_PSS, 1024, 16384, CKF_SIGN | CKF_VERIFY),
    (CKM_SHA512_RSA_PKCS_PSS, 1024, 16384, CKF_SIGN | CKF_VERIFY),
    (
        CKM_RSA_PKCS_OAEP,
        1024,
        16384,
        CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP,
    ),
    (CKM_EC_EDWARDS_KEY_PAIR_GEN, 255, 255, CKF_GENERATE_KEY_PAIR),
    (CKM_EDDSA, 255, 255, CKF_SIGN | CKF_VERIFY),
    (CKM_GENERIC_SECRET_KEY_GEN, 8, 4096, CKF_GENERATE),
    (CKM_SHA256_HMAC, 32, 512, CKF_SIGN | CKF_VERIFY),
    (CKM_SHA384_HMAC, 32, 512, CKF_SIGN | CKF_VERIFY),
    (CKM_SHA512_HMAC, 32, 512, CKF_SIGN | CKF_VERIFY),
    (CKM_SHA256_HMAC_GENERAL, 32, 512, CKF_SIGN | CKF_VERIFY),
    (CKM_SHA384_HMAC_GENERAL, 32, 512, CKF_SIGN | CKF_VERIFY),
    (CKM_SHA512_HMAC_GENERAL, 32, 512, CKF_SIGN | CKF_VERIFY),
    (CKM_AES_KEY_GEN, 16, 32, CKF_GENERATE),
    (CKM_AES_GCM, 16, 32, CKF_ENCRYPT | CKF_DECRYPT),
    (
        CKM_AES_CBC_PAD,
        16,
        32,
        CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP,
    ),
    (
        CKM_AES_KEY_WRAP,
        16,
        32,
        CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP,
    ),
    (
        CKM_AES_KEY_WRAP_PAD,
        16,
        32,
        CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP,
    ),
    (CKM_SHA256, 0, 0, CKF_DIGEST),
    (CKM_SHA384, 0, 0, CKF_DIGEST),
    (CKM_SHA512, 0, 0, CKF_DIGEST),
];

/// CK_MECHANISM_INFO of one mechanism. Every mechanism carries CKF_HW: the token emulates a
/// device that performs them all itself, as the Key4C V3 does.
pub fn info(mechanism: CK_MECHANISM_TYPE) -> Result<CK_MECHANISM_INFO> {
    TABLE
        .iter()
        .find(|(m, ..)| *m == mechanism)
        .map(|&(_, min, max, flags)| CK_MECHANISM_INFO {
            ulMinKeySize: min,
            ulMaxKeySize: max,
            flags: flags | CKF_HW,
        })
        .ok_or(Error::MechanismInvalid)
}

/// A mechanism with its parameters decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    /// CKM_EC_KEY_PAIR_GEN.
    EcKeyPairGen,
    /// CKM_EC_EDWARDS_KEY_PAIR_GEN.
    EdwardsKeyPairGen,
    /// CKM_RSA_PKCS_KEY_PAIR_GEN.
    RsaKeyPairGen,
    /// CKM_AES_KEY_GEN.
    AesKeyGen,
    /// CKM_GENERIC_SECRET_KEY_GEN.
    GenericSecretKeyGen,
    /// CKM_ECDSA (`None`: the input is the hash) and CKM_ECDSA_SHA256/384/512.
    Ecdsa(Option<HashAlg>),
    /// CKM_RSA_PKCS: raw PKCS#1 v1.5 (a DigestInfo to sign, or data to encrypt).
    RsaPkcs,
    /// CKM_SHA256/384/512_RSA_PKCS.
    RsaPkcsHash(HashAlg),
    /// CKM_RSA_PKCS_PSS (input is the hash).
    RsaPss(PssParams),
    /// CKM_SHA256/384/512_RSA_PKCS_PSS.
    RsaPssHash(PssParams),
    /// CKM_RSA_PKCS_OAEP.
    RsaOaep(OaepParams),
    /// CKM_EDDSA.
    Eddsa(Option<EddsaParams>),
    /// CKM_SHA*_HMAC (`len` = the hash length) and CKM_SHA*_HMAC_GENERAL.
    Hmac {
        /// The hash.
        hash: HashAlg,
        /// MAC length in bytes.
        len: usize,
    },
    /// CKM_AES_GCM.
    AesGcm {
        /// The IV.
        iv: Vec<u8>,
        /// Additional authenticated data.
        aad: Vec<u8>,
        /// Tag length in bits.
        tag_bits: usize,
    },
    /// CKM_AES_CBC_PAD.
    AesCbcPad {
        /// The IV.
        iv: [u8; 16],
    },
    /// CKM_AES_KEY_WRAP (RFC 3394).
    AesKeyWrap,
    /// CKM_AES_KEY_WRAP_PAD (RFC 5649).
    AesKeyWrapPad,
    /// CKM_SHA256/384/512.
    Digest(HashAlg),
}

impl Mechanism {
    /// The CKM_ constant.
    pub fn ck_type(&self) -> CK_MECHANISM_TYPE {
        use HashAlg::*;
        match self {
            Mechanism::EcKeyPairGen => CKM_EC_KEY_PAIR_GEN,
            Mechanism::EdwardsKeyPairGen => CKM_EC_EDWARDS_KEY_PAIR_GEN,
            Mechanism::RsaKeyPairGen => CKM_RSA_PKCS_KEY_PAIR_GEN,
            Mechanism::AesKeyGen => CKM_AES_KEY_GEN,
            Mechanism::GenericSecretKeyGen => CKM_GENERIC_SECRET_KEY_GEN,
            Mechanism::Ecdsa(None) => CKM_ECDSA,
            Mechanism::Ecdsa(Some(Sha256)) => CKM_ECDSA_SHA256,
            Mechanism::Ecdsa(Some(Sha384)) => CKM_ECDSA_SHA384,
            Mechanism::Ecdsa(Some(_)) => CKM_ECDSA_SHA512,
            Mechanism::RsaPkcs => CKM_RSA_PKCS,
            Mechanism::RsaPkcsHash(Sha256) => CKM_SHA256_RSA_PKCS,
            Mechanism::RsaPkcsHash(Sha384) => CKM_SHA384_RSA_PKCS,
            Mechanism::RsaPkcsHash(_) => CKM_SHA512_RSA_PKCS,
            Mechanism::RsaPss(_) => CKM_RSA_PKCS_PSS,
            Mechanism::RsaPssHash(p) => match p.hash {
                Sha256 => CKM_SHA256_RSA_PKCS_PSS,
                Sha384 => CKM_SHA384_RSA_PKCS_PSS,
                _ => CKM_SHA512_RSA_PKCS_PSS,
            },
            Mechanism::RsaOaep(_) => CKM_RSA_PKCS_OAEP,
            Mechanism::Eddsa(_) => CKM_EDDSA,
            Mechanism::Hmac { hash, len } => {
                let general = *len != hash.output_len();
                match (hash, general) {
                    (Sha256, false) => CKM_SHA256_HMAC,
                    (Sha384, false) => CKM_SHA384_HMAC,
                    (_, false) => CKM_SHA512_HMAC,
                    (Sha256, true) => CKM_SHA256_HMAC_GENERAL,
                    (Sha384, true) => CKM_SHA384_HMAC_GENERAL,
                    (_, true) => CKM_SHA512_HMAC_GENERAL,
                }
            }
            Mechanism::AesGcm { .. } => CKM_AES_GCM,
            Mechanism::AesCbcPad { .. } => CKM_AES_CBC_PAD,
            Mechanism::AesKeyWrap => CKM_AES_KEY_WRAP,
            Mechanism::AesKeyWrapPad => CKM_AES_KEY_WRAP_PAD,
            Mechanism::Digest(Sha256) => CKM_SHA256,
            Mechanism::Digest(Sha384) => CKM_SHA384,
            Mechanism::Digest(_) => CKM_SHA512,
        }
    }

    /// Whether only the single-part call (C_Sign, C_Encrypt, ...) is allowed: the
    /// mechanisms whose input is one block (a hash, a padded block) or a whole message.
    pub fn single_part_only(&self) -> bool {
        matches!(
            self,
            Mechanism::Ecdsa(None)
                | Mechanism::RsaPkcs
                | Mechanism::RsaPss(_)
                | Mechanism::RsaOaep(_)
                | Mechanism::Eddsa(_)
                | Mechanism::AesKeyWrap
                | Mechanism::AesKeyWrapPad
        )
    }
}

/// Whether a mechanism of the table has a parameter (required or optional); every other one
/// takes none, and refuses one given (CKR_MECHANISM_PARAM_INVALID).
pub fn takes_parameter(mechanism: CK_MECHANISM_TYPE) -> bool {
    matches!(
        mechanism,
        CKM_RSA_PKCS_PSS
            | CKM_SHA256_RSA_PKCS_PSS
            | CKM_SHA384_RSA_PKCS_PSS
            | CKM_SHA512_RSA_PKCS_PSS
            | CKM_RSA_PKCS_OAEP
            | CKM_EDDSA
            | CKM_SHA256_HMAC_GENERAL
            | CKM_SHA384_HMAC_GENERAL
            | CKM_SHA512_HMAC_GENERAL
            | CKM_AES_GCM
            | CKM_AES_CBC_PAD
            | CKM_AES_KEY_WRAP
            | CKM_AES_KEY_WRAP_PAD
    )
}

/// A CKM_ hash mechanism or CKG_MGF1 constant as a hash.
pub fn hash_of_mechanism(m: CK_MECHANISM_TYPE) -> Result<HashAlg> {
    match m {
        CKM_SHA_1 => Ok(HashAlg::Sha1),
        CKM_SHA256 => Ok(HashAlg::Sha256),
        CKM_SHA384 => Ok(HashAlg::Sha384),
        CKM_SHA512 => Ok(HashAlg::Sha512),
        _ => Err(Error::MechanismParamInvalid),
    }
}

/// A CKG_MGF1_* constant as its hash.
pub fn hash_of_mgf(mgf: CK_RSA_PKCS_MGF_TYPE) -> Result<HashAlg> {
    match mgf {
        CKG_MGF1_SHA1 => Ok(HashAlg::Sha1),
        CKG_MGF1_SHA256 => Ok(HashAlg::Sha256),
        CKG_MGF1_SHA384 => Ok(HashAlg::Sha384),
        CKG_MGF1_SHA512 => Ok(HashAlg::Sha512),
        _ => Err(Error::MechanismParamInvalid),
    }
}
