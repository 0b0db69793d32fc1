//! CK_MECHANISM and its parameter structures, decoded into [`Mechanism`].

use pkcs11_sys::*;

use super::input;
use crate::crypto::digest::HashAlg;
use crate::crypto::eddsa::EddsaParams;
use crate::crypto::rsa::{OaepParams, PssParams};
use crate::token::mechanisms::{hash_of_mechanism, hash_of_mgf, takes_parameter, Mechanism};
use crate::token::{Error, Result};

/// The parameter as a `T`, which it must be exactly the size of.
unsafe fn param<T: Copy>(m: &CK_MECHANISM) -> Result<T> {
    if m.pParameter.is_null() || m.ulParameterLen as usize != std::mem::size_of::<T>() {
        return Err(Error::MechanismParamInvalid);
    }
    Ok((m.pParameter as *const T).read_unaligned())
}

/// Decodes a caller's mechanism. A mechanism that takes no parameter refuses one
/// (CKR_MECHANISM_PARAM_INVALID for any `ulParameterLen` but 0, PKCS#11 3.0 section 5.1:
/// "invalid parameters were supplied to the mechanism"); its `pParameter` is then not read.
pub unsafe fn mechanism(ptr: CK_MECHANISM_PTR) -> Result<Mechanism> {
    if ptr.is_null() {
        return Err(Error::ArgumentsBad);
    }
    let m = ptr.read_unaligned();
    let decoded = decode(&m)?;
    if !takes_parameter(m.mechanism) && m.ulParameterLen != 0 {
        return Err(Error::MechanismParamInvalid);
    }
    Ok(decoded)
}

unsafe fn decode(m: &CK_MECHANISM) -> Result<Mechanism> {
    let m = *m;
    let hmac = |hash: HashAlg| Mechanism::Hmac {
        hash,
        len: hash.output_len(),
    };
    let hmac_general = |hash: HashAlg| -> Result<Mechanism> {
        let len = param::<CK_ULONG>(&m)? as usize;
        if len == 0 || len > hash.output_len() {
            return Err(Error::MechanismParamInvalid);
        }
        Ok(Mechanism::Hmac { hash, len })
    };
    let pss = |hash: Option<HashAlg>| -> Result<PssParams> {
        let p: CK_RSA_PKCS_PSS_PARAMS = param(&m)?;
        let params = PssParams {
            hash: hash_of_mechanism(p.hashAlg)?,
            mgf_hash: hash_of_mgf(p.mgf)?,
            salt_len: usize::try_from(p.sLen).map_err(|_| Error::MechanismParamInvalid)?,
        };
        if hash.is_some_and(|h| h != params.hash) || params.mgf_hash != params.hash {
            return Err(Error::MechanismParamInvalid);
        }
        Ok(params)
    };
    Ok(match m.mechanism {
        CKM_EC_KEY_PAIR_GEN => Mechanism::EcKeyPairGen,
        CKM_EC_EDWARDS_KEY_PAIR_GEN => Mechanism::EdwardsKeyPairGen,
        CKM_RSA_PKCS_KEY_PAIR_GEN => Mechanism::RsaKeyPairGen,
        CKM_AES_KEY_GEN => Mechanism::AesKeyGen,
        CKM_GENERIC_SECRET_KEY_GEN => Mechanism::GenericSecretKeyGen,
        CKM_ECDSA => Mechanism::Ecdsa(None),
        CKM_ECDSA_SHA256 => Mechanism::Ecdsa(Some(HashAlg::Sha256)),
        CKM_ECDSA_SHA384 => Mechanism::Ecdsa(Some(HashAlg::Sha384)),
        CKM_ECDSA_SHA512 => Mechanism::Ecdsa(Some(HashAlg::Sha512)),
        CKM_RSA_PKCS => Mechanism::RsaPkcs,
        CKM_SHA256_RSA_PKCS => Mechanism::RsaPkcsHash(HashAlg::Sha256),
        CKM_SHA384_RSA_PKCS => Mechanism::RsaPkcsHash(HashAlg::Sha384),
        CKM_SHA512_RSA_PKCS => Mechanism::RsaPkcsHash(HashAlg::Sha512),
        CKM_RSA_PKCS_PSS => Mechanism::RsaPss(pss(None)?),
        CKM_SHA256_RSA_PKCS_PSS => Mechanism::RsaPssHash(pss(Some(HashAlg::Sha256))?),
        CKM_SHA384_RSA_PKCS_PSS => Mechanism::RsaPssHash(pss(Some(HashAlg::Sha384))?),
        CKM_SHA512_RSA_PKCS_PSS => Mechanism::RsaPssHash(pss(Some(HashAlg::Sha512))?),
        CKM_RSA_PKCS_OAEP => {
            let p: CK_RSA_PKCS_OAEP_PARAMS = param(&m)?;
            let label = match p.source {
                0 => Vec::new(),
                CKZ_DATA_SPECIFIED => input(p.pSourceData as *const u8, p.ulSourceDataLen)
                    .map_err(|_| Error::MechanismParamInvalid)?
                    .to_vec(),
                _ => return Err(Error::MechanismParamInvalid),
            };
            Mechanism::RsaOaep(OaepParams {
                hash: hash_of_mechanism(p.hashAlg)?,
                mgf_hash: hash_of_mgf(p.mgf)?,
                label,
            })
        }
        CKM_EDDSA => {
            if m.pParameter.is_null() || m.ulParameterLen == 0 {
                Mechanism::Eddsa(None)
            } else {
                let p: CK_EDDSA_PARAMS = param(&m)?;
                let context = input(p.pContextData, p.ulContextDataLen)
                    .map_err(|_| Error::MechanismParamInvalid)?;
                Mechanism::Eddsa(Some(EddsaParams {
                    prehash: p.phFlag != 0,
                    context: context.to_vec(),
                }))
            }
        }
        CKM_SHA256_HMAC => hmac(HashAlg::Sha256),
        CKM_SHA384_HMAC => hmac(HashAlg::Sha384),
        CKM_SHA512_HMAC => hmac(HashAlg::Sha512),
        CKM_SHA256_HMAC_GENERAL => hmac_general(HashAlg::Sha256)?,
        CKM_SHA384_HMAC_GENERAL => hmac_general(HashAlg::Sha384)?,
        CKM_SHA512_HMAC_GENERAL => hmac_general(HashAlg::Sha512)?,
        CKM_AES_GCM => {
            let p: CK_GCM_PARAMS = param(&m)?;
            let iv = input(p.pIv, p.ulIvLen)
                .map_err(|_| Error::MechanismParamInvalid)?
                .to_vec();
            let aad = input(p.pAAD, p.ulAADLen)
                .map_err(|_| Error::MechanismParamInvalid)?
                .to_vec();
            Mechanism::AesGcm {
                iv,
                aad,
                tag_bits: p.ulTagBits as usize,
            }
        }
        CKM_AES_CBC_PAD => {
            let iv: [u8; 16] = param(&m)?;
            Mechanism::AesCbcPad { iv }
        }
        CKM_AES_KEY_WRAP => {
            // Only the default IV of RFC 3394 (given as NULL or spelled out).
            if !m.pParameter.is_null() && m.ulParameterLen != 0 {
                let iv: [u8; 8] = param(&m)?;
                if iv != [0xa6; 8] {
                    return Err(Error::MechanismParamInvalid);
                }
            }
            Mechanism::AesKeyWrap
        }
        CKM_AES_KEY_WRAP_PAD => {
            if !m.pParameter.is_null() && m.ulParameterLen != 0 {
                let iv: [u8; 4] = param(&m)?;
                if iv != [0xa6, 0x59, 0x59, 0xa6] {
                    return Err(Error::MechanismParamInvalid);
                }
            }
            Mechanism::AesKeyWrapPad
        }
        CKM_SHA256 => Mechanism::Digest(HashAlg::Sha256),
        CKM_SHA384 => Mechanism::Digest(HashAlg::Sha384),
        CKM_SHA512 => Mechanism::Digest(HashAlg::Sha512),
        _ => return Err(Error::MechanismInvalid),
    })
}
