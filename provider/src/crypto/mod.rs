//! Cryptography over aws-lc-rs. Knows nothing of sessions or PKCS#11 state.

pub mod master_key;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// Fills `out` with bytes from the system CSPRNG (aws-lc's DRBG).
pub fn random_fill(out: &mut [u8]) -> Result<(), aws_lc_rs::error::Unspecified> {
    SystemRandom::new().fill(out)
}

/// A fresh random array.
pub fn random_array<const N: usize>() -> Result<[u8; N], aws_lc_rs::error::Unspecified> {
    let mut a = [0u8; N];
    random_fill(&mut a)?;
    Ok(a)
}
