//! What a run makes sure of before any load, so that it never fails for a reason that is not the
//! provider's capacity: that the introspecting client may introspect a token just issued.

use std::sync::Arc;

use http::{HeaderValue, Method, StatusCode};

use crate::http::client::VuClient;
use crate::protocol::code_flow::{authorize_with_session, redeem_code};
use crate::protocol::introspection::{inactive_fresh_token_advice, introspection_body, is_active};
use crate::protocol::token_verifier::{AccessTokenFormat, looks_like_jws};
use crate::results::names::Check;
use crate::run::scenario::RunContext;

/// A token the provider has just issued, introspected before load, was called inactive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{advice}. The run stopped before any load.")]
pub struct IntrospectionRefused {
    /// What it means and what to do.
    pub advice: String,
}

/// Asks the provider's introspection about an access token issued just now through the first
/// seeded session (unmeasured), when the run would introspect opaque tokens: an inactive answer
/// stops the run before load, in words that name both explanations and the flags. Says nothing
/// when there is nothing to ask with (no session, no introspection endpoint, JWT access tokens) or
/// the token could not be got: the run itself then shows what is wrong.
pub(super) async fn check_introspection(context: &RunContext) -> Result<(), IntrospectionRefused> {
    let Some(introspection) = context.paths.introspection.as_ref() else {
        return Ok(());
    };
    if context.access_token == AccessTokenFormat::Jwt
        || context.skipped_checks.contains(Check::AccessTokenActive)
    {
        return Ok(());
    }
    let Some(cookie) = context
        .seeds
        .sessions
        .first()
        .and_then(|session| HeaderValue::from_str(&session.cookie).ok())
    else {
        return Ok(());
    };
    let mut http = VuClient::new(Arc::clone(&context.target));
    let endpoints = context.flow_endpoints();
    let Ok((request, code)) = authorize_with_session(&mut http, &endpoints, &cookie).await else {
        return Ok(());
    };
    let Ok(tokens) = redeem_code(&mut http, &endpoints, &request, &code).await else {
        return Ok(());
    };
    let Some(access_token) = tokens.access_token else {
        return Ok(());
    };
    if context.access_token == AccessTokenFormat::Auto && looks_like_jws(&access_token) {
        return Ok(());
    }
    let answer = http
        .send(
            Method::POST,
            introspection,
            context.introspection_headers(),
            introspection_body(&access_token),
            context.timeout,
        )
        .await;
    match answer {
        Ok(response)
            if response.status == StatusCode::OK && is_active(&response.body) == Some(false) =>
        {
            Err(IntrospectionRefused {
                advice: inactive_fresh_token_advice(
                    &context.introspection_client_id,
                    context.introspection_client_given,
                ),
            })
        }
        _ => Ok(()),
    }
}
