//! Fresh random values of an authorization request: `state`, `nonce`, and PKCE S256 verifiers
//! and challenges (RFC 7636).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64_URL;
use rand::Rng as _;
use rand::distr::Alphanumeric;

/// A random string of URL-safe characters, for `state`, `nonce` and PKCE verifiers.
pub fn random_token(length: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(length)
        .map(char::from)
        .collect()
}

/// A fresh PKCE verifier (64 characters, within RFC 7636's 43-128).
pub fn new_code_verifier() -> String {
    random_token(64)
}

/// The S256 challenge of a verifier: base64url(SHA-256(verifier)) without padding.
pub fn pkce_challenge(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    BASE64_URL.encode(digest.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let verifier = new_code_verifier();
        assert_eq!(verifier.len(), 64);
        assert_ne!(verifier, new_code_verifier());
    }
}
