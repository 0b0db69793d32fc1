//! The token master key and its wrapping under PIN-derived keys (spec section 7).
//!
//! A PIN never reaches the store. From a PIN we derive a key-encryption key with
//! PBKDF2-HMAC-SHA256 (random 16-byte salt, stored iteration count) and seal the master key
//! under it with AES-256-GCM. A PIN is correct exactly when that seal opens: the sealed master
//! key is the PIN verifier.
//!
//! The cost is what an offline guess at a copied store costs: OWASP's password storage
//! guidance asks 600,000 iterations of PBKDF2-HMAC-SHA256 (or Argon2id at 19 MiB, t = 2).
//! A wrapped key keeps the iteration count it was made with, so stores made at another count
//! open as they are; a PIN set, changed or re-initialised is wrapped at the configured count
//! (README, "Store": the choice and the measurements).

use std::num::NonZeroU32;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::pbkdf2;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Length of the master key and of every key-encryption key, in bytes.
pub const KEY_LEN: usize = 32;
const SALT_LEN: usize = 16;

/// The lowest PBKDF2 iteration count the token accepts from its configuration.
pub const MIN_KDF_ITERATIONS: u32 = 1_000;
/// The highest PBKDF2 iteration count the token accepts, from its configuration or its store
/// (about ten seconds per PIN check on one core).
pub const MAX_KDF_ITERATIONS: u32 = 10_000_000;
/// The default PBKDF2 iteration count: OWASP's for PBKDF2-HMAC-SHA256 (it was 100,000 before
/// 2026-12; stores wrapped at that count are rewrapped at this one when their PIN changes).
pub const DEFAULT_KDF_ITERATIONS: u32 = 600_000;

/// The random key that encrypts every secret in the store. Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; KEY_LEN]);

impl MasterKey {
    /// A new random master key.
    pub fn generate() -> Result<Self, aws_lc_rs::error::Unspecified> {
        Ok(MasterKey(super::random_array()?))
    }

    /// The raw key bytes, for sealing records.
    pub fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Seals `plaintext` under this key; `aad` binds it to its place in the store.
    pub fn seal(
        &self,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Sealed, aws_lc_rs::error::Unspecified> {
        seal(&self.0, aad, plaintext)
    }

    /// Opens what [`MasterKey::seal`] sealed with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &Sealed) -> Option<Zeroizing<Vec<u8>>> {
        open(&self.0, aad, sealed)
    }
}

/// AES-256-GCM ciphertext with its nonce (tag appended to the ciphertext).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// The 96-bit GCM nonce, random per seal.
    pub nonce: [u8; NONCE_LEN],
    /// Ciphertext followed by the 16-byte tag.
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

/// The master key sealed under a key derived from one role's PIN.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedMasterKey {
    /// PBKDF2 salt.
    pub salt: [u8; SALT_LEN],
    /// PBKDF2 iteration count used when this PIN was set.
    pub iterations: u32,
    /// The sealed master key.
    pub sealed: Sealed,
}

impl WrappedMasterKey {
    /// Wraps `master` under `pin` with a fresh salt; `aad` names the role.
    pub fn wrap(
        master: &MasterKey,
        pin: &[u8],
        iterations: u32,
        aad: &[u8],
    ) -> Result<Self, aws_lc_rs::error::Unspecified> {
        let salt = super::random_array()?;
        let iterations = iterations.max(MIN_KDF_ITERATIONS);
        let kek = derive_kek(pin, &salt, iterations);
        let sealed = seal(kek.as_ref(), aad, master.bytes())?;
        Ok(WrappedMasterKey {
            salt,
            iterations,
            sealed,
        })
    }

    /// The master key if `pin` is the PIN this was wrapped under, else `None`.
    pub fn unwrap_with(&self, pin: &[u8], aad: &[u8]) -> Option<MasterKey> {
        let kek = derive_kek(pin, &self.salt, self.iterations);
        let plain = open(kek.as_ref(), aad, &self.sealed)?;
        let mut key = [0u8; KEY_LEN];
        if plain.len() != KEY_LEN {
            return None;
        }
        key.copy_from_slice(&plain);
        Some(MasterKey(key))
    }
}

fn derive_kek(pin: &[u8], salt: &[u8], iterations: u32) -> Zeroizing<[u8; KEY_LEN]> {
    let mut kek = Zeroizing::new([0u8; KEY_LEN]);
    let n = NonZeroU32::new(iterations.max(1)).unwrap_or(NonZeroU32::MIN);
    pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, n, salt, pin, kek.as_mut());
    kek
}

fn seal(key: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Sealed, aws_lc_rs::error::Unspecified> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key)?);
    let nonce: [u8; NONCE_LEN] = super::random_array()?;
    let mut ciphertext = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut ciphertext,
    )?;
    Ok(Sealed { nonce, ciphertext })
}

fn open(key: &[u8], aad: &[u8], sealed: &Sealed) -> Option<Zeroizing<Vec<u8>>> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).ok()?);
    let mut buf = Zeroizing::new(sealed.ciphertext.clone());
    let len = key
        .open_in_place(
            Nonce::assume_unique_for_key(sealed.nonce),
            Aad::from(aad),
            buf.as_mut_slice(),
        )
        .ok()?
        .len();
    buf.truncate(len);
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_opens_only_with_the_same_pin_and_role() {
        let mk = MasterKey::generate().unwrap();
        let w = WrappedMasterKey::wrap(&mk, b"Key4C-Pin.9x", MIN_KDF_ITERATIONS, b"so").unwrap();
        assert_eq!(w.iterations, MIN_KDF_ITERATIONS);
        let back = w.unwrap_with(b"Key4C-Pin.9x", b"so").unwrap();
        assert_eq!(back.bytes(), mk.bytes());
        assert!(w.unwrap_with(b"Key4C-Pin.9y", b"so").is_none());
        assert!(w.unwrap_with(b"Key4C-Pin.9x", b"user").is_none());
    }

    #[test]
    fn iterations_never_below_the_floor() {
        let mk = MasterKey::generate().unwrap();
        let w = WrappedMasterKey::wrap(&mk, b"Key4C-Pin.9x", 1, b"so").unwrap();
        assert_eq!(w.iterations, MIN_KDF_ITERATIONS);
    }

    /// A PIN wrapped at one cost opens whatever the default is now: the cost is the one
    /// stored with it (stores wrapped at the old default of 100,000 open as they are).
    #[test]
    fn the_stored_cost_is_the_one_used() {
        let mk = MasterKey::generate().unwrap();
        let w = WrappedMasterKey::wrap(&mk, b"Key4C-Pin.9x", 1_500, b"so").unwrap();
        assert_eq!(w.iterations, 1_500);
        let back = w.unwrap_with(b"Key4C-Pin.9x", b"so").unwrap();
        assert_eq!(back.bytes(), mk.bytes());
        let mut other = w.clone();
        other.iterations = 1_501;
        assert!(other.unwrap_with(b"Key4C-Pin.9x", b"so").is_none());
        assert_eq!(DEFAULT_KDF_ITERATIONS, 600_000);
    }

    #[test]
    fn sealed_record_rejects_tampering() {
        let mk = MasterKey::generate().unwrap();
        let mut s = mk.seal(b"obj:1", b"secret bytes").unwrap();
        assert_eq!(mk.open(b"obj:1", &s).unwrap().as_slice(), b"secret bytes");
        assert!(mk.open(b"obj:2", &s).is_none());
        s.ciphertext[0] ^= 1;
        assert!(mk.open(b"obj:1", &s).is_none());
    }
}
