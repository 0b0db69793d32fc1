//! Helpers for the crypto tests: the OpenSSL CLI as an independent verifier.

use std::path::Path;
use std::process::Command;

pub(crate) const OPENSSL: &str = "/usr/bin/openssl";

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Writes `spki` (DER SubjectPublicKeyInfo) as a PEM public key file.
pub(crate) fn write_pub_pem(path: &Path, spki: &[u8]) {
    let b = base64(spki);
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in b.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    std::fs::write(path, pem).unwrap();
}

/// Runs openssl with `args` in `dir`; true when it exits 0.
pub(crate) fn openssl_ok(dir: &Path, args: &[&str]) -> bool {
    let out = Command::new(OPENSSL)
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    if !out.status.success() {
        eprintln!(
            "openssl {:?} failed: {}{}",
            args,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out.status.success()
}

/// Runs openssl with `args` in `dir`, asserting success; returns stdout.
pub(crate) fn openssl_out(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new(OPENSSL)
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {:?}: {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn base64_known_answers() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
}
