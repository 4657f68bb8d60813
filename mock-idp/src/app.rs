//! The provider as a value and its router: `App::handle` reads one HTTP request (body capped),
//! routes it to its endpoint module and turns any failure into an RFC 6749 error answer, with no
//! socket involved, so tests and benches call it directly (`server.rs` only feeds it requests).

use std::error::Error as StdError;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Body;

use crate::client_assertion::ClientAssertions;
use crate::client_certificate::PresentedCertificate;
use crate::clients;
use crate::config::{Config, FaultCounter, FaultKind};
use crate::dpop::Dpop;
use crate::error::OAuthError;
use crate::http_helpers::{HttpResponse, Incoming, cached_json, error_response, text_response};
use crate::jwt::Minter;
use crate::keys::{KeyError, SigningKey};
use crate::metrics::Metrics;
use crate::state::{Idp, Urls};
use crate::store::{Limits, Store};
use crate::{authorize, discovery, pushed_authorization, resource, test_endpoints, token_endpoint};

/// The OpenID provider: configuration, keys, state and counters, shared by every connection.
#[derive(Debug, Clone)]
pub struct App {
    shared: Arc<Shared>,
}

/// The state of the endpoints, and what only the router uses: the prepared discovery and JWKS
/// documents and the fault counters.
#[derive(Debug)]
struct Shared {
    idp: Idp,
    discovery_json: Bytes,
    jwks_json: Bytes,
    faults: Vec<FaultCounter>,
}

impl App {
    /// Builds the provider for `issuer` (the base URL it is reached at), making or loading its
    /// signing key.
    pub fn new(config: Config, issuer: &str) -> Result<Self, KeyError> {
        let key = match &config.key_file {
            Some(path) => SigningKey::from_pem_file(config.signing_alg, path)?,
            None => SigningKey::generate(config.signing_alg)?,
        };
        Ok(Self::with_key(config, issuer, key))
    }

    /// Builds the provider with a key the caller already has (benches share one across runs).
    pub fn with_key(config: Config, issuer: &str, key: SigningKey) -> Self {
        let issuer = config
            .issuer
            .clone()
            .unwrap_or_else(|| issuer.trim_end_matches('/').to_owned());
        let audience = config.audience.clone().unwrap_or_else(|| issuer.clone());
        let urls = Urls {
            authorization: format!("{issuer}/authorize"),
            token: format!("{issuer}/token"),
            userinfo: format!("{issuer}/userinfo"),
            jwks: format!("{issuer}/jwks"),
            introspection: format!("{issuer}/introspect"),
            revocation: format!("{issuer}/revoke"),
            pushed_authorization: format!("{issuer}/par"),
            issuer: issuer.clone(),
        };
        let discovery_json = Bytes::from(discovery::document(&urls, &config, key.alg()));
        let jwks_json = Bytes::from(key.jwks_json().to_string());
        let faults = config
            .faults
            .iter()
            .map(|fault| FaultCounter::new(*fault))
            .collect();
        let minter = Minter::new(key, issuer, audience, config.refresh_token_format);
        // RFC 7523 names the token endpoint as an audience; the issuer and the other endpoints
        // that authenticate clients are accepted too, as node-oidc-provider does.
        let client_assertions = config.client_jwks.as_ref().map(|jwks| {
            ClientAssertions::new(
                clients::CONFIDENTIAL_CLIENT_ID,
                jwks,
                vec![
                    urls.issuer.clone(),
                    urls.token.clone(),
                    urls.introspection.clone(),
                    urls.revocation.clone(),
                    urls.pushed_authorization.clone(),
                ],
                config.max_store_entries,
            )
        });
        let limits = Limits {
            max_entries_per_map: config.max_store_entries,
            replay_window_ms: config.refresh_replay_window.as_millis() as u64,
        };
        Self {
            shared: Arc::new(Shared {
                idp: Idp {
                    dpop: Dpop::new(config.max_store_entries, config.dpop_nonce),
                    config,
                    minter,
                    store: Store::with_limits(limits),
                    metrics: Metrics::default(),
                    urls,
                    client_assertions,
                },
                discovery_json,
                jwks_json,
                faults,
            }),
        }
    }

    /// What the endpoints share, for the crate's own tests of a flow's steps.
    #[cfg(test)]
    pub(crate) fn idp(&self) -> &Idp {
        &self.shared.idp
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &Config {
        &self.shared.idp.config
    }

    /// The `iss` of this provider's tokens.
    pub fn issuer(&self) -> &str {
        &self.shared.idp.urls.issuer
    }

    /// The key this provider signs with.
    pub fn signing_key(&self) -> &SigningKey {
        self.shared.idp.minter.key()
    }

    /// The Prometheus text of the counters and store sizes (what `GET /metrics` answers).
    pub fn metrics_text(&self) -> String {
        let idp = &self.shared.idp;
        idp.metrics.set_store_sizes(&idp.store.sizes());
        idp.metrics.render()
    }

    /// Removes expired state now (the server also does this every `sweep_interval`).
    pub fn sweep(&self) -> crate::store::Swept {
        let now_ms = crate::store::now_ms();
        if let Some(assertions) = &self.shared.idp.client_assertions {
            assertions.sweep(now_ms / 1000);
        }
        self.shared.idp.dpop.sweep(now_ms / 1000);
        self.shared.idp.store.sweep(now_ms)
    }

    /// Answers one request. Never panics on input and never answers 5xx for bad input: every
    /// failure is an RFC 6749 error JSON with a 4xx status.
    pub async fn handle<B>(&self, request: Request<B>) -> HttpResponse
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        let (parts, body) = request.into_parts();
        let client_certificate = parts
            .extensions
            .get::<PresentedCertificate>()
            .map(|presented| presented.0.clone());
        self.shared.idp.metrics.record_version(parts.version);
        let endpoint = endpoint_label(parts.uri.path());
        let config = &self.shared.idp.config;
        let body = tokio::time::timeout(
            config.request_timeout,
            read_body(body, &parts.headers, config.max_body_bytes),
        );
        let body = body.await.unwrap_or_else(|_elapsed| {
            Err(OAuthError::RequestTimeout {
                after: config.request_timeout,
            })
        });
        let response = match body {
            Ok(body) => {
                let incoming = Incoming {
                    method: parts.method,
                    path: parts.uri.path().to_owned(),
                    query: parts.uri.query().map(str::to_owned),
                    headers: parts.headers,
                    body,
                    client_certificate,
                };
                self.route(endpoint, incoming)
                    .await
                    .unwrap_or_else(|error| error_response(&error))
            }
            Err(error) => error_response(&error),
        };
        self.shared
            .idp
            .metrics
            .record_request(endpoint, response.status().as_u16());
        response
    }

    async fn route(
        &self,
        endpoint: &'static str,
        request: Incoming,
    ) -> Result<HttpResponse, OAuthError> {
        let idp = &self.shared.idp;
        let method = request.method.clone();
        match (endpoint, method) {
            ("discovery", Method::GET | Method::HEAD) => Ok(cached_json(
                self.shared.discovery_json.clone(),
                "public, max-age=300",
            )),
            ("jwks", Method::GET | Method::HEAD) => Ok(cached_json(
                self.shared.jwks_json.clone(),
                "public, max-age=300",
            )),
            ("login", Method::GET) => Ok(authorize::login_form(&request)),
            ("login", Method::POST) => authorize::login(idp, &request),
            ("authorize", Method::GET | Method::POST) => authorize::authorize(idp, &request),
            ("token", Method::POST) => {
                if let Some(response) = self.inject_fault().await {
                    return Ok(response);
                }
                token_endpoint::token(idp, &request)
            }
            ("userinfo", Method::GET | Method::POST) => resource::userinfo(idp, &request),
            ("introspect", Method::POST) => resource::introspect(idp, &request),
            ("revoke", Method::POST) => resource::revoke(idp, &request),
            ("par", Method::POST) => pushed_authorization::push(idp, &request),
            ("metrics", Method::GET) => Ok(text_response(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                self.metrics_text(),
            )),
            ("test", Method::POST) if idp.config.enable_test_endpoints => {
                // A batch signs up to 3,000 tokens: off the runtime's workers, so that the
                // requests of other connections go on meanwhile.
                let app = self.clone();
                tokio::task::spawn_blocking(move || {
                    test_endpoints::handle(&app.shared.idp, &request)
                })
                .await
                .map_err(|error| {
                    OAuthError::ServerError(format!("token minting failed: {error}"))
                })?
            }
            ("test", _) if !idp.config.enable_test_endpoints => Err(OAuthError::NotFound(
                "no such endpoint (test endpoints need --enable-test-endpoints)".into(),
            )),
            ("other", _) => Err(OAuthError::NotFound("no such endpoint".into())),
            (endpoint, method) => Err(OAuthError::MethodNotAllowed {
                method: method.to_string(),
                allow: allowed_methods(endpoint),
            }),
        }
    }

    /// Applies the configured faults to a token request: an answer to send instead, or a delay.
    async fn inject_fault(&self) -> Option<HttpResponse> {
        for fault in &self.shared.faults {
            if !fault.hits_next() {
                continue;
            }
            match fault.kind() {
                FaultKind::Unauthorized => {
                    self.shared.idp.metrics.record_fault("unauthorized");
                    return Some(error_response(&OAuthError::InvalidClient(
                        "injected fault".into(),
                    )));
                }
                FaultKind::ServerError => {
                    self.shared.idp.metrics.record_fault("server_error");
                    return Some(error_response(&OAuthError::ServerError(
                        "injected fault".into(),
                    )));
                }
                FaultKind::Delay(delay) => {
                    self.shared.idp.metrics.record_fault("delay");
                    tokio::time::sleep(delay).await;
                }
            }
        }
        None
    }
}

/// The metrics label of a path: a fixed set, so a scan of random paths cannot grow the counters.
fn endpoint_label(path: &str) -> &'static str {
    match path {
        "/.well-known/openid-configuration" => "discovery",
        "/jwks" => "jwks",
        "/login" => "login",
        "/authorize" => "authorize",
        "/token" => "token",
        "/userinfo" => "userinfo",
        "/introspect" => "introspect",
        "/revoke" => "revoke",
        "/par" => "par",
        "/metrics" => "metrics",
        _ if path.starts_with("/_test/") => "test",
        _ => "other",
    }
}

/// The methods an endpoint takes, for the `Allow` header of a 405. `route` matches the same
/// methods; a test holds the two lists equal.
fn allowed_methods(endpoint: &str) -> &'static str {
    match endpoint {
        "discovery" | "jwks" => "GET, HEAD",
        "login" | "authorize" | "userinfo" => "GET, POST",
        "metrics" => "GET",
        _ => "POST",
    }
}

/// Reads the whole body, refusing it with 413 past `limit` bytes (by `Content-Length` before
/// reading anything, or while reading a body without one).
async fn read_body<B>(body: B, headers: &HeaderMap, limit: usize) -> Result<Bytes, OAuthError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(OAuthError::PayloadTooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(OAuthError::PayloadTooLarge { limit }),
        Err(error) => Err(OAuthError::InvalidRequest(format!(
            "could not read the request body: {error}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Allow` names exactly the methods that `route` answers with something other than 405.
    #[tokio::test]
    async fn allowed_methods_are_the_methods_route_takes() {
        let config = Config {
            enable_test_endpoints: true,
            ..Config::ephemeral()
        };
        let app = App::new(config, "http://idp.test").unwrap();
        for path in [
            "/.well-known/openid-configuration",
            "/jwks",
            "/login",
            "/authorize",
            "/token",
            "/userinfo",
            "/introspect",
            "/revoke",
            "/metrics",
            "/_test/debug-token",
        ] {
            let allow = allowed_methods(endpoint_label(path));
            for method in [
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PUT,
                Method::DELETE,
            ] {
                let request = Request::builder()
                    .method(method.clone())
                    .uri(path)
                    .body(http_body_util::Full::new(Bytes::new()))
                    .unwrap();
                let status = app.handle(request).await.status();
                let listed = allow.split(", ").any(|name| name == method.as_str());
                assert_eq!(
                    status != StatusCode::METHOD_NOT_ALLOWED,
                    listed,
                    "{method} {path}: {status}, Allow: {allow}"
                );
            }
        }
    }

    #[test]
    fn endpoint_labels_are_a_closed_set() {
        assert_eq!(endpoint_label("/token"), "token");
        assert_eq!(endpoint_label("/_test/mint-token"), "test");
        assert_eq!(endpoint_label("/../../etc/passwd"), "other");
    }
}
