//! The server's configuration: its defaults are a contract (docs/design.md) that seeds, tests and docs rely on.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::client_assertion::ClientJwks;
use crate::tls::TlsSource;

pub use crate::keys::SigningAlg;

/// How refresh tokens look on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RefreshTokenFormat {
    /// 256 random bits, base64url; all state lives in the server.
    Opaque,
    /// A signed JWT (`typ: rt+jwt`); the server still keeps the state that makes rotation work.
    Jwt,
}

/// How access tokens look on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AccessTokenFormat {
    /// An RFC 9068 JWT (`typ: at+jwt`), verifiable against the JWKS.
    #[default]
    Jwt,
    /// 256 random bits, base64url, as node-oidc-provider, Ory Hydra and Django issue by default:
    /// checked by introspection (RFC 7662) or by using it.
    Opaque,
}

/// Everything mock-idp can be told. `Config::default()` is the documented default contract.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen. Loopback unless told otherwise.
    pub addr: SocketAddr,
    /// The `iss` of every token; defaults to the base URL the server listens on.
    pub issuer: Option<String>,
    /// The `aud` of access tokens (RFC 9068 resource); defaults to the issuer.
    pub audience: Option<String>,
    /// Further audiences a token exchange may ask for (RFC 8693 `audience` or `resource`);
    /// any other is `invalid_target`.
    pub exchange_audiences: Vec<String>,
    pub signing_alg: SigningAlg,
    /// A PEM private key; a fresh key is made at start when absent.
    pub key_file: Option<PathBuf>,
    pub access_token_ttl: Duration,
    pub id_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub code_ttl: Duration,
    pub session_ttl: Duration,
    pub refresh_token_format: RefreshTokenFormat,
    pub access_token_format: AccessTokenFormat,
    /// Refresh-token rotation (RFC 9700 4.14.2); on by default.
    pub rotate_refresh_tokens: bool,
    /// How long a rotated refresh token may still be used once (concurrent refresh), 0 = never.
    pub refresh_grace: Duration,
    /// How long a rotated refresh token is remembered so that its replay revokes the family
    /// (RFC 9700 4.14.2); after that it is forgotten and a replay is just an unknown token.
    pub refresh_replay_window: Duration,
    /// Entries each in-memory map may hold (sessions, codes, grants, refresh and access
    /// tokens); past it, requests that would add one answer 503 until entries expire.
    pub max_store_entries: usize,
    /// Users `user-loadtest-00001` ... up to this count.
    pub users: u32,
    /// Serve the token-minting helpers under `/_test/`.
    pub enable_test_endpoints: bool,
    /// Serve `/_test/` on an address beyond loopback too. Off, such a start is refused: the
    /// helpers hand out real tokens to whoever asks.
    pub allow_test_endpoints_beyond_loopback: bool,
    /// Faults injected into token requests, to prove that a load test's gate can fail.
    pub faults: Vec<Fault>,
    /// Request bodies past this size answer 413.
    pub max_body_bytes: usize,
    /// A connection whose request headers have not all arrived by then is closed.
    pub header_read_timeout: Duration,
    /// A request whose body has not all arrived this long after its headers answers 408 and
    /// its connection is closed, so a client trickling bytes cannot hold a task for ever.
    pub request_timeout: Duration,
    /// Connections served at once; further ones wait in the listen backlog until one closes.
    pub max_connections: usize,
    /// How often expired codes, tokens and sessions are swept from memory.
    pub sweep_interval: Duration,
    /// Serve HTTPS (HTTP/2 and HTTP/1.1 by ALPN) with this certificate; plain HTTP/1.1 when
    /// `None`. The default issuer is then `https://`.
    pub tls: Option<TlsSource>,
    /// The JWKS of the confidential client's keys: with it, `loadtest-client` may also
    /// authenticate with `private_key_jwt` (RFC 7523), and discovery says so.
    pub client_jwks: Option<ClientJwks>,
    /// Require a nonce this server issued in every DPoP proof at the token endpoint (RFC 9449
    /// section 8): a proof without one, or with a stale one, is answered `use_dpop_nonce`.
    pub dpop_nonce: bool,
    /// The confidential client's self-signed certificate (DER): presented in the TLS handshake,
    /// it authenticates `loadtest-client` (RFC 8705 `self_signed_tls_client_auth`).
    pub client_certificate: Option<bytes::Bytes>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issuer: None,
            audience: None,
            exchange_audiences: Vec::new(),
            signing_alg: SigningAlg::Rs256,
            key_file: None,
            access_token_ttl: Duration::from_secs(3600),
            id_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            code_ttl: Duration::from_secs(600),
            session_ttl: Duration::from_secs(12 * 3600),
            refresh_token_format: RefreshTokenFormat::Opaque,
            access_token_format: AccessTokenFormat::Jwt,
            rotate_refresh_tokens: true,
            refresh_grace: Duration::ZERO,
            refresh_replay_window: Duration::from_secs(15 * 60),
            max_store_entries: 4_000_000,
            users: 10_000,
            enable_test_endpoints: false,
            allow_test_endpoints_beyond_loopback: false,
            faults: Vec::new(),
            max_body_bytes: 64 * 1024,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            sweep_interval: Duration::from_secs(30),
            tls: None,
            client_jwks: None,
            dpop_nonce: false,
            client_certificate: None,
        }
    }
}

impl Config {
    /// A configuration for tests: an ephemeral loopback port, everything else default.
    pub fn ephemeral() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Self::default()
        }
    }
}

/// What an injected fault does to the request it hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer 401 `invalid_client`, as an IdP with a broken client store would.
    Unauthorized,
    /// Answer 500 `server_error`.
    ServerError,
    /// Handle the request normally, after this delay.
    Delay(Duration),
}

/// A fault applied to a fraction of token requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fault {
    pub kind: FaultKind,
    /// Between 0 and 1; the hit requests are spread evenly (deterministically) over the stream.
    pub fraction: f64,
}

/// A fault with the count of requests it has seen, so that exactly `fraction` of them are hit,
/// spread evenly: request `n` is hit when `floor((n + 1) f) > floor(n f)`. The reference API's
/// faults count the same way.
#[derive(Debug)]
pub struct FaultCounter {
    fault: Fault,
    seen: AtomicU64,
}

impl FaultCounter {
    /// A counter that has seen no request yet.
    pub fn new(fault: Fault) -> Self {
        Self {
            fault,
            seen: AtomicU64::new(0),
        }
    }

    /// What the fault does.
    pub fn kind(&self) -> FaultKind {
        self.fault.kind
    }

    /// Counts one request; whether the fault hits it.
    pub fn hits_next(&self) -> bool {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) as f64;
        ((n + 1.0) * self.fault.fraction).floor() > (n * self.fault.fraction).floor()
    }
}

/// Why a `--inject-fault` value was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FaultParseError {
    #[error("expected KIND:FRACTION[:DELAY] with KIND one of 401, 500, delay (got {0:?})")]
    Shape(String),
    #[error("the fraction must be a number between 0 and 1 (got {0:?})")]
    Fraction(String),
    #[error("a delay fault needs a duration such as 200ms (got {0:?})")]
    Delay(String),
}

impl FromStr for Fault {
    type Err = FaultParseError;

    /// `401:0.01`, `500:0.005`, `delay:0.1:250ms`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut parts = text.split(':');
        let kind = parts.next().unwrap_or_default();
        let fraction_text = parts
            .next()
            .ok_or_else(|| FaultParseError::Shape(text.to_owned()))?;
        let fraction: f64 = fraction_text
            .parse()
            .ok()
            .filter(|fraction: &f64| (0.0..=1.0).contains(fraction))
            .ok_or_else(|| FaultParseError::Fraction(fraction_text.to_owned()))?;
        let kind = match (kind, parts.next()) {
            ("401", None) => FaultKind::Unauthorized,
            ("500", None) => FaultKind::ServerError,
            ("delay", Some(delay)) => FaultKind::Delay(
                humantime::parse_duration(delay)
                    .map_err(|_| FaultParseError::Delay(delay.to_owned()))?,
            ),
            ("delay", None) => return Err(FaultParseError::Delay(String::new())),
            _ => return Err(FaultParseError::Shape(text.to_owned())),
        };
        if parts.next().is_some() {
            return Err(FaultParseError::Shape(text.to_owned()));
        }
        Ok(Fault { kind, fraction })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_hit_exactly_their_fraction_spread_evenly() {
        let fault = FaultCounter::new(Fault {
            kind: FaultKind::Unauthorized,
            fraction: 0.01,
        });
        let hits: Vec<usize> = (0..1000).filter(|_| fault.hits_next()).collect();
        assert_eq!(hits.len(), 10);
        assert_eq!(hits[0], 99);
        assert_eq!(hits[1], 199);
    }

    #[test]
    fn fault_specs_parse() {
        assert_eq!(
            "401:0.01".parse(),
            Ok(Fault {
                kind: FaultKind::Unauthorized,
                fraction: 0.01
            })
        );
        assert_eq!(
            "delay:0.5:250ms".parse(),
            Ok(Fault {
                kind: FaultKind::Delay(Duration::from_millis(250)),
                fraction: 0.5
            })
        );
        assert!(matches!(
            "401:2".parse::<Fault>(),
            Err(FaultParseError::Fraction(_))
        ));
        assert!(matches!(
            "delay:0.1".parse::<Fault>(),
            Err(FaultParseError::Delay(_))
        ));
        assert!(matches!(
            "teapot:0.1".parse::<Fault>(),
            Err(FaultParseError::Shape(_))
        ));
        assert!(matches!(
            "401".parse::<Fault>(),
            Err(FaultParseError::Shape(_))
        ));
    }
}
