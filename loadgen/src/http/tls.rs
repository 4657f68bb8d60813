//! TLS for every connection loadgen opens: rustls with the aws-lc-rs provider, TLS 1.2 and 1.3,
//! the system's roots plus the CAs a user names, an optional client certificate, ALPN for HTTP/2,
//! and a failed handshake told as a sentence that names the host and the reason.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// ALPN name of HTTP/2 (RFC 9113 section 3.2).
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN name of HTTP/1.1.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// What the user asked of TLS on the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM files of CAs trusted besides the system's roots (`--ca-cert`).
    pub ca_certs: Vec<PathBuf>,
    /// Skip verifying the server's certificate (`--insecure`): recorded in every result.
    pub insecure: bool,
    /// A certificate and key presented on every connection (`--client-cert`, `--client-key`).
    pub client_certificate: Option<ClientCertificate>,
}

/// A client certificate chain and its private key, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// The certificate chain, leaf first.
    pub chain: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why TLS could not be set up from the settings; each says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsSetupError {
    /// A `--ca-cert` file could not be read or holds no certificate.
    #[error(
        "--ca-cert {path}: {reason}; give a PEM file with the CA certificate(s) that signed the \
         provider's certificate"
    )]
    CaCertificate {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The client certificate or its key could not be used.
    #[error(
        "the client certificate ({path}): {reason}; give --client-cert a PEM certificate chain \
         and --client-key its PEM private key"
    )]
    ClientCertificate {
        /// The file at fault.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// Nothing to trust: the system has no roots and no `--ca-cert` was given.
    #[error(
        "no CA certificate to trust: the system's store is empty or unreadable ({0}); give the \
         provider's CA with --ca-cert FILE"
    )]
    NoRoots(String),
    /// The TLS library refused the protocol versions (TLS 1.2 and 1.3) of its own provider.
    #[error("the TLS library refused TLS 1.2 and 1.3 with its aws-lc-rs provider: {0}")]
    Versions(String),
}

/// The rustls provider every TLS connection of this process uses.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The system's root certificates, read once per process (the first https target pays for it).
fn system_roots() -> &'static (Vec<CertificateDer<'static>>, Option<String>) {
    static ROOTS: OnceLock<(Vec<CertificateDer<'static>>, Option<String>)> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        let problem = (found.certs.is_empty()).then(|| {
            found
                .errors
                .first()
                .map_or_else(|| "no certificates found".to_owned(), ToString::to_string)
        });
        (found.certs, problem)
    })
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|error| error.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| error.to_string())?;
    if certificates.is_empty() {
        return Err("it holds no PEM certificate".to_owned());
    }
    Ok(certificates)
}

/// The client configuration every connection of a run shares (so TLS sessions resume across a
/// virtual user's reconnections), with ALPN offering `h2` alone when `http2` is asked for.
pub fn client_config(
    settings: &TlsSettings,
    http2: bool,
) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|error| TlsSetupError::Versions(error.to_string()))?;
    let builder = if settings.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
    } else {
        let mut roots = RootCertStore::empty();
        let (system, problem) = system_roots();
        roots.add_parsable_certificates(system.iter().cloned());
        for path in &settings.ca_certs {
            let certificates =
                read_certificates(path).map_err(|reason| TlsSetupError::CaCertificate {
                    path: path.display().to_string(),
                    reason,
                })?;
            for certificate in certificates {
                roots
                    .add(certificate)
                    .map_err(|error| TlsSetupError::CaCertificate {
                        path: path.display().to_string(),
                        reason: format!("not a usable CA certificate ({error})"),
                    })?;
            }
        }
        if roots.is_empty() {
            return Err(TlsSetupError::NoRoots(
                problem.clone().unwrap_or_else(|| "empty".to_owned()),
            ));
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match &settings.client_certificate {
        None => builder.with_no_client_auth(),
        Some(client) => {
            let chain = read_certificates(&client.chain).map_err(|reason| {
                TlsSetupError::ClientCertificate {
                    path: client.chain.display().to_string(),
                    reason,
                }
            })?;
            let key = PrivateKeyDer::from_pem_file(&client.key).map_err(|error| {
                TlsSetupError::ClientCertificate {
                    path: client.key.display().to_string(),
                    reason: error.to_string(),
                }
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|error| {
                TlsSetupError::ClientCertificate {
                    path: client.key.display().to_string(),
                    reason: format!("the key does not fit the certificate ({error})"),
                }
            })?
        }
    };
    config.alpn_protocols = if http2 {
        vec![ALPN_H2.to_vec()]
    } else {
        vec![ALPN_HTTP1.to_vec()]
    };
    Ok(Arc::new(config))
}

/// `--insecure`: accepts any certificate, but still checks that the server holds its key.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A failed TLS handshake with `origin` (whose host is `name`) in one sentence a user can act on:
/// the certificate's problem (unknown issuer, name mismatch, expired, not yet valid), or no
/// common application protocol, and what to do about it.
pub fn describe_handshake_failure(origin: &str, name: &str, error: &std::io::Error) -> String {
    match rustls_error_in(error) {
        Some(tls) => describe_tls_error(origin, name, tls),
        None => format!("the TLS handshake with {origin} failed: {error}"),
    }
}

/// The rustls error somewhere in `error`'s chain: an I/O error hides it as its payload, which
/// its `source` skips.
pub fn rustls_error_in<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(tls) = error
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(tls);
        }
        current = error.source();
    }
    None
}

/// A TLS failure with `origin` (whose host is `name`) in one sentence a user can act on.
pub fn describe_tls_error(origin: &str, name: &str, tls: &rustls::Error) -> String {
    let host = origin;
    match tls {
        rustls::Error::InvalidCertificate(certificate) => {
            describe_certificate(host, name, certificate)
        }
        rustls::Error::NoApplicationProtocol
        | rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol) => format!(
            "{host} agreed on no application protocol: it does not speak HTTP/2 over TLS \
             (leave out --http2 to use HTTP/1.1)"
        ),
        rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired) => format!(
            "{host} requires a client certificate: give --client-cert FILE and --client-key FILE"
        ),
        rustls::Error::AlertReceived(alert) => {
            format!("{host} ended the TLS handshake with the alert {alert:?}")
        }
        other => format!("the TLS handshake with {host} failed: {other}"),
    }
}

/// A name as rustls lists the names a certificate holds (`DnsName("idp.example.test")`), bare.
fn bare_name(presented: &str) -> &str {
    presented
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .map_or(presented, |inner| inner.trim_matches('"'))
}

fn describe_certificate(host: &str, name: &str, problem: &CertificateError) -> String {
    let trust = "give its CA with --ca-cert FILE, or --insecure to skip verification (recorded in \
                 the result)";
    match problem {
        CertificateError::UnknownIssuer => format!(
            "the certificate of {host} has an unknown issuer: no CA loadgen trusts signed it; \
             {trust}"
        ),
        CertificateError::NotValidForName => format!(
            "the certificate of {host} is not valid for the name {name} (a name mismatch): \
             connect by a name it holds (--resolve NAME:PORT:ADDRESS maps a name to an address)"
        ),
        CertificateError::NotValidForNameContext { presented, .. } => format!(
            "the certificate of {host} is not valid for the name {name} (a name mismatch): it is \
             for {}; connect by a name it holds (--resolve NAME:PORT:ADDRESS maps a name to an \
             address)",
            presented
                .iter()
                .map(|presented| bare_name(presented))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => format!(
            "the certificate of {host} has expired: renew it on the provider (or check this \
             machine's clock)"
        ),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => format!(
            "the certificate of {host} is not valid yet: check this machine's clock, or the \
             certificate's start date"
        ),
        other => format!("the certificate of {host} was refused: {other}; {trust}"),
    }
}
