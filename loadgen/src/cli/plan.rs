//! `loadgen plan`: what a mix or a preset would run, without running it: each scenario's rate
//! and virtual users, the seeds to make, and the commands that seed and run it.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::Args;

use crate::cli::mix_args::MixArgs;
use crate::cli::shared_args::ProfileArgs;

#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    pub(crate) mix: MixArgs,
    /// The ramps and steady time every scenario of the mix follows (its --rate is not used: each
    /// scenario has its own).
    #[command(flatten)]
    pub(crate) profile: ProfileArgs,
    /// Virtual users of the whole mix, split in proportion to the rates.
    #[arg(long, env = "LOADGEN_MAX_VUS", default_value_t = 300)]
    pub(crate) max_vus: usize,
}

pub(crate) fn execute(args: &PlanArgs) -> anyhow::Result<ExitCode> {
    let Some((mix, preset)) = args.mix.mix()? else {
        bail!("give --mix SCENARIO=RATE,... or --preset P --mau N to plan");
    };
    if let Some(plan) = &preset {
        print!("{}", plan.describe());
    }
    let profile = args.profile.profile();
    println!(
        "\n  mix {mix}, {:.2} iterations/s in all:",
        mix.total_rate()
    );
    println!("  {:<20} {:>10} {:>6}", "scenario", "rate/s", "VUs");
    for (entry, vus) in mix.entries().iter().zip(mix.vus(args.max_vus, 1)?) {
        println!(
            "  {:<20} {:>10.2} {:>6}",
            entry.scenario.name(),
            entry.rate_per_s,
            vus
        );
    }
    let seeds = mix.seed_counts(&profile, args.max_vus)?;
    println!(
        "\n  seeds: {} authorization codes, {} refresh-token families, {} sessions",
        seeds.codes, seeds.refresh_families, seeds.sessions
    );
    // A preset as given when nothing changed its rates; otherwise the rates written out, so
    // the commands run exactly what is printed above.
    let what = match &preset {
        Some(plan) if !args.mix.changes_the_preset() => {
            format!("--preset {} --mau {}", plan.preset.name(), plan.mau)
        }
        _ => format!("--mix {mix}"),
    };
    let seconds = |s: f64| humantime::format_duration(Duration::from_secs_f64(s)).to_string();
    let timing = format!(
        "--ramp-up {} --duration {} --ramp-down {} --max-vus {}",
        seconds(profile.ramp_up_s),
        seconds(profile.steady_s),
        seconds(profile.ramp_down_s),
        args.max_vus
    );
    println!("\n  loadgen seed --target URL --out SEEDS {what} {timing}");
    println!("  loadgen run --target URL --seeds SEEDS {what} {timing}");
    Ok(ExitCode::SUCCESS)
}
