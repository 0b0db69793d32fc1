//! SIGKILL in the middle of a load: every token the agent answered (the token signed and the
//! agent acknowledged with 200) still verifies after a restart on the same store, with the
//! same JWKS, and no PIN attempt was lost or invented.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_load_loses_nothing_acknowledged() {
    let service = Service::create(&[("ES256", "k-es256"), ("RS256", "k-rsa")]);
    let config = service.config("config.json", |_| {});
    let agent = service.start(&config);
    let jwks_before = call(agent.addr, "GET", "/v1/jwks", None, b"").await.json();
    let rsa = service.kid("k-rsa");

    let issued = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Instant::now() + Duration::from_secs(30);
    let workers: Vec<_> = (0..8)
        .map(|i| {
            let issued = Arc::clone(&issued);
            let addr = agent.addr;
            let body = if i % 2 == 0 {
                json!({"claims": {"sub": format!("w{i}")}})
            } else {
                json!({"kid": rsa, "alg": "PS256"})
            };
            tokio::spawn(async move {
                let mut failures = 0;
                while Instant::now() < stop && failures < 3 {
                    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
                        failures += 1;
                        continue;
                    };
                    let auth = basic(CLIENT, SECRET);
                    match send_on(
                        stream,
                        "POST",
                        "/v1/jwt",
                        Some(&auth),
                        body.to_string().as_bytes(),
                    )
                    .await
                    {
                        Ok(a) if a.status == 200 => {
                            issued
                                .lock()
                                .unwrap()
                                .push(a.json()["token"].as_str().unwrap().to_string());
                        }
                        Ok(a) => panic!(
                            "status {} before the kill: {}",
                            a.status,
                            String::from_utf8_lossy(&a.body)
                        ),
                        Err(_) => failures += 1,
                    }
                }
            })
        })
        .collect();
    // Kill once the load is well under way.
    while issued.lock().unwrap().len() < 200 {
        assert!(Instant::now() < stop, "the load did not get going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    agent.signal("KILL");
    for w in workers {
        w.await.unwrap();
    }
    drop(agent);
    let tokens = issued.lock().unwrap().clone();

    let restarted = service.start(&config);
    let jwks_after = call(restarted.addr, "GET", "/v1/jwks", None, b"")
        .await
        .json();
    assert_eq!(jwks_after, jwks_before);
    for token in &tokens {
        let v = post(restarted.addr, "/v1/jwt/verify", json!({"token": token}))
            .await
            .json();
        assert_eq!(v["valid"], true, "{token}: {v}");
    }
    issue(restarted.addr, json!({})).await;
    assert_eq!(service.user_failures(), 0);
    println!(
        "{} tokens acknowledged before the SIGKILL all verify after the restart",
        tokens.len()
    );
}
