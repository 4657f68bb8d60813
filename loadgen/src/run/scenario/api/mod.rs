//! `--scenario api`: each VU calls the API under test with its own user's access token, renews
//! the token before it expires (off the measured path, as a real client does) and, when the API
//! answers 401 `invalid_token`, renews once and retries once.

pub mod settings;
mod token;

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue, Method, StatusCode};

use crate::http::address::Address;
use crate::http::client::HttpResponse;
use crate::protocol::dpop::ProofSite;
use crate::protocol::token_signing::fill_user;
use crate::results::api_tokens::{ApiRefusal, bearer_challenge_error};
use crate::results::names::Endpoint;
use crate::run::scenario::api::settings::ApiTally;
use crate::run::scenario::api::token::HeldToken;
use crate::run::scenario::vu::{Expect, ProvenRequest};
use crate::run::scenario::{Iteration, RunContext, Scenario, SeedNeed, Vu};

/// The `api` scenario.
#[derive(Debug)]
pub struct Api;

/// A VU's token and its request body (the user filled in).
#[derive(Debug)]
pub struct ApiUser {
    token: HeldToken,
    /// The body with the user filled in.
    body: Bytes,
}

impl ApiUser {
    /// The call's headers: the token as a bearer token, or with DPoP (`dpop`) as a bound one
    /// (whose proof the call adds).
    fn headers(&self, dpop: bool) -> Vec<(HeaderName, HeaderValue)> {
        let authorization = if dpop {
            crate::protocol::dpop::authorization(self.token.access_token())
                .unwrap_or_else(|_| self.token.bearer().clone())
        } else {
            self.token.bearer().clone()
        };
        let mut headers = vec![
            (AUTHORIZATION, authorization),
            (ACCEPT, HeaderValue::from_static("application/json")),
        ];
        if !self.body.is_empty() {
            headers.push((CONTENT_TYPE, HeaderValue::from_static("application/json")));
        }
        headers
    }
}

fn tally(vu: &Vu) -> Option<Arc<ApiTally>> {
    vu.context().api.clone()
}

/// Keeps a 401 or 403 of the API with the state of the token it refused; returns it.
fn note_refusal(tally: &ApiTally, response: &HttpResponse, token: &HeldToken) -> ApiRefusal {
    let challenge = response
        .headers
        .get(WWW_AUTHENTICATE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let (error, description) = bearer_challenge_error(challenge);
    let now = SystemTime::now();
    let refusal = ApiRefusal {
        status: response.status.as_u16(),
        error,
        description,
        count: 1,
        recovered: 0,
        kid: token.kid(),
        expires_in_s: token.expires_in_s(now),
        age_s: Some(token.age(now).as_secs()),
    };
    tally.note_refusal(refusal.clone());
    refusal
}

fn says_invalid_token(response: &HttpResponse) -> bool {
    response.status == StatusCode::UNAUTHORIZED
        && response
            .headers
            .get(WWW_AUTHENTICATE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|challenge| challenge.contains("invalid_token"))
}

impl Scenario for Api {
    type State = ApiUser;
    const REQUESTS_PER_ITERATION: u32 = 4;
    const HOLDS_FAMILIES: bool = true;

    // The oidc token source needs a family per VU, the others none; which one is a setting of
    // the run, so each VU's set-up says what it lacks.
    fn seed_need(_iterations: u64, _vus: u64) -> Option<SeedNeed> {
        None
    }

    async fn set_up(vu: &mut Vu) -> Result<ApiUser, String> {
        let tally = tally(vu).ok_or("the api scenario needs at least one --api-url")?;
        if vu.dpop_thumbprint().is_some() && !tally.settings.token_source.needs_provider() {
            return Err(
                "--dpop binds the provider's tokens to each VU's key: give the api scenario \
                 --token-source oidc (tokens loadgen signs, or the application's own, are bearer \
                 tokens)"
                    .to_owned(),
            );
        }
        let settings = &tally.settings;
        let number = vu.id() + 1;
        let token = HeldToken::for_vu(vu, &tally, number).await?;
        let body = settings
            .body
            .as_deref()
            .map(|template| Bytes::from(fill_user(template, token.user(), number)))
            .unwrap_or_default();
        Ok(ApiUser { token, body })
    }

    fn holds_families(context: &RunContext) -> bool {
        context
            .api
            .as_ref()
            .is_some_and(|tally| tally.settings.token_source.needs_provider())
    }

    fn newest_refresh_token(user: &ApiUser) -> Option<&str> {
        user.token.refresh_token()
    }

    async fn iterate(vu: &mut Vu, user: &mut ApiUser, iteration: Iteration) -> Option<()> {
        let tally = tally(vu)?;
        let settings = &tally.settings;
        // A VU that has been idle past its token's expiry (fewer calls than --refresh-before
        // covers) renews before it calls: a client would not send a token it knows is dead.
        if user.token.is_due(std::time::Duration::ZERO) {
            user.token.renew(vu, &tally).await;
        }
        let called = call(vu, user, &tally, iteration).await;
        // After the call, whatever its outcome, so the API's latency never includes it: a token
        // that would expire before the next iterations is renewed now, as a client renews ahead
        // of expiry.
        if user.token.is_due(settings.refresh_before) {
            user.token.renew(vu, &tally).await;
        }
        called
    }
}

/// One request of a call, recorded on its route: the token as the VU presents it, with a fresh
/// DPoP proof (and a nonce challenge answered once) when the run binds tokens.
async fn send_call(
    vu: &mut Vu,
    user: &ApiUser,
    route_name: Option<&str>,
    method: Method,
    address: &Address,
    intended_start: tokio::time::Instant,
) -> Option<HttpResponse> {
    let headers = user.headers(vu.dpop_thumbprint().is_some());
    let request = ProvenRequest {
        endpoint: Endpoint::Api,
        route: route_name,
        site: ProofSite::Resource,
        method,
        address,
        headers: &headers,
        access_token: Some(user.token.access_token()),
    };
    vu.send_with_proof(request, || user.body.clone(), intended_start)
        .await
}

/// One call of the API on the iteration's route, renewed and retried once after a 401
/// `invalid_token`.
async fn call(
    vu: &mut Vu,
    user: &mut ApiUser,
    tally: &ApiTally,
    iteration: Iteration,
) -> Option<()> {
    let settings = &tally.settings;
    let route = settings.route_of(iteration.index);
    let address = &settings.routes[route].address;
    let route_name = tally.route_names.get(route).map(String::as_str);
    let method = settings.method.clone();
    let mut response = send_call(
        vu,
        user,
        route_name,
        method.clone(),
        address,
        iteration.intended_start,
    )
    .await?;
    if matches!(
        response.status,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
    ) {
        let refusal = note_refusal(tally, &response, &user.token);
        // As a client does: a token the API calls invalid is renewed once and the call retried
        // once; a second refusal is the API's answer.
        if says_invalid_token(&response) && user.token.renew(vu, tally).await {
            response = send_call(
                vu,
                user,
                route_name,
                method,
                address,
                tokio::time::Instant::now(),
            )
            .await?;
            if response.status.is_success() {
                tally.count_recovered_401(&refusal);
            } else if matches!(
                response.status,
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
            ) {
                note_refusal(tally, &response, &user.token);
            }
        }
    }
    let expect = settings.expect.map_or(Expect::Success, Expect::Status);
    vu.judge_status(Endpoint::Api, response, expect)?;
    Some(())
}
