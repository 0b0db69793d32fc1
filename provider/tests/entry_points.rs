//! Entry points, function lists, interfaces and C_Initialize / C_Finalize, through the built
//! `.so` (PKCS#11 3.0 sections 5.2-5.4).

// `call!` passes raw pointers to the module: that is what these tests are for.
#![allow(clippy::macro_metavars_in_unsafe)]

mod common;
use common::*;
use std::ptr::null_mut;

#[test]
fn function_list_and_interfaces() {
    isolated("function_list_and_interfaces", "", || {
        let lib = Lib::load();
        // Both work before C_Initialize.
        let mut list: CK_FUNCTION_LIST_PTR = null_mut();
        assert_rv!(call!(lib, C_GetFunctionList, &mut list), CKR_OK);
        let v2 = unsafe { &*list };
        assert_eq!((v2.version.major, v2.version.minor), (2, 40));
        assert_rv!(call!(lib, C_GetFunctionList, null_mut()), CKR_ARGUMENTS_BAD);

        let mut n: CK_ULONG = 0;
        assert_rv!(call!(lib, C_GetInterfaceList, null_mut(), &mut n), CKR_OK);
        assert_eq!(n, 2);
        let mut ifaces = [CK_INTERFACE::default(); 2];
        let mut small: CK_ULONG = 1;
        assert_rv!(
            call!(lib, C_GetInterfaceList, ifaces.as_mut_ptr(), &mut small),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(small, 2);
        assert_rv!(
            call!(lib, C_GetInterfaceList, ifaces.as_mut_ptr(), &mut n),
            CKR_OK
        );
        assert_rv!(
            call!(lib, C_GetInterfaceList, ifaces.as_mut_ptr(), null_mut()),
            CKR_ARGUMENTS_BAD
        );
        for i in &ifaces {
            let name = unsafe { std::ffi::CStr::from_ptr(i.pInterfaceName as *const _) };
            assert_eq!(name.to_bytes(), b"PKCS 11");
        }
        let v3 = unsafe { &*(ifaces[0].pFunctionList as *const CK_FUNCTION_LIST_3_0) };
        assert_eq!((v3.version.major, v3.version.minor), (3, 0));

        let mut iface: CK_INTERFACE_PTR = null_mut();
        let mut want = CK_VERSION {
            major: 2,
            minor: 40,
        };
        let name = c"PKCS 11".as_ptr() as *mut u8;
        assert_rv!(
            call!(lib, C_GetInterface, name, &mut want, &mut iface, 0),
            CKR_OK
        );
        let got = unsafe { &*((*iface).pFunctionList as *const CK_VERSION) };
        assert_eq!((got.major, got.minor), (2, 40));
        let mut none = CK_VERSION {
            major: 2,
            minor: 11,
        };
        assert_rv!(
            call!(lib, C_GetInterface, name, &mut none, &mut iface, 0),
            CKR_ARGUMENTS_BAD
        );
        let bad = c"PKCS 12".as_ptr() as *mut u8;
        assert_rv!(
            call!(lib, C_GetInterface, bad, null_mut(), &mut iface, 0),
            CKR_ARGUMENTS_BAD
        );
        assert_rv!(
            call!(
                lib,
                C_GetInterface,
                null_mut(),
                null_mut(),
                &mut iface,
                CKF_INTERFACE_FORK_SAFE
            ),
            CKR_ARGUMENTS_BAD
        );
        assert_rv!(
            call!(lib, C_GetInterface, null_mut(), null_mut(), null_mut(), 0),
            CKR_ARGUMENTS_BAD
        );

        // Every slot of both lists is filled.
        let words = std::mem::size_of::<CK_FUNCTION_LIST_3_0>() / 8;
        let raw = unsafe { std::slice::from_raw_parts(v3 as *const _ as *const usize, words) };
        assert!(raw[1..].iter().all(|&p| p != 0));
        let words = std::mem::size_of::<CK_FUNCTION_LIST>() / 8;
        let raw = unsafe { std::slice::from_raw_parts(v2 as *const _ as *const usize, words) };
        assert!(raw[1..].iter().all(|&p| p != 0));
    });
}

#[test]
fn calls_before_initialize_and_after_finalize() {
    isolated("calls_before_initialize_and_after_finalize", "", || {
        let lib = Lib::load();
        let mut info = CK_INFO::default();
        assert_rv!(
            call!(lib, C_GetInfo, &mut info),
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
        let mut n = 0;
        assert_rv!(
            call!(lib, C_GetSlotList, CK_FALSE, null_mut(), &mut n),
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
        assert_rv!(
            call!(lib, C_Finalize, null_mut()),
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
        lib.init();
        assert_rv!(
            call!(lib, C_Initialize, null_mut()),
            CKR_CRYPTOKI_ALREADY_INITIALIZED
        );
        assert_rv!(call!(lib, C_GetInfo, &mut info), CKR_OK);
        assert_eq!(
            (info.cryptokiVersion.major, info.cryptokiVersion.minor),
            (3, 0)
        );
        assert_eq!(text(&info.manufacturerID), "Key4C Emulator");
        assert_rv!(call!(lib, C_GetInfo, null_mut()), CKR_ARGUMENTS_BAD);
        assert_rv!(call!(lib, C_Finalize, 1 as CK_VOID_PTR), CKR_ARGUMENTS_BAD);
        assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
        assert_rv!(
            call!(lib, C_GetInfo, &mut info),
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
        // Initialise again in the same process: the store was released and opens again.
        lib.init();
        assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
    });
}

unsafe extern "C" fn create_mutex(m: *mut CK_VOID_PTR) -> CK_RV {
    *m = 1 as CK_VOID_PTR;
    CKR_OK
}
unsafe extern "C" fn mutex_op(_m: CK_VOID_PTR) -> CK_RV {
    CKR_OK
}

#[test]
fn initialize_args_are_validated() {
    isolated("initialize_args_are_validated", "", || {
        let lib = Lib::load();
        let mut args = CK_C_INITIALIZE_ARGS {
            pReserved: 1 as CK_VOID_PTR,
            ..Default::default()
        };
        assert_rv!(
            call!(lib, C_Initialize, &mut args as *mut _ as CK_VOID_PTR),
            CKR_ARGUMENTS_BAD
        );
        // Some but not all mutex callbacks.
        let mut args = CK_C_INITIALIZE_ARGS {
            CreateMutex: Some(create_mutex),
            ..Default::default()
        };
        assert_rv!(
            call!(lib, C_Initialize, &mut args as *mut _ as CK_VOID_PTR),
            CKR_ARGUMENTS_BAD
        );
        let all = CK_C_INITIALIZE_ARGS {
            CreateMutex: Some(create_mutex),
            DestroyMutex: Some(mutex_op),
            LockMutex: Some(mutex_op),
            UnlockMutex: Some(mutex_op),
            flags: 0,
            pReserved: null_mut(),
        };
        // Callbacks only, without CKF_OS_LOCKING_OK: the module cannot use them alone.
        let mut args = all;
        assert_rv!(
            call!(lib, C_Initialize, &mut args as *mut _ as CK_VOID_PTR),
            CKR_CANT_LOCK
        );
        let mut args = CK_C_INITIALIZE_ARGS {
            flags: CKF_OS_LOCKING_OK,
            ..all
        };
        assert_rv!(
            call!(lib, C_Initialize, &mut args as *mut _ as CK_VOID_PTR),
            CKR_OK
        );
        assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
        let mut args = CK_C_INITIALIZE_ARGS {
            flags: CKF_OS_LOCKING_OK,
            ..Default::default()
        };
        assert_rv!(
            call!(lib, C_Initialize, &mut args as *mut _ as CK_VOID_PTR),
            CKR_OK
        );
        assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
    });
}

#[test]
fn concurrent_initialize_succeeds_once() {
    isolated("concurrent_initialize_succeeds_once", "", || {
        let lib = Lib::load();
        for _ in 0..20 {
            let results: Vec<CK_RV> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..4)
                    .map(|_| s.spawn(|| call!(lib, C_Initialize, null_mut())))
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert_eq!(
                results.iter().filter(|&&r| r == CKR_OK).count(),
                1,
                "{results:?}"
            );
            assert_eq!(
                results
                    .iter()
                    .filter(|&&r| r == CKR_CRYPTOKI_ALREADY_INITIALIZED)
                    .count(),
                3
            );
            assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
        }
    });
}

#[test]
fn unimplemented_functions_say_so() {
    isolated("unimplemented_functions_say_so", "", || {
        let lib = Lib::load();
        lib.init();
        let mut len: CK_ULONG = 0;
        assert_rv!(
            call!(lib, C_GetOperationState, 1, null_mut(), &mut len),
            CKR_FUNCTION_NOT_SUPPORTED
        );
        assert_rv!(
            call!(
                lib,
                C_SignEncryptUpdate,
                1,
                null_mut(),
                0,
                null_mut(),
                &mut len
            ),
            CKR_FUNCTION_NOT_SUPPORTED
        );
        assert_rv!(
            call!(lib, C_MessageSignInit, 1, null_mut(), 0),
            CKR_FUNCTION_NOT_SUPPORTED
        );
        let mut slot = 0;
        assert_rv!(
            call!(
                lib,
                C_WaitForSlotEvent,
                CKF_DONT_BLOCK,
                &mut slot,
                null_mut()
            ),
            CKR_NO_EVENT
        );
        assert_rv!(
            call!(lib, C_WaitForSlotEvent, 0, &mut slot, null_mut()),
            CKR_FUNCTION_NOT_SUPPORTED
        );
        assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
    });
}

#[test]
fn fork_child_is_not_initialized() {
    isolated("fork_child_is_not_initialized", "", || {
        let lib = Lib::load();
        lib.init();
        lib.provision();
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // Child: nothing inherited is usable; exit code tells the parent what happened.
            let mut info = CK_INFO::default();
            let a = call!(lib, C_GetInfo, &mut info);
            let mut h = 0;
            let b = call!(
                lib,
                C_OpenSession,
                0,
                CKF_SERIAL_SESSION,
                null_mut(),
                None,
                &mut h
            );
            let c = call!(lib, C_Finalize, null_mut());
            let ok = a == CKR_CRYPTOKI_NOT_INITIALIZED
                && b == CKR_CRYPTOKI_NOT_INITIALIZED
                && c == CKR_CRYPTOKI_NOT_INITIALIZED;
            // The parent still holds the store: a new C_Initialize reports it, never crashes.
            let d = call!(lib, C_Initialize, null_mut());
            unsafe { libc::_exit(if ok && d == CKR_DEVICE_ERROR { 0 } else { 1 }) };
        }
        let mut status = 0;
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child status {status}"
        );
        // The parent is untouched.
        let h = lib.open_rw();
        assert_rv!(lib.login(h, CKU_USER, USER_PIN), CKR_OK);
        assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
    });
}
