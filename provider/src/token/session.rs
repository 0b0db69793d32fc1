//! Sessions and the login state they share (PKCS#11 3.0 section 5.6 / 6.6-6.7).

use pkcs11_sys::*;

use super::error::{Error, Result};

/// A session opened by C_OpenSession.
#[derive(Debug)]
pub struct Session {
    /// The session's handle; never reused within the process.
    pub handle: CK_SESSION_HANDLE,
    /// Opened with CKF_RW_SESSION.
    pub read_write: bool,
}

/// Who is logged in to the token: shared by every session of the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginState {
    /// Nobody.
    Public,
    /// The Security Officer.
    So,
    /// The normal user.
    User,
}

/// The `userType` argument of C_Login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserType {
    /// CKU_SO.
    So,
    /// CKU_USER.
    User,
    /// CKU_CONTEXT_SPECIFIC.
    ContextSpecific,
}

impl UserType {
    /// Decodes a CK_USER_TYPE.
    pub fn from_ck(user_type: CK_USER_TYPE) -> Result<UserType> {
        match user_type {
            CKU_SO => Ok(UserType::So),
            CKU_USER => Ok(UserType::User),
            CKU_CONTEXT_SPECIFIC => Ok(UserType::ContextSpecific),
            _ => Err(Error::UserTypeInvalid),
        }
    }
}

impl Session {
    /// The session's state (one of the five of PKCS#11 section 5.6).
    pub fn state(&self, login: LoginState) -> CK_STATE {
        match (login, self.read_write) {
            (LoginState::Public, false) => CKS_RO_PUBLIC_SESSION,
            (LoginState::Public, true) => CKS_RW_PUBLIC_SESSION,
            (LoginState::User, false) => CKS_RO_USER_FUNCTIONS,
            (LoginState::User, true) => CKS_RW_USER_FUNCTIONS,
            // An SO is never logged in while a read-only session exists.
            (LoginState::So, _) => CKS_RW_SO_FUNCTIONS,
        }
    }

    /// CK_SESSION_INFO for this session.
    pub fn info(&self, slot_id: CK_SLOT_ID, login: LoginState) -> CK_SESSION_INFO {
        let mut flags = CKF_SERIAL_SESSION;
        if self.read_write {
            flags |= CKF_RW_SESSION;
        }
        CK_SESSION_INFO {
            slotID: slot_id,
            state: self.state(login),
            flags,
            ulDeviceError: 0,
        }
    }
}
