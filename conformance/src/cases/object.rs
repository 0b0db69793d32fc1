//! Object management (§5.7, with the template rules of §4.1): creating, copying, destroying,
//! reading and changing attributes, searching, visibility.

use std::ffi::c_void;

use pkcs11_sys::*;

use super::general::init;
use super::{aes_key, secret_key, unique, Reg};
use crate::case::*;
use crate::ctx::{Buf, Ctx, Tpl};
use crate::guard::Role;
use crate::p11;

/// C_SetAttributeValue with one attribute; returns the code.
pub fn set_attr_rv(ctx: &mut Ctx, h: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE, mut t: Tpl) -> CK_RV {
    let mut a = t.attrs();
    p11!(
        ctx.m,
        C_SetAttributeValue(h, o, a.as_mut_ptr(), a.len() as CK_ULONG)
    )
}

/// C_CopyObject; returns the code and the new handle.
pub fn copy_rv(
    ctx: &mut Ctx,
    h: CK_SESSION_HANDLE,
    o: CK_OBJECT_HANDLE,
    mut t: Tpl,
) -> (CK_RV, CK_OBJECT_HANDLE) {
    let mut a = t.attrs();
    let mut n: CK_OBJECT_HANDLE = 0;
    let got = p11!(
        ctx.m,
        C_CopyObject(h, o, a.as_mut_ptr(), a.len() as CK_ULONG, &mut n)
    );
    (got, n)
}

fn data(label: &str) -> Tpl {
    Tpl::new()
        .class(CKO_DATA)
        .bool(CKA_TOKEN, false)
        .bool(CKA_PRIVATE, false)
        .label(label)
        .bytes(CKA_VALUE, b"value")
}

/// The cases of this chapter, in run order.
pub fn cases() -> Vec<Case> {
    let mut r = Reg::new(Chapter::Object);
    r.add(
        "OBJ-001",
        "5.7 C_CreateObject",
        "a public session data object in a R/O public session; attributes read back",
        "CKR_OK; CKA_CLASS, CKA_TOKEN, CKA_LABEL, CKA_VALUE as given",
        |ctx| {
            let h = ctx.open(false)?;
            let label = unique("data");
            let (got, o) = ctx.create_rv(h, &mut data(&label));
            rv("C_CreateObject", got, CKR_OK)?;
            ensure(ctx.attr_ulong(h, o, CKA_CLASS)? == CKO_DATA, || {
                "CKA_CLASS is not CKO_DATA".into()
            })?;
            ensure(!ctx.attr_bool(h, o, CKA_TOKEN)?, || {
                "CKA_TOKEN is TRUE".into()
            })?;
            same_bytes("CKA_LABEL", &ctx.attr(h, o, CKA_LABEL)?, label.as_bytes())?;
            same_bytes("CKA_VALUE", &ctx.attr(h, o, CKA_VALUE)?, b"value")
        },
    );
    r.add(
        "OBJ-002",
        "5.7 C_CreateObject / 5.6 session states",
        "a token object in a R/O User session",
        "CKR_SESSION_READ_ONLY",
        |ctx| {
            let h = ctx.open(false)?;
            ctx.login(h, Role::User)?;
            let (got, o) = ctx.create_rv(h, &mut data(&unique("ro")).bool(CKA_TOKEN, true));
            if got == CKR_OK {
                let _ = ctx.destroy(h, o);
            }
            rv(
                "C_CreateObject(CKA_TOKEN=TRUE, R/O)",
                got,
                CKR_SESSION_READ_ONLY,
            )
        },
    );
    r.add(
        "OBJ-003",
        "5.7 C_CreateObject / 5.6 session states",
        "a private object without login",
        "CKR_USER_NOT_LOGGED_IN",
        |ctx| {
            let h = ctx.open(true)?;
            let (got, o) = ctx.create_rv(h, &mut data(&unique("priv")).bool(CKA_PRIVATE, true));
            if got == CKR_OK {
                let _ = ctx.destroy(h, o);
            }
            rv(
                "C_CreateObject(CKA_PRIVATE=TRUE, public session)",
                got,
                CKR_USER_NOT_LOGGED_IN,
            )
        },
    );
    r.add(
        "OBJ-004",
        "4.1.1 / 5.7 C_CreateObject",
        "a template without CKA_CLASS",
        "CKR_TEMPLATE_INCOMPLETE",
        |ctx| {
            let h = ctx.open(false)?;
            let (got, _) = ctx.create_rv(
                h,
                &mut Tpl::new()
                    .bool(CKA_TOKEN, false)
                    .bool(CKA_PRIVATE, false)
                    .label("no class"),
            );
            rv("C_CreateObject(no CKA_CLASS)", got, CKR_TEMPLATE_INCOMPLETE)
        },
    );
    r.add(
        "OBJ-005",
        "4.1.1 / 5.7 C_CreateObject",
        "an attribute type that does not exist",
        "CKR_ATTRIBUTE_TYPE_INVALID",
        |ctx| {
            let h = ctx.open(false)?;
            let (got, _) = ctx.create_rv(
                h,
                &mut data(&unique("x")).bytes(CKA_VENDOR_DEFINED | 0x4b34, b"?"),
            );
            rv(
                "C_CreateObject(unknown attribute)",
                got,
                CKR_ATTRIBUTE_TYPE_INVALID,
            )
        },
    );
    r.add(
        "OBJ-006",
        "4.1.1 / 5.7 C_CreateObject",
        "the same attribute twice with different values",
        "CKR_TEMPLATE_INCONSISTENT",
        |ctx| {
            let h = ctx.open(false)?;
            let (got, o) = ctx.create_rv(h, &mut data("first").duplicate(CKA_LABEL, b"second"));
            if got == CKR_OK {
                let _ = ctx.destroy(h, o);
            }
            rv(
                "C_CreateObject(CKA_LABEL twice)",
                got,
                CKR_TEMPLATE_INCONSISTENT,
            )
        },
    );
    r.add(
        "OBJ-007",
        "4.1.1 / 5.7 C_CreateObject",
        "a CK_BBOOL attribute with a 4-byte value",
        "CKR_ATTRIBUTE_VALUE_INVALID",
        |ctx| {
            let h = ctx.open(false)?;
            let (got, _) = ctx.create_rv(
                h,
                &mut Tpl::new()
                    .class(CKO_DATA)
                    .bool(CKA_PRIVATE, false)
                    .bytes(CKA_TOKEN, &[0, 0, 0, 0]),
            );
            rv(
                "C_CreateObject(CKA_TOKEN of 4 bytes)",
                got,
                CKR_ATTRIBUTE_VALUE_INVALID,
            )
        },
    );
    r.add(
        "OBJ-008",
        "4.1.1 / 5.7 C_CreateObject",
        "a CKA_CLASS value that is no object class",
        "CKR_ATTRIBUTE_VALUE_INVALID",
        |ctx| {
            let h = ctx.open(false)?;
            let (got, _) = ctx.create_rv(
                h,
                &mut Tpl::new()
                    .class(0x7fff_fff0)
                    .bool(CKA_TOKEN, false)
                    .bool(CKA_PRIVATE, false),
            );
            rv(
                "C_CreateObject(CKA_CLASS 0x7ffffff0)",
                got,
                CKR_ATTRIBUTE_VALUE_INVALID,
            )
        },
    );
    r.add(
        "OBJ-009",
        "5.7 C_CreateObject",
        "NULL pTemplate with ulCount 2",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let h = ctx.open(false)?;
            let mut o: CK_OBJECT_HANDLE = 0;
            rv(
                "C_CreateObject(NULL, 2)",
                p11!(ctx.m, C_CreateObject(h, std::ptr::null_mut(), 2, &mut o)),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "OBJ-010",
        "5.7 C_CreateObject",
        "NULL phObject",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let h = ctx.open(false)?;
            let mut t = data(&unique("x"));
            let mut a = t.attrs();
            rv(
                "C_CreateObject(.., NULL)",
                p11!(
                    ctx.m,
                    C_CreateObject(h, a.as_mut_ptr(), a.len() as CK_ULONG, std::ptr::null_mut())
                ),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "OBJ-011",
        "5.7 C_CreateObject",
        "an attribute with NULL pValue and ulValueLen 8",
        "CKR_ARGUMENTS_BAD or CKR_ATTRIBUTE_VALUE_INVALID",
        |ctx| {
            let h = ctx.open(false)?;
            let (got, o) = ctx.create_rv(
                h,
                &mut Tpl::new()
                    .class(CKO_DATA)
                    .bool(CKA_TOKEN, false)
                    .bool(CKA_PRIVATE, false)
                    .null_value(CKA_VALUE, 8),
            );
            if got == CKR_OK {
                let _ = ctx.destroy(h, o);
            }
            rv_in(
                "C_CreateObject(CKA_VALUE = NULL, 8)",
                got,
                &[CKR_ARGUMENTS_BAD, CKR_ATTRIBUTE_VALUE_INVALID],
            )
        },
    );
    r.add(
        "OBJ-012",
        "5.7 C_CreateObject",
        "a 64 KiB CKA_VALUE is stored exactly, or refused",
        "CKR_OK and the same bytes back, or CKR_ATTRIBUTE_VALUE_INVALID / CKR_DEVICE_MEMORY",
        |ctx| {
            let h = ctx.open(false)?;
            let big: Vec<u8> = (0..65536u32).map(|i| (i * 7 + 3) as u8).collect();
            let (got, o) = ctx.create_rv(h, &mut data(&unique("big")).bytes(CKA_VALUE, &big));
            rv_in(
                "C_CreateObject(64 KiB value)",
                got,
                &[CKR_OK, CKR_ATTRIBUTE_VALUE_INVALID, CKR_DEVICE_MEMORY],
            )?;
            if got == CKR_OK {
                same_bytes("CKA_VALUE read back", &ctx.attr(h, o, CKA_VALUE)?, &big)?;
            }
            Ok(())
        },
    );
    r.add(
        "OBJ-013",
        "5.7 C_CreateObject",
        "a closed session handle",
        "CKR_SESSION_HANDLE_INVALID",
        |ctx| {
            let h = ctx.open(false)?;
            ctx.close(h);
            let (got, _) = ctx.create_rv(h, &mut data(&unique("x")));
            rv(
                "C_CreateObject(closed session)",
                got,
                CKR_SESSION_HANDLE_INVALID,
            )
        },
    );
    r.add(
        "OBJ-014",
        "5.7 C_GetAttributeValue",
        "length query, then a buffer one byte too small",
        "exact length; CKR_BUFFER_TOO_SMALL with ulValueLen = CK_UNAVAILABLE_INFORMATION",
        |ctx| {
            let h = ctx.open(false)?;
            let o = ctx.create(h, data(&unique("len")))?;
            let mut a = CK_ATTRIBUTE {
                type_: CKA_VALUE,
                pValue: std::ptr::null_mut(),
                ulValueLen: 0,
            };
            rv(
                "C_GetAttributeValue(NULL pValue)",
                p11!(ctx.m, C_GetAttributeValue(h, o, &mut a, 1)),
                CKR_OK,
            )?;
            ensure(a.ulValueLen == 5, || {
                format!("length {}, expected 5", a.ulValueLen)
            })?;
            let mut buf = Buf::zeroed(4);
            a.pValue = buf.ptr() as *mut c_void;
            a.ulValueLen = 4;
            rv(
                "C_GetAttributeValue(4-byte buffer)",
                p11!(ctx.m, C_GetAttributeValue(h, o, &mut a, 1)),
                CKR_BUFFER_TOO_SMALL,
            )?;
            ensure(a.ulValueLen == CK_UNAVAILABLE_INFORMATION, || {
                format!("ulValueLen {} after CKR_BUFFER_TOO_SMALL", a.ulValueLen)
            })
        },
    );
    r.add(
        "OBJ-015",
        "5.7 C_GetAttributeValue",
        "an attribute the object does not have, among valid ones",
        "CKR_ATTRIBUTE_TYPE_INVALID; that one CK_UNAVAILABLE_INFORMATION, the others filled",
        |ctx| {
            let h = ctx.open(false)?;
            let label = unique("mixed");
            let o = ctx.create(h, data(&label))?;
            let mut lbuf = Buf::zeroed(label.len());
            let mut mbuf = Buf::zeroed(256);
            let mut attrs = [
                CK_ATTRIBUTE {
                    type_: CKA_LABEL,
                    pValue: lbuf.ptr() as *mut c_void,
                    ulValueLen: label.len() as CK_ULONG,
                },
                CK_ATTRIBUTE {
                    type_: CKA_MODULUS,
                    pValue: mbuf.ptr() as *mut c_void,
                    ulValueLen: 256,
                },
            ];
            rv(
                "C_GetAttributeValue(CKA_LABEL, CKA_MODULUS)",
                p11!(ctx.m, C_GetAttributeValue(h, o, attrs.as_mut_ptr(), 2)),
                CKR_ATTRIBUTE_TYPE_INVALID,
            )?;
            ensure(attrs[1].ulValueLen == CK_UNAVAILABLE_INFORMATION, || {
                format!("CKA_MODULUS ulValueLen {}", attrs[1].ulValueLen)
            })?;
            ensure(attrs[0].ulValueLen == label.len() as CK_ULONG, || {
                format!("CKA_LABEL ulValueLen {}", attrs[0].ulValueLen)
            })?;
            same_bytes("CKA_LABEL", lbuf.as_slice(), label.as_bytes())
        },
    );
    r.add(
        "OBJ-016",
        "5.7 C_GetAttributeValue",
        "the value of a sensitive key",
        "CKR_ATTRIBUTE_SENSITIVE, ulValueLen = CK_UNAVAILABLE_INFORMATION",
        |ctx| {
            let h = ctx.user_session()?;
            let k = secret_key(ctx, h, CKK_AES, &[7u8; 32], &[(CKA_SENSITIVE, true)])?;
            let mut buf = Buf::zeroed(64);
            let mut a = CK_ATTRIBUTE {
                type_: CKA_VALUE,
                pValue: buf.ptr() as *mut c_void,
                ulValueLen: 64,
            };
            rv(
                "C_GetAttributeValue(CKA_VALUE)",
                p11!(ctx.m, C_GetAttributeValue(h, k, &mut a, 1)),
                CKR_ATTRIBUTE_SENSITIVE,
            )?;
            ensure(a.ulValueLen == CK_UNAVAILABLE_INFORMATION, || {
                format!("ulValueLen {}", a.ulValueLen)
            })?;
            ensure(buf.as_slice().iter().all(|&b| b != 7), || {
                "the key value leaked into the buffer".into()
            })
        },
    );
    r.add(
        "OBJ-017",
        "5.7 C_GetAttributeValue",
        "NULL pTemplate with ulCount 1",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let h = ctx.open(false)?;
            let o = ctx.create(h, data(&unique("x")))?;
            rv(
                "C_GetAttributeValue(NULL, 1)",
                p11!(ctx.m, C_GetAttributeValue(h, o, std::ptr::null_mut(), 1)),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "OBJ-018",
        "5.7 C_GetAttributeValue",
        "the handle of a destroyed object",
        "CKR_OBJECT_HANDLE_INVALID",
        |ctx| {
            let h = ctx.open(false)?;
            let o = ctx.create(h, data(&unique("gone")))?;
            setup("C_DestroyObject", ctx.destroy(h, o))?;
            rv(
                "C_GetAttributeValue(destroyed)",
                ctx.attr_rv(h, o, CKA_LABEL).err().unwrap_or(CKR_OK),
                CKR_OBJECT_HANDLE_INVALID,
            )
        },
    );
    r.add(
        "OBJ-019",
        "5.7 C_GetAttributeValue",
        "CK_INVALID_HANDLE (0)",
        "CKR_OBJECT_HANDLE_INVALID",
        |ctx| {
            let h = ctx.open(false)?;
            rv(
                "C_GetAttributeValue(0)",
                ctx.attr_rv(h, CK_INVALID_HANDLE, CKA_LABEL)
                    .err()
                    .unwrap_or(CKR_OK),
                CKR_OBJECT_HANDLE_INVALID,
            )
        },
    );
    r.add(
        "OBJ-020",
        "5.7 C_SetAttributeValue",
        "changing CKA_LABEL",
        "CKR_OK and the new label",
        |ctx| {
            let h = ctx.open(false)?;
            let o = ctx.create(h, data(&unique("old")))?;
            let new = unique("new");
            rv(
                "C_SetAttributeValue(CKA_LABEL)",
                set_attr_rv(ctx, h, o, Tpl::new().label(&new)),
                CKR_OK,
            )?;
            same_bytes("CKA_LABEL", &ctx.attr(h, o, CKA_LABEL)?, new.as_bytes())
        },
    );
    r.add(
        "OBJ-021",
        "4.4 / 5.7 C_SetAttributeValue",
        "changing CKA_CLASS",
        "CKR_ATTRIBUTE_READ_ONLY",
        |ctx| {
            let h = ctx.open(false)?;
            let o = ctx.create(h, data(&unique("x")))?;
            rv(
                "C_SetAttributeValue(CKA_CLASS)",
                set_attr_rv(ctx, h, o, Tpl::new().class(CKO_CERTIFICATE)),
                CKR_ATTRIBUTE_READ_ONLY,
            )
        },
    );
    r.add(
        "OBJ-022",
        "4.4 CKA_MODIFIABLE / 5.7 C_SetAttributeValue",
        "an object with CKA_MODIFIABLE=FALSE",
        "CKR_ACTION_PROHIBITED",
        |ctx| {
            let h = ctx.open(false)?;
            let o = ctx.create(h, data(&unique("ro")).bool(CKA_MODIFIABLE, false))?;
            rv(
                "C_SetAttributeValue(CKA_LABEL)",
                set_attr_rv(ctx, h, o, Tpl::new().label("changed")),
                CKR_ACTION_PROHIBITED,
            )
        },
    );
    r.add(
        "OBJ-023",
        "4.9 CKA_SENSITIVE / 5.7 C_SetAttributeValue",
        "turning CKA_SENSITIVE off",
        "CKR_ATTRIBUTE_READ_ONLY",
        |ctx| {
            let h = ctx.user_session()?;
            let k = secret_key(ctx, h, CKK_AES, &[1u8; 16], &[(CKA_SENSITIVE, true)])?;
            rv(
                "C_SetAttributeValue(CKA_SENSITIVE=FALSE)",
                set_attr_rv(ctx, h, k, Tpl::new().bool(CKA_SENSITIVE, false)),
                CKR_ATTRIBUTE_READ_ONLY,
            )
        },
    );
    r.add(
        "OBJ-024",
        "4.9 CKA_EXTRACTABLE / 5.7 C_SetAttributeValue",
        "turning CKA_EXTRACTABLE on",
        "CKR_ATTRIBUTE_READ_ONLY",
        |ctx| {
            let h = ctx.user_session()?;
            let k = secret_key(
                ctx,
                h,
                CKK_AES,
                &[1u8; 16],
                &[(CKA_SENSITIVE, true), (CKA_EXTRACTABLE, false)],
            )?;
            rv(
                "C_SetAttributeValue(CKA_EXTRACTABLE=TRUE)",
                set_attr_rv(ctx, h, k, Tpl::new().bool(CKA_EXTRACTABLE, true)),
                CKR_ATTRIBUTE_READ_ONLY,
            )
        },
    );
    r.add(
        "OBJ-025",
        "5.7 C_SetAttributeValue",
        "an attribute type that does not exist",
        "CKR_ATTRIBUTE_TYPE_INVALID",
        |ctx| {
            let h = ctx.open(false)?;
            let o = ctx.create(h, data(&unique("x")))?;
            rv(
                "C_SetAttributeValue(unknown)",
                set_attr_rv(
                    ctx,
                    h,
                    o,
                    Tpl::new().bytes(CKA_VENDOR_DEFINED | 0x4b34, b"?"),
                ),
                CKR_ATTRIBUTE_TYPE_INVALID,
            )
        },
    );
    r.add(
        "OBJ-026",
        "5.7 C_SetAttributeValue / 5.6 session states",
        "a token object from a R/O session",
        "CKR_SESSION_READ_ONLY",
        |ctx| {
            let rw = ctx.user_session()?;
            let o = ctx.create(rw, data(&unique("tok")).bool(CKA_TOKEN, true))?;
            let ro = ctx.open(false)?;
            let got = set_attr_rv(ctx, ro, o, Tpl::new().label("changed"));
            let _ = ctx.destroy(rw, o);
            rv(
                "C_SetAttributeValue(R/O session)",
                got,
                CKR_SESSION_READ_ONLY,
            )
        },
    );
    r.add(
        "OBJ-027",
        "5.7 C_DestroyObject",
        "destroying an object invalidates its handle",
        "CKR_OK, then CKR_OBJECT_HANDLE_INVALID",
        |ctx| {
            let h = ctx.open(false)?;
            let o = ctx.create(h, data(&unique("d")))?;
            rv("C_DestroyObject", ctx.destroy(h, o), CKR_OK)?;
            rv(
                "second C_DestroyObject",
                ctx.destroy(h, o),
                CKR_OBJECT_HANDLE_INVALID,
            )
        },
    );
    r.add(
        "OBJ-028",
        "4.4 CKA_DESTROYABLE / 5.7 C_DestroyObject",
        "an object with CKA_DESTROYABLE=FALSE",
        "CKR_ACTION_PROHIBITED",
        |ctx| {
            let h = ctx.open(false)?;
            let o = ctx.create(h, data(&unique("keep")).bool(CKA_DESTROYABLE, false))?;
            rv("C_DestroyObject", ctx.destroy(h, o), CKR_ACTION_PROHIBITED)
        },
    );
    r.add(
        "OBJ-029",
        "5.7 C_DestroyObject",
        "CK_INVALID_HANDLE (0)",
        "CKR_OBJECT_HANDLE_INVALID",
        |ctx| {
            let h = ctx.open(false)?;
            rv(
                "C_DestroyObject(0)",
                ctx.destroy(h, CK_INVALID_HANDLE),
                CKR_OBJECT_HANDLE_INVALID,
            )
        },
    );
    r.add(
        "OBJ-030",
        "5.7 C_DestroyObject / 5.6 session states",
        "a token object from a R/O session",
        "CKR_SESSION_READ_ONLY",
        |ctx| {
            let rw = ctx.user_session()?;
            let o = ctx.create(rw, data(&unique("tok")).bool(CKA_TOKEN, true))?;
            let ro = ctx.open(false)?;
            let got = ctx.destroy(ro, o);
            let _ = ctx.destroy(rw, o);
            rv("C_DestroyObject(R/O session)", got, CKR_SESSION_READ_ONLY)
        },
    );
    r.add(
        "OBJ-031",
        "5.7 C_CopyObject",
        "a copy with a new label",
        "CKR_OK; a new handle, the copy has the new label and the value, the original is unchanged",
        |ctx| {
            let h = ctx.open(false)?;
            let (l1, l2) = (unique("orig"), unique("copy"));
            let o = ctx.create(h, data(&l1))?;
            let (got, c) = copy_rv(ctx, h, o, Tpl::new().label(&l2));
            rv("C_CopyObject", got, CKR_OK)?;
            ensure(c != o && c != CK_INVALID_HANDLE, || {
                format!("copy handle {c}")
            })?;
            same_bytes("copy CKA_LABEL", &ctx.attr(h, c, CKA_LABEL)?, l2.as_bytes())?;
            same_bytes("copy CKA_VALUE", &ctx.attr(h, c, CKA_VALUE)?, b"value")?;
            same_bytes(
                "original CKA_LABEL",
                &ctx.attr(h, o, CKA_LABEL)?,
                l1.as_bytes(),
            )
        },
    );
    r.add(
        "OBJ-032",
        "4.4 CKA_COPYABLE / 5.7 C_CopyObject",
        "an object with CKA_COPYABLE=FALSE",
        "CKR_ACTION_PROHIBITED",
        |ctx| {
            let h = ctx.open(false)?;
            let o = ctx.create(h, data(&unique("nocopy")).bool(CKA_COPYABLE, false))?;
            let (got, _) = copy_rv(ctx, h, o, Tpl::new());
            rv("C_CopyObject", got, CKR_ACTION_PROHIBITED)
        },
    );
    r.add(
        "OBJ-033",
        "5.7 C_CopyObject",
        "a copy that changes CKA_CLASS",
        "CKR_ATTRIBUTE_READ_ONLY",
        |ctx| {
            let h = ctx.open(false)?;
            let o = ctx.create(h, data(&unique("x")))?;
            let (got, _) = copy_rv(ctx, h, o, Tpl::new().class(CKO_CERTIFICATE));
            rv("C_CopyObject(CKA_CLASS)", got, CKR_ATTRIBUTE_READ_ONLY)
        },
    );
    r.add(
        "OBJ-034",
        "5.7 C_CopyObject",
        "CK_INVALID_HANDLE (0)",
        "CKR_OBJECT_HANDLE_INVALID",
        |ctx| {
            let h = ctx.open(false)?;
            let (got, _) = copy_rv(ctx, h, CK_INVALID_HANDLE, Tpl::new());
            rv("C_CopyObject(0)", got, CKR_OBJECT_HANDLE_INVALID)
        },
    );
    r.add(
        "OBJ-035",
        "5.7 C_CopyObject",
        "NULL phNewObject",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let h = ctx.open(false)?;
            let o = ctx.create(h, data(&unique("x")))?;
            rv(
                "C_CopyObject(.., NULL)",
                p11!(
                    ctx.m,
                    C_CopyObject(h, o, std::ptr::null_mut(), 0, std::ptr::null_mut())
                ),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "OBJ-036",
        "5.7 C_GetObjectSize",
        "the size of a data object",
        "CKR_OK and a size > 0 (or CK_UNAVAILABLE_INFORMATION)",
        |ctx| {
            let h = ctx.open(false)?;
            let o = ctx.create(h, data(&unique("size")))?;
            let mut size: CK_ULONG = 0;
            let got = p11!(ctx.m, C_GetObjectSize(h, o, &mut size));
            optional("C_GetObjectSize", got)?;
            rv("C_GetObjectSize", got, CKR_OK)?;
            ensure(size > 0, || "size 0".into())
        },
    );
    r.add(
        "OBJ-037",
        "5.7 C_GetObjectSize",
        "NULL pulSize",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let h = ctx.open(false)?;
            let o = ctx.create(h, data(&unique("size")))?;
            let got = p11!(ctx.m, C_GetObjectSize(h, o, std::ptr::null_mut()));
            optional("C_GetObjectSize", got)?;
            rv("C_GetObjectSize(NULL)", got, CKR_ARGUMENTS_BAD)
        },
    );
    r.add(
        "OBJ-038",
        "5.7 C_GetObjectSize",
        "CK_INVALID_HANDLE (0)",
        "CKR_OBJECT_HANDLE_INVALID",
        |ctx| {
            let h = ctx.open(false)?;
            let mut size: CK_ULONG = 0;
            let got = p11!(ctx.m, C_GetObjectSize(h, CK_INVALID_HANDLE, &mut size));
            optional("C_GetObjectSize", got)?;
            rv("C_GetObjectSize(0)", got, CKR_OBJECT_HANDLE_INVALID)
        },
    );
    r.add(
        "OBJ-039",
        "5.7 C_FindObjects",
        "a search returns exactly the matches, in batches of ulMaxObjectCount",
        "2, 1, then 0 of the 3 objects",
        |ctx| {
            let h = ctx.open(false)?;
            let label = unique("find3");
            let mut made = Vec::new();
            for _ in 0..3 {
                made.push(ctx.create(h, data(&label))?);
            }
            ctx.create(h, data(&unique("other")))?;
            let mut t = Tpl::new().label(&label);
            let mut a = t.attrs();
            rv(
                "C_FindObjectsInit",
                p11!(
                    ctx.m,
                    C_FindObjectsInit(h, a.as_mut_ptr(), a.len() as CK_ULONG)
                ),
                CKR_OK,
            )?;
            let mut got = Vec::new();
            for want in [2, 1, 0] {
                let mut buf = [0 as CK_OBJECT_HANDLE; 2];
                let mut n: CK_ULONG = 99;
                rv(
                    "C_FindObjects(max 2)",
                    p11!(ctx.m, C_FindObjects(h, buf.as_mut_ptr(), 2, &mut n)),
                    CKR_OK,
                )?;
                ensure(n == want, || {
                    format!("C_FindObjects returned {n} objects, expected {want}")
                })?;
                got.extend_from_slice(&buf[..(n as usize).min(2)]);
            }
            rv(
                "C_FindObjectsFinal",
                p11!(ctx.m, C_FindObjectsFinal(h)),
                CKR_OK,
            )?;
            got.sort_unstable();
            made.sort_unstable();
            ensure(got == made, || format!("found {got:?}, created {made:?}"))
        },
    );
    r.add(
        "OBJ-040",
        "5.7 C_FindObjectsInit",
        "a second C_FindObjectsInit while a search is active",
        "CKR_OPERATION_ACTIVE",
        |ctx| {
            let h = ctx.open(false)?;
            setup(
                "C_FindObjectsInit",
                p11!(ctx.m, C_FindObjectsInit(h, std::ptr::null_mut(), 0)),
            )?;
            rv(
                "second C_FindObjectsInit",
                p11!(ctx.m, C_FindObjectsInit(h, std::ptr::null_mut(), 0)),
                CKR_OPERATION_ACTIVE,
            )
        },
    );
    r.add(
        "OBJ-041",
        "5.7 C_FindObjects",
        "C_FindObjects without C_FindObjectsInit",
        "CKR_OPERATION_NOT_INITIALIZED",
        |ctx| {
            let h = ctx.open(false)?;
            let mut buf = [0 as CK_OBJECT_HANDLE; 4];
            let mut n: CK_ULONG = 0;
            rv(
                "C_FindObjects",
                p11!(ctx.m, C_FindObjects(h, buf.as_mut_ptr(), 4, &mut n)),
                CKR_OPERATION_NOT_INITIALIZED,
            )
        },
    );
    r.add(
        "OBJ-042",
        "5.7 C_FindObjectsFinal",
        "C_FindObjectsFinal without C_FindObjectsInit",
        "CKR_OPERATION_NOT_INITIALIZED",
        |ctx| {
            let h = ctx.open(false)?;
            rv(
                "C_FindObjectsFinal",
                p11!(ctx.m, C_FindObjectsFinal(h)),
                CKR_OPERATION_NOT_INITIALIZED,
            )
        },
    );
    r.add(
        "OBJ-043",
        "5.7 C_FindObjects",
        "NULL phObject with ulMaxObjectCount 10",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let h = ctx.open(false)?;
            setup(
                "C_FindObjectsInit",
                p11!(ctx.m, C_FindObjectsInit(h, std::ptr::null_mut(), 0)),
            )?;
            let mut n: CK_ULONG = 0;
            rv(
                "C_FindObjects(NULL, 10)",
                p11!(ctx.m, C_FindObjects(h, std::ptr::null_mut(), 10, &mut n)),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "OBJ-044",
        "5.7 C_FindObjects",
        "NULL pulObjectCount",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let h = ctx.open(false)?;
            setup(
                "C_FindObjectsInit",
                p11!(ctx.m, C_FindObjectsInit(h, std::ptr::null_mut(), 0)),
            )?;
            let mut buf = [0 as CK_OBJECT_HANDLE; 10];
            rv(
                "C_FindObjects(.., NULL)",
                p11!(
                    ctx.m,
                    C_FindObjects(h, buf.as_mut_ptr(), 10, std::ptr::null_mut())
                ),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "OBJ-045",
        "4.4 CKA_PRIVATE / 5.7 C_FindObjectsInit",
        "private objects are not found without login",
        "no match",
        |ctx| {
            let h = ctx.user_session()?;
            let label = unique("hidden");
            let o = ctx.data_object(h, &label, b"x", true, true)?;
            ctx.logout(h)?;
            let found = ctx.find(h, Tpl::new().label(&label));
            ctx.login(h, Role::User)?;
            let _ = ctx.destroy(h, o);
            for o in ctx.find(h, Tpl::new().label(&label))? {
                let _ = ctx.destroy(h, o);
            }
            let found = found?;
            ensure(found.is_empty(), || {
                format!("{} private object(s) found without login", found.len())
            })
        },
    );
    r.add(
        "OBJ-046",
        "5.6 C_CloseSession",
        "a session object is destroyed with its session",
        "CKR_OBJECT_HANDLE_INVALID from another session",
        |ctx| {
            let a = ctx.open(false)?;
            let b = ctx.open(false)?;
            let o = ctx.create(a, data(&unique("sess")))?;
            setup("C_CloseSession", ctx.close(a))?;
            rv(
                "C_GetAttributeValue from another session",
                ctx.attr_rv(b, o, CKA_LABEL).err().unwrap_or(CKR_OK),
                CKR_OBJECT_HANDLE_INVALID,
            )
        },
    );
    r.add(
        "OBJ-047",
        "4.4 / 5.7",
        "a session object is visible to the application's other sessions",
        "CKR_OK",
        |ctx| {
            let a = ctx.open(false)?;
            let b = ctx.open(false)?;
            let label = unique("shared");
            let o = ctx.create(a, data(&label))?;
            match ctx.attr_rv(b, o, CKA_LABEL) {
                Ok(v) => same_bytes("CKA_LABEL", &v, label.as_bytes()),
                Err(e) => fail(format!(
                    "C_GetAttributeValue from another session: returned {}, expected CKR_OK",
                    crate::names::ckr(e)
                )),
            }
        },
    );
    r.add(
        "OBJ-048",
        "4.4 CKA_PRIVATE / 5.6 SO session",
        "the SO does not see private objects",
        "no private object found",
        |ctx| {
            let h = ctx.user_session()?;
            let label = unique("private");
            ctx.data_object(h, &label, b"x", true, true)?;
            ctx.close_all();
            let so = ctx.so_session()?;
            let found = ctx.find(so, Tpl::new().bool(CKA_PRIVATE, true));
            ctx.close_all();
            let h = ctx.user_session()?;
            for o in ctx.find(h, Tpl::new().label(&label))? {
                let _ = ctx.destroy(h, o);
            }
            let found = found?;
            ensure(found.is_empty(), || {
                format!("the SO found {} private object(s)", found.len())
            })
        },
    );
    r.add(
        "OBJ-049",
        "5.7 C_GetAttributeValue",
        "two attributes, one buffer too small",
        "CKR_BUFFER_TOO_SMALL; the other attribute filled",
        |ctx| {
            let h = ctx.open(false)?;
            let label = unique("two");
            let o = ctx.create(h, data(&label))?;
            let mut lbuf = Buf::zeroed(label.len());
            let mut vbuf = Buf::zeroed(2);
            let mut attrs = [
                CK_ATTRIBUTE {
                    type_: CKA_LABEL,
                    pValue: lbuf.ptr() as *mut c_void,
                    ulValueLen: label.len() as CK_ULONG,
                },
                CK_ATTRIBUTE {
                    type_: CKA_VALUE,
                    pValue: vbuf.ptr() as *mut c_void,
                    ulValueLen: 2,
                },
            ];
            rv(
                "C_GetAttributeValue",
                p11!(ctx.m, C_GetAttributeValue(h, o, attrs.as_mut_ptr(), 2)),
                CKR_BUFFER_TOO_SMALL,
            )?;
            ensure(attrs[1].ulValueLen == CK_UNAVAILABLE_INFORMATION, || {
                format!("CKA_VALUE ulValueLen {}", attrs[1].ulValueLen)
            })?;
            same_bytes("CKA_LABEL", lbuf.as_slice(), label.as_bytes())
        },
    );
    r.add(
        "OBJ-050",
        "4.10 secret keys / 5.7 C_CreateObject",
        "an imported AES key: value, length, not local",
        "CKA_VALUE as given, CKA_VALUE_LEN 32, CKA_LOCAL FALSE",
        |ctx| {
            let h = ctx.user_session()?;
            let value: Vec<u8> = (0..32).collect();
            let k = aes_key(ctx, h, &value)?;
            same_bytes("CKA_VALUE", &ctx.attr(h, k, CKA_VALUE)?, &value)?;
            ensure(ctx.attr_ulong(h, k, CKA_VALUE_LEN)? == 32, || {
                "CKA_VALUE_LEN is not 32".into()
            })?;
            ensure(!ctx.attr_bool(h, k, CKA_LOCAL)?, || {
                "CKA_LOCAL is TRUE for an imported key".into()
            })
        },
    );
    r.add(
        "OBJ-051",
        "4.1.1 / 4.10",
        "a secret key without CKA_KEY_TYPE",
        "CKR_TEMPLATE_INCOMPLETE",
        |ctx| {
            let h = ctx.user_session()?;
            let (got, _) = ctx.create_rv(
                h,
                &mut Tpl::new()
                    .class(CKO_SECRET_KEY)
                    .bool(CKA_TOKEN, false)
                    .bytes(CKA_VALUE, &[1u8; 16]),
            );
            rv(
                "C_CreateObject(no CKA_KEY_TYPE)",
                got,
                CKR_TEMPLATE_INCOMPLETE,
            )
        },
    );
    r.add(
        "OBJ-052",
        "AES key objects (mechanisms §2.8)",
        "an AES key of 17 bytes",
        "CKR_ATTRIBUTE_VALUE_INVALID",
        |ctx| {
            let h = ctx.user_session()?;
            let (got, _) = ctx.create_rv(
                h,
                &mut Tpl::new()
                    .class(CKO_SECRET_KEY)
                    .key_type(CKK_AES)
                    .bool(CKA_TOKEN, false)
                    .bytes(CKA_VALUE, &[1u8; 17]),
            );
            rv(
                "C_CreateObject(17-byte AES key)",
                got,
                CKR_ATTRIBUTE_VALUE_INVALID,
            )
        },
    );
    r.add(
        "OBJ-053",
        "4.1.1 / 4.7 CKA_LOCAL",
        "CKA_LOCAL in a C_CreateObject template",
        "CKR_ATTRIBUTE_READ_ONLY",
        |ctx| {
            let h = ctx.user_session()?;
            let (got, _) = ctx.create_rv(
                h,
                &mut Tpl::new()
                    .class(CKO_SECRET_KEY)
                    .key_type(CKK_AES)
                    .bool(CKA_TOKEN, false)
                    .bytes(CKA_VALUE, &[1u8; 16])
                    .bool(CKA_LOCAL, true),
            );
            rv("C_CreateObject(CKA_LOCAL)", got, CKR_ATTRIBUTE_READ_ONLY)
        },
    );
    r.add(
        "OBJ-054",
        "5.7 C_FindObjectsInit",
        "an empty template finds every visible object, including a new one",
        "the new object is found",
        |ctx| {
            let h = ctx.open(false)?;
            let o = ctx.create(h, data(&unique("all")))?;
            let found = ctx.find(h, Tpl::new())?;
            ensure(found.contains(&o), || {
                format!("{} objects found, not the new one", found.len())
            })
        },
    );
    r.add(
        "OBJ-055",
        "5.7 C_FindObjectsInit",
        "a destroyed object is not found",
        "no match",
        |ctx| {
            let h = ctx.open(false)?;
            let label = unique("destroyed");
            let o = ctx.create(h, data(&label))?;
            setup("C_DestroyObject", ctx.destroy(h, o))?;
            let found = ctx.find(h, Tpl::new().label(&label))?;
            ensure(found.is_empty(), || format!("found {found:?}"))
        },
    );
    r.add(
        "OBJ-056",
        "5.7 C_FindObjectsInit",
        "matching is exact: a prefix of a label does not match",
        "no match",
        |ctx| {
            let h = ctx.open(false)?;
            let label = unique("prefix");
            ctx.create(h, data(&format!("{label}-longer")))?;
            let found = ctx.find(h, Tpl::new().label(&label))?;
            ensure(found.is_empty(), || format!("found {found:?}"))
        },
    );
    r.add(
        "OBJ-057",
        "4.4 CKA_UNIQUE_ID (3.0)",
        "CKA_UNIQUE_ID is set, distinct per object, and read-only",
        "two distinct non-empty ids; C_SetAttributeValue = CKR_ATTRIBUTE_READ_ONLY",
        |ctx| {
            if ctx.m.f3().is_none() {
                return na("CKA_UNIQUE_ID is a PKCS#11 3.0 attribute; the module is 2.x");
            }
            let h = ctx.open(false)?;
            let a = ctx.create(h, data(&unique("u")))?;
            let b = ctx.create(h, data(&unique("u")))?;
            let ua = ctx.attr(h, a, CKA_UNIQUE_ID)?;
            let ub = ctx.attr(h, b, CKA_UNIQUE_ID)?;
            ensure(!ua.is_empty() && ua != ub, || {
                format!("ids {} / {}", hex(&ua), hex(&ub))
            })?;
            rv(
                "C_SetAttributeValue(CKA_UNIQUE_ID)",
                set_attr_rv(ctx, h, a, Tpl::new().bytes(CKA_UNIQUE_ID, b"mine")),
                CKR_ATTRIBUTE_READ_ONLY,
            )
        },
    );

    r.mode(Mode::Fresh);
    r.add(
        "OBJ-058",
        "4.4 CKA_TOKEN",
        "a token object survives C_Finalize / C_Initialize",
        "found again, same value",
        |ctx| {
            init(ctx)?;
            let h = ctx.user_session()?;
            let label = unique("persist");
            ctx.data_object(h, &label, b"kept", true, false)?;
            ctx.close_all();
            setup("C_Finalize", p11!(ctx.m, C_Finalize(std::ptr::null_mut())))?;
            init(ctx)?;
            let h = ctx.user_session()?;
            let found = ctx.find(h, Tpl::new().label(&label))?;
            let value = match found.first() {
                Some(&o) => ctx.attr(h, o, CKA_VALUE)?,
                None => Vec::new(),
            };
            for &o in &found {
                let _ = ctx.destroy(h, o);
            }
            ensure(found.len() == 1, || {
                format!("{} objects found", found.len())
            })?;
            same_bytes("CKA_VALUE", &value, b"kept")
        },
    );
    more(&mut r);
    r.done()
}

fn more(r: &mut Reg) {
    r.mode(Mode::Shared);
    r.add(
        "OBJ-059",
        "5.7 C_FindObjectsInit",
        "NULL pTemplate with ulCount 3",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let h = ctx.open(false)?;
            let got = p11!(ctx.m, C_FindObjectsInit(h, std::ptr::null_mut(), 3));
            if got == CKR_OK {
                let _ = p11!(ctx.m, C_FindObjectsFinal(h));
            }
            rv("C_FindObjectsInit(NULL, 3)", got, CKR_ARGUMENTS_BAD)
        },
    );
    r.add(
        "OBJ-060",
        "5.7 C_SetAttributeValue",
        "NULL pTemplate with ulCount 1",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let h = ctx.open(false)?;
            let o = ctx.create(h, data(&unique("x")))?;
            rv(
                "C_SetAttributeValue(NULL, 1)",
                p11!(ctx.m, C_SetAttributeValue(h, o, std::ptr::null_mut(), 1)),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "OBJ-061",
        "5.7 object handles",
        "a destroyed object in every object-management function",
        "CKR_OBJECT_HANDLE_INVALID from each",
        |ctx| {
            let h = ctx.open(false)?;
            let o = ctx.create(h, data(&unique("gone")))?;
            setup("C_DestroyObject", ctx.destroy(h, o))?;
            let mut bad = Vec::new();
            let mut check = |what: &str, got: CK_RV| {
                if got != CKR_OBJECT_HANDLE_INVALID {
                    bad.push(format!("{what}: {}", crate::names::ckr(got)));
                }
            };
            let mut a = CK_ATTRIBUTE {
                type_: CKA_LABEL,
                pValue: std::ptr::null_mut(),
                ulValueLen: 0,
            };
            check(
                "C_GetAttributeValue",
                p11!(ctx.m, C_GetAttributeValue(h, o, &mut a, 1)),
            );
            check(
                "C_SetAttributeValue",
                set_attr_rv(ctx, h, o, Tpl::new().label("x")),
            );
            check("C_CopyObject", copy_rv(ctx, h, o, Tpl::new()).0);
            check("C_DestroyObject", ctx.destroy(h, o));
            let mut size: CK_ULONG = 0;
            let got = p11!(ctx.m, C_GetObjectSize(h, o, &mut size));
            if got != CKR_FUNCTION_NOT_SUPPORTED {
                check("C_GetObjectSize", got);
            }
            ensure(bad.is_empty(), || bad.join("; "))
        },
    );
}
