//! `client-credentials`: machine clients asking for tokens for themselves (RFC 6749 section 4.4),
//! each VU one client of `--clients` (or the run's own), every token checked as any access token
//! is, and that it names the client that asked and grants the scope asked for.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode};

use crate::protocol::client_credentials::ClientCredentials;
use crate::protocol::dpop::ProofSite;
use crate::protocol::token_request::{client_credentials_body, token_request_headers};
use crate::results::names::{Check, Endpoint};
use crate::run::scenario::vu::{Expect, ProvenRequest, TokenExpectations};
use crate::run::scenario::{Iteration, Scenario, SeedNeed, Vu};

/// The `client-credentials` scenario.
#[derive(Debug)]
pub struct ClientCredentialsGrant;

/// The client a VU acts as: its token request, the same on every iteration, built once.
#[derive(Debug)]
pub struct MachineClient {
    headers: Vec<(HeaderName, HeaderValue)>,
    /// The body, made once when it authenticates with a secret; made per request (with a
    /// fresh assertion) when it authenticates with a key.
    body: Option<Bytes>,
    client: ClientCredentials,
}

/// The scopes of `asked` that `granted` (space-separated) lacks.
fn missing_scopes<'a>(asked: &'a str, granted: &str) -> Vec<&'a str> {
    asked
        .split_whitespace()
        .filter(|scope| !granted.split_whitespace().any(|given| given == *scope))
        .collect()
}

impl Scenario for ClientCredentialsGrant {
    type State = MachineClient;

    fn seed_need(_iterations: u64, _vus: u64) -> Option<SeedNeed> {
        None
    }

    async fn set_up(vu: &mut Vu) -> Result<MachineClient, String> {
        let context = Arc::clone(vu.context());
        let client = context.machine_clients.for_vu(vu.id(), &context.client);
        if client.is_public() {
            return Err(format!(
                "client {} has no secret: a public client cannot ask for tokens for itself \
                 (RFC 6749 section 4.4); give --client-secret or --clients",
                client.client_id
            ));
        }
        let client = client.for_provider(&context.issuer, &context.paths.token.to_string());
        Ok(MachineClient {
            headers: token_request_headers(&client),
            body: (!client.signs_assertions())
                .then(|| client_credentials_body(&client, &context.machine_clients.scope)),
            client,
        })
    }

    async fn iterate(vu: &mut Vu, machine: &mut MachineClient, iteration: Iteration) -> Option<()> {
        let context = Arc::clone(vu.context());
        let request = ProvenRequest {
            endpoint: Endpoint::Token,
            route: None,
            site: ProofSite::TokenEndpoint,
            method: Method::POST,
            address: &context.paths.token,
            headers: &machine.headers,
            access_token: None,
        };
        let body = || match &machine.body {
            Some(body) => body.clone(),
            None => client_credentials_body(&machine.client, &context.machine_clients.scope),
        };
        let response = vu
            .step_with_proof(
                request,
                body,
                iteration.intended_start,
                Expect::Status(StatusCode::OK),
            )
            .await?;
        let checked = vu
            .check_token_response(
                &response,
                TokenExpectations {
                    no_subject_to_compare: true,
                    ..TokenExpectations::default()
                },
            )
            .await?;
        let mut right = true;
        // A JWT must name its client (RFC 9068 section 2.2 requires `client_id`; `azp` serves
        // where a provider sets only that); an introspection answer may leave it out (RFC 7662).
        let facts = &checked.access_token;
        if facts.jwt || facts.client_id.is_some() {
            let named = facts.client_id.as_deref();
            right &= vu.check(
                Check::AccessTokenClient,
                named == Some(machine.client.client_id.as_str()),
                || match named {
                    Some(named) => format!(
                        "the access token was issued to client {named}, not to {} who asked",
                        machine.client.client_id
                    ),
                    None => {
                        "the access token names no client (neither client_id nor azp)".to_owned()
                    }
                },
            );
        }
        let asked = context.machine_clients.scope.as_str();
        if !asked.is_empty() {
            let granted = [
                ("token response", checked.tokens.scope.as_deref()),
                ("access token", checked.access_token.scope.as_deref()),
            ];
            for (place, granted) in granted {
                let Some(granted) = granted else { continue };
                let missing = missing_scopes(asked, granted);
                right &= vu.check(Check::GrantedScope, missing.is_empty(), || {
                    format!(
                        "the {place} grants scope '{granted}', without {} that was asked for",
                        missing.join(" ")
                    )
                });
            }
        }
        right.then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_granted_beyond_what_was_asked_is_not_missing_anything() {
        assert!(missing_scopes("profile", "profile email").is_empty());
        assert_eq!(missing_scopes("profile api", "profile"), ["api"]);
        assert!(missing_scopes("", "").is_empty());
    }
}
