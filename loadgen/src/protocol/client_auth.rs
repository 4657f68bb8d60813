//! How the client proves itself at the token, introspection and revocation endpoints:
//! `client_secret_basic`, `client_secret_post` (RFC 6749 section 2.3.1) or `private_key_jwt`
//! (RFC 7523 section 2.2, OpenID Connect Core section 9): a fresh assertion signed with the
//! client's key for every request, with its own `jti`, as the provider must see it.

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature as aws_sig;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject as _;
use serde::Serialize;

use crate::protocol::compact_jws::{encoded_header, sign_compact};
use crate::protocol::pkce::random_token;
use crate::protocol::token_signing::SigningAlgorithm;

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
    /// `self_signed_tls_client_auth` or `tls_client_auth` (RFC 8705): the TLS client certificate
    /// (`--client-cert`), and `client_id` in the form body.
    Tls,
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

/// A private key parsed once, as aws-lc-rs signs with it.
enum ParsedKey {
    Rsa(aws_sig::RsaKeyPair, &'static dyn aws_sig::RsaEncoding),
    Ecdsa(aws_sig::EcdsaKeyPair),
    Ed25519(aws_sig::Ed25519KeyPair),
}

/// The client's private key for `private_key_jwt`, parsed once, with the header its
/// assertions carry.
///
/// Signed with aws-lc-rs directly rather than through `jsonwebtoken::encode`, which parses the
/// PEM key again for every token: with an RS256 key that was 750 us of loadgen's CPU per
/// request, more than the provider spent verifying it. The JWS is the compact serialization of
/// RFC 7515 (base64url of the header and claims JSON, then of the signature); the providers'
/// JOSE libraries verify it in the tests.
pub struct ClientKey {
    key: ParsedKey,
    /// `base64url(header JSON) + "."`, the same for every assertion.
    encoded_header: String,
    algorithm: SigningAlgorithm,
    kid: Option<String>,
    audience: AssertionAudience,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ClientKey")
            .field("alg", &self.algorithm)
            .field("kid", &self.kid)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// The header of every assertion.
#[derive(Serialize)]
struct AssertionHeader<'a> {
    alg: &'a str,
    typ: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
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

/// The key in `der` (PKCS#8, or PKCS#1 for RSA, SEC1 for P-256) for `algorithm`.
fn parse_key(der: &[u8], algorithm: SigningAlgorithm) -> Result<ParsedKey, String> {
    let reason = |error: &dyn std::fmt::Display| error.to_string();
    match algorithm {
        SigningAlgorithm::Rs256 | SigningAlgorithm::Ps256 => {
            let pair = aws_sig::RsaKeyPair::from_pkcs8(der)
                .or_else(|_| aws_sig::RsaKeyPair::from_der(der))
                .map_err(|error| reason(&error))?;
            let encoding: &'static dyn aws_sig::RsaEncoding =
                if algorithm == SigningAlgorithm::Rs256 {
                    &aws_sig::RSA_PKCS1_SHA256
                } else {
                    &aws_sig::RSA_PSS_SHA256
                };
            Ok(ParsedKey::Rsa(pair, encoding))
        }
        SigningAlgorithm::Es256 => {
            let algorithm = &aws_sig::ECDSA_P256_SHA256_FIXED_SIGNING;
            aws_sig::EcdsaKeyPair::from_pkcs8(algorithm, der)
                .or_else(|_| aws_sig::EcdsaKeyPair::from_private_key_der(algorithm, der))
                .map(ParsedKey::Ecdsa)
                .map_err(|error| reason(&error))
        }
        SigningAlgorithm::EdDsa => aws_sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map(ParsedKey::Ed25519)
            .map_err(|error| reason(&error)),
        SigningAlgorithm::Hs256 => Err("HS256 has no private key".to_owned()),
    }
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
        let der =
            PrivateKeyDer::from_pem_slice(&pem).map_err(|error| refused(error.to_string()))?;
        let key = parse_key(der.secret_der(), algorithm).map_err(refused)?;
        let alg = format!("{:?}", algorithm.algorithm());
        let encoded_header = encoded_header(&AssertionHeader {
            alg: &alg,
            typ: "JWT",
            kid: kid.as_deref(),
        })
        .map_err(refused)?;
        let client_key = Self {
            key,
            encoded_header,
            algorithm,
            kid,
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
        sign_compact(&self.encoded_header, &claims, |message| self.sign(message))
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let failed = |error: aws_lc_rs::error::Unspecified| error.to_string();
        match &self.key {
            ParsedKey::Rsa(pair, encoding) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(*encoding, &SystemRandom::new(), message, &mut signature)
                    .map_err(failed)?;
                Ok(signature)
            }
            ParsedKey::Ecdsa(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(failed),
            ParsedKey::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
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
    /// The certificate presented in every TLS handshake (RFC 8705), `client_id` in the body.
    TlsCertificate,
}

impl PartialEq for ClientAuth {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ClientAuth::Basic, ClientAuth::Basic)
            | (ClientAuth::Post, ClientAuth::Post)
            | (ClientAuth::TlsCertificate, ClientAuth::TlsCertificate) => true,
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
            ClientAuth::TlsCertificate => "self_signed_tls_client_auth",
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

    /// Assertions signed here are what a provider's verifier accepts: mock-idp's, each once.
    #[test]
    fn assertions_verify_at_the_provider_with_fresh_jtis() {
        use mock_idp::client_assertion::{AssertionOutcome, ClientAssertions, write_client_key};
        use mock_idp::keys::SigningAlg;
        let dir = tempfile::tempdir().expect("a temporary directory");
        for (made, algorithm) in [
            (SigningAlg::Rs256, SigningAlgorithm::Rs256),
            (SigningAlg::Es256, SigningAlgorithm::Es256),
        ] {
            let (key_path, jwks_path, kid) =
                write_client_key(dir.path(), made).expect("a client key");
            let key = ClientKey::from_pem_file(
                &key_path,
                algorithm,
                Some(kid),
                AssertionAudience::TokenEndpoint,
            )
            .expect("loadgen reads it");
            let jwks = mock_idp::client_assertion::ClientJwks::parse(
                &std::fs::read_to_string(jwks_path).expect("the JWKS"),
            )
            .expect("a JWKS");
            let provider = ClientAssertions::new(
                "loadtest-client",
                &jwks,
                vec!["http://idp.test/token".into()],
                10,
            );
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("after 1970")
                .as_secs();
            let first = key
                .assertion("loadtest-client", "http://idp.test/token")
                .expect("signed");
            let second = key
                .assertion("loadtest-client", "http://idp.test/token")
                .expect("signed");
            assert_ne!(first, second);
            for assertion in [&first, &second] {
                let (outcome, verdict) = provider.verify(assertion, now);
                assert_eq!(
                    outcome,
                    AssertionOutcome::Accepted,
                    "{algorithm:?}: {verdict:?}"
                );
            }
        }
    }
}
