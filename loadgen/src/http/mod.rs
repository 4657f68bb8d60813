//! The HTTP side: the target, the addresses of requests and their origins, the connections (TLS,
//! HTTP/1.1 and HTTP/2), the client each virtual user holds, and how a request can fail. Knows
//! HTTP, TLS and the names of transport errors ([`crate::results`]), nothing of OAuth.
//!
//! Invariants: each virtual user holds one keep-alive connection per origin, re-opened when it
//! breaks; a request goes to its own URL's origin, with that origin's name in SNI and `Host`;
//! every response body is capped, so no answer can make loadgen buffer without bound; every
//! request that got no complete response is one `TransportErrorKind`.

pub mod address;
pub mod client;
pub mod connection;
pub mod target;
pub mod tls;
pub mod transport_error;
