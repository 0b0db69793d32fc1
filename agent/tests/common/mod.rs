//! Test support: a key4c service in a temporary store (made with the `key4c` CLI built from
//! this workspace), the agent binary started on a loopback port, and an HTTP(S) client.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};

pub const SO_PIN: &str = "So-Pin.2024x";
pub const USER_PIN: &str = "Us3r#Pin.9k";
pub const CLIENT: &str = "app";
pub const SECRET: &str = "app-secret-0123456789";
pub const ISSUER: &str = "https://jwt.example.test";

/// `<target>/<profile>`: where cargo put this test, the module and the `key4c` CLI.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // <target>/<profile>/deps/<test>
    exe.parent()
        .and_then(Path::parent)
        .expect("the test runs from <target>/<profile>/deps")
        .to_path_buf()
}

/// key4c's module: `KEY4C_MODULE`, else the workspace build's.
pub fn module() -> PathBuf {
    if let Some(p) = std::env::var_os("KEY4C_MODULE") {
        return PathBuf::from(p);
    }
    let dir = profile_dir();
    [
        dir.join("libkey4c_pkcs11.so"),
        dir.join("deps/libkey4c_pkcs11.so"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .unwrap_or_else(|| {
        panic!(
            "no libkey4c_pkcs11.so in {}: run cargo build -p key4c first",
            dir.display()
        )
    })
}

/// The `key4c` admin CLI of the same build.
pub fn key4c_cli() -> PathBuf {
    let p = profile_dir().join("key4c");
    assert!(
        p.exists(),
        "no key4c CLI at {}: run cargo build -p key4c first",
        p.display()
    );
    p
}

pub fn agent_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_key4c-jwt-server"))
}

/// A service and its token in a temporary store, with keys.
pub struct Service {
    pub dir: tempfile::TempDir,
    /// The module's configuration file (store, fast KDF).
    pub module_conf: PathBuf,
    pub uuid: String,
    pub api_key: String,
    /// (label, alg, kid) of each generated key.
    pub keys: Vec<(String, String, String)>,
}

impl Service {
    /// `key4c service create`, then one `keys generate` per (alg, label).
    pub fn create(keys: &[(&str, &str)]) -> Service {
        let dir = tempfile::tempdir().expect("temporary directory");
        let module_conf = dir.path().join("key4c.toml");
        std::fs::write(
            &module_conf,
            format!(
                "store = \"{}\"\nkdf_iterations = 1000\n",
                dir.path().join("store").display()
            ),
        )
        .expect("write the module configuration");
        let mut s = Service {
            dir,
            module_conf,
            uuid: String::new(),
            api_key: String::new(),
            keys: Vec::new(),
        };
        let created = s.cli_json(&["service", "create", "--label", "agent-test", "--json"]);
        s.uuid = created["uuid"].as_str().expect("uuid").to_string();
        s.api_key = created["api_key"].as_str().expect("api_key").to_string();
        for (alg, label) in keys {
            let k = s.cli_json(&["keys", "generate", "--alg", alg, "--label", label, "--json"]);
            s.keys.push((
                label.to_string(),
                alg.to_string(),
                k["id"].as_str().expect("id").to_string(),
            ));
        }
        s
    }

    /// The kid of the key with this label.
    pub fn kid(&self, label: &str) -> String {
        self.keys
            .iter()
            .find(|k| k.0 == label)
            .map(|k| k.2.clone())
            .unwrap_or_else(|| panic!("no key {label}"))
    }

    /// Runs the `key4c` CLI on this service with the test PINs in its environment.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_user_pin(args, USER_PIN)
    }

    /// Runs the `key4c` CLI with `user_pin` as `KEY4C_USER_PIN` (the new one for `pin set-user`).
    pub fn cli_with_user_pin(&self, args: &[&str], user_pin: &str) -> Output {
        Command::new(key4c_cli())
            .args(args)
            .env("KEY4C_CONF", &self.module_conf)
            .env("KEY4C_SO_PIN", SO_PIN)
            .env("KEY4C_USER_PIN", user_pin)
            .env_remove("KEY4C_STORE")
            .output()
            .expect("run key4c")
    }

    pub fn cli_json(&self, args: &[&str]) -> Value {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "key4c {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("key4c --json output")
    }

    /// The User PIN's consecutive failures, as the token counts them.
    pub fn user_failures(&self) -> u64 {
        let show = self.cli_json(&["service", "show", "--json"]);
        show["token"]["user_pin"]["failures"]
            .as_u64()
            .expect("user_pin.failures")
    }

    /// A config.json in the vendor's shape; `edit` changes it before it is written.
    pub fn config(&self, name: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
        let mut v = json!({
            "server": {"ip": "", "port": 0, "tlsOptions": {"tlsType": 0, "caCertFile": "", "certFile": "", "keyFile": ""}},
            "key4c": {"uuid": self.uuid, "pin": USER_PIN, "apiKey": self.api_key},
            "jwt": {"issuer": ISSUER},
            "agent": {
                "module": module(),
                "listen": "127.0.0.1",
                "keyLabel": self.keys.first().map(|k| k.0.clone()),
                "clients": [{"id": CLIENT, "secret": SECRET}]
            }
        });
        edit(&mut v);
        let path = self.dir.path().join(name);
        std::fs::write(&path, serde_json::to_vec_pretty(&v).expect("json"))
            .expect("write config.json");
        path
    }

    /// Starts the agent; panics with its stderr when it does not start.
    pub fn start(&self, config: &Path) -> Running {
        Running::start(config, &self.module_conf)
            .unwrap_or_else(|(code, err)| panic!("the agent did not start ({code:?}): {err}"))
    }

    /// Runs the agent expecting it to refuse to start: (exit code, stdout, stderr).
    pub fn refused(&self, config: &Path) -> (Option<i32>, String, String) {
        let out = Command::new(agent_bin())
            .arg("-config")
            .arg(config)
            .env("KEY4C_CONF", &self.module_conf)
            .output()
            .expect("run the agent");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// A running agent process.
pub struct Running {
    pub child: Child,
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    /// Starts `key4c-jwt-server -config CONFIG` and waits for its "listening on" line.
    pub fn start(config: &Path, module_conf: &Path) -> Result<Running, (Option<i32>, String)> {
        let mut child = Command::new(agent_bin())
            .arg("-config")
            .arg(config)
            .env("KEY4C_CONF", module_conf)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the agent");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(60));
        let addr = line.ok().and_then(|l| {
            l.split("listening on ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<SocketAddr>()
                .ok()
        });
        match addr {
            Some(addr) => Ok(Running {
                child,
                addr,
                stderr,
            }),
            None => {
                let code = child.wait().ok().and_then(|s| s.code());
                std::thread::sleep(Duration::from_millis(100));
                let err = stderr.lock().unwrap().clone();
                Err((code, err))
            }
        }
    }

    /// What the agent wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{sig} failed");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Basic credentials of the test client.
pub fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// One request on a new connection over `io`.
pub async fn send_on<IO>(
    io: IO,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &[u8],
) -> Result<Answer, String>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, "localhost")
        .header(CONTENT_TYPE, "application/json");
    if let Some(a) = auth {
        req = req.header(AUTHORIZATION, a);
    }
    let req = req
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// One plain-HTTP request.
pub async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &[u8],
) -> Answer {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    send_on(stream, method, path, auth, body)
        .await
        .expect("HTTP exchange")
}

/// POST with the test client's credentials.
pub async fn post(addr: SocketAddr, path: &str, body: Value) -> Answer {
    call(
        addr,
        "POST",
        path,
        Some(&basic(CLIENT, SECRET)),
        body.to_string().as_bytes(),
    )
    .await
}

/// Issues a token; panics unless the agent answers 200.
pub async fn issue(addr: SocketAddr, body: Value) -> Value {
    let a = post(addr, "/v1/jwt", body).await;
    assert_eq!(a.status, 200, "issue: {}", String::from_utf8_lossy(&a.body));
    a.json()
}
