//! Merging results: shards of one run into that run (every shard once, started within the
//! allowed skew), or runs made side by side into one; thresholds judged once, on the merge.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::plan::shard::parse_start;
use crate::results::histogram::{HistogramCodecError, add_histogram, decode_histogram};
use crate::results::names::{Check, Endpoint, TransportErrorKind};
use crate::results::recorder::{CheckTally, Recorder};
use crate::results::result::{RunMeta, RunResult};
use crate::results::result_file::ResultError;
use crate::results::shard_check::{ShardMergeError, ShardResult, check_shards};
use crate::results::timeline::Timeline;

impl RunResult {
    /// Rebuilds the recorder this result was made from (histograms, counts, checks).
    fn to_recorder(&self) -> Result<Recorder, HistogramCodecError> {
        let mut recorder = Recorder::new();
        for (name, measured) in &self.endpoints {
            // A name that is no endpoint's is a route of the `api` endpoint.
            let target = match Endpoint::from_name(name) {
                Some(endpoint) => recorder.endpoint_mut(endpoint),
                None => recorder.route_mut(name),
            };
            for (code, count) in &measured.requests.by_status {
                target.add_status_count(code.parse::<u16>().unwrap_or(0), *count);
            }
            for (kind, count) in &measured.requests.transport_errors {
                if let Some(kind) = TransportErrorKind::from_name(kind) {
                    target.add_error_count(kind, *count);
                }
            }
            add_histogram(
                &mut target.latency,
                &decode_histogram(&measured.histograms.latency)?,
            );
            add_histogram(
                &mut target.service_time,
                &decode_histogram(&measured.histograms.service_time)?,
            );
        }
        for (name, counts) in &self.checks {
            if let Some(check) = Check::from_name(name) {
                recorder.add_check_tally(
                    check,
                    CheckTally {
                        passed: counts.passed,
                        failed: counts.failed,
                    },
                );
            }
        }
        if let Some(timeline) = &self.timeline {
            recorder.timeline = Timeline::from_report(timeline)?;
        }
        if let Some(encoded) = &self.histograms.iteration_duration {
            add_histogram(
                &mut recorder.iteration_duration,
                &decode_histogram(encoded)?,
            );
        }
        if let Some(encoded) = &self.histograms.generator_lag {
            add_histogram(&mut recorder.generator_lag, &decode_histogram(encoded)?);
        }
        recorder.iterations_succeeded = self.iterations.completed;
        recorder.iterations_failed = self.iterations.failed;
        Ok(recorder)
    }
}
/// Merges results into one and judges the thresholds once, on the merged figures: histograms
/// are added and counts summed. `results` pairs each result with a name for messages (its file).
///
/// Shards of one run (`--shard I/N`, N above 1) must be all N shards of the same run id and
/// configuration, started within `max_start_skew` of each other; the merge is then that run,
/// with its profile. Other results are runs made side by side: their rates add up.
pub fn merge_results(
    results: &[(String, RunResult)],
    max_start_skew: Duration,
) -> Result<RunResult, ResultError> {
    let (_, first) = results.first().ok_or(ResultError::Empty)?;
    let sharded = results.iter().any(|(_, result)| {
        result
            .run
            .as_ref()
            .and_then(|run| run.shard)
            .is_some_and(|shard| !shard.is_whole())
    });
    let identity = if sharded {
        let shards: Vec<ShardResult<'_>> = results
            .iter()
            .map(|(name, result)| ShardResult {
                name,
                identity: result.run.as_ref(),
            })
            .collect();
        Some(check_shards(&shards, max_start_skew)?)
    } else if results.len() == 1 {
        return Ok(first.clone());
    } else {
        None
    };
    let mut recorder = Recorder::new();
    let mut meta = RunMeta {
        test_id: first.test_id.clone(),
        scenario: first.scenario.clone(),
        target: first.target.clone(),
        profile: first.load_profile.profile,
        max_vus: 0,
        timeout_ms: first.load_profile.timeout_ms,
        started_at: first.started_at.clone(),
        duration_s: 0.0,
        complete: true,
        incomplete_reason: None,
        shards: 0,
        scheduled: 0,
        dropped: 0,
        abandoned: 0,
        steady_state_started: 0,
        notes: Vec::new(),
        skipped_checks: Vec::new(),
        refresh_families: None,
        api_tokens: None,
        access_token_bases: BTreeMap::new(),
        failures: BTreeMap::new(),
        connections: None,
        gated_latency: first.gated_latency,
        run: None,
    };
    if !sharded {
        meta.profile.rate_per_s = 0.0;
    }
    let mut steady_rate = 0.0;
    let mut incomplete_reasons = Vec::new();
    // Shards: the run lasts from the earliest shard's start to the latest shard's end.
    let mut span: Option<(f64, f64)> = None;
    for (name, result) in results {
        if result.gated_latency != first.gated_latency {
            return Err(ResultError::Mismatch(
                format!(
                    "{} judged on {}",
                    first.test_id,
                    first.gated_latency.describe()
                ),
                format!(
                    "{} judged on {}",
                    result.test_id,
                    result.gated_latency.describe()
                ),
            ));
        }
        if result.scenario != first.scenario || result.test_id != first.test_id {
            return Err(ResultError::Mismatch(
                format!("{} {}", first.test_id, first.scenario),
                format!("{} {}", result.test_id, result.scenario),
            ));
        }
        recorder.merge(&result.to_recorder()?);
        if !sharded {
            meta.profile.rate_per_s += result.load_profile.profile.rate_per_s;
        }
        if let Some(run) = result.run.as_ref().filter(|_| sharded) {
            let start = parse_start(&run.actual_start)
                .map_err(|reason| ShardMergeError::BadStart {
                    path: name.clone(),
                    reason,
                })?
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            let end = start + result.duration_s;
            span = Some(span.map_or((start, end), |(earliest, latest)| {
                (earliest.min(start), latest.max(end))
            }));
        }
        meta.max_vus += result.load_profile.max_vus;
        meta.duration_s = meta.duration_s.max(result.duration_s);
        if result.started_at < meta.started_at {
            meta.started_at.clone_from(&result.started_at);
        }
        meta.complete &= result.complete;
        incomplete_reasons.extend(result.incomplete_reason.clone());
        meta.shards += result.shards;
        meta.scheduled += result.iterations.scheduled;
        meta.dropped += result.iterations.dropped;
        meta.refresh_families = match (meta.refresh_families, result.refresh_families) {
            (Some(sum), Some(counts)) => Some(sum.merged(counts)),
            (sum, counts) => sum.or(counts),
        };
        meta.api_tokens = match (meta.api_tokens.take(), &result.api_tokens) {
            (Some(sum), Some(figures)) => Some(sum.merged(figures)),
            (sum, figures) => sum.or_else(|| figures.clone()),
        };
        for (basis, count) in &result.access_token_bases {
            *meta.access_token_bases.entry(basis.clone()).or_default() += count;
        }
        for (cause, count) in &result.failures {
            *meta.failures.entry(cause.clone()).or_default() += count;
        }
        meta.connections = match (meta.connections.take(), &result.connections) {
            (Some(sum), Some(connections)) => Some(sum.merged(connections)),
            (sum, connections) => sum.or_else(|| connections.clone()),
        };
        steady_rate += result.steady_state_achieved_rate_per_s;
        meta.notes.extend(result.notes.iter().cloned());
        if result.target != first.target && !meta.target.contains(&result.target) {
            meta.target = format!("{}, {}", meta.target, result.target);
        }
    }
    if let Some((earliest, latest)) = span {
        meta.duration_s = latest - earliest;
    }
    meta.run = identity;
    if !incomplete_reasons.is_empty() {
        meta.incomplete_reason = Some(incomplete_reasons.join("; "));
    }
    meta.notes.sort();
    meta.notes.dedup();
    for (_, result) in results {
        meta.skipped_checks
            .extend(result.skipped_checks.iter().cloned());
    }
    meta.skipped_checks.sort();
    meta.skipped_checks.dedup();
    // Shards judge thresholds alike; take the first shard's.
    let mut merged = RunResult::from_recorder(meta, &recorder, &first.threshold_config)?;
    merged.steady_state_achieved_rate_per_s = steady_rate;
    // Seconds missing from one result (of a format before 5) would show as a dip: none at all.
    if results.iter().any(|(_, result)| result.timeline.is_none()) {
        merged.timeline = None;
    }
    Ok(merged)
}
