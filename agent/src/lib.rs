//! The JWT agent: a stand-in for Key4C's `key4cJWTServer`. It issues and verifies JWTs whose
//! signatures the PKCS#11 token makes, over HTTP(S) (see `http` for the endpoints).

pub mod bench;
pub mod config;
pub mod http;
pub mod jwt;
pub mod keys;
pub mod module_binding;
pub mod server;
pub mod token;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use config::{Config, TlsMode};
use cryptoki::types::AuthPin;
use http::App;
use token::{OpenOptions, Token};

/// What `-version` prints, as the vendor's agent does.
pub const VERSION_LINE: &str = "key4cJWTServer Version 1.0.0";

/// The agent, ready to serve.
pub struct Agent {
    pub app: Arc<App>,
    pub listener: TcpListener,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub mode: TlsMode,
    pub allow: server::AllowList,
}

/// Checks the TLS files, binds the port, opens the token and finds the default key: every
/// reason not to start, as one sentence, before anything is served. `listen` overrides the
/// configured address (the bench listens on loopback). Call it before starting threads.
pub fn prepare(config: &Config, listen: Option<SocketAddr>) -> Result<Agent, String> {
    let mode = if listen.is_some() {
        TlsMode::None
    } else {
        config.tls_mode()?
    };
    let tls = server::tls_config(mode, &config.server.tls_options)?;
    let allow = server::AllowList::new(config.allowed_ips()?);
    let addr = listen.unwrap_or(SocketAddr::new(config.agent.listen, config.server.port));
    let listener = TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;

    let module = config.module_path();
    let binding = if config.key4c.api_key.is_empty() {
        log::warn!("key4c.apiKey is empty: the module is not bound to its service's API key");
        None
    } else {
        Some(module_binding::bind(&config.key4c.api_key)?)
    };
    let sessions = match config.agent.sessions {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let token = Token::open(OpenOptions {
        module: &module,
        serial: &config.service_serial()?,
        uuid: &config.key4c.uuid,
        pin: AuthPin::from(config.key4c.pin.to_string()),
        sessions,
    });
    drop(binding);
    let token = Arc::new(token?);

    let keys = token.keys();
    let a = &config.agent;
    let default = match (&a.key_label, &a.key_id) {
        (None, None) => {
            let mut signing: Vec<_> = keys
                .by_kid
                .values()
                .filter(|k| k.family != keys::KeyFamily::Hmac)
                .collect();
            match signing.len() {
                1 => signing.remove(0),
                0 => return Err("the token has no signing key (key4c keys generate --alg ES256 ...)".into()),
                n => {
                    return Err(format!(
                        "the token has {n} signing keys: name the default one with agent.keyLabel or agent.keyId"
                    ))
                }
            }
        }
        (label, id) => keys.find(label.as_deref(), id.as_deref()).ok_or_else(|| {
            let which = label
                .as_ref()
                .map(|l| format!("labelled {l:?}"))
                .or(id.as_ref().map(|i| format!("with CKA_ID {i}")))
                .unwrap_or_default();
            format!("the token has no signing key {which} (or it has no public key with the same CKA_ID)")
        })?,
    };
    if let Some(alg) = a.alg {
        if !alg.fits(default.family) {
            return Err(format!(
                "agent.alg {} does not fit the key {:?} ({:?})",
                alg.name(),
                default.label,
                default.family
            ));
        }
    }
    if default.family == keys::KeyFamily::Hmac && !a.hmac_signing {
        return Err("the default key is an HMAC key but agent.hmacSigning is false".into());
    }
    let app = Arc::new(App {
        default_kid: default.kid.clone(),
        token,
        issuer: config.jwt.issuer.clone(),
        default_alg: a.alg,
        lifetime: a.lifetime_seconds,
        max_lifetime: a.max_lifetime_seconds,
        leeway: a.leeway_seconds,
        hmac_signing: a.hmac_signing,
        clients: a
            .clients
            .iter()
            .map(|c| (c.id.clone(), http::secret_digest(&c.secret)))
            .collect(),
    });
    Ok(Agent {
        app,
        listener,
        tls,
        mode,
        allow,
    })
}
