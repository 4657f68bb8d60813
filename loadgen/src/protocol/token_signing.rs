//! Access tokens loadgen signs itself (`--token-source sign`), for an API that trusts its own test
//! key: the claims given as templates of the VU's user, `iat` and `exp` always set, a `kid` when
//! the API wants one. Never a hard-coded token: each is signed for its user when it is needed.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Map, Value};

/// The algorithms loadgen signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SigningAlgorithm {
    /// HMAC with SHA-256, a secret shared with the API.
    #[value(name = "HS256")]
    Hs256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, an RSA private key in PEM.
    #[value(name = "RS256")]
    Rs256,
    /// RSASSA-PSS with SHA-256, an RSA private key in PEM.
    #[value(name = "PS256")]
    Ps256,
    /// ECDSA on P-256 with SHA-256, an EC private key in PEM.
    #[value(name = "ES256")]
    Es256,
    /// Ed25519, a private key in PEM.
    #[value(name = "EdDSA")]
    EdDsa,
}

impl SigningAlgorithm {
    /// jsonwebtoken's name of it.
    pub fn algorithm(self) -> Algorithm {
        match self {
            SigningAlgorithm::Hs256 => Algorithm::HS256,
            SigningAlgorithm::Rs256 => Algorithm::RS256,
            SigningAlgorithm::Ps256 => Algorithm::PS256,
            SigningAlgorithm::Es256 => Algorithm::ES256,
            SigningAlgorithm::EdDsa => Algorithm::EdDSA,
        }
    }
}

/// Why the signing key or the claims were refused.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The key file could not be read.
    #[error("could not read the signing key {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The key is not a PEM private key for the algorithm.
    #[error(
        "{path} is not a PEM private key for {algorithm:?}: {reason} (give --sign-alg to match the key)"
    )]
    Key {
        /// The file.
        path: String,
        /// The algorithm asked for.
        algorithm: SigningAlgorithm,
        /// What the parser said.
        reason: String,
    },
    /// An HS256 secret too short for its algorithm.
    #[error("the HS256 secret has {0} bytes; RFC 7518 section 3.2 asks for at least 32")]
    ShortSecret(usize),
    /// A `--claim` not of the form `name=value` or `name:=json`.
    #[error("--claim {0:?} is not name=value (a string) or name:=JSON (a number, list ...)")]
    ClaimShape(String),
    /// A claim loadgen sets itself.
    #[error("--claim {0} is set by loadgen itself from --token-ttl; leave it out")]
    ReservedClaim(String),
}

/// A claim's value before the user is known: text with `{{user}}` (the user's name) and `{{n}}`
/// (its number from 1) in it, a string or, for `name:=`, JSON once filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClaimTemplate {
    name: String,
    template: String,
    json: bool,
}

/// Fills `{{user}}` and `{{n}}` of `template` for user number `number` (from 1) named `user`.
pub fn fill_user(template: &str, user: &str, number: usize) -> String {
    template
        .replace("{{user}}", user)
        .replace("{{n}}", &number.to_string())
}

/// The key of `pem` (a PEM private key, or an HS256 secret's bytes) for `algorithm`.
fn encoding_key(
    pem: &[u8],
    algorithm: SigningAlgorithm,
) -> jsonwebtoken::errors::Result<EncodingKey> {
    match algorithm {
        SigningAlgorithm::Rs256 | SigningAlgorithm::Ps256 => EncodingKey::from_rsa_pem(pem),
        SigningAlgorithm::Es256 => EncodingKey::from_ec_pem(pem),
        SigningAlgorithm::EdDsa => EncodingKey::from_ed_pem(pem),
        SigningAlgorithm::Hs256 => Ok(EncodingKey::from_secret(pem)),
    }
}

/// Signs the access tokens of `--token-source sign`.
pub struct TokenSigner {
    key: EncodingKey,
    header: Header,
    claims: Vec<ClaimTemplate>,
    lifetime: Duration,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TokenSigner")
            .field("alg", &self.header.alg)
            .field("kid", &self.header.kid)
            .field("claims", &self.claims)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

/// A token signed for one user.
#[derive(Debug, Clone)]
pub struct SignedToken {
    /// The compact JWS.
    pub token: String,
    /// Its `exp`.
    pub expires_at: SystemTime,
}

impl TokenSigner {
    /// A signer with an HS256 `secret`.
    pub fn hs256(secret: &[u8]) -> Result<Self, SigningError> {
        if secret.len() < 32 {
            return Err(SigningError::ShortSecret(secret.len()));
        }
        Ok(Self::with_key(
            EncodingKey::from_secret(secret),
            SigningAlgorithm::Hs256,
        ))
    }

    /// A signer with the PEM private key in `path`, for `algorithm`.
    pub fn from_pem_file(path: &Path, algorithm: SigningAlgorithm) -> Result<Self, SigningError> {
        let pem = std::fs::read(path).map_err(|source| SigningError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let key = encoding_key(&pem, algorithm).map_err(|error| SigningError::Key {
            path: path.display().to_string(),
            algorithm,
            reason: error.to_string(),
        })?;
        let signer = Self::with_key(key, algorithm);
        // A key that parses as PEM may still not sign (a public key, another curve): sign once
        // now, so the run stops here rather than in every iteration.
        signer
            .sign("user-00001", 1)
            .map_err(|reason| SigningError::Key {
                path: path.display().to_string(),
                algorithm,
                reason,
            })?;
        Ok(signer)
    }

    fn with_key(key: EncodingKey, algorithm: SigningAlgorithm) -> Self {
        Self {
            key,
            header: Header::new(algorithm.algorithm()),
            claims: vec![ClaimTemplate {
                name: "sub".into(),
                template: "{{user}}".into(),
                json: false,
            }],
            lifetime: Duration::from_secs(15 * 60),
        }
    }

    /// The same signer naming key `kid` in every token's header.
    pub fn with_kid(mut self, kid: Option<String>) -> Self {
        self.header.kid = kid;
        self
    }

    /// The same signer with tokens valid for `lifetime`.
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// The same signer with `--claim` arguments (`name=value`, `name:=json`) added; one named
    /// `sub` replaces the default `sub={{user}}`.
    pub fn with_claims(mut self, arguments: &[String]) -> Result<Self, SigningError> {
        for argument in arguments {
            let (name, template, json) = match argument.split_once('=') {
                Some((name, value)) if name.ends_with(':') => {
                    (name.trim_end_matches(':'), value, true)
                }
                Some((name, value)) => (name, value, false),
                None => return Err(SigningError::ClaimShape(argument.clone())),
            };
            if name.is_empty() {
                return Err(SigningError::ClaimShape(argument.clone()));
            }
            if matches!(name, "exp" | "iat") {
                return Err(SigningError::ReservedClaim(name.to_owned()));
            }
            self.claims.retain(|claim| claim.name != name);
            self.claims.push(ClaimTemplate {
                name: name.to_owned(),
                template: template.to_owned(),
                json,
            });
        }
        Ok(self)
    }

    /// How long each token is valid.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// A token for user number `number` (from 1) named `user`, issued now. A JSON claim that is
    /// not JSON once filled in is an error the run reports.
    pub fn sign(&self, user: &str, number: usize) -> Result<String, String> {
        Ok(self.sign_at(user, number, SystemTime::now())?.token)
    }

    /// [`Self::sign`] issued at `now`, with its expiry.
    pub fn sign_at(
        &self,
        user: &str,
        number: usize,
        now: SystemTime,
    ) -> Result<SignedToken, String> {
        let mut claims = Map::new();
        for claim in &self.claims {
            let filled = fill_user(&claim.template, user, number);
            let value = if claim.json {
                serde_json::from_str(&filled).map_err(|error| {
                    format!(
                        "--claim {}:= is not JSON once filled in ({error})",
                        claim.name
                    )
                })?
            } else {
                Value::String(filled)
            };
            claims.insert(claim.name.clone(), value);
        }
        let issued = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let expires = issued.saturating_add(self.lifetime.as_secs());
        // The expiry the API will judge: exp is in whole seconds.
        let expires_at = UNIX_EPOCH + Duration::from_secs(expires);
        claims.insert("iat".into(), Value::from(issued));
        claims.insert("exp".into(), Value::from(expires));
        let token = encode(&self.header, &Value::Object(claims), &self.key)
            .map_err(|error| format!("signing the access token failed: {error}"))?;
        Ok(SignedToken { token, expires_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation, decode};

    const SECRET: &[u8] = b"a test secret of at least thirty-two bytes";

    #[test]
    fn claims_are_filled_for_each_user_with_iat_and_exp_always_set() {
        let signer = TokenSigner::hs256(SECRET)
            .unwrap()
            .with_kid(Some("test-key".into()))
            .with_lifetime(Duration::from_secs(20))
            .with_claims(&[
                "sub={{n}}".into(),
                "role=user".into(),
                "name=load {{user}}".into(),
                "org_id:={{n}}".into(),
                "roles:=[\"reader\",\"writer\"]".into(),
            ])
            .unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        let signed = signer.sign_at("user-loadtest-00007", 7, now).unwrap();
        assert_eq!(signed.expires_at, now + Duration::from_secs(20));
        let header = jsonwebtoken::decode_header(&signed.token).unwrap();
        assert_eq!(header.kid.as_deref(), Some("test-key"));
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        let claims = decode::<Value>(
            &signed.token,
            &DecodingKey::from_secret(SECRET),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(
            claims,
            serde_json::json!({
                "sub": "7", "role": "user", "name": "load user-loadtest-00007", "org_id": 7,
                "roles": ["reader", "writer"], "iat": 2_000_000_000u64, "exp": 2_000_000_020u64,
            })
        );
    }

    #[test]
    fn bad_keys_claims_and_secrets_are_refused_in_words() {
        assert!(matches!(
            TokenSigner::hs256(b"short"),
            Err(SigningError::ShortSecret(5))
        ));
        let signer = || TokenSigner::hs256(SECRET).unwrap();
        for (argument, expected) in [
            ("role", "is not name=value"),
            ("=x", "is not name=value"),
            ("exp=1", "set by loadgen itself"),
        ] {
            let error = signer().with_claims(&[argument.into()]).unwrap_err();
            assert!(error.to_string().contains(expected), "{argument}: {error}");
        }
        let error = signer()
            .with_claims(&["team:={{user}}".into()])
            .unwrap()
            .sign("user-1", 1)
            .unwrap_err();
        assert!(error.contains("not JSON"), "{error}");
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("key.pem");
        std::fs::write(&path, "not a key").unwrap();
        let error = TokenSigner::from_pem_file(&path, SigningAlgorithm::Rs256).unwrap_err();
        assert!(error.to_string().contains("--sign-alg"), "{error}");
        let error =
            TokenSigner::from_pem_file(&directory.path().join("none.pem"), SigningAlgorithm::Es256)
                .unwrap_err();
        assert!(error.to_string().contains("could not read"), "{error}");
    }
}
