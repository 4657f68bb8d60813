//! `cargo xtask shards --n N [--quick]`: TEST 1-3 sent by N loadgen processes as shards of one
//! run against one mock-idp on this machine, each seeding its own slice, starting together,
//! merged and gated with `loadgen report --gate`; then the single-process run of the same
//! profile, and `gate shards` holds the merge to it (same scheduled iterations, no seed used
//! twice, the shards' rates adding up to the target).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{Result, bail, ensure};

use crate::children::{EXIT_THRESHOLD_FAILED, Profile, SeedCounts, TestRun};
use crate::flags::ShardsArgs;
use crate::pipeline::{MAX_VUS, SPARE_FAMILIES, TESTS, standard_profile};
use crate::process::interrupted;
use crate::run_dir::RunDir;
use crate::workspace::Workspace;

/// How far ahead of the shards' launch their common start is: time to start N processes, fetch
/// discovery and set up their VUs on a loaded two-core machine.
const START_LEAD: Duration = Duration::from_secs(6);

/// Runs the comparison; fails when a run fails its gate or the merge does not stand for the
/// single run.
pub fn run(args: &ShardsArgs) -> Result<()> {
    ensure!(
        args.n >= 2,
        "--n {} is not a sharded run: give 2 shards or more",
        args.n
    );
    let workspace = Workspace::find()?;
    let run_dir = workspace.new_run_dir("-shards")?;
    let profile = standard_profile(args.rate, args.quick);
    println!(
        "shards {}: TEST 1-3 at {}/s ({} s ramps, {} s steady), {} shards against single runs; \
         files in {}",
        run_dir.id(),
        profile.rate,
        profile.ramp.as_secs(),
        profile.steady.as_secs(),
        args.n,
        run_dir.path().display()
    );
    workspace.build_binaries()?;
    let mut idp = workspace.boot_idp(&run_dir, &[])?;
    let compared = compare(&workspace, &run_dir, &idp.base_url, profile, args.n);
    idp.stop();
    compared
}

fn compare(
    workspace: &Workspace,
    run_dir: &RunDir,
    target: &str,
    profile: Profile,
    count: u32,
) -> Result<()> {
    let loadgen = workspace.loadgen();
    let counts = SeedCounts {
        codes_for: Some(profile),
        refresh_families: MAX_VUS + SPARE_FAMILIES,
        sessions: MAX_VUS,
    };
    let shard_seeds = |index: u32| run_dir.path().join(format!("seeds-shard-{index}"));
    println!("\n==> seed: each of {count} shards its own slice, side by side; then the single run");
    loadgen.seed_shards(target, counts, count, shard_seeds)?;
    let single_seeds = run_dir.seeds();
    loadgen.seed(target, counts, &single_seeds)?;

    let mut pairs = Vec::with_capacity(TESTS.len());
    let mut failures = Vec::new();
    for (test_id, scenario, stem) in TESTS {
        if interrupted() {
            bail!("interrupted before {test_id}");
        }
        let start = SystemTime::now() + START_LEAD;
        let start_at = humantime::format_rfc3339_seconds(start).to_string();
        println!("\n==> {test_id} ({scenario}): {count} shards starting at {start_at}");
        let shard_result = |index: u32| run_dir.path().join(format!("{stem}.shard-{index}.json"));
        let shard_files: Vec<PathBuf> = (0..count).map(shard_result).collect();
        let seeds: Vec<PathBuf> = (0..count).map(shard_seeds).collect();
        let codes = loadgen.run_shards(count, &start_at, |index| TestRun {
            test_id,
            scenario,
            target,
            seeds: &seeds[index as usize],
            profile,
            max_vus: MAX_VUS,
            out: &shard_files[index as usize],
        })?;
        // A shard exits 0 whatever its figures: the run is judged once, on the merge.
        for (index, code) in codes.iter().enumerate() {
            ensure!(
                *code == 0,
                "{test_id}: shard {index}/{count} exited with {code}"
            );
        }
        println!("\n==> {test_id}: merge the shards and gate the merge (loadgen report --gate)");
        let merged = run_dir.path().join(format!("{stem}.merged.json"));
        match loadgen.report(&shard_files, &merged)? {
            0 => {}
            EXIT_THRESHOLD_FAILED => failures.push(format!("{test_id}: the merge failed the gate")),
            code => bail!("{test_id}: the shards could not be merged (loadgen exited {code})"),
        }

        println!("\n==> {test_id}: the single-process run");
        let single = run_dir.path().join(format!("{stem}.single.json"));
        let code = loadgen.run(&TestRun {
            test_id,
            scenario,
            target,
            seeds: &single_seeds,
            profile,
            max_vus: MAX_VUS,
            out: &single,
        })?;
        match code {
            0 => {}
            EXIT_THRESHOLD_FAILED => {
                failures.push(format!("{test_id}: the single run failed the gate"));
            }
            code => bail!("{test_id}: the single run exited with {code}"),
        }
        pairs.push((merged, single));
    }

    println!("\n==> the merged shards beside the single runs (gate shards)");
    let table = run_dir.path().join("shards.md");
    if !workspace.gate().shards(&pairs, &table)? {
        failures.push("a merge does not stand for its single run (see above)".to_owned());
    }
    println!("table: {}", table.display());
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    println!("PASS");
    Ok(())
}
