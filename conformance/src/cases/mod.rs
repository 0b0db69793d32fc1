//! The cases, one module per chapter, and the fixtures they share.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pkcs11_sys::*;

use crate::case::{fail, unhex, Case, CaseResult, Chapter, Failure, Mode};
use crate::ctx::{Ctx, Mech, Tpl};
use crate::protocol::RunConfig;

mod cipher;
mod digest;
mod general;
pub mod key4c;
mod keys;
mod object;
mod random;
mod session;
mod sign;
mod slot_token;
pub mod vectors;

/// Collects the cases of one chapter.
pub struct Reg {
    chapter: Chapter,
    mode: Mode,
    cases: Vec<Case>,
}

impl Reg {
    /// Cases of `chapter`, run in the shared worker unless [`Reg::mode`] says otherwise.
    pub fn new(chapter: Chapter) -> Reg {
        Reg {
            chapter,
            mode: Mode::Shared,
            cases: Vec::new(),
        }
    }

    /// The mode of the cases added next.
    pub fn mode(&mut self, mode: Mode) -> &mut Reg {
        self.mode = mode;
        self
    }

    /// Adds a case.
    pub fn add(
        &mut self,
        id: &str,
        section: &str,
        title: &str,
        expect: &str,
        run: impl Fn(&mut Ctx) -> CaseResult + Send + Sync + 'static,
    ) -> &mut Reg {
        self.cases.push(Case {
            id: id.to_string(),
            chapter: self.chapter,
            section: section.to_string(),
            title: title.to_string(),
            expect: expect.to_string(),
            mode: self.mode,
            run: Arc::new(run),
        });
        self
    }

    /// The cases.
    pub fn done(self) -> Vec<Case> {
        self.cases
    }
}

/// Every case, generic chapters first, then the Key4C profile (built from `cfg`'s PIN
/// vectors). The order is the run order within each mode.
pub fn all(cfg: &RunConfig) -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(general::cases());
    v.extend(slot_token::cases());
    v.extend(session::cases());
    v.extend(object::cases());
    v.extend(keys::cases());
    v.extend(sign::cases());
    v.extend(cipher::cases());
    v.extend(digest::cases());
    v.extend(random::cases());
    v.extend(key4c::cases(cfg));
    v
}

// ----- fixtures shared by the chapters -----

/// A label no other object has: `tag` plus the process id and a counter.
pub fn unique(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "cf-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A session secret key of type `kt` with this value, usable for everything its type allows,
/// not sensitive and extractable (so its value can be checked), plus `extra` attributes.
pub fn secret_key(
    ctx: &mut Ctx,
    h: CK_SESSION_HANDLE,
    kt: CK_KEY_TYPE,
    value: &[u8],
    extra: &[(CK_ATTRIBUTE_TYPE, bool)],
) -> Result<CK_OBJECT_HANDLE, Failure> {
    let aes = kt == CKK_AES;
    let mut flags: Vec<(CK_ATTRIBUTE_TYPE, bool)> = vec![
        (CKA_TOKEN, false),
        (CKA_PRIVATE, true),
        (CKA_SENSITIVE, false),
        (CKA_EXTRACTABLE, true),
        (CKA_ENCRYPT, aes),
        (CKA_DECRYPT, aes),
        (CKA_WRAP, aes),
        (CKA_UNWRAP, aes),
        (CKA_SIGN, !aes),
        (CKA_VERIFY, !aes),
    ];
    for (ty, v) in extra {
        match flags.iter_mut().find(|(t, _)| t == ty) {
            Some(slot) => slot.1 = *v,
            None => flags.push((*ty, *v)),
        }
    }
    let mut t = Tpl::new()
        .class(CKO_SECRET_KEY)
        .key_type(kt)
        .label(&unique("key"))
        .bytes(CKA_VALUE, value);
    for (ty, v) in flags {
        t = t.bool(ty, v);
    }
    ctx.create(h, t)
}

/// An AES session key with this value (see [`secret_key`]).
pub fn aes_key(
    ctx: &mut Ctx,
    h: CK_SESSION_HANDLE,
    value: &[u8],
) -> Result<CK_OBJECT_HANDLE, Failure> {
    secret_key(ctx, h, CKK_AES, value, &[])
}

/// A generic-secret (HMAC) session key with this value.
pub fn hmac_key(
    ctx: &mut Ctx,
    h: CK_SESSION_HANDLE,
    value: &[u8],
) -> Result<CK_OBJECT_HANDLE, Failure> {
    secret_key(ctx, h, CKK_GENERIC_SECRET, value, &[])
}

/// An EC session key pair on the curve `params` names: (public, private). The private key
/// is sensitive; `sign` sets its CKA_SIGN.
pub fn ec_pair(
    ctx: &mut Ctx,
    h: CK_SESSION_HANDLE,
    params: &[u8],
    extra_private: &[(CK_ATTRIBUTE_TYPE, bool)],
) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE), Failure> {
    ctx.need_mech(CKM_EC_KEY_PAIR_GEN)?;
    let label = unique("ec");
    let public = Tpl::new()
        .bool(CKA_TOKEN, false)
        .bool(CKA_PRIVATE, false)
        .bool(CKA_VERIFY, true)
        .label(&label)
        .bytes(CKA_EC_PARAMS, params);
    let mut flags: Vec<(CK_ATTRIBUTE_TYPE, bool)> = vec![
        (CKA_TOKEN, false),
        (CKA_PRIVATE, true),
        (CKA_SENSITIVE, true),
        (CKA_SIGN, true),
    ];
    for (ty, v) in extra_private {
        match flags.iter_mut().find(|(t, _)| t == ty) {
            Some(slot) => slot.1 = *v,
            None => flags.push((*ty, *v)),
        }
    }
    let mut private = Tpl::new().label(&label);
    for (ty, v) in flags {
        private = private.bool(ty, v);
    }
    ctx.gen_pair(h, &mut Mech::new(CKM_EC_KEY_PAIR_GEN), public, private)
}

/// The suite's RSA-2048 test key imported as session objects: (public, private).
pub fn rsa_pair(
    ctx: &mut Ctx,
    h: CK_SESSION_HANDLE,
) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE), Failure> {
    rsa_pair_with(ctx, h, &[])
}

/// [`rsa_pair`] with extra boolean attributes on the private key.
pub fn rsa_pair_with(
    ctx: &mut Ctx,
    h: CK_SESSION_HANDLE,
    extra_private: &[(CK_ATTRIBUTE_TYPE, bool)],
) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE), Failure> {
    use vectors::*;
    let label = unique("rsa");
    let public = Tpl::new()
        .class(CKO_PUBLIC_KEY)
        .key_type(CKK_RSA)
        .bool(CKA_TOKEN, false)
        .bool(CKA_PRIVATE, false)
        .bool(CKA_VERIFY, true)
        .bool(CKA_ENCRYPT, true)
        .bool(CKA_WRAP, true)
        .label(&label)
        .bytes(CKA_MODULUS, &unhex(RSA_N))
        .bytes(CKA_PUBLIC_EXPONENT, &unhex(RSA_E));
    let p = ctx.create(h, public)?;
    let mut private = Tpl::new()
        .class(CKO_PRIVATE_KEY)
        .key_type(CKK_RSA)
        .bool(CKA_TOKEN, false)
        .bool(CKA_PRIVATE, true)
        .bool(CKA_SENSITIVE, true)
        .bool(CKA_SIGN, true)
        .bool(CKA_DECRYPT, true)
        .bool(CKA_UNWRAP, true)
        .label(&label)
        .bytes(CKA_MODULUS, &unhex(RSA_N))
        .bytes(CKA_PUBLIC_EXPONENT, &unhex(RSA_E))
        .bytes(CKA_PRIVATE_EXPONENT, &unhex(RSA_D))
        .bytes(CKA_PRIME_1, &unhex(RSA_P))
        .bytes(CKA_PRIME_2, &unhex(RSA_Q))
        .bytes(CKA_EXPONENT_1, &unhex(RSA_DP))
        .bytes(CKA_EXPONENT_2, &unhex(RSA_DQ))
        .bytes(CKA_COEFFICIENT, &unhex(RSA_QINV));
    for &(ty, v) in extra_private {
        private = private.bool(ty, v);
    }
    let q = ctx.create(h, private)?;
    Ok((p, q))
}

/// An Ed25519 key pair imported from RFC 8032 hex: (public, private).
pub fn ed25519_pair(
    ctx: &mut Ctx,
    h: CK_SESSION_HANDLE,
    secret: &str,
    public: &str,
) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE), Failure> {
    ctx.need_mech(CKM_EDDSA)?;
    let label = unique("ed");
    let p = ctx.create(
        h,
        Tpl::new()
            .class(CKO_PUBLIC_KEY)
            .key_type(CKK_EC_EDWARDS)
            .bool(CKA_TOKEN, false)
            .bool(CKA_VERIFY, true)
            .label(&label)
            .bytes(CKA_EC_PARAMS, vectors::ED25519)
            .bytes(CKA_EC_POINT, &der_octet_string(&unhex(public))),
    )?;
    let q = ctx.create(
        h,
        Tpl::new()
            .class(CKO_PRIVATE_KEY)
            .key_type(CKK_EC_EDWARDS)
            .bool(CKA_TOKEN, false)
            .bool(CKA_PRIVATE, true)
            .bool(CKA_SIGN, true)
            .label(&label)
            .bytes(CKA_EC_PARAMS, vectors::ED25519)
            .bytes(CKA_VALUE, &unhex(secret)),
    )?;
    Ok((p, q))
}

/// `b` as a DER OCTET STRING.
pub fn der_octet_string(b: &[u8]) -> Vec<u8> {
    let mut out = vec![0x04];
    match b.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend_from_slice(&[0x81, n as u8]),
        n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(b);
    out
}

/// The content of a DER OCTET STRING that is exactly `b`, if it is one.
pub fn der_octet_unwrap(b: &[u8]) -> Option<&[u8]> {
    let (&tag, rest) = b.split_first()?;
    if tag != 0x04 {
        return None;
    }
    let (&l0, rest) = rest.split_first()?;
    let (len, rest) = match l0 {
        n if n < 0x80 => (n as usize, rest),
        0x81 => (*rest.first()? as usize, &rest[1..]),
        0x82 => (
            ((*rest.first()? as usize) << 8) | *rest.get(1)? as usize,
            rest.get(2..)?,
        ),
        _ => return None,
    };
    (rest.len() == len).then_some(rest)
}

/// The uncompressed point of an EC public key (its CKA_EC_POINT, DER-unwrapped).
pub fn ec_point(
    ctx: &mut Ctx,
    h: CK_SESSION_HANDLE,
    public: CK_OBJECT_HANDLE,
) -> Result<Vec<u8>, Failure> {
    let v = ctx.attr(h, public, CKA_EC_POINT)?;
    match der_octet_unwrap(&v) {
        Some(p) => Ok(p.to_vec()),
        None => fail(format!(
            "CKA_EC_POINT is not a DER OCTET STRING: {}",
            crate::case::hex(&v)
        )),
    }
}

/// SHA-2 digest computed by aws-lc (independently of the module).
pub fn sha(alg: CK_MECHANISM_TYPE, data: &[u8]) -> Vec<u8> {
    use aws_lc_rs::digest;
    let a = match alg {
        CKM_SHA384 => &digest::SHA384,
        CKM_SHA512 => &digest::SHA512,
        CKM_SHA_1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        _ => &digest::SHA256,
    };
    digest::digest(a, data).as_ref().to_vec()
}

/// Runs `f`, then destroys `objects` (best effort) whatever `f` returned.
pub fn with_cleanup<T>(
    ctx: &mut Ctx,
    h: CK_SESSION_HANDLE,
    objects: &[CK_OBJECT_HANDLE],
    f: impl FnOnce(&mut Ctx) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let r = f(ctx);
    for &o in objects {
        let _ = ctx.destroy(h, o);
    }
    r
}
