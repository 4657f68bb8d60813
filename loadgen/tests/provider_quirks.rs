//! loadgen against a provider with the habits of real ones that have nothing to do with its
//! capacity: a consent page on every authorization, introspection open only to a resource server,
//! introspection named only in its RFC 8414 metadata (under an issuer with a path), one
//! refresh-token family per user (a new sign-in replaces it), a signing key made on first use
//! (an empty JWKS until then), and a JWKS that answers 429 for a while. The provider is mock-idp
//! behind a scripted proxy on 127.0.0.1:0 that adds each habit.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use http::{HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use loadgen::protocol::client_credentials::ClientCredentials;
use loadgen::{RunConfig, RunError, ScenarioKind, stop_signal};

use common::{assert_clean, make_seeds, run_config, serve_connections, steady};

/// The issuer's path: discovery lives under it, RFC 8414 metadata before it.
const TENANT: &str = "/tenant";
/// The only client the provider lets introspect.
const RESOURCE_SERVER: (&str, &str) = ("resource-server", "rs-secret");

/// What the proxy remembers between requests.
#[derive(Default)]
struct Habits {
    /// Set once the provider has issued a token: its signing key exists from then on.
    key_made: AtomicBool,
    /// Until then (when set), the JWKS answers 429 with `Retry-After: 1`.
    jwks_busy_until: Mutex<Option<Instant>>,
    /// Pending consents: the redirect each approval releases.
    consents: Mutex<Vec<String>>,
    /// The newest family of each user, and the family each refresh token belongs to.
    families: Mutex<Families>,
}

#[derive(Default)]
struct Families {
    newest: HashMap<String, u64>,
    of_token: HashMap<String, (String, u64)>,
}

fn answer(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_str(content_type).expect("a content type"),
    );
    response
}

fn json_field(body: &[u8], name: &str) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get(name)?
        .as_str()
        .map(str::to_owned)
}

/// The `sub` of a JWT, read without verifying (the proxy only files families by user).
fn subject_of(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    json_field(&decoded, "sub")
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

async fn body_of(response: Response<Full<Bytes>>) -> (http::response::Parts, Bytes) {
    let (parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|body| body.to_bytes())
        .unwrap_or_default();
    (parts, bytes)
}

impl Habits {
    /// One request through the habits to mock-idp, which knows nothing of the tenant path.
    async fn handle(&self, app: &mock_idp::App, request: Request<Bytes>) -> Response<Full<Bytes>> {
        let (mut parts, body) = request.into_parts();
        let path = parts.uri.path().to_owned();
        let query = parts.uri.query().map(|query| format!("?{query}"));
        let inner_path = path.strip_prefix(TENANT).unwrap_or(&path).to_owned();
        let forward = |parts: &mut http::request::Parts, inner: &str| {
            let uri = format!("{inner}{}", query.clone().unwrap_or_default());
            parts.uri = uri.parse::<Uri>().expect("a path");
        };
        match inner_path.as_str() {
            "/.well-known/openid-configuration" => {
                forward(&mut parts, "/.well-known/openid-configuration");
                let response = app
                    .handle(Request::from_parts(parts, Full::new(body)))
                    .await;
                let (_, document) = body_of(response).await;
                let mut document: serde_json::Value =
                    serde_json::from_slice(&document).expect("mock-idp's discovery");
                if let Some(members) = document.as_object_mut() {
                    members.remove("introspection_endpoint");
                }
                answer(StatusCode::OK, "application/json", document.to_string())
            }
            _ if path == format!("/.well-known/oauth-authorization-server{TENANT}") => {
                forward(&mut parts, "/.well-known/openid-configuration");
                app.handle(Request::from_parts(parts, Full::new(body)))
                    .await
            }
            "/jwks" => {
                let busy = self
                    .jwks_busy_until
                    .lock()
                    .expect("lock")
                    .is_some_and(|until| Instant::now() < until);
                if busy {
                    let mut response =
                        answer(StatusCode::TOO_MANY_REQUESTS, "text/plain", "slow down");
                    response
                        .headers_mut()
                        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                    return response;
                }
                if !self.key_made.load(Ordering::SeqCst) {
                    return answer(StatusCode::OK, "application/json", r#"{"keys": []}"#);
                }
                forward(&mut parts, "/jwks");
                app.handle(Request::from_parts(parts, Full::new(body)))
                    .await
            }
            "/introspect" => {
                let resource_server = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{}:{}", RESOURCE_SERVER.0, RESOURCE_SERVER.1))
                );
                let allowed = parts
                    .headers
                    .get(AUTHORIZATION)
                    .is_some_and(|value| value.as_bytes() == resource_server.as_bytes());
                if !allowed {
                    return answer(StatusCode::OK, "application/json", r#"{"active": false}"#);
                }
                // mock-idp knows only the test client: the proxy introspects as it.
                let test_client = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode("loadtest-client:loadtest-secret")
                );
                parts.headers.insert(
                    AUTHORIZATION,
                    HeaderValue::from_str(&test_client).expect("a header"),
                );
                forward(&mut parts, "/introspect");
                app.handle(Request::from_parts(parts, Full::new(body)))
                    .await
            }
            "/consent" => {
                let ticket = form_field(&body, "ticket")
                    .and_then(|ticket| ticket.parse::<usize>().ok())
                    .and_then(|ticket| self.consents.lock().expect("lock").get(ticket).cloned());
                match ticket {
                    Some(location) => {
                        let mut response = answer(StatusCode::FOUND, "text/plain", "");
                        response.headers_mut().insert(
                            LOCATION,
                            HeaderValue::from_str(&location).expect("a location"),
                        );
                        response
                    }
                    None => answer(StatusCode::BAD_REQUEST, "text/plain", "no such consent"),
                }
            }
            "/token" => self.token(app, parts, body, forward).await,
            inner => {
                let inner = inner.to_owned();
                forward(&mut parts, &inner);
                let response = app
                    .handle(Request::from_parts(parts, Full::new(body)))
                    .await;
                self.ask_consent(response)
            }
        }
    }

    /// Replaces a redirect to the client with a consent page whose approval releases it: consent
    /// asked on every authorization.
    fn ask_consent(&self, response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
        let to_client = response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .filter(|location| location.starts_with("http://127.0.0.1:3000/callback"))
            .map(str::to_owned);
        let Some(location) = to_client.filter(|_| response.status().is_redirection()) else {
            return response;
        };
        let mut consents = self.consents.lock().expect("lock");
        consents.push(location);
        let ticket = consents.len() - 1;
        answer(
            StatusCode::OK,
            "text/html; charset=utf-8",
            format!(
                "<!doctype html><title>Allow access?</title><p>loadtest-client asks to read your \
                 profile.</p><form method=\"post\" action=\"/consent\"><input type=\"hidden\" \
                 name=\"ticket\" value=\"{ticket}\"><button type=\"submit\" name=\"decision\" \
                 value=\"deny\">Deny</button><button type=\"submit\" name=\"decision\" \
                 value=\"allow\">Allow</button></form>"
            ),
        )
    }

    /// The token endpoint, keeping one family per user: a code redeemed for a user replaces the
    /// family its earlier sign-ins opened, whose refresh tokens are refused from then on.
    async fn token(
        &self,
        app: &mock_idp::App,
        mut parts: http::request::Parts,
        body: Bytes,
        forward: impl Fn(&mut http::request::Parts, &str),
    ) -> Response<Full<Bytes>> {
        let grant = form_field(&body, "grant_type").unwrap_or_default();
        let sent_token = form_field(&body, "refresh_token");
        if let Some(sent) = &sent_token {
            let families = self.families.lock().expect("lock");
            if let Some((user, family)) = families.of_token.get(sent)
                && families.newest.get(user) != Some(family)
            {
                return answer(
                    StatusCode::BAD_REQUEST,
                    "application/json",
                    r#"{"error": "invalid_grant", "error_description": "a newer sign-in replaced this family"}"#,
                );
            }
        }
        forward(&mut parts, "/token");
        let response = app
            .handle(Request::from_parts(parts, Full::new(body)))
            .await;
        if response.status() != StatusCode::OK {
            return response;
        }
        self.key_made.store(true, Ordering::SeqCst);
        let (parts, answer_body) = body_of(response).await;
        if let Some(issued) = json_field(&answer_body, "refresh_token") {
            let mut families = self.families.lock().expect("lock");
            let owner = match (grant.as_str(), &sent_token) {
                ("authorization_code", _) => json_field(&answer_body, "id_token")
                    .and_then(|id_token| subject_of(&id_token))
                    .map(|user| {
                        let family = families.newest.entry(user.clone()).or_default();
                        *family += 1;
                        (user, *family)
                    }),
                (_, Some(sent)) => families.of_token.get(sent).cloned(),
                _ => None,
            };
            if let Some(owner) = owner {
                families.of_token.insert(issued, owner);
            }
        }
        Response::from_parts(parts, Full::new(answer_body))
    }
}

/// The scripted provider, serving until dropped.
struct QuirkyProvider {
    issuer: String,
    habits: Arc<Habits>,
    _task: tokio::task::JoinHandle<()>,
}

impl QuirkyProvider {
    async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let issuer = format!("{base_url}{TENANT}");
        let config = mock_idp::Config {
            issuer: Some(issuer.clone()),
            access_token_format: mock_idp::AccessTokenFormat::Opaque,
            ..mock_idp::Config::ephemeral()
        };
        let app = Arc::new(mock_idp::App::new(config, &base_url)?);
        let habits = Arc::new(Habits::default());
        let served = Arc::clone(&habits);
        let service = service_fn(move |request: Request<hyper::body::Incoming>| {
            let (app, habits) = (Arc::clone(&app), Arc::clone(&served));
            async move {
                let (parts, body) = request.into_parts();
                let body = body
                    .collect()
                    .await
                    .map(|body| body.to_bytes())
                    .unwrap_or_default();
                Ok::<_, std::convert::Infallible>(
                    habits.handle(&app, Request::from_parts(parts, body)).await,
                )
            }
        });
        Ok(Self {
            issuer,
            habits,
            _task: serve_connections(listener, service),
        })
    }

    /// The JWKS answers 429 (`Retry-After: 1`) for the next `busy`.
    fn make_jwks_busy(&self, busy: Duration) {
        *self.habits.jwks_busy_until.lock().expect("lock") = Some(Instant::now() + busy);
    }
}

fn resource_server() -> ClientCredentials {
    ClientCredentials {
        client_id: RESOURCE_SERVER.0.into(),
        client_secret: Some(RESOURCE_SERVER.1.into()),
        ..ClientCredentials::default()
    }
}

fn config_for(provider: &QuirkyProvider, scenario: ScenarioKind) -> RunConfig {
    RunConfig {
        introspection_client: Some(resource_server()),
        ..run_config(scenario, &provider.issuer, steady(10.0, 2.0), 3)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_and_test_1_to_3_get_through_every_habit() -> anyhow::Result<()> {
    let provider = QuirkyProvider::start().await?;
    // Consent on every sign-in and every code, and an empty JWKS until the first token: the
    // seeder approves each consent and fetches the JWKS again to verify the first ID token.
    let seeds = make_seeds(&provider.issuer, 30, 3, 3).await?;
    assert!(
        seeds
            .sessions
            .iter()
            .chain(seeds.refresh_tokens.iter().map(|_| &seeds.sessions[0]))
            .all(|session| session.subject.is_some()),
        "{:#?}",
        seeds.sessions
    );
    assert!(
        seeds
            .refresh_tokens
            .iter()
            .all(|seed| seed.subject.is_some())
    );

    // The JWKS is busy when the run starts: the run waits as Retry-After says.
    provider.make_jwks_busy(Duration::from_millis(1_500));
    let (_handle, stop) = stop_signal();
    let test1 = loadgen::run(
        &config_for(&provider, ScenarioKind::TokenCode),
        seeds.clone(),
        stop,
    )
    .await?;
    assert_clean(&test1);
    assert!(
        test1.notes.iter().any(|note| note.contains("answered 429")),
        "{:#?}",
        test1.notes
    );
    // Introspection, named only in the RFC 8414 metadata, checked every opaque token as the
    // resource server.
    assert!(
        test1
            .notes
            .iter()
            .any(|note| note.starts_with("introspection_endpoint came from the RFC 8414 metadata")),
        "{:#?}",
        test1.notes
    );
    assert_eq!(
        test1.access_token_bases.get("introspection"),
        Some(&test1.iterations.completed),
        "{:#?}",
        test1.access_token_bases
    );

    // TEST 1 redeemed codes for the sessions' users; the families live on users of their own,
    // so none was replaced.
    let (_handle, stop) = stop_signal();
    let test2 = loadgen::run(
        &config_for(&provider, ScenarioKind::RefreshStorm),
        seeds.clone(),
        stop,
    )
    .await?;
    assert_clean(&test2);

    // TEST 3 meets the consent page every time and approves it, a step of its own.
    let (_handle, stop) = stop_signal();
    let test3 = loadgen::run(&config_for(&provider, ScenarioKind::FullOidc), seeds, stop).await?;
    assert_clean(&test3);
    assert_eq!(
        test3
            .endpoints
            .get("consent")
            .map(|consent| consent.requests.total),
        Some(test3.iterations.completed),
        "{:#?}",
        test3.endpoints.keys()
    );
    assert!(
        test3
            .notes
            .iter()
            .any(|note| note.contains("consent page") && note.contains("20 iterations")),
        "{:#?}",
        test3.notes
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_closed_to_the_test_client_stops_the_run_at_its_first_answer()
-> anyhow::Result<()> {
    let provider = QuirkyProvider::start().await?;
    let seeds = make_seeds(&provider.issuer, 60, 0, 1).await?;
    let config = run_config(
        ScenarioKind::TokenCode,
        &provider.issuer,
        steady(10.0, 2.0),
        3,
    );
    let (_handle, stop) = stop_signal();
    let error = loadgen::run(&config, seeds, stop)
        .await
        .expect_err("the provider calls every token the test client introspects inactive");
    assert!(
        matches!(error, RunError::IntrospectionRefused(_)),
        "{error}"
    );
    let said = error.to_string();
    for words in [
        "client loadtest-client may not introspect",
        "revokes tokens at once",
        "--introspection-client-id",
        "before its load",
    ] {
        assert!(said.contains(words), "{said}");
    }
    // Nothing broke: fresh seeds (the stopped run redeemed its first codes) run clean with the
    // resource server's credentials.
    let seeds = make_seeds(&provider.issuer, 60, 0, 1).await?;
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config_for(&provider, ScenarioKind::TokenCode), seeds, stop).await?;
    assert_clean(&result);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_sign_in_replaces_the_users_family_at_this_provider() -> anyhow::Result<()> {
    // The habit itself, shown: a family seeded for user 1, then another sign-in of user 1 with
    // its code redeemed (a second seeding), leaves the first family refused, as TEST 2 after
    // TEST 1 was when codes and families shared users.
    let provider = QuirkyProvider::start().await?;
    let first = make_seeds(&provider.issuer, 0, 1, 0).await?;
    let second = make_seeds(&provider.issuer, 0, 1, 0).await?;
    assert_eq!(
        first.refresh_tokens[0].user_id,
        second.refresh_tokens[0].user_id
    );
    let mut config = config_for(&provider, ScenarioKind::RefreshStorm);
    config.max_vus = 1;
    config.profile = steady(2.0, 1.0);
    let (_handle, stop) = stop_signal();
    let replaced = loadgen::run(&config, first, stop).await?;
    assert_eq!(
        replaced.iterations.completed, 0,
        "{:?}",
        replaced.iterations
    );
    assert_eq!(
        replaced.failures.get("400 from token"),
        Some(&2),
        "{:#?}",
        replaced.failures
    );
    let (_handle, stop) = stop_signal();
    assert_clean(&loadgen::run(&config, second, stop).await?);
    Ok(())
}
