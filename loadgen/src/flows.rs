//! Building and reading the OAuth messages of the flows (authorization request, redirect,
//! token requests and responses), shared by seeding and by the scenarios.

use bytes::Bytes;
use serde::Deserialize;

use crate::oidc::{ClientCredentials, pkce_challenge};

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
            state: crate::oidc::random_token(32),
            nonce: crate::oidc::random_token(32),
            code_verifier: crate::oidc::new_code_verifier(),
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

/// What the authorization endpoint's redirect said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizationRedirect {
    /// Redirected to the client with a code.
    Code {
        /// The authorization code.
        code: String,
        /// The `state` as returned.
        state: Option<String>,
    },
    /// Redirected to the client with an error (RFC 6749 section 4.1.2.1).
    Error {
        /// `error`.
        error: String,
        /// `error_description`, if any.
        description: Option<String>,
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
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "code" => code = Some(value.into_owned()),
            "state" => state = Some(value.into_owned()),
            "error" => error = Some(value.into_owned()),
            "error_description" => description = Some(value.into_owned()),
            _ => {}
        }
    }
    match (code, error) {
        (_, Some(error)) => AuthorizationRedirect::Error { error, description },
        (Some(code), None) => AuthorizationRedirect::Code { code, state },
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
                state: Some("s 1".into())
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
}
