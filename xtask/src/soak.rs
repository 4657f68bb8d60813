//! `cargo xtask soak`: a bounded refresh storm against mock-idp on loopback while its resident
//! memory and store sizes are sampled, to show that memory levels off instead of growing with
//! every rotation (rotated tokens leave after the replay window, expired state is swept).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};

use crate::children::{Profile, SeedCounts, TestRun};
use crate::flags::SoakArgs;
use crate::process::{IdpProcess, interrupted};
use crate::workspace::Workspace;

/// One sample of the provider while the storm runs.
#[derive(Debug, Clone)]
struct Sample {
    elapsed: Duration,
    rss_kib: u64,
    /// `(map, entries)` from `mock_idp_store_entries`, empty when the build has no such gauge.
    store_entries: Vec<(String, u64)>,
}

pub fn run(args: SoakArgs) -> Result<()> {
    let workspace = Workspace::find()?;
    workspace.build_binaries()?;
    let run_dir = workspace.new_run_dir("-soak")?;
    let seconds = |duration: Duration| format!("{}s", duration.as_secs());
    let access_token_ttl = seconds(args.access_token_ttl);
    let replay_window = seconds(args.replay_window);
    let mut idp_args = vec![
        "--sweep-interval",
        "5s",
        "--access-token-ttl",
        &access_token_ttl,
    ];
    if !args.no_replay_window {
        idp_args.extend(["--refresh-replay-window", &replay_window]);
    }
    let idp = match &args.idp_binary {
        // Another build (an older commit, say) to compare with, booted the same way.
        Some(binary) => {
            let mut command = Command::new(binary);
            command.args(["--addr", "127.0.0.1:0"]).args(&idp_args);
            IdpProcess::boot(command, &run_dir.idp_log(), Duration::from_secs(30))?
        }
        None => workspace.boot_idp(&run_dir, &idp_args)?,
    };
    let pid = idp.pid().context("mock-idp exited before the soak began")?;
    let target = idp.base_url.clone();

    let loadgen = workspace.loadgen();
    let seeds = run_dir.seeds();
    loadgen.seed(
        &target,
        SeedCounts {
            codes_for: None,
            refresh_families: args.families,
            sessions: 0,
        },
        &seeds,
    )?;
    let profile = Profile {
        rate: args.rate,
        ramp: Duration::from_secs(5),
        steady: args.duration,
    };
    let result = run_dir.result("soak");
    let mut storm = loadgen.spawn_run(&TestRun {
        test_id: "SOAK",
        scenario: "refresh-storm",
        target: &target,
        seeds: &seeds,
        profile,
        max_vus: args.families,
        out: &result,
    })?;

    let gate = workspace.gate();
    let metrics_file = run_dir.path().join("soak-metrics.txt");
    let started = Instant::now();
    let mut samples = Vec::new();
    let status = loop {
        if interrupted() {
            let _ = storm.kill();
            let _ = storm.wait();
            bail!("interrupted");
        }
        if let Some(status) = storm.try_wait()? {
            break status;
        }
        let store_entries = match gate.snapshot_metrics(&target, &metrics_file) {
            Ok(()) => store_entries(&std::fs::read_to_string(&metrics_file)?),
            Err(_) => Vec::new(),
        };
        let sample = Sample {
            elapsed: started.elapsed(),
            rss_kib: resident_kib(pid)?,
            store_entries,
        };
        println!("{}", describe(&sample));
        samples.push(sample);
        std::thread::sleep(args.sample_every);
    };
    drop(idp);
    write_csv(&run_dir.path().join("soak.csv"), &samples)?;
    ensure!(
        matches!(status.code(), Some(0 | 99)),
        "loadgen's refresh storm failed ({status}); its output above says why"
    );

    // Judged on the steady phase only: the ramp and the first replay window fill the maps.
    let steady_from = profile.ramp + args.replay_window + args.access_token_ttl;
    let steady: Vec<&Sample> = samples
        .iter()
        .filter(|sample| sample.elapsed >= steady_from)
        .collect();
    ensure!(
        steady.len() >= 4,
        "too few samples after the maps fill ({} s): run longer (--duration) or sample more often",
        steady_from.as_secs()
    );
    let middle = steady[steady.len() / 2].rss_kib as f64;
    let last = steady[steady.len() - 1].rss_kib as f64;
    let growth = (last - middle) / middle;
    println!(
        "resident memory over the second half of the steady phase: {:.1} MiB -> {:.1} MiB ({:+.1} %), \
         limit {:+.1} %; samples in {}",
        middle / 1024.0,
        last / 1024.0,
        growth * 100.0,
        args.max_growth * 100.0,
        run_dir.path().join("soak.csv").display()
    );
    ensure!(
        growth <= args.max_growth,
        "mock-idp's resident memory kept growing under a steady refresh storm ({:+.1} % over the \
         second half): something is kept that can never be used again",
        growth * 100.0
    );
    Ok(())
}

/// Resident set size of `pid`, from `/proc` (Linux).
fn resident_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("could not read /proc/PID/status: `cargo xtask soak` needs Linux")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS line in /proc/PID/status")
}

/// The `mock_idp_store_entries{map="..."}` series of a `gate metrics` snapshot (JSON, one
/// series per line: `"mock_idp_store_entries{map=\"grants\"}": 300.0,`).
fn store_entries(snapshot: &str) -> Vec<(String, u64)> {
    snapshot
        .lines()
        .filter_map(|line| line.split_once("mock_idp_store_entries{map=\\\""))
        .filter_map(|(_, rest)| {
            let (map, value) = rest.split_once("\\\"}\":")?;
            let value: f64 = value.trim().trim_end_matches(',').parse().ok()?;
            Some((map.to_owned(), value as u64))
        })
        .collect()
}

fn describe(sample: &Sample) -> String {
    let entries: Vec<String> = sample
        .store_entries
        .iter()
        .map(|(map, entries)| format!("{map}={entries}"))
        .collect();
    format!(
        "{:>5} s  rss {:>8.1} MiB  {}",
        sample.elapsed.as_secs(),
        sample.rss_kib as f64 / 1024.0,
        entries.join(" ")
    )
}

fn write_csv(path: &Path, samples: &[Sample]) -> Result<()> {
    let mut text = String::from("elapsed_s,rss_kib,refresh_tokens,access_tokens,grants\n");
    for sample in samples {
        let entries = |map: &str| {
            sample
                .store_entries
                .iter()
                .find(|(name, _)| name == map)
                .map(|(_, entries)| entries.to_string())
                .unwrap_or_default()
        };
        text.push_str(&format!(
            "{},{},{},{},{}\n",
            sample.elapsed.as_secs(),
            sample.rss_kib,
            entries("refresh_tokens"),
            entries("access_tokens"),
            entries("grants")
        ));
    }
    std::fs::write(path, text).with_context(|| format!("could not write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_entries_are_read_from_metrics() {
        let snapshot = r#"{
  "series": {
    "mock_idp_logins_total": 300.0,
    "mock_idp_store_entries{map=\"grants\"}": 12.0,
    "mock_idp_store_entries{map=\"codes\"}": 0.0,
    "mock_idp_tokens_issued_total{kind=\"id_token\"}": 3.0
  }
}"#;
        assert_eq!(
            store_entries(snapshot),
            [("grants".to_owned(), 12), ("codes".to_owned(), 0)]
        );
    }
}
