//! The session pool when the token's login is lost: the agent logs in again with the
//! configured PIN; when the token refuses that PIN (changed by the SO meanwhile) it tries
//! exactly once, then answers 503 without trying again. In-process, on the agent's library,
//! since nothing outside a process can take its sessions away.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::*;
use cryptoki::types::AuthPin;
use key4c_jwt_server::http::{self, App};
use key4c_jwt_server::keys::JwtAlg;
use key4c_jwt_server::server::{self, AllowList};
use key4c_jwt_server::token::{OpenOptions, Token, TokenError};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn lost_login_is_recovered_and_a_refused_pin_is_tried_once() {
    let service = Service::create(&[("ES256", "k-es256")]);
    // The only test in this binary: the environment is the module's configuration.
    std::env::set_var("KEY4C_CONF", &service.module_conf);
    let serial = service.uuid.replace('-', "")[..16].to_string();
    let token = Arc::new(
        Token::open(OpenOptions {
            module: &module(),
            serial: &serial,
            uuid: &service.uuid,
            pin: AuthPin::from(USER_PIN.to_string()),
            sessions: 2,
        })
        .expect("the token opens"),
    );
    let kid = service.kid("k-es256");
    let data = b"header.payload".to_vec();
    let sig = token.sign(&kid, JwtAlg::ES256, data.clone()).await.unwrap();
    assert_eq!(sig.len(), 64, "raw r||s of P-256");

    // C_Logout ends the User's login in every session of the process.
    token.logout().unwrap();
    let sig = token
        .sign(&kid, JwtAlg::ES256, data.clone())
        .await
        .expect("signed after a new login");
    token
        .verify(&kid, JwtAlg::ES256, data.clone(), sig)
        .await
        .unwrap();
    assert_eq!(service.user_failures(), 0);

    // The SO gives the User a new PIN; the agent's configured PIN is now wrong.
    let out = service.cli_with_user_pin(&["pin", "set-user"], "N3w#User.Pin7");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    token.logout().unwrap();
    let refused = token
        .sign(&kid, JwtAlg::ES256, data.clone())
        .await
        .unwrap_err();
    let TokenError::Unavailable(reason) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(
        reason,
        "the token refused key4c.pin (CKR_PIN_INCORRECT; the token counted the attempt); the agent stops using the token until it is restarted"
    );
    assert_eq!(service.user_failures(), 1);
    for _ in 0..3 {
        let again = token
            .sign(&kid, JwtAlg::ES256, data.clone())
            .await
            .unwrap_err();
        assert!(matches!(again, TokenError::Unavailable(_)));
    }
    assert_eq!(
        service.user_failures(),
        1,
        "the refused PIN was tried once only"
    );

    // Over HTTP: 503 with the reason, from health and from issue.
    let app = Arc::new(App {
        default_kid: kid.clone(),
        token: Arc::clone(&token),
        issuer: ISSUER.into(),
        default_alg: None,
        lifetime: 60,
        max_lifetime: 60,
        leeway: 0,
        hmac_signing: false,
        clients: vec![(CLIENT.into(), http::secret_digest(SECRET))],
    });
    let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = axum_server::Handle::new();
    let serving = tokio::spawn(server::serve(
        listener,
        None,
        AllowList::new(vec![]),
        http::router(app),
        handle.clone(),
    ));
    let health = call(addr, "GET", "/v1/health", None, b"").await;
    assert_eq!(health.status, 503);
    assert_eq!(
        health.json(),
        json!({"status": "unavailable", "error": "token_unavailable", "message": reason})
    );
    let issued = post(addr, "/v1/jwt", json!({"claims": {"sub": "x"}})).await;
    assert_eq!(issued.status, 503);
    assert_eq!(
        issued.json(),
        json!({"error": "token_unavailable", "message": reason})
    );
    handle.shutdown();
    serving.await.unwrap().unwrap();
    assert_eq!(service.user_failures(), 1);
}
