//! The provider's metadata: OpenID Connect Discovery 1.0 first, RFC 8414 authorization-server
//! metadata for what it lacks; the parts loadgen uses, fetched once before load, patient with a
//! provider that answers 429 or 503 with `Retry-After`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Deserialize;

use crate::http::address::Address;
use crate::http::client::{HttpResponse, VuClient};
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
    /// `introspection_endpoint` (RFC 8414 section 2), if offered.
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
    /// `pushed_authorization_request_endpoint` (RFC 9126), if offered.
    #[serde(default)]
    pub pushed_authorization_request_endpoint: Option<String>,
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
        "the metadata document at {discovery_path} names issuer {issuer}, not the target \
         {target} (OpenID Connect Discovery 4.3, RFC 8414 section 3.3): give --target the \
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
    /// Pushed authorization request endpoint (RFC 9126), when the provider offers one.
    pub pushed_authorization: Option<Address>,
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
            pushed_authorization: self
                .pushed_authorization_request_endpoint
                .as_deref()
                .map(|url| target.endpoint("pushed_authorization_request_endpoint", url))
                .transpose()?,
            jwks: target.endpoint("jwks_uri", &self.jwks_uri)?,
        })
    }
}

/// The longest loadgen waits in all, before load, for metadata or a JWKS answered 429 or 503.
pub const MAX_METADATA_WAIT: Duration = Duration::from_secs(30);

/// The wait after a 429 or 503 that names no `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// How long a 429 or 503 asks the client to wait (RFC 9110 section 10.2.3: seconds, or an
/// HTTP date), [`DEFAULT_RETRY_AFTER`] when it does not say.
pub fn retry_after(headers: &http::HeaderMap, now: SystemTime) -> Duration {
    let Some(value) = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
    else {
        return DEFAULT_RETRY_AFTER;
    };
    if let Ok(seconds) = value.parse::<u64>() {
        return Duration::from_secs(seconds);
    }
    httpdate::parse_http_date(value)
        .map(|date| date.duration_since(now).unwrap_or_default())
        .unwrap_or(DEFAULT_RETRY_AFTER)
}

/// Fetches the documents loadgen reads before load on a connection of its own, waiting as
/// `Retry-After` says when the provider answers 429 or 503 (at most [`MAX_METADATA_WAIT`] in all),
/// and keeping a note of each wait.
struct MetadataFetcher {
    client: VuClient,
    timeout: Duration,
    waited: Duration,
    notes: Vec<String>,
}

impl MetadataFetcher {
    async fn get(&mut self, address: &Address) -> Result<HttpResponse, DiscoveryError> {
        loop {
            let response = self
                .client
                .send(Method::GET, address, &[], Bytes::new(), self.timeout)
                .await
                .map_err(|error| DiscoveryError::Fetch(format!("GET {address}: {error}")))?;
            let busy = matches!(
                response.status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            );
            // At least the default wait, so that `Retry-After: 0` (or a date already past) cannot
            // make a loop without pause; the total bound then ends the asking.
            let wait = retry_after(&response.headers, SystemTime::now()).max(DEFAULT_RETRY_AFTER);
            if !busy {
                return Ok(response);
            }
            if self.waited + wait > MAX_METADATA_WAIT {
                self.notes.push(format!(
                    "GET {address} answered {} before load and asked for a wait of {}; loadgen \
                     waits at most {} in all, so it did not.",
                    response.status,
                    humantime::format_duration(wait),
                    humantime::format_duration(MAX_METADATA_WAIT)
                ));
                return Ok(response);
            }
            self.notes.push(format!(
                "GET {address} answered {} before load; loadgen waited {} as its Retry-After \
                 said (at most {} in all) and asked again.",
                response.status,
                humantime::format_duration(wait),
                humantime::format_duration(MAX_METADATA_WAIT)
            ));
            tokio::time::sleep(wait).await;
            self.waited += wait;
        }
    }

    async fn get_json(&mut self, address: &Address) -> Result<Bytes, DiscoveryError> {
        let response = self.get(address).await?;
        if response.status != StatusCode::OK {
            return Err(DiscoveryError::Fetch(format!(
                "GET {address} answered {}: {}",
                response.status,
                describe_error_body(&response.body)
            )));
        }
        Ok(response.body)
    }

    /// A metadata document at `address`: `None` when the provider has none there (404), an
    /// error when it answers otherwise or the document is not metadata.
    async fn document(
        &mut self,
        address: &Address,
        what: &str,
    ) -> Result<Option<MetadataDocument>, DiscoveryError> {
        let response = self.get(address).await?;
        if response.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if response.status != StatusCode::OK {
            return Err(DiscoveryError::Fetch(format!(
                "GET {address} answered {}: {}",
                response.status,
                describe_error_body(&response.body)
            )));
        }
        serde_json::from_slice(&response.body)
            .map(Some)
            .map_err(|error| DiscoveryError::Fetch(format!("{address} is not {what}: {error}")))
    }
}

/// A metadata document as either standard writes it: OpenID discovery or RFC 8414.
#[derive(Debug, Default, Deserialize)]
struct MetadataDocument {
    issuer: String,
    #[serde(default)]
    authorization_endpoint: Option<String>,
    #[serde(default)]
    token_endpoint: Option<String>,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
    #[serde(default)]
    jwks_uri: Option<String>,
    #[serde(default)]
    introspection_endpoint: Option<String>,
    #[serde(default)]
    pushed_authorization_request_endpoint: Option<String>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: Option<bool>,
}

impl MetadataDocument {
    /// Whether an endpoint loadgen uses is missing, so the other document may name it.
    fn lacks_endpoints(&self) -> bool {
        self.authorization_endpoint.is_none()
            || self.token_endpoint.is_none()
            || self.jwks_uri.is_none()
            || self.introspection_endpoint.is_none()
    }
}

/// What a run or seeding learns of the provider before any load: its metadata, the addresses of
/// the endpoints it names, and its JWKS.
#[derive(Debug, Clone)]
pub struct ProviderMetadata {
    /// The document: OpenID discovery's, with what it lacks taken from RFC 8414's.
    pub discovery: Discovery,
    /// Where each endpoint is, resolved once.
    pub endpoints: ProviderEndpoints,
    /// The JWKS document as fetched.
    pub jwks: Bytes,
    /// What the fetching showed that a result should say: endpoints taken from the RFC 8414
    /// metadata, waits for a provider that answered 429 or 503.
    pub notes: Vec<String>,
}

impl ProviderMetadata {
    /// For a run that needs no provider (the `api` scenario with tokens loadgen signs): the
    /// usual paths on the target, never requested, and no keys.
    pub fn without_provider(target: &Target) -> Result<Self, DiscoveryError> {
        let discovery = Discovery {
            issuer: target.base_url().to_owned(),
            authorization_endpoint: "/authorize".into(),
            token_endpoint: "/token".into(),
            userinfo_endpoint: None,
            jwks_uri: "/jwks".into(),
            introspection_endpoint: None,
            pushed_authorization_request_endpoint: None,
            authorization_response_iss_parameter_supported: false,
        };
        Ok(Self {
            endpoints: discovery.endpoints(target)?,
            discovery,
            jwks: Bytes::from_static(br#"{"keys":[]}"#),
            notes: Vec::new(),
        })
    }
}

/// Fetches the provider's metadata and the JWKS once, before the run, and resolves every
/// endpoint (an endpoint that cannot be requested stops the command here). OpenID discovery comes
/// first; the endpoints it does not name (or all, when the provider has no such document) are
/// taken from the RFC 8414 authorization-server metadata, whose `issuer` must be the target too.
pub async fn fetch_provider_metadata(
    target: &Arc<Target>,
    timeout: Duration,
) -> Result<ProviderMetadata, DiscoveryError> {
    let mut fetcher = MetadataFetcher {
        client: VuClient::new(Arc::clone(target)),
        timeout,
        waited: Duration::ZERO,
        notes: Vec::new(),
    };
    let discovery_address = target.discovery_address();
    let openid = fetcher
        .document(&discovery_address, "an OpenID Connect discovery document")
        .await?;
    let rfc8414_address = target.authorization_server_metadata_address();
    let rfc8414 = if openid
        .as_ref()
        .is_none_or(MetadataDocument::lacks_endpoints)
    {
        let fetched = fetcher
            .document(
                &rfc8414_address,
                "an RFC 8414 authorization server metadata document",
            )
            .await;
        match (&openid, fetched) {
            // Only needed when there is no OpenID document: a provider that answers its unknown
            // paths with something other than 404 has simply no RFC 8414 document.
            (Some(_), fetched) => fetched.ok().flatten(),
            (None, fetched) => fetched?,
        }
    } else {
        None
    };
    if let Some(document) = &openid
        && !target.is_issuer(&document.issuer)
    {
        return Err(DiscoveryError::IssuerMismatch {
            discovery_path: discovery_address.path_and_query().to_owned(),
            issuer: document.issuer.clone(),
            target: target.given().to_owned(),
        });
    }
    // An RFC 8414 document of another issuer is never used: without an OpenID document it is
    // refused, beside one it is left out, and the notes say so.
    let rfc8414 = match rfc8414 {
        Some(document) if !target.is_issuer(&document.issuer) => {
            if openid.is_none() {
                return Err(DiscoveryError::IssuerMismatch {
                    discovery_path: rfc8414_address.path_and_query().to_owned(),
                    issuer: document.issuer,
                    target: target.given().to_owned(),
                });
            }
            fetcher.notes.push(format!(
                "The RFC 8414 metadata at {} names issuer {}, not the target: nothing was taken \
                 from it.",
                rfc8414_address.path_and_query(),
                document.issuer
            ));
            None
        }
        rfc8414 => rfc8414,
    };
    let (discovery, taken) = merge_metadata(openid, rfc8414, &discovery_address)?;
    if !taken.is_empty() {
        fetcher.notes.push(format!(
            "{} came from the RFC 8414 metadata at {}: the OpenID discovery document at {} does \
             not name {}.",
            taken.join(", "),
            rfc8414_address.path_and_query(),
            discovery_address.path_and_query(),
            if taken.len() == 1 { "it" } else { "them" }
        ));
    }
    let endpoints = discovery.endpoints(target)?;
    let jwks = fetcher.get_json(&endpoints.jwks).await?;
    Ok(ProviderMetadata {
        discovery,
        endpoints,
        jwks,
        notes: fetcher.notes,
    })
}

/// The OpenID document's members, each missing one taken from the RFC 8414 document; the names
/// of those taken. Fails when neither names a required endpoint.
fn merge_metadata(
    openid: Option<MetadataDocument>,
    rfc8414: Option<MetadataDocument>,
    discovery_address: &Address,
) -> Result<(Discovery, Vec<&'static str>), DiscoveryError> {
    let found_openid = openid.is_some();
    let (first, second) = match (openid, rfc8414) {
        (Some(openid), rfc8414) => (openid, rfc8414.unwrap_or_default()),
        (None, Some(rfc8414)) => (rfc8414, MetadataDocument::default()),
        (None, None) => {
            return Err(DiscoveryError::Fetch(format!(
                "GET {discovery_address} answered 404 Not Found, and the provider has no RFC \
                 8414 metadata either: give --target the issuer's URL"
            )));
        }
    };
    let mut taken = Vec::new();
    let mut pick = |name: &'static str, own: Option<String>, other: Option<String>| match own {
        Some(value) => Some(value),
        None => {
            if other.is_some() && found_openid {
                taken.push(name);
            }
            other
        }
    };
    let authorization_endpoint = pick(
        "authorization_endpoint",
        first.authorization_endpoint,
        second.authorization_endpoint,
    );
    let token_endpoint = pick(
        "token_endpoint",
        first.token_endpoint,
        second.token_endpoint,
    );
    let jwks_uri = pick("jwks_uri", first.jwks_uri, second.jwks_uri);
    let introspection_endpoint = pick(
        "introspection_endpoint",
        first.introspection_endpoint,
        second.introspection_endpoint,
    );
    let userinfo_endpoint = pick(
        "userinfo_endpoint",
        first.userinfo_endpoint,
        second.userinfo_endpoint,
    );
    let pushed_authorization_request_endpoint = pick(
        "pushed_authorization_request_endpoint",
        first.pushed_authorization_request_endpoint,
        second.pushed_authorization_request_endpoint,
    );
    let required = |name: &str, value: Option<String>| {
        value.ok_or_else(|| {
            DiscoveryError::Fetch(format!(
                "the provider's metadata ({discovery_address}, and RFC 8414's) names no {name}"
            ))
        })
    };
    let discovery = Discovery {
        issuer: first.issuer,
        authorization_endpoint: required("authorization_endpoint", authorization_endpoint)?,
        token_endpoint: required("token_endpoint", token_endpoint)?,
        userinfo_endpoint,
        jwks_uri: required("jwks_uri", jwks_uri)?,
        introspection_endpoint,
        pushed_authorization_request_endpoint,
        authorization_response_iss_parameter_supported: first
            .authorization_response_iss_parameter_supported
            .or(second.authorization_response_iss_parameter_supported)
            .unwrap_or(false),
    };
    Ok((discovery, taken))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let with = |value: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_str(value).unwrap(),
            );
            retry_after(&headers, now)
        };
        assert_eq!(with("3"), Duration::from_secs(3));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(with(&later), Duration::from_secs(7));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(with(&earlier), Duration::ZERO);
        assert_eq!(with("soon"), DEFAULT_RETRY_AFTER);
        assert_eq!(
            retry_after(&http::HeaderMap::new(), now),
            DEFAULT_RETRY_AFTER
        );
    }

    fn document(issuer: &str, introspection: Option<&str>) -> MetadataDocument {
        MetadataDocument {
            issuer: issuer.into(),
            authorization_endpoint: Some(format!("{issuer}/authorize")),
            token_endpoint: Some(format!("{issuer}/token")),
            jwks_uri: Some(format!("{issuer}/jwks")),
            introspection_endpoint: introspection.map(str::to_owned),
            ..MetadataDocument::default()
        }
    }

    #[test]
    fn endpoints_missing_from_discovery_come_from_rfc_8414_and_are_named() {
        let address = Target::parse("http://idp/t").unwrap().discovery_address();
        let (merged, taken) = merge_metadata(
            Some(document("http://idp/t", None)),
            Some(document("http://idp/t", Some("http://idp/t/introspect"))),
            &address,
        )
        .unwrap();
        assert_eq!(
            merged.introspection_endpoint.as_deref(),
            Some("http://idp/t/introspect")
        );
        assert_eq!(taken, vec!["introspection_endpoint"]);
        // The OpenID document's own endpoints win.
        let mut own = document("http://idp/t", Some("http://idp/t/mine"));
        own.token_endpoint = Some("http://idp/t/own-token".into());
        let (merged, taken) = merge_metadata(
            Some(own),
            Some(document("http://idp/t", Some("http://idp/t/other"))),
            &address,
        )
        .unwrap();
        assert_eq!(merged.token_endpoint, "http://idp/t/own-token");
        assert_eq!(
            merged.introspection_endpoint.as_deref(),
            Some("http://idp/t/mine")
        );
        assert!(taken.is_empty());
        // RFC 8414 alone serves, and a required endpoint neither names is an error in words.
        assert!(merge_metadata(None, Some(document("http://idp/t", None)), &address).is_ok());
        let mut bare = document("http://idp/t", None);
        bare.token_endpoint = None;
        let error = merge_metadata(Some(bare), None, &address).unwrap_err();
        assert!(
            error.to_string().contains("names no token_endpoint"),
            "{error}"
        );
        assert!(merge_metadata(None, None, &address).is_err());
    }
}
