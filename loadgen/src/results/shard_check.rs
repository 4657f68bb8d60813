//! What a merge requires of the results it is given as shards of one run: every shard once, of
//! one run id and configuration, started within the allowed skew.

use std::time::{Duration, SystemTime};

use crate::plan::shard::{RunIdentity, Shard, parse_start};

/// Why shards' results cannot be merged into one run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShardMergeError {
    /// Some results are shards, others are not.
    #[error(
        "{0} is not a shard of a run (it was run without --shard I/N with N above 1): merge \
         only the results of the shards of one run"
    )]
    NotAShard(String),
    /// Results of different runs.
    #[error(
        "{path} belongs to run {found}, not to run {expected} like {first}: merge only the \
         results of one run's shards"
    )]
    OtherRun {
        /// The result that differs.
        path: String,
        /// Its run id.
        found: String,
        /// The first result's run id.
        expected: String,
        /// The first result.
        first: String,
    },
    /// Same run id, different configuration.
    #[error(
        "{path} was run with another configuration than {first} (configuration hash {found} \
         against {expected}): every shard must be given the same scenario, target, profile, \
         VUs, client, checks, thresholds and start"
    )]
    OtherConfiguration {
        /// The result that differs.
        path: String,
        /// Its hash.
        found: String,
        /// The first result's hash.
        expected: String,
        /// The first result.
        first: String,
    },
    /// A shard appears twice.
    #[error("shard {shard} is given twice ({first} and {second}): give each shard's result once")]
    Duplicate {
        /// The shard.
        shard: Shard,
        /// One file.
        first: String,
        /// The other.
        second: String,
    },
    /// Shards are missing.
    #[error(
        "the run has {count} shards but {missing} are missing: a merge of part of a run would \
         judge part of its load; collect every shard's result"
    )]
    Missing {
        /// How many shards the run has.
        count: u32,
        /// The missing ones, `I/N` each.
        missing: String,
    },
    /// The shards did not start together.
    #[error(
        "the shards started {skew_ms:.0} ms apart ({earliest} first at {earliest_start}, \
         {latest} last at {latest_start}), more than the {limit_ms:.0} ms allowed: together \
         they did not send the planned schedule. Give --start-at a time far enough ahead for \
         every shard to be ready, and keep the machines' clocks synchronised (NTP)"
    )]
    StartSkew {
        /// The skew.
        skew_ms: f64,
        /// The bound.
        limit_ms: f64,
        /// The earliest shard.
        earliest: String,
        /// Its start.
        earliest_start: String,
        /// The latest shard.
        latest: String,
        /// Its start.
        latest_start: String,
    },
    /// A start time in a result is not readable.
    #[error("{path}: {reason}")]
    BadStart {
        /// The result.
        path: String,
        /// Why.
        reason: String,
    },
}

/// The start skew a merge accepts by default.
pub const DEFAULT_MAX_START_SKEW: Duration = Duration::from_secs(1);

/// One shard's result as a merge sees it: a name for messages and its identity.
#[derive(Debug, Clone, Copy)]
pub struct ShardResult<'a> {
    /// The file (or other name) of the result, for messages.
    pub name: &'a str,
    /// Its identity.
    pub identity: Option<&'a RunIdentity>,
}

/// Checks that `results` are every shard of one run, once each, started within `max_skew`, and
/// returns the merged identity.
pub fn check_shards(
    results: &[ShardResult<'_>],
    max_skew: Duration,
) -> Result<RunIdentity, ShardMergeError> {
    let mut shards = Vec::with_capacity(results.len());
    for result in results {
        let identity = result
            .identity
            .filter(|identity| identity.shard.is_some_and(|shard| !shard.is_whole()))
            .ok_or_else(|| ShardMergeError::NotAShard(result.name.to_owned()))?;
        let start =
            parse_start(&identity.actual_start).map_err(|reason| ShardMergeError::BadStart {
                path: result.name.to_owned(),
                reason,
            })?;
        shards.push((result.name, identity, start));
    }
    let Some(&(first_name, first, _)) = shards.first() else {
        return Err(ShardMergeError::Missing {
            count: 0,
            missing: String::new(),
        });
    };
    for &(name, identity, _) in &shards {
        if identity.run_id != first.run_id {
            return Err(ShardMergeError::OtherRun {
                path: name.to_owned(),
                found: identity.run_id.clone(),
                expected: first.run_id.clone(),
                first: first_name.to_owned(),
            });
        }
        if identity.config_hash != first.config_hash {
            return Err(ShardMergeError::OtherConfiguration {
                path: name.to_owned(),
                found: identity.config_hash.clone(),
                expected: first.config_hash.clone(),
                first: first_name.to_owned(),
            });
        }
    }
    // The configuration hash covers the shard count, so every shard names the same N.
    let count = first.shard.map_or(1, Shard::count);
    let mut seen: Vec<Option<&str>> = vec![None; count as usize];
    for &(name, identity, _) in &shards {
        let Some(shard) = identity.shard else {
            continue;
        };
        let Some(slot) = seen.get_mut(shard.index() as usize) else {
            continue;
        };
        if let Some(first) = slot {
            return Err(ShardMergeError::Duplicate {
                shard,
                first: (*first).to_owned(),
                second: name.to_owned(),
            });
        }
        *slot = Some(name);
    }
    let missing: Vec<String> = (0..count)
        .filter(|&index| seen[index as usize].is_none())
        .map(|index| format!("{index}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(ShardMergeError::Missing {
            count,
            missing: missing.join(", "),
        });
    }
    let earliest = shards
        .iter()
        .min_by_key(|(_, _, start)| *start)
        .copied()
        .unwrap_or((first_name, first, SystemTime::UNIX_EPOCH));
    let latest = shards
        .iter()
        .max_by_key(|(_, _, start)| *start)
        .copied()
        .unwrap_or(earliest);
    let skew = latest.2.duration_since(earliest.2).unwrap_or_default();
    let skew_ms = skew.as_secs_f64() * 1000.0;
    if skew > max_skew {
        return Err(ShardMergeError::StartSkew {
            skew_ms,
            limit_ms: max_skew.as_secs_f64() * 1000.0,
            earliest: earliest.0.to_owned(),
            earliest_start: earliest.1.actual_start.clone(),
            latest: latest.0.to_owned(),
            latest_start: latest.1.actual_start.clone(),
        });
    }
    Ok(RunIdentity {
        run_id: first.run_id.clone(),
        config_hash: first.config_hash.clone(),
        shard: None,
        planned_start: first.planned_start.clone(),
        actual_start: earliest.1.actual_start.clone(),
        start_skew_ms: Some(skew_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(shard: &str, start: &str) -> RunIdentity {
        RunIdentity {
            run_id: "run-a".into(),
            config_hash: "hash-a".into(),
            shard: Some(shard.parse().unwrap()),
            planned_start: Some("2026-11-23T10:00:00Z".into()),
            actual_start: start.into(),
            start_skew_ms: None,
        }
    }

    fn check(identities: &[(&str, RunIdentity)]) -> Result<RunIdentity, ShardMergeError> {
        let results: Vec<ShardResult<'_>> = identities
            .iter()
            .map(|(name, identity)| ShardResult {
                name,
                identity: Some(identity),
            })
            .collect();
        check_shards(&results, DEFAULT_MAX_START_SKEW)
    }

    #[test]
    fn every_shard_once_within_the_skew_merges_and_reports_the_skew() {
        let merged = check(&[
            ("b.json", identity("1/2", "2026-11-23T10:00:00.250Z")),
            ("a.json", identity("0/2", "2026-11-23T10:00:00.010Z")),
        ])
        .unwrap();
        assert_eq!(merged.shard, None);
        assert_eq!(merged.actual_start, "2026-11-23T10:00:00.010Z");
        assert_eq!(merged.start_skew_ms, Some(240.0));
    }

    #[test]
    fn a_missing_duplicate_foreign_or_late_shard_is_refused_in_words() {
        let start = "2026-11-23T10:00:00.000Z";
        let missing = check(&[("a.json", identity("0/3", start))]).unwrap_err();
        assert!(
            missing.to_string().contains("1/3, 2/3 are missing"),
            "{missing}"
        );

        let twice = check(&[
            ("a.json", identity("0/2", start)),
            ("b.json", identity("0/2", start)),
        ])
        .unwrap_err();
        assert!(
            twice.to_string().contains("shard 0/2 is given twice"),
            "{twice}"
        );

        let mut other = identity("1/2", start);
        other.run_id = "run-b".into();
        let foreign = check(&[("a.json", identity("0/2", start)), ("b.json", other)]).unwrap_err();
        assert!(
            matches!(foreign, ShardMergeError::OtherRun { .. }),
            "{foreign}"
        );

        let mut reconfigured = identity("1/2", start);
        reconfigured.config_hash = "hash-b".into();
        let configuration =
            check(&[("a.json", identity("0/2", start)), ("b.json", reconfigured)]).unwrap_err();
        assert!(
            matches!(configuration, ShardMergeError::OtherConfiguration { .. }),
            "{configuration}"
        );

        let late = check(&[
            ("a.json", identity("0/2", start)),
            ("b.json", identity("1/2", "2026-11-23T10:00:01.500Z")),
        ])
        .unwrap_err();
        assert!(late.to_string().contains("started 1500 ms apart"), "{late}");

        let mut single = identity("0/1", start);
        single.shard = Some(Shard::WHOLE);
        let not_a_shard = check(&[("whole.json", single)]).unwrap_err();
        assert!(matches!(not_a_shard, ShardMergeError::NotAShard(_)));
    }
}
