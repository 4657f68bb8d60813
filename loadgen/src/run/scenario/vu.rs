//! A virtual user's request-and-check plumbing ([`Vu`]: its connection, measured steps, checks
//! and whether the current iteration failed) and [`VirtualUser`], a `Vu` with its scenario's state.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use tokio::time::Instant;

use crate::http::client::{HttpResponse, VuClient};
use crate::protocol::authorization::AuthorizationFailure;
use crate::protocol::code_flow::{FlowEndpoints, FlowError, authorize_with_session, redeem_code};
use crate::protocol::id_token::{at_hash_rule, auth_time_rule, azp_rule, iat_rule};
use crate::protocol::token_request::{TokenResponse, describe_error_body, refresh_grant_body};
use crate::protocol::token_verifier::{AccessTokenFormat, VerifiedIdToken, looks_like_jws};
use crate::results::names::{Check, Endpoint, RequestOutcome, TransportErrorKind};
use crate::run::scenario::{Iteration, RunContext, Scenario};
use crate::seeding::seed_files::unix_now;

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
}

impl Expect {
    fn admits(self, status: StatusCode) -> bool {
        match self {
            Expect::Status(expected) => status == expected,
            Expect::AuthorizationRedirect => {
                crate::protocol::authorization::is_authorization_redirect(status)
            }
        }
    }
}

/// What a token response is checked against.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenExpectations<'a> {
    /// The ID token's `nonce` must be this.
    pub nonce: Option<&'a str>,
    /// The response must carry a refresh token other than this one.
    pub previous_refresh_token: Option<&'a str>,
    /// The response must carry a refresh token.
    pub refresh_token_required: bool,
    /// The response must carry an ID token.
    pub id_token_required: bool,
    /// The response must carry `issued_token_type` (token exchange).
    pub issued_token_type_required: bool,
    /// The subject the tokens must name: the one the seeds recorded for their user. `None` when
    /// the seeds record none (made elsewhere, or by an older loadgen).
    pub subject: Option<&'a str>,
}

/// A token response that passed [`Vu::check_token_response`]'s required fields.
#[derive(Debug)]
pub struct CheckedTokens {
    /// The response.
    pub tokens: TokenResponse,
    /// The `sub` of its ID token, when it carried one that verified.
    pub id_token_subject: Option<String>,
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
        }
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
            self.iteration_failed = true;
            self.context
                .note_failure(&format!("failed check {}", check.as_str()), detail);
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
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
        intended_start: Instant,
        expect: Expect,
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
        self.last_transport_error = result.as_ref().err().map(|error| error.kind);
        if !endpoint.is_measured_by_the_gate() {
            self.unjudged += service_time;
        }
        let interval = self.interval;
        self.context.recorder.with_shard(self.id, |recorder| {
            recorder.record_request(endpoint, outcome, latency, service_time);
            recorder.timeline.record_request(interval, outcome);
        });
        self.context.live.requests.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(response) if expect.admits(response.status) => return Some(response),
            Ok(response) => {
                let status = response.status.as_u16();
                self.fail(
                    &format!("{status} from {}", endpoint.as_str()),
                    || match expect {
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
                    },
                );
            }
            Err(error) => {
                let what = format!("{} error on {}", error.kind.as_str(), endpoint.as_str());
                self.fail(&what, || error.detail);
            }
        }
        self.context
            .live
            .failed_requests
            .fetch_add(1, Ordering::Relaxed);
        None
    }

    /// `POST` to the token endpoint with the client's authentication and `body`.
    pub async fn post_token(
        &mut self,
        body: Bytes,
        intended_start: Instant,
        expected: StatusCode,
    ) -> Option<HttpResponse> {
        let context = Arc::clone(&self.context);
        self.step(
            Endpoint::Token,
            Method::POST,
            &context.paths.token,
            context.token_headers(),
            body,
            intended_start,
            Expect::Status(expected),
        )
        .await
    }

    /// Checks an access token as the run's format says: a JWS against the JWKS (RFC 9068), an
    /// opaque token by the provider's introspection (RFC 7662) when it offers one; without one,
    /// an opaque token is checked where it is used (userinfo).
    pub async fn check_access_token(&mut self, token: &str) -> bool {
        self.check_access_token_for_subject(token).await.0
    }

    /// [`Self::check_access_token`], also giving the subject of a JWT that verified.
    async fn check_access_token_for_subject(&mut self, token: &str) -> (bool, Option<String>) {
        let context = Arc::clone(&self.context);
        let is_jwt = match context.access_token {
            AccessTokenFormat::Jwt => true,
            AccessTokenFormat::Opaque => false,
            AccessTokenFormat::Auto => looks_like_jws(token),
        };
        if is_jwt {
            let verified = context.keys.verify_access_token(token).await;
            let reason = verified.as_ref().err().map(ToString::to_string);
            let passed = self.check(Check::AccessTokenVerifies, reason.is_none(), || {
                format!(
                    "the access token did not verify: {}",
                    reason.unwrap_or_default()
                )
            });
            return (passed, verified.ok().map(|claims| claims.sub));
        }
        (self.check_opaque_access_token(token).await, None)
    }

    async fn check_opaque_access_token(&mut self, token: &str) -> bool {
        let context = Arc::clone(&self.context);
        if context.skipped_checks.contains(Check::AccessTokenActive) {
            return true;
        }
        let Some(introspection) = context.paths.introspection.as_deref() else {
            context.note_opaque_unchecked();
            return true;
        };
        let body = Bytes::from(
            form_urlencoded::Serializer::new(String::new())
                .append_pair("token", token)
                .append_pair("token_type_hint", "access_token")
                .finish(),
        );
        let Some(response) = self
            .step(
                Endpoint::Introspection,
                Method::POST,
                introspection,
                context.token_headers(),
                body,
                Instant::now(),
                Expect::Status(StatusCode::OK),
            )
            .await
        else {
            return false;
        };
        let active = serde_json::from_slice::<serde_json::Value>(&response.body)
            .ok()
            .and_then(|body| body.get("active").and_then(serde_json::Value::as_bool));
        self.check(Check::AccessTokenActive, active == Some(true), || {
            format!(
                "the provider's introspection says the access token is not active: {}",
                describe_error_body(&response.body)
            )
        })
    }

    /// Checks a 200 token response; returns it when it has the required fields, with the subject
    /// of its ID token when that verified (so no caller verifies the ID token a second time).
    pub async fn check_token_response(
        &mut self,
        response: &HttpResponse,
        expect: TokenExpectations<'_>,
    ) -> Option<CheckedTokens> {
        let context = Arc::clone(&self.context);
        let tokens: TokenResponse = serde_json::from_slice(&response.body).unwrap_or_default();
        let has_fields = tokens.access_token.is_some()
            && tokens.token_type.is_some()
            && (!expect.refresh_token_required || tokens.refresh_token.is_some())
            && (!expect.id_token_required || tokens.id_token.is_some())
            && (!expect.issued_token_type_required || tokens.issued_token_type.is_some());
        self.check(Check::RequiredFields, has_fields, || {
            format!(
                "the token response lacks required fields: {}",
                describe_error_body(&response.body)
            )
        });
        let token_type = tokens.token_type.as_deref().unwrap_or_default();
        self.check(
            Check::TokenTypeBearer,
            token_type.eq_ignore_ascii_case("bearer"),
            || format!("token_type is '{token_type}', not Bearer"),
        );
        if let Some(previous) = expect.previous_refresh_token {
            let rotated = tokens
                .refresh_token
                .as_deref()
                .is_some_and(|new| new != previous);
            self.check(Check::RefreshTokenRotated, rotated, || {
                "the refresh response carried no new refresh token (is rotation on?)".to_owned()
            });
        }
        let mut subjects = Vec::with_capacity(2);
        let mut id_token_subject = None;
        match tokens.access_token.as_deref() {
            Some(token) => {
                let (_, subject) = self.check_access_token_for_subject(token).await;
                subjects.extend(subject.map(|subject| ("access token", subject)));
            }
            None => {
                self.check(Check::AccessTokenVerifies, false, || {
                    "the response has no access_token".to_owned()
                });
            }
        }
        if let Some(id_token) = tokens.id_token.as_deref() {
            let verified = context.keys.verify_id_token(id_token).await;
            if let Some(nonce) = expect.nonce {
                let same = verified
                    .as_ref()
                    .is_ok_and(|verified| verified.claims.nonce.as_deref() == Some(nonce));
                self.check(Check::IdTokenNonce, same, || {
                    "the ID token's nonce differs from the one sent".to_owned()
                });
            }
            let reason = verified.as_ref().err().map(ToString::to_string);
            self.check(Check::IdTokenVerifies, reason.is_none(), || {
                format!(
                    "the ID token did not verify: {}",
                    reason.unwrap_or_default()
                )
            });
            // The claims of a token that did not verify say nothing: they are judged only after.
            if let Ok(verified) = verified {
                self.check_id_token_claims(&verified, tokens.access_token.as_deref());
                id_token_subject = Some(verified.claims.sub.clone());
                subjects.push(("ID token", verified.claims.sub));
            }
        } else if expect.id_token_required {
            self.check(Check::IdTokenVerifies, false, || {
                "the response has no id_token".to_owned()
            });
        }
        self.check_subjects(&subjects, expect.subject);
        has_fields.then_some(CheckedTokens {
            tokens,
            id_token_subject,
        })
    }

    /// Checks that every verified token of a response names the seeds' subject for its user: one
    /// check per response, made when the subject is known and some token names one.
    fn check_subjects(&mut self, subjects: &[(&str, String)], expected: Option<&str>) {
        let Some(expected) = expected else {
            if !subjects.is_empty() {
                self.context.note_subject_unknown();
            }
            return;
        };
        if let Some(verdict) = subject_verdict(subjects, expected) {
            self.check(Check::TokenSubject, verdict.is_ok(), || {
                verdict.err().unwrap_or_default()
            });
        }
    }

    /// Judges the claim rules of a verified ID token that the signature does not cover
    /// (`at_hash` against `access_token`, `azp`, `iat`, `auth_time`), each as its own check, each
    /// counted only when there was something to judge.
    fn check_id_token_claims(&mut self, verified: &VerifiedIdToken, access_token: Option<&str>) {
        let claims = &verified.claims;
        let now_s = unix_now();
        let verdicts = [
            (
                Check::IdTokenAtHash,
                at_hash_rule(claims, verified.algorithm, access_token),
            ),
            (
                Check::IdTokenAzp,
                azp_rule(claims, &self.context.client.client_id),
            ),
            (Check::IdTokenIat, iat_rule(claims, now_s)),
            (Check::IdTokenAuthTime, auth_time_rule(claims, now_s)),
        ];
        for (check, verdict) in verdicts {
            if let Some(verdict) = verdict {
                self.check(check, verdict.is_ok(), || {
                    format!("the ID token {}", verdict.err().unwrap_or_default())
                });
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
        let body = refresh_grant_body(&self.context.client, refresh_token);
        self.post_token(body, intended_start, expected).await
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
        let Some(response) = self
            .send_refresh(sent, intended_start, StatusCode::OK)
            .await
        else {
            return Err(match self.last_transport_error {
                Some(kind) if kind.request_may_have_arrived() => RotationFailure::InDoubt,
                _ => RotationFailure::Answered,
            });
        };
        self.check_token_response(
            &response,
            TokenExpectations {
                previous_refresh_token: Some(sent),
                refresh_token_required: true,
                subject,
                ..TokenExpectations::default()
            },
        )
        .await
        .and_then(|checked| checked.tokens.refresh_token)
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
        let cookie = self.session_cookie()?;
        let context = Arc::clone(&self.context);
        let endpoints = FlowEndpoints {
            authorize_path: &context.paths.authorize,
            token_path: &context.paths.token,
            token_headers: context.token_headers(),
            client: &context.client,
            issuer: context.issuer_expectation(),
            timeout: context.timeout,
        };
        let signed_in: Result<TokenResponse, FlowError> = async {
            let (request, code) =
                authorize_with_session(&mut self.client, &endpoints, &cookie).await?;
            redeem_code(&mut self.client, &endpoints, &request, &code).await
        }
        .await;
        signed_in.map_err(|error| format!("signing in through its session failed: {error}"))
    }
}

/// Whether every token named (`(which token, its sub)`) is `expected`'s: `None` when no token
/// names a subject, otherwise why not in words.
fn subject_verdict(subjects: &[(&str, String)], expected: &str) -> Option<Result<(), String>> {
    if subjects.is_empty() {
        return None;
    }
    let wrong = subjects
        .iter()
        .find(|(_, subject)| subject.as_str() != expected);
    Some(match wrong {
        Some((token, subject)) => Err(format!(
            "the {token} names subject {subject}, but the user who signed in is {expected}"
        )),
        None => Ok(()),
    })
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
        let state = S::set_up(&mut vu)
            .await
            .map_err(|reason| VuSetupError { vu: id, reason })?;
        Ok(Self { vu, state })
    }

    /// The VU's number.
    pub fn id(&self) -> usize {
        self.vu.id
    }

    /// The newest refresh token it holds, for the seeds.
    pub fn newest_refresh_token(&self) -> Option<&str> {
        S::newest_refresh_token(&self.state)
    }

    /// Runs one iteration and records whether it succeeded: it reached its end and no request or
    /// check in it failed.
    pub async fn run_iteration(&mut self, iteration: Iteration) {
        self.vu.iteration_failed = false;
        self.vu.unjudged = std::time::Duration::ZERO;
        self.vu.interval = iteration.interval;
        let finished = S::iterate(&mut self.vu, &mut self.state, iteration).await;
        let succeeded = finished.is_some() && !self.vu.iteration_failed;
        let duration = iteration
            .intended_start
            .elapsed()
            .saturating_sub(self.vu.unjudged);
        self.vu.context.recorder.with_shard(self.vu.id, |recorder| {
            recorder.record_iteration(succeeded, duration);
            recorder
                .timeline
                .record_iteration(iteration.interval, succeeded, duration);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_token_must_name_the_seeded_subject() {
        let both = [
            ("access token", "alice".to_owned()),
            ("ID token", "alice".to_owned()),
        ];
        assert_eq!(subject_verdict(&both, "alice"), Some(Ok(())));
        assert_eq!(
            subject_verdict(&both, "bob"),
            Some(Err(
                "the access token names subject alice, but the user who signed in is bob".into()
            ))
        );
        let mixed = [
            ("access token", "alice".to_owned()),
            ("ID token", "mallory".to_owned()),
        ];
        assert_eq!(
            subject_verdict(&mixed, "alice"),
            Some(Err(
                "the ID token names subject mallory, but the user who signed in is alice".into()
            ))
        );
        assert_eq!(subject_verdict(&[], "alice"), None);
    }
}
