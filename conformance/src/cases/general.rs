//! General-purpose functions: function lists and interfaces (§5.2-5.3), C_Initialize,
//! C_Finalize, C_GetInfo (§5.4), and the legacy parallel functions (§5.16).

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};

use pkcs11_sys::*;

use super::Reg;
use crate::case::*;
use crate::ctx::Ctx;
use crate::p11;

/// The cases of this chapter, in run order.
pub fn cases() -> Vec<Case> {
    let mut r = Reg::new(Chapter::General);
    r.add(
        "GEN-001",
        "5.2 C_GetFunctionList",
        "C_GetFunctionList(NULL) is refused",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let Some(f) = ctx.m.get_function_list() else {
                return fail("the module does not export C_GetFunctionList");
            };
            // SAFETY: a NULL out-pointer is what is being tested.
            let got = unsafe { f(std::ptr::null_mut()) };
            rv("C_GetFunctionList(NULL)", got, CKR_ARGUMENTS_BAD)
        },
    );
    r.add(
        "GEN-002",
        "5.2 C_GetFunctionList",
        "every entry of the function list is callable (no NULL pointer)",
        "68 non-NULL entries",
        |ctx| {
            if !ctx.m.has_function_list() {
                return fail("C_GetFunctionList did not return a function list");
            }
            let missing = null_entries(ctx.m.f());
            ensure(missing.is_empty(), || {
                format!("NULL entries: {}", missing.join(", "))
            })
        },
    );
    r.add(
        "GEN-003",
        "5.3 C_GetInterfaceList",
        "count query, CKR_BUFFER_TOO_SMALL with the needed count, then the list",
        "CKR_OK / CKR_BUFFER_TOO_SMALL / CKR_OK, interfaces with function lists",
        |ctx| {
            let Some(f) = ctx.m.get_interface_list() else {
                return na("the module does not export C_GetInterfaceList (PKCS#11 2.x)");
            };
            let mut n: CK_ULONG = 0;
            // SAFETY: valid out-pointer; NULL list asks for the count.
            rv(
                "C_GetInterfaceList(NULL, &n)",
                unsafe { f(std::ptr::null_mut(), &mut n) },
                CKR_OK,
            )?;
            ensure((1..=64).contains(&n), || format!("interface count {n}"))?;
            let mut list = vec![
                CK_INTERFACE {
                    pInterfaceName: std::ptr::null_mut(),
                    pFunctionList: std::ptr::null_mut(),
                    flags: 0
                };
                n as usize
            ];
            let mut small = n - 1;
            // SAFETY: the buffer holds `n` entries; `small` < n is announced.
            let got = unsafe { f(list.as_mut_ptr(), &mut small) };
            rv(
                "C_GetInterfaceList(buffer one too small)",
                got,
                CKR_BUFFER_TOO_SMALL,
            )?;
            ensure(small == n, || {
                format!("count after CKR_BUFFER_TOO_SMALL: {small}, expected {n}")
            })?;
            let mut full = n;
            // SAFETY: as above.
            rv(
                "C_GetInterfaceList(list)",
                unsafe { f(list.as_mut_ptr(), &mut full) },
                CKR_OK,
            )?;
            for i in &list[..full.min(n) as usize] {
                ensure(
                    !i.pInterfaceName.is_null() && !i.pFunctionList.is_null(),
                    || "an interface has a NULL name or function list".to_string(),
                )?;
                // SAFETY: every function list starts with its CK_VERSION.
                let v = unsafe { *(i.pFunctionList as *const CK_VERSION) };
                ensure(v.major == 2 || v.major == 3, || {
                    format!("interface version {}.{}", v.major, v.minor)
                })?;
            }
            Ok(())
        },
    );
    r.add(
        "GEN-004",
        "5.3 C_GetInterfaceList",
        "C_GetInterfaceList with a NULL count pointer",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let Some(f) = ctx.m.get_interface_list() else {
                return na("the module does not export C_GetInterfaceList (PKCS#11 2.x)");
            };
            let mut one = [CK_INTERFACE {
                pInterfaceName: std::ptr::null_mut(),
                pFunctionList: std::ptr::null_mut(),
                flags: 0,
            }];
            // SAFETY: the NULL count is what is tested.
            let got = unsafe { f(one.as_mut_ptr(), std::ptr::null_mut()) };
            rv("C_GetInterfaceList(list, NULL)", got, CKR_ARGUMENTS_BAD)
        },
    );
    r.add(
        "GEN-005",
        "5.3 C_GetInterface",
        "the default interface (NULL name and version) is a PKCS#11 function list",
        "CKR_OK, non-NULL name and function list of version 2.x or 3.x",
        |ctx| {
            let Some(f) = ctx.m.get_interface() else {
                return na("the module does not export C_GetInterface (PKCS#11 2.x)");
            };
            let mut iface: CK_INTERFACE_PTR = std::ptr::null_mut();
            // SAFETY: valid out-pointer.
            let got = unsafe { f(std::ptr::null_mut(), std::ptr::null_mut(), &mut iface, 0) };
            rv("C_GetInterface(NULL, NULL)", got, CKR_OK)?;
            ensure(!iface.is_null(), || "no interface returned".into())?;
            // SAFETY: the module returned a pointer to its interface.
            let i = unsafe { *iface };
            ensure(
                !i.pInterfaceName.is_null() && !i.pFunctionList.is_null(),
                || "the default interface has a NULL name or function list".into(),
            )?;
            // SAFETY: a function list starts with its version.
            let v = unsafe { *(i.pFunctionList as *const CK_VERSION) };
            ensure(v.major == 2 || v.major == 3, || {
                format!("version {}.{}", v.major, v.minor)
            })
        },
    );
    r.add(
        "GEN-006",
        "5.3 C_GetInterface",
        "C_GetInterface with a NULL ppInterface",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let Some(f) = ctx.m.get_interface() else {
                return na("the module does not export C_GetInterface (PKCS#11 2.x)");
            };
            // SAFETY: the NULL out-pointer is what is tested.
            let got = unsafe {
                f(
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    0,
                )
            };
            rv("C_GetInterface(.., NULL)", got, CKR_ARGUMENTS_BAD)
        },
    );
    r.add(
        "GEN-007",
        "5.3 C_GetInterface",
        "every listed interface is returned by name and version; a 3.x list has every 3.0 entry",
        "CKR_OK and the same version; no NULL entry",
        |ctx| {
            let (Some(list_fn), Some(get)) = (ctx.m.get_interface_list(), ctx.m.get_interface()) else {
                return na("the module has no PKCS#11 3.0 interface functions");
            };
            let mut n: CK_ULONG = 0;
            // SAFETY: count query.
            setup("C_GetInterfaceList", unsafe { list_fn(std::ptr::null_mut(), &mut n) })?;
            if n == 0 || n > 64 {
                return fail(format!("C_GetInterfaceList reported {n} interfaces"));
            }
            let mut list = vec![
                CK_INTERFACE {
                    pInterfaceName: std::ptr::null_mut(),
                    pFunctionList: std::ptr::null_mut(),
                    flags: 0
                };
                n as usize
            ];
            // SAFETY: the buffer holds `n` entries.
            setup("C_GetInterfaceList", unsafe { list_fn(list.as_mut_ptr(), &mut n) })?;
            for i in &list[..(n as usize).min(list.len())] {
                if i.pFunctionList.is_null() || i.pInterfaceName.is_null() {
                    return fail("an interface has a NULL name or function list");
                }
                // SAFETY: as in GEN-003.
                let mut v = unsafe { *(i.pFunctionList as *const CK_VERSION) };
                let mut got: CK_INTERFACE_PTR = std::ptr::null_mut();
                // SAFETY: name from the module, valid version and out-pointer.
                let r = unsafe { get(i.pInterfaceName, &mut v, &mut got, 0) };
                rv(&format!("C_GetInterface(listed {}.{})", v.major, v.minor), r, CKR_OK)?;
                if got.is_null() {
                    return fail("C_GetInterface returned CKR_OK and no interface");
                }
                // SAFETY: as above.
                let gv = unsafe { *((*got).pFunctionList as *const CK_VERSION) };
                ensure(gv.major == v.major && gv.minor == v.minor, || {
                    format!("asked for {}.{}, got {}.{}", v.major, v.minor, gv.major, gv.minor)
                })?;
                if v.major == 3 {
                    // SAFETY: a 3.x function list is a CK_FUNCTION_LIST_3_0.
                    let l = unsafe { &*(i.pFunctionList as *const CK_FUNCTION_LIST_3_0) };
                    let mut missing = Vec::new();
                    macro_rules! need { ($($f:ident),*) => { $( if l.$f.is_none() { missing.push(stringify!($f)); } )* } }
                    need!(C_GetInterfaceList, C_GetInterface, C_LoginUser, C_SessionCancel,
                        C_MessageEncryptInit, C_EncryptMessage, C_EncryptMessageBegin,
                        C_EncryptMessageNext, C_MessageEncryptFinal, C_MessageDecryptInit,
                        C_DecryptMessage, C_DecryptMessageBegin, C_DecryptMessageNext,
                        C_MessageDecryptFinal, C_MessageSignInit, C_SignMessage,
                        C_SignMessageBegin, C_SignMessageNext, C_MessageSignFinal,
                        C_MessageVerifyInit, C_VerifyMessage, C_VerifyMessageBegin,
                        C_VerifyMessageNext, C_MessageVerifyFinal);
                    ensure(missing.is_empty(), || format!("NULL 3.0 entries: {}", missing.join(", ")))?;
                }
            }
            Ok(())
        },
    );
    r.add(
        "GEN-008",
        "5.4 C_GetInfo",
        "C_GetInfo(NULL)",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            rv(
                "C_GetInfo(NULL)",
                p11!(ctx.m, C_GetInfo(std::ptr::null_mut())),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "GEN-009",
        "5.4 C_GetInfo / 3.2 CK_INFO",
        "CK_INFO: Cryptoki 2.x or 3.x, blank-padded text without NUL, flags zero",
        "CKR_OK and well-formed fields",
        |ctx| {
            let mut info = CK_INFO::default();
            rv("C_GetInfo", p11!(ctx.m, C_GetInfo(&mut info)), CKR_OK)?;
            let v = info.cryptokiVersion;
            ensure(v.major == 2 || v.major == 3, || {
                format!("cryptokiVersion {}.{}", v.major, v.minor)
            })?;
            padded_text("manufacturerID", &info.manufacturerID)?;
            padded_text("libraryDescription", &info.libraryDescription)?;
            ensure(info.flags == 0, || {
                format!("flags 0x{:x}, expected 0 (reserved)", info.flags)
            })
        },
    );
    r.add(
        "GEN-021",
        "5.16 C_GetFunctionStatus",
        "legacy C_GetFunctionStatus on a valid session",
        "CKR_FUNCTION_NOT_PARALLEL",
        |ctx| {
            let h = ctx.open(false)?;
            rv(
                "C_GetFunctionStatus",
                p11!(ctx.m, C_GetFunctionStatus(h)),
                CKR_FUNCTION_NOT_PARALLEL,
            )
        },
    );
    r.add(
        "GEN-022",
        "5.16 C_CancelFunction",
        "legacy C_CancelFunction on a valid session",
        "CKR_FUNCTION_NOT_PARALLEL",
        |ctx| {
            let h = ctx.open(false)?;
            rv(
                "C_CancelFunction",
                p11!(ctx.m, C_CancelFunction(h)),
                CKR_FUNCTION_NOT_PARALLEL,
            )
        },
    );

    // Cases that need a process where C_Initialize has not been called.
    r.mode(Mode::Fresh);
    r.add(
        "GEN-010",
        "5.4 C_GetInfo",
        "C_GetInfo before C_Initialize",
        "CKR_CRYPTOKI_NOT_INITIALIZED",
        |ctx| {
            let mut info = CK_INFO::default();
            rv(
                "C_GetInfo",
                p11!(ctx.m, C_GetInfo(&mut info)),
                CKR_CRYPTOKI_NOT_INITIALIZED,
            )
        },
    );
    r.add(
        "GEN-011",
        "5.4 C_Initialize",
        "C_GetSlotList and C_OpenSession before C_Initialize",
        "CKR_CRYPTOKI_NOT_INITIALIZED",
        |ctx| {
            let mut n: CK_ULONG = 0;
            rv(
                "C_GetSlotList",
                p11!(ctx.m, C_GetSlotList(CK_TRUE, std::ptr::null_mut(), &mut n)),
                CKR_CRYPTOKI_NOT_INITIALIZED,
            )?;
            let mut h: CK_SESSION_HANDLE = 0;
            rv(
                "C_OpenSession",
                p11!(
                    ctx.m,
                    C_OpenSession(0, CKF_SERIAL_SESSION, std::ptr::null_mut(), None, &mut h)
                ),
                CKR_CRYPTOKI_NOT_INITIALIZED,
            )
        },
    );
    r.add(
        "GEN-012",
        "5.4 C_Finalize",
        "C_Finalize before C_Initialize",
        "CKR_CRYPTOKI_NOT_INITIALIZED",
        |ctx| {
            rv(
                "C_Finalize",
                p11!(ctx.m, C_Finalize(std::ptr::null_mut())),
                CKR_CRYPTOKI_NOT_INITIALIZED,
            )
        },
    );
    r.add(
        "GEN-013",
        "5.4 C_Initialize",
        "CK_C_INITIALIZE_ARGS with non-NULL pReserved; the module stays uninitialised",
        "CKR_ARGUMENTS_BAD, then C_Initialize(NULL) = CKR_OK",
        |ctx| {
            let mut reserved = 0u8;
            let mut args = init_args(false, 0);
            args.pReserved = &mut reserved as *mut u8 as *mut c_void;
            let got = p11!(ctx.m, C_Initialize(&mut args as *mut _ as *mut c_void));
            rv("C_Initialize(pReserved != NULL)", got, CKR_ARGUMENTS_BAD)?;
            rv(
                "C_Initialize(NULL) afterwards",
                p11!(ctx.m, C_Initialize(std::ptr::null_mut())),
                CKR_OK,
            )
        },
    );
    r.add(
        "GEN-014",
        "5.4 C_Initialize",
        "CK_C_INITIALIZE_ARGS with only some of the four mutex callbacks",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let mut args = init_args(true, 0);
            args.LockMutex = None;
            args.UnlockMutex = None;
            let got = p11!(ctx.m, C_Initialize(&mut args as *mut _ as *mut c_void));
            rv("C_Initialize(2 of 4 callbacks)", got, CKR_ARGUMENTS_BAD)
        },
    );
    r.add(
        "GEN-015",
        "5.4 C_Initialize",
        "a second C_Initialize",
        "CKR_CRYPTOKI_ALREADY_INITIALIZED",
        |ctx| {
            setup(
                "C_Initialize",
                p11!(ctx.m, C_Initialize(std::ptr::null_mut())),
            )?;
            rv(
                "second C_Initialize",
                p11!(ctx.m, C_Initialize(std::ptr::null_mut())),
                CKR_CRYPTOKI_ALREADY_INITIALIZED,
            )
        },
    );
    r.add(
        "GEN-016",
        "5.4 C_Finalize",
        "C_Finalize(non-NULL) refused; C_Finalize(NULL) ends; initialise/finalise again",
        "CKR_ARGUMENTS_BAD, CKR_OK, then CKR_CRYPTOKI_NOT_INITIALIZED, CKR_OK",
        |ctx| {
            setup(
                "C_Initialize",
                p11!(ctx.m, C_Initialize(std::ptr::null_mut())),
            )?;
            let mut x = 0u8;
            rv(
                "C_Finalize(pReserved != NULL)",
                p11!(ctx.m, C_Finalize(&mut x as *mut u8 as *mut c_void)),
                CKR_ARGUMENTS_BAD,
            )?;
            rv(
                "C_Finalize(NULL)",
                p11!(ctx.m, C_Finalize(std::ptr::null_mut())),
                CKR_OK,
            )?;
            let mut info = CK_INFO::default();
            rv(
                "C_GetInfo after C_Finalize",
                p11!(ctx.m, C_GetInfo(&mut info)),
                CKR_CRYPTOKI_NOT_INITIALIZED,
            )?;
            rv(
                "C_Initialize again",
                p11!(ctx.m, C_Initialize(std::ptr::null_mut())),
                CKR_OK,
            )?;
            rv("C_GetInfo", p11!(ctx.m, C_GetInfo(&mut info)), CKR_OK)
        },
    );
    r.add(
        "GEN-017",
        "5.4 C_Initialize",
        "CKF_OS_LOCKING_OK without callbacks",
        "CKR_OK",
        |ctx| {
            let mut args = init_args(false, CKF_OS_LOCKING_OK);
            rv(
                "C_Initialize(CKF_OS_LOCKING_OK)",
                p11!(ctx.m, C_Initialize(&mut args as *mut _ as *mut c_void)),
                CKR_OK,
            )
        },
    );
    r.add(
        "GEN-018",
        "5.4 C_Initialize",
        "the four mutex callbacks without CKF_OS_LOCKING_OK: used, or refused",
        "CKR_OK (and the module works) or CKR_CANT_LOCK",
        |ctx| {
            let mut args = init_args(true, 0);
            let got = p11!(ctx.m, C_Initialize(&mut args as *mut _ as *mut c_void));
            rv_in("C_Initialize(callbacks)", got, &[CKR_OK, CKR_CANT_LOCK])?;
            if got == CKR_OK {
                works_after_init(ctx)?;
            }
            Ok(())
        },
    );
    r.add(
        "GEN-019",
        "5.4 C_Initialize",
        "the four mutex callbacks with CKF_OS_LOCKING_OK",
        "CKR_OK and the module works",
        |ctx| {
            let mut args = init_args(true, CKF_OS_LOCKING_OK);
            let got = p11!(ctx.m, C_Initialize(&mut args as *mut _ as *mut c_void));
            rv("C_Initialize(callbacks + CKF_OS_LOCKING_OK)", got, CKR_OK)?;
            works_after_init(ctx)
        },
    );
    r.add(
        "GEN-020",
        "5.4 C_Initialize",
        "CKF_LIBRARY_CANT_CREATE_OS_THREADS",
        "CKR_OK or CKR_NEED_TO_CREATE_THREADS",
        |ctx| {
            let mut args = init_args(false, CKF_LIBRARY_CANT_CREATE_OS_THREADS);
            let got = p11!(ctx.m, C_Initialize(&mut args as *mut _ as *mut c_void));
            rv_in(
                "C_Initialize(CANT_CREATE_OS_THREADS)",
                got,
                &[CKR_OK, CKR_NEED_TO_CREATE_THREADS],
            )
        },
    );
    r.add(
        "GEN-023",
        "5.4 C_Finalize",
        "session handles do not survive C_Finalize / C_Initialize",
        "CKR_SESSION_HANDLE_INVALID",
        |ctx| {
            init(ctx)?;
            let h = ctx.open(false)?;
            setup("C_Finalize", p11!(ctx.m, C_Finalize(std::ptr::null_mut())))?;
            setup(
                "C_Initialize",
                p11!(ctx.m, C_Initialize(std::ptr::null_mut())),
            )?;
            let mut info = CK_SESSION_INFO::default();
            rv(
                "C_GetSessionInfo(old handle)",
                p11!(ctx.m, C_GetSessionInfo(h, &mut info)),
                CKR_SESSION_HANDLE_INVALID,
            )
        },
    );
    more(&mut r);
    r.done()
}

/// C_Initialize(NULL) and find the provisioned token (Fresh cases).
pub fn init(ctx: &mut Ctx) -> CaseResult {
    setup(
        "C_Initialize(NULL)",
        p11!(ctx.m, C_Initialize(std::ptr::null_mut())),
    )?;
    ctx.locate()
}

/// After an accepted C_Initialize: the module answers, opens and closes a session.
fn works_after_init(ctx: &mut Ctx) -> CaseResult {
    let mut info = CK_INFO::default();
    rv("C_GetInfo", p11!(ctx.m, C_GetInfo(&mut info)), CKR_OK)?;
    ctx.locate()?;
    let h = ctx.open(true)?;
    let mut si = CK_SESSION_INFO::default();
    rv(
        "C_GetSessionInfo",
        p11!(ctx.m, C_GetSessionInfo(h, &mut si)),
        CKR_OK,
    )?;
    rv("C_CloseSession", ctx.close(h), CKR_OK)
}

/// A fixed-size text field must be printable ASCII/UTF-8 without NUL bytes.
pub fn padded_text(what: &str, b: &[u8]) -> CaseResult {
    ensure(!b.contains(&0), || {
        format!("{what} contains a NUL byte (fields are blank-padded)")
    })?;
    ensure(std::str::from_utf8(b).is_ok(), || {
        format!("{what} is not UTF-8")
    })
}

fn init_args(callbacks: bool, flags: CK_FLAGS) -> CK_C_INITIALIZE_ARGS {
    CK_C_INITIALIZE_ARGS {
        CreateMutex: if callbacks { Some(create_mutex) } else { None },
        DestroyMutex: if callbacks { Some(destroy_mutex) } else { None },
        LockMutex: if callbacks { Some(lock_mutex) } else { None },
        UnlockMutex: if callbacks { Some(unlock_mutex) } else { None },
        flags,
        pReserved: std::ptr::null_mut(),
    }
}

unsafe extern "C" fn create_mutex(pp: CK_VOID_PTR_PTR) -> CK_RV {
    if pp.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    *pp = Box::into_raw(Box::new(AtomicBool::new(false))) as CK_VOID_PTR;
    CKR_OK
}

unsafe extern "C" fn destroy_mutex(p: CK_VOID_PTR) -> CK_RV {
    if p.is_null() {
        return CKR_MUTEX_BAD;
    }
    drop(Box::from_raw(p as *mut AtomicBool));
    CKR_OK
}

unsafe extern "C" fn lock_mutex(p: CK_VOID_PTR) -> CK_RV {
    if p.is_null() {
        return CKR_MUTEX_BAD;
    }
    let m = &*(p as *const AtomicBool);
    while m
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::thread::yield_now();
    }
    CKR_OK
}

unsafe extern "C" fn unlock_mutex(p: CK_VOID_PTR) -> CK_RV {
    if p.is_null() {
        return CKR_MUTEX_BAD;
    }
    let m = &*(p as *const AtomicBool);
    if m.swap(false, Ordering::Release) {
        CKR_OK
    } else {
        CKR_MUTEX_NOT_LOCKED
    }
}

/// The names of NULL entries of a 2.40 function list.
fn null_entries(l: &CK_FUNCTION_LIST) -> Vec<&'static str> {
    let mut v = Vec::new();
    macro_rules! check { ($($f:ident),* $(,)?) => { $( if l.$f.is_none() { v.push(stringify!($f)); } )* } }
    check!(
        C_Initialize,
        C_Finalize,
        C_GetInfo,
        C_GetFunctionList,
        C_GetSlotList,
        C_GetSlotInfo,
        C_GetTokenInfo,
        C_GetMechanismList,
        C_GetMechanismInfo,
        C_InitToken,
        C_InitPIN,
        C_SetPIN,
        C_OpenSession,
        C_CloseSession,
        C_CloseAllSessions,
        C_GetSessionInfo,
        C_GetOperationState,
        C_SetOperationState,
        C_Login,
        C_Logout,
        C_CreateObject,
        C_CopyObject,
        C_DestroyObject,
        C_GetObjectSize,
        C_GetAttributeValue,
        C_SetAttributeValue,
        C_FindObjectsInit,
        C_FindObjects,
        C_FindObjectsFinal,
        C_EncryptInit,
        C_Encrypt,
        C_EncryptUpdate,
        C_EncryptFinal,
        C_DecryptInit,
        C_Decrypt,
        C_DecryptUpdate,
        C_DecryptFinal,
        C_DigestInit,
        C_Digest,
        C_DigestUpdate,
        C_DigestKey,
        C_DigestFinal,
        C_SignInit,
        C_Sign,
        C_SignUpdate,
        C_SignFinal,
        C_SignRecoverInit,
        C_SignRecover,
        C_VerifyInit,
        C_Verify,
        C_VerifyUpdate,
        C_VerifyFinal,
        C_VerifyRecoverInit,
        C_VerifyRecover,
        C_DigestEncryptUpdate,
        C_DecryptDigestUpdate,
        C_SignEncryptUpdate,
        C_DecryptVerifyUpdate,
        C_GenerateKey,
        C_GenerateKeyPair,
        C_WrapKey,
        C_UnwrapKey,
        C_DeriveKey,
        C_SeedRandom,
        C_GenerateRandom,
        C_GetFunctionStatus,
        C_CancelFunction,
        C_WaitForSlotEvent,
    );
    v
}

fn more(r: &mut Reg) {
    r.mode(Mode::Fresh);
    r.add(
        "GEN-024",
        "5.4 C_Initialize",
        "before C_Initialize, every function that needs it",
        "CKR_CRYPTOKI_NOT_INITIALIZED from each",
        |ctx| {
            let mut bad = Vec::new();
            let mut check = |what: &str, got: CK_RV| {
                if got != CKR_CRYPTOKI_NOT_INITIALIZED {
                    bad.push(format!("{what}: {}", crate::names::ckr(got)));
                }
            };
            let (slot, h): (CK_SLOT_ID, CK_SESSION_HANDLE) = (0, 1);
            let mut si = CK_SLOT_INFO::default();
            check("C_GetSlotInfo", p11!(ctx.m, C_GetSlotInfo(slot, &mut si)));
            let mut ti = CK_TOKEN_INFO::default();
            check("C_GetTokenInfo", p11!(ctx.m, C_GetTokenInfo(slot, &mut ti)));
            let mut n: CK_ULONG = 0;
            check(
                "C_GetMechanismList",
                p11!(
                    ctx.m,
                    C_GetMechanismList(slot, std::ptr::null_mut(), &mut n)
                ),
            );
            let mut mi = CK_MECHANISM_INFO::default();
            check(
                "C_GetMechanismInfo",
                p11!(ctx.m, C_GetMechanismInfo(slot, CKM_SHA256, &mut mi)),
            );
            check("C_CloseSession", p11!(ctx.m, C_CloseSession(h)));
            check("C_CloseAllSessions", p11!(ctx.m, C_CloseAllSessions(slot)));
            let mut sinfo = CK_SESSION_INFO::default();
            check(
                "C_GetSessionInfo",
                p11!(ctx.m, C_GetSessionInfo(h, &mut sinfo)),
            );
            let mut user = ctx.user_pin();
            check(
                "C_Login",
                p11!(
                    ctx.m,
                    C_Login(h, CKU_USER, user.as_mut_ptr(), user.len() as CK_ULONG)
                ),
            );
            check("C_Logout", p11!(ctx.m, C_Logout(h)));
            check(
                "C_FindObjectsInit",
                p11!(ctx.m, C_FindObjectsInit(h, std::ptr::null_mut(), 0)),
            );
            let mut dm = CK_MECHANISM {
                mechanism: CKM_SHA256,
                pParameter: std::ptr::null_mut(),
                ulParameterLen: 0,
            };
            check("C_DigestInit", p11!(ctx.m, C_DigestInit(h, &mut dm)));
            let mut b = [0u8; 8];
            check(
                "C_GenerateRandom",
                p11!(ctx.m, C_GenerateRandom(h, b.as_mut_ptr(), 8)),
            );
            let mut ev: CK_SLOT_ID = 0;
            check(
                "C_WaitForSlotEvent",
                p11!(
                    ctx.m,
                    C_WaitForSlotEvent(CKF_DONT_BLOCK, &mut ev, std::ptr::null_mut())
                ),
            );
            ensure(bad.is_empty(), || bad.join("; "))
        },
    );
}
