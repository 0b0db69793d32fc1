//! SHA-2 digests (and SHA-1, which PKCS#11 still needs as the hash of OAEP and PSS parameters),
//! one-shot and streaming. [`HashAlg`] is shared by every mechanism that names a hash.

use aws_lc_rs::digest;

/// A hash function a mechanism can name.
///
/// `Sha1` exists because `CK_RSA_PKCS_OAEP_PARAMS` / `CK_RSA_PKCS_PSS_PARAMS` may name it;
/// whether the token offers `CKM_SHA_1` itself is the token's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// SHA-1 (20 bytes). Legacy: OAEP/PSS parameters only.
    Sha1,
    /// SHA-256 (32 bytes).
    Sha256,
    /// SHA-384 (48 bytes).
    Sha384,
    /// SHA-512 (64 bytes).
    Sha512,
}

/// Largest output of any [`HashAlg`].
pub const MAX_HASH_LEN: usize = 64;

impl HashAlg {
    /// Output length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// The DER prefix of a PKCS#1 v1.5 `DigestInfo` for this hash: the full `DigestInfo` is
    /// this prefix followed by the hash value.
    pub const fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            HashAlg::Sha1 => &[
                0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
                0x14,
            ],
            HashAlg::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            HashAlg::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            HashAlg::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }

    /// The full `DigestInfo` for `hash` (which must be this algorithm's output).
    pub fn digest_info(self, hash: &[u8]) -> Vec<u8> {
        let prefix = self.digest_info_prefix();
        let mut out = Vec::with_capacity(prefix.len() + hash.len());
        out.extend_from_slice(prefix);
        out.extend_from_slice(hash);
        out
    }

    /// If `data` is a `DigestInfo` of one of these hashes, which one and the hash value.
    pub fn parse_digest_info(data: &[u8]) -> Option<(HashAlg, &[u8])> {
        [
            HashAlg::Sha1,
            HashAlg::Sha256,
            HashAlg::Sha384,
            HashAlg::Sha512,
        ]
        .into_iter()
        .find_map(|h| {
            let p = h.digest_info_prefix();
            (data.len() == p.len() + h.output_len() && data.starts_with(p))
                .then(|| (h, &data[p.len()..]))
        })
    }

    /// The aws-lc-rs algorithm.
    pub(crate) fn aws(self) -> &'static digest::Algorithm {
        match self {
            HashAlg::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            HashAlg::Sha256 => &digest::SHA256,
            HashAlg::Sha384 => &digest::SHA384,
            HashAlg::Sha512 => &digest::SHA512,
        }
    }

    /// One-shot hash, without allocating.
    pub(crate) fn hash(self, data: &[u8]) -> digest::Digest {
        digest::digest(self.aws(), data)
    }

    /// One-shot hash of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        self.hash(data).as_ref().to_vec()
    }

    /// A streaming context for this hash.
    pub fn context(self) -> DigestCtx {
        DigestCtx {
            alg: self,
            ctx: digest::Context::new(self.aws()),
        }
    }
}

/// A streaming hash (C_DigestUpdate / C_DigestFinal, and the hash-then-sign mechanisms).
#[derive(Clone)]
pub struct DigestCtx {
    alg: HashAlg,
    ctx: digest::Context,
}

impl std::fmt::Debug for DigestCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestCtx")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl DigestCtx {
    /// The hash this context computes.
    pub fn alg(&self) -> HashAlg {
        self.alg
    }

    /// Feeds more data.
    pub fn update(&mut self, data: &[u8]) {
        self.ctx.update(data);
    }

    /// The hash of everything fed.
    pub fn finish(self) -> Vec<u8> {
        self.ctx.finish().as_ref().to_vec()
    }
}

#[cfg(test)]
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [HashAlg; 4] = [
        HashAlg::Sha1,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ];

    #[test]
    fn known_answers_abc() {
        let cases = [
            (HashAlg::Sha1, "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (
                HashAlg::Sha256,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                HashAlg::Sha384,
                "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
                 8086072ba1e7cc2358baeca134c825a7",
            ),
            (
                HashAlg::Sha512,
                "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
                 2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            ),
        ];
        for (alg, want) in cases {
            assert_eq!(alg.digest(b"abc"), hex(want), "{alg:?}");
            assert_eq!(alg.digest(b"abc").len(), alg.output_len());
        }
        // The empty string, and a two-block message for SHA-256.
        assert_eq!(
            HashAlg::Sha256.digest(b""),
            hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        assert_eq!(
            HashAlg::Sha256.digest(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            hex("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        );
    }

    #[test]
    fn streaming_matches_one_shot() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        for alg in ALL {
            let mut ctx = alg.context();
            for chunk in data.chunks(37) {
                ctx.update(chunk);
            }
            assert_eq!(ctx.alg(), alg);
            assert_eq!(ctx.finish(), alg.digest(&data));
        }
    }

    #[test]
    fn digest_info_round_trip() {
        for alg in ALL {
            let h = alg.digest(b"x");
            let di = alg.digest_info(&h);
            assert_eq!(di.len(), alg.digest_info_prefix().len() + alg.output_len());
            // The prefix's outer SEQUENCE length covers the rest of the DigestInfo.
            assert_eq!(usize::from(di[1]) + 2, di.len());
            assert_eq!(HashAlg::parse_digest_info(&di), Some((alg, &h[..])));
            assert_eq!(HashAlg::parse_digest_info(&di[..di.len() - 1]), None);
        }
        assert_eq!(HashAlg::parse_digest_info(b"not a digest info"), None);
    }
}
