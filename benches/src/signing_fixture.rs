//! The signing group's fixtures: realistic access-token claims, mock-idp's minter on each
//! algorithm's key, and the raw aws-lc-rs primitives on the very same key, parsed once.

use anyhow::{Context as _, Result, ensure};
use aws_lc_rs::signature::{self as aws_sig};
use aws_lc_rs::{hmac, rand};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Header;
use mock_idp::RefreshTokenFormat;
use mock_idp::clients::CONFIDENTIAL_CLIENT_ID;
use mock_idp::jwt::{AccessClaims, Minter};
use mock_idp::keys::{SigningAlg, SigningKey};

use crate::ISSUER;

/// Claims shaped like those mock-idp issues for an authorization-code grant, valid for an hour.
pub fn realistic_access_claims() -> AccessClaims {
    let now = jsonwebtoken::get_current_timestamp();
    AccessClaims {
        iss: ISSUER.to_owned(),
        sub: "user-loadtest-00001".to_owned(),
        aud: ISSUER.to_owned(),
        client_id: CONFIDENTIAL_CLIENT_ID.to_owned(),
        scope: "openid profile email offline_access".to_owned(),
        iat: now,
        exp: now + 3600,
        // The length of mock-idp's random `jti` (256 bits, base64url).
        jti: "q9C3v1yXo8mN2bLk7Ht4Rw0Zs6EaPdJfUiGcVxTnYeQ".to_owned(),
        auth_time: Some(now - 5),
        act: None,
        cnf: None,
    }
}

/// One algorithm's key, mock-idp's minter on it, the same key parsed by aws-lc-rs, and one
/// token signed by mock-idp, split into the parts the raw primitives work on.
#[derive(Debug)]
pub struct SigningFixture {
    pub key: SigningKey,
    pub minter: Minter,
    pub claims: AccessClaims,
    /// The JOSE header mock-idp puts on access tokens (`alg`, `kid`, `typ: at+jwt`).
    pub header: Header,
    pub token: String,
    /// `base64url(header).base64url(claims)` of `token`: what every signature line signs.
    pub signing_input: Vec<u8>,
    pub signature: Vec<u8>,
    pub raw_signer: RawSigner,
    pub raw_verifier: RawVerifier,
}

impl SigningFixture {
    /// Makes a fresh key for `alg`. Fails if mock-idp's cached jsonwebtoken provider is not the
    /// process's provider, since mock-idp's lines would then measure the stock provider.
    pub fn new(alg: SigningAlg) -> Result<Self> {
        let key = SigningKey::generate(alg)?;
        ensure!(
            mock_idp::keys::cached_provider_active(),
            "mock-idp's cached jsonwebtoken provider is not installed: something used \
             jsonwebtoken before the first SigningKey was made"
        );
        let minter = Minter::new(
            key.clone(),
            ISSUER.to_owned(),
            ISSUER.to_owned(),
            RefreshTokenFormat::Opaque,
        );
        let claims = realistic_access_claims();
        let token = minter.sign_access(&claims)?;
        let (signing_input, signature) = token
            .rsplit_once('.')
            .context("mock-idp's token has no signature part")?;
        let signature = URL_SAFE_NO_PAD.decode(signature)?;
        let mut header = Header::new(alg.algorithm());
        header.kid = Some(key.kid().to_owned());
        header.typ = Some("at+jwt".to_owned());
        let raw_signer = RawSigner::new(&key)?;
        let raw_verifier = RawVerifier::new(&key)?;
        ensure!(
            raw_verifier.verify(signing_input.as_bytes(), &signature),
            "aws-lc-rs rejects mock-idp's {} signature: the lines would not compare like for like",
            alg.as_str()
        );
        Ok(Self {
            signing_input: signing_input.as_bytes().to_vec(),
            signature,
            token,
            header,
            claims,
            minter,
            raw_signer,
            raw_verifier,
            key,
        })
    }

    /// A whole JWT signed with the raw primitive: the JSON and base64url work of
    /// `jsonwebtoken::encode`, without its provider lookup. `signature` is a reusable buffer.
    pub fn raw_encode(&self, claims: &AccessClaims, signature: &mut Vec<u8>) -> Result<String> {
        let mut token = String::with_capacity(self.token.len());
        URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(&self.header)?, &mut token);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(claims)?, &mut token);
        self.raw_signer.sign(token.as_bytes(), signature)?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature[..], &mut token);
        Ok(token)
    }

    /// The least a validation must do, with the raw primitive: split, check the signature,
    /// decode and check the header, decode the claims, check `exp` and `iss`.
    pub fn raw_decode(&self, token: &str) -> Result<AccessClaims> {
        let (signing_input, signature) = token.rsplit_once('.').context("no signature")?;
        let (header, claims) = signing_input.split_once('.').context("no claims")?;
        let signature = URL_SAFE_NO_PAD.decode(signature)?;
        ensure!(
            self.raw_verifier
                .verify(signing_input.as_bytes(), &signature),
            "bad signature"
        );
        let header: Header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header)?)?;
        ensure!(
            header.alg == self.header.alg && header.kid == self.header.kid,
            "unexpected header"
        );
        let claims: AccessClaims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims)?)?;
        ensure!(
            claims.exp > jsonwebtoken::get_current_timestamp() && claims.iss == ISSUER,
            "expired or foreign token"
        );
        Ok(claims)
    }
}

/// The aws-lc-rs signing primitive for a mock-idp key, parsed once from the key's bytes.
pub enum RawSigner {
    Rsa(aws_sig::RsaKeyPair),
    Ecdsa(aws_sig::EcdsaKeyPair),
    Ed25519(aws_sig::Ed25519KeyPair),
    // Boxed like mock-idp's: an HMAC key is over a kilobyte of state, the others are handles.
    Hmac(Box<hmac::Key>),
}

impl std::fmt::Debug for RawSigner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material, even in a bench.
        let kind = match self {
            RawSigner::Rsa(_) => "Rsa",
            RawSigner::Ecdsa(_) => "Ecdsa",
            RawSigner::Ed25519(_) => "Ed25519",
            RawSigner::Hmac(_) => "Hmac",
        };
        formatter.debug_tuple("RawSigner").field(&kind).finish()
    }
}

impl RawSigner {
    /// Parses the private key jsonwebtoken holds for `key` (PKCS#1 for RSA, PKCS#8 for EC and
    /// Ed25519, the secret for HMAC).
    pub fn new(key: &SigningKey) -> Result<Self> {
        let private = key.encoding_key().as_bytes();
        Ok(match key.alg() {
            SigningAlg::Rs256 => Self::Rsa(aws_sig::RsaKeyPair::from_der(private)?),
            SigningAlg::Es256 => Self::Ecdsa(aws_sig::EcdsaKeyPair::from_pkcs8(
                &aws_sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                private,
            )?),
            SigningAlg::EdDsa => Self::Ed25519(aws_sig::Ed25519KeyPair::from_pkcs8(private)?),
            SigningAlg::Hs256 => Self::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, private))),
        })
    }

    /// Signs `message` into `signature`, which is reused so that the loop does not allocate.
    pub fn sign(&self, message: &[u8], signature: &mut Vec<u8>) -> Result<()> {
        signature.clear();
        match self {
            RawSigner::Rsa(pair) => {
                signature.resize(pair.public_modulus_len(), 0);
                pair.sign(
                    &aws_sig::RSA_PKCS1_SHA256,
                    &rand::SystemRandom::new(),
                    message,
                    signature,
                )?;
            }
            RawSigner::Ecdsa(pair) => {
                signature
                    .extend_from_slice(pair.sign(&rand::SystemRandom::new(), message)?.as_ref());
            }
            RawSigner::Ed25519(pair) => signature.extend_from_slice(pair.sign(message).as_ref()),
            RawSigner::Hmac(key) => signature.extend_from_slice(hmac::sign(key, message).as_ref()),
        }
        Ok(())
    }
}

/// The aws-lc-rs verification primitive for a mock-idp key, parsed once.
pub enum RawVerifier {
    PublicKey(aws_sig::ParsedPublicKey),
    // Boxed like mock-idp's: an HMAC key is over a kilobyte of state, the others are handles.
    Hmac(Box<hmac::Key>),
}

impl std::fmt::Debug for RawVerifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            RawVerifier::PublicKey(_) => "PublicKey",
            RawVerifier::Hmac(_) => "Hmac",
        };
        formatter.debug_tuple("RawVerifier").field(&kind).finish()
    }
}

impl RawVerifier {
    /// Parses the public key jsonwebtoken holds for `key` (RSAPublicKey DER, uncompressed EC
    /// point, raw Ed25519 key, or the HMAC secret).
    pub fn new(key: &SigningKey) -> Result<Self> {
        let public = key.decoding_key().try_get_as_bytes()?;
        let algorithm: &'static dyn aws_sig::VerificationAlgorithm = match key.alg() {
            SigningAlg::Rs256 => &aws_sig::RSA_PKCS1_2048_8192_SHA256,
            SigningAlg::Es256 => &aws_sig::ECDSA_P256_SHA256_FIXED,
            SigningAlg::EdDsa => &aws_sig::ED25519,
            SigningAlg::Hs256 => {
                return Ok(Self::Hmac(Box::new(hmac::Key::new(
                    hmac::HMAC_SHA256,
                    public,
                ))));
            }
        };
        Ok(Self::PublicKey(
            aws_sig::UnparsedPublicKey::new(algorithm, public).parse()?,
        ))
    }

    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            RawVerifier::PublicKey(key) => key.verify_sig(message, signature).is_ok(),
            RawVerifier::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ALGORITHMS;

    #[test]
    fn every_algorithm_fixture_agrees_with_the_raw_primitives() {
        for alg in ALGORITHMS {
            let fixture = SigningFixture::new(alg).unwrap();
            let mut signature = Vec::new();
            let token = fixture.raw_encode(&fixture.claims, &mut signature).unwrap();
            // mock-idp accepts what the raw path signs, and the raw path accepts mock-idp's.
            assert_eq!(
                fixture.minter.verify_access(&token).unwrap(),
                fixture.claims
            );
            assert_eq!(fixture.raw_decode(&fixture.token).unwrap(), fixture.claims);
            // Deterministic signatures match byte for byte: the same input, the same key.
            if matches!(
                alg,
                SigningAlg::Rs256 | SigningAlg::EdDsa | SigningAlg::Hs256
            ) {
                assert_eq!(token, fixture.token, "{alg:?}");
            }
        }
    }
}
