//! General-purpose functions (PKCS#11 3.0 section 5.4): C_Initialize, C_Finalize, C_GetInfo.

use std::sync::Arc;

use pkcs11_sys::*;

use std::sync::atomic::Ordering;

use super::{output, token, watch_forks, Module, FORK_GENERATION, LIFECYCLE, MODULE};
use crate::config::Config;
use crate::token::{Error, Token};

cryptoki_fn! {
    /// Validates `CK_C_INITIALIZE_ARGS`, reads the configuration and opens the store.
    fn C_Initialize(pInitArgs: CK_VOID_PTR) {
        if !pInitArgs.is_null() {
            let args = (pInitArgs as *const CK_C_INITIALIZE_ARGS).read_unaligned();
            check_initialize_args(&args)?;
        }
        let _lifecycle = LIFECYCLE.lock();
        watch_forks();
        let generation = FORK_GENERATION.load(Ordering::SeqCst);
        if let Some(m) = MODULE.load_full() {
            if m.generation == generation {
                return Err(Error::CryptokiAlreadyInitialized);
            }
            // Inherited through fork(): the parent owns that store handle. Dropping it here
            // would flush the parent's buffers from the child, so it is let go unclosed; only
            // the inherited descriptors of its files are closed, or they would keep sled's
            // lock for the parent's store alive in this process.
            close_inherited_store_files(m.token.store_path());
            std::mem::forget(MODULE.swap(None));
            std::mem::forget(m);
        }
        let mut config = Config::from_env().map_err(|e| {
            crate::logging::init(&Config::default());
            Error::GeneralError(e)
        })?;
        crate::logging::init(&config);
        config.resolve_store().map_err(Error::GeneralError)?;
        let token = Token::open(config)?;
        MODULE.store(Some(Arc::new(Module { generation, token: Arc::new(token) })));
        Ok(())
    }
}

/// Closes this process's descriptors of files in `store` (the forgotten instance's, after
/// fork()). Nothing uses them: that instance is never touched again.
fn close_inherited_store_files(store: &std::path::Path) {
    let Ok(store) = std::fs::canonicalize(store) else {
        return;
    };
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let inherited: Vec<i32> = fds
        .flatten()
        .filter_map(|e| {
            let fd = e.file_name().to_str()?.parse::<i32>().ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            target.starts_with(&store).then_some(fd)
        })
        .collect();
    for fd in inherited {
        // SAFETY: the descriptor belongs to the store instance this child inherited and
        // forgot; no other code in this process holds it.
        unsafe { libc::close(fd) };
    }
}

fn check_initialize_args(args: &CK_C_INITIALIZE_ARGS) -> crate::token::Result<()> {
    if !args.pReserved.is_null() {
        return Err(Error::ArgumentsBad);
    }
    let given = [
        args.CreateMutex.is_some(),
        args.DestroyMutex.is_some(),
        args.LockMutex.is_some(),
        args.UnlockMutex.is_some(),
    ];
    if given.iter().any(|&g| g != given[0]) {
        return Err(Error::ArgumentsBad);
    }
    // The module locks with the OS's primitives; it cannot run on the caller's mutex
    // callbacks alone, so callbacks without CKF_OS_LOCKING_OK are refused.
    if given[0] && args.flags & CKF_OS_LOCKING_OK == 0 {
        return Err(Error::CantLock);
    }
    Ok(())
}

cryptoki_fn! {
    /// Releases the token and its store: another process may open it afterwards.
    fn C_Finalize(pReserved: CK_VOID_PTR) {
        if !pReserved.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let _lifecycle = LIFECYCLE.lock();
        let token = token()?;
        // Calls still running in other threads hold their own reference; the store closes
        // when the last of them returns.
        MODULE.store(None);
        if Arc::strong_count(&token) == 1 {
            // The last reference: the store closes here, and the next process may open it as
            // soon as this returns.
            let path = token.store_path().to_path_buf();
            drop(token);
            crate::store::wait_released(&path);
        }
        Ok(())
    }
}

cryptoki_fn! {
    /// CK_INFO.
    fn C_GetInfo(pInfo: CK_INFO_PTR) {
        let info = token()?.library_info();
        output(pInfo, info)
    }
}
