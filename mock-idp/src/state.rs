//! The provider's shared state as the endpoints see it: configuration, the token minter, the
//! store, the counters and the endpoints' URLs. Built once by [`crate::App`].

use crate::client_assertion::ClientAssertions;
use crate::config::Config;
use crate::dpop::Dpop;
use crate::jwt::Minter;
use crate::metrics::Metrics;
use crate::store::Store;

/// What every endpoint handler reads and changes.
#[derive(Debug)]
pub struct Idp {
    pub config: Config,
    pub minter: Minter,
    pub store: Store,
    pub metrics: Metrics,
    pub urls: Urls,
    /// The confidential client's `private_key_jwt` assertions, when it registered keys.
    pub client_assertions: Option<ClientAssertions>,
    /// DPoP proofs seen, and nonces when they are required.
    pub dpop: Dpop,
}

/// Absolute URLs of the endpoints, made once from the issuer.
#[derive(Debug)]
pub struct Urls {
    pub issuer: String,
    pub authorization: String,
    pub token: String,
    pub userinfo: String,
    pub jwks: String,
    pub introspection: String,
    pub revocation: String,
    /// The pushed authorization request endpoint (RFC 9126).
    pub pushed_authorization: String,
}
