//! Reading criterion's results back: mock-idp's median over the raw primitive's per algorithm and
//! operation, and the rows `bench-ratios --json` writes for the pipeline's summary.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail, ensure};
use serde::{Deserialize, Serialize};

use crate::{ALGORITHMS, names};

/// The most mock-idp's sign or validate may cost relative to the raw primitive (the issue's
/// target).
pub const RATIO_TARGET: f64 = 1.15;

/// Which operation a [`RatioRow`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Sign,
    Validate,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::Sign => names::SIGN,
            Operation::Validate => names::VALIDATE,
        }
    }
}

/// One algorithm's sign or validate medians, read from criterion's output, in nanoseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct RatioRow {
    pub algorithm: String,
    pub operation: Operation,
    pub mock_idp_ns: f64,
    pub raw_ns: f64,
    /// Absent when that line was not run (a filtered `cargo bench`).
    pub raw_with_json_ns: Option<f64>,
    pub stock_ns: Option<f64>,
}

impl RatioRow {
    /// mock-idp's median over the raw primitive's: the figure the issue targets.
    pub fn ratio(&self) -> f64 {
        self.mock_idp_ns / self.raw_ns
    }

    pub fn meets_target(&self) -> bool {
        self.ratio() <= RATIO_TARGET
    }
}

/// Reads criterion's `<group>/<operation>/<line>/new/estimates.json` medians under
/// `criterion_dir` and returns, per benchmarked algorithm, its sign and validate rows.
/// Algorithms whose group is absent are skipped; a group missing mock-idp's or the raw line is
/// an error, as is finding no group at all.
pub fn ratio_report(criterion_dir: &Path) -> Result<Vec<RatioRow>> {
    let mut rows = Vec::new();
    for alg in ALGORITHMS {
        let group = criterion_dir.join(alg.as_str());
        if !group.is_dir() {
            continue;
        }
        for operation in [Operation::Sign, Operation::Validate] {
            let line = |name: &str| group.join(operation.name()).join(name);
            let optional = |name: &str| {
                let dir = line(name);
                dir.is_dir().then(|| median_ns(&dir)).transpose()
            };
            rows.push(RatioRow {
                algorithm: alg.as_str().to_owned(),
                operation,
                mock_idp_ns: median_ns(&line(names::MOCK_IDP))?,
                raw_ns: median_ns(&line(names::RAW))?,
                raw_with_json_ns: optional(names::RAW_WITH_JSON)?,
                stock_ns: optional(names::STOCK)?,
            });
        }
    }
    if rows.is_empty() {
        bail!(
            "no benchmark results under {} (run `cargo bench -p benches` first, with the same \
             CARGO_TARGET_DIR)",
            criterion_dir.display()
        );
    }
    Ok(rows)
}

/// The median point estimate, in nanoseconds, of the latest run of the benchmark in `dir`.
pub(crate) fn median_ns(dir: &Path) -> Result<f64> {
    #[derive(serde::Deserialize)]
    struct Estimates {
        median: Estimate,
    }
    #[derive(serde::Deserialize)]
    struct Estimate {
        point_estimate: f64,
    }
    let path = dir.join("new").join("estimates.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("could not read {}", path.display()))?;
    let estimates: Estimates = serde_json::from_str(&text)
        .with_context(|| format!("{} is not criterion's estimates", path.display()))?;
    let median = estimates.median.point_estimate;
    ensure!(
        median.is_finite() && median > 0.0,
        "{} has a median of {median}",
        path.display()
    );
    Ok(median)
}

/// Where criterion writes, as criterion itself decides: `$CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion`, else the workspace's `target/criterion`.
pub fn default_criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("criterion")
}

/// Formats nanoseconds the way criterion does: ns, µs or ms with four significant digits.
pub fn format_ns(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.3} ms", ns / 1e6)
    }
}

/// One line of `bench-ratios --json`, as the pipeline's summary reads it: the one definition of
/// that file's rows, shared by its writer and its reader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchRow {
    pub algorithm: String,
    pub operation: String,
    pub mock_idp_ns: f64,
    pub raw_ns: f64,
    pub ratio: f64,
}

impl From<&RatioRow> for BenchRow {
    fn from(row: &RatioRow) -> Self {
        Self {
            algorithm: row.algorithm.clone(),
            operation: row.operation.name().to_owned(),
            mock_idp_ns: row.mock_idp_ns,
            raw_ns: row.raw_ns,
            ratio: row.ratio(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn write_estimate(root: &Path, bench: &str, median_ns: f64) {
        let dir = root.join(bench).join("new");
        std::fs::create_dir_all(&dir).unwrap();
        // The shape criterion 0.8 writes, slope and all, to prove extra members are ignored.
        let estimate = |value: f64| {
            serde_json::json!({
                "confidence_interval": {
                    "confidence_level": 0.95,
                    "lower_bound": value * 0.99,
                    "upper_bound": value * 1.01
                },
                "point_estimate": value,
                "standard_error": value * 0.005
            })
        };
        let estimates = serde_json::json!({
            "mean": estimate(median_ns * 1.02),
            "median": estimate(median_ns),
            "median_abs_dev": estimate(median_ns * 0.01),
            "slope": null,
            "std_dev": estimate(median_ns * 0.03),
        });
        std::fs::write(dir.join("estimates.json"), estimates.to_string()).unwrap();
    }

    #[test]
    fn ratios_are_mock_idp_median_over_raw_median_per_algorithm_and_operation() {
        let dir = tempfile::tempdir().unwrap();
        write_estimate(dir.path(), "RS256/sign/mock-idp", 1_100_000.0);
        write_estimate(dir.path(), "RS256/sign/raw", 1_000_000.0);
        write_estimate(dir.path(), "RS256/sign/jsonwebtoken-stock", 1_400_000.0);
        write_estimate(dir.path(), "RS256/validate/mock-idp", 30_000.0);
        write_estimate(dir.path(), "RS256/validate/raw", 20_000.0);
        write_estimate(dir.path(), "RS256/validate/raw+json", 22_000.0);
        write_estimate(dir.path(), "HS256/sign/mock-idp", 2_000.0);
        write_estimate(dir.path(), "HS256/sign/raw", 500.0);
        write_estimate(dir.path(), "HS256/validate/mock-idp", 3_000.0);
        write_estimate(dir.path(), "HS256/validate/raw", 600.0);

        let rows = ratio_report(dir.path()).unwrap();

        let summary: Vec<(&str, Operation, f64, bool)> = rows
            .iter()
            .map(|row| {
                (
                    row.algorithm.as_str(),
                    row.operation,
                    (row.ratio() * 1000.0).round() / 1000.0,
                    row.meets_target(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("RS256", Operation::Sign, 1.1, true),
                ("RS256", Operation::Validate, 1.5, false),
                ("HS256", Operation::Sign, 4.0, false),
                ("HS256", Operation::Validate, 5.0, false),
            ]
        );
        assert_eq!(rows[0].stock_ns, Some(1_400_000.0));
        assert_eq!(rows[0].raw_with_json_ns, None);
        assert_eq!(rows[1].raw_with_json_ns, Some(22_000.0));
    }

    #[test]
    fn a_ratio_exactly_at_the_target_meets_it() {
        let row = RatioRow {
            algorithm: "ES256".into(),
            operation: Operation::Sign,
            mock_idp_ns: 115.0,
            raw_ns: 100.0,
            raw_with_json_ns: None,
            stock_ns: None,
        };
        assert!(row.meets_target());
    }

    #[test]
    fn a_group_without_its_raw_line_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        write_estimate(dir.path(), "ES256/sign/mock-idp", 30_000.0);
        write_estimate(dir.path(), "ES256/validate/mock-idp", 60_000.0);
        write_estimate(dir.path(), "ES256/validate/raw", 55_000.0);
        let error = format!("{:#}", ratio_report(dir.path()).unwrap_err());
        assert!(
            error.contains("ES256/sign/raw/new/estimates.json"),
            "{error}"
        );
    }

    #[test]
    fn an_empty_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let error = ratio_report(dir.path()).unwrap_err().to_string();
        assert!(error.contains("no benchmark results"), "{error}");
    }

    #[test]
    fn malformed_estimates_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        for bench in ["EdDSA/sign/mock-idp", "EdDSA/validate/mock-idp"] {
            write_estimate(dir.path(), bench, 20_000.0);
        }
        write_estimate(dir.path(), "EdDSA/validate/raw", 20_000.0);
        let raw = dir.path().join("EdDSA/sign/raw/new");
        std::fs::create_dir_all(&raw).unwrap();
        std::fs::write(raw.join("estimates.json"), r#"{"mean": {}}"#).unwrap();
        let error = format!("{:#}", ratio_report(dir.path()).unwrap_err());
        assert!(error.contains("is not criterion's estimates"), "{error}");
    }
}
