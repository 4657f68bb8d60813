//! The keys that verify access tokens: a JWKS fetched over HTTP at start and again when a token
//! names a `kid` the API does not hold (a key rotation at the provider), or an HS256 secret.

use std::collections::HashMap;
use std::str::FromStr as _;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Header};
use tokio::time::Instant;

use crate::bearer::Refusal;
use crate::config::{Config, KeySource};
use crate::jwks_fetch::JwksFetcher;

/// Why the JWKS could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The URL is not one this API can fetch.
    #[error(
        "the JWKS URL {0} is neither http:// nor https://: give the provider's jwks_uri, or --hs256-secret-env"
    )]
    NotHttp(String),
    /// The certificates to trust could not be read.
    #[error("{0}")]
    Trust(String),
    /// No answer.
    #[error("could not fetch the JWKS from {url}: {reason}; is the provider running?")]
    Fetch {
        /// The JWKS URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// An answer that is not a key set.
    #[error("{url} did not answer a JWKS ({reason})")]
    Document {
        /// The JWKS URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// One verification key and the algorithm it is for.
#[derive(Clone)]
struct VerificationKey {
    key: DecodingKey,
    /// The JWK's `alg`, when it names one: a token must then use exactly that.
    algorithm: Option<Algorithm>,
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("VerificationKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// The keys of a JWKS by `kid` (a key without one under the empty name).
type KeysById = HashMap<String, VerificationKey>;

/// The verification keys of the API.
#[derive(Debug)]
pub struct Keys {
    source: Source,
}

#[derive(Debug)]
enum Source {
    Secret(VerificationKey),
    Jwks(Jwks),
}

#[derive(Debug)]
struct Jwks {
    url: String,
    fetcher: JwksFetcher,
    held: RwLock<Arc<KeysById>>,
    /// When the set was last fetched; held while fetching, so concurrent requests naming a new
    /// `kid` wait for one fetch instead of each making their own.
    last_fetch: tokio::sync::Mutex<Instant>,
    refetch_interval: Duration,
    max_age: Duration,
    fetches: std::sync::atomic::AtomicU64,
}

impl Keys {
    /// The keys of `source`; a JWKS is fetched now, so an API that cannot reach its provider
    /// says so at start rather than refusing every request.
    pub async fn load(config: &Config) -> Result<Self, KeyError> {
        let source = match &config.keys {
            KeySource::Hs256(secret) => Source::Secret(VerificationKey {
                key: DecodingKey::from_secret(secret),
                algorithm: Some(Algorithm::HS256),
            }),
            KeySource::Jwks(url) => {
                if !url.starts_with("http://") && !url.starts_with("https://") {
                    return Err(KeyError::NotHttp(url.clone()));
                }
                let fetcher =
                    JwksFetcher::new(config.jwks_ca_cert.as_deref()).map_err(KeyError::Trust)?;
                let held = fetch(&fetcher, url).await?;
                Source::Jwks(Jwks {
                    url: url.clone(),
                    fetcher,
                    held: RwLock::new(Arc::new(held)),
                    last_fetch: tokio::sync::Mutex::new(Instant::now()),
                    refetch_interval: config.jwks_refetch_interval,
                    max_age: config.jwks_max_age,
                    fetches: std::sync::atomic::AtomicU64::new(1),
                })
            }
        };
        Ok(Self { source })
    }

    /// How many times the JWKS was fetched (1 at start; 0 for a secret).
    pub fn jwks_fetches(&self) -> u64 {
        match &self.source {
            Source::Secret(_) => 0,
            Source::Jwks(jwks) => jwks.fetches.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// The key that verifies a token with `header`, and the algorithm to verify it with.
    pub(crate) async fn key_for(
        &self,
        header: &Header,
    ) -> Result<(DecodingKey, Algorithm), Refusal> {
        let key = match &self.source {
            Source::Secret(key) => key.clone(),
            Source::Jwks(jwks) => {
                // A shared secret is never taken from a public key set: that is the algorithm
                // confusion attack (an RSA public key used as an HMAC secret).
                if matches!(
                    header.alg,
                    Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
                ) {
                    return Err(Refusal::Algorithm(format!("{:?}", header.alg)));
                }
                jwks.key_for(header.kid.as_deref()).await?
            }
        };
        match key.algorithm {
            Some(algorithm) if algorithm != header.alg => {
                Err(Refusal::Algorithm(format!("{:?}", header.alg)))
            }
            _ => Ok((key.key, header.alg)),
        }
    }
}

impl Jwks {
    async fn key_for(&self, kid: Option<&str>) -> Result<VerificationKey, Refusal> {
        self.refresh_when_old().await;
        if let Some(key) = self.find(kid) {
            return Ok(key);
        }
        // A kid the API has not seen: the provider may have rotated its key. Fetch again, at most
        // once per interval, so a flood of forged kids cannot turn into a flood of fetches.
        let mut last_fetch = self.last_fetch.lock().await;
        if let Some(key) = self.find(kid) {
            return Ok(key);
        }
        if last_fetch.elapsed() >= self.refetch_interval {
            self.refetch(&mut last_fetch).await;
        }
        self.find(kid).ok_or_else(|| match kid {
            Some(kid) => Refusal::UnknownKey(kid.to_owned()),
            None => Refusal::NoKeyId,
        })
    }

    /// Fetches the set again when it is older than its maximum age; the one request that finds
    /// it so fetches, the others meanwhile go on with the set held.
    async fn refresh_when_old(&self) {
        let Ok(mut last_fetch) = self.last_fetch.try_lock() else {
            return;
        };
        if last_fetch.elapsed() >= self.max_age {
            self.refetch(&mut last_fetch).await;
        }
    }

    /// Fetches the set again, with `last_fetch` held. A failed fetch keeps the set held: a
    /// provider that is briefly away must not make every token unknown.
    async fn refetch(&self, last_fetch: &mut Instant) {
        *last_fetch = Instant::now();
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(keys) = fetch(&self.fetcher, &self.url).await {
            *self
                .held
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keys);
        }
    }

    fn find(&self, kid: Option<&str>) -> Option<VerificationKey> {
        let held = Arc::clone(
            &self
                .held
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        match kid {
            Some(kid) => held.get(kid).cloned(),
            // A token without a kid is taken only when the set leaves no doubt.
            None if held.len() == 1 => held.values().next().cloned(),
            None => None,
        }
    }
}

async fn fetch(fetcher: &JwksFetcher, url: &str) -> Result<KeysById, KeyError> {
    let failed = |reason: String| KeyError::Fetch {
        url: url.to_owned(),
        reason,
    };
    let (status, body) = fetcher.get(url).await.map_err(failed)?;
    if !status.is_success() {
        return Err(failed(format!("it answered {status}")));
    }
    let document = |reason: String| KeyError::Document {
        url: url.to_owned(),
        reason,
    };
    let set: JwkSet = serde_json::from_slice(&body).map_err(|error| document(error.to_string()))?;
    let mut keys = KeysById::new();
    for jwk in &set.keys {
        // A key of a kind this API cannot use (an encryption key, an unknown curve) is skipped,
        // as a real service skips it; tokens signed with it are then refused as of an unknown kid.
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        let algorithm = jwk
            .common
            .key_algorithm
            .and_then(|algorithm| Algorithm::from_str(&algorithm.to_string()).ok());
        keys.insert(
            jwk.common.key_id.clone().unwrap_or_default(),
            VerificationKey { key, algorithm },
        );
    }
    if keys.is_empty() {
        return Err(document("it holds no signing key this API can use".into()));
    }
    Ok(keys)
}
