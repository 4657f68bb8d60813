//! Serving HTTPS: the server's certificate (files given, or a CA and certificate made for the
//! loopback names with `--tls-self-signed DIR`), and the rustls configuration that offers HTTP/2
//! and HTTP/1.1 by ALPN. [`TestCa`] makes certificates for tests: valid, expired or for other
//! names.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Names the self-signed certificate holds: what a loopback issuer URL can name.
pub const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Where the server's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// A PEM certificate chain and its PEM private key.
    Files {
        /// The chain, leaf first.
        certificate: PathBuf,
        /// The key.
        key: PathBuf,
    },
    /// A CA and a certificate for the loopback names, made at start and written to the folder
    /// (`ca.pem` to trust, `cert.pem`, `key.pem`).
    SelfSigned {
        /// The folder.
        directory: PathBuf,
    },
}

/// Why HTTPS could not be set up; each says what to change.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("--tls-cert {path}: {reason}; give a PEM certificate chain, leaf first")]
    Certificate { path: String, reason: String },
    #[error("--tls-key {path}: {reason}; give the PEM private key of --tls-cert")]
    Key { path: String, reason: String },
    #[error("the certificate and key do not fit together: {0}")]
    Mismatch(String),
    #[error("could not make a self-signed certificate: {0}")]
    Generate(String),
    #[error("could not write the self-signed certificate to {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// A certificate authority made for tests and `--tls-self-signed`: it issues certificates for
/// any names, valid or not, all signed by one key whose certificate a client is told to trust.
#[derive(Debug)]
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    certificate_pem: String,
}

/// A certificate a [`TestCa`] issued, and its key, both PEM.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    /// The leaf certificate.
    pub certificate_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

/// When an issued certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From 1975 to 4096: valid now.
    Current,
    /// 2000 to 2001: expired.
    Expired,
    /// From 4000 on: not valid yet.
    Future,
}

fn generate_error(error: rcgen::Error) -> TlsError {
    TlsError::Generate(error.to_string())
}

impl TestCa {
    /// A new CA with a fresh key.
    pub fn new() -> Result<Self, TlsError> {
        let key = KeyPair::generate().map_err(generate_error)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(generate_error)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "mock-idp test CA");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let certificate = params.self_signed(&key).map_err(generate_error)?;
        Ok(Self {
            certificate_pem: certificate.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA's certificate, for a client to trust.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// A server certificate for `names` (DNS names or IP addresses), valid as `validity` says.
    pub fn issue(&self, names: &[&str], validity: Validity) -> Result<IssuedCertificate, TlsError> {
        let key = KeyPair::generate().map_err(generate_error)?;
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).map_err(generate_error)?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().map_or("mock-idp", String::as_str),
        );
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        match validity {
            Validity::Current => {}
            Validity::Expired => {
                params.not_before = rcgen::date_time_ymd(2000, 1, 1);
                params.not_after = rcgen::date_time_ymd(2001, 1, 1);
            }
            Validity::Future => {
                params.not_before = rcgen::date_time_ymd(4000, 1, 1);
                params.not_after = rcgen::date_time_ymd(4001, 1, 1);
            }
        }
        let certificate = params
            .signed_by(&key, &self.issuer)
            .map_err(generate_error)?;
        Ok(IssuedCertificate {
            certificate_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn write(path: &Path, text: &str) -> Result<(), TlsError> {
    std::fs::write(path, text).map_err(|source| TlsError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// Makes a CA and a certificate for the loopback names and writes `ca.pem`, `cert.pem` and
/// `key.pem` into `directory` (made if missing). Returns the paths of the certificate and key.
pub fn write_self_signed(directory: &Path) -> Result<(PathBuf, PathBuf), TlsError> {
    std::fs::create_dir_all(directory).map_err(|source| TlsError::Write {
        path: directory.display().to_string(),
        source,
    })?;
    let ca = TestCa::new()?;
    let issued = ca.issue(&LOOPBACK_NAMES, Validity::Current)?;
    let certificate = directory.join("cert.pem");
    let key = directory.join("key.pem");
    write(&directory.join("ca.pem"), ca.certificate_pem())?;
    write(&certificate, &issued.certificate_pem)?;
    write(&key, &issued.key_pem)?;
    Ok((certificate, key))
}

/// The server configuration for `source`: TLS 1.2 and 1.3 with the aws-lc-rs provider, HTTP/2
/// and HTTP/1.1 offered by ALPN (HTTP/2 first, as servers prefer it).
pub fn server_config(source: &TlsSource) -> Result<Arc<ServerConfig>, TlsError> {
    let (certificate, key) = match source {
        TlsSource::Files { certificate, key } => (certificate.clone(), key.clone()),
        TlsSource::SelfSigned { directory } => write_self_signed(directory)?,
    };
    let chain = CertificateDer::pem_file_iter(&certificate)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .map_err(|error| TlsError::Certificate {
            path: certificate.display().to_string(),
            reason: error.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Certificate {
            path: certificate.display().to_string(),
            reason: "it holds no PEM certificate".into(),
        });
    }
    let private_key = PrivateKeyDer::from_pem_file(&key).map_err(|error| TlsError::Key {
        path: key.display().to_string(),
        reason: error.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    // Every client is asked for a certificate and none must give one: a client registered with
    // a certificate authenticates with it (RFC 8705), every other client goes on without.
    let client_certificates = Arc::new(crate::client_certificate::AnyClientCertificate::new(
        Arc::clone(&provider),
    ));
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|error| TlsError::Mismatch(error.to_string()))?
        .with_client_cert_verifier(client_certificates)
        .with_single_cert(chain, private_key)
        .map_err(|error| TlsError::Mismatch(error.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
