//! Shared harness of the key4c fuzz targets: the module's 3.0 function list (linked in, not
//! dlopen'ed), a per-process store in a temporary directory, a provisioned token with a few
//! keys that every target can use, and helpers that hand the module buffers which are always
//! valid for the lengths passed (with canaries behind them to catch out-of-bounds writes).
//!
//! Contract: a pointer is either NULL or valid for the length passed with it. Nothing else is
//! ever given to the module.

#![allow(clippy::missing_safety_doc)]
// `call!` hands raw pointers to the module: that is what the targets are for.
#![allow(clippy::macro_metavars_in_unsafe)]

use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};
use std::sync::OnceLock;

pub use key4c_pkcs11::token::error::ckr_name;
pub use pkcs11_sys::*;

pub mod gen;
pub mod model;

/// PINs of the fixture (valid under the policy).
pub const SO_PIN: &[u8] = b"So-Pin.2024x";
pub const USER_PIN: &[u8] = b"Us3r#Pin.9k";
pub const OTHER_PIN: &[u8] = b"Key4C-Pin.9x";
pub const WRONG_PIN: &[u8] = b"Wr0ng-Pin.x";

/// Bytes written after every output buffer; the module must never touch them.
const CANARY: u8 = 0xa5;
const CANARY_LEN: usize = 32;

/// The module's 3.0 function list.
pub fn f() -> &'static CK_FUNCTION_LIST_3_0 {
    struct List(*const CK_FUNCTION_LIST_3_0);
    unsafe impl Send for List {}
    unsafe impl Sync for List {}
    static LIST: OnceLock<List> = OnceLock::new();
    let list = LIST.get_or_init(|| {
        let mut iface: CK_INTERFACE_PTR = null_mut();
        let rv =
            unsafe { key4c_pkcs11::abi::C_GetInterface(null_mut(), null_mut(), &mut iface, 0) };
        assert_eq!(rv, CKR_OK, "C_GetInterface");
        List(unsafe { (*iface).pFunctionList } as *const CK_FUNCTION_LIST_3_0)
    });
    unsafe { &*list.0 }
}

/// Calls one function of the list: `call!(C_Login, h, CKU_USER, ...)`.
#[macro_export]
macro_rules! call {
    ($f:ident $(, $arg:expr)* $(,)?) => {
        unsafe { ($crate::f().$f.expect(stringify!($f)))($($arg),*) }
    };
}

/// Asserts CKR_OK with the code's name.
#[macro_export]
macro_rules! ok {
    ($e:expr) => {{
        let rv: CK_RV = $e;
        assert!(
            rv == CKR_OK,
            "{} = {}",
            stringify!($e),
            $crate::ckr_name(rv)
        );
    }};
}

/// Codes no call may return on a healthy store with a valid configuration: a panic
/// (CKR_GENERAL_ERROR), a store failure (CKR_DEVICE_ERROR) or a code that is not PKCS#11.
pub fn check_rv(what: &str, rv: CK_RV) {
    assert!(
        rv != CKR_GENERAL_ERROR && rv != CKR_DEVICE_ERROR && rv != CKR_FUNCTION_FAILED,
        "{what} returned {}",
        ckr_name(rv)
    );
    assert!(
        !matches!(ckr_name(rv), "CKR_UNKNOWN" | "CKR_VENDOR_DEFINED"),
        "{what} returned a code PKCS#11 does not define: 0x{rv:x}"
    );
}

/// Where this process keeps its stores.
pub struct Env {
    /// The token's store (what KEY4C_CONF names).
    pub store: PathBuf,
    /// A provisioned copy of the store, restored by [`reset`].
    pub template: PathBuf,
    /// The fixture's key handles (valid after every reset: handles come from the load order).
    pub keys: Keys,
    _dir: tempfile::TempDir,
}

/// The fixture's token objects.
#[derive(Debug, Clone, Copy, Default)]
pub struct Keys {
    pub ec_pub: CK_OBJECT_HANDLE,
    pub ec_priv: CK_OBJECT_HANDLE,
    pub ed_pub: CK_OBJECT_HANDLE,
    pub ed_priv: CK_OBJECT_HANDLE,
    pub rsa_pub: CK_OBJECT_HANDLE,
    pub rsa_priv: CK_OBJECT_HANDLE,
    pub aes: CK_OBJECT_HANDLE,
    pub hmac: CK_OBJECT_HANDLE,
    pub data: CK_OBJECT_HANDLE,
}

impl Keys {
    /// Every handle, in a fixed order (targets pick keys by index).
    pub fn all(&self) -> [CK_OBJECT_HANDLE; 9] {
        [
            self.ec_pub,
            self.ec_priv,
            self.ed_pub,
            self.ed_priv,
            self.rsa_pub,
            self.rsa_priv,
            self.aes,
            self.hmac,
            self.data,
        ]
    }
}

/// The process's environment: set up on first use (temp dir, KEY4C_CONF with the KDF floor,
/// logging off, a provisioned token with one key of each kind, saved as the template).
pub fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        // /dev/shm keeps sled's fsyncs cheap; any temp dir works.
        let base = std::env::var_os("KEY4C_FUZZ_TMP")
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .unwrap_or_else(|| {
                let shm = Path::new("/dev/shm");
                if shm.is_dir() {
                    shm.to_path_buf()
                } else {
                    std::env::temp_dir()
                }
            });
        let dir = tempfile::Builder::new()
            .prefix("key4c-fuzz-")
            .tempdir_in(base)
            .expect("temp dir");
        let store = dir.path().join("store");
        let template = dir.path().join("template");
        let conf = dir.path().join("key4c.toml");
        std::fs::write(
            &conf,
            format!(
                // The targets put copies of one template store back again and again: that
                // is what a restore looks like (store::rollback), so that check is off.
                "store = {:?}\nkdf_iterations = 1000\nlog_level = \"off\"\nrestore_check = false\n",
                store.display().to_string()
            ),
        )
        .expect("config");
        std::env::set_var("KEY4C_CONF", &conf);
        std::env::remove_var("KEY4C_STORE");
        std::env::set_var("KEY4C_LOG", "off");
        std::env::remove_var("KEY4C_LOG_FILE");
        let keys = provision();
        ok!(call!(C_Finalize, null_mut()));
        copy_dir(&store, &template);
        ok!(call!(C_Initialize, null_mut()));
        Env {
            store,
            template,
            keys,
            _dir: dir,
        }
    })
}

/// Puts the token back as the template has it, initialised, with no session.
pub fn reset() {
    let env = env();
    let _ = call!(C_Finalize, null_mut());
    wait_released(&env.store);
    let _ = std::fs::remove_dir_all(&env.store);
    copy_dir(&env.template, &env.store);
    ok!(call!(C_Initialize, null_mut()));
}

/// Waits (up to 10 s) until no sled instance holds the store in `dir`: after C_Finalize, or
/// after a `sled::Db` is dropped, sled's I/O threads may still write to the directory for a
/// moment (the snapshot index among others). Deleting or refilling the directory before that
/// would let a stale instance write into the next input's store.
pub fn wait_released(dir: &Path) {
    use std::os::unix::io::AsRawFd;
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join("db"))
    else {
        return;
    };
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(10) {
        // sled holds an exclusive flock on `db` for as long as any part of it lives.
        // Retried on EINTR (libFuzzer's own timer signal): eintr.rs.
        if key4c_pkcs11::eintr::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB).is_ok() {
            key4c_pkcs11::eintr::flock(file.as_raw_fd(), libc::LOCK_UN).expect("unlock");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    panic!(
        "the store in {} is still held 10 s after it was let go",
        dir.display()
    );
}

/// Gives a store the modes the module makes and requires (0700 directories, 0600 files):
/// stores the targets build or copy are refused otherwise, before the module reads them.
pub fn make_private(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    for entry in entries.flatten() {
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => make_private(&entry.path()),
            Ok(kind) if kind.is_file() => {
                let _ =
                    std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600));
            }
            _ => {}
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    copy_files(from, to);
    make_private(to);
}

fn copy_files(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        let kind = entry.file_type().expect("type");
        if kind.is_dir() {
            copy_files(&entry.path(), &target);
        } else if kind.is_file() {
            // Not the sockets of the processes using the store.
            // EINTR from libFuzzer's timer signal once failed a 958 s run here: retried.
            key4c_pkcs11::eintr::copy(&entry.path(), &target).expect("copy");
        }
    }
}

/// The one slot.
pub fn slot() -> CK_SLOT_ID {
    let mut s = [0 as CK_SLOT_ID; 2];
    let mut n: CK_ULONG = 2;
    ok!(call!(C_GetSlotList, CK_TRUE, s.as_mut_ptr(), &mut n));
    s[0]
}

/// Opens a session (R/W or not).
pub fn open(rw: bool) -> CK_SESSION_HANDLE {
    let mut h = 0;
    let flags = CKF_SERIAL_SESSION | if rw { CKF_RW_SESSION } else { 0 };
    ok!(call!(
        C_OpenSession,
        slot(),
        flags,
        null_mut(),
        None,
        &mut h
    ));
    h
}

/// C_Login with a PIN.
pub fn login(h: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: &[u8]) -> CK_RV {
    let mut pin = pin.to_vec();
    call!(C_Login, h, user, pin.as_mut_ptr(), pin.len() as CK_ULONG)
}

/// An encoded attribute template owning its values.
#[derive(Default, Debug)]
pub struct Template {
    values: Vec<(CK_ATTRIBUTE_TYPE, Option<Vec<u8>>, CK_ULONG)>,
    attrs: Vec<CK_ATTRIBUTE>,
}

impl Template {
    /// Adds an attribute with a value.
    pub fn add(&mut self, ty: CK_ATTRIBUTE_TYPE, value: &[u8]) -> &mut Self {
        self.values
            .push((ty, Some(value.to_vec()), value.len() as CK_ULONG));
        self
    }

    /// Adds an attribute with a NULL value pointer and this length.
    pub fn add_null(&mut self, ty: CK_ATTRIBUTE_TYPE, len: CK_ULONG) -> &mut Self {
        self.values.push((ty, None, len));
        self
    }

    pub fn ulong(&mut self, ty: CK_ATTRIBUTE_TYPE, v: CK_ULONG) -> &mut Self {
        self.add(ty, &v.to_ne_bytes())
    }

    pub fn bool(&mut self, ty: CK_ATTRIBUTE_TYPE, v: bool) -> &mut Self {
        self.add(ty, &[u8::from(v)])
    }

    /// The CK_ATTRIBUTE array (valid until the template changes).
    pub fn ptr(&mut self) -> CK_ATTRIBUTE_PTR {
        self.attrs = self
            .values
            .iter_mut()
            .map(|(ty, v, len)| CK_ATTRIBUTE {
                type_: *ty,
                pValue: v
                    .as_mut()
                    .map_or(null_mut(), |v| v.as_mut_ptr() as CK_VOID_PTR),
                ulValueLen: *len,
            })
            .collect();
        if self.attrs.is_empty() {
            null_mut()
        } else {
            self.attrs.as_mut_ptr()
        }
    }

    pub fn len(&self) -> CK_ULONG {
        self.values.len() as CK_ULONG
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// An output buffer: NULL (a length query) or `len` bytes followed by canaries.
pub struct Out {
    buf: Option<Vec<u8>>,
    len: usize,
    /// What the caller passes as `*pulLen`.
    pub ul: CK_ULONG,
}

impl Out {
    /// A NULL buffer (length query); `*pulLen` is `ul` on input.
    pub fn null(ul: CK_ULONG) -> Out {
        Out {
            buf: None,
            len: 0,
            ul,
        }
    }

    /// A buffer of `len` bytes.
    pub fn with_len(len: usize) -> Out {
        let mut buf = vec![0u8; len + CANARY_LEN];
        buf[len..].fill(CANARY);
        Out {
            buf: Some(buf),
            len,
            ul: len as CK_ULONG,
        }
    }

    pub fn ptr(&mut self) -> CK_BYTE_PTR {
        self.buf.as_mut().map_or(null_mut(), |b| b.as_mut_ptr())
    }

    /// Checks the canaries and the PKCS#11 length protocol of section 5.2 after a call.
    pub fn check(&self, what: &str, rv: CK_RV) {
        if let Some(buf) = &self.buf {
            assert!(
                buf[self.len..].iter().all(|&b| b == CANARY),
                "{what} wrote past the {} bytes it was given",
                self.len
            );
            if rv == CKR_OK {
                assert!(
                    self.ul as usize <= self.len,
                    "{what}: CKR_OK with *pulLen = {} > buffer {}",
                    self.ul,
                    self.len
                );
            }
            if rv == CKR_BUFFER_TOO_SMALL {
                assert!(
                    self.ul as usize > self.len,
                    "{what}: CKR_BUFFER_TOO_SMALL but *pulLen = {} fits in {}",
                    self.ul,
                    self.len
                );
            }
        }
    }

    /// The bytes produced (after CKR_OK with a buffer).
    pub fn bytes(&self) -> &[u8] {
        match &self.buf {
            Some(b) => &b[..(self.ul as usize).min(self.len)],
            None => &[],
        }
    }
}

/// An input buffer: bytes, or NULL with a length (which the module must refuse when nonzero).
pub enum In {
    Bytes(Vec<u8>),
    Null(CK_ULONG),
}

impl In {
    pub fn ptr(&mut self) -> CK_BYTE_PTR {
        match self {
            In::Bytes(b) if !b.is_empty() => b.as_mut_ptr(),
            // An empty Vec's pointer is dangling: pass a real one-byte buffer instead.
            In::Bytes(_) => EMPTY.with(|e| e.as_ptr() as CK_BYTE_PTR),
            In::Null(_) => null_mut(),
        }
    }

    pub fn len(&self) -> CK_ULONG {
        match self {
            In::Bytes(b) => b.len() as CK_ULONG,
            In::Null(n) => *n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

thread_local! {
    static EMPTY: [u8; 1] = const { [0] };
}

/// A mechanism with its parameter block, owning every buffer it points to.
pub struct Mech {
    pub mech: CK_MECHANISM,
    _param: Vec<u8>,
    _gcm: Option<Box<CK_GCM_PARAMS>>,
    _oaep: Option<Box<CK_RSA_PKCS_OAEP_PARAMS>>,
    _eddsa: Option<Box<CK_EDDSA_PARAMS>>,
    _pss: Option<Box<CK_RSA_PKCS_PSS_PARAMS>>,
    _bufs: Vec<In>,
}

impl Mech {
    /// No parameter.
    pub fn plain(ty: CK_MECHANISM_TYPE) -> Mech {
        Mech::raw(ty, None)
    }

    /// The parameter as raw bytes (only for parameters without pointers), or NULL with a
    /// length.
    pub fn raw(ty: CK_MECHANISM_TYPE, param: Option<Vec<u8>>) -> Mech {
        Mech::raw_len(ty, param, 0)
    }

    /// NULL parameter with a nonzero length when `param` is None.
    pub fn raw_len(ty: CK_MECHANISM_TYPE, param: Option<Vec<u8>>, null_len: CK_ULONG) -> Mech {
        let mut param_buf = param.clone().unwrap_or_default();
        let (ptr, len) = match &param {
            Some(p) if !p.is_empty() => (param_buf.as_mut_ptr() as CK_VOID_PTR, p.len()),
            Some(_) => (EMPTY.with(|e| e.as_ptr() as CK_VOID_PTR), 0),
            None => (null_mut(), null_len as usize),
        };
        Mech {
            mech: CK_MECHANISM {
                mechanism: ty,
                pParameter: ptr,
                ulParameterLen: len as CK_ULONG,
            },
            _param: param_buf,
            _gcm: None,
            _oaep: None,
            _eddsa: None,
            _pss: None,
            _bufs: Vec::new(),
        }
    }

    pub fn pss(
        ty: CK_MECHANISM_TYPE,
        hash: CK_MECHANISM_TYPE,
        mgf: CK_ULONG,
        slen: CK_ULONG,
    ) -> Mech {
        let mut p = Box::new(CK_RSA_PKCS_PSS_PARAMS {
            hashAlg: hash,
            mgf,
            sLen: slen,
        });
        let mut m = Mech::plain(ty);
        m.mech.pParameter = &mut *p as *mut _ as CK_VOID_PTR;
        m.mech.ulParameterLen = std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>() as CK_ULONG;
        m._pss = Some(p);
        m
    }

    pub fn oaep(hash: CK_MECHANISM_TYPE, mgf: CK_ULONG, source: CK_ULONG, mut label: In) -> Mech {
        let mut p = Box::new(CK_RSA_PKCS_OAEP_PARAMS {
            hashAlg: hash,
            mgf,
            source,
            pSourceData: label.ptr() as CK_VOID_PTR,
            ulSourceDataLen: label.len(),
        });
        let mut m = Mech::plain(CKM_RSA_PKCS_OAEP);
        m.mech.pParameter = &mut *p as *mut _ as CK_VOID_PTR;
        m.mech.ulParameterLen = std::mem::size_of::<CK_RSA_PKCS_OAEP_PARAMS>() as CK_ULONG;
        m._oaep = Some(p);
        m._bufs.push(label);
        m
    }

    pub fn gcm(mut iv: In, iv_bits: CK_ULONG, mut aad: In, tag_bits: CK_ULONG) -> Mech {
        let mut p = Box::new(CK_GCM_PARAMS {
            pIv: iv.ptr(),
            ulIvLen: iv.len(),
            ulIvBits: iv_bits,
            pAAD: aad.ptr(),
            ulAADLen: aad.len(),
            ulTagBits: tag_bits,
        });
        let mut m = Mech::plain(CKM_AES_GCM);
        m.mech.pParameter = &mut *p as *mut _ as CK_VOID_PTR;
        m.mech.ulParameterLen = std::mem::size_of::<CK_GCM_PARAMS>() as CK_ULONG;
        m._gcm = Some(p);
        m._bufs.push(iv);
        m._bufs.push(aad);
        m
    }

    pub fn eddsa(prehash: bool, mut context: In) -> Mech {
        let mut p = Box::new(CK_EDDSA_PARAMS {
            phFlag: u8::from(prehash),
            ulContextDataLen: context.len(),
            pContextData: context.ptr(),
        });
        let mut m = Mech::plain(CKM_EDDSA);
        m.mech.pParameter = &mut *p as *mut _ as CK_VOID_PTR;
        m.mech.ulParameterLen = std::mem::size_of::<CK_EDDSA_PARAMS>() as CK_ULONG;
        m._eddsa = Some(p);
        m._bufs.push(context);
        m
    }

    /// The CK_MECHANISM. A parameter block that is not the structure the mechanism takes
    /// but happens to have its size would be read as one, pointers and all: its length is
    /// made one byte shorter (still valid for the buffer) so the module refuses it instead.
    pub fn ptr(&mut self) -> CK_MECHANISM_PTR {
        let size_with_pointers = match self.mech.mechanism {
            CKM_EDDSA if self._eddsa.is_none() => Some(std::mem::size_of::<CK_EDDSA_PARAMS>()),
            CKM_AES_GCM if self._gcm.is_none() => Some(std::mem::size_of::<CK_GCM_PARAMS>()),
            CKM_RSA_PKCS_OAEP if self._oaep.is_none() => {
                Some(std::mem::size_of::<CK_RSA_PKCS_OAEP_PARAMS>())
            }
            _ => None,
        };
        if size_with_pointers == Some(self.mech.ulParameterLen as usize)
            && !self.mech.pParameter.is_null()
        {
            self.mech.ulParameterLen -= 1;
        }
        &mut self.mech
    }
}

/// DER OID of P-256.
pub const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER OID of P-384.
pub const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// DER OID of P-521.
pub const P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
/// DER OID of Ed25519.
pub const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

/// A key pair of the fixture: token objects, ID `id`.
fn key_pair(
    h: CK_SESSION_HANDLE,
    mech: CK_MECHANISM_TYPE,
    public: &mut Template,
    id: &[u8],
) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    public
        .bool(CKA_TOKEN, true)
        .add(CKA_ID, id)
        .add(CKA_LABEL, id);
    let mut private = Template::default();
    private
        .bool(CKA_TOKEN, true)
        .add(CKA_ID, id)
        .add(CKA_LABEL, id)
        .bool(CKA_SENSITIVE, false)
        .bool(CKA_EXTRACTABLE, true);
    let mut m = Mech::plain(mech);
    let (mut p, mut q) = (0, 0);
    ok!(call!(
        C_GenerateKeyPair,
        h,
        m.ptr(),
        public.ptr(),
        public.len(),
        private.ptr(),
        private.len(),
        &mut p,
        &mut q
    ));
    (p, q)
}

/// Initialises the token and makes one key of each kind (token objects).
fn provision() -> Keys {
    let _ = std::fs::remove_dir_all(env_store_path());
    ok!(call!(C_Initialize, null_mut()));
    let mut label = [b' '; 32];
    label[..5].copy_from_slice(b"fuzz!");
    let mut so = SO_PIN.to_vec();
    ok!(call!(
        C_InitToken,
        slot(),
        so.as_mut_ptr(),
        so.len() as CK_ULONG,
        label.as_mut_ptr()
    ));
    let h = open(true);
    ok!(login(h, CKU_SO, SO_PIN));
    let mut user = USER_PIN.to_vec();
    ok!(call!(
        C_InitPIN,
        h,
        user.as_mut_ptr(),
        user.len() as CK_ULONG
    ));
    ok!(call!(C_Logout, h));
    ok!(login(h, CKU_USER, USER_PIN));
    let mut keys = Keys::default();
    (keys.ec_pub, keys.ec_priv) = key_pair(
        h,
        CKM_EC_KEY_PAIR_GEN,
        Template::default().add(CKA_EC_PARAMS, P256),
        b"ec",
    );
    (keys.ed_pub, keys.ed_priv) = key_pair(
        h,
        CKM_EC_EDWARDS_KEY_PAIR_GEN,
        Template::default().add(CKA_EC_PARAMS, ED25519),
        b"ed",
    );
    (keys.rsa_pub, keys.rsa_priv) = key_pair(
        h,
        CKM_RSA_PKCS_KEY_PAIR_GEN,
        Template::default().ulong(CKA_MODULUS_BITS, 2048),
        b"rsa",
    );
    let mut aes = Template::default();
    aes.bool(CKA_TOKEN, true)
        .ulong(CKA_CLASS, CKO_SECRET_KEY)
        .ulong(CKA_KEY_TYPE, CKK_AES)
        .add(CKA_LABEL, b"aes")
        .add(CKA_VALUE, &[0x42; 32])
        .bool(CKA_EXTRACTABLE, true)
        .bool(CKA_SENSITIVE, false);
    ok!(call!(
        C_CreateObject,
        h,
        aes.ptr(),
        aes.len(),
        &mut keys.aes
    ));
    let mut hmac = Template::default();
    hmac.bool(CKA_TOKEN, true)
        .ulong(CKA_CLASS, CKO_SECRET_KEY)
        .ulong(CKA_KEY_TYPE, CKK_GENERIC_SECRET)
        .add(CKA_LABEL, b"hmac")
        .add(CKA_VALUE, &[0x17; 48]);
    ok!(call!(
        C_CreateObject,
        h,
        hmac.ptr(),
        hmac.len(),
        &mut keys.hmac
    ));
    let mut data = Template::default();
    data.bool(CKA_TOKEN, true)
        .ulong(CKA_CLASS, CKO_DATA)
        .add(CKA_LABEL, b"data")
        .add(CKA_APPLICATION, b"fuzz")
        .add(CKA_VALUE, b"hello");
    ok!(call!(
        C_CreateObject,
        h,
        data.ptr(),
        data.len(),
        &mut keys.data
    ));
    ok!(call!(C_CloseSession, h));
    // Handles come from the store's order at load: find them again the way a restart sees them.
    ok!(call!(C_Finalize, null_mut()));
    ok!(call!(C_Initialize, null_mut()));
    let h = open(false);
    ok!(login(h, CKU_USER, USER_PIN));
    let find = |label: &[u8], class: CK_OBJECT_CLASS| -> CK_OBJECT_HANDLE {
        let mut t = Template::default();
        t.add(CKA_LABEL, label).ulong(CKA_CLASS, class);
        ok!(call!(C_FindObjectsInit, h, t.ptr(), t.len()));
        let mut o = [0; 2];
        let mut n = 0;
        ok!(call!(C_FindObjects, h, o.as_mut_ptr(), 2, &mut n));
        ok!(call!(C_FindObjectsFinal, h));
        assert_eq!(n, 1, "fixture object {}", String::from_utf8_lossy(label));
        o[0]
    };
    let keys = Keys {
        ec_pub: find(b"ec", CKO_PUBLIC_KEY),
        ec_priv: find(b"ec", CKO_PRIVATE_KEY),
        ed_pub: find(b"ed", CKO_PUBLIC_KEY),
        ed_priv: find(b"ed", CKO_PRIVATE_KEY),
        rsa_pub: find(b"rsa", CKO_PUBLIC_KEY),
        rsa_priv: find(b"rsa", CKO_PRIVATE_KEY),
        aes: find(b"aes", CKO_SECRET_KEY),
        hmac: find(b"hmac", CKO_SECRET_KEY),
        data: find(b"data", CKO_DATA),
    };
    ok!(call!(C_CloseSession, h));
    keys
}

fn env_store_path() -> PathBuf {
    let conf = std::env::var("KEY4C_CONF").expect("KEY4C_CONF");
    Path::new(&conf).parent().expect("conf dir").join("store")
}

/// A null pointer of any type, for readability at call sites.
pub fn nul<T>() -> *const T {
    null()
}
