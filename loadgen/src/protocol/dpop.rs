//! DPoP (RFC 9449) as a client speaks it: a key of its own (ES256, made at start), a fresh proof
//! for every request that presents or asks for a bound token (`htm`, `htu`, `iat`, its own
//! `jti`, `ath` beside an access token), and the nonces a provider hands out (section 8): the
//! last one it named is put in every later proof to it, and a `use_dpop_nonce` answer is sent
//! again once with the nonce it gave.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use serde::Serialize;

use crate::http::client::HttpResponse;
use crate::protocol::compact_jws::{encoded_header, sign_compact};
use crate::protocol::pkce::{pkce_challenge, random_token};

/// The request header a proof travels in.
pub const DPOP: HeaderName = HeaderName::from_static("dpop");

/// The response header that hands out a nonce.
pub const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// The `Authorization` scheme of a bound token.
pub const DPOP_SCHEME: &str = "DPoP";

/// A client's DPoP key: made once, and its public half in every proof's header.
pub struct DpopKey {
    pair: EcdsaKeyPair,
    /// `base64url(header JSON) + "."`, the same for every proof.
    encoded_header: String,
    /// The RFC 7638 thumbprint of the public key: what a bound token's `cnf.jkt` names.
    thumbprint: String,
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("DpopKey")
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

/// The public key as a JWK, its members in the order RFC 7638 hashes them.
#[derive(Serialize)]
struct PublicJwk<'a> {
    crv: &'static str,
    kty: &'static str,
    x: &'a str,
    y: &'a str,
}

#[derive(Serialize)]
struct ProofHeader<'a> {
    typ: &'static str,
    alg: &'static str,
    jwk: PublicJwk<'a>,
}

#[derive(Serialize)]
struct ProofClaims<'a> {
    jti: String,
    htm: &'a str,
    htu: &'a str,
    iat: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ath: Option<String>,
}

impl DpopKey {
    /// A new P-256 key.
    pub fn generate() -> Result<Self, String> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| "could not make a DPoP key (P-256)".to_owned())?;
        // An uncompressed point: 0x04, then x and y, 32 bytes each.
        let point = pair.public_key().as_ref();
        let (x, y) = match point {
            [0x04, rest @ ..] if rest.len() == 64 => rest.split_at(32),
            _ => {
                return Err(
                    "the DPoP key's public point is not an uncompressed P-256 point".into(),
                );
            }
        };
        let (x, y) = (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y));
        let jwk = PublicJwk {
            crv: "P-256",
            kty: "EC",
            x: &x,
            y: &y,
        };
        let canonical = serde_json::to_vec(&jwk).map_err(|error| error.to_string())?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &canonical);
        let thumbprint = URL_SAFE_NO_PAD.encode(digest.as_ref());
        let encoded_header = encoded_header(&ProofHeader {
            typ: "dpop+jwt",
            alg: "ES256",
            jwk,
        })?;
        Ok(Self {
            pair,
            encoded_header,
            thumbprint,
        })
    }

    /// The key's thumbprint (`jkt`).
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// A fresh proof for `method` at `url` (its query and fragment left out, as `htu` is), with
    /// `nonce` when the provider gave one and `ath` for `access_token` when one is presented.
    pub fn proof(
        &self,
        method: &Method,
        url: &str,
        nonce: Option<&str>,
        access_token: Option<&str>,
    ) -> Result<HeaderValue, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let claims = ProofClaims {
            jti: random_token(24),
            htm: method.as_str(),
            htu: url.split(['?', '#']).next().unwrap_or(url),
            iat: now,
            nonce,
            // base64url(SHA-256(token)): the same transform as PKCE's S256.
            ath: access_token.map(pkce_challenge),
        };
        let proof = sign_compact(&self.encoded_header, &claims, |message| {
            self.pair
                .sign(&SystemRandom::new(), message)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(|_| "could not sign a DPoP proof".to_owned())
        })?;
        HeaderValue::from_str(&proof).map_err(|error| error.to_string())
    }
}

/// Where a proof goes: the token endpoint (the authorization server's nonces) or a resource
/// (userinfo, an API: its own nonces).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofSite {
    /// The token endpoint.
    TokenEndpoint,
    /// A resource that takes bound tokens.
    Resource,
}

/// One client's DPoP: its key, and the nonces each side last handed out.
#[derive(Debug)]
pub struct DpopSession {
    key: DpopKey,
    token_endpoint_nonce: Option<String>,
    resource_nonce: Option<String>,
}

impl DpopSession {
    /// A session with a new key.
    pub fn new() -> Result<Self, String> {
        Ok(Self {
            key: DpopKey::generate()?,
            token_endpoint_nonce: None,
            resource_nonce: None,
        })
    }

    /// The thumbprint tokens issued to this session must be bound to.
    pub fn thumbprint(&self) -> &str {
        self.key.thumbprint()
    }

    fn nonce_of(&mut self, site: ProofSite) -> &mut Option<String> {
        match site {
            ProofSite::TokenEndpoint => &mut self.token_endpoint_nonce,
            ProofSite::Resource => &mut self.resource_nonce,
        }
    }

    /// The `DPoP` header of a request to `site`: `method` at `url`, with the access token it
    /// presents at a resource.
    pub fn proof_header(
        &mut self,
        site: ProofSite,
        method: &Method,
        url: &str,
        access_token: Option<&str>,
    ) -> Result<(HeaderName, HeaderValue), String> {
        let nonce = match site {
            ProofSite::TokenEndpoint => self.token_endpoint_nonce.as_deref(),
            ProofSite::Resource => self.resource_nonce.as_deref(),
        };
        let proof = self.key.proof(method, url, nonce, access_token)?;
        Ok((DPOP, proof))
    }

    /// Learns the nonce an answer from `site` hands out; whether the answer was a nonce
    /// challenge (`use_dpop_nonce`, section 8), which the request answers by being sent again
    /// once with it.
    pub fn learn(&mut self, site: ProofSite, response: &HttpResponse) -> bool {
        let Some(nonce) = response
            .headers
            .get(&DPOP_NONCE)
            .and_then(|value| value.to_str().ok())
        else {
            return false;
        };
        let nonce = nonce.to_owned();
        let challenged = is_nonce_challenge(response);
        *self.nonce_of(site) = Some(nonce);
        challenged
    }
}

/// Whether an answer asks for a nonce: 400 at the token endpoint or 401 at a resource, with
/// `use_dpop_nonce` in the body or the `WWW-Authenticate` challenge.
fn is_nonce_challenge(response: &HttpResponse) -> bool {
    const CODE: &str = "use_dpop_nonce";
    match response.status {
        StatusCode::BAD_REQUEST => serde_json::from_slice::<serde_json::Value>(&response.body)
            .is_ok_and(|body| body.get("error").and_then(|error| error.as_str()) == Some(CODE)),
        StatusCode::UNAUTHORIZED => response
            .headers
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .any(|challenge| challenge.contains(CODE)),
        _ => false,
    }
}

/// The `Authorization` value of a bound access token.
pub fn authorization(access_token: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(&format!("{DPOP_SCHEME} {access_token}"))
        .map_err(|_| "the access token cannot be sent in a header".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        let mut map = http::HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        HttpResponse {
            status: StatusCode::from_u16(status).unwrap(),
            headers: map,
            body: bytes::Bytes::from(body.to_owned()),
        }
    }

    /// A proof verifies (jsonwebtoken, against the key it carries), names the request, carries
    /// `ath` beside a token, and the key's thumbprint is the one RFC 7638 gives for its JWK.
    #[test]
    fn a_proof_verifies_against_its_own_key_and_names_its_request() {
        let key = DpopKey::generate().unwrap();
        let proof = key
            .proof(
                &Method::GET,
                "https://idp.test/userinfo?x=1",
                Some("n-1"),
                Some("token"),
            )
            .unwrap();
        let proof = proof.to_str().unwrap();
        let header = jsonwebtoken::decode_header(proof).unwrap();
        assert_eq!(header.typ.as_deref(), Some("dpop+jwt"));
        let jwk = header.jwk.unwrap();
        assert_eq!(
            jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
                .unwrap(),
            key.thumbprint()
        );
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.validate_exp = false;
        validation.set_required_spec_claims::<&str>(&[]);
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let claims = jsonwebtoken::decode::<serde_json::Value>(proof, &decoding, &validation)
            .unwrap()
            .claims;
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["htu"], "https://idp.test/userinfo");
        assert_eq!(claims["nonce"], "n-1");
        assert_eq!(claims["ath"], pkce_challenge("token"));
        let other = key
            .proof(&Method::POST, "https://idp.test/token", None, None)
            .unwrap();
        let other = jsonwebtoken::decode::<serde_json::Value>(
            other.to_str().unwrap(),
            &decoding,
            &validation,
        )
        .unwrap()
        .claims;
        assert_ne!(claims["jti"], other["jti"], "every proof has its own jti");
        assert!(other.get("nonce").is_none() && other.get("ath").is_none());
    }

    /// A nonce handed out is kept per side; only a `use_dpop_nonce` answer is a challenge.
    #[test]
    fn nonces_are_learned_per_side_and_a_challenge_is_told_apart() {
        let mut session = DpopSession::new().unwrap();
        let challenge = answer(
            400,
            &[("dpop-nonce", "n-1")],
            r#"{"error":"use_dpop_nonce"}"#,
        );
        assert!(session.learn(ProofSite::TokenEndpoint, &challenge));
        assert_eq!(session.token_endpoint_nonce.as_deref(), Some("n-1"));
        assert_eq!(session.resource_nonce, None);
        let fresh = answer(200, &[("dpop-nonce", "n-2")], "{}");
        assert!(!session.learn(ProofSite::TokenEndpoint, &fresh));
        assert_eq!(session.token_endpoint_nonce.as_deref(), Some("n-2"));
        let resource = answer(
            401,
            &[
                ("dpop-nonce", "r-1"),
                ("www-authenticate", r#"DPoP error="use_dpop_nonce""#),
            ],
            "",
        );
        assert!(session.learn(ProofSite::Resource, &resource));
        assert_eq!(session.resource_nonce.as_deref(), Some("r-1"));
        let refused = answer(400, &[], r#"{"error":"invalid_dpop_proof"}"#);
        assert!(!session.learn(ProofSite::TokenEndpoint, &refused));
    }
}
