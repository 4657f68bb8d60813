//! OAuth 2.0 and OpenID Connect as a client speaks them: the authorization request and redirect,
//! token requests and responses, the client's credentials and PKCE, discovery, the JWKS and token
//! verification, the ID token's rules. One implementation of each flow, shared by the seeder and
//! the scenarios. Uses [`crate::http`] and the result names; never the run, seeding or the
//! command line.

pub mod authorization;
pub mod client_credentials;
pub mod code_flow;
pub mod discovery;
pub mod id_token;
pub mod jwks;
pub mod pkce;
pub mod token_request;
pub mod token_verifier;
