//! What the reference API checks in a token and where its verification keys come from.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use mock_idp::Fault;

/// Where the keys that verify access tokens come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A JWKS at this `http://` or `https://` URL, fetched at start and again when a token names a `kid` it
    /// does not hold (a key rotation), at most once per [`Config::jwks_refetch_interval`].
    Jwks(String),
    /// A shared HS256 secret, as many first-party APIs sign their own tokens.
    Hs256(Vec<u8>),
}

/// The API's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The verification keys.
    pub keys: KeySource,
    /// The `iss` every token must carry, when given.
    pub issuer: Option<String>,
    /// An `aud` every token must name, when given.
    pub audience: Option<String>,
    /// How far past `exp` (or before `nbf`) a token is still taken; real services allow a few
    /// seconds for clock skew, a reference allows none by default so expiry is exact.
    pub leeway: Duration,
    /// The shortest time between two fetches of the JWKS.
    pub jwks_refetch_interval: Duration,
    /// PEM certificates to trust, besides the system's, when the JWKS is fetched over https://
    /// from a provider with a private CA.
    pub jwks_ca_cert: Option<PathBuf>,
    /// How old the fetched JWKS may grow before a request fetches it again, as services cache
    /// a provider's keys: a key the provider stopped publishing is then refused.
    pub jwks_max_age: Duration,
    /// Faults injected into a fraction of the API's requests (`401:0.01` refuses 1 % as
    /// `invalid_token`).
    pub faults: Vec<Fault>,
}

impl Config {
    /// An API on an ephemeral loopback port checking tokens with `keys`, nothing else set.
    pub fn ephemeral(keys: KeySource) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            keys,
            issuer: None,
            audience: None,
            leeway: Duration::ZERO,
            jwks_refetch_interval: Duration::from_secs(1),
            jwks_max_age: Duration::from_secs(300),
            jwks_ca_cert: None,
            faults: Vec::new(),
        }
    }
}
