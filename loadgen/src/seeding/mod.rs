//! Seeds: the seed files a run consumes, the seeder that makes them through the provider's own
//! pages (with [`crate::protocol::browser`]), and minting codes ahead of their use during a run. Uses the protocol,
//! HTTP and the plan; never the run.
//!
//! Invariants: seeds are made only through the provider's public pages and endpoints, as a user
//! and the client would; shards seed disjoint users, so no code, session or family is used twice.

pub mod mint_ahead;
pub mod seed_files;
pub mod seeder;
