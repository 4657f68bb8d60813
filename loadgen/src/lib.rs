//! Seed generation and an open-model, coordinated-omission-free load generator for the token
//! endpoint of an OpenID Connect provider (TEST 1-3 of the endpoint load-testing specification).
//!
//! The split follows `oha`: [`client`] (one HTTP/1.1 connection per virtual user), [`schedule`]
//! (when iterations are due), [`engine`] (dispatching due iterations to virtual users),
//! [`scenario`] (what an iteration does and checks), [`stats`] (HDR histograms and counters),
//! [`result`] (the result file), [`thresholds`] (the gate) and [`printer`] (the human summary).
//! [`seeder`] makes the seed files ([`seed_files`]) through the IdP's public endpoints.

pub mod atomic_file;
pub mod browser;
pub mod capacity;
pub mod client;
pub mod engine;
pub mod flows;
pub mod html_report;
pub mod id_token;
pub mod junit;
pub mod jwks;
pub mod mint_ahead;
pub mod oidc;
pub mod printer;
pub mod progress;
pub mod result;
pub mod scenario;
pub mod schedule;
pub mod seed_files;
pub mod seeder;
pub mod shard;
pub mod stats;
pub mod thresholds;
pub mod timeline;

pub use engine::{RunConfig, RunError, StopHandle, StopSignal, run, stop_signal};
pub use result::{RunResult, SCHEMA_VERSION, merge_results};
pub use scenario::ScenarioKind;
pub use schedule::LoadProfile;
pub use seed_files::Seeds;
pub use thresholds::{
    Evaluation, Observations, ThresholdArgs, ThresholdName, Thresholds, Verdict, evaluate,
};
