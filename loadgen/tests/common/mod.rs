//! Shared helpers of the integration tests: an in-process mock IdP, small seed sets, run
//! configurations, and a tiny hyper target that can stall or die on cue.
#![allow(dead_code)]

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use loadgen::seeding::SeedConfig;
use loadgen::{LoadProfile, RunConfig, ScenarioKind, Seeds};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A mock IdP on an ephemeral loopback port with the documented defaults.
pub async fn spawn_idp() -> anyhow::Result<mock_idp::RunningIdp> {
    Ok(mock_idp::spawn(mock_idp::Config::ephemeral()).await?)
}

/// A mock IdP with a changed configuration.
pub async fn spawn_idp_with(
    change: impl FnOnce(&mut mock_idp::Config),
) -> anyhow::Result<mock_idp::RunningIdp> {
    let mut config = mock_idp::Config::ephemeral();
    change(&mut config);
    Ok(mock_idp::spawn(config).await?)
}

/// A profile held at `rate` for `steady_s` seconds, no ramps.
pub fn steady(rate: f64, steady_s: f64) -> LoadProfile {
    LoadProfile {
        rate_per_s: rate,
        ramp_up_s: 0.0,
        steady_s,
        ramp_down_s: 0.0,
    }
}

/// Seeds made through the IdP's public endpoints.
pub async fn make_seeds(
    target: &str,
    codes: usize,
    refresh_families: usize,
    sessions: usize,
) -> anyhow::Result<Seeds> {
    let config = SeedConfig {
        codes,
        refresh_families,
        sessions,
        concurrency: 8,
        ..SeedConfig::new(target)
    };
    Ok(loadgen::seeding::make_seeds(&config).await?)
}

/// A run configuration with few VUs and a short timeout.
pub fn run_config(
    scenario: ScenarioKind,
    target: &str,
    profile: LoadProfile,
    max_vus: usize,
) -> RunConfig {
    RunConfig {
        max_vus,
        timeout: Duration::from_secs(3),
        ..RunConfig::new(scenario, target, profile)
    }
}

/// A target that serves a discovery document (and a static JWKS) instantly, except that every
/// request arriving in `[stall_from, stall_from + stall_for)` after start is held until the end
/// of that window, like a stop-the-world pause.
pub struct StallingTarget {
    pub base_url: String,
    task: JoinHandle<()>,
}

impl StallingTarget {
    /// Stops the target: the listener closes and open connections are dropped.
    pub fn kill(&self) {
        self.task.abort();
    }
}

impl Drop for StallingTarget {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// RFC 8037 appendix A.2's public key: any well-formed key will do, the target signs nothing.
const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

pub async fn spawn_stalling_target(
    stall_from: Duration,
    stall_for: Duration,
) -> anyhow::Result<StallingTarget> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let started = Instant::now();
    let (stall_start, stall_end) = (started + stall_from, started + stall_from + stall_for);
    let discovery = Bytes::from(
        serde_json::json!({
            "issuer": base_url,
            "authorization_endpoint": format!("{base_url}/authorize"),
            "token_endpoint": format!("{base_url}/token"),
            "jwks_uri": format!("{base_url}/jwks"),
        })
        .to_string(),
    );
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let discovery = discovery.clone();
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let discovery = discovery.clone();
                async move {
                    let now = Instant::now();
                    if now >= stall_start && now < stall_end {
                        tokio::time::sleep_until(stall_end).await;
                    }
                    let body = if request.uri().path() == "/jwks" {
                        Bytes::from_static(JWKS.as_bytes())
                    } else {
                        discovery
                    };
                    Ok::<_, Infallible>(Response::new(Full::new(body)))
                }
            });
            // Held in the set so that aborting the target drops every connection too.
            connections.spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(StallingTarget { base_url, task })
}
