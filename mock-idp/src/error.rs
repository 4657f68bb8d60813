//! OAuth 2.0 errors and how each maps to an HTTP answer (RFC 6749 5.2, RFC 6750 3.1).

use http::StatusCode;

/// Every way a request to mock-idp can fail. Each variant is one `error` code of the RFCs, so a
/// handler picks the code and this type picks the status, the JSON body and the headers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// Client authentication failed: 401 with `WWW-Authenticate` (RFC 6749 5.2).
    #[error("invalid_client: {0}")]
    InvalidClient(String),
    #[error("invalid_grant: {0}")]
    InvalidGrant(String),
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(String),
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(String),
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    #[error("unsupported_token_type: {0}")]
    UnsupportedTokenType(String),
    /// A token-exchange `audience` or `resource` this server does not serve (RFC 8693 2.2.2).
    #[error("invalid_target: {0}")]
    InvalidTarget(String),
    /// A bearer token that is missing, malformed, expired, revoked or wrongly signed (RFC 6750).
    #[error("unsupported_response_type: {0}")]
    UnsupportedResponseType(String),
    /// `prompt=none` without a session (OpenID Connect Core 3.1.2.6).
    #[error("login_required: {0}")]
    LoginRequired(String),
    /// The access token lacks the scope the resource needs (RFC 6750 3.1): 403.
    #[error("insufficient_scope: {0}")]
    InsufficientScope(String),
    #[error("invalid_token: {0}")]
    InvalidToken(String),
    /// A resource request with no token at all: 401 with a bare `Bearer` challenge, because
    /// RFC 6750 3.1 asks for no error code when no authentication was attempted.
    #[error("no access token: {0}")]
    MissingToken(String),
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("no such endpoint: {0}")]
    NotFound(String),
    /// 405, with the methods the path does take in `Allow` (RFC 9110 15.5.6).
    #[error("method {method} not allowed here")]
    MethodNotAllowed { method: String, allow: &'static str },
    /// The request's body did not arrive in time: 408, and the connection is closed.
    #[error("the request was not received within {}", humantime::format_duration(*after))]
    RequestTimeout { after: std::time::Duration },
    /// A DPoP proof at the token endpoint that does not verify or does not fit the request
    /// (RFC 9449 section 5): 400.
    #[error("invalid_dpop_proof: {0}")]
    InvalidDpopProof(String),
    /// The same at a resource (RFC 9449 section 7.1): 401 with a `DPoP` challenge.
    #[error("invalid_dpop_proof: {0}")]
    InvalidDpopProofAtResource(String),
    /// A DPoP proof without a nonce, or with a stale one, where one is required (RFC 9449
    /// section 8): 400 with the nonce to use in `DPoP-Nonce`.
    #[error("use_dpop_nonce: send the DPoP proof again with the nonce {nonce:?}")]
    UseDpopNonce { nonce: String },
    /// A store of the server is at its configured size limit: 503 until entries expire.
    #[error("temporarily_unavailable: {0}")]
    StoreFull(String),
    #[error("server_error: {0}")]
    ServerError(String),
}

impl OAuthError {
    /// The `error` member of the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient(_) => "invalid_client",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::UnauthorizedClient(_) => "unauthorized_client",
            OAuthError::UnsupportedGrantType(_) => "unsupported_grant_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::UnsupportedTokenType(_) => "unsupported_token_type",
            OAuthError::InvalidTarget(_) => "invalid_target",
            OAuthError::InvalidToken(_) => "invalid_token",
            // Never sent (see `body`): only for logs and tests.
            OAuthError::MissingToken(_) => "invalid_request",
            OAuthError::UnsupportedResponseType(_) => "unsupported_response_type",
            OAuthError::LoginRequired(_) => "login_required",
            OAuthError::InsufficientScope(_) => "insufficient_scope",
            OAuthError::PayloadTooLarge { .. } => "invalid_request",
            OAuthError::NotFound(_) => "not_found",
            OAuthError::MethodNotAllowed { .. } => "invalid_request",
            OAuthError::RequestTimeout { .. } => "invalid_request",
            OAuthError::StoreFull(_) => "temporarily_unavailable",
            OAuthError::ServerError(_) => "server_error",
            OAuthError::InvalidDpopProof(_) | OAuthError::InvalidDpopProofAtResource(_) => {
                "invalid_dpop_proof"
            }
            OAuthError::UseDpopNonce { .. } => "use_dpop_nonce",
        }
    }

    /// The `error_description` member: human-readable, ASCII as RFC 6749 asks.
    pub fn description(&self) -> String {
        match self {
            OAuthError::InvalidRequest(text)
            | OAuthError::InvalidClient(text)
            | OAuthError::InvalidGrant(text)
            | OAuthError::UnauthorizedClient(text)
            | OAuthError::UnsupportedGrantType(text)
            | OAuthError::InvalidScope(text)
            | OAuthError::UnsupportedTokenType(text)
            | OAuthError::InvalidTarget(text)
            | OAuthError::InvalidToken(text)
            | OAuthError::MissingToken(text)
            | OAuthError::StoreFull(text)
            | OAuthError::UnsupportedResponseType(text)
            | OAuthError::LoginRequired(text)
            | OAuthError::InsufficientScope(text)
            | OAuthError::NotFound(text)
            | OAuthError::InvalidDpopProof(text)
            | OAuthError::InvalidDpopProofAtResource(text)
            | OAuthError::ServerError(text) => text.clone(),
            OAuthError::UseDpopNonce { .. } => {
                "send the DPoP proof again with the nonce in the DPoP-Nonce header".to_owned()
            }
            OAuthError::PayloadTooLarge { limit } => {
                format!("request body larger than {limit} bytes")
            }
            OAuthError::MethodNotAllowed { method, allow } => {
                format!("method {method} not allowed here; use {allow}")
            }
            OAuthError::RequestTimeout { after } => format!(
                "the request body did not arrive within {}",
                humantime::format_duration(*after)
            ),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            OAuthError::InvalidClient(_)
            | OAuthError::InvalidToken(_)
            | OAuthError::InvalidDpopProofAtResource(_)
            | OAuthError::MissingToken(_) => StatusCode::UNAUTHORIZED,
            OAuthError::InsufficientScope(_) => StatusCode::FORBIDDEN,
            OAuthError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            OAuthError::NotFound(_) => StatusCode::NOT_FOUND,
            OAuthError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            OAuthError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            OAuthError::StoreFull(_) => StatusCode::SERVICE_UNAVAILABLE,
            OAuthError::ServerError(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The JSON body of RFC 6749 5.2 (without `error` when no token was sent, as RFC 6750 3.1
    /// asks).
    pub fn body(&self) -> String {
        match self {
            OAuthError::MissingToken(_) => serde_json::json!({
                "error_description": self.description(),
            }),
            _ => serde_json::json!({
                "error": self.code(),
                "error_description": self.description(),
            }),
        }
        .to_string()
    }

    /// The `Allow` header of a 405.
    pub fn allow(&self) -> Option<&'static str> {
        match self {
            OAuthError::MethodNotAllowed { allow, .. } => Some(allow),
            _ => None,
        }
    }

    /// The `WWW-Authenticate` challenge this error carries, if any.
    pub fn www_authenticate(&self) -> Option<String> {
        match self {
            OAuthError::InvalidClient(_) => Some(r#"Basic realm="mock-idp""#.to_owned()),
            OAuthError::MissingToken(_) => Some(r#"Bearer realm="mock-idp""#.to_owned()),
            OAuthError::InvalidToken(description) => Some(format!(
                r#"Bearer realm="mock-idp", error="invalid_token", error_description="{}""#,
                description.replace(['"', '\\'], "'")
            )),
            OAuthError::InsufficientScope(description) => Some(format!(
                r#"Bearer realm="mock-idp", error="insufficient_scope", error_description="{}""#,
                description.replace(['"', '\\'], "'")
            )),
            OAuthError::InvalidDpopProofAtResource(description) => Some(format!(
                r#"DPoP realm="mock-idp", error="invalid_dpop_proof", error_description="{}", algs="{}""#,
                description.replace(['"', '\\'], "'"),
                crate::dpop::DPOP_ALGORITHMS.join(" ")
            )),
            _ => None,
        }
    }

    /// The nonce a client must put in its next DPoP proof (the `DPoP-Nonce` header).
    pub fn dpop_nonce(&self) -> Option<&str> {
        match self {
            OAuthError::UseDpopNonce { nonce } => Some(nonce),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_client_is_401_with_a_basic_challenge() {
        let error = OAuthError::InvalidClient("bad secret".into());
        assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            error.www_authenticate().as_deref(),
            Some(r#"Basic realm="mock-idp""#)
        );
        let body: serde_json::Value = serde_json::from_str(&error.body()).unwrap();
        assert_eq!(body["error"], "invalid_client");
        assert_eq!(body["error_description"], "bad secret");
    }

    #[test]
    fn a_missing_token_gets_a_challenge_without_an_error_code() {
        let error = OAuthError::MissingToken("no access token was sent".into());
        assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            error.www_authenticate().as_deref(),
            Some(r#"Bearer realm="mock-idp""#)
        );
        let body: serde_json::Value = serde_json::from_str(&error.body()).unwrap();
        assert!(body.get("error").is_none(), "{body}");
    }

    #[test]
    fn invalid_token_challenge_quotes_safely() {
        let error = OAuthError::InvalidToken(r#"bad "kid""#.into());
        let challenge = error.www_authenticate().unwrap();
        assert!(challenge.starts_with(r#"Bearer realm="mock-idp", error="invalid_token""#));
        assert!(!challenge.contains(r#""kid""#));
    }
}
