//! DPoP (RFC 9449): a client proves, with a signed proof per request, that it holds the key its
//! tokens are bound to. Proofs are verified against the key they carry (`jwk`), for the request
//! they came with (`htm`, `htu`, and `ath` where an access token is presented), recent (`iat`) or
//! carrying a nonce this server issued, and used once (`jti` remembered in a bounded memory). The
//! key's RFC 7638 thumbprint is what tokens are bound to (`cnf.jkt`).

use http::{HeaderMap, Method};
use jsonwebtoken::jwk::AlgorithmParameters;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::error::OAuthError;
use crate::http_helpers::Incoming;
use crate::replay_memory::{Remembered, ReplayMemory};
use crate::state::Idp;

/// The algorithms a proof may be signed with: asymmetric only, as RFC 9449 section 4.2 asks.
pub const DPOP_ALGORITHMS: [&str; 4] = ["ES256", "RS256", "PS256", "EdDSA"];

/// The request header a proof travels in.
pub const DPOP_HEADER: &str = "dpop";

/// The response header that hands out a nonce (RFC 9449 section 8).
pub const DPOP_NONCE_HEADER: &str = "dpop-nonce";

/// How far a proof's `iat` may be from now, either way, when it carries no nonce.
const PROOF_WINDOW_S: u64 = 60;

/// How long one nonce is handed out; the previous one is still accepted, so a client that
/// learned it just before the change is not refused.
const NONCE_PERIOD_S: u64 = 60;

/// What became of a proof, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofOutcome {
    Accepted,
    /// Its `jti` was seen before, within its window.
    Replayed,
    /// It carried no nonce, or a stale one, where one is required: the client is told the
    /// current one and tries again.
    NonceRequired,
    /// Anything else wrong: signature, key, claims, request.
    Refused,
}

/// A proof that verified: the thumbprint of the key that signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// `jkt`: base64url of the SHA-256 of the key's RFC 7638 form.
    pub jkt: String,
}

/// Where a proof was presented, which decides how a failure is answered: 400 at the token
/// endpoint (RFC 9449 section 5), 401 with a `DPoP` challenge at a resource (section 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofSite {
    TokenEndpoint,
    Resource,
}

/// The request a proof must match.
#[derive(Debug, Clone, Copy)]
pub struct ProofRequest<'a> {
    pub method: &'a Method,
    /// The endpoint's URL, without query or fragment.
    pub url: &'a str,
    /// The access token presented with it, at a resource.
    pub access_token: Option<&'a str>,
    pub site: ProofSite,
}

/// The claims a proof carries.
#[derive(Debug, Deserialize)]
struct ProofClaims {
    jti: String,
    htm: String,
    htu: String,
    iat: u64,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    ath: Option<String>,
}

/// Nonces this server hands out: an HMAC of the current period under a key made at start, so
/// that checking one needs no memory.
#[derive(Debug)]
struct Nonces {
    key: aws_lc_rs::hmac::Key,
}

impl Nonces {
    fn generate() -> Self {
        let mut secret = [0u8; 32];
        #[allow(clippy::expect_used)]
        aws_lc_rs::rand::fill(&mut secret).expect("the system random number generator failed");
        Self {
            key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret),
        }
    }

    fn of_period(&self, period: u64) -> String {
        let tag = aws_lc_rs::hmac::sign(&self.key, &period.to_be_bytes());
        crate::random::b64url(&tag.as_ref()[..16])
    }

    fn current(&self, now_s: u64) -> String {
        self.of_period(now_s / NONCE_PERIOD_S)
    }

    fn accepts(&self, nonce: &str, now_s: u64) -> bool {
        let period = now_s / NONCE_PERIOD_S;
        nonce == self.of_period(period) || nonce == self.of_period(period.saturating_sub(1))
    }
}

/// The provider's DPoP: its memory of proofs seen and, with `--dpop-nonce`, its nonces.
#[derive(Debug)]
pub struct Dpop {
    seen: ReplayMemory,
    nonces: Option<Nonces>,
}

impl Dpop {
    /// Proofs remembered up to `max_entries` at once; with `require_nonce`, every proof at the
    /// token endpoint must carry a nonce this server issued.
    pub fn new(max_entries: usize, require_nonce: bool) -> Self {
        Self {
            seen: ReplayMemory::new(max_entries, PROOF_WINDOW_S),
            nonces: require_nonce.then(Nonces::generate),
        }
    }

    /// The nonce to hand out now, when nonces are in use.
    pub fn current_nonce(&self, now_s: u64) -> Option<String> {
        self.nonces.as_ref().map(|nonces| nonces.current(now_s))
    }

    /// Forgets the proofs whose window passed by `now_s`; returns how many remain.
    pub fn sweep(&self, now_s: u64) -> usize {
        self.seen.sweep(now_s)
    }

    /// Verifies the DPoP proof of a request with `headers` against `request` at `now_s`:
    /// `Ok(None)` when it carries none (a bearer request), the key's thumbprint when it
    /// verifies, and what became of it for the metrics whenever one was sent.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        request: ProofRequest<'_>,
        now_s: u64,
    ) -> (
        Option<ProofOutcome>,
        Result<Option<VerifiedProof>, OAuthError>,
    ) {
        let mut proofs = headers.get_all(DPOP_HEADER).iter();
        let Some(proof) = proofs.next() else {
            return (None, Ok(None));
        };
        let refused = |why: String| {
            (
                Some(ProofOutcome::Refused),
                Err(invalid_proof(request.site, why)),
            )
        };
        if proofs.next().is_some() {
            return refused("send one DPoP proof, not several DPoP headers".into());
        }
        let Ok(proof) = proof.to_str() else {
            return refused("the DPoP header is not a JWT".into());
        };
        match self.check(proof, request, now_s) {
            Ok(verified) => (Some(ProofOutcome::Accepted), Ok(Some(verified))),
            Err(Failure::Refused(why)) => refused(why),
            Err(Failure::Replayed) => (
                Some(ProofOutcome::Replayed),
                Err(invalid_proof(
                    request.site,
                    "this DPoP proof was used before (its jti is not new)".into(),
                )),
            ),
            Err(Failure::NonceRequired(nonce)) => (
                Some(ProofOutcome::NonceRequired),
                Err(OAuthError::UseDpopNonce { nonce }),
            ),
            Err(Failure::Full) => (
                Some(ProofOutcome::Refused),
                Err(OAuthError::StoreFull(
                    "too many DPoP proofs are remembered; retry when they expire".into(),
                )),
            ),
        }
    }

    fn check(
        &self,
        proof: &str,
        request: ProofRequest<'_>,
        now_s: u64,
    ) -> Result<VerifiedProof, Failure> {
        let refused = |why: &str| Failure::Refused(why.to_owned());
        let header = jsonwebtoken::decode_header(proof)
            .map_err(|error| Failure::Refused(format!("the DPoP proof is not a JWT: {error}")))?;
        if header.typ.as_deref() != Some("dpop+jwt") {
            return Err(refused("a DPoP proof's typ must be dpop+jwt"));
        }
        if !matches!(
            header.alg,
            Algorithm::ES256 | Algorithm::RS256 | Algorithm::PS256 | Algorithm::EdDSA
        ) {
            return Err(Failure::Refused(format!(
                "DPoP proofs signed with {:?} are not accepted; use one of {}",
                header.alg,
                DPOP_ALGORITHMS.join(", ")
            )));
        }
        let jwk = header
            .jwk
            .as_ref()
            .ok_or_else(|| refused("a DPoP proof must carry its public key as jwk"))?;
        if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
            return Err(refused(
                "a DPoP proof's key must be a public key, not a secret",
            ));
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|error| {
            Failure::Refused(format!("the DPoP proof's jwk is unusable: {error}"))
        })?;
        let mut validation = Validation::new(header.alg);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.set_required_spec_claims::<&str>(&[]);
        let claims = jsonwebtoken::decode::<ProofClaims>(proof, &key, &validation)
            .map_err(|error| Failure::Refused(format!("the DPoP proof was refused: {error}")))?
            .claims;
        if claims.jti.is_empty() {
            return Err(refused("a DPoP proof must carry a jti"));
        }
        if claims.htm != request.method.as_str() {
            return Err(Failure::Refused(format!(
                "the DPoP proof is for {} (htm), not this {} request",
                claims.htm, request.method
            )));
        }
        if without_query_or_fragment(&claims.htu) != request.url {
            return Err(Failure::Refused(format!(
                "the DPoP proof is for {} (htu), not {}",
                claims.htu, request.url
            )));
        }
        if let Some(token) = request.access_token
            && claims.ath.as_deref() != Some(crate::jwt::pkce_s256(token).as_str())
        {
            return Err(refused(
                "the DPoP proof's ath is not the hash of the access token sent with it",
            ));
        }
        match &self.nonces {
            Some(nonces) => {
                let accepted = claims
                    .nonce
                    .as_deref()
                    .is_some_and(|nonce| nonces.accepts(nonce, now_s));
                if !accepted && request.site == ProofSite::TokenEndpoint {
                    return Err(Failure::NonceRequired(nonces.current(now_s)));
                }
                if !accepted && claims.nonce.is_some() {
                    return Err(refused(
                        "the DPoP proof's nonce is not one this server issued",
                    ));
                }
            }
            None if claims.nonce.is_some() => {
                return Err(refused(
                    "this server issues no DPoP nonces; send a proof without one",
                ));
            }
            None => {}
        }
        if claims.iat.abs_diff(now_s) > PROOF_WINDOW_S && claims.nonce.is_none() {
            return Err(Failure::Refused(format!(
                "the DPoP proof's iat is {} s from now; at most {PROOF_WINDOW_S} s are accepted",
                claims.iat.abs_diff(now_s)
            )));
        }
        let jkt = jwk
            .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
            .map_err(|error| {
                Failure::Refused(format!("the DPoP proof's key has no thumbprint: {error}"))
            })?;
        // A proof is good within its window around `iat`, so that is how long its jti is kept.
        match self
            .seen
            .remember(&claims.jti, claims.iat.max(now_s) + PROOF_WINDOW_S, now_s)
        {
            Remembered::New => Ok(VerifiedProof { jkt }),
            Remembered::Seen => Err(Failure::Replayed),
            Remembered::Full => Err(Failure::Full),
        }
    }
}

/// The DPoP proof of `request` at `url` verified by the provider and counted in its metrics:
/// `None` for a request without one.
pub(crate) fn proof_of(
    idp: &Idp,
    request: &Incoming,
    site: ProofSite,
    url: &str,
    access_token: Option<&str>,
) -> Result<Option<VerifiedProof>, OAuthError> {
    let proof_request = ProofRequest {
        method: &request.method,
        url,
        access_token,
        site,
    };
    let now_s = crate::store::now_ms() / 1000;
    let (outcome, verified) = idp.dpop.verify(&request.headers, proof_request, now_s);
    if let Some(outcome) = outcome {
        idp.metrics.record_dpop_proof(outcome);
    }
    verified
}

/// Why a proof failed, before it is answered for its site.
enum Failure {
    Refused(String),
    Replayed,
    NonceRequired(String),
    Full,
}

fn invalid_proof(site: ProofSite, why: String) -> OAuthError {
    match site {
        ProofSite::TokenEndpoint => OAuthError::InvalidDpopProof(why),
        ProofSite::Resource => OAuthError::InvalidDpopProofAtResource(why),
    }
}

fn without_query_or_fragment(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_good_for_its_period_and_the_next() {
        let nonces = Nonces::generate();
        let issued = nonces.current(1_000);
        assert!(nonces.accepts(&issued, 1_000));
        assert!(nonces.accepts(&issued, 1_000 + NONCE_PERIOD_S));
        assert!(!nonces.accepts(&issued, 1_000 + 2 * NONCE_PERIOD_S));
        assert!(!nonces.accepts("made-up", 1_000));
        assert!(!Nonces::generate().accepts(&issued, 1_000));
    }

    #[test]
    fn htu_is_compared_without_query_or_fragment() {
        assert_eq!(
            without_query_or_fragment("https://idp/token?x=1#y"),
            "https://idp/token"
        );
        assert_eq!(
            without_query_or_fragment("https://idp/token"),
            "https://idp/token"
        );
    }
}
