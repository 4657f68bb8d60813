//! The gate over result files: judges each run from its own figures (not from the verdict it
//! carries), with the project's thresholds, and requires the run to be complete.

use std::path::Path;

use loadgen::thresholds::{ThresholdOutcome, Verdict};
use loadgen::{RunResult, SCHEMA_VERSION, ThresholdObservations, Thresholds, evaluate};
use serde::Serialize;

/// Why a result file could not be judged.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("could not read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a loadgen result: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path} has schema_version {found}; this gate reads version {expected}")]
    SchemaVersion {
        path: String,
        found: u32,
        expected: u32,
    },
}

/// The gate's judgement of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateReport {
    pub test_id: String,
    pub scenario: String,
    /// Each threshold with its observed value and verdict, plus `complete`.
    pub outcomes: Vec<ThresholdOutcome>,
    pub verdict: Verdict,
}

impl GateReport {
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }

    /// The outcomes that failed, in words.
    pub fn failures(&self) -> Vec<String> {
        self.outcomes
            .iter()
            .filter(|outcome| outcome.verdict == Verdict::Fail)
            .map(|outcome| {
                format!(
                    "{}: {} (observed {})",
                    outcome.name, outcome.condition, outcome.observed
                )
            })
            .collect()
    }
}

/// Reads a result file, refusing other schema versions.
pub fn load(path: &Path) -> Result<RunResult, GateError> {
    let display = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| GateError::Read {
        path: display.clone(),
        source,
    })?;
    let result: RunResult = serde_json::from_str(&text).map_err(|source| GateError::Parse {
        path: display.clone(),
        source,
    })?;
    if result.schema_version != SCHEMA_VERSION {
        return Err(GateError::SchemaVersion {
            path: display,
            found: result.schema_version,
            expected: SCHEMA_VERSION,
        });
    }
    Ok(result)
}

/// Judges a run against `thresholds`. An incomplete run (stopped early, schedule not finished)
/// fails: its figures do not describe the load the gate asks about.
pub fn judge(result: &RunResult, thresholds: &Thresholds) -> GateReport {
    let failed_checks = result.checks.values().map(|counts| counts.failed).sum();
    let observations = ThresholdObservations {
        success_rate: result.success_rate,
        unauthorized: result.requests.unauthorized,
        p95_latency_ms: result.latency.p95_ms,
        p99_latency_ms: result.latency.p99_ms,
        failed_checks,
    };
    let mut outcomes = evaluate(thresholds, &observations).outcomes;
    outcomes.push(ThresholdOutcome {
        name: "complete".into(),
        condition: "the run finished its whole schedule".into(),
        observed: if result.complete { 1.0 } else { 0.0 },
        limit: 1.0,
        verdict: if result.complete {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
    });
    let verdict = if outcomes
        .iter()
        .all(|outcome| outcome.verdict == Verdict::Pass)
    {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    GateReport {
        test_id: result.test_id.clone(),
        scenario: result.scenario.clone(),
        outcomes,
        verdict,
    }
}
