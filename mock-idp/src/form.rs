//! Strict parsing of `application/x-www-form-urlencoded` bodies and query strings.
//!
//! RFC 6749 3.1 and 3.2: parameters sent without a value are treated as omitted, and a parameter
//! may not appear twice. Decoding is `form_urlencoded`'s; this module adds the strictness it
//! lacks (it silently keeps `%zz` and replaces invalid UTF-8), because a spec-faithful server
//! refuses such input with `invalid_request` instead of guessing.

use crate::error::OAuthError;

/// The parameters of one request, in order, each name at most once, none empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses a form body or a query string.
    pub fn parse(input: &[u8]) -> Result<Self, OAuthError> {
        check_percent_encoding(input)?;
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, value) in form_urlencoded::parse(input) {
            if name.contains('\u{FFFD}') || value.contains('\u{FFFD}') {
                return Err(OAuthError::InvalidRequest(
                    "parameters must be UTF-8 once percent-decoded".into(),
                ));
            }
            if value.is_empty() {
                continue;
            }
            if pairs.iter().any(|(known, _)| *known == name) {
                return Err(OAuthError::InvalidRequest(format!(
                    "parameter {name:?} appears more than once"
                )));
            }
            pairs.push((name.into_owned(), value.into_owned()));
        }
        Ok(Self { pairs })
    }

    /// Parameters already checked (a pushed authorization request's, kept by the server).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, value)| value.as_str())
    }

    /// The value of a parameter that the request must carry.
    pub fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::InvalidRequest(format!("missing parameter {name:?}")))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// Re-encodes the parameters as a query string (for redirects that carry a request along).
    pub fn to_query(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.iter())
            .finish()
    }
}

/// Rejects `%` not followed by two hex digits, which `form_urlencoded` would pass through.
fn check_percent_encoding(input: &[u8]) -> Result<(), OAuthError> {
    let mut index = 0;
    while index < input.len() {
        if input[index] == b'%' {
            let escape = input.get(index + 1..index + 3);
            if !escape.is_some_and(|digits| digits.iter().all(u8::is_ascii_hexdigit)) {
                return Err(OAuthError::InvalidRequest(format!(
                    "malformed percent-encoding at byte {index}"
                )));
            }
            index += 3;
        } else {
            index += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decodes() {
        let params = Params::parse(b"grant_type=authorization_code&redirect_uri=http%3A%2F%2F127.0.0.1%3A3000%2Fcallback&scope=openid+profile").unwrap();
        assert_eq!(params.get("grant_type"), Some("authorization_code"));
        assert_eq!(
            params.get("redirect_uri"),
            Some("http://127.0.0.1:3000/callback")
        );
        assert_eq!(params.get("scope"), Some("openid profile"));
    }

    #[test]
    fn empty_values_count_as_omitted() {
        let params = Params::parse(b"code=&state=x").unwrap();
        assert_eq!(params.get("code"), None);
        assert!(params.required("code").is_err());
        // ...so an empty duplicate is not a duplicate.
        assert!(Params::parse(b"state=&state=x").is_ok());
    }

    #[test]
    fn duplicates_are_refused() {
        let error = Params::parse(b"code=a&code=b").unwrap_err();
        assert_eq!(error.code(), "invalid_request");
        assert!(error.description().contains("more than once"));
    }

    #[test]
    fn bad_encoding_is_refused() {
        for input in [&b"code=%zz"[..], b"code=%4", b"code=%", b"code=%FF%FE"] {
            let error = Params::parse(input).unwrap_err();
            assert_eq!(error.code(), "invalid_request", "{input:?}");
        }
    }

    #[test]
    fn round_trips_through_a_query() {
        let params = Params::parse(b"a=1+2&b=%26").unwrap();
        assert_eq!(Params::parse(params.to_query().as_bytes()).unwrap(), params);
    }
}
