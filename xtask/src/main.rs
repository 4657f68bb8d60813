//! `cargo xtask`: the project's pipeline driver. It builds the binaries, boots mock-idp, seeds,
//! runs TEST 1-3, reconciles, checks snapshots, benches, summarizes and gates, running every
//! other crate as a process (rust-analyzer's xtask pattern: light, no workspace dependencies).

mod pipeline;
mod process;
mod wrk_compare;

use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    about = "Pipeline driver: boots mock-idp, seeds, runs TEST 1-3, gates, benches",
    after_help = "With no subcommand, runs the whole pipeline (the README's main job)."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    pipeline: PipelineArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The pre-merge check: fmt, clippy, tests, the quick pipeline, and a deliberate fault run
    /// that must be reported as failed.
    Verify,
    /// Collects the criterion estimates and the load tests' key figures (quick pipeline) in
    /// github-action-benchmark's format, appends them to the history, compares with the baseline.
    Perf {
        /// Fail when a figure regressed past its tolerance.
        #[arg(long)]
        strict: bool,
        /// Run the full 2-minute tests instead of the quick ones.
        #[arg(long)]
        full: bool,
    },
    /// Generator cost: loadgen's CPU time per request beside wrk's, same endpoint, same rate,
    /// same arrival pattern (evenly spaced requests), as medians over alternating rounds; fails
    /// above the target ratio.
    WrkCompare {
        /// Requests per second asked of wrk (one connection, a fixed delay before each
        /// request); loadgen runs at the rate wrk achieved.
        #[arg(long, default_value_t = 400)]
        rate: u32,
        /// How long each tool runs in each round.
        #[arg(long, default_value = "8s", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Rounds; the medians of the rounds are compared.
        #[arg(long, default_value_t = 5)]
        rounds: u32,
        /// Fail when loadgen's CPU per request is above this multiple of wrk's.
        #[arg(long, default_value_t = 1.5)]
        max_ratio: f64,
        /// Do not pin the IdP and the generators to one core.
        #[arg(long)]
        no_pin: bool,
    },
}

/// Flags of the pipeline (the default command).
#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    /// Same steps, shorter: 2 s ramps, 10 s steady, seeds scaled to fit.
    #[arg(long)]
    pub quick: bool,
    /// Iterations per second of TEST 1-3.
    #[arg(long, default_value_t = 300)]
    pub rate: u32,
    /// Steady-state duration of each test (default 120s, or 10s with --quick).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Run against an IdP that is already running (skips the boot and the reconciliation).
    #[arg(long, requires = "seeds")]
    pub target: Option<String>,
    /// Seed directory for --target (made with `loadgen seed`).
    #[arg(long, requires = "target")]
    pub seeds: Option<std::path::PathBuf>,
    /// Skip the criterion microbenchmarks.
    #[arg(long)]
    pub skip_benches: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    process::install_interrupt_handler()?;
    match cli.command {
        None => pipeline::run_pipeline(&cli.pipeline, pipeline::Mode::Gate),
        Some(Command::Verify) => pipeline::verify(),
        Some(Command::Perf { strict, full }) => {
            let args = PipelineArgs {
                quick: !full,
                ..cli.pipeline
            };
            pipeline::run_pipeline(&args, pipeline::Mode::Perf { strict })
        }
        Some(Command::WrkCompare {
            rate,
            duration,
            rounds,
            max_ratio,
            no_pin,
        }) => wrk_compare::wrk_compare(wrk_compare::Options {
            rate,
            duration,
            rounds,
            max_ratio,
            pin: !no_pin,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_is_well_formed() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
