//! `gate`: the pipeline's judge, run by `cargo xtask` as a process. Exit codes follow k6 and
//! loadgen: 0 pass, 99 a threshold (or reconciliation, or perf tolerance) failed, 1 an error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use loadgen::Thresholds;
use verification::gate;
use verification::metrics::{self, MetricsSnapshot, Reconciliation};
use verification::perf::{self, Figure};
use verification::summary::{BenchRow, Benches, Summary, TestRow};
use verification::{capacity, shards};

const EXIT_FAILED: u8 = 99;

#[derive(Debug, Parser)]
#[command(about = "Judges load-test results: gate, metrics reconciliation, summary, perf")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Judges result files against the gate (success >= 99.9 %, no 401, p95 < 300 ms,
    /// p99 < 500 ms, every check passed, run complete).
    Check {
        #[arg(required = true)]
        results: Vec<PathBuf>,
    },
    /// Saves a snapshot of an IdP's `/metrics`.
    Metrics {
        #[arg(long)]
        target: String,
        #[arg(long)]
        out: PathBuf,
        /// A PEM file of CA certificates to trust besides the system's, for an https target.
        #[arg(long = "ca-cert")]
        ca_certs: Vec<PathBuf>,
    },
    /// Compares the IdP's counters (snapshots before and after a test) with the result.
    Reconcile {
        #[arg(long)]
        result: PathBuf,
        #[arg(long)]
        before: PathBuf,
        #[arg(long)]
        after: PathBuf,
        /// Where to write the comparisons as JSON.
        #[arg(long)]
        out: PathBuf,
    },
    /// Writes summary.md and summary.json for the results in a run directory
    /// (`*.result.json`, with `*.reconcile.json` beside them when reconciled).
    Summary {
        #[arg(long)]
        run_dir: PathBuf,
        #[arg(long)]
        run_id: String,
        /// `bench-ratios --json` output.
        #[arg(long)]
        benches: Option<PathBuf>,
        /// `bench-ratios --iterations-json` output: loadgen's client side of an iteration.
        #[arg(long)]
        iteration_benches: Option<PathBuf>,
        /// A problem outside the tests (repeatable), which fails the summary.
        #[arg(long = "problem")]
        problems: Vec<String>,
    },
    /// Turns a summary into customSmallerIsBetter figures, appends them to a history and
    /// compares them with a baseline.
    Perf {
        #[arg(long)]
        summary: PathBuf,
        #[arg(long)]
        baseline: PathBuf,
        #[arg(long)]
        history: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Exit 99 when a figure regressed past its tolerance.
        #[arg(long)]
        strict: bool,
    },
    /// Compares sharded runs, merged (`loadgen report --out`), with single-process runs of the
    /// same profiles: same scheduled iterations, no 400 (no seed used twice), the shards' rates
    /// adding up to the target within 1 %. Give --merged and --single once per test, in pairs.
    /// The table of limits from `loadgen capacity` searches against mock-idp: highest rate held,
    /// p99 there, and CPU per request beside the floor (signatures x raw signing cost from
    /// `bench-ratios --json`). Exit 99 when RS256 is above 1.5x its floor.
    Capacity {
        /// ALGORITHM=capacity.json, once per search.
        #[arg(long = "search", required = true, value_parser = parse_search)]
        searches: Vec<(String, PathBuf)>,
        /// `bench-ratios --json` output of the same run.
        #[arg(long)]
        benches: PathBuf,
        /// Where to write the table (Markdown).
        #[arg(long)]
        out: PathBuf,
    },
    Shards {
        #[arg(long, required = true)]
        merged: Vec<PathBuf>,
        #[arg(long, required = true)]
        single: Vec<PathBuf>,
        /// Where to write the side-by-side table (Markdown).
        #[arg(long)]
        out: PathBuf,
    },
}

fn parse_search(text: &str) -> Result<(String, PathBuf), String> {
    text.split_once('=')
        .map(|(algorithm, path)| (algorithm.to_owned(), PathBuf::from(path)))
        .ok_or_else(|| format!("'{text}' is not ALGORITHM=capacity.json, e.g. RS256=capacity.json"))
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EXIT_FAILED),
        Err(error) => {
            eprintln!("gate: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a command: `Ok(false)` when it judged a failure.
fn run(cli: Cli) -> Result<bool> {
    match cli.command {
        Command::Check { results } => {
            let mut all_passed = true;
            for path in &results {
                let result = gate::load(path)?;
                let report = gate::judge(&result, &Thresholds::default());
                println!(
                    "{} {} ({}): {}",
                    if report.passed() { "PASS" } else { "FAIL" },
                    report.test_id,
                    report.scenario,
                    path.display()
                );
                for failure in report.failures() {
                    println!("  - {failure}");
                }
                all_passed &= report.passed();
            }
            Ok(all_passed)
        }
        Command::Capacity {
            searches,
            benches,
            out,
        } => {
            let benches: Vec<BenchRow> = read_json(&benches)?;
            let mut rows = Vec::with_capacity(searches.len());
            for (algorithm, path) in &searches {
                let report: loadgen::run::capacity::CapacityReport = read_json(path)?;
                rows.push(capacity::LimitRow::new(algorithm, &report, &benches));
            }
            let table = capacity::table(&rows);
            print!("{table}");
            std::fs::write(&out, &table).with_context(|| format!("writing {}", out.display()))?;
            let mut within = true;
            for row in rows.iter().filter(|row| row.misses_the_floor_target()) {
                println!(
                    "FAIL {} {}: mock-idp spends {:.2}x its floor per request, above the {}x target",
                    row.algorithm,
                    row.scenario,
                    row.floor_ratio.unwrap_or_default(),
                    capacity::RS256_FLOOR_RATIO_TARGET
                );
                within = false;
            }
            Ok(within)
        }
        Command::Shards {
            merged,
            single,
            out,
        } => {
            anyhow::ensure!(
                merged.len() == single.len(),
                "give --merged and --single in pairs, one pair per test ({} merged, {} single)",
                merged.len(),
                single.len()
            );
            let mut comparisons = Vec::with_capacity(merged.len());
            for (merged, single) in merged.iter().zip(&single) {
                comparisons.push(shards::compare(&gate::load(merged)?, &gate::load(single)?));
            }
            let table = shards::table(&comparisons);
            print!("{table}");
            std::fs::write(&out, &table).with_context(|| format!("writing {}", out.display()))?;
            let mut holds = true;
            for comparison in &comparisons {
                for problem in &comparison.problems {
                    println!("FAIL {}: {problem}", comparison.test_id);
                    holds = false;
                }
            }
            Ok(holds)
        }
        Command::Metrics {
            target,
            out,
            ca_certs,
        } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let snapshot = runtime.block_on(metrics::fetch(&target, &ca_certs))?;
            write_json(&out, &snapshot)?;
            Ok(true)
        }
        Command::Reconcile {
            result,
            before,
            after,
            out,
        } => {
            let result = gate::load(&result)?;
            let before: MetricsSnapshot = read_json(&before)?;
            let after: MetricsSnapshot = read_json(&after)?;
            let checks = metrics::reconcile(&result, &before, &after);
            for check in &checks {
                println!(
                    "  {} {}",
                    if check.agrees() {
                        "ok      "
                    } else {
                        "MISMATCH"
                    },
                    check.describe()
                );
            }
            write_json(&out, &checks)?;
            Ok(checks.iter().all(Reconciliation::agrees))
        }
        Command::Summary {
            run_dir,
            run_id,
            benches,
            iteration_benches,
            problems,
        } => {
            let title = format!("oidc-loadtest run {run_id}");
            let benches = Benches {
                signing: match benches {
                    Some(path) => read_json(&path)?,
                    None => Vec::new(),
                },
                iterations: match iteration_benches {
                    Some(path) => read_json(&path)?,
                    None => Vec::new(),
                },
            };
            let (summary, results) = summarize(&run_dir, run_id, benches, problems)?;
            let markdown = summary.markdown();
            print!("{markdown}");
            std::fs::write(run_dir.join("summary.md"), &markdown)?;
            write_json(&run_dir.join("summary.json"), &summary)?;
            std::fs::write(
                run_dir.join("report.html"),
                loadgen::results::html_report::render(&title, &results),
            )?;
            std::fs::write(
                run_dir.join("junit.xml"),
                loadgen::results::junit::render(&title, &results)?,
            )?;
            loadgen::results::printer::append_to_github_job_summary(&markdown)
                .context("appending to the GitHub job summary (GITHUB_STEP_SUMMARY)")?;
            Ok(summary.passed)
        }
        Command::Perf {
            summary,
            baseline,
            history,
            out,
            strict,
        } => {
            let summary: Summary = read_json(&summary)?;
            let current = perf::figures(&summary);
            write_json(&out, &current)?;
            append_history(&history, &summary.run_id, &current)?;
            let baseline: Vec<Figure> = if baseline.exists() {
                read_json(&baseline)?
            } else {
                println!("no baseline at {}; nothing to compare", baseline.display());
                Vec::new()
            };
            let comparisons = perf::compare(&current, &baseline);
            for comparison in &comparisons {
                println!("{}", comparison.describe());
            }
            let regressions = comparisons.iter().filter(|c| c.regression).count();
            println!("{regressions} regression(s) past tolerance");
            Ok(!(strict && regressions > 0))
        }
    }
}

/// Builds the summary from the run directory's files.
fn summarize(
    run_dir: &Path,
    run_id: String,
    benches: Benches,
    problems: Vec<String>,
) -> Result<(Summary, Vec<loadgen::RunResult>)> {
    let mut result_files: Vec<PathBuf> = std::fs::read_dir(run_dir)
        .with_context(|| format!("could not list {}", run_dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.ends_with(".result.json"))
        })
        .collect();
    result_files.sort();
    let mut tests = Vec::new();
    let mut results = Vec::new();
    for path in &result_files {
        let result = gate::load(path)?;
        let report = gate::judge(&result, &Thresholds::default());
        let reconcile_path = path.with_file_name(
            path.file_name()
                .and_then(|name| name.to_str())
                .unwrap_or_default()
                .replace(".result.json", ".reconcile.json"),
        );
        let reconciliations: Option<Vec<Reconciliation>> = if reconcile_path.exists() {
            Some(read_json(&reconcile_path)?)
        } else {
            None
        };
        tests.push(TestRow::new(&result, &report, reconciliations.as_deref()));
        results.push(result);
    }
    Ok((Summary::new(run_id, tests, benches, problems), results))
}

fn append_history(path: &Path, run_id: &str, figures: &[Figure]) -> Result<()> {
    use std::io::Write as _;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("could not open {}", path.display()))?;
    let line = serde_json::json!({ "run_id": run_id, "figures": figures });
    writeln!(file, "{line}")?;
    Ok(())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not the expected JSON", path.display()))
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("could not write {}", path.display()))
}
