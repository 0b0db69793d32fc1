//! AES-128/192/256: CKM_AES_GCM, CKM_AES_CBC / CKM_AES_CBC_PAD (streaming),
//! CKM_AES_KEY_WRAP (RFC 3394) and CKM_AES_KEY_WRAP_PAD (RFC 5649).
//!
//! # GCM
//! aws-lc-rs seals and opens with 96-bit IVs and full 128-bit tags. Other IV lengths
//! (1..=256 bytes) and truncated tags (96..=128 bits in steps of 8) use a generic GCM
//! (NIST SP 800-38D) built from aws-lc-rs AES (ECB for H and the tag mask, CTR for the
//! keystream, split where the 32-bit counter wraps) and a constant-time bitwise GHASH:
//! correct but slower. Encryption with a 96-bit IV and a truncated tag stays on aws-lc-rs
//! (the tag is the full tag, truncated). Decryption checks the tag before any plaintext
//! is produced.
//!
//! # Key wrap
//! aws-lc-rs's `key_wrap` handles 128- and 256-bit KEKs; it has no AES-192 KEK, for which
//! RFC 3394/5649 are implemented here over aws-lc-rs AES block operations.

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{
    self, DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, UnboundCipherKey,
};
use aws_lc_rs::constant_time;
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::key_wrap::{self, AesKek, KeyWrap, KeyWrapPadded};
use zeroize::Zeroizing;

use super::error::{CryptoError, CryptoResult};

/// AES block length.
pub const BLOCK_LEN: usize = 16;
/// IV length of CBC modes.
pub const CBC_IV_LEN: usize = 16;
/// Shortest and longest accepted GCM IV, in bytes.
pub const GCM_IV_LEN_RANGE: std::ops::RangeInclusive<usize> = 1..=256;
/// Accepted GCM tag lengths, in bits (multiples of 8 only).
pub const GCM_TAG_BITS_RANGE: std::ops::RangeInclusive<usize> = 96..=128;
/// Longest GCM plaintext: 2^39 - 256 bits.
const GCM_MAX_DATA: u64 = (1 << 36) - 32;
/// RFC 3394 default IV.
const KW_IV: [u8; 8] = [0xa6; 8];
/// RFC 5649 alternative IV prefix.
const KWP_IV_PREFIX: [u8; 4] = [0xa6, 0x59, 0x59, 0xa6];

/// An AES key (CKK_AES) of 16, 24 or 32 bytes; the bytes are zeroized on drop.
#[derive(Clone)]
pub struct AesKey {
    key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AesKey")
            .field("len", &self.key.len())
            .finish_non_exhaustive()
    }
}

impl AesKey {
    /// `KeySizeRange` unless 16, 24 or 32 bytes.
    pub fn new(key: &[u8]) -> CryptoResult<Self> {
        if !matches!(key.len(), 16 | 24 | 32) {
            return Err(CryptoError::KeySizeRange);
        }
        Ok(AesKey {
            key: Zeroizing::new(key.to_vec()),
        })
    }

    /// Key length in bytes.
    pub fn key_len(&self) -> usize {
        self.key.len()
    }

    fn cipher_alg(&self) -> &'static cipher::Algorithm {
        match self.key.len() {
            16 => &cipher::AES_128,
            24 => &cipher::AES_192,
            _ => &cipher::AES_256,
        }
    }

    fn unbound(&self) -> CryptoResult<UnboundCipherKey> {
        UnboundCipherKey::new(self.cipher_alg(), &self.key)
            .map_err(|_| CryptoError::Internal("AES key setup failed"))
    }

    fn ecb_encrypting(&self) -> CryptoResult<EncryptingKey> {
        EncryptingKey::ecb(self.unbound()?)
            .map_err(|_| CryptoError::Internal("AES key setup failed"))
    }

    fn ecb_decrypting(&self) -> CryptoResult<DecryptingKey> {
        DecryptingKey::ecb(self.unbound()?)
            .map_err(|_| CryptoError::Internal("AES key setup failed"))
    }

    fn gcm_key(&self) -> CryptoResult<LessSafeKey> {
        let alg = match self.key.len() {
            16 => &aead::AES_128_GCM,
            24 => &aead::AES_192_GCM,
            _ => &aead::AES_256_GCM,
        };
        let k = UnboundKey::new(alg, &self.key)
            .map_err(|_| CryptoError::Internal("AES-GCM key setup failed"))?;
        Ok(LessSafeKey::new(k))
    }
}

fn ecb_block(key: &EncryptingKey, block: &mut [u8; BLOCK_LEN]) -> CryptoResult<()> {
    key.less_safe_encrypt(block, EncryptionContext::None)
        .map(|_| ())
        .map_err(|_| CryptoError::Internal("AES block encryption failed"))
}

fn ecb_block_decrypt(key: &DecryptingKey, block: &mut [u8; BLOCK_LEN]) -> CryptoResult<()> {
    key.decrypt(block, DecryptionContext::None)
        .map(|_| ())
        .map_err(|_| CryptoError::Internal("AES block decryption failed"))
}

// ---------------------------------------------------------------------------------------
// GCM
// ---------------------------------------------------------------------------------------

/// CK_GCM_PARAMS, with ulTagBits as `tag_bits`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcmParams {
    /// pIv: 1..=256 bytes (12 recommended).
    pub iv: Vec<u8>,
    /// pAAD.
    pub aad: Vec<u8>,
    /// ulTagBits: 96, 104, 112, 120 or 128.
    pub tag_bits: usize,
}

impl GcmParams {
    fn check(&self) -> CryptoResult<usize> {
        if !GCM_IV_LEN_RANGE.contains(&self.iv.len())
            || !GCM_TAG_BITS_RANGE.contains(&self.tag_bits)
            || self.tag_bits % 8 != 0
            || self.aad.len() as u64 >= (1 << 61)
        {
            return Err(CryptoError::MechanismParamInvalid);
        }
        Ok(self.tag_bits / 8)
    }
}

/// Multiplication in GF(2^128) with GCM's bit order, without secret-dependent branches.
fn gf_mul(x: u128, y: u128) -> u128 {
    let mut z = 0u128;
    let mut v = y;
    for i in 0..128 {
        let bit = (x >> (127 - i)) & 1;
        z ^= v & 0u128.wrapping_sub(bit);
        let lsb = v & 1;
        v = (v >> 1) ^ ((0xe1u128 << 120) & 0u128.wrapping_sub(lsb));
    }
    z
}

struct Ghash {
    h: u128,
    y: u128,
}

impl Ghash {
    fn new(h: u128) -> Self {
        Ghash { h, y: 0 }
    }

    /// Absorbs `data`, zero-padded to whole blocks.
    fn update_padded(&mut self, data: &[u8]) {
        for chunk in data.chunks(BLOCK_LEN) {
            let mut block = [0u8; BLOCK_LEN];
            block[..chunk.len()].copy_from_slice(chunk);
            self.y = gf_mul(self.y ^ u128::from_be_bytes(block), self.h);
        }
    }

    fn update_lengths(&mut self, a_bytes: usize, c_bytes: usize) {
        let lens = ((a_bytes as u128 * 8) << 64) | (c_bytes as u128 * 8);
        self.y = gf_mul(self.y ^ lens, self.h);
    }
}

/// The generic GCM state for one key and IV: H, J0 and E(K, J0).
struct GcmGeneric {
    key: AesKey,
    h: u128,
    j0: [u8; BLOCK_LEN],
    ek_j0: [u8; BLOCK_LEN],
}

impl GcmGeneric {
    fn new(key: &AesKey, iv: &[u8]) -> CryptoResult<Self> {
        let ecb = key.ecb_encrypting()?;
        let mut h = [0u8; BLOCK_LEN];
        ecb_block(&ecb, &mut h)?;
        let h = u128::from_be_bytes(h);
        let mut j0 = [0u8; BLOCK_LEN];
        if iv.len() == 12 {
            j0[..12].copy_from_slice(iv);
            j0[15] = 1;
        } else {
            let mut g = Ghash::new(h);
            g.update_padded(iv);
            g.update_lengths(0, iv.len());
            j0 = g.y.to_be_bytes();
        }
        let mut ek_j0 = j0;
        ecb_block(&ecb, &mut ek_j0)?;
        Ok(GcmGeneric {
            key: key.clone(),
            h,
            j0,
            ek_j0,
        })
    }

    /// XORs the GCM keystream (counter inc32(J0) onwards) into `data`.
    fn ctr(&self, data: &mut [u8]) -> CryptoResult<()> {
        let mut counter = self.j0;
        let mut low = u32::from_be_bytes([counter[12], counter[13], counter[14], counter[15]])
            .wrapping_add(1);
        let mut rest = data;
        while !rest.is_empty() {
            counter[12..].copy_from_slice(&low.to_be_bytes());
            // aws-lc increments all 128 bits; stop each run before the low 32 bits wrap.
            let blocks_to_wrap = (u64::from(u32::MAX - low) + 1) as usize;
            let run = rest.len().min(blocks_to_wrap.saturating_mul(BLOCK_LEN));
            let (now, later) = rest.split_at_mut(run);
            let ctr = EncryptingKey::ctr(self.key.unbound()?)
                .map_err(|_| CryptoError::Internal("AES-CTR key setup failed"))?;
            ctr.less_safe_encrypt(now, EncryptionContext::Iv128(FixedLength::from(counter)))
                .map_err(|_| CryptoError::Internal("AES-CTR failed"))?;
            low = low.wrapping_add(run.div_ceil(BLOCK_LEN) as u32);
            rest = later;
        }
        Ok(())
    }

    fn tag(&self, aad: &[u8], ciphertext: &[u8]) -> [u8; BLOCK_LEN] {
        let mut g = Ghash::new(self.h);
        g.update_padded(aad);
        g.update_padded(ciphertext);
        g.update_lengths(aad.len(), ciphertext.len());
        (g.y ^ u128::from_be_bytes(self.ek_j0)).to_be_bytes()
    }
}

/// CKM_AES_GCM encryption: returns ciphertext ‖ tag (tag_bits / 8 bytes).
/// `MechanismParamInvalid` for an IV or tag length out of range.
pub fn gcm_encrypt(key: &AesKey, params: &GcmParams, plaintext: &[u8]) -> CryptoResult<Vec<u8>> {
    let tag_len = params.check()?;
    if plaintext.len() as u64 > GCM_MAX_DATA {
        return Err(CryptoError::DataLenRange);
    }
    let mut out = Vec::with_capacity(plaintext.len() + tag_len);
    out.extend_from_slice(plaintext);
    if let Ok(iv) = <[u8; 12]>::try_from(&params.iv[..]) {
        let tag = key
            .gcm_key()?
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(iv),
                Aad::from(&params.aad),
                &mut out,
            )
            .map_err(|_| CryptoError::Internal("AES-GCM sealing failed"))?;
        out.extend_from_slice(&tag.as_ref()[..tag_len]);
        return Ok(out);
    }
    let g = GcmGeneric::new(key, &params.iv)?;
    g.ctr(&mut out)?;
    let tag = g.tag(&params.aad, &out);
    out.extend_from_slice(&tag[..tag_len]);
    Ok(out)
}

/// CKM_AES_GCM decryption of ciphertext ‖ tag. `EncryptedDataLenRange` if shorter than the
/// tag, `EncryptedDataInvalid` if the tag does not match.
pub fn gcm_decrypt(
    key: &AesKey,
    params: &GcmParams,
    input: &[u8],
) -> CryptoResult<Zeroizing<Vec<u8>>> {
    let tag_len = params.check()?;
    if input.len() < tag_len {
        return Err(CryptoError::EncryptedDataLenRange);
    }
    let (ct, tag) = input.split_at(input.len() - tag_len);
    if ct.len() as u64 > GCM_MAX_DATA {
        return Err(CryptoError::EncryptedDataLenRange);
    }
    let mut out = Zeroizing::new(ct.to_vec());
    if let (Ok(iv), BLOCK_LEN) = (<[u8; 12]>::try_from(&params.iv[..]), tag_len) {
        key.gcm_key()?
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(iv),
                Aad::from(&params.aad),
                tag,
                &mut out,
            )
            .map_err(|_| CryptoError::EncryptedDataInvalid)?;
        return Ok(out);
    }
    let g = GcmGeneric::new(key, &params.iv)?;
    let want = g.tag(&params.aad, ct);
    constant_time::verify_slices_are_equal(&want[..tag_len], tag)
        .map_err(|_| CryptoError::EncryptedDataInvalid)?;
    g.ctr(&mut out)?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// CBC
// ---------------------------------------------------------------------------------------

fn check_iv(iv: &[u8]) -> CryptoResult<[u8; CBC_IV_LEN]> {
    iv.try_into()
        .map_err(|_| CryptoError::MechanismParamInvalid)
}

/// Streaming CKM_AES_CBC (`pad` false) / CKM_AES_CBC_PAD (`pad` true, PKCS#7) encryption.
pub struct CbcEncryptor {
    key: EncryptingKey,
    iv: [u8; CBC_IV_LEN],
    pending: Zeroizing<Vec<u8>>,
    pad: bool,
}

impl std::fmt::Debug for CbcEncryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CbcEncryptor")
            .field("pad", &self.pad)
            .finish_non_exhaustive()
    }
}

impl CbcEncryptor {
    /// `MechanismParamInvalid` unless `iv` is 16 bytes.
    pub fn new(key: &AesKey, iv: &[u8], pad: bool) -> CryptoResult<Self> {
        let iv = check_iv(iv)?;
        let key = EncryptingKey::cbc(key.unbound()?)
            .map_err(|_| CryptoError::Internal("AES-CBC key setup failed"))?;
        Ok(CbcEncryptor {
            key,
            iv,
            pending: Zeroizing::new(Vec::with_capacity(BLOCK_LEN)),
            pad,
        })
    }

    /// Bytes [`CbcEncryptor::update`] would output for `input_len` more input bytes.
    pub fn update_output_len(&self, input_len: usize) -> usize {
        (self.pending.len() + input_len) / BLOCK_LEN * BLOCK_LEN
    }

    /// Bytes [`CbcEncryptor::finish`] will output.
    pub fn finish_output_len(&self) -> usize {
        if self.pad {
            BLOCK_LEN
        } else {
            0
        }
    }

    fn encrypt_blocks(&mut self, blocks: &mut [u8]) -> CryptoResult<()> {
        if blocks.is_empty() {
            return Ok(());
        }
        self.key
            .less_safe_encrypt(blocks, EncryptionContext::Iv128(FixedLength::from(self.iv)))
            .map_err(|_| CryptoError::Internal("AES-CBC failed"))?;
        self.iv.copy_from_slice(&blocks[blocks.len() - BLOCK_LEN..]);
        Ok(())
    }

    /// Encrypts what whole blocks `data` completes; keeps the rest.
    pub fn update(&mut self, data: &[u8]) -> CryptoResult<Vec<u8>> {
        let total = self.pending.len() + data.len();
        let out_len = total / BLOCK_LEN * BLOCK_LEN;
        let mut out = Vec::with_capacity(out_len);
        if out_len > 0 {
            let from_data = out_len - self.pending.len();
            out.extend_from_slice(&self.pending);
            out.extend_from_slice(&data[..from_data]);
            self.pending.clear();
            self.pending.extend_from_slice(&data[from_data..]);
            self.encrypt_blocks(&mut out)?;
        } else {
            self.pending.extend_from_slice(data);
        }
        Ok(out)
    }

    /// The last block(s): with padding, the PKCS#7-padded final block; without, nothing,
    /// and `DataLenRange` if the input was not a whole number of blocks.
    pub fn finish(mut self) -> CryptoResult<Vec<u8>> {
        if !self.pad {
            return if self.pending.is_empty() {
                Ok(Vec::new())
            } else {
                Err(CryptoError::DataLenRange)
            };
        }
        let n = BLOCK_LEN - self.pending.len();
        let mut out = Vec::with_capacity(BLOCK_LEN);
        out.extend_from_slice(&self.pending);
        out.resize(BLOCK_LEN, n as u8);
        self.encrypt_blocks(&mut out)?;
        Ok(out)
    }
}

/// Streaming CKM_AES_CBC / CKM_AES_CBC_PAD decryption. With padding the last whole block
/// is held back until [`CbcDecryptor::finish`].
pub struct CbcDecryptor {
    key: DecryptingKey,
    iv: [u8; CBC_IV_LEN],
    pending: Vec<u8>,
    pad: bool,
}

impl std::fmt::Debug for CbcDecryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CbcDecryptor")
            .field("pad", &self.pad)
            .finish_non_exhaustive()
    }
}

impl CbcDecryptor {
    /// `MechanismParamInvalid` unless `iv` is 16 bytes.
    pub fn new(key: &AesKey, iv: &[u8], pad: bool) -> CryptoResult<Self> {
        let iv = check_iv(iv)?;
        let key = DecryptingKey::cbc(key.unbound()?)
            .map_err(|_| CryptoError::Internal("AES-CBC key setup failed"))?;
        Ok(CbcDecryptor {
            key,
            iv,
            pending: Vec::with_capacity(2 * BLOCK_LEN),
            pad,
        })
    }

    fn releasable(&self, total: usize) -> usize {
        if self.pad {
            total.saturating_sub(1) / BLOCK_LEN * BLOCK_LEN
        } else {
            total / BLOCK_LEN * BLOCK_LEN
        }
    }

    /// Bytes [`CbcDecryptor::update`] would output for `input_len` more input bytes.
    pub fn update_output_len(&self, input_len: usize) -> usize {
        self.releasable(self.pending.len() + input_len)
    }

    /// Most bytes [`CbcDecryptor::finish`] can output (16 with padding, else 0).
    pub fn finish_output_len(&self) -> usize {
        if self.pad {
            BLOCK_LEN
        } else {
            0
        }
    }

    fn decrypt_blocks(&mut self, blocks: &mut [u8]) -> CryptoResult<()> {
        if blocks.is_empty() {
            return Ok(());
        }
        let mut next_iv = [0u8; CBC_IV_LEN];
        next_iv.copy_from_slice(&blocks[blocks.len() - BLOCK_LEN..]);
        self.key
            .decrypt(blocks, DecryptionContext::Iv128(FixedLength::from(self.iv)))
            .map_err(|_| CryptoError::Internal("AES-CBC failed"))?;
        self.iv = next_iv;
        Ok(())
    }

    /// Decrypts the whole blocks that can be released.
    pub fn update(&mut self, data: &[u8]) -> CryptoResult<Zeroizing<Vec<u8>>> {
        let total = self.pending.len() + data.len();
        let out_len = self.releasable(total);
        let mut out = Zeroizing::new(Vec::with_capacity(out_len));
        if out_len > 0 {
            let mut all = Vec::with_capacity(total);
            all.extend_from_slice(&self.pending);
            all.extend_from_slice(data);
            out.extend_from_slice(&all[..out_len]);
            self.pending.clear();
            self.pending.extend_from_slice(&all[out_len..]);
            self.decrypt_blocks(&mut out)?;
        } else {
            self.pending.extend_from_slice(data);
        }
        Ok(out)
    }

    /// The rest: with padding, the last block unpadded (`EncryptedDataLenRange` unless the
    /// input was a non-zero whole number of blocks, `EncryptedDataInvalid` for bad
    /// padding); without, nothing (`EncryptedDataLenRange` for a partial block).
    pub fn finish(mut self) -> CryptoResult<Zeroizing<Vec<u8>>> {
        if !self.pad {
            return if self.pending.is_empty() {
                Ok(Zeroizing::new(Vec::new()))
            } else {
                Err(CryptoError::EncryptedDataLenRange)
            };
        }
        if self.pending.len() != BLOCK_LEN {
            return Err(CryptoError::EncryptedDataLenRange);
        }
        let mut block = Zeroizing::new(std::mem::take(&mut self.pending));
        self.decrypt_blocks(&mut block)?;
        let n = pkcs7_pad_len(&block).ok_or(CryptoError::EncryptedDataInvalid)?;
        block.truncate(BLOCK_LEN - n);
        Ok(block)
    }
}

/// The PKCS#7 padding length of a final block, checked without data-dependent branches.
fn pkcs7_pad_len(block: &[u8]) -> Option<usize> {
    let n = block[BLOCK_LEN - 1];
    // good = 1 <= n <= 16 and the last n bytes all equal n.
    let mut bad = u8::from(n == 0) | u8::from(n as usize > BLOCK_LEN);
    for (i, b) in block.iter().enumerate() {
        let in_pad = u8::from(BLOCK_LEN - i <= n as usize);
        bad |= in_pad & u8::from(*b != n);
    }
    (bad == 0).then_some(n as usize)
}

/// One-shot CKM_AES_CBC(_PAD) encryption.
pub fn cbc_encrypt(key: &AesKey, iv: &[u8], pad: bool, plaintext: &[u8]) -> CryptoResult<Vec<u8>> {
    let mut e = CbcEncryptor::new(key, iv, pad)?;
    let mut out = e.update(plaintext)?;
    out.extend_from_slice(&e.finish()?);
    Ok(out)
}

/// One-shot CKM_AES_CBC(_PAD) decryption. `EncryptedDataLenRange` unless the input is a
/// whole number of blocks (non-zero with padding).
pub fn cbc_decrypt(
    key: &AesKey,
    iv: &[u8],
    pad: bool,
    ciphertext: &[u8],
) -> CryptoResult<Zeroizing<Vec<u8>>> {
    if ciphertext.len() % BLOCK_LEN != 0 || (pad && ciphertext.is_empty()) {
        return Err(CryptoError::EncryptedDataLenRange);
    }
    let mut d = CbcDecryptor::new(key, iv, pad)?;
    let mut out = d.update(ciphertext)?;
    out.extend_from_slice(&d.finish()?);
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Key wrap
// ---------------------------------------------------------------------------------------

fn aws_kek(kek: &AesKey) -> CryptoResult<Option<AesKek>> {
    let cipher = match kek.key_len() {
        16 => &key_wrap::AES_128,
        32 => &key_wrap::AES_256,
        _ => return Ok(None),
    };
    AesKek::new(cipher, &kek.key)
        .map(Some)
        .map_err(|_| CryptoError::Internal("AES-KW key setup failed"))
}

/// RFC 3394 W with initial value `iv` over `r` (n ≥ 2 semiblocks); returns A ‖ R.
fn w(kek: &AesKey, iv: [u8; 8], r: &[u8]) -> CryptoResult<Vec<u8>> {
    let ecb = kek.ecb_encrypting()?;
    let n = r.len() / 8;
    let mut out = Vec::with_capacity(8 + r.len());
    out.extend_from_slice(&iv);
    out.extend_from_slice(r);
    let mut b = Zeroizing::new([0u8; BLOCK_LEN]);
    for j in 0..6u64 {
        for i in 1..=n {
            b[..8].copy_from_slice(&out[..8]);
            b[8..].copy_from_slice(&out[8 * i..8 * i + 8]);
            ecb_block(&ecb, &mut b)?;
            let t = (n as u64) * j + i as u64;
            let a = u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) ^ t;
            out[..8].copy_from_slice(&a.to_be_bytes());
            out[8 * i..8 * i + 8].copy_from_slice(&b[8..]);
        }
    }
    Ok(out)
}

/// RFC 3394 W⁻¹ over `c` (n+1 ≥ 3 semiblocks); returns (A, R).
fn w_inv(kek: &AesKey, c: &[u8]) -> CryptoResult<([u8; 8], Zeroizing<Vec<u8>>)> {
    let dec = kek.ecb_decrypting()?;
    let n = c.len() / 8 - 1;
    let mut a = [0u8; 8];
    a.copy_from_slice(&c[..8]);
    let mut r = Zeroizing::new(c[8..].to_vec());
    let mut b = Zeroizing::new([0u8; BLOCK_LEN]);
    for j in (0..6u64).rev() {
        for i in (1..=n).rev() {
            let t = (n as u64) * j + i as u64;
            b[..8].copy_from_slice(&(u64::from_be_bytes(a) ^ t).to_be_bytes());
            b[8..].copy_from_slice(&r[8 * (i - 1)..8 * i]);
            ecb_block_decrypt(&dec, &mut b)?;
            a.copy_from_slice(&b[..8]);
            r[8 * (i - 1)..8 * i].copy_from_slice(&b[8..]);
        }
    }
    Ok((a, r))
}

/// CKM_AES_KEY_WRAP (RFC 3394): `DataLenRange` unless the input is a multiple of 8 bytes
/// and at least 16.
pub fn key_wrap(kek: &AesKey, plaintext: &[u8]) -> CryptoResult<Vec<u8>> {
    if plaintext.len() % 8 != 0 || plaintext.len() < 16 || plaintext.len() > (i32::MAX as usize) - 8
    {
        return Err(CryptoError::DataLenRange);
    }
    match aws_kek(kek)? {
        Some(k) => {
            let mut out = vec![0u8; plaintext.len() + 8];
            let n = k
                .wrap(plaintext, &mut out)
                .map_err(|_| CryptoError::Internal("AES-KW failed"))?
                .len();
            out.truncate(n);
            Ok(out)
        }
        None => w(kek, KW_IV, plaintext),
    }
}

/// Unwraps CKM_AES_KEY_WRAP: `WrappedKeyLenRange` unless a multiple of 8 bytes and at
/// least 24, `WrappedKeyInvalid` if the integrity check fails.
pub fn key_unwrap(kek: &AesKey, wrapped: &[u8]) -> CryptoResult<Zeroizing<Vec<u8>>> {
    if wrapped.len() % 8 != 0 || wrapped.len() < 24 {
        return Err(CryptoError::WrappedKeyLenRange);
    }
    match aws_kek(kek)? {
        Some(k) => {
            let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
            let n = k
                .unwrap(wrapped, &mut out)
                .map_err(|_| CryptoError::WrappedKeyInvalid)?
                .len();
            out.truncate(n);
            Ok(out)
        }
        None => {
            let (a, r) = w_inv(kek, wrapped)?;
            constant_time::verify_slices_are_equal(&a, &KW_IV)
                .map_err(|_| CryptoError::WrappedKeyInvalid)?;
            Ok(r)
        }
    }
}

/// CKM_AES_KEY_WRAP_PAD (RFC 5649): any non-empty input (`DataLenRange` if empty).
pub fn key_wrap_pad(kek: &AesKey, plaintext: &[u8]) -> CryptoResult<Vec<u8>> {
    if plaintext.is_empty() || plaintext.len() > (i32::MAX as usize) - 16 {
        return Err(CryptoError::DataLenRange);
    }
    if let Some(k) = aws_kek(kek)? {
        let mut out = vec![0u8; plaintext.len() + 15];
        let n = k
            .wrap_with_padding(plaintext, &mut out)
            .map_err(|_| CryptoError::Internal("AES-KWP failed"))?
            .len();
        out.truncate(n);
        return Ok(out);
    }
    let mut iv = [0u8; 8];
    iv[..4].copy_from_slice(&KWP_IV_PREFIX);
    iv[4..].copy_from_slice(&(plaintext.len() as u32).to_be_bytes());
    let padded_len = plaintext.len().div_ceil(8) * 8;
    let mut p = Zeroizing::new(Vec::with_capacity(padded_len));
    p.extend_from_slice(plaintext);
    p.resize(padded_len, 0);
    if padded_len == 8 {
        let mut b = Zeroizing::new([0u8; BLOCK_LEN]);
        b[..8].copy_from_slice(&iv);
        b[8..].copy_from_slice(&p);
        ecb_block(&kek.ecb_encrypting()?, &mut b)?;
        return Ok(b.to_vec());
    }
    w(kek, iv, &p)
}

/// Unwraps CKM_AES_KEY_WRAP_PAD: `WrappedKeyLenRange` unless a multiple of 8 bytes and at
/// least 16, `WrappedKeyInvalid` if the integrity or padding check fails.
pub fn key_unwrap_pad(kek: &AesKey, wrapped: &[u8]) -> CryptoResult<Zeroizing<Vec<u8>>> {
    if wrapped.len() % 8 != 0 || wrapped.len() < 16 {
        return Err(CryptoError::WrappedKeyLenRange);
    }
    if let Some(k) = aws_kek(kek)? {
        let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
        let n = k
            .unwrap_with_padding(wrapped, &mut out)
            .map_err(|_| CryptoError::WrappedKeyInvalid)?
            .len();
        out.truncate(n);
        return Ok(out);
    }
    let (a, mut p) = if wrapped.len() == 16 {
        let mut b = Zeroizing::new([0u8; BLOCK_LEN]);
        b.copy_from_slice(wrapped);
        ecb_block_decrypt(&kek.ecb_decrypting()?, &mut b)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[..8]);
        (a, Zeroizing::new(b[8..].to_vec()))
    } else {
        w_inv(kek, wrapped)?
    };
    let mli = u32::from_be_bytes([a[4], a[5], a[6], a[7]]) as usize;
    let len = p.len();
    // Every check is evaluated, then combined.
    let prefix_ok = constant_time::verify_slices_are_equal(&a[..4], &KWP_IV_PREFIX).is_ok();
    let len_ok = mli + 8 > len && mli <= len;
    let pad_ok = len_ok && p[mli.min(len)..].iter().fold(0u8, |acc, b| acc | b) == 0;
    if !(prefix_ok & len_ok & pad_ok) {
        return Err(CryptoError::WrappedKeyInvalid);
    }
    p.truncate(mli);
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::digest::hex;

    fn key(h: &str) -> AesKey {
        AesKey::new(&hex(h)).unwrap()
    }

    #[test]
    fn key_sizes() {
        for n in [0usize, 8, 15, 17, 20, 31, 33, 64] {
            assert_eq!(
                AesKey::new(&vec![0; n]).unwrap_err(),
                CryptoError::KeySizeRange
            );
        }
        for n in [16usize, 24, 32] {
            assert_eq!(AesKey::new(&vec![0; n]).unwrap().key_len(), n);
        }
    }

    /// GCM spec test cases 4 (96-bit IV), 5 (64-bit IV) and 6 (480-bit IV), plus vectors
    /// made with Python `cryptography` (OpenSSL): AES-192 with a 128-bit IV, AES-256 with
    /// a 1024-bit IV and only AAD.
    #[test]
    fn gcm_known_answers() {
        let k = "feffe9928665731c6d6a8f9467308308";
        let p = hex(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
                     1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        );
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let iv128: String = (0..16u8).map(|b| format!("{b:02x}")).collect();
        let iv1024: String = (1..=128u8).map(|b| format!("{b:02x}")).collect();
        // (key, iv, plaintext, aad, ciphertext, tag)
        type Case<'a> = (String, String, &'a [u8], &'a [u8], &'a str, &'a str);
        let cases: [Case; 5] = [
            (
                k.into(),
                "cafebabefacedbaddecaf888".into(),
                &p,
                &aad,
                "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c\
              7d8f6a5aac84aa051ba30b396a0aac973d58e091",
                "5bc94fbc3221a5db94fae95ae7121a47",
            ),
            (
                k.into(),
                "cafebabefacedbad".into(),
                &p,
                &aad,
                "61353b4c2806934a777ff51fa22a4755699b2a714fcdc6f83766e5f97b6c742373806900e49f24b2\
              2b097544d4896b424989b5e1ebac0f07c23f4598",
                "3612d2e79e3b0785561be14aaca2fccb",
            ),
            (
                k.into(),
                "9313225df88406e555909c5aff5269aa6a7a9538534f7da1e4c303d2a318a728c3c0c951\
                        56809539fcf0e2429a6b525416aedbf5a0de6a57a637b39b"
                    .into(),
                &p,
                &aad,
                "8ce24998625615b603a033aca13fb894be9112a5c3a211a8ba262a3cca7e2ca701e4a9a4fba43c90\
              ccdcb281d48c7c6fd62875d2aca417034c34aee5",
                "619cc5aefffe0bfa462af43c1699d050",
            ),
            (
                format!("{k}feffe9928665731c"),
                iv128,
                &p,
                &aad,
                "afc167a5f8a79d102e4004b2d4d127be206fe026bbe3acb533c76fd46b679878f2d1ecab183b8067\
              e67504f30427d1e978bb2087f348d2231bb7aab8",
                "ae086527a645b0279bcea9c29a758ccf",
            ),
            (
                format!("{k}{k}"),
                iv1024,
                b"",
                b"only aad",
                "",
                "e9b698aa43a6da00b5db2a5745ca865a",
            ),
        ];
        for (kh, ivh, pt, aad, ct, tag) in cases {
            let key = key(&kh);
            let want = [hex(ct), hex(tag)].concat();
            for tag_bits in [128usize, 120, 96] {
                let params = GcmParams {
                    iv: hex(&ivh),
                    aad: aad.to_vec(),
                    tag_bits,
                };
                let got = gcm_encrypt(&key, &params, pt).unwrap();
                assert_eq!(
                    got,
                    want[..pt.len() + tag_bits / 8],
                    "iv {ivh} tag {tag_bits}"
                );
                assert_eq!(&gcm_decrypt(&key, &params, &got).unwrap()[..], pt);
                let mut bad = got.clone();
                let last = bad.len() - 1;
                bad[last] ^= 1;
                assert_eq!(
                    gcm_decrypt(&key, &params, &bad).unwrap_err(),
                    CryptoError::EncryptedDataInvalid
                );
                if !pt.is_empty() {
                    let mut bad = got.clone();
                    bad[0] ^= 1;
                    assert_eq!(
                        gcm_decrypt(&key, &params, &bad).unwrap_err(),
                        CryptoError::EncryptedDataInvalid
                    );
                }
                let mut bad_aad = params.clone();
                bad_aad.aad.push(0);
                assert_eq!(
                    gcm_decrypt(&key, &bad_aad, &got).unwrap_err(),
                    CryptoError::EncryptedDataInvalid
                );
            }
        }
    }

    /// The generic GCM agrees with aws-lc-rs on 96-bit IVs, for many lengths.
    #[test]
    fn gcm_generic_matches_aws() {
        for klen in [16usize, 24, 32] {
            let key = AesKey::new(&vec![0x3c; klen]).unwrap();
            let iv = [9u8; 12];
            let g = GcmGeneric::new(&key, &iv).unwrap();
            for len in [0usize, 1, 15, 16, 17, 100, 1000] {
                let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let params = GcmParams {
                    iv: iv.to_vec(),
                    aad: b"aad".to_vec(),
                    tag_bits: 128,
                };
                let fast = gcm_encrypt(&key, &params, &pt).unwrap();
                let mut slow = pt.clone();
                g.ctr(&mut slow).unwrap();
                let tag = g.tag(b"aad", &slow);
                slow.extend_from_slice(&tag);
                assert_eq!(fast, slow, "key {klen} len {len}");
            }
        }
    }

    /// inc32 wraps within the low 32 bits of the counter, unlike aws-lc's 128-bit CTR.
    #[test]
    fn gcm_counter_wraps_32_bits() {
        let key = AesKey::new(&[7u8; 16]).unwrap();
        let mut g = GcmGeneric::new(&key, &[1u8; 12]).unwrap();
        g.j0 = [0xab; 16];
        g.j0[12..].copy_from_slice(&0xffff_fffeu32.to_be_bytes());
        let mut data = vec![0u8; 4 * BLOCK_LEN];
        g.ctr(&mut data).unwrap();
        // Keystream blocks are E(prefix ‖ ffffffff), E(prefix ‖ 0), E(prefix ‖ 1), E(prefix ‖ 2).
        let ecb = key.ecb_encrypting().unwrap();
        for (i, low) in [0xffff_ffffu32, 0, 1, 2].into_iter().enumerate() {
            let mut b = [0xabu8; 16];
            b[12..].copy_from_slice(&low.to_be_bytes());
            ecb_block(&ecb, &mut b).unwrap();
            assert_eq!(&data[16 * i..16 * i + 16], &b[..], "block {i}");
        }
    }

    #[test]
    fn gcm_params_and_lengths() {
        let key = AesKey::new(&[1u8; 32]).unwrap();
        let ok = GcmParams {
            iv: vec![0; 12],
            aad: Vec::new(),
            tag_bits: 128,
        };
        for (iv_len, tag_bits) in [
            (0usize, 128usize),
            (257, 128),
            (12, 88),
            (12, 136),
            (12, 100),
            (12, 0),
        ] {
            let p = GcmParams {
                iv: vec![0; iv_len],
                tag_bits,
                ..ok.clone()
            };
            assert_eq!(
                gcm_encrypt(&key, &p, b"x").unwrap_err(),
                CryptoError::MechanismParamInvalid
            );
            assert_eq!(
                gcm_decrypt(&key, &p, &[0; 32]).unwrap_err(),
                CryptoError::MechanismParamInvalid
            );
        }
        for iv_len in [1usize, 12, 16, 256] {
            for tag_bits in [96usize, 104, 112, 120, 128] {
                let p = GcmParams {
                    iv: vec![5; iv_len],
                    aad: b"a".to_vec(),
                    tag_bits,
                };
                let ct = gcm_encrypt(&key, &p, b"hello").unwrap();
                assert_eq!(ct.len(), 5 + tag_bits / 8);
                assert_eq!(&gcm_decrypt(&key, &p, &ct).unwrap()[..], b"hello");
            }
        }
        assert_eq!(
            gcm_decrypt(&key, &ok, &[0; 15]).unwrap_err(),
            CryptoError::EncryptedDataLenRange
        );
        // Only a tag: empty plaintext.
        let ct = gcm_encrypt(&key, &ok, b"").unwrap();
        assert_eq!(ct.len(), 16);
        assert!(gcm_decrypt(&key, &ok, &ct).unwrap().is_empty());
    }

    /// NIST SP 800-38A F.2.5 (CBC-AES256.Encrypt), then padding behaviour.
    #[test]
    fn cbc_known_answer_and_padding() {
        let key = key("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
        let iv = hex("000102030405060708090a0b0c0d0e0f");
        let pt = hex(
            "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51\
                      30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710",
        );
        let ct = hex(
            "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d\
                      39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b",
        );
        assert_eq!(cbc_encrypt(&key, &iv, false, &pt).unwrap(), ct);
        assert_eq!(&cbc_decrypt(&key, &iv, false, &ct).unwrap()[..], &pt[..]);
        // With padding: a whole block of 0x10 is appended; the prefix is unchanged.
        let padded = cbc_encrypt(&key, &iv, true, &pt).unwrap();
        assert_eq!(padded.len(), pt.len() + 16);
        assert_eq!(&padded[..64], &ct[..]);
        assert_eq!(&cbc_decrypt(&key, &iv, true, &padded).unwrap()[..], &pt[..]);
        let raw_last = cbc_decrypt(&key, &iv, false, &padded).unwrap();
        assert_eq!(&raw_last[64..], &[0x10; 16]);
        // Errors.
        assert_eq!(
            cbc_decrypt(&key, &iv, true, &padded[..70]).unwrap_err(),
            CryptoError::EncryptedDataLenRange
        );
        assert_eq!(
            cbc_decrypt(&key, &iv, true, &[]).unwrap_err(),
            CryptoError::EncryptedDataLenRange
        );
        assert_eq!(
            cbc_decrypt(&key, &iv, false, &ct[..20]).unwrap_err(),
            CryptoError::EncryptedDataLenRange
        );
        assert_eq!(
            cbc_encrypt(&key, &iv, false, &pt[..20]).unwrap_err(),
            CryptoError::DataLenRange
        );
        assert_eq!(
            CbcEncryptor::new(&key, &iv[..8], true).unwrap_err(),
            CryptoError::MechanismParamInvalid
        );
        // Without padding the last block decrypts to data; as CBC_PAD it is bad padding.
        assert_eq!(
            cbc_decrypt(&key, &iv, true, &ct).unwrap_err(),
            CryptoError::EncryptedDataInvalid
        );
    }

    #[test]
    fn pkcs7_checks() {
        let mut b = [0u8; 16];
        assert_eq!(pkcs7_pad_len(&b), None);
        b[15] = 1;
        assert_eq!(pkcs7_pad_len(&b), Some(1));
        b[15] = 17;
        assert_eq!(pkcs7_pad_len(&b), None);
        b = [16; 16];
        assert_eq!(pkcs7_pad_len(&b), Some(16));
        b[0] = 15;
        assert_eq!(pkcs7_pad_len(&b), None);
        let mut b = [0xaa; 16];
        b[13..].copy_from_slice(&[3, 3, 3]);
        assert_eq!(pkcs7_pad_len(&b), Some(3));
        b[13] = 2;
        assert_eq!(pkcs7_pad_len(&b), None);
    }

    #[test]
    fn cbc_streaming_any_split() {
        let key = AesKey::new(&[0x11; 24]).unwrap();
        let iv = [0x22u8; 16];
        for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 100] {
            let pt: Vec<u8> = (0..len).map(|i| (i * 3) as u8).collect();
            let one_shot = cbc_encrypt(&key, &iv, true, &pt).unwrap();
            assert_eq!(one_shot.len(), (len / 16 + 1) * 16);
            for step in [1usize, 5, 16, 17] {
                let mut e = CbcEncryptor::new(&key, &iv, true).unwrap();
                let mut ct = Vec::new();
                for c in pt.chunks(step) {
                    let want = e.update_output_len(c.len());
                    let out = e.update(c).unwrap();
                    assert_eq!(out.len(), want);
                    ct.extend_from_slice(&out);
                }
                assert_eq!(e.finish_output_len(), 16);
                ct.extend_from_slice(&e.finish().unwrap());
                assert_eq!(ct, one_shot);
                let mut d = CbcDecryptor::new(&key, &iv, true).unwrap();
                let mut back = Vec::new();
                for c in ct.chunks(step) {
                    let want = d.update_output_len(c.len());
                    let out = d.update(c).unwrap();
                    assert_eq!(out.len(), want);
                    back.extend_from_slice(&out);
                }
                // The last block is held back until finish.
                assert_eq!(back.len(), ct.len() - 16);
                back.extend_from_slice(&d.finish().unwrap());
                assert_eq!(back, pt);
            }
        }
        // A streaming decryption that ends mid-block.
        let mut d = CbcDecryptor::new(&key, &iv, true).unwrap();
        d.update(&[0u8; 20]).unwrap();
        assert_eq!(d.finish().unwrap_err(), CryptoError::EncryptedDataLenRange);
    }

    /// RFC 3394 §4.1-4.6; RFC 5649 §6; and KWP with 128/256-bit KEKs (from Python
    /// `cryptography`). AES-192 KEKs exercise the in-house implementation.
    #[test]
    fn key_wrap_known_answers() {
        let kek128 = "000102030405060708090a0b0c0d0e0f";
        let kek192 = "000102030405060708090a0b0c0d0e0f1011121314151617";
        let kek256 = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
        let d128 = "00112233445566778899aabbccddeeff";
        let d192 = "00112233445566778899aabbccddeeff0001020304050607";
        let d256 = "00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f";
        let kw = [
            (
                kek128,
                d128,
                "1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5",
            ),
            (
                kek192,
                d128,
                "96778b25ae6ca435f92b5b97c050aed2468ab8a17ad84e5d",
            ),
            (
                kek256,
                d128,
                "64e8c3f9ce0f5ba263e9777905818a2a93c8191e7d6e8ae7",
            ),
            (
                kek192,
                d192,
                "031d33264e15d33268f24ec260743edce1c6c7ddee725a936ba814915c6762d2",
            ),
            (
                kek256,
                d192,
                "a8f9bc1612c68b3ff6e6f4fbe30e71e4769c8b80a32cb8958cd5d17d6b254da1",
            ),
            (
                kek256,
                d256,
                "28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21",
            ),
        ];
        for (k, d, c) in kw {
            let kek = key(k);
            assert_eq!(key_wrap(&kek, &hex(d)).unwrap(), hex(c), "{k} {d}");
            assert_eq!(&key_unwrap(&kek, &hex(c)).unwrap()[..], &hex(d)[..]);
            let mut bad = hex(c);
            bad[3] ^= 1;
            assert_eq!(
                key_unwrap(&kek, &bad).unwrap_err(),
                CryptoError::WrappedKeyInvalid
            );
        }
        let kek5649 = "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8";
        let kwp = [
            (
                kek5649,
                "c37b7e6492584340bed12207808941155068f738",
                "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a",
            ),
            (
                kek5649,
                "466f7250617369",
                "afbeb0f07dfbf5419200f2ccb50bb24f",
            ),
            (kek128, "466f7250617369", "be80535e12e9394c8f8df26bd9528a35"),
            (
                kek256,
                "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d",
                "c17019e5e5cb2e42e21952406288bd97fce2ad6b233ff1bd6b367071c74ad06bbe05b90f5c8a8471",
            ),
        ];
        for (k, d, c) in kwp {
            let kek = key(k);
            assert_eq!(key_wrap_pad(&kek, &hex(d)).unwrap(), hex(c), "{k} {d}");
            assert_eq!(&key_unwrap_pad(&kek, &hex(c)).unwrap()[..], &hex(d)[..]);
            let mut bad = hex(c);
            bad[0] ^= 0x40;
            assert_eq!(
                key_unwrap_pad(&kek, &bad).unwrap_err(),
                CryptoError::WrappedKeyInvalid
            );
        }
    }

    #[test]
    fn key_wrap_lengths_and_cross_checks() {
        for klen in [16usize, 24, 32] {
            let kek = AesKey::new(&vec![0x5a; klen]).unwrap();
            assert_eq!(
                key_wrap(&kek, &[0; 8]).unwrap_err(),
                CryptoError::DataLenRange
            );
            assert_eq!(
                key_wrap(&kek, &[0; 17]).unwrap_err(),
                CryptoError::DataLenRange
            );
            assert_eq!(
                key_unwrap(&kek, &[0; 16]).unwrap_err(),
                CryptoError::WrappedKeyLenRange
            );
            assert_eq!(
                key_unwrap(&kek, &[0; 25]).unwrap_err(),
                CryptoError::WrappedKeyLenRange
            );
            assert_eq!(
                key_wrap_pad(&kek, &[]).unwrap_err(),
                CryptoError::DataLenRange
            );
            assert_eq!(
                key_unwrap_pad(&kek, &[0; 8]).unwrap_err(),
                CryptoError::WrappedKeyLenRange
            );
            assert_eq!(
                key_unwrap_pad(&kek, &[0; 20]).unwrap_err(),
                CryptoError::WrappedKeyLenRange
            );
            for len in 1..=41usize {
                let data: Vec<u8> = (0..len).map(|i| (i * 13 + 1) as u8).collect();
                let c = key_wrap_pad(&kek, &data).unwrap();
                assert_eq!(c.len(), len.div_ceil(8) * 8 + 8);
                assert_eq!(&key_unwrap_pad(&kek, &c).unwrap()[..], &data[..]);
                // The in-house code agrees with aws-lc-rs where both exist.
                if klen != 24 && len % 8 == 0 && len >= 16 {
                    assert_eq!(
                        key_wrap(&kek, &data).unwrap(),
                        w(&kek, KW_IV, &data).unwrap()
                    );
                    let (a, r) = w_inv(&kek, &key_wrap(&kek, &data).unwrap()).unwrap();
                    assert_eq!((a, &r[..]), (KW_IV, &data[..]));
                }
            }
            // A KWP blob is no KW blob and vice versa.
            let c = key_wrap_pad(&kek, &[9u8; 16]).unwrap();
            assert_eq!(
                key_unwrap(&kek, &c).unwrap_err(),
                CryptoError::WrappedKeyInvalid
            );
            let c = key_wrap(&kek, &[9u8; 16]).unwrap();
            assert_eq!(
                key_unwrap_pad(&kek, &c).unwrap_err(),
                CryptoError::WrappedKeyInvalid
            );
        }
    }

    #[test]
    fn contexts_are_send() {
        fn send<T: Send + Sync>() {}
        send::<AesKey>();
        send::<CbcEncryptor>();
        send::<CbcDecryptor>();
    }
}
