//! `private_key_jwt` client authentication (RFC 7523 section 2.2, OpenID Connect Core section 9):
//! a client registered with a JWKS signs a short-lived assertion per request; each is verified
//! against the client's keys and its `jti` remembered until it expires, so a replayed assertion
//! is refused. The memory of `jti`s is bounded twice: an assertion may live five minutes at most,
//! and past the store limit further assertions answer 503 until older ones expire.

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::error::OAuthError;
use crate::replay_memory::{Remembered, ReplayMemory};

/// `client_assertion_type` of a JWT bearer assertion (RFC 7523 section 2.2).
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The algorithms an assertion may be signed with; `none` and HMAC never.
pub const ASSERTION_ALGORITHMS: [&str; 4] = ["RS256", "PS256", "ES256", "EdDSA"];

/// The longest an assertion may live, `iat` (or now) to `exp`.
const MAX_LIFETIME_S: u64 = 300;

/// Clock skew allowed on `exp`, `nbf` and `iat`.
const LEEWAY_S: u64 = 5;

/// One usable key of the client's JWKS.
struct ClientKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ClientKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Why a JWKS cannot authenticate a client.
#[derive(Debug, thiserror::Error)]
pub enum ClientJwksError {
    /// Not a JWKS.
    #[error("the client's key set is not a JWKS: {0}")]
    NotAJwks(#[from] serde_json::Error),
    /// No key of it can verify a signature of an accepted algorithm.
    #[error(
        "the client's key set holds no public key for RS256, PS256, ES256 or EdDSA (each key \
         needs its \"alg\", or a \"kty\" that names one: RSA for RS256, EC P-256 for ES256, OKP \
         Ed25519 for EdDSA)"
    )]
    NoUsableKey,
}

/// The keys of one client that authenticates with `private_key_jwt`.
#[derive(Debug, Clone)]
pub struct ClientJwks {
    set: JwkSet,
}

impl ClientJwks {
    /// Reads a JWKS document and checks that at least one key can verify an assertion.
    pub fn parse(json: &str) -> Result<Self, ClientJwksError> {
        let set: JwkSet = serde_json::from_str(json)?;
        let jwks = Self { set };
        if jwks.usable_keys().is_empty() {
            return Err(ClientJwksError::NoUsableKey);
        }
        Ok(jwks)
    }

    fn usable_keys(&self) -> Vec<ClientKey> {
        self.set.keys.iter().filter_map(usable_key).collect()
    }
}

/// The key and the algorithm it verifies, when the JWK names an accepted one (by `alg`, or by
/// its type where that decides it).
fn usable_key(jwk: &Jwk) -> Option<ClientKey> {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, KeyAlgorithm};
    let algorithm = match (jwk.common.key_algorithm, &jwk.algorithm) {
        (Some(KeyAlgorithm::RS256), _) => Algorithm::RS256,
        (Some(KeyAlgorithm::PS256), _) => Algorithm::PS256,
        (Some(KeyAlgorithm::ES256), _) => Algorithm::ES256,
        (Some(KeyAlgorithm::EdDSA), _) => Algorithm::EdDSA,
        (Some(_), _) => return None,
        (None, AlgorithmParameters::RSA(_)) => Algorithm::RS256,
        (None, AlgorithmParameters::EllipticCurve(ec)) if ec.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        (None, AlgorithmParameters::OctetKeyPair(okp)) if okp.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        (None, _) => return None,
    };
    Some(ClientKey {
        kid: jwk.common.key_id.clone(),
        algorithm,
        key: DecodingKey::from_jwk(jwk).ok()?,
    })
}

/// The claims an assertion must carry.
#[derive(Debug, Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    jti: String,
    exp: u64,
    #[serde(default)]
    iat: Option<u64>,
}

/// Verifies the assertions of one client and remembers their `jti`s.
#[derive(Debug)]
pub struct ClientAssertions {
    client_id: &'static str,
    keys: Vec<ClientKey>,
    /// Every value `aud` may name: the issuer and the endpoints that authenticate clients.
    audiences: Vec<String>,
    /// The `jti`s of the assertions accepted, until they expire.
    seen: ReplayMemory,
}

/// What became of an assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionOutcome {
    Accepted,
    /// Its `jti` was seen before, within its lifetime.
    Replayed,
    /// Anything else wrong: signature, claims, lifetime.
    Refused,
}

impl ClientAssertions {
    /// Assertions of `client_id` signed by a key of `jwks`, for `audiences`, remembering at most
    /// `max_entries` of them at once.
    pub fn new(
        client_id: &'static str,
        jwks: &ClientJwks,
        audiences: Vec<String>,
        max_entries: usize,
    ) -> Self {
        Self {
            client_id,
            keys: jwks.usable_keys(),
            audiences,
            seen: ReplayMemory::new(max_entries, LEEWAY_S),
        }
    }

    /// The client whose assertions these are.
    pub fn client_id(&self) -> &'static str {
        self.client_id
    }

    /// Verifies `assertion` at `now_s` (seconds since the epoch): signature, `iss` = `sub` =
    /// the client, `aud`, `exp` within five minutes, `jti` never seen. Every failure is
    /// `invalid_client`, except a full memory of `jti`s (503).
    pub fn verify(
        &self,
        assertion: &str,
        now_s: u64,
    ) -> (AssertionOutcome, Result<&'static str, OAuthError>) {
        let refused = |why: String| {
            (
                AssertionOutcome::Refused,
                Err(OAuthError::InvalidClient(why)),
            )
        };
        let header = match jsonwebtoken::decode_header(assertion) {
            Ok(header) => header,
            Err(error) => return refused(format!("the client assertion is not a JWT: {error}")),
        };
        let Some(key) = self.keys.iter().find(|key| {
            key.algorithm == header.alg
                && (header.kid.is_none() || key.kid.is_none() || key.kid == header.kid)
        }) else {
            return refused(format!(
                "no key of the client's JWKS verifies {:?}{}",
                header.alg,
                header
                    .kid
                    .as_deref()
                    .map(|kid| format!(" with kid {kid:?}"))
                    .unwrap_or_default()
            ));
        };
        let mut validation = Validation::new(key.algorithm);
        validation.set_audience(&self.audiences);
        validation.set_issuer(&[self.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        validation.leeway = LEEWAY_S;
        let claims = match jsonwebtoken::decode::<AssertionClaims>(assertion, &key.key, &validation)
        {
            Ok(data) => data.claims,
            Err(error) => {
                return refused(format!("the client assertion was refused: {error}"));
            }
        };
        if claims.sub != self.client_id || claims.iss != self.client_id {
            return refused("a client assertion's iss and sub must both be the client_id".into());
        }
        let born = claims.iat.unwrap_or(now_s).min(now_s);
        if claims.exp.saturating_sub(born) > MAX_LIFETIME_S + LEEWAY_S {
            return refused(format!(
                "the client assertion lives {} s; at most {MAX_LIFETIME_S} s are accepted",
                claims.exp.saturating_sub(born)
            ));
        }
        if claims.jti.is_empty() {
            return refused("the client assertion has an empty jti".into());
        }
        match self.seen.remember(&claims.jti, claims.exp, now_s) {
            Remembered::New => {}
            Remembered::Seen => {
                return (
                    AssertionOutcome::Replayed,
                    Err(OAuthError::InvalidClient(
                        "this client assertion was used before (its jti is not new)".into(),
                    )),
                );
            }
            Remembered::Full => {
                return (
                    AssertionOutcome::Refused,
                    Err(OAuthError::StoreFull(
                        "too many client assertions are remembered; retry when they expire".into(),
                    )),
                );
            }
        }
        (AssertionOutcome::Accepted, Ok(self.client_id))
    }

    /// Forgets the `jti`s of assertions expired by `now_s`; returns how many remain.
    pub fn sweep(&self, now_s: u64) -> usize {
        self.seen.sweep(now_s)
    }
}

/// Why a client key could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientKeyFileError {
    /// Only RSA and P-256 keys are made here (HMAC keys are shared secrets, not what
    /// `private_key_jwt` signs with; an Ed25519 key can be made with `openssl genpkey`).
    #[error("mock-idp makes RS256 and ES256 client keys, not {0:?}")]
    Unsupported(crate::keys::SigningAlg),
    /// The key could not be made.
    #[error("could not make the client key: {0}")]
    Generate(String),
    /// A file could not be written.
    #[error("could not write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    /// The key made could not be read back.
    #[error("the client key made could not be read back: {0}")]
    ReadBack(#[from] crate::keys::KeyError),
}

/// A client key pair made for tests and the pipeline: writes `client-key.pem` (the private key,
/// for loadgen's `--client-key`), `client-jwks.json` (its public JWK, for `--client-jwks`) and
/// `client-cert.pem` (a self-signed certificate of the key, for loadgen's `--client-cert` and
/// mock-idp's `--client-certificate`) into `directory`, and returns the first two paths and the
/// key's `kid`.
pub fn write_client_key(
    directory: &std::path::Path,
    alg: crate::keys::SigningAlg,
) -> Result<(std::path::PathBuf, std::path::PathBuf, String), ClientKeyFileError> {
    use crate::keys::{SigningAlg, SigningKey};
    let algorithm = match alg {
        SigningAlg::Rs256 => &rcgen::PKCS_RSA_SHA256,
        SigningAlg::Es256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        SigningAlg::EdDsa | SigningAlg::Hs256 => return Err(ClientKeyFileError::Unsupported(alg)),
    };
    let pair = rcgen::KeyPair::generate_for(algorithm)
        .map_err(|error| ClientKeyFileError::Generate(error.to_string()))?;
    let write = |path: &std::path::Path, contents: &[u8]| {
        std::fs::create_dir_all(directory)
            .and_then(|()| std::fs::write(path, contents))
            .map_err(|source| ClientKeyFileError::Write {
                path: path.display().to_string(),
                source,
            })
    };
    let key_path = directory.join("client-key.pem");
    write(&key_path, pair.serialize_pem().as_bytes())?;
    let key = SigningKey::from_pem_file(alg, &key_path)?;
    let jwks_path = directory.join("client-jwks.json");
    write(&jwks_path, key.jwks_json().as_bytes())?;
    // The same key in a self-signed certificate, for `self_signed_tls_client_auth` (RFC 8705):
    // loadgen presents it (--client-cert), mock-idp registers it (--client-certificate).
    let certificate = rcgen::CertificateParams::new(vec!["loadtest-client".to_owned()])
        .and_then(|params| params.self_signed(&pair))
        .map_err(|error| ClientKeyFileError::Generate(error.to_string()))?;
    write(
        &directory.join("client-cert.pem"),
        certificate.pem().as_bytes(),
    )?;
    Ok((key_path, jwks_path, key.kid().to_owned()))
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;
    use crate::keys::{SigningAlg, SigningKey};

    const CLIENT: &str = "loadtest-client";
    const TOKEN_URL: &str = "http://idp.test/token";

    fn assertions(key: &SigningKey, max_entries: usize) -> ClientAssertions {
        let jwks = ClientJwks::parse(key.jwks_json().as_ref()).unwrap();
        ClientAssertions::new(
            CLIENT,
            &jwks,
            vec!["http://idp.test".into(), TOKEN_URL.into()],
            max_entries,
        )
    }

    fn sign(key: &SigningKey, claims: serde_json::Value) -> String {
        let mut header = Header::new(key.alg().algorithm());
        header.kid = Some(key.kid().to_owned());
        let encoding: &EncodingKey = key.encoding_key();
        jsonwebtoken::encode(&header, &claims, encoding).unwrap()
    }

    fn claims(jti: &str, now: u64) -> serde_json::Value {
        json!({"iss": CLIENT, "sub": CLIENT, "aud": TOKEN_URL, "jti": jti, "iat": now, "exp": now + 60})
    }

    fn now() -> u64 {
        crate::store::now_ms() / 1000
    }

    #[test]
    fn an_assertion_is_accepted_once_and_its_replay_refused() {
        for alg in [SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDsa] {
            let key = SigningKey::generate(alg).unwrap();
            let assertions = assertions(&key, 100);
            let now = now();
            let assertion = sign(&key, claims("one", now));
            let (outcome, client) = assertions.verify(&assertion, now);
            assert_eq!(outcome, AssertionOutcome::Accepted, "{alg:?}: {client:?}");
            assert_eq!(client.unwrap(), CLIENT);
            let (outcome, error) = assertions.verify(&assertion, now);
            assert_eq!(outcome, AssertionOutcome::Replayed);
            assert!(matches!(error, Err(OAuthError::InvalidClient(_))));
            // Once expired, the jti is forgotten (and the assertion is refused as expired).
            assert_eq!(assertions.sweep(now + 3600), 0);
        }
    }

    #[test]
    fn wrong_claims_keys_and_lifetimes_are_refused_in_words() {
        let key = SigningKey::generate(SigningAlg::Rs256).unwrap();
        let other = SigningKey::generate(SigningAlg::Rs256).unwrap();
        let assertions = assertions(&key, 100);
        let now = now();
        let mut wrong_audience = claims("a", now);
        wrong_audience["aud"] = json!("http://elsewhere.test/token");
        let mut wrong_subject = claims("b", now);
        wrong_subject["sub"] = json!("someone-else");
        let mut too_long = claims("c", now);
        too_long["exp"] = json!(now + 3600);
        let mut expired = claims("d", now);
        expired["exp"] = json!(now - 60);
        let mut no_jti = claims("e", now);
        no_jti.as_object_mut().unwrap().remove("jti");
        for (what, assertion) in [
            ("audience", sign(&key, wrong_audience)),
            ("subject", sign(&key, wrong_subject)),
            ("lifetime", sign(&key, too_long)),
            ("expiry", sign(&key, expired)),
            ("jti", sign(&key, no_jti)),
            ("key", sign(&other, claims("f", now))),
            ("format", "not-a-jwt".to_owned()),
        ] {
            let (outcome, result) = assertions.verify(&assertion, now);
            assert_eq!(outcome, AssertionOutcome::Refused, "{what}");
            let Err(OAuthError::InvalidClient(why)) = result else {
                panic!("{what}: {result:?}");
            };
            assert!(!why.is_empty());
        }
        // Nothing refused was remembered, and a good assertion still passes.
        assert_eq!(assertions.sweep(now), 0);
        assert_eq!(
            assertions.verify(&sign(&key, claims("g", now)), now).0,
            AssertionOutcome::Accepted
        );
    }

    #[test]
    fn the_memory_of_jtis_is_bounded() {
        let key = SigningKey::generate(SigningAlg::Es256).unwrap();
        let assertions = assertions(&key, 2);
        let now = now();
        for jti in ["1", "2"] {
            assert_eq!(
                assertions.verify(&sign(&key, claims(jti, now)), now).0,
                AssertionOutcome::Accepted
            );
        }
        let (_, full) = assertions.verify(&sign(&key, claims("3", now)), now);
        assert!(matches!(full, Err(OAuthError::StoreFull(_))), "{full:?}");
        // Once the sweep forgets the expired ones, there is room again.
        assert_eq!(assertions.sweep(now + 3600), 0);
        let later = now + 3600;
        assert_eq!(
            assertions.verify(&sign(&key, claims("4", later)), later).0,
            AssertionOutcome::Accepted
        );
    }

    #[test]
    fn a_client_key_made_for_the_pipeline_signs_assertions_its_jwks_verifies() {
        let dir = tempfile::tempdir().unwrap();
        for alg in [SigningAlg::Rs256, SigningAlg::Es256] {
            let (key_path, jwks_path, kid) = write_client_key(dir.path(), alg).unwrap();
            let key = SigningKey::from_pem_file(alg, &key_path).unwrap();
            assert_eq!(key.kid(), kid);
            let jwks = ClientJwks::parse(&std::fs::read_to_string(jwks_path).unwrap()).unwrap();
            let assertions = ClientAssertions::new(CLIENT, &jwks, vec![TOKEN_URL.into()], 10);
            let now = now();
            assert_eq!(
                assertions.verify(&sign(&key, claims("k", now)), now).0,
                AssertionOutcome::Accepted,
                "{alg:?}"
            );
        }
        assert!(matches!(
            write_client_key(dir.path(), SigningAlg::Hs256),
            Err(ClientKeyFileError::Unsupported(SigningAlg::Hs256))
        ));
    }

    #[test]
    fn a_key_set_without_a_usable_key_is_refused_in_words() {
        let error = ClientJwks::parse(r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("no public key"), "{error}");
        assert!(ClientJwks::parse("not json").is_err());
    }
}
