//! The unmeasured authorization-code flow: a user's sign-in through the provider's pages, and a
//! code got with a signed-in session (through a consent page when the provider shows one); one
//! implementation for the seeder, the virtual users' set-up and minting ahead.

use std::time::Duration;

use bytes::Bytes;
use http::header::COOKIE;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use url::Url;

use crate::http::address::Address;
use crate::http::client::VuClient;
use crate::http::transport_error::TransportError;
use crate::protocol::authorization::{
    AuthorizationFailure, AuthorizationRequest, IssuerExpectation,
};
use crate::protocol::browser::{
    Browser, Credentials, FormHints, SignInError, Start, Unmeasured, leads_to_client,
};
use crate::protocol::client_credentials::ClientCredentials;
use crate::protocol::dpop::{DpopSession, ProofSite};
use crate::protocol::pushed_authorization::{PushFailure, push_body, request_uri_of};
use crate::protocol::token_request::{TokenGrant, TokenResponse, describe_error_body};

/// Where and how a client runs the authorization-code flow against one provider.
#[derive(Debug, Clone, Copy)]
pub struct FlowEndpoints<'a> {
    /// The authorization endpoint.
    pub authorize: &'a Address,
    /// The token endpoint.
    pub token: &'a Address,
    /// The pushed authorization request endpoint (RFC 9126), when the provider offers one.
    pub par: Option<&'a Address>,
    /// Headers of a token request (form content type, client authentication).
    pub token_headers: &'a [(HeaderName, HeaderValue)],
    /// The client.
    pub client: &'a ClientCredentials,
    /// What an RFC 9207 `iss` must be.
    pub issuer: IssuerExpectation<'a>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// How to fill in the provider's pages where they do not mark their fields.
    pub hints: &'a FormHints,
}

/// Why an unmeasured flow (seeding, a virtual user's set-up) did not get its code or tokens.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FlowError {
    /// No complete answer.
    #[error("{step} got no answer: {error}")]
    Transport {
        /// The request, for example `GET /authorize`.
        step: &'static str,
        /// The transport error.
        error: TransportError,
    },
    /// The authorization endpoint gave no code.
    #[error(transparent)]
    Authorization(#[from] AuthorizationFailure),
    /// The provider's pages led nowhere (a consent page with no approve button, a login page
    /// where the session should have been enough).
    #[error(transparent)]
    Pages(#[from] SignInError),
    /// The token endpoint refused.
    #[error("the token endpoint answered {status}: {body}")]
    TokenRefused {
        /// The status.
        status: u16,
        /// The body, described.
        body: String,
    },
    /// The token endpoint's 200 is not a token response.
    #[error("the token endpoint's answer is not a token response: {0}")]
    TokenBody(String),
    /// A DPoP proof could not be made.
    #[error("a DPoP proof could not be made: {0}")]
    Dpop(String),
    /// The authorization request could not be pushed (RFC 9126).
    #[error(transparent)]
    Push(#[from] PushFailure),
}

impl FlowError {
    /// Whether trying again may help: no answer, or a server error; a refusal will not change.
    pub fn is_retryable(&self) -> bool {
        match self {
            FlowError::Transport { .. } => true,
            FlowError::TokenRefused { status, .. } => *status >= 500,
            FlowError::Authorization(AuthorizationFailure::NotRedirected { status, .. }) => {
                *status >= 500
            }
            FlowError::Pages(error) => error.is_retryable(),
            FlowError::Push(PushFailure::Refused { status, .. }) => *status >= 500,
            FlowError::Authorization(_)
            | FlowError::TokenBody(_)
            | FlowError::Dpop(_)
            | FlowError::Push(_) => false,
        }
    }
}

/// Asks the authorization endpoint for a code with a signed-in session's `cookie`, as a browser
/// returning to the client would: one redirect when the provider remembers the session and the
/// consent, otherwise on through its consent page ([`Browser::follow`], without credentials).
/// `cookie` is updated when the provider sets the session anew, as a browser keeps it.
pub async fn authorize_with_session(
    http: &mut VuClient,
    endpoints: &FlowEndpoints<'_>,
    cookie: &mut HeaderValue,
) -> Result<(AuthorizationRequest, String), FlowError> {
    let request = AuthorizationRequest::fresh();
    let address = authorization_address(http, endpoints, &request).await?;
    let response = http
        .send(
            Method::GET,
            &address,
            &[(COOKIE, cookie.clone())],
            Bytes::new(),
            endpoints.timeout,
        )
        .await
        .map_err(|error| FlowError::Transport {
            step: "GET /authorize",
            error,
        })?;
    let response = if leads_to_client(&response, &endpoints.client.redirect_uri) {
        if let Some(updated) = Browser::session_cookie_after(&address, cookie, &response.headers) {
            *cookie = updated;
        }
        response
    } else {
        let mut sender = Unmeasured {
            http,
            timeout: endpoints.timeout,
        };
        let arrival = Browser::follow_session(
            &mut sender,
            &address,
            cookie,
            response,
            &endpoints.client.redirect_uri,
            endpoints.hints,
        )
        .await?;
        if let Some(updated) = arrival.session_cookie {
            *cookie = updated;
        }
        arrival.response
    };
    let code = request.code_from(
        response.status,
        &response.headers,
        &response.body,
        &endpoints.client.redirect_uri,
        endpoints.issuer,
    )?;
    Ok((request, code))
}

/// Where a fresh authorization `request` is sent: its own address, or for a client that pushes
/// its requests (RFC 9126), the `request_uri` the provider answered for it.
pub async fn authorization_address(
    http: &mut VuClient,
    endpoints: &FlowEndpoints<'_>,
    request: &AuthorizationRequest,
) -> Result<Address, FlowError> {
    let client = endpoints.client;
    if !client.pushes_requests {
        return Ok(request.address(endpoints.authorize, client));
    }
    let par = endpoints.par.ok_or(PushFailure::NoEndpoint)?;
    let response = http
        .send(
            Method::POST,
            par,
            endpoints.token_headers,
            push_body(request, client),
            endpoints.timeout,
        )
        .await
        .map_err(|error| FlowError::Transport {
            step: "POST /par",
            error,
        })?;
    let request_uri = request_uri_of(&response)?;
    Ok(AuthorizationRequest::pushed_address(
        endpoints.authorize,
        &client.client_id,
        &request_uri,
    ))
}

/// Signs a user in from scratch in `browser` (its cookies kept for later sign-ins), through the
/// provider's login and consent pages with `credentials`, starting at `start` (the address of
/// `request`, from [`authorization_address`]), and returns the code of `request`.
pub async fn sign_in(
    browser: &mut Browser,
    http: &mut VuClient,
    endpoints: &FlowEndpoints<'_>,
    request: &AuthorizationRequest,
    start: &Address,
    credentials: Credentials<'_>,
    hints: &FormHints,
) -> Result<SignedIn, SignInError> {
    let start = start.to_string();
    let url = Url::parse(&start).map_err(|_| SignInError::NotHttp { url: start.clone() })?;
    let mut sender = Unmeasured {
        http,
        timeout: endpoints.timeout,
    };
    let arrival = browser
        .follow(
            &mut sender,
            Start::Request(url),
            &endpoints.client.redirect_uri,
            Some(credentials),
            hints,
        )
        .await?;
    let response = arrival.response;
    let code = request.code_from(
        response.status,
        &response.headers,
        &response.body,
        &endpoints.client.redirect_uri,
        endpoints.issuer,
    )?;
    Ok(SignedIn {
        code,
        consents_approved: arrival.consents_approved,
    })
}

/// The end of a sign-in through the provider's pages.
#[derive(Debug)]
pub struct SignedIn {
    /// The authorization code.
    pub code: String,
    /// Consent pages approved on the way.
    pub consents_approved: u32,
}

/// Redeems `code` of `request` at the token endpoint, with a DPoP proof of `dpop`'s key when
/// one is given (the tokens are then bound to it).
pub async fn redeem_code(
    http: &mut VuClient,
    endpoints: &FlowEndpoints<'_>,
    request: &AuthorizationRequest,
    code: &str,
    dpop: Option<&mut DpopSession>,
) -> Result<TokenResponse, FlowError> {
    let grant = TokenGrant::Code {
        code,
        redirect_uri: &endpoints.client.redirect_uri,
        code_verifier: &request.code_verifier,
    };
    post_token(http, endpoints, grant, dpop).await
}

/// Renews tokens with `refresh_token` at the token endpoint (a virtual user's first access token
/// in the `api` scenario, before the clock starts), with a DPoP proof when `dpop` is given.
pub async fn refresh(
    http: &mut VuClient,
    endpoints: &FlowEndpoints<'_>,
    refresh_token: &str,
    dpop: Option<&mut DpopSession>,
) -> Result<TokenResponse, FlowError> {
    post_token(http, endpoints, TokenGrant::Refresh { refresh_token }, dpop).await
}

/// One token request; with DPoP, a nonce challenge is answered by sending it once more with the
/// nonce (and a fresh body: a new client assertion).
async fn post_token(
    http: &mut VuClient,
    endpoints: &FlowEndpoints<'_>,
    grant: TokenGrant<'_>,
    mut dpop: Option<&mut DpopSession>,
) -> Result<TokenResponse, FlowError> {
    let mut may_answer_challenge = true;
    let response = loop {
        let mut headers = endpoints.token_headers.to_vec();
        if let Some(dpop) = dpop.as_deref_mut() {
            let proof = dpop
                .proof_header(
                    ProofSite::TokenEndpoint,
                    &Method::POST,
                    &endpoints.token.to_string(),
                    None,
                )
                .map_err(FlowError::Dpop)?;
            headers.push(proof);
        }
        let response = http
            .send(
                Method::POST,
                endpoints.token,
                &headers,
                grant.body(endpoints.client),
                endpoints.timeout,
            )
            .await
            .map_err(|error| FlowError::Transport {
                step: "POST /token",
                error,
            })?;
        let challenged = dpop
            .as_deref_mut()
            .is_some_and(|dpop| dpop.learn(ProofSite::TokenEndpoint, &response));
        if challenged && may_answer_challenge {
            may_answer_challenge = false;
            continue;
        }
        break response;
    };
    if response.status != StatusCode::OK {
        return Err(FlowError::TokenRefused {
            status: response.status.as_u16(),
            body: describe_error_body(&response.body),
        });
    }
    serde_json::from_slice(&response.body).map_err(|error| FlowError::TokenBody(error.to_string()))
}
