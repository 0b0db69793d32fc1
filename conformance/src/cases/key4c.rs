//! The Key4C V3 profile (`shared/spec/key4c-v3-token.md`): identity (§1), PIN policy with
//! every line of pin-vectors.tsv (§2), failed-login counters, lockout and the six PIN flags
//! (§3), who may do what (§4), and key defaults and mechanisms (§6).

use pkcs11_sys::*;

use super::keys::gen_key_rv;
use super::object::{copy_rv, set_attr_rv};
use super::slot_token::{init_pin_rv, init_token_rv, set_pin_rv};
use super::vectors::*;
use super::{ec_pair, secret_key, unique, Reg};
use crate::case::*;
use crate::ctx::{field, label32, Ctx, Mech, Tpl};
use crate::guard::Role;
use crate::names::ckm;
use crate::p11;
use crate::pinvec::expected_rv;
use crate::protocol::{Event, RunConfig};

/// The model a Key4C V3 token reports.
pub const MODEL: &str = "Key4C V3";

const USER6: CK_FLAGS = CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED;
const SO6: CK_FLAGS = CKF_SO_PIN_COUNT_LOW | CKF_SO_PIN_FINAL_TRY | CKF_SO_PIN_LOCKED;

/// The mechanisms of the profile's table (§6).
pub const PROFILE_MECHANISMS: &[CK_MECHANISM_TYPE] = &[
    CKM_EC_KEY_PAIR_GEN,
    CKM_ECDSA,
    CKM_ECDSA_SHA256,
    CKM_ECDSA_SHA384,
    CKM_ECDSA_SHA512,
    CKM_RSA_PKCS_KEY_PAIR_GEN,
    CKM_RSA_PKCS,
    CKM_SHA256_RSA_PKCS,
    CKM_SHA384_RSA_PKCS,
    CKM_SHA512_RSA_PKCS,
    CKM_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_SHA384_RSA_PKCS_PSS,
    CKM_SHA512_RSA_PKCS_PSS,
    CKM_EC_EDWARDS_KEY_PAIR_GEN,
    CKM_EDDSA,
    CKM_GENERIC_SECRET_KEY_GEN,
    CKM_SHA256_HMAC,
    CKM_SHA384_HMAC,
    CKM_SHA512_HMAC,
    CKM_AES_KEY_GEN,
    CKM_AES_GCM,
    CKM_AES_CBC_PAD,
    CKM_AES_KEY_WRAP,
    CKM_AES_KEY_WRAP_PAD,
    CKM_RSA_PKCS_OAEP,
    CKM_SHA256,
    CKM_SHA384,
    CKM_SHA512,
];

/// The six PIN flags, named.
pub fn flag_names(f: CK_FLAGS) -> String {
    let names = [
        (CKF_USER_PIN_COUNT_LOW, "USER_PIN_COUNT_LOW"),
        (CKF_USER_PIN_FINAL_TRY, "USER_PIN_FINAL_TRY"),
        (CKF_USER_PIN_LOCKED, "USER_PIN_LOCKED"),
        (CKF_SO_PIN_COUNT_LOW, "SO_PIN_COUNT_LOW"),
        (CKF_SO_PIN_FINAL_TRY, "SO_PIN_FINAL_TRY"),
        (CKF_SO_PIN_LOCKED, "SO_PIN_LOCKED"),
    ];
    let v: Vec<&str> = names
        .iter()
        .filter(|(b, _)| f & b != 0)
        .map(|(_, n)| *n)
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join("|")
    }
}

/// The six PIN flags of the token must be exactly `want`.
fn pin_flags(ctx: &mut Ctx, want: CK_FLAGS, when: &str) -> CaseResult {
    let got = ctx.flags()? & (USER6 | SO6);
    ensure(got == want, || {
        format!(
            "{when}: PIN flags {}, expected {}",
            flag_names(got),
            flag_names(want)
        )
    })
}

/// The flags after `n` consecutive wrong PINs for a role, with the run's limit.
fn flags_after(role: Role, n: u32, limit: u32) -> CK_FLAGS {
    let (low, last, locked) = match role {
        Role::User => (
            CKF_USER_PIN_COUNT_LOW,
            CKF_USER_PIN_FINAL_TRY,
            CKF_USER_PIN_LOCKED,
        ),
        Role::So => (
            CKF_SO_PIN_COUNT_LOW,
            CKF_SO_PIN_FINAL_TRY,
            CKF_SO_PIN_LOCKED,
        ),
    };
    let mut f = 0;
    if n >= 1 {
        f |= low;
    }
    if n >= limit {
        f |= locked;
    } else if n + 1 == limit {
        f |= last;
    }
    f
}

/// An RSA public key template (the suite's test key), public and session.
fn rsa_public() -> Tpl {
    Tpl::new()
        .class(CKO_PUBLIC_KEY)
        .key_type(CKK_RSA)
        .bool(CKA_TOKEN, false)
        .bool(CKA_PRIVATE, false)
        .bool(CKA_VERIFY, true)
        .label(&unique("k4c-pub"))
        .bytes(CKA_MODULUS, &unhex(RSA_N))
        .bytes(CKA_PUBLIC_EXPONENT, &unhex(RSA_E))
}

/// Destroys every object with this label (the User logs in for it).
fn cleanup_label(ctx: &mut Ctx, label: &str) -> CaseResult {
    ctx.close_all();
    let h = ctx.user_session()?;
    for o in ctx.find(h, Tpl::new().label(label))? {
        let _ = ctx.destroy(h, o);
    }
    ctx.close_all();
    Ok(())
}

/// Resets the role's failed-login counter with a correct login, in a fresh session.
fn reset_counter(ctx: &mut Ctx, role: Role) -> CaseResult {
    ctx.close_all();
    let h = ctx.open(true)?;
    ctx.login(h, role)?;
    ctx.close_all();
    Ok(())
}

/// The Key4C profile's cases (the PIN-policy ones built from `cfg`'s vectors).
pub fn cases(cfg: &RunConfig) -> Vec<Case> {
    let mut v = identity();
    v.extend(pin_policy(cfg));
    v.extend(lockout());
    v.extend(roles());
    v.extend(keys());
    v
}

fn identity() -> Vec<Case> {
    let mut r = Reg::new(Chapter::Key4cIdentity);
    r.add(
        "K4C-ID-01",
        "key4c §1 identity",
        "CK_TOKEN_INFO.model",
        "\"Key4C V3\"",
        |ctx| {
            let info = ctx.token_info()?;
            ensure(field(&info.model) == MODEL, || {
                format!("model {:?}", field(&info.model))
            })
        },
    );
    r.add(
        "K4C-ID-02",
        "key4c §1 identity",
        "PIN lengths",
        "ulMinPinLen 9, ulMaxPinLen 255",
        |ctx| {
            let info = ctx.token_info()?;
            ensure(info.ulMinPinLen == 9 && info.ulMaxPinLen == 255, || {
                format!(
                    "ulMinPinLen {}, ulMaxPinLen {}",
                    info.ulMinPinLen, info.ulMaxPinLen
                )
            })
        },
    );
    r.add(
        "K4C-ID-03",
        "key4c §1 identity",
        "serialNumber is the first 16 hex digits of the service UUID",
        "16 lower-case hex digits",
        |ctx| {
            let info = ctx.token_info()?;
            let s = info.serialNumber;
            ensure(
                s.iter()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)),
                || format!("serialNumber {:?}", String::from_utf8_lossy(&s)),
            )
        },
    );
    r.add(
        "K4C-ID-04",
        "key4c §1 identity",
        "the slot ID does not change when C_InitToken re-initialises the token",
        "the same slot, with the token",
        |ctx| {
            let before = ctx.slot;
            ctx.close_all();
            let so = ctx.so_pin();
            setup("C_InitToken", init_token_rv(ctx, &so, None))?;
            ctx.correct_pin(Role::So);
            let present = crate::ctx::slot_list(ctx.m, true).map_err(Failure::Fail)?;
            let mut info = CK_TOKEN_INFO::default();
            let still = present.contains(&before)
                && p11!(ctx.m, C_GetTokenInfo(before, &mut info)) == CKR_OK
                && info.label == label32(&ctx.cfg.label);
            ctx.locate()?;
            ctx.restore_user_pin()?;
            ensure(still && ctx.slot == before, || {
                format!("slot {before} before C_InitToken, {} after", ctx.slot)
            })
        },
    );
    r.add(
        "K4C-ID-05",
        "key4c §1 identity",
        "the slot ID is the same in every process (as provisioning saw it)",
        "the provisioned slot ID",
        |ctx| {
            let Some(p) = ctx.cfg.provisioned_slot else {
                return na("no provisioning record");
            };
            ensure(p as CK_SLOT_ID == ctx.slot, || {
                format!("slot {} in the provisioning process, {} now", p, ctx.slot)
            })
        },
    );
    r.add(
        "K4C-ID-06",
        "key4c §1, §4 C_InitToken",
        "re-initialising keeps the SO PIN and the serial number",
        "C_Login(CKU_SO, same PIN) = CKR_OK; same serialNumber",
        |ctx| {
            let serial = ctx.token_info()?.serialNumber;
            ctx.close_all();
            let so = ctx.so_pin();
            setup("C_InitToken", init_token_rv(ctx, &so, None))?;
            ctx.correct_pin(Role::So);
            ctx.locate()?;
            let h = ctx.open(true)?;
            let got = ctx.login_rv(h, CKU_SO, &so);
            if got == CKR_OK {
                ctx.correct_pin(Role::So);
            }
            let after = ctx.token_info()?.serialNumber;
            ctx.close_all();
            ctx.restore_user_pin()?;
            rv("C_Login(CKU_SO) after C_InitToken", got, CKR_OK)?;
            ensure(serial == after, || {
                format!(
                    "serialNumber {:?} -> {:?}",
                    String::from_utf8_lossy(&serial),
                    String::from_utf8_lossy(&after)
                )
            })
        },
    );
    r.done()
}

fn pin_policy(cfg: &RunConfig) -> Vec<Case> {
    let mut r = Reg::new(Chapter::Key4cPinPolicy);
    for v in &cfg.pin_vectors {
        let want = expected_rv(&v.expect).unwrap_or(CKR_OK);
        let pin = v.pin.clone();
        r.add(
            &format!("K4C-PIN-INIT-{:02}", v.index),
            "key4c §2 / 5.5 C_InitPIN",
            &format!("C_InitPIN({})", v.shown),
            &v.expect,
            move |ctx| {
                let h = ctx.so_session()?;
                let user = ctx.user_pin();
                let mut current = user.clone();
                if pin == user {
                    // Rule 6 would refuse the current PIN: move away from it first.
                    let alt = ctx.alt_pin();
                    setup("C_InitPIN(another PIN first)", init_pin_rv(ctx, h, &alt))?;
                    current = alt;
                }
                let got = init_pin_rv(ctx, h, &pin);
                if got == CKR_OK {
                    current = pin.clone();
                }
                if current != user {
                    let back = init_pin_rv(ctx, h, &user);
                    if back != CKR_OK {
                        let reason = format!(
                            "could not set the User PIN back after C_InitPIN: {}",
                            crate::names::ckr(back)
                        );
                        ctx.emit(Event::Fatal {
                            reason: reason.clone(),
                        });
                        return fail(reason);
                    }
                }
                rv("C_InitPIN", got, want)
            },
        );
    }
    for v in &cfg.pin_vectors {
        let want = expected_rv(&v.expect).unwrap_or(CKR_OK);
        let pin = v.pin.clone();
        r.add(
            &format!("K4C-PIN-SET-{:02}", v.index),
            "key4c §2 / 5.5 C_SetPIN (SO)",
            &format!("C_SetPIN(SO PIN -> {})", v.shown),
            &v.expect,
            move |ctx| {
                let h = ctx.so_session()?;
                let so = ctx.so_pin();
                let mut current = so.clone();
                if pin == so {
                    let alt = ctx.alt_pin();
                    setup("C_SetPIN(another PIN first)", set_pin_rv(ctx, h, &so, &alt))?;
                    current = alt;
                }
                let got = set_pin_rv(ctx, h, &current, &pin);
                if got == CKR_OK {
                    current = pin.clone();
                }
                if current != so {
                    let back = set_pin_rv(ctx, h, &current, &so);
                    if back != CKR_OK {
                        let reason = format!(
                            "could not set the SO PIN back after C_SetPIN: {}",
                            crate::names::ckr(back)
                        );
                        ctx.emit(Event::Fatal {
                            reason: reason.clone(),
                        });
                        return fail(reason);
                    }
                }
                rv("C_SetPIN", got, want)
            },
        );
    }
    r.add(
        "K4C-PIN-REUSE-1",
        "key4c §2 rule 6 / 5.5 C_InitPIN",
        "C_InitPIN with the User's current PIN",
        "CKR_PIN_INVALID",
        |ctx| {
            let h = ctx.so_session()?;
            let user = ctx.user_pin();
            rv(
                "C_InitPIN(current PIN)",
                init_pin_rv(ctx, h, &user),
                CKR_PIN_INVALID,
            )
        },
    );
    r.add(
        "K4C-PIN-REUSE-2",
        "key4c §2 rule 6 / 5.5 C_SetPIN",
        "C_SetPIN of the SO PIN to itself",
        "CKR_PIN_INVALID",
        |ctx| {
            let h = ctx.so_session()?;
            let so = ctx.so_pin();
            rv(
                "C_SetPIN(same PIN)",
                set_pin_rv(ctx, h, &so, &so),
                CKR_PIN_INVALID,
            )
        },
    );
    r.add(
        "K4C-PIN-LOGIN",
        "key4c §2 (never at login) / 5.6 C_Login",
        "C_Login with a PIN the policy would refuse is just a wrong PIN",
        "CKR_PIN_INCORRECT (not CKR_PIN_LEN_RANGE)",
        |ctx| {
            let h = ctx.open(false)?;
            ctx.wrong_pins(Role::User, 1)?;
            let got = ctx.login_rv(h, CKU_USER, b"ab1");
            if got == CKR_OK {
                ctx.logout(h)?;
            }
            ctx.login(h, Role::User)?;
            rv("C_Login(\"ab1\")", got, CKR_PIN_INCORRECT)
        },
    );
    r.done()
}

fn lockout() -> Vec<Case> {
    let mut r = Reg::new(Chapter::Key4cLockout);
    r.add(
        "K4C-FLAG-01",
        "key4c §3 PIN flags",
        "after provisioning and correct logins no PIN flag is set",
        "none of the six PIN flags",
        |ctx| pin_flags(ctx, 0, "at rest"),
    );
    r.add(
        "K4C-CNT-01",
        "key4c §3",
        "one wrong User PIN: CKR_PIN_INCORRECT and USER_PIN_COUNT_LOW; a correct PIN clears it",
        "CKR_PIN_INCORRECT, USER_PIN_COUNT_LOW, then no flag",
        |ctx| {
            pin_flags(ctx, 0, "before")?;
            let h = ctx.open(false)?;
            let got = ctx.login_wrong(h, Role::User)?;
            let checked = rv("C_Login(wrong User PIN)", got, CKR_PIN_INCORRECT)
                .and_then(|_| pin_flags(ctx, CKF_USER_PIN_COUNT_LOW, "after 1 wrong PIN"));
            ctx.login(h, Role::User)?;
            checked?;
            pin_flags(ctx, 0, "after the correct PIN")
        },
    );
    r.add(
        "K4C-CNT-02",
        "key4c §3",
        "two wrong User PINs count two; still no FINAL_TRY (limit 5)",
        "CKR_PIN_INCORRECT twice, USER_PIN_COUNT_LOW",
        |ctx| {
            pin_flags(ctx, 0, "before")?;
            let h = ctx.open(false)?;
            let a = ctx.login_wrong(h, Role::User)?;
            let b = ctx.login_wrong(h, Role::User)?;
            let limit = ctx.cfg.pin_limit;
            let checked = rv("1st wrong", a, CKR_PIN_INCORRECT)
                .and(rv("2nd wrong", b, CKR_PIN_INCORRECT))
                .and_then(|_| {
                    pin_flags(ctx, flags_after(Role::User, 2, limit), "after 2 wrong PINs")
                });
            ctx.login(h, Role::User)?;
            checked?;
            pin_flags(ctx, 0, "after the correct PIN")
        },
    );
    r.add(
        "K4C-CNT-03",
        "key4c §3",
        "a wrong SO PIN counts for the SO only",
        "CKR_PIN_INCORRECT, SO_PIN_COUNT_LOW, User flags clear",
        |ctx| {
            pin_flags(ctx, 0, "before")?;
            let h = ctx.open(true)?;
            let got = ctx.login_wrong(h, Role::So)?;
            let checked = rv("C_Login(wrong SO PIN)", got, CKR_PIN_INCORRECT)
                .and_then(|_| pin_flags(ctx, CKF_SO_PIN_COUNT_LOW, "after 1 wrong SO PIN"));
            ctx.login(h, Role::So)?;
            checked?;
            pin_flags(ctx, 0, "after the correct SO PIN")
        },
    );
    r.add(
        "K4C-CNT-04",
        "key4c §3",
        "a wrong old PIN in C_SetPIN counts",
        "CKR_PIN_INCORRECT, SO_PIN_COUNT_LOW",
        |ctx| {
            pin_flags(ctx, 0, "before")?;
            let h = ctx.so_session()?;
            ctx.wrong_pins(Role::So, 1)?;
            let (wrong, alt) = (ctx.wrong_pin(), ctx.alt_pin());
            let got = set_pin_rv(ctx, h, &wrong, &alt);
            if got == CKR_OK {
                super::slot_token::restore_so_pin(ctx, &alt)?;
            }
            let checked = rv("C_SetPIN(wrong old PIN)", got, CKR_PIN_INCORRECT)
                .and_then(|_| pin_flags(ctx, CKF_SO_PIN_COUNT_LOW, "after the wrong old PIN"));
            reset_counter(ctx, Role::So)?;
            checked
        },
    );
    r.add(
        "K4C-CNT-05",
        "key4c §3",
        "a wrong SO PIN in C_InitToken counts",
        "CKR_PIN_INCORRECT, SO_PIN_COUNT_LOW",
        |ctx| {
            pin_flags(ctx, 0, "before")?;
            ctx.close_all();
            ctx.wrong_pins(Role::So, 1)?;
            let wrong = ctx.wrong_pin();
            let got = init_token_rv(ctx, &wrong, None);
            if got == CKR_OK {
                ctx.locate()?;
                ctx.restore_user_pin()?;
            }
            let checked = rv("C_InitToken(wrong SO PIN)", got, CKR_PIN_INCORRECT)
                .and_then(|_| pin_flags(ctx, CKF_SO_PIN_COUNT_LOW, "after C_InitToken"));
            reset_counter(ctx, Role::So)?;
            checked
        },
    );
    r.add("K4C-CNT-06", "key4c §2-3 (a policy check never counts)", "C_SetPIN with a wrong old PIN and a too-short new PIN: the policy answers, nothing is counted",
        "CKR_PIN_LEN_RANGE, no SO flag", |ctx| {
            pin_flags(ctx, 0, "before")?;
            let h = ctx.so_session()?;
            ctx.wrong_pins(Role::So, 1)?;
            let wrong = ctx.wrong_pin();
            let got = set_pin_rv(ctx, h, &wrong, b"Sh0rt!");
            let checked = rv("C_SetPIN(wrong old, short new)", got, CKR_PIN_LEN_RANGE).and_then(|_| pin_flags(ctx, 0, "after the refused change"));
            reset_counter(ctx, Role::So)?;
            checked
        });
    r.add(
        "K4C-CNT-07",
        "key4c §3 (CKU_CONTEXT_SPECIFIC counts against the User)",
        "a wrong context-specific PIN counts; the right one lets C_Sign go on",
        "CKR_PIN_INCORRECT + USER_PIN_COUNT_LOW, then CKR_OK, flags clear, C_Sign = CKR_OK",
        |ctx| {
            ctx.need_mech(CKM_ECDSA)?;
            pin_flags(ctx, 0, "before")?;
            let h = ctx.user_session()?;
            let (_, q) = ec_pair(ctx, h, P256, &[(CKA_ALWAYS_AUTHENTICATE, true)])?;
            let mut m = Mech::new(CKM_ECDSA).raw();
            setup("C_SignInit", p11!(ctx.m, C_SignInit(h, &mut m, q)))?;
            ctx.wrong_pins(Role::User, 1)?;
            let wrong = ctx.wrong_pin();
            let got = ctx.login_rv(h, CKU_CONTEXT_SPECIFIC, &wrong);
            let checked = rv(
                "C_Login(CKU_CONTEXT_SPECIFIC, wrong)",
                got,
                CKR_PIN_INCORRECT,
            )
            .and_then(|_| pin_flags(ctx, CKF_USER_PIN_COUNT_LOW, "after the wrong context PIN"));
            let user = ctx.user_pin();
            let ok = ctx.login_rv(h, CKU_CONTEXT_SPECIFIC, &user);
            if ok == CKR_OK {
                ctx.correct_pin(Role::User);
            } else {
                reset_counter(ctx, Role::User)?;
            }
            checked?;
            rv("C_Login(CKU_CONTEXT_SPECIFIC, right)", ok, CKR_OK)?;
            pin_flags(ctx, 0, "after the right context PIN")?;
            let mut d = [7u8; 32];
            let mut out = [0u8; 64];
            let mut len: CK_ULONG = 64;
            rv(
                "C_Sign",
                p11!(
                    ctx.m,
                    C_Sign(h, d.as_mut_ptr(), 32, out.as_mut_ptr(), &mut len)
                ),
                CKR_OK,
            )
        },
    );

    r.mode(Mode::UserLockout);
    r.add(
        "K4C-LOCK-U1",
        "key4c §3",
        "wrong User PINs up to one before the limit: CKR_PIN_INCORRECT, COUNT_LOW, then FINAL_TRY",
        "CKR_PIN_INCORRECT x4; USER_PIN_COUNT_LOW, then |USER_PIN_FINAL_TRY",
        |ctx| {
            pin_flags(ctx, 0, "before")?;
            let limit = ctx.cfg.pin_limit;
            let h = ctx.open(false)?;
            let wrong = ctx.wrong_pin();
            for n in 1..limit {
                ctx.count_wrong_pin(Role::User);
                let got = ctx.login_rv(h, CKU_USER, &wrong);
                rv(&format!("wrong User PIN #{n}"), got, CKR_PIN_INCORRECT)?;
                pin_flags(
                    ctx,
                    flags_after(Role::User, n, limit),
                    &format!("after {n} wrong PIN(s)"),
                )?;
            }
            Ok(())
        },
    );
    r.add(
        "K4C-LOCK-U2",
        "key4c §3",
        "the wrong User PIN that reaches the limit locks it",
        "CKR_PIN_LOCKED; USER_PIN_COUNT_LOW|USER_PIN_LOCKED, no FINAL_TRY",
        |ctx| {
            let limit = ctx.cfg.pin_limit;
            pin_flags(
                ctx,
                flags_after(Role::User, limit - 1, limit),
                "before (one try left)",
            )?;
            let h = ctx.open(false)?;
            ctx.count_wrong_pin(Role::User);
            let wrong = ctx.wrong_pin();
            let got = ctx.login_rv(h, CKU_USER, &wrong);
            rv(&format!("wrong User PIN #{limit}"), got, CKR_PIN_LOCKED)?;
            pin_flags(
                ctx,
                flags_after(Role::User, limit, limit),
                "after the last wrong PIN",
            )
        },
    );
    r.add(
        "K4C-LOCK-U3",
        "key4c §3",
        "a locked User PIN refuses the correct PIN, without counting",
        "CKR_PIN_LOCKED; flags unchanged",
        |ctx| {
            let limit = ctx.cfg.pin_limit;
            let before = flags_after(Role::User, limit, limit);
            pin_flags(ctx, before, "before (locked)")?;
            let h = ctx.open(false)?;
            let user = ctx.user_pin();
            let got = ctx.login_rv(h, CKU_USER, &user);
            if got == CKR_OK {
                ctx.correct_pin(Role::User);
                ctx.logout(h)?;
            }
            rv("C_Login(correct PIN, locked)", got, CKR_PIN_LOCKED)?;
            pin_flags(ctx, before, "after")
        },
    );
    r.add(
        "K4C-LOCK-U4",
        "key4c §3-4 C_InitPIN",
        "the SO's C_InitPIN unlocks the User PIN and clears its flags",
        "CKR_OK; no flag; the User logs in",
        |ctx| {
            let h = ctx.so_session()?;
            let alt = ctx.alt_pin();
            let got = init_pin_rv(ctx, h, &alt);
            rv("C_InitPIN", got, CKR_OK)?;
            ctx.close_all();
            let flags = pin_flags(ctx, 0, "after C_InitPIN");
            let h = ctx.open(false)?;
            let login = ctx.login_rv(h, CKU_USER, &alt);
            if login == CKR_OK {
                ctx.correct_pin(Role::User);
            }
            ctx.close_all();
            ctx.restore_user_pin()?;
            flags?;
            rv("C_Login(CKU_USER, new PIN)", login, CKR_OK)
        },
    );

    r.mode(Mode::SoLockout);
    r.add(
        "K4C-LOCK-S1",
        "key4c §3",
        "wrong SO PINs up to one before the limit: CKR_PIN_INCORRECT, COUNT_LOW, then FINAL_TRY",
        "CKR_PIN_INCORRECT x4; SO_PIN_COUNT_LOW, then |SO_PIN_FINAL_TRY",
        |ctx| {
            pin_flags(ctx, 0, "before")?;
            let limit = ctx.cfg.pin_limit;
            let h = ctx.open(true)?;
            let wrong = ctx.wrong_pin();
            for n in 1..limit {
                ctx.count_wrong_pin(Role::So);
                let got = ctx.login_rv(h, CKU_SO, &wrong);
                rv(&format!("wrong SO PIN #{n}"), got, CKR_PIN_INCORRECT)?;
                pin_flags(
                    ctx,
                    flags_after(Role::So, n, limit),
                    &format!("after {n} wrong SO PIN(s)"),
                )?;
            }
            Ok(())
        },
    );
    r.add(
        "K4C-LOCK-S2",
        "key4c §3",
        "the wrong SO PIN that reaches the limit locks it",
        "CKR_PIN_LOCKED; SO_PIN_COUNT_LOW|SO_PIN_LOCKED",
        |ctx| {
            let limit = ctx.cfg.pin_limit;
            pin_flags(
                ctx,
                flags_after(Role::So, limit - 1, limit),
                "before (one try left)",
            )?;
            let h = ctx.open(true)?;
            ctx.count_wrong_pin(Role::So);
            let wrong = ctx.wrong_pin();
            let got = ctx.login_rv(h, CKU_SO, &wrong);
            rv(&format!("wrong SO PIN #{limit}"), got, CKR_PIN_LOCKED)?;
            pin_flags(
                ctx,
                flags_after(Role::So, limit, limit),
                "after the last wrong SO PIN",
            )
        },
    );
    r.add(
        "K4C-LOCK-S3",
        "key4c §3-5",
        "a locked SO PIN refuses the correct PIN in C_Login and C_InitToken",
        "CKR_PIN_LOCKED twice",
        |ctx| {
            let h = ctx.open(true)?;
            let so = ctx.so_pin();
            let got = ctx.login_rv(h, CKU_SO, &so);
            if got == CKR_OK {
                ctx.correct_pin(Role::So);
                ctx.logout(h)?;
            }
            ctx.close_all();
            let init = init_token_rv(ctx, &so, None);
            if init == CKR_OK {
                ctx.locate()?;
                ctx.restore_user_pin()?;
            }
            rv("C_Login(CKU_SO, correct PIN, locked)", got, CKR_PIN_LOCKED)?;
            rv("C_InitToken(correct SO PIN, locked)", init, CKR_PIN_LOCKED)
        },
    );
    r.add(
        "K4C-LOCK-S4",
        "key4c §3",
        "a locked SO PIN leaves the User alone",
        "C_Login(CKU_USER) = CKR_OK; no User flag",
        |ctx| {
            let h = ctx.open(false)?;
            ctx.login(h, Role::User)?;
            let f = ctx.flags()? & USER6;
            ensure(f == 0, || format!("User flags {}", flag_names(f)))
        },
    );
    r.done()
}

fn roles() -> Vec<Case> {
    let mut r = Reg::new(Chapter::Key4cRoles);
    r.add(
        "K4C-ROLE-01",
        "key4c §4 (User PIN only through the SO)",
        "C_SetPIN in a R/W public session",
        "CKR_USER_NOT_LOGGED_IN",
        |ctx| {
            let h = ctx.open(true)?;
            let (user, alt) = (ctx.user_pin(), ctx.alt_pin());
            let got = set_pin_rv(ctx, h, &user, &alt);
            if got == CKR_OK {
                ctx.restore_user_pin()?;
            }
            rv("C_SetPIN(public session)", got, CKR_USER_NOT_LOGGED_IN)
        },
    );
    r.add(
        "K4C-ROLE-02",
        "key4c §4 (User PIN only through the SO)",
        "C_SetPIN by the User",
        "CKR_USER_NOT_LOGGED_IN",
        |ctx| {
            let h = ctx.user_session()?;
            let (user, alt) = (ctx.user_pin(), ctx.alt_pin());
            let got = set_pin_rv(ctx, h, &user, &alt);
            if got == CKR_OK {
                ctx.restore_user_pin()?;
            }
            rv("C_SetPIN(User session)", got, CKR_USER_NOT_LOGGED_IN)
        },
    );
    r.add(
        "K4C-ROLE-03",
        "key4c §4 (import needs the User)",
        "C_CreateObject of a public session key without login",
        "CKR_USER_NOT_LOGGED_IN",
        |ctx| {
            let h = ctx.open(true)?;
            let (got, o) = ctx.create_rv(h, &mut rsa_public());
            if got == CKR_OK {
                let _ = ctx.destroy(h, o);
            }
            rv(
                "C_CreateObject(public key, public session)",
                got,
                CKR_USER_NOT_LOGGED_IN,
            )
        },
    );
    r.add(
        "K4C-ROLE-04",
        "key4c §4 (generate needs the User)",
        "C_GenerateKey of a public session AES key without login",
        "CKR_USER_NOT_LOGGED_IN",
        |ctx| {
            ctx.need_mech(CKM_AES_KEY_GEN)?;
            let h = ctx.open(true)?;
            let (got, k) = gen_key_rv(
                ctx,
                h,
                &mut Mech::new(CKM_AES_KEY_GEN),
                Tpl::new()
                    .bool(CKA_TOKEN, false)
                    .bool(CKA_PRIVATE, false)
                    .ulong(CKA_VALUE_LEN, 16),
            );
            if got == CKR_OK {
                let _ = ctx.destroy(h, k);
            }
            rv("C_GenerateKey(public session)", got, CKR_USER_NOT_LOGGED_IN)
        },
    );
    r.add(
        "K4C-ROLE-05",
        "key4c §4 (token objects need the User)",
        "C_CreateObject of a public token data object without login",
        "CKR_USER_NOT_LOGGED_IN",
        |ctx| {
            let h = ctx.open(true)?;
            let label = unique("k4c-tok");
            let (got, _) = ctx.create_rv(
                h,
                &mut Tpl::new()
                    .class(CKO_DATA)
                    .bool(CKA_TOKEN, true)
                    .bool(CKA_PRIVATE, false)
                    .label(&label),
            );
            if got == CKR_OK {
                cleanup_label(ctx, &label)?;
            }
            rv(
                "C_CreateObject(token object, public session)",
                got,
                CKR_USER_NOT_LOGGED_IN,
            )
        },
    );
    r.add(
        "K4C-ROLE-06",
        "key4c §4 (token objects need the User)",
        "the SO creates a public token data object",
        "CKR_USER_NOT_LOGGED_IN",
        |ctx| {
            let h = ctx.so_session()?;
            let label = unique("k4c-so");
            let (got, _) = ctx.create_rv(
                h,
                &mut Tpl::new()
                    .class(CKO_DATA)
                    .bool(CKA_TOKEN, true)
                    .bool(CKA_PRIVATE, false)
                    .label(&label),
            );
            if got == CKR_OK {
                cleanup_label(ctx, &label)?;
            }
            rv(
                "C_CreateObject(token object, SO)",
                got,
                CKR_USER_NOT_LOGGED_IN,
            )
        },
    );
    r.add(
        "K4C-ROLE-07",
        "key4c §4 (the SO never uses keys)",
        "the SO starts an encryption with a public secret token key",
        "CKR_USER_NOT_LOGGED_IN",
        |ctx| {
            ctx.need_mech(CKM_AES_CBC_PAD)?;
            let h = ctx.user_session()?;
            let label = unique("k4c-sokey");
            ctx.create(
                h,
                Tpl::new()
                    .class(CKO_SECRET_KEY)
                    .key_type(CKK_AES)
                    .bool(CKA_TOKEN, true)
                    .bool(CKA_PRIVATE, false)
                    .bool(CKA_ENCRYPT, true)
                    .label(&label)
                    .bytes(CKA_VALUE, &[4u8; 16]),
            )?;
            ctx.close_all();
            let so = ctx.so_session()?;
            let found = ctx.find(so, Tpl::new().label(&label))?;
            let got = match found.first() {
                Some(&k) => {
                    let mut m = Mech::bytes(CKM_AES_CBC_PAD, &[0u8; 16]);
                    let mut mm = m.raw();
                    p11!(ctx.m, C_EncryptInit(so, &mut mm, k))
                }
                None => CKR_OBJECT_HANDLE_INVALID,
            };
            cleanup_label(ctx, &label)?;
            rv("C_EncryptInit(SO)", got, CKR_USER_NOT_LOGGED_IN)
        },
    );
    r.add(
        "K4C-ROLE-08",
        "key4c §4 (using a secret key needs the User)",
        "a public secret session key used in a public session",
        "CKR_USER_NOT_LOGGED_IN",
        |ctx| {
            ctx.need_mech(CKM_AES_CBC_PAD)?;
            let h = ctx.user_session()?;
            let k = ctx.create(
                h,
                Tpl::new()
                    .class(CKO_SECRET_KEY)
                    .key_type(CKK_AES)
                    .bool(CKA_TOKEN, false)
                    .bool(CKA_PRIVATE, false)
                    .bool(CKA_ENCRYPT, true)
                    .label(&unique("k4c-pubkey"))
                    .bytes(CKA_VALUE, &[4u8; 16]),
            )?;
            ctx.logout(h)?;
            let mut m = Mech::bytes(CKM_AES_CBC_PAD, &[0u8; 16]);
            let mut mm = m.raw();
            let got = p11!(ctx.m, C_EncryptInit(h, &mut mm, k));
            rv("C_EncryptInit(public session)", got, CKR_USER_NOT_LOGGED_IN)
        },
    );
    r.add(
        "K4C-ROLE-09",
        "key4c §4 (verify, digest, random in any session)",
        "in a public session: C_Verify with a public key, C_Digest, C_GenerateRandom",
        "CKR_OK for each",
        |ctx| {
            ctx.need_mech(CKM_SHA256_RSA_PKCS)?;
            let h = ctx.user_session()?;
            let p = ctx.create(h, rsa_public())?;
            ctx.logout(h)?;
            let msg = b"conformance: public verify";
            let kp = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&unhex(RSA_PKCS8))
                .map_err(|_| Failure::Fail("aws-lc key".into()))?;
            let mut s = vec![0u8; kp.public_modulus_len()];
            kp.sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                msg,
                &mut s,
            )
            .map_err(|_| Failure::Fail("aws-lc sign".into()))?;
            rv(
                "C_Verify(public session)",
                ctx.verify_rv(h, &mut Mech::new(CKM_SHA256_RSA_PKCS), p, msg, &s)?,
                CKR_OK,
            )?;
            if ctx.has_mech(CKM_SHA256) {
                ctx.digest(h, CKM_SHA256, msg)?;
            }
            let mut b = [0u8; 16];
            rv(
                "C_GenerateRandom(public session)",
                p11!(ctx.m, C_GenerateRandom(h, b.as_mut_ptr(), 16)),
                CKR_OK,
            )
        },
    );
    r.add(
        "K4C-ROLE-10",
        "key4c §4 (delete needs the User)",
        "C_DestroyObject of a public token object without login",
        "CKR_USER_NOT_LOGGED_IN",
        |ctx| {
            let h = ctx.user_session()?;
            let label = unique("k4c-del");
            let o = ctx.data_object(h, &label, b"x", true, false)?;
            ctx.logout(h)?;
            let got = ctx.destroy(h, o);
            cleanup_label(ctx, &label)?;
            rv(
                "C_DestroyObject(public session)",
                got,
                CKR_USER_NOT_LOGGED_IN,
            )
        },
    );
    r.add(
        "K4C-ROLE-11",
        "key4c §4 (modify needs the User)",
        "C_SetAttributeValue on a public token object without login",
        "CKR_USER_NOT_LOGGED_IN",
        |ctx| {
            let h = ctx.user_session()?;
            let label = unique("k4c-mod");
            let o = ctx.data_object(h, &label, b"x", true, false)?;
            ctx.logout(h)?;
            let got = set_attr_rv(ctx, h, o, Tpl::new().label("changed"));
            cleanup_label(ctx, &label)?;
            rv(
                "C_SetAttributeValue(public session)",
                got,
                CKR_USER_NOT_LOGGED_IN,
            )
        },
    );
    r.add(
        "K4C-ROLE-12",
        "key4c §4 (copy needs the User)",
        "C_CopyObject of a public session object into a token object without login",
        "CKR_USER_NOT_LOGGED_IN",
        |ctx| {
            let h = ctx.open(true)?;
            let label = unique("k4c-copy");
            let o = ctx.data_object(h, &label, b"x", false, false)?;
            let (got, _) = copy_rv(ctx, h, o, Tpl::new().bool(CKA_TOKEN, true));
            if got == CKR_OK {
                cleanup_label(ctx, &label)?;
            }
            rv(
                "C_CopyObject(to token, public session)",
                got,
                CKR_USER_NOT_LOGGED_IN,
            )
        },
    );
    r.done()
}

fn keys() -> Vec<Case> {
    let mut r = Reg::new(Chapter::Key4cKeys);
    r.add(
        "K4C-KEY-01",
        "key4c §6",
        "C_GetMechanismList has every mechanism of the profile",
        "all 29 listed",
        |ctx| {
            let missing: Vec<String> = PROFILE_MECHANISMS
                .iter()
                .filter(|m| !ctx.mechs.contains(m))
                .map(|&m| ckm(m))
                .collect();
            ensure(missing.is_empty(), || {
                format!("missing: {}", missing.join(", "))
            })
        },
    );
    r.add("K4C-KEY-02", "key4c §6 (key defaults)", "a generated EC private key without usage flags in the template",
        "CKA_PRIVATE, CKA_SENSITIVE, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE TRUE; CKA_EXTRACTABLE FALSE", |ctx| {
            ctx.need_mech(CKM_EC_KEY_PAIR_GEN)?;
            let h = ctx.user_session()?;
            let (_, q) = ctx.gen_pair(h, &mut Mech::new(CKM_EC_KEY_PAIR_GEN),
                Tpl::new().bool(CKA_TOKEN, false).bytes(CKA_EC_PARAMS, P256), Tpl::new().bool(CKA_TOKEN, false))?;
            for (ty, name, want) in [(CKA_PRIVATE, "CKA_PRIVATE", true), (CKA_SENSITIVE, "CKA_SENSITIVE", true), (CKA_EXTRACTABLE, "CKA_EXTRACTABLE", false),
                (CKA_ALWAYS_SENSITIVE, "CKA_ALWAYS_SENSITIVE", true), (CKA_NEVER_EXTRACTABLE, "CKA_NEVER_EXTRACTABLE", true), (CKA_LOCAL, "CKA_LOCAL", true)] {
                let got = ctx.attr_bool(h, q, ty)?;
                ensure(got == want, || format!("{name} is {got}, expected {want}"))?;
            }
            Ok(())
        });
    r.add(
        "K4C-KEY-03",
        "key4c §6 (CKA_ID)",
        "a generated pair gets one non-empty CKA_ID on both halves when the templates have none",
        "equal, non-empty",
        |ctx| {
            ctx.need_mech(CKM_EC_KEY_PAIR_GEN)?;
            let h = ctx.user_session()?;
            let (p, q) = ec_pair(ctx, h, P256, &[])?;
            let (a, b) = (ctx.attr(h, p, CKA_ID)?, ctx.attr(h, q, CKA_ID)?);
            ensure(!a.is_empty() && a == b, || {
                format!("public CKA_ID {}, private {}", hex(&a), hex(&b))
            })
        },
    );
    r.add(
        "K4C-KEY-04",
        "key4c §6 (CKA_ID)",
        "a CKA_ID given in the public template only is shared by the private key",
        "both halves carry it",
        |ctx| {
            ctx.need_mech(CKM_EC_KEY_PAIR_GEN)?;
            let h = ctx.user_session()?;
            let (p, q) = ctx.gen_pair(
                h,
                &mut Mech::new(CKM_EC_KEY_PAIR_GEN),
                Tpl::new()
                    .bool(CKA_TOKEN, false)
                    .bytes(CKA_EC_PARAMS, P256)
                    .bytes(CKA_ID, b"k4c-id-04"),
                Tpl::new().bool(CKA_TOKEN, false).bool(CKA_SIGN, true),
            )?;
            same_bytes("public CKA_ID", &ctx.attr(h, p, CKA_ID)?, b"k4c-id-04")?;
            same_bytes("private CKA_ID", &ctx.attr(h, q, CKA_ID)?, b"k4c-id-04")
        },
    );
    r.add(
        "K4C-KEY-05",
        "key4c §6 (key defaults)",
        "a generated AES key without usage flags in the template",
        "private, sensitive, non-extractable, ALWAYS_SENSITIVE, NEVER_EXTRACTABLE",
        |ctx| {
            ctx.need_mech(CKM_AES_KEY_GEN)?;
            let h = ctx.user_session()?;
            let k = ctx.gen_key(
                h,
                &mut Mech::new(CKM_AES_KEY_GEN),
                Tpl::new().bool(CKA_TOKEN, false).ulong(CKA_VALUE_LEN, 32),
            )?;
            for (ty, name, want) in [
                (CKA_PRIVATE, "CKA_PRIVATE", true),
                (CKA_SENSITIVE, "CKA_SENSITIVE", true),
                (CKA_EXTRACTABLE, "CKA_EXTRACTABLE", false),
                (CKA_ALWAYS_SENSITIVE, "CKA_ALWAYS_SENSITIVE", true),
                (CKA_NEVER_EXTRACTABLE, "CKA_NEVER_EXTRACTABLE", true),
            ] {
                let got = ctx.attr_bool(h, k, ty)?;
                ensure(got == want, || format!("{name} is {got}, expected {want}"))?;
            }
            Ok(())
        },
    );
    r.add(
        "K4C-KEY-06",
        "key4c §6 (key defaults)",
        "an imported AES key without CKA_PRIVATE / CKA_SENSITIVE / CKA_EXTRACTABLE",
        "private, sensitive, non-extractable",
        |ctx| {
            let h = ctx.user_session()?;
            let k = ctx.create(
                h,
                Tpl::new()
                    .class(CKO_SECRET_KEY)
                    .key_type(CKK_AES)
                    .bool(CKA_TOKEN, false)
                    .bytes(CKA_VALUE, &[6u8; 16]),
            )?;
            for (ty, name, want) in [
                (CKA_PRIVATE, "CKA_PRIVATE", true),
                (CKA_SENSITIVE, "CKA_SENSITIVE", true),
                (CKA_EXTRACTABLE, "CKA_EXTRACTABLE", false),
            ] {
                let got = ctx.attr_bool(h, k, ty)?;
                ensure(got == want, || format!("{name} is {got}, expected {want}"))?;
            }
            Ok(())
        },
    );
    r.add(
        "K4C-KEY-07",
        "key4c §6 (HS256 keys >= 32 bytes)",
        "HMAC-SHA-256 with a 16-byte key",
        "CKR_KEY_SIZE_RANGE",
        |ctx| {
            ctx.need_mech(CKM_SHA256_HMAC)?;
            let h = ctx.user_session()?;
            let k = secret_key(ctx, h, CKK_GENERIC_SECRET, &[0x33; 16], &[])?;
            let mut m = Mech::new(CKM_SHA256_HMAC).raw();
            rv(
                "C_SignInit(16-byte key)",
                p11!(ctx.m, C_SignInit(h, &mut m, k)),
                CKR_KEY_SIZE_RANGE,
            )
        },
    );
    r.add(
        "K4C-KEY-08",
        "key4c §6 (RSA 2048, 3072, 4096)",
        "generating an RSA-1024 pair",
        "CKR_KEY_SIZE_RANGE",
        |ctx| {
            ctx.need_mech(CKM_RSA_PKCS_KEY_PAIR_GEN)?;
            let h = ctx.user_session()?;
            let (got, p, q) = ctx.gen_pair_rv(
                h,
                &mut Mech::new(CKM_RSA_PKCS_KEY_PAIR_GEN),
                &mut Tpl::new()
                    .bool(CKA_TOKEN, false)
                    .ulong(CKA_MODULUS_BITS, 1024),
                &mut Tpl::new().bool(CKA_TOKEN, false),
            );
            if got == CKR_OK {
                let _ = ctx.destroy(h, p);
                let _ = ctx.destroy(h, q);
            }
            rv("C_GenerateKeyPair(1024 bits)", got, CKR_KEY_SIZE_RANGE)
        },
    );
    r.done()
}
