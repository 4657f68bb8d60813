//! How the client proves itself at the token, introspection and revocation endpoints:
//! `client_secret_basic`, `client_secret_post` (RFC 6749 section 2.3.1) or `private_key_jwt`
//! (RFC 7523 section 2.2, OpenID Connect Core section 9): a fresh assertion signed with the
//! client's key for every request, with its own `jti`, as the provider must see it.

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header};
use serde::Serialize;

use crate::protocol::pkce::random_token;
use crate::protocol::token_signing::{SigningAlgorithm, encoding_key};

/// `client_assertion_type` of a JWT bearer assertion (RFC 7523 section 2.2).
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid: a minute, ample for one request and short enough for a
/// provider's memory of `jti`s.
const ASSERTION_LIFETIME_S: u64 = 60;

/// The methods `--client-auth` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ClientAuthMethod {
    /// `client_secret_basic`: the secret in `Authorization: Basic`.
    #[default]
    Basic,
    /// `client_secret_post`: the secret in the form body.
    Post,
    /// `private_key_jwt`: an assertion signed with `--client-key` in the form body.
    PrivateKeyJwt,
}

/// Which `aud` the assertions name (RFC 7523 allows the token endpoint's URL or another value
/// that names the provider; OpenID Connect says the token endpoint should be it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum AssertionAudience {
    /// The token endpoint's URL, from discovery.
    #[default]
    TokenEndpoint,
    /// The issuer.
    Issuer,
}

/// Why the client's key cannot sign assertions.
#[derive(Debug, thiserror::Error)]
pub enum ClientKeyError {
    /// The file could not be read.
    #[error("could not read the client key {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The key does not sign for the algorithm.
    #[error(
        "{path} is not a PEM private key for {algorithm:?}: {reason} (give --client-key-alg to \
         match the key: RS256 or PS256 for RSA, ES256 for P-256, EdDSA for Ed25519)"
    )]
    Key {
        /// The file.
        path: String,
        /// The algorithm asked for.
        algorithm: SigningAlgorithm,
        /// What the signer said.
        reason: String,
    },
    /// HMAC would need the secret on the provider: not what `private_key_jwt` is.
    #[error("a client assertion is signed with a private key; HS256 is client_secret_jwt")]
    Symmetric,
}

/// The client's private key for `private_key_jwt`, with the header its assertions carry.
pub struct ClientKey {
    key: EncodingKey,
    header: Header,
    audience: AssertionAudience,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ClientKey")
            .field("alg", &self.header.alg)
            .field("kid", &self.header.kid)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// The claims of one assertion.
#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: String,
    iat: u64,
    exp: u64,
}

impl ClientKey {
    /// The PEM private key in `path` for `algorithm`, naming `kid` in each assertion when given;
    /// assertions are addressed to `audience`. It signs once here, so a wrong key stops the run
    /// before any load.
    pub fn from_pem_file(
        path: &Path,
        algorithm: SigningAlgorithm,
        kid: Option<String>,
        audience: AssertionAudience,
    ) -> Result<Self, ClientKeyError> {
        if algorithm == SigningAlgorithm::Hs256 {
            return Err(ClientKeyError::Symmetric);
        }
        let pem = std::fs::read(path).map_err(|source| ClientKeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let refused = |reason: String| ClientKeyError::Key {
            path: path.display().to_string(),
            algorithm,
            reason,
        };
        let key = encoding_key(&pem, algorithm).map_err(|error| refused(error.to_string()))?;
        let mut header = Header::new(algorithm.algorithm());
        header.kid = kid;
        let client_key = Self {
            key,
            header,
            audience,
        };
        client_key
            .assertion("probe", "https://probe.invalid/token")
            .map_err(refused)?;
        Ok(client_key)
    }

    /// Which `aud` this key's assertions name.
    pub fn audience(&self) -> AssertionAudience {
        self.audience
    }

    /// A fresh assertion of `client_id` for `audience`: new `jti`, issued now, valid a minute.
    pub fn assertion(&self, client_id: &str, audience: &str) -> Result<String, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let claims = AssertionClaims {
            iss: client_id,
            sub: client_id,
            aud: audience,
            jti: random_token(24),
            iat: now,
            exp: now + ASSERTION_LIFETIME_S,
        };
        jsonwebtoken::encode(&self.header, &claims, &self.key).map_err(|error| error.to_string())
    }
}

/// How one client authenticates.
#[derive(Debug, Clone, Default)]
pub enum ClientAuth {
    /// `client_secret_basic` (a public client sends only its `client_id`).
    #[default]
    Basic,
    /// `client_secret_post`.
    Post,
    /// `private_key_jwt`, with the `aud` its assertions name once the provider is known
    /// (`None` before discovery).
    PrivateKeyJwt {
        /// The key.
        key: Arc<ClientKey>,
        /// The provider's token endpoint or issuer, as the key's audience choice says.
        audience: Option<String>,
    },
}

impl PartialEq for ClientAuth {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ClientAuth::Basic, ClientAuth::Basic) | (ClientAuth::Post, ClientAuth::Post) => true,
            (
                ClientAuth::PrivateKeyJwt { key, audience },
                ClientAuth::PrivateKeyJwt {
                    key: other_key,
                    audience: other_audience,
                },
            ) => Arc::ptr_eq(key, other_key) && audience == other_audience,
            _ => false,
        }
    }
}

impl Eq for ClientAuth {}

impl ClientAuth {
    /// The method's name in discovery's `token_endpoint_auth_methods_supported`.
    pub fn metadata_name(&self) -> &'static str {
        match self {
            ClientAuth::Basic => "client_secret_basic",
            ClientAuth::Post => "client_secret_post",
            ClientAuth::PrivateKeyJwt { .. } => "private_key_jwt",
        }
    }

    /// The same method, its assertions addressed to the provider of `issuer` whose token
    /// endpoint is `token_endpoint`.
    pub fn for_provider(&self, issuer: &str, token_endpoint: &str) -> Self {
        match self {
            ClientAuth::PrivateKeyJwt { key, .. } => ClientAuth::PrivateKeyJwt {
                key: Arc::clone(key),
                audience: Some(
                    match key.audience() {
                        AssertionAudience::TokenEndpoint => token_endpoint,
                        AssertionAudience::Issuer => issuer,
                    }
                    .to_owned(),
                ),
            },
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hmac_key_or_a_wrong_key_is_refused_in_words() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("key.pem");
        std::fs::write(&path, "not a key").expect("written");
        let error = ClientKey::from_pem_file(
            &path,
            SigningAlgorithm::Es256,
            None,
            AssertionAudience::TokenEndpoint,
        )
        .expect_err("refused")
        .to_string();
        assert!(error.contains("--client-key-alg"), "{error}");
        assert!(matches!(
            ClientKey::from_pem_file(
                &path,
                SigningAlgorithm::Hs256,
                None,
                AssertionAudience::TokenEndpoint
            ),
            Err(ClientKeyError::Symmetric)
        ));
    }
}
