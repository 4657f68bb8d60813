//! The scenarios: what one iteration of each does, the per-VU state it keeps, and the checks it
//! makes on every response.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION};
use http::{HeaderName, HeaderValue, Method};
use tokio::time::Instant;

use crate::client::{HttpResponse, Target, VuClient};
use crate::flows::{
    AuthorizationRedirect, AuthorizationRequest, DiscoveryIssuer, ErrorResponse, TokenResponse,
    code_grant_body, describe_error_body, read_authorization_redirect, refresh_grant_body,
    token_exchange_body,
};
use crate::oidc::{ClientCredentials, TokenVerifier};
use crate::schedule::LoadProfile;
use crate::seeds::{NotEnoughSeeds, Seeds, required_codes};
use crate::stats::{Check, Endpoint, RequestOutcome, ShardedRecorder};

/// The scenarios `loadgen run` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum ScenarioKind {
    /// TEST 1: `POST /token` with a seeded authorization code, each code used once.
    TokenCode,
    /// TEST 2: `POST /token` refresh, VU i rotating refresh-token family i.
    RefreshStorm,
    /// TEST 3: `/authorize` with the VU's session, `/token`, `/userinfo`.
    FullOidc,
    /// `GET /userinfo` with the VU's access token.
    Userinfo,
    /// RFC 8693 token exchange of the VU's access token.
    TokenExchange,
    /// `GET /.well-known/openid-configuration`.
    Discovery,
    /// Theft detection: rotate, replay the old refresh token, expect the family revoked.
    RefreshReuse,
}

impl ScenarioKind {
    /// Name on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            ScenarioKind::TokenCode => "token-code",
            ScenarioKind::RefreshStorm => "refresh-storm",
            ScenarioKind::FullOidc => "full-oidc",
            ScenarioKind::Userinfo => "userinfo",
            ScenarioKind::TokenExchange => "token-exchange",
            ScenarioKind::Discovery => "discovery",
            ScenarioKind::RefreshReuse => "refresh-reuse",
        }
    }

    /// The specification's test id, or the scenario name for the others.
    pub fn test_id(self) -> &'static str {
        match self {
            ScenarioKind::TokenCode => "TEST 1",
            ScenarioKind::RefreshStorm => "TEST 2",
            ScenarioKind::FullOidc => "TEST 3",
            other => other.name(),
        }
    }

    /// Requests one iteration makes (bounds how long a cut-off iteration may take).
    pub fn requests_per_iteration(self) -> u32 {
        match self {
            ScenarioKind::FullOidc | ScenarioKind::RefreshReuse => 3,
            _ => 1,
        }
    }

    /// Refuses seeds too few for this scenario, profile and number of VUs.
    pub fn check_seeds(
        self,
        seeds: &Seeds,
        profile: &LoadProfile,
        max_vus: usize,
    ) -> Result<(), NotEnoughSeeds> {
        let vus = max_vus as u64;
        let (kind, needed, available, why) = match self {
            ScenarioKind::TokenCode => (
                "authorization codes",
                required_codes(profile),
                seeds.authorization_codes.len(),
                format!(
                    "{} iterations scheduled plus a 1% margin",
                    profile.scheduled_iterations()
                ),
            ),
            ScenarioKind::RefreshStorm => (
                "refresh-token families",
                vus,
                seeds.refresh_tokens.len(),
                format!("one family per VU, {vus} VUs"),
            ),
            ScenarioKind::RefreshReuse => (
                "refresh-token families",
                profile.scheduled_iterations(),
                seeds.refresh_tokens.len(),
                "each iteration revokes one family".to_owned(),
            ),
            ScenarioKind::FullOidc | ScenarioKind::Userinfo | ScenarioKind::TokenExchange => (
                "sessions",
                vus,
                seeds.sessions.len(),
                format!("one session per VU, {vus} VUs"),
            ),
            ScenarioKind::Discovery => return Ok(()),
        };
        let available = available as u64;
        if available < needed {
            return Err(NotEnoughSeeds {
                kind,
                needed,
                available,
                why,
            });
        }
        Ok(())
    }
}

/// Request paths on the target, from discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointPaths {
    /// Authorization endpoint.
    pub authorize: String,
    /// Token endpoint.
    pub token: String,
    /// UserInfo endpoint.
    pub userinfo: String,
    /// Discovery document.
    pub discovery: String,
}

/// Counters the progress line reads while the run goes on.
#[derive(Debug, Default)]
pub struct LiveCounters {
    /// Requests finished (answered or failed).
    pub requests: AtomicU64,
    /// Requests that failed (transport error or unexpected status).
    pub failed_requests: AtomicU64,
    /// Iterations running now.
    pub in_flight: AtomicU64,
    /// Iterations started.
    pub started: AtomicU64,
    /// Iterations dropped for want of a free VU.
    pub dropped: AtomicU64,
}

/// Everything the virtual users of one run share.
#[derive(Debug)]
pub struct RunContext {
    /// Scenario being run.
    pub scenario: ScenarioKind,
    /// Where requests go.
    pub target: Arc<Target>,
    /// The OAuth client.
    pub client: ClientCredentials,
    basic_authorization: Option<HeaderValue>,
    /// Request paths.
    pub paths: EndpointPaths,
    /// The issuer discovery named.
    pub issuer: String,
    verifier: TokenVerifier,
    /// Per-request timeout.
    pub timeout: Duration,
    seeds: Seeds,
    /// Where measurements go.
    pub recorder: ShardedRecorder,
    /// Live counters.
    pub live: LiveCounters,
    first_failures: Mutex<BTreeMap<String, String>>,
}

const FORM: HeaderValue = HeaderValue::from_static("application/x-www-form-urlencoded");

impl RunContext {
    /// The seed of iteration `iteration` (each is used once), or `None` with a failure note
    /// when the seeds ran out.
    fn seed_of<'a, T>(&self, seeds: &'a [T], iteration: Iteration, what: &str) -> Option<&'a T> {
        let seed = usize::try_from(iteration.index)
            .ok()
            .and_then(|index| seeds.get(index));
        if seed.is_none() {
            self.note_failure("seeds exhausted", || {
                format!("iteration {} has no {what}", iteration.index)
            });
        }
        seed
    }

    /// Assembles the shared state of a run.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        scenario: ScenarioKind,
        target: Arc<Target>,
        client: ClientCredentials,
        paths: EndpointPaths,
        issuer: String,
        verifier: TokenVerifier,
        timeout: Duration,
        seeds: Seeds,
        recorder_shards: usize,
    ) -> Self {
        Self {
            scenario,
            target,
            basic_authorization: client.basic_authorization(),
            client,
            paths,
            issuer,
            verifier,
            timeout,
            seeds,
            recorder: ShardedRecorder::new(recorder_shards),
            live: LiveCounters::default(),
            first_failures: Mutex::new(BTreeMap::new()),
        }
    }

    /// Keeps the first explanation of each kind of failure, for the result's notes.
    fn note_failure(&self, what: &str, detail: impl FnOnce() -> String) {
        let mut first = self
            .first_failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !first.contains_key(what) {
            first.insert(what.to_owned(), detail());
        }
    }

    /// One line per kind of failure seen, with its first occurrence.
    pub fn failure_notes(&self) -> Vec<String> {
        let first = self
            .first_failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        first
            .iter()
            .map(|(what, detail)| format!("first {what}: {detail}"))
            .collect()
    }

    fn token_headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers = vec![(CONTENT_TYPE, FORM)];
        if let Some(basic) = &self.basic_authorization {
            headers.push((AUTHORIZATION, basic.clone()));
        }
        headers
    }
}

/// One due iteration handed to a virtual user.
#[derive(Debug, Clone, Copy)]
pub struct Iteration {
    /// 0-based, unique within the run (TEST 1 uses code number `index`).
    pub index: u64,
    /// When the schedule meant it to start; latency is measured from here.
    pub intended_start: Instant,
}

#[derive(Debug)]
enum VuState {
    Stateless,
    RefreshFamily {
        refresh_token: String,
    },
    Session {
        cookie: HeaderValue,
    },
    AccessToken {
        access_token: String,
        subject: String,
    },
}

/// What expectations a token response is checked against.
#[derive(Debug, Clone, Copy, Default)]
struct TokenExpectations<'a> {
    nonce: Option<&'a str>,
    previous_refresh_token: Option<&'a str>,
    refresh_token_required: bool,
    id_token_required: bool,
    issued_token_type_required: bool,
}

/// A virtual user: its own connection and its own state.
#[derive(Debug)]
pub struct VirtualUser {
    id: usize,
    client: VuClient,
    state: VuState,
    context: Arc<RunContext>,
    /// The last discovery document this VU checked and found right. A response with the same
    /// bytes passes the same check, so it is compared instead of parsed again: parsing the
    /// document was a third of loadgen's CPU per discovery request.
    verified_discovery: Option<Bytes>,
}

/// Why a virtual user could not be set up before the run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("VU {vu}: {reason}")]
pub struct VuSetupError {
    /// The VU.
    pub vu: usize,
    /// What went wrong.
    pub reason: String,
}

impl VirtualUser {
    /// VU `id` with the state its scenario gives it (family `id`, session `id` ...).
    pub fn new(id: usize, context: Arc<RunContext>) -> Result<Self, VuSetupError> {
        let setup_error = |reason: String| VuSetupError { vu: id, reason };
        let state = match context.scenario {
            ScenarioKind::RefreshStorm => {
                let seed = context
                    .seeds
                    .refresh_tokens
                    .get(id)
                    .ok_or_else(|| setup_error("no refresh-token family for this VU".into()))?;
                VuState::RefreshFamily {
                    refresh_token: seed.refresh_token.clone(),
                }
            }
            ScenarioKind::FullOidc | ScenarioKind::Userinfo | ScenarioKind::TokenExchange => {
                let seed = context
                    .seeds
                    .sessions
                    .get(id)
                    .ok_or_else(|| setup_error("no session for this VU".into()))?;
                let cookie = HeaderValue::from_str(&seed.cookie).map_err(|_| {
                    setup_error("session cookie is not a valid header value".into())
                })?;
                VuState::Session { cookie }
            }
            ScenarioKind::TokenCode | ScenarioKind::Discovery | ScenarioKind::RefreshReuse => {
                VuState::Stateless
            }
        };
        Ok(Self {
            id,
            client: VuClient::new(Arc::clone(&context.target)),
            state,
            context,
            verified_discovery: None,
        })
    }

    /// The VU's number (it owns family and session number `id`).
    pub fn id(&self) -> usize {
        self.id
    }

    /// Work done before the clock starts, unmeasured: the `userinfo` and `token-exchange`
    /// scenarios get the VU an access token through its session.
    pub async fn prepare(&mut self) -> Result<(), VuSetupError> {
        if !matches!(
            self.context.scenario,
            ScenarioKind::Userinfo | ScenarioKind::TokenExchange
        ) {
            return Ok(());
        }
        let VuState::Session { cookie } = &self.state else {
            return Ok(());
        };
        let cookie = cookie.clone();
        let (access_token, subject) =
            self.sign_in_unmeasured(cookie)
                .await
                .map_err(|reason| VuSetupError {
                    vu: self.id,
                    reason,
                })?;
        self.state = VuState::AccessToken {
            access_token,
            subject,
        };
        Ok(())
    }

    async fn sign_in_unmeasured(
        &mut self,
        cookie: HeaderValue,
    ) -> Result<(String, String), String> {
        let context = Arc::clone(&self.context);
        let request = AuthorizationRequest::fresh();
        let path = request.path_and_query(&context.paths.authorize, &context.client);
        let response = self
            .client
            .send(
                Method::GET,
                &path,
                &[(COOKIE, cookie)],
                Bytes::new(),
                context.timeout,
            )
            .await
            .map_err(|error| format!("/authorize: {error}"))?;
        let location = response
            .headers
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let code = match read_authorization_redirect(location, &context.client.redirect_uri) {
            AuthorizationRedirect::Code { code, .. } => code,
            other => {
                return Err(format!(
                    "/authorize answered {}: {other:?}",
                    response.status
                ));
            }
        };
        let body = code_grant_body(
            &context.client,
            &code,
            &context.client.redirect_uri,
            &request.code_verifier,
        );
        let response = self
            .client
            .send(
                Method::POST,
                &context.paths.token,
                &context.token_headers(),
                body,
                context.timeout,
            )
            .await
            .map_err(|error| format!("/token: {error}"))?;
        if response.status != http::StatusCode::OK {
            return Err(format!(
                "/token answered {}: {}",
                response.status,
                describe_error_body(&response.body)
            ));
        }
        let tokens: TokenResponse = serde_json::from_slice(&response.body)
            .map_err(|error| format!("/token response: {error}"))?;
        let access_token = tokens
            .access_token
            .ok_or("/token response has no access_token")?;
        let subject = context
            .verifier
            .verify_access_token(&access_token)
            .map_err(|error| format!("access token: {error}"))?
            .sub;
        Ok((access_token, subject))
    }

    /// Runs one iteration, recording every request, check and the iteration's outcome.
    pub async fn run_iteration(&mut self, iteration: Iteration) {
        let succeeded = match self.context.scenario {
            ScenarioKind::TokenCode => self.token_code(iteration).await,
            ScenarioKind::RefreshStorm => self.refresh_storm(iteration).await,
            ScenarioKind::FullOidc => self.full_oidc(iteration).await,
            ScenarioKind::Userinfo => self.userinfo(iteration).await,
            ScenarioKind::TokenExchange => self.token_exchange(iteration).await,
            ScenarioKind::Discovery => self.discovery(iteration).await,
            ScenarioKind::RefreshReuse => self.refresh_reuse(iteration).await,
        };
        let duration = iteration.intended_start.elapsed();
        self.context.recorder.with_shard(self.id, |recorder| {
            recorder.record_iteration(succeeded, duration);
        });
    }

    fn check(&self, check: Check, passed: bool, detail: impl FnOnce() -> String) -> bool {
        self.context
            .recorder
            .with_shard(self.id, |recorder| recorder.record_check(check, passed));
        if !passed {
            self.context
                .note_failure(&format!("failed check {}", check.as_str()), detail);
        }
        passed
    }

    /// Sends one request and records it. Latency runs from `intended_start`, service time from
    /// now. Returns the response only when its status is `expected_status`.
    #[allow(clippy::too_many_arguments)]
    async fn step(
        &mut self,
        endpoint: Endpoint,
        method: Method,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
        intended_start: Instant,
        expected_status: u16,
    ) -> Option<HttpResponse> {
        let sent = Instant::now();
        let result = self
            .client
            .send(method, path, headers, body, self.context.timeout)
            .await;
        let finished = Instant::now();
        let latency = finished.saturating_duration_since(intended_start);
        let service_time = finished.saturating_duration_since(sent);
        let outcome = match &result {
            Ok(response) => RequestOutcome::Status(response.status.as_u16()),
            Err(error) => RequestOutcome::Transport(error.kind),
        };
        self.context.recorder.with_shard(self.id, |recorder| {
            recorder.record_request(endpoint, outcome, latency, service_time);
        });
        let live = &self.context.live;
        live.requests.fetch_add(1, Ordering::Relaxed);
        match result {
            Err(error) => {
                live.failed_requests.fetch_add(1, Ordering::Relaxed);
                self.context.note_failure(
                    &format!("{} error on {}", error.kind.as_str(), endpoint.as_str()),
                    || error.detail.clone(),
                );
                None
            }
            Ok(response) => {
                let status = response.status.as_u16();
                let as_expected = self.check(Check::Status, status == expected_status, || {
                    format!(
                        "{} answered {status} (expected {expected_status}): {}",
                        endpoint.as_str(),
                        describe_error_body(&response.body)
                    )
                });
                if as_expected {
                    Some(response)
                } else {
                    live.failed_requests.fetch_add(1, Ordering::Relaxed);
                    None
                }
            }
        }
    }

    /// Checks a 200 token response; returns it when it has the required fields.
    fn check_token_response(
        &self,
        response: &HttpResponse,
        expect: TokenExpectations<'_>,
    ) -> Option<TokenResponse> {
        let parsed: Result<TokenResponse, _> = serde_json::from_slice(&response.body);
        let tokens = parsed.unwrap_or_default();
        let has_fields = tokens.access_token.is_some()
            && tokens.token_type.is_some()
            && (!expect.refresh_token_required || tokens.refresh_token.is_some())
            && (!expect.id_token_required || tokens.id_token.is_some())
            && (!expect.issued_token_type_required || tokens.issued_token_type.is_some());
        self.check(Check::RequiredFields, has_fields, || {
            format!(
                "token response lacks fields: {}",
                describe_error_body(&response.body)
            )
        });
        let token_type = tokens.token_type.as_deref().unwrap_or_default();
        self.check(
            Check::TokenTypeBearer,
            token_type.eq_ignore_ascii_case("bearer"),
            || format!("token_type is {token_type:?}"),
        );
        if let Some(previous) = expect.previous_refresh_token {
            let rotated = tokens
                .refresh_token
                .as_deref()
                .is_some_and(|new| new != previous);
            self.check(Check::RefreshTokenRotated, rotated, || {
                "refresh response carried no new refresh token".to_owned()
            });
        }
        let access_verified = tokens
            .access_token
            .as_deref()
            .map(|token| self.context.verifier.verify_access_token(token));
        self.check(
            Check::AccessTokenVerifies,
            matches!(access_verified, Some(Ok(_))),
            || format!("{access_verified:?}"),
        );
        if let Some(id_token) = tokens.id_token.as_deref() {
            let verified = self.context.verifier.verify_id_token(id_token);
            if let Some(nonce) = expect.nonce {
                let same = verified
                    .as_ref()
                    .is_ok_and(|claims| claims.nonce.as_deref() == Some(nonce));
                self.check(Check::IdTokenNonce, same, || {
                    "ID token nonce differs from the one sent".to_owned()
                });
            }
            self.check(Check::IdTokenVerifies, verified.is_ok(), || {
                format!("{verified:?}")
            });
        } else if expect.id_token_required {
            self.check(Check::IdTokenVerifies, false, || "no id_token".to_owned());
        }
        has_fields.then_some(tokens)
    }

    async fn token_code(&mut self, iteration: Iteration) -> bool {
        let context = Arc::clone(&self.context);
        let Some(seed) = context.seed_of(
            &context.seeds.authorization_codes,
            iteration,
            "authorization code",
        ) else {
            return false;
        };
        let body = code_grant_body(
            &context.client,
            &seed.code,
            &seed.redirect_uri,
            &seed.code_verifier,
        );
        let Some(response) = self.post_token(body, iteration.intended_start, 200).await else {
            return false;
        };
        let openid = context
            .client
            .scope
            .split(' ')
            .any(|scope| scope == "openid");
        self.check_token_response(
            &response,
            TokenExpectations {
                nonce: Some(&seed.nonce),
                id_token_required: openid,
                ..TokenExpectations::default()
            },
        );
        true
    }

    async fn refresh_storm(&mut self, iteration: Iteration) -> bool {
        let VuState::RefreshFamily { refresh_token } = &self.state else {
            return false;
        };
        let sent = refresh_token.clone();
        // A failed rotation leaves the family where it was: keep the token we have.
        let Some(rotated) = self.rotate(&sent, iteration.intended_start).await else {
            return false;
        };
        if let Some(new) = rotated {
            self.state = VuState::RefreshFamily { refresh_token: new };
        }
        true
    }

    /// Sends `grant_type=refresh_token` with `refresh_token`, expecting `expected_status`.
    async fn send_refresh(
        &mut self,
        refresh_token: &str,
        intended_start: Instant,
        expected_status: u16,
    ) -> Option<HttpResponse> {
        let body = refresh_grant_body(&self.context.client, refresh_token);
        self.post_token(body, intended_start, expected_status).await
    }

    /// `POST /token` with the client's authentication and `body`, expecting `expected_status`.
    async fn post_token(
        &mut self,
        body: Bytes,
        intended_start: Instant,
        expected_status: u16,
    ) -> Option<HttpResponse> {
        let context = Arc::clone(&self.context);
        self.step(
            Endpoint::Token,
            Method::POST,
            &context.paths.token,
            &context.token_headers(),
            body,
            intended_start,
            expected_status,
        )
        .await
    }

    /// One rotation: `None` when the request failed, else the new refresh token if the response
    /// passed its checks (it must differ from the one sent).
    async fn rotate(&mut self, sent: &str, intended_start: Instant) -> Option<Option<String>> {
        let response = self.send_refresh(sent, intended_start, 200).await?;
        let tokens = self.check_token_response(
            &response,
            TokenExpectations {
                previous_refresh_token: Some(sent),
                refresh_token_required: true,
                ..TokenExpectations::default()
            },
        );
        Some(tokens.and_then(|tokens| tokens.refresh_token))
    }

    async fn full_oidc(&mut self, iteration: Iteration) -> bool {
        let context = Arc::clone(&self.context);
        let VuState::Session { cookie } = &self.state else {
            return false;
        };
        let cookie = cookie.clone();
        let request = AuthorizationRequest::fresh();
        let path = request.path_and_query(&context.paths.authorize, &context.client);
        let Some(response) = self
            .step(
                Endpoint::Authorize,
                Method::GET,
                &path,
                &[(COOKIE, cookie)],
                Bytes::new(),
                iteration.intended_start,
                302,
            )
            .await
        else {
            return false;
        };
        let location = response
            .headers
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let redirect = read_authorization_redirect(location, &context.client.redirect_uri);
        let AuthorizationRedirect::Code { code, state } = redirect else {
            self.check(Check::AuthorizationCodeIssued, false, || {
                format!("/authorize redirected to {location:?}")
            });
            return false;
        };
        self.check(Check::AuthorizationCodeIssued, true, String::new);
        let state_ok = self.check(
            Check::StateUnchanged,
            state.as_deref() == Some(request.state.as_str()),
            || format!("state came back as {state:?}"),
        );

        // Later steps follow at once on the same VU: their intended start is their send time.
        let body = code_grant_body(
            &context.client,
            &code,
            &context.client.redirect_uri,
            &request.code_verifier,
        );
        let Some(response) = self.post_token(body, Instant::now(), 200).await else {
            return false;
        };
        let Some(tokens) = self.check_token_response(
            &response,
            TokenExpectations {
                nonce: Some(&request.nonce),
                id_token_required: true,
                ..TokenExpectations::default()
            },
        ) else {
            return false;
        };
        let id_subject = tokens
            .id_token
            .as_deref()
            .and_then(|token| context.verifier.verify_id_token(token).ok())
            .map(|claims| claims.sub);
        let Some(access_token) = tokens.access_token else {
            return false;
        };
        let userinfo_ok = self
            .userinfo_step(&access_token, id_subject.as_deref(), Instant::now())
            .await;
        state_ok && userinfo_ok
    }

    async fn userinfo_step(
        &mut self,
        access_token: &str,
        expected_subject: Option<&str>,
        intended_start: Instant,
    ) -> bool {
        let context = Arc::clone(&self.context);
        let Ok(bearer) = HeaderValue::from_str(&format!("Bearer {access_token}")) else {
            return false;
        };
        let Some(response) = self
            .step(
                Endpoint::Userinfo,
                Method::GET,
                &context.paths.userinfo,
                &[(AUTHORIZATION, bearer)],
                Bytes::new(),
                intended_start,
                200,
            )
            .await
        else {
            return false;
        };
        let subject = serde_json::from_slice::<serde_json::Value>(&response.body)
            .ok()
            .and_then(|body| {
                body.get("sub")
                    .and_then(|sub| sub.as_str().map(str::to_owned))
            });
        self.check(
            Check::UserinfoSubject,
            subject.is_some()
                && (expected_subject.is_none() || subject.as_deref() == expected_subject),
            || format!("userinfo sub {subject:?}, expected {expected_subject:?}"),
        );
        true
    }

    async fn userinfo(&mut self, iteration: Iteration) -> bool {
        let VuState::AccessToken {
            access_token,
            subject,
        } = &self.state
        else {
            return false;
        };
        let (access_token, subject) = (access_token.clone(), subject.clone());
        self.userinfo_step(&access_token, Some(&subject), iteration.intended_start)
            .await
    }

    async fn token_exchange(&mut self, iteration: Iteration) -> bool {
        let context = Arc::clone(&self.context);
        let VuState::AccessToken { access_token, .. } = &self.state else {
            return false;
        };
        let body = token_exchange_body(&context.client, access_token);
        let Some(response) = self.post_token(body, iteration.intended_start, 200).await else {
            return false;
        };
        self.check_token_response(
            &response,
            TokenExpectations {
                issued_token_type_required: true,
                ..TokenExpectations::default()
            },
        );
        true
    }

    async fn discovery(&mut self, iteration: Iteration) -> bool {
        let context = Arc::clone(&self.context);
        let Some(response) = self
            .step(
                Endpoint::Discovery,
                Method::GET,
                &context.paths.discovery,
                &[],
                Bytes::new(),
                iteration.intended_start,
                200,
            )
            .await
        else {
            return false;
        };
        if self.verified_discovery.as_ref() == Some(&response.body) {
            self.check(Check::DiscoveryIssuer, true, String::new);
            return true;
        }
        let issuer = serde_json::from_slice::<DiscoveryIssuer<'_>>(&response.body)
            .ok()
            .and_then(|document| document.issuer);
        let right = issuer.as_deref() == Some(context.issuer.as_str());
        self.check(Check::DiscoveryIssuer, right, || {
            format!("discovery issuer {issuer:?}")
        });
        if right {
            self.verified_discovery = Some(response.body.clone());
        }
        true
    }

    /// Sends a refresh expected to be refused with `invalid_grant`; true if it was.
    async fn expect_invalid_grant(&mut self, refresh_token: &str, check: Check) -> bool {
        let Some(response) = self.send_refresh(refresh_token, Instant::now(), 400).await else {
            self.check(check, false, || "not refused with 400".to_owned());
            return false;
        };
        let error = serde_json::from_slice::<ErrorResponse>(&response.body)
            .ok()
            .and_then(|body| body.error);
        self.check(check, error.as_deref() == Some("invalid_grant"), || {
            format!("refused with error {error:?}")
        })
    }

    async fn refresh_reuse(&mut self, iteration: Iteration) -> bool {
        let context = Arc::clone(&self.context);
        let Some(seed) = context.seed_of(
            &context.seeds.refresh_tokens,
            iteration,
            "refresh-token family",
        ) else {
            return false;
        };
        let original = seed.refresh_token.clone();
        let Some(Some(rotated)) = self.rotate(&original, iteration.intended_start).await else {
            return false;
        };
        let replay_rejected = self
            .expect_invalid_grant(&original, Check::ReplayRejected)
            .await;
        let family_revoked = self
            .expect_invalid_grant(&rotated, Check::FamilyRevoked)
            .await;
        replay_rejected && family_revoked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seeds::{RefreshTokenSeed, SessionSeed};

    fn profile(rate: f64, steady: f64) -> LoadProfile {
        LoadProfile {
            rate_per_s: rate,
            ramp_up_s: 0.0,
            steady_s: steady,
            ramp_down_s: 0.0,
        }
    }

    #[test]
    fn too_few_codes_are_refused_with_the_number_needed() {
        let seeds = Seeds::default();
        let error = ScenarioKind::TokenCode
            .check_seeds(&seeds, &profile(300.0, 120.0), 300)
            .unwrap_err();
        assert_eq!(error.needed, 36_360);
        assert_eq!(error.available, 0);
        assert!(error.to_string().contains("needs 36360"), "{error}");
    }

    #[test]
    fn families_and_sessions_are_needed_per_vu() {
        let seeds = Seeds {
            refresh_tokens: vec![
                RefreshTokenSeed {
                    user_id: "u".into(),
                    refresh_token: "rt".into(),
                    client_id: "c".into(),
                };
                3
            ],
            sessions: vec![
                SessionSeed {
                    user_id: "u".into(),
                    cookie: "a=b".into(),
                };
                2
            ],
            ..Seeds::default()
        };
        assert!(
            ScenarioKind::RefreshStorm
                .check_seeds(&seeds, &profile(1.0, 1.0), 3)
                .is_ok()
        );
        assert_eq!(
            ScenarioKind::RefreshStorm
                .check_seeds(&seeds, &profile(1.0, 1.0), 4)
                .unwrap_err()
                .needed,
            4
        );
        assert!(
            ScenarioKind::FullOidc
                .check_seeds(&seeds, &profile(1.0, 1.0), 3)
                .is_err()
        );
        assert!(
            ScenarioKind::RefreshReuse
                .check_seeds(&seeds, &profile(3.0, 1.0), 1)
                .is_ok()
        );
        assert!(
            ScenarioKind::RefreshReuse
                .check_seeds(&seeds, &profile(4.0, 1.0), 1)
                .is_err()
        );
        assert!(
            ScenarioKind::Discovery
                .check_seeds(&seeds, &profile(100.0, 100.0), 100)
                .is_ok()
        );
    }

    #[test]
    fn test_ids_follow_the_specification() {
        assert_eq!(ScenarioKind::TokenCode.test_id(), "TEST 1");
        assert_eq!(ScenarioKind::RefreshStorm.test_id(), "TEST 2");
        assert_eq!(ScenarioKind::FullOidc.test_id(), "TEST 3");
        assert_eq!(ScenarioKind::RefreshReuse.test_id(), "refresh-reuse");
        use clap::ValueEnum as _;
        for kind in ScenarioKind::value_variants() {
            assert_eq!(kind.to_possible_value().unwrap().get_name(), kind.name());
        }
    }
}
