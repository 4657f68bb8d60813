//! Pushed authorization requests (RFC 9126): the authorization request's parameters sent to the
//! provider's own endpoint with the client's authentication, and the `request_uri` it answers,
//! which `/authorize` then gets in their place. Building and reading only: the sending is the
//! caller's (measured in `login` and TEST 3, not in seeding).

use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;

use crate::http::client::HttpResponse;
use crate::protocol::authorization::AuthorizationRequest;
use crate::protocol::client_credentials::ClientCredentials;
use crate::protocol::token_request::describe_error_body;

/// Why a push gave no `request_uri`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushFailure {
    /// The provider names no pushed authorization request endpoint.
    #[error(
        "the provider's metadata names no pushed_authorization_request_endpoint (RFC 9126); \
         leave out --par"
    )]
    NoEndpoint,
    /// Answered with another status than 201.
    #[error("the pushed authorization request endpoint answered {status}: {body}")]
    Refused {
        /// The status.
        status: u16,
        /// The body, described.
        body: String,
    },
    /// A 201 without a `request_uri`.
    #[error("the pushed authorization request endpoint's 201 carries no request_uri: {0}")]
    NoRequestUri(String),
}

/// The body of the push of `request` by `client`: its parameters and the client's
/// authentication (a secret or a fresh assertion in the body; `client_secret_basic` goes in the
/// token request headers, which the push shares).
pub fn push_body(request: &AuthorizationRequest, client: &ClientCredentials) -> Bytes {
    let mut body = request.encoded(client);
    // From 0: the parameters already there are the query's, so each one added is joined by `&`.
    let mut serializer = form_urlencoded::Serializer::for_suffix(&mut body, 0);
    for (name, value) in client.form_parameters() {
        if name != "client_id" {
            serializer.append_pair(name, &value);
        }
    }
    serializer.finish();
    Bytes::from(body)
}

#[derive(Deserialize)]
struct PushAnswer {
    #[serde(default)]
    request_uri: Option<String>,
}

/// The `request_uri` of a push's answer (201, RFC 9126 section 2.2).
pub fn request_uri_of(response: &HttpResponse) -> Result<String, PushFailure> {
    if response.status != StatusCode::CREATED {
        return Err(PushFailure::Refused {
            status: response.status.as_u16(),
            body: describe_error_body(&response.body),
        });
    }
    serde_json::from_slice::<PushAnswer>(&response.body)
        .ok()
        .and_then(|answer| answer.request_uri)
        .filter(|uri| !uri.is_empty())
        .ok_or_else(|| PushFailure::NoRequestUri(describe_error_body(&response.body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status: StatusCode::from_u16(status).unwrap(),
            headers: http::HeaderMap::new(),
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn a_push_carries_the_request_and_its_answer_names_the_request_uri() {
        let request = AuthorizationRequest::fresh();
        let public = ClientCredentials {
            client_id: "loadtest-public".into(),
            client_secret: None,
            ..ClientCredentials::default()
        };
        let body = push_body(&request, &public);
        let pairs: Vec<(String, String)> = form_urlencoded::parse(&body)
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        assert_eq!(
            pairs.iter().filter(|(name, _)| name == "client_id").count(),
            1,
            "{pairs:?}"
        );
        assert!(pairs.contains(&("state".into(), request.state.clone())));
        // A client that sends its secret in the body (client_secret_post) adds it as a parameter
        // of its own.
        let posting = ClientCredentials {
            auth: crate::protocol::client_auth::ClientAuth::Post,
            ..ClientCredentials::default()
        };
        let body = push_body(&request, &posting);
        let pairs: Vec<(String, String)> = form_urlencoded::parse(&body)
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        assert!(
            pairs.contains(&("client_secret".into(), "loadtest-secret".into())),
            "{pairs:?}"
        );
        assert!(pairs.contains(&("code_challenge_method".into(), "S256".into())));
        assert_eq!(
            request_uri_of(&answer(201, r#"{"request_uri":"urn:x","expires_in":60}"#)),
            Ok("urn:x".into())
        );
        assert!(matches!(
            request_uri_of(&answer(400, r#"{"error":"invalid_request"}"#)),
            Err(PushFailure::Refused { status: 400, .. })
        ));
        assert!(matches!(
            request_uri_of(&answer(201, "{}")),
            Err(PushFailure::NoRequestUri(_))
        ));
    }
}
