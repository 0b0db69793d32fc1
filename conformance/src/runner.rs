//! The runner: provisions the token in a worker process, runs the cases in worker processes
//! (restarting after a crash or a hang, so that the report always comes out), applies the
//! expected-deviation file, and writes the report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::case::{Case, Mode, Outcome};
use crate::cases;
use crate::cases::key4c::MODEL;
use crate::expected::Expected;
use crate::guard::PinGuard;
use crate::pinvec;
use crate::protocol::{read_events, Event, ProvisionInfo, RunConfig, Task, WorkerSpec};
use crate::report::{Record, Report, Status};

/// Whether to run the Key4C profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// When the token reports model "Key4C V3".
    Auto,
    /// Always.
    Key4c,
    /// Never.
    Generic,
}

/// The runner's options (the command line).
#[derive(Debug, Clone)]
pub struct Options {
    /// The module to test.
    pub module: PathBuf,
    /// The slot to provision.
    pub slot: Option<u64>,
    /// The token to provision, by label (also the label it gets); default "conformance".
    pub token_label: Option<String>,
    /// The SO PIN (sets a new token's SO PIN; must be the SO PIN of an existing one).
    pub so_pin: Vec<u8>,
    /// The User PIN to set.
    pub user_pin: Vec<u8>,
    /// Re-initialise a token that has objects.
    pub allow_destroy: bool,
    /// Run the SO-lockout cases on a token the suite did not create.
    pub allow_lockout: bool,
    /// Where the reports go.
    pub report_dir: PathBuf,
    /// The Key4C profile.
    pub profile: Profile,
    /// The expected-deviation file.
    pub expected: Option<PathBuf>,
    /// The lockout limit the guard assumes (default 5 with the Key4C profile, else 3).
    pub pin_retry_limit: Option<u32>,
    /// Run only cases whose id starts with one of these.
    pub only: Vec<String>,
    /// A case taking longer is killed and failed.
    pub case_timeout: Duration,
    /// Another PIN-vectors file.
    pub pin_vectors: Option<PathBuf>,
    /// The executable to run workers with (default: this one).
    pub worker_exe: Option<PathBuf>,
    /// Print progress.
    pub verbose: bool,
}

/// The outcome of one case as the runner saw it.
#[derive(Debug, Clone)]
struct Ran {
    outcome: Outcome,
    ms: u64,
}

struct Runner<'a> {
    opts: &'a Options,
    cfg: RunConfig,
    guard: PinGuard,
    tmp: tempfile::TempDir,
    workers: usize,
    notes: Vec<String>,
    fatal: Option<String>,
    results: BTreeMap<String, Ran>,
    info: Option<ProvisionInfo>,
}

/// The configuration every case list is built from (used by `--list` too).
pub fn base_config(opts: &Options) -> Result<RunConfig, String> {
    let text = match &opts.pin_vectors {
        Some(p) => std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?,
        None => pinvec::BUILTIN.to_string(),
    };
    let pin_vectors = pinvec::parse(&text)?;
    if opts.so_pin == opts.user_pin {
        return Err("the SO PIN and the User PIN must differ".into());
    }
    Ok(RunConfig {
        module: opts.module.clone(),
        so_pin: opts.so_pin.clone(),
        user_pin: opts.user_pin.clone(),
        label: opts
            .token_label
            .clone()
            .unwrap_or_else(|| "conformance".into()),
        slot: opts.slot,
        select_label: opts.token_label.clone(),
        allow_destroy: opts.allow_destroy,
        allow_lockout: opts.allow_lockout,
        key4c: opts.profile == Profile::Key4c,
        fresh_token: false,
        pin_limit: opts.pin_retry_limit.unwrap_or(5),
        provisioned_slot: None,
        pin_vectors,
    })
}

/// Runs the suite; `Err` only when nothing could be tested (module unloadable, provisioning
/// refused or failed).
pub fn run(opts: &Options) -> Result<Report, String> {
    let started = Instant::now();
    let started_at = now_utc();
    let cfg = base_config(opts)?;
    let expected = match &opts.expected {
        Some(p) => Some(Expected::load(p)?),
        None => None,
    };
    let tmp = tempfile::Builder::new()
        .prefix("conformance-")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?;
    std::fs::create_dir_all(opts.report_dir.join("logs"))
        .map_err(|e| format!("{}: {e}", opts.report_dir.display()))?;
    let limit = opts.pin_retry_limit.unwrap_or(3);
    let mut r = Runner {
        opts,
        cfg,
        guard: PinGuard::new(limit),
        tmp,
        workers: 0,
        notes: Vec::new(),
        fatal: None,
        results: BTreeMap::new(),
        info: None,
    };

    let info = r.provision()?;
    r.cfg.key4c = match opts.profile {
        Profile::Key4c => true,
        Profile::Generic => false,
        Profile::Auto => info.model == MODEL,
    };
    r.cfg.pin_limit = opts
        .pin_retry_limit
        .unwrap_or(if r.cfg.key4c { 5 } else { 3 });
    r.guard.limit = r.cfg.pin_limit;
    r.cfg.fresh_token = info.fresh_token;
    r.cfg.provisioned_slot = Some(info.slot);

    let cases: Vec<Case> = cases::all(&r.cfg)
        .into_iter()
        .filter(|c| r.cfg.key4c || !c.chapter.is_key4c())
        .filter(|c| opts.only.is_empty() || opts.only.iter().any(|p| c.id.starts_with(p.as_str())))
        .collect();
    let ids = |mode: Mode| -> Vec<String> {
        cases
            .iter()
            .filter(|c| c.mode == mode)
            .map(|c| c.id.clone())
            .collect()
    };

    r.batch(&ids(Mode::Shared), Mode::Shared);
    for id in ids(Mode::Fresh) {
        r.batch(std::slice::from_ref(&id), Mode::Fresh);
    }
    let user_lock = ids(Mode::UserLockout);
    if !user_lock.is_empty() {
        r.batch(&user_lock, Mode::UserLockout);
        if r.fatal.is_none() {
            // Lockout cases leave nothing behind when they pass; re-initialise anyway.
            if let Err(e) = r.provision() {
                r.notes.push(format!(
                    "re-initialising after the User-lockout cases failed: {e}"
                ));
            }
        }
    }
    let so_lock = ids(Mode::SoLockout);
    if !so_lock.is_empty() {
        if r.cfg.fresh_token || opts.allow_lockout {
            r.batch(&so_lock, Mode::SoLockout);
            if r.fatal.is_none() {
                match r.provision() {
                    Ok(_) => r.notes.push("the SO-lockout cases ran last; the token was re-initialised afterwards".into()),
                    Err(e) => r.notes.push(format!(
                        "the SO-lockout cases ran last and left the SO PIN locked (re-initialising: {e}); \
                         no PKCS#11 call unlocks it on a Key4C token: use the vendor's unlock workflow \
                         (key4c admin tool) or a fresh store"
                    )),
                }
            }
        } else {
            for id in &so_lock {
                r.results.insert(id.clone(), Ran {
                    outcome: Outcome::NotApplicable(
                        "SO-lockout cases run only on a token the suite created from an uninitialised one, or with --allow-lockout".into(),
                    ),
                    ms: 0,
                });
            }
            r.notes.push("SO-lockout cases skipped: the token existed before the run (use --allow-lockout to run them)".into());
        }
    }
    if let Some(f) = &r.fatal {
        r.notes.push(format!("the run stopped early: {f}"));
    }

    // Records, with the expected deviations applied.
    let known = expected.as_ref().map(Expected::by_id).unwrap_or_default();
    let mut records = Vec::new();
    for c in &cases {
        let ran = r.results.get(&c.id).cloned().unwrap_or(Ran {
            outcome: Outcome::Fail(format!(
                "not run: {}",
                r.fatal
                    .clone()
                    .unwrap_or_else(|| "the worker never reached it".into())
            )),
            ms: 0,
        });
        let deviation = known.get(&c.id).cloned();
        let (status, detail) = match (&ran.outcome, &deviation) {
            (Outcome::Pass, None) => (Status::Pass, String::new()),
            (Outcome::Pass, Some(_)) => (Status::UnexpectedPass, "passed".into()),
            (Outcome::Fail(d), None) => (Status::Fail, d.clone()),
            (Outcome::Fail(d), Some(_)) => (Status::ExpectedFail, d.clone()),
            (Outcome::NotApplicable(d), None) => (Status::NotApplicable, d.clone()),
            (Outcome::NotApplicable(d), Some(_)) => {
                (Status::UnexpectedPass, format!("not applicable: {d}"))
            }
        };
        records.push(Record {
            id: c.id.clone(),
            chapter: c.chapter,
            section: c.section.clone(),
            title: c.title.clone(),
            expect: c.expect.clone(),
            status,
            detail,
            deviation,
            ms: ran.ms,
        });
    }
    let all_ids: Vec<String> = cases::all(&r.cfg).into_iter().map(|c| c.id).collect();
    let stale_expected = known
        .keys()
        .filter(|id| !all_ids.contains(id))
        .cloned()
        .collect();
    let report = Report {
        module: opts.module.display().to_string(),
        started: started_at,
        seconds: started.elapsed().as_secs_f64(),
        info: r.info.clone().unwrap_or(info),
        key4c_profile: r.cfg.key4c,
        expected_file: opts.expected.as_ref().map(|p| p.display().to_string()),
        guard: r.guard.clone(),
        notes: r.notes.clone(),
        stale_expected,
        records,
    };
    report
        .write(&opts.report_dir)
        .map_err(|e| format!("writing the report to {}: {e}", opts.report_dir.display()))?;
    Ok(report)
}

impl Runner<'_> {
    /// Provisions (or re-provisions) the token in a worker.
    fn provision(&mut self) -> Result<ProvisionInfo, String> {
        let (events, status) = self.spawn(Task::Provision)?;
        let mut info = None;
        let mut fatal = None;
        for e in events {
            match e {
                Event::Provisioned(i) => info = Some(i),
                Event::Fatal { reason } => fatal = Some(reason),
                Event::Pin { role, correct } => self.pin(role, correct),
                Event::Note { text } => self.notes.push(text),
                _ => {}
            }
        }
        match (info, fatal) {
            (Some(i), _) => {
                if self.info.is_none() {
                    self.info = Some(i.clone());
                }
                Ok(i)
            }
            (None, Some(f)) => Err(f),
            (None, None) => Err(format!("the provisioning worker died ({status})")),
        }
    }

    fn pin(&mut self, role: crate::guard::Role, correct: bool) {
        if correct {
            self.guard.correct(role);
        } else {
            self.guard.wrong(role);
        }
    }

    /// Runs `ids` in workers of `mode` until each has an outcome (a crash fails the case it
    /// was in, and a new worker takes the rest).
    fn batch(&mut self, ids: &[String], mode: Mode) {
        let mut pending: Vec<String> = ids.to_vec();
        while !pending.is_empty() && self.fatal.is_none() {
            let (events, status) = match self.spawn(Task::Cases {
                ids: pending.clone(),
                mode,
            }) {
                Ok(x) => x,
                Err(e) => {
                    self.fatal = Some(e);
                    return;
                }
            };
            let mut current: Option<String> = None;
            let mut progressed = false;
            for e in events {
                match e {
                    Event::Start { id } => {
                        current = Some(id);
                        progressed = true;
                    }
                    Event::End { id, outcome, ms } => {
                        if self.opts.verbose {
                            eprintln!(
                                "  {id}: {}",
                                match &outcome {
                                    Outcome::Pass => "pass".to_string(),
                                    Outcome::Fail(d) => format!("FAIL {d}"),
                                    Outcome::NotApplicable(d) => format!("n/a {d}"),
                                }
                            );
                        }
                        pending.retain(|p| *p != id);
                        self.results.insert(id, Ran { outcome, ms });
                        current = None;
                    }
                    Event::Pin { role, correct } => self.pin(role, correct),
                    Event::Fatal { reason } => self.fatal = Some(reason),
                    Event::Note { text } => self.notes.push(text),
                    Event::Provisioned(_) => {}
                }
            }
            if let Some(id) = current {
                pending.retain(|p| *p != id);
                self.results.insert(
                    id,
                    Ran {
                        outcome: Outcome::Fail(format!(
                            "the worker process ended during this case ({status}); the remaining \
                         cases ran in a new one"
                        )),
                        ms: 0,
                    },
                );
            } else if !progressed {
                if self.fatal.is_none() {
                    self.fatal = Some(format!("a worker ran no case ({status})"));
                }
                return;
            }
        }
    }

    /// Runs one worker to its end (killing it when a case outlives `timeout`); returns its
    /// events and how it ended.
    fn spawn(&mut self, task: Task) -> Result<(Vec<Event>, String), String> {
        let timeout = self.opts.case_timeout;
        self.workers += 1;
        let n = self.workers;
        let spec_path = self.tmp.path().join(format!("worker-{n}.json"));
        let events_path = self.tmp.path().join(format!("worker-{n}.events"));
        let spec = WorkerSpec {
            cfg: self.cfg.clone(),
            task,
            guard: self.guard.clone(),
            events: events_path.clone(),
        };
        write_private(
            &spec_path,
            &serde_json::to_vec(&spec).map_err(|e| e.to_string())?,
        )?;
        let exe = match &self.opts.worker_exe {
            Some(p) => p.clone(),
            None => std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?,
        };
        let log_path = self
            .opts
            .report_dir
            .join("logs")
            .join(format!("worker-{n:02}.log"));
        let log =
            std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .arg("--worker")
            .arg(&spec_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("starting a worker: {e}"))?;
        let mut seen_len = 0u64;
        let mut last_event = Instant::now();
        let mut timed_out = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) => {}
                Err(e) => return Err(format!("waiting for a worker: {e}")),
            }
            // A worker that writes nothing for the timeout (a case, or C_Initialize, that
            // hangs) is killed.
            let len = std::fs::metadata(&events_path)
                .map(|m| m.len())
                .unwrap_or(0);
            if len != seen_len {
                seen_len = len;
                last_event = Instant::now();
            }
            if !timed_out && last_event.elapsed() > timeout {
                let _ = child.kill();
                timed_out = true;
            }
            std::thread::sleep(Duration::from_millis(15));
        };
        let how = if timed_out {
            format!("killed after the {} s case timeout", timeout.as_secs())
        } else {
            describe(&status)
        };
        Ok((read_events(&events_path), how))
    }
}

/// How a worker ended, in words.
fn describe(s: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(sig)) => format!(
            "killed by signal {sig}{}",
            match sig {
                6 => " (SIGABRT)",
                11 => " (SIGSEGV)",
                7 => " (SIGBUS)",
                9 => " (SIGKILL)",
                _ => "",
            }
        ),
        _ => "ended".into(),
    }
}

/// Writes a file only the owner can read (it holds the PINs).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(bytes)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The current UTC time as `YYYY-MM-DDThh:mm:ssZ`.
fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
