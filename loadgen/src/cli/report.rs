//! `loadgen report`: the summary of result files, shards of one run merged first.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use anyhow::bail;
use clap::Args;
use loadgen::Verdict;
use loadgen::results::mix_result::{MixResult, ResultFile};
use loadgen::results::printer::{mix_summary, summary};

use crate::cli::exit_for;
use crate::cli::shared_args::OutputArgs;

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// Result files. Several are merged: the shards of one run (all of them, once each), runs
    /// made side by side, or the shards of one mix (section by section).
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
    let files = args
        .files
        .iter()
        .map(|path| Ok((path.display().to_string(), ResultFile::read(path)?)))
        .collect::<Result<Vec<_>, loadgen::results::result_file::ResultError>>()?;
    let mut runs = Vec::new();
    let mut mixes = Vec::new();
    for (name, file) in files {
        match file {
            ResultFile::Run(result) => runs.push((name, *result)),
            ResultFile::Mix(mix) => mixes.push((name, mix)),
        }
    }
    if !runs.is_empty() && !mixes.is_empty() {
        bail!(
            "{} is a mix's result and {} one scenario's: report the shards of one mix, or runs \
             of single scenarios, not both together",
            mixes[0].0,
            runs[0].0
        );
    }
    if !mixes.is_empty() {
        let merged = MixResult::merge(&mixes, args.max_start_skew)?;
        if let Some(out) = &args.out {
            merged.write(out).context("writing the merged result")?;
        }
        let text = mix_summary(&merged);
        print!("{text}");
        args.outputs
            .write(&format!("mix {}", merged.mix), &merged.sections, &text)?;
        return Ok(gated(args.gate, merged.verdict));
    }
    let merged = loadgen::merge_results(&runs, args.max_start_skew)?;
    if let Some(out) = &args.out {
        merged.write(out).context("writing the merged result")?;
    }
    let text = summary(&merged);
    print!("{text}");
    let title = format!("{} — {}", merged.test_id, merged.scenario);
    args.outputs
        .write(&title, std::slice::from_ref(&merged), &text)?;
    Ok(gated(args.gate, merged.verdict))
}

/// Exit 99 on a failed verdict with --gate; success otherwise.
fn gated(gate: bool, verdict: Verdict) -> ExitCode {
    if gate {
        exit_for(verdict)
    } else {
        ExitCode::SUCCESS
    }
}
