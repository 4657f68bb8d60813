//! The OAuth client the load test acts as: its id, secret, redirect URI and scope, and how it
//! authenticates at the token endpoint (RFC 6749 section 2.3.1, RFC 7523: [`ClientAuth`]).

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::HeaderValue;

use crate::protocol::client_auth::{ClientAuth, JWT_BEARER_ASSERTION};

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
    /// How it authenticates (a public client, without a secret, names itself only).
    pub auth: ClientAuth,
    /// Whether it pushes its authorization requests (RFC 9126) and sends `/authorize` only the
    /// `request_uri` it gets back.
    pub pushes_requests: bool,
}

impl Default for ClientCredentials {
    fn default() -> Self {
        Self {
            client_id: DEFAULT_CLIENT_ID.into(),
            client_secret: Some(DEFAULT_CLIENT_SECRET.into()),
            redirect_uri: DEFAULT_REDIRECT_URI.into(),
            scope: DEFAULT_SCOPE.into(),
            auth: ClientAuth::Basic,
            pushes_requests: false,
        }
    }
}

impl ClientCredentials {
    /// The `Authorization: Basic` value (RFC 6749 section 2.3.1: both parts form-encoded first),
    /// or `None` for a public client.
    pub fn basic_authorization(&self) -> Option<HeaderValue> {
        if self.auth != ClientAuth::Basic {
            return None;
        }
        let secret = self.client_secret.as_ref()?;
        let encode =
            |part: &str| form_urlencoded::byte_serialize(part.as_bytes()).collect::<String>();
        let pair = format!("{}:{}", encode(&self.client_id), encode(secret));
        HeaderValue::from_str(&format!("Basic {}", BASE64.encode(pair))).ok()
    }
}

impl ClientCredentials {
    /// The same client, its assertions (with `private_key_jwt`) addressed to the provider of
    /// `issuer` whose token endpoint is `token_endpoint`.
    pub fn for_provider(&self, issuer: &str, token_endpoint: &str) -> Self {
        Self {
            auth: self.auth.for_provider(issuer, token_endpoint),
            ..self.clone()
        }
    }

    /// Whether it is a public client: no secret, no key and no certificate, only its
    /// `client_id`.
    pub fn is_public(&self) -> bool {
        self.client_secret.is_none()
            && !self.signs_assertions()
            && self.auth != ClientAuth::TlsCertificate
    }

    /// Whether it authenticates with a fresh assertion per request (`private_key_jwt`), so no
    /// request body that carries its credentials may be sent twice.
    pub fn signs_assertions(&self) -> bool {
        matches!(self.auth, ClientAuth::PrivateKeyJwt { .. })
    }

    /// The form parameters that authenticate this client in a request body: none for
    /// `client_secret_basic` (its header does), `client_id` and the secret for
    /// `client_secret_post`, `client_id` and a fresh assertion for `private_key_jwt`, and
    /// `client_id` alone for a public client and one authenticated by its TLS certificate.
    pub fn form_parameters(&self) -> Vec<(&'static str, Cow<'_, str>)> {
        let id = Cow::Borrowed(self.client_id.as_str());
        match (&self.auth, &self.client_secret) {
            (ClientAuth::PrivateKeyJwt { key, audience }, _) => {
                // The key signed once when it was read, so signing cannot fail here; an empty
                // assertion would be refused by the provider, in its words, if it ever did.
                let assertion = key
                    .assertion(&self.client_id, audience.as_deref().unwrap_or_default())
                    .unwrap_or_default();
                vec![
                    ("client_id", id),
                    ("client_assertion_type", Cow::Borrowed(JWT_BEARER_ASSERTION)),
                    ("client_assertion", Cow::Owned(assertion)),
                ]
            }
            (ClientAuth::Post, Some(secret)) => {
                vec![("client_id", id), ("client_secret", Cow::Borrowed(secret))]
            }
            // RFC 8705 section 2: the certificate authenticates, the body names the client.
            (ClientAuth::TlsCertificate, _) | (_, None) => vec![("client_id", id)],
            (ClientAuth::Basic, Some(_)) => Vec::new(),
        }
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
