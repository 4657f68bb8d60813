//! The `loadgen` command line, one module per command (as rust-analyzer's `flags.rs`): `seed`,
//! `run`, `report`, `capacity` and `plan`. Exit codes: 0 pass, 99 a threshold failed (k6's convention),
//! 1 an error. Nothing in the library imports this.

mod api_args;
mod capacity;
mod mix_args;
mod plan;
mod report;
mod run;
mod seed;
mod shared_args;
mod sign_in_args;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use loadgen::Verdict;

use crate::cli::capacity::CapacityArgs;
use crate::cli::plan::PlanArgs;
use crate::cli::report::ReportArgs;
use crate::cli::run::RunArgs;
use crate::cli::seed::SeedArgs;

pub(crate) const EXIT_THRESHOLDS_FAILED: u8 = 99;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Seeds and an open-model load generator for OIDC token endpoints"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Make seed files through the IdP's own login and consent pages, /authorize and /token.
    Seed(Box<SeedArgs>),
    /// Run one scenario at an arrival rate and write its result.
    Run(Box<RunArgs>),
    /// Print the summary of result files; several shards of one run are merged first.
    Report(ReportArgs),
    /// Find the highest rate the target holds under the gate: raise the rate by a factor until
    /// a step fails, then bisect; each step is a whole run on fresh seeds, its result kept.
    Capacity(Box<CapacityArgs>),
    /// Print what a mix or a preset (--preset P --mau N) would run: each scenario's rate and
    /// VUs, the seeds it needs, and the commands that seed and run it.
    Plan(Box<PlanArgs>),
}
/// Runs one command.
pub(crate) async fn execute(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Seed(args) => seed::execute(*args).await,
        Command::Run(args) => run::execute(*args).await,
        Command::Report(args) => report::execute(&args),
        Command::Capacity(args) => capacity::execute(*args).await,
        Command::Plan(args) => plan::execute(&args),
    }
}

pub(crate) fn exit_for(verdict: Verdict) -> ExitCode {
    match verdict {
        Verdict::Pass => ExitCode::SUCCESS,
        Verdict::Fail => ExitCode::from(EXIT_THRESHOLDS_FAILED),
    }
}
