//! The tokens mock-idp mints: RFC 9068 access tokens, OpenID Connect ID tokens, refresh tokens;
//! and the validation of its own access tokens.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Header, decode_header, encode};
use serde::{Deserialize, Serialize};

use crate::config::RefreshTokenFormat;
use crate::error::OAuthError;
use crate::keys::SigningKey;
use crate::random;

/// The claims of an access token (RFC 9068 section 2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    pub iat: u64,
    pub exp: u64,
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    /// The acting party of a token-exchange delegation (RFC 8693 4.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// The key the token is bound to (RFC 9449 section 6.1), when it was issued to a DPoP proof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub sub: String,
}

/// `cnf` of a sender-constrained token: the thumbprint of its DPoP key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub jkt: String,
}

/// The claims of an ID token (OpenID Connect Core 2 and 3.1.3.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub azp: String,
    pub exp: u64,
    pub iat: u64,
    pub auth_time: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub at_hash: String,
}

/// The claims of a refresh token in the JWT format. Only the server reads them.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RefreshClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    client_id: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
}

/// Signs tokens with the server's key and checks the ones it gets back.
#[derive(Debug)]
pub struct Minter {
    key: SigningKey,
    issuer: String,
    audience: String,
    refresh_format: RefreshTokenFormat,
    access_header: Header,
    id_header: Header,
    refresh_header: Header,
}

impl Minter {
    pub fn new(
        key: SigningKey,
        issuer: String,
        audience: String,
        refresh_format: RefreshTokenFormat,
    ) -> Self {
        let header = |typ: &str| {
            let mut header = Header::new(key.alg().algorithm());
            header.kid = Some(key.kid().to_owned());
            header.typ = Some(typ.to_owned());
            header
        };
        Self {
            access_header: header("at+jwt"),
            id_header: header("JWT"),
            refresh_header: header("rt+jwt"),
            key,
            issuer,
            audience,
            refresh_format,
        }
    }

    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    pub fn sign_access(&self, claims: &AccessClaims) -> Result<String, OAuthError> {
        encode(&self.access_header, claims, self.key.encoding_key()).map_err(signing_failed)
    }

    pub fn sign_id(&self, claims: &IdClaims) -> Result<String, OAuthError> {
        encode(&self.id_header, claims, self.key.encoding_key()).map_err(signing_failed)
    }

    /// A new refresh token: opaque random, or a signed JWT carrying a random `jti`.
    pub fn refresh_token(
        &self,
        subject: &str,
        client_id: &str,
        iat: u64,
        exp: u64,
    ) -> Result<String, OAuthError> {
        match self.refresh_format {
            RefreshTokenFormat::Opaque => Ok(random::token()),
            RefreshTokenFormat::Jwt => {
                let claims = RefreshClaims {
                    iss: &self.issuer,
                    sub: subject,
                    client_id,
                    iat,
                    exp,
                    jti: random::token(),
                };
                encode(&self.refresh_header, &claims, self.key.encoding_key())
                    .map_err(signing_failed)
            }
        }
    }

    /// Checks that `token` is an access token this server signed and that it has not expired.
    /// Whether it was revoked is the store's business.
    ///
    /// The algorithm is pinned to the server's own: `alg: none`, and an HS256 token signed with
    /// the public key as its secret, fail here, as does a `kid` this server never published.
    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, OAuthError> {
        // jsonwebtoken's `decode` parses the header twice and the claims twice; on a hot path
        // that is a third of an RSA verification. So: its header decoder once, its signature
        // check (the cached parsed key) once, the claims deserialized once, exp and iss here.
        let invalid = |reason: &str| OAuthError::InvalidToken(reason.to_owned());
        let header = decode_header(token).map_err(|_| invalid("the access token is malformed"))?;
        if header.alg != self.key.alg().algorithm() {
            return Err(invalid(
                "the access token is signed with an unexpected algorithm",
            ));
        }
        if header.kid.as_deref() != Some(self.key.kid()) {
            return Err(invalid("the access token names an unknown key"));
        }
        if header.typ.as_deref() != Some("at+jwt") {
            return Err(invalid(
                "the token is not an access token (typ is not at+jwt)",
            ));
        }
        let (message, signature) = token
            .rsplit_once('.')
            .ok_or_else(|| invalid("the access token is malformed"))?;
        let verified = jsonwebtoken::crypto::verify(
            signature,
            message.as_bytes(),
            self.key.decoding_key(),
            header.alg,
        )
        .unwrap_or(false);
        if !verified {
            return Err(invalid("the access token signature is invalid"));
        }
        let payload = message
            .split_once('.')
            .and_then(|(_, payload)| URL_SAFE_NO_PAD.decode(payload).ok())
            .ok_or_else(|| invalid("the access token is malformed"))?;
        let claims: AccessClaims = serde_json::from_slice(&payload)
            .map_err(|_| invalid("the access token lacks required claims"))?;
        if claims.exp < jsonwebtoken::get_current_timestamp() {
            return Err(invalid("the access token has expired"));
        }
        if claims.iss != self.issuer {
            return Err(invalid("the access token was issued by someone else"));
        }
        Ok(claims)
    }
}

fn signing_failed(error: jsonwebtoken::errors::Error) -> OAuthError {
    OAuthError::ServerError(format!("could not sign a token: {error}"))
}

/// `at_hash`: base64url of the left half of the SHA-256 of the access token (OIDC Core 3.1.3.6;
/// SHA-256 matches RS256, ES256 and, by the OpenID Foundation's registration, EdDSA).
pub fn at_hash(access_token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access_token.as_bytes());
    random::b64url(&digest.as_ref()[..16])
}

/// The PKCE S256 transform: base64url(SHA-256(verifier)) (RFC 7636 4.2).
pub fn pkce_s256(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    random::b64url(digest.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningAlg;

    fn minter() -> Minter {
        Minter::new(
            SigningKey::generate(SigningAlg::Es256).unwrap(),
            "http://issuer.test".into(),
            "http://issuer.test".into(),
            RefreshTokenFormat::Jwt,
        )
    }

    fn claims(exp: u64) -> AccessClaims {
        AccessClaims {
            iss: "http://issuer.test".into(),
            sub: "user-loadtest-00001".into(),
            aud: "http://issuer.test".into(),
            client_id: "loadtest-client".into(),
            scope: "openid".into(),
            iat: 0,
            exp,
            jti: "j".into(),
            auth_time: None,
            act: None,
            cnf: None,
        }
    }

    #[test]
    fn rfc7636_appendix_b_vector() {
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn access_tokens_round_trip_and_carry_at_jwt() {
        let minter = minter();
        let exp = jsonwebtoken::get_current_timestamp() + 60;
        let token = minter.sign_access(&claims(exp)).unwrap();
        assert_eq!(
            decode_header(&token).unwrap().typ.as_deref(),
            Some("at+jwt")
        );
        assert_eq!(minter.verify_access(&token).unwrap(), claims(exp));
    }

    #[test]
    fn expired_and_foreign_tokens_are_invalid() {
        let minter = minter();
        let expired = minter.sign_access(&claims(1)).unwrap();
        assert!(
            minter
                .verify_access(&expired)
                .unwrap_err()
                .description()
                .contains("expired")
        );
        let other = self::minter();
        let exp = jsonwebtoken::get_current_timestamp() + 60;
        let foreign = other.sign_access(&claims(exp)).unwrap();
        assert_eq!(
            minter.verify_access(&foreign).unwrap_err().code(),
            "invalid_token"
        );
        // A refresh token in the JWT format is not an access token.
        let refresh = minter.refresh_token("s", "c", 0, exp).unwrap();
        assert!(minter.verify_access(&refresh).is_err());
    }
}
