//! The OAuth client the load test acts as: its id, secret, redirect URI and scope, and how it
//! authenticates at the token endpoint (RFC 6749 section 2.3.1).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::HeaderValue;

/// Default client of the mock IdP.
pub const DEFAULT_CLIENT_ID: &str = "loadtest-client";
/// Default secret of the mock IdP's confidential client.
pub const DEFAULT_CLIENT_SECRET: &str = "loadtest-secret";
/// Default redirect URI registered for the mock IdP's clients.
pub const DEFAULT_REDIRECT_URI: &str = "http://127.0.0.1:3000/callback";
/// Scope the specification's authorization requests ask for.
pub const DEFAULT_SCOPE: &str = "openid profile email";

/// The OAuth client the load test acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    /// `client_id`.
    pub client_id: String,
    /// Secret for `client_secret_basic`; `None` for a public client (PKCE only).
    pub client_secret: Option<String>,
    /// Registered redirect URI.
    pub redirect_uri: String,
    /// Scope to request.
    pub scope: String,
}

impl Default for ClientCredentials {
    fn default() -> Self {
        Self {
            client_id: DEFAULT_CLIENT_ID.into(),
            client_secret: Some(DEFAULT_CLIENT_SECRET.into()),
            redirect_uri: DEFAULT_REDIRECT_URI.into(),
            scope: DEFAULT_SCOPE.into(),
        }
    }
}

impl ClientCredentials {
    /// The `Authorization: Basic` value (RFC 6749 section 2.3.1: both parts form-encoded first),
    /// or `None` for a public client.
    pub fn basic_authorization(&self) -> Option<HeaderValue> {
        let secret = self.client_secret.as_ref()?;
        let encode =
            |part: &str| form_urlencoded::byte_serialize(part.as_bytes()).collect::<String>();
        let pair = format!("{}:{}", encode(&self.client_id), encode(secret));
        HeaderValue::from_str(&format!("Basic {}", BASE64.encode(pair))).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_authorization_form_encodes_both_parts() {
        let credentials = ClientCredentials {
            client_id: "a b".into(),
            client_secret: Some("p:w".into()),
            ..ClientCredentials::default()
        };
        let header = credentials.basic_authorization().unwrap();
        let encoded = header.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = String::from_utf8(BASE64.decode(encoded).unwrap()).unwrap();
        assert_eq!(decoded, "a+b:p%3Aw");
        let public = ClientCredentials {
            client_secret: None,
            ..ClientCredentials::default()
        };
        assert!(public.basic_authorization().is_none());
    }
}
