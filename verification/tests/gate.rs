//! The gate's edge cases, on a real result file (a short TEST 1 against mock-idp, written in
//! result format 1) with one figure changed at a time: exactly 99.9 %, one 401, a missing field,
//! an incomplete run.

use std::path::{Path, PathBuf};

use anyhow::Result;
use loadgen::results::result_file::ResultError;
use loadgen::{RunResult, ThresholdName, Thresholds, Verdict};
use verification::gate;

fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/token-code.result.json")
}

fn fixture() -> Result<RunResult> {
    Ok(gate::load(&fixture_path())?)
}

fn failed_outcomes(result: &RunResult) -> Vec<ThresholdName> {
    gate::judge(result, &Thresholds::default())
        .outcomes
        .into_iter()
        .filter(|outcome| outcome.verdict == Verdict::Fail)
        .map(|outcome| outcome.name)
        .collect()
}

#[test]
fn the_real_run_passes() -> Result<()> {
    let result = fixture()?;
    let report = gate::judge(&result, &Thresholds::default());
    assert!(report.passed(), "{:?}", report.failures());
    assert_eq!(report.test_id, "TEST 1");
    assert_eq!(report.outcomes.len(), 6);
    Ok(())
}

#[test]
fn exactly_99_9_percent_passes_and_a_hair_less_fails() -> Result<()> {
    let mut result = fixture()?;
    // 35,964 of 36,000 iterations is exactly 99.9 %.
    result.iterations.scheduled = 36_000;
    result.iterations.completed = 35_964;
    assert!(failed_outcomes(&result).is_empty());
    result.iterations.completed = 35_963;
    assert_eq!(failed_outcomes(&result), [ThresholdName::SuccessRate]);
    Ok(())
}

#[test]
fn one_401_fails_the_run() -> Result<()> {
    let mut result = fixture()?;
    result.requests.unauthorized = 1;
    assert_eq!(failed_outcomes(&result), [ThresholdName::Unauthorized]);
    Ok(())
}

#[test]
fn latency_limits_are_strict() -> Result<()> {
    let mut result = fixture()?;
    result.latency.p95_ms = 300.0;
    result.latency.p99_ms = 500.0;
    assert_eq!(
        failed_outcomes(&result),
        [ThresholdName::P95Latency, ThresholdName::P99Latency]
    );
    result.latency.p95_ms = 299.99;
    result.latency.p99_ms = 499.99;
    assert!(failed_outcomes(&result).is_empty());
    Ok(())
}

#[test]
fn a_failed_check_fails_the_run() -> Result<()> {
    let mut result = fixture()?;
    if let Some(check) = result.checks.values_mut().next() {
        check.failed = 1;
    }
    assert_eq!(failed_outcomes(&result), [ThresholdName::Checks]);
    Ok(())
}

#[test]
fn an_incomplete_run_fails_even_with_good_figures() -> Result<()> {
    let mut result = fixture()?;
    result.complete = false;
    result.incomplete_reason = Some("interrupted".into());
    assert_eq!(failed_outcomes(&result), [ThresholdName::Complete]);
    Ok(())
}

#[test]
fn the_gate_judges_figures_not_the_stored_verdict() -> Result<()> {
    let mut result = fixture()?;
    result.requests.unauthorized = 3;
    // A file that claims to have passed does not pass.
    result.verdict = Verdict::Pass;
    assert!(!gate::judge(&result, &Thresholds::default()).passed());
    Ok(())
}

#[test]
fn a_missing_field_is_a_clear_error() -> Result<()> {
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture_path())?)?;
    json.as_object_mut()
        .map(|object| object.remove("success_rate"));
    let directory = tempfile::tempdir()?;
    let path = directory.path().join("missing.json");
    std::fs::write(&path, json.to_string())?;
    let error = gate::load(&path).unwrap_err();
    assert!(matches!(error, ResultError::Parse { .. }), "{error}");
    assert!(
        error.to_string().contains("missing field `success_rate`"),
        "{error}"
    );
    Ok(())
}

#[test]
fn another_schema_version_is_refused() -> Result<()> {
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture_path())?)?;
    json["schema_version"] = serde_json::json!(99);
    let directory = tempfile::tempdir()?;
    let path = directory.path().join("version.json");
    std::fs::write(&path, json.to_string())?;
    let error = gate::load(&path).unwrap_err();
    assert!(
        matches!(error, ResultError::Version { found: 99, .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("reads versions 1 to 5"),
        "{error}"
    );
    Ok(())
}

#[test]
fn an_error_status_is_a_failed_request_not_a_failed_check() -> Result<()> {
    // Ten answers of 500 in 10,000 iterations: the success rate allows them (99.9 %), and no
    // check judged them, so the run passes; one 200 whose token did not verify still fails it.
    let mut result = fixture()?;
    result.iterations.scheduled = 10_000;
    result.iterations.completed = 9_990;
    result.iterations.failed = 10;
    result.requests.by_status.insert("500".into(), 10);
    assert!(failed_outcomes(&result).is_empty());
    if let Some(check) = result.checks.get_mut("access_token_verifies") {
        check.failed = 1;
    }
    assert_eq!(failed_outcomes(&result), [ThresholdName::Checks]);
    Ok(())
}

#[test]
fn a_format_1_file_is_judged_without_its_status_check() -> Result<()> {
    // Format 1 counted every error status as a failed `status` check as well as a failed request.
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture_path())?)?;
    assert_eq!(json["schema_version"], 1);
    json["checks"]["status"] = serde_json::json!({ "passed": 35_990, "failed": 10 });
    let directory = tempfile::tempdir()?;
    let path = directory.path().join("format-1.json");
    std::fs::write(&path, json.to_string())?;
    let result = gate::load(&path)?;
    assert!(!result.checks.contains_key("status"));
    assert_eq!(result.schema_version, loadgen::SCHEMA_VERSION);
    assert!(failed_outcomes(&result).is_empty());
    Ok(())
}
