//! The provider's signing keys during a run. Tokens are verified against the JWKS fetched before
//! the run; when a token names a `kid` the set does not hold, the set is fetched again, because a
//! provider rotates its keys by publishing new ones (OpenID Connect Core 10.1.1). One refetch runs
//! at a time for all virtual users, and at most one per interval, so a stream of tokens with
//! forged `kid`s cannot make loadgen hammer the provider's `jwks_uri`. A set that starts empty (a
//! provider that makes its signing key on first use) is fetched again on the first token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use tokio::time::Instant;

use crate::http::address::Address;
use crate::http::client::VuClient;
use crate::protocol::token_request::describe_error_body;
use crate::protocol::token_verifier::{
    TokenError, TokenVerifier, VerifiedAccessToken, VerifiedIdToken,
};

/// The shortest time between two refetches of the JWKS.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(5);

/// What a fresh key set is fetched from and checked against.
#[derive(Debug)]
pub struct JwksSource {
    /// A connection of its own to the target, so a refetch never waits behind a VU's request.
    pub client: VuClient,
    /// The `jwks_uri`.
    pub address: Address,
    /// The issuer tokens must name.
    pub issuer: String,
    /// The audience access tokens must carry, when given ([`TokenVerifier::from_jwks`]).
    pub access_token_audience: Option<String>,
    /// The client, the audience of ID tokens.
    pub client_id: String,
    /// Per-request timeout.
    pub timeout: Duration,
    /// The shortest time between two refetches ([`REFETCH_INTERVAL`] in runs).
    pub interval: Duration,
}

impl JwksSource {
    async fn fetch(&mut self) -> Result<TokenVerifier, String> {
        let response = self
            .client
            .send(Method::GET, &self.address, &[], Bytes::new(), self.timeout)
            .await
            .map_err(|error| format!("GET {}: {error}", self.address))?;
        if response.status != StatusCode::OK {
            return Err(format!(
                "GET {} answered {}: {}",
                self.address,
                response.status,
                describe_error_body(&response.body)
            ));
        }
        TokenVerifier::from_jwks(
            &response.body,
            &self.issuer,
            self.access_token_audience.as_deref(),
            &self.client_id,
        )
        .map_err(|error| format!("GET {}: {error}", self.address))
    }
}

/// The refetching side, behind one lock: whoever holds it is the only one fetching.
#[derive(Debug)]
struct Refetcher {
    source: JwksSource,
    last_refetch: Option<Instant>,
}

/// The key set of a run, shared by its virtual users.
#[derive(Debug)]
pub struct KeySet {
    current: RwLock<Arc<TokenVerifier>>,
    refetcher: tokio::sync::Mutex<Refetcher>,
    refetches: AtomicU64,
    failed_refetches: AtomicU64,
    first_failure: Mutex<Option<String>>,
}

impl KeySet {
    /// The set fetched before the run, refetched from `source` when a token names an unknown
    /// `kid`.
    pub fn new(verifier: TokenVerifier, source: JwksSource) -> Self {
        Self {
            current: RwLock::new(Arc::new(verifier)),
            refetcher: tokio::sync::Mutex::new(Refetcher {
                source,
                last_refetch: None,
            }),
            refetches: AtomicU64::new(0),
            failed_refetches: AtomicU64::new(0),
            first_failure: Mutex::new(None),
        }
    }

    /// The keys held now.
    pub fn current(&self) -> Arc<TokenVerifier> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Verifies an access token ([`TokenVerifier::verify_access_token`]), refetching the keys
    /// once when it names an unknown `kid`.
    pub async fn verify_access_token(
        &self,
        token: &str,
    ) -> Result<VerifiedAccessToken, TokenError> {
        self.verify(|verifier| verifier.verify_access_token(token))
            .await
    }

    /// Verifies an ID token ([`TokenVerifier::verify_id_token`]), refetching the keys once when
    /// it names an unknown `kid`.
    pub async fn verify_id_token(&self, token: &str) -> Result<VerifiedIdToken, TokenError> {
        self.verify(|verifier| verifier.verify_id_token(token))
            .await
    }

    async fn verify<T>(
        &self,
        verify: impl Fn(&TokenVerifier) -> Result<T, TokenError>,
    ) -> Result<T, TokenError> {
        let held = self.current();
        match verify(&held) {
            // A kid the set does not hold is a rotation; any token against an empty set is a
            // key made on first use (the provider served no key before it issued one).
            Err(TokenError::UnknownKey(kid))
                if (kid.is_some() || held.is_empty()) && self.refresh_after(&held).await =>
            {
                verify(&self.current())
            }
            verified => verified,
        }
    }

    /// Makes the held keys newer than `held`, when that is allowed: true when they are (another
    /// VU refetched meanwhile, or this call did), false when the interval since the last
    /// refetch has not passed or the refetch failed.
    async fn refresh_after(&self, held: &Arc<TokenVerifier>) -> bool {
        let mut refetcher = self.refetcher.lock().await;
        if !Arc::ptr_eq(&self.current(), held) {
            return true;
        }
        let interval = refetcher.source.interval;
        if refetcher
            .last_refetch
            .is_some_and(|last| last.elapsed() < interval)
        {
            return false;
        }
        refetcher.last_refetch = Some(Instant::now());
        match refetcher.source.fetch().await {
            Ok(verifier) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(verifier);
                self.refetches.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(reason) => {
                self.failed_refetches.fetch_add(1, Ordering::Relaxed);
                self.first_failure
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_or_insert(reason);
                false
            }
        }
    }

    /// How many times the keys were fetched again during the run.
    pub fn refetches(&self) -> u64 {
        self.refetches.load(Ordering::Relaxed)
    }

    /// A sentence for the result's notes when the keys were fetched again, or a refetch failed.
    pub fn note(&self) -> Option<String> {
        let refetches = self.refetches();
        let failed = self.failed_refetches.load(Ordering::Relaxed);
        let first_failure = self
            .first_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let times = |count: u64| if count == 1 { "time" } else { "times" };
        match (refetches, first_failure) {
            (0, None) => None,
            (_, None) => Some(format!(
                "Fetched the JWKS again {refetches} {} during the run, for tokens signed with a \
                 key it did not hold (a key rotation); at most once per {}.",
                times(refetches),
                humantime::format_duration(REFETCH_INTERVAL)
            )),
            (_, Some(first)) => Some(format!(
                "Fetched the JWKS again {refetches} {} during the run, for tokens signed with a \
                 key it did not hold; {failed} refetches failed, the first: {first}.",
                times(refetches)
            )),
        }
    }
}
