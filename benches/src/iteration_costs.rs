//! Reading the iteration bench back: per test, loadgen's whole client side of one iteration
//! beside the raw verification of its two signatures, and what is above that floor: the
//! generator's own cost per iteration, which `cargo xtask perf` tracks.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::ratios::median_ns;

/// The iteration bench's names, shared by the bench and [`iteration_report`]:
/// `<group>/<line>`.
pub mod iteration_names {
    pub const TEST1_GROUP: &str = "test1_iteration_client_side";
    pub const TEST2_GROUP: &str = "test2_iteration_client_side";
    pub const TEST3_GROUP: &str = "test3_iteration_client_side";
    /// The whole client side of one iteration.
    pub const WHOLE: &str = "whole";
    /// The raw aws-lc-rs verification of the iteration's two signatures alone.
    pub const SIGNATURES: &str = "signatures";
}

/// The tests the iteration bench measures, with their groups.
const TESTS: [(&str, &str); 3] = [
    ("TEST 1", iteration_names::TEST1_GROUP),
    ("TEST 2", iteration_names::TEST2_GROUP),
    ("TEST 3", iteration_names::TEST3_GROUP),
];

/// One test's iteration cost, as `bench-ratios --iterations-json` writes it and the pipeline's
/// summary reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IterationRow {
    /// `TEST 1`, `TEST 2` or `TEST 3`.
    pub test: String,
    /// Median of the whole client side of one iteration, nanoseconds.
    pub loadgen_ns: f64,
    /// Median of the raw verification of its two signatures, nanoseconds.
    pub signatures_ns: f64,
}

impl IterationRow {
    /// loadgen's own cost per iteration: what is above the signature checks.
    pub fn own_ns(&self) -> f64 {
        (self.loadgen_ns - self.signatures_ns).max(0.0)
    }

    /// The whole over the floor.
    pub fn ratio(&self) -> f64 {
        self.loadgen_ns / self.signatures_ns
    }
}

/// The rows of the tests whose group criterion wrote under `criterion_dir`; none when the
/// iteration bench was not run. A group missing one of its two lines is an error.
pub fn iteration_report(criterion_dir: &Path) -> anyhow::Result<Vec<IterationRow>> {
    let mut rows = Vec::new();
    for (test, group) in TESTS {
        let group = criterion_dir.join(group);
        if !group.is_dir() {
            continue;
        }
        rows.push(IterationRow {
            test: test.to_owned(),
            loadgen_ns: median_ns(&group.join(iteration_names::WHOLE))?,
            signatures_ns: median_ns(&group.join(iteration_names::SIGNATURES))?,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratios::tests::write_estimate;

    #[test]
    fn each_measured_test_is_read_with_its_floor_and_an_absent_one_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        write_estimate(dir.path(), "test2_iteration_client_side/whole", 46_000.0);
        write_estimate(
            dir.path(),
            "test2_iteration_client_side/signatures",
            40_000.0,
        );
        let rows = iteration_report(dir.path()).unwrap();
        assert_eq!(
            rows,
            [IterationRow {
                test: "TEST 2".into(),
                loadgen_ns: 46_000.0,
                signatures_ns: 40_000.0,
            }]
        );
        assert!((rows[0].own_ns() - 6_000.0).abs() < 1e-9);
        assert!((rows[0].ratio() - 1.15).abs() < 1e-9);
        assert!(
            iteration_report(&dir.path().join("absent"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_group_without_its_floor_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        write_estimate(dir.path(), "test1_iteration_client_side/whole", 46_000.0);
        let error = iteration_report(dir.path()).unwrap_err();
        assert!(format!("{error:#}").contains("signatures"), "{error:#}");
    }
}
