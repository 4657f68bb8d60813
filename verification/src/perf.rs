//! Performance tracking: the run's key figures in github-action-benchmark's
//! `customSmallerIsBetter` format, appended to a history and compared with a committed baseline.
//!
//! Tolerances differ by kind of figure: wall-clock times on a shared 2-core machine swing by tens
//! of percent from run to run, so they only flag a doubling; ratios of two lines measured in one
//! run cancel most of the machine's drift, so they are held tighter. Not as tight as one would
//! like: criterion measures the lines one after the other, and two full runs here moved the
//! RS256 validate ratio from 1.34x to 1.62x with no code change, so 25 % is the tightest
//! tolerance that does not cry wolf.

use serde::{Deserialize, Serialize};

use crate::summary::Summary;

/// One figure, as github-action-benchmark's `customSmallerIsBetter` tool reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    pub name: String,
    pub unit: String,
    pub value: f64,
}

/// How much a figure may grow over the baseline before it is called a regression.
pub fn tolerance(unit: &str) -> f64 {
    match unit {
        "ratio" => 0.25,
        _ => 1.00,
    }
}

/// The figures of a run: per test p50/p95/p99 of the gated latency, named with the test's load profile so a
/// quick run is never compared with a full one, and per bench mock-idp's time and its ratio to
/// the raw primitive.
pub fn figures(summary: &Summary) -> Vec<Figure> {
    let mut figures = Vec::new();
    for test in &summary.tests {
        for (percentile, value) in [
            ("p50", test.p50_ms),
            ("p95", test.p95_ms),
            ("p99", test.p99_ms),
        ] {
            figures.push(Figure {
                // Named by what was measured (the gated latency), so a figure is never compared
                // with a baseline of another kind of latency.
                name: format!(
                    "{} {} {percentile} {} ({})",
                    test.test_id, test.scenario, test.latency_basis, test.profile
                ),
                unit: "ms".into(),
                value,
            });
        }
    }
    for bench in &summary.benches {
        figures.push(Figure {
            name: format!("{} {} (mock-idp)", bench.algorithm, bench.operation),
            unit: "ns".into(),
            value: bench.mock_idp_ns,
        });
        figures.push(Figure {
            name: format!(
                "{} {} ratio to raw aws-lc-rs",
                bench.algorithm, bench.operation
            ),
            unit: "ratio".into(),
            value: bench.ratio,
        });
    }
    for iteration in &summary.iterations {
        figures.push(Figure {
            name: format!("{} iteration client side (loadgen)", iteration.test),
            unit: "ns".into(),
            value: iteration.loadgen_ns,
        });
        // The whole over its two signature checks, measured in one run: loadgen's own share,
        // held as tightly as the other ratios.
        figures.push(Figure {
            name: format!(
                "{} iteration client side ratio to its signature checks",
                iteration.test
            ),
            unit: "ratio".into(),
            value: iteration.ratio(),
        });
    }
    figures
}

/// A figure beside its baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub name: String,
    pub unit: String,
    pub baseline: Option<f64>,
    pub current: f64,
    /// Relative change, `current / baseline - 1`.
    pub change: Option<f64>,
    pub tolerance: f64,
    pub regression: bool,
}

impl Comparison {
    pub fn describe(&self) -> String {
        match (self.baseline, self.change) {
            (Some(baseline), Some(change)) => format!(
                "{:<48} {:>12.3} {:<5} baseline {:>12.3}  {:+7.1} %  (tolerance +{:.0} %){}",
                self.name,
                self.current,
                self.unit,
                baseline,
                change * 100.0,
                self.tolerance * 100.0,
                if self.regression { "  REGRESSION" } else { "" }
            ),
            _ => format!(
                "{:<48} {:>12.3} {:<5} (no baseline)",
                self.name, self.current, self.unit
            ),
        }
    }
}

/// Compares each current figure with the baseline figure of the same name.
pub fn compare(current: &[Figure], baseline: &[Figure]) -> Vec<Comparison> {
    current
        .iter()
        .map(|figure| {
            let base = baseline
                .iter()
                .find(|known| known.name == figure.name && known.unit == figure.unit)
                .map(|known| known.value)
                .filter(|value| *value > 0.0);
            let tolerance = tolerance(&figure.unit);
            let change = base.map(|base| figure.value / base - 1.0);
            Comparison {
                name: figure.name.clone(),
                unit: figure.unit.clone(),
                baseline: base,
                current: figure.value,
                change,
                tolerance,
                regression: change.is_some_and(|change| change > tolerance),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::{Benches, IterationRow};

    fn figure(name: &str, unit: &str, value: f64) -> Figure {
        Figure {
            name: name.into(),
            unit: unit.into(),
            value,
        }
    }

    #[test]
    fn ratios_are_held_tighter_than_times() {
        let baseline = [
            figure("sign ratio", "ratio", 1.00),
            figure("p99", "ms", 2.0),
        ];
        let current = [
            figure("sign ratio", "ratio", 1.30),
            figure("p99", "ms", 3.9),
            figure("new", "ms", 1.0),
        ];
        let comparisons = compare(&current, &baseline);
        assert!(
            comparisons[0].regression,
            "a 30 % worse ratio is a regression"
        );
        let within = compare(&[figure("sign ratio", "ratio", 1.20)], &baseline);
        assert!(!within[0].regression, "20 % is within run-to-run noise");
        assert!(
            !comparisons[1].regression,
            "a 95 % slower wall-clock figure is noise"
        );
        assert!(!comparisons[2].regression);
        assert_eq!(comparisons[2].baseline, None);
        let doubled = compare(&[figure("p99", "ms", 4.1)], &baseline);
        assert!(doubled[0].regression);
    }

    #[test]
    fn a_quick_run_is_never_compared_with_a_full_one() {
        let row = |steady_s: f64, p99_ms: f64| crate::summary::TestRow {
            test_id: "TEST 1".into(),
            scenario: "token-code".into(),
            profile: crate::summary::describe_profile(&loadgen::plan::schedule::LoadProfile {
                rate_per_s: 300.0,
                ramp_up_s: 2.0,
                steady_s,
                ramp_down_s: 2.0,
            }),
            requests: 1,
            success_rate: 1.0,
            unauthorized: 0,
            latency_basis: "iteration latency".into(),
            p50_ms: 1.0,
            p95_ms: 1.0,
            p99_ms,
            request_p99_ms: 1.0,
            achieved_rate_per_s: 300.0,
            reconciled: None,
            passed: true,
            failures: Vec::new(),
            skipped_checks: Vec::new(),
        };
        let summary = |row| Summary::new("run".into(), vec![row], Benches::default(), vec![]);
        let full = figures(&summary(row(120.0, 1.0)));
        let quick = figures(&summary(row(10.0, 9.0)));
        assert!(
            full.iter().any(|figure| figure.name
                == "TEST 1 token-code p99 iteration latency (300/s, 2+120+2 s)")
        );
        let comparisons = compare(&quick, &full);
        assert!(
            comparisons
                .iter()
                .all(|comparison| comparison.baseline.is_none())
        );
        let again = compare(&figures(&summary(row(10.0, 30.0))), &quick);
        assert!(again.iter().any(|comparison| comparison.regression));
    }

    #[test]
    fn an_iteration_bench_gives_loadgen_s_time_and_its_ratio_to_the_signatures() {
        let iterations = vec![IterationRow {
            test: "TEST 2".into(),
            loadgen_ns: 46_000.0,
            signatures_ns: 40_000.0,
        }];
        let summary = Summary::new(
            "run".into(),
            Vec::new(),
            Benches {
                signing: Vec::new(),
                iterations,
            },
            Vec::new(),
        );
        assert_eq!(
            figures(&summary),
            [
                figure("TEST 2 iteration client side (loadgen)", "ns", 46_000.0),
                figure(
                    "TEST 2 iteration client side ratio to its signature checks",
                    "ratio",
                    1.15
                ),
            ]
        );
        assert!(summary.markdown().contains("| TEST 2 |"));
    }
}
