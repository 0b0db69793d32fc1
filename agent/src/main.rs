//! `key4c-jwt-server`: the JWT agent (README, "The JWT agent").
//!
//! ```text
//! key4c-jwt-server [-config PATH | --config PATH]     serve (default ./config.json)
//! key4c-jwt-server -version | --version
//! key4c-jwt-server bench [-config PATH] [--connections N] [--seconds S] [--json]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use key4c_jwt_server::{bench, config::Config, http, prepare, server, Agent, VERSION_LINE};

const USAGE: &str = "usage: key4c-jwt-server [-config PATH] | -version | bench [-config PATH] [--connections N] [--seconds S] [--sign-seconds S] [--json]";

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().filter_or("KEY4C_AGENT_LOG", "info"))
        .format_target(false)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("key4c-jwt-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `-name VALUE`, `--name VALUE` or `--name=VALUE`.
fn option(args: &[String], name: &str) -> Result<Option<String>, String> {
    for (i, a) in args.iter().enumerate() {
        let bare = a.trim_start_matches('-');
        if a.starts_with('-') && bare == name {
            return args
                .get(i + 1)
                .cloned()
                .map(Some)
                .ok_or_else(|| format!("{a} needs a value"));
        }
        if let Some(v) = a.strip_prefix(&format!("--{name}=")) {
            return Ok(Some(v.to_string()));
        }
    }
    Ok(None)
}

fn flag(args: &[String], name: &str) -> bool {
    args.iter()
        .any(|a| a.starts_with('-') && a.trim_start_matches('-') == name)
}

fn run(args: &[String]) -> Result<(), String> {
    if flag(args, "version") {
        println!("{VERSION_LINE}");
        return Ok(());
    }
    if flag(args, "help") || flag(args, "h") {
        println!("{USAGE}");
        return Ok(());
    }
    let (is_bench, rest) = match args.first().map(String::as_str) {
        Some("bench") => (true, &args[1..]),
        _ => (false, args),
    };
    let known: &[&str] = if is_bench {
        &["config", "connections", "seconds", "sign-seconds", "json"]
    } else {
        &["config"]
    };
    let mut i = 0;
    while i < rest.len() {
        let a = &rest[i];
        let name = a.trim_start_matches('-').split('=').next().unwrap_or("");
        if !a.starts_with('-') || !known.contains(&name) {
            return Err(format!("unknown argument {a:?}\n{USAGE}"));
        }
        i += if a.contains('=') || name == "json" {
            1
        } else {
            2
        };
    }
    let path = PathBuf::from(option(rest, "config")?.unwrap_or_else(|| "config.json".into()));
    let config = Config::load(&path)?;
    if is_bench {
        let number = |name: &str, default: u64| -> Result<u64, String> {
            option(rest, name)?
                .map(|v| {
                    v.parse()
                        .map_err(|_| format!("--{name} {v:?} is not a number"))
                })
                .unwrap_or(Ok(default))
        };
        let options = bench::BenchOptions {
            connections: number("connections", 16)? as usize,
            seconds: number("seconds", 10)?,
            sign_seconds: number("sign-seconds", 5)?,
            json: flag(rest, "json"),
        };
        return bench::run(&config, &options);
    }
    serve(&config)
}

fn serve(config: &Config) -> Result<(), String> {
    // Everything that can refuse the start happens here, before any thread exists.
    let Agent {
        app,
        listener,
        tls,
        mode,
        allow,
    } = prepare(config, None)?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let handle = axum_server::Handle::new();
        server::stop_on_signal(handle.clone())
            .map_err(|e| format!("cannot watch for signals: {e}"))?;
        // Announced once SIGTERM is handled: a supervisor may stop the agent right after.
        let id = &app.token.identity;
        let default = app
            .token
            .keys()
            .by_kid
            .get(&app.default_kid)
            .map(|k| k.label.clone())
            .unwrap_or_default();
        println!(
            "key4c-jwt-server: listening on {addr} (TLS: {:?}), token {:?} serial {}, {} keys, default key {:?} kid {}",
            mode,
            id.label,
            id.serial,
            app.token.keys().by_kid.len(),
            default,
            app.default_kid
        );
        server::serve(
            listener,
            tls,
            allow,
            http::router(std::sync::Arc::clone(&app)),
            handle,
        )
        .await
        .map_err(|e| format!("serving failed: {e}"))
    })?;
    drop(runtime);
    // The handlers are gone: the token is the agent's alone again.
    match std::sync::Arc::try_unwrap(app)
        .ok()
        .and_then(|app| std::sync::Arc::try_unwrap(app.token).ok())
    {
        Some(token) => {
            if let Err(e) = token.logout() {
                log::warn!("{e}");
            }
            token.close();
            log::info!("logged out; the module is finalised");
        }
        None => log::warn!("the token is still in use: the exit closes it"),
    }
    log::info!("stopped");
    Ok(())
}
