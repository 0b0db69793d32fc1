//! The module's configuration: one TOML file named by `KEY4C_CONF`, the store directory from
//! `KEY4C_STORE`, and embedded defaults when neither is set.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::crypto::master_key::{DEFAULT_KDF_ITERATIONS, MAX_KDF_ITERATIONS, MIN_KDF_ITERATIONS};
pub use crate::store::access::Access;

/// Environment variable naming the configuration file.
pub const ENV_CONF: &str = "KEY4C_CONF";
/// Environment variable naming the store directory (overrides the file's `store`).
pub const ENV_STORE: &str = "KEY4C_STORE";
/// Environment variable naming this user's key4c state directory (overrides `state_dir`).
pub const ENV_STATE_DIR: &str = "KEY4C_STATE_DIR";
/// Environment variable with the log level (`error`, `warn`, `info`, `debug`, `trace`, `off`).
pub const ENV_LOG: &str = "KEY4C_LOG";
/// Environment variable naming a log file (default: stderr).
pub const ENV_LOG_FILE: &str = "KEY4C_LOG_FILE";

/// Default number of consecutive wrong PINs that locks a role (spec section 3).
pub const DEFAULT_PIN_RETRY_LIMIT: u32 = 5;

/// A `major.minor` version as it appears in CK_VERSION.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// Major number.
    pub major: u8,
    /// Minor number.
    pub minor: u8,
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bad =
            || serde::de::Error::custom(format!("version {s:?} is not MAJOR.MINOR (0..=255 each)"));
        let (a, b) = s.split_once('.').ok_or_else(bad)?;
        Ok(Version {
            major: a.parse().map_err(|_| bad())?,
            minor: b.parse().map_err(|_| bad())?,
        })
    }
}

/// The configuration file's contents. Unknown keys are an error, so a typo is never ignored.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Store directory. `KEY4C_STORE` overrides it; default: `<user data dir>/key4c/store`.
    pub store: Option<PathBuf>,
    /// Who may read the store: `private` (its owner; 0700/0600) or `group` (0770/0660).
    pub store_access: Access,
    /// This user's key4c state directory, where the newest commit seen of each token is kept
    /// to notice a store restored from a copy. `KEY4C_STATE_DIR` overrides it; default:
    /// `<user state dir>/key4c` (`~/.local/state/key4c`).
    pub state_dir: Option<PathBuf>,
    /// Notice a store restored from an earlier copy and refuse it (off for rigs that put a
    /// golden copy of a store back before every run).
    pub restore_check: bool,
    /// Open a store older than the newest commit seen (never from a file: only the `key4c`
    /// command with which the SO accepts a deliberate restore sets it).
    #[serde(skip)]
    pub accept_restore: bool,
    /// How long a call waits for the store while other processes have it or queue for it,
    /// in milliseconds (100..=600000); then it fails with a log line saying why.
    pub store_wait_ms: u64,
    /// `manufacturerID` of the library, slot and token.
    pub manufacturer: String,
    /// `hardwareVersion` of slot and token.
    pub hardware_version: Version,
    /// `firmwareVersion` of the token.
    pub firmware_version: Version,
    /// The slot's ID: stable across runs, processes and C_InitToken.
    pub slot_id: u64,
    /// Consecutive wrong PINs that lock a role, 1..=15.
    pub pin_retry_limit: u32,
    /// PBKDF2 iterations for PIN-derived keys, at least 1,000.
    pub kdf_iterations: u32,
    /// Allow the standard self-service C_SetPIN of the User PIN (off on a Key4C V3).
    pub allow_user_set_pin: bool,
    /// Log level when `KEY4C_LOG` is not set.
    pub log_level: Option<String>,
    /// Log file when `KEY4C_LOG_FILE` is not set.
    pub log_file: Option<PathBuf>,
    /// The service this module is bound to (the agent's `uuid`): a store of another service
    /// shows no token.
    pub uuid: Option<String>,
    /// The service's API key (the agent's `apiKey`): a wrong one shows no token.
    pub api_key: Option<String>,
    /// The vendor's public key file (written by `key4c vendor keygen`), which verifies the
    /// vendor's approval of an SO unlock.
    pub vendor_public_key: Option<PathBuf>,
    /// Maildir that receives the "unlock completed" notice (default: `<store>/../outbox`).
    pub outbox: Option<PathBuf>,
    /// SMTP server (host:port) that also receives the notice, when set.
    pub smtp_server: Option<String>,
    /// Sender address of the notice.
    pub mail_from: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            store: None,
            store_access: Access::Private,
            state_dir: None,
            restore_check: true,
            accept_restore: false,
            store_wait_ms: crate::store::DEFAULT_STORE_WAIT.as_millis() as u64,
            manufacturer: "Key4C Emulator".into(),
            hardware_version: Version { major: 3, minor: 0 },
            firmware_version: Version { major: 3, minor: 0 },
            slot_id: 0,
            pin_retry_limit: DEFAULT_PIN_RETRY_LIMIT,
            kdf_iterations: DEFAULT_KDF_ITERATIONS,
            allow_user_set_pin: false,
            log_level: None,
            log_file: None,
            uuid: None,
            api_key: None,
            vendor_public_key: None,
            outbox: None,
            smtp_server: None,
            mail_from: "key4c@localhost".into(),
        }
    }
}

impl Config {
    /// Reads the configuration the environment names, or the defaults.
    pub fn from_env() -> Result<Config, String> {
        let mut config = match std::env::var_os(ENV_CONF) {
            Some(path) => Config::from_file(Path::new(&path))?,
            None => Config::default(),
        };
        if let Some(store) = std::env::var_os(ENV_STORE) {
            if store.is_empty() {
                return Err(format!(
                    "{ENV_STORE} is set but empty: name the store directory, or unset it for the default"
                ));
            }
            config.store = Some(PathBuf::from(store));
        }
        if let Some(dir) = std::env::var_os(ENV_STATE_DIR).filter(|d| !d.is_empty()) {
            config.state_dir = Some(PathBuf::from(dir));
        }
        if let Ok(level) = std::env::var(ENV_LOG) {
            check_log_level(&level).map_err(|e| format!("{ENV_LOG}: {e}"))?;
        }
        Ok(config)
    }

    /// Makes the store directory an absolute path, resolved once against the working
    /// directory (a relative one would follow every later change of it), and says so in the
    /// log when it was relative.
    pub fn resolve_store(&mut self) -> Result<(), String> {
        let dir = self.store_dir();
        if dir.as_os_str().is_empty() {
            return Err("the store path is empty: name the store directory".into());
        }
        if !dir.is_absolute() {
            let absolute = std::path::absolute(&dir)
                .map_err(|e| format!("cannot resolve the store path {}: {e}", dir.display()))?;
            log::warn!(
                "the store path {} is relative: using {}",
                dir.display(),
                absolute.display()
            );
            self.store = Some(absolute);
        }
        Ok(())
    }

    /// Reads and checks one configuration file.
    pub fn from_file(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        Config::parse(&text).map_err(|e| format!("config file {}: {e}", path.display()))
    }

    /// Parses and checks configuration text.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.message().to_string())?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        if !(1..=15).contains(&self.pin_retry_limit) {
            return Err(format!(
                "pin_retry_limit = {} is outside 1..=15",
                self.pin_retry_limit
            ));
        }
        if !(MIN_KDF_ITERATIONS..=MAX_KDF_ITERATIONS).contains(&self.kdf_iterations) {
            return Err(format!(
                "kdf_iterations = {} is outside {MIN_KDF_ITERATIONS}..={MAX_KDF_ITERATIONS}",
                self.kdf_iterations
            ));
        }
        if !(100..=600_000).contains(&self.store_wait_ms) {
            return Err(format!(
                "store_wait_ms = {} is outside 100..=600000",
                self.store_wait_ms
            ));
        }
        if self.manufacturer.len() > 32 {
            return Err("manufacturer is longer than 32 bytes".into());
        }
        if self
            .store
            .as_ref()
            .is_some_and(|s| s.as_os_str().is_empty())
        {
            return Err(
                "store = \"\" names no directory: name the store directory, or leave the key out for the default"
                    .into(),
            );
        }
        if let Some(level) = &self.log_level {
            check_log_level(level).map_err(|e| format!("log_level: {e}"))?;
        }
        Ok(())
    }

    /// The state directory this configuration uses (`None` where the user has none).
    pub fn state_dir(&self) -> Option<PathBuf> {
        self.state_dir.clone().or_else(|| {
            dirs::state_dir()
                .or_else(dirs::data_dir)
                .map(|d| d.join("key4c"))
        })
    }

    /// How the token's store is opened.
    pub fn store_options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            access: self.store_access,
            state_dir: self.state_dir().filter(|_| self.restore_check),
            accept_restore: self.accept_restore,
            wait: std::time::Duration::from_millis(self.store_wait_ms),
        }
    }

    /// The store directory this configuration uses.
    pub fn store_dir(&self) -> PathBuf {
        match &self.store {
            Some(dir) => dir.clone(),
            None => default_store_dir(),
        }
    }
}

/// The levels a log filter may name.
const LOG_LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// A log filter: a level, or comma-separated `LEVEL` / `TARGET=LEVEL` directives. (The logger
/// alone would take an unknown word for a module name and log nothing, without a word.)
pub(crate) fn check_log_level(filter: &str) -> Result<(), String> {
    let bad = |what: &str| {
        Err(format!(
            "{what:?} is not a log level (one of {}, or TARGET=LEVEL)",
            LOG_LEVELS.join(", ")
        ))
    };
    if filter.trim().is_empty() {
        return bad(filter);
    }
    for directive in filter.split(',') {
        let level = directive
            .rsplit_once('=')
            .map_or(directive, |(_, l)| l)
            .trim();
        if !LOG_LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level)) {
            return bad(directive);
        }
    }
    Ok(())
}

/// `<user data dir>/key4c/store`, or `./key4c-store` where the platform has no data dir.
pub fn default_store_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("key4c")
        .join("store")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.pin_retry_limit, 5);
        assert_eq!(c.manufacturer, "Key4C Emulator");
        let c =
            Config::parse("pin_retry_limit = 3\nhardware_version = \"3.1\"\nkdf_iterations = 1000")
                .unwrap();
        assert_eq!(c.pin_retry_limit, 3);
        assert_eq!(c.hardware_version, Version { major: 3, minor: 1 });
    }

    #[test]
    fn rejects_bad_values_and_unknown_keys() {
        assert!(Config::parse("pin_retry_limit = 16")
            .unwrap_err()
            .contains("1..=15"));
        assert!(Config::parse("pin_retry_limit = 0").is_err());
        assert_eq!(
            Config::parse("store_wait_ms = 99").unwrap_err(),
            "store_wait_ms = 99 is outside 100..=600000"
        );
        assert_eq!(
            Config::parse("store_wait_ms = 2500")
                .unwrap()
                .store_options()
                .wait,
            std::time::Duration::from_millis(2500)
        );
        assert!(Config::parse("kdf_iterations = 999")
            .unwrap_err()
            .contains("outside 1000..=10000000"));
        assert!(Config::parse("kdf_iterations = 10000001")
            .unwrap_err()
            .contains("outside 1000..=10000000"));
        assert!(Config::parse("pin_retry_limt = 3")
            .unwrap_err()
            .contains("unknown field"));
        assert!(Config::parse("hardware_version = \"3\"").is_err());
    }
}
