//! What a mix is: scenarios side by side, each at its own rate (`login=45,refresh-storm=360`),
//! or a named one (`keycloak-sizing`); how its virtual users are split and what seeds it needs.

use std::fmt;
use std::str::FromStr;

use crate::plan::schedule::LoadProfile;
use crate::run::scenario::{ScenarioKind, SeedKind};
use crate::seeding::seed_files::{codes_to_make, families_to_make};

/// Mixes known by name: the name, its scenarios and rates, and where it comes from.
pub const NAMED_MIXES: [(&str, &str, &str); 1] = [(
    "keycloak-sizing",
    "login=45,client-credentials=360,refresh-storm=360",
    "the worked example of Keycloak's sizing guide: 45 sign-ins, 360 client-credentials grants \
     and 360 refreshes per second together",
)];

/// One scenario of a mix and its steady rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MixEntry {
    /// The scenario.
    pub scenario: ScenarioKind,
    /// Its steady arrival rate, iterations per second.
    pub rate_per_s: f64,
}

/// Several scenarios run side by side, each at its own rate. Invariants: at least one entry,
/// each scenario once, every rate positive and finite, and no two entries spending the same
/// kind of seed (codes or families), which each would take from the other.
#[derive(Debug, Clone, PartialEq)]
pub struct MixSpec {
    entries: Vec<MixEntry>,
}

/// Why a mix was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MixError {
    /// Nothing in it.
    #[error(
        "the mix names no scenario: give SCENARIO=RATE,... or one of {}",
        named_mix_names()
    )]
    Empty,
    /// An entry is not `SCENARIO=RATE`.
    #[error("'{0}' in the mix is not SCENARIO=RATE (for example refresh-storm=360)")]
    NotAnEntry(String),
    /// An unknown scenario.
    #[error("the mix names '{name}', which is no scenario; the scenarios are {known}")]
    UnknownScenario {
        /// The name given.
        name: String,
        /// The scenarios there are.
        known: String,
    },
    /// A rate that is not a positive number.
    #[error(
        "the rate of {scenario} in the mix, '{rate}', is not a positive number of iterations per second"
    )]
    BadRate {
        /// The scenario.
        scenario: String,
        /// The rate given.
        rate: String,
    },
    /// A scenario named twice.
    #[error("the mix names {0} twice: give each scenario once, with its whole rate")]
    Repeated(&'static str),
    /// The `api` scenario, whose routes and token source are a run of their own.
    #[error(
        "the api scenario cannot be part of a mix: its routes and token source are a run of \
         their own; run `loadgen run --scenario api` beside the mix, as a second process"
    )]
    Api,
    /// Fewer virtual users than the mix's scenarios need, at least one each on every shard.
    #[error(
        "--max-vus {max_vus} is too few for a mix of {scenarios} scenarios on {shards} shard(s): \
         each scenario needs at least one virtual user on every shard; give --max-vus {needed} or more"
    )]
    TooFewVus {
        /// The VUs given.
        max_vus: usize,
        /// The scenarios.
        scenarios: usize,
        /// The shards.
        shards: u32,
        /// The fewest VUs that will do.
        needed: usize,
    },
    /// Two scenarios that would spend the same seeds.
    #[error(
        "{first} and {second} both spend {kind}, and would take each other's: a mix runs at most \
         one scenario of each kind of seed it spends"
    )]
    SharedSeeds {
        /// The kind of seed.
        kind: &'static str,
        /// The first scenario.
        first: &'static str,
        /// The second.
        second: &'static str,
    },
}

fn named_mix_names() -> String {
    NAMED_MIXES
        .iter()
        .map(|(name, ..)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Seeds a mix needs, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MixSeedCounts {
    /// Authorization codes.
    pub codes: u64,
    /// Refresh-token families.
    pub refresh_families: u64,
    /// Sessions (shared by the scenarios that use one per VU).
    pub sessions: u64,
}

impl MixSpec {
    /// A mix of `entries`, checked.
    pub fn new(entries: Vec<MixEntry>) -> Result<Self, MixError> {
        if entries.is_empty() {
            return Err(MixError::Empty);
        }
        for (index, entry) in entries.iter().enumerate() {
            if entry.scenario == ScenarioKind::Api {
                return Err(MixError::Api);
            }
            if !(entry.rate_per_s.is_finite() && entry.rate_per_s > 0.0) {
                return Err(MixError::BadRate {
                    scenario: entry.scenario.name().to_owned(),
                    rate: entry.rate_per_s.to_string(),
                });
            }
            for earlier in &entries[..index] {
                if earlier.scenario == entry.scenario {
                    return Err(MixError::Repeated(entry.scenario.name()));
                }
                let spends = |kind: ScenarioKind| {
                    kind.seed_kind().filter(|seed| *seed != SeedKind::Sessions)
                };
                if let Some(kind) =
                    spends(entry.scenario).filter(|kind| Some(*kind) == spends(earlier.scenario))
                {
                    return Err(MixError::SharedSeeds {
                        kind: kind.describe(),
                        first: earlier.scenario.name(),
                        second: entry.scenario.name(),
                    });
                }
            }
        }
        Ok(Self { entries })
    }

    /// The entries, in the order given.
    pub fn entries(&self) -> &[MixEntry] {
        &self.entries
    }

    /// The rates added up.
    pub fn total_rate(&self) -> f64 {
        self.entries.iter().map(|entry| entry.rate_per_s).sum()
    }

    /// The same mix with every rate multiplied by `factor` (the capacity search, a mix scaled to
    /// fit a machine).
    pub fn scaled(&self, factor: f64) -> Result<Self, MixError> {
        Self::new(
            self.entries
                .iter()
                .map(|entry| MixEntry {
                    rate_per_s: entry.rate_per_s * factor,
                    ..*entry
                })
                .collect(),
        )
    }

    /// Each entry's share of `max_vus` virtual users, in proportion to its rate (the largest
    /// remainders rounded up, so the shares add up to `max_vus`), and at least `at_least` each
    /// (the shard count: every shard sets up its share of each scenario's VUs), taken from the
    /// largest shares.
    pub fn vus(&self, max_vus: usize, at_least: u32) -> Result<Vec<usize>, MixError> {
        let floor = (at_least as usize).max(1);
        let needed = floor * self.entries.len();
        if max_vus < needed {
            return Err(MixError::TooFewVus {
                max_vus,
                scenarios: self.entries.len(),
                shards: at_least.max(1),
                needed,
            });
        }
        let total = self.total_rate();
        let exact: Vec<f64> = self
            .entries
            .iter()
            .map(|entry| max_vus as f64 * entry.rate_per_s / total)
            .collect();
        let mut shares: Vec<usize> = exact.iter().map(|share| share.floor() as usize).collect();
        let mut by_remainder: Vec<usize> = (0..shares.len()).collect();
        by_remainder.sort_by(|&a, &b| {
            let remainder = |index: usize| exact[index] - exact[index].floor();
            remainder(b).total_cmp(&remainder(a))
        });
        let left = max_vus.saturating_sub(shares.iter().sum());
        for &index in by_remainder.iter().take(left) {
            shares[index] += 1;
        }
        // Raise the shares below the floor one VU at a time, each from the largest share.
        while let Some(short) = shares.iter().position(|&share| share < floor) {
            let largest = (0..shares.len())
                .max_by_key(|&index| shares[index])
                .unwrap_or(short);
            shares[largest] -= 1;
            shares[short] += 1;
        }
        Ok(shares)
    }

    /// The seeds a run of this mix needs when every entry follows `profile`'s ramps and steady
    /// time at its own rate on its share of `max_vus`; families with 10 % spares, as `loadgen
    /// seed` sizes them.
    pub fn seed_counts(
        &self,
        profile: &LoadProfile,
        max_vus: usize,
    ) -> Result<MixSeedCounts, MixError> {
        let mut counts = MixSeedCounts::default();
        for (entry, vus) in self.entries.iter().zip(self.vus(max_vus, 1)?) {
            let entry_profile = LoadProfile {
                rate_per_s: entry.rate_per_s,
                ..*profile
            };
            let Some(need) = entry
                .scenario
                .seed_need(entry_profile.scheduled_iterations(), vus as u64)
            else {
                continue;
            };
            match need.kind {
                SeedKind::AuthorizationCodes => counts.codes += codes_to_make(need.needed),
                SeedKind::RefreshFamilies => {
                    counts.refresh_families += families_to_make(need.needed);
                }
                SeedKind::Sessions => counts.sessions = counts.sessions.max(need.needed),
            }
        }
        Ok(counts)
    }
}

impl FromStr for MixSpec {
    type Err = MixError;

    fn from_str(text: &str) -> Result<Self, MixError> {
        let text = NAMED_MIXES
            .iter()
            .find(|(name, ..)| *name == text.trim())
            .map_or(text, |(_, entries, _)| *entries);
        let mut entries = Vec::new();
        for entry in text
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
        {
            let (name, rate) = entry
                .split_once('=')
                .ok_or_else(|| MixError::NotAnEntry(entry.to_owned()))?;
            let scenario =
                ScenarioKind::from_name(name.trim()).ok_or_else(|| MixError::UnknownScenario {
                    name: name.trim().to_owned(),
                    known: ScenarioKind::names().join(", "),
                })?;
            let rate_per_s = rate.trim().parse::<f64>().map_err(|_| MixError::BadRate {
                scenario: scenario.name().to_owned(),
                rate: rate.trim().to_owned(),
            })?;
            entries.push(MixEntry {
                scenario,
                rate_per_s,
            });
        }
        Self::new(entries)
    }
}

impl fmt::Display for MixSpec {
    /// `scenario=rate,...`, which [`MixSpec::from_str`] reads back.
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, entry) in self.entries.iter().enumerate() {
            if index > 0 {
                out.write_str(",")?;
            }
            write!(out, "{}={}", entry.scenario.name(), entry.rate_per_s)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_reads_back_what_it_prints_and_knows_its_named_mixes() {
        let mix: MixSpec = "token-code=45, client-credentials=360,refresh-storm=360,login=45"
            .parse()
            .unwrap();
        assert_eq!(mix.entries().len(), 4);
        assert_eq!(mix.total_rate(), 810.0);
        assert_eq!(mix.to_string().parse::<MixSpec>().unwrap(), mix);
        let sizing: MixSpec = "keycloak-sizing".parse().unwrap();
        assert_eq!(
            sizing.to_string(),
            "login=45,client-credentials=360,refresh-storm=360"
        );
        assert_eq!(sizing.scaled(0.25).unwrap().total_rate(), 191.25);
    }

    #[test]
    fn vus_follow_the_rates_and_every_scenario_gets_one() {
        let mix: MixSpec = "login=45,client-credentials=360,refresh-storm=360"
            .parse()
            .unwrap();
        let vus = mix.vus(300, 1).unwrap();
        assert_eq!(vus, [18, 141, 141]);
        assert_eq!(vus.iter().sum::<usize>(), 300);
        let tiny: MixSpec = "login=1,refresh-storm=1000".parse().unwrap();
        assert_eq!(tiny.vus(10, 1).unwrap(), [1, 9]);
        // Two shards: each scenario needs a VU on each.
        assert_eq!(tiny.vus(10, 2).unwrap(), [2, 8]);
        let web: MixSpec = "login=30,refresh-storm=45,userinfo=225".parse().unwrap();
        assert_eq!(web.vus(300, 1).unwrap(), [30, 45, 225]);
        let error = tiny.vus(3, 2).unwrap_err().to_string();
        assert!(error.contains("give --max-vus 4 or more"), "{error}");
    }

    #[test]
    fn seeds_are_counted_per_kind_sessions_shared() {
        let mix: MixSpec = "token-code=100,refresh-storm=100,full-oidc=50,userinfo=50"
            .parse()
            .unwrap();
        let profile = LoadProfile {
            rate_per_s: 1.0,
            ramp_up_s: 0.0,
            steady_s: 10.0,
            ramp_down_s: 0.0,
        };
        let counts = mix.seed_counts(&profile, 60).unwrap();
        // 1,000 iterations plus a 1 % margin, in whole thousands.
        assert_eq!(counts.codes, 2_000);
        // 20 VUs, and 2 spares.
        assert_eq!(counts.refresh_families, 22);
        // full-oidc and userinfo, 10 VUs each, on the same sessions.
        assert_eq!(counts.sessions, 10);
    }

    #[test]
    fn a_bad_mix_is_refused_in_words() {
        let refused = |text: &str| text.parse::<MixSpec>().unwrap_err().to_string();
        assert!(refused("").contains("keycloak-sizing"));
        assert!(refused("login").contains("is not SCENARIO=RATE"));
        assert!(refused("logon=3").contains("the scenarios are"));
        assert!(refused("login=fast").contains("not a positive number"));
        assert!(refused("login=0").contains("not a positive number"));
        assert!(refused("login=1,login=2").contains("names login twice"));
        assert!(
            refused("refresh-storm=1,refresh-reuse=1")
                .contains("both spend refresh-token families")
        );
        assert!(refused("api=1,login=1").contains("beside the mix"));
        // Sessions are shared, not spent.
        assert!("full-oidc=1,userinfo=1".parse::<MixSpec>().is_ok());
    }
}
