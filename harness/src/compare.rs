//! `harness compare`: one scenario against every module, and a table of where they differ.
//!
//! Sections: identity, PIN policy, lockout, mechanisms (keygen/sign/verify), attribute reads,
//! error paths. Each module is opened (fresh token), run and finalised in turn; values that
//! legitimately change from token to token (serial numbers, slot IDs) are shown by their shape.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Result;
use cryptoki::error::Error;
use cryptoki::mechanism::MechanismType;
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::{Limit, Slot, TokenInfo};
use cryptoki_sys::{
    CKA_EC_POINT, CKA_LABEL, CKA_MODULUS, CKF_RW_SESSION, CKR_OK, CK_ATTRIBUTE_TYPE,
    CK_UNAVAILABLE_INFORMATION,
};
use serde::Serialize;

use crate::ckr;
use crate::keys::{self, Curve, Hash, Key, KeyKind, KeyOptions, SigMech};
use crate::module::{self, Module, ModuleArgs, USER_PIN};
use crate::raw::{AttrRead, Raw};
use crate::report;

/// Options of `harness compare`.
#[derive(Clone, Debug, clap::Args)]
pub struct CompareArgs {
    /// The modules and how to reach their tokens.
    #[command(flatten)]
    pub modules: ModuleArgs,
    /// Write the table as Markdown to this file.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write the table as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Print only the rows where the modules differ.
    #[arg(long)]
    pub only_differences: bool,
}

/// One row of the comparison: a check and each module's value.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Scenario section.
    pub section: String,
    /// What was checked.
    pub check: String,
    /// One value per module, in the order of `--module`.
    pub values: Vec<String>,
    /// True when the values are not all equal.
    pub differs: bool,
}

/// The whole comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// Module names, in the order of `--module`.
    pub modules: Vec<String>,
    /// Module paths.
    pub paths: Vec<String>,
    /// Every row.
    pub rows: Vec<Row>,
    /// Number of rows where the modules differ.
    pub differences: usize,
}

/// Collects the values of one module's run, section by section.
struct Recorder {
    section: String,
    cells: Vec<(String, String, String)>,
    /// PIN restores that failed: every later row of that module would be measured with a PIN
    /// the harness does not know, so the comparison is refused ([`run`]).
    restore_failures: Vec<String>,
}

impl Recorder {
    /// Checks the result of putting a PIN back after a check changed it.
    fn restored<T>(&mut self, what: &str, r: Result<T, Error>) {
        if let Err(e) = r {
            self.restore_failures.push(format!(
                "{} / {what}: {}",
                self.section,
                ckr::error_name(&e)
            ));
        }
    }

    fn section(&mut self, s: &str) {
        self.section = s.to_string();
    }

    fn put(&mut self, check: impl Into<String>, value: impl Into<String>) {
        self.cells
            .push((self.section.clone(), check.into(), value.into()));
    }
}

/// The status of a cryptoki call: `CKR_OK` or the error's `CKR_*` name.
fn rv<T>(r: &Result<T, Error>) -> String {
    match r {
        Ok(_) => "CKR_OK".into(),
        Err(e) => ckr::error_name(e),
    }
}

/// The `CKR_*` name of an anyhow result's cryptoki error, else its status.
fn any_rv<T>(r: &Result<T>) -> String {
    match r {
        Ok(_) => "CKR_OK".into(),
        Err(e) => match e.downcast_ref::<Error>() {
            Some(e) => ckr::error_name(e),
            None => crate::status::status_of(e),
        },
    }
}

/// Runs `harness compare`.
pub fn run(args: &CompareArgs) -> Result<Comparison> {
    let specs = args.modules.specs();
    let mut per_module: Vec<Vec<(String, String, String)>> = Vec::new();
    let mut restore_failures = Vec::new();
    for spec in &specs {
        eprintln!("compare: running the scenario against {}", spec.name);
        let mut rec = Recorder {
            section: "module".into(),
            cells: Vec::new(),
            restore_failures: Vec::new(),
        };
        match Module::open(spec) {
            Ok(m) => {
                rec.put("open and provision", "ok");
                scenario(&m, &mut rec);
                if let Err(e) = m.close() {
                    rec.section("module");
                    rec.put("C_Finalize", crate::status::describe(&e));
                }
            }
            Err(e) => rec.put(
                "open and provision",
                format!("failed: {}", crate::status::describe(&e)),
            ),
        }
        for f in &rec.restore_failures {
            restore_failures.push(format!("{}: {f}", spec.name));
        }
        per_module.push(rec.cells);
    }
    let comparison = merge(&specs, per_module);
    print_and_write(args, &comparison)?;
    let unusable: Vec<&str> = comparison
        .rows
        .iter()
        .filter(|r| r.section == "module" && r.check == "open and provision")
        .flat_map(|r| {
            r.values
                .iter()
                .zip(&comparison.modules)
                .filter(|(v, _)| v.as_str() != "ok")
                .map(|(_, n)| n.as_str())
        })
        .collect();
    if !unusable.is_empty() {
        anyhow::bail!("could not open {}", unusable.join(", "));
    }
    if !restore_failures.is_empty() {
        anyhow::bail!(
            "a PIN could not be put back, so later rows are not comparable: {}",
            restore_failures.join("; ")
        );
    }
    Ok(comparison)
}

fn merge(
    specs: &[module::ModuleSpec],
    per_module: Vec<Vec<(String, String, String)>>,
) -> Comparison {
    let order = report::merge_order(per_module.iter().map(|cells| {
        cells
            .iter()
            .map(|(section, check, _)| (section.clone(), check.clone()))
            .collect::<Vec<_>>()
    }));
    let mut values: HashMap<(String, String), Vec<String>> = HashMap::new();
    for (i, cells) in per_module.iter().enumerate() {
        for (section, check, value) in cells {
            values
                .entry((section.clone(), check.clone()))
                .or_insert_with(|| vec!["-".to_string(); specs.len()])[i] = value.clone();
        }
    }
    let rows: Vec<Row> = order
        .into_iter()
        .map(|key| {
            let v = values.remove(&key).unwrap_or_default();
            let differs = v.windows(2).any(|w| w[0] != w[1]);
            Row {
                section: key.0,
                check: key.1,
                values: v,
                differs,
            }
        })
        .collect();
    Comparison {
        modules: specs.iter().map(|s| s.name.clone()).collect(),
        paths: specs.iter().map(|s| s.path.display().to_string()).collect(),
        differences: rows.iter().filter(|r| r.differs).count(),
        rows,
    }
}

fn print_and_write(args: &CompareArgs, c: &Comparison) -> Result<()> {
    let mut header = vec!["".to_string(), "section".into(), "check".into()];
    header.extend(c.modules.iter().cloned());
    let rows: Vec<Vec<String>> = c
        .rows
        .iter()
        .filter(|r| r.differs || !args.only_differences)
        .map(|r| {
            let mut v = vec![
                if r.differs { "≠" } else { "" }.to_string(),
                r.section.clone(),
                r.check.clone(),
            ];
            v.extend(r.values.iter().cloned());
            v
        })
        .collect();
    print!("{}", report::text_table(&header, &rows));
    println!(
        "{} rows, {} where the modules differ (marked ≠)",
        c.rows.len(),
        c.differences
    );
    if let Some(path) = &args.markdown {
        let mut md = format!(
            "# PKCS#11 module comparison\n\nModules: {}\n\n{} rows, {} where the modules differ (marked **≠**).\n\n",
            c.modules
                .iter()
                .zip(&c.paths)
                .map(|(n, p)| format!("`{n}` ({p})"))
                .collect::<Vec<_>>()
                .join(", "),
            c.rows.len(),
            c.differences
        );
        let md_rows: Vec<Vec<String>> = rows
            .into_iter()
            .map(|mut r| {
                if !r[0].is_empty() {
                    r[0] = "**≠**".into();
                }
                r
            })
            .collect();
        md.push_str(&report::markdown_table(&header, &md_rows));
        std::fs::write(path, md)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(c)?)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// The whole scenario against one module; every failure becomes a value, never a panic.
fn scenario(m: &Module, rec: &mut Recorder) {
    identity(m, rec);
    let raw = match Raw::load(&m.path) {
        Ok(r) => Some(r),
        Err(e) => {
            rec.section("module");
            rec.put(
                "raw function list",
                format!("failed: {}", crate::status::describe(&e)),
            );
            None
        }
    };
    if m.provisioned {
        pin_policy(m, rec);
        lockout(m, rec);
    } else {
        for s in ["PIN policy", "lockout"] {
            rec.section(s);
            rec.put(
                "(skipped)",
                "token not provisioned by the harness (--allow-destroy runs it)",
            );
        }
    }
    let session = match m.user_session() {
        Ok(s) => s,
        Err(e) => {
            rec.section("mechanisms");
            rec.put(
                "User session",
                format!("failed: {}", crate::status::describe(&e)),
            );
            return;
        }
    };
    let keys = mechanisms(m, &session, rec);
    if let Some(raw) = &raw {
        attributes(m, &session, raw, &keys, rec);
        error_paths(m, session, raw, &keys, rec);
    }
}

fn flags_of(t: &TokenInfo) -> String {
    let flags = [
        (t.rng(), "RNG"),
        (t.write_protected(), "WRITE_PROTECTED"),
        (t.login_required(), "LOGIN_REQUIRED"),
        (t.user_pin_initialized(), "USER_PIN_INITIALIZED"),
        (t.restore_key_not_needed(), "RESTORE_KEY_NOT_NEEDED"),
        (t.clock_on_token(), "CLOCK_ON_TOKEN"),
        (
            t.protected_authentication_path(),
            "PROTECTED_AUTHENTICATION_PATH",
        ),
        (t.dual_crypto_operations(), "DUAL_CRYPTO_OPERATIONS"),
        (t.token_initialized(), "TOKEN_INITIALIZED"),
        (t.secondary_authentication(), "SECONDARY_AUTHENTICATION"),
        (t.user_pin_count_low(), "USER_PIN_COUNT_LOW"),
        (t.user_pin_final_try(), "USER_PIN_FINAL_TRY"),
        (t.user_pin_locked(), "USER_PIN_LOCKED"),
        (t.user_pin_to_be_changed(), "USER_PIN_TO_BE_CHANGED"),
        (t.so_pin_count_low(), "SO_PIN_COUNT_LOW"),
        (t.so_pin_final_try(), "SO_PIN_FINAL_TRY"),
        (t.so_pin_locked(), "SO_PIN_LOCKED"),
        (t.so_pin_to_be_changed(), "SO_PIN_TO_BE_CHANGED"),
        (t.error_state(), "ERROR_STATE"),
    ];
    let set: Vec<&str> = flags
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect();
    if set.is_empty() {
        "(none)".into()
    } else {
        set.join(" ")
    }
}

/// The PIN-state flags only, for the lockout section.
fn pin_flags(m: &Module) -> String {
    match m.ctx.get_token_info(m.slot) {
        Ok(t) => {
            let f = [
                (t.user_pin_count_low(), "USER_COUNT_LOW"),
                (t.user_pin_final_try(), "USER_FINAL_TRY"),
                (t.user_pin_locked(), "USER_LOCKED"),
                (t.so_pin_count_low(), "SO_COUNT_LOW"),
                (t.so_pin_final_try(), "SO_FINAL_TRY"),
                (t.so_pin_locked(), "SO_LOCKED"),
            ];
            let set: Vec<&str> = f.iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect();
            if set.is_empty() {
                "-".into()
            } else {
                set.join(" ")
            }
        }
        Err(e) => ckr::error_name(&e),
    }
}

fn limit(l: Limit) -> String {
    match l {
        Limit::Max(n) => n.to_string(),
        Limit::Unavailable => "CK_UNAVAILABLE_INFORMATION".into(),
        Limit::Infinite => "CK_EFFECTIVELY_INFINITE".into(),
    }
}

/// The shape of a serial number: its length and which characters it uses. Digits count as
/// lower-case hex: a random hex serial is all digits now and then (1 in 1,800 for 16), and the
/// same module must not differ from itself by chance.
fn shape(s: &str) -> String {
    let s = s.trim();
    let class = if s.is_empty() {
        "empty"
    } else if s
        .chars()
        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    {
        "lower-case hex"
    } else if s.chars().all(|c| c.is_ascii_hexdigit()) {
        "hex"
    } else {
        "text"
    };
    format!("{} chars, {class}", s.chars().count())
}

fn identity(m: &Module, rec: &mut Recorder) {
    rec.section("identity");
    let l = &m.library;
    rec.put("C_GetInfo cryptokiVersion", &l.cryptoki_version);
    rec.put("C_GetInfo manufacturerID", &l.manufacturer);
    rec.put("C_GetInfo libraryDescription", &l.description);
    rec.put("C_GetInfo libraryVersion", &l.version);
    match m.ctx.get_slot_info(m.slot) {
        Ok(s) => {
            rec.put("C_GetSlotInfo slotDescription", s.slot_description().trim());
            rec.put("C_GetSlotInfo manufacturerID", s.manufacturer_id().trim());
            let mut f = Vec::new();
            if s.token_present() {
                f.push("TOKEN_PRESENT");
            }
            if s.removable_device() {
                f.push("REMOVABLE_DEVICE");
            }
            if s.hardware_slot() {
                f.push("HW_SLOT");
            }
            rec.put("C_GetSlotInfo flags", f.join(" "));
            rec.put(
                "C_GetSlotInfo hardware/firmware version",
                format!("{} / {}", s.hardware_version(), s.firmware_version()),
            );
        }
        Err(e) => rec.put("C_GetSlotInfo", ckr::error_name(&e)),
    }
    if let Some(before) = m.slot_before_init {
        rec.put(
            "slot ID after C_InitToken",
            if before == m.slot.id() {
                "unchanged"
            } else {
                "changed"
            },
        );
    }
    match m.ctx.get_token_info(m.slot) {
        Ok(t) => {
            rec.put("C_GetTokenInfo label", t.label().trim());
            rec.put("C_GetTokenInfo manufacturerID", t.manufacturer_id().trim());
            rec.put("C_GetTokenInfo model", t.model().trim());
            rec.put("C_GetTokenInfo serialNumber", shape(t.serial_number()));
            rec.put("C_GetTokenInfo flags", flags_of(&t));
            rec.put(
                "C_GetTokenInfo ulMaxSessionCount",
                limit(t.max_session_count()),
            );
            rec.put(
                "C_GetTokenInfo ulMaxRwSessionCount",
                limit(t.max_rw_session_count()),
            );
            rec.put(
                "C_GetTokenInfo ulMinPinLen / ulMaxPinLen",
                format!("{} / {}", t.min_pin_length(), t.max_pin_length()),
            );
            let mem = |v: Option<usize>| match v {
                Some(_) => "reported",
                None => "CK_UNAVAILABLE_INFORMATION",
            };
            rec.put(
                "C_GetTokenInfo total/free public memory",
                format!(
                    "{} / {}",
                    mem(t.total_public_memory()),
                    mem(t.free_public_memory())
                ),
            );
            rec.put(
                "C_GetTokenInfo hardware/firmware version",
                format!("{} / {}", t.hardware_version(), t.firmware_version()),
            );
            rec.put(
                "C_GetTokenInfo utcTime",
                if t.utc_time().is_some() {
                    "set"
                } else {
                    "empty"
                },
            );
        }
        Err(e) => rec.put("C_GetTokenInfo", ckr::error_name(&e)),
    }
    match m.ctx.get_mechanism_list(m.slot) {
        Ok(list) => rec.put("C_GetMechanismList count", list.len().to_string()),
        Err(e) => rec.put("C_GetMechanismList", ckr::error_name(&e)),
    }
}

/// PINs that a policy may refuse, with a description.
const WEAK_PINS: &[(&str, &str)] = &[
    ("empty", ""),
    ("3 chars", "Ab1"),
    ("8 chars", "Ab1.x9Yz"),
    ("256 chars", ""),
    ("digits only", "739148265"),
    ("no special", "Abc7x9Yz2"),
    ("no upper-case", "abc7.x9yz2"),
    ("tab character", "Ab1.\tx9yz"),
    ("non-ASCII", "Äb1.x9yzq"),
    ("4 equal chars", "aaaa.X9yz"),
    ("4 equal, mixed case", "aAaA.X9yz"),
    ("ascending run 1234", "Xy.1234zq"),
    ("descending run dcba", "dcba-X9zq"),
    ("wrap-around 7890", "Xy.7890zq"),
    ("valid", "Val1d-Pin.x"),
];

/// A PIN for a row name: quoted, escaped, at most 12 characters.
fn quoted(p: &str) -> String {
    let short: String = p.chars().take(12).collect();
    let more = if p.chars().count() > 12 { "…" } else { "" };
    format!("{:?}{more}", short)
}

fn pin_policy(m: &Module, rec: &mut Recorder) {
    rec.section("PIN policy");
    let session = match m.ctx.open_rw_session(m.slot) {
        Ok(s) => s,
        Err(e) => return rec.put("C_OpenSession", ckr::error_name(&e)),
    };
    if let Err(e) = module::login(&session, UserType::So, &m.so_pin) {
        return rec.put("C_Login SO", ckr::error_name(&e));
    }
    let long = "Ab1.".to_string() + &"xY7z".repeat(63);
    for (what, p) in WEAK_PINS {
        let p = if *what == "256 chars" {
            long.as_str()
        } else {
            p
        };
        let r = session.init_pin(&module::pin(p));
        rec.put(format!("C_InitPIN {what} {}", quoted(p)), rv(&r));
    }
    // The last one set "Val1d-Pin.x": setting it again is a change to the same PIN.
    rec.put(
        "C_InitPIN same as current",
        rv(&session.init_pin(&module::pin("Val1d-Pin.x"))),
    );
    let r = session.init_pin(&module::pin(&m.user_pin));
    rec.put("C_InitPIN restore harness User PIN", rv(&r));
    rec.restored("C_InitPIN restore harness User PIN", r);
    let weak = session.set_pin(&module::pin(&m.so_pin), &module::pin("abc"));
    rec.put("C_SetPIN SO to 'abc'", rv(&weak));
    if weak.is_ok() {
        rec.restored(
            "SO PIN back from 'abc'",
            session.set_pin(&module::pin("abc"), &module::pin(&m.so_pin)),
        );
    }
    rec.put(
        "C_SetPIN SO to the same PIN",
        rv(&session.set_pin(&module::pin(&m.so_pin), &module::pin(&m.so_pin))),
    );
    let _ = session.logout();

    // Self-service change of the User PIN, in a User session and in a public session.
    let other = "Key4C-Pin.9x";
    if module::login(&session, UserType::User, &m.user_pin).is_ok() {
        let r = session.set_pin(&module::pin(&m.user_pin), &module::pin(other));
        rec.put("C_SetPIN User in a User session", rv(&r));
        if r.is_ok() {
            rec.restored(
                "User PIN back (User session)",
                session.set_pin(&module::pin(other), &module::pin(&m.user_pin)),
            );
        }
        let _ = session.logout();
    }
    let r = session.set_pin(&module::pin(&m.user_pin), &module::pin(other));
    rec.put("C_SetPIN User in a public session", rv(&r));
    if r.is_ok() {
        rec.restored(
            "User PIN back (public session)",
            session.set_pin(&module::pin(other), &module::pin(&m.user_pin)),
        );
    }
}

fn lockout(m: &Module, rec: &mut Recorder) {
    rec.section("lockout");
    let session = match m.ctx.open_rw_session(m.slot) {
        Ok(s) => s,
        Err(e) => return rec.put("C_OpenSession", ckr::error_name(&e)),
    };
    let wrong = "Wr0ng-Pin.x";
    for i in 1..=5 {
        let r = session.login(UserType::User, Some(&module::pin(wrong)));
        rec.put(
            format!("wrong User PIN #{i}"),
            format!("{}; flags {}", rv(&r), pin_flags(m)),
        );
    }
    let r = session.login(UserType::User, Some(&module::pin(&m.user_pin)));
    rec.put(
        "right User PIN after 5 wrong",
        format!("{}; flags {}", rv(&r), pin_flags(m)),
    );
    if r.is_ok() {
        let _ = session.logout();
    }
    let r = module::login(&session, UserType::So, &m.so_pin).and_then(|_| {
        // An unlock sets a PIN different from the current one (a policy may refuse the same).
        session
            .init_pin(&module::pin("Unl0ck-Pin.x"))
            .and_then(|_| session.init_pin(&module::pin(&m.user_pin)))
    });
    rec.put(
        "C_InitPIN by the SO (unlock)",
        format!("{}; flags {}", rv(&r), pin_flags(m)),
    );
    let _ = session.logout();
    let r = session.login(UserType::User, Some(&module::pin(&m.user_pin)));
    rec.put("right User PIN after the unlock", rv(&r));
    let _ = session.logout();
    let r = session.login(UserType::So, Some(&module::pin(wrong)));
    rec.put(
        "wrong SO PIN #1",
        format!("{}; flags {}", rv(&r), pin_flags(m)),
    );
    let r = session.login(UserType::So, Some(&module::pin(&m.so_pin)));
    rec.put(
        "right SO PIN after 1 wrong",
        format!("{}; flags {}", rv(&r), pin_flags(m)),
    );
    let _ = session.logout();
}

/// The key kinds the mechanisms section generates, and the signatures tried with each.
fn mechanism_plan() -> Vec<(KeyKind, Vec<SigMech>)> {
    use Hash::*;
    vec![
        (
            KeyKind::Ec(Curve::P256),
            vec![SigMech::Ecdsa, SigMech::EcdsaSha(Sha256)],
        ),
        (
            KeyKind::Ec(Curve::P384),
            vec![SigMech::Ecdsa, SigMech::EcdsaSha(Sha384)],
        ),
        (
            KeyKind::Ec(Curve::P521),
            vec![SigMech::Ecdsa, SigMech::EcdsaSha(Sha512)],
        ),
        (
            KeyKind::Rsa(2048),
            vec![
                SigMech::RsaPkcs(Sha256),
                SigMech::RsaPkcs(Sha384),
                SigMech::RsaPkcs(Sha512),
                SigMech::RsaPss(Sha256),
                SigMech::RsaPss(Sha384),
                SigMech::RsaPss(Sha512),
            ],
        ),
        (KeyKind::Ed25519, vec![SigMech::Eddsa]),
        (KeyKind::Secret(32), vec![SigMech::Hmac(Sha256)]),
        (KeyKind::Secret(48), vec![SigMech::Hmac(Sha384)]),
        (KeyKind::Secret(64), vec![SigMech::Hmac(Sha512)]),
    ]
}

/// The input a mechanism signs: a digest of the curve's size for raw ECDSA, else a message.
fn input_for(kind: KeyKind, mech: SigMech) -> Vec<u8> {
    match (kind, mech) {
        (KeyKind::Ec(c), SigMech::Ecdsa) => vec![0x5a; c.field_len().min(64)],
        _ => b"harness compare message".to_vec(),
    }
}

fn listed(m: &Module, t: MechanismType) -> &'static str {
    if m.has_mechanism(t) {
        "listed"
    } else {
        "not listed"
    }
}

fn mechanisms(m: &Module, session: &Session, rec: &mut Recorder) -> Vec<Key> {
    rec.section("mechanisms");
    let mut keys = Vec::new();
    for (kind, mechs) in mechanism_plan() {
        let gen = kind.gen_mechanism().mechanism_type();
        let opts = KeyOptions {
            label: format!("compare-{kind}"),
            id: kind.to_string().into_bytes(),
            token: false,
            extractable: false,
        };
        let key = keys::generate_unchecked(session, kind, &opts);
        rec.put(
            format!("keygen {kind} ({gen})"),
            format!("{}, {}", listed(m, gen), any_rv(&key)),
        );
        let Ok(key) = key else { continue };
        keys.push(key);
        for mech in mechs {
            let data = input_for(kind, mech);
            let t = mech.mechanism_type();
            let sig = session.sign(&mech.mechanism(), key.private, &data);
            rec.put(
                format!("sign {} {kind}", mech.name()),
                format!(
                    "{}, {}",
                    listed(m, t),
                    match &sig {
                        Ok(s) => format!("CKR_OK ({} bytes)", s.len()),
                        Err(e) => ckr::error_name(e),
                    }
                ),
            );
            let Ok(sig) = sig else {
                rec.put(format!("verify {} {kind}", mech.name()), "- (no signature)");
                continue;
            };
            {
                let good = session.verify(&mech.mechanism(), key.public, &data, &sig);
                let mut bad = sig.clone();
                if let Some(b) = bad.last_mut() {
                    *b ^= 1;
                }
                let tampered = session.verify(&mech.mechanism(), key.public, &data, &bad);
                rec.put(
                    format!("verify {} {kind}", mech.name()),
                    format!("{}; tampered: {}", rv(&good), rv(&tampered)),
                );
            }
        }
    }
    keys
}

fn read(r: AttrRead) -> String {
    let len = if r.len == CK_UNAVAILABLE_INFORMATION {
        "CK_UNAVAILABLE_INFORMATION".to_string()
    } else {
        r.len.to_string()
    };
    format!("{}, ulValueLen {len}", ckr::name(r.rv))
}

/// The first key the module could generate, preferring EC P-256.
fn pick_key(keys: &[Key]) -> Option<Key> {
    keys.first().copied()
}

const BAD_HANDLE: u64 = 0x0bad_f00d;

fn attributes(m: &Module, session: &Session, raw: &Raw, keys: &[Key], rec: &mut Recorder) {
    rec.section("attributes");
    let _ = m;
    let Some(key) = pick_key(keys) else {
        return rec.put("key", "no key could be generated");
    };
    let s = session.handle();
    let secret: CK_ATTRIBUTE_TYPE = key.kind.secret_attribute().into();
    let secret_name = key.kind.secret_attribute().to_string();
    rec.put("key", key.kind.to_string());
    rec.put(
        format!("private {secret_name}, NULL buffer"),
        read(raw.get_attribute(s, key.private.handle(), secret, None)),
    );
    rec.put(
        format!("private {secret_name}, 4096-byte buffer"),
        read(raw.get_attribute(s, key.private.handle(), secret, Some(4096))),
    );
    let (r, lens) = raw.get_two_attributes(s, key.private.handle(), [CKA_LABEL, secret]);
    let l = |n: u64| {
        if n == CK_UNAVAILABLE_INFORMATION {
            "UNAVAILABLE".to_string()
        } else {
            n.to_string()
        }
    };
    rec.put(
        format!("private CKA_LABEL + {secret_name} in one call"),
        format!("{}, lengths {} / {}", ckr::name(r), l(lens[0]), l(lens[1])),
    );
    if let Some(public) = key.kind.public_attribute() {
        let t: CK_ATTRIBUTE_TYPE = public.into();
        rec.put(
            format!("public {public}, NULL buffer (length query)"),
            read(raw.get_attribute(s, key.public.handle(), t, None)),
        );
        rec.put(
            format!("public {public}, 1-byte buffer"),
            read(raw.get_attribute(s, key.public.handle(), t, Some(1))),
        );
    }
    let foreign = match key.kind {
        KeyKind::Rsa(_) => CKA_EC_POINT,
        _ => CKA_MODULUS,
    };
    rec.put(
        format!(
            "{} on this key type",
            if foreign == CKA_MODULUS {
                "CKA_MODULUS"
            } else {
                "CKA_EC_POINT"
            }
        ),
        read(raw.get_attribute(s, key.private.handle(), foreign, Some(4096))),
    );
    let bools = [
        AttributeType::Private,
        AttributeType::Sensitive,
        AttributeType::Extractable,
        AttributeType::AlwaysSensitive,
        AttributeType::NeverExtractable,
        AttributeType::Local,
        AttributeType::Token,
    ];
    rec.put(
        "private key flags",
        bool_attrs(session, key.private, &bools),
    );
    if key.public != key.private {
        rec.put(
            "public key flags",
            bool_attrs(
                session,
                key.public,
                &[
                    AttributeType::Private,
                    AttributeType::Token,
                    AttributeType::Verify,
                ],
            ),
        );
    }
    rec.put(
        "made-up object handle",
        read(raw.get_attribute(s, BAD_HANDLE, CKA_LABEL, None)),
    );
}

fn bool_attrs(session: &Session, h: ObjectHandle, types: &[AttributeType]) -> String {
    match session.get_attributes(h, types) {
        Ok(attrs) => {
            let mut out = Vec::new();
            for t in types {
                let v = attrs.iter().find_map(|a| match (a, t) {
                    (Attribute::Private(b), AttributeType::Private)
                    | (Attribute::Sensitive(b), AttributeType::Sensitive)
                    | (Attribute::Extractable(b), AttributeType::Extractable)
                    | (Attribute::AlwaysSensitive(b), AttributeType::AlwaysSensitive)
                    | (Attribute::NeverExtractable(b), AttributeType::NeverExtractable)
                    | (Attribute::Local(b), AttributeType::Local)
                    | (Attribute::Token(b), AttributeType::Token)
                    | (Attribute::Verify(b), AttributeType::Verify) => Some(*b),
                    _ => None,
                });
                let name = t.to_string();
                let name = name.trim_start_matches("CKA_");
                out.push(match v {
                    Some(b) => format!("{name}={b}"),
                    None => format!("{name}=?"),
                });
            }
            out.join(" ")
        }
        Err(e) => ckr::error_name(&e),
    }
}

/// The parameterless signature mechanism the error paths use with a key.
fn plain_mech(kind: KeyKind) -> SigMech {
    match kind {
        KeyKind::Ec(_) => SigMech::Ecdsa,
        KeyKind::Rsa(_) => SigMech::RsaPkcs(Hash::Sha256),
        KeyKind::Ed25519 => SigMech::Eddsa,
        KeyKind::Secret(_) => SigMech::Hmac(Hash::Sha256),
    }
}

fn error_paths(m: &Module, session: Session, raw: &Raw, keys: &[Key], rec: &mut Recorder) {
    rec.section("error paths");
    let s = session.handle();
    let data = [0x5au8; 32];
    rec.put(
        "C_Sign without C_SignInit",
        ckr::name(raw.sign(s, &data, None).0),
    );
    rec.put(
        "C_Verify without C_VerifyInit",
        ckr::name(raw.verify(s, &data, &[0u8; 64])),
    );
    rec.put(
        "C_FindObjects without C_FindObjectsInit",
        ckr::name(raw.find_objects(s)),
    );
    rec.put(
        "C_GetSessionInfo, made-up session handle",
        ckr::name(raw.session_info(BAD_HANDLE)),
    );
    rec.put(
        "C_SignInit, made-up session handle",
        ckr::name(raw.sign_init(BAD_HANDLE, cryptoki_sys::CKM_ECDSA, BAD_HANDLE)),
    );
    rec.put(
        "C_OpenSession without CKF_SERIAL_SESSION",
        ckr::name(raw.open_session(m.slot.id(), CKF_RW_SESSION)),
    );
    match m.ctx.open_ro_session(m.slot) {
        Ok(extra) => {
            let h = extra.handle();
            let first = extra.close();
            rec.put(
                "C_CloseSession twice",
                format!("{} then {}", rv(&first), ckr::name(raw.close_session(h))),
            );
        }
        Err(e) => rec.put("C_CloseSession twice", ckr::error_name(&e)),
    }
    let bad_slot = Slot::try_from(0x0bad_0001u64).expect("a u64 slot ID converts");
    rec.put(
        "C_GetSlotInfo, made-up slot ID",
        rv(&m.ctx.get_slot_info(bad_slot)),
    );
    rec.put("C_Initialize again", rv(&module::initialize(&m.ctx)));
    rec.put(
        "C_Login User while logged in",
        rv(&session.login(UserType::User, Some(&module::pin(USER_PIN)))),
    );

    if let Some(key) = pick_key(keys) {
        let mech = plain_mech(key.kind).mechanism_type();
        let input = input_for(key.kind, plain_mech(key.kind));
        rec.put(
            "C_SignInit, made-up key handle",
            ckr::name(raw.sign_init(s, *mech, BAD_HANDLE)),
        );
        let first = raw.sign_init(s, *mech, key.private.handle());
        let second = raw.sign_init(s, *mech, key.private.handle());
        rec.put(
            "C_SignInit twice",
            format!("{} then {}", ckr::name(first), ckr::name(second)),
        );
        let (q, len) = raw.sign(s, &input, None);
        rec.put(
            "C_Sign length query (NULL buffer)",
            format!("{}, {len} bytes", ckr::name(q)),
        );
        let (small, _) = raw.sign(s, &input, Some(1));
        rec.put("C_Sign into a 1-byte buffer", ckr::name(small));
        let (after, _) = raw.sign(s, &input, Some(len.max(1) as usize));
        rec.put(
            "C_Sign after CKR_BUFFER_TOO_SMALL (operation kept)",
            ckr::name(after),
        );
        if key.public != key.private {
            rec.put(
                "C_SignInit with the public key",
                ckr::name(raw.sign_init(s, *mech, key.public.handle())),
            );
            // Make sure no operation is left active whatever the module did.
            let _ = raw.sign(s, &input, Some(4096));
        }
        if let Ok(sig) = session.sign(&plain_mech(key.kind).mechanism(), key.private, &input) {
            let short = &sig[..sig.len() - 1];
            rec.put(
                "C_Verify, signature one byte short",
                rv(&session.verify(&plain_mech(key.kind).mechanism(), key.public, &input, short)),
            );
        }
        let _ = session.logout();
        let r = raw.sign_init(s, *mech, key.private.handle());
        rec.put(
            "C_SignInit with the private key after C_Logout",
            ckr::name(r),
        );
        if r == CKR_OK {
            let _ = raw.sign(s, &input, Some(4096));
        }
        let opts = KeyOptions {
            label: "compare-logged-out".into(),
            id: vec![1],
            token: false,
            extractable: false,
        };
        let r = keys::generate_unchecked(&session, key.kind, &opts);
        rec.put(format!("keygen {} while logged out", key.kind), any_rv(&r));
        if let Ok(k) = r {
            k.destroy(&session);
        }
    } else {
        let _ = session.logout();
    }
    rec.put("C_Logout when logged out", rv(&session.logout()));
    drop(session);
    match m.ctx.open_ro_session(m.slot) {
        Ok(ro) => {
            let rw = m.ctx.open_rw_session(m.slot);
            let r = rw.as_ref().map_err(|_| ()).ok().map(|rw| {
                let r = rw.login(UserType::So, Some(&module::pin(&m.so_pin)));
                if r.is_ok() {
                    let _ = rw.logout();
                }
                rv(&r)
            });
            rec.put(
                "C_Login SO while a R/O session is open",
                r.unwrap_or_else(|| rv(&rw)),
            );
            drop(ro);
        }
        Err(e) => rec.put(
            "C_Login SO while a R/O session is open",
            ckr::error_name(&e),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::{shape, Recorder};

    #[test]
    fn a_failed_pin_restore_is_kept_with_its_section_and_code() {
        let mut rec = Recorder {
            section: "PIN policy".into(),
            cells: Vec::new(),
            restore_failures: Vec::new(),
        };
        rec.restored("ok one", Ok::<(), cryptoki::error::Error>(()));
        rec.restored(
            "SO PIN back",
            Err::<(), _>(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::PinIncorrect,
                cryptoki::context::Function::SetPIN,
            )),
        );
        assert_eq!(
            rec.restore_failures,
            ["PIN policy / SO PIN back: CKR_PIN_INCORRECT"]
        );
    }

    #[test]
    fn a_serial_of_digits_has_the_shape_of_a_hex_one() {
        assert_eq!(shape("1234567890123456"), "16 chars, lower-case hex");
        assert_eq!(shape("6ecd3a2023b8412d"), "16 chars, lower-case hex");
        assert_eq!(shape("6ECD3A2023B8412D"), "16 chars, hex");
        assert_eq!(shape("SN-1  "), "4 chars, text");
        assert_eq!(shape("   "), "0 chars, empty");
    }
}
