//! The provider's discovery document (OpenID Connect Discovery 1.0): the parts loadgen uses.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde::Deserialize;

use crate::http::client::VuClient;
use crate::http::target::Target;
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
}

async fn get_json(
    client: &mut VuClient,
    target: &Target,
    url: &str,
    timeout: Duration,
) -> Result<Bytes, DiscoveryError> {
    let path = target.path_of(url);
    let response = client
        .send(Method::GET, &path, &[], Bytes::new(), timeout)
        .await
        .map_err(|error| DiscoveryError::Fetch(format!("GET {path}: {error}")))?;
    if response.status != http::StatusCode::OK {
        return Err(DiscoveryError::Fetch(format!(
            "GET {path} answered {}: {}",
            response.status,
            describe_error_body(&response.body)
        )));
    }
    Ok(response.body)
}

/// Fetches discovery and the JWKS once, before the run.
pub async fn fetch_provider_metadata(
    target: &Arc<Target>,
    timeout: Duration,
) -> Result<(Discovery, Bytes), DiscoveryError> {
    let mut client = VuClient::new(Arc::clone(target));
    let discovery_path = target.discovery_path();
    let body = get_json(&mut client, target, &discovery_path, timeout).await?;
    let discovery: Discovery = serde_json::from_slice(&body).map_err(|error| {
        DiscoveryError::Fetch(format!(
            "{discovery_path} is not an OpenID Connect discovery document: {error}"
        ))
    })?;
    if !target.is_issuer(&discovery.issuer) {
        return Err(DiscoveryError::IssuerMismatch {
            discovery_path,
            issuer: discovery.issuer,
            target: target.given().to_owned(),
        });
    }
    let jwks = get_json(&mut client, target, &discovery.jwks_uri, timeout).await?;
    Ok((discovery, jwks))
}
