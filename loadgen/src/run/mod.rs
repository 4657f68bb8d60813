//! A run: the engine that hands due iterations to virtual users and drops those that cannot
//! start in time, the scenarios (what an iteration does and checks), live progress, and the
//! capacity search over whole runs. The top of the library: it may use every other folder.

pub mod capacity;
pub mod config;
pub mod engine;
pub mod progress;
pub mod scenario;
pub mod stop;
mod write_back;
