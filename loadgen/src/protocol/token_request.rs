//! Token requests and responses (RFC 6749 sections 4.1.3, 5 and 6, RFC 8693): the form bodies
//! and headers of each grant, the success and error answers, and error bodies in words.

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderName, HeaderValue};
use serde::Deserialize;

use crate::protocol::client_credentials::ClientCredentials;

/// `grant_type` of RFC 8693 token exchange.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// Token type URI of an access token (RFC 8693 section 3).
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The headers of a token request by `client`: the form content type and, for a confidential
/// client authenticating with `client_secret_basic`, its credentials.
pub fn token_request_headers(client: &ClientCredentials) -> Vec<(HeaderName, HeaderValue)> {
    const FORM: HeaderValue = HeaderValue::from_static("application/x-www-form-urlencoded");
    let mut headers = vec![(CONTENT_TYPE, FORM)];
    if let Some(basic) = client.basic_authorization() {
        headers.push((AUTHORIZATION, basic));
    }
    headers
}
fn form(client: &ClientCredentials, pairs: &[(&str, &str)]) -> Bytes {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    for (name, value) in client.form_parameters() {
        serializer.append_pair(name, &value);
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

/// Form body of a client-credentials grant (RFC 6749 section 4.4) asking for `scope` (none when
/// empty: the client's default scope).
pub fn client_credentials_body(client: &ClientCredentials, scope: &str) -> Bytes {
    if scope.is_empty() {
        form(client, &[("grant_type", "client_credentials")])
    } else {
        form(
            client,
            &[("grant_type", "client_credentials"), ("scope", scope)],
        )
    }
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

/// One token request's grant, from which its form body is built for each send: a request sent
/// again (a DPoP nonce challenge answered) carries a fresh client assertion, never the first
/// one's, which the provider remembers as used.
#[derive(Debug, Clone, Copy)]
pub enum TokenGrant<'a> {
    /// An authorization code redeemed (RFC 6749 section 4.1.3, PKCE).
    Code {
        /// The code.
        code: &'a str,
        /// The redirect URI of its authorization request.
        redirect_uri: &'a str,
        /// PKCE's verifier.
        code_verifier: &'a str,
    },
    /// A refresh (RFC 6749 section 6).
    Refresh {
        /// The refresh token.
        refresh_token: &'a str,
    },
    /// An access token exchanged for an access token (RFC 8693).
    Exchange {
        /// The access token exchanged.
        subject_token: &'a str,
    },
}

impl TokenGrant<'_> {
    /// The form body of this grant sent by `client`.
    pub fn body(&self, client: &ClientCredentials) -> Bytes {
        match *self {
            TokenGrant::Code {
                code,
                redirect_uri,
                code_verifier,
            } => code_grant_body(client, code, redirect_uri, code_verifier),
            TokenGrant::Refresh { refresh_token } => refresh_grant_body(client, refresh_token),
            TokenGrant::Exchange { subject_token } => token_exchange_body(client, subject_token),
        }
    }
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
    /// `scope`: what was granted, when it differs from what was asked (RFC 6749 section 5.1).
    #[serde(default)]
    pub scope: Option<String>,
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
