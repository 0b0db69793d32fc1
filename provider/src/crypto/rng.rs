//! aws-lc's DRBG behind the `rand_core` 0.6 traits, for the pure-Rust fallback crates.

use rsa::rand_core::{CryptoRng, RngCore};

use super::error::{CryptoError, CryptoResult};

/// `RngCore::fill_bytes` cannot report failure, so a failure is recorded here and
/// [`LcRng::check`] turns the operation's result into an error (aws-lc aborts rather than
/// fail, in practice). On failure the buffer is filled with ones, never zeros, so that
/// loops drawing non-zero bytes still end.
pub(crate) struct LcRng {
    failed: bool,
}

impl LcRng {
    pub(crate) fn new() -> Self {
        LcRng { failed: false }
    }

    /// `r`, unless the generator failed while it was being computed.
    pub(crate) fn check<T>(&self, r: T) -> CryptoResult<T> {
        if self.failed {
            Err(CryptoError::Internal("random generator failed"))
        } else {
            Ok(r)
        }
    }
}

impl RngCore for LcRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        if super::random_fill(dest).is_err() {
            self.failed = true;
            dest.fill(1);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        super::random_fill(dest).map_err(|_| rsa::rand_core::Error::from(std::num::NonZeroU32::MIN))
    }
}

impl CryptoRng for LcRng {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_and_differs() {
        let mut rng = LcRng::new();
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut a);
        rng.fill_bytes(&mut b);
        assert_ne!(a, b);
        assert_ne!(rng.next_u64(), rng.next_u64());
        assert!(rng.try_fill_bytes(&mut a).is_ok());
        assert_eq!(rng.check(5), Ok(5));
    }
}
