//! Where a request goes: its origin (scheme, host, port, RFC 6454) and the path and query on it.
//! Discovery may name other origins than the issuer's (a token endpoint on a custom domain, a
//! separate JWKS host); each request goes to its own URL's origin, with that origin's name in SNI
//! and `Host`, and a virtual user keeps one connection per origin.

use std::fmt;
use std::sync::Arc;

use http::HeaderValue;
use url::Url;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// The scheme's name in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// Why a URL cannot be requested.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not a URL.
    #[error("{0:?} is not a URL")]
    NotAUrl(String),
    /// A scheme other than http and https.
    #[error("{0:?}: only http:// and https:// URLs can be requested")]
    UnsupportedScheme(String),
}

/// Scheme, host and port: what one connection serves.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    scheme: Scheme,
    /// The host as sockets and SNI want it: IPv6 literals without brackets.
    host: String,
    port: u16,
    /// `Host` of HTTP/1.1 and `:authority` of HTTP/2: the port only when not the default.
    authority: HeaderValue,
}

impl Origin {
    fn of(url: &Url, given: &str) -> Result<Self, AddressError> {
        let scheme = match url.scheme() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(AddressError::UnsupportedScheme(given.to_owned())),
        };
        let bracketed = url
            .host_str()
            .ok_or_else(|| AddressError::NotAUrl(given.to_owned()))?;
        let port = url.port().unwrap_or(scheme.default_port());
        let authority = match url.port() {
            Some(port) => format!("{bracketed}:{port}"),
            None => bracketed.to_owned(),
        };
        let authority = HeaderValue::from_str(&authority)
            .map_err(|_| AddressError::NotAUrl(given.to_owned()))?;
        let host = bracketed
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Ok(Self {
            scheme,
            host,
            port,
            authority,
        })
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host name or address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, the scheme's default filled in.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `Host` header (`:authority` in HTTP/2).
    pub fn authority(&self) -> &HeaderValue {
        &self.authority
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let authority = self.authority.to_str().unwrap_or(&self.host);
        write!(formatter, "{}://{authority}", self.scheme.as_str())
    }
}

/// One request's destination: an origin, shared by every address on it, and a path and query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    origin: Arc<Origin>,
    path_and_query: String,
}

impl Address {
    /// The address of an absolute `http://` or `https://` URL (its fragment dropped).
    pub fn parse(url: &str) -> Result<Self, AddressError> {
        let parsed = Url::parse(url).map_err(|_| AddressError::NotAUrl(url.to_owned()))?;
        Self::from_url(&parsed)
    }

    /// The address of a parsed URL.
    pub fn from_url(url: &Url) -> Result<Self, AddressError> {
        let origin = Origin::of(url, url.as_str())?;
        Ok(Self {
            origin: Arc::new(origin),
            path_and_query: path_and_query(url),
        })
    }

    /// Another path and query on the same origin.
    pub fn with_path_and_query(&self, path_and_query: impl Into<String>) -> Self {
        Self {
            origin: Arc::clone(&self.origin),
            path_and_query: path_and_query.into(),
        }
    }

    /// `url` resolved against this address (a path is on this origin; an absolute URL may name
    /// any origin), as a browser resolves a link.
    pub fn join(&self, url: &str) -> Result<Self, AddressError> {
        if url.starts_with('/') && !url.starts_with("//") {
            return Ok(self.with_path_and_query(url));
        }
        let joined = Url::parse(&self.to_string())
            .and_then(|base| base.join(url))
            .map_err(|_| AddressError::NotAUrl(url.to_owned()))?;
        let address = Self::from_url(&joined)?;
        // Keep one shared origin per connection: an address on this origin reuses its `Arc`.
        if *address.origin == *self.origin {
            return Ok(self.with_path_and_query(address.path_and_query));
        }
        Ok(address)
    }

    /// The origin, shared with every address made from this one on the same origin.
    pub fn origin(&self) -> &Arc<Origin> {
        &self.origin
    }

    /// The path and query (`/token`, `/authorize?...`).
    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.path_and_query
            .split_once('?')
            .map_or(self.path_and_query.as_str(), |(path, _)| path)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}{}", self.origin, self.path_and_query)
    }
}

fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_fill_in_default_ports_and_keep_them_out_of_host() {
        let address = Address::parse("https://idp.example.test/token?x=1#frag").unwrap();
        assert_eq!(address.origin().scheme(), Scheme::Https);
        assert_eq!(address.origin().port(), 443);
        assert_eq!(address.origin().authority(), "idp.example.test");
        assert_eq!(address.path_and_query(), "/token?x=1");
        assert_eq!(address.path(), "/token");
        assert_eq!(address.to_string(), "https://idp.example.test/token?x=1");
        let v6 = Address::parse("http://[::1]:8080/").unwrap();
        assert_eq!(v6.origin().host(), "::1");
        assert_eq!(v6.origin().authority(), "[::1]:8080");
        assert!(matches!(
            Address::parse("ftp://idp/"),
            Err(AddressError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            Address::parse("/relative"),
            Err(AddressError::NotAUrl(_))
        ));
    }

    #[test]
    fn joining_keeps_the_origin_shared_or_names_another() {
        let base = Address::parse("https://idp.example.test:8443/realms/x").unwrap();
        let path = base.join("/login?step=1").unwrap();
        assert!(Arc::ptr_eq(path.origin(), base.origin()));
        let same = base
            .join("https://idp.example.test:8443/authorize")
            .unwrap();
        assert!(Arc::ptr_eq(same.origin(), base.origin()));
        let other = base.join("https://login.example.test/u/login").unwrap();
        assert_eq!(other.origin().host(), "login.example.test");
        assert_eq!(other.origin().port(), 443);
        let relative = base.join("consent").unwrap();
        assert_eq!(relative.path_and_query(), "/realms/consent");
    }
}
