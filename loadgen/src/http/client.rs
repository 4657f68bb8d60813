//! The HTTP client of one virtual user: one keep-alive connection (hyper, HTTP/1.1 or HTTP/2,
//! over TLS where the origin is https) per origin it talks to, re-opened when it breaks, with
//! every failure classified as connect, TLS, timeout, reset, protocol or a body too large to read
//! (every body is capped, so no answer can make loadgen buffer without bound).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{ACCEPT, CONNECTION, CONTENT_LENGTH, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, Version};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use rustls::ClientConfig;

use crate::http::address::{Address, Origin};
use crate::http::connection::{Handshake, Sender, open};
use crate::http::target::Target;
use crate::http::transport_error::{TransportError, classify, transport_error};
use crate::results::names::TransportErrorKind;

/// The largest response body a client reads, by default: 1 MiB. Token responses, discovery
/// documents, key sets and login pages are a few kilobytes; anything near this is a fault, and
/// reading it whole would let one answer exhaust the generator's memory.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// A complete response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

fn body_too_large(limit: usize, what: &str) -> TransportError {
    TransportError::new(
        TransportErrorKind::BodyTooLarge,
        format!(
            "the response body {what}, more than the {limit} bytes loadgen reads; the provider \
             answered with something other than an OAuth or OpenID message"
        ),
    )
}

/// Reads a whole body of at most `limit` bytes. A declared `Content-Length` above the limit fails
/// before anything is read; a chunked or close-delimited body fails as soon as it passes the limit.
async fn read_capped_body(
    headers: &HeaderMap,
    mut incoming: Incoming,
    limit: usize,
) -> Result<Bytes, TransportError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if let Some(declared) = declared
        && declared > limit as u64
    {
        return Err(body_too_large(
            limit,
            &format!("declares {declared} bytes (Content-Length)"),
        ));
    }
    // A body that comes in one piece (most answers: hyper hands over what one read brought) is
    // kept as it came, not copied; only a body in several pieces is joined.
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut length = 0;
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|error| TransportError::new(classify(&error), error))?;
        if let Ok(data) = frame.into_data() {
            length += data.len();
            if length > limit {
                return Err(body_too_large(limit, "went on past the limit"));
            }
            match (&mut joined, first.take()) {
                (Some(joined), _) => joined.extend_from_slice(&data),
                (None, None) => first = Some(data),
                (None, Some(earlier)) => {
                    let capacity = declared.map_or(length, |declared| declared as usize);
                    let mut buffer = BytesMut::with_capacity(capacity.max(length));
                    buffer.extend_from_slice(&earlier);
                    buffer.extend_from_slice(&data);
                    joined = Some(buffer);
                }
            }
        }
    }
    Ok(joined.map_or_else(|| first.unwrap_or_default(), BytesMut::freeze))
}

/// What a client's connections cost: how many it opened, their TLS handshakes, and the time
/// spent setting them up (TCP connect, TLS handshake, HTTP/2 preface), apart from any request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionCounts {
    /// Connections opened.
    pub opened: u64,
    /// Full TLS handshakes.
    pub tls_full: u64,
    /// Resumed TLS sessions.
    pub tls_resumed: u64,
    /// Time spent opening them.
    pub set_up: Duration,
    /// Idempotent requests sent again after the server closed the kept-alive connection.
    pub resent: u64,
}

/// One open (or broken) connection of a client, to one origin.
#[derive(Debug)]
struct OriginConnection {
    origin: Arc<Origin>,
    sender: Option<Sender>,
}

/// One virtual user's connections: one keep-alive connection per origin it talks to.
#[derive(Debug)]
pub struct VuClient {
    target: Arc<Target>,
    connections: Vec<OriginConnection>,
    /// The client's TLS configuration, with its own session cache; made on first https use.
    tls: Option<Arc<ClientConfig>>,
    counts: ConnectionCounts,
    max_body_bytes: usize,
}

impl VuClient {
    /// A client that connects on first use and reads bodies of up to
    /// [`DEFAULT_MAX_BODY_BYTES`].
    pub fn new(target: Arc<Target>) -> Self {
        Self {
            target,
            connections: Vec::new(),
            tls: None,
            counts: ConnectionCounts::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// The same client, reading bodies of up to `limit` bytes.
    pub fn with_max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// How many connections this client has opened (one per origin while keep-alive holds).
    pub fn connections_opened(&self) -> u64 {
        self.counts.opened
    }

    /// What this client's connections cost so far.
    pub fn connection_counts(&self) -> ConnectionCounts {
        self.counts
    }

    /// Closes every connection, so the next request opens (and, over TLS, resumes) a new one.
    pub fn close_connections(&mut self) {
        for connection in &mut self.connections {
            connection.sender = None;
        }
    }

    /// The slot of `origin`'s connection, made on first use.
    fn slot(&mut self, origin: &Arc<Origin>) -> usize {
        if let Some(index) = self.connections.iter().position(|connection| {
            Arc::ptr_eq(&connection.origin, origin) || *connection.origin == **origin
        }) {
            return index;
        }
        self.connections.push(OriginConnection {
            origin: Arc::clone(origin),
            sender: None,
        });
        self.connections.len() - 1
    }

    async fn connect(&mut self, slot: usize) -> Result<(), TransportError> {
        let origin = Arc::clone(&self.connections[slot].origin);
        let opened = open(&origin, self.target.transport(), &mut self.tls).await?;
        self.counts.opened += 1;
        match opened.handshake {
            Handshake::None => {}
            Handshake::Full => self.counts.tls_full += 1,
            Handshake::Resumed => self.counts.tls_resumed += 1,
        }
        self.counts.set_up += opened.set_up_in;
        self.connections[slot].sender = Some(opened.sender);
        Ok(())
    }

    /// Sends one request to `address` and reads the whole response, all within `timeout`. A
    /// stale keep-alive connection (closed by the server while idle) is re-opened once without
    /// counting as an error, as browsers and k6 do. A body larger than the client's cap is a
    /// [`TransportErrorKind::BodyTooLarge`], and the connection, whose unread rest cannot be
    /// skipped, is closed.
    pub async fn send(
        &mut self,
        method: Method,
        address: &Address,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<HttpResponse, TransportError> {
        let slot = self.slot(address.origin());
        match tokio::time::timeout(
            timeout,
            self.send_without_timeout(slot, method, address, headers, body),
        )
        .await
        {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => {
                self.connections[slot].sender = None;
                Err(error)
            }
            Err(_) => {
                // The connection may still deliver the late response; never reuse it.
                self.connections[slot].sender = None;
                Err(TransportError::new(
                    TransportErrorKind::Timeout,
                    format!(
                        "no complete response within {}",
                        humantime::format_duration(timeout)
                    ),
                ))
            }
        }
    }

    async fn send_without_timeout(
        &mut self,
        slot: usize,
        method: Method,
        address: &Address,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<HttpResponse, TransportError> {
        let mut may_retry = true;
        loop {
            let reused = match &self.connections[slot].sender {
                Some(sender) if !sender.is_closed() => true,
                _ => {
                    self.connections[slot].sender = None;
                    // Boxed: opening a connection (TCP, TLS, HTTP/2 preface) is a future of about
                    // 9 KB, rare beside requests; inline, it made every request's future as large,
                    // and moving that into the timeout copied 18 KB per request (callgrind).
                    Box::pin(self.connect(slot)).await?;
                    false
                }
            };
            let Some(sender) = self.connections[slot].sender.as_mut() else {
                continue;
            };
            if let Err(error) = sender.ready().await {
                self.connections[slot].sender = None;
                if reused && may_retry {
                    may_retry = false;
                    continue;
                }
                return Err(transport_error(address.origin(), &error));
            }
            let request =
                build_request(address, sender.is_http2(), &method, headers, body.clone())?;
            let response = match sender.send_request(request).await {
                Ok(response) => response,
                Err(error) => {
                    self.connections[slot].sender = None;
                    // Canceled means hyper never wrote the request: safe to send it again. An
                    // idempotent request (a GET) on a kept-alive connection that the server closed
                    // as it was sent (closed before any answer, or reset) is sent again on a new
                    // one, as RFC 9110 section 9.2.2 allows and browsers do: the server's idle
                    // timeout met the request. It is counted. A POST is never sent twice (it may
                    // rotate a token), nor a request that got part of an answer.
                    let closed_as_sent = method.is_idempotent() && closed_before_answer(&error);
                    if reused && may_retry && (error.is_canceled() || closed_as_sent) {
                        may_retry = false;
                        if closed_as_sent {
                            self.counts.resent += 1;
                        }
                        continue;
                    }
                    return Err(transport_error(address.origin(), &error));
                }
            };
            let (parts, incoming) = response.into_parts();
            let body = read_capped_body(&parts.headers, incoming, self.max_body_bytes).await?;
            return Ok(HttpResponse {
                status: parts.status,
                headers: parts.headers,
                body,
            });
        }
    }
}

/// Whether the connection ended before any of the answer came: closed (hyper's incomplete
/// message) or reset, broken or aborted by the peer.
fn closed_before_answer(error: &hyper::Error) -> bool {
    if error.is_incomplete_message() {
        return true;
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionAborted
            );
        }
        source = cause.source();
    }
    false
}

/// The request as the connection's protocol wants it: HTTP/1.1 in origin form with `Host` and
/// keep-alive; HTTP/2 in absolute form (hyper derives `:scheme` and `:authority` from it), with no
/// connection-specific header (RFC 9113 section 8.2.2).
fn build_request(
    address: &Address,
    http2: bool,
    method: &Method,
    headers: &[(HeaderName, HeaderValue)],
    body: Bytes,
) -> Result<Request<Full<Bytes>>, TransportError> {
    // Built in place rather than through `Request::builder()`, whose steps move the request head
    // from closure to closure: 1,480 instructions per request instead of 2,270 (callgrind).
    let uri = if http2 {
        Uri::try_from(address.to_string())
    } else {
        Uri::try_from(address.path_and_query())
    }
    .map_err(|error| TransportError::new(TransportErrorKind::Protocol, error))?;
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri;
    let request_headers = request.headers_mut();
    request_headers.reserve(headers.len() + 3);
    if http2 {
        *request.version_mut() = Version::HTTP_2;
    } else {
        request_headers.insert(HOST, address.origin().authority().clone());
        request_headers.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
    }
    let request_headers = request.headers_mut();
    request_headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    for (name, value) in headers {
        request_headers.append(name.clone(), value.clone());
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request's future is moved into its timeout on every request; opening a connection (about
    /// 9 KB of TLS and HTTP/2 state) is boxed so that move stays small.
    #[tokio::test]
    async fn a_requests_future_stays_small() {
        let target = Arc::new(Target::parse("http://127.0.0.1:1").expect("a valid URL"));
        let root = target.address_of("/").expect("a path on the target");
        let mut client = VuClient::new(target);
        let opening = std::mem::size_of_val(&client.connect(0));
        let request = std::mem::size_of_val(&client.send(
            Method::GET,
            &root,
            &[],
            Bytes::new(),
            Duration::from_secs(1),
        ));
        eprintln!("opening a connection {opening} bytes, a request {request} bytes");
        assert!(request < 2048 && request < opening, "{request} bytes");
    }

    #[tokio::test]
    async fn connect_refused_is_a_connect_error() {
        // Bind then drop to get a port nobody listens on.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let target = Arc::new(Target::parse(&format!("http://127.0.0.1:{port}")).unwrap());
        let root = target.address_of("/").unwrap();
        let mut client = VuClient::new(target);
        let error = client
            .send(
                Method::GET,
                &root,
                &[],
                Bytes::new(),
                Duration::from_secs(2),
            )
            .await
            .unwrap_err();
        assert_eq!(error.kind, TransportErrorKind::Connect);
    }

    /// A loopback server that answers the first request on each connection with `first` (raw
    /// HTTP/1.1 bytes, written in pieces so a chunked body can go on for ever) and every later
    /// connection's with a small JSON body, so a test can see the client recover.
    async fn raw_server(first: fn() -> Vec<Vec<u8>>) -> Arc<Target> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut served = 0;
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                served += 1;
                let pieces = if served == 1 {
                    first()
                } else {
                    vec![b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}".to_vec()]
                };
                tokio::spawn(async move {
                    let mut request = [0_u8; 4096];
                    let _ = stream.read(&mut request).await;
                    for piece in pieces {
                        if stream.write_all(&piece).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Arc::new(Target::parse(&base).unwrap())
    }

    async fn get(client: &mut VuClient) -> Result<HttpResponse, TransportError> {
        let root = client.target.address_of("/").unwrap();
        client
            .send(
                Method::GET,
                &root,
                &[],
                Bytes::new(),
                Duration::from_secs(5),
            )
            .await
    }

    /// A loopback server whose first connection answers one request, keeps the connection
    /// alive, then closes it on reading the next request without answering: a server's idle
    /// timeout meeting a request. Later connections answer every request; their count is kept.
    async fn closing_after_one() -> (Arc<Target>, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let later_requests = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&later_requests);
        tokio::spawn(async move {
            let mut first = true;
            while let Ok((mut stream, _)) = listener.accept().await {
                let is_first = std::mem::replace(&mut first, false);
                let counted = Arc::clone(&counted);
                tokio::spawn(async move {
                    let mut request = [0_u8; 4096];
                    while matches!(stream.read(&mut request).await, Ok(read) if read > 0) {
                        if !is_first {
                            counted.fetch_add(1, Ordering::SeqCst);
                        }
                        if stream.write_all(OK).await.is_err() || is_first {
                            break;
                        }
                    }
                    if is_first {
                        // The next request is read and left unanswered; the connection closes.
                        let _ = stream.read(&mut request).await;
                    }
                });
            }
        });
        (Arc::new(Target::parse(&base).unwrap()), later_requests)
    }

    #[tokio::test]
    async fn a_get_that_meets_a_closing_keep_alive_connection_is_sent_again_and_a_post_is_not() {
        use std::sync::atomic::Ordering;
        let (target, later_requests) = closing_after_one().await;
        let mut client = VuClient::new(Arc::clone(&target));
        assert_eq!(get(&mut client).await.unwrap().body, "{}");
        assert_eq!(get(&mut client).await.unwrap().body, "{}");
        assert_eq!(client.connections_opened(), 2);
        assert_eq!(later_requests.load(Ordering::SeqCst), 1);
        assert_eq!(client.connection_counts().resent, 1);

        let (target, later_requests) = closing_after_one().await;
        let mut client = VuClient::new(Arc::clone(&target));
        assert_eq!(get(&mut client).await.unwrap().body, "{}");
        let root = target.address_of("/").unwrap();
        let error = client
            .send(
                Method::POST,
                &root,
                &[],
                Bytes::from_static(b"grant_type=refresh_token"),
                Duration::from_secs(5),
            )
            .await
            .unwrap_err();
        assert!(error.kind.request_may_have_arrived(), "{error}");
        assert_eq!(
            later_requests.load(Ordering::SeqCst),
            0,
            "the POST was sent twice"
        );
    }

    #[tokio::test]
    async fn a_declared_oversized_body_fails_before_it_is_read_and_the_client_recovers() {
        let target =
            raw_server(|| vec![b"HTTP/1.1 200 OK\r\ncontent-length: 2000000\r\n\r\n{".to_vec()])
                .await;
        let mut client = VuClient::new(target);
        let error = get(&mut client).await.unwrap_err();
        assert_eq!(error.kind, TransportErrorKind::BodyTooLarge);
        assert_eq!(
            error.to_string(),
            "body_too_large error: the response body declares 2000000 bytes (Content-Length), \
             more than the 1048576 bytes loadgen reads; the provider answered with something \
             other than an OAuth or OpenID message"
        );
        let next = get(&mut client).await.unwrap();
        assert_eq!(next.body, "{}");
        assert_eq!(client.connections_opened(), 2);
    }

    #[tokio::test]
    async fn an_endless_chunked_body_stops_at_the_cap() {
        let target = raw_server(|| {
            let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000)).into_bytes();
            let mut pieces =
                vec![b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec()];
            // 64 MiB if nobody stops it: far more than the cap.
            pieces.extend(std::iter::repeat_n(chunk, 1024));
            pieces
        })
        .await;
        let mut client = VuClient::new(target);
        let error = get(&mut client).await.unwrap_err();
        assert_eq!(error.kind, TransportErrorKind::BodyTooLarge);
        assert!(error.detail.contains("went on past the limit"), "{error}");
        assert_eq!(get(&mut client).await.unwrap().body, "{}");
    }

    #[tokio::test]
    async fn a_body_at_the_cap_is_read_whole() {
        let target = raw_server(|| {
            vec![
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n8\r\n12345678\r\n0\r\n\r\n"
                    .to_vec(),
            ]
        })
        .await;
        let mut client = VuClient::new(target).with_max_body_bytes(8);
        assert_eq!(get(&mut client).await.unwrap().body, "12345678");
    }

    /// A body that comes in several pieces is joined in order; one in a single piece is kept
    /// as it came.
    #[tokio::test]
    async fn a_body_in_pieces_is_joined_in_order() {
        let target = raw_server(|| {
            vec![
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n".to_vec(),
                b"3\r\ndef\r\n".to_vec(),
                b"2\r\ngh\r\n0\r\n\r\n".to_vec(),
            ]
        })
        .await;
        let mut client = VuClient::new(target);
        assert_eq!(get(&mut client).await.unwrap().body, "abcdefgh");
        assert_eq!(get(&mut client).await.unwrap().body, "{}");
    }
}
