//! Seed generation and an open-model, coordinated-omission-free load generator for the token
//! endpoint of an OpenID Connect provider (TEST 1-3 of the endpoint load-testing specification).
//!
//! One folder per concern, split the way `oha` splits a load generator. Dependencies point down
//! this list, never up:
//!
//! - [`run`]: the engine handing due iterations to virtual users, the scenarios, progress and
//!   the capacity search;
//! - [`seeding`]: seed files and the seeder that makes them through the provider's own pages;
//! - [`protocol`]: OAuth 2.0 and OpenID Connect messages, discovery, and token verification;
//! - [`http`]: the client connections and the target;
//! - [`results`]: what a run records, the result file, the one judge, and the reports;
//! - [`plan`]: the load profile, the schedule of intended starts and the shards that split it.
//!
//! Beside them, [`terminal`] (progress on stderr) and [`atomic_file`] (files written whole).

pub mod atomic_file;
pub mod http;
pub mod plan;
pub mod protocol;
pub mod results;
pub mod run;
pub mod seeding;
pub mod terminal;

pub use plan::schedule::LoadProfile;
pub use results::merge::merge_results;
pub use results::result::{RunResult, SCHEMA_VERSION};
pub use results::thresholds::{
    Evaluation, Observations, ThresholdArgs, ThresholdName, Thresholds, Verdict, evaluate,
};
pub use run::config::RunConfig;
pub use run::engine::{RunError, run};
pub use run::scenario::ScenarioKind;
pub use run::stop::{StopHandle, StopSignal, stop_signal};
pub use seeding::seed_files::Seeds;
