//! Logging to stderr or a file, at the level `KEY4C_LOG` (or the config) names.
//! Nothing logged anywhere in the module contains a PIN or key material.

use std::sync::Once;

use crate::config::{Config, ENV_LOG, ENV_LOG_FILE};

static INIT: Once = Once::new();

/// Installs the logger once per process; later calls do nothing.
pub fn init(config: &Config) {
    INIT.call_once(|| {
        // An invalid level fails C_Initialize (config.rs); the line that says so is logged at
        // the default level, not lost to a filter that matches nothing.
        let level = std::env::var(ENV_LOG)
            .ok()
            .or_else(|| config.log_level.clone())
            .filter(|l| crate::config::check_log_level(l).is_ok())
            .unwrap_or_else(|| "warn".into());
        let mut builder = env_logger::Builder::new();
        builder.parse_filters(&level).format_target(false);
        // sled reports its own I/O failures as debug dumps of nested error types; key4c says
        // the same in one sentence (store::io_sentence). Its lines show when debugging.
        if !["debug", "trace"]
            .iter()
            .any(|l| level.to_ascii_lowercase().contains(l))
        {
            builder.filter_module("sled", log::LevelFilter::Off);
        }
        let file = std::env::var_os(ENV_LOG_FILE)
            .map(std::path::PathBuf::from)
            .or_else(|| config.log_file.clone());
        if let Some(path) = file {
            match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
            {
                Ok(f) => {
                    builder.target(env_logger::Target::Pipe(Box::new(f)));
                }
                Err(e) => eprintln!(
                    "key4c: cannot open log file {}: {e}; logging to stderr",
                    path.display()
                ),
            }
        }
        // The host may have installed a logger of its own through the same `log` crate.
        let _ = builder.try_init();
    });
}
