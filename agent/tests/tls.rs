//! The two transport layers: TLS (server and mutual, certificates made here with rcgen) and
//! the `server.ip` allow-list.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::json;

/// A CA and what it signed, as PEM files in `dir`.
struct Pki {
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let ca = params.self_signed(&ca_key).unwrap();
        Pki { ca, ca_key }
    }

    /// (certificate PEM, key PEM) for a server (localhost, 127.0.0.1) or a client.
    fn issue(&self, server: bool) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        params.distinguished_name.push(
            DnType::CommonName,
            if server { "agent" } else { "client app" },
        );
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// A TLS client trusting `ca_pem`, with a client certificate when given.
fn connector(ca_pem: &str, client: Option<&(String, String)>) -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .map(Result::unwrap)
                .collect();
            builder
                .with_client_auth_cert(
                    chain,
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                )
                .unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// GET /v1/health over TLS; the error when the handshake or the exchange fails.
async fn health_over_tls(
    addr: SocketAddr,
    tls: &tokio_rustls::TlsConnector,
) -> Result<Answer, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").unwrap();
    let stream = tls
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    send_on(stream, "GET", "/v1/health", None, b"").await
}

#[tokio::test(flavor = "multi_thread")]
async fn server_tls_serves_https_only() {
    let service = Service::create(&[("ES256", "k-es256")]);
    let dir = service.dir.path();
    let pki = Pki::new("agent test CA");
    let (cert, key) = pki.issue(true);
    let config = service.config("config.json", |c| {
        c["server"]["tlsOptions"] = json!({
            "tlsType": 1, "caCertFile": "",
            "certFile": write(dir, "server.crt", &cert), "keyFile": write(dir, "server.key", &key)
        })
    });
    let agent = service.start(&config);

    let ok = health_over_tls(agent.addr, &connector(&pki.ca.pem(), None))
        .await
        .expect("HTTPS works");
    assert_eq!(ok.status, 200);
    // A client that does not trust the agent's CA stops at the handshake.
    let stranger = Pki::new("another CA");
    let err = health_over_tls(agent.addr, &connector(&stranger.ca.pem(), None))
        .await
        .unwrap_err();
    assert!(
        err.starts_with("handshake: ") && err.contains("UnknownIssuer"),
        "{err}"
    );
    // Plain HTTP gets no HTTP answer.
    let tcp = tokio::net::TcpStream::connect(agent.addr).await.unwrap();
    assert!(send_on(tcp, "GET", "/v1/health", None, b"").await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_needs_a_client_certificate_from_the_ca() {
    let service = Service::create(&[("ES256", "k-es256")]);
    let dir = service.dir.path();
    let pki = Pki::new("agent test CA");
    let (cert, key) = pki.issue(true);
    let client = pki.issue(false);
    let config = service.config("config.json", |c| {
        c["server"]["tlsOptions"] = json!({
            "tlsType": 2,
            "caCertFile": write(dir, "ca.crt", &pki.ca.pem()),
            "certFile": write(dir, "server.crt", &cert),
            "keyFile": write(dir, "server.key", &key)
        })
    });
    let agent = service.start(&config);

    let ok = health_over_tls(agent.addr, &connector(&pki.ca.pem(), Some(&client)))
        .await
        .expect("mTLS works");
    assert_eq!(ok.status, 200);
    // TLS 1.3: the client finishes its side of the handshake first; the server's refusal
    // arrives as an alert when the client reads.
    let err = refused_exchange(agent.addr, &connector(&pki.ca.pem(), None)).await;
    assert!(err.contains("CertificateRequired"), "{err}");
    let rogue = Pki::new("rogue CA").issue(false);
    let err = refused_exchange(agent.addr, &connector(&pki.ca.pem(), Some(&rogue))).await;
    assert!(err.contains("UnknownCA"), "{err}");
    // Still serving the right client afterwards.
    let again = health_over_tls(agent.addr, &connector(&pki.ca.pem(), Some(&client)))
        .await
        .unwrap();
    assert_eq!(again.status, 200);
}

/// Sends a raw request over TLS and reads; returns the error that must end it.
async fn refused_exchange(addr: SocketAddr, tls: &tokio_rustls::TlsConnector) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut stream = match tls.connect(name, tcp).await {
        Ok(s) => s,
        Err(e) => return e.to_string(),
    };
    if let Err(e) = stream
        .write_all(b"GET /v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
    {
        return e.to_string();
    }
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer).await {
        Ok(_) => panic!(
            "an answer without a valid client certificate: {}",
            String::from_utf8_lossy(&answer)
        ),
        Err(e) => e.to_string(),
    }
}

/// GET /v1/health from a chosen loopback source address.
async fn health_from(source: [u8; 4], addr: SocketAddr) -> Result<Answer, String> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    let stream = socket.connect(addr).await.map_err(|e| e.to_string())?;
    send_on(stream, "GET", "/v1/health", None, b"").await
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_list_closes_connections_from_other_addresses() {
    let service = Service::create(&[("ES256", "k-es256")]);
    let config = service.config("config.json", |c| {
        c["server"]["ip"] = json!("127.0.0.2, 127.0.0.3")
    });
    let agent = service.start(&config);

    assert_eq!(
        health_from([127, 0, 0, 2], agent.addr)
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        health_from([127, 0, 0, 3], agent.addr)
            .await
            .unwrap()
            .status,
        200
    );
    let refused = health_from([127, 0, 0, 1], agent.addr).await;
    assert!(refused.is_err(), "127.0.0.1 got an answer: {refused:?}");
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(
        agent
            .stderr()
            .contains("connection from 127.0.0.1 refused: not in server.ip"),
        "{}",
        agent.stderr()
    );
}
