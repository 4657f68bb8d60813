//! The pipeline's steps: build, boot, seed, TEST 1-3, reconcile, snapshots, benches, summary and
//! gate; and the pre-merge `verify`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail, ensure};
use xshell::{Shell, cmd};

use crate::PipelineArgs;
use crate::process::{self, MockIdp, run_to_completion};

/// What the pipeline run is for.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// The main job: fail on a broken gate.
    Gate,
    /// Performance tracking: also fail on a regression past tolerance when `strict`.
    Perf { strict: bool },
}

/// loadgen's and gate's exit code for "a threshold failed" (k6's convention).
const EXIT_THRESHOLD_FAILED: i32 = 99;
const MAX_VUS: u32 = 300;
const REFRESH_FAMILIES: u32 = 300;
const SESSIONS: u32 = 300;
/// The specification's seed count for the standard profile.
const STANDARD_CODES: u64 = 40_000;

/// The three standard tests: id, loadgen scenario, file stem.
const TESTS: [(&str, &str, &str); 3] = [
    ("TEST 1", "token-code", "test1"),
    ("TEST 2", "refresh-storm", "test2"),
    ("TEST 3", "full-oidc", "test3"),
];

/// The arrival-rate profile of every test in one run.
#[derive(Debug, Clone, Copy)]
struct Profile {
    rate: u32,
    ramp: Duration,
    steady: Duration,
}

impl Profile {
    fn from_args(args: &PipelineArgs) -> Self {
        let (ramp, steady) = if args.quick {
            (Duration::from_secs(2), Duration::from_secs(10))
        } else {
            (Duration::from_secs(10), Duration::from_secs(120))
        };
        Self {
            rate: args.rate,
            ramp,
            steady: args.duration.unwrap_or(steady),
        }
    }

    /// Codes one code-redeeming test needs: rate x (steady + the two half-ramps) plus a margin,
    /// and exactly the specification's 40,000 for its standard profile (39,000 iterations).
    fn codes_needed(&self) -> u64 {
        let standard = self.rate == 300
            && self.ramp == Duration::from_secs(10)
            && self.steady == Duration::from_secs(120);
        if standard {
            return STANDARD_CODES;
        }
        let iterations = f64::from(self.rate) * (self.steady + self.ramp).as_secs_f64();
        let with_margin = (iterations * 1.05).ceil() as u64 + 100;
        with_margin.div_ceil(100) * 100
    }

    fn loadgen_args(&self) -> Vec<String> {
        vec![
            "--rate".into(),
            self.rate.to_string(),
            "--ramp-up".into(),
            format!("{}s", self.ramp.as_secs()),
            "--duration".into(),
            format!("{}s", self.steady.as_secs()),
            "--ramp-down".into(),
            format!("{}s", self.ramp.as_secs()),
            "--max-vus".into(),
            MAX_VUS.to_string(),
            "--timeout".into(),
            "5s".into(),
        ]
    }
}

/// Where things are: the workspace root and the cargo target directory.
pub(crate) struct Workspace {
    root: PathBuf,
    pub(crate) target: PathBuf,
}

impl Workspace {
    pub(crate) fn find() -> Result<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("xtask has no parent directory")?
            .to_owned();
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .map(|dir| {
                if dir.is_absolute() {
                    dir
                } else {
                    root.join(dir)
                }
            })
            .unwrap_or_else(|| root.join("target"));
        Ok(Self { root, target })
    }

    pub(crate) fn release_bin(&self, name: &str) -> PathBuf {
        self.target.join("release").join(name)
    }

    /// A fresh directory under `target/xtask/` for one run's files.
    pub(crate) fn new_run_dir(&self, name: &str) -> Result<PathBuf> {
        let dir = self.target.join("xtask").join(name);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
        Ok(dir)
    }

    /// Boots the release mock-idp with `extra_args`, its stderr logged in `run_dir`.
    pub(crate) fn boot_idp(&self, run_dir: &Path, extra_args: &[String]) -> Result<MockIdp> {
        MockIdp::boot(
            &self.release_bin("mock-idp"),
            extra_args,
            &run_dir.join("mock-idp.stderr.log"),
            Duration::from_secs(30),
        )
    }

    pub(crate) fn shell(&self) -> Result<Shell> {
        let shell = Shell::new()?;
        shell.change_dir(&self.root);
        Ok(shell)
    }
}

/// Prints numbered steps with their times, and a table of them at the end.
struct Steps {
    total: usize,
    done: Vec<(String, Duration)>,
    current: Option<(String, Instant)>,
}

impl Steps {
    fn new(total: usize) -> Self {
        Self {
            total,
            done: Vec::new(),
            current: None,
        }
    }

    fn start(&mut self, name: &str) -> Result<()> {
        self.finish();
        if process::interrupted() {
            bail!("interrupted");
        }
        let number = self.done.len() + 1;
        println!("\n==> [{number}/{}] {name}", self.total);
        self.current = Some((name.to_owned(), Instant::now()));
        Ok(())
    }

    fn skip(&mut self, name: &str, why: &str) {
        self.finish();
        let number = self.done.len() + 1;
        println!("\n==> [{number}/{}] {name}: skipped ({why})", self.total);
        self.done
            .push((format!("{name} (skipped)"), Duration::ZERO));
    }

    fn finish(&mut self) {
        if let Some((name, started)) = self.current.take() {
            let elapsed = started.elapsed();
            println!("    {name}: {:.1} s", elapsed.as_secs_f64());
            self.done.push((name, elapsed));
        }
    }

    fn table(&mut self) -> String {
        self.finish();
        let mut text = String::from("| step | time |\n| --- | ---: |\n");
        let mut total = Duration::ZERO;
        for (name, elapsed) in &self.done {
            text.push_str(&format!("| {name} | {:.1} s |\n", elapsed.as_secs_f64()));
            total += *elapsed;
        }
        text.push_str(&format!("| total | {:.1} s |\n", total.as_secs_f64()));
        text
    }
}

pub(crate) fn run_id() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default();
    format!("run-{seconds}")
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|value| !value.is_empty() && value != "false")
}

/// Builds the release binaries the pipeline runs.
pub(crate) fn build_binaries(workspace: &Workspace) -> Result<()> {
    let shell = workspace.shell()?;
    cmd!(
        shell,
        "cargo build --release -p mock-idp -p loadgen -p verification --bins"
    )
    .run()?;
    Ok(())
}

/// How many of each seed to make.
#[derive(Debug, Clone, Copy)]
struct SeedCounts {
    codes: u64,
    refresh_families: u32,
    sessions: u32,
}

/// `loadgen seed` into `dir`.
fn seed(workspace: &Workspace, target: &str, counts: SeedCounts, dir: &Path) -> Result<()> {
    let mut command = Command::new(workspace.release_bin("loadgen"));
    command
        .args(["seed", "--target", target])
        .args(["--codes", &counts.codes.to_string()])
        .args(["--refresh-families", &counts.refresh_families.to_string()])
        .args(["--sessions", &counts.sessions.to_string()])
        .arg("--out")
        .arg(dir);
    if in_ci() {
        command.arg("--no-progress");
    }
    let status = run_to_completion(&mut command)?;
    ensure!(status.success(), "loadgen seed failed ({status})");
    Ok(())
}

/// `gate SUBCOMMAND ARGS`: `Ok(true)` on pass, `Ok(false)` on a judged failure (exit 99).
fn gate(workspace: &Workspace, args: &[&std::ffi::OsStr]) -> Result<bool> {
    let status = run_to_completion(Command::new(workspace.release_bin("gate")).args(args))?;
    match status.code() {
        Some(0) => Ok(true),
        Some(EXIT_THRESHOLD_FAILED) => Ok(false),
        _ => bail!("gate {:?} failed ({status})", args.first()),
    }
}

/// Saves the IdP's `/metrics` to `out` (before or after a test, for the reconciliation).
fn snapshot_metrics(workspace: &Workspace, target: &str, out: &Path) -> Result<()> {
    let saved = gate(
        workspace,
        &[
            "metrics".as_ref(),
            "--target".as_ref(),
            target.as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
    )?;
    ensure!(saved, "could not snapshot {target}/metrics");
    Ok(())
}

/// Runs one test with loadgen; `Ok(exit code)`.
fn run_test(
    workspace: &Workspace,
    target: &str,
    seeds: &Path,
    profile: &Profile,
    (test_id, scenario): (&str, &str),
    out: &Path,
) -> Result<i32> {
    let mut command = Command::new(workspace.release_bin("loadgen"));
    command
        .args([
            "run",
            "--scenario",
            scenario,
            "--target",
            target,
            "--test-id",
            test_id,
        ])
        .arg("--seeds")
        .arg(seeds)
        .args(profile.loadgen_args())
        .arg("--out")
        .arg(out);
    if in_ci() {
        command.arg("--no-progress");
    }
    let status = run_to_completion(&mut command)?;
    status
        .code()
        .with_context(|| format!("loadgen was killed by a signal ({status})"))
}

/// The main job (and `perf`): every step, a summary, and a verdict.
pub fn run_pipeline(args: &PipelineArgs, mode: Mode) -> Result<()> {
    let workspace = Workspace::find()?;
    let profile = Profile::from_args(args);
    let run_id = run_id();
    let run_dir = workspace.new_run_dir(&run_id)?;
    println!(
        "pipeline {run_id}: {} iterations/s, {} s ramps, {} s steady; results in {}",
        profile.rate,
        profile.ramp.as_secs(),
        profile.steady.as_secs(),
        run_dir.display()
    );
    let mut steps = Steps::new(9);
    let mut problems: Vec<String> = Vec::new();

    steps.start("build mock-idp, loadgen and gate (release)")?;
    build_binaries(&workspace)?;

    let mut idp: Option<MockIdp> = None;
    let target = match &args.target {
        Some(target) => {
            steps.skip("boot mock-idp", "--target given");
            target.trim_end_matches('/').to_owned()
        }
        None => {
            steps.start("boot mock-idp on 127.0.0.1:0")?;
            let booted = workspace.boot_idp(&run_dir, &[])?;
            println!("    {}", booted.base_url);
            let url = booted.base_url.clone();
            idp = Some(booted);
            url
        }
    };

    let seeds = match &args.seeds {
        Some(seeds) => {
            steps.skip("seed", "--seeds given");
            seeds.clone()
        }
        None => {
            let codes = profile.codes_needed();
            steps.start(&format!(
                "seed {codes} authorization codes, {REFRESH_FAMILIES} refresh-token families, {SESSIONS} sessions"
            ))?;
            let dir = run_dir.join("seeds");
            let counts = SeedCounts {
                codes,
                refresh_families: REFRESH_FAMILIES,
                sessions: SESSIONS,
            };
            seed(&workspace, &target, counts, &dir)?;
            dir
        }
    };

    steps.start("run TEST 1, TEST 2, TEST 3")?;
    let reconcile = idp.is_some();
    for (test_id, scenario, stem) in TESTS {
        println!("\n--- {test_id} ({scenario})");
        let before = run_dir.join(format!("{stem}.metrics-before.json"));
        let after = run_dir.join(format!("{stem}.metrics-after.json"));
        if reconcile {
            snapshot_metrics(&workspace, &target, &before)?;
        }
        let result = run_dir.join(format!("{stem}.result.json"));
        let code = run_test(
            &workspace,
            &target,
            &seeds,
            &profile,
            (test_id, scenario),
            &result,
        )?;
        match code {
            0 | EXIT_THRESHOLD_FAILED => {}
            other => problems.push(format!("{test_id}: loadgen exited with {other}")),
        }
        if reconcile {
            snapshot_metrics(&workspace, &target, &after)?;
        }
        if process::interrupted() {
            bail!("interrupted during {test_id}");
        }
    }

    if reconcile {
        steps.start("reconcile mock-idp's /metrics with what loadgen saw")?;
        for (test_id, _, stem) in TESTS {
            let result = run_dir.join(format!("{stem}.result.json"));
            if !result.exists() {
                continue;
            }
            println!("  {test_id}:");
            let agrees = gate(
                &workspace,
                &[
                    "reconcile".as_ref(),
                    "--result".as_ref(),
                    result.as_os_str(),
                    "--before".as_ref(),
                    run_dir
                        .join(format!("{stem}.metrics-before.json"))
                        .as_os_str(),
                    "--after".as_ref(),
                    run_dir
                        .join(format!("{stem}.metrics-after.json"))
                        .as_os_str(),
                    "--out".as_ref(),
                    run_dir.join(format!("{stem}.reconcile.json")).as_os_str(),
                ],
            )?;
            if !agrees {
                println!("    (the mismatch fails {test_id})");
            }
        }
    } else {
        steps.skip("reconcile", "an external IdP has no mock-idp counters");
    }
    // The IdP is done; stop it before the benches so it cannot disturb them.
    if let Some(mut idp) = idp.take() {
        idp.stop();
    }

    steps.start("check the result-schema snapshots (insta)")?;
    let shell = workspace.shell()?;
    let insta_update = if in_ci() { "no" } else { "new" };
    let snapshots = cmd!(shell, "cargo test -p verification --test snapshots")
        .env("INSTA_UPDATE", insta_update)
        .run();
    if snapshots.is_err() {
        problems.push(
            "the result-schema snapshots changed: review with `cargo insta review`".to_owned(),
        );
    }

    let benches_json = run_dir.join("benches.json");
    if args.skip_benches {
        steps.skip("criterion benchmarks", "--skip-benches");
    } else {
        steps.start("criterion benchmarks of token signing and validation")?;
        let quick: &[&str] = if args.quick { &["--quick"] } else { &[] };
        let benches = cmd!(
            shell,
            "cargo bench -p benches --bench signing -- {quick...}"
        )
        .run();
        let ratios = benches.and_then(|()| {
            cmd!(
                shell,
                "cargo run --release -q -p benches --bin bench-ratios -- --json {benches_json}"
            )
            .run()
        });
        if let Err(error) = ratios {
            problems.push(format!("benchmarks failed: {error}"));
        }
    }

    steps.start("summary")?;
    let mut summary_args: Vec<std::ffi::OsString> = vec![
        "summary".into(),
        "--run-dir".into(),
        run_dir.clone().into(),
        "--run-id".into(),
        run_id.into(),
    ];
    if benches_json.exists() {
        summary_args.extend(["--benches".into(), benches_json.into()]);
    }
    for problem in &problems {
        summary_args.extend(["--problem".into(), problem.into()]);
    }
    let summary_args: Vec<&std::ffi::OsStr> =
        summary_args.iter().map(|arg| arg.as_os_str()).collect();
    let passed = gate(&workspace, &summary_args)?;

    let perf_dir = workspace.target.join("xtask").join("perf");
    std::fs::create_dir_all(&perf_dir)?;
    let strict = matches!(mode, Mode::Perf { strict: true });
    let mut perf_args: Vec<std::ffi::OsString> = vec![
        "perf".into(),
        "--summary".into(),
        run_dir.join("summary.json").into(),
        "--baseline".into(),
        workspace
            .root
            .join("verification/perf/baseline.json")
            .into(),
        "--history".into(),
        perf_dir.join("history.jsonl").into(),
        "--out".into(),
        perf_dir.join("current.json").into(),
    ];
    if strict {
        perf_args.push("--strict".into());
    }
    println!();
    let perf_args: Vec<&std::ffi::OsStr> = perf_args.iter().map(|arg| arg.as_os_str()).collect();
    let perf_ok = gate(&workspace, &perf_args)?;

    steps.start("verdict")?;
    let timing = steps.table();
    println!("\n{timing}");
    std::fs::write(run_dir.join("steps.md"), &timing)?;
    println!("summary: {}", run_dir.join("summary.md").display());
    if !passed {
        bail!("the gate failed (see the summary above)");
    }
    if !perf_ok {
        bail!("a performance figure regressed past its tolerance");
    }
    println!("PASS");
    Ok(())
}

/// The pre-merge check.
pub fn verify() -> Result<()> {
    let workspace = Workspace::find()?;
    let shell = workspace.shell()?;
    println!("==> cargo fmt --all --check");
    cmd!(shell, "cargo fmt --all --check").run()?;
    println!("==> cargo clippy --workspace --all-targets -- -D warnings");
    cmd!(
        shell,
        "cargo clippy --workspace --all-targets -- -D warnings"
    )
    .run()?;
    println!("==> cargo test --workspace");
    cmd!(shell, "cargo test --workspace").run()?;

    println!("==> the pipeline, --quick");
    let quick = PipelineArgs {
        quick: true,
        rate: 300,
        duration: None,
        target: None,
        seeds: None,
        skip_benches: false,
    };
    run_pipeline(&quick, Mode::Gate)?;

    println!(
        "\n==> the gate can fail: TEST 1 against mock-idp with 1 % of token requests answered 401"
    );
    fault_run(&workspace, &Profile::from_args(&quick))?;
    println!("\nverify: PASS");
    Ok(())
}

/// A quick TEST 1 against a mock-idp that answers 401 to 1 % of token requests: it must be
/// reported as failed, with the 401s counted.
fn fault_run(workspace: &Workspace, profile: &Profile) -> Result<()> {
    let run_dir = workspace.new_run_dir(&format!("{}-fault", run_id()))?;
    let idp = workspace.boot_idp(
        &run_dir,
        &["--inject-fault".to_owned(), "401:0.01".to_owned()],
    )?;
    let seeds = run_dir.join("seeds");
    // Codes only: they are minted through /login and /authorize, which the fault spares, while
    // refresh families are made at /token, where 1 % of requests would fail the seeding itself.
    let counts = SeedCounts {
        codes: profile.codes_needed(),
        refresh_families: 0,
        sessions: 0,
    };
    seed(workspace, &idp.base_url, counts, &seeds)?;
    let result = run_dir.join("test1.result.json");
    let code = run_test(
        workspace,
        &idp.base_url,
        &seeds,
        profile,
        ("TEST 1", "token-code"),
        &result,
    )?;
    drop(idp);
    ensure!(
        code == EXIT_THRESHOLD_FAILED,
        "loadgen exited {code} against an IdP answering 1 % 401s; the gate must fail (99)"
    );
    let judged = gate(workspace, &["check".as_ref(), result.as_os_str()])?;
    ensure!(!judged, "the gate passed a run with injected 401s");
    let text = std::fs::read_to_string(&result)?;
    let unauthorized = text
        .split("\"unauthorized\":")
        .nth(1)
        .and_then(|rest| rest.trim_start().split([',', '}']).next())
        .and_then(|number| number.trim().parse::<u64>().ok())
        .context("the result does not count 401s")?;
    ensure!(unauthorized > 0, "the fault run counted no 401s");
    println!(
        "deliberate fault run: reported as FAILED, as it must be ({unauthorized} responses 401 counted)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_profile_seeds_the_specifications_40000_codes() {
        let standard = Profile {
            rate: 300,
            ramp: Duration::from_secs(10),
            steady: Duration::from_secs(120),
        };
        assert_eq!(standard.codes_needed(), 40_000);
        let quick = Profile {
            rate: 300,
            ramp: Duration::from_secs(2),
            steady: Duration::from_secs(10),
        };
        // 300 x 12 = 3600 iterations, +5 % and 100 spare, rounded up to hundreds.
        assert_eq!(quick.codes_needed(), 3_900);
    }
}
