//! The gate: thresholds, the observations of a run they are judged on, and the one function that
//! judges them.
//!
//! `loadgen run`, `loadgen report` and the `verification` crate's `gate check` all call
//! [`evaluate`] (through [`crate::RunResult::judge`]), so a run cannot pass in one place and fail
//! in another.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A share (a success rate) held exactly, in parts per million.
///
/// Shares come from three places: a percent typed on a command line (`99.9`), a fraction in a
/// result file (`0.999`), and a count of successes over a count of iterations. As floats these
/// disagree (`99.9 / 100.0` is `0.9990000000000001`, so exactly 99.9 % failed one judge and passed
/// another); as whole parts per million they compare exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartsPerMillion(u32);

const ONE_MILLION: u32 = 1_000_000;

impl PartsPerMillion {
    /// All of it: 100 %.
    pub const ALL: PartsPerMillion = PartsPerMillion(ONE_MILLION);

    /// `parts` millionths, at most one million.
    pub const fn new(parts: u32) -> Option<Self> {
        if parts <= ONE_MILLION {
            Some(Self(parts))
        } else {
            None
        }
    }

    /// The nearest whole part per million of a fraction in `0..=1`.
    pub fn from_fraction(fraction: f64) -> Result<Self, ShareError> {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(ShareError::OutOfRange(fraction.to_string()));
        }
        // In range, so the product fits a u32.
        Ok(Self((fraction * f64::from(ONE_MILLION)).round() as u32))
    }

    /// The share as a fraction in `0..=1` (for display and the result file).
    pub fn as_fraction(self) -> f64 {
        f64::from(self.0) / f64::from(ONE_MILLION)
    }

    /// Whether `part` out of `whole` reaches this share, computed exactly. Nothing out of nothing
    /// reaches no share above zero: a run that scheduled no iteration has shown nothing.
    pub fn is_reached_by(self, part: u64, whole: u64) -> bool {
        if whole == 0 {
            return self.0 == 0;
        }
        u128::from(part) * u128::from(ONE_MILLION) >= u128::from(self.0) * u128::from(whole)
    }
}

impl fmt::Display for PartsPerMillion {
    /// As a percent with the fewest decimals that show it exactly: `99.9%`, `100%`, `99.9995%`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 10_000;
        let fraction = self.0 % 10_000;
        if fraction == 0 {
            return write!(formatter, "{whole}%");
        }
        let digits = format!("{fraction:04}");
        write!(formatter, "{whole}.{}%", digits.trim_end_matches('0'))
    }
}

/// Why a share could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    /// Not a decimal number.
    #[error("'{0}' is not a percentage; write a number such as 99.9")]
    NotANumber(String),
    /// Outside 0-100 %.
    #[error("'{0}' is outside 0 to 100 percent")]
    OutOfRange(String),
    /// More precision than a part per million.
    #[error("'{0}' has more than four decimals; a success rate is kept to 0.0001 percent")]
    TooPrecise(String),
}

impl FromStr for PartsPerMillion {
    type Err = ShareError;

    /// Reads a percent written in decimal (`99.9`, `99.95%`, `100`) without going through a float,
    /// so the share is exactly the one written.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let number = trimmed.strip_suffix('%').unwrap_or(trimmed).trim();
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
            return Err(ShareError::NotANumber(text.to_owned()));
        }
        if fraction.len() > 4 {
            return Err(ShareError::TooPrecise(text.to_owned()));
        }
        let whole: u32 = whole
            .parse()
            .map_err(|_| ShareError::OutOfRange(text.to_owned()))?;
        let fraction_parts: u32 = format!("{fraction:0<4}")
            .parse()
            .map_err(|_| ShareError::NotANumber(text.to_owned()))?;
        whole
            .checked_mul(10_000)
            .and_then(|parts| parts.checked_add(fraction_parts))
            .and_then(Self::new)
            .ok_or_else(|| ShareError::OutOfRange(text.to_owned()))
    }
}

/// Serde for a [`PartsPerMillion`] written as a fraction in `0..=1`, as result files hold it.
mod as_fraction {
    use super::*;

    pub fn serialize<S: Serializer>(
        share: &PartsPerMillion,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        share.as_fraction().serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<PartsPerMillion, D::Error> {
        let fraction = f64::deserialize(deserializer)?;
        PartsPerMillion::from_fraction(fraction).map_err(serde::de::Error::custom)
    }
}

/// The limits a run must meet. [`Thresholds::default`] is the project's gate.
///
/// A field missing from a file takes its default, so result files written before a threshold
/// existed still load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Thresholds {
    /// Lowest acceptable share of iterations that succeeded (dropped ones count as failed), 0..=1.
    #[serde(with = "as_fraction")]
    #[schemars(with = "f64")]
    pub min_success_rate: PartsPerMillion,
    /// Most responses with status 401 allowed.
    pub max_unauthorized: u64,
    /// p95 latency must be strictly below this, in milliseconds.
    pub p95_latency_below_ms: f64,
    /// p99 latency must be strictly below this, in milliseconds.
    pub p99_latency_below_ms: f64,
    /// Whether every check on every answer that claimed success must have passed.
    pub require_all_checks: bool,
}

/// The specification's success rate, 99.9 %.
const SPEC_MIN_SUCCESS: PartsPerMillion = PartsPerMillion(999_000);

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            min_success_rate: SPEC_MIN_SUCCESS,
            max_unauthorized: 0,
            p95_latency_below_ms: 300.0,
            p99_latency_below_ms: 500.0,
            require_all_checks: true,
        }
    }
}

/// The gate's flags on a command line; their defaults are [`Thresholds::default`].
#[derive(Debug, Clone, clap::Args)]
pub struct ThresholdArgs {
    /// Lowest acceptable success rate, in percent (exact to 0.0001).
    #[arg(long, env = "LOADGEN_MIN_SUCCESS_RATE", default_value = "99.9")]
    pub min_success_rate: PartsPerMillion,
    /// Most 401 responses allowed.
    #[arg(long, env = "LOADGEN_MAX_UNAUTHORIZED", default_value_t = 0)]
    pub max_unauthorized: u64,
    /// p95 latency must be below this.
    #[arg(long, env = "LOADGEN_P95", default_value = "300ms", value_parser = humantime::parse_duration)]
    pub p95: std::time::Duration,
    /// p99 latency must be below this.
    #[arg(long, env = "LOADGEN_P99", default_value = "500ms", value_parser = humantime::parse_duration)]
    pub p99: std::time::Duration,
    /// Do not fail the run on failed checks (iterations with a failed check still fail).
    #[arg(long, env = "LOADGEN_ALLOW_FAILED_CHECKS")]
    pub allow_failed_checks: bool,
}

impl ThresholdArgs {
    /// The thresholds these flags ask for.
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            min_success_rate: self.min_success_rate,
            max_unauthorized: self.max_unauthorized,
            p95_latency_below_ms: self.p95.as_secs_f64() * 1000.0,
            p99_latency_below_ms: self.p99.as_secs_f64() * 1000.0,
            require_all_checks: !self.allow_failed_checks,
        }
    }
}

/// Which latency the p95 and p99 thresholds judge.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum LatencyBasis {
    /// Each request's latency from its own intended start: how results before format 3 were
    /// judged, so that they are judged again the same way.
    #[default]
    Requests,
    /// Each iteration's latency from its intended start to its end, loadgen's own check
    /// requests (introspection) left out, with every dropped iteration at no less than the
    /// timeout: what a user of the provider waits for, however many requests an iteration makes.
    Iterations,
}

impl LatencyBasis {
    /// How the basis is named in a threshold's condition.
    pub fn describe(self) -> &'static str {
        match self {
            LatencyBasis::Requests => "latency",
            LatencyBasis::Iterations => "iteration latency",
        }
    }
}

/// The figures of a run that thresholds are judged on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observations {
    /// Iterations that ran and succeeded (every request answered as expected, every check passed).
    pub iterations_succeeded: u64,
    /// Iterations the schedule made due (dropped and failed ones included).
    pub iterations_scheduled: u64,
    /// Responses with status 401.
    pub unauthorized: u64,
    /// Which latency the two percentiles below are of.
    pub latency_basis: LatencyBasis,
    /// p95 latency in milliseconds, `None` when nothing was measured.
    pub p95_latency_ms: Option<f64>,
    /// p99 latency in milliseconds, `None` when nothing was measured.
    pub p99_latency_ms: Option<f64>,
    /// Checks that failed on answers that claimed success (an error status is a failed request,
    /// counted by the success rate, not a failed check).
    pub failed_checks: u64,
    /// Whether the run finished its whole schedule.
    pub complete: bool,
}

impl Observations {
    /// Share of scheduled iterations that succeeded, 0..=1 (0 when none was scheduled).
    pub fn success_rate(&self) -> f64 {
        if self.iterations_scheduled == 0 {
            0.0
        } else {
            self.iterations_succeeded as f64 / self.iterations_scheduled as f64
        }
    }
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

impl Verdict {
    /// Pass when `held`.
    pub fn of(held: bool) -> Self {
        if held { Verdict::Pass } else { Verdict::Fail }
    }

    /// `PASS` or `FAIL`, as summaries print it.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
        }
    }
}

/// Which threshold an outcome is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdName {
    /// Share of iterations that succeeded.
    SuccessRate,
    /// Responses with status 401.
    Unauthorized,
    /// p95 latency.
    P95Latency,
    /// p99 latency.
    P99Latency,
    /// Failed checks on answers that claimed success.
    Checks,
    /// The run finished its schedule.
    Complete,
}

/// One threshold's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ThresholdOutcome {
    /// Which threshold.
    pub name: ThresholdName,
    /// The condition in words, for example `p95 latency < 300 ms`.
    pub condition: String,
    /// Observed value, in the unit of the condition (rates as 0..=1, latencies in ms, `complete`
    /// as 1 or 0); `null` when nothing was measured.
    pub observed: Option<f64>,
    /// The limit it was compared with.
    pub limit: f64,
    /// Whether it held.
    pub verdict: Verdict,
}

impl ThresholdOutcome {
    /// A sentence saying what did not hold and what was observed, when this outcome failed.
    pub fn failure(&self) -> Option<String> {
        (self.verdict == Verdict::Fail).then(|| {
            format!(
                "{} did not hold (observed {})",
                self.condition,
                self.observed_text()
            )
        })
    }

    /// The observed value in the threshold's unit, for people: `99.900%`, `12.31 ms`, `3`, `yes`.
    pub fn observed_text(&self) -> String {
        let Some(observed) = self.observed else {
            return "nothing measured".to_owned();
        };
        match self.name {
            ThresholdName::SuccessRate => format!("{:.3}%", observed * 100.0),
            ThresholdName::P95Latency | ThresholdName::P99Latency => format!("{observed:.2} ms"),
            ThresholdName::Unauthorized | ThresholdName::Checks => format!("{observed:.0}"),
            ThresholdName::Complete => if observed >= 1.0 { "yes" } else { "no" }.to_owned(),
        }
    }
}

/// All outcomes and the overall verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// One entry per active threshold, in a fixed order.
    pub outcomes: Vec<ThresholdOutcome>,
    /// Pass only if every outcome passed.
    pub verdict: Verdict,
}

impl Evaluation {
    /// The outcomes that failed, each as a sentence with its observed value.
    pub fn failures(&self) -> Vec<String> {
        self.outcomes
            .iter()
            .filter_map(ThresholdOutcome::failure)
            .collect()
    }
}

/// Judges observations against thresholds; the only place a verdict is made.
pub fn evaluate(thresholds: &Thresholds, observed: &Observations) -> Evaluation {
    let observed_basis = observed.latency_basis;
    let latency = |name, percentile: &str, observed: Option<f64>, limit: f64| ThresholdOutcome {
        name,
        condition: format!("{percentile} {} < {limit} ms", observed_basis.describe()),
        observed,
        limit,
        // Nothing measured shows nothing about latency, so it cannot pass.
        verdict: Verdict::of(observed.is_some_and(|value| value < limit)),
    };
    let mut outcomes = vec![
        ThresholdOutcome {
            name: ThresholdName::SuccessRate,
            condition: format!("success rate >= {}", thresholds.min_success_rate),
            observed: Some(observed.success_rate()),
            limit: thresholds.min_success_rate.as_fraction(),
            verdict: Verdict::of(
                thresholds
                    .min_success_rate
                    .is_reached_by(observed.iterations_succeeded, observed.iterations_scheduled),
            ),
        },
        ThresholdOutcome {
            name: ThresholdName::Unauthorized,
            condition: format!(
                "responses with status 401 <= {}",
                thresholds.max_unauthorized
            ),
            observed: Some(observed.unauthorized as f64),
            limit: thresholds.max_unauthorized as f64,
            verdict: Verdict::of(observed.unauthorized <= thresholds.max_unauthorized),
        },
        latency(
            ThresholdName::P95Latency,
            "p95",
            observed.p95_latency_ms,
            thresholds.p95_latency_below_ms,
        ),
        latency(
            ThresholdName::P99Latency,
            "p99",
            observed.p99_latency_ms,
            thresholds.p99_latency_below_ms,
        ),
    ];
    if thresholds.require_all_checks {
        outcomes.push(ThresholdOutcome {
            name: ThresholdName::Checks,
            condition: "failed checks on successful answers == 0".into(),
            observed: Some(observed.failed_checks as f64),
            limit: 0.0,
            verdict: Verdict::of(observed.failed_checks == 0),
        });
    }
    // A run cut short has not shown that the load held for the whole profile.
    outcomes.push(ThresholdOutcome {
        name: ThresholdName::Complete,
        condition: "the run finished its whole schedule".into(),
        observed: Some(if observed.complete { 1.0 } else { 0.0 }),
        limit: 1.0,
        verdict: Verdict::of(observed.complete),
    });
    let verdict = Verdict::of(
        outcomes
            .iter()
            .all(|outcome| outcome.verdict == Verdict::Pass),
    );
    Evaluation { outcomes, verdict }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn good() -> Observations {
        Observations {
            latency_basis: LatencyBasis::Iterations,
            iterations_succeeded: 36_000,
            iterations_scheduled: 36_000,
            unauthorized: 0,
            p95_latency_ms: Some(12.0),
            p99_latency_ms: Some(30.0),
            failed_checks: 0,
            complete: true,
        }
    }

    fn failed_names(evaluation: &Evaluation) -> Vec<ThresholdName> {
        evaluation
            .outcomes
            .iter()
            .filter(|outcome| outcome.verdict == Verdict::Fail)
            .map(|outcome| outcome.name)
            .collect()
    }

    #[test]
    fn a_good_run_passes_the_gate() {
        let evaluation = evaluate(&Thresholds::default(), &good());
        assert_eq!(evaluation.verdict, Verdict::Pass);
        assert_eq!(evaluation.outcomes.len(), 6);
        assert!(evaluation.failures().is_empty());
    }

    #[test]
    fn each_threshold_can_fail_the_run() {
        let cases = [
            (
                ThresholdName::SuccessRate,
                Observations {
                    iterations_succeeded: 35_963,
                    ..good()
                },
            ),
            (
                ThresholdName::Unauthorized,
                Observations {
                    unauthorized: 1,
                    ..good()
                },
            ),
            (
                ThresholdName::P95Latency,
                Observations {
                    p95_latency_ms: Some(300.0),
                    ..good()
                },
            ),
            (
                ThresholdName::P99Latency,
                Observations {
                    p99_latency_ms: Some(500.0),
                    ..good()
                },
            ),
            (
                ThresholdName::Checks,
                Observations {
                    failed_checks: 1,
                    ..good()
                },
            ),
            (
                ThresholdName::P95Latency,
                Observations {
                    p95_latency_ms: None,
                    ..good()
                },
            ),
            (
                ThresholdName::Complete,
                Observations {
                    complete: false,
                    ..good()
                },
            ),
        ];
        for (name, observed) in cases {
            let evaluation = evaluate(&Thresholds::default(), &observed);
            assert_eq!(evaluation.verdict, Verdict::Fail, "{name:?}");
            assert_eq!(failed_names(&evaluation), vec![name]);
            assert_eq!(evaluation.failures().len(), 1);
        }
    }

    #[test]
    fn exactly_the_minimum_success_rate_passes() {
        // 35,964 of 36,000 is exactly 99.9 %: the case that failed `loadgen run` and passed `gate`.
        let exactly = Observations {
            iterations_succeeded: 35_964,
            ..good()
        };
        assert_eq!(
            evaluate(&Thresholds::default(), &exactly).verdict,
            Verdict::Pass
        );
        let from_flag: PartsPerMillion = "99.9".parse().unwrap();
        let from_file = PartsPerMillion::from_fraction(99.9 / 100.0).unwrap();
        assert_eq!(from_flag, Thresholds::default().min_success_rate);
        assert_eq!(from_file, Thresholds::default().min_success_rate);
    }

    #[test]
    fn no_scheduled_iteration_fails_the_success_rate() {
        let nothing = Observations {
            iterations_succeeded: 0,
            iterations_scheduled: 0,
            ..good()
        };
        assert_eq!(
            failed_names(&evaluate(&Thresholds::default(), &nothing)),
            vec![ThresholdName::SuccessRate]
        );
    }

    #[test]
    fn checks_can_be_waived() {
        let thresholds = Thresholds {
            require_all_checks: false,
            ..Thresholds::default()
        };
        let observed = Observations {
            failed_checks: 5,
            ..good()
        };
        let evaluation = evaluate(&thresholds, &observed);
        assert_eq!(evaluation.verdict, Verdict::Pass);
        assert!(
            evaluation
                .outcomes
                .iter()
                .all(|outcome| outcome.name != ThresholdName::Checks)
        );
    }

    #[test]
    fn percentages_are_read_exactly_or_refused_in_words() {
        let read = |text: &str| text.parse::<PartsPerMillion>();
        assert_eq!(read("99.9"), Ok(PartsPerMillion(999_000)));
        assert_eq!(read("99.9%"), Ok(PartsPerMillion(999_000)));
        assert_eq!(read("100"), Ok(PartsPerMillion::ALL));
        assert_eq!(read("0.0001"), Ok(PartsPerMillion(1)));
        assert_eq!(
            read("ninety").unwrap_err().to_string(),
            "'ninety' is not a percentage; write a number such as 99.9"
        );
        assert!(matches!(read("100.5"), Err(ShareError::OutOfRange(_))));
        assert!(matches!(read("-1"), Err(ShareError::NotANumber(_))));
        assert!(matches!(read("99.99999"), Err(ShareError::TooPrecise(_))));
        assert_eq!(PartsPerMillion(999_000).to_string(), "99.9%");
        assert_eq!(PartsPerMillion::ALL.to_string(), "100%");
        assert_eq!(PartsPerMillion(999_995).to_string(), "99.9995%");
    }

    #[derive(Debug, Parser)]
    struct Command {
        #[command(flatten)]
        thresholds: ThresholdArgs,
    }

    #[test]
    fn the_command_line_defaults_are_the_gate() {
        let parsed = Command::try_parse_from(["loadgen"]).unwrap();
        assert_eq!(parsed.thresholds.thresholds(), Thresholds::default());
        let explicit = Command::try_parse_from([
            "loadgen",
            "--min-success-rate",
            "99.9",
            "--p95",
            "300ms",
            "--p99",
            "500ms",
            "--max-unauthorized",
            "0",
        ])
        .unwrap();
        assert_eq!(explicit.thresholds.thresholds(), Thresholds::default());
    }

    #[test]
    fn thresholds_missing_from_an_older_file_take_their_defaults() {
        let older = r#"{ "min_success_rate": 0.999, "max_unauthorized": 0 }"#;
        let loaded: Thresholds = serde_json::from_str(older).unwrap();
        assert_eq!(loaded, Thresholds::default());
        let written = serde_json::to_value(Thresholds::default()).unwrap();
        assert_eq!(written["min_success_rate"], serde_json::json!(0.999));
    }
}
