//! mock-idp: a spec-faithful OpenID Connect provider to load-test against.
//!
//! Build the provider as a value with [`App`] and call [`App::handle`] without a socket, or
//! run it on a port with [`spawn`]. The defaults of [`Config`] are the contract of DESIGN.md.

mod app;
mod authorize;
pub mod clients;
pub mod config;
mod discovery;
pub mod error;
mod form;
pub mod keys;
pub mod metrics;
mod random;
mod resource;
mod server;
pub mod store;
mod testing;
mod token;
pub mod tokens;

pub use app::{App, HttpResponse};
pub use authorize::SESSION_COOKIE;
pub use config::{Config, Fault, FaultKind, RefreshTokenFormat, SigningAlg};
pub use error::OAuthError;
pub use server::{RunningIdp, StartError, serve, spawn};
pub use tokens::pkce_s256;
