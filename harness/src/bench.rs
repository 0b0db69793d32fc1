//! `harness bench`: throughput and latency of the same operations on several modules.
//!
//! For each module: sign and verify per mechanism (one `C_SignInit` + `C_Sign` per operation,
//! through cryptoki, which asks the signature length with a NULL buffer first), key generation,
//! `C_Login`, `C_FindObjects` among growing numbers of token objects, several threads each with
//! its own session, and the cold start of a new process to its first signature. `--raw` adds the
//! same signatures done in-process by aws-lc-rs, so the PKCS#11 overhead shows.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context as _, Result};
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::{Session, UserType};
use serde::Serialize;
use serde_json::{json, Value};

use crate::keys::{self, Curve, Hash, Key, KeyKind, KeyOptions, SigMech};
use crate::module::{self, LibraryInfo, Module, ModuleArgs, ModuleSpec};
use crate::report::{self, fmt_rate, fmt_us};
use crate::status;

/// Options of `harness bench`.
#[derive(Clone, Debug, clap::Args)]
pub struct BenchArgs {
    /// The modules and how to reach their tokens.
    #[command(flatten)]
    pub modules: ModuleArgs,
    /// Measuring time of one repeat of one case, in milliseconds [default: 500; --quick: 40].
    #[arg(long)]
    pub duration_ms: Option<u64>,
    /// Repeats of each case (ops/s are reported as min/median/max over them)
    /// [default: 3; --quick: 1].
    #[arg(long)]
    pub repeats: Option<usize>,
    /// Thread counts for the multi-session case, comma-separated [default: 1,2,4; --quick: 1,2].
    #[arg(long, value_delimiter = ',')]
    pub threads: Vec<usize>,
    /// Numbers of token objects to search among, comma-separated
    /// [default: 10,1000,10000; --quick: 10,100].
    #[arg(long, value_delimiter = ',')]
    pub find_sizes: Vec<usize>,
    /// Cold starts (new processes) per module [default: 3; --quick: 1].
    #[arg(long)]
    pub cold_starts: Option<usize>,
    /// Write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a bar chart (ops/s per case per module, log scale) as SVG to this file.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Also time the same signatures in-process with aws-lc-rs (no PKCS#11).
    #[arg(long)]
    pub raw: bool,
    /// A run of a few seconds for CI: short cases, one repeat, no RSA-3072, small searches.
    #[arg(long)]
    pub quick: bool,
    /// Instead of every other case: this many worker processes on one fresh token at the same
    /// time, for each count given (comma-separated), running a mix of operations; then a check
    /// that every acknowledged write is on the token.
    #[arg(long, value_delimiter = ',', value_name = "N,...")]
    pub processes: Vec<usize>,
    /// With --processes: how long the workers run the mix, in seconds.
    #[arg(long, default_value_t = 60, requires = "processes")]
    pub seconds: u64,
    /// With --processes: relative weights of the operations.
    #[arg(
        long,
        default_value = "sign=40,create=25,destroy=20,find=15",
        requires = "processes"
    )]
    pub mix: String,
}

/// The settings a run used, after defaults.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    /// Measuring time of one repeat of one case.
    pub duration_ms: u64,
    /// Repeats of each case.
    pub repeats: usize,
    /// Thread counts.
    pub threads: Vec<usize>,
    /// Object counts for the search cases.
    pub find_sizes: Vec<usize>,
    /// Cold starts per module.
    pub cold_starts: usize,
    /// Quick mode.
    pub quick: bool,
}

impl BenchArgs {
    /// The settings after defaults.
    pub fn settings(&self) -> Settings {
        let q = self.quick;
        let or = |v: &Vec<usize>, d: &[usize]| {
            if v.is_empty() {
                d.to_vec()
            } else {
                v.clone()
            }
        };
        let mut find_sizes = or(
            &self.find_sizes,
            if q { &[10, 100] } else { &[10, 1000, 10000] },
        );
        find_sizes.sort_unstable();
        find_sizes.dedup();
        Settings {
            duration_ms: self.duration_ms.unwrap_or(if q { 40 } else { 500 }).max(1),
            repeats: self.repeats.unwrap_or(if q { 1 } else { 3 }).max(1),
            threads: or(&self.threads, if q { &[1, 2] } else { &[1, 2, 4] })
                .into_iter()
                .filter(|n| *n > 0)
                .collect(),
            find_sizes,
            cold_starts: self.cold_starts.unwrap_or(if q { 1 } else { 3 }),
            quick: q,
        }
    }
}

/// Throughput over the repeats.
#[derive(Clone, Debug, Serialize)]
pub struct Rates {
    /// Slowest repeat.
    pub min: f64,
    /// Median repeat.
    pub median: f64,
    /// Fastest repeat.
    pub max: f64,
}

/// Latency percentiles over every operation of every repeat, in microseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// One measured case of one module.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    /// Case name, the same across modules: `sign CKM_ECDSA P-256`.
    pub case: String,
    /// `sign`, `verify`, `keygen`, `login`, `find`, `create`, `threads`, `cold start`.
    pub group: String,
    /// `ok`, `not supported: ...`, `skipped: ...` or `failed: ...`.
    pub status: String,
    /// Operations per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ops_per_sec: Option<Rates>,
    /// Latency of one operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<Latency>,
    /// Operations measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ops: Option<u64>,
    /// Threads (for the multi-session case).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    /// Median ops/s divided by the first module's median ops/s for the same case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_vs_first: Option<f64>,
    /// Extra figures (cold start phases).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
}

impl CaseResult {
    fn new(case: impl Into<String>, group: &str) -> CaseResult {
        CaseResult {
            case: case.into(),
            group: group.into(),
            status: "ok".into(),
            ops_per_sec: None,
            latency_us: None,
            ops: None,
            threads: None,
            ratio_vs_first: None,
            detail: None,
        }
    }

    fn with_status(mut self, status: String) -> CaseResult {
        self.status = status;
        self
    }

    fn with(mut self, m: Measured) -> CaseResult {
        self.ops_per_sec = Some(m.rates);
        self.latency_us = Some(m.latency);
        self.ops = Some(m.ops);
        self
    }
}

/// One module's results.
#[derive(Clone, Debug, Serialize)]
pub struct ModuleReport {
    /// Name shown in reports.
    pub name: String,
    /// Path of the module (or `in-process` for `--raw`).
    pub path: String,
    /// Vendor as detected.
    pub vendor: String,
    /// `C_GetInfo`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub library: Option<LibraryInfo>,
    /// `ok`, or why the module could not be benchmarked at all.
    pub status: String,
    /// Every case.
    pub results: Vec<CaseResult>,
}

/// The whole run.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Version of the harness.
    pub harness_version: String,
    /// Settings after defaults.
    pub settings: Settings,
    /// One report per module, in the order of `--module`, then aws-lc-rs with `--raw`.
    pub modules: Vec<ModuleReport>,
}

struct Measured {
    rates: Rates,
    latency: Latency,
    ops: u64,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e6
}

fn summarise(mut rates: Vec<f64>, mut lat: Vec<Duration>) -> Measured {
    rates.sort_by(f64::total_cmp);
    lat.sort_unstable();
    Measured {
        rates: Rates {
            min: rates.first().copied().unwrap_or(0.0),
            median: rates.get(rates.len() / 2).copied().unwrap_or(0.0),
            max: rates.last().copied().unwrap_or(0.0),
        },
        latency: Latency {
            p50: percentile(&lat, 0.50),
            p99: percentile(&lat, 0.99),
        },
        ops: lat.len() as u64,
    }
}

/// Runs `f` (which returns the time of its measured part) repeatedly: `repeats` times for at
/// least `duration` and `min_ops` operations, after one warm-up call when `warmup`.
fn measure(
    s: &Settings,
    min_ops: usize,
    warmup: bool,
    mut f: impl FnMut() -> Result<Duration>,
) -> Result<Measured> {
    if warmup {
        f()?;
    }
    let duration = Duration::from_millis(s.duration_ms);
    let mut lat = Vec::new();
    let mut rates = Vec::new();
    for _ in 0..s.repeats {
        let start = Instant::now();
        let mut busy = Duration::ZERO;
        let mut n = 0usize;
        while n < min_ops || start.elapsed() < duration {
            let d = f()?;
            busy += d;
            lat.push(d);
            n += 1;
        }
        rates.push(n as f64 / busy.as_secs_f64().max(1e-9));
    }
    Ok(summarise(rates, lat))
}

/// A signature case: key, mechanism, input length, and whether `--quick` runs it.
#[derive(Clone, Copy, Debug)]
struct SigCase {
    kind: KeyKind,
    mech: SigMech,
    input_len: usize,
    in_quick: bool,
}

fn sig_cases() -> Vec<SigCase> {
    let c = |kind, mech, input_len, in_quick| SigCase {
        kind,
        mech,
        input_len,
        in_quick,
    };
    vec![
        c(KeyKind::Ec(Curve::P256), SigMech::Ecdsa, 32, true),
        c(KeyKind::Ec(Curve::P384), SigMech::Ecdsa, 48, true),
        c(
            KeyKind::Ec(Curve::P256),
            SigMech::EcdsaSha(Hash::Sha256),
            32,
            true,
        ),
        c(KeyKind::Rsa(2048), SigMech::RsaPkcs(Hash::Sha256), 32, true),
        c(KeyKind::Rsa(2048), SigMech::RsaPss(Hash::Sha256), 32, true),
        c(
            KeyKind::Rsa(3072),
            SigMech::RsaPkcs(Hash::Sha256),
            32,
            false,
        ),
        c(KeyKind::Rsa(3072), SigMech::RsaPss(Hash::Sha256), 32, false),
        c(KeyKind::Ed25519, SigMech::Eddsa, 32, true),
        c(KeyKind::Secret(32), SigMech::Hmac(Hash::Sha256), 32, true),
    ]
}

impl SigCase {
    fn label(&self) -> String {
        format!("{} {}", self.mech.name(), self.kind)
    }
}

/// The label of the benchmark's key of a kind.
fn key_label(kind: KeyKind) -> String {
    format!("bench-{kind}")
}

/// Runs `harness bench`.
pub fn run(args: &BenchArgs) -> Result<BenchReport> {
    let settings = args.settings();
    let mut modules = Vec::new();
    for spec in args.modules.specs() {
        eprintln!("bench: {} ({})", spec.name, spec.path.display());
        modules.push(bench_module(&spec, &settings));
    }
    if args.raw {
        eprintln!("bench: aws-lc-rs in-process");
        modules.push(raw_module(&settings));
    }
    set_ratios(&mut modules);
    let unusable: Vec<String> = modules
        .iter()
        .filter(|m| m.status != "ok")
        .map(|m| m.name.clone())
        .collect();
    let report = BenchReport {
        harness_version: env!("CARGO_PKG_VERSION").into(),
        settings,
        modules,
    };
    print!("{}", table(&report));
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    if let Some(p) = &args.svg {
        std::fs::write(p, svg(&report)).with_context(|| format!("cannot write {}", p.display()))?;
    }
    if !unusable.is_empty() {
        bail!("could not benchmark {}", unusable.join(", "));
    }
    Ok(report)
}

fn set_ratios(modules: &mut [ModuleReport]) {
    let Some(first) = modules.first().cloned() else {
        return;
    };
    for m in modules.iter_mut() {
        for r in m.results.iter_mut() {
            let base = first
                .results
                .iter()
                .find(|b| b.case == r.case)
                .and_then(|b| b.ops_per_sec.as_ref())
                .map(|x| x.median);
            if let (Some(b), Some(x)) = (base, r.ops_per_sec.as_ref()) {
                if b > 0.0 {
                    r.ratio_vs_first = Some(x.median / b);
                }
            }
        }
    }
}

fn bench_module(spec: &ModuleSpec, s: &Settings) -> ModuleReport {
    let mut report = ModuleReport {
        name: spec.name.clone(),
        path: spec.path.display().to_string(),
        vendor: "?".into(),
        library: None,
        status: "ok".into(),
        results: Vec::new(),
    };
    let mut module = match Module::open(spec) {
        Ok(m) => m,
        Err(e) => {
            report.status = format!("failed: {}", crate::status::describe(&e));
            return report;
        }
    };
    report.vendor = module.vendor.to_string();
    report.library = Some(module.library.clone());
    let fail = |e: anyhow::Error| format!("failed: {}", crate::status::describe(&e));
    let cold_key = match in_process(&module, s, &mut report.results) {
        Ok(k) => k,
        Err(e) => {
            report.status = fail(e);
            None
        }
    };
    if let Err(e) = module.finalize() {
        report.status = fail(e);
        return report;
    }
    // Cold starts on the token as the key cases left it, and again once the search cases
    // have filled it with objects (which modules load at C_Initialize).
    if s.cold_starts > 0 {
        report
            .results
            .extend(cold_starts(&module, s, cold_key, None));
    }
    let mut filled = false;
    let searched = module.reinitialize().and_then(|()| {
        let session = module.user_session()?;
        let found = find(&session, s, module.owns_store());
        // Only then does the token hold every object the search cases meant to create.
        filled = found.iter().all(|c| c.status == "ok");
        report.results.extend(found);
        drop(session);
        module.finalize()
    });
    match searched {
        Err(e) => report.status = fail(e),
        Ok(()) if s.cold_starts > 0 && module.owns_store() && filled => {
            let filled = s.find_sizes.last().copied();
            report
                .results
                .extend(cold_starts(&module, s, cold_key, filled));
        }
        Ok(()) => {}
    }
    report
}

/// The cases that need keys, run inside this process; returns the case cold starts sign with.
fn in_process(m: &Module, s: &Settings, out: &mut Vec<CaseResult>) -> Result<Option<SigCase>> {
    let session = m.user_session()?;
    let mut keys: Vec<(KeyKind, Result<Key, String>)> = Vec::new();
    let mut primary: Option<(SigCase, Key)> = None;
    for case in sig_cases() {
        let sign_name = format!("sign {}", case.label());
        let verify_name = format!("verify {}", case.label());
        if s.quick && !case.in_quick {
            for n in [sign_name, verify_name] {
                out.push(CaseResult::new(n, "sign").with_status("skipped: --quick".into()));
            }
            continue;
        }
        let key = match keys.iter().find(|(k, _)| *k == case.kind) {
            Some((_, k)) => k.clone(),
            None => {
                let k = keys::generate(
                    m,
                    &session,
                    case.kind,
                    &KeyOptions {
                        label: key_label(case.kind),
                        id: key_label(case.kind).into_bytes(),
                        token: m.owns_store(),
                        extractable: false,
                    },
                )
                .map_err(|e| status::status_of(&e));
                keys.push((case.kind, k.clone()));
                k
            }
        };
        let (sign, verify, ok) = sign_verify(m, &session, s, case, key.clone());
        if ok && primary.is_none() {
            if let Ok(k) = key {
                primary = Some((case, k));
            }
        }
        out.push(sign.into_named(sign_name, "sign"));
        out.push(verify.into_named(verify_name, "verify"));
    }

    for kind in [KeyKind::Ec(Curve::P256), KeyKind::Rsa(2048)] {
        out.push(keygen(m, &session, s, kind, false));
    }
    // Durable writes (formerly provider/tests/store_costs.rs): a token key pair is written to
    // the store before the call returns.
    out.push(keygen(m, &session, s, KeyKind::Ec(Curve::P256), true));
    out.extend(threads(m, s, primary.as_ref()));
    // Last: C_Logout logs the whole application out, and some modules (SoftHSM2) then drop the
    // handles of private objects.
    out.push(login(m, s));
    out.push(wrong_login(m, s));
    // A cold start finds the key in a new process: only a token object can be found there.
    Ok(primary.map(|(c, _)| c).filter(|_| m.owns_store()))
}

/// A result under construction, named later.
struct Pending(Result<Measured, String>);

impl Pending {
    fn into_named(self, name: String, group: &str) -> CaseResult {
        match self.0 {
            Ok(m) => CaseResult::new(name, group).with(m),
            Err(st) => CaseResult::new(name, group).with_status(st),
        }
    }
}

fn sign_verify(
    m: &Module,
    session: &Session,
    s: &Settings,
    case: SigCase,
    key: Result<Key, String>,
) -> (Pending, Pending, bool) {
    let fail = |st: String| (Pending(Err(st.clone())), Pending(Err(st)), false);
    if let Err(e) = keys::require(m, case.mech.mechanism_type()) {
        return fail(status::status_of(&e));
    }
    let key = match key {
        Ok(k) => k,
        Err(st) => return fail(st),
    };
    let data = vec![0xa5u8; case.input_len];
    let mech = case.mech.mechanism();
    let sig = match session.sign(&mech, key.private, &data) {
        Ok(sig) => sig,
        Err(e) => return fail(status::status_of(&anyhow!(e))),
    };
    let sign = measure(s, 1, true, || {
        let t = Instant::now();
        session.sign(&mech, key.private, &data)?;
        Ok(t.elapsed())
    })
    .map_err(|e| status::status_of(&e));
    let verify = measure(s, 1, true, || {
        let t = Instant::now();
        session.verify(&mech, key.public, &data, &sig)?;
        Ok(t.elapsed())
    })
    .map_err(|e| status::status_of(&e));
    let ok = sign.is_ok();
    (Pending(sign), Pending(verify), ok)
}

fn keygen(m: &Module, session: &Session, s: &Settings, kind: KeyKind, token: bool) -> CaseResult {
    let name = if token {
        format!("keygen {kind} token key pair (durable write)")
    } else {
        format!("keygen {kind}")
    };
    let opts = KeyOptions {
        label: "bench-keygen".into(),
        id: b"bench-keygen".to_vec(),
        token,
        extractable: false,
    };
    let r = keys::require(m, kind.gen_mechanism().mechanism_type()).and_then(|_| {
        measure(s, 1, false, || {
            let t = Instant::now();
            let key = keys::generate_unchecked(session, kind, &opts)?;
            let d = t.elapsed();
            key.destroy(session);
            Ok(d)
        })
    });
    Pending(r.map_err(|e| status::status_of(&e))).into_named(name, "keygen")
}

fn login(m: &Module, s: &Settings) -> CaseResult {
    let r = m
        .ctx
        .open_rw_session(m.slot)
        .map_err(anyhow::Error::from)
        .and_then(|session| {
            let pin = module::pin(&m.user_pin);
            measure(s, 1, true, || {
                let _ = session.logout();
                let t = Instant::now();
                session.login(UserType::User, Some(&pin))?;
                Ok(t.elapsed())
            })
        });
    Pending(r.map_err(|e| status::status_of(&e))).into_named("C_Login User".into(), "login")
}

/// A wrong User PIN (formerly provider/tests/store_costs.rs): on a token that counts failures
/// durably, each one is a durable write of the counter. The right PIN after each (not timed)
/// resets the counter, so the token never locks.
fn wrong_login(m: &Module, s: &Settings) -> CaseResult {
    let r = m
        .ctx
        .open_rw_session(m.slot)
        .map_err(anyhow::Error::from)
        .and_then(|session| {
            let pin = module::pin(&m.user_pin);
            let wrong = module::pin("Wr0ng-Pin.x");
            measure(s, 1, true, || {
                let _ = session.logout();
                let t = Instant::now();
                let r = session.login(UserType::User, Some(&wrong));
                let d = t.elapsed();
                match r {
                    Err(cryptoki::error::Error::Pkcs11(
                        cryptoki::error::RvError::PinIncorrect,
                        _,
                    )) => {}
                    other => anyhow::bail!("a wrong PIN gave {other:?}, not CKR_PIN_INCORRECT"),
                }
                session.login(UserType::User, Some(&pin))?;
                Ok(d)
            })
        });
    Pending(r.map_err(|e| status::status_of(&e))).into_named(
        "C_Login wrong User PIN (durable failure counter)".into(),
        "login",
    )
}

fn find(session: &Session, s: &Settings, token: bool) -> Vec<CaseResult> {
    let mut out = Vec::new();
    let names: Vec<String> = s
        .find_sizes
        .iter()
        .map(|n| format!("C_FindObjects 1 label among {n} objects"))
        .collect();
    let data_object = |label: &str| {
        vec![
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(token),
            Attribute::Private(false),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Application(b"harness".to_vec()),
            Attribute::Value(vec![0x42; 16]),
        ]
    };
    let needle = data_object("needle");
    let bulk = data_object("bulk");
    if let Err(e) = session.create_object(&needle) {
        let st = status::status_of(&anyhow!(e));
        out.push(CaseResult::new("C_CreateObject data object", "create").with_status(st.clone()));
        out.extend(
            names
                .into_iter()
                .map(|n| CaseResult::new(n, "find").with_status(st.clone())),
        );
        return out;
    }
    let mut population = 1usize;
    let mut create_lat = Vec::new();
    let mut create_busy = Duration::ZERO;
    let template = [
        Attribute::Class(ObjectClass::DATA),
        Attribute::Label(b"needle".to_vec()),
    ];
    let mut finds = Vec::new();
    for (size, name) in s.find_sizes.iter().zip(names) {
        let mut failed = None;
        while population < *size {
            let t = Instant::now();
            match session.create_object(&bulk) {
                Ok(_) => {
                    let d = t.elapsed();
                    create_busy += d;
                    create_lat.push(d);
                    population += 1;
                }
                Err(e) => {
                    failed = Some(format!(
                        "failed: creating object {} of {size}: {}",
                        population + 1,
                        crate::ckr::error_name(&e)
                    ));
                    break;
                }
            }
        }
        if let Some(st) = failed {
            finds.push(CaseResult::new(name, "find").with_status(st));
            break;
        }
        let r = measure(s, 1, true, || {
            let t = Instant::now();
            let found = session.find_objects(&template)?;
            let d = t.elapsed();
            if found.len() != 1 {
                bail!("found {} objects labelled \"needle\", not 1", found.len());
            }
            Ok(d)
        });
        finds.push(Pending(r.map_err(|e| status::status_of(&e))).into_named(name, "find"));
    }
    if !create_lat.is_empty() {
        let rate = create_lat.len() as f64 / create_busy.as_secs_f64().max(1e-9);
        out.push(
            CaseResult::new("C_CreateObject data object", "create")
                .with(summarise(vec![rate], create_lat)),
        );
    }
    out.extend(finds);
    out
}

fn threads(m: &Module, s: &Settings, primary: Option<&(SigCase, Key)>) -> Vec<CaseResult> {
    let name = |n: usize, label: &str| {
        format!("sign {label}, {n} thread{}", if n == 1 { "" } else { "s" })
    };
    let Some((case, key)) = primary else {
        return s
            .threads
            .iter()
            .map(|n| {
                CaseResult::new(name(*n, "(no signing case works)"), "threads")
                    .with_status("not supported: no signature mechanism works".into())
            })
            .collect();
    };
    let label = case.label();
    s.threads
        .iter()
        .map(|&n| {
            let r = threaded(m, s, *case, *key, n);
            let mut c = Pending(r.map_err(|e| status::status_of(&e)))
                .into_named(name(n, &label), "threads");
            c.threads = Some(n);
            c
        })
        .collect()
}

fn threaded(m: &Module, s: &Settings, case: SigCase, key: Key, n: usize) -> Result<Measured> {
    let duration = Duration::from_millis(s.duration_ms);
    let data = vec![0xa5u8; case.input_len];
    let mut rates = Vec::new();
    let mut all = Vec::new();
    for _ in 0..s.repeats {
        let sessions = (0..n)
            .map(|_| m.ctx.open_rw_session(m.slot))
            .collect::<Result<Vec<_>, _>>()?;
        let barrier = Barrier::new(n);
        let results: Vec<Result<(Duration, Vec<Duration>)>> = std::thread::scope(|sc| {
            let handles: Vec<_> = sessions
                .into_iter()
                .map(|session| {
                    let (barrier, data) = (&barrier, &data);
                    sc.spawn(move || -> Result<(Duration, Vec<Duration>)> {
                        let mech = case.mech.mechanism();
                        // One operation before the start line, so no thread starts cold.
                        session.sign(&mech, key.private, data)?;
                        barrier.wait();
                        let start = Instant::now();
                        let mut lat = Vec::new();
                        while start.elapsed() < duration {
                            let t = Instant::now();
                            session.sign(&mech, key.private, data)?;
                            lat.push(t.elapsed());
                        }
                        Ok((start.elapsed(), lat))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow!("a benchmark thread panicked")))
                })
                .collect()
        });
        let mut wall = Duration::ZERO;
        let mut ops = 0usize;
        for r in results {
            let (w, lat) = r?;
            wall = wall.max(w);
            ops += lat.len();
            all.extend(lat);
        }
        rates.push(ops as f64 / wall.as_secs_f64().max(1e-9));
    }
    Ok(summarise(rates, all))
}

/// The environment variable that gives the cold start child the User PIN (not on its command
/// line, where other users could read it).
pub(crate) const PIN_VAR: &str = "HARNESS_USER_PIN";

/// Options of the hidden `cold-start` subcommand (the child process of the cold start cases).
#[derive(Clone, Debug, clap::Args)]
pub struct ColdStartArgs {
    /// The module.
    #[arg(long)]
    pub module: PathBuf,
    /// Label of the token (slot IDs of some modules change from process to process).
    #[arg(long)]
    pub token_label: String,
    /// Label of the signing key; without it the child stops after the login.
    #[arg(long)]
    pub key_label: Option<String>,
    /// Signature mechanism, as `SigMech::id` names it.
    #[arg(long)]
    pub mech: Option<String>,
    /// Length of the input to sign.
    #[arg(long, default_value_t = 32)]
    pub input_len: usize,
    /// When the parent spawned this process: nanoseconds since the Unix epoch.
    #[arg(long)]
    pub spawned_at: u128,
}

fn since_epoch_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The child side of a cold start: prints one JSON object with the time of each phase.
pub fn cold_start_child(a: &ColdStartArgs) -> Result<()> {
    let us_since_spawn = || (since_epoch_ns().saturating_sub(a.spawned_at)) as f64 / 1e3;
    let mut out = json!({ "main_us": us_since_spawn() });
    let ctx = module::load(&a.module)?;
    module::initialize(&ctx)
        .map_err(|e| anyhow!("C_Initialize: {}", crate::ckr::error_name(&e)))?;
    out["initialize_us"] = json!(us_since_spawn());
    let slot = module::find_token(&ctx, &a.token_label)?;
    let session = ctx.open_rw_session(slot)?;
    let pin = std::env::var(PIN_VAR).map_err(|_| anyhow!("{PIN_VAR} is not set"))?;
    module::login(&session, UserType::User, &pin)
        .map_err(|e| anyhow!("C_Login: {}", crate::ckr::error_name(&e)))?;
    out["login_us"] = json!(us_since_spawn());
    if let (Some(label), Some(mech)) = (&a.key_label, &a.mech) {
        let mech = SigMech::from_id(mech).ok_or_else(|| anyhow!("unknown mechanism {mech}"))?;
        let found = session.find_objects(&[
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Sign(true),
        ])?;
        let key = *found
            .first()
            .ok_or_else(|| anyhow!("no signing key labelled {label}"))?;
        out["find_us"] = json!(us_since_spawn());
        session.sign(&mech.mechanism(), key, &vec![0xa5u8; a.input_len])?;
        out["signature_us"] = json!(us_since_spawn());
    }
    drop(session);
    let _ = ctx.finalize();
    println!("{out}");
    Ok(())
}

/// The cold start cases; `objects` names how many objects the search cases left on the token.
fn cold_starts(
    m: &Module,
    s: &Settings,
    key: Option<SigCase>,
    objects: Option<usize>,
) -> Vec<CaseResult> {
    let with = objects.map_or(String::new(), |n| format!(", {n} objects"));
    let to_login = &format!("cold start{with}: process start to C_Login");
    let to_sig = &format!("cold start{with}: process start to first signature");
    let mut runs: Vec<Value> = Vec::new();
    let mut error = None;
    for _ in 0..s.cold_starts {
        match spawn_cold_start(m, key) {
            Ok(v) => runs.push(v),
            Err(e) => {
                error = Some(format!("failed: {}", crate::status::describe(&e)));
                break;
            }
        }
    }
    let collect = |field: &str| -> Vec<f64> {
        runs.iter()
            .filter_map(|r| r.get(field).and_then(Value::as_f64))
            .collect()
    };
    let result = |name: &str, field: &str, missing: &str| -> CaseResult {
        if let Some(e) = &error {
            return CaseResult::new(name, "cold start").with_status(e.clone());
        }
        let v = collect(field);
        if v.len() != runs.len() || v.is_empty() {
            return CaseResult::new(name, "cold start").with_status(missing.into());
        }
        let rates = v.iter().map(|us| 1e6 / us).collect();
        let lat = v
            .iter()
            .map(|us| Duration::from_secs_f64(us / 1e6))
            .collect();
        let mut c = CaseResult::new(name, "cold start").with(summarise(rates, lat));
        let phases = |f: &str| -> Value {
            let x = collect(f);
            if x.is_empty() {
                Value::Null
            } else {
                json!(x.iter().sum::<f64>() / x.len() as f64)
            }
        };
        c.detail = Some(json!({
            "mean_us_since_spawn": {
                "main": phases("main_us"),
                "initialize": phases("initialize_us"),
                "login": phases("login_us"),
                "find": phases("find_us"),
                "signature": phases("signature_us"),
            }
        }));
        c
    };
    let sig_missing = match key {
        None if !m.owns_store() => {
            "skipped: the harness creates no token objects on a token it does not own".to_string()
        }
        None => "not supported: no signature mechanism works".to_string(),
        Some(_) => "failed: the child did not sign".to_string(),
    };
    vec![
        result(to_login, "login_us", "failed: the child did not log in"),
        result(to_sig, "signature_us", &sig_missing),
    ]
}

fn spawn_cold_start(m: &Module, key: Option<SigCase>) -> Result<Value> {
    let exe = std::env::current_exe().context("cannot find the harness executable")?;
    let mut cmd = Command::new(exe);
    cmd.arg("cold-start")
        .arg("--module")
        .arg(&m.path)
        .arg("--token-label")
        .arg(&m.token_label);
    cmd.env(PIN_VAR, &m.user_pin);
    if let Some(case) = key {
        cmd.arg("--key-label")
            .arg(key_label(case.kind))
            .arg("--mech")
            .arg(case.mech.id())
            .arg("--input-len")
            .arg(case.input_len.to_string());
    }
    cmd.envs(m.env.iter().map(|(k, v)| (k, v)));
    cmd.arg("--spawned-at").arg(since_epoch_ns().to_string());
    let out = cmd
        .output()
        .context("cannot start the cold start process")?;
    if !out.status.success() {
        bail!(
            "the cold start process failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or("");
    serde_json::from_str(line).with_context(|| format!("unreadable cold start output {line:?}"))
}

/// One in-process signature case: measures signing, then verifying.
type RawCase = fn(&Settings) -> Result<(Measured, Measured)>;

fn raw_module(s: &Settings) -> ModuleReport {
    let mut results = Vec::new();
    let cases: [(&str, RawCase); 3] = [
        ("CKM_ECDSA P-256", raw_ecdsa),
        ("CKM_SHA256_RSA_PKCS RSA-2048", raw_rsa),
        ("CKM_EDDSA Ed25519", raw_ed25519),
    ];
    for (label, f) in cases {
        match f(s) {
            Ok((sign, verify)) => {
                results.push(CaseResult::new(format!("sign {label}"), "sign").with(sign));
                results.push(CaseResult::new(format!("verify {label}"), "verify").with(verify));
            }
            Err(e) => {
                for g in ["sign", "verify"] {
                    results.push(
                        CaseResult::new(format!("{g} {label}"), g)
                            .with_status(format!("failed: {}", crate::status::describe(&e))),
                    );
                }
            }
        }
    }
    // What one offline guess at a copied store's PIN costs: key4c's default PIN key
    // derivation (provider/src/crypto/master_key.rs), one run per guess.
    let label = "PBKDF2-HMAC-SHA256 x 600,000 (one offline PIN guess)";
    results.push(match raw_pbkdf2(s) {
        Ok(m) => CaseResult::new(label.to_string(), "kdf").with(m),
        Err(e) => CaseResult::new(label.to_string(), "kdf")
            .with_status(format!("failed: {}", crate::status::describe(&e))),
    });
    ModuleReport {
        name: "aws-lc-rs".into(),
        path: "in-process".into(),
        vendor: "raw".into(),
        library: None,
        status: "ok".into(),
        results,
    }
}

fn unspecified(_: aws_lc_rs::error::Unspecified) -> anyhow::Error {
    anyhow!("aws-lc-rs failed")
}

fn raw_pbkdf2(s: &Settings) -> Result<Measured> {
    use aws_lc_rs::pbkdf2::{derive, PBKDF2_HMAC_SHA256};
    let iterations = std::num::NonZeroU32::new(600_000).expect("nonzero");
    let mut out = [0u8; 32];
    measure(s, 3, false, || {
        let t = Instant::now();
        derive(
            PBKDF2_HMAC_SHA256,
            iterations,
            &[0x5a; 16],
            b"Key4C-Pin.9x",
            &mut out,
        );
        std::hint::black_box(&out);
        Ok(t.elapsed())
    })
}

fn raw_ecdsa(s: &Settings) -> Result<(Measured, Measured)> {
    use aws_lc_rs::digest::{Digest, SHA256};
    use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _, UnparsedPublicKey};
    let key =
        EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).map_err(unspecified)?;
    let digest = Digest::import_less_safe(&[0xa5; 32], &SHA256).map_err(unspecified)?;
    let sig = key.sign_digest(&digest).map_err(unspecified)?;
    let public = UnparsedPublicKey::new(
        &signature::ECDSA_P256_SHA256_FIXED,
        key.public_key().as_ref().to_vec(),
    );
    let sign = measure(s, 1, true, || {
        let t = Instant::now();
        std::hint::black_box(key.sign_digest(&digest).map_err(unspecified)?);
        Ok(t.elapsed())
    })?;
    let verify = measure(s, 1, true, || {
        let t = Instant::now();
        public
            .verify_digest(&digest, sig.as_ref())
            .map_err(unspecified)?;
        Ok(t.elapsed())
    })?;
    Ok((sign, verify))
}

fn raw_rsa(s: &Settings) -> Result<(Measured, Measured)> {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{self, KeyPair as _, RsaKeyPair, UnparsedPublicKey};
    let key = RsaKeyPair::generate(KeySize::Rsa2048).map_err(unspecified)?;
    let rng = SystemRandom::new();
    let msg = [0xa5u8; 32];
    let mut sig = vec![0u8; key.public_modulus_len()];
    key.sign(&signature::RSA_PKCS1_SHA256, &rng, &msg, &mut sig)
        .map_err(unspecified)?;
    let public = UnparsedPublicKey::new(
        &signature::RSA_PKCS1_2048_8192_SHA256,
        key.public_key().as_ref().to_vec(),
    );
    let mut out = vec![0u8; key.public_modulus_len()];
    let sign = measure(s, 1, true, || {
        let t = Instant::now();
        key.sign(&signature::RSA_PKCS1_SHA256, &rng, &msg, &mut out)
            .map_err(unspecified)?;
        Ok(t.elapsed())
    })?;
    let verify = measure(s, 1, true, || {
        let t = Instant::now();
        public.verify(&msg, &sig).map_err(unspecified)?;
        Ok(t.elapsed())
    })?;
    Ok((sign, verify))
}

fn raw_ed25519(s: &Settings) -> Result<(Measured, Measured)> {
    use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
    let key = Ed25519KeyPair::generate().map_err(unspecified)?;
    let msg = [0xa5u8; 32];
    let sig = key.sign(&msg);
    let public = UnparsedPublicKey::new(&signature::ED25519, key.public_key().as_ref().to_vec());
    let sign = measure(s, 1, true, || {
        let t = Instant::now();
        std::hint::black_box(key.sign(&msg));
        Ok(t.elapsed())
    })?;
    let verify = measure(s, 1, true, || {
        let t = Instant::now();
        public.verify(&msg, sig.as_ref()).map_err(unspecified)?;
        Ok(t.elapsed())
    })?;
    Ok((sign, verify))
}

/// Shortens a status for the table: `not supported: CKR_X (...)` becomes `not supported: CKR_X`,
/// and anything longer than 40 characters is cut (the notes under the table have it whole).
pub(crate) fn short_status(st: &str) -> String {
    let s = st.split(" (").next().unwrap_or(st);
    if s.chars().count() > 40 {
        s.chars().take(39).collect::<String>() + "…"
    } else {
        s.to_string()
    }
}

/// The terminal table: per module the median ops/s, min–max, p50, p99, and the ratio to the
/// first module.
pub fn table(r: &BenchReport) -> String {
    let mut header = vec!["case".to_string()];
    for (i, m) in r.modules.iter().enumerate() {
        header.push(format!("{} ops/s", m.name));
        header.push("min–max".into());
        header.push("p50".into());
        header.push("p99".into());
        if i > 0 {
            header.push("×first".into());
        }
    }
    let cases = report::merge_order(
        r.modules
            .iter()
            .map(|m| m.results.iter().map(|c| c.case.clone()).collect()),
    );
    let rows: Vec<Vec<String>> = cases
        .iter()
        .map(|case| {
            let mut row = vec![case.clone()];
            for (i, m) in r.modules.iter().enumerate() {
                let c = m.results.iter().find(|c| &c.case == case);
                let mut cells = match c {
                    Some(c) => match (&c.ops_per_sec, &c.latency_us) {
                        (Some(o), Some(l)) => vec![
                            fmt_rate(o.median),
                            format!("{}–{}", fmt_rate(o.min), fmt_rate(o.max)),
                            fmt_us(l.p50),
                            fmt_us(l.p99),
                            c.ratio_vs_first
                                .map(|x| format!("{x:.2}"))
                                .unwrap_or_default(),
                        ],
                        _ => vec![
                            short_status(&c.status),
                            "".into(),
                            "".into(),
                            "".into(),
                            "".into(),
                        ],
                    },
                    None if m.status != "ok" => vec![
                        short_status(&m.status),
                        "".into(),
                        "".into(),
                        "".into(),
                        "".into(),
                    ],
                    None => vec!["-".into(), "".into(), "".into(), "".into(), "".into()],
                };
                if i == 0 {
                    cells.pop();
                }
                row.extend(cells);
            }
            row
        })
        .collect();
    let mut out = report::text_table(&header, &rows);
    for m in &r.modules {
        if m.status != "ok" {
            out.push_str(&format!("{}: {}\n", m.name, m.status));
        }
        for c in &m.results {
            if c.status.starts_with("failed") {
                out.push_str(&format!("{} / {}: {}\n", m.name, c.case, c.status));
            }
        }
    }
    out.push_str(&format!(
        "{} ms × {} repeats per case; ops/s = median over repeats; p50/p99 over every operation; ×first = median ops/s / {}'s\n",
        r.settings.duration_ms,
        r.settings.repeats,
        r.modules.first().map(|m| m.name.as_str()).unwrap_or("-")
    ));
    out
}

/// A horizontal bar chart of median ops/s per case and module, on a log scale.
pub fn svg(r: &BenchReport) -> String {
    const COLORS: [&str; 6] = [
        "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1",
    ];
    // Cold starts are single latencies, not throughputs: the chart leaves them out.
    let cases = report::merge_order(r.modules.iter().map(|m| {
        m.results
            .iter()
            .filter(|c| c.ops_per_sec.is_some() && c.group != "cold start")
            .map(|c| c.case.clone())
            .collect()
    }));
    let value = |m: &ModuleReport, case: &str| {
        m.results
            .iter()
            .find(|c| c.case == case)
            .and_then(|c| c.ops_per_sec.as_ref())
            .map(|o| o.median)
            .filter(|v| *v > 0.0)
    };
    let all: Vec<f64> = r
        .modules
        .iter()
        .flat_map(|m| cases.iter().filter_map(move |c| value(m, c)))
        .collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = all.iter().copied().fold(0.0, f64::max);
    let (lo_exp, hi_exp) = if all.is_empty() {
        (0, 1)
    } else {
        (
            lo.log10().floor() as i32,
            (hi.log10().ceil() as i32).max(lo.log10().floor() as i32 + 1),
        )
    };
    let n = r.modules.len().max(1);
    let (label_w, chart_w, right) = (330.0, 560.0, 90.0);
    let (bar_h, group_gap, top) = (12.0, 10.0, 60.0);
    let group_h = n as f64 * (bar_h + 2.0) + group_gap;
    let height = top + cases.len() as f64 * group_h + 40.0;
    let width = label_w + chart_w + right;
    let x_of = |v: f64| label_w + chart_w * (v.log10() - lo_exp as f64) / (hi_exp - lo_exp) as f64;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">PKCS#11 operations per second (median, log scale)</text>\n"
    );
    for (i, m) in r.modules.iter().enumerate() {
        let x = 10.0 + i as f64 * 170.0;
        s.push_str(&format!(
            "<rect x=\"{x}\" y=\"32\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{}\" y=\"42\">{}</text>\n",
            COLORS[i % COLORS.len()],
            x + 16.0,
            report::xml_escape(&m.name)
        ));
    }
    let bottom = top + cases.len() as f64 * group_h;
    for e in lo_exp..=hi_exp {
        let x = x_of(10f64.powi(e));
        s.push_str(&format!(
            "<line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{bottom}\" stroke=\"#ddd\"/><text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            bottom + 14.0,
            report::fmt_count(10f64.powi(e))
        ));
    }
    for (ci, case) in cases.iter().enumerate() {
        let y0 = top + ci as f64 * group_h;
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            label_w - 8.0,
            y0 + (n as f64 * (bar_h + 2.0)) / 2.0 + 4.0,
            report::xml_escape(case)
        ));
        for (mi, m) in r.modules.iter().enumerate() {
            let y = y0 + mi as f64 * (bar_h + 2.0);
            if let Some(v) = value(m, case) {
                let w = (x_of(v) - label_w).max(1.0);
                s.push_str(&format!(
                    "<rect x=\"{label_w}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{bar_h}\" fill=\"{}\"><title>{}: {}</title></rect><text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
                    COLORS[mi % COLORS.len()],
                    report::xml_escape(&m.name),
                    fmt_rate(v),
                    label_w + w + 4.0,
                    y + bar_h - 2.0,
                    fmt_rate(v)
                ));
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_medians() {
        let lat: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        let m = summarise(vec![3.0, 1.0, 2.0], lat);
        assert_eq!(m.rates.min, 1.0);
        assert_eq!(m.rates.median, 2.0);
        assert_eq!(m.rates.max, 3.0);
        assert!((m.latency.p50 - 51.0).abs() < 1.0);
        assert!((m.latency.p99 - 99.0).abs() < 1.0);
        assert_eq!(m.ops, 100);
    }

    #[test]
    fn not_supported_is_short_in_tables() {
        assert_eq!(
            short_status("not supported: CKR_MECHANISM_INVALID (CKM_X is not listed)"),
            "not supported: CKR_MECHANISM_INVALID"
        );
    }
}
