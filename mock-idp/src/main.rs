//! The mock-idp binary: parses flags (with `MOCK_IDP_*` environment fallbacks), serves until
//! SIGINT or SIGTERM, then shuts down gracefully.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use mock_idp::client_assertion::ClientJwks;
use mock_idp::tls::TlsSource;
use mock_idp::{AccessTokenFormat, Config, Fault, RefreshTokenFormat, SigningAlg};

/// A spec-faithful OpenID Connect provider to load-test against. Prints
/// `listening on http://ADDR` on stdout once it accepts connections.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Address to listen on; port 0 picks a free one. Stays on loopback unless told otherwise.
    #[arg(long, env = "MOCK_IDP_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Issuer (`iss`); defaults to the base URL it listens on.
    #[arg(long, env = "MOCK_IDP_ISSUER")]
    issuer: Option<String>,
    /// Audience (`aud`) of access tokens; defaults to the issuer.
    #[arg(long, env = "MOCK_IDP_AUDIENCE")]
    audience: Option<String>,
    /// A further audience a token exchange may ask for (besides the access tokens' own);
    /// repeat the flag for several.
    #[arg(
        long = "exchange-audience",
        env = "MOCK_IDP_EXCHANGE_AUDIENCES",
        value_delimiter = ','
    )]
    exchange_audiences: Vec<String>,
    /// Signature algorithm of every token.
    #[arg(
        long,
        env = "MOCK_IDP_SIGNING_ALG",
        value_enum,
        default_value = "RS256"
    )]
    signing_alg: SigningAlg,
    /// PEM private key to sign with; a fresh key is made at start when absent.
    #[arg(long, env = "MOCK_IDP_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// Lifetime of access tokens.
    #[arg(long, env = "MOCK_IDP_ACCESS_TOKEN_TTL", value_parser = humantime::parse_duration, default_value = "1h")]
    access_token_ttl: Duration,
    /// Lifetime of ID tokens.
    #[arg(long, env = "MOCK_IDP_ID_TOKEN_TTL", value_parser = humantime::parse_duration, default_value = "1h")]
    id_token_ttl: Duration,
    /// Lifetime of refresh tokens.
    #[arg(long, env = "MOCK_IDP_REFRESH_TOKEN_TTL", value_parser = humantime::parse_duration, default_value = "30days")]
    refresh_token_ttl: Duration,
    /// Lifetime of authorization codes.
    #[arg(long, env = "MOCK_IDP_CODE_TTL", value_parser = humantime::parse_duration, default_value = "10m")]
    code_ttl: Duration,
    /// Lifetime of login sessions.
    #[arg(long, env = "MOCK_IDP_SESSION_TTL", value_parser = humantime::parse_duration, default_value = "12h")]
    session_ttl: Duration,
    /// Refresh tokens as opaque random strings or as signed JWTs.
    #[arg(
        long,
        env = "MOCK_IDP_REFRESH_TOKEN_FORMAT",
        value_enum,
        default_value = "opaque"
    )]
    refresh_token_format: RefreshTokenFormat,
    /// Access tokens as RFC 9068 JWTs, or opaque (checked by introspection or at userinfo).
    #[arg(
        long,
        env = "MOCK_IDP_ACCESS_TOKEN_FORMAT",
        value_enum,
        default_value = "jwt"
    )]
    access_token_format: AccessTokenFormat,
    /// Turn refresh-token rotation off (the same refresh token is answered back).
    #[arg(long, env = "MOCK_IDP_NO_ROTATION")]
    no_rotation: bool,
    /// How long a rotated refresh token may still be used (concurrent refresh); 0 = never.
    #[arg(long, env = "MOCK_IDP_REFRESH_GRACE", value_parser = humantime::parse_duration, default_value = "0s")]
    refresh_grace: Duration,
    /// How long a rotated refresh token is remembered, so that its replay revokes the family;
    /// a replay after that is refused as an unknown token.
    #[arg(long, env = "MOCK_IDP_REFRESH_REPLAY_WINDOW", value_parser = humantime::parse_duration, default_value = "15m")]
    refresh_replay_window: Duration,
    /// Entries each in-memory map may hold (sessions, codes, grants, refresh and access
    /// tokens); past it, requests that would add one answer 503 until entries expire.
    #[arg(long, env = "MOCK_IDP_MAX_STORE_ENTRIES", default_value_t = 4_000_000)]
    max_store_entries: usize,
    /// Number of test users (`user-loadtest-00001` ...), all with password `loadtest`.
    #[arg(long, env = "MOCK_IDP_USERS", default_value_t = 10_000)]
    users: u32,
    /// Serve the token-minting helpers under /_test/.
    #[arg(long, env = "MOCK_IDP_ENABLE_TEST_ENDPOINTS")]
    enable_test_endpoints: bool,
    /// Allow --enable-test-endpoints on an address beyond loopback (they mint real tokens for
    /// anyone who asks).
    #[arg(long, env = "MOCK_IDP_ALLOW_TEST_ENDPOINTS_BEYOND_LOOPBACK")]
    allow_test_endpoints_beyond_loopback: bool,
    /// Fault injected into a fraction of token requests: `401:0.01`, `500:0.005` or
    /// `delay:0.1:250ms`. Repeat the flag for several.
    #[arg(
        long = "inject-fault",
        env = "MOCK_IDP_INJECT_FAULT",
        value_delimiter = ','
    )]
    faults: Vec<Fault>,
    /// Request bodies larger than this many bytes answer 413.
    #[arg(long, env = "MOCK_IDP_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    max_body_bytes: usize,
    /// Close connections whose request headers take longer than this to arrive.
    #[arg(long, env = "MOCK_IDP_HEADER_READ_TIMEOUT", value_parser = humantime::parse_duration, default_value = "10s")]
    header_read_timeout: Duration,
    /// Answer 408 and close when a request's body has not all arrived this long after its
    /// headers.
    #[arg(long, env = "MOCK_IDP_REQUEST_TIMEOUT", value_parser = humantime::parse_duration, default_value = "10s")]
    request_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    #[arg(long, env = "MOCK_IDP_MAX_CONNECTIONS", default_value_t = 10_000)]
    max_connections: usize,
    /// How often expired codes, tokens and sessions are removed from memory.
    #[arg(long, env = "MOCK_IDP_SWEEP_INTERVAL", value_parser = humantime::parse_duration, default_value = "30s")]
    sweep_interval: Duration,
    /// Serve HTTPS (HTTP/2 and HTTP/1.1 by ALPN) with this PEM certificate chain.
    #[arg(
        long,
        env = "MOCK_IDP_TLS_CERT",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "MOCK_IDP_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a certificate for localhost, 127.0.0.1 and ::1 made at start, signed by
    /// a CA made with it; writes ca.pem (for clients to trust), cert.pem and key.pem to DIR.
    #[arg(long, env = "MOCK_IDP_TLS_SELF_SIGNED", value_name = "DIR")]
    tls_self_signed: Option<PathBuf>,
    /// Only write a CA and a certificate for the loopback names to DIR (ca.pem, cert.pem,
    /// key.pem), for another provider to serve, and exit.
    #[arg(long, value_name = "DIR", exclusive = true)]
    make_tls_certificates: Option<PathBuf>,
    /// Only make a client key pair in DIR (client-key.pem for loadgen's --client-key,
    /// client-jwks.json for --client-jwks), print its kid, and exit. RS256 unless
    /// --client-key-alg says ES256.
    #[arg(long, value_name = "DIR")]
    make_client_key: Option<PathBuf>,
    /// The algorithm of the key --make-client-key makes: RS256 or ES256.
    #[arg(
        long,
        value_enum,
        default_value = "RS256",
        requires = "make_client_key"
    )]
    client_key_alg: SigningAlg,
    /// A JWKS file of the confidential client's public keys: `loadtest-client` may then
    /// authenticate with `private_key_jwt` (RFC 7523) too, each assertion's `jti` used once.
    #[arg(long, env = "MOCK_IDP_CLIENT_JWKS", value_name = "FILE")]
    client_jwks: Option<PathBuf>,
    /// Require a nonce issued by this server in every DPoP proof at the token endpoint (RFC
    /// 9449 section 8): a proof without one is answered 400 `use_dpop_nonce` with the nonce to
    /// use in `DPoP-Nonce`. DPoP itself is always accepted.
    #[arg(long, env = "MOCK_IDP_DPOP_NONCE")]
    dpop_nonce: bool,
    /// The confidential client's self-signed certificate (PEM, as --make-client-key writes it):
    /// presented in the TLS handshake, it authenticates `loadtest-client` (RFC 8705
    /// `self_signed_tls_client_auth`). Needs HTTPS.
    #[arg(long, env = "MOCK_IDP_CLIENT_CERTIFICATE", value_name = "FILE")]
    client_certificate: Option<PathBuf>,
}

impl Cli {
    fn into_config(self) -> anyhow::Result<Config> {
        let client_jwks = match &self.client_jwks {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("could not read --client-jwks {}", path.display()))?;
                Some(
                    ClientJwks::parse(&text)
                        .with_context(|| format!("--client-jwks {}", path.display()))?,
                )
            }
            None => None,
        };
        Ok(Config {
            addr: self.addr,
            issuer: self.issuer,
            audience: self.audience,
            exchange_audiences: self.exchange_audiences,
            signing_alg: self.signing_alg,
            key_file: self.key_file,
            access_token_ttl: self.access_token_ttl,
            id_token_ttl: self.id_token_ttl,
            refresh_token_ttl: self.refresh_token_ttl,
            code_ttl: self.code_ttl,
            session_ttl: self.session_ttl,
            refresh_token_format: self.refresh_token_format,
            access_token_format: self.access_token_format,
            rotate_refresh_tokens: !self.no_rotation,
            refresh_grace: self.refresh_grace,
            refresh_replay_window: self.refresh_replay_window,
            max_store_entries: self.max_store_entries,
            users: self.users,
            enable_test_endpoints: self.enable_test_endpoints,
            allow_test_endpoints_beyond_loopback: self.allow_test_endpoints_beyond_loopback,
            faults: self.faults,
            max_body_bytes: self.max_body_bytes,
            header_read_timeout: self.header_read_timeout,
            request_timeout: self.request_timeout,
            max_connections: self.max_connections,
            sweep_interval: self.sweep_interval,
            tls: match (self.tls_cert, self.tls_key, self.tls_self_signed) {
                (Some(certificate), Some(key), _) => Some(TlsSource::Files { certificate, key }),
                (_, _, Some(directory)) => Some(TlsSource::SelfSigned { directory }),
                _ => None,
            },
            client_jwks,
            dpop_nonce: self.dpop_nonce,
            client_certificate: match &self.client_certificate {
                Some(path) => Some(mock_idp::client_certificate::read_certificate(path)?),
                None => None,
            },
        })
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(directory) = &cli.make_tls_certificates {
        let (certificate, key) = mock_idp::tls::write_self_signed(directory)?;
        println!(
            "wrote {} (trust it), {} and {}",
            directory.join("ca.pem").display(),
            certificate.display(),
            key.display()
        );
        return Ok(());
    }
    if let Some(directory) = &cli.make_client_key {
        let (key, jwks, kid) =
            mock_idp::client_assertion::write_client_key(directory, cli.client_key_alg)?;
        println!(
            "wrote {} (loadgen --client-key, --client-key-alg {}, --client-key-id {kid}), {} \
             (mock-idp --client-jwks) and {} (loadgen --client-cert, mock-idp \
             --client-certificate)",
            key.display(),
            cli.client_key_alg.as_str(),
            jwks.display(),
            directory.join("client-cert.pem").display()
        );
        return Ok(());
    }
    let config = cli.into_config()?;
    if let Some(mock_idp::tls::TlsSource::SelfSigned { directory }) = &config.tls {
        eprintln!(
            "serving https with a certificate for localhost, 127.0.0.1 and ::1 signed by a CA made \
             now: trust {} (loadgen --ca-cert)",
            directory.join("ca.pem").display()
        );
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MOCK_IDP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if !config.addr.ip().is_loopback() {
        tracing::warn!(addr = %config.addr, "listening beyond loopback, as asked");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the Tokio runtime")?;
    runtime.block_on(async {
        // Handlers go in before the address is announced: whoever reads that line may signal
        // at once, and a signal without a handler would kill the process ungracefully.
        let shutdown =
            mock_idp::shutdown_signal().context("could not handle SIGINT and SIGTERM")?;
        let server = mock_idp::spawn(config).await?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {}", server.base_url())?;
        stdout.flush()?;
        drop(stdout);
        shutdown.await;
        tracing::info!("shutting down");
        server.shutdown().await;
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flags' defaults and `Config::default()` are one contract; they must not drift.
    #[test]
    fn flag_defaults_are_the_config_defaults() {
        let from_flags = Cli::try_parse_from(["mock-idp"])
            .unwrap()
            .into_config()
            .unwrap();
        assert_eq!(
            format!("{from_flags:?}"),
            format!("{:?}", Config::default())
        );
    }

    #[test]
    fn faults_parse_from_flags() {
        let cli = Cli::try_parse_from([
            "mock-idp",
            "--inject-fault",
            "401:0.01",
            "--inject-fault",
            "delay:0.5:20ms",
        ])
        .unwrap();
        assert_eq!(cli.faults.len(), 2);
        let error = Cli::try_parse_from(["mock-idp", "--inject-fault", "418:0.1"]).unwrap_err();
        assert!(error.to_string().contains("KIND one of 401, 500, delay"));
    }
}
