//! Reconciliation: the IdP's own Prometheus counters, read before and after a test, must agree
//! with what the load generator saw. A token the generator counted but the IdP never issued (or
//! the reverse) means one of the two is lying about the load.

use std::collections::BTreeMap;

use loadgen::{RunResult, ScenarioKind};
use mock_idp::metrics::{TokenKind, series};
use serde::Serialize;

/// Counter values by series (`name{labels}` exactly as exposed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct MetricsSnapshot {
    pub series: BTreeMap<String, f64>,
}

/// Why the exposition could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MetricsError {
    #[error("line {line}: expected `series value`, found {text:?}")]
    Malformed { line: usize, text: String },
}

impl MetricsSnapshot {
    /// Parses the Prometheus / OpenMetrics text format (the subset of counters and gauges:
    /// `name{labels} value`, comments skipped).
    pub fn parse(text: &str) -> Result<Self, MetricsError> {
        let mut series = BTreeMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let malformed = || MetricsError::Malformed {
                line: index + 1,
                text: line.to_owned(),
            };
            // Label values may hold spaces; the value is after the last `}` or the first space.
            let split_at = match line.rfind('}') {
                Some(brace) => brace + 1,
                None => line.find(' ').ok_or_else(malformed)?,
            };
            let (name, rest) = line.split_at(split_at);
            let value = rest
                .split_whitespace()
                .next()
                .and_then(|value| value.parse::<f64>().ok())
                .ok_or_else(malformed)?;
            series.insert(name.trim().to_owned(), value);
        }
        Ok(Self { series })
    }

    /// The value of a series, 0 when absent (a counter never incremented is not exposed).
    pub fn get(&self, series: &str) -> f64 {
        self.series.get(series).copied().unwrap_or(0.0)
    }

    /// How much a series grew from `before` to `self`.
    pub fn delta(&self, before: &MetricsSnapshot, series: &str) -> f64 {
        self.get(series) - before.get(series)
    }
}

/// One comparison of an IdP counter with the generator's count.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Reconciliation {
    pub what: String,
    pub idp_series: String,
    pub idp_delta: f64,
    pub loadgen_count: f64,
}

impl Reconciliation {
    pub fn agrees(&self) -> bool {
        (self.idp_delta - self.loadgen_count).abs() < 0.5
    }

    pub fn describe(&self) -> String {
        let difference = self.idp_delta - self.loadgen_count;
        format!(
            "{}: IdP {} grew by {}, loadgen saw {} ({}{})",
            self.what,
            self.idp_series,
            self.idp_delta,
            self.loadgen_count,
            if difference >= 0.0 { "+" } else { "" },
            difference
        )
    }
}

fn status_count(result: &RunResult, endpoint: &str, status: &str) -> f64 {
    result
        .endpoints
        .get(endpoint)
        .and_then(|endpoint| endpoint.requests.by_status.get(status))
        .copied()
        .unwrap_or(0) as f64
}

/// The counters that must agree for a run of `result.scenario`, from snapshots taken just
/// before and just after it.
pub fn reconcile(
    result: &RunResult,
    before: &MetricsSnapshot,
    after: &MetricsSnapshot,
) -> Vec<Reconciliation> {
    // The api scenario's load is on the API, not the provider, and each VU's first token is
    // got unmeasured before the clock starts: the provider's counters have nothing to match.
    if result.scenario == ScenarioKind::Api.name() {
        return Vec::new();
    }
    let token_ok = status_count(result, "token", "200");
    let check = |what: &str, series: String, loadgen_count: f64| Reconciliation {
        what: what.to_owned(),
        idp_delta: after.delta(before, &series),
        idp_series: series,
        loadgen_count,
    };
    let mut checks = vec![
        check(
            "token responses 200",
            series::http_requests("token", 200),
            token_ok,
        ),
        check(
            "access tokens issued",
            series::tokens_issued(TokenKind::Access),
            token_ok,
        ),
    ];
    let Some(scenario) = ScenarioKind::from_name(&result.scenario) else {
        return checks;
    };
    match scenario {
        ScenarioKind::TokenCode => {
            checks.push(check(
                "codes redeemed",
                series::total(series::CODES_REDEEMED),
                token_ok,
            ));
            checks.push(check(
                "refresh tokens issued",
                series::tokens_issued(TokenKind::Refresh),
                token_ok,
            ));
        }
        ScenarioKind::RefreshStorm => {
            checks.push(check(
                "refresh tokens rotated",
                series::total(series::REFRESH_ROTATIONS),
                token_ok,
            ));
            checks.push(check(
                "refresh-token replays detected",
                series::total(series::REFRESH_REUSE_DETECTED),
                0.0,
            ));
        }
        ScenarioKind::FullOidc => {
            checks.push(check(
                "codes issued",
                series::total(series::CODES_ISSUED),
                status_count(result, "authorize", "302"),
            ));
            checks.push(check(
                "codes redeemed",
                series::total(series::CODES_REDEEMED),
                token_ok,
            ));
            checks.push(check(
                "userinfo responses 200",
                series::http_requests("userinfo", 200),
                status_count(result, "userinfo", "200"),
            ));
        }
        // These scenarios are not among the reconciled tests: the common checks suffice.
        ScenarioKind::Api
        | ScenarioKind::Login
        | ScenarioKind::ClientCredentials
        | ScenarioKind::Userinfo
        | ScenarioKind::TokenExchange
        | ScenarioKind::Discovery
        | ScenarioKind::RefreshReuse => {}
    }
    checks
}

/// Fetches `GET {base_url}/metrics` with loadgen's client (over https trusting `ca_certs`
/// besides the system's roots) and parses it.
pub async fn fetch(
    base_url: &str,
    ca_certs: &[std::path::PathBuf],
) -> anyhow::Result<MetricsSnapshot> {
    use loadgen::http::client::VuClient;
    use loadgen::http::connection::TransportSettings;
    use loadgen::http::target::Target;
    use loadgen::http::tls::TlsSettings;
    let transport = TransportSettings {
        tls: TlsSettings {
            ca_certs: ca_certs.to_vec(),
            ..TlsSettings::default()
        },
        ..TransportSettings::default()
    };
    let target = std::sync::Arc::new(Target::with_transport(base_url, transport)?);
    let address = target.address_of("/metrics")?;
    let response = VuClient::new(std::sync::Arc::clone(&target))
        .send(
            http::Method::GET,
            &address,
            &[],
            bytes::Bytes::new(),
            std::time::Duration::from_secs(10),
        )
        .await
        .map_err(|error| anyhow::anyhow!("GET {address}: {error}"))?;
    if !response.status.is_success() {
        anyhow::bail!("GET {address} answered {}", response.status);
    }
    Ok(MetricsSnapshot::parse(std::str::from_utf8(
        &response.body,
    )?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_exposition_format() {
        let text = "# HELP mock_idp_codes_redeemed Authorization codes redeemed\n\
                    # TYPE mock_idp_codes_redeemed counter\n\
                    mock_idp_codes_redeemed_total 42\n\
                    mock_idp_http_requests_total{endpoint=\"token\",status=\"200\"} 7\n\
                    odd{label=\"a b\"} 1.5 1700000000\n\
                    # EOF\n";
        let snapshot = MetricsSnapshot::parse(text).unwrap();
        assert_eq!(snapshot.get("mock_idp_codes_redeemed_total"), 42.0);
        assert_eq!(
            snapshot.get(r#"mock_idp_http_requests_total{endpoint="token",status="200"}"#),
            7.0
        );
        assert_eq!(snapshot.get(r#"odd{label="a b"}"#), 1.5);
        assert_eq!(snapshot.get("absent"), 0.0);
    }

    #[test]
    fn refuses_garbage() {
        assert_eq!(
            MetricsSnapshot::parse("metric_without_value\n"),
            Err(MetricsError::Malformed {
                line: 1,
                text: "metric_without_value".into()
            })
        );
        assert!(MetricsSnapshot::parse("metric notanumber\n").is_err());
    }

    #[test]
    fn a_mismatch_says_by_how_much() {
        let reconciliation = Reconciliation {
            what: "codes redeemed".into(),
            idp_series: "mock_idp_codes_redeemed_total".into(),
            idp_delta: 35_990.0,
            loadgen_count: 36_000.0,
        };
        assert!(!reconciliation.agrees());
        assert!(
            reconciliation.describe().ends_with("(-10)"),
            "{}",
            reconciliation.describe()
        );
    }
}
