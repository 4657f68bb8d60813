//! Results as a JUnit XML report for CI test views: one test suite per test (TEST 1 ...), one
//! test case per threshold, a failed threshold a `<failure>` whose message carries the observed
//! value.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::results::result::RunResult;
use crate::results::thresholds::Verdict;

/// Why the report could not be written as XML.
#[derive(Debug, thiserror::Error)]
#[error("could not write the JUnit report: {0}")]
pub struct JunitError(#[from] quick_junit::SerializeError);

/// The JUnit XML of `results`, under the report name `name`.
pub fn render(name: &str, results: &[RunResult]) -> Result<String, JunitError> {
    let mut report = Report::new(name);
    for result in results {
        let mut suite = TestSuite::new(format!("{} ({})", result.test_id, result.scenario));
        for outcome in &result.thresholds {
            let status = match outcome.verdict {
                Verdict::Pass => TestCaseStatus::success(),
                Verdict::Fail => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message(outcome.failure().unwrap_or_default());
                    status.set_type("threshold");
                    status.set_description(format!(
                        "{}: observed {}, limit {}",
                        outcome.condition,
                        outcome.observed_text(),
                        outcome.limit
                    ));
                    status
                }
            };
            let mut case = TestCase::new(outcome.condition.clone(), status);
            case.set_classname(result.test_id.clone());
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    Ok(report.to_string()?)
}
