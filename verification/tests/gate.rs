//! The gate's edge cases, on a real result file (a short TEST 1 against mock-idp) with one
//! figure changed at a time: exactly 99.9 %, one 401, a missing field, an incomplete run.

use std::path::{Path, PathBuf};

use anyhow::Result;
use loadgen::{RunResult, Thresholds, Verdict};
use verification::gate::{self, GateError};

fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/token-code.result.json")
}

fn fixture() -> Result<RunResult> {
    Ok(gate::load(&fixture_path())?)
}

fn failed_outcomes(result: &RunResult) -> Vec<String> {
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
    result.success_rate = 35_964.0 / 36_000.0;
    assert!(failed_outcomes(&result).is_empty());
    result.success_rate = 35_963.0 / 36_000.0;
    assert_eq!(failed_outcomes(&result), ["success_rate"]);
    Ok(())
}

#[test]
fn one_401_fails_the_run() -> Result<()> {
    let mut result = fixture()?;
    result.requests.unauthorized = 1;
    assert_eq!(failed_outcomes(&result), ["unauthorized"]);
    Ok(())
}

#[test]
fn latency_limits_are_strict() -> Result<()> {
    let mut result = fixture()?;
    result.latency.p95_ms = 300.0;
    result.latency.p99_ms = 500.0;
    assert_eq!(failed_outcomes(&result), ["p95_latency", "p99_latency"]);
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
    assert_eq!(failed_outcomes(&result), ["checks"]);
    Ok(())
}

#[test]
fn an_incomplete_run_fails_even_with_good_figures() -> Result<()> {
    let mut result = fixture()?;
    result.complete = false;
    result.incomplete_reason = Some("interrupted".into());
    assert_eq!(failed_outcomes(&result), ["complete"]);
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
    let path = std::env::temp_dir().join(format!("gate-missing-{}.json", std::process::id()));
    std::fs::write(&path, json.to_string())?;
    let error = gate::load(&path).unwrap_err();
    std::fs::remove_file(&path)?;
    assert!(matches!(error, GateError::Parse { .. }), "{error}");
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
    let path = std::env::temp_dir().join(format!("gate-version-{}.json", std::process::id()));
    std::fs::write(&path, json.to_string())?;
    let error = gate::load(&path).unwrap_err();
    std::fs::remove_file(&path)?;
    assert!(
        matches!(error, GateError::SchemaVersion { found: 99, .. }),
        "{error}"
    );
    Ok(())
}
