//! Prometheus counters served at `GET /metrics`, which the pipeline reconciles with what the load
//! generator saw (codes redeemed, rotations, tokens issued).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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
struct GrantLabels {
    grant_type: &'static str,
    outcome: &'static str,
}

/// The counters. Cheap to update: a counter is an atomic, a labelled one is found under a read
/// lock that writers take only the first time a label set appears.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    tokens_issued: Family<KindLabels, Counter>,
    token_requests: Family<GrantLabels, Counter>,
    faults_injected: Family<KindLabels, Counter>,
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

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("mock_idp");
        let metrics = Self {
            requests: Family::default(),
            tokens_issued: Family::default(),
            token_requests: Family::default(),
            faults_injected: Family::default(),
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
            "http_requests",
            "HTTP requests answered, by endpoint and status",
            metrics.requests.clone(),
        );
        registry.register(
            "tokens_issued",
            "Tokens issued, by kind",
            metrics.tokens_issued.clone(),
        );
        registry.register(
            "token_requests",
            "Token endpoint requests, by grant type and outcome",
            metrics.token_requests.clone(),
        );
        registry.register(
            "faults_injected",
            "Faults injected into token requests, by kind",
            metrics.faults_injected.clone(),
        );
        registry.register(
            "codes_issued",
            "Authorization codes issued",
            metrics.codes_issued.clone(),
        );
        registry.register(
            "codes_redeemed",
            "Authorization codes redeemed for tokens",
            metrics.codes_redeemed.clone(),
        );
        registry.register(
            "code_reuse_detected",
            "Redeemed authorization codes presented again",
            metrics.code_reuse_detected.clone(),
        );
        registry.register(
            "refresh_rotations",
            "Refresh tokens rotated",
            metrics.refresh_rotations.clone(),
        );
        registry.register(
            "refresh_reuse_detected",
            "Rotated refresh tokens replayed",
            metrics.refresh_reuse_detected.clone(),
        );
        registry.register(
            "families_revoked",
            "Grants (refresh-token families) revoked",
            metrics.families_revoked.clone(),
        );
        registry.register("logins", "Successful logins", metrics.logins.clone());
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

    pub fn record_token(&self, kind: TokenKind) {
        let kind = match kind {
            TokenKind::Access => "access_token",
            TokenKind::Id => "id_token",
            TokenKind::Refresh => "refresh_token",
        };
        self.tokens_issued.get_or_create(&KindLabels { kind }).inc();
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

    pub fn record_fault(&self, kind: &'static str) {
        self.faults_injected
            .get_or_create(&KindLabels { kind })
            .inc();
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
        assert!(text.ends_with("# EOF\n"));
    }
}
