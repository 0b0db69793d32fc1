//! Handing `key4c.apiKey` to key4c's module. The module reads its service binding (`api_key`)
//! from the TOML file `KEY4C_CONF` names, at `C_Initialize`, and shows no token when the key
//! is wrong. The agent gives it a copy of that file with `api_key` set, in an anonymous
//! in-memory file (memfd), so the key never lands on disk; the environment is restored after
//! `C_Initialize`. Other modules ignore the variable.

use std::ffi::OsString;
use std::fs::File;
use std::io::Write as _;
use std::os::fd::AsRawFd as _;

use rustix::fs::{memfd_create, MemfdFlags};
use zeroize::Zeroizing;

/// The variable key4c's module reads its configuration file name from.
pub const ENV_CONF: &str = "KEY4C_CONF";

/// While alive, `KEY4C_CONF` names the bound configuration.
pub struct ModuleBinding {
    _file: File,
    previous: Option<OsString>,
}

/// Points `KEY4C_CONF` at the module configuration with `api_key` added. Call it while the
/// process has one thread (the environment is process-wide).
pub fn bind(api_key: &str) -> Result<ModuleBinding, String> {
    let previous = std::env::var_os(ENV_CONF);
    let mut table: toml::Table = match &previous {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "cannot read the module configuration {}: {e}",
                    path.to_string_lossy()
                )
            })?;
            toml::from_str(&text).map_err(|e| {
                format!(
                    "the module configuration {} is not TOML: {}",
                    path.to_string_lossy(),
                    e.message()
                )
            })?
        }
        None => toml::Table::new(),
    };
    table.insert("api_key".into(), toml::Value::String(api_key.to_string()));
    let text = Zeroizing::new(
        toml::to_string(&table)
            .map_err(|e| format!("cannot write the module configuration: {e}"))?,
    );
    if let Some(toml::Value::String(s)) = table.get_mut("api_key") {
        zeroize::Zeroize::zeroize(s);
    }
    let fd = memfd_create("key4c-agent-module-conf", MemfdFlags::CLOEXEC)
        .map_err(|e| format!("memfd_create failed: {e}"))?;
    let mut file = File::from(fd);
    file.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write the module configuration: {e}"))?;
    std::env::set_var(ENV_CONF, format!("/proc/self/fd/{}", file.as_raw_fd()));
    Ok(ModuleBinding {
        _file: file,
        previous,
    })
}

impl Drop for ModuleBinding {
    fn drop(&mut self) {
        match &self.previous {
            Some(p) => std::env::set_var(ENV_CONF, p),
            None => std::env::remove_var(ENV_CONF),
        }
    }
}
