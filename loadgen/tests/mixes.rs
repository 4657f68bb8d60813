//! Mixes against the in-process mock IdP: four scenarios side by side from one start, each
//! sending exactly its own schedule; the result file read back; two shards of one mix merged
//! section by section; a scenario that cannot run stopping the mix with its name.

mod common;

use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result};
use common::{assert_clean, make_seeds, run_config, spawn_idp};
use loadgen::plan::shard::{Shard, parse_start};
use loadgen::results::mix_result::{MixResult, ResultFile};
use loadgen::run::mix::run_mix;
use loadgen::run::mix::spec::MixSpec;
use loadgen::{LoadProfile, RunConfig, ScenarioKind, Seeds, Verdict, stop_signal};

fn profile() -> LoadProfile {
    LoadProfile {
        rate_per_s: 1.0,
        ramp_up_s: 0.5,
        steady_s: 1.5,
        ramp_down_s: 0.5,
    }
}

fn all_four() -> MixSpec {
    "token-code=20,client-credentials=40,refresh-storm=40,login=10"
        .parse()
        .expect("the mix is well formed")
}

/// The mix's seeds, sized as `loadgen seed --mix` sizes them.
async fn seeds_for(mix: &MixSpec, target: &str, max_vus: usize) -> Result<Seeds> {
    let counts = mix.seed_counts(&profile(), max_vus)?;
    make_seeds(
        target,
        usize::try_from(counts.codes)?,
        usize::try_from(counts.refresh_families)?,
        usize::try_from(counts.sessions)?,
    )
    .await
}

fn base(target: &str, max_vus: usize) -> RunConfig {
    let mut config = run_config(ScenarioKind::TokenCode, target, profile(), max_vus);
    config.users.count = 20;
    config
}

fn actual_start(section: &loadgen::RunResult) -> Result<SystemTime> {
    let run = section.run.as_ref().context("a section names its run")?;
    parse_start(&run.actual_start).map_err(anyhow::Error::msg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_scenarios_run_side_by_side_each_its_own_schedule_from_one_start() -> Result<()> {
    let idp = spawn_idp().await?;
    let mix = all_four();
    let seeds = seeds_for(&mix, &idp.base_url(), 12).await?;
    let (_handle, stop) = stop_signal();
    let result = run_mix(&mix, &base(&idp.base_url(), 12), seeds, stop).await?;
    assert_eq!(result.verdict, Verdict::Pass);
    let names: Vec<&str> = result
        .sections
        .iter()
        .map(|s| s.scenario.as_str())
        .collect();
    assert_eq!(
        names,
        ["token-code", "client-credentials", "refresh-storm", "login"]
    );
    let first_start = actual_start(&result.sections[0])?;
    for (section, entry) in result.sections.iter().zip(mix.entries()) {
        assert_clean(section);
        let schedule = LoadProfile {
            rate_per_s: entry.rate_per_s,
            ..profile()
        };
        assert_eq!(
            section.iterations.scheduled,
            schedule.scheduled_iterations(),
            "{}",
            section.scenario
        );
        assert_eq!(section.load_profile.profile.rate_per_s, entry.rate_per_s);
        // One start line: the schedules began within a few milliseconds of each other.
        let apart = actual_start(section)?
            .duration_since(first_start)
            .or_else(|late| Ok::<_, anyhow::Error>(late.duration()))?;
        assert!(apart < Duration::from_millis(50), "{apart:?}");
    }
    // VUs split by rate, 12 x 20/110 ..., the largest remainders rounded up, one at least.
    let vus: Vec<u64> = result
        .sections
        .iter()
        .map(|s| s.load_profile.max_vus)
        .collect();
    assert_eq!(vus, [2, 5, 4, 1]);
    assert_eq!(vus.iter().sum::<u64>(), 12);

    let directory = tempfile::tempdir()?;
    let path = directory.path().join("mix.json");
    result.write(&path)?;
    match ResultFile::read(&path)? {
        ResultFile::Mix(read) => {
            assert_eq!(read.mix, result.mix);
            assert_eq!(read.verdict, result.verdict);
            for (read, written) in read.sections.iter().zip(&result.sections) {
                assert_eq!(read.scenario, written.scenario);
                assert_eq!(read.iterations, written.iterations);
                assert_eq!(read.requests, written.requests);
                assert_eq!(read.checks, written.checks);
                assert_eq!(read.histograms, written.histograms);
            }
        }
        ResultFile::Run(_) => panic!("a mix's file was read as one run"),
    }
    idp.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_of_a_mix_merge_section_by_section_into_the_whole_schedule() -> Result<()> {
    let idp = spawn_idp().await?;
    let mix: MixSpec = "client-credentials=30,refresh-storm=20".parse()?;
    let seeds = seeds_for(&mix, &idp.base_url(), 8).await?;
    let start_at = SystemTime::now() + Duration::from_millis(1500);
    let mut shards = tokio::task::JoinSet::new();
    for index in 0..2 {
        let shard = Shard::new(index, 2)?;
        let config = RunConfig {
            shard,
            start_at: Some(start_at),
            ..base(&idp.base_url(), 8)
        };
        let seeds = seeds.clone().for_shard(shard)?;
        let mix = mix.clone();
        shards.spawn(async move {
            let (_handle, stop) = stop_signal();
            run_mix(&mix, &config, seeds, stop)
                .await
                .map(|result| (format!("shard-{index}.json"), result))
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = shards.join_next().await {
        results.push(joined??);
    }
    let merged = MixResult::merge(&results, Duration::from_secs(1))?;
    assert_eq!(merged.verdict, Verdict::Pass);
    for (section, entry) in merged.sections.iter().zip(mix.entries()) {
        assert_eq!(section.shards, 2);
        let whole = LoadProfile {
            rate_per_s: entry.rate_per_s,
            ..profile()
        };
        assert_eq!(section.iterations.scheduled, whole.scheduled_iterations());
        assert_eq!(section.iterations.completed, whole.scheduled_iterations());
    }
    // Shards of another mix are not merged with these.
    let other = MixResult::new("login=1".into(), vec![]);
    let error = MixResult::merge(
        &[results[0].clone(), ("other.json".into(), other)],
        Duration::from_secs(1),
    )
    .unwrap_err();
    assert!(error.to_string().contains("cannot merge"), "{error}");
    idp.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_that_cannot_run_stops_the_mix_and_is_named() -> Result<()> {
    let idp = spawn_idp().await?;
    let mix: MixSpec = "client-credentials=10,refresh-storm=10".parse()?;
    // No families: refresh-storm cannot set up its VUs, and client-credentials must not wait at
    // the start line for it forever.
    let (_handle, stop) = stop_signal();
    let error = tokio::time::timeout(
        Duration::from_secs(20),
        run_mix(&mix, &base(&idp.base_url(), 4), Seeds::default(), stop),
    )
    .await?
    .unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("the mix's refresh-storm scenario could not run")
            && message.contains("refresh-token families"),
        "{message}"
    );
    idp.shutdown().await;
    Ok(())
}
