//! Random number generation (PKCS#11 3.0 section 5.15).

use pkcs11_sys::*;

use super::{input, token};
use crate::token::Error;

cryptoki_fn! {
    /// Fills the caller's buffer from aws-lc's DRBG.
    fn C_GenerateRandom(hSession: CK_SESSION_HANDLE, RandomData: CK_BYTE_PTR, ulRandomLen: CK_ULONG) {
        let token = token()?;
        if RandomData.is_null() && ulRandomLen != 0 {
            return Err(Error::ArgumentsBad);
        }
        let len = usize::try_from(ulRandomLen).map_err(|_| Error::ArgumentsBad)?;
        let out: &mut [u8] = if len == 0 {
            &mut []
        } else {
            std::slice::from_raw_parts_mut(RandomData, len)
        };
        token.generate_random(hSession, out)
    }
}

cryptoki_fn! {
    /// aws-lc's DRBG reseeds itself from the OS and takes no seed: CKR_RANDOM_SEED_NOT_SUPPORTED.
    fn C_SeedRandom(hSession: CK_SESSION_HANDLE, pSeed: CK_BYTE_PTR, ulSeedLen: CK_ULONG) {
        let token = token()?;
        input(pSeed, ulSeedLen)?;
        token.seed_random(hSession)
    }
}
