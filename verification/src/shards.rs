//! The comparison of a sharded run, merged, with the single-process run of the same profile:
//! what `cargo xtask shards` holds a merge to (same scheduled iterations, no seed used twice, the
//! shards' rates adding up to the target), and the side-by-side table of their figures.

use loadgen::RunResult;
use serde::Serialize;

/// How far the shards' steady-state rates, added, may be from the profile's rate.
pub const RATE_TOLERANCE: f64 = 0.01;

/// One line of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShardComparison {
    pub test_id: String,
    /// Scheduled iterations: merged and single.
    pub scheduled: (u64, u64),
    /// Steady-state achieved rate, iterations per second: merged (the shards' added) and single.
    pub steady_rate: (f64, f64),
    /// The profile's steady rate.
    pub target_rate: f64,
    /// Gated latency p50, p95, p99 in ms: merged and single.
    pub p50_ms: (f64, f64),
    pub p95_ms: (f64, f64),
    pub p99_ms: (f64, f64),
    /// 400 answers of the merged run (a code or refresh token used twice is `invalid_grant`).
    pub merged_bad_requests: u64,
    /// The merged run's start skew between shards, ms.
    pub start_skew_ms: Option<f64>,
    /// What does not hold, in words; empty when the merge stands for the single run.
    pub problems: Vec<String>,
}

/// Compares a merged sharded run with the single-process run of the same profile.
pub fn compare(merged: &RunResult, single: &RunResult) -> ShardComparison {
    let gated = |result: &RunResult| result.observations();
    let (merged_latency, single_latency) = (gated(merged), gated(single));
    let target_rate = merged.load_profile.profile.rate_per_s;
    let merged_bad_requests = merged.requests.by_status.get("400").copied().unwrap_or(0);
    let mut problems = Vec::new();
    if merged.shards < 2 {
        problems.push(format!(
            "the merged result holds {} shard: it is not a sharded run",
            merged.shards
        ));
    }
    if merged.load_profile.profile != single.load_profile.profile {
        problems.push(
            "the sharded and the single run had different profiles: compare runs of one profile"
                .to_owned(),
        );
    }
    if merged.iterations.scheduled != single.iterations.scheduled {
        problems.push(format!(
            "the shards scheduled {} iterations together, the single run {}: the slices do not \
             add up to the schedule",
            merged.iterations.scheduled, single.iterations.scheduled
        ));
    }
    if merged_bad_requests > 0 {
        problems.push(format!(
            "the shards got {merged_bad_requests} answers 400: a code or refresh token was used \
             twice (invalid_grant), so the seeds were not split disjointly"
        ));
    }
    let off_by = (merged.steady_state_achieved_rate_per_s - target_rate).abs();
    if off_by > target_rate * RATE_TOLERANCE {
        problems.push(format!(
            "the shards' steady-state rates add up to {:.1}/s, not the target {target_rate}/s \
             within {:.0} %",
            merged.steady_state_achieved_rate_per_s,
            RATE_TOLERANCE * 100.0
        ));
    }
    ShardComparison {
        test_id: merged.test_id.clone(),
        scheduled: (merged.iterations.scheduled, single.iterations.scheduled),
        steady_rate: (
            merged.steady_state_achieved_rate_per_s,
            single.steady_state_achieved_rate_per_s,
        ),
        target_rate,
        p50_ms: (
            merged.iteration_duration.p50_ms,
            single.iteration_duration.p50_ms,
        ),
        p95_ms: (
            merged_latency.p95_latency_ms.unwrap_or(0.0),
            single_latency.p95_latency_ms.unwrap_or(0.0),
        ),
        p99_ms: (
            merged_latency.p99_latency_ms.unwrap_or(0.0),
            single_latency.p99_latency_ms.unwrap_or(0.0),
        ),
        merged_bad_requests,
        start_skew_ms: merged.run.as_ref().and_then(|run| run.start_skew_ms),
        problems,
    }
}

/// The comparisons as a Markdown table, merged beside single.
pub fn table(comparisons: &[ShardComparison]) -> String {
    let mut text = String::from(
        "| test | run | scheduled | steady rate /s | p50 ms | p95 ms | p99 ms | start skew ms |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for line in comparisons {
        let skew = line
            .start_skew_ms
            .map_or_else(|| "-".to_owned(), |skew| format!("{skew:.1}"));
        text.push_str(&format!(
            "| {} | shards merged | {} | {:.1} | {:.2} | {:.2} | {:.2} | {skew} |\n",
            line.test_id,
            line.scheduled.0,
            line.steady_rate.0,
            line.p50_ms.0,
            line.p95_ms.0,
            line.p99_ms.0
        ));
        text.push_str(&format!(
            "| {} | single process | {} | {:.1} | {:.2} | {:.2} | {:.2} | - |\n",
            line.test_id,
            line.scheduled.1,
            line.steady_rate.1,
            line.p50_ms.1,
            line.p95_ms.1,
            line.p99_ms.1
        ));
    }
    text
}
