//! Session management (§5.6): opening and closing sessions, session states, login and logout,
//! operation state, C_SessionCancel.

use pkcs11_sys::*;

use super::slot_token::bad_slot;
use super::{unique, Reg};
use crate::case::*;
use crate::ctx::{Ctx, Mech, Tpl};
use crate::guard::Role;
use crate::{p11, p11v3};

fn state(ctx: &mut Ctx, h: CK_SESSION_HANDLE) -> Result<CK_SESSION_INFO, Failure> {
    let mut info = CK_SESSION_INFO::default();
    setup(
        "C_GetSessionInfo",
        p11!(ctx.m, C_GetSessionInfo(h, &mut info)),
    )?;
    Ok(info)
}

fn expect_state(ctx: &mut Ctx, h: CK_SESSION_HANDLE, want: CK_STATE, what: &str) -> CaseResult {
    let got = state(ctx, h)?.state;
    ensure(got == want, || {
        format!(
            "{what}: state {}, expected {}",
            state_name(got),
            state_name(want)
        )
    })
}

fn state_name(s: CK_STATE) -> String {
    match s {
        CKS_RO_PUBLIC_SESSION => "CKS_RO_PUBLIC_SESSION".into(),
        CKS_RO_USER_FUNCTIONS => "CKS_RO_USER_FUNCTIONS".into(),
        CKS_RW_PUBLIC_SESSION => "CKS_RW_PUBLIC_SESSION".into(),
        CKS_RW_USER_FUNCTIONS => "CKS_RW_USER_FUNCTIONS".into(),
        CKS_RW_SO_FUNCTIONS => "CKS_RW_SO_FUNCTIONS".into(),
        other => format!("state {other}"),
    }
}

/// Starts a SHA-256 digest (the cheapest operation every module has).
fn start_digest(ctx: &mut Ctx, h: CK_SESSION_HANDLE) -> CaseResult {
    let mech = if ctx.has_mech(CKM_SHA256) {
        CKM_SHA256
    } else if let Some(&m) = ctx
        .mechs
        .iter()
        .find(|m| matches!(**m, CKM_SHA384 | CKM_SHA512 | CKM_SHA_1))
    {
        m
    } else {
        return na("no SHA digest mechanism");
    };
    let mut m = Mech::new(mech).raw();
    setup("C_DigestInit", p11!(ctx.m, C_DigestInit(h, &mut m)))
}

/// The cases of this chapter, in run order.
pub fn cases() -> Vec<Case> {
    let mut r = Reg::new(Chapter::Session);
    r.add(
        "SES-001",
        "5.6 C_OpenSession",
        "flags without CKF_SERIAL_SESSION",
        "CKR_SESSION_PARALLEL_NOT_SUPPORTED",
        |ctx| {
            let (got, _) = ctx.open_rv(0);
            rv(
                "C_OpenSession(flags 0)",
                got,
                CKR_SESSION_PARALLEL_NOT_SUPPORTED,
            )
        },
    );
    r.add(
        "SES-002",
        "5.6 C_OpenSession",
        "a slot ID the module does not have",
        "CKR_SLOT_ID_INVALID",
        |ctx| {
            let mut h: CK_SESSION_HANDLE = 0;
            let s = bad_slot(ctx);
            rv(
                "C_OpenSession(bad slot)",
                p11!(
                    ctx.m,
                    C_OpenSession(s, CKF_SERIAL_SESSION, std::ptr::null_mut(), None, &mut h)
                ),
                CKR_SLOT_ID_INVALID,
            )
        },
    );
    r.add(
        "SES-003",
        "5.6 C_OpenSession",
        "NULL phSession",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            rv(
                "C_OpenSession(NULL)",
                p11!(
                    ctx.m,
                    C_OpenSession(
                        ctx.slot,
                        CKF_SERIAL_SESSION,
                        std::ptr::null_mut(),
                        None,
                        std::ptr::null_mut()
                    )
                ),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "SES-004",
        "5.6 C_GetSessionInfo / 3.6 CK_SESSION_INFO",
        "a R/O session before login",
        "CKS_RO_PUBLIC_SESSION, flags CKF_SERIAL_SESSION, slotID",
        |ctx| {
            let h = ctx.open(false)?;
            let info = state(ctx, h)?;
            ensure(info.slotID == ctx.slot, || {
                format!("slotID {}", info.slotID)
            })?;
            ensure(info.flags == CKF_SERIAL_SESSION, || {
                format!("flags 0x{:x}", info.flags)
            })?;
            ensure(info.state == CKS_RO_PUBLIC_SESSION, || {
                state_name(info.state)
            })
        },
    );
    r.add(
        "SES-005",
        "5.6 C_GetSessionInfo / 3.6 CK_SESSION_INFO",
        "a R/W session before login",
        "CKS_RW_PUBLIC_SESSION, flags CKF_SERIAL_SESSION|CKF_RW_SESSION",
        |ctx| {
            let h = ctx.open(true)?;
            let info = state(ctx, h)?;
            ensure(info.flags == CKF_SERIAL_SESSION | CKF_RW_SESSION, || {
                format!("flags 0x{:x}", info.flags)
            })?;
            ensure(info.state == CKS_RW_PUBLIC_SESSION, || {
                state_name(info.state)
            })
        },
    );
    r.add(
        "SES-006",
        "5.6 C_GetSessionInfo",
        "NULL pInfo",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let h = ctx.open(false)?;
            rv(
                "C_GetSessionInfo(NULL)",
                p11!(ctx.m, C_GetSessionInfo(h, std::ptr::null_mut())),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "SES-007",
        "5.6 C_GetSessionInfo",
        "a closed session handle",
        "CKR_SESSION_HANDLE_INVALID",
        |ctx| {
            let h = ctx.open(false)?;
            setup("C_CloseSession", ctx.close(h))?;
            let mut info = CK_SESSION_INFO::default();
            rv(
                "C_GetSessionInfo(closed)",
                p11!(ctx.m, C_GetSessionInfo(h, &mut info)),
                CKR_SESSION_HANDLE_INVALID,
            )
        },
    );
    r.add(
        "SES-008",
        "5.6 C_GetSessionInfo",
        "CK_INVALID_HANDLE (0)",
        "CKR_SESSION_HANDLE_INVALID",
        |ctx| {
            let mut info = CK_SESSION_INFO::default();
            rv(
                "C_GetSessionInfo(0)",
                p11!(ctx.m, C_GetSessionInfo(CK_INVALID_HANDLE, &mut info)),
                CKR_SESSION_HANDLE_INVALID,
            )
        },
    );
    r.add(
        "SES-009",
        "5.6 C_CloseSession",
        "closing a session twice",
        "CKR_SESSION_HANDLE_INVALID",
        |ctx| {
            let h = ctx.open(false)?;
            setup("C_CloseSession", ctx.close(h))?;
            rv(
                "second C_CloseSession",
                ctx.close(h),
                CKR_SESSION_HANDLE_INVALID,
            )
        },
    );
    r.add(
        "SES-010",
        "5.6 C_CloseAllSessions",
        "a slot ID the module does not have",
        "CKR_SLOT_ID_INVALID",
        |ctx| {
            let s = bad_slot(ctx);
            rv(
                "C_CloseAllSessions(bad slot)",
                p11!(ctx.m, C_CloseAllSessions(s)),
                CKR_SLOT_ID_INVALID,
            )
        },
    );
    r.add(
        "SES-011",
        "5.6 C_CloseAllSessions",
        "every session of the slot is closed",
        "CKR_OK, then CKR_SESSION_HANDLE_INVALID for each",
        |ctx| {
            let a = ctx.open(false)?;
            let b = ctx.open(true)?;
            rv(
                "C_CloseAllSessions",
                p11!(ctx.m, C_CloseAllSessions(ctx.slot)),
                CKR_OK,
            )?;
            let mut info = CK_SESSION_INFO::default();
            rv(
                "C_GetSessionInfo(first)",
                p11!(ctx.m, C_GetSessionInfo(a, &mut info)),
                CKR_SESSION_HANDLE_INVALID,
            )?;
            rv(
                "C_GetSessionInfo(second)",
                p11!(ctx.m, C_GetSessionInfo(b, &mut info)),
                CKR_SESSION_HANDLE_INVALID,
            )
        },
    );
    r.add(
        "SES-012",
        "5.6 C_OpenSession",
        "session handles are distinct and never CK_INVALID_HANDLE",
        "3 distinct non-zero handles",
        |ctx| {
            let hs = [ctx.open(false)?, ctx.open(true)?, ctx.open(false)?];
            ensure(!hs.contains(&CK_INVALID_HANDLE), || {
                format!("handles {hs:?}")
            })?;
            ensure(hs[0] != hs[1] && hs[1] != hs[2] && hs[0] != hs[2], || {
                format!("handles {hs:?}")
            })
        },
    );
    r.add(
        "SES-013",
        "5.6 C_Login / 5.6 session states",
        "a User login applies to every session, open or opened later",
        "CKS_RO_USER_FUNCTIONS / CKS_RW_USER_FUNCTIONS",
        |ctx| {
            let ro = ctx.open(false)?;
            let rw = ctx.open(true)?;
            ctx.login(ro, Role::User)?;
            expect_state(ctx, ro, CKS_RO_USER_FUNCTIONS, "R/O session")?;
            expect_state(ctx, rw, CKS_RW_USER_FUNCTIONS, "R/W session")?;
            let later = ctx.open(false)?;
            expect_state(
                ctx,
                later,
                CKS_RO_USER_FUNCTIONS,
                "R/O session opened after login",
            )
        },
    );
    r.add(
        "SES-014",
        "5.6 C_Login",
        "the SO logs in while a R/O session exists",
        "CKR_SESSION_READ_ONLY_EXISTS",
        |ctx| {
            let _ro = ctx.open(false)?;
            let rw = ctx.open(true)?;
            let so = ctx.so_pin();
            let got = ctx.login_rv(rw, CKU_SO, &so);
            if got == CKR_OK {
                ctx.correct_pin(Role::So);
            }
            rv("C_Login(CKU_SO)", got, CKR_SESSION_READ_ONLY_EXISTS)
        },
    );
    r.add(
        "SES-015",
        "5.6 C_OpenSession",
        "a R/O session while the SO is logged in",
        "CKR_SESSION_READ_WRITE_SO_EXISTS",
        |ctx| {
            ctx.so_session()?;
            let (got, _) = ctx.open_rv(CKF_SERIAL_SESSION);
            rv("C_OpenSession(R/O)", got, CKR_SESSION_READ_WRITE_SO_EXISTS)
        },
    );
    r.add(
        "SES-016",
        "5.6 session states",
        "the SO's session",
        "CKS_RW_SO_FUNCTIONS",
        |ctx| {
            let h = ctx.so_session()?;
            expect_state(ctx, h, CKS_RW_SO_FUNCTIONS, "SO session")
        },
    );
    r.add(
        "SES-017",
        "5.6 C_Login",
        "the User logs in twice",
        "CKR_USER_ALREADY_LOGGED_IN",
        |ctx| {
            let h = ctx.user_session()?;
            let user = ctx.user_pin();
            rv(
                "second C_Login(CKU_USER)",
                ctx.login_rv(h, CKU_USER, &user),
                CKR_USER_ALREADY_LOGGED_IN,
            )
        },
    );
    r.add(
        "SES-018",
        "5.6 C_Login",
        "the SO logs in while the User is",
        "CKR_USER_ANOTHER_ALREADY_LOGGED_IN",
        |ctx| {
            let h = ctx.user_session()?;
            let so = ctx.so_pin();
            rv(
                "C_Login(CKU_SO)",
                ctx.login_rv(h, CKU_SO, &so),
                CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
            )
        },
    );
    r.add(
        "SES-019",
        "5.6 C_Login",
        "the User logs in while the SO is",
        "CKR_USER_ANOTHER_ALREADY_LOGGED_IN",
        |ctx| {
            let h = ctx.so_session()?;
            let user = ctx.user_pin();
            rv(
                "C_Login(CKU_USER)",
                ctx.login_rv(h, CKU_USER, &user),
                CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
            )
        },
    );
    r.add(
        "SES-020",
        "5.6 C_Login",
        "an undefined user type",
        "CKR_USER_TYPE_INVALID",
        |ctx| {
            let h = ctx.open(false)?;
            let user = ctx.user_pin();
            let got = ctx.login_rv(h, 7, &user);
            rv("C_Login(userType 7)", got, CKR_USER_TYPE_INVALID)
        },
    );
    r.add(
        "SES-021",
        "5.6 C_Login",
        "a wrong User PIN, then the right one",
        "CKR_PIN_INCORRECT, then CKR_OK",
        |ctx| {
            let h = ctx.open(false)?;
            let got = ctx.login_wrong(h, Role::User)?;
            rv("C_Login(CKU_USER, wrong PIN)", got, CKR_PIN_INCORRECT)?;
            ctx.login(h, Role::User)
        },
    );
    r.add(
        "SES-022",
        "5.6 C_Login",
        "a wrong SO PIN, then the right one",
        "CKR_PIN_INCORRECT, then CKR_OK",
        |ctx| {
            let h = ctx.open(true)?;
            let got = ctx.login_wrong(h, Role::So)?;
            rv("C_Login(CKU_SO, wrong PIN)", got, CKR_PIN_INCORRECT)?;
            ctx.login(h, Role::So)
        },
    );
    r.add(
        "SES-023",
        "5.6 C_Login",
        "NULL pPin with a non-zero length (no protected authentication path)",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            if ctx.flags()? & CKF_PROTECTED_AUTHENTICATION_PATH != 0 {
                return na("the token has a protected authentication path: NULL pPin is valid");
            }
            let h = ctx.open(false)?;
            // Counted as a wrong PIN in case the module counts it.
            ctx.wrong_pins(Role::User, 1)?;
            let got = p11!(ctx.m, C_Login(h, CKU_USER, std::ptr::null_mut(), 8));
            if got == CKR_OK {
                ctx.logout(h)?;
            }
            ctx.login(h, Role::User)?;
            rv("C_Login(NULL, 8)", got, CKR_ARGUMENTS_BAD)
        },
    );
    r.add(
        "SES-024",
        "5.6 C_Logout",
        "nobody is logged in",
        "CKR_USER_NOT_LOGGED_IN",
        |ctx| {
            let h = ctx.open(false)?;
            rv("C_Logout", p11!(ctx.m, C_Logout(h)), CKR_USER_NOT_LOGGED_IN)
        },
    );
    r.add(
        "SES-025",
        "5.6 C_Logout",
        "a closed session handle",
        "CKR_SESSION_HANDLE_INVALID",
        |ctx| {
            let h = ctx.open(false)?;
            ctx.close(h);
            rv(
                "C_Logout(closed)",
                p11!(ctx.m, C_Logout(h)),
                CKR_SESSION_HANDLE_INVALID,
            )
        },
    );
    r.add(
        "SES-026",
        "5.6 C_Logout",
        "logging out returns every session to a public state",
        "CKS_RO_PUBLIC_SESSION / CKS_RW_PUBLIC_SESSION",
        |ctx| {
            let ro = ctx.open(false)?;
            let rw = ctx.open(true)?;
            ctx.login(rw, Role::User)?;
            rv("C_Logout", p11!(ctx.m, C_Logout(ro)), CKR_OK)?;
            expect_state(ctx, ro, CKS_RO_PUBLIC_SESSION, "R/O session")?;
            expect_state(ctx, rw, CKS_RW_PUBLIC_SESSION, "R/W session")
        },
    );
    r.add(
        "SES-027",
        "5.6 C_CloseSession",
        "closing the application's last session logs it out",
        "a new session is CKS_RO_PUBLIC_SESSION",
        |ctx| {
            ctx.close_all();
            let h = ctx.user_session()?;
            setup("C_CloseSession", ctx.close(h))?;
            let h = ctx.open(false)?;
            expect_state(
                ctx,
                h,
                CKS_RO_PUBLIC_SESSION,
                "session after the last one closed",
            )
        },
    );
    r.add(
        "SES-028",
        "5.6 C_Login",
        "CKU_CONTEXT_SPECIFIC with the User logged in and no operation waiting for it",
        "CKR_OPERATION_NOT_INITIALIZED",
        |ctx| {
            let h = ctx.user_session()?;
            let user = ctx.user_pin();
            rv(
                "C_Login(CKU_CONTEXT_SPECIFIC)",
                ctx.login_rv(h, CKU_CONTEXT_SPECIFIC, &user),
                CKR_OPERATION_NOT_INITIALIZED,
            )
        },
    );
    r.add(
        "SES-029",
        "5.6 C_GetOperationState",
        "the state of an active digest: a length query",
        "CKR_OK and a length > 0 (N/A: not supported / CKR_STATE_UNSAVEABLE)",
        |ctx| {
            let h = ctx.open(false)?;
            start_digest(ctx, h)?;
            let mut len: CK_ULONG = 0;
            let got = p11!(
                ctx.m,
                C_GetOperationState(h, std::ptr::null_mut(), &mut len)
            );
            optional("C_GetOperationState", got)?;
            if got == CKR_STATE_UNSAVEABLE {
                return na("C_GetOperationState: CKR_STATE_UNSAVEABLE");
            }
            rv("C_GetOperationState(NULL)", got, CKR_OK)?;
            ensure(len > 0 && len != CK_UNAVAILABLE_INFORMATION, || {
                format!("state length {len}")
            })
        },
    );
    r.add(
        "SES-030",
        "5.6 C_SessionCancel (3.0)",
        "cancelling the digest ends it",
        "CKR_OK, then CKR_OPERATION_NOT_INITIALIZED",
        |ctx| {
            if ctx.m.f3().is_none() {
                return na("C_SessionCancel is a PKCS#11 3.0 function; the module is 2.x");
            }
            let h = ctx.open(false)?;
            start_digest(ctx, h)?;
            let got = p11v3!(ctx.m, C_SessionCancel(h, CKF_DIGEST));
            optional("C_SessionCancel", got)?;
            rv("C_SessionCancel(CKF_DIGEST)", got, CKR_OK)?;
            let mut b = *b"abc";
            rv(
                "C_DigestUpdate",
                p11!(ctx.m, C_DigestUpdate(h, b.as_mut_ptr(), 3)),
                CKR_OPERATION_NOT_INITIALIZED,
            )
        },
    );
    r.add("SES-031", "5.6 C_SessionCancel (3.0)", "cancelling the search leaves the digest active",
        "C_FindObjects = CKR_OPERATION_NOT_INITIALIZED, C_DigestUpdate = CKR_OK", |ctx| {
        if ctx.m.f3().is_none() {
            return na("C_SessionCancel is a PKCS#11 3.0 function; the module is 2.x");
        }
            let h = ctx.open(false)?;
            start_digest(ctx, h)?;
            let find = p11!(ctx.m, C_FindObjectsInit(h, std::ptr::null_mut(), 0));
            if find == CKR_OPERATION_ACTIVE {
                return na("the module runs one operation per session at a time (C_FindObjectsInit: CKR_OPERATION_ACTIVE)");
            }
            setup("C_FindObjectsInit", find)?;
            let got = p11v3!(ctx.m, C_SessionCancel(h, CKF_FIND_OBJECTS));
            optional("C_SessionCancel", got)?;
            rv("C_SessionCancel(CKF_FIND_OBJECTS)", got, CKR_OK)?;
            let mut objs = [0 as CK_OBJECT_HANDLE; 4];
            let mut n: CK_ULONG = 0;
            rv("C_FindObjects", p11!(ctx.m, C_FindObjects(h, objs.as_mut_ptr(), 4, &mut n)), CKR_OPERATION_NOT_INITIALIZED)?;
            let mut b = *b"abc";
            rv("C_DigestUpdate", p11!(ctx.m, C_DigestUpdate(h, b.as_mut_ptr(), 3)), CKR_OK)
        });
    r.add(
        "SES-032",
        "5.6 C_SessionCancel (3.0)",
        "a closed session handle",
        "CKR_SESSION_HANDLE_INVALID",
        |ctx| {
            if ctx.m.f3().is_none() {
                return na("C_SessionCancel is a PKCS#11 3.0 function; the module is 2.x");
            }
            let h = ctx.open(false)?;
            ctx.close(h);
            let got = p11v3!(ctx.m, C_SessionCancel(h, CKF_DIGEST));
            optional("C_SessionCancel", got)?;
            rv("C_SessionCancel(closed)", got, CKR_SESSION_HANDLE_INVALID)
        },
    );
    r.add(
        "SES-033",
        "5.6 C_Logout",
        "private session objects are destroyed by C_Logout",
        "not found after logging in again",
        |ctx| {
            let h = ctx.user_session()?;
            let label = unique("priv-session");
            ctx.data_object(h, &label, b"secret", false, true)?;
            ctx.logout(h)?;
            ctx.login(h, Role::User)?;
            let found = ctx.find(h, Tpl::new().label(&label))?;
            for &o in &found {
                let _ = ctx.destroy(h, o);
            }
            ensure(found.is_empty(), || {
                format!(
                    "{} private session object(s) survived C_Logout",
                    found.len()
                )
            })
        },
    );
    r.add(
        "SES-034",
        "5.6 C_Logout",
        "handles to private objects stay invalid after logging in again",
        "CKR_OBJECT_HANDLE_INVALID",
        |ctx| {
            let h = ctx.user_session()?;
            let label = unique("priv-token");
            let o = ctx.data_object(h, &label, b"secret", true, true)?;
            ctx.logout(h)?;
            ctx.login(h, Role::User)?;
            let got = ctx.attr_rv(h, o, CKA_LABEL).err().unwrap_or(CKR_OK);
            for o in ctx.find(h, Tpl::new().label(&label))? {
                let _ = ctx.destroy(h, o);
            }
            rv(
                "C_GetAttributeValue(handle from before C_Logout)",
                got,
                CKR_OBJECT_HANDLE_INVALID,
            )
        },
    );
    more(&mut r);
    r.done()
}

fn more(r: &mut Reg) {
    r.add(
        "SES-035",
        "5.6 session handles",
        "a closed session handle in every function that takes a session",
        "CKR_SESSION_HANDLE_INVALID from each",
        |ctx| {
            let h = ctx.open(true)?;
            setup("C_CloseSession", ctx.close(h))?;
            let mut bad = Vec::new();
            let mut check = |what: &str, got: CK_RV| {
                if got != CKR_SESSION_HANDLE_INVALID {
                    bad.push(format!("{what}: {}", crate::names::ckr(got)));
                }
            };
            let mut info = CK_SESSION_INFO::default();
            check(
                "C_GetSessionInfo",
                p11!(ctx.m, C_GetSessionInfo(h, &mut info)),
            );
            let mut user = ctx.user_pin();
            check(
                "C_Login",
                p11!(
                    ctx.m,
                    C_Login(h, CKU_USER, user.as_mut_ptr(), user.len() as CK_ULONG)
                ),
            );
            check("C_Logout", p11!(ctx.m, C_Logout(h)));
            let mut t = Tpl::new()
                .class(CKO_DATA)
                .bool(CKA_TOKEN, false)
                .bool(CKA_PRIVATE, false);
            let mut a = t.attrs();
            let mut o: CK_OBJECT_HANDLE = 0;
            check(
                "C_CreateObject",
                p11!(
                    ctx.m,
                    C_CreateObject(h, a.as_mut_ptr(), a.len() as CK_ULONG, &mut o)
                ),
            );
            check(
                "C_FindObjectsInit",
                p11!(ctx.m, C_FindObjectsInit(h, std::ptr::null_mut(), 0)),
            );
            let mut objs = [0 as CK_OBJECT_HANDLE; 2];
            let mut n: CK_ULONG = 0;
            check(
                "C_FindObjects",
                p11!(ctx.m, C_FindObjects(h, objs.as_mut_ptr(), 2, &mut n)),
            );
            check("C_FindObjectsFinal", p11!(ctx.m, C_FindObjectsFinal(h)));
            let mut dm = Mech::new(CKM_SHA256).raw();
            check("C_DigestInit", p11!(ctx.m, C_DigestInit(h, &mut dm)));
            let mut d = [0u8; 16];
            let mut out = [0u8; 64];
            let mut len: CK_ULONG = 64;
            check(
                "C_Digest",
                p11!(
                    ctx.m,
                    C_Digest(h, d.as_mut_ptr(), 16, out.as_mut_ptr(), &mut len)
                ),
            );
            check(
                "C_DigestUpdate",
                p11!(ctx.m, C_DigestUpdate(h, d.as_mut_ptr(), 16)),
            );
            len = 64;
            check(
                "C_DigestFinal",
                p11!(ctx.m, C_DigestFinal(h, out.as_mut_ptr(), &mut len)),
            );
            len = 64;
            check(
                "C_Sign",
                p11!(
                    ctx.m,
                    C_Sign(h, d.as_mut_ptr(), 16, out.as_mut_ptr(), &mut len)
                ),
            );
            check(
                "C_SignUpdate",
                p11!(ctx.m, C_SignUpdate(h, d.as_mut_ptr(), 16)),
            );
            len = 64;
            check(
                "C_SignFinal",
                p11!(ctx.m, C_SignFinal(h, out.as_mut_ptr(), &mut len)),
            );
            check(
                "C_Verify",
                p11!(ctx.m, C_Verify(h, d.as_mut_ptr(), 16, out.as_mut_ptr(), 64)),
            );
            check(
                "C_VerifyUpdate",
                p11!(ctx.m, C_VerifyUpdate(h, d.as_mut_ptr(), 16)),
            );
            check(
                "C_VerifyFinal",
                p11!(ctx.m, C_VerifyFinal(h, out.as_mut_ptr(), 64)),
            );
            len = 64;
            check(
                "C_Encrypt",
                p11!(
                    ctx.m,
                    C_Encrypt(h, d.as_mut_ptr(), 16, out.as_mut_ptr(), &mut len)
                ),
            );
            len = 64;
            check(
                "C_EncryptUpdate",
                p11!(
                    ctx.m,
                    C_EncryptUpdate(h, d.as_mut_ptr(), 16, out.as_mut_ptr(), &mut len)
                ),
            );
            len = 64;
            check(
                "C_EncryptFinal",
                p11!(ctx.m, C_EncryptFinal(h, out.as_mut_ptr(), &mut len)),
            );
            len = 64;
            check(
                "C_Decrypt",
                p11!(
                    ctx.m,
                    C_Decrypt(h, d.as_mut_ptr(), 16, out.as_mut_ptr(), &mut len)
                ),
            );
            len = 64;
            check(
                "C_DecryptUpdate",
                p11!(
                    ctx.m,
                    C_DecryptUpdate(h, d.as_mut_ptr(), 16, out.as_mut_ptr(), &mut len)
                ),
            );
            len = 64;
            check(
                "C_DecryptFinal",
                p11!(ctx.m, C_DecryptFinal(h, out.as_mut_ptr(), &mut len)),
            );
            check(
                "C_GenerateRandom",
                p11!(ctx.m, C_GenerateRandom(h, out.as_mut_ptr(), 8)),
            );
            let mut gm = Mech::new(CKM_AES_KEY_GEN).raw();
            let mut gt = Tpl::new().bool(CKA_TOKEN, false).ulong(CKA_VALUE_LEN, 16);
            let mut ga = gt.attrs();
            check(
                "C_GenerateKey",
                p11!(
                    ctx.m,
                    C_GenerateKey(h, &mut gm, ga.as_mut_ptr(), ga.len() as CK_ULONG, &mut o)
                ),
            );
            ensure(bad.is_empty(), || bad.join("; "))
        },
    );
}
