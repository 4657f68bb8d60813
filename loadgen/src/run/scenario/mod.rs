//! The scenarios: the catalogue ([`ScenarioKind`]), the [`Scenario`] trait each one implements in
//! a file of its own, and the one dispatch from a kind to its implementation.
//!
//! Adding a scenario: a file here implementing [`Scenario`], a variant of [`ScenarioKind`], its
//! arm in [`with_scenario!`], its docs (README) and its tests. The compiler lists every place
//! that must learn about it: no dispatch has a catch-all arm.

pub mod api;
pub(crate) mod client_credentials_grant;
pub(crate) mod discovery;
pub mod families;
pub(crate) mod full_oidc;
pub(crate) mod login;
pub(crate) mod refresh_reuse;
pub(crate) mod refresh_storm;
mod run_context;
pub(crate) mod token_code;
pub(crate) mod token_exchange;
pub(crate) mod userinfo;
mod vu;

use std::future::Future;

use crate::plan::shard::Shard;
use crate::seeding::seed_files::{NotEnoughSeeds, Seeds};

pub use run_context::{EndpointPaths, Iteration, LiveCounters, RunContext};
pub use vu::{RotationFailure, VirtualUser, Vu, VuSetupError};

/// The scenarios `loadgen run` knows. The command-line names (clap) and the result names (strum)
/// both derive from the variants, in kebab case; a test holds them equal.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    clap::ValueEnum,
    strum::IntoStaticStr,
    strum::EnumIter,
    strum::EnumString,
)]
#[strum(serialize_all = "kebab-case")]
pub enum ScenarioKind {
    /// TEST 1: `POST /token` with a seeded authorization code, each code used once.
    TokenCode,
    /// TEST 2: `POST /token` refresh, VU i rotating refresh-token family i.
    RefreshStorm,
    /// TEST 3: `/authorize` with the VU's session, `/token`, `/userinfo`.
    FullOidc,
    /// `GET /userinfo` with the VU's access token.
    Userinfo,
    /// RFC 8693 token exchange of the VU's access token.
    TokenExchange,
    /// `GET /.well-known/openid-configuration`.
    Discovery,
    /// Theft detection: rotate, replay the old refresh token, expect the family revoked.
    RefreshReuse,
    /// The API under test (`--api-url`), called with each VU's own access token.
    Api,
    /// A person signing in from scratch through the provider's pages, each iteration a fresh
    /// browser, users taken in turn (`--login-users`).
    Login,
    /// Machine clients asking for tokens for themselves (RFC 6749 4.4), `--clients`.
    ClientCredentials,
}

/// Runs `$body` with `$S` naming the [`Scenario`] implementation of `$kind`: the one place a
/// kind is mapped to its code, so every dispatch is static and none has a catch-all arm.
macro_rules! with_scenario {
    ($kind:expr, $S:ident => $body:expr) => {
        match $kind {
            $crate::run::scenario::ScenarioKind::TokenCode => {
                type $S = $crate::run::scenario::token_code::TokenCode;
                $body
            }
            $crate::run::scenario::ScenarioKind::RefreshStorm => {
                type $S = $crate::run::scenario::refresh_storm::RefreshStorm;
                $body
            }
            $crate::run::scenario::ScenarioKind::FullOidc => {
                type $S = $crate::run::scenario::full_oidc::FullOidc;
                $body
            }
            $crate::run::scenario::ScenarioKind::Userinfo => {
                type $S = $crate::run::scenario::userinfo::Userinfo;
                $body
            }
            $crate::run::scenario::ScenarioKind::TokenExchange => {
                type $S = $crate::run::scenario::token_exchange::TokenExchange;
                $body
            }
            $crate::run::scenario::ScenarioKind::Discovery => {
                type $S = $crate::run::scenario::discovery::Discovery;
                $body
            }
            $crate::run::scenario::ScenarioKind::RefreshReuse => {
                type $S = $crate::run::scenario::refresh_reuse::RefreshReuse;
                $body
            }
            $crate::run::scenario::ScenarioKind::Api => {
                type $S = $crate::run::scenario::api::Api;
                $body
            }
            $crate::run::scenario::ScenarioKind::Login => {
                type $S = $crate::run::scenario::login::Login;
                $body
            }
            $crate::run::scenario::ScenarioKind::ClientCredentials => {
                type $S = $crate::run::scenario::client_credentials_grant::ClientCredentialsGrant;
                $body
            }
        }
    };
}
pub(crate) use with_scenario;

/// The kinds of seed a scenario can need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedKind {
    /// `authorization_codes.json`, one per iteration.
    AuthorizationCodes,
    /// `refresh_tokens.json`, one family per VU or per iteration.
    RefreshFamilies,
    /// `sessions.json`, one per VU.
    Sessions,
}

impl SeedKind {
    /// How the seeds are called in messages.
    pub fn describe(self) -> &'static str {
        match self {
            SeedKind::AuthorizationCodes => "authorization codes",
            SeedKind::RefreshFamilies => "refresh-token families",
            SeedKind::Sessions => "sessions",
        }
    }

    fn available(self, seeds: &Seeds) -> usize {
        match self {
            SeedKind::AuthorizationCodes => seeds.authorization_codes.len(),
            SeedKind::RefreshFamilies => seeds.refresh_tokens.len(),
            SeedKind::Sessions => seeds.sessions.len(),
        }
    }
}

/// How many seeds of which kind a run needs, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedNeed {
    /// Which seeds.
    pub kind: SeedKind,
    /// How many.
    pub needed: u64,
    /// Why that many, in words.
    pub why: String,
}

/// What one scenario does: the seeds it needs, a virtual user's set-up, and one iteration.
///
/// An iteration sends its requests and makes its checks through [`Vu`], which records them and
/// remembers whether any request or check failed: an iteration succeeds only when it reached its
/// end (`Some`) and nothing failed on the way, in every scenario alike.
pub trait Scenario: Send + Sync + 'static {
    /// What a virtual user keeps from one iteration to the next (its family, its session ...).
    type State: Send + std::fmt::Debug + 'static;

    /// The specification's test id (`TEST 1` ...), for the three standard tests.
    const TEST_ID: Option<&'static str> = None;

    /// The most requests one iteration makes (bounds how long a cut-off iteration may take).
    const REQUESTS_PER_ITERATION: u32 = 1;

    /// The seeds a whole run of `iterations` scheduled iterations on `vus` virtual users needs, if
    /// any (a shard needs its slice of them).
    fn seed_need(iterations: u64, vus: u64) -> Option<SeedNeed>;

    /// Sets up virtual user `vu.id()` before the clock starts (unmeasured).
    fn set_up(vu: &mut Vu) -> impl Future<Output = Result<Self::State, String>> + Send;

    /// Whether each VU holds a refresh-token family of its own across iterations (TEST 2), moving
    /// to a spare when its own is in doubt ([`families`]).
    const HOLDS_FAMILIES: bool = false;

    /// Whether this run's VUs hold families: [`Self::HOLDS_FAMILIES`], unless the run's settings
    /// say otherwise (the `api` scenario holds them only for the provider's tokens).
    fn holds_families(_context: &RunContext) -> bool {
        Self::HOLDS_FAMILIES
    }

    /// The newest refresh token the VU holds, which the seeds keep after the run (TEST 2's
    /// family); `None` for the scenarios that keep none.
    fn newest_refresh_token(_state: &Self::State) -> Option<&str> {
        None
    }

    /// One iteration; `None` when it stopped early because a step failed.
    fn iterate(
        vu: &mut Vu,
        state: &mut Self::State,
        iteration: Iteration,
    ) -> impl Future<Output = Option<()>> + Send;
}

impl ScenarioKind {
    /// Name on the command line and in results.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The scenario with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        name.parse().ok()
    }

    /// The specification's test id, or the scenario name for the others.
    pub fn test_id(self) -> &'static str {
        with_scenario!(self, S => S::TEST_ID).unwrap_or_else(|| self.name())
    }

    /// Every scenario's name, in catalogue order.
    pub fn names() -> Vec<&'static str> {
        <Self as strum::IntoEnumIterator>::iter()
            .map(Self::name)
            .collect()
    }

    /// The seeds a whole run of `iterations` scheduled iterations on `vus` virtual users of this
    /// scenario needs, if any.
    pub fn seed_need(self, iterations: u64, vus: u64) -> Option<SeedNeed> {
        with_scenario!(self, S => S::seed_need(iterations, vus))
    }

    /// The kind of seed the scenario consumes, if any.
    pub fn seed_kind(self) -> Option<SeedKind> {
        with_scenario!(self, S => S::seed_need(1, 1)).map(|need| need.kind)
    }

    /// Requests one iteration makes at most.
    pub fn requests_per_iteration(self) -> u32 {
        with_scenario!(self, S => S::REQUESTS_PER_ITERATION)
    }

    /// Refuses seeds too few for `shard` of a run of this scenario with `iterations` scheduled
    /// iterations on `max_vus` virtual users. A shard needs its slice of what the whole run needs
    /// (every N-th seed from its index), which is what it gets of seeds made for the whole run.
    pub fn check_seeds(
        self,
        seeds: &Seeds,
        iterations: u64,
        max_vus: usize,
        shard: Shard,
    ) -> Result<(), NotEnoughSeeds> {
        let Some(need) = with_scenario!(self, S => S::seed_need(iterations, max_vus as u64)) else {
            return Ok(());
        };
        let (needed, why) = if shard.is_whole() {
            (need.needed, need.why)
        } else {
            let needed = shard.share(need.needed);
            (
                needed,
                format!(
                    "shard {shard} takes 1 in {} of the {} the whole run needs: {}",
                    shard.count(),
                    need.needed,
                    need.why
                ),
            )
        };
        let available = need.kind.available(seeds) as u64;
        if available < needed {
            return Err(NotEnoughSeeds {
                kind: need.kind.describe(),
                needed,
                available,
                why,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::schedule::LoadProfile;
    use crate::seeding::seed_files::{RefreshTokenSeed, SessionSeed};

    fn profile(rate: f64, steady: f64) -> LoadProfile {
        LoadProfile {
            rate_per_s: rate,
            ramp_up_s: 0.0,
            steady_s: steady,
            ramp_down_s: 0.0,
        }
    }

    #[test]
    fn too_few_codes_are_refused_with_the_number_needed() {
        let seeds = Seeds::default();
        let error = ScenarioKind::TokenCode
            .check_seeds(
                &seeds,
                profile(300.0, 120.0).scheduled_iterations(),
                300,
                Shard::WHOLE,
            )
            .unwrap_err();
        assert_eq!(error.needed, 36_360);
        assert_eq!(error.available, 0);
        assert!(error.to_string().contains("needs 36360"), "{error}");
    }

    #[test]
    fn families_and_sessions_are_needed_per_vu() {
        let seeds = Seeds {
            refresh_tokens: vec![
                RefreshTokenSeed {
                    user_id: "u".into(),
                    refresh_token: "rt".into(),
                    client_id: "c".into(),
                    subject: None,
                };
                3
            ],
            sessions: vec![
                SessionSeed {
                    user_id: "u".into(),
                    cookie: "a=b".into(),
                    subject: None,
                };
                2
            ],
            ..Seeds::default()
        };
        let check = |kind: ScenarioKind, rate: f64, vus: usize| {
            kind.check_seeds(
                &seeds,
                profile(rate, 1.0).scheduled_iterations(),
                vus,
                Shard::WHOLE,
            )
        };
        assert!(check(ScenarioKind::RefreshStorm, 1.0, 3).is_ok());
        assert_eq!(
            check(ScenarioKind::RefreshStorm, 1.0, 4)
                .unwrap_err()
                .needed,
            4
        );
        assert!(check(ScenarioKind::FullOidc, 1.0, 3).is_err());
        assert!(check(ScenarioKind::Userinfo, 1.0, 2).is_ok());
        assert!(check(ScenarioKind::RefreshReuse, 3.0, 1).is_ok());
        assert!(check(ScenarioKind::RefreshReuse, 4.0, 1).is_err());
        assert!(check(ScenarioKind::Discovery, 100.0, 100).is_ok());
    }

    #[test]
    fn test_ids_follow_the_specification() {
        assert_eq!(ScenarioKind::TokenCode.test_id(), "TEST 1");
        assert_eq!(ScenarioKind::RefreshStorm.test_id(), "TEST 2");
        assert_eq!(ScenarioKind::FullOidc.test_id(), "TEST 3");
        assert_eq!(ScenarioKind::RefreshReuse.test_id(), "refresh-reuse");
        assert_eq!(ScenarioKind::FullOidc.requests_per_iteration(), 3);
    }

    #[test]
    fn command_line_and_result_names_are_the_same() {
        use clap::ValueEnum as _;
        use strum::IntoEnumIterator as _;
        let kinds: Vec<ScenarioKind> = ScenarioKind::iter().collect();
        assert_eq!(kinds.len(), ScenarioKind::value_variants().len());
        for kind in kinds {
            let possible = kind.to_possible_value().unwrap();
            assert_eq!(possible.get_name(), kind.name());
            assert_eq!(ScenarioKind::from_name(kind.name()), Some(kind));
        }
    }
}
