//! The REST API (this project's own; the vendor's paths are not public):
//!
//! | method and path | auth | what |
//! |---|---|---|
//! | `POST /v1/jwt` | client | issue: `{"claims": {...}, "kid"?, "alg"?, "lifetime"?}` → `{"token", "kid", "alg", "jti", "iat", "exp"}` |
//! | `POST /v1/jwt/verify` | client | verify: `{"token"}` → `{"valid": true, "header", "claims"}` or `{"valid": false, "reason"}` |
//! | `GET /v1/jwks`, `GET /.well-known/jwks.json` | none | the public keys |
//! | `GET /v1/health` | none | 200 when the token can sign, 503 when it cannot |
//!
//! Errors are `{"error": CODE, "message": TEXT}` with the HTTP status.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::jwt::{self, Invalid};
use crate::keys::{hex, JwtAlg, KeyFamily};
use crate::token::{Token, TokenError};

/// Largest request body: claims are small.
const BODY_LIMIT: usize = 64 * 1024;

/// What the handlers share.
pub struct App {
    pub token: Arc<Token>,
    pub issuer: String,
    /// The kid of the configured default key.
    pub default_kid: String,
    pub default_alg: Option<JwtAlg>,
    pub lifetime: u64,
    pub max_lifetime: u64,
    pub leeway: u64,
    pub hmac_signing: bool,
    /// Client id and the SHA-256 of its secret.
    pub clients: Vec<(String, [u8; 32])>,
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            log::warn!("{} {}: {}", self.status.as_u16(), self.code, self.message);
        }
        let body = Json(json!({ "error": self.code, "message": self.message }));
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = [(header::WWW_AUTHENTICATE, "Basic realm=\"key4c-jwt-server\"")];
            return (self.status, challenge, body).into_response();
        }
        (self.status, body).into_response()
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> ApiError {
        match e {
            TokenError::Unavailable(m) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "token_unavailable", m)
            }
            TokenError::UnknownKey(kid) => ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_key",
                format!("no key with kid {kid}"),
            ),
            TokenError::BadSignature => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "token_error",
                "the token refused its own signature",
            ),
            TokenError::Failed(m) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "token_error", m)
            }
        }
    }
}

/// The router.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/jwt", post(issue))
        .route("/v1/jwt/verify", post(verify))
        .route("/v1/jwks", get(jwks))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/v1/health", get(health))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take this method",
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(app)
}

/// Checks HTTP Basic credentials against the configured clients; returns the client id.
fn authenticate(app: &App, headers: &HeaderMap) -> Result<String, ApiError> {
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("credentials required (HTTP Basic: client id and secret)"))?;
    let encoded = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Basic "))
        .ok_or_else(|| unauthorized("only HTTP Basic authentication is accepted"))?;
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|d| String::from_utf8(d).ok())
        .ok_or_else(|| unauthorized("malformed Basic credentials"))?;
    let decoded = zeroize::Zeroizing::new(decoded);
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(|| unauthorized("malformed Basic credentials"))?;
    let digest = secret_digest(secret);
    // Every client is compared, so the time does not tell which id exists.
    let mut found = None;
    for (client, want) in &app.clients {
        let same_secret = aws_lc_rs::constant_time::verify_slices_are_equal(want, &digest).is_ok();
        if same_secret && client == id {
            found = Some(client.clone());
        }
    }
    found.ok_or_else(|| unauthorized("wrong client id or secret"))
}

/// SHA-256 of a client secret: what the agent keeps and compares.
pub fn secret_digest(secret: &str) -> [u8; 32] {
    let mut d = [0u8; 32];
    d.copy_from_slice(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes()).as_ref(),
    );
    d
}

/// Parses a JSON body into `T`, answering 400 (or 413) with what is wrong.
fn body<T: for<'de> Deserialize<'de>>(bytes: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let bytes = bytes.map_err(|r| {
        let status = r.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "payload_too_large"
        } else {
            "bad_request"
        };
        ApiError::new(status, code, r.body_text())
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not the expected JSON: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueRequest {
    #[serde(default)]
    claims: Map<String, Value>,
    kid: Option<String>,
    alg: Option<String>,
    lifetime: Option<u64>,
}

async fn issue(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    authenticate(&app, &headers)?;
    let req: IssueRequest = body(bytes)?;
    if let Some(name) = jwt::RESERVED_CLAIMS
        .iter()
        .find(|c| req.claims.contains_key(**c))
    {
        return Err(ApiError::bad_request(format!(
            "claim {name} is set by the agent (iss, iat, exp, jti); ask for a lifetime instead of exp"
        )));
    }
    let lifetime = req.lifetime.unwrap_or(app.lifetime);
    if lifetime == 0 || lifetime > app.max_lifetime {
        return Err(ApiError::bad_request(format!(
            "lifetime {lifetime} is outside 1..={}",
            app.max_lifetime
        )));
    }
    let kid = req
        .kid
        .as_deref()
        .unwrap_or(&app.default_kid)
        .to_ascii_lowercase();
    let keys = app.token.keys();
    let key = keys
        .by_kid
        .get(&kid)
        .ok_or_else(|| TokenError::UnknownKey(kid.clone()))?;
    let alg = match &req.alg {
        Some(name) => JwtAlg::from_name(name).ok_or_else(|| {
            ApiError::bad_request(format!(
                "alg {name:?} is not a JWS algorithm the agent knows"
            ))
        })?,
        None => key.default_alg(app.default_alg),
    };
    if !alg.fits(key.family) {
        return Err(ApiError::bad_request(format!(
            "key {kid} cannot sign {}",
            alg.name()
        )));
    }
    if key.family == KeyFamily::Hmac && !app.hmac_signing {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "hmac_signing_disabled",
            "HMAC keys only verify unless agent.hmacSigning is true",
        ));
    }
    let mut jti = [0u8; 16];
    aws_lc_rs::rand::fill(&mut jti)
        .map_err(|_| TokenError::Failed("no random bytes for jti".into()))?;
    let jti = hex(&jti);
    let iat = jwt::now();
    let exp = iat + lifetime;
    let mut claims = req.claims;
    claims.insert("iss".into(), json!(app.issuer));
    claims.insert("iat".into(), json!(iat));
    claims.insert("exp".into(), json!(exp));
    claims.insert("jti".into(), json!(jti));
    let input = jwt::signing_input(alg, &kid, &claims);
    let signature = app
        .token
        .sign(&kid, alg, input.clone().into_bytes())
        .await?;
    Ok(Json(json!({
        "token": format!("{input}.{}", jwt::b64(&signature)),
        "kid": kid,
        "alg": alg.name(),
        "jti": jti,
        "iat": iat,
        "exp": exp,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    token: String,
}

async fn verify(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    authenticate(&app, &headers)?;
    let req: VerifyRequest = body(bytes)?;
    let invalid = |why: Invalid| Json(json!({ "valid": false, "reason": why.reason() }));
    let presented = match jwt::parse(&req.token) {
        Ok(p) => p,
        Err(why) => return Ok(invalid(why)),
    };
    let keys = app.token.keys();
    let Some(key) = keys.by_kid.get(&presented.kid) else {
        return Ok(invalid(Invalid::UnknownKey));
    };
    // The header's alg must be one the key does: no RSA key checked as HMAC, and so on.
    if !presented.alg.fits(key.family) {
        return Ok(invalid(Invalid::UnsupportedAlg));
    }
    let checked = app
        .token
        .verify(
            &presented.kid,
            presented.alg,
            presented.signing_input.into_bytes(),
            presented.signature,
        )
        .await;
    match checked {
        Ok(()) => {}
        Err(TokenError::BadSignature) => return Ok(invalid(Invalid::Signature)),
        Err(TokenError::UnknownKey(_)) => return Ok(invalid(Invalid::UnknownKey)),
        Err(e) => return Err(e.into()),
    }
    if let Err(why) = jwt::check_claims(&presented.claims, &app.issuer, app.leeway, jwt::now()) {
        return Ok(invalid(why));
    }
    Ok(Json(json!({
        "valid": true,
        "kid": presented.kid,
        "alg": presented.alg.name(),
        "header": presented.header,
        "claims": presented.claims,
    })))
}

async fn jwks(State(app): State<Arc<App>>) -> Json<Value> {
    Json(app.token.keys().jwks())
}

async fn health(State(app): State<Arc<App>>) -> Response {
    let id = &app.token.identity;
    match app.token.unavailable() {
        None => (
            StatusCode::OK,
            Json(json!({
                "status": "ok",
                "token": { "serial": id.serial, "label": id.label, "model": id.model },
                "keys": app.token.keys().by_kid.len(),
                "default_kid": app.default_kid,
            })),
        )
            .into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "error": "token_unavailable", "message": reason.as_str() })),
        )
            .into_response(),
    }
}
