//! The context a case runs in: the module, the provisioned token, the wrong-PIN guard, and
//! helpers that make the calls a case needs for its set-up (failing the case, never panicking,
//! when the module misbehaves).

use std::ffi::c_void;

use pkcs11_sys::*;

use crate::case::{fail, na, setup, CaseResult, Failure};
use crate::guard::{PinGuard, Role};
use crate::module::Module;
use crate::names::{ckm, ckr};
use crate::p11;
use crate::protocol::{Event, EventSink, RunConfig};

/// The longest output the suite accepts from a module; a larger reported length is garbage.
pub const MAX_OUTPUT: CK_ULONG = 1 << 24;

/// A PIN that is never the SO's or the User's (checked when the context is made).
pub const WRONG_PIN: &[u8] = b"Wr0ng-Pin.x9";
/// A valid PIN (under every policy the suite knows) used where a second one is needed.
pub const ALT_PIN: &[u8] = b"Alt3rn-Pin.7q";
/// A third valid PIN, used when [`ALT_PIN`] is one of the run's PINs.
pub const ALT_PIN2: &[u8] = b"Sec0nd-Alt.5w";

/// A byte buffer aligned for CK_ULONG and the parameter structures (modules cast pointers).
#[derive(Clone, Default)]
pub struct Buf {
    words: Vec<u64>,
    len: usize,
}

impl Buf {
    /// A zeroed buffer of `len` bytes.
    pub fn zeroed(len: usize) -> Buf {
        Buf {
            words: vec![0u64; len.div_ceil(8).max(1)],
            len,
        }
    }

    /// A buffer holding `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Buf {
        let mut b = Buf::zeroed(bytes.len());
        b.as_mut_slice().copy_from_slice(bytes);
        b
    }

    /// A buffer holding the bytes of `value`.
    pub fn of<T: Copy>(value: &T) -> Buf {
        let n = std::mem::size_of::<T>();
        // SAFETY: `value` is a plain `Copy` value of `n` bytes.
        let bytes = unsafe { std::slice::from_raw_parts(value as *const T as *const u8, n) };
        Buf::from_bytes(bytes)
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `words` holds at least `len` bytes.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr() as *const u8, self.len) }
    }

    /// The bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr() as *mut u8, self.len) }
    }

    /// A pointer to the bytes.
    pub fn ptr(&mut self) -> *mut u8 {
        self.words.as_mut_ptr() as *mut u8
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// An attribute template, owning its values.
#[derive(Clone, Default)]
pub struct Tpl {
    items: Vec<(CK_ATTRIBUTE_TYPE, Option<Buf>, CK_ULONG)>,
}

impl Tpl {
    /// An empty template.
    pub fn new() -> Tpl {
        Tpl::default()
    }

    /// Sets a byte-string attribute (replacing an earlier value of the same type).
    pub fn bytes(mut self, ty: CK_ATTRIBUTE_TYPE, v: &[u8]) -> Tpl {
        let item = (ty, Some(Buf::from_bytes(v)), v.len() as CK_ULONG);
        match self.items.iter_mut().find(|(t, _, _)| *t == ty) {
            Some(slot) => *slot = item,
            None => self.items.push(item),
        }
        self
    }

    /// Appends a byte-string attribute even if the type is already there (for duplicate-type
    /// templates).
    pub fn duplicate(mut self, ty: CK_ATTRIBUTE_TYPE, v: &[u8]) -> Tpl {
        self.items
            .push((ty, Some(Buf::from_bytes(v)), v.len() as CK_ULONG));
        self
    }

    /// Adds a CK_ULONG attribute.
    pub fn ulong(self, ty: CK_ATTRIBUTE_TYPE, v: CK_ULONG) -> Tpl {
        self.bytes(ty, &v.to_ne_bytes())
    }

    /// Adds a CK_BBOOL attribute.
    pub fn bool(self, ty: CK_ATTRIBUTE_TYPE, v: bool) -> Tpl {
        self.bytes(ty, &[if v { CK_TRUE } else { CK_FALSE }])
    }

    /// Adds CKA_CLASS.
    pub fn class(self, class: CK_OBJECT_CLASS) -> Tpl {
        self.ulong(CKA_CLASS, class)
    }

    /// Adds CKA_KEY_TYPE.
    pub fn key_type(self, kt: CK_KEY_TYPE) -> Tpl {
        self.ulong(CKA_KEY_TYPE, kt)
    }

    /// Adds CKA_LABEL.
    pub fn label(self, l: &str) -> Tpl {
        self.bytes(CKA_LABEL, l.as_bytes())
    }

    /// Adds an attribute whose pValue is NULL with `len` as its length.
    pub fn null_value(mut self, ty: CK_ATTRIBUTE_TYPE, len: CK_ULONG) -> Tpl {
        self.items.push((ty, None, len));
        self
    }

    /// Adds an array of mechanism types (CKA_ALLOWED_MECHANISMS).
    pub fn mechanisms(self, ty: CK_ATTRIBUTE_TYPE, ms: &[CK_MECHANISM_TYPE]) -> Tpl {
        let bytes: Vec<u8> = ms.iter().flat_map(|m| m.to_ne_bytes()).collect();
        self.bytes(ty, &bytes)
    }

    /// The CK_ATTRIBUTE array, pointing into this template (keep it alive during the call).
    pub fn attrs(&mut self) -> Vec<CK_ATTRIBUTE> {
        self.items
            .iter_mut()
            .map(|(ty, v, len)| CK_ATTRIBUTE {
                type_: *ty,
                pValue: v
                    .as_mut()
                    .map_or(std::ptr::null_mut(), |b| b.ptr() as *mut c_void),
                ulValueLen: *len,
            })
            .collect()
    }

    /// The number of attributes.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the template is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// A mechanism with its parameter, owning everything the parameter points to.
#[derive(Clone)]
pub struct Mech {
    ty: CK_MECHANISM_TYPE,
    param: Option<Buf>,
    param_len: CK_ULONG,
    _keep: Vec<Buf>,
}

impl Mech {
    /// A mechanism without a parameter.
    pub fn new(ty: CK_MECHANISM_TYPE) -> Mech {
        Mech {
            ty,
            param: None,
            param_len: 0,
            _keep: Vec::new(),
        }
    }

    /// A mechanism whose parameter is the bytes of `p`.
    pub fn with<T: Copy>(ty: CK_MECHANISM_TYPE, p: &T) -> Mech {
        Mech {
            ty,
            param: Some(Buf::of(p)),
            param_len: std::mem::size_of::<T>() as CK_ULONG,
            _keep: Vec::new(),
        }
    }

    /// A mechanism whose parameter is these bytes (an IV).
    pub fn bytes(ty: CK_MECHANISM_TYPE, p: &[u8]) -> Mech {
        Mech {
            ty,
            param: Some(Buf::from_bytes(p)),
            param_len: p.len() as CK_ULONG,
            _keep: Vec::new(),
        }
    }

    /// A mechanism with an explicit parameter pointer/length pair (for NULL-with-length cases).
    pub fn raw_param(ty: CK_MECHANISM_TYPE, param: Option<&[u8]>, len: CK_ULONG) -> Mech {
        Mech {
            ty,
            param: param.map(Buf::from_bytes),
            param_len: len,
            _keep: Vec::new(),
        }
    }

    /// CKM_AES_GCM with this IV, AAD and tag length.
    pub fn gcm(iv: &[u8], aad: &[u8], tag_bits: CK_ULONG) -> Mech {
        let mut iv_buf = Buf::from_bytes(iv);
        let mut aad_buf = Buf::from_bytes(aad);
        let p = CK_GCM_PARAMS {
            pIv: iv_buf.ptr(),
            ulIvLen: iv.len() as CK_ULONG,
            ulIvBits: (iv.len() * 8) as CK_ULONG,
            pAAD: if aad.is_empty() {
                std::ptr::null_mut()
            } else {
                aad_buf.ptr()
            },
            ulAADLen: aad.len() as CK_ULONG,
            ulTagBits: tag_bits,
        };
        let mut m = Mech::with(CKM_AES_GCM, &p);
        // The heap buffers do not move when the vectors holding them do.
        m._keep = vec![iv_buf, aad_buf];
        m
    }

    /// CKM_RSA_PKCS_OAEP with this hash, MGF and no label.
    pub fn oaep(hash: CK_MECHANISM_TYPE, mgf: CK_RSA_PKCS_MGF_TYPE) -> Mech {
        let p = CK_RSA_PKCS_OAEP_PARAMS {
            hashAlg: hash,
            mgf,
            source: CKZ_DATA_SPECIFIED,
            pSourceData: std::ptr::null_mut(),
            ulSourceDataLen: 0,
        };
        Mech::with(CKM_RSA_PKCS_OAEP, &p)
    }

    /// An RSA-PSS mechanism with these parameters.
    pub fn pss(
        ty: CK_MECHANISM_TYPE,
        hash: CK_MECHANISM_TYPE,
        mgf: CK_RSA_PKCS_MGF_TYPE,
        salt: CK_ULONG,
    ) -> Mech {
        let p = CK_RSA_PKCS_PSS_PARAMS {
            hashAlg: hash,
            mgf,
            sLen: salt,
        };
        Mech::with(ty, &p)
    }

    /// The mechanism type.
    pub fn ty(&self) -> CK_MECHANISM_TYPE {
        self.ty
    }

    /// The CK_MECHANISM, pointing into this value (keep it alive during the call).
    pub fn raw(&mut self) -> CK_MECHANISM {
        CK_MECHANISM {
            mechanism: self.ty,
            pParameter: self
                .param
                .as_mut()
                .map_or(std::ptr::null_mut(), |b| b.ptr() as *mut c_void),
            ulParameterLen: self.param_len,
        }
    }
}

/// A fixed-size, blank-padded field as a string (trailing blanks removed).
pub fn field(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_end().to_string()
}

/// A label as the 32-byte blank-padded field C_InitToken takes.
pub fn label32(label: &str) -> [u8; 32] {
    let mut l = [b' '; 32];
    let n = label.len().min(32);
    l[..n].copy_from_slice(&label.as_bytes()[..n]);
    l
}

/// The context of one case.
pub struct Ctx<'a> {
    /// The module.
    pub m: &'a Module,
    /// The run's configuration.
    pub cfg: &'a RunConfig,
    /// The provisioned token's slot (0 until located, in Fresh cases).
    pub slot: CK_SLOT_ID,
    /// C_GetMechanismList of the token (empty until located).
    pub mechs: Vec<CK_MECHANISM_TYPE>,
    guard: &'a mut PinGuard,
    sink: &'a mut EventSink,
    sessions: Vec<CK_SESSION_HANDLE>,
    fatal: bool,
}

impl<'a> Ctx<'a> {
    /// A context on `m`.
    pub fn new(
        m: &'a Module,
        cfg: &'a RunConfig,
        guard: &'a mut PinGuard,
        sink: &'a mut EventSink,
    ) -> Ctx<'a> {
        Ctx {
            m,
            cfg,
            slot: 0,
            mechs: Vec::new(),
            guard,
            sink,
            sessions: Vec::new(),
            fatal: false,
        }
    }

    /// Writes an event to the worker's event file.
    pub fn emit(&mut self, e: Event) {
        if matches!(e, Event::Fatal { .. }) {
            self.fatal = true;
        }
        self.sink.emit(&e);
    }

    /// Whether a case reported that the run cannot go on.
    pub fn fatal(&self) -> bool {
        self.fatal
    }

    /// Finds the provisioned token (by its label) and reads its mechanism list.
    pub fn locate(&mut self) -> CaseResult {
        self.slot = find_token(self.m, &self.cfg.label)
            .map_err(Failure::Fail)?
            .ok_or_else(|| {
                Failure::Fail(format!("no token labelled {:?} is present", self.cfg.label))
            })?;
        self.mechs = mechanism_list(self.m, self.slot).map_err(Failure::Fail)?;
        Ok(())
    }

    /// The case is not applicable unless the token lists `m`.
    pub fn need_mech(&self, m: CK_MECHANISM_TYPE) -> CaseResult {
        if self.mechs.contains(&m) {
            Ok(())
        } else {
            na(format!("{} is not in C_GetMechanismList", ckm(m)))
        }
    }

    /// The case is not applicable unless the token lists `m` with all of `flags`
    /// (CKF_ENCRYPT, CKF_WRAP, ...) in its C_GetMechanismInfo.
    pub fn need_mech_flags(&self, m: CK_MECHANISM_TYPE, flags: CK_FLAGS) -> CaseResult {
        self.need_mech(m)?;
        let mut info = CK_MECHANISM_INFO::default();
        let rv = p11!(self.m, C_GetMechanismInfo(self.slot, m, &mut info));
        setup(&format!("C_GetMechanismInfo({})", ckm(m)), rv)?;
        if info.flags & flags == flags {
            Ok(())
        } else {
            na(format!(
                "{} lacks flags 0x{:x} in C_GetMechanismInfo (has 0x{:x})",
                ckm(m),
                flags,
                info.flags
            ))
        }
    }

    /// Whether the token lists `m`.
    pub fn has_mech(&self, m: CK_MECHANISM_TYPE) -> bool {
        self.mechs.contains(&m)
    }

    /// The run's SO PIN.
    pub fn so_pin(&self) -> Vec<u8> {
        self.cfg.so_pin.clone()
    }

    /// The run's User PIN.
    pub fn user_pin(&self) -> Vec<u8> {
        self.cfg.user_pin.clone()
    }

    /// A valid PIN that is neither the SO's nor the User's.
    pub fn alt_pin(&self) -> Vec<u8> {
        if self.cfg.so_pin == ALT_PIN || self.cfg.user_pin == ALT_PIN {
            ALT_PIN2.to_vec()
        } else {
            ALT_PIN.to_vec()
        }
    }

    // ----- the wrong-PIN guard -----

    /// Call right before sending `n` wrong PINs for `role`: the case is not applicable when
    /// that could lock the PIN; otherwise they are counted (before they are sent).
    pub fn wrong_pins(&mut self, role: Role, n: u32) -> CaseResult {
        if !self.guard.allows(role, n) {
            return na(format!(
                "sending {n} wrong {} PIN(s) could lock it: {} sent since the last correct one, \
                 assumed limit {}",
                role.name(),
                self.guard.consecutive(role),
                self.guard.limit
            ));
        }
        for _ in 0..n {
            self.count_wrong_pin(role);
        }
        Ok(())
    }

    /// Counts one wrong PIN without asking the guard (lockout cases only).
    pub fn count_wrong_pin(&mut self, role: Role) {
        self.guard.wrong(role);
        self.emit(Event::Pin {
            role,
            correct: false,
        });
    }

    /// Records that the module accepted the correct PIN for `role` (its counter is reset).
    pub fn correct_pin(&mut self, role: Role) {
        self.guard.correct(role);
        self.emit(Event::Pin {
            role,
            correct: true,
        });
    }

    /// The wrong PIN for `role` the suite uses.
    pub fn wrong_pin(&self) -> Vec<u8> {
        WRONG_PIN.to_vec()
    }

    // ----- sessions and login -----

    /// Opens a session with these flags, returning the code and the handle (tracked for
    /// closing when the case ends).
    pub fn open_rv(&mut self, flags: CK_FLAGS) -> (CK_RV, CK_SESSION_HANDLE) {
        let mut h: CK_SESSION_HANDLE = 0;
        let rv = p11!(
            self.m,
            C_OpenSession(self.slot, flags, std::ptr::null_mut(), None, &mut h)
        );
        if rv == CKR_OK {
            self.sessions.push(h);
        }
        (rv, h)
    }

    /// Opens a serial session, R/W or R/O.
    pub fn open(&mut self, rw: bool) -> Result<CK_SESSION_HANDLE, Failure> {
        let flags = CKF_SERIAL_SESSION | if rw { CKF_RW_SESSION } else { 0 };
        let (rv, h) = self.open_rv(flags);
        setup("C_OpenSession", rv)?;
        Ok(h)
    }

    /// Closes a session.
    pub fn close(&mut self, h: CK_SESSION_HANDLE) -> CK_RV {
        self.sessions.retain(|s| *s != h);
        p11!(self.m, C_CloseSession(h))
    }

    /// Closes every session the case opened.
    pub fn close_all(&mut self) {
        for h in std::mem::take(&mut self.sessions) {
            let _ = p11!(self.m, C_CloseSession(h));
        }
    }

    /// C_Login with a given PIN, returning the code.
    pub fn login_rv(&mut self, h: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: &[u8]) -> CK_RV {
        let mut p = pin.to_vec();
        p11!(
            self.m,
            C_Login(h, user, p.as_mut_ptr(), p.len() as CK_ULONG)
        )
    }

    /// Logs `role` in with its correct PIN; anything but CKR_OK fails the case.
    pub fn login(&mut self, h: CK_SESSION_HANDLE, role: Role) -> CaseResult {
        let (user, pin) = match role {
            Role::So => (CKU_SO, self.so_pin()),
            Role::User => (CKU_USER, self.user_pin()),
        };
        let rv = self.login_rv(h, user, &pin);
        if rv == CKR_OK {
            self.correct_pin(role);
        }
        setup(
            &format!("C_Login({} with the correct PIN)", role.name()),
            rv,
        )
    }

    /// Sends one wrong PIN for `role` with C_Login (guarded) and returns the code.
    pub fn login_wrong(&mut self, h: CK_SESSION_HANDLE, role: Role) -> Result<CK_RV, Failure> {
        self.wrong_pins(role, 1)?;
        let user = match role {
            Role::So => CKU_SO,
            Role::User => CKU_USER,
        };
        let wrong = self.wrong_pin();
        Ok(self.login_rv(h, user, &wrong))
    }

    /// C_Logout must succeed.
    pub fn logout(&mut self, h: CK_SESSION_HANDLE) -> CaseResult {
        let rv = p11!(self.m, C_Logout(h));
        setup("C_Logout", rv)
    }

    /// Opens a R/W session with the User logged in.
    pub fn user_session(&mut self) -> Result<CK_SESSION_HANDLE, Failure> {
        let h = self.open(true)?;
        self.login(h, Role::User)?;
        Ok(h)
    }

    /// Opens a R/W session with the SO logged in.
    pub fn so_session(&mut self) -> Result<CK_SESSION_HANDLE, Failure> {
        let h = self.open(true)?;
        self.login(h, Role::So)?;
        Ok(h)
    }

    /// Resets the User PIN to the run's one (the SO logs in, C_InitPIN, logs out); used by
    /// cases that changed it.
    pub fn restore_user_pin(&mut self) -> CaseResult {
        self.close_all();
        let h = self.so_session()?;
        let mut pin = self.user_pin();
        let rv = p11!(
            self.m,
            C_InitPIN(h, pin.as_mut_ptr(), pin.len() as CK_ULONG)
        );
        self.close_all();
        setup("C_InitPIN(restore the User PIN)", rv)
    }

    // ----- token -----

    /// C_GetTokenInfo of the token's slot.
    pub fn token_info(&mut self) -> Result<CK_TOKEN_INFO, Failure> {
        let mut info = CK_TOKEN_INFO::default();
        let rv = p11!(self.m, C_GetTokenInfo(self.slot, &mut info));
        setup("C_GetTokenInfo", rv)?;
        Ok(info)
    }

    /// The token's flags.
    pub fn flags(&mut self) -> Result<CK_FLAGS, Failure> {
        Ok(self.token_info()?.flags)
    }

    /// Re-initialises the token (closing the case's sessions first) and sets the User PIN
    /// again; the token is then as provisioning left it.
    pub fn reinit_token(&mut self) -> CaseResult {
        self.close_all();
        let mut pin = self.so_pin();
        let mut label = label32(&self.cfg.label);
        let rv = p11!(
            self.m,
            C_InitToken(
                self.slot,
                pin.as_mut_ptr(),
                pin.len() as CK_ULONG,
                label.as_mut_ptr()
            )
        );
        setup("C_InitToken(re-initialise with the SO PIN)", rv)?;
        self.correct_pin(Role::So);
        self.locate()?;
        self.restore_user_pin()
    }

    // ----- objects -----

    /// C_CreateObject, returning the code and the handle.
    pub fn create_rv(&mut self, h: CK_SESSION_HANDLE, t: &mut Tpl) -> (CK_RV, CK_OBJECT_HANDLE) {
        let mut attrs = t.attrs();
        let mut o: CK_OBJECT_HANDLE = 0;
        let rv = p11!(
            self.m,
            C_CreateObject(h, attrs.as_mut_ptr(), attrs.len() as CK_ULONG, &mut o)
        );
        (rv, o)
    }

    /// C_CreateObject must succeed.
    pub fn create(
        &mut self,
        h: CK_SESSION_HANDLE,
        mut t: Tpl,
    ) -> Result<CK_OBJECT_HANDLE, Failure> {
        let (rv, o) = self.create_rv(h, &mut t);
        setup("C_CreateObject", rv)?;
        Ok(o)
    }

    /// A session data object with this label and value (public unless `private`).
    pub fn data_object(
        &mut self,
        h: CK_SESSION_HANDLE,
        label: &str,
        value: &[u8],
        token: bool,
        private: bool,
    ) -> Result<CK_OBJECT_HANDLE, Failure> {
        self.create(
            h,
            Tpl::new()
                .class(CKO_DATA)
                .bool(CKA_TOKEN, token)
                .bool(CKA_PRIVATE, private)
                .label(label)
                .bytes(CKA_VALUE, value),
        )
    }

    /// C_DestroyObject, returning the code.
    pub fn destroy(&mut self, h: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE) -> CK_RV {
        p11!(self.m, C_DestroyObject(h, o))
    }

    /// C_GetAttributeValue of one attribute, with the length-query protocol; returns the code
    /// of the call that failed, or the value.
    pub fn attr_rv(
        &mut self,
        h: CK_SESSION_HANDLE,
        o: CK_OBJECT_HANDLE,
        ty: CK_ATTRIBUTE_TYPE,
    ) -> Result<Vec<u8>, CK_RV> {
        let mut a = CK_ATTRIBUTE {
            type_: ty,
            pValue: std::ptr::null_mut(),
            ulValueLen: 0,
        };
        let rv = p11!(self.m, C_GetAttributeValue(h, o, &mut a, 1));
        if rv != CKR_OK {
            return Err(rv);
        }
        if a.ulValueLen > MAX_OUTPUT {
            return Err(CKR_GENERAL_ERROR);
        }
        let mut buf = Buf::zeroed(a.ulValueLen as usize);
        a.pValue = buf.ptr() as *mut c_void;
        let rv = p11!(self.m, C_GetAttributeValue(h, o, &mut a, 1));
        if rv != CKR_OK {
            return Err(rv);
        }
        let n = (a.ulValueLen as usize).min(buf.len());
        Ok(buf.as_slice()[..n].to_vec())
    }

    /// An attribute's value; anything but CKR_OK fails the case.
    pub fn attr(
        &mut self,
        h: CK_SESSION_HANDLE,
        o: CK_OBJECT_HANDLE,
        ty: CK_ATTRIBUTE_TYPE,
    ) -> Result<Vec<u8>, Failure> {
        self.attr_rv(h, o, ty).map_err(|rv| {
            Failure::Fail(format!(
                "C_GetAttributeValue(0x{ty:x}): returned {}, expected CKR_OK",
                ckr(rv)
            ))
        })
    }

    /// A CK_ULONG attribute.
    pub fn attr_ulong(
        &mut self,
        h: CK_SESSION_HANDLE,
        o: CK_OBJECT_HANDLE,
        ty: CK_ATTRIBUTE_TYPE,
    ) -> Result<CK_ULONG, Failure> {
        let v = self.attr(h, o, ty)?;
        let b: [u8; std::mem::size_of::<CK_ULONG>()] = v.as_slice().try_into().map_err(|_| {
            Failure::Fail(format!(
                "attribute 0x{ty:x} is {} bytes long, not a CK_ULONG",
                v.len()
            ))
        })?;
        Ok(CK_ULONG::from_ne_bytes(b))
    }

    /// A CK_BBOOL attribute.
    pub fn attr_bool(
        &mut self,
        h: CK_SESSION_HANDLE,
        o: CK_OBJECT_HANDLE,
        ty: CK_ATTRIBUTE_TYPE,
    ) -> Result<bool, Failure> {
        let v = self.attr(h, o, ty)?;
        match v.as_slice() {
            [b] => Ok(*b != 0),
            _ => fail(format!(
                "attribute 0x{ty:x} is {} bytes long, not a CK_BBOOL",
                v.len()
            )),
        }
    }

    /// C_FindObjectsInit/C_FindObjects/C_FindObjectsFinal; every call must succeed.
    pub fn find(
        &mut self,
        h: CK_SESSION_HANDLE,
        mut t: Tpl,
    ) -> Result<Vec<CK_OBJECT_HANDLE>, Failure> {
        let mut attrs = t.attrs();
        let rv = p11!(
            self.m,
            C_FindObjectsInit(h, attrs.as_mut_ptr(), attrs.len() as CK_ULONG)
        );
        setup("C_FindObjectsInit", rv)?;
        let mut found = Vec::new();
        loop {
            let mut batch = [0 as CK_OBJECT_HANDLE; 64];
            let mut n: CK_ULONG = 0;
            let rv = p11!(
                self.m,
                C_FindObjects(h, batch.as_mut_ptr(), batch.len() as CK_ULONG, &mut n)
            );
            if rv != CKR_OK {
                let _ = p11!(self.m, C_FindObjectsFinal(h));
                return fail(format!(
                    "C_FindObjects: returned {}, expected CKR_OK",
                    ckr(rv)
                ));
            }
            if n as usize > batch.len() {
                let _ = p11!(self.m, C_FindObjectsFinal(h));
                return fail(format!(
                    "C_FindObjects: reported {n} objects for a buffer of 64"
                ));
            }
            found.extend_from_slice(&batch[..n as usize]);
            if n == 0 || found.len() > 100_000 {
                break;
            }
        }
        let rv = p11!(self.m, C_FindObjectsFinal(h));
        setup("C_FindObjectsFinal", rv)?;
        Ok(found)
    }

    // ----- keys and operations -----

    /// C_GenerateKey must succeed.
    pub fn gen_key(
        &mut self,
        h: CK_SESSION_HANDLE,
        mech: &mut Mech,
        mut t: Tpl,
    ) -> Result<CK_OBJECT_HANDLE, Failure> {
        let mut m = mech.raw();
        let mut attrs = t.attrs();
        let mut k: CK_OBJECT_HANDLE = 0;
        let rv = p11!(
            self.m,
            C_GenerateKey(
                h,
                &mut m,
                attrs.as_mut_ptr(),
                attrs.len() as CK_ULONG,
                &mut k
            )
        );
        setup(&format!("C_GenerateKey({})", ckm(mech.ty())), rv)?;
        Ok(k)
    }

    /// C_GenerateKeyPair, returning the code and the (public, private) handles.
    pub fn gen_pair_rv(
        &mut self,
        h: CK_SESSION_HANDLE,
        mech: &mut Mech,
        public: &mut Tpl,
        private: &mut Tpl,
    ) -> (CK_RV, CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
        let mut m = mech.raw();
        let mut pa = public.attrs();
        let mut qa = private.attrs();
        let (mut p, mut q): (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) = (0, 0);
        let rv = p11!(
            self.m,
            C_GenerateKeyPair(
                h,
                &mut m,
                pa.as_mut_ptr(),
                pa.len() as CK_ULONG,
                qa.as_mut_ptr(),
                qa.len() as CK_ULONG,
                &mut p,
                &mut q
            )
        );
        (rv, p, q)
    }

    /// C_GenerateKeyPair must succeed.
    pub fn gen_pair(
        &mut self,
        h: CK_SESSION_HANDLE,
        mech: &mut Mech,
        mut public: Tpl,
        mut private: Tpl,
    ) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE), Failure> {
        let (rv, p, q) = self.gen_pair_rv(h, mech, &mut public, &mut private);
        setup(&format!("C_GenerateKeyPair({})", ckm(mech.ty())), rv)?;
        Ok((p, q))
    }

    /// Calls an output function twice (length query, then a buffer of that length); both
    /// calls must succeed.
    pub fn output(
        &mut self,
        what: &str,
        mut f: impl FnMut(&Module, *mut u8, *mut CK_ULONG) -> CK_RV,
    ) -> Result<Vec<u8>, Failure> {
        let mut len: CK_ULONG = 0;
        let rv = f(self.m, std::ptr::null_mut(), &mut len);
        setup(&format!("{what} (length query)"), rv)?;
        if len > MAX_OUTPUT {
            return fail(format!("{what}: length query reported {len} bytes"));
        }
        let mut buf = Buf::zeroed(len as usize);
        let rv = f(self.m, buf.ptr(), &mut len);
        setup(what, rv)?;
        if len as usize > buf.len() {
            return fail(format!(
                "{what}: reported {len} bytes written into a {}-byte buffer",
                buf.len()
            ));
        }
        Ok(buf.as_slice()[..len as usize].to_vec())
    }

    /// C_SignInit + C_Sign (two-call); every call must succeed.
    pub fn sign(
        &mut self,
        h: CK_SESSION_HANDLE,
        mech: &mut Mech,
        key: CK_OBJECT_HANDLE,
        data: &[u8],
    ) -> Result<Vec<u8>, Failure> {
        let mut m = mech.raw();
        let rv = p11!(self.m, C_SignInit(h, &mut m, key));
        setup(&format!("C_SignInit({})", ckm(mech.ty())), rv)?;
        let mut d = data.to_vec();
        self.output("C_Sign", |m, out, len| {
            p11!(m, C_Sign(h, d.as_mut_ptr(), d.len() as CK_ULONG, out, len))
        })
    }

    /// C_VerifyInit (must succeed) + C_Verify, returning C_Verify's code.
    pub fn verify_rv(
        &mut self,
        h: CK_SESSION_HANDLE,
        mech: &mut Mech,
        key: CK_OBJECT_HANDLE,
        data: &[u8],
        sig: &[u8],
    ) -> Result<CK_RV, Failure> {
        let mut m = mech.raw();
        let rv = p11!(self.m, C_VerifyInit(h, &mut m, key));
        setup(&format!("C_VerifyInit({})", ckm(mech.ty())), rv)?;
        let mut d = data.to_vec();
        let mut s = sig.to_vec();
        Ok(p11!(
            self.m,
            C_Verify(
                h,
                d.as_mut_ptr(),
                d.len() as CK_ULONG,
                s.as_mut_ptr(),
                s.len() as CK_ULONG
            )
        ))
    }

    /// C_EncryptInit + C_Encrypt (two-call); every call must succeed.
    pub fn encrypt(
        &mut self,
        h: CK_SESSION_HANDLE,
        mech: &mut Mech,
        key: CK_OBJECT_HANDLE,
        data: &[u8],
    ) -> Result<Vec<u8>, Failure> {
        let mut m = mech.raw();
        let rv = p11!(self.m, C_EncryptInit(h, &mut m, key));
        setup(&format!("C_EncryptInit({})", ckm(mech.ty())), rv)?;
        let mut d = data.to_vec();
        self.output("C_Encrypt", |m, out, len| {
            p11!(
                m,
                C_Encrypt(h, d.as_mut_ptr(), d.len() as CK_ULONG, out, len)
            )
        })
    }

    /// C_DecryptInit + C_Decrypt (two-call); every call must succeed.
    pub fn decrypt(
        &mut self,
        h: CK_SESSION_HANDLE,
        mech: &mut Mech,
        key: CK_OBJECT_HANDLE,
        data: &[u8],
    ) -> Result<Vec<u8>, Failure> {
        let mut m = mech.raw();
        let rv = p11!(self.m, C_DecryptInit(h, &mut m, key));
        setup(&format!("C_DecryptInit({})", ckm(mech.ty())), rv)?;
        let mut d = data.to_vec();
        self.output("C_Decrypt", |m, out, len| {
            p11!(
                m,
                C_Decrypt(h, d.as_mut_ptr(), d.len() as CK_ULONG, out, len)
            )
        })
    }

    /// C_DigestInit + C_Digest (two-call); every call must succeed.
    pub fn digest(
        &mut self,
        h: CK_SESSION_HANDLE,
        mech: CK_MECHANISM_TYPE,
        data: &[u8],
    ) -> Result<Vec<u8>, Failure> {
        let mut m = Mech::new(mech).raw();
        let rv = p11!(self.m, C_DigestInit(h, &mut m));
        setup(&format!("C_DigestInit({})", ckm(mech)), rv)?;
        let mut d = data.to_vec();
        self.output("C_Digest", |m, out, len| {
            p11!(
                m,
                C_Digest(h, d.as_mut_ptr(), d.len() as CK_ULONG, out, len)
            )
        })
    }

    /// Ends the case: closes its sessions.
    pub fn finish(&mut self) {
        self.close_all();
    }
}

/// The slot holding an initialised token with this label.
pub fn find_token(m: &Module, label: &str) -> Result<Option<CK_SLOT_ID>, String> {
    let want = label32(label);
    for slot in slot_list(m, true)? {
        let mut info = CK_TOKEN_INFO::default();
        if p11!(m, C_GetTokenInfo(slot, &mut info)) == CKR_OK
            && info.flags & CKF_TOKEN_INITIALIZED != 0
            && info.label == want
        {
            return Ok(Some(slot));
        }
    }
    Ok(None)
}

/// C_GetSlotList with the length-query protocol.
pub fn slot_list(m: &Module, present: bool) -> Result<Vec<CK_SLOT_ID>, String> {
    let flag = if present { CK_TRUE } else { CK_FALSE };
    let mut n: CK_ULONG = 0;
    let rv = p11!(m, C_GetSlotList(flag, std::ptr::null_mut(), &mut n));
    if rv != CKR_OK {
        return Err(format!("C_GetSlotList: {}", ckr(rv)));
    }
    if n > 4096 {
        return Err(format!("C_GetSlotList reported {n} slots"));
    }
    let mut slots = vec![0 as CK_SLOT_ID; n as usize + 1];
    let mut n2 = slots.len() as CK_ULONG;
    let rv = p11!(m, C_GetSlotList(flag, slots.as_mut_ptr(), &mut n2));
    if rv != CKR_OK {
        return Err(format!("C_GetSlotList: {}", ckr(rv)));
    }
    slots.truncate((n2 as usize).min(slots.len()));
    Ok(slots)
}

/// C_GetMechanismList with the length-query protocol.
pub fn mechanism_list(m: &Module, slot: CK_SLOT_ID) -> Result<Vec<CK_MECHANISM_TYPE>, String> {
    let mut n: CK_ULONG = 0;
    let rv = p11!(m, C_GetMechanismList(slot, std::ptr::null_mut(), &mut n));
    if rv != CKR_OK {
        return Err(format!("C_GetMechanismList: {}", ckr(rv)));
    }
    if n > 4096 {
        return Err(format!("C_GetMechanismList reported {n} mechanisms"));
    }
    let mut list = vec![0 as CK_MECHANISM_TYPE; n as usize];
    let rv = p11!(m, C_GetMechanismList(slot, list.as_mut_ptr(), &mut n));
    if rv != CKR_OK {
        return Err(format!("C_GetMechanismList: {}", ckr(rv)));
    }
    list.truncate((n as usize).min(list.len()));
    Ok(list)
}
