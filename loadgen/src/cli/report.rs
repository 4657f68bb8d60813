//! `loadgen report`: the summary of result files, shards of one run merged first.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use loadgen::RunResult;
use loadgen::results::printer::summary;

use crate::cli::exit_for;
use crate::cli::shared_args::OutputArgs;

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// Result files. Several are merged: the shards of one run (all of them, once each), or
    /// runs made side by side.
    #[arg(required = true)]
    pub(crate) files: Vec<PathBuf>,
    /// Also write the (merged) result here.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Exit 99 when the (merged) result fails its thresholds, as `loadgen run` does; without it
    /// the report only prints.
    #[arg(long)]
    pub(crate) gate: bool,
    #[command(flatten)]
    pub(crate) outputs: OutputArgs,
    /// The most the shards' actual starts may differ.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub(crate) max_start_skew: Duration,
}

pub(crate) fn execute(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let results = args
        .files
        .iter()
        .map(|path| Ok((path.display().to_string(), RunResult::read(path)?)))
        .collect::<Result<Vec<_>, loadgen::results::result_file::ResultError>>()?;
    let merged = loadgen::merge_results(&results, args.max_start_skew)?;
    if let Some(out) = &args.out {
        merged.write(out).context("writing the merged result")?;
    }
    let text = summary(&merged);
    print!("{text}");
    args.outputs.write(&merged, &text)?;
    if args.gate {
        Ok(exit_for(merged.verdict))
    } else {
        Ok(ExitCode::SUCCESS)
    }
}
