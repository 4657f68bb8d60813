//! `self_signed_tls_client_auth` (RFC 8705 section 2.2): a client registered with a certificate
//! authenticates by presenting it in the TLS handshake. The server asks every TLS client for a
//! certificate without requiring one, proves the client holds its key (the handshake's
//! signature), and leaves trust to this registration: the certificate presented must be the one
//! registered, byte for byte, as a self-signed certificate is.

use std::sync::Arc;

use bytes::Bytes;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// The certificate a TLS client presented, attached to each request of its connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedCertificate(pub Bytes);

/// Asks for a client certificate, accepts any (or none), and checks the handshake's signature
/// with the key it names: whether the certificate is the client's is decided by
/// [`crate::clients::authenticate_client`] against the registered one.
#[derive(Debug)]
pub struct AnyClientCertificate {
    provider: Arc<CryptoProvider>,
}

impl AnyClientCertificate {
    pub fn new(provider: Arc<CryptoProvider>) -> Self {
        Self { provider }
    }
}

impl ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Why a registered client certificate cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClientCertificateError {
    #[error("could not read the client certificate {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path} holds no PEM certificate")]
    Empty { path: String },
}

/// Reads the first certificate of a PEM file: the one a client registered.
pub fn read_certificate(path: &std::path::Path) -> Result<Bytes, ClientCertificateError> {
    use rustls::pki_types::pem::PemObject as _;
    let display = path.display().to_string();
    let mut certificates =
        CertificateDer::pem_file_iter(path).map_err(|error| ClientCertificateError::Read {
            path: display.clone(),
            reason: error.to_string(),
        })?;
    match certificates.next() {
        Some(Ok(certificate)) => Ok(Bytes::copy_from_slice(certificate.as_ref())),
        Some(Err(error)) => Err(ClientCertificateError::Read {
            path: display,
            reason: error.to_string(),
        }),
        None => Err(ClientCertificateError::Empty { path: display }),
    }
}
