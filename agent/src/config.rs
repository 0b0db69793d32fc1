//! `config.json`: the vendor's shape (`server`, `key4c`, `jwt`) and this project's extras under
//! `agent`. Unknown keys are refused so a typo is never silently ignored.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use zeroize::{Zeroize, Zeroizing};

use crate::keys::JwtAlg;

/// Where the workspace's build puts key4c's module; the default `agent.module`.
pub const DEFAULT_MODULE: &str = "libkey4c_pkcs11.so";

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: Server,
    pub key4c: Key4c,
    pub jwt: Jwt,
    #[serde(default)]
    pub agent: Agent,
}

/// `server`: who may connect, on which port, over which TLS.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// Allowed client addresses, separated by commas or spaces; `""` allows every address.
    #[serde(default)]
    pub ip: String,
    pub port: u16,
    #[serde(rename = "tlsOptions", default)]
    pub tls_options: TlsOptions,
}

/// `server.tlsOptions`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TlsOptions {
    /// 0 no TLS, 1 server TLS, 2 mutual TLS.
    #[serde(rename = "tlsType", default)]
    pub tls_type: u8,
    #[serde(rename = "caCertFile", default)]
    pub ca_cert_file: String,
    #[serde(rename = "certFile", default)]
    pub cert_file: String,
    #[serde(rename = "keyFile", default)]
    pub key_file: String,
}

/// `key4c`: how to reach the token. The PIN and API key are wiped from memory when dropped.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Key4c {
    pub uuid: String,
    pub pin: Zeroizing<String>,
    #[serde(rename = "apiKey", default)]
    pub api_key: Zeroizing<String>,
}

/// `jwt`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jwt {
    pub issuer: String,
}

/// `agent`: this project's extras (not the vendor's).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Agent {
    /// The PKCS#11 module; default: key4c's, next to this program or in its build directory.
    pub module: Option<PathBuf>,
    /// Address to listen on (the port is `server.port`).
    pub listen: IpAddr,
    /// The default signing key, by `CKA_LABEL` ...
    pub key_label: Option<String>,
    /// ... or by `CKA_ID` in hex.
    pub key_id: Option<String>,
    /// The default `alg` (must fit the key; RSA keys take RS* and PS*).
    pub alg: Option<JwtAlg>,
    /// Lifetime of an issued token when the request names none.
    pub lifetime_seconds: u64,
    /// The longest lifetime a request may ask for.
    pub max_lifetime_seconds: u64,
    /// Clock skew allowed when checking `exp` and `nbf`.
    pub leeway_seconds: u64,
    /// Whether HMAC keys may sign (they always verify).
    pub hmac_signing: bool,
    /// Sessions in the pool; 0 = the number of cores.
    pub sessions: usize,
    /// The client applications and their secrets (HTTP Basic authentication).
    pub clients: Vec<Client>,
}

impl Default for Agent {
    fn default() -> Self {
        Agent {
            module: None,
            listen: IpAddr::from([0, 0, 0, 0]),
            key_label: None,
            key_id: None,
            alg: None,
            lifetime_seconds: 3600,
            max_lifetime_seconds: 86_400,
            leeway_seconds: 30,
            hmac_signing: false,
            sessions: 0,
            clients: Vec::new(),
        }
    }
}

/// One client application.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    pub id: String,
    pub secret: Zeroizing<String>,
}

/// The TLS mode `tlsType` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    None,
    Server,
    Mutual,
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, String> {
        let mut text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the configuration {}: {e}", path.display()))?;
        let parsed = serde_json::from_str::<Config>(&text);
        // The text holds the PIN and the API key.
        text.zeroize();
        let config = parsed.map_err(|e| format!("configuration {}: {e}", path.display()))?;
        config
            .check()
            .map_err(|e| format!("configuration {}: {e}", path.display()))?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        self.tls_mode()?;
        self.allowed_ips()?;
        self.service_serial()?;
        if self.key4c.pin.is_empty() {
            return Err("key4c.pin is empty".into());
        }
        if self.jwt.issuer.is_empty() {
            return Err("jwt.issuer is empty".into());
        }
        let a = &self.agent;
        if a.key_label.is_some() && a.key_id.is_some() {
            return Err("agent.keyLabel and agent.keyId both name a key: keep one".into());
        }
        if let Some(id) = &a.key_id {
            crate::keys::parse_hex(id).ok_or("agent.keyId is not hex")?;
        }
        if a.lifetime_seconds == 0 || a.lifetime_seconds > a.max_lifetime_seconds {
            return Err(format!(
                "agent.lifetimeSeconds = {} is outside 1..=agent.maxLifetimeSeconds ({})",
                a.lifetime_seconds, a.max_lifetime_seconds
            ));
        }
        if a.clients.is_empty() {
            return Err("agent.clients is empty: the API authentication needs at least one client {\"id\", \"secret\"}".into());
        }
        for c in &a.clients {
            if c.id.is_empty() || c.id.contains(':') {
                return Err(format!(
                    "agent.clients: id {:?} is empty or contains ':'",
                    c.id
                ));
            }
            if c.secret.len() < 16 {
                return Err(format!(
                    "agent.clients: the secret of {:?} is shorter than 16 characters",
                    c.id
                ));
            }
        }
        Ok(())
    }

    /// The TLS mode, with its files present in the configuration.
    pub fn tls_mode(&self) -> Result<TlsMode, String> {
        let t = &self.server.tls_options;
        let mode = match t.tls_type {
            0 => return Ok(TlsMode::None),
            1 => TlsMode::Server,
            2 => TlsMode::Mutual,
            n => return Err(format!("server.tlsOptions.tlsType = {n} is not 0, 1 or 2")),
        };
        if t.cert_file.is_empty() || t.key_file.is_empty() {
            return Err(
                "server.tlsOptions.certFile and keyFile are required for tlsType 1 and 2".into(),
            );
        }
        if mode == TlsMode::Mutual && t.ca_cert_file.is_empty() {
            return Err("server.tlsOptions.caCertFile is required for tlsType 2".into());
        }
        Ok(mode)
    }

    /// `server.ip` as addresses; empty = every address.
    pub fn allowed_ips(&self) -> Result<Vec<IpAddr>, String> {
        self.server
            .ip
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpAddr>()
                    .map_err(|_| format!("server.ip: {s:?} is not an IP address"))
            })
            .collect()
    }

    /// The token serial the service UUID names: its first 16 hex digits.
    pub fn service_serial(&self) -> Result<String, String> {
        let hex: String = self
            .key4c
            .uuid
            .trim()
            .chars()
            .filter(|c| *c != '-')
            .collect::<String>()
            .to_ascii_lowercase();
        if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "key4c.uuid {:?} is not a UUID (32 hex digits)",
                self.key4c.uuid
            ));
        }
        Ok(hex[..16].to_string())
    }

    /// The module to load.
    pub fn module_path(&self) -> PathBuf {
        if let Some(m) = &self.agent.module {
            return m.clone();
        }
        // Installed side by side, or both in the same cargo target directory.
        if let Ok(exe) = std::env::current_exe() {
            if let Some(dir) = exe.parent() {
                let beside = dir.join(DEFAULT_MODULE);
                if beside.exists() {
                    return beside;
                }
            }
        }
        PathBuf::from(DEFAULT_MODULE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        let c: Config = serde_json::from_str(text).map_err(|e| e.to_string())?;
        c.check()?;
        Ok(c)
    }

    const GOOD: &str = r#"{
        "server": {"ip": "", "port": 8080, "tlsOptions": {"tlsType": 0}},
        "key4c": {"uuid": "3a01ca0e-fcc9-45df-9304-ad6419b88d80", "pin": "Us3r#Pin.9k", "apiKey": "k"},
        "jwt": {"issuer": "https://issuer.example"},
        "agent": {"clients": [{"id": "app", "secret": "0123456789abcdef"}]}
    }"#;

    #[test]
    fn vendor_shape_and_extras() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.service_serial().unwrap(), "3a01ca0efcc945df");
        assert_eq!(c.tls_mode().unwrap(), TlsMode::None);
        assert!(c.allowed_ips().unwrap().is_empty());
        assert_eq!(c.agent.lifetime_seconds, 3600);
    }

    #[test]
    fn refusals_name_the_key() {
        let bad = |from: &str, to: &str| parse(&GOOD.replace(from, to)).err().unwrap();
        assert!(bad("\"tlsType\": 0", "\"tlsType\": 3").contains("tlsType = 3"));
        assert!(bad("\"tlsType\": 0", "\"tlsType\": 1").contains("certFile"));
        assert!(bad("\"ip\": \"\"", "\"ip\": \"10.0.0.300\"").contains("server.ip"));
        assert!(bad("3a01ca0e-", "3a01ca0x-").contains("key4c.uuid"));
        assert!(bad("\"issuer\"", "\"isuer\"").contains("unknown field"));
        assert!(bad("0123456789abcdef", "short").contains("shorter than 16"));
    }
}
