//! `cargo xtask fuzz`: runs the cargo-fuzz targets of `fuzz/`, each for a bounded number of
//! executions and a bounded time, with cargo-fuzz installed pinned under `target/fuzz-tools` on
//! first use; reports the executions each target made, and where a crashing input was saved.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use xshell::cmd;

use crate::flags::FuzzArgs;
use crate::process::run_copying_stderr;
use crate::workspace::Workspace;

/// The cargo-fuzz release the targets are run with.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// The targets of `fuzz/Cargo.toml`, in the order they run.
pub const TARGETS: [&str; 3] = ["mock_idp_handle", "loadgen_seed_files", "loadgen_responses"];

/// A single input running longer than this is reported as a hang (libFuzzer's `-timeout`).
const INPUT_TIMEOUT_S: u64 = 30;

/// What one target's run showed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    executions: u64,
    seconds: u64,
}

/// Runs the chosen targets one after the other; the first that fails stops it.
pub fn run(args: &FuzzArgs) -> Result<()> {
    let targets = select(args.target.as_deref())?;
    let workspace = Workspace::find()?;
    let cargo_fuzz = install_cargo_fuzz(&workspace)?;
    let work = workspace.xtask_dir("fuzz");
    let mut summaries = Vec::new();
    for target in targets {
        println!(
            "==> fuzz {target}: {} executions at most, for {} at most",
            args.runs,
            humantime::format_duration(args.max_time)
        );
        let started = Instant::now();
        let outcome = run_target(&workspace, &cargo_fuzz, &work, target, args)?;
        let summary = match outcome {
            Some(outcome) if outcome.executions < args.runs => format!(
                "{} of the {} executions in {} s, no crash: --max-time stopped it first; give it \
                 more time to reach them all",
                outcome.executions, args.runs, outcome.seconds
            ),
            Some(outcome) => format!(
                "{} executions in {} s, no crash",
                outcome.executions, outcome.seconds
            ),
            None => format!(
                "no crash in {} s; libFuzzer's closing line, with the count of executions, is \
                 missing from {}",
                started.elapsed().as_secs(),
                work.join(format!("{target}.log")).display()
            ),
        };
        println!("fuzz {target}: {summary}");
        summaries.push((target, summary));
    }
    println!();
    for (target, summary) in &summaries {
        println!("fuzz {target}: {summary}");
    }
    Ok(())
}

/// The targets to run: all of them, or the one named.
fn select(name: Option<&str>) -> Result<Vec<&'static str>> {
    match name {
        None => Ok(TARGETS.to_vec()),
        Some(name) => match TARGETS.iter().find(|target| **target == name) {
            Some(target) => Ok(vec![target]),
            None => bail!(
                "there is no fuzz target {name:?}; the targets are {}",
                TARGETS.join(", ")
            ),
        },
    }
}

/// `target/fuzz-tools/bin/cargo-fuzz` at the pinned version, installed from crates.io when it is
/// missing or another version.
fn install_cargo_fuzz(workspace: &Workspace) -> Result<PathBuf> {
    let root = workspace.target_path("fuzz-tools");
    let binary = root.join("bin").join("cargo-fuzz");
    let installed = Command::new(&binary)
        .arg("--version")
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned());
    if installed.as_deref() == Some(&format!("cargo-fuzz {CARGO_FUZZ_VERSION}")) {
        return Ok(binary);
    }
    println!(
        "==> installing cargo-fuzz {CARGO_FUZZ_VERSION} into {}",
        root.display()
    );
    let shell = workspace.shell()?;
    cmd!(
        shell,
        "cargo install cargo-fuzz --version {CARGO_FUZZ_VERSION} --locked --root {root}"
    )
    .run()
    .with_context(|| {
        format!(
            "could not install cargo-fuzz {CARGO_FUZZ_VERSION}: it comes from crates.io, so check \
             that crates.io is reachable, then run `cargo xtask fuzz` again"
        )
    })?;
    Ok(binary)
}

/// Runs one target; `None` when it passed but libFuzzer's closing line could not be read.
fn run_target(
    workspace: &Workspace,
    cargo_fuzz: &Path,
    work: &Path,
    target: &str,
    args: &FuzzArgs,
) -> Result<Option<Outcome>> {
    // The corpus that grows stays under target/; the committed seeds and the inputs that once
    // failed (replayed first, so a fix that regressed shows at once) are only read.
    let corpus = work.join("corpus").join(target);
    std::fs::create_dir_all(&corpus)
        .with_context(|| format!("could not create {}", corpus.display()))?;
    let read_only = ["fuzz/corpus", "fuzz/regressions"].map(|dir| workspace.path(dir).join(target));
    let log = work.join(format!("{target}.log"));
    let mut command = Command::new(cargo_fuzz);
    command
        .current_dir(workspace.path("."))
        .args(["fuzz", "run", target, "--sanitizer", "none", "--fuzz-dir"])
        .arg(workspace.path("fuzz"))
        .arg("--target-dir")
        .arg(work.join("build"))
        .arg(&corpus);
    command.args(read_only.iter().filter(|dir| dir.is_dir()));
    command.args([
        "--".to_owned(),
        format!("-runs={}", args.runs),
        format!("-max_total_time={}", args.max_time.as_secs().max(1)),
        format!("-timeout={INPUT_TIMEOUT_S}"),
    ]);
    let status = run_copying_stderr(&mut command, &log)?;
    let printed = std::fs::read_to_string(&log).unwrap_or_default();
    if !status.success() {
        match crash_input(&printed) {
            Some(input) => bail!(
                "fuzz target {target} found an input that fails it, saved as {input}: see why \
                 with `{} fuzz run {target} {input} --sanitizer none --fuzz-dir fuzz`, fix it, \
                 keep the input in fuzz/regressions/{target}/ and make it a test of the crate \
                 that failed",
                cargo_fuzz.display()
            ),
            None => bail!(
                "fuzz target {target} stopped with no failing input saved ({status}): a build \
                 error or an outside signal; see its output above or in {}",
                log.display()
            ),
        }
    }
    Ok(outcome(&printed))
}

/// libFuzzer's closing line, `Done 1000000 runs in 812 second(s)`.
fn outcome(printed: &str) -> Option<Outcome> {
    let line = printed
        .lines()
        .rev()
        .find(|line| line.starts_with("Done "))?;
    let mut words = line.split_whitespace();
    let executions = words.nth(1)?.parse().ok()?;
    let seconds = words.nth(2)?.parse().ok()?;
    Some(Outcome {
        executions,
        seconds,
    })
}

/// Where libFuzzer saved the input that failed: `Test unit written to fuzz/artifacts/...`.
fn crash_input(printed: &str) -> Option<String> {
    printed
        .lines()
        .find_map(|line| line.split_once("Test unit written to "))
        .map(|(_, path)| path.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_targets_are_those_of_the_fuzz_crate() {
        let manifest = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/Cargo.toml"),
        )
        .unwrap();
        let mut declared: Vec<&str> = manifest
            .lines()
            .filter_map(|line| line.strip_prefix("name = \""))
            .filter_map(|rest| rest.strip_suffix('"'))
            .filter(|name| *name != "oidc-loadtest-fuzz")
            .collect();
        declared.sort_unstable();
        let mut known = TARGETS.to_vec();
        known.sort_unstable();
        assert_eq!(declared, known);
    }

    #[test]
    fn a_target_is_chosen_by_name() {
        assert_eq!(select(None).unwrap(), TARGETS.to_vec());
        assert_eq!(
            select(Some("loadgen_responses")).unwrap(),
            ["loadgen_responses"]
        );
        let unknown = select(Some("nope")).unwrap_err().to_string();
        assert!(unknown.contains("mock_idp_handle"), "{unknown}");
    }

    #[test]
    fn libfuzzer_output_is_read() {
        let printed = "#1000000\tDONE   cov: 10 ft: 20\nDone 1000000 runs in 812 second(s)\n";
        assert_eq!(
            outcome(printed),
            Some(Outcome {
                executions: 1_000_000,
                seconds: 812
            })
        );
        assert_eq!(outcome("INFO: Seed: 1\n"), None);
        let crashed = "==1== ERROR: libFuzzer: deadly signal\nartifact_prefix='fuzz/artifacts/t/'; \
                       Test unit written to fuzz/artifacts/t/crash-abc\nBase64: AA==\n";
        assert_eq!(
            crash_input(crashed).as_deref(),
            Some("fuzz/artifacts/t/crash-abc")
        );
    }
}
