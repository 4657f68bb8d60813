//! Opening one connection to an origin: TCP to the origin's host (or the address `--resolve`
//! names for it), TLS where the scheme is https, then HTTP/1.1 or HTTP/2 as asked and as ALPN
//! agreed. The settings every connection of a process shares are a [`Transport`].

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::http::address::{Origin, Scheme};
use crate::http::tls::{
    ALPN_H2, TlsSettings, TlsSetupError, client_config, describe_handshake_failure,
};
use crate::http::transport_error::{TransportError, classify};
use crate::results::names::TransportErrorKind;

/// `--resolve HOST:PORT:ADDRESS` (curl's form): connections to that host and port go to the
/// address, while SNI, certificate names and `Host` stay the host's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolve {
    host: String,
    port: u16,
    address: IpAddr,
}

/// A `--resolve` value that is not `HOST:PORT:ADDRESS`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--resolve {0:?} is not HOST:PORT:ADDRESS (for example idp.example.test:443:127.0.0.1)")]
pub struct ResolveParseError(String);

impl FromStr for Resolve {
    type Err = ResolveParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let malformed = || ResolveParseError(text.to_owned());
        let (host, rest) = text.split_once(':').ok_or_else(malformed)?;
        let (port, address) = rest.split_once(':').ok_or_else(malformed)?;
        let address = address.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(malformed());
        }
        Ok(Self {
            host: host.to_ascii_lowercase(),
            port: port.parse().map_err(|_| malformed())?,
            address: address.parse().map_err(|_| malformed())?,
        })
    }
}

/// How this process connects: TLS settings, HTTP/2, and names resolved by hand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransportSettings {
    /// Trust, client certificate and verification.
    pub tls: TlsSettings,
    /// Speak HTTP/2: negotiated by ALPN over TLS (refusing HTTP/1.1), with prior knowledge over
    /// plain HTTP (h2c).
    pub http2: bool,
    /// Names mapped to addresses.
    pub resolve: Vec<Resolve>,
}

/// What every connection of a process shares: its settings and the TLS client configuration
/// (built on first use, or by [`Transport::check_tls`] before a run). Each client gets its own
/// copy with its own session cache ([`Transport::tls_for_one_client`]): a virtual user resumes
/// its own TLS sessions when it reconnects, never another user's, as separate real clients do.
#[derive(Debug, Default)]
pub struct Transport {
    settings: TransportSettings,
    tls: OnceLock<Result<Arc<ClientConfig>, TlsSetupError>>,
}

impl Transport {
    /// A transport with `settings`; TLS is set up when first needed.
    pub fn new(settings: TransportSettings) -> Self {
        Self {
            settings,
            tls: OnceLock::new(),
        }
    }

    /// Sets TLS up now, so that a bad `--ca-cert` or client key stops the command before any
    /// load instead of failing its first request.
    pub fn check_tls(&self) -> Result<(), TlsSetupError> {
        self.tls_config().map(|_| ())
    }

    fn tls_config(&self) -> Result<Arc<ClientConfig>, TlsSetupError> {
        self.tls
            .get_or_init(|| client_config(&self.settings.tls, self.settings.http2))
            .clone()
    }

    /// The TLS configuration of one client: the shared one with a session cache of its own.
    pub(crate) fn tls_for_one_client(&self) -> Result<Arc<ClientConfig>, TlsSetupError> {
        let mut config = ClientConfig::clone(&*self.tls_config()?);
        config.resumption = rustls::client::Resumption::in_memory_sessions(8);
        Ok(Arc::new(config))
    }

    fn address_of(&self, origin: &Origin) -> Option<IpAddr> {
        self.settings
            .resolve
            .iter()
            .find(|resolve| {
                resolve.port == origin.port() && resolve.host.eq_ignore_ascii_case(origin.host())
            })
            .map(|resolve| resolve.address)
    }
}

/// The request side of an open connection.
#[derive(Debug)]
pub(crate) enum Sender {
    Http1(http1::SendRequest<Full<Bytes>>),
    Http2(http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    pub(crate) fn is_closed(&self) -> bool {
        match self {
            Sender::Http1(sender) => sender.is_closed(),
            Sender::Http2(sender) => sender.is_closed(),
        }
    }

    pub(crate) fn is_http2(&self) -> bool {
        matches!(self, Sender::Http2(_))
    }

    pub(crate) async fn ready(&mut self) -> Result<(), hyper::Error> {
        match self {
            Sender::Http1(sender) => sender.ready().await,
            Sender::Http2(sender) => sender.ready().await,
        }
    }

    pub(crate) async fn send_request(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, hyper::Error> {
        match self {
            Sender::Http1(sender) => sender.send_request(request).await,
            Sender::Http2(sender) => sender.send_request(request).await,
        }
    }
}

/// How a connection's TLS handshake went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// Plain HTTP: none.
    None,
    /// A full handshake.
    Full,
    /// A resumed session (cheaper for both sides).
    Resumed,
}

/// A connection just opened.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) sender: Sender,
    pub(crate) handshake: Handshake,
    /// TCP connect, TLS handshake and HTTP/2 preface, together.
    pub(crate) set_up_in: Duration,
}

fn failure(kind: TransportErrorKind, detail: impl std::fmt::Display) -> TransportError {
    TransportError::new(kind, detail)
}

/// Opens a connection to `origin`; over https with `tls`, the client's own configuration (its
/// session cache), made on first use.
pub(crate) async fn open(
    origin: &Origin,
    transport: &Transport,
    tls: &mut Option<Arc<ClientConfig>>,
) -> Result<Opened, TransportError> {
    let started = Instant::now();
    let stream = match transport.address_of(origin) {
        Some(address) => TcpStream::connect((address, origin.port())).await,
        None => TcpStream::connect((origin.host(), origin.port())).await,
    }
    .map_err(|error| failure(TransportErrorKind::Connect, format!("{origin}: {error}")))?;
    // Small request/response pairs: Nagle would add delay to every one.
    let _ = stream.set_nodelay(true);
    let http2 = transport.settings.http2;
    let (sender, handshake) = match origin.scheme() {
        Scheme::Http => (
            handshake_http(TokioIo::new(stream), http2).await?,
            Handshake::None,
        ),
        Scheme::Https => {
            let config = match tls {
                Some(config) => Arc::clone(config),
                None => {
                    let config = transport
                        .tls_for_one_client()
                        .map_err(|error| failure(TransportErrorKind::Tls, error))?;
                    Arc::clone(tls.insert(config))
                }
            };
            let name = ServerName::try_from(origin.host().to_owned()).map_err(|_| {
                failure(
                    TransportErrorKind::Tls,
                    format!("{} is not a name a certificate can hold", origin.host()),
                )
            })?;
            let tls = TlsConnector::from(config)
                .connect(name, stream)
                .await
                .map_err(|error| {
                    failure(
                        TransportErrorKind::Tls,
                        describe_handshake_failure(&origin.to_string(), origin.host(), &error),
                    )
                })?;
            let session = tls.get_ref().1;
            let negotiated_h2 = session.alpn_protocol() == Some(ALPN_H2);
            if http2 && !negotiated_h2 {
                return Err(failure(
                    TransportErrorKind::Tls,
                    format!(
                        "HTTP/2 was asked for (--http2) but {origin} did not agree to it by ALPN: \
                         it serves HTTP/1.1 only here (leave out --http2)"
                    ),
                ));
            }
            let handshake = match session.handshake_kind() {
                Some(rustls::HandshakeKind::Resumed) => Handshake::Resumed,
                _ => Handshake::Full,
            };
            (
                handshake_http(TokioIo::new(tls), negotiated_h2).await?,
                handshake,
            )
        }
    };
    Ok(Opened {
        sender,
        handshake,
        set_up_in: started.elapsed(),
    })
}

async fn handshake_http<IO>(io: IO, http2: bool) -> Result<Sender, TransportError>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let classify = |error: hyper::Error| failure(classify(&error), error);
    if http2 {
        let (sender, connection) = http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(classify)?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Sender::Http2(sender))
    } else {
        let (sender, connection) = http1::handshake(io).await.map_err(classify)?;
        tokio::spawn(async move {
            // The connection task ends when the peer closes or the sender is dropped; errors
            // surface on the request that was in flight.
            let _ = connection.await;
        });
        Ok(Sender::Http1(sender))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_takes_curls_form_and_refuses_anything_else_in_words() {
        let resolve: Resolve = "IDP.example.test:8443:127.0.0.1".parse().unwrap();
        assert_eq!(resolve.host, "idp.example.test");
        assert_eq!(resolve.port, 8443);
        assert_eq!(resolve.address, IpAddr::from([127, 0, 0, 1]));
        let v6: Resolve = "idp:443:[::1]".parse().unwrap();
        assert_eq!(v6.address, "::1".parse::<IpAddr>().unwrap());
        for bad in [
            "idp",
            "idp:443",
            ":443:127.0.0.1",
            "idp:x:127.0.0.1",
            "idp:443:nowhere",
        ] {
            let error = bad.parse::<Resolve>().unwrap_err().to_string();
            assert!(error.contains("HOST:PORT:ADDRESS"), "{error}");
        }
    }
}
