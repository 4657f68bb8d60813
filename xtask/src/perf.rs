//! `cargo xtask perf`: the pipeline (quick unless `--full`) whose figures go to the perf history
//! and are compared with the baseline; `--strict` fails on a regression past tolerance.

use anyhow::Result;

use crate::flags::PipelineArgs;
use crate::pipeline::{self, Mode};

/// Runs the pipeline for its figures.
pub fn run(args: PipelineArgs, strict: bool, full: bool) -> Result<()> {
    let args = PipelineArgs {
        quick: !full,
        ..args
    };
    pipeline::run(&args, Mode::Perf { strict })
}
