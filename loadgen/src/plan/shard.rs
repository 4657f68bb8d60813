//! Shards of one run spread over several machines: which slice of the schedule and of the seeds
//! each shard takes, the identity that ties a shard's result to its run, and the checks a merge
//! makes before it judges the shards as one run.
//!
//! Every shard computes the same global schedule and takes iteration `k` when `k mod N` is its
//! index, so N shards together send exactly the single machine's schedule, ramps included, each
//! at a 1/N share of the rate at every instant. Seeds are split the same way, so no code or
//! refresh-token family is used by two shards. No coordinator is involved: the shards agree
//! because they are given the same configuration and start time.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One shard of a run: index `index` of `count`, counted from 0 (as Kubernetes'
/// `JOB_COMPLETION_INDEX` and a matrix's index are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shard {
    index: u32,
    count: u32,
}

/// Why `--shard` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// Not `I/N`.
    #[error("'{0}' is not a shard: write I/N, for example 0/4 for the first of four shards")]
    Syntax(String),
    /// N is 0.
    #[error("a run cannot have 0 shards: N in I/N counts the shards, 1 or more")]
    NoShards,
    /// I is not below N.
    #[error("shard {index}/{count} does not exist: I counts from 0 to {}", count - 1)]
    OutOfRange {
        /// The index given.
        index: u32,
        /// The count given.
        count: u32,
    },
}

impl Shard {
    /// The whole run on one machine.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`.
    pub fn new(index: u32, count: u32) -> Result<Self, ShardError> {
        if count == 0 {
            return Err(ShardError::NoShards);
        }
        if index >= count {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(Self { index, count })
    }

    /// Position of this shard, from 0.
    pub fn index(self) -> u32 {
        self.index
    }

    /// How many shards the run has.
    pub fn count(self) -> u32 {
        self.count
    }

    /// Whether this is the whole run (one shard).
    pub fn is_whole(self) -> bool {
        self.count == 1
    }

    /// Whether item `k` of the run (an iteration, a seed, a virtual user) belongs to this shard.
    pub fn owns(self, k: u64) -> bool {
        k % u64::from(self.count) == u64::from(self.index)
    }

    /// The position of the run's item `k` among this shard's items (when the shard owns it).
    pub fn local(self, k: u64) -> u64 {
        k / u64::from(self.count)
    }

    /// How many of the run's items `0..total` belong to this shard.
    pub fn share(self, total: u64) -> u64 {
        let count = u64::from(self.count);
        total / count + u64::from(total % count > u64::from(self.index))
    }

    /// This shard's items of a list made for the whole run, in order.
    pub fn slice<T: Clone>(self, items: &[T]) -> Vec<T> {
        items
            .iter()
            .skip(self.index as usize)
            .step_by(self.count as usize)
            .cloned()
            .collect()
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(text: &str) -> Result<Self, ShardError> {
        let syntax = || ShardError::Syntax(text.to_owned());
        let (index, count) = text.trim().split_once('/').ok_or_else(syntax)?;
        let index = index.trim().parse().map_err(|_| syntax())?;
        let count = count.trim().parse().map_err(|_| syntax())?;
        Self::new(index, count)
    }
}

impl Serialize for Shard {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Shard {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Shard {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Shard".into()
    }

    fn json_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "I/N: shard I (from 0) of N.",
            "type": "string",
            "pattern": "^[0-9]+/[1-9][0-9]*$"
        })
    }
}

/// What ties a result to its run: the same for every shard of one run except `shard` and the
/// actual start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunIdentity {
    /// Names the run: `--run-id`, or derived from the configuration hash and the planned start,
    /// so that shards given the same configuration agree without talking to each other.
    pub run_id: String,
    /// SHA-256 of everything every shard must share (scenario, target, profile, VUs, timeout,
    /// client, checks, thresholds, shard count, planned start), hex.
    pub config_hash: String,
    /// This result's shard, `I/N`; absent once shards are merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// The start every shard waited for (`--start-at`), RFC 3339, UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_start: Option<String>,
    /// When this shard's schedule actually began (the earliest shard's, once merged), RFC 3339
    /// with milliseconds, UTC.
    pub actual_start: String,
    /// Merged results: the latest shard's actual start minus the earliest's, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_skew_ms: Option<f64>,
}

/// RFC 3339 with milliseconds, UTC, as results record starts.
pub fn format_start(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

/// Reads a start time given on the command line or recorded in a result.
pub fn parse_start(text: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339_weak(text.trim()).map_err(|_| {
        format!(
            "'{text}' is not a UTC time in RFC 3339: write it like 2026-11-23T14:05:00Z (for \
             example from `date -u -d '+2 min' +%Y-%m-%dT%H:%M:%SZ`)"
        )
    })
}

/// SHA-256 of `canonical`, hex.
pub fn hash_hex(canonical: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical)
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

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

    #[test]
    fn shards_take_every_nth_item_and_together_take_each_once() {
        for count in 1..=5_u32 {
            for total in [0_u64, 1, 7, 39_000] {
                let mut taken = vec![0_u32; total as usize];
                let mut shares = 0;
                for index in 0..count {
                    let shard = Shard::new(index, count).unwrap();
                    let owned: Vec<u64> = (0..total).filter(|&k| shard.owns(k)).collect();
                    assert_eq!(owned.len() as u64, shard.share(total), "{shard} of {total}");
                    for (position, &k) in owned.iter().enumerate() {
                        assert_eq!(shard.local(k), position as u64);
                        taken[k as usize] += 1;
                    }
                    let items: Vec<u64> = (0..total).collect();
                    assert_eq!(shard.slice(&items), owned);
                    shares += shard.share(total);
                }
                assert_eq!(shares, total);
                assert!(taken.iter().all(|&times| times == 1));
            }
        }
    }

    #[test]
    fn a_shard_is_written_i_slash_n_and_refused_in_words_otherwise() {
        let shard: Shard = "2/4".parse().unwrap();
        assert_eq!((shard.index(), shard.count()), (2, 4));
        assert_eq!(shard.to_string(), "2/4");
        assert_eq!(serde_json::to_string(&shard).unwrap(), "\"2/4\"");
        assert_eq!(serde_json::from_str::<Shard>("\"2/4\"").unwrap(), shard);
        assert_eq!(
            "4/4".parse::<Shard>().unwrap_err().to_string(),
            "shard 4/4 does not exist: I counts from 0 to 3"
        );
        assert_eq!("1/0".parse::<Shard>().unwrap_err(), ShardError::NoShards);
        assert!(
            "two of four"
                .parse::<Shard>()
                .unwrap_err()
                .to_string()
                .contains("write I/N")
        );
    }

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

    #[test]
    fn starts_are_read_and_written_in_rfc_3339_utc() {
        let time = parse_start("2026-11-23T10:00:00Z").unwrap();
        assert_eq!(format_start(time), "2026-11-23T10:00:00.000Z");
        let error = parse_start("tomorrow").unwrap_err();
        assert!(error.contains("2026-11-23T14:05:00Z"), "{error}");
    }
}
