//! One GET of the provider's JWKS, over http:// or https:// (the system's root certificates and,
//! for a provider with a private CA, `--jwks-ca-cert`), within a timeout: a provider deployed
//! behind HTTPS publishes its keys there.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::HOST;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How long one fetch may take, connection and TLS handshake included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Fetches a JWKS; one per API, its TLS configuration built once.
#[derive(Debug, Clone)]
pub(crate) struct JwksFetcher {
    tls: Arc<rustls::ClientConfig>,
}

impl JwksFetcher {
    /// A fetcher trusting the system's roots and the PEM certificates in `ca_cert`.
    pub(crate) fn new(ca_cert: Option<&Path>) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        for certificate in rustls_native_certs::load_native_certs().certs {
            // A system certificate rustls cannot use is one it would not trust anyway.
            let _ = roots.add(certificate);
        }
        if let Some(path) = ca_cert {
            let certificates = CertificateDer::pem_file_iter(path)
                .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
                .map_err(|error| {
                    format!(
                        "--jwks-ca-cert {} is not a PEM certificate: {error}",
                        path.display()
                    )
                })?;
            if certificates.is_empty() {
                return Err(format!(
                    "--jwks-ca-cert {} holds no PEM certificate",
                    path.display()
                ));
            }
            for certificate in certificates {
                roots
                    .add(certificate)
                    .map_err(|error| format!("--jwks-ca-cert {}: {error}", path.display()))?;
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self { tls: Arc::new(tls) })
    }

    /// The status and body of a GET of `url`; the error is a sentence.
    pub(crate) async fn get(&self, url: &str) -> Result<(StatusCode, Bytes), String> {
        tokio::time::timeout(FETCH_TIMEOUT, self.get_now(url))
            .await
            .map_err(|_| format!("no answer within {FETCH_TIMEOUT:?}"))?
    }

    async fn get_now(&self, url: &str) -> Result<(StatusCode, Bytes), String> {
        let uri: Uri = url.parse().map_err(|_| format!("{url} is not a URL"))?;
        let host = uri.host().ok_or_else(|| format!("{url} names no host"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(format!("{url} is neither http:// nor https://")),
        };
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        // A bracketed IPv6 literal connects and is named without its brackets.
        let bare_host = host.trim_start_matches('[').trim_end_matches(']');
        let stream = TcpStream::connect((bare_host, port))
            .await
            .map_err(|error| error.to_string())?;
        if !https {
            return request(stream, &uri).await;
        }
        let name = ServerName::try_from(bare_host.to_owned())
            .map_err(|_| format!("{host} is not a name a certificate can carry"))?;
        let stream = TlsConnector::from(Arc::clone(&self.tls))
            .connect(name, stream)
            .await
            .map_err(|error| format!("the TLS handshake failed: {error}"))?;
        request(stream, &uri).await
    }
}

/// Sends a GET of `uri` on `stream` (HTTP/1.1) and reads the whole answer.
async fn request<S>(stream: S, uri: &Uri) -> Result<(StatusCode, Bytes), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| error.to_string())?;
    tokio::spawn(connection);
    let authority = uri.authority().map(ToString::to_string).unwrap_or_default();
    let path = uri.path_and_query().map_or("/", |path| path.as_str());
    let request = Request::get(path)
        .header(HOST, authority)
        .body(Empty::<Bytes>::new())
        .map_err(|error| error.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| error.to_string())?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|error| error.to_string())?
        .to_bytes();
    Ok((status, body))
}
