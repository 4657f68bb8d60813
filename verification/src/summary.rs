//! The run's one summary: per test (requests, success rate, 401s, p50/p95/p99, achieved rate,
//! reconciliation, verdict) and per bench (time and ratio to the raw primitive), as a terminal
//! table, Markdown and JSON.

use serde::{Deserialize, Serialize};

use crate::gate::GateReport;
use crate::metrics::Reconciliation;
pub use benches::{BenchRow, IterationRow};

/// The benchmark figures a summary carries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Benches {
    /// mock-idp's signing and validation beside the raw primitive.
    pub signing: Vec<BenchRow>,
    /// loadgen's client side of an iteration beside its signature checks.
    pub iterations: Vec<IterationRow>,
}
use loadgen::RunResult;

/// One test's line of the summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestRow {
    pub test_id: String,
    pub scenario: String,
    /// The load profile run, `300/s, 10+120+10 s` (ramp up, steady, ramp down): figures of
    /// different profiles are different figures.
    #[serde(default)]
    pub profile: String,
    pub requests: u64,
    pub success_rate: f64,
    pub unauthorized: u64,
    /// What p50, p95 and p99 measure: the latency the gate judged (`iteration latency`: whole
    /// iterations from their intended start; `latency`: requests, in results before format 3).
    #[serde(default = "requests_basis")]
    pub latency_basis: String,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// p99 of each request's latency, beside the gated figures: where an iteration makes several
    /// requests (TEST 3), this tells one slow endpoint from a slow flow.
    #[serde(default)]
    pub request_p99_ms: f64,
    pub achieved_rate_per_s: f64,
    /// `None` when the run was not reconciled (an external IdP without mock-idp's counters).
    pub reconciled: Option<bool>,
    pub passed: bool,
    /// What failed, in words.
    pub failures: Vec<String>,
    /// Checks turned off for the run (`--skip-check`): not made, so not shown as passed.
    #[serde(default)]
    pub skipped_checks: Vec<String>,
}

impl TestRow {
    pub fn new(
        result: &RunResult,
        report: &GateReport,
        reconciliations: Option<&[Reconciliation]>,
    ) -> Self {
        let mut failures = report.failures();
        let reconciled = reconciliations.map(|checks| {
            for check in checks.iter().filter(|check| !check.agrees()) {
                failures.push(check.describe());
            }
            checks.iter().all(Reconciliation::agrees)
        });
        let gated = result.gated_latency_summary();
        Self {
            test_id: result.test_id.clone(),
            scenario: result.scenario.clone(),
            profile: describe_run(result),
            requests: result.requests.total,
            success_rate: result.success_rate,
            unauthorized: result.requests.unauthorized,
            latency_basis: result.gated_latency.describe().to_owned(),
            p50_ms: gated.p50_ms,
            p95_ms: gated.p95_ms,
            p99_ms: gated.p99_ms,
            request_p99_ms: result.latency.p99_ms,
            achieved_rate_per_s: result.steady_state_achieved_rate_per_s,
            reconciled,
            passed: report.passed() && reconciled != Some(false),
            failures,
            skipped_checks: result.skipped_checks.clone(),
        }
    }
}

/// How a summary written before the basis was recorded measured p50, p95 and p99: requests.
fn requests_basis() -> String {
    loadgen::results::thresholds::LatencyBasis::Requests
        .describe()
        .to_owned()
}

/// The profile and, when not plain HTTP/1.1, how the run connected: `300/s, 2+10+2 s, TLS
/// HTTP/2`. Figures of runs that connected differently are different figures.
fn describe_run(result: &RunResult) -> String {
    let profile = describe_profile(&result.load_profile.profile);
    let Some(connections) = &result.connections else {
        return profile;
    };
    let tls = connections.tls_full_handshakes + connections.tls_resumed_handshakes > 0;
    match (tls, connections.http_version.as_str()) {
        (false, "HTTP/1.1") => profile,
        (false, version) => format!("{profile}, {version}"),
        (true, version) => format!("{profile}, TLS {version}"),
    }
}

/// `300/s, 10+120+10 s`: the rate, then ramp up, steady and ramp down.
pub fn describe_profile(profile: &loadgen::plan::schedule::LoadProfile) -> String {
    format!(
        "{}/s, {}+{}+{} s",
        profile.rate_per_s, profile.ramp_up_s, profile.steady_s, profile.ramp_down_s
    )
}

/// The whole summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub run_id: String,
    pub tests: Vec<TestRow>,
    pub benches: Vec<BenchRow>,
    /// loadgen's client side of an iteration per test (absent in older summaries).
    #[serde(default)]
    pub iterations: Vec<IterationRow>,
    /// Problems outside any one test (a snapshot mismatch, a step that failed).
    pub problems: Vec<String>,
    pub passed: bool,
}

impl Summary {
    pub fn new(
        run_id: String,
        tests: Vec<TestRow>,
        benches: Benches,
        problems: Vec<String>,
    ) -> Self {
        let passed = problems.is_empty() && tests.iter().all(|test| test.passed);
        Self {
            run_id,
            tests,
            benches: benches.signing,
            iterations: benches.iterations,
            problems,
            passed,
        }
    }

    /// The summary as Markdown tables (what is also printed).
    pub fn markdown(&self) -> String {
        let mut text = format!("# Load-test pipeline run {}\n\n", self.run_id);
        text.push_str(&format!(
            "Verdict: **{}**\n\n",
            if self.passed { "PASS" } else { "FAIL" }
        ));
        if !self.tests.is_empty() {
            text.push_str(
                "| test | scenario | requests | success | 401s | gated latency | p50 ms | p95 ms | p99 ms | request p99 ms | rate/s | reconciled | verdict |\n\
                 | --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |\n",
            );
            for test in &self.tests {
                text.push_str(&format!(
                    "| {} | {} | {} | {:.3} % | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {} |\n",
                    test.test_id,
                    test.scenario,
                    test.requests,
                    test.success_rate * 100.0,
                    test.unauthorized,
                    test.latency_basis,
                    test.p50_ms,
                    test.p95_ms,
                    test.p99_ms,
                    test.request_p99_ms,
                    test.achieved_rate_per_s,
                    match test.reconciled {
                        Some(true) => "yes",
                        Some(false) => "NO",
                        None => "n/a",
                    },
                    if test.passed { "pass" } else { "FAIL" },
                ));
            }
            text.push('\n');
        }
        if !self.benches.is_empty() {
            text.push_str(
                "| bench | mock-idp | raw aws-lc-rs | ratio |\n| --- | ---: | ---: | ---: |\n",
            );
            for bench in &self.benches {
                text.push_str(&format!(
                    "| {} {} | {} | {} | {:.3}x |\n",
                    bench.algorithm,
                    bench.operation,
                    human_ns(bench.mock_idp_ns),
                    human_ns(bench.raw_ns),
                    bench.ratio
                ));
            }
            text.push('\n');
        }
        if !self.iterations.is_empty() {
            text.push_str(
                "| iteration, client side | loadgen | its 2 signatures (raw) | loadgen's own |\n\
                 | --- | ---: | ---: | ---: |\n",
            );
            for iteration in &self.iterations {
                text.push_str(&format!(
                    "| {} | {} | {} | {} |\n",
                    iteration.test,
                    human_ns(iteration.loadgen_ns),
                    human_ns(iteration.signatures_ns),
                    human_ns(iteration.own_ns())
                ));
            }
            text.push('\n');
        }
        for test in self
            .tests
            .iter()
            .filter(|test| !test.skipped_checks.is_empty())
        {
            text.push_str(&format!(
                "{}: checks skipped (--skip-check), not made: {}\n\n",
                test.test_id,
                test.skipped_checks.join(", ")
            ));
        }
        let failures: Vec<String> = self
            .tests
            .iter()
            .flat_map(|test| {
                test.failures
                    .iter()
                    .map(move |failure| format!("{}: {failure}", test.test_id))
            })
            .chain(self.problems.iter().cloned())
            .collect();
        if !failures.is_empty() {
            text.push_str("Failures:\n\n");
            for failure in failures {
                text.push_str(&format!("- {failure}\n"));
            }
        }
        text
    }
}

fn human_ns(nanoseconds: f64) -> String {
    if nanoseconds >= 1_000_000.0 {
        format!("{:.2} ms", nanoseconds / 1_000_000.0)
    } else if nanoseconds >= 1_000.0 {
        format!("{:.2} us", nanoseconds / 1_000.0)
    } else {
        format!("{nanoseconds:.0} ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_test_or_problem_fails_the_summary() {
        let row = TestRow {
            test_id: "TEST 1".into(),
            scenario: "token-code".into(),
            profile: "300/s, 2+10+2 s".into(),
            requests: 36_000,
            success_rate: 1.0,
            unauthorized: 0,
            latency_basis: "iteration latency".into(),
            p50_ms: 1.0,
            p95_ms: 2.0,
            p99_ms: 3.0,
            request_p99_ms: 2.5,
            achieved_rate_per_s: 300.0,
            reconciled: Some(true),
            passed: true,
            failures: vec![],
            skipped_checks: vec![],
        };
        let summary = Summary::new("r".into(), vec![row.clone()], Benches::default(), vec![]);
        let skipping = TestRow {
            skipped_checks: vec!["id_token_nonce".into()],
            ..row.clone()
        };
        assert!(
            Summary::new("r".into(), vec![skipping], Benches::default(), vec![])
                .markdown()
                .contains("TEST 1: checks skipped (--skip-check), not made: id_token_nonce")
        );
        assert!(summary.passed);
        assert!(
            summary
                .markdown()
                .contains("| TEST 1 | token-code | 36000 | 100.000 % | 0 | iteration latency | 1.00 | 2.00 | 3.00 | 2.50 |")
        );
        let failing = TestRow {
            passed: false,
            failures: vec!["unauthorized: responses with status 401 <= 0 (observed 3)".into()],
            ..row.clone()
        };
        let summary = Summary::new(
            "r".into(),
            vec![row.clone(), failing],
            Benches::default(),
            vec![],
        );
        assert!(!summary.passed);
        assert!(summary.markdown().contains("- TEST 1: unauthorized"));
        let summary = Summary::new(
            "r".into(),
            vec![row],
            Benches::default(),
            vec!["snapshot mismatch".into()],
        );
        assert!(!summary.passed);
    }

    #[test]
    fn nanoseconds_read_humanly() {
        assert_eq!(human_ns(250.0), "250 ns");
        assert_eq!(human_ns(26_600.0), "26.60 us");
        assert_eq!(human_ns(634_000.0), "634.00 us");
        assert_eq!(human_ns(1_500_000.0), "1.50 ms");
    }
}
