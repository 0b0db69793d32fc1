//! Cryptography over aws-lc-rs. Knows nothing of sessions or PKCS#11 state.

pub mod aes;
pub mod der;
pub mod digest;
pub mod ec;
pub mod eddsa;
pub mod error;
pub mod hmac;
pub mod master_key;
pub mod rng;
pub mod rsa;
#[cfg(test)]
pub mod testutil;

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
