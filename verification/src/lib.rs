//! The pipeline's judge: the gate over load-test result files ([`gate`]), the reconciliation
//! of the IdP's counters with what the load generator saw ([`metrics`]), the run summary
//! ([`summary`]) and performance tracking ([`perf`]). The `gate` binary exposes them to
//! `cargo xtask`.

pub mod capacity;
pub mod gate;
pub mod metrics;
pub mod perf;
pub mod shards;
pub mod summary;
