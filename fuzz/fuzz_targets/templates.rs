//! Attribute templates: C_CreateObject, C_FindObjectsInit, C_GetAttributeValue,
//! C_SetAttributeValue and C_CopyObject with arbitrary types, values and lengths, as the User
//! in an R/W session.
//!
//! Properties, besides "no panic, only PKCS#11 codes, nothing written past a buffer":
//! - a created object reads back the plain attributes it was given;
//! - a search by its label and class finds it; every handle a search returns is readable;
//! - key material of a sensitive or non-extractable key is never returned.
#![no_main]

use std::sync::OnceLock;

use key4c_fuzz::gen::{Reader, BOOLS};
use key4c_fuzz::*;
use libfuzzer_sys::fuzz_target;

/// Attributes that read back exactly as given.
const VERBATIM: [CK_ATTRIBUTE_TYPE; 10] = [
    CKA_LABEL,
    CKA_ID,
    CKA_APPLICATION,
    CKA_SUBJECT,
    CKA_ISSUER,
    CKA_SERIAL_NUMBER,
    CKA_URL,
    CKA_OBJECT_ID,
    CKA_START_DATE,
    CKA_END_DATE,
];

/// Key material (never readable while the key is sensitive or non-extractable).
const SECRET: [CK_ATTRIBUTE_TYPE; 6] = [
    CKA_VALUE,
    CKA_PRIVATE_EXPONENT,
    CKA_PRIME_1,
    CKA_PRIME_2,
    CKA_EXPONENT_1,
    CKA_COEFFICIENT,
];

/// Reads one attribute: (rv, value).
fn read(h: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> (CK_RV, Vec<u8>) {
    let mut a = CK_ATTRIBUTE {
        type_: ty,
        pValue: std::ptr::null_mut(),
        ulValueLen: 0,
    };
    let rv = call!(C_GetAttributeValue, h, o, &mut a, 1);
    check_rv("C_GetAttributeValue", rv);
    if rv != CKR_OK {
        assert_eq!(a.ulValueLen, CK_UNAVAILABLE_INFORMATION);
        return (rv, Vec::new());
    }
    let mut out = Out::with_len(a.ulValueLen as usize);
    a.pValue = out.ptr() as CK_VOID_PTR;
    let rv = call!(C_GetAttributeValue, h, o, &mut a, 1);
    out.ul = a.ulValueLen;
    out.check("C_GetAttributeValue", rv);
    assert_eq!(
        rv,
        CKR_OK,
        "the length query said OK, the read {}",
        ckr_name(rv)
    );
    (rv, out.bytes().to_vec())
}

fn find(h: CK_SESSION_HANDLE, t: &mut Template) -> Result<Vec<CK_OBJECT_HANDLE>, CK_RV> {
    let rv = call!(C_FindObjectsInit, h, t.ptr(), t.len());
    check_rv("C_FindObjectsInit", rv);
    if rv != CKR_OK {
        return Err(rv);
    }
    let mut all = Vec::new();
    loop {
        let mut buf = [0 as CK_OBJECT_HANDLE; 5];
        let mut n = 0;
        let rv = call!(C_FindObjects, h, buf.as_mut_ptr(), 5, &mut n);
        assert_eq!(rv, CKR_OK, "C_FindObjects: {}", ckr_name(rv));
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n as usize]);
        assert!(all.len() < 10_000, "C_FindObjects never ends");
    }
    ok!(call!(C_FindObjectsFinal, h));
    Ok(all)
}

/// The value a template gives `ty`, if exactly one well-formed one.
fn given(raw: &[(CK_ATTRIBUTE_TYPE, Option<Vec<u8>>)], ty: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
    raw.iter()
        .find(|(t, _)| *t == ty)
        .and_then(|(_, v)| v.as_deref())
}

fn ulong_of(v: &[u8]) -> Option<CK_ULONG> {
    Some(CK_ULONG::from_ne_bytes(v.try_into().ok()?))
}

/// Checks what the module made of `raw`.
fn check_created(
    h: CK_SESSION_HANDLE,
    o: CK_OBJECT_HANDLE,
    raw: &[(CK_ATTRIBUTE_TYPE, Option<Vec<u8>>)],
) {
    for ty in VERBATIM {
        if let Some(v) = given(raw, ty) {
            let (rv, got) = read(h, o, ty);
            if rv == CKR_OK {
                assert_eq!(got, v, "attribute {ty:#x} does not read back as given");
            }
        }
    }
    for ty in BOOLS {
        if let Some(v) = given(raw, ty) {
            if v.len() == 1 {
                let (rv, got) = read(h, o, ty);
                if rv == CKR_OK
                    && !matches!(ty, CKA_LOCAL | CKA_ALWAYS_SENSITIVE | CKA_NEVER_EXTRACTABLE)
                {
                    assert_eq!(got, [u8::from(v[0] != 0)], "boolean {ty:#x}");
                }
            }
        }
    }
    let (rv, class) = read(h, o, CKA_CLASS);
    assert_eq!(rv, CKR_OK);
    let class = ulong_of(&class).expect("CKA_CLASS is a CK_ULONG");
    assert_eq!(Some(&class.to_ne_bytes()[..]), given(raw, CKA_CLASS));
    // Found by its label and class.
    let (_, label) = read(h, o, CKA_LABEL);
    let mut t = Template::default();
    t.add(CKA_LABEL, &label).ulong(CKA_CLASS, class);
    let found = find(h, &mut t).expect("find by label");
    assert!(
        found.contains(&o),
        "a new object is not found by its label and class"
    );
    // Key material stays in.
    if matches!(class, CKO_PRIVATE_KEY | CKO_SECRET_KEY) {
        let (_, sensitive) = read(h, o, CKA_SENSITIVE);
        let (_, extractable) = read(h, o, CKA_EXTRACTABLE);
        if sensitive == [1] || extractable == [0] {
            for ty in SECRET {
                let (rv, _) = read(h, o, ty);
                assert_ne!(
                    rv, CKR_OK,
                    "key material {ty:#x} of a protected key was read"
                );
            }
        }
    }
}

struct Fixture {
    /// Keeps the User logged in across inputs.
    _anchor: CK_SESSION_HANDLE,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        env();
        let anchor = open(true);
        ok!(login(anchor, CKU_USER, USER_PIN));
        Fixture { _anchor: anchor }
    })
}

fuzz_target!(|data: &[u8]| {
    fixture();
    let mut r = Reader::new(data);
    let h = open(true);
    let keys = env().keys.all();
    let mut created: Vec<CK_OBJECT_HANDLE> = Vec::new();
    let mut dirty = false;
    for _ in 0..8 {
        if r.is_empty() {
            break;
        }
        let op = r.u8() % 6;
        let pick = |r: &mut Reader, created: &[CK_OBJECT_HANDLE]| -> CK_OBJECT_HANDLE {
            let b = r.u8() as usize;
            if !created.is_empty() && b.is_multiple_of(2) {
                created[b / 2 % created.len()]
            } else if b < 250 {
                keys[b % keys.len()]
            } else {
                r.u64() as CK_OBJECT_HANDLE
            }
        };
        match op {
            0 => {
                let mut t = r.template();
                let raw: Vec<(CK_ATTRIBUTE_TYPE, Option<Vec<u8>>)> = {
                    let p = t.ptr();
                    (0..t.len() as usize)
                        .map(|i| unsafe {
                            let a = &*p.add(i);
                            let v = (!a.pValue.is_null()).then(|| {
                                std::slice::from_raw_parts(
                                    a.pValue as *const u8,
                                    a.ulValueLen as usize,
                                )
                                .to_vec()
                            });
                            (a.type_, v)
                        })
                        .collect()
                };
                let mut o = 0;
                let rv = call!(C_CreateObject, h, t.ptr(), t.len(), &mut o);
                check_rv("C_CreateObject", rv);
                if rv == CKR_OK {
                    let token = given(&raw, CKA_TOKEN).is_some_and(|v| v.iter().any(|&b| b != 0));
                    dirty |= token;
                    // A template that names an attribute twice is inconsistent.
                    let mut types: Vec<_> = raw.iter().map(|(t, _)| *t).collect();
                    types.sort_unstable();
                    let n = types.len();
                    types.dedup();
                    assert_eq!(
                        n,
                        types.len(),
                        "a template with a duplicate attribute was accepted"
                    );
                    check_created(h, o, &raw);
                    created.push(o);
                }
            }
            1 => {
                let mut t = r.template();
                if let Ok(found) = find(h, &mut t) {
                    for o in found {
                        let (rv, _) = read(h, o, CKA_CLASS);
                        assert_eq!(rv, CKR_OK, "a found object is not readable");
                    }
                }
            }
            2 => {
                let o = pick(&mut r, &created);
                let n = r.u8() as usize % 10;
                let mut outs: Vec<(CK_ATTRIBUTE_TYPE, Out)> =
                    (0..n).map(|_| (r.attr_type(), r.output())).collect();
                let mut attrs: Vec<CK_ATTRIBUTE> = outs
                    .iter_mut()
                    .map(|(ty, out)| CK_ATTRIBUTE {
                        type_: *ty,
                        pValue: out.ptr() as CK_VOID_PTR,
                        ulValueLen: out.ul,
                    })
                    .collect();
                let p = if attrs.is_empty() {
                    std::ptr::null_mut()
                } else {
                    attrs.as_mut_ptr()
                };
                let rv = call!(C_GetAttributeValue, h, o, p, n as CK_ULONG);
                check_rv("C_GetAttributeValue", rv);
                let mut any_failed = false;
                for ((_, out), a) in outs.iter_mut().zip(&attrs) {
                    out.ul = a.ulValueLen;
                    let failed = a.ulValueLen == CK_UNAVAILABLE_INFORMATION;
                    any_failed |= failed;
                    out.check(
                        "C_GetAttributeValue",
                        if failed {
                            CKR_ATTRIBUTE_SENSITIVE
                        } else {
                            CKR_OK
                        },
                    );
                }
                if rv == CKR_OK {
                    assert!(!any_failed, "CKR_OK with an attribute marked unavailable");
                }
                if matches!(
                    rv,
                    CKR_ATTRIBUTE_SENSITIVE | CKR_ATTRIBUTE_TYPE_INVALID | CKR_BUFFER_TOO_SMALL
                ) {
                    assert!(
                        any_failed,
                        "{} with no attribute marked unavailable",
                        ckr_name(rv)
                    );
                }
            }
            3 => {
                let o = pick(&mut r, &created);
                let mut t = r.template();
                let rv = call!(C_SetAttributeValue, h, o, t.ptr(), t.len());
                check_rv("C_SetAttributeValue", rv);
                dirty |= rv == CKR_OK && !created.contains(&o);
            }
            4 => {
                let o = pick(&mut r, &created);
                let mut t = r.template();
                let mut copy = 0;
                let rv = call!(C_CopyObject, h, o, t.ptr(), t.len(), &mut copy);
                check_rv("C_CopyObject", rv);
                if rv == CKR_OK {
                    // The copy may be a token object.
                    dirty = true;
                    created.push(copy);
                }
            }
            _ => {
                let o = pick(&mut r, &created);
                let rv = call!(C_DestroyObject, h, o);
                check_rv("C_DestroyObject", rv);
                if rv == CKR_OK {
                    dirty |= !created.contains(&o);
                    created.retain(|&c| c != o);
                }
            }
        }
    }
    ok!(call!(C_CloseSession, h));
    if dirty {
        // Token objects were made or changed: start the next input from the template.
        reset();
        let anchor = open(true);
        ok!(login(anchor, CKU_USER, USER_PIN));
    }
});
