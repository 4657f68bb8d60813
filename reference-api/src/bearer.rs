//! One request's bearer token checked as a real resource server checks it (RFC 6750): the
//! signature, the algorithm the key is for, `exp` and `nbf`, and `iss` and `aud` when the API is
//! configured with them; a refusal is the status and `WWW-Authenticate` challenge RFC 6750 gives.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderValue, StatusCode};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode, decode_header};
use serde::Deserialize;

use crate::keys::Keys;

/// The realm of the API's challenges.
pub const REALM: &str = "reference-api";

/// What the API checks beyond the signature.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// The `iss` every token must carry, when given.
    pub issuer: Option<String>,
    /// An `aud` every token must name, when given.
    pub audience: Option<String>,
    /// Clock skew allowed around `exp` and `nbf`.
    pub leeway: Duration,
}

/// Whom an accepted token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Its `sub`.
    pub subject: String,
    /// Its `scope`, when it has one.
    pub scope: Option<String>,
    /// Its `exp`, seconds since the epoch.
    pub expires_at: u64,
}

/// Why a request's token was refused. Each is an RFC 6750 error; the description says what a
/// client (or a load test) needs to know, such as how long ago the token expired.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No `Authorization` header, or one of another scheme (RFC 6750 section 3.1: the client
    /// did not know authentication was needed, or used a method this API does not take).
    #[error("the request carries no bearer token")]
    Missing,
    /// `Bearer` with no token after it.
    #[error("the Authorization header is a bearer token without the token")]
    NotBearer,
    /// Not a JWT at all.
    #[error("the token is not a JWT")]
    Malformed,
    /// Past its `exp` (plus the leeway).
    #[error("the token expired {0} s ago")]
    Expired(u64),
    /// Before its `nbf`.
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    /// The signature does not verify with the key its header names.
    #[error("the token's signature does not verify")]
    BadSignature,
    /// A `kid` the API does not hold, even after fetching the JWKS again.
    #[error("no key with kid {0:?} in the provider's JWKS")]
    UnknownKey(String),
    /// No `kid`, and the provider's JWKS holds several keys.
    #[error("the token names no kid and the provider's JWKS holds several keys")]
    NoKeyId,
    /// An algorithm the key is not for.
    #[error("the token's algorithm {0} is not the one its key is for")]
    Algorithm(String),
    /// Another issuer's token.
    #[error("the token's iss is not this API's issuer")]
    WrongIssuer,
    /// A token for another audience.
    #[error("the token's aud does not name this API")]
    WrongAudience,
    /// A claim the API needs is missing or of the wrong type.
    #[error("the token lacks a valid {0} claim")]
    MissingClaim(String),
    /// Refused by `--inject-fault 401:FRACTION`.
    #[error("refused by an injected fault")]
    Injected,
}

impl Refusal {
    /// RFC 6750 section 3.1: a malformed request is 400, every other refusal 401.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::NotBearer => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The RFC 6750 error code: none when no token was sent (section 3.1), `invalid_request`
    /// for a malformed header, `invalid_token` otherwise.
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            Refusal::Missing => None,
            Refusal::NotBearer => Some("invalid_request"),
            _ => Some("invalid_token"),
        }
    }

    /// The `WWW-Authenticate` challenge, with the error code and description when there is one.
    pub fn challenge(&self) -> HeaderValue {
        let text = match self.error_code() {
            None => format!("Bearer realm=\"{REALM}\""),
            Some(error) => format!(
                "Bearer realm=\"{REALM}\", error=\"{error}\", error_description=\"{}\"",
                quotable(&self.to_string())
            ),
        };
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    }
}

/// RFC 6750's error_description allows printable ASCII without `"` and `\`.
fn quotable(text: &str) -> String {
    text.chars()
        .map(|character| match character {
            '"' | '\\' => '\'',
            ' '..='~' => character,
            _ => '?',
        })
        .collect()
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default)]
    scope: Option<String>,
}

/// Checks the bearer token of a request whose `Authorization` header is `authorization`.
pub async fn check(
    keys: &Keys,
    policy: &Policy,
    authorization: Option<&HeaderValue>,
) -> Result<Caller, Refusal> {
    let value = authorization
        .and_then(|value| value.to_str().ok())
        .ok_or(Refusal::Missing)?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Refusal::Missing);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(Refusal::NotBearer);
    }
    let header = decode_header(token).map_err(|_| Refusal::Malformed)?;
    let (key, algorithm) = keys.key_for(&header).await?;
    let mut validation = Validation::new(algorithm);
    // exp is checked below, to say how long ago the token expired.
    validation.validate_exp = false;
    validation.validate_nbf = true;
    validation.leeway = policy.leeway.as_secs();
    validation.set_required_spec_claims(&["exp", "sub"]);
    match &policy.audience {
        Some(audience) => validation.set_audience(&[audience]),
        None => validation.validate_aud = false,
    }
    if let Some(issuer) = &policy.issuer {
        validation.set_issuer(&[issuer]);
    }
    let claims = decode::<Claims>(token, &key, &validation)
        .map_err(|error| match error.kind() {
            ErrorKind::InvalidSignature => Refusal::BadSignature,
            ErrorKind::ImmatureSignature => Refusal::NotYetValid,
            ErrorKind::InvalidIssuer => Refusal::WrongIssuer,
            ErrorKind::InvalidAudience => Refusal::WrongAudience,
            ErrorKind::InvalidAlgorithm => Refusal::Algorithm(format!("{algorithm:?}")),
            ErrorKind::MissingRequiredClaim(claim) => Refusal::MissingClaim(claim.clone()),
            ErrorKind::Json(_) => Refusal::MissingClaim("sub or exp".into()),
            _ => Refusal::Malformed,
        })?
        .claims;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    if now >= claims.exp.saturating_add(policy.leeway.as_secs()) {
        return Err(Refusal::Expired(now - claims.exp));
    }
    Ok(Caller {
        subject: claims.sub,
        scope: claims.scope,
        expires_at: claims.exp,
    })
}
