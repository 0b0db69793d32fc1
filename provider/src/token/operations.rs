//! Cryptographic operations (PKCS#11 3.0 sections 5.10 to 5.13): sign, verify and digest,
//! single- and multi-part, with the spec's output rules. The sign path reads no storage and
//! takes no lock shared by all sessions: the session's own operation lock, and lock-free
//! lookups of the session, the key and the login state.

use std::sync::Arc;

use pkcs11_sys::*;

use super::error::{Error, Result};
use super::keys::KeyMaterial;
use super::mechanisms::Mechanism;
use super::object::Object;
use super::session::{LoginState, Session};
use super::Token;
use crate::crypto::digest::{DigestCtx, HashAlg};
use crate::crypto::eddsa::check_eddsa_params;
use crate::crypto::hmac::HmacCtx;

/// The minimum length of a key for HMAC signing: 32 bytes (spec section 6, HS256/384/512).
pub const MIN_HMAC_KEY_LEN: usize = 32;

/// What an operation accumulates between calls. Lives in the session's operation slot, so
/// the hash state is kept inline rather than boxed on every C_SignInit.
#[allow(clippy::large_enum_variant)]
pub enum Accumulator {
    /// Nothing: the single-part-only mechanisms (CKM_ECDSA, CKM_RSA_PKCS, CKM_RSA_PKCS_PSS,
    /// CKM_EDDSA). C_SignUpdate / C_VerifyUpdate refuse them before anything is added, so no
    /// sign or verify operation gathers a message across calls: the multi-part ones hash or
    /// MAC as the parts come ([`Accumulator::Digest`], [`Accumulator::Hmac`]), as digests do.
    Buffer(Vec<u8>),
    /// The running hash of a hash-then-sign mechanism.
    Digest(DigestCtx),
    /// The running HMAC.
    Hmac(HmacCtx),
}

/// An active sign or verify operation.
pub struct SignOperation {
    /// The mechanism with its parameters.
    pub mechanism: Mechanism,
    /// The key.
    pub key: Arc<KeyMaterial>,
    /// The data so far.
    pub acc: Accumulator,
    /// C_SignUpdate / C_VerifyUpdate was called: only the Final call may end it.
    pub multi_part: bool,
    /// CKA_ALWAYS_AUTHENTICATE: the User must log in (CKU_CONTEXT_SPECIFIC) first.
    pub needs_context_login: bool,
}

/// An active digest operation.
pub struct DigestOperation {
    /// The running hash.
    pub ctx: DigestCtx,
    /// C_DigestUpdate / C_DigestKey was called.
    pub multi_part: bool,
}

/// Where an operation's output goes: `None` asks only for the length.
pub type Output<'a> = Option<&'a mut [u8]>;

/// The output rule of every producing call: a length query or a too-small buffer keep the
/// operation; anything else ends it.
enum Produced {
    /// Written; the operation is over.
    Done(usize),
    /// Length only; the operation goes on.
    Keep(usize),
}

fn deliver(out: Output, len: usize, produce: impl FnOnce() -> Result<Vec<u8>>) -> Result<Produced> {
    match out {
        None => Ok(Produced::Keep(len)),
        Some(buf) if buf.len() < len => Err(Error::OutputTooSmall(len)),
        Some(buf) => {
            let value = produce()?;
            buf[..value.len()].copy_from_slice(&value);
            Ok(Produced::Done(value.len()))
        }
    }
}

impl Token {
    /// Finds the key for an operation and checks that the application may use it for
    /// `usage` (CKA_SIGN, CKA_VERIFY, ...) with `mechanism`.
    pub(crate) fn operation_key(
        &self,
        handle: CK_OBJECT_HANDLE,
        mechanism: &Mechanism,
        usage: CK_ATTRIBUTE_TYPE,
    ) -> Result<(Arc<Object>, Arc<KeyMaterial>)> {
        let object = self.object(handle).map_err(|_| Error::KeyHandleInvalid)?;
        if object.is_private_or_secret_key() && self.login_state() != LoginState::User {
            return Err(Error::UserNotLoggedIn);
        }
        if !matches!(
            object.class,
            CKO_PUBLIC_KEY | CKO_PRIVATE_KEY | CKO_SECRET_KEY
        ) {
            return Err(Error::KeyHandleInvalid);
        }
        if !object.flag(usage) {
            return Err(Error::KeyFunctionNotPermitted);
        }
        if let Some(super::attributes::Value::Ulongs(allowed)) =
            object.attrs.get(&CKA_ALLOWED_MECHANISMS)
        {
            if !allowed.is_empty() && !allowed.contains(&(mechanism.ck_type() as u64)) {
                return Err(Error::MechanismInvalid);
            }
        }
        let key = self.key_of(&object)?;
        Ok((object, key))
    }

    /// C_SignInit / C_VerifyInit.
    pub fn sign_init(
        &self,
        handle: CK_SESSION_HANDLE,
        mechanism: Mechanism,
        key: CK_OBJECT_HANDLE,
        verify: bool,
    ) -> Result<()> {
        let session = self.session(handle)?;
        let mut ops = session.ops.lock();
        let slot = if verify { &ops.verify } else { &ops.sign };
        if slot.is_some() {
            return Err(Error::OperationActive);
        }
        let usage = if verify { CKA_VERIFY } else { CKA_SIGN };
        let (object, key) = self.operation_key(key, &mechanism, usage)?;
        let acc = sign_accumulator(&mechanism, &key, verify)?;
        let op = SignOperation {
            mechanism,
            key,
            acc,
            multi_part: false,
            needs_context_login: !verify && object.flag(CKA_ALWAYS_AUTHENTICATE),
        };
        if verify {
            ops.verify = Some(op);
        } else {
            ops.sign = Some(op);
        }
        Ok(())
    }

    /// C_Sign.
    pub fn sign(&self, handle: CK_SESSION_HANDLE, data: &[u8], out: Output) -> Result<usize> {
        let session = self.session(handle)?;
        let mut ops = session.ops.lock();
        let op = ops.sign.as_mut().ok_or(Error::OperationNotInitialized)?;
        if op.needs_context_login {
            return Err(Error::UserNotLoggedIn);
        }
        let result = if op.multi_part {
            Err(Error::OperationActive)
        } else {
            let len = signature_len(&op.mechanism, &op.key)?;
            deliver(out, len, || sign_once(&op.mechanism, &op.key, data))
        };
        finish(&mut ops.sign, result)
    }

    /// C_SignUpdate / C_VerifyUpdate.
    pub fn sign_update(&self, handle: CK_SESSION_HANDLE, part: &[u8], verify: bool) -> Result<()> {
        let session = self.session(handle)?;
        let mut ops = session.ops.lock();
        let slot = if verify {
            &mut ops.verify
        } else {
            &mut ops.sign
        };
        let op = slot.as_mut().ok_or(Error::OperationNotInitialized)?;
        if op.mechanism.single_part_only() {
            *slot = None;
            return Err(Error::FunctionNotSupported);
        }
        op.multi_part = true;
        match &mut op.acc {
            Accumulator::Buffer(b) => b.extend_from_slice(part),
            Accumulator::Digest(d) => d.update(part),
            Accumulator::Hmac(h) => h.update(part),
        }
        Ok(())
    }

    /// C_SignFinal.
    pub fn sign_final(&self, handle: CK_SESSION_HANDLE, out: Output) -> Result<usize> {
        let session = self.session(handle)?;
        let mut ops = session.ops.lock();
        let op = ops.sign.as_mut().ok_or(Error::OperationNotInitialized)?;
        if op.needs_context_login {
            return Err(Error::UserNotLoggedIn);
        }
        let result = if op.mechanism.single_part_only() {
            Err(Error::FunctionNotSupported)
        } else {
            let len = signature_len(&op.mechanism, &op.key)?;
            let acc = &mut op.acc;
            let (mechanism, key) = (&op.mechanism, &op.key);
            deliver(out, len, || {
                let acc = std::mem::replace(acc, Accumulator::Buffer(Vec::new()));
                sign_accumulated(mechanism, key, acc)
            })
        };
        finish(&mut ops.sign, result)
    }

    /// C_Verify.
    pub fn verify(&self, handle: CK_SESSION_HANDLE, data: &[u8], signature: &[u8]) -> Result<()> {
        let session = self.session(handle)?;
        let mut ops = session.ops.lock();
        let op = ops.verify.take().ok_or(Error::OperationNotInitialized)?;
        if op.multi_part {
            return Err(Error::OperationActive);
        }
        verify_once(&op.mechanism, &op.key, data, signature)
    }

    /// C_VerifyFinal.
    pub fn verify_final(&self, handle: CK_SESSION_HANDLE, signature: &[u8]) -> Result<()> {
        let session = self.session(handle)?;
        let mut ops = session.ops.lock();
        let op = ops.verify.take().ok_or(Error::OperationNotInitialized)?;
        if op.mechanism.single_part_only() {
            return Err(Error::FunctionNotSupported);
        }
        verify_accumulated(&op.mechanism, &op.key, op.acc, signature)
    }

    /// C_DigestInit.
    pub fn digest_init(&self, handle: CK_SESSION_HANDLE, mechanism: Mechanism) -> Result<()> {
        let session = self.session(handle)?;
        let mut ops = session.ops.lock();
        if ops.digest.is_some() {
            return Err(Error::OperationActive);
        }
        let Mechanism::Digest(hash) = mechanism else {
            return Err(Error::MechanismInvalid);
        };
        ops.digest = Some(DigestOperation {
            ctx: hash.context(),
            multi_part: false,
        });
        Ok(())
    }

    /// C_Digest.
    pub fn digest(&self, handle: CK_SESSION_HANDLE, data: &[u8], out: Output) -> Result<usize> {
        let session = self.session(handle)?;
        let mut ops = session.ops.lock();
        let op = ops.digest.as_mut().ok_or(Error::OperationNotInitialized)?;
        let result = if op.multi_part {
            Err(Error::OperationActive)
        } else {
            let ctx = &mut op.ctx;
            deliver(out, ctx.alg().output_len(), || {
                let mut ctx = std::mem::replace(ctx, HashAlg::Sha256.context());
                ctx.update(data);
                Ok(ctx.finish())
            })
        };
        finish(&mut ops.digest, result)
    }

    /// C_DigestUpdate.
    pub fn digest_update(&self, handle: CK_SESSION_HANDLE, part: &[u8]) -> Result<()> {
        let session = self.session(handle)?;
        let mut ops = session.ops.lock();
        let op = ops.digest.as_mut().ok_or(Error::OperationNotInitialized)?;
        op.multi_part = true;
        op.ctx.update(part);
        Ok(())
    }

    /// C_DigestKey: a secret key's value enters the digest.
    pub fn digest_key(&self, handle: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> Result<()> {
        let session = self.session(handle)?;
        let mut ops = session.ops.lock();
        if ops.digest.is_none() {
            return Err(Error::OperationNotInitialized);
        }
        let result = self
            .object(key)
            .map_err(|_| Error::KeyHandleInvalid)
            .and_then(|object| {
                if object.class != CKO_SECRET_KEY {
                    return Err(Error::KeyIndigestible);
                }
                if self.login_state() != LoginState::User {
                    return Err(Error::UserNotLoggedIn);
                }
                match &*self.key_of(&object)? {
                    KeyMaterial::Secret(k) => Ok(k.bytes.clone()),
                    _ => Err(Error::KeyIndigestible),
                }
            });
        match (result, ops.digest.as_mut()) {
            (Ok(bytes), Some(op)) => {
                op.multi_part = true;
                op.ctx.update(&bytes);
                Ok(())
            }
            (Err(e), _) => {
                ops.digest = None;
                Err(e)
            }
            (Ok(_), None) => Err(Error::OperationNotInitialized),
        }
    }

    /// C_DigestFinal.
    pub fn digest_final(&self, handle: CK_SESSION_HANDLE, out: Output) -> Result<usize> {
        let session = self.session(handle)?;
        let mut ops = session.ops.lock();
        let op = ops.digest.as_mut().ok_or(Error::OperationNotInitialized)?;
        let ctx = &mut op.ctx;
        let result = deliver(out, ctx.alg().output_len(), || {
            Ok(std::mem::replace(ctx, HashAlg::Sha256.context()).finish())
        });
        finish(&mut ops.digest, result)
    }

    /// C_SessionCancel: ends the operations `flags` names (CKF_FIND_OBJECTS, CKF_ENCRYPT,
    /// CKF_DECRYPT, CKF_DIGEST, CKF_SIGN, CKF_VERIFY); the others are left alone.
    pub fn session_cancel(&self, handle: CK_SESSION_HANDLE, flags: CK_FLAGS) -> Result<()> {
        let session = self.session(handle)?;
        let mut ops = session.ops.lock();
        if flags & CKF_FIND_OBJECTS != 0 {
            ops.find = None;
        }
        if flags & CKF_ENCRYPT != 0 {
            ops.encrypt = None;
        }
        if flags & CKF_DECRYPT != 0 {
            ops.decrypt = None;
        }
        if flags & CKF_DIGEST != 0 {
            ops.digest = None;
        }
        if flags & CKF_SIGN != 0 {
            ops.sign = None;
        }
        if flags & CKF_VERIFY != 0 {
            ops.verify = None;
        }
        Ok(())
    }

    /// C_Login(CKU_CONTEXT_SPECIFIC): the operation waiting for it in this session may go on.
    pub(crate) fn context_login_target(&self, session: &Session) -> Result<()> {
        let ops = session.ops.lock();
        let signing = ops.sign.as_ref().is_some_and(|op| op.needs_context_login);
        let decrypting = ops
            .decrypt
            .as_ref()
            .is_some_and(|op| op.needs_context_login);
        if signing || decrypting {
            Ok(())
        } else {
            Err(Error::OperationNotInitialized)
        }
    }

    /// Marks the session's waiting operations as re-authenticated.
    pub(crate) fn context_login_done(&self, session: &Session) {
        let mut ops = session.ops.lock();
        if let Some(op) = ops.sign.as_mut() {
            op.needs_context_login = false;
        }
        if let Some(op) = ops.decrypt.as_mut() {
            op.needs_context_login = false;
        }
    }
}

/// Applies the output rule to an operation slot.
fn finish<T>(slot: &mut Option<T>, result: Result<Produced>) -> Result<usize> {
    match result {
        Ok(Produced::Keep(len)) => Ok(len),
        Ok(Produced::Done(len)) => {
            *slot = None;
            Ok(len)
        }
        Err(Error::OutputTooSmall(len)) => Err(Error::OutputTooSmall(len)),
        Err(e) => {
            *slot = None;
            Err(e)
        }
    }
}

/// Checks the key fits the mechanism and sets up what multi-part calls accumulate.
fn sign_accumulator(mechanism: &Mechanism, key: &KeyMaterial, verify: bool) -> Result<Accumulator> {
    use KeyMaterial::*;
    let fits = match (mechanism, key) {
        (Mechanism::Ecdsa(_), EcPrivate(_)) => !verify,
        (Mechanism::Ecdsa(_), EcPublic(_)) => verify,
        (
            Mechanism::RsaPkcs
            | Mechanism::RsaPkcsHash(_)
            | Mechanism::RsaPss(_)
            | Mechanism::RsaPssHash(_),
            RsaPrivate(_),
        ) => !verify,
        (
            Mechanism::RsaPkcs
            | Mechanism::RsaPkcsHash(_)
            | Mechanism::RsaPss(_)
            | Mechanism::RsaPssHash(_),
            RsaPublic(_),
        ) => verify,
        (Mechanism::Eddsa(_), EdPrivate(_)) => !verify,
        (Mechanism::Eddsa(_), EdPublic(_)) => verify,
        (Mechanism::Hmac { .. }, Secret(_)) => true,
        (
            Mechanism::Ecdsa(_)
            | Mechanism::RsaPkcs
            | Mechanism::RsaPkcsHash(_)
            | Mechanism::RsaPss(_)
            | Mechanism::RsaPssHash(_)
            | Mechanism::Eddsa(_)
            | Mechanism::Hmac { .. },
            _,
        ) => false,
        _ => return Err(Error::MechanismInvalid),
    };
    if !fits {
        return Err(Error::KeyTypeInconsistent);
    }
    Ok(match (mechanism, key) {
        (Mechanism::Ecdsa(Some(h)) | Mechanism::RsaPkcsHash(h), _) => {
            Accumulator::Digest(h.context())
        }
        (Mechanism::RsaPssHash(p), _) => Accumulator::Digest(p.hash.context()),
        (Mechanism::Hmac { hash, len }, Secret(k)) => {
            if k.bytes.len() < MIN_HMAC_KEY_LEN {
                return Err(Error::KeySizeRange);
            }
            Accumulator::Hmac(k.hmac(*hash)?.context(*len)?)
        }
        (Mechanism::Eddsa(p), _) => {
            check_eddsa_params(p.as_ref())?;
            Accumulator::Buffer(Vec::new())
        }
        _ => Accumulator::Buffer(Vec::new()),
    })
}

/// The signature's length, known before signing.
fn signature_len(mechanism: &Mechanism, key: &KeyMaterial) -> Result<usize> {
    Ok(match key {
        KeyMaterial::EcPrivate(k) => 2 * k.curve().field_len(),
        KeyMaterial::RsaPrivate(k) => k.public_key().modulus_len(),
        KeyMaterial::EdPrivate(_) => 64,
        KeyMaterial::Secret(_) => match mechanism {
            Mechanism::Hmac { len, .. } => *len,
            _ => return Err(Error::KeyTypeInconsistent),
        },
        _ => return Err(Error::KeyTypeInconsistent),
    })
}

/// C_Sign's whole computation.
fn sign_once(mechanism: &Mechanism, key: &KeyMaterial, data: &[u8]) -> Result<Vec<u8>> {
    Ok(match (mechanism, key) {
        (Mechanism::Ecdsa(None), KeyMaterial::EcPrivate(k)) => k.sign_prehashed(data)?,
        (Mechanism::Ecdsa(Some(h)), KeyMaterial::EcPrivate(k)) => k.sign(*h, data)?,
        (Mechanism::RsaPkcs, KeyMaterial::RsaPrivate(k)) => k.sign_pkcs1_raw(data)?,
        (Mechanism::RsaPkcsHash(h), KeyMaterial::RsaPrivate(k)) => k.sign_pkcs1(*h, data)?,
        (Mechanism::RsaPss(p), KeyMaterial::RsaPrivate(k)) => k.sign_pss(p, data)?,
        (Mechanism::RsaPssHash(p), KeyMaterial::RsaPrivate(k)) => {
            k.sign_pss_message(p.hash, p, data)?
        }
        (Mechanism::Eddsa(p), KeyMaterial::EdPrivate(k)) => k.sign(p.as_ref(), data)?.to_vec(),
        (Mechanism::Hmac { hash, len }, KeyMaterial::Secret(k)) => {
            k.hmac(*hash)?.sign(*len, data)?
        }
        _ => return Err(Error::KeyTypeInconsistent),
    })
}

/// C_SignFinal's computation over what the updates accumulated.
fn sign_accumulated(mechanism: &Mechanism, key: &KeyMaterial, acc: Accumulator) -> Result<Vec<u8>> {
    Ok(match (mechanism, key, acc) {
        (Mechanism::Ecdsa(Some(_)), KeyMaterial::EcPrivate(k), Accumulator::Digest(d)) => {
            k.sign_prehashed(&d.finish())?
        }
        (Mechanism::RsaPkcsHash(_), KeyMaterial::RsaPrivate(k), Accumulator::Digest(d)) => {
            let h = d.alg();
            k.sign_pkcs1_hashed(h, &d.finish())?
        }
        (Mechanism::RsaPssHash(p), KeyMaterial::RsaPrivate(k), Accumulator::Digest(d)) => {
            k.sign_pss(p, &d.finish())?
        }
        (Mechanism::Hmac { .. }, KeyMaterial::Secret(_), Accumulator::Hmac(h)) => h.finish(),
        (m, k, Accumulator::Buffer(data)) => sign_once(m, k, &data)?,
        _ => {
            return Err(Error::GeneralError(
                "sign state does not fit the mechanism".into(),
            ))
        }
    })
}

/// C_Verify's whole computation.
fn verify_once(
    mechanism: &Mechanism,
    key: &KeyMaterial,
    data: &[u8],
    signature: &[u8],
) -> Result<()> {
    match (mechanism, key) {
        (Mechanism::Ecdsa(None), KeyMaterial::EcPublic(k)) => {
            k.verify_prehashed(data, signature)?
        }
        (Mechanism::Ecdsa(Some(h)), KeyMaterial::EcPublic(k)) => k.verify(*h, data, signature)?,
        (Mechanism::RsaPkcs, KeyMaterial::RsaPublic(k)) => k.verify_pkcs1_raw(data, signature)?,
        (Mechanism::RsaPkcsHash(h), KeyMaterial::RsaPublic(k)) => {
            k.verify_pkcs1(*h, data, signature)?
        }
        (Mechanism::RsaPss(p), KeyMaterial::RsaPublic(k)) => k.verify_pss(p, data, signature)?,
        (Mechanism::RsaPssHash(p), KeyMaterial::RsaPublic(k)) => {
            k.verify_pss_message(p.hash, p, data, signature)?
        }
        (Mechanism::Eddsa(p), KeyMaterial::EdPublic(k)) => k.verify(p.as_ref(), data, signature)?,
        (Mechanism::Hmac { hash, len }, KeyMaterial::Secret(k)) => {
            if signature.len() != *len {
                return Err(Error::SignatureLenRange);
            }
            k.hmac(*hash)?.verify(*len, data, signature)?
        }
        _ => return Err(Error::KeyTypeInconsistent),
    }
    Ok(())
}

/// C_VerifyFinal's computation.
fn verify_accumulated(
    mechanism: &Mechanism,
    key: &KeyMaterial,
    acc: Accumulator,
    signature: &[u8],
) -> Result<()> {
    match (mechanism, key, acc) {
        (Mechanism::Ecdsa(Some(_)), KeyMaterial::EcPublic(k), Accumulator::Digest(d)) => {
            k.verify_prehashed(&d.finish(), signature)?
        }
        (Mechanism::RsaPkcsHash(_), KeyMaterial::RsaPublic(k), Accumulator::Digest(d)) => {
            let h = d.alg();
            k.verify_pkcs1_hashed(h, &d.finish(), signature)?
        }
        (Mechanism::RsaPssHash(p), KeyMaterial::RsaPublic(k), Accumulator::Digest(d)) => {
            k.verify_pss(p, &d.finish(), signature)?
        }
        (Mechanism::Hmac { len, .. }, KeyMaterial::Secret(_), Accumulator::Hmac(h)) => {
            if signature.len() != *len {
                return Err(Error::SignatureLenRange);
            }
            h.verify(signature)?
        }
        (m, k, Accumulator::Buffer(data)) => verify_once(m, k, &data, signature)?,
        _ => {
            return Err(Error::GeneralError(
                "verify state does not fit the mechanism".into(),
            ))
        }
    }
    Ok(())
}
