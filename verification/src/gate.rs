//! The gate over result files: judges each run from its own figures (not from the verdict it
//! carries) with loadgen's one judge, [`RunResult::judge`], completeness included.

use std::path::Path;

use loadgen::results::result_file::ResultError;
use loadgen::results::thresholds::{ThresholdOutcome, Verdict};
use loadgen::{RunResult, Thresholds};
use serde::Serialize;

/// The gate's judgement of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateReport {
    pub test_id: String,
    pub scenario: String,
    /// Each threshold with its observed value and verdict, `complete` included.
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
            .filter_map(ThresholdOutcome::failure)
            .collect()
    }
}

/// Reads a result file with loadgen's reader (older format versions included).
pub fn load(path: &Path) -> Result<RunResult, ResultError> {
    RunResult::read(path)
}

/// Judges a run against `thresholds`; an incomplete run fails, as everywhere else.
pub fn judge(result: &RunResult, thresholds: &Thresholds) -> GateReport {
    let evaluation = result.judge(thresholds);
    GateReport {
        test_id: result.test_id.clone(),
        scenario: result.scenario.clone(),
        outcomes: evaluation.outcomes,
        verdict: evaluation.verdict,
    }
}
