//! The C ABI: every `C_*` entry point, the function lists and interfaces, and the conversion
//! of raw pointers and buffers into safe Rust values. All `unsafe` code of the module is here.
//!
//! Every entry point is declared with [`cryptoki_fn!`], which gives it the same prologue and
//! epilogue: a panic never crosses the boundary (it becomes `CKR_GENERAL_ERROR` and a log
//! line), and a `token::Error` becomes its `CK_RV` in one place ([`Error::ckr`]).

// Every `C_*` function has the safety contract of the PKCS#11 specification: pointers are
// either NULL or valid for the lengths the caller passes.
#![allow(clippy::missing_safety_doc)]
// Arguments keep the names the specification gives them.
#![allow(non_snake_case)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use parking_lot::Mutex;
use pkcs11_sys::*;

use crate::token::attributes::{self, RawAttribute, RawLen, RawValue};
use crate::token::{Error, Result, Token};

/// Declares an exported `C_*` entry point whose body returns `Result<()>`.
///
/// An entry point whose first argument is a CK_SESSION_HANDLE checks that session before
/// anything else, so an invalid session is CKR_SESSION_HANDLE_INVALID whatever else is wrong
/// with the call (a NULL pointer, an unknown mechanism or template attribute: PKCS#11 3.0 section 5.1
/// leaves the order open, and the session is what every other check depends on). `unchecked`
/// declares one that must answer the same whatever the session (one the token does not
/// implement).
macro_rules! cryptoki_fn {
    (unchecked $(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> CK_RV {
            $crate::abi::entry(stringify!($name), move || -> $crate::token::Result<()> { $body })
        }
    };
    ($(#[$meta:meta])* fn $name:ident($session:ident: CK_SESSION_HANDLE $(, $arg:ident: $ty:ty)* $(,)?) $body:block) => {
        $(#[$meta])*
        #[no_mangle]
        pub unsafe extern "C" fn $name($session: CK_SESSION_HANDLE $(, $arg: $ty)*) -> CK_RV {
            $crate::abi::entry(stringify!($name), move || -> $crate::token::Result<()> {
                $crate::abi::token()?.session($session)?;
                $body
            })
        }
    };
    ($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> CK_RV {
            $crate::abi::entry(stringify!($name), move || -> $crate::token::Result<()> { $body })
        }
    };
}

mod cipher;
mod function_list;
mod general;
mod mechanism;
mod object;
mod random;
mod session;
mod sign;
mod slot;
mod unsupported;

pub use function_list::{C_GetFunctionList, C_GetInterface, C_GetInterfaceList};

/// The initialised module: the token, and the fork generation it belongs to.
struct Module {
    generation: u64,
    token: Arc<Token>,
}

/// The module, read lock-free on every call.
static MODULE: ArcSwapOption<Module> = ArcSwapOption::const_empty();
/// Serialises C_Initialize and C_Finalize (never taken by other calls).
static LIFECYCLE: Mutex<()> = Mutex::new(());
/// Bumped in every child after fork(): a module initialised before belongs to the parent.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

extern "C" fn forked_child() {
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// Registers the fork handler once per process.
fn watch_forks() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `forked_child` only touches an atomic, which is async-signal-safe.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(forked_child)) };
        if rc != 0 {
            log::warn!("pthread_atfork failed ({rc}): a forked child may not see CKR_CRYPTOKI_NOT_INITIALIZED");
        }
    });
}

/// Runs one entry point's body: panics become CKR_GENERAL_ERROR, errors their CK_RV.
fn entry(name: &str, body: impl FnOnce() -> Result<()>) -> CK_RV {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(e)) => {
            match &e {
                Error::DeviceError(_) | Error::GeneralError(_) => log::error!("{name}: {e}"),
                _ => log::debug!("{name}: {e}"),
            }
            e.ckr()
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            log::error!("{name}: internal error ({what}); returning CKR_GENERAL_ERROR");
            CKR_GENERAL_ERROR
        }
    }
}

/// The token, if C_Initialize ran in this process (a forked child must initialise again).
fn token() -> Result<Arc<Token>> {
    match &*MODULE.load() {
        Some(m) if m.generation == FORK_GENERATION.load(Ordering::Relaxed) => Ok(m.token.clone()),
        _ => Err(Error::CryptokiNotInitialized),
    }
}

/// The caller's input buffer as a slice: NULL is the empty slice only with length 0.
unsafe fn input<'a>(ptr: *const u8, len: CK_ULONG) -> Result<&'a [u8]> {
    let len = usize::try_from(len).map_err(|_| Error::ArgumentsBad)?;
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(Error::ArgumentsBad)
        };
    }
    if len > isize::MAX as usize {
        return Err(Error::ArgumentsBad);
    }
    Ok(std::slice::from_raw_parts(ptr, len))
}

/// Stores `value` through a caller's out-pointer.
unsafe fn output<T>(ptr: *mut T, value: T) -> Result<()> {
    if ptr.is_null() {
        return Err(Error::ArgumentsBad);
    }
    ptr.write_unaligned(value);
    Ok(())
}

/// The length-query protocol for a list: NULL list = count only; too small =
/// CKR_BUFFER_TOO_SMALL with the needed count.
unsafe fn output_list<T: Copy>(list: *mut T, count: *mut CK_ULONG, items: &[T]) -> Result<()> {
    if count.is_null() {
        return Err(Error::ArgumentsBad);
    }
    let needed = items.len() as CK_ULONG;
    if list.is_null() {
        count.write_unaligned(needed);
        return Ok(());
    }
    let room = count.read_unaligned();
    count.write_unaligned(needed);
    if room < needed {
        return Err(Error::BufferTooSmall);
    }
    std::ptr::copy_nonoverlapping(items.as_ptr(), list, items.len());
    Ok(())
}

/// The most attributes one template may have: far beyond any real use, and a bound on work.
pub(crate) const MAX_TEMPLATE: CK_ULONG = 4096;

/// A caller's CK_ATTRIBUTE array as (type, value) pairs. Every attribute's declared length is
/// checked against the attribute policy ([`attributes::raw_len`]: a CK_BBOOL is 1 byte, a byte
/// array at most 1 MiB, ...) before a byte of its value is read, so a template that declares
/// 4 GiB over a 3-byte buffer is CKR_ATTRIBUTE_VALUE_INVALID, never a read past the buffer.
/// The value of an attribute the token does not know is not read at all. The elements of an
/// attribute array (CKA_WRAP_TEMPLATE, ...) are read the same way, one level deep.
unsafe fn template<'a>(ptr: CK_ATTRIBUTE_PTR, count: CK_ULONG) -> Result<Vec<RawAttribute<'a>>> {
    attribute_array(ptr, count, false)
}

unsafe fn attribute_array<'a>(
    ptr: CK_ATTRIBUTE_PTR,
    count: CK_ULONG,
    nested: bool,
) -> Result<Vec<RawAttribute<'a>>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if ptr.is_null() || count > MAX_TEMPLATE {
        return Err(Error::ArgumentsBad);
    }
    (0..count as usize)
        .map(|i| {
            // (An attribute array's elements lie in a caller's byte buffer: maybe unaligned.)
            let a = ptr.add(i).read_unaligned();
            let value = match attributes::raw_len(a.type_, a.ulValueLen as u64, nested)? {
                RawLen::Unread => RawValue::Bytes(&[]),
                RawLen::Bytes(n) => RawValue::Bytes(input(a.pValue as *const u8, n as CK_ULONG)?),
                RawLen::Array(n) => RawValue::Array(attribute_array(
                    a.pValue as CK_ATTRIBUTE_PTR,
                    n as CK_ULONG,
                    true,
                )?),
            };
            Ok((a.type_, value))
        })
        .collect()
}

/// An operation call (C_Sign, C_DigestUpdate, C_EncryptFinal, ...) after its session was
/// checked: its pointers are checked in `body`, and CKR_ARGUMENTS_BAD from them ends the
/// session's operation `operation` (CKF_SIGN, CKF_DIGEST, ...), as every error of these calls
/// does but CKR_BUFFER_TOO_SMALL (PKCS#11 3.0 section 5.2 and the descriptions of C_Encrypt,
/// C_EncryptUpdate, C_EncryptFinal, C_Decrypt..., C_Digest..., C_Sign..., C_Verify...: "a call
/// ... which results in an error terminates the current ... operation").
fn in_operation(
    token: &Token,
    session: CK_SESSION_HANDLE,
    operation: CK_FLAGS,
    body: impl FnOnce() -> Result<()>,
) -> Result<()> {
    match body() {
        Err(Error::ArgumentsBad) => {
            token.session_cancel(session, operation)?;
            Err(Error::ArgumentsBad)
        }
        other => other,
    }
}

/// The output protocol of C_Sign, C_Encrypt, C_Digest, ...: a NULL buffer asks for the
/// length; `*len` always comes back as the length produced or needed.
unsafe fn produce(
    out: *mut u8,
    len: CK_ULONG_PTR,
    f: impl FnOnce(Option<&mut [u8]>) -> Result<usize>,
) -> Result<()> {
    if len.is_null() {
        return Err(Error::ArgumentsBad);
    }
    let buf = if out.is_null() {
        None
    } else {
        let n = usize::try_from(len.read_unaligned()).map_err(|_| Error::ArgumentsBad)?;
        if n > isize::MAX as usize {
            return Err(Error::ArgumentsBad);
        }
        Some(std::slice::from_raw_parts_mut(out, n))
    };
    match f(buf) {
        Ok(n) => {
            len.write_unaligned(n as CK_ULONG);
            Ok(())
        }
        Err(Error::OutputTooSmall(n)) => {
            len.write_unaligned(n as CK_ULONG);
            Err(Error::OutputTooSmall(n))
        }
        Err(e) => Err(e),
    }
}
