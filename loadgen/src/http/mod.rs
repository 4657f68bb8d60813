//! The HTTP side: the target and its connections. Knows HTTP and the names of transport errors
//! ([`crate::results`]), nothing of OAuth.

pub mod client;
pub mod target;
