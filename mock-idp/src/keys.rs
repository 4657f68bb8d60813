//! Signing keys: made or loaded once at start, parsed once, and published as a JWKS.
//!
//! jsonwebtoken's stock aws-lc-rs provider re-parses the DER key on every `encode` and `decode`
//! (an RSA private-key parse costs more than the signature itself). This module installs a
//! process-wide jsonwebtoken `CryptoProvider` that looks the key up among the keys this process
//! registered (by their exact bytes) and signs or verifies with the parsed key it already holds.
//! Keys it does not know fall through to the stock provider, so the hook never changes results.

use std::sync::{Arc, LazyLock, OnceLock, RwLock};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{self as aws_sig, KeyPair as _};
use aws_lc_rs::{hmac, rand};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier};
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::signature;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};

/// The signature algorithms mock-idp can sign its tokens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 over a 2048-bit key (what OpenID Connect requires).
    #[value(name = "RS256")]
    Rs256,
    /// ECDSA over P-256 with SHA-256.
    #[value(name = "ES256")]
    Es256,
    /// Ed25519.
    #[value(name = "EdDSA")]
    EdDsa,
    /// HMAC with SHA-256. Only for benchmarks: a shared secret cannot be published as a JWKS.
    #[value(skip)]
    Hs256,
}

impl SigningAlg {
    /// The JOSE algorithm this maps to.
    pub fn algorithm(self) -> Algorithm {
        match self {
            SigningAlg::Rs256 => Algorithm::RS256,
            SigningAlg::Es256 => Algorithm::ES256,
            SigningAlg::EdDsa => Algorithm::EdDSA,
            SigningAlg::Hs256 => Algorithm::HS256,
        }
    }

    /// The name used in JOSE headers and in discovery.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Es256 => "ES256",
            SigningAlg::EdDsa => "EdDSA",
            SigningAlg::Hs256 => "HS256",
        }
    }
}

/// Why a key could not be made or loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("could not generate a {0} key")]
    Generate(&'static str),
    #[error("could not read the key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the key is not a valid {alg} private key: {reason}")]
    Invalid { alg: &'static str, reason: String },
}

/// One signing key, parsed once, with what the server needs to sign, verify and publish it.
#[derive(Debug, Clone)]
pub struct SigningKey {
    alg: SigningAlg,
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwks_json: Arc<str>,
}

impl SigningKey {
    /// Makes a fresh key for `alg`.
    pub fn generate(alg: SigningAlg) -> Result<Self, KeyError> {
        let encoding = match alg {
            SigningAlg::Rs256 => {
                let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| KeyError::Generate("RS256"))?;
                let pkcs8 = pair.as_der().map_err(|_| KeyError::Generate("RS256"))?;
                // jsonwebtoken wants the PKCS#1 structure inside; its PEM reader extracts it.
                EncodingKey::from_rsa_pem(pem_wrap("PRIVATE KEY", pkcs8.as_ref()).as_bytes())
                    .map_err(|error| invalid(alg, &error))?
            }
            SigningAlg::Es256 => {
                let pkcs8 = aws_sig::EcdsaKeyPair::generate_pkcs8(
                    &aws_sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &rand::SystemRandom::new(),
                )
                .map_err(|_| KeyError::Generate("ES256"))?;
                EncodingKey::from_ec_der(pkcs8.as_ref())
            }
            SigningAlg::EdDsa => {
                // PKCS#8 v1 (no embedded public key): the form jsonwebtoken's JWK export reads.
                let pkcs8 = aws_sig::Ed25519KeyPair::generate_pkcs8v1(&rand::SystemRandom::new())
                    .map_err(|_| KeyError::Generate("EdDSA"))?;
                EncodingKey::from_ed_der(pkcs8.as_ref())
            }
            SigningAlg::Hs256 => {
                let mut secret = [0u8; 32];
                rand::fill(&mut secret).map_err(|_| KeyError::Generate("HS256"))?;
                EncodingKey::from_secret(&secret)
            }
        };
        Self::from_encoding_key(alg, encoding)
    }

    /// Loads a PEM private key (PKCS#1 or PKCS#8 for RSA, PKCS#8 for EC and Ed25519).
    pub fn from_pem_file(alg: SigningAlg, path: &std::path::Path) -> Result<Self, KeyError> {
        let pem = std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let encoding = match alg {
            SigningAlg::Rs256 => EncodingKey::from_rsa_pem(&pem),
            SigningAlg::Es256 => EncodingKey::from_ec_pem(&pem),
            SigningAlg::EdDsa => EncodingKey::from_ed_pem(&pem),
            SigningAlg::Hs256 => Ok(EncodingKey::from_secret(&pem)),
        }
        .map_err(|error| invalid(alg, &error))?;
        Self::from_encoding_key(alg, encoding)
    }

    fn from_encoding_key(alg: SigningAlg, encoding: EncodingKey) -> Result<Self, KeyError> {
        install_provider();
        let parsed = ParsedKey::parse(alg, encoding.as_bytes())?;
        let decoding = match alg {
            SigningAlg::Rs256 => DecodingKey::from_rsa_der(&parsed.public_bytes),
            SigningAlg::Es256 => DecodingKey::from_ec_der(&parsed.public_bytes),
            SigningAlg::EdDsa => DecodingKey::from_ed_der(&parsed.public_bytes),
            SigningAlg::Hs256 => DecodingKey::from_secret(encoding.as_bytes()),
        };
        let kid = key_id(alg, &parsed.public_bytes);
        let jwks_json: Arc<str> = match alg {
            SigningAlg::Hs256 => Arc::from(r#"{"keys":[]}"#),
            _ => {
                let mut jwk = Jwk::from_encoding_key(&encoding, alg.algorithm())
                    .map_err(|error| invalid(alg, &error))?;
                jwk.common.key_id = Some(kid.clone());
                jwk.common.public_key_use = Some(PublicKeyUse::Signature);
                jwk.common.key_algorithm = Some(key_algorithm(alg));
                let set = JwkSet { keys: vec![jwk] };
                Arc::from(serde_json::to_string(&set).map_err(|error| invalid(alg, &error))?)
            }
        };
        register(Arc::new(parsed));
        Ok(Self {
            alg,
            kid,
            encoding,
            decoding,
            jwks_json,
        })
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    pub fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }

    /// The JWKS document (`{"keys":[...]}`) with this key's public half and `kid`.
    pub fn jwks_json(&self) -> &Arc<str> {
        &self.jwks_json
    }

    /// A validation that accepts only this key's algorithm: `alg: none` and algorithm-confusion
    /// tokens (HS256 signed with the RSA public key) fail before any signature is checked.
    pub fn validation(&self) -> Validation {
        let mut validation = Validation::new(self.alg.algorithm());
        validation.leeway = 0;
        validation.validate_aud = false;
        validation
    }
}

fn invalid(alg: SigningAlg, error: &dyn std::fmt::Display) -> KeyError {
    KeyError::Invalid {
        alg: alg.as_str(),
        reason: error.to_string(),
    }
}

fn key_algorithm(alg: SigningAlg) -> KeyAlgorithm {
    match alg {
        SigningAlg::Rs256 => KeyAlgorithm::RS256,
        SigningAlg::Es256 => KeyAlgorithm::ES256,
        SigningAlg::EdDsa => KeyAlgorithm::EdDSA,
        SigningAlg::Hs256 => KeyAlgorithm::HS256,
    }
}

fn pem_wrap(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// A stable `kid`: the first 16 bytes of the SHA-256 of the public key, base64url.
fn key_id(alg: SigningAlg, public_bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, public_bytes);
    format!(
        "{}-{}",
        alg.as_str().to_ascii_lowercase(),
        crate::random::b64url(&digest.as_ref()[..12])
    )
}

/// The parsed form of a key: what aws-lc-rs signs and verifies with, kept for the process's life.
struct ParsedKey {
    alg: SigningAlg,
    /// The exact bytes jsonwebtoken holds in the `EncodingKey`, used to recognise it.
    private_bytes: Vec<u8>,
    /// The exact bytes jsonwebtoken holds in the `DecodingKey`, used to recognise it.
    public_bytes: Vec<u8>,
    signer: ParsedSigner,
    verifier: ParsedVerifier,
}

enum ParsedSigner {
    Rsa(aws_sig::RsaKeyPair),
    Ecdsa(aws_sig::EcdsaKeyPair),
    Ed25519(aws_sig::Ed25519KeyPair),
    // Boxed: an HMAC key is over a kilobyte of state, the other variants are handles.
    Hmac(Box<hmac::Key>),
}

enum ParsedVerifier {
    PublicKey(aws_sig::ParsedPublicKey),
    // Boxed: an HMAC key is over a kilobyte of state, the other variants are handles.
    Hmac(Box<hmac::Key>),
}

impl ParsedKey {
    fn parse(alg: SigningAlg, private_bytes: &[u8]) -> Result<Self, KeyError> {
        let reject = |error: &dyn std::fmt::Display| invalid(alg, error);
        let (signer, public_bytes) = match alg {
            SigningAlg::Rs256 => {
                let pair = aws_sig::RsaKeyPair::from_der(private_bytes).map_err(|e| reject(&e))?;
                let public = pair.public_key().as_ref().to_vec();
                (ParsedSigner::Rsa(pair), public)
            }
            SigningAlg::Es256 => {
                let pair = aws_sig::EcdsaKeyPair::from_pkcs8(
                    &aws_sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                    private_bytes,
                )
                .map_err(|e| reject(&e))?;
                let public = pair.public_key().as_ref().to_vec();
                (ParsedSigner::Ecdsa(pair), public)
            }
            SigningAlg::EdDsa => {
                let pair =
                    aws_sig::Ed25519KeyPair::from_pkcs8(private_bytes).map_err(|e| reject(&e))?;
                let public = pair.public_key().as_ref().to_vec();
                (ParsedSigner::Ed25519(pair), public)
            }
            SigningAlg::Hs256 => (
                ParsedSigner::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, private_bytes))),
                private_bytes.to_vec(),
            ),
        };
        let verifier = match alg {
            SigningAlg::Hs256 => {
                ParsedVerifier::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, private_bytes)))
            }
            _ => {
                let algorithm: &'static dyn aws_sig::VerificationAlgorithm = match alg {
                    SigningAlg::Rs256 => &aws_sig::RSA_PKCS1_2048_8192_SHA256,
                    SigningAlg::Es256 => &aws_sig::ECDSA_P256_SHA256_FIXED,
                    _ => &aws_sig::ED25519,
                };
                let parsed = aws_sig::UnparsedPublicKey::new(algorithm, &public_bytes)
                    .parse()
                    .map_err(|e| reject(&e))?;
                ParsedVerifier::PublicKey(parsed)
            }
        };
        Ok(Self {
            alg,
            private_bytes: private_bytes.to_vec(),
            public_bytes,
            signer,
            verifier,
        })
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
        match &self.signer {
            ParsedSigner::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &aws_sig::RSA_PKCS1_SHA256,
                    &rand::SystemRandom::new(),
                    message,
                    &mut signature,
                )
                .map_err(signature::Error::from_source)?;
                Ok(signature)
            }
            ParsedSigner::Ecdsa(pair) => pair
                .sign(&rand::SystemRandom::new(), message)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(signature::Error::from_source),
            ParsedSigner::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            ParsedSigner::Hmac(key) => Ok(hmac::sign(key, message).as_ref().to_vec()),
        }
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), signature::Error> {
        match &self.verifier {
            ParsedVerifier::PublicKey(key) => key
                .verify_sig(message, signature)
                .map_err(signature::Error::from_source),
            ParsedVerifier::Hmac(key) => {
                hmac::verify(key, message, signature).map_err(signature::Error::from_source)
            }
        }
    }
}

/// Keys registered by this process. A handful at most, so a linear scan by bytes is the fastest
/// lookup (a memcmp of about a kilobyte, far below the cost of one signature).
static REGISTRY: RwLock<Vec<Arc<ParsedKey>>> = RwLock::new(Vec::new());

fn register(key: Arc<ParsedKey>) {
    if let Ok(mut keys) = REGISTRY.write() {
        // A server restarted in the same process (tests) registers again; keep the list short.
        keys.retain(|known| known.private_bytes != key.private_bytes);
        keys.push(key);
    }
}

fn find(matches: impl Fn(&ParsedKey) -> bool) -> Option<Arc<ParsedKey>> {
    let keys = REGISTRY.read().ok()?;
    keys.iter().find(|key| matches(key)).cloned()
}

static CACHED_PROVIDER: LazyLock<CryptoProvider> = LazyLock::new(|| CryptoProvider {
    signer_factory: cached_signer,
    verifier_factory: cached_verifier,
    key_utils: jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER
        .key_utils
        .clone(),
});

/// Whether this process's jsonwebtoken uses the cached provider (false when something else
/// installed or used a provider first; tokens are then still correct, only slower).
pub fn cached_provider_active() -> bool {
    install_provider()
}

fn install_provider() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let ours: &'static CryptoProvider = &CACHED_PROVIDER;
        match ours.install_default() {
            Ok(()) => true,
            Err(existing) => std::ptr::eq(existing, ours),
        }
    })
}

fn cached_signer(
    algorithm: &Algorithm,
    key: &EncodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    let bytes = key.as_bytes();
    match find(|known| known.alg.algorithm() == *algorithm && known.private_bytes == bytes) {
        Some(parsed) => Ok(Box::new(CachedKey(parsed))),
        None => (jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.signer_factory)(algorithm, key),
    }
}

fn cached_verifier(
    algorithm: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    if let Ok(bytes) = key.try_get_as_bytes()
        && let Some(parsed) =
            find(|known| known.alg.algorithm() == *algorithm && known.public_bytes == bytes)
    {
        return Ok(Box::new(CachedKey(parsed)));
    }
    (jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.verifier_factory)(algorithm, key)
}

struct CachedKey(Arc<ParsedKey>);

impl signature::Signer<Vec<u8>> for CachedKey {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
        self.0.sign(message)
    }
}

impl signature::Verifier<Vec<u8>> for CachedKey {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        self.0.verify(message, signature)
    }
}

impl JwtSigner for CachedKey {
    fn algorithm(&self) -> Algorithm {
        self.0.alg.algorithm()
    }
}

impl JwtVerifier for CachedKey {
    fn algorithm(&self) -> Algorithm {
        self.0.alg.algorithm()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
    struct Claims {
        sub: String,
        exp: u64,
    }

    #[test]
    fn every_algorithm_signs_and_verifies_through_the_cached_provider() {
        assert!(cached_provider_active());
        for alg in [
            SigningAlg::Rs256,
            SigningAlg::Es256,
            SigningAlg::EdDsa,
            SigningAlg::Hs256,
        ] {
            let key = SigningKey::generate(alg).unwrap();
            let claims = Claims {
                sub: "user-loadtest-00001".into(),
                exp: jsonwebtoken::get_current_timestamp() + 60,
            };
            let mut header = jsonwebtoken::Header::new(alg.algorithm());
            header.kid = Some(key.kid().to_owned());
            let token = jsonwebtoken::encode(&header, &claims, key.encoding_key()).unwrap();
            let decoded =
                jsonwebtoken::decode::<Claims>(&token, key.decoding_key(), &key.validation())
                    .unwrap();
            assert_eq!(decoded.claims, claims, "{alg:?}");

            // The stock provider, which parses per call, must agree with the cached one.
            let stock = (jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.verifier_factory)(
                &alg.algorithm(),
                key.decoding_key(),
            )
            .unwrap();
            let (message, signature) = token.rsplit_once('.').unwrap();
            let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(signature)
                .unwrap();
            assert!(
                stock.verify(message.as_bytes(), &signature).is_ok(),
                "{alg:?}"
            );
        }
    }

    #[test]
    fn jwks_publishes_the_kid_and_no_private_material() {
        let key = SigningKey::generate(SigningAlg::Rs256).unwrap();
        let jwks: serde_json::Value = serde_json::from_str(key.jwks_json()).unwrap();
        let jwk = &jwks["keys"][0];
        assert_eq!(jwk["kid"], key.kid());
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(jwk["alg"], "RS256");
        assert_eq!(jwk["use"], "sig");
        assert!(jwk.get("d").is_none());
    }

    #[test]
    fn a_token_signed_by_another_key_is_rejected() {
        let ours = SigningKey::generate(SigningAlg::Es256).unwrap();
        let theirs = SigningKey::generate(SigningAlg::Es256).unwrap();
        let claims = Claims {
            sub: "x".into(),
            exp: jsonwebtoken::get_current_timestamp() + 60,
        };
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::ES256),
            &claims,
            theirs.encoding_key(),
        )
        .unwrap();
        assert!(
            jsonwebtoken::decode::<Claims>(&token, ours.decoding_key(), &ours.validation())
                .is_err()
        );
    }
}
