//! Random number generation (§5.15).

use pkcs11_sys::*;

use super::Reg;
use crate::case::*;
use crate::ctx::Ctx;
use crate::p11;

fn random(ctx: &mut Ctx, h: CK_SESSION_HANDLE, n: usize) -> Result<Vec<u8>, Failure> {
    let mut b = vec![0u8; n];
    let got = p11!(ctx.m, C_GenerateRandom(h, b.as_mut_ptr(), n as CK_ULONG));
    rv("C_GenerateRandom", got, CKR_OK)?;
    Ok(b)
}

/// The cases of this chapter, in run order.
pub fn cases() -> Vec<Case> {
    let mut r = Reg::new(Chapter::Random);
    r.add(
        "RNG-001",
        "5.15 C_GenerateRandom",
        "32 bytes in a R/O public session, twice",
        "CKR_OK, not all zero, the two differ",
        |ctx| {
            let h = ctx.open(false)?;
            let a = random(ctx, h, 32)?;
            let b = random(ctx, h, 32)?;
            ensure(a.iter().any(|&x| x != 0), || "32 zero bytes".into())?;
            ensure(a != b, || "two calls returned the same bytes".into())
        },
    );
    r.add(
        "RNG-002",
        "5.15 C_GenerateRandom",
        "NULL pRandomData with a non-zero length",
        "CKR_ARGUMENTS_BAD",
        |ctx| {
            let h = ctx.open(false)?;
            rv(
                "C_GenerateRandom(NULL, 16)",
                p11!(ctx.m, C_GenerateRandom(h, std::ptr::null_mut(), 16)),
                CKR_ARGUMENTS_BAD,
            )
        },
    );
    r.add(
        "RNG-003",
        "5.15 C_GenerateRandom",
        "a closed session handle",
        "CKR_SESSION_HANDLE_INVALID",
        |ctx| {
            let h = ctx.open(false)?;
            ctx.close(h);
            let mut b = [0u8; 8];
            rv(
                "C_GenerateRandom(closed)",
                p11!(ctx.m, C_GenerateRandom(h, b.as_mut_ptr(), 8)),
                CKR_SESSION_HANDLE_INVALID,
            )
        },
    );
    r.add(
        "RNG-004",
        "5.15 C_GenerateRandom",
        "a zero length",
        "CKR_OK",
        |ctx| {
            let h = ctx.open(false)?;
            let mut b = [0u8; 1];
            rv(
                "C_GenerateRandom(len 0)",
                p11!(ctx.m, C_GenerateRandom(h, b.as_mut_ptr(), 0)),
                CKR_OK,
            )
        },
    );
    r.add(
        "RNG-005",
        "5.15 C_SeedRandom",
        "seeding the generator",
        "CKR_OK or CKR_RANDOM_SEED_NOT_SUPPORTED",
        |ctx| {
            let h = ctx.open(false)?;
            let mut seed = *b"conformance seed";
            let got = p11!(
                ctx.m,
                C_SeedRandom(h, seed.as_mut_ptr(), seed.len() as CK_ULONG)
            );
            optional("C_SeedRandom", got)?;
            rv_in(
                "C_SeedRandom",
                got,
                &[CKR_OK, CKR_RANDOM_SEED_NOT_SUPPORTED],
            )
        },
    );
    r.add(
        "RNG-006",
        "5.15 C_GenerateRandom",
        "4096 bytes cover the byte values",
        "at least 200 distinct values",
        |ctx| {
            let h = ctx.open(false)?;
            let b = random(ctx, h, 4096)?;
            let mut seen = [false; 256];
            for x in &b {
                seen[*x as usize] = true;
            }
            let n = seen.iter().filter(|s| **s).count();
            ensure(n >= 200, || {
                format!("only {n} distinct byte values in 4096 bytes")
            })
        },
    );
    r.done()
}
