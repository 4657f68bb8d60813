//! Where requests go: the target's base URL, its origin, and the paths of the URLs discovery
//! names on it.

use http::HeaderValue;

/// Where requests go: an `http://host:port` base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    host: String,
    port: u16,
    authority: HeaderValue,
    base_url: String,
    given: String,
}

/// Why a target URL is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not a URL.
    #[error("target {0:?} is not a URL")]
    NotAUrl(String),
    /// Only plain HTTP is spoken (the targets are on loopback or behind a TLS terminator).
    #[error("target {0:?}: only http:// targets are supported")]
    UnsupportedScheme(String),
}

impl Target {
    /// The host connections go to.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// The port connections go to.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The `Host` header of every request.
    pub(crate) fn authority(&self) -> &HeaderValue {
        &self.authority
    }

    /// Parses `http://host[:port][/]`.
    pub fn parse(url: &str) -> Result<Self, TargetError> {
        let parsed = url::Url::parse(url).map_err(|_| TargetError::NotAUrl(url.to_owned()))?;
        if parsed.scheme() != "http" {
            return Err(TargetError::UnsupportedScheme(url.to_owned()));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| TargetError::NotAUrl(url.to_owned()))?
            .to_owned();
        let port = parsed.port_or_known_default().unwrap_or(80);
        let authority = match parsed.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        let authority =
            HeaderValue::from_str(&authority).map_err(|_| TargetError::NotAUrl(url.to_owned()))?;
        let base_url = url.trim_end_matches('/').to_owned();
        // IPv6 literals come back bracketed from the URL parser; sockets want them bare.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Ok(Self {
            host,
            port,
            authority,
            base_url,
            given: url.to_owned(),
        })
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

    /// The path of the discovery document: under the issuer's path, as OpenID Connect Discovery
    /// section 4 puts it (`https://host/realms/x` -> `/realms/x/.well-known/openid-configuration`).
    pub fn discovery_path(&self) -> String {
        let base_path = self.path_of(&self.base_url);
        format!(
            "{}/.well-known/openid-configuration",
            base_path.trim_end_matches('/')
        )
    }

    /// The path and query of `url` when it is on this target, or `url` itself when it is
    /// already a path. Endpoints from discovery may name another host (a configured issuer),
    /// but requests always go to the target.
    pub fn path_of(&self, url: &str) -> String {
        if url.starts_with('/') {
            return url.to_owned();
        }
        match url::Url::parse(url) {
            Ok(parsed) => match parsed.query() {
                Some(query) => format!("{}?{query}", parsed.path()),
                None => parsed.path().to_owned(),
            },
            Err(_) => format!("/{url}"),
        }
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
                Target::parse(target).unwrap().discovery_path(),
                path,
                "{target}"
            );
        }
    }

    #[test]
    fn target_parsing() {
        let target = Target::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(target.base_url(), "http://127.0.0.1:8080");
        assert_eq!(target.port, 8080);
        assert_eq!(target.authority, "127.0.0.1:8080");
        assert_eq!(
            target.path_of("http://issuer.example/token?x=1"),
            "/token?x=1"
        );
        assert_eq!(target.path_of("/userinfo"), "/userinfo");
        assert_eq!(Target::parse("http://localhost").unwrap().port, 80);
        assert!(matches!(
            Target::parse("https://idp.example"),
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
