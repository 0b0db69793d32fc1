//! Slot and token management (§5.5): slot and token information, mechanisms, C_InitToken,
//! C_InitPIN, C_SetPIN, C_WaitForSlotEvent.

use pkcs11_sys::*;

use super::general::padded_text;
use super::{unique, Reg};
use crate::case::*;
use crate::ctx::{label32, slot_list, Ctx, Tpl};
use crate::guard::Role;
use crate::names::ckm;
use crate::p11;
use crate::protocol::Event;

/// A slot ID the module does not have.
pub fn bad_slot(ctx: &Ctx) -> CK_SLOT_ID {
    let slots = slot_list(ctx.m, false).unwrap_or_default();
    let mut s: CK_SLOT_ID = 0x0bad_5107;
    while slots.contains(&s) {
        s += 1;
    }
    s
}

/// C_InitToken with a PIN and label; returns the code.
pub fn init_token_rv(ctx: &mut Ctx, pin: &[u8], label: Option<&str>) -> CK_RV {
    let mut p = pin.to_vec();
    let mut l = label32(label.unwrap_or(&ctx.cfg.label));
    p11!(
        ctx.m,
        C_InitToken(
            ctx.slot,
            p.as_mut_ptr(),
            p.len() as CK_ULONG,
            l.as_mut_ptr()
        )
    )
}

/// C_InitPIN; returns the code.
pub fn init_pin_rv(ctx: &mut Ctx, h: CK_SESSION_HANDLE, pin: &[u8]) -> CK_RV {
    let mut p = pin.to_vec();
    p11!(ctx.m, C_InitPIN(h, p.as_mut_ptr(), p.len() as CK_ULONG))
}

/// C_SetPIN; returns the code.
pub fn set_pin_rv(ctx: &mut Ctx, h: CK_SESSION_HANDLE, old: &[u8], new: &[u8]) -> CK_RV {
    let (mut o, mut n) = (old.to_vec(), new.to_vec());
    p11!(
        ctx.m,
        C_SetPIN(
            h,
            o.as_mut_ptr(),
            o.len() as CK_ULONG,
            n.as_mut_ptr(),
            n.len() as CK_ULONG
        )
    )
}

/// Sets the SO PIN back after a case changed it to `current`; a failure stops the run (the
/// suite no longer knows the SO PIN).
pub fn restore_so_pin(ctx: &mut Ctx, current: &[u8]) -> CaseResult {
    ctx.close_all();
    let h = ctx.open(true)?;
    let rv1 = ctx.login_rv(h, CKU_SO, current);
    let so = ctx.so_pin();
    let rv2 = if rv1 == CKR_OK {
        set_pin_rv(ctx, h, current, &so)
    } else {
        rv1
    };
    ctx.close_all();
    if rv2 != CKR_OK {
        let reason = format!(
            "could not set the SO PIN back (C_Login/C_SetPIN returned {}); the SO PIN is now \
             the one the case set",
            crate::names::ckr(rv2)
        );
        ctx.emit(Event::Fatal {
            reason: reason.clone(),
        });
        return fail(reason);
    }
    ctx.correct_pin(Role::So);
    Ok(())
}

/// The cases of this chapter, in run order.
pub fn cases() -> Vec<Case> {
    let mut r = Reg::new(Chapter::SlotToken);
    r.add(
        "SLT-001",
        "5.5 C_GetSlotList",
        "all slots: the count query and the list include the token's slot",
        "CKR_OK, count >= 1",
        |ctx| {
            let mut n: CK_ULONG = 0;
            rv(
                "C_GetSlotList(FALSE, NULL)",
                p11!(ctx.m, C_GetSlotList(CK_FALSE, std::ptr::null_mut(), &mut n)),
                CKR_OK,
            )?;
            ensure(n >= 1, || "no slot".into())?;
            let all = slot_list(ctx.m, false).map_err(Failure::Fail)?;
            ensure(all.contains(&ctx.slot), || {
                format!("slot {} not listed in {all:?}", ctx.slot)
            })
        },
    );
    r.add(
        "SLT-002",
        "5.5 C_GetSlotList",
        "slots with a token present include the token's slot",
        "CKR_OK, slot listed",
        |ctx| {
            let present = slot_list(ctx.m, true).map_err(Failure::Fail)?;
            ensure(present.contains(&ctx.slot), || {
                format!("slot {} not listed in {present:?}", ctx.slot)
            })
        },
    );
    r.add(
        "SLT-003",
        "5.2 / 5.5 C_GetSlotList",
        "a buffer too small gives CKR_BUFFER_TOO_SMALL and the needed count",
        "CKR_BUFFER_TOO_SMALL, count set",
        |ctx| {
            let mut n: CK_ULONG = 0;
            setup(
                "C_GetSlotList",
                p11!(ctx.m, C_GetSlotList(CK_TRUE, std::ptr::null_mut(), &mut n)),
            )?;
            let mut buf = vec![0 as CK_SLOT_ID; n as usize + 1];
            let mut small: CK_ULONG = 0;
            rv(
                "C_GetSlotList(count 0)",
                p11!(ctx.m, C_GetSlotList(CK_TRUE, buf.as_mut_ptr(), &mut small)),
                CKR_BUFFER_TOO_SMALL,
            )?;
            ensure(small == n, || {
                format!("count after CKR_BUFFER_TOO_SMALL: {small}, expected {n}")
            })
        },
    );
    r.add(
        "SLT-004",
        "5.5 C_GetSlotList",
        "NULL pulCount",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let mut buf = [0 as CK_SLOT_ID; 8];
            rv(
                "C_GetSlotList(list, NULL)",
                p11!(
                    ctx.m,
                    C_GetSlotList(CK_TRUE, buf.as_mut_ptr(), std::ptr::null_mut())
                ),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "SLT-005",
        "5.5 C_GetSlotInfo",
        "a slot ID the module does not have",
        "CKR_SLOT_ID_INVALID",
        |ctx| {
            let mut info = CK_SLOT_INFO::default();
            let s = bad_slot(ctx);
            rv(
                "C_GetSlotInfo(bad slot)",
                p11!(ctx.m, C_GetSlotInfo(s, &mut info)),
                CKR_SLOT_ID_INVALID,
            )
        },
    );
    r.add(
        "SLT-006",
        "5.5 C_GetSlotInfo",
        "NULL pInfo",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            rv(
                "C_GetSlotInfo(NULL)",
                p11!(ctx.m, C_GetSlotInfo(ctx.slot, std::ptr::null_mut())),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "SLT-007",
        "5.5 C_GetSlotInfo / 3.2 CK_SLOT_INFO",
        "CKF_TOKEN_PRESENT set; text fields blank-padded",
        "CKR_OK, CKF_TOKEN_PRESENT",
        |ctx| {
            let mut info = CK_SLOT_INFO::default();
            rv(
                "C_GetSlotInfo",
                p11!(ctx.m, C_GetSlotInfo(ctx.slot, &mut info)),
                CKR_OK,
            )?;
            ensure(info.flags & CKF_TOKEN_PRESENT != 0, || {
                format!("flags 0x{:x} lack CKF_TOKEN_PRESENT", info.flags)
            })?;
            padded_text("slotDescription", &info.slotDescription)?;
            padded_text("manufacturerID", &info.manufacturerID)
        },
    );
    r.add(
        "SLT-008",
        "5.5 C_GetTokenInfo",
        "a slot ID the module does not have",
        "CKR_SLOT_ID_INVALID",
        |ctx| {
            let mut info = CK_TOKEN_INFO::default();
            let s = bad_slot(ctx);
            rv(
                "C_GetTokenInfo(bad slot)",
                p11!(ctx.m, C_GetTokenInfo(s, &mut info)),
                CKR_SLOT_ID_INVALID,
            )
        },
    );
    r.add(
        "SLT-009",
        "5.5 C_GetTokenInfo",
        "NULL pInfo",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            rv(
                "C_GetTokenInfo(NULL)",
                p11!(ctx.m, C_GetTokenInfo(ctx.slot, std::ptr::null_mut())),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add("SLT-010", "5.5 C_GetTokenInfo / 3.2 CK_TOKEN_INFO",
        "after provisioning: initialised, User PIN set, the given label, min <= max PIN length, padded text",
        "CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED", |ctx| {
            let info = ctx.token_info()?;
            ensure(info.flags & CKF_TOKEN_INITIALIZED != 0, || "CKF_TOKEN_INITIALIZED clear".into())?;
            ensure(info.flags & CKF_USER_PIN_INITIALIZED != 0, || "CKF_USER_PIN_INITIALIZED clear".into())?;
            ensure(info.label == label32(&ctx.cfg.label), || format!("label {:?}", String::from_utf8_lossy(&info.label)))?;
            ensure(info.ulMinPinLen <= info.ulMaxPinLen, || format!("ulMinPinLen {} > ulMaxPinLen {}", info.ulMinPinLen, info.ulMaxPinLen))?;
            padded_text("manufacturerID", &info.manufacturerID)?;
            padded_text("model", &info.model)?;
            padded_text("serialNumber", &info.serialNumber)
        });
    r.add(
        "SLT-011",
        "3.2 CK_TOKEN_INFO",
        "ulSessionCount / ulRwSessionCount follow open sessions",
        "+2 sessions, +1 R/W (or CK_UNAVAILABLE_INFORMATION)",
        |ctx| {
            let before = ctx.token_info()?;
            ctx.open(false)?;
            ctx.open(true)?;
            let after = ctx.token_info()?;
            if before.ulSessionCount != CK_UNAVAILABLE_INFORMATION {
                ensure(after.ulSessionCount == before.ulSessionCount + 2, || {
                    format!(
                        "ulSessionCount {} -> {}",
                        before.ulSessionCount, after.ulSessionCount
                    )
                })?;
            }
            if before.ulRwSessionCount != CK_UNAVAILABLE_INFORMATION {
                ensure(
                    after.ulRwSessionCount == before.ulRwSessionCount + 1,
                    || {
                        format!(
                            "ulRwSessionCount {} -> {}",
                            before.ulRwSessionCount, after.ulRwSessionCount
                        )
                    },
                )?;
            }
            Ok(())
        },
    );
    r.add(
        "SLT-012",
        "3.2 CK_TOKEN_INFO utcTime",
        "with CKF_CLOCK_ON_TOKEN, utcTime is YYYYMMDDhhmmss00 and current",
        "14 digits, this year",
        |ctx| {
            let info = ctx.token_info()?;
            if info.flags & CKF_CLOCK_ON_TOKEN == 0 {
                return na("the token has no clock (CKF_CLOCK_ON_TOKEN clear)");
            }
            let t = info.utcTime;
            ensure(t[..14].iter().all(u8::is_ascii_digit), || {
                format!("utcTime {:?}", String::from_utf8_lossy(&t))
            })?;
            let year: u64 = String::from_utf8_lossy(&t[..4]).parse().unwrap_or(0);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let this_year = 1970 + now / 31_556_952;
            ensure(year + 1 >= this_year && year <= this_year + 1, || {
                format!("utcTime year {year}, now {this_year}")
            })
        },
    );
    r.add(
        "SLT-013",
        "5.2 / 5.5 C_GetMechanismList",
        "a buffer too small gives CKR_BUFFER_TOO_SMALL and the needed count",
        "CKR_BUFFER_TOO_SMALL, count set",
        |ctx| {
            let n = ctx.mechs.len() as CK_ULONG;
            if n == 0 {
                return na("the token lists no mechanism");
            }
            let mut buf = vec![0 as CK_MECHANISM_TYPE; n as usize];
            let mut small = n - 1;
            rv(
                "C_GetMechanismList(one too small)",
                p11!(
                    ctx.m,
                    C_GetMechanismList(ctx.slot, buf.as_mut_ptr(), &mut small)
                ),
                CKR_BUFFER_TOO_SMALL,
            )?;
            ensure(small == n, || {
                format!("count after CKR_BUFFER_TOO_SMALL: {small}, expected {n}")
            })
        },
    );
    r.add(
        "SLT-014",
        "5.5 C_GetMechanismList",
        "a slot ID the module does not have",
        "CKR_SLOT_ID_INVALID",
        |ctx| {
            let mut n: CK_ULONG = 0;
            let s = bad_slot(ctx);
            rv(
                "C_GetMechanismList(bad slot)",
                p11!(ctx.m, C_GetMechanismList(s, std::ptr::null_mut(), &mut n)),
                CKR_SLOT_ID_INVALID,
            )
        },
    );
    r.add(
        "SLT-015",
        "5.5 C_GetMechanismList",
        "NULL pulCount",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let mut buf = [0 as CK_MECHANISM_TYPE; 4];
            rv(
                "C_GetMechanismList(list, NULL)",
                p11!(
                    ctx.m,
                    C_GetMechanismList(ctx.slot, buf.as_mut_ptr(), std::ptr::null_mut())
                ),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "SLT-016",
        "5.5 C_GetMechanismInfo",
        "a mechanism the token does not have",
        "CKR_MECHANISM_INVALID",
        |ctx| {
            let mut info = CK_MECHANISM_INFO::default();
            let bogus = CKM_VENDOR_DEFINED | 0x4b_3443;
            rv(
                "C_GetMechanismInfo(unknown)",
                p11!(ctx.m, C_GetMechanismInfo(ctx.slot, bogus, &mut info)),
                CKR_MECHANISM_INVALID,
            )
        },
    );
    r.add(
        "SLT-017",
        "5.5 C_GetMechanismInfo",
        "a slot ID the module does not have",
        "CKR_SLOT_ID_INVALID",
        |ctx| {
            let mut info = CK_MECHANISM_INFO::default();
            let m = ctx.mechs.first().copied().unwrap_or(CKM_SHA256);
            let s = bad_slot(ctx);
            rv(
                "C_GetMechanismInfo(bad slot)",
                p11!(ctx.m, C_GetMechanismInfo(s, m, &mut info)),
                CKR_SLOT_ID_INVALID,
            )
        },
    );
    r.add(
        "SLT-018",
        "5.5 C_GetMechanismInfo",
        "NULL pInfo",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let Some(&m) = ctx.mechs.first() else {
                return na("the token lists no mechanism");
            };
            rv(
                "C_GetMechanismInfo(NULL)",
                p11!(ctx.m, C_GetMechanismInfo(ctx.slot, m, std::ptr::null_mut())),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "SLT-019",
        "5.5 C_GetMechanismInfo / 3.5 CK_MECHANISM_INFO",
        "every listed mechanism has info, min <= max key size, and at least one function flag",
        "CKR_OK for each",
        |ctx| {
            let funcs = CKF_ENCRYPT
                | CKF_DECRYPT
                | CKF_DIGEST
                | CKF_SIGN
                | CKF_SIGN_RECOVER
                | CKF_VERIFY
                | CKF_VERIFY_RECOVER
                | CKF_GENERATE
                | CKF_GENERATE_KEY_PAIR
                | CKF_WRAP
                | CKF_UNWRAP
                | CKF_DERIVE
                | CKF_MESSAGE_ENCRYPT
                | CKF_MESSAGE_DECRYPT
                | CKF_MESSAGE_SIGN
                | CKF_MESSAGE_VERIFY;
            let mut bad = Vec::new();
            for m in ctx.mechs.clone() {
                let mut info = CK_MECHANISM_INFO::default();
                let got = p11!(ctx.m, C_GetMechanismInfo(ctx.slot, m, &mut info));
                if got != CKR_OK {
                    bad.push(format!("{}: {}", ckm(m), crate::names::ckr(got)));
                } else if info.ulMinKeySize > info.ulMaxKeySize {
                    bad.push(format!(
                        "{}: min {} > max {}",
                        ckm(m),
                        info.ulMinKeySize,
                        info.ulMaxKeySize
                    ));
                } else if info.flags & funcs == 0 {
                    bad.push(format!("{}: no function flag (0x{:x})", ckm(m), info.flags));
                }
            }
            ensure(bad.is_empty(), || bad.join("; "))
        },
    );
    r.add(
        "SLT-020",
        "5.5 C_InitToken",
        "C_InitToken while a session is open",
        "CKR_SESSION_EXISTS",
        |ctx| {
            ctx.open(false)?;
            let so = ctx.so_pin();
            let got = init_token_rv(ctx, &so, None);
            if got == CKR_OK {
                ctx.correct_pin(Role::So);
                ctx.reinit_token()?;
            }
            rv("C_InitToken(session open)", got, CKR_SESSION_EXISTS)
        },
    );
    r.add(
        "SLT-021",
        "5.5 C_InitToken",
        "a slot ID the module does not have",
        "CKR_SLOT_ID_INVALID",
        |ctx| {
            let so = ctx.so_pin();
            let mut p = so.clone();
            let mut l = label32("nowhere");
            let s = bad_slot(ctx);
            rv(
                "C_InitToken(bad slot)",
                p11!(
                    ctx.m,
                    C_InitToken(s, p.as_mut_ptr(), p.len() as CK_ULONG, l.as_mut_ptr())
                ),
                CKR_SLOT_ID_INVALID,
            )
        },
    );
    r.add(
        "SLT-022",
        "5.5 C_InitToken",
        "NULL pLabel",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let mut p = ctx.so_pin();
            let got = p11!(
                ctx.m,
                C_InitToken(
                    ctx.slot,
                    p.as_mut_ptr(),
                    p.len() as CK_ULONG,
                    std::ptr::null_mut()
                )
            );
            if got == CKR_OK {
                ctx.reinit_token()?;
            }
            rv("C_InitToken(NULL label)", got, CKR_ARGUMENTS_BAD)
        },
    );
    r.add(
        "SLT-023",
        "5.5 C_InitToken",
        "re-initialising with a wrong SO PIN",
        "CKR_PIN_INCORRECT",
        |ctx| {
            ctx.wrong_pins(Role::So, 1)?;
            let wrong = ctx.wrong_pin();
            let got = init_token_rv(ctx, &wrong, None);
            if got == CKR_OK {
                ctx.reinit_token()?;
            } else {
                // Reset the module's SO counter with a correct login.
                let h = ctx.so_session()?;
                ctx.logout(h)?;
            }
            rv("C_InitToken(wrong SO PIN)", got, CKR_PIN_INCORRECT)
        },
    );
    r.add(
        "SLT-024",
        "5.5 C_InitToken",
        "re-initialising destroys the token objects",
        "the object is gone",
        |ctx| {
            let h = ctx.user_session()?;
            let label = unique("reinit");
            ctx.data_object(h, &label, b"x", true, false)?;
            ctx.reinit_token()?;
            let h = ctx.user_session()?;
            let found = ctx.find(h, Tpl::new().label(&label))?;
            ensure(found.is_empty(), || {
                format!("{} object(s) survived C_InitToken", found.len())
            })
        },
    );
    r.add(
        "SLT-025",
        "5.5 C_InitToken / 5.6 C_Login",
        "after re-initialising, the User PIN is not initialised until C_InitPIN",
        "CKF_USER_PIN_INITIALIZED clear; C_Login(CKU_USER) = CKR_USER_PIN_NOT_INITIALIZED",
        |ctx| {
            ctx.close_all();
            let so = ctx.so_pin();
            let got = init_token_rv(ctx, &so, None);
            setup("C_InitToken", got)?;
            ctx.correct_pin(Role::So);
            ctx.locate()?;
            let result = (|| {
                let flags = ctx.flags()?;
                ensure(flags & CKF_USER_PIN_INITIALIZED == 0, || {
                    format!("CKF_USER_PIN_INITIALIZED still set (0x{flags:x})")
                })?;
                let h = ctx.open(false)?;
                let user = ctx.user_pin();
                let got = ctx.login_rv(h, CKU_USER, &user);
                if got == CKR_OK {
                    let _ = ctx.logout(h);
                }
                rv("C_Login(CKU_USER)", got, CKR_USER_PIN_NOT_INITIALIZED)
            })();
            ctx.restore_user_pin()?;
            result
        },
    );
    r.add(
        "SLT-026",
        "5.5 C_InitPIN",
        "C_InitPIN in a R/W public session",
        "CKR_USER_NOT_LOGGED_IN",
        |ctx| {
            let h = ctx.open(true)?;
            let alt = ctx.alt_pin();
            let got = init_pin_rv(ctx, h, &alt);
            if got == CKR_OK {
                ctx.restore_user_pin()?;
            }
            rv("C_InitPIN(public session)", got, CKR_USER_NOT_LOGGED_IN)
        },
    );
    r.add(
        "SLT-027",
        "5.5 C_InitPIN",
        "C_InitPIN with the User logged in",
        "CKR_USER_NOT_LOGGED_IN",
        |ctx| {
            let h = ctx.user_session()?;
            let alt = ctx.alt_pin();
            let got = init_pin_rv(ctx, h, &alt);
            if got == CKR_OK {
                ctx.restore_user_pin()?;
            }
            rv("C_InitPIN(User session)", got, CKR_USER_NOT_LOGGED_IN)
        },
    );
    r.add(
        "SLT-028",
        "5.5 C_InitPIN",
        "an invalid session handle",
        "CKR_SESSION_HANDLE_INVALID",
        |ctx| {
            let h = ctx.open(true)?;
            ctx.close(h);
            let alt = ctx.alt_pin();
            rv(
                "C_InitPIN(closed session)",
                init_pin_rv(ctx, h, &alt),
                CKR_SESSION_HANDLE_INVALID,
            )
        },
    );
    r.add(
        "SLT-029",
        "5.5 C_InitPIN",
        "NULL pPin with a non-zero length (SO session)",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let h = ctx.so_session()?;
            let got = p11!(ctx.m, C_InitPIN(h, std::ptr::null_mut(), 10));
            if got == CKR_OK {
                ctx.restore_user_pin()?;
            }
            rv("C_InitPIN(NULL, 10)", got, CKR_ARGUMENTS_BAD)
        },
    );
    r.add(
        "SLT-030",
        "5.5 C_InitPIN",
        "the SO sets a new User PIN; the User logs in with it",
        "CKR_OK, then C_Login(new PIN) = CKR_OK",
        |ctx| {
            let h = ctx.so_session()?;
            let alt = ctx.alt_pin();
            rv("C_InitPIN", init_pin_rv(ctx, h, &alt), CKR_OK)?;
            ctx.close_all();
            let h = ctx.open(false)?;
            let got = ctx.login_rv(h, CKU_USER, &alt);
            if got == CKR_OK {
                ctx.correct_pin(Role::User);
            }
            ctx.close_all();
            ctx.restore_user_pin()?;
            rv("C_Login(CKU_USER, new PIN)", got, CKR_OK)
        },
    );
    r.add(
        "SLT-031",
        "5.5 C_SetPIN",
        "C_SetPIN in a R/O session",
        "CKR_SESSION_READ_ONLY",
        |ctx| {
            let h = ctx.open(false)?;
            let (user, alt) = (ctx.user_pin(), ctx.alt_pin());
            let got = set_pin_rv(ctx, h, &user, &alt);
            if got == CKR_OK {
                ctx.restore_user_pin()?;
            }
            rv("C_SetPIN(R/O session)", got, CKR_SESSION_READ_ONLY)
        },
    );
    r.add(
        "SLT-032",
        "5.5 C_SetPIN",
        "an invalid session handle",
        "CKR_SESSION_HANDLE_INVALID",
        |ctx| {
            let h = ctx.open(true)?;
            ctx.close(h);
            let (so, alt) = (ctx.so_pin(), ctx.alt_pin());
            rv(
                "C_SetPIN(closed session)",
                set_pin_rv(ctx, h, &so, &alt),
                CKR_SESSION_HANDLE_INVALID,
            )
        },
    );
    r.add(
        "SLT-033",
        "5.5 C_SetPIN",
        "NULL pOldPin with a non-zero length (SO session)",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let h = ctx.so_session()?;
            let mut alt = ctx.alt_pin();
            let got = p11!(
                ctx.m,
                C_SetPIN(
                    h,
                    std::ptr::null_mut(),
                    10,
                    alt.as_mut_ptr(),
                    alt.len() as CK_ULONG
                )
            );
            if got == CKR_OK {
                restore_so_pin(ctx, &alt)?;
            }
            rv("C_SetPIN(NULL old PIN)", got, CKR_ARGUMENTS_BAD)
        },
    );
    r.add(
        "SLT-034",
        "5.5 C_SetPIN",
        "the SO changes its PIN giving a wrong old PIN",
        "CKR_PIN_INCORRECT",
        |ctx| {
            let h = ctx.so_session()?;
            ctx.wrong_pins(Role::So, 1)?;
            let (wrong, alt) = (ctx.wrong_pin(), ctx.alt_pin());
            let got = set_pin_rv(ctx, h, &wrong, &alt);
            if got == CKR_OK {
                restore_so_pin(ctx, &alt)?;
            } else {
                ctx.logout(h)?;
                ctx.login(h, Role::So)?;
            }
            rv("C_SetPIN(wrong old SO PIN)", got, CKR_PIN_INCORRECT)
        },
    );
    r.add(
        "SLT-035",
        "5.5 C_SetPIN",
        "the SO changes its PIN; the new one logs in",
        "CKR_OK, then C_Login(CKU_SO, new) = CKR_OK",
        |ctx| {
            let h = ctx.so_session()?;
            let (so, alt) = (ctx.so_pin(), ctx.alt_pin());
            rv("C_SetPIN(SO)", set_pin_rv(ctx, h, &so, &alt), CKR_OK)?;
            ctx.logout(h)?;
            let got = ctx.login_rv(h, CKU_SO, &alt);
            restore_so_pin(ctx, &alt)?;
            rv("C_Login(CKU_SO, new PIN)", got, CKR_OK)
        },
    );
    r.add(
        "SLT-036",
        "5.5 C_WaitForSlotEvent",
        "CKF_DONT_BLOCK with no pending event",
        "CKR_NO_EVENT (or CKR_OK with a slot)",
        |ctx| {
            let mut slot: CK_SLOT_ID = 0;
            let mut got = p11!(
                ctx.m,
                C_WaitForSlotEvent(CKF_DONT_BLOCK, &mut slot, std::ptr::null_mut())
            );
            optional("C_WaitForSlotEvent", got)?;
            // Events of the provisioning may still be queued: drain a few.
            for _ in 0..8 {
                if got != CKR_OK {
                    break;
                }
                got = p11!(
                    ctx.m,
                    C_WaitForSlotEvent(CKF_DONT_BLOCK, &mut slot, std::ptr::null_mut())
                );
            }
            rv("C_WaitForSlotEvent(CKF_DONT_BLOCK)", got, CKR_NO_EVENT)
        },
    );
    r.add(
        "SLT-037",
        "5.5 C_WaitForSlotEvent",
        "NULL pSlot",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let got = p11!(
                ctx.m,
                C_WaitForSlotEvent(CKF_DONT_BLOCK, std::ptr::null_mut(), std::ptr::null_mut())
            );
            optional("C_WaitForSlotEvent", got)?;
            rv("C_WaitForSlotEvent(NULL pSlot)", got, CKR_ARGUMENTS_BAD)
        },
    );
    r.done()
}
