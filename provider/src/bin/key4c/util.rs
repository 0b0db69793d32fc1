//! Small encodings the commands share: hex, base64url, dates, JSON output.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex (either case, surrounding white space ignored) to bytes.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    key4c_pkcs11::token::service::hex_decode(s.trim())
}

/// base64url without padding (RFC 7515 / RFC 7517).
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A 32-hex-digit UUID in its hyphenated form.
pub fn hyphenated(uuid_hex: &str) -> String {
    match uuid::Uuid::try_parse(uuid_hex) {
        Ok(u) => u.hyphenated().to_string(),
        Err(_) => uuid_hex.to_string(),
    }
}

/// The date part of an RFC 3339 time (`2024-05-01T10:22:33Z` → `2024-05-01`).
pub fn date_of(rfc3339: &str) -> &str {
    rfc3339.get(..10).unwrap_or(rfc3339)
}

/// Today (UTC) as a CK_DATE: `YYYYMMDD`.
pub fn ck_date_today() -> [u8; 8] {
    let now = time::OffsetDateTime::now_utc();
    let s = format!(
        "{:04}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    );
    let mut out = [b'0'; 8];
    out.copy_from_slice(&s.as_bytes()[..8]);
    out
}

/// A CK_DATE (`YYYYMMDD`) as `YYYY-MM-DD`; `None` when empty or malformed.
pub fn ck_date_text(date: &[u8]) -> Option<String> {
    if date.len() != 8 || !date.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let s = std::str::from_utf8(date).ok()?;
    Some(format!("{}-{}-{}", &s[..4], &s[4..6], &s[6..]))
}

/// Prints a JSON value, pretty, to stdout.
pub fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// "s" unless `n` is 1.
pub fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
