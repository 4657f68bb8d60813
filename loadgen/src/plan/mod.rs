//! The plan of a run: the load profile, the schedule of intended starts it makes, and how shards
//! split that schedule. Everything else agrees on it (the engine follows it, the seeder sizes
//! seeds from it, a result records it), so it depends on nothing else in the crate.
//!
//! Invariants: the schedule is a pure function of the profile, so every shard computes the same
//! one; shard `I/N` takes iteration, VU and seed `k` exactly when `k mod N == I`.

pub mod schedule;
pub mod shard;
