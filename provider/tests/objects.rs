//! Objects through the built `.so`: create, find, read, change, copy, destroy; the attribute
//! policy, who may do what (spec section 4), and persistence of token objects.

// `call!` passes raw pointers to the module: that is what these tests are for.
#![allow(clippy::macro_metavars_in_unsafe)]

mod common;
use common::*;
use std::ptr::null_mut;
use A::{B, S, U};

const AES_KEY: &[u8] = &[7u8; 32];

#[test]
fn data_objects_lifecycle() {
    isolated("data_objects_lifecycle", "", || {
        if step().is_some() {
            // The next process sees the token object, not the session ones.
            let lib = Lib::load();
            lib.init();
            let h = lib.user_session();
            let found = lib.find(h, &[(CKA_CLASS, U(CKO_DATA))]);
            assert_eq!(found.len(), 1);
            assert_eq!(lib.attr(h, found[0], CKA_LABEL), b"kept2");
            assert_eq!(lib.attr(h, found[0], CKA_VALUE), b"v2");
            return;
        }
        let lib = Lib::load();
        lib.init();
        lib.provision();
        // A public session object needs no login, even in a R/O session.
        let ro = lib.open(false).unwrap();
        let d = lib
            .create(
                ro,
                &[
                    (CKA_CLASS, U(CKO_DATA)),
                    (CKA_LABEL, S(b"note")),
                    (CKA_VALUE, S(b"hello")),
                ],
            )
            .unwrap();
        assert_eq!(lib.attr(ro, d, CKA_VALUE), b"hello");
        assert_eq!(lib.attr(ro, d, CKA_CLASS), ul(CKO_DATA));
        assert_eq!(lib.attr(ro, d, CKA_TOKEN), [0]);
        assert_eq!(lib.attr(ro, d, CKA_PRIVATE), [0]);
        assert_eq!(lib.attr(ro, d, CKA_APPLICATION), b"");
        assert_eq!(lib.find(ro, &[(CKA_LABEL, S(b"note"))]), vec![d]);
        assert_eq!(
            lib.find(ro, &[(CKA_LABEL, S(b"other"))]),
            Vec::<CK_OBJECT_HANDLE>::new()
        );
        // A token object needs the User, then a R/W session.
        assert_eq!(
            lib.create(ro, &[(CKA_CLASS, U(CKO_DATA)), (CKA_TOKEN, B(true))]),
            Err(CKR_USER_NOT_LOGGED_IN)
        );
        assert_eq!(
            lib.create(ro, &[(CKA_CLASS, U(CKO_DATA)), (CKA_PRIVATE, B(true))]),
            Err(CKR_USER_NOT_LOGGED_IN)
        );
        assert_rv!(lib.login(ro, CKU_USER, USER_PIN), CKR_OK);
        assert_eq!(
            lib.create(ro, &[(CKA_CLASS, U(CKO_DATA)), (CKA_TOKEN, B(true))]),
            Err(CKR_SESSION_READ_ONLY)
        );
        let rw = lib.open_rw();
        let t = lib
            .create(
                rw,
                &[
                    (CKA_CLASS, U(CKO_DATA)),
                    (CKA_TOKEN, B(true)),
                    (CKA_PRIVATE, B(true)),
                    (CKA_LABEL, S(b"kept")),
                ],
            )
            .unwrap();
        // Change, copy, destroy.
        assert_rv!(
            lib.set_attrs(rw, t, &[(CKA_VALUE, S(b"v2")), (CKA_LABEL, S(b"kept2"))]),
            CKR_OK
        );
        assert_eq!(
            lib.find(rw, &[(CKA_LABEL, S(b"kept"))]),
            Vec::<CK_OBJECT_HANDLE>::new()
        );
        assert_eq!(lib.find(rw, &[(CKA_LABEL, S(b"kept2"))]), vec![t]);
        assert_rv!(
            lib.set_attrs(rw, t, &[(CKA_CLASS, U(CKO_DATA))]),
            CKR_ATTRIBUTE_READ_ONLY
        );
        assert_rv!(
            lib.set_attrs(rw, t, &[(CKA_MODULUS, S(b"x"))]),
            CKR_ATTRIBUTE_TYPE_INVALID
        );
        let mut tpl = Tpl::new(&[(CKA_TOKEN, B(false)), (CKA_LABEL, S(b"copy"))]);
        let mut c = 0;
        assert_rv!(
            call!(lib, C_CopyObject, rw, t, tpl.ptr(), tpl.len(), &mut c),
            CKR_OK
        );
        assert_eq!(lib.attr(rw, c, CKA_VALUE), b"v2");
        assert_eq!(lib.attr(rw, c, CKA_TOKEN), [0]);
        assert_rv!(call!(lib, C_DestroyObject, rw, c), CKR_OK);
        assert_rv!(
            call!(lib, C_DestroyObject, rw, c),
            CKR_OBJECT_HANDLE_INVALID
        );
        // Private objects disappear at logout; session objects with their session.
        assert_rv!(lib.logout(rw), CKR_OK);
        let mut size = 0;
        assert_rv!(
            call!(lib, C_GetObjectSize, rw, t, &mut size),
            CKR_OBJECT_HANDLE_INVALID
        );
        assert_eq!(lib.find(rw, &[(CKA_CLASS, U(CKO_DATA))]), vec![d]);
        assert_rv!(lib.close(ro), CKR_OK);
        assert_eq!(
            lib.find(rw, &[(CKA_CLASS, U(CKO_DATA))]),
            Vec::<CK_OBJECT_HANDLE>::new()
        );
        assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
        // The token object is there for the next process.
        assert!(run_step("data_objects_lifecycle", "reopen").success());
    });
}

#[test]
fn token_objects_persist() {
    const NAME: &str = "token_objects_persist";
    isolated(NAME, "", || match step().as_deref() {
        None => {
            let lib = Lib::load();
            lib.init();
            lib.provision();
            let h = lib.user_session();
            lib.create(
                h,
                &[
                    (CKA_CLASS, U(CKO_DATA)),
                    (CKA_TOKEN, B(true)),
                    (CKA_LABEL, S(b"one")),
                    (CKA_VALUE, S(b"1")),
                ],
            )
            .unwrap();
            lib.create(
                h,
                &[
                    (CKA_CLASS, U(CKO_SECRET_KEY)),
                    (CKA_KEY_TYPE, U(CKK_AES)),
                    (CKA_TOKEN, B(true)),
                    (CKA_LABEL, S(b"aes")),
                    (CKA_VALUE, S(AES_KEY)),
                    (CKA_SENSITIVE, B(false)),
                    (CKA_EXTRACTABLE, B(true)),
                ],
            )
            .unwrap();
            assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
            // The key bytes are not in the store in clear.
            let mut files = Vec::new();
            for e in std::fs::read_dir(store_dir()).unwrap() {
                let p = e.unwrap().path();
                if p.is_file() {
                    files.push(std::fs::read(p).unwrap());
                }
            }
            assert!(files
                .iter()
                .all(|f| !f.windows(AES_KEY.len()).any(|w| w == AES_KEY)));
            assert!(run_step(NAME, "reopen").success());
        }
        Some("reopen") => {
            let lib = Lib::load();
            lib.init();
            let h = lib.open(false).unwrap();
            let one = lib.find(h, &[(CKA_LABEL, S(b"one"))]);
            assert_eq!(one.len(), 1);
            assert_eq!(lib.attr(h, one[0], CKA_VALUE), b"1");
            // The key is private: invisible until the User logs in; then its value opens.
            assert_eq!(
                lib.find(h, &[(CKA_LABEL, S(b"aes"))]),
                Vec::<CK_OBJECT_HANDLE>::new()
            );
            assert_rv!(lib.login(h, CKU_USER, USER_PIN), CKR_OK);
            let aes = lib.find(h, &[(CKA_LABEL, S(b"aes"))]);
            assert_eq!(aes.len(), 1);
            assert_eq!(lib.attr(h, aes[0], CKA_VALUE), AES_KEY);
            assert_eq!(lib.attr(h, aes[0], CKA_VALUE_LEN), ul(32));
        }
        Some(other) => panic!("unknown step {other}"),
    });
}

#[test]
fn secret_keys_default_to_private_sensitive_unextractable() {
    isolated(
        "secret_keys_default_to_private_sensitive_unextractable",
        "",
        || {
            let lib = Lib::load();
            lib.init();
            lib.provision();
            let pubs = lib.open_rw();
            // Keys need the User, even as session objects.
            let aes = [
                (CKA_CLASS, U(CKO_SECRET_KEY)),
                (CKA_KEY_TYPE, U(CKK_AES)),
                (CKA_VALUE, S(AES_KEY)),
            ];
            assert_eq!(lib.create(pubs, &aes), Err(CKR_USER_NOT_LOGGED_IN));
            assert_rv!(lib.login(pubs, CKU_USER, USER_PIN), CKR_OK);
            let k = lib.create(pubs, &aes).unwrap();
            assert_eq!(lib.attr(pubs, k, CKA_PRIVATE), [1]);
            assert_eq!(lib.attr(pubs, k, CKA_SENSITIVE), [1]);
            assert_eq!(lib.attr(pubs, k, CKA_EXTRACTABLE), [0]);
            assert_eq!(lib.attr(pubs, k, CKA_LOCAL), [0]);
            assert_eq!(lib.attr(pubs, k, CKA_ALWAYS_SENSITIVE), [0]);
            assert_eq!(lib.attr(pubs, k, CKA_NEVER_EXTRACTABLE), [0]);
            assert_eq!(
                lib.attr(pubs, k, CKA_KEY_GEN_MECHANISM),
                ul(CK_UNAVAILABLE_INFORMATION)
            );
            assert_eq!(lib.attr(pubs, k, CKA_VALUE_LEN), ul(32));
            assert_eq!(
                lib.attr_rv(pubs, k, CKA_VALUE),
                (CKR_ATTRIBUTE_SENSITIVE, CK_UNAVAILABLE_INFORMATION)
            );
            // Sensitive can only go on, extractable only off.
            assert_rv!(
                lib.set_attrs(pubs, k, &[(CKA_SENSITIVE, B(false))]),
                CKR_ATTRIBUTE_READ_ONLY
            );
            assert_rv!(
                lib.set_attrs(pubs, k, &[(CKA_EXTRACTABLE, B(true))]),
                CKR_ATTRIBUTE_READ_ONLY
            );
            assert_rv!(
                lib.set_attrs(pubs, k, &[(CKA_LOCAL, B(true))]),
                CKR_ATTRIBUTE_READ_ONLY
            );
            // Template errors.
            assert_eq!(
                lib.create(
                    pubs,
                    &[(CKA_CLASS, U(CKO_SECRET_KEY)), (CKA_KEY_TYPE, U(CKK_AES))]
                ),
                Err(CKR_TEMPLATE_INCOMPLETE)
            );
            assert_eq!(
                lib.create(pubs, &[(CKA_KEY_TYPE, U(CKK_AES)), (CKA_VALUE, S(AES_KEY))]),
                Err(CKR_TEMPLATE_INCOMPLETE)
            );
            assert_eq!(
                lib.create(
                    pubs,
                    &[
                        (CKA_CLASS, U(CKO_SECRET_KEY)),
                        (CKA_KEY_TYPE, U(CKK_AES)),
                        (CKA_VALUE, S(&[1; 15]))
                    ]
                ),
                Err(CKR_ATTRIBUTE_VALUE_INVALID)
            );
            assert_eq!(
                lib.create(
                    pubs,
                    &[
                        (CKA_CLASS, U(CKO_SECRET_KEY)),
                        (CKA_KEY_TYPE, U(CKK_AES)),
                        (CKA_VALUE, S(AES_KEY)),
                        (CKA_LOCAL, B(true))
                    ]
                ),
                Err(CKR_ATTRIBUTE_READ_ONLY)
            );
            assert_eq!(
                lib.create(
                    pubs,
                    &[
                        (CKA_CLASS, U(CKO_SECRET_KEY)),
                        (CKA_KEY_TYPE, U(CKK_AES)),
                        (CKA_VALUE, S(AES_KEY)),
                        (CKA_MODULUS, S(b"1"))
                    ]
                ),
                Err(CKR_ATTRIBUTE_TYPE_INVALID)
            );
            assert_eq!(
                lib.create(
                    pubs,
                    &[
                        (CKA_CLASS, U(CKO_SECRET_KEY)),
                        (CKA_CLASS, U(CKO_SECRET_KEY)),
                        (CKA_KEY_TYPE, U(CKK_AES)),
                        (CKA_VALUE, S(AES_KEY))
                    ]
                ),
                Err(CKR_TEMPLATE_INCONSISTENT)
            );
            assert_eq!(
                lib.create(pubs, &[(CKA_CLASS, U(0x7777)), (CKA_VALUE, S(AES_KEY))]),
                Err(CKR_ATTRIBUTE_VALUE_INVALID)
            );
            assert_eq!(
                lib.create(pubs, &[(0x7fff_0001, U(1))]),
                Err(CKR_ATTRIBUTE_TYPE_INVALID)
            );
            assert_eq!(
                lib.create(pubs, &[(CKA_CLASS, S(&[1, 2]))]),
                Err(CKR_ATTRIBUTE_VALUE_INVALID)
            );
            // An extractable, non-sensitive key reveals its value.
            let open = lib
                .create(
                    pubs,
                    &[
                        (CKA_CLASS, U(CKO_SECRET_KEY)),
                        (CKA_KEY_TYPE, U(CKK_GENERIC_SECRET)),
                        (CKA_VALUE, S(b"0123456789abcdef0123456789abcdef")),
                        (CKA_SENSITIVE, B(false)),
                        (CKA_EXTRACTABLE, B(true)),
                    ],
                )
                .unwrap();
            assert_eq!(
                lib.attr(pubs, open, CKA_VALUE),
                b"0123456789abcdef0123456789abcdef"
            );
            // The SO sees no private object.
            assert_rv!(lib.logout(pubs), CKR_OK);
            assert_rv!(lib.login(pubs, CKU_SO, SO_PIN), CKR_OK);
            assert_eq!(lib.find(pubs, &[]), Vec::<CK_OBJECT_HANDLE>::new());
            assert_eq!(lib.attr_rv(pubs, k, CKA_LABEL).0, CKR_OBJECT_HANDLE_INVALID);
        },
    );
}

#[test]
fn get_attribute_value_processes_every_attribute() {
    isolated("get_attribute_value_processes_every_attribute", "", || {
        let lib = Lib::load();
        lib.init();
        lib.provision();
        let h = lib.user_session();
        let k = lib
            .create(
                h,
                &[
                    (CKA_CLASS, U(CKO_SECRET_KEY)),
                    (CKA_KEY_TYPE, U(CKK_AES)),
                    (CKA_VALUE, S(AES_KEY)),
                    (CKA_LABEL, S(b"abc")),
                ],
            )
            .unwrap();
        let mut label = [0u8; 2];
        let mut class = [0u8; 8];
        let mut value = [0u8; 32];
        let mut attrs = [
            CK_ATTRIBUTE {
                type_: CKA_LABEL,
                pValue: label.as_mut_ptr() as CK_VOID_PTR,
                ulValueLen: 2,
            },
            CK_ATTRIBUTE {
                type_: CKA_CLASS,
                pValue: class.as_mut_ptr() as CK_VOID_PTR,
                ulValueLen: 8,
            },
            CK_ATTRIBUTE {
                type_: CKA_MODULUS,
                pValue: null_mut(),
                ulValueLen: 0,
            },
            CK_ATTRIBUTE {
                type_: CKA_ID,
                pValue: null_mut(),
                ulValueLen: 0,
            },
        ];
        assert_rv!(
            call!(lib, C_GetAttributeValue, h, k, attrs.as_mut_ptr(), 4),
            CKR_ATTRIBUTE_TYPE_INVALID
        );
        assert_eq!(attrs[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        assert_eq!(attrs[1].ulValueLen, 8);
        assert_eq!(class, CKO_SECRET_KEY.to_ne_bytes());
        assert_eq!(attrs[2].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        assert_eq!(attrs[3].ulValueLen, 0);
        // Only too small: CKR_BUFFER_TOO_SMALL; sensitive beats everything.
        attrs[0].ulValueLen = 2;
        assert_rv!(
            call!(lib, C_GetAttributeValue, h, k, attrs.as_mut_ptr(), 2),
            CKR_BUFFER_TOO_SMALL
        );
        attrs[0].ulValueLen = 2;
        attrs[2] = CK_ATTRIBUTE {
            type_: CKA_VALUE,
            pValue: value.as_mut_ptr() as CK_VOID_PTR,
            ulValueLen: 32,
        };
        assert_rv!(
            call!(lib, C_GetAttributeValue, h, k, attrs.as_mut_ptr(), 4),
            CKR_ATTRIBUTE_SENSITIVE
        );
        assert_eq!(attrs[2].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        assert_eq!(value, [0u8; 32]);
        assert_rv!(
            call!(lib, C_GetAttributeValue, h, k, null_mut(), 1),
            CKR_ARGUMENTS_BAD
        );
        assert_rv!(
            call!(lib, C_GetAttributeValue, h, k + 1000, attrs.as_mut_ptr(), 1),
            CKR_OBJECT_HANDLE_INVALID
        );
        assert_rv!(
            call!(lib, C_GetAttributeValue, h + 1000, k, attrs.as_mut_ptr(), 1),
            CKR_SESSION_HANDLE_INVALID
        );
    });
}

#[test]
fn find_state_machine_and_index() {
    isolated("find_state_machine_and_index", "", || {
        let lib = Lib::load();
        lib.init();
        lib.provision();
        let h = lib.user_session();
        let mut made = Vec::new();
        for i in 0..20u8 {
            let label = format!("obj{}", i % 10);
            made.push(
                lib.create(
                    h,
                    &[
                        (CKA_CLASS, U(CKO_DATA)),
                        (CKA_TOKEN, B(i % 2 == 0)),
                        (CKA_LABEL, S(label.as_bytes())),
                    ],
                )
                .unwrap(),
            );
        }
        assert_eq!(
            lib.find(h, &[(CKA_LABEL, S(b"obj3"))]),
            vec![made[3], made[13]]
        );
        assert_eq!(
            lib.find(h, &[(CKA_LABEL, S(b"obj3")), (CKA_TOKEN, B(false))]),
            vec![made[3], made[13]]
        );
        assert_eq!(
            lib.find(h, &[(CKA_LABEL, S(b"obj4")), (CKA_TOKEN, B(true))]),
            vec![made[4], made[14]]
        );
        assert_eq!(lib.find(h, &[(CKA_CLASS, U(CKO_DATA))]).len(), 20);
        assert_eq!(
            lib.find(h, &[(0x7fff_0001, U(1))]),
            Vec::<CK_OBJECT_HANDLE>::new()
        );
        let mut n = 0;
        let mut out = [0; 4];
        assert_rv!(
            call!(lib, C_FindObjects, h, out.as_mut_ptr(), 4, &mut n),
            CKR_OPERATION_NOT_INITIALIZED
        );
        assert_rv!(
            call!(lib, C_FindObjectsFinal, h),
            CKR_OPERATION_NOT_INITIALIZED
        );
        assert_rv!(call!(lib, C_FindObjectsInit, h, null_mut(), 0), CKR_OK);
        assert_rv!(
            call!(lib, C_FindObjectsInit, h, null_mut(), 0),
            CKR_OPERATION_ACTIVE
        );
        assert_rv!(
            call!(lib, C_FindObjects, h, null_mut(), 4, &mut n),
            CKR_ARGUMENTS_BAD
        );
        assert_rv!(
            call!(lib, C_FindObjects, h, out.as_mut_ptr(), 4, null_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_rv!(
            call!(lib, C_FindObjects, h, out.as_mut_ptr(), 4, &mut n),
            CKR_OK
        );
        assert_eq!(n, 4);
        assert_eq!(out.to_vec(), made[..4].to_vec());
        assert_rv!(call!(lib, C_FindObjectsFinal, h), CKR_OK);
        assert_rv!(
            call!(lib, C_FindObjectsInit, h, null_mut(), 3),
            CKR_ARGUMENTS_BAD
        );
        // C_SessionCancel ends only the operations it names.
        assert_rv!(call!(lib, C_FindObjectsInit, h, null_mut(), 0), CKR_OK);
        assert_rv!(call!(lib, C_SessionCancel, h, CKF_SIGN), CKR_OK);
        assert_rv!(
            call!(lib, C_FindObjects, h, out.as_mut_ptr(), 4, &mut n),
            CKR_OK
        );
        assert_rv!(call!(lib, C_SessionCancel, h, CKF_FIND_OBJECTS), CKR_OK);
        assert_rv!(
            call!(lib, C_FindObjects, h, out.as_mut_ptr(), 4, &mut n),
            CKR_OPERATION_NOT_INITIALIZED
        );
        assert_rv!(
            call!(lib, C_SessionCancel, h + 100, CKF_FIND_OBJECTS),
            CKR_SESSION_HANDLE_INVALID
        );
    });
}

/// The child-process helpers count what ran: a child run of a test that does not exist (a
/// renamed one) starts no test and exits 0, and that fails the parent instead of passing.
#[test]
fn a_child_run_of_a_missing_test_fails_its_parent() {
    let caught = std::panic::catch_unwind(|| run_step("no_such_test_was_renamed", "step"));
    let err = caught.expect_err("a child run that ran no test passed");
    let msg = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(
        msg.contains("child run of no_such_test_was_renamed: not exactly one test started"),
        "{msg}"
    );
    assert_eq!(tests_started("running 0 tests\n"), Some(0));
    assert_eq!(tests_started("\nrunning 1 test\ntest x ... ok\n"), Some(1));
    assert_eq!(tests_started("nothing"), None);
}
