//! Verifying access and ID tokens against the provider's JWKS: keys parsed once, each token
//! checked for its signature, issuer, audience and expiry. An access token is judged by the
//! profile it claims: RFC 9068's rules for `typ: at+jwt`, the rules every signed JWT must meet for
//! any other (Keycloak's `typ: JWT`, or none at all).

use std::collections::HashMap;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// How access tokens are checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AccessTokenFormat {
    /// A JWS is verified against the JWKS (RFC 9068's rules when its `typ` is `at+jwt`, the
    /// rules of any signed JWT otherwise); anything else is checked as an opaque token.
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
    /// A claim every access token must carry is missing or of the wrong type.
    #[error("the access token has no numeric {0} claim")]
    MissingClaim(&'static str),
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
    /// It holds keys, but none that can verify signatures (encryption keys, unknown types).
    #[error("JWKS holds no usable signing key")]
    NoKeys,
    /// It holds no key at all: what a provider that makes its signing key on first use serves
    /// until then.
    #[error("JWKS holds no key yet")]
    Empty,
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
    /// `iat`, when the token was issued: required of every JWT access token, read as a JSON
    /// value so that a string fails with its own sentence.
    #[serde(default)]
    pub iat: Option<serde_json::Value>,
    /// `client_id` (RFC 9068 section 2.2): the client the token was issued to. Read as a JSON
    /// value, as the claims below, so that a provider's other shape never fails the signature
    /// check: only the checks that read it judge it.
    #[serde(default)]
    pub client_id: Option<serde_json::Value>,
    /// `azp`, which names the client where a provider sets no `client_id`.
    #[serde(default)]
    pub azp: Option<serde_json::Value>,
    /// `scope` (RFC 9068 section 2.2.3): space-separated, or a list as some providers write it.
    #[serde(default)]
    pub scope: Option<serde_json::Value>,
    /// `cnf` (RFC 7800): with DPoP, `jkt`, the thumbprint of the key the token is bound to.
    #[serde(default)]
    pub cnf: Option<serde_json::Value>,
}

impl AccessTokenClaims {
    /// The client the token names (`client_id`, else `azp`, when either is a string) and its
    /// scope, space-separated. Takes the claims apart rather than copy them: this runs on every
    /// access token checked.
    /// `cnf.jkt`, when the token names the DPoP key it is bound to.
    pub fn dpop_jkt(&self) -> Option<&str> {
        self.cnf.as_ref()?.get("jkt")?.as_str()
    }

    pub fn into_client_and_scope(self) -> (Option<String>, Option<String>) {
        let text = |claim: Option<serde_json::Value>| match claim {
            Some(serde_json::Value::String(text)) => Some(text),
            _ => None,
        };
        let client = text(self.client_id).or_else(|| text(self.azp));
        // Space-separated, whether the token writes it as a string or as a list of them.
        let scope = match self.scope {
            Some(serde_json::Value::Array(scopes)) => Some(
                scopes
                    .iter()
                    .filter_map(serde_json::Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            scope => text(scope),
        };
        (client, scope)
    }
}

/// Which rules a JWT access token was checked under: the one its header claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccessTokenProfile {
    /// `typ: at+jwt`: RFC 9068 (signature, `iss`, `aud`, `exp`, `iat`, `sub`).
    Rfc9068,
    /// Any other JWS (`typ: JWT`, as Keycloak issues by default, or no `typ`): signature, `iss`,
    /// `exp`, `iat`, `sub`, and `aud` only when the audience was given.
    Jwt,
}

/// A JWT access token that verified, and the profile it was verified under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAccessToken {
    /// Its claims.
    pub claims: AccessTokenClaims,
    /// The rules it met.
    pub profile: AccessTokenProfile,
}

/// Whether a JOSE header `typ` names RFC 9068's access-token type (section 2.1: `at+jwt`, or
/// with the `application/` prefix RFC 7515 allows to be left out).
pub fn is_rfc9068_type(typ: Option<&str>) -> bool {
    typ.is_some_and(|typ| {
        typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
    })
}

#[derive(Debug)]
struct VerificationKey {
    key: DecodingKey,
    rfc9068_access_token: Validation,
    jwt_access_token: Validation,
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

fn validation(algorithms: &[Algorithm], issuer: &str, audience: Option<&str>) -> Validation {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.algorithms = algorithms.to_vec();
    validation.set_issuer(&[issuer]);
    match audience {
        Some(audience) => {
            validation.set_audience(&[audience]);
            validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        }
        None => {
            validation.validate_aud = false;
            validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        }
    }
    validation
}

impl TokenVerifier {
    /// Builds a verifier from a JWKS document. Access tokens must carry `issuer`; RFC 9068 ones
    /// also `access_token_audience` (the issuer when none is given), others only when one is
    /// given. ID tokens must carry `issuer` and `client_id`.
    pub fn from_jwks(
        jwks: &[u8],
        issuer: &str,
        access_token_audience: Option<&str>,
        client_id: &str,
    ) -> Result<Self, JwksError> {
        let set: JwkSet =
            serde_json::from_slice(jwks).map_err(|error| JwksError::Parse(error.to_string()))?;
        if set.keys.is_empty() {
            return Err(JwksError::Empty);
        }
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
                    rfc9068_access_token: validation(
                        &algorithms,
                        issuer,
                        Some(access_token_audience.unwrap_or(issuer)),
                    ),
                    jwt_access_token: validation(&algorithms, issuer, access_token_audience),
                    id_token: validation(&algorithms, issuer, Some(client_id)),
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

    /// A verifier that holds no key: every token is signed with a key it does not know. What a
    /// provider that makes its signing key on first use serves until then.
    pub fn empty() -> Self {
        Self {
            keys: HashMap::new(),
            only_key: None,
        }
    }

    /// Whether it holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn key_for(&self, kid: Option<&str>) -> Result<&VerificationKey, TokenError> {
        let found = match kid {
            Some(kid) => self.keys.get(kid),
            None => self.only_key.as_ref().and_then(|kid| self.keys.get(kid)),
        };
        found.ok_or_else(|| TokenError::UnknownKey(kid.map(str::to_owned)))
    }

    /// Verifies a JWT access token under the profile its header claims: signature, `iss`,
    /// `exp`, `iat` and `sub` always; `aud` for RFC 9068 (`typ: at+jwt`), and for any other JWT
    /// when the audience was given.
    pub fn verify_access_token(&self, token: &str) -> Result<VerifiedAccessToken, TokenError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|error| TokenError::Invalid(error.to_string()))?;
        let profile = if is_rfc9068_type(header.typ.as_deref()) {
            AccessTokenProfile::Rfc9068
        } else {
            AccessTokenProfile::Jwt
        };
        let key = self.key_for(header.kid.as_deref())?;
        let validation = match profile {
            AccessTokenProfile::Rfc9068 => &key.rfc9068_access_token,
            AccessTokenProfile::Jwt => &key.jwt_access_token,
        };
        let claims = jsonwebtoken::decode::<AccessTokenClaims>(token, &key.key, validation)
            .map(|data| data.claims)
            .map_err(|error| TokenError::Invalid(error.to_string()))?;
        if !claims
            .iat
            .as_ref()
            .is_some_and(serde_json::Value::is_number)
        {
            return Err(TokenError::MissingClaim("iat"));
        }
        Ok(VerifiedAccessToken { claims, profile })
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
    fn the_client_and_scope_are_read_in_either_shape_and_others_are_absent() {
        let claims = |json: serde_json::Value| -> AccessTokenClaims {
            serde_json::from_value(json).unwrap()
        };
        let listed = claims(serde_json::json!({"sub": "s", "azp": "m", "scope": ["a", "b"]}));
        assert_eq!(
            listed.into_client_and_scope(),
            (Some("m".into()), Some("a b".into()))
        );
        let both =
            claims(serde_json::json!({"sub": "s", "client_id": "c", "azp": "m", "scope": "a"}));
        assert_eq!(
            both.into_client_and_scope(),
            (Some("c".into()), Some("a".into()))
        );
        let odd = claims(serde_json::json!({"sub": "s", "client_id": 7, "scope": {"a": 1}}));
        assert_eq!(odd.into_client_and_scope(), (None, None));
    }

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

    /// An ES256 key pair: the JWKS that publishes it, and a signer of tokens with a header of
    /// the given `typ` (none when `None`).
    fn es256_key() -> (Vec<u8>, impl Fn(Option<&str>, serde_json::Value) -> String) {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("a P-256 key");
        let point = pair.public_key().as_ref().to_vec();
        let jwks = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
            "x": BASE64_URL.encode(&point[1..33]), "y": BASE64_URL.encode(&point[33..65]),
        }]});
        let der = pair.to_pkcs8v1().expect("PKCS#8").as_ref().to_vec();
        let key = jsonwebtoken::EncodingKey::from_ec_der(&der);
        let sign = move |typ: Option<&str>, claims: serde_json::Value| {
            let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
            header.kid = Some("k1".into());
            header.typ = typ.map(str::to_owned);
            jsonwebtoken::encode(&header, &claims, &key).expect("signed")
        };
        (serde_json::to_vec(&jwks).expect("JSON"), sign)
    }

    fn claims(audience: Option<&str>) -> serde_json::Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        let mut claims = serde_json::json!({
            "iss": "https://idp.test", "sub": "alice", "iat": now, "exp": now + 300,
        });
        if let Some(audience) = audience {
            claims["aud"] = audience.into();
        }
        claims
    }

    #[test]
    fn an_at_jwt_token_is_held_to_rfc_9068_and_needs_the_audience() {
        let (jwks, sign) = es256_key();
        let verifier =
            TokenVerifier::from_jwks(&jwks, "https://idp.test", None, "client").expect("keys");
        // Without an audience given, RFC 9068's default is the issuer.
        let token = sign(Some("at+jwt"), claims(Some("https://idp.test")));
        let verified = verifier.verify_access_token(&token).expect("verifies");
        assert_eq!(verified.profile, AccessTokenProfile::Rfc9068);
        assert_eq!(verified.claims.sub, "alice");
        let unaddressed = sign(Some("at+jwt"), claims(None));
        assert!(matches!(
            verifier.verify_access_token(&unaddressed),
            Err(TokenError::Invalid(_))
        ));
        let elsewhere = sign(
            Some("application/at+jwt"),
            claims(Some("https://api.other")),
        );
        assert!(verifier.verify_access_token(&elsewhere).is_err());
    }

    #[test]
    fn another_jwt_passes_without_aud_unless_an_audience_is_given() {
        let (jwks, sign) = es256_key();
        let lenient =
            TokenVerifier::from_jwks(&jwks, "https://idp.test", None, "client").expect("keys");
        let strict = TokenVerifier::from_jwks(&jwks, "https://idp.test", Some("api"), "client")
            .expect("keys");
        for typ in [Some("JWT"), None] {
            let no_audience = sign(typ, claims(None));
            let verified = lenient.verify_access_token(&no_audience).expect("verifies");
            assert_eq!(verified.profile, AccessTokenProfile::Jwt);
            assert!(strict.verify_access_token(&no_audience).is_err());
            let for_api = sign(typ, claims(Some("api")));
            assert!(strict.verify_access_token(&for_api).is_ok());
            let for_account = sign(typ, claims(Some("account")));
            assert!(strict.verify_access_token(&for_account).is_err());
        }
    }

    #[test]
    fn every_jwt_access_token_needs_a_numeric_iat_and_the_issuer() {
        let (jwks, sign) = es256_key();
        let verifier =
            TokenVerifier::from_jwks(&jwks, "https://idp.test", None, "client").expect("keys");
        let mut without_iat = claims(None);
        without_iat.as_object_mut().expect("object").remove("iat");
        assert_eq!(
            verifier.verify_access_token(&sign(Some("JWT"), without_iat)),
            Err(TokenError::MissingClaim("iat"))
        );
        let mut text_iat = claims(None);
        text_iat["iat"] = "yesterday".into();
        assert_eq!(
            verifier
                .verify_access_token(&sign(None, text_iat))
                .map_err(|error| error.to_string()),
            Err("the access token has no numeric iat claim".to_owned())
        );
        let mut other_issuer = claims(None);
        other_issuer["iss"] = "https://evil.test".into();
        assert!(
            verifier
                .verify_access_token(&sign(Some("JWT"), other_issuer))
                .is_err()
        );
    }

    #[test]
    fn jwks_without_usable_keys_is_refused() {
        assert!(matches!(
            TokenVerifier::from_jwks(br#"{"keys": []}"#, "iss", Some("aud"), "client"),
            Err(JwksError::Empty)
        ));
        let encryption_only = br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0", "use": "enc"}]}"#;
        assert!(matches!(
            TokenVerifier::from_jwks(encryption_only, "iss", None, "client"),
            Err(JwksError::NoKeys)
        ));
        assert!(matches!(
            TokenVerifier::from_jwks(b"nope", "iss", None, "client"),
            Err(JwksError::Parse(_))
        ));
    }
}
