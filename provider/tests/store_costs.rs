//! What durable writes and opening cost, for comparing builds (skipped unless KEY4C_COSTS is
//! set; run with `KEY4C_COSTS=1 cargo test --release -p key4c --test store_costs`, and
//! `KEY4C_COST_MODULE=/path/to/other/libkey4c_pkcs11.so` to time another build of the module).
//! Prints `COST` lines: median and 90th percentile of a token P-256 key pair generation, of a
//! failed C_Login (each one a durable write of the PIN failure counter), and of a new
//! process's C_Initialize to its first signature on a store of 10,000 token objects.

#![allow(clippy::macro_metavars_in_unsafe)]

mod common;
use common::*;

use std::ptr::null_mut;
use std::time::{Duration, Instant};

fn module() -> Lib {
    match std::env::var_os("KEY4C_COST_MODULE") {
        Some(p) => Lib::load_from(std::path::Path::new(&p)),
        None => Lib::load(),
    }
}

fn stats(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
    eprintln!(
        "REPORT COST {name}: n={} median {:.1?} p90 {:.1?}",
        v.len(),
        at(0.5),
        at(0.9)
    );
}

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

fn keygen(lib: &Lib, h: CK_SESSION_HANDLE, label: &[u8]) -> (CK_RV, CK_OBJECT_HANDLE) {
    let mut pub_t = Tpl::new(&[
        (CKA_TOKEN, A::B(true)),
        (CKA_EC_PARAMS, A::S(P256)),
        (CKA_LABEL, A::S(label)),
    ]);
    let mut priv_t = Tpl::new(&[(CKA_TOKEN, A::B(true)), (CKA_LABEL, A::S(label))]);
    let mut m = CK_MECHANISM {
        mechanism: CKM_EC_KEY_PAIR_GEN,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let (mut p, mut q) = (0, 0);
    let rv = call!(
        lib,
        C_GenerateKeyPair,
        h,
        &mut m,
        pub_t.ptr(),
        pub_t.len(),
        priv_t.ptr(),
        priv_t.len(),
        &mut p,
        &mut q
    );
    (rv, q)
}

#[test]
fn durable_write_costs() {
    if std::env::var_os("KEY4C_COSTS").is_none() {
        return;
    }
    isolated_reporting("durable_write_costs", "", || {
        let lib = module();
        lib.init();
        lib.provision();
        let h = lib.user_session();
        let mut gen = Vec::new();
        for i in 0..200 {
            let t = Instant::now();
            let (rv, _) = keygen(&lib, h, format!("k{i}").as_bytes());
            gen.push(t.elapsed());
            assert_rv!(rv, CKR_OK);
        }
        stats("C_GenerateKeyPair P-256 token key pair", gen);
        assert_rv!(lib.logout(h), CKR_OK);
        let mut failed = Vec::new();
        for _ in 0..100 {
            let t = Instant::now();
            let rv = lib.login(h, CKU_USER, WRONG_PIN);
            failed.push(t.elapsed());
            assert_rv!(rv, CKR_PIN_INCORRECT);
            // The right PIN resets the counter (another durable write, not timed).
            assert_rv!(lib.login(h, CKU_USER, USER_PIN), CKR_OK);
            assert_rv!(lib.logout(h), CKR_OK);
        }
        stats("C_Login wrong PIN (durable failure counter)", failed);
        for line in std::fs::read_to_string("/proc/self/mounts")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.split(' ').nth(1) == Some("/tmp") || l.split(' ').nth(1) == Some("/"))
        {
            eprintln!("REPORT COST filesystem: {line}");
        }
        assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
    });
}

#[test]
fn cold_start_with_10000_objects() {
    if std::env::var_os("KEY4C_COSTS").is_none() {
        return;
    }
    const NAME: &str = "cold_start_with_10000_objects";
    if step().as_deref() == Some("start") {
        let t = Instant::now();
        let lib = module();
        lib.init();
        let h = lib.user_session();
        let keys = lib.find(
            h,
            &[
                (CKA_LABEL, A::S(b"signer")),
                (CKA_CLASS, A::U(CKO_PRIVATE_KEY)),
            ],
        );
        let mut m = CK_MECHANISM {
            mechanism: CKM_ECDSA,
            pParameter: null_mut(),
            ulParameterLen: 0,
        };
        assert_rv!(call!(lib, C_SignInit, h, &mut m, keys[0]), CKR_OK);
        let digest = [7u8; 32];
        let mut sig = [0u8; 64];
        let mut len = 64;
        assert_rv!(
            call!(
                lib,
                C_Sign,
                h,
                digest.as_ptr() as *mut _,
                32,
                sig.as_mut_ptr(),
                &mut len
            ),
            CKR_OK
        );
        println!("@@US {}", t.elapsed().as_micros());
        assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
        return;
    }
    isolated_reporting(NAME, "", || {
        {
            let lib = module();
            lib.init();
            lib.provision();
            let h = lib.user_session();
            assert_rv!(keygen(&lib, h, b"signer").0, CKR_OK);
            for i in 0..10_000 {
                lib.create(
                    h,
                    &[
                        (CKA_CLASS, A::U(CKO_DATA)),
                        (CKA_TOKEN, A::B(true)),
                        (CKA_LABEL, A::S(format!("obj-{i}").as_bytes())),
                        (CKA_VALUE, A::S(&[i as u8; 64])),
                    ],
                )
                .expect("create");
            }
            assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
        }
        let store = store_dir();
        let size: u64 = files_under(&store).values().map(|v| v.len() as u64).sum();
        eprintln!("REPORT COST store of 10,001 objects: {size} bytes");
        let mut v = Vec::new();
        for _ in 0..15 {
            let out = run_step_limited(NAME, "start", &[], Duration::from_secs(60)).expect("start");
            let text = String::from_utf8_lossy(&out.stdout);
            let us: u64 = text
                .lines()
                .find_map(|l| {
                    l.split_once("@@US ")
                        .map(|(_, v)| v.trim().parse().unwrap())
                })
                .unwrap_or_else(|| panic!("no timing: {text}"));
            v.push(Duration::from_micros(us));
        }
        stats(
            "module load + C_Initialize to first signature, 10,001 objects",
            v,
        );
    });
}
