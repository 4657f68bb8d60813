//! mock-idp: a spec-faithful OpenID Connect provider to load-test against.
//!
//! Build the provider as a value with [`App`] and call [`App::handle`] without a socket, or
//! run it on a port with [`spawn`]. The defaults of [`Config`] are the contract of `docs/design.md`.

mod app;
mod authorize;
pub mod client_assertion;
pub mod client_certificate;
pub mod clients;
pub mod config;
mod discovery;
pub mod dpop;
pub mod error;
mod form;
mod http_helpers;
pub mod in_process;
pub mod jwt;
pub mod keys;
pub mod metrics;
mod pushed_authorization;
mod random;
mod replay_memory;
mod resource;
mod server;
mod state;
pub mod store;
mod test_endpoints;
pub mod tls;
mod token_endpoint;

pub use app::App;
pub use authorize::{MAX_NONCE_BYTES, SESSION_COOKIE};
pub use config::{
    AccessTokenFormat, Config, Fault, FaultCounter, FaultKind, RefreshTokenFormat, SigningAlg,
};
pub use error::OAuthError;
pub use http_helpers::HttpResponse;
pub use jwt::pkce_s256;
pub use server::{RunningIdp, StartError, serve, shutdown_signal, spawn};
