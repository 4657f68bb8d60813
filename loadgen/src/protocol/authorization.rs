//! The authorization request and the rules for reading its answer: the redirect with 302, 303 or
//! 307, `state`, and RFC 9207 `iss`. Building and judging only: the sending is the caller's.

use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderMap, StatusCode};

use crate::http::address::Address;
use crate::protocol::client_credentials::ClientCredentials;
use crate::protocol::pkce::pkce_challenge;
use crate::protocol::token_request::describe_error_body;

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
            state: crate::protocol::pkce::random_token(32),
            nonce: crate::protocol::pkce::random_token(32),
            code_verifier: crate::protocol::pkce::new_code_verifier(),
        }
    }

    /// The request's address on the authorization endpoint `authorize`.
    pub fn address(&self, authorize: &Address, client: &ClientCredentials) -> Address {
        authorize.with_path_and_query(self.path_and_query(authorize.path_and_query(), client))
    }

    /// Path and query for `authorize_path` (the path of the authorization endpoint).
    pub fn path_and_query(&self, authorize_path: &str, client: &ClientCredentials) -> String {
        with_query(authorize_path, &self.encoded(client))
    }

    /// The request's parameters, form-encoded: the query of `/authorize`, or (with the client's
    /// authentication after them) the body of a pushed request.
    pub fn encoded(&self, client: &ClientCredentials) -> String {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", &client.redirect_uri)
            .append_pair("scope", &client.scope)
            .append_pair("state", &self.state)
            .append_pair("nonce", &self.nonce)
            .append_pair("code_challenge", &pkce_challenge(&self.code_verifier))
            .append_pair("code_challenge_method", "S256")
            .finish()
    }

    /// The address on `authorize` of the request pushed as `request_uri` (RFC 9126 section 4):
    /// the client and the reference, nothing else.
    pub fn pushed_address(authorize: &Address, client_id: &str, request_uri: &str) -> Address {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", client_id)
            .append_pair("request_uri", request_uri)
            .finish();
        authorize.with_path_and_query(with_query(authorize.path_and_query(), &query))
    }
}

/// `path` with `query` added to whatever query it has.
fn with_query(path: &str, query: &str) -> String {
    let separator = if path.contains('?') { '&' } else { '?' };
    format!("{path}{separator}{query}")
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
