//! The reference-api binary: parses flags (with `REFERENCE_API_*` environment fallbacks), serves
//! until SIGINT or SIGTERM, then stops gracefully.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use mock_idp::Fault;
use reference_api::{Config, KeySource};

/// An example API that checks JWT access tokens as real services do, to load-test with real
/// tokens (`loadgen run --scenario api`). Prints `listening on http://ADDR` on stdout once it
/// accepts connections.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, env = "REFERENCE_API_ADDR", default_value = "127.0.0.1:8090")]
    addr: SocketAddr,
    /// The provider's JWKS (its discovery document's `jwks_uri`), over http:// or https://;
    /// fetched at start and again when a token names a key the API does not hold.
    #[arg(
        long,
        env = "REFERENCE_API_JWKS_URL",
        conflicts_with = "hs256_secret_env"
    )]
    jwks_url: Option<String>,
    /// PEM certificates to trust, besides the system's, for a JWKS served over https:// with a
    /// private CA (mock-idp's --tls-self-signed ca.pem, say).
    #[arg(long, env = "REFERENCE_API_JWKS_CA_CERT", requires = "jwks_url")]
    jwks_ca_cert: Option<std::path::PathBuf>,
    /// The environment variable holding an HS256 secret, for an API that signs its own tokens.
    #[arg(long, env = "REFERENCE_API_HS256_SECRET_ENV")]
    hs256_secret_env: Option<String>,
    /// The `iss` every token must carry.
    #[arg(long, env = "REFERENCE_API_ISSUER")]
    issuer: Option<String>,
    /// An `aud` every token must name.
    #[arg(long, env = "REFERENCE_API_AUDIENCE")]
    audience: Option<String>,
    /// Clock skew allowed around `exp` and `nbf`.
    #[arg(long, env = "REFERENCE_API_LEEWAY", value_parser = humantime::parse_duration, default_value = "0s")]
    leeway: Duration,
    /// The shortest time between two fetches of the JWKS.
    #[arg(long, env = "REFERENCE_API_JWKS_REFETCH_INTERVAL", value_parser = humantime::parse_duration, default_value = "1s")]
    jwks_refetch_interval: Duration,
    /// How old the fetched JWKS may grow before a request fetches it again.
    #[arg(long, env = "REFERENCE_API_JWKS_MAX_AGE", value_parser = humantime::parse_duration, default_value = "5m")]
    jwks_max_age: Duration,
    /// Fault injected into a fraction of the API's requests: `401:0.01` (refused as
    /// `invalid_token`), `500:0.005` or `delay:0.1:250ms`, as mock-idp's. Repeat for several.
    #[arg(
        long = "inject-fault",
        env = "REFERENCE_API_INJECT_FAULT",
        value_delimiter = ','
    )]
    faults: Vec<Fault>,
}

impl Cli {
    fn into_config(self) -> anyhow::Result<Config> {
        let keys = match (self.jwks_url, self.hs256_secret_env) {
            (Some(url), None) => KeySource::Jwks(url),
            (None, Some(name)) => {
                let secret = std::env::var(&name).with_context(|| {
                    format!("--hs256-secret-env names {name}, which is not set in the environment")
                })?;
                if secret.len() < 32 {
                    bail!(
                        "the HS256 secret in {name} has {} bytes; use at least 32 (RFC 7518 section 3.2)",
                        secret.len()
                    );
                }
                KeySource::Hs256(secret.into_bytes())
            }
            _ => bail!(
                "say where the keys that verify tokens come from: --jwks-url URL (the provider's \
                 jwks_uri) or --hs256-secret-env NAME"
            ),
        };
        Ok(Config {
            addr: self.addr,
            keys,
            issuer: self.issuer,
            audience: self.audience,
            leeway: self.leeway,
            jwks_refetch_interval: self.jwks_refetch_interval,
            jwks_max_age: self.jwks_max_age,
            jwks_ca_cert: self.jwks_ca_cert,
            faults: self.faults,
        })
    }
}

fn main() -> anyhow::Result<()> {
    let config = Cli::parse().into_config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the Tokio runtime")?;
    runtime.block_on(async {
        // Handlers go in before the address is announced: whoever reads that line may signal at
        // once.
        let shutdown =
            mock_idp::shutdown_signal().context("could not handle SIGINT and SIGTERM")?;
        let server = reference_api::spawn(config).await?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {}", server.base_url())?;
        stdout.flush()?;
        drop(stdout);
        shutdown.await;
        server.stop().await;
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_come_from_somewhere_and_a_short_secret_is_refused() {
        let error = Cli::parse_from(["reference-api"])
            .into_config()
            .unwrap_err();
        assert!(error.to_string().contains("--jwks-url URL"), "{error}");
        let name = "REFERENCE_API_TEST_SHORT_SECRET_THAT_NO_ONE_SETS";
        let error = Cli::parse_from(["reference-api", "--hs256-secret-env", name])
            .into_config()
            .unwrap_err();
        assert!(error.to_string().contains("not set"), "{error}");
        assert!(Cli::try_parse_from(["reference-api", "--inject-fault", "418:0.1"]).is_err());
    }
}
