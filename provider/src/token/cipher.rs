//! Encryption, decryption and key wrapping (PKCS#11 3.0 sections 5.8, 5.9 and 5.14).

use std::sync::Arc;

use pkcs11_sys::*;
use zeroize::Zeroizing;

use super::attributes::{RawAttribute, Value};
use super::error::{Error, Result};
use super::keys::{self, KeyMaterial, SecretKey};
use super::mechanisms::Mechanism;
use super::objects::{build_attributes, class_and_key_type, decode_template, Origin};
use super::operations::Output;
use super::Token;
use crate::crypto::aes::{self, AesKey, CbcDecryptor, CbcEncryptor, GcmParams};
use crate::crypto::error::CryptoError;

/// The most a multi-part AES-GCM operation gathers until C_EncryptFinal / C_DecryptFinal:
/// 16 MiB of plaintext (a decryption also takes the tag). The tag covers the whole message,
/// so nothing can be handed out before the end; past this, the update is refused
/// (CKR_DATA_LEN_RANGE encrypting, CKR_ENCRYPTED_DATA_LEN_RANGE decrypting) and the operation
/// ends, its buffer freed. Single-part C_Encrypt / C_Decrypt are not concerned: the caller's
/// own buffer holds the input.
pub const MAX_MULTI_PART_GCM: usize = 16 << 20;

/// Appends `part` to what a multi-part operation gathered, unless that would pass `limit`
/// bytes: then `error`, and nothing is copied.
fn gather(buffer: &mut Vec<u8>, part: &[u8], limit: usize, error: Error) -> Result<()> {
    if part.len() > limit.saturating_sub(buffer.len()) {
        return Err(error);
    }
    buffer.extend_from_slice(part);
    Ok(())
}

/// How a cipher operation proceeds.
pub enum CipherState {
    /// AES-GCM: the input is gathered (up to [`MAX_MULTI_PART_GCM`]); the output comes at the
    /// end (the tag covers it all).
    Gcm {
        /// The key.
        key: AesKey,
        /// IV, AAD, tag length.
        params: GcmParams,
        /// Input so far.
        input: Zeroizing<Vec<u8>>,
    },
    /// AES-CBC-PAD encryption, streaming.
    CbcEncrypt(CbcEncryptor),
    /// AES-CBC-PAD decryption, streaming (the last block is held back).
    CbcDecrypt(CbcDecryptor),
    /// Single-part only: RSA PKCS#1 / OAEP, AES key wrap.
    OneShot,
}

/// An active encrypt or decrypt operation.
pub struct CipherOperation {
    /// The mechanism.
    pub mechanism: Mechanism,
    /// The key.
    pub key: Arc<KeyMaterial>,
    /// The mechanism's running state.
    pub state: CipherState,
    /// An update was called.
    pub multi_part: bool,
    /// A result computed to answer a length query, with the input it is for, handed out by
    /// the call that follows with a big enough buffer.
    pub pending: Option<(Vec<u8>, Zeroizing<Vec<u8>>)>,
    /// Decryption with a CKA_ALWAYS_AUTHENTICATE key: the User must log in
    /// (CKU_CONTEXT_SPECIFIC) first.
    pub needs_context_login: bool,
}

fn aes_key(key: &KeyMaterial) -> Result<AesKey> {
    match key {
        KeyMaterial::Secret(SecretKey { bytes, .. }) => Ok(AesKey::new(bytes)?),
        _ => Err(Error::KeyTypeInconsistent),
    }
}

/// The one-call computation of a single-part encryption.
fn encrypt_once(mechanism: &Mechanism, key: &KeyMaterial, data: &[u8]) -> Result<Vec<u8>> {
    Ok(match (mechanism, key) {
        (Mechanism::RsaPkcs, KeyMaterial::RsaPublic(k)) => k.encrypt_pkcs1(data)?,
        (Mechanism::RsaOaep(p), KeyMaterial::RsaPublic(k)) => k.encrypt_oaep(p, data)?,
        (Mechanism::AesKeyWrap, k) => aes::key_wrap(&aes_key(k)?, data)?,
        (Mechanism::AesKeyWrapPad, k) => aes::key_wrap_pad(&aes_key(k)?, data)?,
        (Mechanism::AesCbcPad { iv }, k) => aes::cbc_encrypt(&aes_key(k)?, iv, true, data)?,
        (Mechanism::AesGcm { iv, aad, tag_bits }, k) => {
            let params = GcmParams {
                iv: iv.clone(),
                aad: aad.clone(),
                tag_bits: *tag_bits,
            };
            aes::gcm_encrypt(&aes_key(k)?, &params, data)?
        }
        _ => return Err(Error::KeyTypeInconsistent),
    })
}

/// The one-call computation of a single-part decryption.
fn decrypt_once(
    mechanism: &Mechanism,
    key: &KeyMaterial,
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    Ok(match (mechanism, key) {
        (Mechanism::RsaPkcs, KeyMaterial::RsaPrivate(k)) => k.decrypt_pkcs1(data)?,
        (Mechanism::RsaOaep(p), KeyMaterial::RsaPrivate(k)) => k.decrypt_oaep(p, data)?,
        (Mechanism::AesKeyWrap, k) => {
            aes::key_unwrap(&aes_key(k)?, data).map_err(unwrap_error_as_data)?
        }
        (Mechanism::AesKeyWrapPad, k) => {
            aes::key_unwrap_pad(&aes_key(k)?, data).map_err(unwrap_error_as_data)?
        }
        (Mechanism::AesCbcPad { iv }, k) => aes::cbc_decrypt(&aes_key(k)?, iv, true, data)?,
        (Mechanism::AesGcm { iv, aad, tag_bits }, k) => {
            let params = GcmParams {
                iv: iv.clone(),
                aad: aad.clone(),
                tag_bits: *tag_bits,
            };
            aes::gcm_decrypt(&aes_key(k)?, &params, data)?
        }
        _ => return Err(Error::KeyTypeInconsistent),
    })
}

/// C_Decrypt with a key-wrap mechanism: a failed integrity check is bad encrypted data.
fn unwrap_error_as_data(e: CryptoError) -> CryptoError {
    match e {
        CryptoError::WrappedKeyInvalid => CryptoError::EncryptedDataInvalid,
        CryptoError::WrappedKeyLenRange => CryptoError::EncryptedDataLenRange,
        other => other,
    }
}

/// C_UnwrapKey: a failed decryption is a bad wrapped key.
fn data_error_as_unwrap(e: Error) -> Error {
    match e {
        Error::EncryptedDataInvalid => Error::WrappedKeyInvalid,
        Error::EncryptedDataLenRange => Error::WrappedKeyLenRange,
        other => other,
    }
}

/// Hands out `value` under the output rules; `Ok(None)` means the operation goes on.
fn hand_out(out: Output, value: &[u8]) -> Result<Option<usize>> {
    match out {
        None => Ok(None),
        Some(buf) if buf.len() < value.len() => Err(Error::OutputTooSmall(value.len())),
        Some(buf) => {
            buf[..value.len()].copy_from_slice(value);
            Ok(Some(value.len()))
        }
    }
}

impl Token {
    /// C_EncryptInit / C_DecryptInit.
    pub fn cipher_init(
        &self,
        handle: CK_SESSION_HANDLE,
        mechanism: Mechanism,
        key: CK_OBJECT_HANDLE,
        decrypt: bool,
    ) -> Result<()> {
        let session = self.session(handle)?;
        let mut ops = session.ops.lock();
        if if decrypt {
            ops.decrypt.is_some()
        } else {
            ops.encrypt.is_some()
        } {
            return Err(Error::OperationActive);
        }
        // OAEP whose MGF1 hash differs from its hash: refused now, not at C_Encrypt.
        if matches!(&mechanism, Mechanism::RsaOaep(p) if p.mgf_hash != p.hash) {
            return Err(Error::MechanismParamInvalid);
        }
        let usage = if decrypt { CKA_DECRYPT } else { CKA_ENCRYPT };
        let (object, key) = self.operation_key(key, &mechanism, usage)?;
        let aes = object.key_type == Some(CKK_AES);
        let state = match (&mechanism, &*key) {
            (Mechanism::RsaPkcs | Mechanism::RsaOaep(_), KeyMaterial::RsaPublic(_)) if !decrypt => {
                CipherState::OneShot
            }
            (Mechanism::RsaPkcs | Mechanism::RsaOaep(_), KeyMaterial::RsaPrivate(_)) if decrypt => {
                CipherState::OneShot
            }
            (Mechanism::AesKeyWrap | Mechanism::AesKeyWrapPad, _) if aes => CipherState::OneShot,
            (Mechanism::AesCbcPad { iv }, k) if aes => {
                let k = aes_key(k)?;
                if decrypt {
                    CipherState::CbcDecrypt(CbcDecryptor::new(&k, iv, true)?)
                } else {
                    CipherState::CbcEncrypt(CbcEncryptor::new(&k, iv, true)?)
                }
            }
            (Mechanism::AesGcm { iv, aad, tag_bits }, k) if aes => {
                let params = GcmParams {
                    iv: iv.clone(),
                    aad: aad.clone(),
                    tag_bits: *tag_bits,
                };
                // Refuse bad parameters now rather than at the end.
                aes::gcm_encrypt(&aes_key(k)?, &params, &[])?;
                CipherState::Gcm {
                    key: aes_key(k)?,
                    params,
                    input: Zeroizing::new(Vec::new()),
                }
            }
            (
                Mechanism::RsaPkcs
                | Mechanism::RsaOaep(_)
                | Mechanism::AesKeyWrap
                | Mechanism::AesKeyWrapPad
                | Mechanism::AesCbcPad { .. }
                | Mechanism::AesGcm { .. },
                _,
            ) => return Err(Error::KeyTypeInconsistent),
            _ => return Err(Error::MechanismInvalid),
        };
        let op = CipherOperation {
            mechanism,
            key,
            state,
            multi_part: false,
            pending: None,
            needs_context_login: decrypt && object.flag(CKA_ALWAYS_AUTHENTICATE),
        };
        if decrypt {
            ops.decrypt = Some(op);
        } else {
            ops.encrypt = Some(op);
        }
        Ok(())
    }

    /// C_Encrypt / C_Decrypt.
    pub fn cipher(
        &self,
        handle: CK_SESSION_HANDLE,
        data: &[u8],
        out: Output,
        decrypt: bool,
    ) -> Result<usize> {
        let session = self.session(handle)?;
        let mut ops = session.ops.lock();
        let slot = if decrypt {
            &mut ops.decrypt
        } else {
            &mut ops.encrypt
        };
        let op = slot.as_mut().ok_or(Error::OperationNotInitialized)?;
        if op.needs_context_login {
            return Err(Error::UserNotLoggedIn);
        }
        if op.multi_part {
            *slot = None;
            return Err(Error::OperationActive);
        }
        let cached = matches!(&op.pending, Some((input, _)) if input.as_slice() == data);
        if !cached {
            let result = if decrypt {
                decrypt_once(&op.mechanism, &op.key, data)
            } else {
                encrypt_once(&op.mechanism, &op.key, data).map(Zeroizing::new)
            };
            match result {
                Ok(value) => op.pending = Some((data.to_vec(), value)),
                Err(e) => {
                    *slot = None;
                    return Err(e);
                }
            }
        }
        let value = op
            .pending
            .as_ref()
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        match hand_out(out, &value)? {
            None => Ok(value.len()),
            Some(n) => {
                *slot = None;
                Ok(n)
            }
        }
    }

    /// C_EncryptUpdate / C_DecryptUpdate.
    pub fn cipher_update(
        &self,
        handle: CK_SESSION_HANDLE,
        part: &[u8],
        out: Output,
        decrypt: bool,
    ) -> Result<usize> {
        let session = self.session(handle)?;
        let mut ops = session.ops.lock();
        let slot = if decrypt {
            &mut ops.decrypt
        } else {
            &mut ops.encrypt
        };
        let op = slot.as_mut().ok_or(Error::OperationNotInitialized)?;
        if op.needs_context_login {
            return Err(Error::UserNotLoggedIn);
        }
        let result = match &mut op.state {
            CipherState::OneShot => Err(Error::FunctionNotSupported),
            CipherState::Gcm { input, params, .. } => {
                let (limit, error) = if decrypt {
                    (
                        MAX_MULTI_PART_GCM + params.tag_bits / 8,
                        Error::EncryptedDataLenRange,
                    )
                } else {
                    (MAX_MULTI_PART_GCM, Error::DataLenRange)
                };
                if out.is_some() {
                    gather(input, part, limit, error).map(|()| 0)
                } else if part.len() > limit.saturating_sub(input.len()) {
                    Err(error)
                } else {
                    Ok(0)
                }
            }
            CipherState::CbcEncrypt(enc) => {
                let len = enc.update_output_len(part.len());
                match out {
                    None => Ok(len),
                    Some(buf) if buf.len() < len => Err(Error::OutputTooSmall(len)),
                    Some(buf) => enc.update(part).map_err(Error::from).map(|v| {
                        buf[..v.len()].copy_from_slice(&v);
                        v.len()
                    }),
                }
            }
            CipherState::CbcDecrypt(dec) => {
                let len = dec.update_output_len(part.len());
                match out {
                    None => Ok(len),
                    Some(buf) if buf.len() < len => Err(Error::OutputTooSmall(len)),
                    Some(buf) => dec.update(part).map_err(Error::from).map(|v| {
                        buf[..v.len()].copy_from_slice(&v);
                        v.len()
                    }),
                }
            }
        };
        match result {
            Ok(n) => {
                op.multi_part = true;
                Ok(n)
            }
            Err(Error::OutputTooSmall(n)) => Err(Error::OutputTooSmall(n)),
            Err(e) => {
                *slot = None;
                Err(e)
            }
        }
    }

    /// C_EncryptFinal / C_DecryptFinal.
    pub fn cipher_final(
        &self,
        handle: CK_SESSION_HANDLE,
        out: Output,
        decrypt: bool,
    ) -> Result<usize> {
        let session = self.session(handle)?;
        let mut ops = session.ops.lock();
        let slot = if decrypt {
            &mut ops.decrypt
        } else {
            &mut ops.encrypt
        };
        let op = slot.as_mut().ok_or(Error::OperationNotInitialized)?;
        if op.needs_context_login {
            return Err(Error::UserNotLoggedIn);
        }
        if op.pending.is_none() {
            let result: Result<Zeroizing<Vec<u8>>> = match &mut op.state {
                CipherState::OneShot => Err(Error::FunctionNotSupported),
                CipherState::Gcm { key, params, input } => {
                    // The gathered input goes (zeroized) once the result is computed.
                    let input = std::mem::take(input);
                    if decrypt {
                        aes::gcm_decrypt(key, params, &input).map_err(Error::from)
                    } else {
                        aes::gcm_encrypt(key, params, &input)
                            .map(Zeroizing::new)
                            .map_err(Error::from)
                    }
                }
                CipherState::CbcEncrypt(enc) => {
                    let len = enc.finish_output_len();
                    if matches!(&out, Some(buf) if buf.len() < len) {
                        return Err(Error::OutputTooSmall(len));
                    }
                    if out.is_none() {
                        return Ok(len);
                    }
                    let enc = std::mem::replace(&mut op.state, CipherState::OneShot);
                    match enc {
                        CipherState::CbcEncrypt(enc) => {
                            enc.finish().map(Zeroizing::new).map_err(Error::from)
                        }
                        _ => Err(Error::OperationNotInitialized),
                    }
                }
                CipherState::CbcDecrypt(_) => {
                    match std::mem::replace(&mut op.state, CipherState::OneShot) {
                        CipherState::CbcDecrypt(dec) => dec.finish().map_err(Error::from),
                        _ => Err(Error::OperationNotInitialized),
                    }
                }
            };
            match result {
                Ok(value) => op.pending = Some((Vec::new(), value)),
                Err(e) => {
                    *slot = None;
                    return Err(e);
                }
            }
        }
        let value = op
            .pending
            .as_ref()
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        match hand_out(out, &value)? {
            None => Ok(value.len()),
            Some(n) => {
                *slot = None;
                Ok(n)
            }
        }
    }

    /// C_WrapKey: a secret key's value encrypted under the wrapping key.
    pub fn wrap_key(
        &self,
        handle: CK_SESSION_HANDLE,
        mechanism: Mechanism,
        wrapping: CK_OBJECT_HANDLE,
        key: CK_OBJECT_HANDLE,
        out: Output,
    ) -> Result<usize> {
        self.session(handle)?;
        let (wrapper, wrapping_key) =
            self.operation_key(wrapping, &mechanism, CKA_WRAP)
                .map_err(|e| match e {
                    Error::KeyHandleInvalid => Error::WrappingKeyHandleInvalid,
                    other => other,
                })?;
        let target = self.object(key).map_err(|_| Error::KeyHandleInvalid)?;
        if target.class != CKO_SECRET_KEY {
            return Err(Error::KeyNotWrappable);
        }
        if !target.flag(CKA_EXTRACTABLE) {
            return Err(Error::KeyUnextractable);
        }
        if target.flag(CKA_WRAP_WITH_TRUSTED) && !wrapper.flag(CKA_TRUSTED) {
            return Err(Error::KeyNotWrappable);
        }
        // The wrapping key's CKA_WRAP_TEMPLATE: only keys with every attribute it names, of
        // the same value, may be wrapped with it.
        if let Some(Value::Template(wanted)) = wrapper.attrs.get(&CKA_WRAP_TEMPLATE) {
            let matches = wanted
                .iter()
                .all(|(ty, v)| target.attrs.get(&(*ty as CK_ATTRIBUTE_TYPE)) == Some(v));
            if !matches {
                return Err(Error::KeyNotWrappable);
            }
        }
        let value = match &*self.key_of(&target)? {
            KeyMaterial::Secret(k) => k.bytes.clone(),
            _ => return Err(Error::KeyNotWrappable),
        };
        let aes = wrapper.key_type == Some(CKK_AES);
        let fits = match (&mechanism, &*wrapping_key) {
            (
                Mechanism::AesKeyWrap | Mechanism::AesKeyWrapPad | Mechanism::AesCbcPad { .. },
                KeyMaterial::Secret(_),
            ) => aes,
            (Mechanism::RsaPkcs | Mechanism::RsaOaep(_), KeyMaterial::RsaPublic(_)) => true,
            (
                Mechanism::AesKeyWrap
                | Mechanism::AesKeyWrapPad
                | Mechanism::AesCbcPad { .. }
                | Mechanism::RsaPkcs
                | Mechanism::RsaOaep(_),
                _,
            ) => false,
            _ => return Err(Error::MechanismInvalid),
        };
        if !fits {
            return Err(Error::WrappingKeyTypeInconsistent);
        }
        let wrapped = encrypt_once(&mechanism, &wrapping_key, &value).map_err(|e| match e {
            Error::DataLenRange => Error::KeySizeRange,
            other => other,
        })?;
        match hand_out(out, &wrapped)? {
            None => Ok(wrapped.len()),
            Some(n) => Ok(n),
        }
    }

    /// C_UnwrapKey: a new secret key from a wrapped value.
    pub fn unwrap_key(
        &self,
        handle: CK_SESSION_HANDLE,
        mechanism: Mechanism,
        unwrapping: CK_OBJECT_HANDLE,
        wrapped: &[u8],
        raw: &[RawAttribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        let session = self.session(handle)?;
        let (unwrapper, unwrapping_key) = self
            .operation_key(unwrapping, &mechanism, CKA_UNWRAP)
            .map_err(|e| match e {
                Error::KeyHandleInvalid => Error::UnwrappingKeyHandleInvalid,
                other => other,
            })?;
        let aes = unwrapper.key_type == Some(CKK_AES);
        let fits = match (&mechanism, &*unwrapping_key) {
            (
                Mechanism::AesKeyWrap | Mechanism::AesKeyWrapPad | Mechanism::AesCbcPad { .. },
                KeyMaterial::Secret(_),
            ) => aes,
            (Mechanism::RsaPkcs | Mechanism::RsaOaep(_), KeyMaterial::RsaPrivate(_)) => true,
            (
                Mechanism::AesKeyWrap
                | Mechanism::AesKeyWrapPad
                | Mechanism::AesCbcPad { .. }
                | Mechanism::RsaPkcs
                | Mechanism::RsaOaep(_),
                _,
            ) => false,
            _ => return Err(Error::MechanismInvalid),
        };
        if !fits {
            return Err(Error::UnwrappingKeyTypeInconsistent);
        }
        let mut template = decode_template(raw)?;
        // The unwrapping key's CKA_UNWRAP_TEMPLATE: every key unwrapped with it has these
        // attributes; the caller's template may repeat them, not contradict them.
        if let Some(Value::Template(imposed)) = unwrapper.attrs.get(&CKA_UNWRAP_TEMPLATE) {
            for (ty, value) in imposed {
                let ty = *ty as CK_ATTRIBUTE_TYPE;
                match template.iter().find(|(t, _)| *t == ty) {
                    Some((_, given)) if given != value => return Err(Error::TemplateInconsistent),
                    Some(_) => {}
                    None => template.push((ty, value.clone())),
                }
            }
        }
        if !template.iter().any(|(t, _)| *t == CKA_CLASS) {
            template.push((CKA_CLASS, Value::Ulong(CKO_SECRET_KEY as u64)));
        }
        let (class, key_type) = class_and_key_type(&template, None)?;
        if class != CKO_SECRET_KEY {
            return Err(Error::TemplateInconsistent);
        }
        let token = template
            .iter()
            .any(|(t, v)| *t == CKA_TOKEN && v.as_bool() == Some(true));
        self.check_may_write(&session, class, token, true)?;
        let (mut attrs, _) = build_attributes(class, key_type, &template, Origin::Unwrap)?;
        let value =
            decrypt_once(&mechanism, &unwrapping_key, wrapped).map_err(data_error_as_unwrap)?;
        if key_type == Some(CKK_AES) {
            keys::check_aes_len(value.len()).map_err(|_| Error::WrappedKeyInvalid)?;
        }
        let material = KeyMaterial::Secret(SecretKey::new(value.to_vec()));
        keys::derived_attributes(&material, &mut attrs)?;
        let secrets = keys::secret_attributes(&material)?;
        self.add_object(&session, attrs, secrets, Some(material))
    }
}
