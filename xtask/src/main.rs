//! `cargo xtask`: the project's pipeline driver, in rust-analyzer's shape: this file parses the
//! flags and hands each command to its module; the other crates run as processes, so xtask has
//! no workspace dependency and compiles in seconds.

mod api;
mod capacity;
mod children;
mod flags;
mod fuzz;
mod mix;
mod perf;
mod pipeline;
mod process;
mod run_dir;
mod shards;
mod soak;
mod verify;
mod workspace;
mod wrk_compare;

use anyhow::Result;
use clap::Parser as _;

use crate::flags::{Cli, Command};

fn main() -> Result<()> {
    let cli = Cli::parse();
    process::install_interrupt_handler()?;
    match cli.command {
        None => match cli.pipeline.mix.clone() {
            Some(mix) => mix::run(&cli.pipeline, &mix),
            None => pipeline::run(&cli.pipeline, pipeline::Mode::Gate),
        },
        Some(Command::Verify { pipelines_only }) => verify::run(pipelines_only),
        Some(Command::Perf { strict, full }) => perf::run(cli.pipeline, strict, full),
        Some(Command::WrkCompare(args)) => wrk_compare::run(args),
        Some(Command::Soak(args)) => soak::run(args),
        Some(Command::Fuzz(args)) => fuzz::run(&args),
        Some(Command::Shards(args)) => shards::run(&args),
        Some(Command::Capacity(args)) => capacity::run(&args),
        Some(Command::Api(args)) => api::run(args),
    }
}
