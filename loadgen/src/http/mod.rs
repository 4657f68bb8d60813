//! The HTTP side: the target and its connections. Knows HTTP and the names of transport errors
//! ([`crate::results`]), nothing of OAuth.
//!
//! Invariants: each virtual user holds one keep-alive connection, re-opened when it breaks; every
//! response body is capped, so no answer can make loadgen buffer without bound; every request
//! that got no complete response is one `TransportErrorKind`.

pub mod client;
pub mod target;
