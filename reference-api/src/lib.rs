//! An example resource server: the API behind an OpenID provider that `loadgen run --scenario api`
//! drives with real tokens. It checks each bearer token as real services do (signature against a
//! JWKS it fetches and refreshes, or an HS256 secret; `exp`, `nbf`, and `iss` and `aud` when
//! configured), answers RFC 6750 errors with `WWW-Authenticate`, and can inject faults like
//! mock-idp's.
//!
//! - [`config`]: what it checks and where its keys come from.
//! - [`keys`]: the verification keys, a JWKS fetched again for an unknown `kid`, or a secret;
//!   `jwks_fetch` fetches it over http:// or https://.
//! - [`bearer`]: one request's bearer token checked, and the RFC 6750 error when it is refused.
//! - [`app`]: the routes, as a value that answers an `http::Request` without a socket.
//! - [`server`]: the socket side (HTTP/1.1 and cleartext HTTP/2), started and stopped.

pub mod app;
pub mod bearer;
pub mod config;
mod jwks_fetch;
pub mod keys;
pub mod server;

pub use app::Api;
pub use config::{Config, KeySource};
pub use server::{RunningApi, spawn};
