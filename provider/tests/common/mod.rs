//! Test support: load the built module (`libkey4c_pkcs11.so`) with dlopen, call it through its
//! raw 3.0 function list, and run each scenario in its own process with its own store, so
//! the module's process-wide state never leaks from one test into another.

#![allow(dead_code)]
#![allow(clippy::macro_metavars_in_unsafe)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

pub use key4c_pkcs11::token::error::ckr_name;

#[path = "../../../test-support/require.rs"]
pub mod require;
pub use pkcs11_sys::*;

/// The PINs of the vendor's examples (all valid under the policy).
pub const SO_PIN: &[u8] = b"So-Pin.2024x";
pub const USER_PIN: &[u8] = b"Us3r#Pin.9k";
pub const OTHER_PIN: &[u8] = b"Key4C-Pin.9x";
pub const WRONG_PIN: &[u8] = b"Wr0ng-Pin.x";

/// Asserts a return code, naming both codes on failure.
#[macro_export]
macro_rules! assert_rv {
    ($got:expr, $want:expr) => {{
        let got: CK_RV = $got;
        let want: CK_RV = $want;
        assert!(
            got == want,
            "got {} (0x{:x}), expected {} (0x{:x})",
            ckr_name(got),
            got,
            ckr_name(want),
            want
        );
    }};
}

/// Calls a function of the raw list: `call!(lib, C_Login, h, CKU_USER, ...)`.
#[macro_export]
macro_rules! call {
    ($lib:expr, $f:ident $(, $arg:expr)* $(,)?) => {
        unsafe { ($lib.f().$f.expect(stringify!($f)))($($arg),*) }
    };
}

/// Path of the cdylib cargo built with this test binary: `cargo test` leaves the fresh one
/// beside the test in `deps/` (it copies it up to `target/<profile>/` only on `cargo build`).
pub fn module_path() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let deps = exe.parent().expect("deps dir");
    let fresh = deps.join("libkey4c_pkcs11.so");
    if fresh.exists() {
        return fresh;
    }
    deps.parent()
        .expect("target dir")
        .join("libkey4c_pkcs11.so")
}

/// The module, loaded with dlopen.
pub struct Lib {
    _lib: libloading::Library,
    list: *const CK_FUNCTION_LIST_3_0,
}

// The function list is an immutable static of the module.
unsafe impl Sync for Lib {}
unsafe impl Send for Lib {}

impl Lib {
    /// Loads the module and fetches its 3.0 interface.
    pub fn load() -> Lib {
        Lib::load_from(&module_path())
    }

    /// Loads the module at `path` (another build of it).
    pub fn load_from(path: &Path) -> Lib {
        let lib = unsafe { libloading::Library::new(path) }.expect("dlopen the module");
        let get: libloading::Symbol<
            unsafe extern "C" fn(
                CK_UTF8CHAR_PTR,
                CK_VERSION_PTR,
                CK_INTERFACE_PTR_PTR,
                CK_FLAGS,
            ) -> CK_RV,
        > = unsafe { lib.get(b"C_GetInterface\0") }.expect("C_GetInterface symbol");
        let mut iface: CK_INTERFACE_PTR = std::ptr::null_mut();
        let rv = unsafe { get(std::ptr::null_mut(), std::ptr::null_mut(), &mut iface, 0) };
        assert_eq!(rv, CKR_OK);
        let list = unsafe { (*iface).pFunctionList } as *const CK_FUNCTION_LIST_3_0;
        Lib { _lib: lib, list }
    }

    /// The raw function list.
    pub fn f(&self) -> &CK_FUNCTION_LIST_3_0 {
        unsafe { &*self.list }
    }

    /// C_Initialize(NULL) must succeed.
    pub fn init(&self) {
        assert_rv!(call!(self, C_Initialize, std::ptr::null_mut()), CKR_OK);
    }

    /// The first (only) slot.
    pub fn slot(&self) -> CK_SLOT_ID {
        let mut slots = [0 as CK_SLOT_ID; 4];
        let mut n: CK_ULONG = 4;
        assert_rv!(
            call!(self, C_GetSlotList, CK_TRUE, slots.as_mut_ptr(), &mut n),
            CKR_OK
        );
        assert_eq!(n, 1);
        slots[0]
    }

    pub fn token_info(&self) -> CK_TOKEN_INFO {
        let mut info = CK_TOKEN_INFO::default();
        assert_rv!(call!(self, C_GetTokenInfo, self.slot(), &mut info), CKR_OK);
        info
    }

    /// The token flags.
    pub fn flags(&self) -> CK_FLAGS {
        self.token_info().flags
    }

    pub fn init_token(&self, so_pin: &[u8], label: &str) -> CK_RV {
        let mut l = [b' '; 32];
        l[..label.len()].copy_from_slice(label.as_bytes());
        call!(
            self,
            C_InitToken,
            self.slot(),
            so_pin.as_ptr() as *mut u8,
            so_pin.len() as CK_ULONG,
            l.as_mut_ptr()
        )
    }

    pub fn open(&self, rw: bool) -> Result<CK_SESSION_HANDLE, CK_RV> {
        let mut h = 0;
        let flags = CKF_SERIAL_SESSION | if rw { CKF_RW_SESSION } else { 0 };
        let rv = call!(
            self,
            C_OpenSession,
            self.slot(),
            flags,
            std::ptr::null_mut(),
            None,
            &mut h
        );
        if rv == CKR_OK {
            Ok(h)
        } else {
            Err(rv)
        }
    }

    pub fn open_rw(&self) -> CK_SESSION_HANDLE {
        self.open(true)
            .unwrap_or_else(|rv| panic!("C_OpenSession: {}", ckr_name(rv)))
    }

    pub fn login(&self, h: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: &[u8]) -> CK_RV {
        call!(
            self,
            C_Login,
            h,
            user,
            pin.as_ptr() as *mut u8,
            pin.len() as CK_ULONG
        )
    }

    pub fn logout(&self, h: CK_SESSION_HANDLE) -> CK_RV {
        call!(self, C_Logout, h)
    }

    pub fn init_pin(&self, h: CK_SESSION_HANDLE, pin: &[u8]) -> CK_RV {
        call!(
            self,
            C_InitPIN,
            h,
            pin.as_ptr() as *mut u8,
            pin.len() as CK_ULONG
        )
    }

    pub fn set_pin(&self, h: CK_SESSION_HANDLE, old: &[u8], new: &[u8]) -> CK_RV {
        call!(
            self,
            C_SetPIN,
            h,
            old.as_ptr() as *mut u8,
            old.len() as CK_ULONG,
            new.as_ptr() as *mut u8,
            new.len() as CK_ULONG
        )
    }

    pub fn state(&self, h: CK_SESSION_HANDLE) -> CK_STATE {
        let mut info = CK_SESSION_INFO::default();
        assert_rv!(call!(self, C_GetSessionInfo, h, &mut info), CKR_OK);
        info.state
    }

    pub fn close(&self, h: CK_SESSION_HANDLE) -> CK_RV {
        call!(self, C_CloseSession, h)
    }

    /// Initialises the token with SO_PIN and sets USER_PIN; leaves no session open.
    pub fn provision(&self) {
        assert_rv!(self.init_token(SO_PIN, "key4c test"), CKR_OK);
        let h = self.open_rw();
        assert_rv!(self.login(h, CKU_SO, SO_PIN), CKR_OK);
        assert_rv!(self.init_pin(h, USER_PIN), CKR_OK);
        assert_rv!(self.close(h), CKR_OK);
    }
}

/// Environment variable naming the test the child process runs.
const CHILD: &str = "KEY4C_TEST_CHILD";
/// Environment variable naming the step of a multi-process test.
const STEP: &str = "KEY4C_TEST_STEP";

/// Runs `body` in a child process with a fresh store and this config text (the store path and
/// a low KDF cost are added). Returns in the parent once the child passed.
pub fn isolated(name: &str, config: &str, body: impl FnOnce()) {
    if std::env::var(CHILD).as_deref() == Ok(name) {
        body();
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("key4c.toml");
    let store = dir.path().join("store");
    let text = format!(
        "store = {:?}\nkdf_iterations = 1000\n{config}\n",
        store.display().to_string()
    );
    std::fs::write(&conf, text).expect("write config");
    let out = Command::new(std::env::current_exe().expect("exe"))
        .args([name, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD, name)
        .env("KEY4C_CONF", &conf)
        // The record that notices restored stores (store::rollback) stays with the test.
        .env("KEY4C_STATE_DIR", dir.path().join("state"))
        .env_remove("KEY4C_STORE")
        .env_remove(STEP)
        .output()
        .expect("spawn child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child test {name} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert_ran_one(name, &out);
}

/// In a multi-process test: the step this process was started for (`None` in the first).
pub fn step() -> Option<String> {
    std::env::var(STEP).ok()
}

/// In a multi-process test: runs the same test again in a new process as `step`, with the
/// same store, and returns how it ended. Panics unless exactly that one test started (a
/// renamed test would run nothing, and "nothing failed" would pass).
pub fn run_step(name: &str, step: &str) -> ExitStatus {
    let out = Command::new(std::env::current_exe().expect("exe"))
        .args([name, "--exact", "--nocapture", "--test-threads", "1"])
        .env(STEP, step)
        .output()
        .expect("spawn step");
    // Shown with the parent's output (libtest prints it when the parent fails).
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert_ran_one(name, &out);
    out.status
}

/// The number of tests a run of a test binary started: libtest's first line, "running N
/// test(s)" (printed before any test runs, so a child killed in its test has it too).
pub fn tests_started(stdout: &str) -> Option<usize> {
    stdout.lines().find_map(|l| {
        let mut words = l.strip_prefix("running ")?.split(' ');
        let n = words.next()?.parse().ok()?;
        matches!(words.next(), Some("test" | "tests")).then_some(n)
    })
}

/// Panics unless the child run of this binary for test `name` started exactly one test and,
/// when it exited successfully, libtest reported exactly that one passed.
pub fn assert_ran_one(name: &str, out: &std::process::Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        tests_started(&stdout),
        Some(1),
        "child run of {name}: not exactly one test started (renamed or filtered out?):\n{stdout}"
    );
    if out.status.success() {
        assert!(
            stdout.contains("test result: ok. 1 passed; 0 failed"),
            "child run of {name} exited 0 without one passed test:\n{stdout}"
        );
    }
}

/// The store directory of the running isolated test.
pub fn store_dir() -> PathBuf {
    let conf = std::env::var("KEY4C_CONF").expect("KEY4C_CONF");
    Path::new(&conf).parent().expect("conf dir").join("store")
}

/// A fixed-size blank-padded field as text.
pub fn text(field: &[u8]) -> String {
    String::from_utf8_lossy(field).trim_end().to_string()
}

/// An attribute value for a template: the bytes PKCS#11 expects for it.
pub enum A<'a> {
    /// CK_ULONG.
    U(CK_ULONG),
    /// CK_BBOOL.
    B(bool),
    /// Bytes.
    S(&'a [u8]),
}

/// Owned encoded template; `attrs()` gives CK_ATTRIBUTEs pointing into it.
pub struct Tpl {
    values: Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>,
    attrs: Vec<CK_ATTRIBUTE>,
}

impl Tpl {
    pub fn new(items: &[(CK_ATTRIBUTE_TYPE, A)]) -> Tpl {
        let values = items
            .iter()
            .map(|(t, a)| {
                let v = match a {
                    A::U(u) => u.to_ne_bytes().to_vec(),
                    A::B(b) => vec![u8::from(*b)],
                    A::S(s) => s.to_vec(),
                };
                (*t, v)
            })
            .collect();
        let mut t = Tpl {
            values,
            attrs: Vec::new(),
        };
        t.attrs = t
            .values
            .iter_mut()
            .map(|(ty, v)| CK_ATTRIBUTE {
                type_: *ty,
                pValue: v.as_mut_ptr() as CK_VOID_PTR,
                ulValueLen: v.len() as CK_ULONG,
            })
            .collect();
        t
    }

    pub fn ptr(&mut self) -> CK_ATTRIBUTE_PTR {
        self.attrs.as_mut_ptr()
    }

    pub fn len(&self) -> CK_ULONG {
        self.attrs.len() as CK_ULONG
    }
}

impl Lib {
    /// C_CreateObject.
    pub fn create(
        &self,
        h: CK_SESSION_HANDLE,
        items: &[(CK_ATTRIBUTE_TYPE, A)],
    ) -> Result<CK_OBJECT_HANDLE, CK_RV> {
        let mut t = Tpl::new(items);
        let mut o = 0;
        match call!(self, C_CreateObject, h, t.ptr(), t.len(), &mut o) {
            CKR_OK => Ok(o),
            rv => Err(rv),
        }
    }

    /// Every match of a find.
    pub fn find(
        &self,
        h: CK_SESSION_HANDLE,
        items: &[(CK_ATTRIBUTE_TYPE, A)],
    ) -> Vec<CK_OBJECT_HANDLE> {
        let mut t = Tpl::new(items);
        assert_rv!(call!(self, C_FindObjectsInit, h, t.ptr(), t.len()), CKR_OK);
        let mut out = Vec::new();
        loop {
            let mut buf = [0 as CK_OBJECT_HANDLE; 7];
            let mut n = 0;
            assert_rv!(
                call!(self, C_FindObjects, h, buf.as_mut_ptr(), 7, &mut n),
                CKR_OK
            );
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n as usize]);
        }
        assert_rv!(call!(self, C_FindObjectsFinal, h), CKR_OK);
        out
    }

    /// One attribute's value (CKR_OK expected).
    pub fn attr(
        &self,
        h: CK_SESSION_HANDLE,
        o: CK_OBJECT_HANDLE,
        ty: CK_ATTRIBUTE_TYPE,
    ) -> Vec<u8> {
        let mut a = CK_ATTRIBUTE {
            type_: ty,
            pValue: std::ptr::null_mut(),
            ulValueLen: 0,
        };
        assert_rv!(call!(self, C_GetAttributeValue, h, o, &mut a, 1), CKR_OK);
        let mut buf = vec![0u8; a.ulValueLen as usize];
        a.pValue = buf.as_mut_ptr() as CK_VOID_PTR;
        assert_rv!(call!(self, C_GetAttributeValue, h, o, &mut a, 1), CKR_OK);
        buf.truncate(a.ulValueLen as usize);
        buf
    }

    /// The CK_RV of reading one attribute (with a large buffer).
    pub fn attr_rv(
        &self,
        h: CK_SESSION_HANDLE,
        o: CK_OBJECT_HANDLE,
        ty: CK_ATTRIBUTE_TYPE,
    ) -> (CK_RV, CK_ULONG) {
        let mut buf = vec![0u8; 8192];
        let mut a = CK_ATTRIBUTE {
            type_: ty,
            pValue: buf.as_mut_ptr() as CK_VOID_PTR,
            ulValueLen: 8192,
        };
        let rv = call!(self, C_GetAttributeValue, h, o, &mut a, 1);
        (rv, a.ulValueLen)
    }

    pub fn set_attrs(
        &self,
        h: CK_SESSION_HANDLE,
        o: CK_OBJECT_HANDLE,
        items: &[(CK_ATTRIBUTE_TYPE, A)],
    ) -> CK_RV {
        let mut t = Tpl::new(items);
        call!(self, C_SetAttributeValue, h, o, t.ptr(), t.len())
    }

    /// Single-part C_Sign of `data` with `key` and a parameterless `mechanism`.
    pub fn sign(
        &self,
        h: CK_SESSION_HANDLE,
        key: CK_OBJECT_HANDLE,
        mechanism: CK_MECHANISM_TYPE,
        data: &[u8],
    ) -> Vec<u8> {
        let mut m = CK_MECHANISM {
            mechanism,
            pParameter: std::ptr::null_mut(),
            ulParameterLen: 0,
        };
        assert_rv!(call!(self, C_SignInit, h, &mut m, key), CKR_OK);
        let mut sig = vec![0u8; 1024];
        let mut len = sig.len() as CK_ULONG;
        assert_rv!(
            call!(
                self,
                C_Sign,
                h,
                data.as_ptr() as *mut u8,
                data.len() as CK_ULONG,
                sig.as_mut_ptr(),
                &mut len
            ),
            CKR_OK
        );
        sig.truncate(len as usize);
        sig
    }

    /// A User session on a provisioned token.
    pub fn user_session(&self) -> CK_SESSION_HANDLE {
        let h = self.open_rw();
        assert_rv!(self.login(h, CKU_USER, USER_PIN), CKR_OK);
        h
    }
}

/// Bytes from hex digits (test vectors).
pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A CK_ULONG attribute's bytes.
pub fn ul(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

// ---- Helpers of the reliability tests (reliability_*.rs): child processes with time limits,
// ---- watchdogs, reproducible randomness, store file snapshots.

/// Runs this test binary again as `step` (same store and configuration), with `envs` added,
/// and kills it once it has run for `limit`: `Err` names the hang, with what it printed.
pub fn run_step_limited(
    name: &str,
    step: &str,
    envs: &[(&str, String)],
    limit: std::time::Duration,
) -> Result<std::process::Output, String> {
    let mut cmd = Command::new(std::env::current_exe().expect("exe"));
    cmd.args([name, "--exact", "--nocapture", "--test-threads", "1"])
        .env(STEP, step)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn step");
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    match status {
        Some(status) => {
            let out = std::process::Output {
                status,
                stdout,
                stderr,
            };
            assert_ran_one(name, &out);
            Ok(out)
        }
        None => Err(format!(
            "step {step} still running after {limit:?} (killed): a hang\n{}\n{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        )),
    }
}

/// Starts this test binary as `step` without waiting for it (for kill tests). Its stdout is
/// not read (the parent kills it at any point, even before libtest's first line): a worker
/// that ran no test exits by itself, which the kill tests fail on ("died by itself").
pub fn spawn_step(name: &str, step: &str, envs: &[(&str, String)]) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().expect("exe"));
    cmd.args([name, "--exact", "--nocapture", "--test-threads", "1"])
        .env(STEP, step)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn step")
}

/// Aborts the whole process, failing the test, unless dropped within `limit`: a deadlock or
/// a hang becomes a failure with a message instead of a stuck CI run.
pub struct Watchdog {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

pub fn watchdog(what: &str, limit: std::time::Duration) -> Watchdog {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    let what = what.to_string();
    std::thread::spawn(move || {
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if flag.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if !flag.load(std::sync::atomic::Ordering::SeqCst) {
            eprintln!("WATCHDOG: {what} still running after {limit:?}: deadlock or hang");
            std::process::abort();
        }
    });
    Watchdog { done }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A small reproducible PRNG (xorshift64*).
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The seed of a randomised test: `KEY4C_TEST_SEED`, else the clock. Printed, so a failing
/// run can be replayed with the same kill points.
pub fn test_seed(what: &str) -> u64 {
    let seed = std::env::var("KEY4C_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("{what}: KEY4C_TEST_SEED={seed}");
    seed
}

/// `n` scaled by `KEY4C_RELIABILITY_SCALE` (default 1; CI keeps 1, a soak run raises it).
pub fn scaled(n: usize) -> usize {
    let k: f64 = std::env::var("KEY4C_RELIABILITY_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    ((n as f64 * k).round() as usize).max(1)
}

/// Every file under `dir` (but the queue of processes waiting for a store), by path relative
/// to it.
pub fn files_under(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name() == key4c_pkcs11::store::QUEUE_DIR {
                // Who waits for the store: no part of its data.
            } else if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                let rel = path.strip_prefix(dir).unwrap_or(&path);
                out.insert(rel.display().to_string(), bytes);
            }
        }
    }
    out
}

/// Panics unless `rv` is one of `allowed` (the codes the specification allows this call
/// here), naming the call and every code.
pub fn expect_rv(what: &str, rv: CK_RV, allowed: &[CK_RV]) {
    assert!(
        allowed.contains(&rv),
        "{what} returned {} (0x{rv:x}); allowed: {:?}",
        ckr_name(rv),
        allowed.iter().map(|&r| ckr_name(r)).collect::<Vec<_>>()
    );
}

/// [`isolated`], and the lines the child prints to stderr that start with `REPORT ` are
/// shown by the parent even when the child passes (counts and findings of a soak test).
pub fn isolated_reporting(name: &str, config: &str, body: impl FnOnce()) {
    if std::env::var(CHILD).as_deref() == Ok(name) {
        body();
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("key4c.toml");
    let store = dir.path().join("store");
    let text = format!(
        "store = {:?}\nkdf_iterations = 1000\n{config}\n",
        store.display().to_string()
    );
    std::fs::write(&conf, text).expect("write config");
    let out = Command::new(std::env::current_exe().expect("exe"))
        .args([name, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD, name)
        .env("KEY4C_CONF", &conf)
        // The record that notices restored stores (store::rollback) stays with the test.
        .env("KEY4C_STATE_DIR", dir.path().join("state"))
        .env_remove("KEY4C_STORE")
        .env_remove(STEP)
        .output()
        .expect("spawn child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    {
        // Straight to the process's stderr: the test harness captures eprintln!.
        use std::io::Write;
        let mut err = std::io::stderr();
        for line in stderr
            .lines()
            .filter(|l| l.starts_with("REPORT ") || l.starts_with("SKIPPED "))
        {
            let _ = writeln!(err, "{line}");
        }
    }
    assert!(
        out.status.success(),
        "child test {name} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert_ran_one(name, &out);
}

/// Gives a store a test wrote by hand the modes the module makes and requires (directories
/// 0700, files 0600): it refuses looser ones before reading them (store::access).
pub fn make_private(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            make_private(&entry.path());
        } else if kind.is_file() {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
}

/// A tmpfs of a few MiB (a disk that fills up), unmounted on drop; `None` when this process may
/// not mount one (it needs root with CAP_SYS_ADMIN: tests check that with `require`).
pub struct SmallFs {
    pub path: PathBuf,
}

impl SmallFs {
    pub fn mount(path: &Path, size: &str) -> Option<SmallFs> {
        std::fs::create_dir_all(path).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then(|| SmallFs {
            path: path.to_path_buf(),
        })
    }

    /// [`SmallFs::mount`] under the CI rule (`require`): root-only, so in CI (root) a failed
    /// mount fails the test; elsewhere `None` after saying what is missing.
    pub fn mount_required(path: &Path, size: &str) -> Option<SmallFs> {
        let fs = SmallFs::mount(path, size);
        let present = require::check(&[
            require::root("mounts a tmpfs"),
            require::custom(
                &format!("a {size} tmpfs for the store"),
                fs.is_some(),
                "needs root with CAP_SYS_ADMIN",
            ),
        ]);
        fs.filter(|_| present)
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}
