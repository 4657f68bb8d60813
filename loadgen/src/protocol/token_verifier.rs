//! Verifying access and ID tokens against the provider's JWKS: keys parsed once, each token
//! checked for its signature, issuer, audience and expiry.

use std::collections::HashMap;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// How access tokens are checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AccessTokenFormat {
    /// A JWS is verified against the JWKS (RFC 9068: iss, aud, exp, typ); anything else is
    /// checked as an opaque token.
    #[default]
    Auto,
    /// Every access token must be a JWT that verifies.
    Jwt,
    /// Every access token is opaque: checked by introspection (RFC 7662) when the provider offers
    /// it, otherwise by the call that uses it (userinfo).
    Opaque,
}

/// Whether `token` has the shape of a JWS in compact form: three parts, the first a base64url
/// JSON object (`eyJ` is how `{"` encodes). Only the shape is looked at: this runs on every token
/// response, and verification parses the header anyway, so decoding it here would be done twice.
pub fn looks_like_jws(token: &str) -> bool {
    token.starts_with("eyJ") && token.bytes().filter(|byte| *byte == b'.').count() == 2
}

/// Why a token did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The header has no `kid`, or the JWKS has no key with that `kid`.
    #[error("{}", match .0 {
        Some(kid) => format!("the JWKS holds no key with kid {kid}"),
        None => "the token names no kid and the JWKS holds several keys".to_owned(),
    })]
    UnknownKey(Option<String>),
    /// Access token header `typ` is not `at+jwt` (RFC 9068 section 4).
    #[error("access token typ is {0:?}, expected at+jwt")]
    WrongType(Option<String>),
    /// Signature, algorithm or a claim (`iss`, `aud`, `exp`) failed.
    #[error("{0}")]
    Invalid(String),
}

/// Why the JWKS could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// Not a JWK set.
    #[error("JWKS is not a JWK set: {0}")]
    Parse(String),
    /// No key in it can verify signatures.
    #[error("JWKS holds no usable signing key")]
    NoKeys,
}

/// Claims of an ID token that the checks look at. The ones whose type is itself a rule (`iat`
/// must be a number) are read as JSON values, so a wrong type fails its own check, not the
/// token's verification.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IdTokenClaims {
    /// Subject.
    pub sub: String,
    /// Nonce of the authorization request, if any.
    #[serde(default)]
    pub nonce: Option<String>,
    /// `aud`: one audience (a string) or several (an array).
    #[serde(default)]
    pub aud: serde_json::Value,
    /// `azp`, the authorized party, if any.
    #[serde(default)]
    pub azp: Option<serde_json::Value>,
    /// `iat`, when the token was issued.
    #[serde(default)]
    pub iat: Option<serde_json::Value>,
    /// `auth_time`, when the user authenticated, if given.
    #[serde(default)]
    pub auth_time: Option<serde_json::Value>,
    /// `at_hash`, the hash of the access token issued with it, if given.
    #[serde(default)]
    pub at_hash: Option<serde_json::Value>,
}

/// An ID token whose signature, `iss`, `aud` and `exp` verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdToken {
    /// Its claims.
    pub claims: IdTokenClaims,
    /// The algorithm it was signed with, which names the hash of `at_hash`.
    pub algorithm: Algorithm,
}

/// Claims of an access token that the checks look at.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccessTokenClaims {
    /// Subject.
    pub sub: String,
}

#[derive(Debug)]
struct VerificationKey {
    key: DecodingKey,
    access_token: Validation,
    id_token: Validation,
}

/// Verifies tokens against a JWKS fetched once; keys are parsed once, not per token.
#[derive(Debug)]
pub struct TokenVerifier {
    keys: HashMap<String, VerificationKey>,
    /// Key used for tokens whose header has no `kid`, when the JWKS holds exactly one key.
    only_key: Option<String>,
}

fn algorithms_for(jwk: &Jwk) -> Vec<Algorithm> {
    if let Some(algorithm) = jwk
        .common
        .key_algorithm
        .and_then(|key_algorithm| key_algorithm.to_string().parse::<Algorithm>().ok())
    {
        return vec![algorithm];
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(parameters) => match parameters.curve {
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => vec![Algorithm::ES256],
        },
        AlgorithmParameters::OctetKeyPair(_) => vec![Algorithm::EdDSA],
        _ => Vec::new(),
    }
}

fn validation(algorithms: &[Algorithm], issuer: &str, audience: &str) -> Validation {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.algorithms = algorithms.to_vec();
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation
}

impl TokenVerifier {
    /// Builds a verifier from a JWKS document. Access tokens must carry `issuer` and
    /// `access_token_audience`; ID tokens `issuer` and `client_id`.
    pub fn from_jwks(
        jwks: &[u8],
        issuer: &str,
        access_token_audience: &str,
        client_id: &str,
    ) -> Result<Self, JwksError> {
        let set: JwkSet =
            serde_json::from_slice(jwks).map_err(|error| JwksError::Parse(error.to_string()))?;
        let mut keys = HashMap::new();
        for (position, jwk) in set.keys.iter().enumerate() {
            let algorithms = algorithms_for(jwk);
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            if algorithms.is_empty() {
                continue;
            }
            let kid = jwk
                .common
                .key_id
                .clone()
                .unwrap_or_else(|| format!("#{position}"));
            keys.insert(
                kid,
                VerificationKey {
                    key,
                    access_token: validation(&algorithms, issuer, access_token_audience),
                    id_token: validation(&algorithms, issuer, client_id),
                },
            );
        }
        if keys.is_empty() {
            return Err(JwksError::NoKeys);
        }
        let only_key = (keys.len() == 1)
            .then(|| keys.keys().next().cloned())
            .flatten();
        Ok(Self { keys, only_key })
    }

    fn key_for(&self, kid: Option<&str>) -> Result<&VerificationKey, TokenError> {
        let found = match kid {
            Some(kid) => self.keys.get(kid),
            None => self.only_key.as_ref().and_then(|kid| self.keys.get(kid)),
        };
        found.ok_or_else(|| TokenError::UnknownKey(kid.map(str::to_owned)))
    }

    /// Verifies an access token: signature, `typ: at+jwt`, `iss`, `aud`, `exp`.
    pub fn verify_access_token(&self, token: &str) -> Result<AccessTokenClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|error| TokenError::Invalid(error.to_string()))?;
        let typ_ok = header.typ.as_deref().is_some_and(|typ| {
            typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(TokenError::WrongType(header.typ));
        }
        let key = self.key_for(header.kid.as_deref())?;
        jsonwebtoken::decode::<AccessTokenClaims>(token, &key.key, &key.access_token)
            .map(|data| data.claims)
            .map_err(|error| TokenError::Invalid(error.to_string()))
    }

    /// Verifies an ID token: signature, `iss`, `aud` = client, `exp`.
    pub fn verify_id_token(&self, token: &str) -> Result<VerifiedIdToken, TokenError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|error| TokenError::Invalid(error.to_string()))?;
        let key = self.key_for(header.kid.as_deref())?;
        jsonwebtoken::decode::<IdTokenClaims>(token, &key.key, &key.id_token)
            .map(|data| VerifiedIdToken {
                claims: data.claims,
                algorithm: data.header.alg,
            })
            .map_err(|error| TokenError::Invalid(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64_URL;

    use super::*;

    #[test]
    fn jws_tokens_are_told_from_opaque_ones() {
        let header = BASE64_URL.encode(br#"{"alg":"RS256","typ":"at+jwt"}"#);
        assert!(looks_like_jws(&format!("{header}.e30.c2ln")));
        assert!(!looks_like_jws(
            "v853nKoIMv2s8a5gaqM22KCfkhJdjzNfv0XxVetZ9Y7"
        ));
        assert!(!looks_like_jws("a.b.c"));
        assert!(!looks_like_jws(&format!("{header}.e30.c2ln.extra")));
    }

    #[test]
    fn jwks_without_usable_keys_is_refused() {
        assert!(matches!(
            TokenVerifier::from_jwks(br#"{"keys": []}"#, "iss", "aud", "client"),
            Err(JwksError::NoKeys)
        ));
        assert!(matches!(
            TokenVerifier::from_jwks(b"nope", "iss", "aud", "client"),
            Err(JwksError::Parse(_))
        ));
    }
}
