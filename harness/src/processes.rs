//! `harness bench --processes 1,2,4,...`: many processes on one token at the same time.
//!
//! Teams run their tests in parallel processes, each loading the module and using the same
//! token. This measures what they get: for each module and each process count, one fresh token
//! with one P-256 key pair, then that many workers (the harness itself, hidden subcommand
//! `process-worker`) started at once. Each initialises the module, opens a R/W session and logs
//! in (the "start" calls), waits for a common start instant, and for `--seconds` runs a random
//! mix of `C_Sign` (CKM_ECDSA_SHA256 on the shared key), `C_CreateObject` of a token data
//! object, `C_DestroyObject` of one of its own, and a search by label. Every call is timed,
//! failed ones included, because a call that waits 10 s for the store and then fails is exactly
//! what a test suite notices.
//!
//! Afterwards a new process (hidden subcommand `process-check`) lists the token's data objects,
//! and every acknowledged write is checked: an object whose `C_CreateObject` returned CKR_OK
//! and that its worker did not destroy must be there, one whose `C_DestroyObject` returned
//! CKR_OK must not. Errors are reported by CKR name and do not fail the run; a lost
//! acknowledged write does.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context as _, Result};
use cryptoki::context::Pkcs11;
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use serde::{Deserialize, Serialize};

use crate::bench::{short_status, BenchArgs, PIN_VAR};
use crate::ckr;
use crate::keys::{self, Curve, Hash, KeyKind, KeyOptions, SigMech};
use crate::module::{self, Module, ModuleSpec};
use crate::report::{self, fmt_rate, fmt_us};
use crate::status;

/// The label of the key pair every worker signs with.
const KEY_LABEL: &str = "procbench-key";
/// `CKA_APPLICATION` of the workers' data objects.
const APPLICATION: &[u8] = b"harness procbench";

/// One kind of operation in the mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    /// `C_SignInit` + `C_Sign` with CKM_ECDSA_SHA256 on the shared key.
    Sign,
    /// `C_CreateObject` of a token data object.
    Create,
    /// `C_DestroyObject` of one of the worker's own objects.
    Destroy,
    /// `C_FindObjectsInit` by label, `C_FindObjects`, `C_FindObjectsFinal`.
    Find,
}

impl OpKind {
    const ALL: [OpKind; 4] = [OpKind::Sign, OpKind::Create, OpKind::Destroy, OpKind::Find];

    fn name(self) -> &'static str {
        match self {
            OpKind::Sign => "sign",
            OpKind::Create => "create",
            OpKind::Destroy => "destroy",
            OpKind::Find => "find",
        }
    }
}

/// Relative weights of the operations, e.g. `sign=40,create=25,destroy=20,find=15`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    /// Weight of each kind, in the order of [`OpKind::ALL`].
    weights: [u32; 4],
}

impl Mix {
    fn weight(&self, k: OpKind) -> u32 {
        self.weights[k as usize]
    }

    fn total(&self) -> u64 {
        self.weights.iter().map(|w| u64::from(*w)).sum()
    }

    /// The kind a random number picks: `r % total` falls into one weight's range.
    fn pick(&self, r: u64) -> OpKind {
        let mut x = r % self.total().max(1);
        for k in OpKind::ALL {
            let w = u64::from(self.weight(k));
            if x < w {
                return k;
            }
            x -= w;
        }
        OpKind::Sign
    }
}

impl FromStr for Mix {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Mix> {
        let mut weights = [0u32; 4];
        let mut seen = HashSet::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, w) = part
                .split_once('=')
                .ok_or_else(|| anyhow!("--mix: {part:?} is not NAME=WEIGHT"))?;
            let kind = OpKind::ALL
                .into_iter()
                .find(|k| k.name() == name.trim())
                .ok_or_else(|| {
                    anyhow!("--mix: unknown operation {name:?} (sign, create, destroy, find)")
                })?;
            if !seen.insert(kind) {
                bail!("--mix: {name} is given twice");
            }
            weights[kind as usize] = w
                .trim()
                .parse()
                .map_err(|_| anyhow!("--mix: the weight of {name} is not a whole number: {w:?}"))?;
        }
        let mix = Mix { weights };
        if mix.total() == 0 {
            bail!("--mix: every weight is 0");
        }
        Ok(mix)
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = OpKind::ALL
            .iter()
            .map(|k| format!("{}={}", k.name(), self.weight(*k)))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// A small deterministic generator (xorshift64*), so a worker's sequence of operations is the
/// same from run to run: differences between runs then come from the module, not the dice.
struct XorShift(u64);

impl XorShift {
    fn seeded(seed: u64) -> XorShift {
        // splitmix64 of the seed: neighbouring worker indexes get unrelated, non-zero states.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        XorShift((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Latencies in microseconds, bucketed so a 60-second run of tens of thousands of calls per
/// process fits in a short line: exact below 2,048 µs, then within 0.1 %.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    /// Calls per bucket, keyed by the bucket's lower bound in µs.
    buckets: BTreeMap<u64, u64>,
    /// The slowest call, exactly.
    max_us: u64,
}

impl Histogram {
    fn bucket(us: u64) -> u64 {
        if us < 2048 {
            us
        } else {
            // Keep the 11 most significant bits.
            let shift = 64 - us.leading_zeros() - 11;
            (us >> shift) << shift
        }
    }

    fn record_us(&mut self, us: u64) {
        *self.buckets.entry(Self::bucket(us)).or_insert(0) += 1;
        self.max_us = self.max_us.max(us);
    }

    fn record(&mut self, d: Duration) {
        self.record_us(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    fn merge(&mut self, other: &Histogram) {
        for (b, n) in &other.buckets {
            *self.buckets.entry(*b).or_insert(0) += n;
        }
        self.max_us = self.max_us.max(other.max_us);
    }

    fn count(&self) -> u64 {
        self.buckets.values().sum()
    }

    /// The nearest-rank percentile (`p` in 0..=1), in µs; `None` without calls.
    fn percentile(&self, p: f64) -> Option<u64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((p * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (b, c) in &self.buckets {
            seen += c;
            if seen >= rank {
                return Some((*b).min(self.max_us));
            }
        }
        Some(self.max_us)
    }

    fn max(&self) -> Option<u64> {
        (self.count() > 0).then_some(self.max_us)
    }
}

/// The calls of one kind: how many returned CKR_OK, the errors by name, and every call's time.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CallStats {
    /// Calls that succeeded.
    ok: u64,
    /// Failed calls by CKR name (or a short phrase for failures that are not a CKR).
    errors: BTreeMap<String, u64>,
    /// Time of every call, failed ones included.
    latency: Histogram,
}

impl CallStats {
    fn record(&mut self, d: Duration, error: Option<String>) {
        self.latency.record(d);
        match error {
            None => self.ok += 1,
            Some(e) => *self.errors.entry(e).or_insert(0) += 1,
        }
    }

    fn merge(&mut self, other: &CallStats) {
        self.ok += other.ok;
        for (e, n) in &other.errors {
            *self.errors.entry(e.clone()).or_insert(0) += n;
        }
        self.latency.merge(&other.latency);
    }
}

/// What a worker prints on its last line of stdout.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WorkerReport {
    /// The worker's index (0-based).
    index: usize,
    /// Its process ID.
    pid: u32,
    /// False when its start calls failed until the end: it ran no operation.
    began: bool,
    /// How long after the common start instant the worker was ready to begin, in ms.
    late_ms: u64,
    /// `C_Initialize`, `C_OpenSession`, `C_Login` and the search for the shared key, the
    /// re-opens after a lost session included.
    start: CallStats,
    /// `C_Finalize` at the end.
    finalize: CallStats,
    /// The operations of the mix.
    ops: BTreeMap<OpKind, CallStats>,
    /// Labels whose `C_CreateObject` returned CKR_OK and that were not destroyed.
    live: Vec<String>,
    /// Labels whose `C_DestroyObject` returned CKR_OK.
    gone: Vec<String>,
    /// Labels whose `C_CreateObject` returned an error: the object should not exist.
    create_failed: Vec<String>,
    /// Labels whose `C_DestroyObject` returned an error: the object should still exist.
    destroy_failed: Vec<String>,
}

/// Options of the hidden `process-worker` subcommand.
#[derive(Clone, Debug, clap::Args)]
pub struct WorkerArgs {
    /// The module.
    #[arg(long)]
    pub module: PathBuf,
    /// Label of the token.
    #[arg(long)]
    pub token_label: String,
    /// Label of the key pair to sign with.
    #[arg(long)]
    pub key_label: String,
    /// The signature mechanism, as `SigMech::id` names it (`ecdsa_sha256`, or `ecdsa` over a
    /// SHA-256 digest the worker makes).
    #[arg(long)]
    pub mech: String,
    /// The worker's index: seeds its random choices and names its objects.
    #[arg(long)]
    pub index: usize,
    /// When to start the mix: milliseconds since the Unix epoch.
    #[arg(long)]
    pub start_at_ms: u64,
    /// How long to run the mix from the start instant, in seconds.
    #[arg(long)]
    pub seconds: u64,
    /// The operation weights.
    #[arg(long)]
    pub mix: String,
}

/// Options of the hidden `process-check` subcommand.
#[derive(Clone, Debug, clap::Args)]
pub struct CheckArgs {
    /// The module.
    #[arg(long)]
    pub module: PathBuf,
    /// Label of the token.
    #[arg(long)]
    pub token_label: String,
}

/// What the check process prints: the labels of every token data object.
#[derive(Debug, Serialize, Deserialize)]
struct CheckReport {
    labels: Vec<String>,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The name a failed start call is counted under: `CKR_X (C_Function)` (start calls are of
/// several functions), else the message.
fn error_key(e: &anyhow::Error) -> String {
    match e.chain().find_map(|c| c.downcast_ref::<Error>()) {
        Some(err @ Error::Pkcs11(_, f)) => {
            format!("{} ({})", ckr::error_name(err), status::function_name(f))
        }
        Some(err) => ckr::error_name(err),
        None => e.to_string(),
    }
}

/// True when an error means the session (or the login) is no longer usable.
fn session_lost(e: &Error) -> bool {
    matches!(
        e,
        Error::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::UserNotLoggedIn
                | RvError::DeviceRemoved
                | RvError::TokenNotPresent,
            _
        )
    )
}

fn pkcs11_error<T>(r: &Result<T, Error>) -> Option<String> {
    r.as_ref().err().map(ckr::error_name)
}

/// A logged-in session and the shared key's handle in it.
struct Conn {
    session: Session,
    key: ObjectHandle,
}

struct Worker<'a> {
    args: &'a WorkerArgs,
    ctx: Pkcs11,
    mech: Mechanism<'static>,
    /// What `C_Sign` is given: the message, or its digest for plain CKM_ECDSA.
    to_sign: Vec<u8>,
    pin: String,
    rng: XorShift,
    report: WorkerReport,
    /// True between a successful `C_Initialize` and `C_Finalize`.
    initialized: bool,
    slot: Option<Slot>,
    /// Objects created and not yet destroyed: label and handle.
    live: Vec<(String, ObjectHandle)>,
    created: u64,
}

impl Worker<'_> {
    /// Times one start call; `None` when it failed (counted under `start`).
    fn start_call<T>(&mut self, f: impl FnOnce(&Self) -> Result<T>) -> Option<T> {
        let t = Instant::now();
        let r = f(self);
        self.report
            .start
            .record(t.elapsed(), r.as_ref().err().map(error_key));
        r.ok()
    }

    /// Finds the token, opens a R/W session, logs the User in and finds the shared key.
    fn connect(&mut self) -> Option<Conn> {
        if self.slot.is_none() {
            self.slot = self.start_call(|w| module::find_token(&w.ctx, &w.args.token_label));
        }
        let slot = self.slot?;
        let session = self.start_call(|w| Ok(w.ctx.open_rw_session(slot)?))?;
        self.start_call(|w| Ok(module::login(&session, UserType::User, &w.pin)?))?;
        let key = self.start_call(|w| {
            let found = session.find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(w.args.key_label.as_bytes().to_vec()),
            ])?;
            found
                .first()
                .copied()
                .ok_or_else(|| anyhow!("no private key labelled {}", w.args.key_label))
        })?;
        Some(Conn { session, key })
    }

    /// `C_Initialize` when needed, then [`Worker::connect`]. A process whose module does not
    /// show the token starts over with a new `C_Initialize`: SoftHSM2 lists the tokens it could
    /// read at `C_Initialize`, and one that another process was writing then stays invisible.
    fn ensure_conn(&mut self) -> Option<Conn> {
        if !self.initialized {
            self.initialized = self
                .start_call(|w| Ok(module::initialize(&w.ctx)?))
                .is_some();
            if !self.initialized {
                return None;
            }
        }
        let conn = self.connect();
        if conn.is_none() && self.slot.is_none() {
            self.start_call(|w| Ok(w.ctx.clone().finalize()?));
            self.initialized = false;
        }
        conn
    }

    /// Runs one operation of the mix; returns false when the session is gone.
    fn step(&mut self, conn: &Conn, kind: OpKind) -> bool {
        // Destroying needs an object of one's own: without one, create.
        let kind = if kind == OpKind::Destroy && self.live.is_empty() {
            OpKind::Create
        } else {
            kind
        };
        let s = &conn.session;
        let (d, error, lost) = match kind {
            OpKind::Sign => {
                let t = Instant::now();
                let r = s.sign(&self.mech, conn.key, &self.to_sign);
                (t.elapsed(), pkcs11_error(&r), r.err())
            }
            OpKind::Create => {
                let label = format!("w{}-{}", self.args.index, self.created);
                self.created += 1;
                let template = [
                    Attribute::Class(ObjectClass::DATA),
                    Attribute::Token(true),
                    Attribute::Private(false),
                    Attribute::Label(label.as_bytes().to_vec()),
                    Attribute::Application(APPLICATION.to_vec()),
                    Attribute::Value(label.as_bytes().to_vec()),
                ];
                let t = Instant::now();
                let r = s.create_object(&template);
                let d = t.elapsed();
                match &r {
                    Ok(h) => self.live.push((label, *h)),
                    Err(_) => self.report.create_failed.push(label),
                }
                (d, pkcs11_error(&r), r.err())
            }
            OpKind::Destroy => {
                let (label, handle) = self.live.swap_remove(self.rng.below(self.live.len()));
                let t = Instant::now();
                let r = s.destroy_object(handle);
                let d = t.elapsed();
                match &r {
                    Ok(()) => self.report.gone.push(label),
                    Err(_) => self.report.destroy_failed.push(label),
                }
                (d, pkcs11_error(&r), r.err())
            }
            OpKind::Find => {
                // One of its own objects or the shared key: exactly one object matches either.
                let (class, label) = if !self.live.is_empty() && self.rng.next() % 2 == 0 {
                    let (l, _) = &self.live[self.rng.below(self.live.len())];
                    (ObjectClass::DATA, l.clone())
                } else {
                    (ObjectClass::PRIVATE_KEY, self.args.key_label.clone())
                };
                let template = [
                    Attribute::Class(class),
                    Attribute::Label(label.into_bytes()),
                ];
                let t = Instant::now();
                let r = s.find_objects(&template);
                let d = t.elapsed();
                let error = match &r {
                    Ok(v) if v.len() == 1 => None,
                    Ok(v) => Some(format!("C_FindObjects found {} objects, not 1", v.len())),
                    Err(e) => Some(ckr::error_name(e)),
                };
                (d, error, r.err())
            }
        };
        self.report.ops.entry(kind).or_default().record(d, error);
        !lost.as_ref().is_some_and(session_lost)
    }
}

/// The worker process: start calls, the mix from the common start instant, one JSON line.
pub fn worker_child(a: &WorkerArgs) -> Result<()> {
    let mix: Mix = a.mix.parse()?;
    let pin = std::env::var(PIN_VAR).map_err(|_| anyhow!("{PIN_VAR} is not set"))?;
    let start_at = UNIX_EPOCH + Duration::from_millis(a.start_at_ms);
    let end_at = start_at + Duration::from_secs(a.seconds);
    let mech = SigMech::from_id(&a.mech).ok_or_else(|| anyhow!("unknown mechanism {}", a.mech))?;
    let message = [0xa5u8; 64];
    let to_sign = match mech {
        SigMech::Ecdsa => Hash::Sha256.digest(&message),
        _ => message.to_vec(),
    };
    let ctx = module::load(&a.module)?;
    let mut w = Worker {
        args: a,
        ctx,
        mech: mech.mechanism(),
        to_sign,
        pin,
        rng: XorShift::seeded(a.index as u64),
        report: WorkerReport {
            index: a.index,
            pid: std::process::id(),
            ..WorkerReport::default()
        },
        initialized: false,
        slot: None,
        live: Vec::new(),
        created: 0,
    };
    let past_end = || SystemTime::now() >= end_at;
    let pause = Duration::from_millis(100);

    // Start calls that fail (a store not handed over in time, a token not seen) are retried:
    // the worker keeps trying, as a test suite's next test would, and every failure counts.
    let mut conn = None;
    while conn.is_none() && !past_end() {
        conn = w.ensure_conn();
        if conn.is_none() {
            std::thread::sleep(pause);
        }
    }
    w.report.began = conn.is_some();
    match start_at.duration_since(SystemTime::now()) {
        Ok(wait) => std::thread::sleep(wait),
        Err(late) => {
            w.report.late_ms = u64::try_from(late.duration().as_millis()).unwrap_or(u64::MAX)
        }
    }
    while !past_end() {
        let Some(c) = conn.take().or_else(|| w.ensure_conn()) else {
            std::thread::sleep(pause);
            continue;
        };
        let kind = mix.pick(w.rng.next());
        if w.step(&c, kind) {
            conn = Some(c);
        }
    }
    drop(conn);
    if w.initialized {
        let t = Instant::now();
        let r = w.ctx.clone().finalize();
        w.report.finalize.record(t.elapsed(), pkcs11_error(&r));
    }
    w.report.live = w.live.into_iter().map(|(l, _)| l).collect();
    println!("{}", serde_json::to_string(&w.report)?);
    Ok(())
}

/// The check process: every token data object's label, seen by a process that did not write.
pub fn check_child(a: &CheckArgs) -> Result<()> {
    let ctx = module::load(&a.module)?;
    module::initialize(&ctx).map_err(|e| anyhow!("C_Initialize: {}", ckr::error_name(&e)))?;
    let slot = module::find_token(&ctx, &a.token_label)?;
    let session = ctx.open_ro_session(slot)?;
    let pin = std::env::var(PIN_VAR).map_err(|_| anyhow!("{PIN_VAR} is not set"))?;
    module::login(&session, UserType::User, &pin)
        .map_err(|e| anyhow!("C_Login: {}", ckr::error_name(&e)))?;
    let handles =
        session.find_objects(&[Attribute::Class(ObjectClass::DATA), Attribute::Token(true)])?;
    let mut labels = Vec::with_capacity(handles.len());
    for h in handles {
        for attr in session.get_attributes(h, &[AttributeType::Label])? {
            if let Attribute::Label(l) = attr {
                labels.push(String::from_utf8_lossy(&l).into_owned());
            }
        }
    }
    drop(session);
    let _ = ctx.finalize();
    println!("{}", serde_json::to_string(&CheckReport { labels })?);
    Ok(())
}

/// Acknowledged writes the token does not show.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Lost {
    /// Created with CKR_OK, never destroyed, and missing.
    pub live_missing: Vec<String>,
    /// Destroyed with CKR_OK, and still there.
    pub gone_present: Vec<String>,
}

impl Lost {
    fn count(&self) -> usize {
        self.live_missing.len() + self.gone_present.len()
    }
}

/// Compares the acknowledged state with the labels the token holds.
fn lost(live: &[String], gone: &[String], present: &HashSet<String>) -> Lost {
    Lost {
        live_missing: live
            .iter()
            .filter(|l| !present.contains(*l))
            .cloned()
            .collect(),
        gone_present: gone
            .iter()
            .filter(|l| present.contains(*l))
            .cloned()
            .collect(),
    }
}

/// Percentiles of one kind of call, in µs.
#[derive(Clone, Debug, Serialize)]
pub struct CallSummary {
    /// Calls made.
    pub calls: u64,
    /// Calls that returned CKR_OK.
    pub ok: u64,
    /// Failed calls by name.
    pub errors: BTreeMap<String, u64>,
    /// Median latency.
    pub p50_us: Option<u64>,
    /// 99th percentile.
    pub p99_us: Option<u64>,
    /// Slowest call.
    pub max_us: Option<u64>,
}

impl From<&CallStats> for CallSummary {
    fn from(s: &CallStats) -> CallSummary {
        CallSummary {
            calls: s.latency.count(),
            ok: s.ok,
            errors: s.errors.clone(),
            p50_us: s.latency.percentile(0.50),
            p99_us: s.latency.percentile(0.99),
            max_us: s.latency.max(),
        }
    }
}

/// One worker as the parent saw it.
#[derive(Clone, Debug, Serialize)]
pub struct WorkerOutcome {
    /// Index.
    pub index: usize,
    /// Process ID (0 when it could not be started).
    pub pid: u32,
    /// `ok`, or how it failed (exit status, killed, unreadable output).
    pub status: String,
    /// False when its start calls failed until the end.
    pub began: bool,
    /// How long after the start instant it began the mix, in ms.
    pub late_ms: u64,
    /// Operations that returned CKR_OK.
    pub ok_ops: u64,
    /// The end of its stderr when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr_tail: Option<String>,
}

/// The slowest call of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Slowest {
    /// Its time in µs.
    pub us: u64,
    /// What it was: `sign`, `create`, `destroy`, `find`, `start` or `finalize`.
    pub kind: String,
}

/// One module at one process count.
#[derive(Clone, Debug, Serialize)]
pub struct CountResult {
    /// Number of worker processes.
    pub processes: usize,
    /// `ok`, or why the run could not be made.
    pub status: String,
    /// The signature mechanism of the `sign` operations.
    pub sign_mechanism: Option<String>,
    /// Operations that returned CKR_OK, all workers together.
    pub ok_ops: u64,
    /// `ok_ops` / the run's seconds.
    pub ops_per_sec: f64,
    /// Per kind of call (the mix's four, `start`, `finalize`).
    pub calls: BTreeMap<String, CallSummary>,
    /// `C_CreateObject` and `C_DestroyObject` together.
    pub store_writes: Option<CallSummary>,
    /// The slowest call of any kind.
    pub slowest: Option<Slowest>,
    /// Errors of every kind of call and failed workers, by name.
    pub errors: BTreeMap<String, u64>,
    /// Objects created and not destroyed, acknowledged.
    pub acknowledged_live: usize,
    /// Objects destroyed, acknowledged.
    pub acknowledged_gone: usize,
    /// Creates that returned an error.
    pub failed_creates: usize,
    /// Of those, objects the token holds anyway (a call that failed yet had its effect).
    pub failed_creates_present: usize,
    /// Destroys that returned an error.
    pub failed_destroys: usize,
    /// Of those, objects gone anyway.
    pub failed_destroys_gone: usize,
    /// `ok`, or why the final check could not be made.
    pub check_status: String,
    /// Acknowledged writes missing from the token (`None` when not checked).
    pub lost: Option<Lost>,
    /// Every worker.
    pub workers: Vec<WorkerOutcome>,
}

impl CountResult {
    fn failed(processes: usize, status: String) -> CountResult {
        CountResult {
            processes,
            status,
            sign_mechanism: None,
            ok_ops: 0,
            ops_per_sec: 0.0,
            calls: BTreeMap::new(),
            store_writes: None,
            slowest: None,
            errors: BTreeMap::new(),
            acknowledged_live: 0,
            acknowledged_gone: 0,
            failed_creates: 0,
            failed_creates_present: 0,
            failed_destroys: 0,
            failed_destroys_gone: 0,
            check_status: "not run".into(),
            lost: None,
            workers: Vec::new(),
        }
    }

    fn lost_count(&self) -> Option<usize> {
        self.lost.as_ref().map(Lost::count)
    }
}

/// One module's runs.
#[derive(Clone, Debug, Serialize)]
pub struct ModuleRuns {
    /// Name shown in reports.
    pub name: String,
    /// Path of the module.
    pub path: String,
    /// Vendor as detected.
    pub vendor: String,
    /// One per process count.
    pub runs: Vec<CountResult>,
}

/// The settings of a processes run.
#[derive(Clone, Debug, Serialize)]
pub struct ProcessSettings {
    /// Process counts.
    pub processes: Vec<usize>,
    /// Seconds of the mix per count.
    pub seconds: u64,
    /// The mix.
    pub mix: String,
    /// `HARNESS_KEY4C_KDF_ITERATIONS` when set.
    pub key4c_kdf_iterations: Option<String>,
}

/// The whole processes run.
#[derive(Clone, Debug, Serialize)]
pub struct ProcessesReport {
    /// Version of the harness.
    pub harness_version: String,
    /// Settings.
    pub settings: ProcessSettings,
    /// One per `--module`.
    pub modules: Vec<ModuleRuns>,
}

/// Runs `harness bench --processes ...`.
pub fn run(args: &BenchArgs) -> Result<()> {
    let mix: Mix = args.mix.parse()?;
    if args.processes.contains(&0) {
        bail!("--processes: a count of 0 processes");
    }
    let settings = ProcessSettings {
        processes: args.processes.clone(),
        seconds: args.seconds.max(1),
        mix: mix.to_string(),
        key4c_kdf_iterations: std::env::var("HARNESS_KEY4C_KDF_ITERATIONS").ok(),
    };
    let mut modules = Vec::new();
    for spec in args.modules.specs() {
        let mut m = ModuleRuns {
            name: spec.name.clone(),
            path: spec.path.display().to_string(),
            vendor: "?".into(),
            runs: Vec::new(),
        };
        for &n in &settings.processes {
            eprintln!(
                "bench: {} ({}), {n} process{} for {} s",
                spec.name,
                spec.path.display(),
                if n == 1 { "" } else { "es" },
                settings.seconds
            );
            m.runs.push(run_count(&spec, n, &settings, &mut m.vendor));
        }
        modules.push(m);
    }
    let report = ProcessesReport {
        harness_version: env!("CARGO_PKG_VERSION").into(),
        settings,
        modules,
    };
    print!("{}", table(&report));
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    let runs = || report.modules.iter().flat_map(|m| m.runs.iter());
    let lost: usize = runs().filter_map(CountResult::lost_count).sum();
    let unchecked = runs().filter(|r| r.lost.is_none()).count();
    if lost > 0 {
        bail!("{lost} acknowledged write(s) lost");
    }
    if unchecked > 0 {
        bail!("{unchecked} run(s) could not be made or checked");
    }
    Ok(())
}

/// One module at one process count, on a fresh token.
fn run_count(spec: &ModuleSpec, n: usize, s: &ProcessSettings, vendor: &mut String) -> CountResult {
    let fail =
        |e: anyhow::Error| CountResult::failed(n, format!("failed: {}", status::describe(&e)));
    let module = match Module::open(spec) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    *vendor = module.vendor.to_string();
    if !module.owns_store() {
        let _ = module.finalize();
        return CountResult::failed(
            n,
            "skipped: the workers create token objects, and the harness creates none on a token it does not own".into(),
        );
    }
    let prepared = prepare(&module);
    // Workers must find the store free: this process lets go of the module before they start.
    let finalized = module.finalize();
    let mech = match prepared.and_then(|m| finalized.map(|()| m)) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    match spawn_and_check(&module, n, s, mech) {
        Ok(mut r) => {
            r.sign_mechanism = Some(mech.name());
            r
        }
        Err(e) => fail(e),
    }
}

/// The shared key: a token P-256 key pair, made before any worker starts; returns the mechanism
/// to sign with: CKM_ECDSA_SHA256, else CKM_ECDSA over a digest (SoftHSM2 before 2.7 has only
/// that), which costs the module the same signature.
fn prepare(m: &Module) -> Result<SigMech> {
    let combined = SigMech::EcdsaSha(Hash::Sha256);
    let mech = if m.has_mechanism(combined.mechanism_type()) {
        combined
    } else {
        keys::require(m, SigMech::Ecdsa.mechanism_type()).map_err(|_| {
            anyhow!(status::NotSupported(
                "CKR_MECHANISM_INVALID (neither CKM_ECDSA_SHA256 nor CKM_ECDSA is in C_GetMechanismList)".into()
            ))
        })?;
        SigMech::Ecdsa
    };
    let session = m.user_session()?;
    keys::generate(
        m,
        &session,
        KeyKind::Ec(Curve::P256),
        &KeyOptions {
            label: KEY_LABEL.into(),
            id: KEY_LABEL.as_bytes().to_vec(),
            token: true,
            extractable: false,
        },
    )?;
    Ok(mech)
}

/// A harness child process with the module's environment; stdout and stderr go to files, so
/// a worker never blocks on a full pipe while the parent waits for another.
fn spawn_child(m: &Module, args: &[String], dir: &Path, name: &str) -> Result<Child> {
    let exe = std::env::current_exe().context("cannot find the harness executable")?;
    let out = File::create(dir.join(format!("{name}.out")))?;
    let err = File::create(dir.join(format!("{name}.err")))?;
    Command::new(exe)
        .args(args)
        .envs(m.env.iter().map(|(k, v)| (k, v)))
        .env(PIN_VAR, &m.user_pin)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("cannot start {name}"))
}

/// Waits for a child until `deadline`, then kills it; `None` when it had to be killed.
fn wait_until(child: &mut Child, deadline: Instant) -> Result<Option<ExitStatus>> {
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(Some(st));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last line of a child's stdout, parsed.
fn read_output<T: for<'de> Deserialize<'de>>(dir: &Path, name: &str) -> Result<T> {
    let text = std::fs::read_to_string(dir.join(format!("{name}.out")))?;
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    serde_json::from_str(line).with_context(|| format!("unreadable output of {name}: {line:?}"))
}

/// The last lines of a child's stderr, for a report.
fn stderr_tail(dir: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(dir.join(format!("{name}.err"))).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

fn spawn_and_check(
    m: &Module,
    n: usize,
    s: &ProcessSettings,
    mech: SigMech,
) -> Result<CountResult> {
    let dir = tempfile::Builder::new()
        .prefix("harness-procbench-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    // Time enough for every worker to load the module and log in before the common start; a
    // worker that needs longer starts late and says so.
    let start_at = unix_ms() + 1_000 + 150 * n as u64;
    let mut children = Vec::new();
    for i in 0..n {
        let name = format!("worker-{i}");
        let args: Vec<String> = vec![
            "process-worker".into(),
            "--module".into(),
            m.path.display().to_string(),
            "--token-label".into(),
            m.token_label.clone(),
            "--key-label".into(),
            KEY_LABEL.into(),
            "--mech".into(),
            mech.id(),
            "--index".into(),
            i.to_string(),
            "--start-at-ms".into(),
            start_at.to_string(),
            "--seconds".into(),
            s.seconds.to_string(),
            "--mix".into(),
            s.mix.clone(),
        ];
        children.push((name.clone(), spawn_child(m, &args, dir.path(), &name)));
    }
    // A worker stuck in a call long after the end is killed; its writes cannot be checked.
    let grace = Duration::from_secs(60);
    let deadline = Instant::now()
        + Duration::from_millis(start_at.saturating_sub(unix_ms()))
        + Duration::from_secs(s.seconds)
        + grace;
    let mut reports = Vec::new();
    let mut workers = Vec::new();
    for (i, (name, child)) in children.into_iter().enumerate() {
        let mut outcome = WorkerOutcome {
            index: i,
            pid: 0,
            status: "ok".into(),
            began: false,
            late_ms: 0,
            ok_ops: 0,
            stderr_tail: None,
        };
        let exited = child.and_then(|mut c| {
            outcome.pid = c.id();
            wait_until(&mut c, deadline)
        });
        let failure = match exited {
            Err(e) => Some(format!("failed: {}", status::describe(&e))),
            Ok(None) => Some(format!(
                "killed: still running {} s after the end",
                grace.as_secs()
            )),
            Ok(Some(st)) if !st.success() => Some(format!("failed: {st}")),
            Ok(Some(_)) => match read_output::<WorkerReport>(dir.path(), &name) {
                Ok(r) => {
                    outcome.began = r.began;
                    outcome.late_ms = r.late_ms;
                    outcome.ok_ops = r.ops.values().map(|c| c.ok).sum();
                    reports.push(r);
                    None
                }
                Err(e) => Some(format!("failed: {}", status::describe(&e))),
            },
        };
        if let Some(f) = failure {
            outcome.status = f;
            outcome.stderr_tail = Some(stderr_tail(dir.path(), &name));
        }
        workers.push(outcome);
    }

    let mut result = summarise(n, s.seconds, &reports, workers);
    let check_args = vec![
        "process-check".to_string(),
        "--module".into(),
        m.path.display().to_string(),
        "--token-label".into(),
        m.token_label.clone(),
    ];
    let checked = spawn_child(m, &check_args, dir.path(), "check").and_then(|mut c| {
        match wait_until(&mut c, Instant::now() + grace)? {
            None => bail!("the check process did not finish in {} s", grace.as_secs()),
            Some(st) if !st.success() => bail!(
                "the check process failed ({st}): {}",
                stderr_tail(dir.path(), "check")
            ),
            Some(_) => read_output::<CheckReport>(dir.path(), "check"),
        }
    });
    match checked {
        Ok(check) => {
            let present: HashSet<String> = check.labels.into_iter().collect();
            let live: Vec<String> = reports.iter().flat_map(|r| r.live.clone()).collect();
            let gone: Vec<String> = reports.iter().flat_map(|r| r.gone.clone()).collect();
            // Not losses, but a failed call should have had no effect: worth a note.
            let failed = |f: fn(&WorkerReport) -> &Vec<String>, want: bool| {
                reports
                    .iter()
                    .flat_map(|r| f(r).iter())
                    .filter(|l| present.contains(*l) == want)
                    .count()
            };
            result.failed_creates_present = failed(|r| &r.create_failed, true);
            result.failed_destroys_gone = failed(|r| &r.destroy_failed, false);
            result.lost = Some(lost(&live, &gone, &present));
            result.check_status = "ok".into();
        }
        Err(e) => result.check_status = format!("failed: {}", status::describe(&e)),
    }
    Ok(result)
}

/// Merges the workers' reports into one run's figures.
fn summarise(
    n: usize,
    seconds: u64,
    reports: &[WorkerReport],
    workers: Vec<WorkerOutcome>,
) -> CountResult {
    let mut by_kind: BTreeMap<String, CallStats> = BTreeMap::new();
    for r in reports {
        for (k, c) in &r.ops {
            by_kind.entry(k.name().into()).or_default().merge(c);
        }
        by_kind.entry("start".into()).or_default().merge(&r.start);
        by_kind
            .entry("finalize".into())
            .or_default()
            .merge(&r.finalize);
    }
    let ok_ops: u64 = OpKind::ALL
        .iter()
        .filter_map(|k| by_kind.get(k.name()))
        .map(|c| c.ok)
        .sum();
    let mut writes = CallStats::default();
    for k in [OpKind::Create, OpKind::Destroy] {
        if let Some(c) = by_kind.get(k.name()) {
            writes.merge(c);
        }
    }
    let slowest = by_kind
        .iter()
        .filter_map(|(k, c)| c.latency.max().map(|us| (us, k)))
        .max()
        .map(|(us, k)| Slowest {
            us,
            kind: k.clone(),
        });
    // All kinds together by CKR name alone; the notes give them per kind and function.
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for c in by_kind.values() {
        for (e, k) in &c.errors {
            let name = e.split(" (").next().unwrap_or(e);
            *errors.entry(name.to_string()).or_insert(0) += k;
        }
    }
    let failed_workers = workers.iter().filter(|w| w.status != "ok").count() as u64;
    if failed_workers > 0 {
        errors.insert("worker failed".into(), failed_workers);
    }
    CountResult {
        processes: n,
        status: "ok".into(),
        sign_mechanism: None,
        ok_ops,
        ops_per_sec: ok_ops as f64 / seconds.max(1) as f64,
        calls: by_kind
            .iter()
            .map(|(k, c)| (k.clone(), CallSummary::from(c)))
            .collect(),
        store_writes: (writes.latency.count() > 0).then(|| CallSummary::from(&writes)),
        slowest,
        errors,
        acknowledged_live: reports.iter().map(|r| r.live.len()).sum(),
        acknowledged_gone: reports.iter().map(|r| r.gone.len()).sum(),
        failed_creates: reports.iter().map(|r| r.create_failed.len()).sum(),
        failed_creates_present: 0,
        failed_destroys: reports.iter().map(|r| r.destroy_failed.len()).sum(),
        failed_destroys_gone: 0,
        check_status: "not run".into(),
        lost: None,
        workers,
    }
}

/// `CKR_DEVICE_ERROR×4, CKR_X×1`, or `0`.
fn fmt_errors(errors: &BTreeMap<String, u64>) -> String {
    if errors.is_empty() {
        return "0".into();
    }
    let mut v: Vec<(&String, &u64)> = errors.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .map(|(e, n)| format!("{e}×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn opt_us(us: Option<u64>) -> String {
    us.map(|u| fmt_us(u as f64)).unwrap_or_else(|| "-".into())
}

/// The terminal table, one row per module and process count, and notes on what went wrong.
pub fn table(r: &ProcessesReport) -> String {
    let header: Vec<String> = [
        "module",
        "processes",
        "ops/s",
        "write p50",
        "write p99",
        "write max",
        "slowest call",
        "sign p99",
        "errors",
        "lost",
    ]
    .map(String::from)
    .to_vec();
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for m in &r.modules {
        for run in &m.runs {
            let w = run.store_writes.as_ref();
            let lost = match &run.lost {
                Some(l) => l.count().to_string(),
                None if run.status != "ok" => "-".into(),
                None => "unchecked".into(),
            };
            rows.push(if run.status != "ok" {
                let mut row = vec![
                    m.name.clone(),
                    run.processes.to_string(),
                    short_status(&run.status),
                ];
                row.resize(header.len() - 1, String::new());
                row.push(lost);
                row
            } else {
                vec![
                    m.name.clone(),
                    run.processes.to_string(),
                    fmt_rate(run.ops_per_sec),
                    opt_us(w.and_then(|w| w.p50_us)),
                    opt_us(w.and_then(|w| w.p99_us)),
                    opt_us(w.and_then(|w| w.max_us)),
                    run.slowest
                        .as_ref()
                        .map(|s| format!("{} ({})", fmt_us(s.us as f64), s.kind))
                        .unwrap_or_else(|| "-".into()),
                    opt_us(run.calls.get("sign").and_then(|c| c.p99_us)),
                    fmt_errors(&run.errors),
                    lost,
                ]
            });
            notes.extend(run_notes(&m.name, run));
        }
        if m.runs
            .iter()
            .any(|r| r.sign_mechanism.as_deref() == Some("CKM_ECDSA"))
        {
            notes.push(format!(
                "{}: sign is CKM_ECDSA over a SHA-256 digest made by the worker (no CKM_ECDSA_SHA256)",
                m.name
            ));
        }
    }
    let mut out = report::text_table(&header, &rows);
    for n in notes {
        out.push_str(&n);
        out.push('\n');
    }
    out.push_str(&format!(
        "{} s per run from a common start, mix {}; a fresh token per run; ops/s = calls of the mix that returned CKR_OK / {} s; write = C_CreateObject + C_DestroyObject; slowest call includes C_Initialize, C_OpenSession, C_Login, C_Finalize; errors and latencies count failed calls too; lost = acknowledged creates missing + acknowledged destroys present, seen by a new process\n",
        r.settings.seconds, r.settings.mix, r.settings.seconds
    ));
    out
}

/// Lines under the table for one run: errors per kind, failed and late workers, lost writes.
fn run_notes(module: &str, run: &CountResult) -> Vec<String> {
    let at = format!(
        "{module}, {} process{}",
        run.processes,
        if run.processes == 1 { "" } else { "es" }
    );
    let mut notes = Vec::new();
    if run.status != "ok" {
        return vec![format!("{at}: {}", run.status)];
    }
    for (kind, c) in &run.calls {
        if !c.errors.is_empty() {
            notes.push(format!(
                "{at}: {kind}: {} of {} calls failed: {}",
                c.calls - c.ok,
                c.calls,
                fmt_errors(&c.errors)
            ));
        }
    }
    for w in &run.workers {
        if w.status != "ok" {
            notes.push(format!(
                "{at}: worker {} (pid {}): {}",
                w.index, w.pid, w.status
            ));
            match w.stderr_tail.as_deref().filter(|t| !t.trim().is_empty()) {
                Some(t) => notes.extend(t.lines().map(|l| format!("    {l}"))),
                None => notes.push("    (nothing on stderr)".into()),
            }
        }
    }
    let failed = run.workers.iter().filter(|w| w.status != "ok").count();
    if failed > 0 {
        notes.push(format!(
            "{at}: the writes of {failed} failed worker(s) are unknown and not checked"
        ));
    }
    let idle = run
        .workers
        .iter()
        .filter(|w| w.status == "ok" && !w.began)
        .count();
    if idle > 0 {
        notes.push(format!(
            "{at}: {idle} worker(s) never began the mix: their start calls failed until the end"
        ));
    }
    let late: Vec<&WorkerOutcome> = run
        .workers
        .iter()
        .filter(|w| w.began && w.late_ms > 0)
        .collect();
    if let Some(worst) = late.iter().map(|w| w.late_ms).max() {
        notes.push(format!(
            "{at}: {} worker(s) began the mix after the common start (the latest {worst} ms late)",
            late.len()
        ));
    }
    if run.failed_creates + run.failed_destroys > 0 && run.check_status == "ok" {
        notes.push(format!(
            "{at}: of {} failed creates, {} made the object anyway; of {} failed destroys, {} removed it anyway",
            run.failed_creates,
            run.failed_creates_present,
            run.failed_destroys,
            run.failed_destroys_gone
        ));
    }
    if run.check_status != "ok" {
        notes.push(format!("{at}: check: {}", run.check_status));
    }
    if let Some(l) = &run.lost {
        let show = |v: &[String]| {
            let mut s = v.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
            if v.len() > 5 {
                s.push_str(&format!(", … ({} in all)", v.len()));
            }
            s
        };
        if !l.live_missing.is_empty() {
            notes.push(format!(
                "{at}: LOST: {} object(s) created with CKR_OK are missing: {}",
                l.live_missing.len(),
                show(&l.live_missing)
            ));
        }
        if !l.gone_present.is_empty() {
            notes.push(format!(
                "{at}: LOST: {} object(s) destroyed with CKR_OK are still there: {}",
                l.gone_present.len(),
                show(&l.gone_present)
            ));
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parses_and_picks_by_weight() {
        let m: Mix = "sign=40,create=25,destroy=20,find=15".parse().expect("mix");
        assert_eq!(m.weights, [40, 25, 20, 15]);
        assert_eq!(m.to_string(), "sign=40,create=25,destroy=20,find=15");
        assert_eq!(m.pick(0), OpKind::Sign);
        assert_eq!(m.pick(39), OpKind::Sign);
        assert_eq!(m.pick(40), OpKind::Create);
        assert_eq!(m.pick(65), OpKind::Destroy);
        assert_eq!(m.pick(84), OpKind::Destroy);
        assert_eq!(m.pick(85), OpKind::Find);
        assert_eq!(m.pick(99), OpKind::Find);
        assert_eq!(m.pick(100), OpKind::Sign);
        // Missing kinds weigh 0, and are never picked.
        let only: Mix = " find = 3 ".parse().expect("mix");
        assert_eq!(only.weights, [0, 0, 0, 3]);
        assert_eq!(only.pick(1), OpKind::Find);
        for bad in ["", "sign=0", "sign", "sign=x", "sign=1,sign=2", "verify=1"] {
            assert!(bad.parse::<Mix>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut h = Histogram::default();
        for us in 1..=100 {
            h.record_us(us);
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.percentile(0.50), Some(50));
        assert_eq!(h.percentile(0.99), Some(99));
        assert_eq!(h.percentile(1.0), Some(100));
        assert_eq!(h.percentile(0.0), Some(1));
        assert_eq!(h.max(), Some(100));
        assert_eq!(Histogram::default().percentile(0.5), None);

        // Above 2,048 µs buckets keep 11 significant bits; the maximum stays exact.
        assert_eq!(Histogram::bucket(2047), 2047);
        assert_eq!(Histogram::bucket(2049), 2048);
        assert_eq!(Histogram::bucket(5001), 5000);
        assert_eq!(Histogram::bucket(10_000_123), 9_994_240);
        let mut slow = Histogram::default();
        slow.record_us(10_000_123);
        h.merge(&slow);
        assert_eq!(h.count(), 101);
        assert_eq!(h.percentile(1.0), Some(9_994_240));
        assert_eq!(h.max(), Some(10_000_123));
    }

    #[test]
    fn lost_counts_missing_live_and_present_gone() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let present: HashSet<String> = s(&["w0-0", "w0-2", "w1-0", "w1-5"]).into_iter().collect();
        let l = lost(
            &s(&["w0-0", "w0-1", "w1-0"]),
            &s(&["w0-2", "w0-3", "w1-4"]),
            &present,
        );
        assert_eq!(l.live_missing, s(&["w0-1"]));
        assert_eq!(l.gone_present, s(&["w0-2"]));
        assert_eq!(l.count(), 2);
        assert_eq!(lost(&[], &[], &present).count(), 0);
    }

    #[test]
    fn errors_show_most_frequent_first() {
        let mut e = BTreeMap::new();
        assert_eq!(fmt_errors(&e), "0");
        e.insert("CKR_A".to_string(), 1);
        e.insert("CKR_DEVICE_ERROR".to_string(), 4);
        assert_eq!(fmt_errors(&e), "CKR_DEVICE_ERROR×4, CKR_A×1");
    }
}
