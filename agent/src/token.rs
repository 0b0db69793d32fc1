//! The agent's side of PKCS#11: the module, the token of the configured service, a pool of
//! User sessions, and signing / verifying on them.
//!
//! The signing path takes a session from a lock-free queue (a semaphore sized to the pool
//! waits for one) and gives it back; no lock is held while the token signs. Only recovering a
//! lost session (re-login) takes a mutex, so one wrong or locked PIN is tried once, not once
//! per waiting request.

use std::path::Path;
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, ArcSwapOption};
use crossbeam_queue::ArrayQueue;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use tokio::sync::Semaphore;

use crate::keys::{self, JwtAlg, KeySet};

/// Why a token operation did not give a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// The token cannot be used until an operator acts (PIN locked or changed): HTTP 503.
    Unavailable(String),
    /// No key with this kid (or it does not do this alg): HTTP 404.
    UnknownKey(String),
    /// The signature does not verify.
    BadSignature,
    /// Anything else the module returned: HTTP 500.
    Failed(String),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::Unavailable(m) | TokenError::Failed(m) => f.write_str(m),
            TokenError::UnknownKey(kid) => write!(f, "no key with kid {kid}"),
            TokenError::BadSignature => f.write_str("the signature does not verify"),
        }
    }
}

/// What identifies the token the agent serves.
#[derive(Debug, Clone)]
pub struct TokenIdentity {
    pub serial: String,
    pub label: String,
    pub model: String,
    pub module: String,
}

/// The opened token.
pub struct Token {
    ctx: Pkcs11,
    slot: Slot,
    pin: AuthPin,
    pool: ArrayQueue<Session>,
    free: Semaphore,
    keys: ArcSwap<KeySet>,
    /// Set once the token refused the PIN: every later request gets 503 without a login.
    unavailable: ArcSwapOption<String>,
    relogin: Mutex<()>,
    /// The module has `CKM_ECDSA_SHA*` (else the agent hashes and the token signs the digest).
    ecdsa_with_hash: bool,
    pub identity: TokenIdentity,
}

/// What `Token::open` was asked for.
pub struct OpenOptions<'a> {
    pub module: &'a Path,
    /// The serial the service UUID names.
    pub serial: &'a str,
    pub uuid: &'a str,
    pub pin: AuthPin,
    pub sessions: usize,
}

fn rv(e: &CkError) -> Option<RvError> {
    match e {
        CkError::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

/// Errors after which a new session and a login may help.
fn session_lost(e: &CkError) -> bool {
    matches!(
        rv(e),
        Some(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::UserNotLoggedIn
                | RvError::DeviceRemoved
                | RvError::TokenNotPresent
                | RvError::KeyHandleInvalid
                | RvError::ObjectHandleInvalid
        )
    )
}

/// The one-line reason a User login failed, for the PIN cases that need an operator.
fn pin_refusal(e: &CkError) -> Option<String> {
    Some(match rv(e)? {
        RvError::PinIncorrect => {
            "the token refused key4c.pin (CKR_PIN_INCORRECT; the token counted the attempt)".into()
        }
        RvError::PinLocked => {
            "the User PIN is locked (CKR_PIN_LOCKED): the SO must set a new one (key4c pin unlock-user)".into()
        }
        RvError::PinExpired => "the User PIN has expired (CKR_PIN_EXPIRED)".into(),
        RvError::PinInvalid | RvError::PinLenRange => {
            format!("key4c.pin cannot be a PIN of this token ({e})")
        }
        RvError::UserPinNotInitialized => {
            "the token has no User PIN yet (CKR_USER_PIN_NOT_INITIALIZED)".into()
        }
        _ => return None,
    })
}

impl Token {
    /// Loads the module, finds the service's token, logs the User in and reads the keys.
    /// Each error is one sentence for the operator.
    pub fn open(o: OpenOptions<'_>) -> Result<Token, String> {
        let module = o.module.display().to_string();
        let ctx = Pkcs11::new(o.module)
            .map_err(|e| format!("cannot load the PKCS#11 module {module}: {e}"))?;
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(|e| format!("C_Initialize of {module} failed: {e}"))?;
        let slot = find_slot(&ctx, o.serial, o.uuid, &module)?;
        let info = ctx
            .get_token_info(slot)
            .map_err(|e| format!("C_GetTokenInfo failed: {e}"))?;
        if !info.token_initialized() {
            return Err(format!(
                "the token of service {} is not initialised (key4c service create)",
                o.uuid
            ));
        }
        let identity = TokenIdentity {
            serial: info.serial_number().trim().to_string(),
            label: info.label().trim().to_string(),
            model: info.model().trim().to_string(),
            module: module.clone(),
        };
        // Asked one mechanism at a time: the list can hold types cryptoki does not name (and
        // logs an error for each).
        let ecdsa_with_hash = ctx
            .get_mechanism_info(slot, MechanismType::ECDSA_SHA256)
            .is_ok();
        let count = o.sessions.max(1);
        let pool = ArrayQueue::new(count);
        let mut first = None;
        for _ in 0..count {
            let s = ctx
                .open_ro_session(slot)
                .map_err(|e| format!("C_OpenSession failed: {e}"))?;
            if first.is_none() {
                match s.login(UserType::User, Some(&o.pin)) {
                    Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                    Err(e) => {
                        return Err(pin_refusal(&e)
                            .unwrap_or_else(|| format!("C_Login as the User failed: {e}")))
                    }
                }
                first = Some(
                    keys::discover(&s).map_err(|e| format!("cannot list the token's keys: {e}"))?,
                );
            }
            // Cannot fail: the queue has room for `count` sessions.
            let _ = pool.push(s);
        }
        Ok(Token {
            ctx,
            slot,
            pin: o.pin,
            free: Semaphore::new(count),
            pool,
            keys: ArcSwap::from_pointee(first.unwrap_or_default()),
            unavailable: ArcSwapOption::empty(),
            relogin: Mutex::new(()),
            ecdsa_with_hash,
            identity,
        })
    }

    /// The keys as last read.
    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.load_full()
    }

    /// Why the token cannot be used, once it cannot.
    pub fn unavailable(&self) -> Option<Arc<String>> {
        self.unavailable.load_full()
    }

    /// Signs `data` with the key `kid` as `alg`.
    pub async fn sign(
        self: &Arc<Self>,
        kid: &str,
        alg: JwtAlg,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, TokenError> {
        let kid = kid.to_string();
        self.run(alg, move |token, session, keys| {
            let key = keys
                .by_kid
                .get(&kid)
                .ok_or_else(|| Op::Agent(TokenError::UnknownKey(kid.clone())))?;
            let (mech, input) = token.mechanism(alg, &data);
            session.sign(&mech, key.private, &input).map_err(Op::Token)
        })
        .await
    }

    /// Verifies `signature` over `data` with the key `kid` as `alg`.
    pub async fn verify(
        self: &Arc<Self>,
        kid: &str,
        alg: JwtAlg,
        data: Vec<u8>,
        signature: Vec<u8>,
    ) -> Result<(), TokenError> {
        let kid = kid.to_string();
        self.run(alg, move |token, session, keys| {
            let key = keys
                .by_kid
                .get(&kid)
                .ok_or_else(|| Op::Agent(TokenError::UnknownKey(kid.clone())))?;
            let (mech, input) = token.mechanism(alg, &data);
            match session.verify(&mech, key.public, &input, &signature) {
                Ok(()) => Ok(()),
                // A wrong-length signature is as invalid as a wrong one.
                Err(e)
                    if matches!(
                        rv(&e),
                        Some(RvError::SignatureInvalid | RvError::SignatureLenRange)
                    ) =>
                {
                    Err(Op::Agent(TokenError::BadSignature))
                }
                Err(e) => Err(Op::Token(e)),
            }
        })
        .await
    }

    /// Signs on the calling thread (the bench's C_Sign loop).
    pub fn sign_blocking(
        &self,
        kid: &str,
        alg: JwtAlg,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, TokenError> {
        self.run_blocking(|token, session, keys| {
            let key = keys
                .by_kid
                .get(kid)
                .ok_or_else(|| Op::Agent(TokenError::UnknownKey(kid.to_string())))?;
            let (mech, input) = token.mechanism(alg, &data);
            session.sign(&mech, key.private, &input).map_err(Op::Token)
        })
    }

    /// Sessions in the pool.
    pub fn sessions(&self) -> usize {
        self.pool.capacity()
    }

    fn mechanism(&self, alg: JwtAlg, data: &[u8]) -> (Mechanism<'static>, Vec<u8>) {
        if alg.is_ecdsa() && !self.ecdsa_with_hash {
            (Mechanism::Ecdsa, alg.ecdsa_prehash(data))
        } else {
            (alg.mechanism(), data.to_vec())
        }
    }

    /// Runs one operation on a pooled session; recovers a lost session once. RSA takes
    /// milliseconds and goes to a blocking thread; ECDSA, EdDSA and HMAC take tens of
    /// microseconds, less than handing them to another thread costs, and run in place.
    async fn run<T, F>(self: &Arc<Self>, alg: JwtAlg, op: F) -> Result<T, TokenError>
    where
        T: Send + 'static,
        F: Fn(&Token, &Session, &KeySet) -> Result<T, Op> + Send + 'static,
    {
        if let Some(reason) = self.unavailable.load_full() {
            return Err(TokenError::Unavailable(reason.to_string()));
        }
        let permit = self
            .free
            .acquire()
            .await
            .map_err(|_| TokenError::Unavailable("the agent is stopping".into()))?;
        let result = if alg.is_rsa() {
            let token = Arc::clone(self);
            tokio::task::spawn_blocking(move || token.run_blocking(op))
                .await
                .map_err(|e| TokenError::Failed(format!("the signing thread failed: {e}")))?
        } else {
            self.run_blocking(op)
        };
        drop(permit);
        result
    }

    fn run_blocking<T>(
        &self,
        op: impl Fn(&Token, &Session, &KeySet) -> Result<T, Op>,
    ) -> Result<T, TokenError> {
        // The semaphore's permit guarantees a session is in the queue.
        let mut lent = Lent {
            pool: &self.pool,
            session: self.pool.pop(),
        };
        let Some(session) = lent.session.as_mut() else {
            return Err(TokenError::Failed("no free session".into()));
        };
        let result = match op(self, session, &self.keys.load()) {
            Err(Op::Token(e)) if session_lost(&e) => {
                log::warn!("the token session was lost ({e}): opening a new one");
                match self.recover(session) {
                    Ok(()) => op(self, session, &self.keys.load()),
                    Err(e) => Err(Op::Agent(e)),
                }
            }
            other => other,
        };
        result.map_err(|e| match e {
            Op::Agent(e) => e,
            Op::Token(e) => TokenError::Failed(format!("the token failed: {e}")),
        })
    }

    /// Replaces a lost session with a new one, logged in as the User, and reads the keys
    /// again (their handles can change with a new login).
    fn recover(&self, session: &mut Session) -> Result<(), TokenError> {
        let _one = self.relogin.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(reason) = self.unavailable.load_full() {
            return Err(TokenError::Unavailable(reason.to_string()));
        }
        let fresh = self
            .ctx
            .open_ro_session(self.slot)
            .map_err(|e| TokenError::Failed(format!("C_OpenSession failed: {e}")))?;
        match fresh.login(UserType::User, Some(&self.pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => {
                let Some(reason) = pin_refusal(&e) else {
                    return Err(TokenError::Failed(format!(
                        "C_Login as the User failed: {e}"
                    )));
                };
                let reason =
                    format!("{reason}; the agent stops using the token until it is restarted");
                log::error!("{reason}");
                self.unavailable.store(Some(Arc::new(reason.clone())));
                return Err(TokenError::Unavailable(reason));
            }
        }
        let keys = keys::discover(&fresh)
            .map_err(|e| TokenError::Failed(format!("cannot list the token's keys: {e}")))?;
        self.keys.store(Arc::new(keys));
        let lost = std::mem::replace(session, fresh);
        // Closing a lost session fails; that is expected.
        let _ = lost.close();
        Ok(())
    }

    /// Logs the User out (every session of the agent). Used at shutdown.
    pub fn logout(&self) -> Result<(), String> {
        let session = self
            .pool
            .pop()
            .ok_or_else(|| "no idle session to log out with".to_string())?;
        let r = session
            .logout()
            .map_err(|e| format!("C_Logout failed: {e}"));
        let _ = self.pool.push(session);
        r
    }

    /// Closes every session and finalises the module.
    pub fn close(self) {
        while let Some(s) = self.pool.pop() {
            let _ = s.close();
        }
        if let Err(e) = self.ctx.finalize() {
            log::warn!("C_Finalize failed: {e}");
        }
    }
}

/// A session taken from the pool; it goes back when dropped, also when an operation panics.
struct Lent<'a> {
    pool: &'a ArrayQueue<Session>,
    session: Option<Session>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            // Cannot fail: only sessions taken from this queue come back to it.
            let _ = self.pool.push(s);
        }
    }
}

/// An operation's failure: from the token (may mean a lost session) or already decided.
pub enum Op {
    Token(CkError),
    Agent(TokenError),
}

/// The slot whose token has the service's serial, or the reason there is none.
fn find_slot(ctx: &Pkcs11, serial: &str, uuid: &str, module: &str) -> Result<Slot, String> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| format!("C_GetSlotList failed: {e}"))?;
    let mut serials = Vec::new();
    for slot in slots {
        let info = ctx
            .get_token_info(slot)
            .map_err(|e| format!("C_GetTokenInfo failed: {e}"))?;
        let s = info.serial_number().trim().to_ascii_lowercase();
        if s == serial {
            return Ok(slot);
        }
        serials.push(s);
    }
    Err(if serials.is_empty() {
        format!(
            "{module} shows no token: key4c.apiKey is not the API key of the module's service, or key4c.uuid names another service (the module logs which)"
        )
    } else {
        format!(
            "no token of service {uuid} (serial {serial}) in {module}: its tokens have serial {}; key4c.uuid is wrong",
            serials.join(", ")
        )
    })
}
