//! The OAuth messages of the flows and the rules for reading them (authorization request and
//! redirect, token requests and responses): the one implementation that seeding, the scenarios'
//! set-up and TEST 3's measured iterations all use. The sending is the caller's (measured or not).

use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::Deserialize;

use crate::http::client::{TransportError, VuClient};

use crate::protocol::oidc::{ClientCredentials, pkce_challenge};

/// `grant_type` of RFC 8693 token exchange.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// Token type URI of an access token (RFC 8693 section 3).
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The parameters of one authorization request; fresh for every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// CSRF `state`, expected back unchanged.
    pub state: String,
    /// `nonce`, expected in the ID token.
    pub nonce: String,
    /// PKCE verifier; its S256 challenge goes in the request.
    pub code_verifier: String,
}

impl AuthorizationRequest {
    /// Fresh random `state`, `nonce` and verifier.
    pub fn fresh() -> Self {
        Self {
            state: crate::protocol::oidc::random_token(32),
            nonce: crate::protocol::oidc::random_token(32),
            code_verifier: crate::protocol::oidc::new_code_verifier(),
        }
    }

    /// Path and query for `authorize_path` (the path of the authorization endpoint).
    pub fn path_and_query(&self, authorize_path: &str, client: &ClientCredentials) -> String {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", &client.redirect_uri)
            .append_pair("scope", &client.scope)
            .append_pair("state", &self.state)
            .append_pair("nonce", &self.nonce)
            .append_pair("code_challenge", &pkce_challenge(&self.code_verifier))
            .append_pair("code_challenge_method", "S256")
            .finish();
        let separator = if authorize_path.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{authorize_path}{separator}{query}")
    }
}

/// Statuses with which an authorization endpoint may send the browser back to the client: RFC 6749
/// names no particular one, and providers use 302 (mock-idp, Keycloak), 303 (node-oidc-provider) or
/// 307.
pub fn is_authorization_redirect(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::FOUND | StatusCode::SEE_OTHER | StatusCode::TEMPORARY_REDIRECT
    )
}

/// Why an authorization response gave no code, each in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizationFailure {
    /// A page (status 200, HTML) where a redirect with a code was expected.
    #[error(
        "the authorization endpoint showed a page (status {status}) instead of redirecting with a code: \
         the session is not signed in, or the provider asks for login or consent (first words: {page})"
    )]
    PageInsteadOfRedirect {
        /// The status.
        status: u16,
        /// The start of the page's text.
        page: String,
    },
    /// Some other status where a redirect was expected.
    #[error(
        "the authorization endpoint answered {status} instead of redirecting with a code: {body}"
    )]
    NotRedirected {
        /// The status.
        status: u16,
        /// The body, described.
        body: String,
    },
    /// A redirect somewhere other than the client's redirect URI.
    #[error(
        "the authorization endpoint redirected to {location} instead of the client's redirect URI: \
         the session is not signed in, or the provider asks for login or consent"
    )]
    Elsewhere {
        /// The `Location`.
        location: String,
    },
    /// A redirect to the client carrying an error (RFC 6749 section 4.1.2.1).
    #[error("the authorization endpoint refused with {error}{}", .description.as_deref().map(|text| format!(": {text}")).unwrap_or_default())]
    Refused {
        /// `error`.
        error: String,
        /// `error_description`.
        description: Option<String>,
    },
    /// The `state` did not come back unchanged.
    #[error(
        "the authorization response carried state '{}', not the '{sent}' that was sent",
        returned.as_deref().unwrap_or("(none)")
    )]
    StateChanged {
        /// What was sent.
        sent: String,
        /// What came back (`None`: no state).
        returned: Option<String>,
    },
    /// The RFC 9207 `iss` names another issuer.
    #[error(
        "the authorization response names issuer {returned}, not {expected} (RFC 9207 mix-up defence)"
    )]
    WrongIssuer {
        /// The issuer from discovery.
        expected: String,
        /// The `iss` parameter.
        returned: String,
    },
    /// No RFC 9207 `iss`, from a provider whose discovery promises one.
    #[error(
        "the authorization response carries no iss, though the provider's discovery document sets \
         authorization_response_iss_parameter_supported (RFC 9207 section 2.4: such a response \
         must be refused)"
    )]
    MissingIssuer,
}

impl AuthorizationFailure {
    /// What an answer that is not a redirect was: a page (a login or consent form, most likely)
    /// or an error.
    pub fn not_a_redirect(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let html = headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("text/html"));
        if html && status.is_success() {
            AuthorizationFailure::PageInsteadOfRedirect {
                status: status.as_u16(),
                page: describe_error_body(body),
            }
        } else {
            AuthorizationFailure::NotRedirected {
                status: status.as_u16(),
                body: describe_error_body(body),
            }
        }
    }

    /// Whether the failure concerns the `state` (a check of its own) rather than the code.
    pub fn is_state(&self) -> bool {
        matches!(self, AuthorizationFailure::StateChanged { .. })
    }

    /// Whether the failure concerns the RFC 9207 issuer (a check of its own).
    pub fn is_issuer(&self) -> bool {
        matches!(
            self,
            AuthorizationFailure::WrongIssuer { .. } | AuthorizationFailure::MissingIssuer
        )
    }
}

/// What the RFC 9207 `iss` of an authorization response must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssuerExpectation<'a> {
    /// The issuer from discovery, which `iss` must equal exactly.
    pub issuer: &'a str,
    /// Whether discovery sets `authorization_response_iss_parameter_supported`: then a response
    /// without `iss` is refused (RFC 9207 section 2.4); otherwise `iss` is optional.
    pub required: bool,
}

impl IssuerExpectation<'_> {
    /// Judges the `iss` an authorization response carried (`None`: it carried none).
    pub fn judge(&self, returned: Option<&str>) -> Result<(), AuthorizationFailure> {
        match returned {
            Some(returned) if returned == self.issuer => Ok(()),
            Some(returned) => Err(AuthorizationFailure::WrongIssuer {
                expected: self.issuer.to_owned(),
                returned: returned.to_owned(),
            }),
            None if self.required => Err(AuthorizationFailure::MissingIssuer),
            None => Ok(()),
        }
    }
}

/// Each rule of one authorization response judged on its own, so that a measured flow counts
/// every check on every response, passed or failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationJudgement {
    /// The code, or why there is none (no redirect to the client, or a refusal).
    pub code: Result<String, AuthorizationFailure>,
    /// Whether `state` came back unchanged; `None` when the answer was no redirect to the client.
    pub state: Option<Result<(), AuthorizationFailure>>,
    /// Whether the RFC 9207 `iss` is right; `None` when the answer was no redirect to the client.
    pub issuer: Option<Result<(), AuthorizationFailure>>,
}

impl AuthorizationRequest {
    /// Judges the authorization endpoint's answer to this request: whether it redirected to
    /// `redirect_uri` with a code, the same `state`, and an `iss` as `issuer` expects. A redirect
    /// with an error (RFC 6749 section 4.1.2.1) carries `state` and `iss` too, and they are judged.
    pub fn judge(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        redirect_uri: &str,
        issuer: IssuerExpectation<'_>,
    ) -> AuthorizationJudgement {
        if !is_authorization_redirect(status) {
            return AuthorizationJudgement {
                code: Err(AuthorizationFailure::not_a_redirect(status, headers, body)),
                state: None,
                issuer: None,
            };
        }
        let location = headers
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let (code, state, returned_issuer) =
            match read_authorization_redirect(location, redirect_uri) {
                AuthorizationRedirect::Code {
                    code,
                    state,
                    issuer,
                } => (Ok(code), state, issuer),
                AuthorizationRedirect::Error {
                    error,
                    description,
                    state,
                    issuer,
                } => (
                    Err(AuthorizationFailure::Refused { error, description }),
                    state,
                    issuer,
                ),
                AuthorizationRedirect::Elsewhere(location) => {
                    return AuthorizationJudgement {
                        code: Err(AuthorizationFailure::Elsewhere { location }),
                        state: None,
                        issuer: None,
                    };
                }
            };
        let state = if state.as_deref() == Some(self.state.as_str()) {
            Ok(())
        } else {
            Err(AuthorizationFailure::StateChanged {
                sent: self.state.clone(),
                returned: state,
            })
        };
        AuthorizationJudgement {
            code,
            state: Some(state),
            issuer: Some(issuer.judge(returned_issuer.as_deref())),
        }
    }

    /// Reads the authorization endpoint's answer to this request: the code, when it redirected to
    /// `redirect_uri` with one, the same `state`, and an `iss` as `issuer` expects. A refusal or
    /// an answer that is no redirect to the client is named first, then a changed `state`, then
    /// a wrong `iss`.
    pub fn code_from(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        redirect_uri: &str,
        issuer: IssuerExpectation<'_>,
    ) -> Result<String, AuthorizationFailure> {
        let judgement = self.judge(status, headers, body, redirect_uri, issuer);
        let code = judgement.code?;
        judgement.state.transpose()?;
        judgement.issuer.transpose()?;
        Ok(code)
    }
}

/// The headers of a token request by `client`: the form content type and, for a confidential
/// client, its `client_secret_basic` credentials.
pub fn token_request_headers(client: &ClientCredentials) -> Vec<(HeaderName, HeaderValue)> {
    const FORM: HeaderValue = HeaderValue::from_static("application/x-www-form-urlencoded");
    let mut headers = vec![(CONTENT_TYPE, FORM)];
    if let Some(basic) = client.basic_authorization() {
        headers.push((AUTHORIZATION, basic));
    }
    headers
}

/// Where and how a client runs the authorization-code flow against one provider.
#[derive(Debug, Clone, Copy)]
pub struct FlowEndpoints<'a> {
    /// Path (and query) of the authorization endpoint on the target.
    pub authorize_path: &'a str,
    /// Path of the token endpoint on the target.
    pub token_path: &'a str,
    /// Headers of a token request (form content type, client authentication).
    pub token_headers: &'a [(HeaderName, HeaderValue)],
    /// The client.
    pub client: &'a ClientCredentials,
    /// What an RFC 9207 `iss` must be.
    pub issuer: IssuerExpectation<'a>,
    /// Per-request timeout.
    pub timeout: Duration,
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
            FlowError::Authorization(_) | FlowError::TokenBody(_) => false,
        }
    }
}

/// Asks the authorization endpoint for a code with a signed-in session's `cookie`, as a browser
/// returning to the client would, and reads the answer by [`AuthorizationRequest::code_from`].
pub async fn authorize_with_session(
    http: &mut VuClient,
    endpoints: &FlowEndpoints<'_>,
    cookie: &HeaderValue,
) -> Result<(AuthorizationRequest, String), FlowError> {
    let request = AuthorizationRequest::fresh();
    let path = request.path_and_query(endpoints.authorize_path, endpoints.client);
    let response = http
        .send(
            Method::GET,
            &path,
            &[(COOKIE, cookie.clone())],
            Bytes::new(),
            endpoints.timeout,
        )
        .await
        .map_err(|error| FlowError::Transport {
            step: "GET /authorize",
            error,
        })?;
    let code = request.code_from(
        response.status,
        &response.headers,
        &response.body,
        &endpoints.client.redirect_uri,
        endpoints.issuer,
    )?;
    Ok((request, code))
}

/// Redeems `code` of `request` at the token endpoint.
pub async fn redeem_code(
    http: &mut VuClient,
    endpoints: &FlowEndpoints<'_>,
    request: &AuthorizationRequest,
    code: &str,
) -> Result<TokenResponse, FlowError> {
    let body = code_grant_body(
        endpoints.client,
        code,
        &endpoints.client.redirect_uri,
        &request.code_verifier,
    );
    let response = http
        .send(
            Method::POST,
            endpoints.token_path,
            endpoints.token_headers,
            body,
            endpoints.timeout,
        )
        .await
        .map_err(|error| FlowError::Transport {
            step: "POST /token",
            error,
        })?;
    if response.status != StatusCode::OK {
        return Err(FlowError::TokenRefused {
            status: response.status.as_u16(),
            body: describe_error_body(&response.body),
        });
    }
    serde_json::from_slice(&response.body).map_err(|error| FlowError::TokenBody(error.to_string()))
}

/// What the authorization endpoint's redirect said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizationRedirect {
    /// Redirected to the client with a code.
    Code {
        /// The authorization code.
        code: String,
        /// The `state` as returned.
        state: Option<String>,
        /// The `iss` parameter (RFC 9207), when the provider sends it.
        issuer: Option<String>,
    },
    /// Redirected to the client with an error (RFC 6749 section 4.1.2.1).
    Error {
        /// `error`.
        error: String,
        /// `error_description`, if any.
        description: Option<String>,
        /// The `state` as returned.
        state: Option<String>,
        /// The `iss` parameter (RFC 9207), when the provider sends it.
        issuer: Option<String>,
    },
    /// Redirected somewhere else (for example a login page: the session is not valid).
    Elsewhere(String),
}

/// Reads a `Location` header of the authorization endpoint.
pub fn read_authorization_redirect(location: &str, redirect_uri: &str) -> AuthorizationRedirect {
    let Some(query) = location
        .strip_prefix(redirect_uri)
        .and_then(|rest| rest.strip_prefix('?'))
    else {
        return AuthorizationRedirect::Elsewhere(location.to_owned());
    };
    let mut code = None;
    let mut state = None;
    let mut error = None;
    let mut description = None;
    let mut issuer = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "code" => code = Some(value.into_owned()),
            "state" => state = Some(value.into_owned()),
            "iss" => issuer = Some(value.into_owned()),
            "error" => error = Some(value.into_owned()),
            "error_description" => description = Some(value.into_owned()),
            _ => {}
        }
    }
    match (code, error) {
        (_, Some(error)) => AuthorizationRedirect::Error {
            error,
            description,
            state,
            issuer,
        },
        (Some(code), None) => AuthorizationRedirect::Code {
            code,
            state,
            issuer,
        },
        (None, None) => AuthorizationRedirect::Elsewhere(location.to_owned()),
    }
}

fn form(client: &ClientCredentials, pairs: &[(&str, &str)]) -> Bytes {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    // A public client has no secret to authenticate with, so it names itself in the body.
    if client.client_secret.is_none() {
        serializer.append_pair("client_id", &client.client_id);
    }
    Bytes::from(serializer.finish())
}

/// Form body redeeming an authorization code.
pub fn code_grant_body(
    client: &ClientCredentials,
    code: &str,
    redirect_uri: &str,
    code_verifier: &str,
) -> Bytes {
    form(
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", code_verifier),
        ],
    )
}

/// Form body of a refresh.
pub fn refresh_grant_body(client: &ClientCredentials, refresh_token: &str) -> Bytes {
    form(
        client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
}

/// Form body of an RFC 8693 exchange of an access token for an access token.
pub fn token_exchange_body(client: &ClientCredentials, subject_token: &str) -> Bytes {
    form(
        client,
        &[
            ("grant_type", TOKEN_EXCHANGE_GRANT),
            ("subject_token", subject_token),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("requested_token_type", ACCESS_TOKEN_TYPE),
        ],
    )
}

/// A token endpoint's success response; every field optional so checks can say which is missing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TokenResponse {
    /// `access_token`.
    #[serde(default)]
    pub access_token: Option<String>,
    /// `token_type`.
    #[serde(default)]
    pub token_type: Option<String>,
    /// `expires_in`.
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// `refresh_token`.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// `id_token`.
    #[serde(default)]
    pub id_token: Option<String>,
    /// `issued_token_type` (token exchange).
    #[serde(default)]
    pub issued_token_type: Option<String>,
}

/// The `issuer` of a discovery document, the field each discovery iteration checks. The other
/// members are skipped (still validated as JSON) without being built into values: building a
/// `serde_json::Value` of the whole document was half of loadgen's per-request CPU.
#[derive(Debug, Deserialize)]
pub struct DiscoveryIssuer<'a> {
    /// `issuer`, borrowed from the body unless it holds escapes.
    #[serde(borrow, default)]
    pub issuer: Option<std::borrow::Cow<'a, str>>,
}

/// An RFC 6749 section 5.2 error response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ErrorResponse {
    /// `error`.
    #[serde(default)]
    pub error: Option<String>,
    /// `error_description`.
    #[serde(default)]
    pub error_description: Option<String>,
}

/// A short description of an error body, for messages: `error: description`, or the raw text.
pub fn describe_error_body(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorResponse>(body) {
        Ok(ErrorResponse {
            error: Some(error),
            error_description,
        }) => match error_description {
            Some(description) => format!("{error}: {description}"),
            None => error,
        },
        _ => {
            let text = String::from_utf8_lossy(body);
            let trimmed: String = text.trim().chars().take(200).collect();
            if trimmed.is_empty() {
                "(empty body)".to_owned()
            } else {
                trimmed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_request_carries_pkce_and_fresh_values() {
        let request = AuthorizationRequest::fresh();
        let other = AuthorizationRequest::fresh();
        assert_ne!(request.state, other.state);
        assert_ne!(request.nonce, other.nonce);
        let path = request.path_and_query("/authorize", &ClientCredentials::default());
        let query = path.strip_prefix("/authorize?").unwrap();
        let pairs: std::collections::HashMap<_, _> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(pairs["scope"], "openid profile email");
        assert_eq!(pairs["code_challenge_method"], "S256");
        assert_eq!(
            pairs["code_challenge"],
            pkce_challenge(&request.code_verifier)
        );
        assert_eq!(pairs["state"], request.state);
        assert_eq!(pairs["redirect_uri"], "http://127.0.0.1:3000/callback");
    }

    #[test]
    fn redirects_are_read() {
        let redirect = "http://127.0.0.1:3000/callback";
        assert_eq!(
            read_authorization_redirect(
                &format!("{redirect}?code=abc&state=s%201&iss=x"),
                redirect
            ),
            AuthorizationRedirect::Code {
                code: "abc".into(),
                state: Some("s 1".into()),
                issuer: Some("x".into()),
            }
        );
        assert!(matches!(
            read_authorization_redirect(&format!("{redirect}?error=access_denied"), redirect),
            AuthorizationRedirect::Error { .. }
        ));
        assert!(matches!(
            read_authorization_redirect("/login?x=1", redirect),
            AuthorizationRedirect::Elsewhere(_)
        ));
    }

    #[test]
    fn public_clients_name_themselves_in_the_body() {
        let public = ClientCredentials {
            client_id: "loadtest-public".into(),
            client_secret: None,
            ..ClientCredentials::default()
        };
        let body = refresh_grant_body(&public, "rt");
        assert_eq!(
            body,
            "grant_type=refresh_token&refresh_token=rt&client_id=loadtest-public"
        );
        let confidential = refresh_grant_body(&ClientCredentials::default(), "r t");
        assert_eq!(confidential, "grant_type=refresh_token&refresh_token=r+t");
    }

    #[test]
    fn error_bodies_are_described() {
        assert_eq!(
            describe_error_body(br#"{"error":"invalid_grant","error_description":"used"}"#),
            "invalid_grant: used"
        );
        assert_eq!(describe_error_body(b"oops"), "oops");
        assert_eq!(describe_error_body(b""), "(empty body)");
    }

    fn answer(status: u16, location: &str, content_type: &str) -> (StatusCode, HeaderMap) {
        let mut headers = HeaderMap::new();
        headers.insert(LOCATION, location.parse().unwrap());
        headers.insert(CONTENT_TYPE, content_type.parse().unwrap());
        (StatusCode::from_u16(status).unwrap(), headers)
    }

    const ISSUER: &str = "http://127.0.0.1:8080/oidc";

    fn optional_iss() -> IssuerExpectation<'static> {
        IssuerExpectation {
            issuer: ISSUER,
            required: false,
        }
    }

    fn required_iss() -> IssuerExpectation<'static> {
        IssuerExpectation {
            issuer: ISSUER,
            required: true,
        }
    }

    fn encoded(value: &str) -> String {
        form_urlencoded::byte_serialize(value.as_bytes()).collect()
    }

    #[test]
    fn a_code_comes_back_with_302_303_or_307_and_its_state_and_issuer() {
        let request = AuthorizationRequest::fresh();
        let redirect = "http://127.0.0.1:3000/callback";
        let good = format!(
            "{redirect}?code=abc&state={}&iss={}",
            request.state,
            encoded(ISSUER)
        );
        for status in [302, 303, 307] {
            let (status, headers) = answer(status, &good, "text/plain");
            assert_eq!(
                request.code_from(status, &headers, b"", redirect, required_iss()),
                Ok("abc".to_owned())
            );
        }
        // No `iss` at all is fine when discovery does not promise one: RFC 9207 is optional.
        let (status, headers) = answer(
            302,
            &format!("{redirect}?code=abc&state={}", request.state),
            "",
        );
        assert!(
            request
                .code_from(status, &headers, b"", redirect, optional_iss())
                .is_ok()
        );
        let failure = request
            .code_from(status, &headers, b"", redirect, required_iss())
            .unwrap_err();
        assert_eq!(failure, AuthorizationFailure::MissingIssuer);
        assert!(failure.is_issuer());

        let (status, headers) = answer(302, &good, "");
        let elsewhere = IssuerExpectation {
            issuer: "http://evil.example",
            required: false,
        };
        let failure = request
            .code_from(status, &headers, b"", redirect, elsewhere)
            .unwrap_err();
        assert!(failure.is_issuer(), "{failure}");
        assert!(failure.to_string().contains("RFC 9207"), "{failure}");
        // Exact: a trailing slash is another issuer.
        let (status, headers) = answer(
            302,
            &format!(
                "{redirect}?code=abc&state={}&iss={}",
                request.state,
                encoded(&format!("{ISSUER}/"))
            ),
            "",
        );
        assert!(
            request
                .code_from(status, &headers, b"", redirect, optional_iss())
                .unwrap_err()
                .is_issuer()
        );

        let (status, headers) = answer(302, &format!("{redirect}?code=abc&state=other"), "");
        let failure = request
            .code_from(status, &headers, b"", redirect, optional_iss())
            .unwrap_err();
        assert!(failure.is_state(), "{failure}");
    }

    #[test]
    fn every_rule_of_an_authorization_response_is_judged_apart() {
        let request = AuthorizationRequest::fresh();
        let redirect = "http://127.0.0.1:3000/callback";
        // A right response: every rule judged, every one passed.
        let (status, headers) = answer(
            302,
            &format!(
                "{redirect}?code=abc&state={}&iss={}",
                request.state,
                encoded(ISSUER)
            ),
            "",
        );
        assert_eq!(
            request.judge(status, &headers, b"", redirect, required_iss()),
            AuthorizationJudgement {
                code: Ok("abc".into()),
                state: Some(Ok(())),
                issuer: Some(Ok(())),
            }
        );
        // A changed state and a wrong issuer in one response: both are judged, both fail.
        let (status, headers) = answer(
            302,
            &format!("{redirect}?code=abc&state=forged&iss=http%3A%2F%2Fevil.example"),
            "",
        );
        let judgement = request.judge(status, &headers, b"", redirect, optional_iss());
        assert_eq!(judgement.code, Ok("abc".into()));
        assert!(judgement.state.unwrap().unwrap_err().is_state());
        assert!(judgement.issuer.unwrap().unwrap_err().is_issuer());
        // An error redirect carries state and iss too (RFC 9207 section 2).
        let (status, headers) = answer(
            302,
            &format!(
                "{redirect}?error=access_denied&state={}&iss={}",
                request.state,
                encoded(ISSUER)
            ),
            "",
        );
        let judgement = request.judge(status, &headers, b"", redirect, required_iss());
        assert!(matches!(
            judgement.code,
            Err(AuthorizationFailure::Refused { .. })
        ));
        assert_eq!(judgement.state, Some(Ok(())));
        assert_eq!(judgement.issuer, Some(Ok(())));
        // No redirect to the client: nothing to judge but the code.
        let (status, headers) = answer(303, "/interaction/abc", "");
        let judgement = request.judge(status, &headers, b"", redirect, required_iss());
        assert!(judgement.code.is_err());
        assert_eq!((judgement.state, judgement.issuer), (None, None));
    }

    #[test]
    fn a_login_page_where_a_code_should_be_is_named_as_such() {
        let request = AuthorizationRequest::fresh();
        let (_, headers) = answer(200, "", "text/html; charset=utf-8");
        let failure = request
            .code_from(
                StatusCode::OK,
                &headers,
                b"<html><form><input type=password></form></html>",
                "http://127.0.0.1:3000/callback",
                optional_iss(),
            )
            .unwrap_err();
        assert!(
            matches!(
                failure,
                AuthorizationFailure::PageInsteadOfRedirect { status: 200, .. }
            ),
            "{failure}"
        );
        assert!(
            failure.to_string().contains("asks for login or consent"),
            "{failure}"
        );
        let (status, headers) = answer(303, "/interaction/abc", "");
        let failure = request
            .code_from(
                status,
                &headers,
                b"",
                "http://127.0.0.1:3000/callback",
                optional_iss(),
            )
            .unwrap_err();
        assert_eq!(
            failure.to_string(),
            "the authorization endpoint redirected to /interaction/abc instead of the client's \
             redirect URI: the session is not signed in, or the provider asks for login or consent"
        );
    }
}
