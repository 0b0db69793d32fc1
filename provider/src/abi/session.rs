//! Session management and login (PKCS#11 3.0 section 5.6).

use pkcs11_sys::*;

use super::{input, output, token};
use crate::token::Error;

cryptoki_fn! {
    /// Opens a session; notification callbacks are accepted and never called.
    fn C_OpenSession(
        slotID: CK_SLOT_ID,
        flags: CK_FLAGS,
        pApplication: CK_VOID_PTR,
        Notify: CK_NOTIFY,
        phSession: CK_SESSION_HANDLE_PTR,
    ) {
        let _ = (pApplication, Notify);
        let token = token()?;
        if phSession.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let handle = token.open_session(slotID, flags)?;
        output(phSession, handle)
    }
}

cryptoki_fn! {
    /// Closes one session; the last one closed logs out.
    fn C_CloseSession(hSession: CK_SESSION_HANDLE) {
        token()?.close_session(hSession)
    }
}

cryptoki_fn! {
    /// Closes every session of the slot and logs out.
    fn C_CloseAllSessions(slotID: CK_SLOT_ID) {
        token()?.close_all_sessions(slotID)
    }
}

cryptoki_fn! {
    /// CK_SESSION_INFO.
    fn C_GetSessionInfo(hSession: CK_SESSION_HANDLE, pInfo: CK_SESSION_INFO_PTR) {
        let token = token()?;
        if pInfo.is_null() {
            return Err(Error::ArgumentsBad);
        }
        output(pInfo, token.session_info(hSession)?)
    }
}

cryptoki_fn! {
    /// Logs the SO or the User in to every session of the application.
    fn C_Login(hSession: CK_SESSION_HANDLE, userType: CK_USER_TYPE, pPin: CK_UTF8CHAR_PTR, ulPinLen: CK_ULONG) {
        let token = token()?;
        if pPin.is_null() {
            return Err(Error::ArgumentsBad);
        }
        token.login(hSession, userType, input(pPin, ulPinLen)?)
    }
}

cryptoki_fn! {
    /// C_Login with a user name: the token has no named users, so the name must be empty.
    fn C_LoginUser(
        hSession: CK_SESSION_HANDLE,
        userType: CK_USER_TYPE,
        pPin: CK_UTF8CHAR_PTR,
        ulPinLen: CK_ULONG,
        pUsername: CK_UTF8CHAR_PTR,
        ulUsernameLen: CK_ULONG,
    ) {
        let token = token()?;
        if pPin.is_null() || !input(pUsername, ulUsernameLen)?.is_empty() {
            return Err(Error::ArgumentsBad);
        }
        token.login(hSession, userType, input(pPin, ulPinLen)?)
    }
}

cryptoki_fn! {
    /// Logs out of every session of the application.
    fn C_Logout(hSession: CK_SESSION_HANDLE) {
        token()?.logout(hSession)
    }
}

cryptoki_fn! {
    /// Legacy parallel-function management: always CKR_FUNCTION_NOT_PARALLEL.
    fn C_GetFunctionStatus(hSession: CK_SESSION_HANDLE) {
        token()?.session(hSession)?;
        Err(Error::FunctionNotParallel)
    }
}

cryptoki_fn! {
    /// Legacy parallel-function management: always CKR_FUNCTION_NOT_PARALLEL.
    fn C_CancelFunction(hSession: CK_SESSION_HANDLE) {
        token()?.session(hSession)?;
        Err(Error::FunctionNotParallel)
    }
}

cryptoki_fn! {
    /// Ends the session's operations that `flags` names.
    fn C_SessionCancel(hSession: CK_SESSION_HANDLE, flags: CK_FLAGS) {
        token()?.session_cancel(hSession, flags)
    }
}
