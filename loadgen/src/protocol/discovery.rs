//! The provider's discovery document (OpenID Connect Discovery 1.0): the parts loadgen uses.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde::Deserialize;

use crate::http::address::Address;
use crate::http::client::VuClient;
use crate::http::target::{Target, TargetError};
use crate::protocol::token_request::describe_error_body;

/// The parts of the discovery document the load generator uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Discovery {
    /// `issuer`.
    pub issuer: String,
    /// `authorization_endpoint`.
    pub authorization_endpoint: String,
    /// `token_endpoint`.
    pub token_endpoint: String,
    /// `userinfo_endpoint`, if offered.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// `jwks_uri`.
    pub jwks_uri: String,
    /// `introspection_endpoint` (RFC 8414), if offered.
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
    /// `authorization_response_iss_parameter_supported` (RFC 9207): every authorization
    /// response then carries `iss`.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

/// The `issuer` of a discovery document, the field each discovery iteration checks. The other
/// members are skipped (still validated as JSON) without being built into values: building a
/// `serde_json::Value` of the whole document was half of loadgen's per-request CPU.
#[derive(Debug, Deserialize)]
pub struct DiscoveryIssuer<'a> {
    /// `issuer`, borrowed from the body unless it holds escapes.
    #[serde(borrow, default)]
    pub issuer: Option<std::borrow::Cow<'a, str>>,
}

/// Why the provider's metadata could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// Discovery or the JWKS could not be fetched.
    #[error("provider metadata: {0}")]
    Fetch(String),
    /// Discovery names an issuer that is not the target (OpenID Connect Discovery 4.3).
    #[error(
        "the discovery document at {discovery_path} names issuer {issuer}, not the target \
         {target} (check discovery_issuer, OpenID Connect Discovery 4.3): give --target the \
         issuer's URL exactly"
    )]
    IssuerMismatch {
        /// Where the document was fetched.
        discovery_path: String,
        /// The issuer it names.
        issuer: String,
        /// The target as given.
        target: String,
    },
    /// An endpoint the document names cannot be requested.
    #[error(transparent)]
    Endpoint(#[from] TargetError),
}

/// Where the requests of a run or of seeding go, as discovery names them: each endpoint on its
/// own origin (a custom domain for the token endpoint, a separate JWKS host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEndpoints {
    /// Authorization endpoint.
    pub authorize: Address,
    /// Token endpoint.
    pub token: Address,
    /// UserInfo endpoint (`/userinfo` on the issuer's origin when discovery names none).
    pub userinfo: Address,
    /// Discovery document.
    pub discovery: Address,
    /// Introspection endpoint (RFC 7662), when the provider offers one.
    pub introspection: Option<Address>,
    /// The JWKS.
    pub jwks: Address,
}

impl Discovery {
    /// The addresses of the endpoints this document names, resolved on `target`.
    pub fn endpoints(&self, target: &Target) -> Result<ProviderEndpoints, TargetError> {
        Ok(ProviderEndpoints {
            authorize: target.endpoint("authorization_endpoint", &self.authorization_endpoint)?,
            token: target.endpoint("token_endpoint", &self.token_endpoint)?,
            userinfo: target.endpoint(
                "userinfo_endpoint",
                self.userinfo_endpoint.as_deref().unwrap_or("/userinfo"),
            )?,
            discovery: target.discovery_address(),
            introspection: self
                .introspection_endpoint
                .as_deref()
                .map(|url| target.endpoint("introspection_endpoint", url))
                .transpose()?,
            jwks: target.endpoint("jwks_uri", &self.jwks_uri)?,
        })
    }
}

async fn get_json(
    client: &mut VuClient,
    address: &Address,
    timeout: Duration,
) -> Result<Bytes, DiscoveryError> {
    let response = client
        .send(Method::GET, address, &[], Bytes::new(), timeout)
        .await
        .map_err(|error| DiscoveryError::Fetch(format!("GET {address}: {error}")))?;
    if response.status != http::StatusCode::OK {
        return Err(DiscoveryError::Fetch(format!(
            "GET {address} answered {}: {}",
            response.status,
            describe_error_body(&response.body)
        )));
    }
    Ok(response.body)
}

/// What a run or seeding learns of the provider before any load: its discovery document, the
/// addresses of the endpoints it names, and its JWKS.
#[derive(Debug, Clone)]
pub struct ProviderMetadata {
    /// The document.
    pub discovery: Discovery,
    /// Where each endpoint is, resolved once.
    pub endpoints: ProviderEndpoints,
    /// The JWKS document as fetched.
    pub jwks: Bytes,
}

/// Fetches discovery and the JWKS once, before the run, and resolves every endpoint the
/// document names (an endpoint that cannot be requested stops the command here).
pub async fn fetch_provider_metadata(
    target: &Arc<Target>,
    timeout: Duration,
) -> Result<ProviderMetadata, DiscoveryError> {
    let mut client = VuClient::new(Arc::clone(target));
    let discovery_address = target.discovery_address();
    let body = get_json(&mut client, &discovery_address, timeout).await?;
    let discovery: Discovery = serde_json::from_slice(&body).map_err(|error| {
        DiscoveryError::Fetch(format!(
            "{discovery_address} is not an OpenID Connect discovery document: {error}"
        ))
    })?;
    if !target.is_issuer(&discovery.issuer) {
        return Err(DiscoveryError::IssuerMismatch {
            discovery_path: discovery_address.path_and_query().to_owned(),
            issuer: discovery.issuer,
            target: target.given().to_owned(),
        });
    }
    let endpoints = discovery.endpoints(target)?;
    let jwks = get_json(&mut client, &endpoints.jwks, timeout).await?;
    Ok(ProviderMetadata {
        discovery,
        endpoints,
        jwks,
    })
}
