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
use std::sync::Arc;

use parking_lot::RwLock;
use pkcs11_sys::*;

use crate::token::{Error, Result, Token};

/// Declares an exported `C_*` entry point whose body returns `Result<()>`.
macro_rules! cryptoki_fn {
    ($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> CK_RV {
            $crate::abi::entry(stringify!($name), move || -> $crate::token::Result<()> { $body })
        }
    };
}

mod function_list;
mod general;
mod random;
mod session;
mod slot;
mod unsupported;

pub use function_list::{C_GetFunctionList, C_GetInterface, C_GetInterfaceList};

/// The initialised module: the token and the process that initialised it.
struct Module {
    pid: u32,
    token: Arc<Token>,
}

static MODULE: RwLock<Option<Module>> = RwLock::new(None);

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
    match &*MODULE.read() {
        Some(m) if m.pid == std::process::id() => Ok(m.token.clone()),
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
