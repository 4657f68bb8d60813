//! A virtual user's request-and-check plumbing ([`Vu`]: its connection, measured steps, checks
//! and whether the current iteration failed) and [`VirtualUser`], a `Vu` with its scenario's state.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use tokio::time::Instant;

use crate::http::address::Address;
use crate::http::client::{ConnectionCounts, HttpResponse, VuClient};
use crate::http::transport_error::TransportError;
use crate::protocol::authorization::{AuthorizationFailure, AuthorizationRequest};
use crate::protocol::browser::{HopSender, HopStage};
use crate::protocol::code_flow::{FlowError, authorize_with_session, redeem_code};
use crate::protocol::dpop::{DpopSession, ProofSite};
use crate::protocol::pushed_authorization::{PushFailure, push_body, request_uri_of};
use crate::protocol::token_request::{TokenGrant, TokenResponse, describe_error_body};
use crate::results::names::{Check, Endpoint, RequestOutcome, TransportErrorKind};
use crate::run::scenario::{Iteration, RunContext, Scenario};

mod token_checks;

pub use token_checks::TokenExpectations;

/// Why a virtual user could not be set up before the run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("virtual user {vu} could not be set up: {reason}")]
pub struct VuSetupError {
    /// The VU.
    pub vu: usize,
    /// What went wrong, in words.
    pub reason: String,
}

/// The status a step expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Exactly this status.
    Status(StatusCode),
    /// A redirect back to the client: 302, 303 or 307.
    AuthorizationRedirect,
    /// Any 2xx (an API's default).
    Success,
}

impl Expect {
    fn admits(self, status: StatusCode) -> bool {
        match self {
            Expect::Status(expected) => status == expected,
            Expect::AuthorizationRedirect => {
                crate::protocol::authorization::is_authorization_redirect(status)
            }
            Expect::Success => status.is_success(),
        }
    }
}

/// A virtual user's connection and the plumbing every scenario's requests and checks go through.
/// It records each request and check, and remembers whether the current iteration failed.
#[derive(Debug)]
pub struct Vu {
    id: usize,
    client: VuClient,
    context: Arc<RunContext>,
    iteration_failed: bool,
    /// The transport error that ended the last step, if one did.
    last_transport_error: Option<TransportErrorKind>,
    /// Time the current iteration spent in loadgen's own check requests (introspection), left
    /// out of its latency: the provider's users never wait for those.
    unjudged: std::time::Duration,
    /// The second of the schedule the current iteration was due in, where its requests are filed.
    interval: u32,
    /// The first failure the current iteration met, its cause in the result.
    failure_cause: Option<String>,
    /// Its DPoP key and the nonces the provider handed it, when the run binds tokens
    /// (`--dpop`): every VU is a client with a key of its own.
    dpop: Option<DpopSession>,
}

/// Why a rotation gave no new refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationFailure {
    /// The provider answered, and the answer (an error status, or a failed check) leaves the
    /// family where it was: the token sent is still the newest.
    Answered,
    /// No answer arrived after the request was sent (a timeout, a reset): the provider may have
    /// rotated the family, so the token sent may already be spent.
    InDoubt,
}

impl Vu {
    fn new(id: usize, context: Arc<RunContext>) -> Self {
        Self {
            id,
            client: VuClient::new(Arc::clone(&context.target)),
            context,
            iteration_failed: false,
            last_transport_error: None,
            unjudged: std::time::Duration::ZERO,
            interval: 0,
            failure_cause: None,
            dpop: None,
        }
    }

    /// The thumbprint of the VU's DPoP key, when the run binds tokens to keys.
    pub fn dpop_thumbprint(&self) -> Option<&str> {
        self.dpop.as_ref().map(DpopSession::thumbprint)
    }

    /// `headers` with a fresh DPoP proof for `method` at `address` (a request to `site`,
    /// presenting `access_token` there) when the run uses DPoP; a proof that cannot be made
    /// fails the iteration.
    pub fn with_proof<'h>(
        &mut self,
        headers: &'h [(HeaderName, HeaderValue)],
        site: ProofSite,
        method: &Method,
        address: &Address,
        access_token: Option<&str>,
    ) -> Option<std::borrow::Cow<'h, [(HeaderName, HeaderValue)]>> {
        let Some(dpop) = self.dpop.as_mut() else {
            return Some(std::borrow::Cow::Borrowed(headers));
        };
        match dpop.proof_header(site, method, &address.to_string(), access_token) {
            Ok(proof) => {
                let mut with_proof = Vec::with_capacity(headers.len() + 1);
                with_proof.extend_from_slice(headers);
                with_proof.push(proof);
                Some(std::borrow::Cow::Owned(with_proof))
            }
            Err(reason) => {
                self.fail("DPoP proof not made", || reason);
                None
            }
        }
    }

    /// Learns the DPoP nonce of an answer from `site`; whether it was a nonce challenge, to be
    /// answered by sending the request again once (RFC 9449 section 8).
    pub fn learn_dpop_nonce(&mut self, site: ProofSite, response: &HttpResponse) -> bool {
        self.dpop
            .as_mut()
            .is_some_and(|dpop| dpop.learn(site, response))
    }

    /// The VU's number (it owns family and session number `id`).
    pub fn id(&self) -> usize {
        self.id
    }

    /// What the run's VUs share.
    pub fn context(&self) -> &Arc<RunContext> {
        &self.context
    }

    /// Marks the current iteration failed for a reason no request or check shows (the seeds ran
    /// out), keeping the first note of its kind.
    pub fn fail(&mut self, what: &str, detail: impl FnOnce() -> String) {
        self.iteration_failed = true;
        self.failure_cause.get_or_insert_with(|| what.to_owned());
        self.context.note_failure(what, detail);
    }

    /// Fails the current iteration because it has no seed left, saying how to get more.
    pub fn seeds_exhausted(&mut self, iteration: Iteration, what: &str) {
        self.fail("seeds exhausted", || {
            format!(
                "iteration {} has no {what} left; make more with `loadgen seed`",
                iteration.index
            )
        });
    }

    /// Records one check on an answer that claimed success; a failed check fails the iteration.
    /// A check turned off for the run is not recorded and holds.
    pub fn check(&mut self, check: Check, passed: bool, detail: impl FnOnce() -> String) -> bool {
        if self.context.skipped_checks.contains(check) {
            return true;
        }
        self.context
            .recorder
            .with_shard(self.id, |recorder| recorder.record_check(check, passed));
        if !passed {
            self.fail(&format!("failed check {}", check.as_str()), detail);
        }
        passed
    }

    /// Sends one request and records it. Latency runs from `intended_start`, service time from
    /// now. Returns the response only when its status is the expected one; otherwise the request
    /// failed (a transport error or an unexpected status: a failed request, not a failed check)
    /// and so did the iteration.
    #[allow(clippy::too_many_arguments)]
    pub async fn step(
        &mut self,
        endpoint: Endpoint,
        method: Method,
        address: &Address,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
        intended_start: Instant,
        expect: Expect,
    ) -> Option<HttpResponse> {
        let response = self
            .send_recorded(endpoint, method, address, headers, body, intended_start)
            .await
            .ok()?;
        self.judge_status(endpoint, response, expect)
    }

    /// Sends one request and records it, whatever its status; a transport error fails the
    /// iteration (a failed request) and is returned.
    pub async fn send_recorded(
        &mut self,
        endpoint: Endpoint,
        method: Method,
        address: &Address,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
        intended_start: Instant,
    ) -> Result<HttpResponse, TransportError> {
        self.send_recorded_on(
            endpoint,
            None,
            method,
            address,
            headers,
            body,
            intended_start,
        )
        .await
    }

    /// [`Self::send_recorded`], recorded on `route` of the endpoint too when one is given (the
    /// `api` scenario's URLs).
    #[allow(clippy::too_many_arguments)]
    pub async fn send_recorded_on(
        &mut self,
        endpoint: Endpoint,
        route: Option<&str>,
        method: Method,
        address: &Address,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
        intended_start: Instant,
    ) -> Result<HttpResponse, TransportError> {
        let sent = Instant::now();
        let result = self
            .client
            .send(method, address, headers, body, self.context.timeout)
            .await;
        let finished = Instant::now();
        let latency = finished.saturating_duration_since(intended_start);
        let service_time = finished.saturating_duration_since(sent);
        let outcome = match &result {
            Ok(response) => RequestOutcome::Status(response.status.as_u16()),
            Err(error) => RequestOutcome::Transport(error.kind),
        };
        self.last_transport_error = result.as_ref().err().map(|error| error.kind);
        if !endpoint.is_measured_by_the_gate() {
            self.unjudged += service_time;
        }
        let interval = self.interval;
        self.context.recorder.with_shard(self.id, |recorder| {
            recorder.record_request(endpoint, outcome, latency, service_time);
            if let Some(route) = route {
                recorder.record_route_request(route, outcome, latency, service_time);
            }
            recorder.timeline.record_request(interval, outcome);
        });
        self.context.live.requests.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = &result {
            let what = format!("{} error on {}", error.kind.as_str(), endpoint.as_str());
            let detail = error.detail.clone();
            self.fail(&what, || detail);
            self.count_failed_request();
        }
        result
    }

    /// The response when its status is the one `expect`ed; otherwise a failed request, and the
    /// iteration fails.
    pub fn judge_status(
        &mut self,
        endpoint: Endpoint,
        response: HttpResponse,
        expect: Expect,
    ) -> Option<HttpResponse> {
        if expect.admits(response.status) {
            return Some(response);
        }
        let status = response.status.as_u16();
        self.fail_request(endpoint, status, || match expect {
            Expect::AuthorizationRedirect => AuthorizationFailure::not_a_redirect(
                response.status,
                &response.headers,
                &response.body,
            )
            .to_string(),
            Expect::Status(expected) => format!(
                "{} answered {status} where {} was expected: {}",
                endpoint.as_str(),
                expected.as_u16(),
                describe_error_body(&response.body)
            ),
            Expect::Success => format!(
                "{} answered {status} where a 2xx was expected: {}",
                endpoint.as_str(),
                describe_error_body(&response.body)
            ),
        });
        None
    }

    /// Fails the current iteration for a request that failed where its step could not judge it
    /// (a consent hop answered with an error): counted as a failed request of `endpoint`.
    pub fn fail_request(
        &mut self,
        endpoint: Endpoint,
        status: u16,
        detail: impl FnOnce() -> String,
    ) {
        self.fail(&format!("{status} from {}", endpoint.as_str()), detail);
        self.count_failed_request();
    }

    fn count_failed_request(&self) {
        self.context
            .live
            .failed_requests
            .fetch_add(1, Ordering::Relaxed);
    }

    /// `POST` to the token endpoint with the client's authentication and `grant`.
    pub async fn post_token(
        &mut self,
        grant: TokenGrant<'_>,
        intended_start: Instant,
        expected: StatusCode,
    ) -> Option<HttpResponse> {
        self.post_token_as(Endpoint::Token, grant, intended_start, expected)
            .await
    }

    /// [`Self::post_token`], recorded as `endpoint`.
    async fn post_token_as(
        &mut self,
        endpoint: Endpoint,
        grant: TokenGrant<'_>,
        intended_start: Instant,
        expected: StatusCode,
    ) -> Option<HttpResponse> {
        let context = Arc::clone(&self.context);
        let request = ProvenRequest {
            endpoint,
            route: None,
            site: ProofSite::TokenEndpoint,
            method: Method::POST,
            address: &context.paths.token,
            headers: context.token_headers(),
            access_token: None,
        };
        self.step_with_proof(
            request,
            || grant.body(&context.client),
            intended_start,
            Expect::Status(expected),
        )
        .await
    }

    /// Sends one request as [`Self::step`] does, with a fresh DPoP proof when the run uses DPoP;
    /// a nonce challenge is answered by sending the request once more (a request of its own,
    /// timed from its own send) with the nonce and a fresh body (`body` is called for each send:
    /// a token request's client assertion must be new every time).
    pub async fn step_with_proof(
        &mut self,
        request: ProvenRequest<'_>,
        body: impl Fn() -> Bytes,
        intended_start: Instant,
        expect: Expect,
    ) -> Option<HttpResponse> {
        let endpoint = request.endpoint;
        let response = self.send_with_proof(request, body, intended_start).await?;
        self.judge_status(endpoint, response, expect)
    }

    /// [`Self::step_with_proof`] without judging the status: the answer to the request (to its
    /// second send when the first met a nonce challenge), whatever its status; `None` when it got
    /// none or no proof could be made (the iteration has failed).
    pub async fn send_with_proof(
        &mut self,
        request: ProvenRequest<'_>,
        body: impl Fn() -> Bytes,
        intended_start: Instant,
    ) -> Option<HttpResponse> {
        let mut intended_start = intended_start;
        let mut may_answer_challenge = true;
        loop {
            let headers = self.with_proof(
                request.headers,
                request.site,
                &request.method,
                request.address,
                request.access_token,
            )?;
            let response = self
                .send_recorded_on(
                    request.endpoint,
                    request.route,
                    request.method.clone(),
                    request.address,
                    &headers,
                    body(),
                    intended_start,
                )
                .await
                .ok()?;
            if self.learn_dpop_nonce(request.site, &response) && may_answer_challenge {
                self.context.count_dpop_nonce_challenge();
                may_answer_challenge = false;
                intended_start = Instant::now();
                continue;
            }
            return Some(response);
        }
    }

    /// Where a fresh authorization `request` is sent, and when that request was meant to start.
    /// Without PAR: its own address, due at `intended_start`. For a client that pushes its
    /// requests (RFC 9126), the push is the measured step (`par`) due at `intended_start`, and
    /// the `request_uri` it answers is sent to `/authorize` at once, timed from its own send.
    pub async fn authorization_start(
        &mut self,
        request: &AuthorizationRequest,
        intended_start: Instant,
    ) -> Option<(Address, Instant)> {
        let context = Arc::clone(&self.context);
        let client = &context.client;
        if !client.pushes_requests {
            return Some((
                request.address(&context.paths.authorize, client),
                intended_start,
            ));
        }
        let Some(par) = context.paths.pushed_authorization.as_ref() else {
            self.fail("no pushed authorization request endpoint", || {
                PushFailure::NoEndpoint.to_string()
            });
            return None;
        };
        let response = self
            .step(
                Endpoint::Par,
                Method::POST,
                par,
                context.token_headers(),
                push_body(request, client),
                intended_start,
                Expect::Status(StatusCode::CREATED),
            )
            .await?;
        match request_uri_of(&response) {
            Ok(request_uri) => Some((
                AuthorizationRequest::pushed_address(
                    &context.paths.authorize,
                    &client.client_id,
                    &request_uri,
                ),
                Instant::now(),
            )),
            Err(failure) => {
                self.fail("pushed request without request_uri", || failure.to_string());
                None
            }
        }
    }

    /// Sends `grant_type=refresh_token` with `refresh_token`, expecting `expected`.
    pub async fn send_refresh(
        &mut self,
        refresh_token: &str,
        intended_start: Instant,
        expected: StatusCode,
    ) -> Option<HttpResponse> {
        self.post_token(
            TokenGrant::Refresh { refresh_token },
            intended_start,
            expected,
        )
        .await
    }

    /// Renews the tokens of `sent`, a refresh token of `subject`'s family, recorded as the
    /// `token_refresh` endpoint (off the measured path): the checked answer, whether or not the
    /// provider rotated the refresh token.
    pub async fn renew_tokens(
        &mut self,
        sent: &str,
        subject: Option<&str>,
    ) -> Result<TokenResponse, RotationFailure> {
        let expect = TokenExpectations {
            subject,
            ..TokenExpectations::default()
        };
        self.checked_refresh(Endpoint::TokenRefresh, sent, Instant::now(), expect)
            .await
    }

    /// One refresh of `sent` recorded as `endpoint`, its answer checked against `expect`: the
    /// tokens when it passed; otherwise whether the family is in doubt (the request may have
    /// arrived) or was answered.
    async fn checked_refresh(
        &mut self,
        endpoint: Endpoint,
        sent: &str,
        intended_start: Instant,
        expect: TokenExpectations<'_>,
    ) -> Result<TokenResponse, RotationFailure> {
        let grant = TokenGrant::Refresh {
            refresh_token: sent,
        };
        let Some(response) = self
            .post_token_as(endpoint, grant, intended_start, StatusCode::OK)
            .await
        else {
            return Err(self.unanswered_rotation());
        };
        self.check_token_response(&response, expect)
            .await
            .map(|checked| checked.tokens)
            .ok_or(RotationFailure::Answered)
    }

    /// Why a rotation whose request failed gave no token: in doubt when the request may have
    /// arrived (the provider may have rotated), answered otherwise.
    fn unanswered_rotation(&self) -> RotationFailure {
        match self.last_transport_error {
            Some(kind) if kind.request_may_have_arrived() => RotationFailure::InDoubt,
            _ => RotationFailure::Answered,
        }
    }

    /// Sends one request before the clock starts (a VU's set-up), unmeasured; a transport error
    /// in words.
    pub async fn send_unmeasured(
        &mut self,
        method: Method,
        address: &Address,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<HttpResponse, String> {
        self.client
            .send(method, address, headers, body, self.context.timeout)
            .await
            .map_err(|error| error.to_string())
    }

    /// Renews tokens with `refresh_token` before the clock starts (a VU's set-up), unmeasured.
    pub async fn refresh_unmeasured(
        &mut self,
        refresh_token: &str,
    ) -> Result<TokenResponse, String> {
        let context = Arc::clone(&self.context);
        crate::protocol::code_flow::refresh(
            &mut self.client,
            &context.flow_endpoints(),
            refresh_token,
            self.dpop.as_mut(),
        )
        .await
        .map_err(|error| format!("renewing its seeded family failed: {error}"))
    }

    /// One rotation of `sent`, a refresh token of `subject`'s family: the new refresh token, when
    /// the request succeeded and the response passed its checks (the new token differs from the
    /// one sent); otherwise whether the family is in doubt.
    pub async fn rotate(
        &mut self,
        sent: &str,
        subject: Option<&str>,
        intended_start: Instant,
    ) -> Result<String, RotationFailure> {
        let expect = TokenExpectations {
            previous_refresh_token: Some(sent),
            refresh_token_required: true,
            subject,
            ..TokenExpectations::default()
        };
        self.checked_refresh(Endpoint::Token, sent, intended_start, expect)
            .await?
            .refresh_token
            .filter(|new| new != sent)
            .ok_or(RotationFailure::Answered)
    }

    /// The session cookie of this VU's seed, for the scenarios that sign in through one.
    pub fn session_cookie(&self) -> Result<HeaderValue, String> {
        let seed = self
            .context
            .seeds
            .sessions
            .get(self.id)
            .ok_or_else(|| "there is no seeded session for it".to_owned())?;
        HeaderValue::from_str(&seed.cookie)
            .map_err(|_| "its seeded session cookie is not a valid header value".to_owned())
    }

    /// The subject the seeds recorded for the user of this VU's session, when they record one.
    pub fn session_subject(&self) -> Option<String> {
        self.context
            .seeds
            .sessions
            .get(self.id)
            .and_then(|seed| seed.subject.clone())
    }

    /// Gets an access token through the VU's session, unmeasured (set-up of the `userinfo` and
    /// `token-exchange` scenarios): the same flow as seeding.
    pub async fn sign_in_unmeasured(&mut self) -> Result<TokenResponse, String> {
        let mut cookie = self.session_cookie()?;
        let context = Arc::clone(&self.context);
        let endpoints = context.flow_endpoints();
        let signed_in: Result<TokenResponse, FlowError> = async {
            let (request, code) =
                authorize_with_session(&mut self.client, &endpoints, &mut cookie).await?;
            redeem_code(
                &mut self.client,
                &endpoints,
                &request,
                &code,
                self.dpop.as_mut(),
            )
            .await
        }
        .await;
        signed_in.map_err(|error| format!("signing in through its session failed: {error}"))
    }
}

/// A request that carries a DPoP proof when the run uses DPoP ([`Vu::step_with_proof`]).
#[derive(Debug, Clone)]
pub struct ProvenRequest<'a> {
    /// What it is recorded as.
    pub endpoint: Endpoint,
    /// The route it is recorded on too (the `api` scenario's URLs).
    pub route: Option<&'a str>,
    /// Whose nonces its proofs carry.
    pub site: ProofSite,
    /// Its method.
    pub method: Method,
    /// Where it goes.
    pub address: &'a Address,
    /// Its headers besides the proof.
    pub headers: &'a [(HeaderName, HeaderValue)],
    /// The access token it presents (a proof's `ath`).
    pub access_token: Option<&'a str>,
}

/// Sends the hops of a sign-in through a VU, each a measured step of its iteration: the
/// `authorize` request from the iteration's intended start, every later one from its own send
/// time, recorded as the endpoint of its stage.
#[derive(Debug)]
pub struct MeasuredHops<'a> {
    /// The VU.
    pub vu: &'a mut Vu,
    /// When the iteration was due: the authorization request's latency runs from it.
    pub intended_start: Instant,
    /// Whether the login page and form are endpoints of their own (`login_page`, `login`: the
    /// `login` scenario), or, with the consent page, all `consent` (TEST 3, whose sessions are
    /// signed in already).
    pub login_endpoints: bool,
    /// The stage of the last hop sent.
    pub last_stage: Option<HopStage>,
}

impl MeasuredHops<'_> {
    /// The endpoint a hop of `stage` is recorded as.
    fn endpoint_of(&self, stage: HopStage) -> Endpoint {
        match stage {
            HopStage::Authorization => Endpoint::Authorize,
            HopStage::LoginPage if self.login_endpoints => Endpoint::LoginPage,
            HopStage::Login if self.login_endpoints => Endpoint::Login,
            HopStage::LoginPage | HopStage::Login | HopStage::Consent => Endpoint::Consent,
        }
    }

    /// The endpoint of the last hop sent (the authorization request before any), which a
    /// sign-in that ended on an error page blames.
    pub fn last_endpoint(&self) -> Endpoint {
        self.endpoint_of(self.last_stage.unwrap_or(HopStage::Authorization))
    }
}

impl HopSender for MeasuredHops<'_> {
    async fn send_hop(
        &mut self,
        stage: HopStage,
        method: Method,
        address: &Address,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<HttpResponse, TransportError> {
        self.last_stage = Some(stage);
        let endpoint = self.endpoint_of(stage);
        let intended_start = match stage {
            HopStage::Authorization => self.intended_start,
            HopStage::LoginPage | HopStage::Login | HopStage::Consent => Instant::now(),
        };
        self.vu
            .send_recorded(endpoint, method, address, headers, body, intended_start)
            .await
    }
}

/// A virtual user of scenario `S`: its plumbing and its scenario's state.
#[derive(Debug)]
pub struct VirtualUser<S: Scenario> {
    vu: Vu,
    state: S::State,
}

impl<S: Scenario> VirtualUser<S> {
    /// VU `id`, set up by its scenario before the clock starts (unmeasured).
    pub async fn set_up(id: usize, context: Arc<RunContext>) -> Result<Self, VuSetupError> {
        let mut vu = Vu::new(id, context);
        if vu.context.dpop {
            vu.dpop = Some(DpopSession::new().map_err(|reason| VuSetupError { vu: id, reason })?);
        }
        let state = S::set_up(&mut vu)
            .await
            .map_err(|reason| VuSetupError { vu: id, reason })?;
        Ok(Self { vu, state })
    }

    /// The VU's number.
    pub fn id(&self) -> usize {
        self.vu.id
    }

    /// What the VU's connections cost.
    pub fn connection_counts(&self) -> ConnectionCounts {
        self.vu.client.connection_counts()
    }

    /// The newest refresh token it holds, for the seeds.
    pub fn newest_refresh_token(&self) -> Option<&str> {
        S::newest_refresh_token(&self.state)
    }

    /// Runs one iteration and records whether it succeeded: it reached its end and no request or
    /// check in it failed.
    pub async fn run_iteration(&mut self, iteration: Iteration) {
        self.vu.iteration_failed = false;
        self.vu.failure_cause = None;
        self.vu.unjudged = std::time::Duration::ZERO;
        if self.vu.context.new_connection_per_iteration {
            // As a client that keeps no connection: every iteration pays a fresh connection
            // (and over TLS a handshake, resumed where the provider allows it).
            self.vu.client.close_connections();
        }
        self.vu.interval = iteration.interval;
        let lag = iteration.intended_start.elapsed();
        let finished = S::iterate(&mut self.vu, &mut self.state, iteration).await;
        let succeeded = finished.is_some() && !self.vu.iteration_failed;
        if !succeeded {
            // Every way an iteration fails goes through `fail`, which names the cause; one that
            // ended early without it would be a scenario's bug, still counted.
            let cause = self.vu.failure_cause.take();
            self.vu
                .context
                .count_failed_iteration(cause.as_deref().unwrap_or("ended without its result"));
        }
        let duration = iteration
            .intended_start
            .elapsed()
            .saturating_sub(self.vu.unjudged);
        self.vu.context.recorder.with_shard(self.vu.id, |recorder| {
            recorder.record_iteration(succeeded, duration);
            recorder.record_generator_lag(lag);
            recorder
                .timeline
                .record_iteration(iteration.interval, succeeded, duration);
            recorder
                .timeline
                .record_generator_lag(iteration.interval, lag);
        });
    }
}
