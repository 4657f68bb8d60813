//! The pass/fail gate: thresholds, their evaluation against a run's observations, the verdict.
//!
//! This is a library function on purpose: `loadgen run`, `loadgen report` and the `verification`
//! crate all judge a run the same way.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The limits a run must meet. [`Thresholds::default`] is the project's gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Thresholds {
    /// Lowest acceptable share of iterations that succeeded (dropped ones count as failed), 0..=1.
    pub min_success_rate: f64,
    /// Most responses with status 401 allowed.
    pub max_unauthorized: u64,
    /// p95 latency must be strictly below this, in milliseconds.
    pub p95_latency_below_ms: f64,
    /// p99 latency must be strictly below this, in milliseconds.
    pub p99_latency_below_ms: f64,
    /// Whether every check on every response must have passed.
    pub require_all_checks: bool,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            min_success_rate: 0.999,
            max_unauthorized: 0,
            p95_latency_below_ms: 300.0,
            p99_latency_below_ms: 500.0,
            require_all_checks: true,
        }
    }
}

/// The figures of a run that thresholds are judged on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThresholdObservations {
    /// Share of iterations that succeeded, 0..=1.
    pub success_rate: f64,
    /// Responses with status 401.
    pub unauthorized: u64,
    /// p95 latency in milliseconds.
    pub p95_latency_ms: f64,
    /// p99 latency in milliseconds.
    pub p99_latency_ms: f64,
    /// Check evaluations that failed, over all checks.
    pub failed_checks: u64,
}

/// Pass or fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every threshold held.
    Pass,
    /// At least one threshold did not hold (or the run could not be judged).
    Fail,
}

/// One threshold's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ThresholdOutcome {
    /// Stable identifier: `success_rate`, `unauthorized`, `p95_latency`, `p99_latency`, `checks`,
    /// and `complete` (present, failed, only when the run was cut short).
    pub name: String,
    /// The condition in words, for example `p95 latency < 300 ms`.
    pub condition: String,
    /// Observed value, in the unit of the condition (rates as 0..=1, latencies in ms).
    pub observed: f64,
    /// The limit it was compared with.
    pub limit: f64,
    /// Whether it held.
    pub verdict: Verdict,
}

/// All outcomes and the overall verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// One entry per active threshold, in a fixed order.
    pub outcomes: Vec<ThresholdOutcome>,
    /// Pass only if every outcome passed.
    pub verdict: Verdict,
}

fn verdict_of(passed: bool) -> Verdict {
    if passed { Verdict::Pass } else { Verdict::Fail }
}

/// Judges observations against thresholds. NaN observations fail.
pub fn evaluate(thresholds: &Thresholds, observed: &ThresholdObservations) -> Evaluation {
    let mut outcomes = vec![
        ThresholdOutcome {
            name: "success_rate".into(),
            condition: format!("success rate >= {}%", thresholds.min_success_rate * 100.0),
            observed: observed.success_rate,
            limit: thresholds.min_success_rate,
            verdict: verdict_of(observed.success_rate >= thresholds.min_success_rate),
        },
        ThresholdOutcome {
            name: "unauthorized".into(),
            condition: format!(
                "responses with status 401 <= {}",
                thresholds.max_unauthorized
            ),
            observed: observed.unauthorized as f64,
            limit: thresholds.max_unauthorized as f64,
            verdict: verdict_of(observed.unauthorized <= thresholds.max_unauthorized),
        },
        ThresholdOutcome {
            name: "p95_latency".into(),
            condition: format!("p95 latency < {} ms", thresholds.p95_latency_below_ms),
            observed: observed.p95_latency_ms,
            limit: thresholds.p95_latency_below_ms,
            verdict: verdict_of(observed.p95_latency_ms < thresholds.p95_latency_below_ms),
        },
        ThresholdOutcome {
            name: "p99_latency".into(),
            condition: format!("p99 latency < {} ms", thresholds.p99_latency_below_ms),
            observed: observed.p99_latency_ms,
            limit: thresholds.p99_latency_below_ms,
            verdict: verdict_of(observed.p99_latency_ms < thresholds.p99_latency_below_ms),
        },
    ];
    if thresholds.require_all_checks {
        outcomes.push(ThresholdOutcome {
            name: "checks".into(),
            condition: "failed checks == 0".into(),
            observed: observed.failed_checks as f64,
            limit: 0.0,
            verdict: verdict_of(observed.failed_checks == 0),
        });
    }
    let verdict = verdict_of(
        outcomes
            .iter()
            .all(|outcome| outcome.verdict == Verdict::Pass),
    );
    Evaluation { outcomes, verdict }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> ThresholdObservations {
        ThresholdObservations {
            success_rate: 1.0,
            unauthorized: 0,
            p95_latency_ms: 12.0,
            p99_latency_ms: 30.0,
            failed_checks: 0,
        }
    }

    #[test]
    fn a_good_run_passes_the_gate() {
        let evaluation = evaluate(&Thresholds::default(), &good());
        assert_eq!(evaluation.verdict, Verdict::Pass);
        assert_eq!(evaluation.outcomes.len(), 5);
    }

    #[test]
    fn each_threshold_can_fail_the_run() {
        let thresholds = Thresholds::default();
        let cases = [
            (
                "success_rate",
                ThresholdObservations {
                    success_rate: 0.998,
                    ..good()
                },
            ),
            (
                "unauthorized",
                ThresholdObservations {
                    unauthorized: 1,
                    ..good()
                },
            ),
            (
                "p95_latency",
                ThresholdObservations {
                    p95_latency_ms: 300.0,
                    ..good()
                },
            ),
            (
                "p99_latency",
                ThresholdObservations {
                    p99_latency_ms: 500.0,
                    ..good()
                },
            ),
            (
                "checks",
                ThresholdObservations {
                    failed_checks: 1,
                    ..good()
                },
            ),
            (
                "p95_latency",
                ThresholdObservations {
                    p95_latency_ms: f64::NAN,
                    ..good()
                },
            ),
        ];
        for (name, observed) in cases {
            let evaluation = evaluate(&thresholds, &observed);
            assert_eq!(evaluation.verdict, Verdict::Fail, "{name}");
            let failed: Vec<_> = evaluation
                .outcomes
                .iter()
                .filter(|outcome| outcome.verdict == Verdict::Fail)
                .map(|outcome| outcome.name.as_str())
                .collect();
            assert_eq!(failed, vec![name]);
        }
    }

    #[test]
    fn success_rate_boundary_is_inclusive() {
        let observed = ThresholdObservations {
            success_rate: 0.999,
            ..good()
        };
        assert_eq!(
            evaluate(&Thresholds::default(), &observed).verdict,
            Verdict::Pass
        );
    }

    #[test]
    fn checks_can_be_waived() {
        let thresholds = Thresholds {
            require_all_checks: false,
            ..Thresholds::default()
        };
        let observed = ThresholdObservations {
            failed_checks: 5,
            ..good()
        };
        let evaluation = evaluate(&thresholds, &observed);
        assert_eq!(evaluation.verdict, Verdict::Pass);
        assert_eq!(evaluation.outcomes.len(), 4);
    }
}
