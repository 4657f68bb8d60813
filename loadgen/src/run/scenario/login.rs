//! `login`: a person signing in from scratch, each iteration a fresh browser through the
//! provider's own pages (authorize, login page, login form, consent when shown) to the code and
//! its redemption, each page and form its own endpoint and the whole sign-in the gated latency.

use std::sync::Arc;

use url::Url;

use crate::protocol::authorization::AuthorizationRequest;
use crate::protocol::browser::{Browser, Credentials, MAX_HOPS, SignInError, Start};
use crate::run::scenario::full_oidc::{code_of_redirect, redeem};
use crate::run::scenario::vu::{MeasuredHops, TokenExpectations};
use crate::run::scenario::{Iteration, Scenario, SeedNeed, Vu};

/// The `login` scenario.
#[derive(Debug)]
pub struct Login;

impl Scenario for Login {
    type State = ();
    /// The browser's hops at most (authorization request, pages, forms, redirects), and the
    /// token request.
    const REQUESTS_PER_ITERATION: u32 = MAX_HOPS as u32 + 1;

    fn seed_need(_iterations: u64, _vus: u64) -> Option<SeedNeed> {
        None
    }

    async fn set_up(_vu: &mut Vu) -> Result<(), String> {
        Ok(())
    }

    async fn iterate(vu: &mut Vu, _state: &mut (), iteration: Iteration) -> Option<()> {
        let context = Arc::clone(vu.context());
        let username = context.users.for_iteration(iteration.index);
        let request = AuthorizationRequest::fresh();
        let (start, authorize_start) = vu
            .authorization_start(&request, iteration.intended_start)
            .await?;
        let start = start.to_string();
        let Ok(url) = Url::parse(&start) else {
            vu.fail("stop on the provider's pages", || {
                format!("the authorization request {start} is not a URL")
            });
            return None;
        };
        let credentials = Credentials {
            username: &username,
            password: &context.users.password,
        };
        let mut hops = MeasuredHops {
            vu,
            intended_start: authorize_start,
            login_endpoints: true,
            last_stage: None,
        };
        let followed = Browser::new()
            .follow(
                &mut hops,
                Start::Request(url),
                &context.client.redirect_uri,
                Some(credentials),
                &context.hints,
            )
            .await;
        let last_endpoint = hops.last_endpoint();
        let arrival = match followed {
            Ok(arrival) => arrival,
            // A request that got no answer is already a failed request of its own.
            Err(SignInError::Transport { .. }) => return None,
            // An error page: the failed request is the last one sent.
            Err(error @ SignInError::Unexpected { status, .. }) => {
                vu.fail_request(last_endpoint, status, || error.to_string());
                return None;
            }
            Err(error) => {
                vu.fail("stop on the provider's pages", || {
                    format!("signing in as {username}: {error}")
                });
                return None;
            }
        };
        if arrival.consents_approved > 0 {
            context.count_consent_approved();
        }
        let code = code_of_redirect(vu, &request, arrival.response)?;
        let response = redeem(vu, &request, &code).await?;
        vu.check_token_response(
            &response,
            TokenExpectations {
                nonce: Some(&request.nonce),
                id_token_required: true,
                no_subject_to_compare: true,
                ..TokenExpectations::default()
            },
        )
        .await?;
        Some(())
    }
}
