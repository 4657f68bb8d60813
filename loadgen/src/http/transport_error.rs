//! How a request that got no complete response failed: its kind (connect, TLS, timeout, reset,
//! protocol, a body too large) and what the transport said, a TLS problem in words.

use crate::http::address::Origin;
use crate::http::tls::{describe_tls_error, rustls_error_in};
use crate::results::names::TransportErrorKind;

/// A request that got no complete response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} error: {detail}", kind.as_str())]
pub struct TransportError {
    /// Which kind of failure.
    pub kind: TransportErrorKind,
    /// What the transport said.
    pub detail: String,
}

impl TransportError {
    pub(crate) fn new(kind: TransportErrorKind, detail: impl std::fmt::Display) -> Self {
        Self {
            kind,
            detail: detail.to_string(),
        }
    }
}

pub(crate) fn classify(error: &hyper::Error) -> TransportErrorKind {
    if error.is_timeout() {
        TransportErrorKind::Timeout
    } else if error.is_parse()
        || error.is_parse_status()
        || error.is_parse_too_large()
        || error.is_user()
    {
        TransportErrorKind::Protocol
    } else {
        // Canceled, closed, incomplete message and I/O errors all mean the connection went away.
        TransportErrorKind::Reset
    }
}

/// A request's failure on a connection to `origin`: a TLS problem (a client certificate the
/// server requires, an alert after the handshake) in words, anything else by its kind.
pub(crate) fn transport_error(origin: &Origin, error: &hyper::Error) -> TransportError {
    match rustls_error_in(error) {
        Some(tls) => TransportError::new(
            TransportErrorKind::Tls,
            describe_tls_error(&origin.to_string(), origin.host(), tls),
        ),
        None => TransportError::new(classify(error), error),
    }
}
