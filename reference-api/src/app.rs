//! The API's routes, as a value that answers an `http::Request` without a socket (axum's testing
//! pattern): a feed to read, chat messages to post, the caller's own claims, and a health check.
//! Every `/api/` route needs a valid bearer token.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use mock_idp::{FaultCounter, FaultKind};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::bearer::{self, Caller, Policy, Refusal};
use crate::config::Config;
use crate::keys::{KeyError, Keys};

/// The longest chat message taken, in bytes.
const MAX_MESSAGE_BYTES: usize = 4096;

/// The API as a value; clones share one state.
#[derive(Debug, Clone)]
pub struct Api {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    keys: Keys,
    policy: Policy,
    faults: Vec<FaultCounter>,
    messages_posted: AtomicU64,
}

/// The routes: path, then the one method each takes.
const ROUTES: [(&str, Method); 4] = [
    ("/healthz", Method::GET),
    ("/api/v1/posts/feed", Method::GET),
    ("/api/v1/me", Method::GET),
    ("/api/chat/messages", Method::POST),
];

impl Api {
    /// The API of `config`, its keys loaded (a JWKS fetched).
    pub async fn new(config: &Config) -> Result<Self, KeyError> {
        let keys = Keys::load(config).await?;
        Ok(Self {
            shared: Arc::new(Shared {
                keys,
                policy: Policy {
                    issuer: config.issuer.clone(),
                    audience: config.audience.clone(),
                    leeway: config.leeway,
                },
                faults: config
                    .faults
                    .iter()
                    .copied()
                    .map(FaultCounter::new)
                    .collect(),
                messages_posted: AtomicU64::new(0),
            }),
        })
    }

    /// The verification keys (how often the JWKS was fetched, for tests of key rotation).
    pub fn keys(&self) -> &Keys {
        &self.shared.keys
    }

    /// Answers one request whose body has been read.
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Full<Bytes>> {
        let path = request.uri().path();
        let Some((_, method)) = ROUTES.iter().find(|(route, _)| *route == path) else {
            return json_answer(StatusCode::NOT_FOUND, &json!({ "error": "not_found" }));
        };
        if request.method() != method {
            let mut response = json_answer(
                StatusCode::METHOD_NOT_ALLOWED,
                &json!({ "error": "method_not_allowed" }),
            );
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static(method.as_str()));
            return response;
        }
        if path == "/healthz" {
            return json_answer(StatusCode::OK, &json!({ "status": "ok" }));
        }
        if let Some(response) = self.inject_fault().await {
            return response;
        }
        let caller = match bearer::check(
            &self.shared.keys,
            &self.shared.policy,
            request.headers().get(http::header::AUTHORIZATION),
        )
        .await
        {
            Ok(caller) => caller,
            Err(refusal) => return refused(&refusal),
        };
        match path {
            "/api/v1/posts/feed" => feed(&caller),
            "/api/v1/me" => json_answer(
                StatusCode::OK,
                &json!({ "sub": caller.subject, "scope": caller.scope, "exp": caller.expires_at }),
            ),
            _ => self.post_message(&caller, request.body()),
        }
    }

    /// A fault that hits this request: an answer to send instead, or a delay served here.
    async fn inject_fault(&self) -> Option<Response<Full<Bytes>>> {
        for fault in &self.shared.faults {
            if !fault.hits_next() {
                continue;
            }
            match fault.kind() {
                FaultKind::Unauthorized => return Some(refused(&Refusal::Injected)),
                FaultKind::ServerError => {
                    return Some(json_answer(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &json!({ "error": "server_error", "error_description": "injected fault" }),
                    ));
                }
                FaultKind::Delay(delay) => tokio::time::sleep(delay).await,
            }
        }
        None
    }

    fn post_message(&self, caller: &Caller, body: &Bytes) -> Response<Full<Bytes>> {
        #[derive(Deserialize)]
        struct Message {
            text: String,
        }
        let message = match serde_json::from_slice::<Message>(body) {
            Ok(message) if message.text.len() <= MAX_MESSAGE_BYTES => message,
            Ok(_) => {
                return invalid_request(&format!(
                    "the message is longer than {MAX_MESSAGE_BYTES} bytes"
                ));
            }
            Err(_) => return invalid_request("the body must be JSON with a string \"text\""),
        };
        let id = self.shared.messages_posted.fetch_add(1, Ordering::Relaxed) + 1;
        json_answer(
            StatusCode::CREATED,
            &json!({ "id": id, "from": caller.subject, "text": message.text }),
        )
    }
}

/// A page of the caller's feed: a fixed list, so the API's own cost is the token check and a
/// little JSON, as in a service whose data comes from a cache.
fn feed(caller: &Caller) -> Response<Full<Bytes>> {
    let posts: Vec<Value> = (1..=10)
        .map(|number| {
            json!({
                "id": number,
                "author": format!("user-{number:05}"),
                "text": format!("post {number} in the feed of {}", caller.subject),
            })
        })
        .collect();
    json_answer(
        StatusCode::OK,
        &json!({ "user": caller.subject, "posts": posts }),
    )
}

fn refused(refusal: &Refusal) -> Response<Full<Bytes>> {
    let body = match refusal.error_code() {
        Some(error) => json!({ "error": error, "error_description": refusal.to_string() }),
        None => json!({ "error_description": refusal.to_string() }),
    };
    let mut response = json_answer(refusal.status(), &body);
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, refusal.challenge());
    response
}

fn invalid_request(description: &str) -> Response<Full<Bytes>> {
    json_answer(
        StatusCode::BAD_REQUEST,
        &json!({ "error": "invalid_request", "error_description": description }),
    )
}

fn json_answer(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
