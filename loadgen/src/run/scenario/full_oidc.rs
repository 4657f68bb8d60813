//! TEST 3: `/authorize` with the VU's session (fresh state, nonce, PKCE), through the provider's
//! consent page when it shows one, the code redeemed at `/token`, and `/userinfo` with the access
//! token, each response checked.

use std::sync::Arc;

use bytes::Bytes;
use http::header::COOKIE;
use http::{HeaderValue, Method, StatusCode};
use tokio::time::Instant;

use crate::http::address::Address;
use crate::http::client::HttpResponse;
use crate::protocol::authorization::AuthorizationRequest;
use crate::protocol::browser::{Browser, SignInError, leads_to_client};
use crate::protocol::token_request::TokenGrant;
use crate::results::names::{Check, Endpoint};
use crate::run::scenario::userinfo::userinfo_step;
use crate::run::scenario::vu::{Expect, MeasuredHops, TokenExpectations};
use crate::run::scenario::{Iteration, Scenario, SeedKind, SeedNeed, Vu};

/// TEST 3.
#[derive(Debug)]
pub struct FullOidc;

/// The VU's signed-in session.
#[derive(Debug)]
pub struct Session {
    cookie: HeaderValue,
    /// The subject the seeds recorded for the session's user.
    subject: Option<String>,
}

/// Goes on from a page (or a redirect to one) that `/authorize` answered instead of a code, as a
/// user would: the consent page approved ([`Browser::follow`], the seeder's form logic, without
/// credentials: a login page means the session has ended), each request a `consent` step. Returns
/// the provider's redirect to the client, and keeps the session as the provider last set it.
async fn approve_consent(
    vu: &mut Vu,
    cookie: &mut HeaderValue,
    address: &Address,
    response: HttpResponse,
) -> Option<HttpResponse> {
    let context = Arc::clone(vu.context());
    let followed = Browser::follow_session(
        &mut MeasuredHops {
            vu,
            intended_start: Instant::now(),
            login_endpoints: false,
            last_stage: None,
        },
        address,
        cookie,
        response,
        &context.client.redirect_uri,
        &context.hints,
    )
    .await;
    match followed {
        Ok(arrival) => {
            if arrival.consents_approved > 0 {
                context.count_consent_approved();
            }
            if let Some(updated) = arrival.session_cookie {
                *cookie = updated;
            }
            Some(arrival.response)
        }
        // A request that got no answer is already a failed request of its own.
        Err(SignInError::Transport { .. }) => None,
        Err(error @ SignInError::Unexpected { status, .. }) => {
            vu.fail_request(Endpoint::Consent, status, || error.to_string());
            None
        }
        Err(error) => {
            vu.fail("stop on the provider's pages", || error.to_string());
            None
        }
    }
}

/// The code of the provider's redirect to the client, judged as a client judges it: the redirect
/// itself, `state` unchanged and RFC 9207's `iss`, each a named check; `None` (the iteration
/// failed) when any is wrong. Shared with the `login` scenario.
pub(super) fn code_of_redirect(
    vu: &mut Vu,
    request: &AuthorizationRequest,
    response: HttpResponse,
) -> Option<String> {
    let context = Arc::clone(vu.context());
    let response = vu.judge_status(Endpoint::Authorize, response, Expect::AuthorizationRedirect)?;
    // Each rule is counted on every redirect to the client, passed or failed, so that a
    // count says how many responses were judged, not how many went wrong.
    let judgement = request.judge(
        response.status,
        &response.headers,
        &response.body,
        &context.client.redirect_uri,
        context.issuer_expectation(),
    );
    let mut right = true;
    for (check, verdict) in [
        (Check::StateUnchanged, &judgement.state),
        (Check::AuthorizationIssuer, &judgement.issuer),
    ] {
        if let Some(verdict) = verdict {
            right &= vu.check(check, verdict.is_ok(), || {
                verdict
                    .as_ref()
                    .err()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            });
        }
    }
    let code = match judgement.code {
        Ok(code) => {
            vu.check(Check::AuthorizationCodeIssued, true, String::new);
            code
        }
        Err(failure) => {
            vu.check(Check::AuthorizationCodeIssued, false, || {
                failure.to_string()
            });
            return None;
        }
    };
    right.then_some(code)
}

/// Redeems the code of `request` at the token endpoint, at once after the step that got it: its
/// intended start is its send time. Shared with the `login` scenario.
pub(super) async fn redeem(
    vu: &mut Vu,
    request: &AuthorizationRequest,
    code: &str,
) -> Option<HttpResponse> {
    let context = Arc::clone(vu.context());
    let grant = TokenGrant::Code {
        code,
        redirect_uri: &context.client.redirect_uri,
        code_verifier: &request.code_verifier,
    };
    vu.post_token(grant, Instant::now(), StatusCode::OK).await
}

impl Scenario for FullOidc {
    type State = Session;
    const TEST_ID: Option<&'static str> = Some("TEST 3");
    const REQUESTS_PER_ITERATION: u32 = 3;

    fn seed_need(_iterations: u64, vus: u64) -> Option<SeedNeed> {
        Some(SeedNeed {
            kind: SeedKind::Sessions,
            needed: vus,
            why: format!("one session per VU, {vus} VUs"),
        })
    }

    async fn set_up(vu: &mut Vu) -> Result<Session, String> {
        Ok(Session {
            cookie: vu.session_cookie()?,
            subject: vu.session_subject(),
        })
    }

    async fn iterate(vu: &mut Vu, session: &mut Session, iteration: Iteration) -> Option<()> {
        let context = Arc::clone(vu.context());
        let request = AuthorizationRequest::fresh();
        let (address, authorize_start) = vu
            .authorization_start(&request, iteration.intended_start)
            .await?;
        let response = vu
            .send_recorded(
                Endpoint::Authorize,
                Method::GET,
                &address,
                &[(COOKIE, session.cookie.clone())],
                Bytes::new(),
                authorize_start,
            )
            .await
            .ok()?;
        let response = if leads_to_client(&response, &context.client.redirect_uri) {
            if let Some(updated) =
                Browser::session_cookie_after(&address, &session.cookie, &response.headers)
            {
                session.cookie = updated;
            }
            response
        } else {
            approve_consent(vu, &mut session.cookie, &address, response).await?
        };
        let code = code_of_redirect(vu, &request, response)?;

        let response = redeem(vu, &request, &code).await?;
        let checked = vu
            .check_token_response(
                &response,
                TokenExpectations {
                    nonce: Some(&request.nonce),
                    id_token_required: true,
                    subject: session.subject.as_deref(),
                    ..TokenExpectations::default()
                },
            )
            .await?;
        let access_token = checked.tokens.access_token?;
        userinfo_step(
            vu,
            &access_token,
            checked.id_token_subject.as_deref(),
            Instant::now(),
        )
        .await
    }
}
