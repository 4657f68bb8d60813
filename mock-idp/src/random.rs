//! Unguessable identifiers (codes, refresh tokens, session ids, `jti`) from the system CSPRNG.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// base64url without padding, the alphabet every token in OAuth travels in.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// 256 random bits as base64url (43 characters). aws-lc-rs's generator only fails when the
/// operating system has no entropy source, which leaves nothing sensible to do but stop.
pub fn token() -> String {
    let mut bytes = [0u8; 32];
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random number generator failed");
    b64url(&bytes)
}

/// A random 64-bit number, for ids that stay inside the server.
pub fn id() -> u64 {
    let mut bytes = [0u8; 8];
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random number generator failed");
    u64::from_le_bytes(bytes)
}
