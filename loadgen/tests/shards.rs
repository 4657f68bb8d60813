//! Shards of one run against mock-idp, in one process: together they send the single run's
//! schedule, each seed once, and their merge is judged as that run; a shard without what it needs
//! stops before sending load, saying why.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result, ensure};
use common::{assert_clean, make_seeds, run_config, spawn_idp};
use loadgen::plan::shard::Shard;
use loadgen::run::engine::RunError;
use loadgen::seeding::seed_files::{codes_for_iterations, required_codes};
use loadgen::seeding::seeder::SeedConfig;
use loadgen::{LoadProfile, RunConfig, RunResult, ScenarioKind, Seeds, merge_results, stop_signal};

/// A profile with both ramps, so the slices must reproduce the ramps too.
fn ramped() -> LoadProfile {
    LoadProfile {
        rate_per_s: 60.0,
        ramp_up_s: 1.0,
        steady_s: 2.0,
        ramp_down_s: 1.0,
    }
}

fn sharded(config: &RunConfig, shard: Shard, start_at: SystemTime) -> RunConfig {
    RunConfig {
        shard,
        start_at: Some(start_at),
        ..config.clone()
    }
}

/// Runs `count` shards of `config` side by side on their slices of `seeds`, starting together.
async fn run_shards(config: &RunConfig, seeds: &Seeds, count: u32) -> Result<Vec<RunResult>> {
    let start_at = SystemTime::now() + Duration::from_millis(1500);
    let mut runs = tokio::task::JoinSet::new();
    for index in 0..count {
        let shard = Shard::new(index, count)?;
        let config = sharded(config, shard, start_at);
        let seeds = seeds.clone().for_shard(shard)?;
        runs.spawn(async move {
            let (_handle, stop) = stop_signal();
            loadgen::run(&config, seeds, stop).await
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = runs.join_next().await {
        results.push(joined??);
    }
    results.sort_by_key(|result| result.run.as_ref().and_then(|run| run.shard));
    Ok(results)
}

fn named(results: &[RunResult]) -> Vec<(String, RunResult)> {
    results
        .iter()
        .enumerate()
        .map(|(index, result)| (format!("shard-{index}.json"), result.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_send_the_single_runs_schedule_and_merge_into_it() -> Result<()> {
    let idp = spawn_idp().await?;
    let profile = ramped();
    let needed = usize::try_from(required_codes(&profile))?;
    let single_seeds = make_seeds(&idp.base_url(), needed, 0, 0).await?;
    let shared_seeds = make_seeds(&idp.base_url(), needed, 0, 0).await?;
    let config = run_config(ScenarioKind::TokenCode, &idp.base_url(), profile, 12);

    let (_handle, stop) = stop_signal();
    let single = loadgen::run(&config, single_seeds, stop).await?;
    assert_clean(&single);

    let shards = run_shards(&config, &shared_seeds, 3).await?;
    let scheduled = profile.scheduled_iterations();
    for (index, shard) in shards.iter().enumerate() {
        assert_clean(shard);
        let run = shard
            .run
            .as_ref()
            .context("a shard's result names its run")?;
        let expected = Shard::new(u32::try_from(index)?, 3)?;
        assert_eq!(run.shard, Some(expected));
        assert_eq!(shard.iterations.scheduled, expected.share(scheduled));
        assert_eq!(shard.load_profile.max_vus, 4);
        assert!(run.planned_start.is_some());
    }
    let merged = merge_results(&named(&shards), Duration::from_secs(1))?;
    assert_clean(&merged);
    assert_eq!(merged.iterations.scheduled, single.iterations.scheduled);
    assert_eq!(merged.iterations.completed, single.iterations.completed);
    assert_eq!(merged.load_profile.profile, profile);
    assert_eq!(merged.load_profile.max_vus, 12);
    assert_eq!(merged.shards, 3);
    // Every code was redeemed once: a code used twice would have been answered 400.
    assert_eq!(
        merged.requests.by_status.keys().collect::<Vec<_>>(),
        ["200"]
    );
    assert_eq!(merged.requests.total, scheduled);
    // Second by second, the shards were due exactly what the single run was due.
    let due = |result: &RunResult| -> Result<Vec<u64>> {
        Ok(result
            .timeline
            .as_ref()
            .context("a result has a timeline")?
            .intervals
            .iter()
            .map(|interval| interval.scheduled)
            .collect())
    };
    assert_eq!(due(&merged)?, due(&single)?);
    assert_eq!(due(&merged)?.iter().sum::<u64>(), scheduled);
    let run = merged.run.as_ref().context("the merge names its run")?;
    assert_eq!(run.shard, None);
    let skew = run.start_skew_ms.context("the merge reports the skew")?;
    assert!((0.0..1000.0).contains(&skew), "start skew {skew} ms");
    // Started together, the shards' steady-state rates add up to the profile's rate.
    let steady = merged.steady_state_achieved_rate_per_s;
    assert!(
        (steady - profile.rate_per_s).abs() <= profile.rate_per_s * 0.02,
        "steady rate {steady}/s"
    );
    idp.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_families_go_to_exactly_one_shard_each() -> Result<()> {
    let idp = spawn_idp().await?;
    let profile = ramped();
    let seeds = make_seeds(&idp.base_url(), 0, 6, 0).await?;
    let config = run_config(ScenarioKind::RefreshStorm, &idp.base_url(), profile, 6);
    let shards = run_shards(&config, &seeds, 2).await?;
    let mut users = BTreeSet::new();
    for (index, shard) in shards.iter().enumerate() {
        assert_clean(shard);
        let slice = seeds
            .clone()
            .for_shard(Shard::new(u32::try_from(index)?, 2)?)?;
        assert_eq!(slice.refresh_tokens.len(), 3);
        for family in &slice.refresh_tokens {
            ensure!(
                users.insert(family.user_id.clone()),
                "{} is on two shards",
                family.user_id
            );
        }
    }
    assert_eq!(users.len(), 6);
    let merged = merge_results(&named(&shards), Duration::from_secs(1))?;
    assert_clean(&merged);
    // A family rotated by two shards would be a replay: the provider would answer 400.
    assert_eq!(
        merged.requests.by_status.keys().collect::<Vec<_>>(),
        ["200"]
    );
    idp.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_shard_seeds_its_own_users_and_runs_on_them() -> Result<()> {
    let idp = spawn_idp().await?;
    let profile = ramped();
    let codes = usize::try_from(required_codes(&profile))?;
    let mut seen_users = BTreeSet::new();
    let mut results = Vec::new();
    let start_at = SystemTime::now() + Duration::from_secs(4);
    let config = run_config(ScenarioKind::TokenCode, &idp.base_url(), profile, 4);
    for index in 0..2 {
        let shard = Shard::new(index, 2)?;
        let seeds = loadgen::seeding::seeder::make_seeds(&SeedConfig {
            codes,
            refresh_families: 4,
            sessions: 4,
            concurrency: 8,
            shard,
            ..SeedConfig::new(idp.base_url())
        })
        .await?;
        assert_eq!(seeds.shard, Some(shard));
        assert_eq!(
            seeds.authorization_codes.len() as u64,
            shard.share(codes as u64)
        );
        assert_eq!(seeds.refresh_tokens.len(), 2);
        assert_eq!(seeds.sessions.len(), 2);
        let users: BTreeSet<String> = seeds
            .authorization_codes
            .iter()
            .map(|code| code.user_id.clone())
            .chain(
                seeds
                    .refresh_tokens
                    .iter()
                    .map(|family| family.user_id.clone()),
            )
            .chain(seeds.sessions.iter().map(|session| session.user_id.clone()))
            .collect();
        for user in &users {
            ensure!(
                seen_users.insert(user.clone()),
                "{user} seeded by two shards"
            );
        }
        // Seeds made for a shard are its own: taken whole, and refused to any other shard.
        let other = Shard::new(1 - index, 2)?;
        let refused = seeds.clone().for_shard(other).err().context("refused")?;
        assert!(
            refused.to_string().contains("loadgen seed --shard"),
            "{refused}"
        );
        results.push((sharded(&config, shard, start_at), seeds.for_shard(shard)?));
    }
    let mut runs = tokio::task::JoinSet::new();
    for (config, seeds) in results {
        runs.spawn(async move {
            let (_handle, stop) = stop_signal();
            loadgen::run(&config, seeds, stop).await
        });
    }
    let mut shards = Vec::new();
    while let Some(joined) = runs.join_next().await {
        shards.push(joined??);
    }
    let merged = merge_results(&named(&shards), Duration::from_secs(1))?;
    assert_clean(&merged);
    assert_eq!(merged.iterations.scheduled, profile.scheduled_iterations());
    idp.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_shard_short_of_seeds_or_of_a_start_stops_before_sending_load() -> Result<()> {
    let idp = spawn_idp().await?;
    let profile = ramped();
    let shard = Shard::new(1, 2)?;
    let config = run_config(ScenarioKind::TokenCode, &idp.base_url(), profile, 4);

    let without_start = RunConfig {
        shard,
        ..config.clone()
    };
    let (_handle, stop) = stop_signal();
    let error = loadgen::run(&without_start, Seeds::default(), stop)
        .await
        .err()
        .context("a shard without --start-at must not run")?;
    assert!(matches!(error, RunError::ShardWithoutStart(_)), "{error}");
    assert!(error.to_string().contains("--start-at"), "{error}");

    let few = make_seeds(&idp.base_url(), 20, 0, 0).await?;
    let start_at = SystemTime::now() + Duration::from_secs(60);
    let (_handle, stop) = stop_signal();
    let began = std::time::Instant::now();
    let error = loadgen::run(
        &sharded(&config, shard, start_at),
        few.for_shard(shard)?,
        stop,
    )
    .await
    .err()
    .context("a shard short of codes must not run")?;
    // Refused at once, not after waiting for the start a minute ahead.
    assert!(began.elapsed() < Duration::from_secs(30));
    let RunError::Seeds(short) = &error else {
        anyhow::bail!("expected too few seeds, got: {error}");
    };
    // Its slice of what the whole run needs, which is its slice of whole-run seeds that suffice.
    assert_eq!(
        short.needed,
        shard.share(codes_for_iterations(profile.scheduled_iterations()))
    );
    assert_eq!(short.available, 10);
    assert!(
        short.why.contains("shard 1/2 takes 1 in 2 of the"),
        "{}",
        short.why
    );
    idp.shutdown().await;
    Ok(())
}
