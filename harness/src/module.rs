//! Loading a PKCS#11 module, recognising its vendor, and provisioning a token for a run.
//!
//! Known vendors (SoftHSM2, key4c) get a fresh token in a temporary store: the harness writes
//! the vendor's configuration file, sets its environment variables right before the module's
//! `C_Initialize`, initialises the token and sets the User PIN. Any other module is used on the
//! slot and with the PINs given on the command line, and a token that already holds objects is
//! never re-initialised unless `--allow-destroy` is given.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use anyhow::{anyhow, bail, Context as _, Result};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use serde::Serialize;
use tempfile::TempDir;

use crate::ckr;

/// The SO PIN the harness gives the tokens it provisions (valid under key4c's policy).
pub const SO_PIN: &str = "So-Pin.2024x";
/// The User PIN the harness gives the tokens it provisions (valid under key4c's policy).
pub const USER_PIN: &str = "Us3r#Pin.9k";
/// The label of the tokens the harness provisions.
pub const TOKEN_LABEL: &str = "harness";

/// Which implementation a module is, as far as provisioning goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    /// SoftHSM2: configured by the file `SOFTHSM2_CONF` names.
    SoftHsm2,
    /// key4c: configured by `KEY4C_STORE` and the file `KEY4C_CONF` names.
    Key4c,
    /// Anything else: used on the slot and with the PINs given on the command line.
    Other,
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Vendor::SoftHsm2 => "softhsm2",
            Vendor::Key4c => "key4c",
            Vendor::Other => "other",
        })
    }
}

/// The command-line options that say which modules to drive and how to reach their tokens.
#[derive(Clone, Debug, clap::Args)]
pub struct ModuleArgs {
    /// Path of a PKCS#11 module (.so); repeat for several modules.
    #[arg(long = "module", value_name = "PATH", required = true)]
    pub modules: Vec<PathBuf>,
    /// Slot ID to use on modules of an unknown vendor (required for them).
    #[arg(long)]
    pub slot: Option<u64>,
    /// SO PIN for modules of an unknown vendor.
    #[arg(long)]
    pub so_pin: Option<String>,
    /// User PIN for modules of an unknown vendor.
    #[arg(long)]
    pub user_pin: Option<String>,
    /// Allow re-initialising (wiping) a token of an unknown vendor that already holds objects,
    /// and running the scenarios that change its PINs or lock them.
    #[arg(long)]
    pub allow_destroy: bool,
}

/// How one module is reached: its path, its display name, and the options for unknown vendors.
#[derive(Clone, Debug)]
pub struct ModuleSpec {
    /// Path of the module.
    pub path: PathBuf,
    /// Name shown in reports; unique within a run.
    pub name: String,
    /// Slot for unknown vendors.
    pub slot: Option<u64>,
    /// SO PIN for unknown vendors.
    pub so_pin: Option<String>,
    /// User PIN for unknown vendors.
    pub user_pin: Option<String>,
    /// See [`ModuleArgs::allow_destroy`].
    pub allow_destroy: bool,
}

impl ModuleArgs {
    /// One spec per `--module`, named after the file (with `#2`, `#3` for repeats).
    pub fn specs(&self) -> Vec<ModuleSpec> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        self.modules
            .iter()
            .map(|path| {
                let base = short_name(path);
                let n = seen.entry(base.clone()).or_insert(0);
                *n += 1;
                let name = if *n == 1 { base } else { format!("{base}#{n}") };
                ModuleSpec {
                    path: path.clone(),
                    name,
                    slot: self.slot,
                    so_pin: self.so_pin.clone(),
                    user_pin: self.user_pin.clone(),
                    allow_destroy: self.allow_destroy,
                }
            })
            .collect()
    }
}

/// A short display name for a module path: `softhsm2` for `libsofthsm2.so`.
pub fn short_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let stem = stem.strip_prefix("lib").unwrap_or(&stem).to_string();
    match stem.as_str() {
        "key4c_pkcs11" => "key4c".into(),
        _ => stem,
    }
}

/// The library fields of `C_GetInfo`.
#[derive(Clone, Debug, Serialize)]
pub struct LibraryInfo {
    /// `cryptokiVersion`.
    pub cryptoki_version: String,
    /// `manufacturerID`.
    pub manufacturer: String,
    /// `libraryDescription`.
    pub description: String,
    /// `libraryVersion`.
    pub version: String,
}

/// A module loaded, initialised, and with a token ready for the User to log in.
pub struct Module {
    /// Name shown in reports.
    pub name: String,
    /// Path of the module.
    pub path: PathBuf,
    /// Which implementation it is.
    pub vendor: Vendor,
    /// The loaded, initialised module.
    pub ctx: Pkcs11,
    /// The slot of the token in use.
    pub slot: Slot,
    /// The token's SO PIN.
    pub so_pin: String,
    /// The token's User PIN.
    pub user_pin: String,
    /// Environment variables the module was initialised with (also given to child processes).
    pub env: Vec<(String, String)>,
    /// True when the harness initialised this token itself, so scenarios may change its PINs.
    pub provisioned: bool,
    /// `C_GetInfo`.
    pub library: LibraryInfo,
    /// The slot ID before `C_InitToken`, when the harness initialised the token.
    pub slot_before_init: Option<u64>,
    /// `C_GetMechanismList` of the slot (empty when the call failed).
    pub mechanisms: Vec<MechanismType>,
    /// The token's label.
    pub token_label: String,
    _dir: TempDir,
}

/// Loaded modules, kept for the life of the process: a module is never unloaded (some do not
/// survive `dlclose`); it is finalised after each use and initialised again for the next one.
fn loaded() -> &'static Mutex<HashMap<PathBuf, Pkcs11>> {
    static LOADED: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    LOADED.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Loads a module (once per process) and returns its context, not yet initialised.
pub fn load(path: &Path) -> Result<Pkcs11> {
    let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mut map = loaded()
        .lock()
        .map_err(|_| anyhow!("module table poisoned"))?;
    if let Some(ctx) = map.get(&key) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(&key).with_context(|| format!("cannot load {}", path.display()))?;
    map.insert(key, ctx.clone());
    Ok(ctx)
}

/// The environment a vendor's module needs for a fresh store in `dir`, writing its config files.
pub fn vendor_env(dir: &Path) -> Result<Vec<(String, String)>> {
    let softhsm_tokens = dir.join("softhsm-tokens");
    std::fs::create_dir_all(&softhsm_tokens)?;
    let softhsm_conf = dir.join("softhsm2.conf");
    std::fs::write(
        &softhsm_conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            softhsm_tokens.display()
        ),
    )?;
    // The PIN key derivation at its floor, so runs are not spent in PBKDF2; set
    // HARNESS_KEY4C_KDF_ITERATIONS (e.g. 600000, key4c's default) to time logins at a real cost.
    let kdf = std::env::var("HARNESS_KEY4C_KDF_ITERATIONS").unwrap_or_else(|_| "1000".into());
    let kdf: u32 = kdf
        .parse()
        .map_err(|_| anyhow!("HARNESS_KEY4C_KDF_ITERATIONS={kdf:?} is not a number"))?;
    let key4c_conf = dir.join("key4c.toml");
    std::fs::write(&key4c_conf, format!("kdf_iterations = {kdf}\n"))?;
    Ok(vec![
        ("SOFTHSM2_CONF".into(), softhsm_conf.display().to_string()),
        (
            "KEY4C_STORE".into(),
            dir.join("key4c-store").display().to_string(),
        ),
        ("KEY4C_CONF".into(), key4c_conf.display().to_string()),
    ])
}

/// Recognises a vendor from the file name, then from `C_GetInfo`.
pub fn detect_vendor(path: &Path, info: &LibraryInfo) -> Vendor {
    let file = path
        .file_name()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let manufacturer = info.manufacturer.to_lowercase();
    let description = info.description.to_lowercase();
    if file.contains("softhsm") || manufacturer.contains("softhsm") {
        Vendor::SoftHsm2
    } else if file.contains("key4c")
        || manufacturer.contains("key4c")
        || description.contains("key4c")
    {
        Vendor::Key4c
    } else {
        Vendor::Other
    }
}

/// Initialises a context with OS locking.
pub fn initialize(ctx: &Pkcs11) -> Result<(), Error> {
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
}

/// Reads `C_GetInfo`.
pub fn library_info(ctx: &Pkcs11) -> Result<LibraryInfo> {
    let info = ctx.get_library_info().context("C_GetInfo failed")?;
    Ok(LibraryInfo {
        cryptoki_version: info.cryptoki_version().to_string(),
        manufacturer: info.manufacturer_id().trim().to_string(),
        description: info.library_description().trim().to_string(),
        version: info.library_version().to_string(),
    })
}

/// The slot whose token has this label (slot IDs of some modules change from process to
/// process; the label does not).
pub fn find_token(ctx: &Pkcs11, label: &str) -> Result<Slot> {
    let mut failed = None;
    for slot in ctx.get_slots_with_token()? {
        match ctx.get_token_info(slot) {
            Ok(t) if t.label().trim() == label => return Ok(slot),
            Ok(_) => {}
            Err(e) => failed = Some(e),
        }
    }
    // A token that could not be read may be the one: its error says more than "no token".
    match failed {
        Some(e) => Err(anyhow!(e).context(format!("looking for the token labelled {label:?}"))),
        None => bail!("no token labelled {label:?}"),
    }
}

/// An [`AuthPin`] from a string.
pub fn pin(s: &str) -> AuthPin {
    AuthPin::from(s.to_string())
}

/// Logs a session in, treating "already logged in" as success.
pub fn login(session: &Session, user: UserType, p: &str) -> Result<(), Error> {
    match session.login(user, Some(&pin(p))) {
        Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        other => other,
    }
}

impl Module {
    /// Loads and initialises a module and provisions its token (see the module docs).
    pub fn open(spec: &ModuleSpec) -> Result<Module> {
        let dir = tempfile::Builder::new()
            .prefix("harness-token-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let env = vendor_env(dir.path())?;
        let ctx = load(&spec.path)?;
        // The environment is read by the module's C_Initialize, so it is set right before it.
        for (k, v) in &env {
            std::env::set_var(k, v);
        }
        initialize(&ctx).map_err(|e| {
            anyhow!(
                "C_Initialize of {} failed: {}",
                spec.path.display(),
                ckr::error_name(&e)
            )
        })?;
        match Self::provision(spec, ctx.clone(), env, dir) {
            Ok(m) => Ok(m),
            Err(e) => {
                let _ = ctx.finalize();
                Err(e)
            }
        }
    }

    fn provision(
        spec: &ModuleSpec,
        ctx: Pkcs11,
        env: Vec<(String, String)>,
        dir: TempDir,
    ) -> Result<Module> {
        let library = library_info(&ctx)?;
        let vendor = detect_vendor(&spec.path, &library);
        let slots = ctx.get_slots_with_token().context("C_GetSlotList failed")?;
        let (slot, so_pin, user_pin) = if vendor == Vendor::Other {
            let (Some(id), Some(so), Some(user)) = (spec.slot, &spec.so_pin, &spec.user_pin) else {
                bail!(
                    "{} is not a module the harness knows how to provision: give --slot, --so-pin and --user-pin",
                    spec.path.display()
                );
            };
            let slot = slots
                .iter()
                .copied()
                .find(|s| s.id() == id)
                .ok_or_else(|| anyhow!("slot {id} has no token in {}", spec.path.display()))?;
            (slot, so.clone(), user.clone())
        } else {
            let slot = slots
                .iter()
                .copied()
                .find(|s| {
                    ctx.get_token_info(*s)
                        .map(|t| !t.token_initialized())
                        .unwrap_or(false)
                })
                .or_else(|| slots.first().copied())
                .ok_or_else(|| anyhow!("{} has no slot with a token", spec.path.display()))?;
            (slot, SO_PIN.to_string(), USER_PIN.to_string())
        };

        let may_init = match vendor {
            Vendor::Other => spec.allow_destroy || !token_has_objects(&ctx, slot, &user_pin)?,
            _ => true,
        };
        let mut module = Module {
            name: spec.name.clone(),
            path: spec.path.clone(),
            vendor,
            ctx: ctx.clone(),
            slot,
            so_pin,
            user_pin,
            env,
            provisioned: false,
            library,
            slot_before_init: None,
            mechanisms: Vec::new(),
            token_label: String::new(),
            _dir: dir,
        };
        if may_init {
            module.init_token()?;
        }
        module.mechanisms = ctx.get_mechanism_list(module.slot).unwrap_or_default();
        module.token_label = module.label_of(module.slot);
        Ok(module)
    }

    /// `C_InitToken` with the SO PIN, then `C_InitPIN` with the User PIN in an SO session.
    fn init_token(&mut self) -> Result<()> {
        let before = self.slot.id();
        self.ctx
            .init_token(self.slot, &pin(&self.so_pin), TOKEN_LABEL)
            .map_err(|e| anyhow!("C_InitToken failed: {}", ckr::error_name(&e)))?;
        // Some modules (SoftHSM2) give the initialised token a new slot ID: find it by label.
        let slots = self.ctx.get_slots_with_token()?;
        self.slot = slots
            .iter()
            .copied()
            .find(|s| s.id() == before && self.label_of(*s) == TOKEN_LABEL)
            .or_else(|| {
                slots
                    .iter()
                    .copied()
                    .find(|s| self.label_of(*s) == TOKEN_LABEL)
            })
            .ok_or_else(|| {
                anyhow!("the token labelled {TOKEN_LABEL:?} is gone after C_InitToken")
            })?;
        self.slot_before_init = Some(before);
        let session = self.ctx.open_rw_session(self.slot)?;
        login(&session, UserType::So, &self.so_pin)
            .map_err(|e| anyhow!("C_Login as SO failed: {}", ckr::error_name(&e)))?;
        session
            .init_pin(&pin(&self.user_pin))
            .map_err(|e| anyhow!("C_InitPIN failed: {}", ckr::error_name(&e)))?;
        let _ = session.logout();
        self.provisioned = true;
        Ok(())
    }

    fn label_of(&self, slot: Slot) -> String {
        self.ctx
            .get_token_info(slot)
            .map(|t| t.label().trim().to_string())
            .unwrap_or_default()
    }

    /// Opens a R/W session with the User logged in.
    pub fn user_session(&self) -> Result<Session> {
        let session = self
            .ctx
            .open_rw_session(self.slot)
            .map_err(|e| anyhow!("C_OpenSession failed: {}", ckr::error_name(&e)))?;
        login(&session, UserType::User, &self.user_pin)
            .map_err(|e| anyhow!("C_Login as User failed: {}", ckr::error_name(&e)))?;
        Ok(session)
    }

    /// True when objects may be made persistent: the token lives in the harness's temporary
    /// store. On any other token the harness creates session objects only.
    pub fn owns_store(&self) -> bool {
        self.vendor != Vendor::Other
    }

    /// True when the slot's `C_GetMechanismList` names `m`.
    pub fn has_mechanism(&self, m: MechanismType) -> bool {
        self.mechanisms.contains(&m)
    }

    /// `C_Initialize` again after [`Module::finalize`], with the same environment, and find the
    /// token again by its label (some modules number their slots anew at each initialisation).
    pub fn reinitialize(&mut self) -> Result<()> {
        for (k, v) in &self.env {
            std::env::set_var(k, v);
        }
        initialize(&self.ctx)
            .map_err(|e| anyhow!("C_Initialize failed: {}", ckr::error_name(&e)))?;
        let slots = self.ctx.get_slots_with_token()?;
        self.slot = slots
            .iter()
            .copied()
            .find(|s| self.label_of(*s) == self.token_label)
            .ok_or_else(|| anyhow!("the token labelled {:?} is gone", self.token_label))?;
        Ok(())
    }

    /// `C_Finalize`, keeping the token's store (for other processes to open).
    pub fn finalize(&self) -> Result<()> {
        self.ctx
            .clone()
            .finalize()
            .map_err(|e| anyhow!("C_Finalize failed: {}", ckr::error_name(&e)))
    }

    /// `C_Finalize` and delete the temporary store: the module stays loaded and may be
    /// initialised again.
    pub fn close(self) -> Result<()> {
        self.finalize()
    }
}

/// True when the token holds any object the User can see.
fn token_has_objects(ctx: &Pkcs11, slot: Slot, user_pin: &str) -> Result<bool> {
    let info = ctx.get_token_info(slot)?;
    if !info.token_initialized() {
        return Ok(false);
    }
    let session = ctx.open_ro_session(slot)?;
    login(&session, UserType::User, user_pin)
        .map_err(|e| anyhow!("C_Login as User failed: {}", ckr::error_name(&e)))?;
    let found = session.find_objects(&[]).map(|v| !v.is_empty());
    let _ = session.logout();
    // A module that cannot search is treated as holding objects: nothing is wiped blindly.
    Ok(found.unwrap_or(true))
}
