//! Prometheus counters served at `GET /metrics`, which the pipeline reconciles with what the load
//! generator saw (codes redeemed, rotations, tokens issued).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MapLabels {
    map: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantLabels {
    grant_type: &'static str,
    outcome: &'static str,
}

/// The names of the series `/metrics` exposes: the one definition that the registration below and
/// the pipeline's reconciliation (the `verification` crate) share.
pub mod series {
    use super::TokenKind;

    /// Prefix of every series.
    pub const PREFIX: &str = "mock_idp";
    pub const HTTP_REQUESTS: &str = "http_requests";
    /// Requests by the HTTP version they came in (`HTTP/1.1`, `HTTP/2`, ...).
    pub const HTTP_VERSIONS: &str = "http_requests_by_version";
    pub const TOKENS_ISSUED: &str = "tokens_issued";
    pub const TOKEN_REQUESTS: &str = "token_requests";
    pub const FAULTS_INJECTED: &str = "faults_injected";
    pub const CODES_ISSUED: &str = "codes_issued";
    pub const CODES_REDEEMED: &str = "codes_redeemed";
    pub const CODE_REUSE_DETECTED: &str = "code_reuse_detected";
    pub const REFRESH_ROTATIONS: &str = "refresh_rotations";
    pub const REFRESH_REUSE_DETECTED: &str = "refresh_reuse_detected";
    pub const FAMILIES_REVOKED: &str = "families_revoked";
    pub const LOGINS: &str = "logins";
    /// `private_key_jwt` assertions, by `outcome`: accepted, replayed or refused.
    pub const CLIENT_ASSERTIONS: &str = "client_assertions";
    /// DPoP proofs, by `outcome`: accepted, replayed, nonce_required or refused.
    pub const DPOP_PROOFS: &str = "dpop_proofs";
    /// A gauge, not a counter: entries each in-memory map holds, by `map`.
    pub const STORE_ENTRIES: &str = "store_entries";

    /// The exposed name of counter `name`: `mock_idp_<name>_total`.
    pub fn total(name: &str) -> String {
        format!("{PREFIX}_{name}_total")
    }

    /// The series of HTTP answers of `endpoint` with `status`.
    pub fn http_requests(endpoint: &str, status: u16) -> String {
        format!(
            r#"{}{{endpoint="{endpoint}",status="{status}"}}"#,
            total(HTTP_REQUESTS)
        )
    }

    /// The series of tokens of `kind` issued.
    pub fn tokens_issued(kind: TokenKind) -> String {
        format!(r#"{}{{kind="{}"}}"#, total(TOKENS_ISSUED), kind.label())
    }
}

/// The counters. Cheap to update: a counter is an atomic, a labelled one is found under a read
/// lock that writers take only the first time a label set appears.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    versions: Family<VersionLabels, Counter>,
    tokens_issued: Family<KindLabels, Counter>,
    token_requests: Family<GrantLabels, Counter>,
    faults_injected: Family<KindLabels, Counter>,
    client_assertions: Family<OutcomeLabels, Counter>,
    dpop_proofs: Family<OutcomeLabels, Counter>,
    store_entries: Family<MapLabels, Gauge>,
    pub codes_issued: Counter,
    pub codes_redeemed: Counter,
    pub code_reuse_detected: Counter,
    pub refresh_rotations: Counter,
    pub refresh_reuse_detected: Counter,
    pub families_revoked: Counter,
    pub logins: Counter,
}

/// The kinds of token counted in `mock_idp_tokens_issued_total`.
#[derive(Debug, Clone, Copy)]
pub enum TokenKind {
    Access,
    Id,
    Refresh,
}

impl TokenKind {
    /// The `kind` label.
    pub fn label(self) -> &'static str {
        match self {
            TokenKind::Access => "access_token",
            TokenKind::Id => "id_token",
            TokenKind::Refresh => "refresh_token",
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix(series::PREFIX);
        let metrics = Self {
            requests: Family::default(),
            versions: Family::default(),
            tokens_issued: Family::default(),
            token_requests: Family::default(),
            faults_injected: Family::default(),
            client_assertions: Family::default(),
            dpop_proofs: Family::default(),
            store_entries: Family::default(),
            codes_issued: Counter::default(),
            codes_redeemed: Counter::default(),
            code_reuse_detected: Counter::default(),
            refresh_rotations: Counter::default(),
            refresh_reuse_detected: Counter::default(),
            families_revoked: Counter::default(),
            logins: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            series::HTTP_REQUESTS,
            "HTTP requests answered, by endpoint and status",
            metrics.requests.clone(),
        );
        registry.register(
            series::HTTP_VERSIONS,
            "HTTP requests answered, by the HTTP version they came in",
            metrics.versions.clone(),
        );
        registry.register(
            series::TOKENS_ISSUED,
            "Tokens issued, by kind",
            metrics.tokens_issued.clone(),
        );
        registry.register(
            series::TOKEN_REQUESTS,
            "Token endpoint requests, by grant type and outcome",
            metrics.token_requests.clone(),
        );
        registry.register(
            series::FAULTS_INJECTED,
            "Faults injected into token requests, by kind",
            metrics.faults_injected.clone(),
        );
        registry.register(
            series::CODES_ISSUED,
            "Authorization codes issued",
            metrics.codes_issued.clone(),
        );
        registry.register(
            series::CODES_REDEEMED,
            "Authorization codes redeemed for tokens",
            metrics.codes_redeemed.clone(),
        );
        registry.register(
            series::CODE_REUSE_DETECTED,
            "Redeemed authorization codes presented again",
            metrics.code_reuse_detected.clone(),
        );
        registry.register(
            series::REFRESH_ROTATIONS,
            "Refresh tokens rotated",
            metrics.refresh_rotations.clone(),
        );
        registry.register(
            series::REFRESH_REUSE_DETECTED,
            "Rotated refresh tokens replayed",
            metrics.refresh_reuse_detected.clone(),
        );
        registry.register(
            series::FAMILIES_REVOKED,
            "Grants (refresh-token families) revoked",
            metrics.families_revoked.clone(),
        );
        registry.register(series::LOGINS, "Successful logins", metrics.logins.clone());
        registry.register(
            series::CLIENT_ASSERTIONS,
            "private_key_jwt client assertions, by outcome (accepted, replayed, refused)",
            metrics.client_assertions.clone(),
        );
        registry.register(
            series::DPOP_PROOFS,
            "DPoP proofs, by outcome (accepted, replayed, nonce_required, refused)",
            metrics.dpop_proofs.clone(),
        );
        registry.register(
            series::STORE_ENTRIES,
            "Entries held in memory, by map (set when /metrics is read)",
            metrics.store_entries.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }
}

impl Metrics {
    pub fn record_request(&self, endpoint: &'static str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels { endpoint, status })
            .inc();
    }

    /// Counts a request by its HTTP version (a closed set of labels).
    pub fn record_version(&self, version: http::Version) {
        let version = match version {
            http::Version::HTTP_10 => "HTTP/1.0",
            http::Version::HTTP_11 => "HTTP/1.1",
            http::Version::HTTP_2 => "HTTP/2",
            _ => "other",
        };
        self.versions
            .get_or_create(&VersionLabels { version })
            .inc();
    }

    pub fn record_token(&self, kind: TokenKind) {
        self.tokens_issued
            .get_or_create(&KindLabels { kind: kind.label() })
            .inc();
    }

    pub fn record_token_request(&self, grant_type: &'static str, success: bool) {
        let outcome = if success { "success" } else { "error" };
        self.token_requests
            .get_or_create(&GrantLabels {
                grant_type,
                outcome,
            })
            .inc();
    }

    pub fn record_client_assertion(&self, outcome: crate::client_assertion::AssertionOutcome) {
        use crate::client_assertion::AssertionOutcome;
        let outcome = match outcome {
            AssertionOutcome::Accepted => "accepted",
            AssertionOutcome::Replayed => "replayed",
            AssertionOutcome::Refused => "refused",
        };
        self.client_assertions
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn record_dpop_proof(&self, outcome: crate::dpop::ProofOutcome) {
        use crate::dpop::ProofOutcome;
        let outcome = match outcome {
            ProofOutcome::Accepted => "accepted",
            ProofOutcome::Replayed => "replayed",
            ProofOutcome::NonceRequired => "nonce_required",
            ProofOutcome::Refused => "refused",
        };
        self.dpop_proofs
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn record_fault(&self, kind: &'static str) {
        self.faults_injected
            .get_or_create(&KindLabels { kind })
            .inc();
    }

    /// Sets the store-size gauges, so a soak run can watch memory level off.
    pub fn set_store_sizes(&self, sizes: &crate::store::Swept) {
        for (map, entries) in sizes.by_map() {
            self.store_entries
                .get_or_create(&MapLabels { map })
                .set(i64::try_from(entries).unwrap_or(i64::MAX));
        }
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_labels() {
        let metrics = Metrics::default();
        metrics.record_request("token", 200);
        metrics.record_request("token", 200);
        metrics.record_token(TokenKind::Refresh);
        metrics.refresh_rotations.inc();
        let text = metrics.render();
        assert!(
            text.contains(r#"mock_idp_http_requests_total{endpoint="token",status="200"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"mock_idp_tokens_issued_total{kind="refresh_token"} 1"#));
        assert!(text.contains("mock_idp_refresh_rotations_total 1"));
        // The names the reconciliation asks for are the ones exposed.
        for (line, value) in [
            (series::http_requests("token", 200), 2),
            (series::tokens_issued(TokenKind::Refresh), 1),
            (series::total(series::REFRESH_ROTATIONS), 1),
        ] {
            assert!(
                text.contains(&format!("{line} {value}\n")),
                "{line}: {text}"
            );
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
