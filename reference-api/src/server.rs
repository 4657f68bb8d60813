//! The socket side: HTTP/1.1 and cleartext HTTP/2 (prior knowledge) on one listener, request
//! bodies capped, and a graceful stop that drains open connections.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::Api;
use crate::config::Config;
use crate::keys::KeyError;

/// Request bodies larger than this answer 413.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// How long a stop waits for open connections to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request's headers may take to arrive.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The address is taken or not ours.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The keys could not be loaded.
    #[error(transparent)]
    Keys(#[from] KeyError),
}

/// A running API.
#[derive(Debug)]
pub struct RunningApi {
    addr: SocketAddr,
    api: Api,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningApi {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The API it serves.
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// Stops accepting, drains open connections, and waits until it has.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Starts the API of `config` on its address.
pub async fn spawn(config: Config) -> Result<RunningApi, StartError> {
    let api = Api::new(&config).await?;
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.addr,
        source,
    })?;
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(serve(listener, api.clone(), async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    }));
    Ok(RunningApi {
        addr,
        api,
        stop,
        task,
    })
}

/// Serves `api` on `listener` until `shutdown` completes, then drains open connections.
pub async fn serve(listener: TcpListener, api: Api, shutdown: impl Future<Output = ()>) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let api = api.clone();
                let service = service_fn(move |request: Request<Incoming>| {
                    let api = api.clone();
                    async move { Ok::<_, Infallible>(answer(&api, request).await) }
                });
                let connection = graceful.watch(
                    builder.serve_connection(TokioIo::new(stream), service).into_owned(),
                );
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {}
    }
}

async fn answer(api: &Api, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(body) => {
            api.handle(Request::from_parts(parts, body.to_bytes()))
                .await
        }
        Err(_) => {
            let mut response = Response::new(Full::new(Bytes::from_static(
                b"{\"error\":\"invalid_request\",\"error_description\":\"the body is too large or was cut off\"}",
            )));
            *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
            response
        }
    }
}
