//! Raw calls into a module's function list, for the error paths cryptoki's safe API cannot
//! express: `C_Sign` without `C_SignInit`, a made-up session or object handle, a length query
//! with a NULL buffer, a buffer that is too small. This is the harness's only `unsafe` code.
//!
//! The module must already be loaded and initialised through cryptoki: [`Raw::load`] opens the
//! same shared object again (the dynamic loader returns the same instance) and fetches its
//! `C_GetFunctionList` table.
#![allow(unsafe_code)]

use std::path::Path;
use std::ptr;

use anyhow::{anyhow, Result};
use cryptoki_sys::{
    CKR_FUNCTION_NOT_SUPPORTED, CKR_OK, CK_ATTRIBUTE, CK_ATTRIBUTE_TYPE, CK_FLAGS,
    CK_FUNCTION_LIST, CK_MECHANISM, CK_MECHANISM_TYPE, CK_OBJECT_HANDLE, CK_RV, CK_SESSION_HANDLE,
    CK_SESSION_INFO, CK_SLOT_ID, CK_ULONG,
};

/// The function list of a loaded module.
pub struct Raw {
    _lib: cryptoki_sys::Pkcs11,
    list: *const CK_FUNCTION_LIST,
}

/// The result of a `C_GetAttributeValue` of one attribute: the return value and `ulValueLen`.
#[derive(Clone, Copy, Debug)]
pub struct AttrRead {
    /// The return value.
    pub rv: CK_RV,
    /// `ulValueLen` after the call.
    pub len: CK_ULONG,
}

/// Calls a function of the list, or returns `CKR_FUNCTION_NOT_SUPPORTED` when it is NULL.
macro_rules! call {
    ($self:expr, $f:ident $(, $arg:expr)* $(,)?) => {{
        // SAFETY: `list` points to the module's static function list, valid while the module
        // stays loaded (`_lib` holds it); every pointer argument below points to live memory of
        // the size the call is told.
        match unsafe { (*$self.list).$f } {
            Some(f) => unsafe { f($($arg),*) },
            None => CKR_FUNCTION_NOT_SUPPORTED,
        }
    }};
}

impl Raw {
    /// Opens the module at `path` again and fetches its function list.
    pub fn load(path: &Path) -> Result<Raw> {
        // SAFETY: loading a PKCS#11 module runs its initialisers, as cryptoki already did for
        // the same file; the module is kept loaded for the life of the process.
        let lib = unsafe { cryptoki_sys::Pkcs11::new(path) }
            .map_err(|e| anyhow!("cannot load {}: {e}", path.display()))?;
        let get = lib
            .C_GetFunctionList
            .as_ref()
            .map_err(|e| anyhow!("{} has no C_GetFunctionList: {e}", path.display()))?;
        let mut list: *mut CK_FUNCTION_LIST = ptr::null_mut();
        // SAFETY: C_GetFunctionList writes one pointer to `list`.
        let rv = unsafe { get(&mut list) };
        if rv != CKR_OK || list.is_null() {
            return Err(anyhow!(
                "C_GetFunctionList of {} failed: {}",
                path.display(),
                crate::ckr::name(rv)
            ));
        }
        Ok(Raw { _lib: lib, list })
    }

    /// `C_Sign` of `data`, with a signature buffer of `sig_len` bytes (`None`: NULL, a length
    /// query); returns the return value and the length the module wrote back.
    pub fn sign(&self, s: CK_SESSION_HANDLE, data: &[u8], sig_len: Option<usize>) -> (CK_RV, u64) {
        let mut data = data.to_vec();
        let mut buf = vec![0u8; sig_len.unwrap_or(0)];
        let mut len = sig_len.unwrap_or(0) as CK_ULONG;
        let out = if sig_len.is_some() {
            buf.as_mut_ptr()
        } else {
            ptr::null_mut()
        };
        let rv = call!(
            self,
            C_Sign,
            s,
            data.as_mut_ptr(),
            data.len() as CK_ULONG,
            out,
            &mut len
        );
        (rv, len)
    }

    /// `C_Verify` of `data` against `sig`.
    pub fn verify(&self, s: CK_SESSION_HANDLE, data: &[u8], sig: &[u8]) -> CK_RV {
        let mut data = data.to_vec();
        let mut sig = sig.to_vec();
        call!(
            self,
            C_Verify,
            s,
            data.as_mut_ptr(),
            data.len() as CK_ULONG,
            sig.as_mut_ptr(),
            sig.len() as CK_ULONG
        )
    }

    /// `C_SignInit` with a parameterless mechanism.
    pub fn sign_init(
        &self,
        s: CK_SESSION_HANDLE,
        m: CK_MECHANISM_TYPE,
        key: CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let mut mech = CK_MECHANISM {
            mechanism: m,
            pParameter: ptr::null_mut(),
            ulParameterLen: 0,
        };
        call!(self, C_SignInit, s, &mut mech, key)
    }

    /// `C_GetSessionInfo`.
    pub fn session_info(&self, s: CK_SESSION_HANDLE) -> CK_RV {
        let mut info = CK_SESSION_INFO {
            slotID: 0,
            state: 0,
            flags: 0,
            ulDeviceError: 0,
        };
        call!(self, C_GetSessionInfo, s, &mut info)
    }

    /// `C_OpenSession` with the given flags; closes the session again if one was opened.
    pub fn open_session(&self, slot: CK_SLOT_ID, flags: CK_FLAGS) -> CK_RV {
        let mut h: CK_SESSION_HANDLE = 0;
        let rv = call!(
            self,
            C_OpenSession,
            slot,
            flags,
            ptr::null_mut(),
            None,
            &mut h
        );
        if rv == CKR_OK {
            let _ = self.close_session(h);
        }
        rv
    }

    /// `C_CloseSession`.
    pub fn close_session(&self, s: CK_SESSION_HANDLE) -> CK_RV {
        call!(self, C_CloseSession, s)
    }

    /// `C_FindObjects` for up to one object (without or after `C_FindObjectsInit`).
    pub fn find_objects(&self, s: CK_SESSION_HANDLE) -> CK_RV {
        let mut h: CK_OBJECT_HANDLE = 0;
        let mut n: CK_ULONG = 0;
        call!(self, C_FindObjects, s, &mut h, 1, &mut n)
    }

    /// `C_GetAttributeValue` of one attribute into a buffer of `buf` bytes (`None`: NULL).
    pub fn get_attribute(
        &self,
        s: CK_SESSION_HANDLE,
        obj: CK_OBJECT_HANDLE,
        t: CK_ATTRIBUTE_TYPE,
        buf: Option<usize>,
    ) -> AttrRead {
        let mut value = vec![0u8; buf.unwrap_or(0)];
        let mut attr = CK_ATTRIBUTE {
            type_: t,
            pValue: if buf.is_some() {
                value.as_mut_ptr().cast()
            } else {
                ptr::null_mut()
            },
            ulValueLen: buf.unwrap_or(0) as CK_ULONG,
        };
        let rv = call!(self, C_GetAttributeValue, s, obj, &mut attr, 1);
        AttrRead {
            rv,
            len: attr.ulValueLen,
        }
    }

    /// `C_GetAttributeValue` of two attributes with ample buffers: the return value and each
    /// `ulValueLen`, to see whether a module fills the readable one next to a sensitive one.
    pub fn get_two_attributes(
        &self,
        s: CK_SESSION_HANDLE,
        obj: CK_OBJECT_HANDLE,
        t: [CK_ATTRIBUTE_TYPE; 2],
    ) -> (CK_RV, [CK_ULONG; 2]) {
        let mut a = vec![0u8; 4096];
        let mut b = vec![0u8; 4096];
        let mut attrs = [
            CK_ATTRIBUTE {
                type_: t[0],
                pValue: a.as_mut_ptr().cast(),
                ulValueLen: a.len() as CK_ULONG,
            },
            CK_ATTRIBUTE {
                type_: t[1],
                pValue: b.as_mut_ptr().cast(),
                ulValueLen: b.len() as CK_ULONG,
            },
        ];
        let rv = call!(self, C_GetAttributeValue, s, obj, attrs.as_mut_ptr(), 2);
        (rv, [attrs[0].ulValueLen, attrs[1].ulValueLen])
    }
}
