//! `key4c-jwt-server bench`: the token's own C_Sign rate, then the agent's JWT issue rate
//! through HTTP with N keep-alive connections, in one run and one process (the agent listens
//! on loopback without TLS; the load generator shares the machine, as it would in a test).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use crate::config::Config;
use crate::keys::JwtAlg;
use crate::token::Token;
use crate::{http, prepare, server, Agent};

/// Options of `bench`.
pub struct BenchOptions {
    pub connections: usize,
    pub seconds: u64,
    pub sign_seconds: u64,
    pub json: bool,
}

/// One measured phase.
#[derive(Debug, Default)]
pub struct Rate {
    pub ops: u64,
    pub errors: u64,
    pub seconds: f64,
    /// Latencies of the successful operations, in microseconds, sorted.
    pub latencies_us: Vec<u32>,
}

impl Rate {
    pub fn per_second(&self) -> f64 {
        self.ops as f64 / self.seconds.max(1e-9)
    }

    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        f64::from(self.latencies_us[i]) / 1000.0
    }

    fn json(&self) -> Value {
        json!({
            "ops": self.ops,
            "errors": self.errors,
            "seconds": self.seconds,
            "per_second": self.per_second(),
            "p50_ms": self.percentile_ms(0.50),
            "p99_ms": self.percentile_ms(0.99),
        })
    }
}

/// C_Sign of a JWT-sized input on `threads` threads for `seconds`.
pub fn sign_rate(token: &Token, kid: &str, alg: JwtAlg, threads: usize, seconds: u64) -> Rate {
    let input = vec![b'x'; 200];
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let results: Vec<(u64, u64, Vec<u32>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let (mut ok, mut errors, mut lat) = (0u64, 0u64, Vec::new());
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        match token.sign_blocking(kid, alg, input.clone()) {
                            Ok(_) => {
                                ok += 1;
                                lat.push(micros(t.elapsed()));
                            }
                            Err(_) => errors += 1,
                        }
                    }
                    (ok, errors, lat)
                })
            })
            .collect();
        workers.into_iter().filter_map(|w| w.join().ok()).collect()
    });
    let mut rate = Rate {
        seconds: start.elapsed().as_secs_f64(),
        ..Rate::default()
    };
    for (ok, errors, lat) in results {
        rate.ops += ok;
        rate.errors += errors;
        rate.latencies_us.extend(lat);
    }
    rate.latencies_us.sort_unstable();
    rate
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// One keep-alive connection issuing JWTs until `deadline`.
async fn connection(addr: SocketAddr, auth: Arc<str>, body: Bytes, deadline: Instant) -> Rate {
    let mut rate = Rate::default();
    while Instant::now() < deadline {
        let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
            rate.errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Ok((mut sender, conn)) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
        else {
            rate.errors += 1;
            continue;
        };
        tokio::spawn(conn);
        while Instant::now() < deadline {
            let request = Request::post("/v1/jwt")
                .header(HOST, addr.to_string())
                .header(AUTHORIZATION, &*auth)
                .header(CONTENT_TYPE, "application/json")
                .body(Full::new(body.clone()));
            let Ok(request) = request else {
                rate.errors += 1;
                return rate;
            };
            let t = Instant::now();
            let answer = match sender.send_request(request).await {
                Ok(response) => {
                    let status = response.status();
                    response
                        .into_body()
                        .collect()
                        .await
                        .map(|b| (status, b.to_bytes()))
                }
                Err(e) => {
                    rate.errors += 1;
                    log::warn!("bench request failed: {e}");
                    break;
                }
            };
            match answer {
                Ok((StatusCode::OK, b)) if !b.is_empty() => {
                    rate.ops += 1;
                    rate.latencies_us.push(micros(t.elapsed()));
                }
                _ => rate.errors += 1,
            }
        }
    }
    rate
}

/// N connections issuing JWTs for the configured time.
async fn generate_load(addr: SocketAddr, auth: &Arc<str>, body: &Bytes, o: &BenchOptions) -> Rate {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(o.seconds);
    let clients: Vec<_> = (0..o.connections)
        .map(|_| tokio::spawn(connection(addr, Arc::clone(auth), body.clone(), deadline)))
        .collect();
    let mut total = Rate::default();
    for c in clients {
        match c.await {
            Ok(r) => {
                total.ops += r.ops;
                total.errors += r.errors;
                total.latencies_us.extend(r.latencies_us);
            }
            Err(_) => total.errors += 1,
        }
    }
    total.seconds = start.elapsed().as_secs_f64();
    total.latencies_us.sort_unstable();
    total
}

/// Runs the benchmark and prints its table (or JSON).
pub fn run(config: &Config, o: &BenchOptions) -> Result<(), String> {
    let client = config
        .agent
        .clients
        .first()
        .ok_or("agent.clients is empty")?;
    let auth: Arc<str> = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", client.id, client.secret.as_str()))
    )
    .into();
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let Agent {
        app,
        listener,
        allow,
        ..
    } = prepare(config, Some(loopback))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let kid = app.default_kid.clone();
    let alg = app
        .token
        .keys()
        .by_kid
        .get(&kid)
        .map(|k| k.default_alg(app.default_alg))
        .ok_or("the default key is gone")?;
    let sessions = app.token.sessions();
    let module = app.token.identity.module.clone();

    let sign_1 = sign_rate(&app.token, &kid, alg, 1, o.sign_seconds);
    let sign_n = sign_rate(&app.token, &kid, alg, sessions, o.sign_seconds);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let body =
        Bytes::from(json!({ "claims": { "sub": "bench", "aud": "key4c-bench" } }).to_string());
    let handle = axum_server::Handle::new();
    let serving = runtime.spawn(server::serve(
        listener,
        None,
        allow,
        http::router(Arc::clone(&app)),
        handle.clone(),
    ));
    // The load generator runs on its own thread and runtime, as a separate client would.
    let load = std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<Rate, String> {
                let clients = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start the load generator's runtime: {e}"))?;
                Ok(clients.block_on(generate_load(addr, &auth, &body, o)))
            })
            .join()
            .map_err(|_| "the load generator panicked".to_string())
    });
    handle.shutdown();
    let _ = runtime.block_on(serving);
    let issue = load??;
    drop(runtime);

    // Measured again after the load: on a shared machine the rate drifts, and the ratio is
    // taken against the mean of both.
    let sign_1_after = sign_rate(&app.token, &kid, alg, 1, o.sign_seconds);
    let sign_1_mean = (sign_1.per_second() + sign_1_after.per_second()) / 2.0;
    let ratio = issue.per_second() / sign_1_mean.max(1e-9);
    if o.json {
        let report = json!({
            "module": module,
            "alg": alg.name(),
            "sessions": sessions,
            "connections": o.connections,
            "c_sign_1_thread": sign_1.json(),
            "c_sign_pool_threads": sign_n.json(),
            "c_sign_1_thread_after": sign_1_after.json(),
            "http_issue": issue.json(),
            "issue_vs_c_sign_1_thread_mean": ratio,
        });
        println!("{report:#}");
    } else {
        println!(
            "module {module}, alg {}, {sessions} sessions, {} connections",
            alg.name(),
            o.connections
        );
        println!("| what | ops/s | p50 ms | p99 ms | errors |");
        println!("|---|---:|---:|---:|---:|");
        let row = |name: &str, r: &Rate| {
            println!(
                "| {name} | {:.0} | {:.3} | {:.3} | {} |",
                r.per_second(),
                r.percentile_ms(0.5),
                r.percentile_ms(0.99),
                r.errors
            )
        };
        row("C_Sign, 1 thread", &sign_1);
        row(&format!("C_Sign, {sessions} threads"), &sign_n);
        row(
            &format!("POST /v1/jwt, {} connections", o.connections),
            &issue,
        );
        row("C_Sign, 1 thread, after the load", &sign_1_after);
        println!(
            "issue rate / single-thread C_Sign rate (mean of before and after): {:.0}%",
            ratio * 100.0
        );
    }
    if let Ok(app) = Arc::try_unwrap(app) {
        if let Ok(token) = Arc::try_unwrap(app.token) {
            token.close();
        }
    }
    Ok(())
}
