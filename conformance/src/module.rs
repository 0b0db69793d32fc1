//! Loading a PKCS#11 module by path and reaching its raw function lists.
//!
//! Every case calls the module through the C function pointers it hands out
//! (`C_GetFunctionList`, and `C_GetInterface` for the 3.0 functions), never through a safe
//! wrapper, so that NULL pointers, bad lengths and bad handles reach the module exactly as a
//! C caller would send them.

use std::path::{Path, PathBuf};

use pkcs11_sys::*;

/// What a call through a NULL function pointer "returns": the spec requires every entry of a
/// function list to be callable, so a NULL entry is treated as an unsupported function (and
/// reported by its own case).
pub const MISSING: CK_RV = CKR_FUNCTION_NOT_SUPPORTED;

type GetFunctionListFn = unsafe extern "C" fn(CK_FUNCTION_LIST_PTR_PTR) -> CK_RV;
type GetInterfaceListFn = unsafe extern "C" fn(CK_INTERFACE_PTR, CK_ULONG_PTR) -> CK_RV;
type GetInterfaceFn =
    unsafe extern "C" fn(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS) -> CK_RV;

/// A module loaded with `dlopen`, with its function lists.
pub struct Module {
    path: PathBuf,
    list: *const CK_FUNCTION_LIST,
    list3: *const CK_FUNCTION_LIST_3_0,
    get_function_list: Option<GetFunctionListFn>,
    get_interface_list: Option<GetInterfaceListFn>,
    get_interface: Option<GetInterfaceFn>,
    // Declared last: dropped (dlclose) after everything that points into it.
    _lib: libloading::Library,
}

/// An all-NULL function list, used when the module hands out none.
static EMPTY_LIST: CK_FUNCTION_LIST = CK_FUNCTION_LIST {
    version: CK_VERSION { major: 0, minor: 0 },
    C_Initialize: None,
    C_Finalize: None,
    C_GetInfo: None,
    C_GetFunctionList: None,
    C_GetSlotList: None,
    C_GetSlotInfo: None,
    C_GetTokenInfo: None,
    C_GetMechanismList: None,
    C_GetMechanismInfo: None,
    C_InitToken: None,
    C_InitPIN: None,
    C_SetPIN: None,
    C_OpenSession: None,
    C_CloseSession: None,
    C_CloseAllSessions: None,
    C_GetSessionInfo: None,
    C_GetOperationState: None,
    C_SetOperationState: None,
    C_Login: None,
    C_Logout: None,
    C_CreateObject: None,
    C_CopyObject: None,
    C_DestroyObject: None,
    C_GetObjectSize: None,
    C_GetAttributeValue: None,
    C_SetAttributeValue: None,
    C_FindObjectsInit: None,
    C_FindObjects: None,
    C_FindObjectsFinal: None,
    C_EncryptInit: None,
    C_Encrypt: None,
    C_EncryptUpdate: None,
    C_EncryptFinal: None,
    C_DecryptInit: None,
    C_Decrypt: None,
    C_DecryptUpdate: None,
    C_DecryptFinal: None,
    C_DigestInit: None,
    C_Digest: None,
    C_DigestUpdate: None,
    C_DigestKey: None,
    C_DigestFinal: None,
    C_SignInit: None,
    C_Sign: None,
    C_SignUpdate: None,
    C_SignFinal: None,
    C_SignRecoverInit: None,
    C_SignRecover: None,
    C_VerifyInit: None,
    C_Verify: None,
    C_VerifyUpdate: None,
    C_VerifyFinal: None,
    C_VerifyRecoverInit: None,
    C_VerifyRecover: None,
    C_DigestEncryptUpdate: None,
    C_DecryptDigestUpdate: None,
    C_SignEncryptUpdate: None,
    C_DecryptVerifyUpdate: None,
    C_GenerateKey: None,
    C_GenerateKeyPair: None,
    C_WrapKey: None,
    C_UnwrapKey: None,
    C_DeriveKey: None,
    C_SeedRandom: None,
    C_GenerateRandom: None,
    C_GetFunctionStatus: None,
    C_CancelFunction: None,
    C_WaitForSlotEvent: None,
};

impl Module {
    /// Loads the module at `path` and fetches its function lists. Fails only when the file
    /// cannot be loaded or exports neither `C_GetFunctionList` nor `C_GetInterface`.
    pub fn load(path: &Path) -> Result<Module, String> {
        // SAFETY: loading a PKCS#11 module runs its initialisers; that is the point of the tool.
        let lib = unsafe { libloading::Library::new(path) }
            .map_err(|e| format!("cannot load {}: {e}", path.display()))?;
        // SAFETY: the symbols have the signatures the PKCS#11 specification gives them.
        let get_function_list: Option<GetFunctionListFn> =
            unsafe { lib.get::<GetFunctionListFn>(b"C_GetFunctionList\0") }
                .ok()
                .map(|s| *s);
        let get_interface_list: Option<GetInterfaceListFn> =
            unsafe { lib.get::<GetInterfaceListFn>(b"C_GetInterfaceList\0") }
                .ok()
                .map(|s| *s);
        let get_interface: Option<GetInterfaceFn> =
            unsafe { lib.get::<GetInterfaceFn>(b"C_GetInterface\0") }
                .ok()
                .map(|s| *s);
        if get_function_list.is_none() && get_interface.is_none() {
            return Err(format!(
                "{} exports neither C_GetFunctionList nor C_GetInterface: not a PKCS#11 module",
                path.display()
            ));
        }
        let mut list: CK_FUNCTION_LIST_PTR = std::ptr::null_mut();
        if let Some(f) = get_function_list {
            // SAFETY: `list` is a valid out-pointer.
            let rv = unsafe { f(&mut list) };
            if rv != CKR_OK {
                list = std::ptr::null_mut();
            }
        }
        let mut list3: *const CK_FUNCTION_LIST_3_0 = std::ptr::null();
        if let Some(f) = get_interface {
            let mut iface: CK_INTERFACE_PTR = std::ptr::null_mut();
            let mut name = *b"PKCS 11\0";
            let mut version = CK_VERSION { major: 3, minor: 0 };
            // SAFETY: valid name, version and out-pointer.
            let rv = unsafe { f(name.as_mut_ptr(), &mut version, &mut iface, 0) };
            if rv == CKR_OK && !iface.is_null() {
                // SAFETY: the module returned a pointer to its interface.
                let fl = unsafe { (*iface).pFunctionList } as *const CK_FUNCTION_LIST_3_0;
                // SAFETY: every function list starts with its version.
                if !fl.is_null() && unsafe { (*fl).version.major } >= 3 {
                    list3 = fl;
                }
            }
        }
        if list.is_null() && !list3.is_null() {
            // The 3.0 list starts with the 2.40 list's members, in the same order.
            list = list3 as *mut CK_FUNCTION_LIST;
        }
        Ok(Module {
            path: path.to_path_buf(),
            list,
            list3,
            get_function_list,
            get_interface_list,
            get_interface,
            _lib: lib,
        })
    }

    /// The module's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The 2.40 function list (an all-NULL list when the module gave none).
    pub fn f(&self) -> &CK_FUNCTION_LIST {
        if self.list.is_null() {
            &EMPTY_LIST
        } else {
            // SAFETY: the module's function list is immutable and lives as long as the library.
            unsafe { &*self.list }
        }
    }

    /// The 3.0 function list, when the module offers the "PKCS 11" 3.0 interface.
    pub fn f3(&self) -> Option<&CK_FUNCTION_LIST_3_0> {
        if self.list3.is_null() {
            None
        } else {
            // SAFETY: as for `f`.
            Some(unsafe { &*self.list3 })
        }
    }

    /// Whether `C_GetFunctionList` gave a list.
    pub fn has_function_list(&self) -> bool {
        !self.list.is_null() && self.get_function_list.is_some()
    }

    /// The exported `C_GetFunctionList`.
    pub fn get_function_list(&self) -> Option<GetFunctionListFn> {
        self.get_function_list
    }

    /// The exported `C_GetInterfaceList` (PKCS#11 3.0).
    pub fn get_interface_list(&self) -> Option<GetInterfaceListFn> {
        self.get_interface_list
    }

    /// The exported `C_GetInterface` (PKCS#11 3.0).
    pub fn get_interface(&self) -> Option<GetInterfaceFn> {
        self.get_interface
    }
}

/// Calls a function of the module's 2.40 list: `p11!(m, C_Login(h, CKU_USER, p, n))`. A NULL
/// entry yields [`MISSING`].
#[macro_export]
macro_rules! p11 {
    ($m:expr, $f:ident ( $($arg:expr),* $(,)? )) => {
        match $m.f().$f {
            Some(func) => unsafe { func($($arg),*) },
            None => $crate::module::MISSING,
        }
    };
}

/// Calls a function of the module's 3.0 list (C_SessionCancel, C_LoginUser, ...). Without a
/// 3.0 interface, or with a NULL entry, yields [`MISSING`].
#[macro_export]
macro_rules! p11v3 {
    ($m:expr, $f:ident ( $($arg:expr),* $(,)? )) => {
        match $m.f3().and_then(|l| l.$f) {
            Some(func) => unsafe { func($($arg),*) },
            None => $crate::module::MISSING,
        }
    };
}
