//! HMAC (CKM_SHA256/384/512_HMAC and their _HMAC_GENERAL forms), one-shot and streaming.
//!
//! Any non-empty generic secret is accepted as the key here; minimum lengths policy (e.g.
//! 32 bytes) is the token's business.

use aws_lc_rs::{constant_time, hmac};

use super::digest::HashAlg;
use super::error::{CryptoError, CryptoResult};

fn aws(hash: HashAlg) -> hmac::Algorithm {
    match hash {
        HashAlg::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        HashAlg::Sha256 => hmac::HMAC_SHA256,
        HashAlg::Sha384 => hmac::HMAC_SHA384,
        HashAlg::Sha512 => hmac::HMAC_SHA512,
    }
}

/// An HMAC key bound to a hash. aws-lc keeps the prepared key state and cleanses it.
pub struct HmacKey {
    hash: HashAlg,
    key: hmac::Key,
}

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HmacKey")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl HmacKey {
    /// `KeySizeRange` for an empty key.
    pub fn new(hash: HashAlg, key: &[u8]) -> CryptoResult<Self> {
        if key.is_empty() {
            return Err(CryptoError::KeySizeRange);
        }
        Ok(HmacKey {
            hash,
            key: hmac::Key::new(aws(hash), key),
        })
    }

    /// The hash.
    pub fn hash(&self) -> HashAlg {
        self.hash
    }

    /// A streaming context producing `mac_len` bytes: the full hash length for
    /// CKM_SHAx_HMAC, the parameter of CKM_SHAx_HMAC_GENERAL (1..=hash length, else
    /// `MechanismParamInvalid`).
    pub fn context(&self, mac_len: usize) -> CryptoResult<HmacCtx> {
        if mac_len == 0 || mac_len > self.hash.output_len() {
            return Err(CryptoError::MechanismParamInvalid);
        }
        Ok(HmacCtx {
            ctx: hmac::Context::with_key(&self.key),
            mac_len,
        })
    }

    /// One-shot MAC of `data`, truncated to `mac_len`.
    pub fn sign(&self, mac_len: usize, data: &[u8]) -> CryptoResult<Vec<u8>> {
        let mut ctx = self.context(mac_len)?;
        ctx.update(data);
        Ok(ctx.finish())
    }

    /// One-shot verification; see [`HmacCtx::verify`].
    pub fn verify(&self, mac_len: usize, data: &[u8], mac: &[u8]) -> CryptoResult<()> {
        let mut ctx = self.context(mac_len)?;
        ctx.update(data);
        ctx.verify(mac)
    }
}

/// A streaming HMAC (C_SignUpdate / C_VerifyUpdate).
#[derive(Clone)]
pub struct HmacCtx {
    ctx: hmac::Context,
    mac_len: usize,
}

impl std::fmt::Debug for HmacCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HmacCtx")
            .field("mac_len", &self.mac_len)
            .finish_non_exhaustive()
    }
}

impl HmacCtx {
    /// Length of the MAC this context produces.
    pub fn mac_len(&self) -> usize {
        self.mac_len
    }

    /// Feeds more data.
    pub fn update(&mut self, data: &[u8]) {
        self.ctx.update(data);
    }

    /// The MAC: the leftmost `mac_len` bytes of the HMAC.
    pub fn finish(self) -> Vec<u8> {
        let tag = self.ctx.sign();
        tag.as_ref()[..self.mac_len].to_vec()
    }

    /// Compares, in constant time, the MAC with `mac`: `SignatureLenRange` unless `mac` is
    /// `mac_len` bytes, `SignatureInvalid` if it differs.
    pub fn verify(self, mac: &[u8]) -> CryptoResult<()> {
        if mac.len() != self.mac_len {
            return Err(CryptoError::SignatureLenRange);
        }
        let tag = self.ctx.sign();
        constant_time::verify_slices_are_equal(&tag.as_ref()[..self.mac_len], mac)
            .map_err(|_| CryptoError::SignatureInvalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::digest::hex;

    /// RFC 4231 test cases 1, 2, 5 (truncated) and 6 (key longer than the block).
    #[test]
    fn rfc4231() {
        let tc1 = (hex(&"0b".repeat(20)), b"Hi There".to_vec());
        let tc2 = (b"Jefe".to_vec(), b"what do ya want for nothing?".to_vec());
        let tc6 = (
            hex(&"aa".repeat(131)),
            b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
        );
        let cases = [
            (&tc1, HashAlg::Sha256, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (&tc1, HashAlg::Sha384, "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c\
                                     faea9ea9076ede7f4af152e8b2fa9cb6"),
            (&tc1, HashAlg::Sha512, "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde\
                                     daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"),
            (&tc2, HashAlg::Sha256, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            (&tc2, HashAlg::Sha384, "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e\
                                     8e2240ca5e69e2c78b3239ecfab21649"),
            (&tc2, HashAlg::Sha512, "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
                                     9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"),
            (&tc6, HashAlg::Sha256, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        ];
        for ((key, data), hash, want) in cases {
            let k = HmacKey::new(hash, key).unwrap();
            let want = hex(want);
            assert_eq!(k.sign(hash.output_len(), data).unwrap(), want, "{hash:?}");
            k.verify(hash.output_len(), data, &want).unwrap();
            let mut bad = want.clone();
            bad[0] ^= 1;
            assert_eq!(
                k.verify(hash.output_len(), data, &bad),
                Err(CryptoError::SignatureInvalid)
            );
        }
        // Test case 5: truncation to 128 bits (HMAC_GENERAL with length 16).
        let key = hex(&"0c".repeat(20));
        for (hash, want) in [
            (HashAlg::Sha256, "a3b6167473100ee06e0c796c2955552b"),
            (HashAlg::Sha384, "3abf34c3503b2a23a46efc619baef897"),
            (HashAlg::Sha512, "415fad6271580a531d4179bc891d87a6"),
        ] {
            let k = HmacKey::new(hash, &key).unwrap();
            assert_eq!(k.sign(16, b"Test With Truncation").unwrap(), hex(want));
            k.verify(16, b"Test With Truncation", &hex(want)).unwrap();
        }
    }

    #[test]
    fn streaming_general_and_errors() {
        let k = HmacKey::new(HashAlg::Sha384, b"some key").unwrap();
        let data: Vec<u8> = (0..500u32).map(|i| i as u8).collect();
        let full = k.sign(48, &data).unwrap();
        let mut ctx = k.context(48).unwrap();
        for c in data.chunks(33) {
            ctx.update(c);
        }
        assert_eq!(ctx.clone().finish(), full);
        ctx.verify(&full).unwrap();
        for len in [1usize, 10, 47] {
            let mac = k.sign(len, &data).unwrap();
            assert_eq!(mac, full[..len]);
            k.verify(len, &data, &mac).unwrap();
            assert_eq!(
                k.verify(len, &data, &full),
                Err(CryptoError::SignatureLenRange)
            );
            let mut bad = mac.clone();
            bad[len - 1] ^= 0x80;
            assert_eq!(
                k.verify(len, &data, &bad),
                Err(CryptoError::SignatureInvalid)
            );
        }
        assert_eq!(
            k.context(0).unwrap_err(),
            CryptoError::MechanismParamInvalid
        );
        assert_eq!(
            k.context(49).unwrap_err(),
            CryptoError::MechanismParamInvalid
        );
        assert_eq!(
            HmacKey::new(HashAlg::Sha256, b"").unwrap_err(),
            CryptoError::KeySizeRange
        );
        // A one-byte key is accepted.
        HmacKey::new(HashAlg::Sha256, b"k")
            .unwrap()
            .sign(32, b"x")
            .unwrap();
    }
}
