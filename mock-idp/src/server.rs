//! The socket side: accepts connections on a Tokio listener (plain HTTP/1.1, or TLS with HTTP/2 or
//! HTTP/1.1 as ALPN agreed) and feeds their requests to `App`, with a header-read timeout (the TLS
//! handshake included), keep-alive, a periodic sweep and graceful shutdown. This is the only
//! module that knows hyper's server types.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::app::App;
use crate::client_certificate::PresentedCertificate;
use crate::config::Config;
use crate::keys::KeyError;
use crate::tls::{TlsError, server_config};

/// Connections still open this long after shutdown was asked for are dropped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "refusing to serve the /_test/ token minting on {addr}, beyond loopback: anyone who \
         reaches it gets real tokens; listen on 127.0.0.1 or ::1, or pass \
         --allow-test-endpoints-beyond-loopback if that is really meant"
    )]
    TestEndpointsBeyondLoopback { addr: SocketAddr },
    #[error("--max-connections must be at least 1")]
    NoConnectionsAllowed,
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A server running on the current Tokio runtime.
#[derive(Debug)]
pub struct RunningIdp {
    addr: SocketAddr,
    base_url: String,
    app: App,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningIdp {
    /// The address it listens on (with the real port when `:0` was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (`https://` when serving TLS), the default issuer.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The provider itself, for tests that look at its state or counters.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// Stops accepting, lets open requests finish (up to a bound), and returns when done.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Binds `config.addr`, builds the provider and serves it in the background.
pub async fn spawn(config: Config) -> Result<RunningIdp, StartError> {
    let addr = config.addr;
    if config.enable_test_endpoints
        && !addr.ip().is_loopback()
        && !config.allow_test_endpoints_beyond_loopback
    {
        return Err(StartError::TestEndpointsBeyondLoopback { addr });
    }
    if config.max_connections == 0 {
        return Err(StartError::NoConnectionsAllowed);
    }
    let tls = config.tls.as_ref().map(server_config).transpose()?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let base_url = format!("{scheme}://{addr}");
    let app = App::new(config, &base_url)?;
    let (stop, stopped) = watch::channel(false);
    let tls = tls.map(TlsAcceptor::from);
    let task = tokio::spawn(serve(listener, app.clone(), tls, wait_for_stop(stopped)));
    Ok(RunningIdp {
        addr,
        base_url,
        app,
        stop,
        task,
    })
}

async fn wait_for_stop(mut stopped: watch::Receiver<bool>) {
    // An error means the sender is gone, which is a stop too.
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Serves `app` on `listener` until `shutdown` completes, then drains open connections. With
/// `tls`, every connection first completes a TLS handshake (within the header-read timeout) and
/// then speaks the protocol ALPN agreed on.
pub async fn serve(
    listener: TcpListener,
    app: App,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let config = &app.config();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .keep_alive(true);
    let mut http2_builder = http2::Builder::new(TokioExecutor::new());
    http2_builder.timer(TokioTimer::new());
    let handshake_timeout = config.header_read_timeout;
    let graceful = GracefulShutdown::new();
    let sweeper = tokio::spawn(sweep_periodically(app.clone()));
    // A permit per open connection: at the cap, nothing more is accepted until one closes, so
    // the kernel's backlog holds the rest instead of this process's memory.
    let connection_slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&connection_slots).acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(error) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let Some(acceptor) = tls.clone() else {
                    let app = app.clone();
                    let service = service_fn(move |request| {
                        let app = app.clone();
                        async move { Ok::<_, Infallible>(app.handle(request).await) }
                    });
                    let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                    tokio::spawn(async move {
                        if let Err(error) = connection.await {
                            tracing::debug!(%error, "connection ended with an error");
                        }
                        drop(slot);
                    });
                    continue;
                };
                let watcher = graceful.watcher();
                let (http1_builder, http2_builder) = (builder.clone(), http2_builder.clone());
                let app = app.clone();
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(error)) => {
                            tracing::debug!(%error, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake took longer than the header-read timeout");
                            return;
                        }
                    };
                    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
                    // The client's certificate, if it gave one, goes with each of its requests:
                    // client authentication by certificate (RFC 8705) reads it there.
                    let presented = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(|leaf| PresentedCertificate(Bytes::copy_from_slice(leaf.as_ref())));
                    let service = service_fn(move |mut request: Request<hyper::body::Incoming>| {
                        if let Some(presented) = &presented {
                            request.extensions_mut().insert(presented.clone());
                        }
                        let app = app.clone();
                        async move { Ok::<_, Infallible>(app.handle(request).await) }
                    });
                    let served = if h2 {
                        watcher.watch(http2_builder.serve_connection(TokioIo::new(stream), service)).await
                    } else {
                        watcher.watch(http1_builder.serve_connection(TokioIo::new(stream), service)).await
                    };
                    if let Err(error) = served {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                    drop(slot);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    sweeper.abort();
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; closing them");
        }
    }
}

async fn sweep_periodically(app: App) {
    let mut interval = tokio::time::interval(app.config().sweep_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        interval.tick().await;
        let swept = app.sweep();
        tracing::debug!(?swept, "swept expired state");
    }
}

/// A future that completes on SIGINT or SIGTERM, with both handlers installed by the time this
/// returns. The binaries of mock-idp and the reference API stop on it.
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
