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
use std::time::SystemTime;

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

    #[test]
    fn starts_are_read_and_written_in_rfc_3339_utc() {
        let time = parse_start("2026-11-23T10:00:00Z").unwrap();
        assert_eq!(format_start(time), "2026-11-23T10:00:00.000Z");
        let error = parse_start("tomorrow").unwrap_err();
        assert!(error.contains("2026-11-23T14:05:00Z"), "{error}");
    }
}
