//! Listening: the `server.ip` allow-list, TLS (none, server, mutual) with rustls, and a
//! graceful stop on SIGTERM / SIGINT.

use std::future::{ready, Ready};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum_server::accept::Accept;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use axum_server::Handle;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;

use crate::config::{TlsMode, TlsOptions};

/// How long requests in flight get to finish after SIGTERM.
const GRACE: Duration = Duration::from_secs(10);

/// Accepts a connection only from an allowed address (all when the list is empty), before
/// any TLS handshake; a refused one is closed without an answer and logged.
#[derive(Clone)]
pub struct AllowList(Arc<Vec<IpAddr>>);

impl AllowList {
    pub fn new(ips: Vec<IpAddr>) -> AllowList {
        AllowList(Arc::new(
            ips.into_iter().map(|ip| ip.to_canonical()).collect(),
        ))
    }
}

impl<S> Accept<TcpStream, S> for AllowList {
    type Stream = TcpStream;
    type Service = S;
    type Future = Ready<io::Result<(TcpStream, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let peer = stream.peer_addr().map(|a| a.ip().to_canonical());
        let allowed = match &peer {
            Ok(ip) => self.0.is_empty() || self.0.contains(ip),
            Err(_) => false,
        };
        if !allowed {
            let who =
                peer.map_or_else(|e| format!("an unknown address ({e})"), |ip| ip.to_string());
            log::warn!("connection from {who} refused: not in server.ip");
            return ready(Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "address not allowed",
            )));
        }
        // Small request/answer pairs: waiting to coalesce them only adds latency.
        let _ = stream.set_nodelay(true);
        ready(Ok((stream, service)))
    }
}

fn read_certs(path: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("server.tlsOptions.{what} {path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "server.tlsOptions.{what} {path} holds no certificate"
        ));
    }
    Ok(certs)
}

/// The rustls configuration of a TLS mode; `None` for no TLS.
pub fn tls_config(mode: TlsMode, o: &TlsOptions) -> Result<Option<Arc<ServerConfig>>, String> {
    if mode == TlsMode::None {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs = read_certs(&o.cert_file, "certFile")?;
    let key = PrivateKeyDer::from_pem_file(&o.key_file)
        .map_err(|e| format!("server.tlsOptions.keyFile {}: {e}", o.key_file))?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = if mode == TlsMode::Mutual {
        let mut roots = RootCertStore::empty();
        for ca in read_certs(&o.ca_cert_file, "caCertFile")? {
            roots
                .add(ca)
                .map_err(|e| format!("server.tlsOptions.caCertFile {}: {e}", o.ca_cert_file))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("server.tlsOptions.caCertFile {}: {e}", o.ca_cert_file))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        format!(
            "server.tlsOptions.certFile / keyFile {} / {}: {e}",
            o.cert_file, o.key_file
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

/// Serves `router` on `listener` until `handle` is told to stop.
pub async fn serve(
    listener: std::net::TcpListener,
    tls: Option<Arc<ServerConfig>>,
    allow: AllowList,
    router: Router,
    handle: Handle<SocketAddr>,
) -> io::Result<()> {
    let service = router.into_make_service();
    match tls {
        None => {
            axum_server::from_tcp(listener)?
                .acceptor(allow)
                .handle(handle)
                .serve(service)
                .await
        }
        Some(config) => {
            let acceptor = RustlsAcceptor::new(RustlsConfig::from_config(config)).acceptor(allow);
            axum_server::from_tcp(listener)?
                .acceptor(acceptor)
                .handle(handle)
                .serve(service)
                .await
        }
    }
}

/// Starts a graceful stop when SIGTERM or SIGINT arrives.
pub fn stop_on_signal(handle: Handle<SocketAddr>) -> io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        log::warn!("{name}: finishing the requests in flight, then stopping");
        handle.graceful_shutdown(Some(GRACE));
    });
    Ok(())
}
