//! A run: the engine that hands due iterations to virtual users and drops those that cannot
//! start in time, the scenarios (what an iteration does and checks), live progress, and the
//! capacity search over whole runs. The top of the library: it may use every other folder.
//!
//! Invariants: latency runs from an iteration's intended start; a dropped iteration is a failure,
//! recorded at the timeout; an iteration succeeds only when it reached its end with no failed
//! request or check (the `Vu` records that, not the scenarios); a refresh token whose rotation went
//! unanswered is never sent again.

pub mod capacity;
pub mod config;
pub mod engine;
pub mod mix;
pub mod precise_timer;
pub mod progress;
pub mod scenario;
pub mod start_line;
pub mod stop;
pub mod timer_wheel_anchor;
mod write_back;
