//! One run's directory and the names of the files in it: the only place those names are made.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

/// `target/xtask/<run id>/`, holding one run's seeds, results, metrics, summary and logs.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Creates the directory (and its parents).
    pub fn create(path: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&path)
            .with_context(|| format!("could not create {}", path.display()))?;
        Ok(Self { path })
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The run id: the directory's name.
    pub fn id(&self) -> String {
        self.path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The seed files made for this run.
    pub fn seeds(&self) -> PathBuf {
        self.path.join("seeds")
    }

    /// loadgen's result of test `stem` (`test1` ...).
    pub fn result(&self, stem: &str) -> PathBuf {
        self.path.join(format!("{stem}.result.json"))
    }

    /// mock-idp's `/metrics` just before test `stem`.
    pub fn metrics_before(&self, stem: &str) -> PathBuf {
        self.path.join(format!("{stem}.metrics-before.json"))
    }

    /// mock-idp's `/metrics` just after test `stem`.
    pub fn metrics_after(&self, stem: &str) -> PathBuf {
        self.path.join(format!("{stem}.metrics-after.json"))
    }

    /// The reconciliation of test `stem` with mock-idp's counters.
    pub fn reconciliation(&self, stem: &str) -> PathBuf {
        self.path.join(format!("{stem}.reconcile.json"))
    }

    /// The benchmark rows (`bench-ratios --json`).
    pub fn benches(&self) -> PathBuf {
        self.path.join("benches.json")
    }

    /// `bench-ratios --iterations-json`: loadgen's client side of an iteration per test.
    pub fn iteration_benches(&self) -> PathBuf {
        self.path.join("iteration-benches.json")
    }

    /// The summary as JSON (`summary.md` is written beside it).
    pub fn summary_json(&self) -> PathBuf {
        self.path.join("summary.json")
    }

    /// The summary as Markdown.
    pub fn summary_markdown(&self) -> PathBuf {
        self.path.join("summary.md")
    }

    /// Each step's time.
    pub fn steps(&self) -> PathBuf {
        self.path.join("steps.md")
    }

    /// The CA, certificate and key an identity provider serves HTTPS with (`--tls`).
    pub fn tls(&self) -> PathBuf {
        self.path.join("tls")
    }

    /// The identity provider's stderr.
    pub fn idp_log(&self) -> PathBuf {
        self.path.join("idp.stderr.log")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_files_of_a_run_have_the_documented_names() {
        let run = RunDir {
            path: PathBuf::from("target/xtask/run-1"),
        };
        let name = |path: PathBuf| path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(run.id(), "run-1");
        assert_eq!(name(run.result("test1")), "test1.result.json");
        assert_eq!(
            name(run.metrics_before("test2")),
            "test2.metrics-before.json"
        );
        assert_eq!(name(run.metrics_after("test2")), "test2.metrics-after.json");
        assert_eq!(name(run.reconciliation("test3")), "test3.reconcile.json");
        assert_eq!(name(run.summary_json()), "summary.json");
        assert_eq!(name(run.summary_markdown()), "summary.md");
        assert_eq!(name(run.idp_log()), "idp.stderr.log");
    }
}
