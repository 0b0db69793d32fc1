//! Just enough DER to build and read the structures the mechanisms need: SubjectPublicKeyInfo,
//! RFC 5915 `ECPrivateKey`, PKCS#1 `RSAPrivateKey`/`RSAPublicKey`, PKCS#8 and the OCTET STRING
//! and OID encodings of PKCS#11 attributes.
//!
//! Builders that may carry private material size their buffers up front (see
//! [`tlv_len`]) so that no reallocation leaves an unzeroized copy behind.

/// DER tag of an INTEGER.
pub(crate) const TAG_INTEGER: u8 = 0x02;
/// DER tag of a BIT STRING.
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
/// DER tag of an OCTET STRING.
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
/// DER tag of a SEQUENCE.
pub(crate) const TAG_SEQUENCE: u8 = 0x30;

/// Number of bytes a TLV with `content_len` bytes of content takes.
pub(crate) const fn tlv_len(content_len: usize) -> usize {
    1 + header_len_len(content_len) + content_len
}

const fn header_len_len(len: usize) -> usize {
    if len < 0x80 {
        1
    } else if len <= 0xff {
        2
    } else if len <= 0xffff {
        3
    } else if len <= 0xff_ffff {
        4
    } else {
        5
    }
}

/// Appends a DER length.
pub(crate) fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = (len as u64).to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.push(0x80 | (bytes.len() - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// Appends a whole TLV.
pub(crate) fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    push_len(out, content.len());
    out.extend_from_slice(content);
}

/// A fresh TLV.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(tlv_len(content.len()));
    push_tlv(&mut out, tag, content);
    out
}

/// `bytes` without its leading zero bytes (an empty slice stays empty).
pub(crate) fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    &bytes[skip..]
}

/// Length of the DER INTEGER encoding of the unsigned big-endian number `bytes`.
pub(crate) fn uint_tlv_len(bytes: &[u8]) -> usize {
    let v = strip_leading_zeros(bytes);
    let content = if v.is_empty() {
        1
    } else {
        v.len() + usize::from(v[0] & 0x80 != 0)
    };
    tlv_len(content)
}

/// Appends the unsigned big-endian number `bytes` as a DER INTEGER.
pub(crate) fn push_uint(out: &mut Vec<u8>, bytes: &[u8]) {
    let v = strip_leading_zeros(bytes);
    out.push(TAG_INTEGER);
    if v.is_empty() {
        out.push(1);
        out.push(0);
        return;
    }
    let pad = v[0] & 0x80 != 0;
    push_len(out, v.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(v);
}

/// Sequential reader of DER TLVs.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Reads the next TLV, whatever its tag. Rejects non-minimal or indefinite lengths.
    pub(crate) fn read_any(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.data.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let (len_bytes, rest) = rest.split_at(n);
            if len_bytes[0] == 0 {
                return None;
            }
            let len = len_bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            if len < 0x80 {
                return None;
            }
            (len, rest)
        };
        if rest.len() < len {
            return None;
        }
        let (content, rest) = rest.split_at(len);
        self.data = rest;
        Some((tag, content))
    }

    /// Reads the next TLV, which must have tag `tag`.
    pub(crate) fn read(&mut self, tag: u8) -> Option<&'a [u8]> {
        match self.read_any()? {
            (t, content) if t == tag => Some(content),
            _ => None,
        }
    }

    /// Reads an INTEGER that must be non-negative; returns its magnitude without leading zeros.
    pub(crate) fn read_uint(&mut self) -> Option<&'a [u8]> {
        let content = self.read(TAG_INTEGER)?;
        if content.is_empty() || content[0] & 0x80 != 0 {
            return None;
        }
        Some(strip_leading_zeros(content))
    }
}

/// The content of `data` if `data` is exactly one TLV with tag `tag`.
pub(crate) fn read_single(data: &[u8], tag: u8) -> Option<&[u8]> {
    let mut r = Reader::new(data);
    let content = r.read(tag)?;
    r.is_empty().then_some(content)
}

/// SubjectPublicKeyInfo from a DER AlgorithmIdentifier (its full TLV) and the key bits.
pub(crate) fn spki(algorithm_identifier: &[u8], public_key: &[u8]) -> Vec<u8> {
    let bit_string_len = tlv_len(public_key.len() + 1);
    let content_len = algorithm_identifier.len() + bit_string_len;
    let mut out = Vec::with_capacity(tlv_len(content_len));
    out.push(TAG_SEQUENCE);
    push_len(&mut out, content_len);
    out.extend_from_slice(algorithm_identifier);
    out.push(TAG_BIT_STRING);
    push_len(&mut out, public_key.len() + 1);
    out.push(0);
    out.extend_from_slice(public_key);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip() {
        for len in [0usize, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x1_0000] {
            let content = vec![0xabu8; len];
            let enc = tlv(TAG_OCTET_STRING, &content);
            assert_eq!(enc.len(), tlv_len(len));
            assert_eq!(read_single(&enc, TAG_OCTET_STRING), Some(&content[..]));
        }
    }

    #[test]
    fn rejects_non_minimal_and_truncated() {
        assert_eq!(
            read_single(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5], TAG_OCTET_STRING),
            None
        );
        assert_eq!(
            read_single(&[0x04, 0x82, 0x00, 0x80], TAG_OCTET_STRING),
            None
        );
        assert_eq!(read_single(&[0x04, 0x03, 1, 2], TAG_OCTET_STRING), None);
        assert_eq!(read_single(&[0x04, 0x01, 1, 2], TAG_OCTET_STRING), None);
        assert_eq!(read_single(&[0x04, 0x80], TAG_OCTET_STRING), None);
    }

    #[test]
    fn unsigned_integers() {
        let mut out = Vec::new();
        push_uint(&mut out, &[0, 0, 0x80, 1]);
        assert_eq!(out, [0x02, 0x03, 0x00, 0x80, 0x01]);
        assert_eq!(uint_tlv_len(&[0, 0, 0x80, 1]), out.len());
        let mut r = Reader::new(&out);
        assert_eq!(r.read_uint(), Some(&[0x80, 1][..]));
        let mut out = Vec::new();
        push_uint(&mut out, &[]);
        assert_eq!(out, [0x02, 0x01, 0x00]);
        assert_eq!(Reader::new(&[0x02, 0x01, 0x80]).read_uint(), None);
    }
}
