//! Mixes: several scenarios run side by side from one start, each at its own rate on its share
//! of the virtual users, with the seeds it spends; one [`MixResult`] with a section per scenario.
//! What a mix is lives in [`spec`]; presets sized from users in [`preset`].

pub mod preset;
pub mod spec;

use std::sync::Arc;

use tokio::task::JoinSet;

use crate::results::mix_result::MixResult;
use crate::run::config::RunConfig;
use crate::run::engine::{RunError, run};
use crate::run::scenario::{ScenarioKind, SeedKind};
use crate::run::start_line::StartLine;
use crate::run::stop::StopSignal;
use crate::seeding::seed_files::Seeds;
use crate::terminal::ProgressMode;
use spec::MixSpec;

/// The configuration of each scenario of `mix`, from `base` (the target, client, checks,
/// thresholds and profile's ramps and steady time shared by all): its own rate, its share of
/// `base.max_vus` (at least one on every shard), one start line for all; the seeds written back
/// only by the scenario that holds families, `--mint-ahead` only for token-code.
pub fn section_configs(mix: &MixSpec, base: &RunConfig) -> Result<Vec<RunConfig>, RunError> {
    let spends_codes = mix
        .entries()
        .iter()
        .any(|entry| entry.scenario == ScenarioKind::TokenCode);
    if base.mint_ahead && !spends_codes {
        return Err(RunError::MintAheadWithoutCodes("this mix"));
    }
    let vus = mix.vus(base.max_vus, base.shard.count())?;
    let line = Arc::new(StartLine::new(mix.entries().len()));
    Ok(mix
        .entries()
        .iter()
        .zip(vus)
        .map(|(entry, vus)| {
            let mut config = base.clone();
            config.scenario = entry.scenario;
            config.profile.rate_per_s = entry.rate_per_s;
            config.max_vus = vus;
            config.test_id = None;
            config.progress = ProgressMode::Hidden;
            config.start_line = Some(Arc::clone(&line));
            config.run_id = base
                .run_id
                .as_ref()
                .map(|id| format!("{id}-{}", entry.scenario.name()));
            if entry.scenario.seed_kind() != Some(SeedKind::RefreshFamilies) {
                config.seeds_out = None;
            }
            config.api = None;
            config.mint_ahead &= entry.scenario == ScenarioKind::TokenCode;
            config
        })
        .collect())
}

/// Runs every scenario of `mix` side by side on `seeds` and returns their result. Fails when any
/// scenario cannot be carried out (the others are stopped then), naming it.
pub async fn run_mix(
    mix: &MixSpec,
    base: &RunConfig,
    seeds: Seeds,
    stop: StopSignal,
) -> Result<MixResult, RunError> {
    let configs = section_configs(mix, base)?;
    let mut runs = JoinSet::new();
    for (index, config) in configs.into_iter().enumerate() {
        let seeds = seeds.clone();
        let stop = stop.clone();
        runs.spawn(async move {
            let result = run(&config, seeds, stop).await;
            (index, config.scenario, result)
        });
    }
    let mut sections = Vec::with_capacity(mix.entries().len());
    while let Some(joined) = runs.join_next().await {
        let (index, scenario, result) =
            joined.map_err(|panic| RunError::Panicked(panic.to_string()))?;
        match result {
            Ok(result) => sections.push((index, result)),
            // The others wait at the start line for this one, or run on: stop them all.
            Err(error) => {
                runs.abort_all();
                return Err(RunError::MixSection {
                    scenario: scenario.name(),
                    source: Box::new(error),
                });
            }
        }
    }
    sections.sort_by_key(|(index, _)| *index);
    Ok(MixResult::new(
        mix.to_string(),
        sections.into_iter().map(|(_, result)| result).collect(),
    ))
}
