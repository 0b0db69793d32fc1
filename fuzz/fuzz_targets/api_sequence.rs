//! Random sequences of PKCS#11 calls with arbitrary arguments through the module's real entry
//! points (its 3.0 function list): sessions, logins and PINs, templates, mechanisms and their
//! parameters, buffers and lengths, handles, C_Initialize / C_Finalize and restarts.
//!
//! Every input starts from the same provisioned token (restored from a template store).
//! Checked after every call:
//! - no panic (libFuzzer's hook aborts on any, even one the entry point would catch), no
//!   CKR_GENERAL_ERROR / CKR_DEVICE_ERROR, no code PKCS#11 does not define;
//! - output buffers: nothing written past the length given, the length protocol of section 5.2;
//! - the fixture's sensitive HMAC key never leaves the token;
//! - the PIN counters: a model of spec section 3 fed only with return codes predicts the
//!   token's PIN flags after every call, and a restart changes none of them;
//! - sessions and login state: a model of PKCS#11's state machine (initialised or not, the
//!   open sessions and whether each is R/W, who is logged in) checks every return code (a call
//!   before C_Initialize gives CKR_CRYPTOKI_NOT_INITIALIZED; a handle the model does not have
//!   open gives CKR_SESSION_HANDLE_INVALID, one it has open never does; C_Login, C_Logout,
//!   C_OpenSession, C_CloseSession, C_CloseAllSessions, C_InitToken agree with the state), and
//!   after every call C_GetSessionInfo of each open session reports the model's state.
#![no_main]

use std::cell::Cell;
use std::collections::BTreeMap;

use std::ptr::null_mut;

use key4c_fuzz::gen::Reader;
use key4c_fuzz::model::{pin_verdict, PinVerdict};
use key4c_fuzz::*;
use libfuzzer_sys::fuzz_target;

/// Calls per input, at most.
const MAX_CALLS: usize = 48;
/// The configuration's pin_retry_limit (the default).
const LIMIT: u32 = 5;
/// The bytes of the fixture's HMAC key (sensitive, non-extractable).
const HMAC_SECRET: [u8; 48] = [0x17; 48];

/// One role's PIN counter as spec section 3 says it must be.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counter {
    failures: u32,
    locked: bool,
}

impl Counter {
    fn wrong(&mut self, rv: CK_RV, what: &str) {
        match rv {
            CKR_PIN_INCORRECT => {
                assert!(!self.locked, "{what}: CKR_PIN_INCORRECT while locked");
                self.failures += 1;
                assert!(
                    self.failures < LIMIT,
                    "{what}: failure {} did not lock",
                    self.failures
                );
            }
            // Already locked: refused without counting.
            CKR_PIN_LOCKED if !self.locked => {
                assert_eq!(
                    self.failures + 1,
                    LIMIT,
                    "{what}: locked after {} failures",
                    self.failures + 1
                );
                self.failures += 1;
                self.locked = true;
            }
            _ => {}
        }
    }

    /// A correct PIN was verified.
    fn accepted(&mut self, what: &str) {
        assert!(!self.locked, "{what}: a locked PIN was accepted");
        self.failures = 0;
    }

    fn flags(&self, so: bool) -> CK_FLAGS {
        let (low, last, locked) = if so {
            (
                CKF_SO_PIN_COUNT_LOW,
                CKF_SO_PIN_FINAL_TRY,
                CKF_SO_PIN_LOCKED,
            )
        } else {
            (
                CKF_USER_PIN_COUNT_LOW,
                CKF_USER_PIN_FINAL_TRY,
                CKF_USER_PIN_LOCKED,
            )
        };
        let mut f = 0;
        if self.failures >= 1 {
            f |= low;
        }
        if self.locked {
            f |= locked;
        } else if self.failures + 1 == LIMIT {
            f |= last;
        }
        f
    }
}

const PIN_FLAGS: CK_FLAGS = CKF_SO_PIN_COUNT_LOW
    | CKF_SO_PIN_FINAL_TRY
    | CKF_SO_PIN_LOCKED
    | CKF_USER_PIN_COUNT_LOW
    | CKF_USER_PIN_FINAL_TRY
    | CKF_USER_PIN_LOCKED;

/// PKCS#11's session and login state (PKCS#11 3.0 section 5.5, 5.6), as the model sees it.
#[derive(Debug, Default)]
struct Sessions {
    /// Open sessions: handle -> R/W.
    open: BTreeMap<CK_SESSION_HANDLE, bool>,
    /// Who is logged in (the login is the application's, shared by all its sessions).
    login: Option<CK_USER_TYPE>,
}

impl Sessions {
    /// The state C_GetSessionInfo must report for a session.
    fn state(&self, rw: bool) -> CK_STATE {
        match (self.login, rw) {
            (Some(CKU_SO), _) => CKS_RW_SO_FUNCTIONS,
            (Some(_), true) => CKS_RW_USER_FUNCTIONS,
            (Some(_), false) => CKS_RO_USER_FUNCTIONS,
            (None, true) => CKS_RW_PUBLIC_SESSION,
            (None, false) => CKS_RO_PUBLIC_SESSION,
        }
    }

    fn clear(&mut self) {
        self.open.clear();
        self.login = None;
    }
}

/// Codes only a call that found its session can give.
const FOUND_A_SESSION: [CK_RV; 20] = [
    CKR_OK,
    CKR_BUFFER_TOO_SMALL,
    CKR_USER_NOT_LOGGED_IN,
    CKR_USER_ALREADY_LOGGED_IN,
    CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
    CKR_USER_PIN_NOT_INITIALIZED,
    CKR_OPERATION_ACTIVE,
    CKR_OPERATION_NOT_INITIALIZED,
    CKR_SESSION_READ_ONLY,
    CKR_SESSION_READ_ONLY_EXISTS,
    CKR_SESSION_READ_WRITE_SO_EXISTS,
    CKR_OBJECT_HANDLE_INVALID,
    CKR_KEY_HANDLE_INVALID,
    CKR_PIN_INCORRECT,
    CKR_PIN_LOCKED,
    CKR_SIGNATURE_INVALID,
    CKR_SIGNATURE_LEN_RANGE,
    CKR_ENCRYPTED_DATA_INVALID,
    CKR_KEY_FUNCTION_NOT_PERMITTED,
    CKR_ATTRIBUTE_SENSITIVE,
];

/// What kind of call a step made, for the session model.
#[derive(Debug, Clone, Copy)]
enum Op {
    Initialize,
    Finalize,
    Restart,
    OpenSession { rw: bool, serial: bool },
    CloseSession,
    CloseAllSessions,
    Login { user: CK_USER_TYPE },
    Logout,
    InitToken,
    Other,
}

struct State {
    initialized: bool,
    /// The model of sessions and login.
    model: Sessions,
    /// The session handle the current call was given (set by [`State::session`]).
    used: Cell<Option<CK_SESSION_HANDLE>>,
    sessions: Vec<CK_SESSION_HANDLE>,
    objects: Vec<CK_OBJECT_HANDLE>,
    last: Vec<u8>,
    so: Counter,
    user: Counter,
    rsa_keygens: u32,
}

unsafe extern "C" fn create_mutex(m: *mut CK_VOID_PTR) -> CK_RV {
    if !m.is_null() {
        *m = null_mut();
    }
    CKR_OK
}

unsafe extern "C" fn mutex_op(_m: CK_VOID_PTR) -> CK_RV {
    CKR_OK
}

static mut RESERVED: u8 = 0;

fn reserved() -> CK_VOID_PTR {
    std::ptr::addr_of_mut!(RESERVED) as CK_VOID_PTR
}

impl State {
    fn session(&self, r: &mut Reader) -> CK_SESSION_HANDLE {
        let b = r.u8();
        let h = match b {
            0..=219 if !self.sessions.is_empty() => self.sessions[b as usize % self.sessions.len()],
            0..=239 => b as CK_SESSION_HANDLE % 8,
            _ => r.u64() as CK_SESSION_HANDLE,
        };
        self.used.set(Some(h));
        h
    }

    /// Checks a call's return code against the session model, then updates the model.
    fn check_model(&mut self, name: &str, rv: CK_RV, op: Op, was_initialized: bool) {
        let m = &mut self.model;
        if matches!(op, Op::Initialize | Op::Restart) {
            return;
        }
        if !was_initialized {
            // Before C_Initialize (or after C_Finalize) every call is refused alike (a NULL
            // or reserved pointer may be refused first: PKCS#11 sets no order; a function the
            // token does not have is not supported in any state).
            assert!(
                matches!(
                    rv,
                    CKR_CRYPTOKI_NOT_INITIALIZED
                        | CKR_ARGUMENTS_BAD
                        | CKR_FUNCTION_NOT_SUPPORTED
                        | CKR_FUNCTION_NOT_PARALLEL
                ),
                "{name} while not initialised: {}",
                ckr_name(rv)
            );
            return;
        }
        if let Some(h) = self.used.get() {
            match m.open.get(&h) {
                // Argument checks may come first (PKCS#11 sets no order), but nothing that
                // needs the session: success, or an answer about its state or its objects.
                None => assert!(
                    !FOUND_A_SESSION.contains(&rv),
                    "{name} on session {h}, which the model has closed or never opened: {}",
                    ckr_name(rv)
                ),
                Some(_) => assert!(
                    !matches!(rv, CKR_SESSION_HANDLE_INVALID | CKR_SESSION_CLOSED),
                    "{name} on session {h}, open in the model: {}",
                    ckr_name(rv)
                ),
            }
        }
        let valid = self.used.get().is_some_and(|h| m.open.contains_key(&h));
        match op {
            Op::Finalize if rv == CKR_OK => m.clear(),
            Op::OpenSession { rw, serial } if rv == CKR_OK => {
                assert!(
                    serial,
                    "{name}: a session without CKF_SERIAL_SESSION was opened"
                );
                assert!(
                    rw || m.login != Some(CKU_SO),
                    "{name}: a R/O session opened while the SO is logged in"
                );
                let h = self.sessions.last().copied().expect("pushed");
                assert!(
                    m.open.insert(h, rw).is_none(),
                    "{name}: handle {h} given twice"
                );
            }
            Op::OpenSession { serial: false, .. } => assert_eq!(
                rv, CKR_SESSION_PARALLEL_NOT_SUPPORTED,
                "{name} without CKF_SERIAL_SESSION"
            ),
            Op::OpenSession { rw: false, .. } if m.login == Some(CKU_SO) => assert_eq!(
                rv, CKR_SESSION_READ_WRITE_SO_EXISTS,
                "{name} R/O while the SO is logged in"
            ),
            Op::CloseSession if valid => {
                assert_eq!(rv, CKR_OK, "{name} of an open session");
                m.open.remove(&self.used.get().expect("valid"));
                if m.open.is_empty() {
                    m.login = None;
                }
            }
            Op::CloseAllSessions if rv == CKR_OK => m.clear(),
            Op::Login { user } if valid && matches!(user, CKU_SO | CKU_USER) => {
                let ro_exists = m.open.values().any(|rw| !rw);
                match m.login {
                    Some(u) if u == user => assert!(
                        matches!(rv, CKR_USER_ALREADY_LOGGED_IN | CKR_ARGUMENTS_BAD),
                        "{name} as {user} while logged in as {user}: {}",
                        ckr_name(rv)
                    ),
                    Some(_) => assert!(
                        matches!(rv, CKR_USER_ANOTHER_ALREADY_LOGGED_IN | CKR_ARGUMENTS_BAD),
                        "{name} as {user} while another user is logged in: {}",
                        ckr_name(rv)
                    ),
                    None if rv == CKR_OK => {
                        assert!(
                            user != CKU_SO || !ro_exists,
                            "{name}: the SO logged in with a R/O session open"
                        );
                        m.login = Some(user);
                    }
                    None => {}
                }
            }
            Op::Logout if valid => match m.login {
                Some(_) => {
                    assert_eq!(rv, CKR_OK, "{name} while logged in");
                    m.login = None;
                }
                None => assert_eq!(rv, CKR_USER_NOT_LOGGED_IN, "{name} while not logged in"),
            },
            Op::InitToken if rv == CKR_OK => assert!(
                m.open.is_empty(),
                "{name} succeeded with sessions open: {:?}",
                m.open
            ),
            _ => {}
        }
    }

    /// Every session the model has open is open, in the state the model says.
    fn check_sessions(&self, after: &str) {
        for (&h, &rw) in &self.model.open {
            let mut info = CK_SESSION_INFO::default();
            let rv = call!(C_GetSessionInfo, h, &mut info);
            assert_eq!(
                rv,
                CKR_OK,
                "after {after}: C_GetSessionInfo of session {h}, open in the model: {}",
                ckr_name(rv)
            );
            assert_eq!(
                (info.state, info.flags & CKF_RW_SESSION != 0),
                (self.model.state(rw), rw),
                "after {after}: session {h} (model: {:?})",
                self.model
            );
        }
    }

    fn object(&self, r: &mut Reader) -> CK_OBJECT_HANDLE {
        let b = r.u8();
        let keys = env().keys.all();
        match b {
            0..=159 => keys[b as usize % keys.len()],
            160..=229 if !self.objects.is_empty() => self.objects[b as usize % self.objects.len()],
            160..=239 => b as CK_OBJECT_HANDLE % 16,
            _ => r.u64() as CK_OBJECT_HANDLE,
        }
    }

    fn slot(&self, r: &mut Reader) -> CK_SLOT_ID {
        match r.u8() {
            0..=239 => 0,
            240..=247 => 1,
            _ => r.u64() as CK_SLOT_ID,
        }
    }

    fn pin(&self, r: &mut Reader) -> In {
        match r.u8() % 10 {
            0 | 1 => In::Bytes(SO_PIN.to_vec()),
            2 | 3 => In::Bytes(USER_PIN.to_vec()),
            4 => In::Bytes(OTHER_PIN.to_vec()),
            5 => In::Bytes(WRONG_PIN.to_vec()),
            6 => In::Bytes(r.bytes()),
            7 => In::Null(r.ulong()),
            8 => In::Bytes(Vec::new()),
            _ => {
                let mut p = r.pick(&[SO_PIN, USER_PIN, OTHER_PIN]).to_vec();
                let i = r.u8() as usize % p.len();
                p[i] = r.u8();
                In::Bytes(p)
            }
        }
    }

    /// Who is logged in, as the token reports it through any open session.
    fn login_state(&self) -> Option<CK_STATE> {
        for &h in &self.sessions {
            let mut info = CK_SESSION_INFO::default();
            if call!(C_GetSessionInfo, h, &mut info) == CKR_OK {
                return Some(info.state);
            }
        }
        None
    }

    /// The token's flags, when the module is initialised.
    fn token_flags(&self) -> Option<(CK_FLAGS, [u8; 32])> {
        let mut info = CK_TOKEN_INFO::default();
        let rv = call!(C_GetTokenInfo, 0, &mut info);
        if rv == CKR_CRYPTOKI_NOT_INITIALIZED {
            return None;
        }
        assert_eq!(rv, CKR_OK, "C_GetTokenInfo: {}", ckr_name(rv));
        Some((info.flags, info.label))
    }

    /// The flags agree with the counter model.
    fn check_flags(&self, after: &str) {
        if let Some((flags, _)) = self.token_flags() {
            if flags & CKF_TOKEN_INITIALIZED == 0 {
                return;
            }
            let want = self.so.flags(true) | self.user.flags(false);
            assert_eq!(
                flags & PIN_FLAGS,
                want,
                "after {after}: token PIN flags {:#x}, spec model {want:#x} (SO {:?}, User {:?})",
                flags & PIN_FLAGS,
                self.so,
                self.user
            );
        }
    }

    fn step(&mut self, r: &mut Reader) {
        let op = r.u8() % 60;
        let name: &str;
        let rv: CK_RV;
        let mut kind = Op::Other;
        self.used.set(None);
        let was_initialized = self.initialized;
        match op {
            0 => {
                name = "C_Initialize";
                let mut args = CK_C_INITIALIZE_ARGS {
                    CreateMutex: None,
                    DestroyMutex: None,
                    LockMutex: None,
                    UnlockMutex: None,
                    flags: 0,
                    pReserved: null_mut(),
                };
                let variant = r.u8() % 6;
                if variant >= 1 {
                    args.flags = r.pick(&[
                        0,
                        CKF_OS_LOCKING_OK,
                        CKF_LIBRARY_CANT_CREATE_OS_THREADS,
                        0xff,
                    ]);
                }
                if variant >= 2 {
                    let mask = r.u8();
                    if mask & 1 != 0 {
                        args.CreateMutex = Some(create_mutex);
                    }
                    if mask & 2 != 0 {
                        args.DestroyMutex = Some(mutex_op);
                    }
                    if mask & 4 != 0 {
                        args.LockMutex = Some(mutex_op);
                    }
                    if mask & 8 != 0 {
                        args.UnlockMutex = Some(mutex_op);
                    }
                    if mask & 16 != 0 {
                        args.pReserved = reserved();
                    }
                }
                let p = if variant == 0 {
                    null_mut()
                } else {
                    &mut args as *mut _ as CK_VOID_PTR
                };
                rv = call!(C_Initialize, p);
                kind = Op::Initialize;
                if rv == CKR_OK {
                    self.initialized = true;
                    self.model.clear();
                    self.sessions.clear();
                    self.objects.clear();
                } else if !self.initialized {
                    // Only bad arguments refuse a first C_Initialize.
                    assert!(
                        matches!(rv, CKR_ARGUMENTS_BAD | CKR_CANT_LOCK),
                        "C_Initialize while not initialised: {}",
                        ckr_name(rv)
                    );
                } else {
                    assert!(
                        matches!(
                            rv,
                            CKR_CRYPTOKI_ALREADY_INITIALIZED | CKR_ARGUMENTS_BAD | CKR_CANT_LOCK
                        ),
                        "C_Initialize while initialised: {}",
                        ckr_name(rv)
                    );
                }
            }
            1 => {
                name = "C_Finalize";
                let p = if r.u8().is_multiple_of(8) {
                    reserved()
                } else {
                    null_mut()
                };
                rv = call!(C_Finalize, p);
                kind = Op::Finalize;
                if rv == CKR_OK {
                    assert!(
                        self.initialized,
                        "C_Finalize succeeded while not initialised"
                    );
                    self.initialized = false;
                }
            }
            2 => {
                name = "C_GetInfo";
                let mut info = CK_INFO::default();
                rv = call!(C_GetInfo, &mut info);
            }
            3 => {
                name = "C_GetSlotList";
                let present = r.u8() % 3;
                let mut room = r.u8() as usize % 4;
                let mut list = vec![0 as CK_SLOT_ID; room + 1];
                let mut n = room as CK_ULONG;
                let p = if r.bool() {
                    null_mut()
                } else {
                    list.as_mut_ptr()
                };
                if p.is_null() {
                    room = 0;
                }
                rv = call!(C_GetSlotList, present, p, &mut n);
                if rv == CKR_OK && !p.is_null() {
                    assert!(n as usize <= room);
                }
            }
            4 => {
                name = "C_GetSlotInfo";
                let mut info = CK_SLOT_INFO::default();
                rv = call!(C_GetSlotInfo, self.slot(r), &mut info);
            }
            5 => {
                name = "C_GetTokenInfo";
                let mut info = CK_TOKEN_INFO::default();
                rv = call!(C_GetTokenInfo, self.slot(r), &mut info);
            }
            6 => {
                name = "C_GetMechanismList";
                let room = r.u8() as usize % 48;
                let mut list = vec![0 as CK_MECHANISM_TYPE; room];
                let mut n = room as CK_ULONG;
                let p = if r.bool() || room == 0 {
                    null_mut()
                } else {
                    list.as_mut_ptr()
                };
                rv = call!(C_GetMechanismList, self.slot(r), p, &mut n);
                if rv == CKR_OK && !p.is_null() {
                    assert!(n as usize <= room);
                }
            }
            7 => {
                name = "C_GetMechanismInfo";
                let mut info = CK_MECHANISM_INFO::default();
                rv = call!(C_GetMechanismInfo, self.slot(r), r.mech_type(), &mut info);
            }
            8 => {
                name = "C_InitToken";
                let slot = self.slot(r);
                let mut pin = self.pin(r);
                let mut label = [b' '; 32];
                let l = r.bytes();
                let n = l.len().min(32);
                label[..n].copy_from_slice(&l[..n]);
                let was = self
                    .token_flags()
                    .map(|(f, _)| f & CKF_TOKEN_INITIALIZED != 0);
                rv = call!(C_InitToken, slot, pin.ptr(), pin.len(), label.as_mut_ptr());
                kind = Op::InitToken;
                if was == Some(true) {
                    self.so.wrong(rv, name);
                }
                if rv == CKR_OK {
                    if was == Some(true) {
                        self.so.accepted(name);
                    }
                    self.user = Counter::default();
                    self.objects.clear();
                }
            }
            9 => {
                name = "C_InitPIN";
                let h = self.session(r);
                let mut pin = self.pin(r);
                rv = call!(C_InitPIN, h, pin.ptr(), pin.len());
                if rv == CKR_OK {
                    self.user = Counter::default();
                }
            }
            10 => {
                name = "C_SetPIN";
                let h = self.session(r);
                let mut old = self.pin(r);
                let mut new = self.pin(r);
                let so = self.login_state() == Some(CKS_RW_SO_FUNCTIONS);
                rv = call!(C_SetPIN, h, old.ptr(), old.len(), new.ptr(), new.len());
                if so {
                    self.so.wrong(rv, name);
                    let new_passes = match &new {
                        In::Bytes(b) => pin_verdict(b) == PinVerdict::Ok,
                        In::Null(_) => false,
                    };
                    // CKR_PIN_INVALID after rules 1-5 passed is rule 6: the old PIN was
                    // verified first (README: C_SetPIN order).
                    if rv == CKR_OK || (rv == CKR_PIN_INVALID && new_passes) {
                        self.so.accepted(name);
                    }
                }
            }
            11 => {
                name = "C_OpenSession";
                let slot = self.slot(r);
                let flags = match r.u8() % 5 {
                    0 => CKF_SERIAL_SESSION,
                    1 | 2 => CKF_SERIAL_SESSION | CKF_RW_SESSION,
                    3 => 0,
                    _ => r.ulong(),
                };
                let mut h = 0;
                rv = call!(C_OpenSession, slot, flags, null_mut(), None, &mut h);
                // Slot 0 is the token's; another slot is refused before the flags are.
                if slot == 0 {
                    kind = Op::OpenSession {
                        rw: flags & CKF_RW_SESSION != 0,
                        serial: flags & CKF_SERIAL_SESSION != 0,
                    };
                }
                if rv == CKR_OK {
                    self.sessions.push(h);
                }
            }
            12 => {
                name = "C_CloseSession";
                rv = call!(C_CloseSession, self.session(r));
                kind = Op::CloseSession;
            }
            13 => {
                name = "C_CloseAllSessions";
                rv = call!(C_CloseAllSessions, self.slot(r));
                kind = Op::CloseAllSessions;
            }
            14 => {
                name = "C_GetSessionInfo";
                let mut info = CK_SESSION_INFO::default();
                rv = call!(C_GetSessionInfo, self.session(r), &mut info);
            }
            15 | 16 => {
                let h = self.session(r);
                let user = match r.u8() % 8 {
                    0..=2 => CKU_USER,
                    3..=4 => CKU_SO,
                    5 => CKU_CONTEXT_SPECIFIC,
                    _ => r.ulong(),
                };
                let mut pin = self.pin(r);
                if op == 15 {
                    name = "C_Login";
                    rv = call!(C_Login, h, user, pin.ptr(), pin.len());
                } else {
                    name = "C_LoginUser";
                    let mut username = r.input();
                    rv = call!(
                        C_LoginUser,
                        h,
                        user,
                        pin.ptr(),
                        pin.len(),
                        username.ptr(),
                        username.len()
                    );
                }
                kind = Op::Login { user };
                let counter = match user {
                    CKU_SO => Some(&mut self.so),
                    CKU_USER | CKU_CONTEXT_SPECIFIC => Some(&mut self.user),
                    _ => None,
                };
                if let Some(c) = counter {
                    c.wrong(rv, name);
                    if rv == CKR_OK {
                        c.accepted(name);
                    }
                }
            }
            17 => {
                name = "C_Logout";
                rv = call!(C_Logout, self.session(r));
                kind = Op::Logout;
            }
            18 => {
                name = "C_CreateObject";
                let h = self.session(r);
                let mut t = r.template();
                let mut o = 0;
                rv = call!(C_CreateObject, h, t.ptr(), t.len(), &mut o);
                if rv == CKR_OK {
                    self.objects.push(o);
                }
            }
            19 => {
                name = "C_CopyObject";
                let h = self.session(r);
                let src = self.object(r);
                let mut t = r.template();
                let mut o = 0;
                rv = call!(C_CopyObject, h, src, t.ptr(), t.len(), &mut o);
                if rv == CKR_OK {
                    self.objects.push(o);
                }
            }
            20 => {
                name = "C_DestroyObject";
                rv = call!(C_DestroyObject, self.session(r), self.object(r));
            }
            21 => {
                name = "C_GetObjectSize";
                let mut n = 0;
                rv = call!(C_GetObjectSize, self.session(r), self.object(r), &mut n);
            }
            22 => {
                name = "C_GetAttributeValue";
                let h = self.session(r);
                let o = self.object(r);
                let n = r.u8() as usize % 8;
                let mut outs: Vec<(CK_ATTRIBUTE_TYPE, Out)> =
                    (0..n).map(|_| (r.attr_type(), r.output())).collect();
                let mut attrs: Vec<CK_ATTRIBUTE> = outs
                    .iter_mut()
                    .map(|(ty, out)| CK_ATTRIBUTE {
                        type_: *ty,
                        pValue: out.ptr() as CK_VOID_PTR,
                        ulValueLen: out.ul,
                    })
                    .collect();
                let p = if attrs.is_empty() {
                    null_mut()
                } else {
                    attrs.as_mut_ptr()
                };
                rv = call!(C_GetAttributeValue, h, o, p, n as CK_ULONG);
                for ((_, out), a) in outs.iter_mut().zip(&attrs) {
                    out.ul = a.ulValueLen;
                    // Per attribute: CK_UNAVAILABLE_INFORMATION marks the ones that failed.
                    let per_attr_rv = if a.ulValueLen == CK_UNAVAILABLE_INFORMATION {
                        CKR_ATTRIBUTE_SENSITIVE
                    } else {
                        CKR_OK
                    };
                    out.check(name, per_attr_rv);
                    if o == env().keys.hmac {
                        let got = out.bytes();
                        assert!(
                            !got.windows(16).any(|w| w == &HMAC_SECRET[..16]),
                            "the sensitive HMAC key's value was revealed"
                        );
                    }
                }
            }
            23 => {
                name = "C_SetAttributeValue";
                let h = self.session(r);
                let o = self.object(r);
                let mut t = r.template();
                rv = call!(C_SetAttributeValue, h, o, t.ptr(), t.len());
            }
            24 => {
                name = "C_FindObjectsInit";
                let h = self.session(r);
                let mut t = r.template();
                rv = call!(C_FindObjectsInit, h, t.ptr(), t.len());
            }
            25 => {
                name = "C_FindObjects";
                let h = self.session(r);
                let room = r.u8() as usize % 20;
                let mut buf = vec![0 as CK_OBJECT_HANDLE; room + 4];
                for x in &mut buf[room..] {
                    *x = 0xdead;
                }
                let mut n = 0;
                let p = if room == 0 && r.bool() {
                    null_mut()
                } else {
                    buf.as_mut_ptr()
                };
                rv = call!(C_FindObjects, h, p, room as CK_ULONG, &mut n);
                assert!(
                    buf[room..].iter().all(|&x| x == 0xdead),
                    "C_FindObjects overflow"
                );
                if rv == CKR_OK {
                    assert!(n as usize <= room);
                    self.objects.extend_from_slice(&buf[..n as usize]);
                    self.objects.truncate(64);
                }
            }
            26 => {
                name = "C_FindObjectsFinal";
                rv = call!(C_FindObjectsFinal, self.session(r));
            }
            27 | 31 | 40 | 44 => {
                let h = self.session(r);
                let mut m = r.mechanism();
                let key = self.object(r);
                (name, rv) = match op {
                    27 => ("C_EncryptInit", call!(C_EncryptInit, h, m.ptr(), key)),
                    31 => ("C_DecryptInit", call!(C_DecryptInit, h, m.ptr(), key)),
                    40 => ("C_SignInit", call!(C_SignInit, h, m.ptr(), key)),
                    _ => ("C_VerifyInit", call!(C_VerifyInit, h, m.ptr(), key)),
                };
            }
            28 | 29 | 32 | 33 | 36 | 41 => {
                let h = self.session(r);
                let mut data = if op == 32 && r.bool() {
                    In::Bytes(self.last.clone())
                } else {
                    r.input()
                };
                let mut out = r.output();
                let (p, l) = (data.ptr(), data.len());
                (name, rv) = match op {
                    28 => (
                        "C_Encrypt",
                        call!(C_Encrypt, h, p, l, out.ptr(), &mut out.ul),
                    ),
                    29 => (
                        "C_EncryptUpdate",
                        call!(C_EncryptUpdate, h, p, l, out.ptr(), &mut out.ul),
                    ),
                    32 => (
                        "C_Decrypt",
                        call!(C_Decrypt, h, p, l, out.ptr(), &mut out.ul),
                    ),
                    33 => (
                        "C_DecryptUpdate",
                        call!(C_DecryptUpdate, h, p, l, out.ptr(), &mut out.ul),
                    ),
                    36 => ("C_Digest", call!(C_Digest, h, p, l, out.ptr(), &mut out.ul)),
                    _ => ("C_Sign", call!(C_Sign, h, p, l, out.ptr(), &mut out.ul)),
                };
                out.check(name, rv);
                if rv == CKR_OK && !out.bytes().is_empty() {
                    self.last = out.bytes().to_vec();
                }
            }
            30 | 34 | 39 | 43 => {
                let h = self.session(r);
                let mut out = r.output();
                (name, rv) = match op {
                    30 => (
                        "C_EncryptFinal",
                        call!(C_EncryptFinal, h, out.ptr(), &mut out.ul),
                    ),
                    34 => (
                        "C_DecryptFinal",
                        call!(C_DecryptFinal, h, out.ptr(), &mut out.ul),
                    ),
                    39 => (
                        "C_DigestFinal",
                        call!(C_DigestFinal, h, out.ptr(), &mut out.ul),
                    ),
                    _ => ("C_SignFinal", call!(C_SignFinal, h, out.ptr(), &mut out.ul)),
                };
                out.check(name, rv);
                if rv == CKR_OK && !out.bytes().is_empty() {
                    self.last = out.bytes().to_vec();
                }
            }
            35 => {
                name = "C_DigestInit";
                let h = self.session(r);
                let mut m = r.mechanism();
                rv = call!(C_DigestInit, h, m.ptr());
            }
            37 | 42 | 46 => {
                let h = self.session(r);
                let mut data = r.input();
                let (p, l) = (data.ptr(), data.len());
                (name, rv) = match op {
                    37 => ("C_DigestUpdate", call!(C_DigestUpdate, h, p, l)),
                    42 => ("C_SignUpdate", call!(C_SignUpdate, h, p, l)),
                    _ => ("C_VerifyUpdate", call!(C_VerifyUpdate, h, p, l)),
                };
            }
            38 => {
                name = "C_DigestKey";
                rv = call!(C_DigestKey, self.session(r), self.object(r));
            }
            45 => {
                name = "C_Verify";
                let h = self.session(r);
                let mut data = r.input();
                let mut sig = if r.bool() {
                    In::Bytes(self.last.clone())
                } else {
                    r.input()
                };
                rv = call!(C_Verify, h, data.ptr(), data.len(), sig.ptr(), sig.len());
            }
            47 => {
                name = "C_VerifyFinal";
                let h = self.session(r);
                let mut sig = if r.bool() {
                    In::Bytes(self.last.clone())
                } else {
                    r.input()
                };
                rv = call!(C_VerifyFinal, h, sig.ptr(), sig.len());
            }
            48 => {
                name = "C_GenerateKey";
                let h = self.session(r);
                let mut m = r.mechanism();
                let mut t = r.template();
                let mut o = 0;
                rv = call!(C_GenerateKey, h, m.ptr(), t.ptr(), t.len(), &mut o);
                if rv == CKR_OK {
                    self.objects.push(o);
                }
            }
            49 => {
                name = "C_GenerateKeyPair";
                let h = self.session(r);
                let mut m = r.mechanism();
                let mut public = r.template();
                let mut private = r.template();
                // RSA generation costs up to a second: one per input keeps the fuzzer fast.
                if m.mech.mechanism == CKM_RSA_PKCS_KEY_PAIR_GEN {
                    self.rsa_keygens += 1;
                    if self.rsa_keygens > 1 {
                        return;
                    }
                }
                let (mut p, mut q) = (0, 0);
                rv = call!(
                    C_GenerateKeyPair,
                    h,
                    m.ptr(),
                    public.ptr(),
                    public.len(),
                    private.ptr(),
                    private.len(),
                    &mut p,
                    &mut q
                );
                if rv == CKR_OK {
                    self.objects.push(p);
                    self.objects.push(q);
                }
            }
            50 => {
                name = "C_WrapKey";
                let h = self.session(r);
                let mut m = r.mechanism();
                let wrapping = self.object(r);
                let key = self.object(r);
                let mut out = r.output();
                rv = call!(C_WrapKey, h, m.ptr(), wrapping, key, out.ptr(), &mut out.ul);
                out.check(name, rv);
                if rv == CKR_OK && !out.bytes().is_empty() {
                    self.last = out.bytes().to_vec();
                }
                if key == env().keys.hmac {
                    assert_ne!(rv, CKR_OK, "the non-extractable HMAC key was wrapped");
                }
            }
            51 => {
                name = "C_UnwrapKey";
                let h = self.session(r);
                let mut m = r.mechanism();
                let key = self.object(r);
                let mut wrapped = if r.bool() {
                    In::Bytes(self.last.clone())
                } else {
                    r.input()
                };
                let mut t = r.template();
                let mut o = 0;
                rv = call!(
                    C_UnwrapKey,
                    h,
                    m.ptr(),
                    key,
                    wrapped.ptr(),
                    wrapped.len(),
                    t.ptr(),
                    t.len(),
                    &mut o
                );
                if rv == CKR_OK {
                    self.objects.push(o);
                }
            }
            52 => {
                name = "C_GenerateRandom";
                let h = self.session(r);
                let n = r.u16() as usize % 4096;
                let mut buf = vec![0u8; n + 16];
                let p = if n == 0 && r.bool() {
                    null_mut()
                } else {
                    buf.as_mut_ptr()
                };
                rv = call!(C_GenerateRandom, h, p, n as CK_ULONG);
                assert!(
                    buf[n..].iter().all(|&b| b == 0),
                    "C_GenerateRandom overflow"
                );
            }
            53 => {
                name = "C_SeedRandom";
                let h = self.session(r);
                let mut seed = r.input();
                rv = call!(C_SeedRandom, h, seed.ptr(), seed.len());
            }
            54 => {
                name = "C_SessionCancel";
                rv = call!(C_SessionCancel, self.session(r), r.ulong());
            }
            55 => {
                let h = self.session(r);
                (name, rv) = if r.bool() {
                    ("C_GetFunctionStatus", call!(C_GetFunctionStatus, h))
                } else {
                    ("C_CancelFunction", call!(C_CancelFunction, h))
                };
            }
            56 => {
                name = "C_WaitForSlotEvent";
                let mut slot = 0;
                let flags = if r.bool() { CKF_DONT_BLOCK } else { 0 };
                // A blocking wait is refused by the module rather than hanging.
                rv = call!(C_WaitForSlotEvent, flags, &mut slot, null_mut());
            }
            57 => {
                name = "restart";
                kind = Op::Restart;
                // What was durable before a restart is what the token shows after it.
                let before = self.token_flags();
                rv = call!(C_Finalize, null_mut());
                if rv == CKR_OK || rv == CKR_CRYPTOKI_NOT_INITIALIZED {
                    let again = call!(C_Initialize, null_mut());
                    assert_eq!(
                        again,
                        CKR_OK,
                        "C_Initialize after C_Finalize: {}",
                        ckr_name(again)
                    );
                    self.initialized = true;
                    self.model.clear();
                    self.sessions.clear();
                    self.objects.clear();
                    let after = self.token_flags();
                    if let (Some(b), Some(a)) = (before, after) {
                        let mask = PIN_FLAGS | CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED;
                        assert_eq!(b.0 & mask, a.0 & mask, "a restart changed the token flags");
                        assert_eq!(b.1, a.1, "a restart changed the label");
                    }
                }
            }
            58 => {
                name = "C_GetOperationState";
                let h = self.session(r);
                let mut out = r.output();
                rv = call!(C_GetOperationState, h, out.ptr(), &mut out.ul);
                out.check(name, rv);
            }
            _ => {
                name = "C_MessageSignInit";
                let h = self.session(r);
                let mut m = r.mechanism();
                rv = call!(C_MessageSignInit, h, m.ptr(), self.object(r));
            }
        }
        if trace() {
            eprintln!("{name} -> {}", ckr_name(rv));
        }
        check_rv(name, rv);
        self.check_model(name, rv, kind, was_initialized);
        if self.initialized {
            self.check_flags(name);
            self.check_sessions(name);
        }
        self.sessions.truncate(32);
        self.objects.truncate(64);
    }
}

/// KEY4C_FUZZ_TRACE=1 prints every call and its code (to read what an input does).
fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("KEY4C_FUZZ_TRACE").is_some())
}

fuzz_target!(|data: &[u8]| {
    env();
    reset();
    let mut state = State {
        initialized: true,
        model: Sessions::default(),
        used: Cell::new(None),
        sessions: Vec::new(),
        objects: Vec::new(),
        last: Vec::new(),
        so: Counter::default(),
        user: Counter::default(),
        rsa_keygens: 0,
    };
    let mut r = Reader::new(data);
    for _ in 0..MAX_CALLS {
        if r.is_empty() {
            break;
        }
        state.step(&mut r);
    }
});
