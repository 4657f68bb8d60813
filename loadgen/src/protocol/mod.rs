//! OAuth 2.0 and OpenID Connect as a client speaks them: the authorization request and redirect,
//! the sign-in through the provider's own pages as a browser goes through them,
//! token requests and responses, the client's credentials and PKCE, discovery, the JWKS and token
//! verification, the ID token's rules. Uses [`crate::http`] only; never the run, seeding, results
//! or the command line.
//!
//! Invariants: one implementation of each flow, shared by the seeder and the scenarios (the
//! sending, measured or not, is the caller's); a JWS is checked against the JWKS, which is fetched
//! again on an unknown `kid` at most once per 5 s for all VUs together; nothing here is specific
//! to one provider.

pub mod app_tokens;
pub mod authorization;
pub mod browser;
pub mod client_auth;
pub mod client_credentials;
pub mod code_flow;
pub mod compact_jws;
pub mod discovery;
pub mod dpop;
pub mod id_token;
pub mod introspection;
pub mod jwks;
pub mod machine_clients;
pub mod pkce;
pub mod pushed_authorization;
pub mod test_users;
pub mod token_request;
pub mod token_signing;
pub mod token_verifier;
