//! A worker process: loads the module, provisions the token or runs a list of cases, and writes
//! events as it goes. The runner starts one per module and per isolated case, so that a module
//! that crashes or hangs takes down only its worker.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::Instant;

use pkcs11_sys::*;

use crate::case::{Mode, Outcome};
use crate::cases;
use crate::ctx::{find_token, label32, mechanism_list, slot_list, Ctx, Tpl};
use crate::guard::{PinGuard, Role};
use crate::module::Module;
use crate::names::ckr;
use crate::p11;
use crate::protocol::{Event, EventSink, ProvisionInfo, RunConfig, Task, WorkerSpec};

/// Exit code of a worker that stopped on a fatal condition.
pub const EXIT_FATAL: i32 = 3;

/// Runs the worker described by the spec file; returns the process exit code.
pub fn main(spec_path: &Path) -> i32 {
    let spec: WorkerSpec = match std::fs::read(spec_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "conformance worker: cannot read {}: {e}",
                spec_path.display()
            );
            return 2;
        }
    };
    let mut sink = match EventSink::open(&spec.events) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "conformance worker: cannot write {}: {e}",
                spec.events.display()
            );
            return 2;
        }
    };
    let module = match Module::load(&spec.cfg.module) {
        Ok(m) => m,
        Err(reason) => {
            sink.emit(&Event::Fatal { reason });
            return EXIT_FATAL;
        }
    };
    let mut guard = spec.guard.clone();
    let fatal = match &spec.task {
        Task::Provision => match provision(&module, &spec.cfg, &mut guard, &mut sink) {
            Ok(info) => {
                sink.emit(&Event::Provisioned(info));
                false
            }
            Err(reason) => {
                sink.emit(&Event::Fatal { reason });
                true
            }
        },
        Task::Cases { ids, mode } => {
            run_cases(&module, &spec.cfg, &mut guard, &mut sink, ids, *mode)
        }
    };
    if fatal {
        EXIT_FATAL
    } else {
        0
    }
}

/// Runs cases in order; returns whether the run must stop.
fn run_cases(
    m: &Module,
    cfg: &RunConfig,
    guard: &mut PinGuard,
    sink: &mut EventSink,
    ids: &[String],
    mode: Mode,
) -> bool {
    let all = cases::all(cfg);
    let fresh = mode == Mode::Fresh;
    let mut ctx = Ctx::new(m, cfg, guard, sink);
    if !fresh {
        let rv = p11!(m, C_Initialize(std::ptr::null_mut()));
        if rv != CKR_OK {
            ctx.emit(Event::Fatal {
                reason: format!("C_Initialize(NULL): {}", ckr(rv)),
            });
            return true;
        }
        if let Err(e) = ctx.locate() {
            ctx.emit(Event::Fatal {
                reason: format!(
                    "cannot find the provisioned token: {}",
                    Outcome::from(Err(e)).detail()
                ),
            });
            let _ = p11!(m, C_Finalize(std::ptr::null_mut()));
            return true;
        }
    }
    for id in ids {
        let Some(case) = all.iter().find(|c| &c.id == id) else {
            ctx.emit(Event::End {
                id: id.clone(),
                outcome: Outcome::Fail(format!("no case {id} in this build")),
                ms: 0,
            });
            continue;
        };
        ctx.emit(Event::Start { id: id.clone() });
        let start = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| (case.run)(&mut ctx)));
        let outcome = match result {
            Ok(r) => Outcome::from(r),
            Err(p) => {
                let what = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Outcome::Fail(format!(
                    "the case panicked (suite bug or module garbage): {what}"
                ))
            }
        };
        ctx.finish();
        if fresh {
            let _ = p11!(m, C_Finalize(std::ptr::null_mut()));
        } else {
            // Whatever the case left behind (sessions, login) goes.
            let _ = p11!(m, C_CloseAllSessions(ctx.slot));
        }
        ctx.emit(Event::End {
            id: id.clone(),
            outcome,
            ms: start.elapsed().as_millis() as u64,
        });
        if ctx.fatal() {
            break;
        }
    }
    let fatal = ctx.fatal();
    if !fresh {
        let _ = p11!(m, C_Finalize(std::ptr::null_mut()));
    }
    fatal
}

impl Outcome {
    /// The failure or N/A text (empty for a pass).
    pub fn detail(&self) -> String {
        match self {
            Outcome::Pass => String::new(),
            Outcome::Fail(s) | Outcome::NotApplicable(s) => s.clone(),
        }
    }
}

/// Provisions the token: finds it, refuses one with objects (unless allowed), initialises it
/// with the SO PIN and label, sets the User PIN, and reports what it found.
pub fn provision(
    m: &Module,
    cfg: &RunConfig,
    guard: &mut PinGuard,
    sink: &mut EventSink,
) -> Result<ProvisionInfo, String> {
    let rv = p11!(m, C_Initialize(std::ptr::null_mut()));
    if rv != CKR_OK {
        return Err(format!("C_Initialize(NULL): {}", ckr(rv)));
    }
    let r = provision_initialised(m, cfg, guard, sink);
    let _ = p11!(m, C_Finalize(std::ptr::null_mut()));
    r
}

fn text(b: &[u8]) -> String {
    crate::ctx::field(b)
}

fn provision_initialised(
    m: &Module,
    cfg: &RunConfig,
    guard: &mut PinGuard,
    sink: &mut EventSink,
) -> Result<ProvisionInfo, String> {
    let mut info = ProvisionInfo::default();
    let mut ci = CK_INFO::default();
    let rv = p11!(m, C_GetInfo(&mut ci));
    if rv != CKR_OK {
        return Err(format!("C_GetInfo: {}", ckr(rv)));
    }
    info.cryptoki_version = format!("{}.{}", ci.cryptokiVersion.major, ci.cryptokiVersion.minor);
    info.library_manufacturer = text(&ci.manufacturerID);
    info.library_description = text(&ci.libraryDescription);
    info.library_version = format!("{}.{}", ci.libraryVersion.major, ci.libraryVersion.minor);
    info.has_v3 = m.f3().is_some();

    // Which token.
    let present = slot_list(m, true)?;
    let token_info = |slot: CK_SLOT_ID| -> Option<CK_TOKEN_INFO> {
        let mut ti = CK_TOKEN_INFO::default();
        (p11!(m, C_GetTokenInfo(slot, &mut ti)) == CKR_OK).then_some(ti)
    };
    let slot = if let Some(s) = cfg.slot {
        let s = s as CK_SLOT_ID;
        if !present.contains(&s) {
            return Err(format!(
                "slot {s} has no token (slots with a token: {present:?})"
            ));
        }
        s
    } else if let Some(l) = &cfg.select_label {
        match find_token(m, l)? {
            Some(s) => s,
            None => present
                .iter()
                .copied()
                .find(|&s| token_info(s).is_some_and(|t| t.flags & CKF_TOKEN_INITIALIZED == 0))
                .ok_or_else(|| format!("no token labelled {l:?} and no uninitialised token"))?,
        }
    } else {
        let fresh: Vec<CK_SLOT_ID> = present
            .iter()
            .copied()
            .filter(|&s| token_info(s).is_some_and(|t| t.flags & CKF_TOKEN_INITIALIZED == 0))
            .collect();
        match (fresh.first(), present.len()) {
            (Some(&s), _) => s,
            (None, 1) => present[0],
            (None, 0) => return Err("no slot has a token".into()),
            (None, _) => {
                return Err(format!(
                "several tokens are present ({present:?}) and none is uninitialised: choose one \
                     with --slot or --token-label"
            ))
            }
        }
    };
    let ti = token_info(slot).ok_or("C_GetTokenInfo failed on the chosen slot")?;
    info.fresh_token = ti.flags & CKF_TOKEN_INITIALIZED == 0;

    let mut ctx = Ctx::new(m, cfg, guard, sink);
    ctx.slot = slot;
    if !info.fresh_token {
        info.objects_found = count_objects(&mut ctx, &ti)?;
        if info.objects_found > 0 && !cfg.allow_destroy {
            return Err(format!(
                "the token in slot {slot} ({:?}) has {} object(s); re-initialising it would destroy \
                 them. Use another token, or --allow-destroy",
                text(&ti.label),
                info.objects_found
            ));
        }
    }

    // (Re-)initialise.
    let mut so = cfg.so_pin.clone();
    let mut label = label32(&cfg.label);
    let rv = p11!(
        m,
        C_InitToken(
            slot,
            so.as_mut_ptr(),
            so.len() as CK_ULONG,
            label.as_mut_ptr()
        )
    );
    match rv {
        CKR_OK => ctx.correct_pin(Role::So),
        CKR_PIN_INCORRECT => {
            ctx.count_wrong_pin(Role::So);
            return Err(
                "C_InitToken: CKR_PIN_INCORRECT (the --so-pin is not this token's SO PIN)".into(),
            );
        }
        CKR_PIN_LOCKED => {
            return Err("C_InitToken: CKR_PIN_LOCKED (the token's SO PIN is locked)".into())
        }
        _ => return Err(format!("C_InitToken: {}", ckr(rv))),
    }
    ctx.locate()
        .map_err(|e| format!("after C_InitToken: {}", Outcome::from(Err(e)).detail()))?;
    ctx.restore_user_pin()
        .map_err(|e| format!("setting the User PIN: {}", Outcome::from(Err(e)).detail()))?;
    let h = ctx
        .open(false)
        .map_err(|e| Outcome::from(Err(e)).detail())?;
    ctx.login(h, Role::User).map_err(|e| {
        format!(
            "the User PIN just set does not log in: {}",
            Outcome::from(Err(e)).detail()
        )
    })?;
    ctx.finish();

    let ti = token_info(ctx.slot).ok_or("C_GetTokenInfo failed after provisioning")?;
    info.slot = ctx.slot;
    info.model = text(&ti.model);
    info.token_manufacturer = text(&ti.manufacturerID);
    info.serial = text(&ti.serialNumber);
    info.mechanisms = mechanism_list(m, ctx.slot)?;
    Ok(info)
}

/// Objects on an initialised token: public ones, and private ones when the User PIN opens it.
fn count_objects(ctx: &mut Ctx, ti: &CK_TOKEN_INFO) -> Result<u64, String> {
    let detail = |e| Outcome::from(Err(e)).detail();
    let h = ctx.open(false).map_err(detail)?;
    let mut n = ctx.find(h, Tpl::new()).map_err(detail)?.len() as u64;
    if ti.flags & CKF_USER_PIN_INITIALIZED != 0 && !ctx.cfg.allow_destroy {
        let pin = ctx.user_pin();
        let rv = ctx.login_rv(h, CKU_USER, &pin);
        match rv {
            CKR_OK => {
                ctx.correct_pin(Role::User);
                n = n.max(ctx.find(h, Tpl::new()).map_err(detail)?.len() as u64);
                let _ = p11!(ctx.m, C_Logout(h));
            }
            _ => {
                if rv == CKR_PIN_INCORRECT {
                    ctx.count_wrong_pin(Role::User);
                }
                ctx.finish();
                return Err(format!(
                    "the token is initialised and the --user-pin does not open it ({}; one wrong \
                     User PIN was sent), so its private objects cannot be counted; refusing to \
                     re-initialise it (use --allow-destroy if it may be destroyed)",
                    ckr(rv)
                ));
            }
        }
    }
    ctx.finish();
    Ok(n)
}
