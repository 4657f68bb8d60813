//! Capacity search: the highest arrival rate a target holds under the gate. The rate is raised
//! by a factor until a step fails, then the interval between the highest pass and the lowest
//! failure is bisected until it is narrower than the precision asked for; every step is a whole
//! run (fresh seeds, the gate's thresholds), bounded in steps and in time.
//!
//! [`Search`] is the decision alone (which rate next, what was found), so it is tested without a
//! target; [`search`] runs it: seeds, runs and judges each step.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::results::mix_result::MixResult;
use crate::results::result::RunResult;
use crate::results::thresholds::Verdict;
use crate::run::config::RunConfig;
use crate::run::engine::RunError;
use crate::run::mix::run_mix;
use crate::run::mix::spec::{MixError, MixSpec};
use crate::run::scenario::SeedKind;
use crate::run::stop::StopSignal;
use crate::seeding::seed_files::{Seeds, codes_to_seed, families_to_make};
use crate::seeding::seeder::{SeedConfig, SeedError, make_seeds};

/// How the search moves and when it stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// The first rate tried, iterations per second.
    pub start_rate: f64,
    /// Each rise multiplies the rate by this (above 1).
    pub factor: f64,
    /// The search never goes above this rate.
    pub max_rate: f64,
    /// Done when the lowest failure is within this fraction above the highest pass.
    pub precision: f64,
    /// The most steps (runs) of the search.
    pub max_steps: u32,
    /// The longest the search may take; no step starts after it.
    pub max_time: Duration,
    /// The pause before each step after the first, so that a target still recovering from an
    /// overloaded step does not fail the next one's discovery.
    pub cool_down: Duration,
}

/// One step of the search: a whole run at one rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The rate asked for.
    pub rate_per_s: f64,
    /// Whether the gate passed.
    pub passed: bool,
    /// The gated p99 latency, ms.
    pub p99_ms: Option<f64>,
    /// Iterations started per second in the steady state.
    pub achieved_rate_per_s: f64,
    /// Why the gate failed, one sentence per threshold.
    pub failures: Vec<String>,
    /// The step's result file.
    pub result_file: Option<PathBuf>,
    /// Requests the step sent.
    #[serde(default)]
    pub requests: u64,
    /// CPU time (user and system) the target's process spent during the step, seconds, when
    /// its pid was given and it runs on this machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_cpu_s: Option<f64>,
    /// CPU time loadgen itself spent on the step's run (its seeding left out), seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_cpu_s: Option<f64>,
    /// Iterations the step's run started (completed and failed).
    #[serde(default)]
    pub iterations: u64,
}

/// CPU time (user and system) process `pid` has spent, from `/proc/PID/stat` (Linux); `None`
/// where that cannot be read.
pub fn process_cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis are
    // space-separated, utime and stime being the 12th and 13th of them.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    // Linux reports these in clock ticks of USER_HZ, which is 100 per second on x86 and ARM
    // (where this project runs); an architecture with another USER_HZ would be misread.
    Some(Duration::from_millis((user + system) * 10))
}

/// Why the search stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// The edge is known within the precision.
    Precise,
    /// Even the maximum rate passed.
    MaxRatePassed,
    /// The lowest rate tried (1/s) failed.
    NothingPassed,
    /// The step budget ran out.
    MaxSteps,
    /// The time budget ran out.
    MaxTime,
    /// A step was stopped early (Ctrl-C).
    Interrupted,
}

impl Stop {
    /// In words, for the report.
    pub fn describe(self) -> &'static str {
        match self {
            Stop::Precise => "the edge is known within the precision asked for",
            Stop::MaxRatePassed => "the maximum rate passed: raise --max-rate to look further",
            Stop::NothingPassed => "not even 1 iteration per second passed the gate",
            Stop::MaxSteps => "the step budget (--max-steps) ran out before the precision",
            Stop::MaxTime => "the time budget (--max-time) ran out before the precision",
            Stop::Interrupted => "a step was stopped early (Ctrl-C); its result is kept",
        }
    }
}

/// The search's state: the steps so far.
#[derive(Debug, Clone)]
pub struct Search {
    plan: Plan,
    steps: Vec<Step>,
}

impl Search {
    /// A search that has not started.
    pub fn new(plan: Plan) -> Self {
        Self {
            plan,
            steps: Vec::new(),
        }
    }

    /// The highest rate that passed.
    pub fn highest_pass(&self) -> Option<&Step> {
        self.steps
            .iter()
            .filter(|step| step.passed)
            .max_by(|a, b| a.rate_per_s.total_cmp(&b.rate_per_s))
    }

    /// The lowest rate that failed.
    pub fn lowest_failure(&self) -> Option<&Step> {
        self.steps
            .iter()
            .filter(|step| !step.passed)
            .min_by(|a, b| a.rate_per_s.total_cmp(&b.rate_per_s))
    }

    /// The steps in the order they ran.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Adds a step's outcome.
    pub fn record(&mut self, step: Step) {
        self.steps.push(step);
    }

    /// The next rate to try, or why the search is over. `elapsed` is the time spent so far.
    pub fn next(&self, elapsed: Duration) -> Result<f64, Stop> {
        let plan = self.plan;
        let pass = self.highest_pass().map(|step| step.rate_per_s);
        let fail = self.lowest_failure().map(|step| step.rate_per_s);
        let candidate = match (pass, fail) {
            (None, None) => plan.start_rate.min(plan.max_rate),
            (Some(pass), None) if pass >= plan.max_rate => return Err(Stop::MaxRatePassed),
            (Some(pass), None) => (pass * plan.factor).min(plan.max_rate),
            (None, Some(fail)) if fail <= 1.0 => return Err(Stop::NothingPassed),
            (None, Some(fail)) => (fail / plan.factor).max(1.0),
            (Some(pass), Some(fail)) => {
                if fail - pass <= pass * plan.precision {
                    return Err(Stop::Precise);
                }
                (pass + fail) / 2.0
            }
        };
        if self.steps.len() >= plan.max_steps as usize {
            return Err(Stop::MaxSteps);
        }
        if elapsed >= plan.max_time {
            return Err(Stop::MaxTime);
        }
        // Whole iterations per second read better and cost nothing in precision at these rates.
        Ok(candidate.round().max(1.0))
    }
}

/// What a search found, as `capacity.json` holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityReport {
    /// Scenario searched.
    pub scenario: String,
    /// Target searched.
    pub target: String,
    /// How the client authenticated and bound its tokens: `client_secret_basic`,
    /// `private_key_jwt`, each with ` + DPoP` when it did (what a row of the table of limits
    /// costs the provider besides the test itself).
    #[serde(default = "default_client_label")]
    pub client: String,
    /// The highest rate that passed, with its step.
    pub highest_pass: Option<Step>,
    /// The lowest rate that failed, with its step.
    pub lowest_failure: Option<Step>,
    /// Why the search stopped.
    pub stopped: Stop,
    /// Every step, in order.
    pub steps: Vec<Step>,
}

/// Why a search could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum CapacityError {
    /// A step's seeds could not be made.
    #[error("seeding the step at {rate}/s: {source}")]
    Seed {
        /// The step's rate.
        rate: f64,
        /// The cause.
        source: SeedError,
    },
    /// A step could not be run.
    #[error("the step at {rate}/s: {source}")]
    Run {
        /// The step's rate.
        rate: f64,
        /// The cause.
        source: RunError,
    },
    /// A result file could not be written.
    #[error(transparent)]
    Result(#[from] crate::results::result_file::ResultError),
    /// The mix cannot run at a step's rate (too few VUs for its scenarios).
    #[error("the mix at {rate}/s: {error}")]
    Mix {
        /// The step's rate.
        rate: f64,
        /// Why.
        error: MixError,
    },
}

/// The seeds one step of `config` needs: codes for its TEST 1, one family per VU and 10 %
/// spares for TEST 2, one session per VU for TEST 3.
fn seed_config(config: &RunConfig, seeding: &SeedConfig) -> SeedConfig {
    let need = config.scenario.seed_kind();
    let vus = config.max_vus;
    SeedConfig {
        codes: match need {
            Some(SeedKind::AuthorizationCodes) => {
                usize::try_from(codes_to_seed(&config.profile)).unwrap_or(usize::MAX)
            }
            _ => 0,
        },
        refresh_families: match need {
            Some(SeedKind::RefreshFamilies) => {
                usize::try_from(families_to_make(vus as u64)).unwrap_or(usize::MAX)
            }
            _ => 0,
        },
        sessions: match need {
            Some(SeedKind::Sessions) => vus,
            _ => 0,
        },
        ..seeding.clone()
    }
}

/// Runs the search: each step seeds afresh, runs `config` at the step's rate (its ramps and
/// steady time kept), writes its result into `out_dir` and is judged by the gate. With a `mix`,
/// the rate is the mix's total: every scenario's rate is scaled by the same factor, and a step
/// passes when every scenario does. `on_step` hears of each step as it ends.
#[allow(clippy::too_many_arguments)]
pub async fn search(
    plan: Plan,
    config: &RunConfig,
    mix: Option<&MixSpec>,
    target_pid: Option<u32>,
    seeding: &SeedConfig,
    out_dir: &Path,
    stop: StopSignal,
    mut on_step: impl FnMut(&Step),
) -> Result<CapacityReport, CapacityError> {
    let began = Instant::now();
    let mut search = Search::new(plan);
    let stopped = loop {
        let rate = match search.next(began.elapsed()) {
            Ok(rate) => rate,
            Err(stopped) => break stopped,
        };
        if !search.steps().is_empty() {
            tokio::time::sleep(plan.cool_down).await;
        }
        let mut step_config = config.clone();
        step_config.profile.rate_per_s = rate;
        step_config.seeds_out = None;
        let file = out_dir.join(format!(
            "step-{:02}-{rate:.0}-per-s.json",
            search.steps().len() + 1
        ));
        let scaled = match mix {
            None => None,
            Some(mix) => Some(
                mix.scaled(rate / mix.total_rate())
                    .map_err(|error| CapacityError::Mix { rate, error })?,
            ),
        };
        let seeds = match &scaled {
            None if config.scenario.seed_kind().is_some() => {
                make_seeds(&seed_config(&step_config, seeding))
                    .await
                    .map_err(|source| CapacityError::Seed { rate, source })?
            }
            None => Seeds::default(),
            Some(scaled) => {
                let counts = scaled
                    .seed_counts(&step_config.profile, step_config.max_vus)
                    .map_err(|error| CapacityError::Mix { rate, error })?;
                let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
                make_seeds(&SeedConfig {
                    codes: count(counts.codes),
                    refresh_families: count(counts.refresh_families),
                    sessions: count(counts.sessions),
                    ..seeding.clone()
                })
                .await
                .map_err(|source| CapacityError::Seed { rate, source })?
            }
        };
        // Counted from here: the seeding's sign-ins are not the step's load, on either side.
        let cpu_before = target_pid.and_then(process_cpu_time);
        let own_before = process_cpu_time(std::process::id());
        let mut step = match &scaled {
            None => {
                let result = crate::run::engine::run(&step_config, seeds, stop.clone())
                    .await
                    .map_err(|source| CapacityError::Run { rate, source })?;
                result.write(&file)?;
                step_of(rate, &result, file)
            }
            Some(scaled) => {
                let result = run_mix(scaled, &step_config, seeds, stop.clone())
                    .await
                    .map_err(|source| CapacityError::Run { rate, source })?;
                result.write(&file)?;
                step_of_mix(rate, &result, file)
            }
        };
        let cpu_after = target_pid.and_then(process_cpu_time);
        if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
            step.target_cpu_s = Some(after.saturating_sub(before).as_secs_f64());
        }
        let own_after = process_cpu_time(std::process::id());
        if let (Some(before), Some(after)) = (own_before, own_after) {
            step.generator_cpu_s = Some(after.saturating_sub(before).as_secs_f64());
        }
        on_step(&step);
        search.record(step);
        if stop.is_requested() {
            break Stop::Interrupted;
        }
    };
    Ok(CapacityReport {
        scenario: mix.map_or_else(
            || config.scenario.name().to_owned(),
            |mix| format!("mix {mix}"),
        ),
        target: config.target.clone(),
        client: client_label(config),
        highest_pass: search.highest_pass().cloned(),
        lowest_failure: search.lowest_failure().cloned(),
        stopped,
        steps: search.steps().to_vec(),
    })
}

fn default_client_label() -> String {
    "client_secret_basic".to_owned()
}

/// How the run's client authenticates (its metadata name) and whether it binds its tokens.
fn client_label(config: &RunConfig) -> String {
    let method = config.client.auth.metadata_name();
    if config.dpop {
        format!("{method} + DPoP")
    } else {
        method.to_owned()
    }
}

/// A step of a mix: passed when every scenario passed; its p99 the worst scenario's, its rate and
/// requests theirs together, each failure named by its scenario.
fn step_of_mix(rate: f64, mix: &MixResult, file: PathBuf) -> Step {
    let sections = &mix.sections;
    Step {
        rate_per_s: rate,
        passed: mix.verdict == Verdict::Pass,
        p99_ms: sections
            .iter()
            .filter_map(|section| section.observations().p99_latency_ms)
            .reduce(f64::max),
        achieved_rate_per_s: sections
            .iter()
            .map(|section| section.steady_state_achieved_rate_per_s)
            .sum(),
        failures: sections
            .iter()
            .flat_map(|section| {
                section
                    .judge(&section.threshold_config)
                    .failures()
                    .into_iter()
                    .map(|failure| format!("{}: {failure}", section.scenario))
            })
            .collect(),
        result_file: Some(file),
        requests: sections.iter().map(|section| section.requests.total).sum(),
        target_cpu_s: None,
        generator_cpu_s: None,
        iterations: sections
            .iter()
            .map(|section| section.iterations.completed + section.iterations.failed)
            .sum(),
    }
}

fn step_of(rate: f64, result: &RunResult, file: PathBuf) -> Step {
    Step {
        rate_per_s: rate,
        passed: result.verdict == Verdict::Pass,
        p99_ms: result.observations().p99_latency_ms,
        achieved_rate_per_s: result.steady_state_achieved_rate_per_s,
        failures: result.judge(&result.threshold_config).failures(),
        result_file: Some(file),
        requests: result.requests.total,
        target_cpu_s: None,
        generator_cpu_s: None,
        iterations: result.iterations.completed + result.iterations.failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: Plan = Plan {
        start_rate: 100.0,
        factor: 2.0,
        max_rate: 10_000.0,
        precision: 0.05,
        max_steps: 20,
        max_time: Duration::from_secs(3600),
        cool_down: Duration::ZERO,
    };

    /// Runs the search against a target that holds any rate up to `edge`.
    fn find(plan: Plan, edge: f64) -> (Search, Stop) {
        let mut search = Search::new(plan);
        loop {
            match search.next(Duration::ZERO) {
                Ok(rate) => search.record(Step {
                    rate_per_s: rate,
                    passed: rate <= edge,
                    p99_ms: Some(1.0),
                    achieved_rate_per_s: rate,
                    failures: Vec::new(),
                    result_file: None,
                    requests: 0,
                    target_cpu_s: None,
                    generator_cpu_s: None,
                    iterations: 0,
                }),
                Err(stop) => return (search, stop),
            }
        }
    }

    fn rates(search: &Search) -> Vec<f64> {
        search.steps().iter().map(|step| step.rate_per_s).collect()
    }

    #[test]
    fn it_doubles_until_a_failure_then_bisects_to_the_precision() {
        let (search, stop) = find(PLAN, 1234.0);
        assert_eq!(stop, Stop::Precise);
        assert_eq!(rates(&search)[..5], [100.0, 200.0, 400.0, 800.0, 1600.0]);
        let pass = search.highest_pass().unwrap().rate_per_s;
        let fail = search.lowest_failure().unwrap().rate_per_s;
        assert!(pass <= 1234.0 && fail > 1234.0, "{pass} {fail}");
        assert!(fail - pass <= pass * 0.05, "{pass} {fail}");
        assert!(search.steps().len() <= 10, "{:?}", rates(&search));
    }

    #[test]
    fn a_failing_start_goes_down_and_a_passing_maximum_stops() {
        let (search, stop) = find(PLAN, 30.0);
        assert_eq!(stop, Stop::Precise);
        assert_eq!(rates(&search)[..3], [100.0, 50.0, 25.0]);
        assert!(search.highest_pass().unwrap().rate_per_s <= 30.0);

        let (search, stop) = find(PLAN, 1e9);
        assert_eq!(stop, Stop::MaxRatePassed);
        assert_eq!(search.highest_pass().unwrap().rate_per_s, 10_000.0);

        let (_, stop) = find(PLAN, 0.5);
        assert_eq!(stop, Stop::NothingPassed);
    }

    #[test]
    fn this_process_cpu_time_is_read_and_grows() {
        let pid = std::process::id();
        let before = process_cpu_time(pid).unwrap();
        let spin = std::time::Instant::now();
        let mut sum = 0_u64;
        while spin.elapsed() < Duration::from_millis(200) {
            sum = sum.wrapping_add(std::hint::black_box(1));
        }
        assert!(sum > 0);
        let after = process_cpu_time(pid).unwrap();
        assert!(after > before, "{before:?} -> {after:?}");
        assert_eq!(process_cpu_time(u32::MAX), None);
    }

    #[test]
    fn the_budgets_bound_the_search() {
        let (search, stop) = find(
            Plan {
                max_steps: 3,
                ..PLAN
            },
            1234.0,
        );
        assert_eq!(stop, Stop::MaxSteps);
        assert_eq!(search.steps().len(), 3);
        let search = Search::new(PLAN);
        assert_eq!(search.next(Duration::from_secs(3600)), Err(Stop::MaxTime));
    }
}
