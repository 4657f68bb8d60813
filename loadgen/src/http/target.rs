//! The provider under test: its issuer URL, where its discovery document is, where the URLs
//! discovery names are, and the transport every connection to them shares.

use std::sync::Arc;

use crate::http::address::{Address, AddressError, Scheme};
use crate::http::connection::{Transport, TransportSettings};
use crate::http::tls::TlsSetupError;

/// The provider under test: its issuer URL as the user gave it, and how this process connects.
#[derive(Debug)]
pub struct Target {
    issuer: Address,
    base_url: String,
    given: String,
    transport: Arc<Transport>,
}

/// Why a target URL is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not a URL.
    #[error("target {0:?} is not a URL")]
    NotAUrl(String),
    /// A scheme other than http and https.
    #[error("target {0:?}: only http:// and https:// targets are supported")]
    UnsupportedScheme(String),
    /// A URL discovery names cannot be requested.
    #[error("{what} {url:?} cannot be requested: {reason}")]
    Endpoint {
        /// Which endpoint.
        what: String,
        /// The URL.
        url: String,
        /// Why not.
        reason: AddressError,
    },
    /// TLS could not be set up from the flags.
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
}

impl Target {
    /// Parses `http[s]://host[:port][/path]` with the default transport (the system's roots,
    /// HTTP/1.1).
    pub fn parse(url: &str) -> Result<Self, TargetError> {
        Self::with_transport(url, TransportSettings::default())
    }

    /// Parses the target and sets up how to connect to it. TLS is set up now when the target is
    /// https or a CA or client certificate was given, so a bad file stops the command at once.
    pub fn with_transport(url: &str, settings: TransportSettings) -> Result<Self, TargetError> {
        let issuer = Address::parse(url).map_err(|error| match error {
            AddressError::UnsupportedScheme(_) => TargetError::UnsupportedScheme(url.to_owned()),
            AddressError::NotAUrl(_) => TargetError::NotAUrl(url.to_owned()),
        })?;
        let tls_asked_for = !settings.tls.ca_certs.is_empty()
            || settings.tls.client_certificate.is_some()
            || issuer.origin().scheme() == Scheme::Https;
        let transport = Transport::new(settings);
        if tls_asked_for {
            transport.check_tls()?;
        }
        Ok(Self {
            issuer,
            base_url: url.trim_end_matches('/').to_owned(),
            given: url.to_owned(),
            transport: Arc::new(transport),
        })
    }

    /// How this process connects.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The base URL without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The target exactly as the user gave it.
    pub fn given(&self) -> &str {
        &self.given
    }

    /// Whether `issuer`, as a discovery document names it, is identical to the issuer URL the
    /// document was fetched under (OpenID Connect Discovery 4.3): the target as given, or the
    /// target without the trailing slash that section 4 removes before appending the path. Any
    /// other difference, a trailing slash the user did not give included, is another issuer.
    pub fn is_issuer(&self, issuer: &str) -> bool {
        issuer == self.given || issuer == self.base_url
    }

    /// Where the discovery document is: under the issuer's path, as OpenID Connect Discovery
    /// section 4 puts it (`https://host/realms/x` -> `/realms/x/.well-known/openid-configuration`).
    pub fn discovery_address(&self) -> Address {
        self.issuer.with_path_and_query(format!(
            "{}/.well-known/openid-configuration",
            self.issuer.path().trim_end_matches('/')
        ))
    }

    /// Where the RFC 8414 authorization-server metadata is: the well-known suffix inserted between
    /// the host and the issuer's path (RFC 8414 section 3.1: `https://host/tenant` ->
    /// `/.well-known/oauth-authorization-server/tenant`), unlike OpenID discovery's appending.
    pub fn authorization_server_metadata_address(&self) -> Address {
        self.issuer.with_path_and_query(format!(
            "/.well-known/oauth-authorization-server{}",
            self.issuer.path().trim_end_matches('/')
        ))
    }

    /// Where a request for `url` goes: an absolute URL to its own origin (discovery may name
    /// another host than the issuer's, a custom domain for the token endpoint or a JWKS host),
    /// a path to the issuer's origin.
    pub fn address_of(&self, url: &str) -> Result<Address, AddressError> {
        self.issuer.join(url)
    }

    /// [`Target::address_of`] for an endpoint discovery named, failing in words that say which.
    pub fn endpoint(&self, what: &str, url: &str) -> Result<Address, TargetError> {
        self.address_of(url)
            .map_err(|reason| TargetError::Endpoint {
                what: what.to_owned(),
                url: url.to_owned(),
                reason,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_lives_under_the_issuers_path() {
        for (target, path) in [
            ("http://127.0.0.1:8080", "/.well-known/openid-configuration"),
            (
                "http://127.0.0.1:8080/",
                "/.well-known/openid-configuration",
            ),
            (
                "http://idp:8080/realms/load",
                "/realms/load/.well-known/openid-configuration",
            ),
            (
                "http://idp/openid/",
                "/openid/.well-known/openid-configuration",
            ),
        ] {
            assert_eq!(
                Target::parse(target)
                    .unwrap()
                    .discovery_address()
                    .path_and_query(),
                path,
                "{target}"
            );
        }
    }

    #[test]
    fn rfc_8414_metadata_is_inserted_before_the_issuers_path() {
        for (target, path) in [
            (
                "http://127.0.0.1:8080",
                "/.well-known/oauth-authorization-server",
            ),
            (
                "http://127.0.0.1:8080/",
                "/.well-known/oauth-authorization-server",
            ),
            (
                "https://idp/tenant/",
                "/.well-known/oauth-authorization-server/tenant",
            ),
            (
                "http://idp:8080/realms/load",
                "/.well-known/oauth-authorization-server/realms/load",
            ),
        ] {
            assert_eq!(
                Target::parse(target)
                    .unwrap()
                    .authorization_server_metadata_address()
                    .path_and_query(),
                path,
                "{target}"
            );
        }
    }

    #[test]
    fn target_parsing() {
        let target = Target::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(target.base_url(), "http://127.0.0.1:8080");
        let token = target
            .address_of("http://issuer.example/token?x=1")
            .unwrap();
        assert_eq!(token.to_string(), "http://issuer.example/token?x=1");
        let userinfo = target.address_of("/userinfo").unwrap();
        assert_eq!(userinfo.to_string(), "http://127.0.0.1:8080/userinfo");
        assert_eq!(
            Target::parse("http://localhost")
                .unwrap()
                .discovery_address()
                .origin()
                .port(),
            80
        );
        assert!(matches!(
            Target::parse("ftp://idp.example"),
            Err(TargetError::UnsupportedScheme(_))
        ));
        assert!(Target::parse("not a url").is_err());
    }

    #[test]
    fn the_issuer_must_be_the_target_exactly() {
        let with_path = Target::parse("http://idp:8080/oidc").unwrap();
        assert!(with_path.is_issuer("http://idp:8080/oidc"));
        for other in [
            "http://idp:8080/oidc/",
            "http://idp:8080/OIDC",
            "http://idp:8080",
            "https://idp:8080/oidc",
            "http://idp/oidc",
            "",
        ] {
            assert!(!with_path.is_issuer(other), "{other}");
        }
        // The user's own trailing slash: discovery is fetched without it, so either form is the
        // issuer they targeted.
        let slashed = Target::parse("http://idp:8080/oidc/").unwrap();
        assert!(slashed.is_issuer("http://idp:8080/oidc/"));
        assert!(slashed.is_issuer("http://idp:8080/oidc"));
        assert!(!slashed.is_issuer("http://idp:8080/oidc//"));
    }
}
