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
    /// The operations active in this session; locked only by calls on this session.
    pub ops: parking_lot::Mutex<Operations>,
}

/// The session's active operations, one slot per kind.
#[derive(Default)]
pub struct Operations {
    /// C_FindObjectsInit's matches not yet returned.
    pub find: Option<FindOperation>,
    /// C_SignInit's operation.
    pub sign: Option<super::operations::SignOperation>,
    /// C_VerifyInit's operation.
    pub verify: Option<super::operations::SignOperation>,
    /// C_DigestInit's operation.
    pub digest: Option<super::operations::DigestOperation>,
    /// C_EncryptInit's operation.
    pub encrypt: Option<super::cipher::CipherOperation>,
    /// C_DecryptInit's operation.
    pub decrypt: Option<super::cipher::CipherOperation>,
}

impl std::fmt::Debug for Operations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operations")
            .field("find", &self.find.is_some())
            .field("sign", &self.sign.is_some())
            .field("verify", &self.verify.is_some())
            .field("digest", &self.digest.is_some())
            .field("encrypt", &self.encrypt.is_some())
            .field("decrypt", &self.decrypt.is_some())
            .finish()
    }
}

/// An active search.
#[derive(Debug, Default)]
pub struct FindOperation {
    /// Matching handles, in the order C_FindObjects returns them.
    pub handles: Vec<CK_OBJECT_HANDLE>,
    /// How many were returned already.
    pub next: usize,
}

/// Who is logged in to the token: shared by every session of the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum LoginState {
    /// Nobody.
    Public = 0,
    /// The Security Officer.
    So = 1,
    /// The normal user.
    User = 2,
}

impl LoginState {
    /// The inverse of `as u8`.
    pub fn from_u8(v: u8) -> LoginState {
        match v {
            1 => LoginState::So,
            2 => LoginState::User,
            _ => LoginState::Public,
        }
    }
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
    /// A new session with no active operation.
    pub fn new(handle: CK_SESSION_HANDLE, read_write: bool) -> Session {
        Session {
            handle,
            read_write,
            ops: Default::default(),
        }
    }

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
