//! The compact JWS serialization (RFC 7515 section 7.1) of the tokens loadgen signs itself for a
//! request, client assertions and DPoP proofs: the header (encoded once per key), the claims and
//! the signature, each base64url, joined by dots.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

/// `header` encoded once, with its dot, as every token of one key begins.
pub fn encoded_header(header: &impl Serialize) -> Result<String, String> {
    let json = serde_json::to_vec(header).map_err(|error| error.to_string())?;
    let mut encoded = URL_SAFE_NO_PAD.encode(json);
    encoded.push('.');
    Ok(encoded)
}

/// The token of `claims` after `encoded_header`, signed by `sign` over the two.
pub fn sign_compact(
    encoded_header: &str,
    claims: &impl Serialize,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, String>,
) -> Result<String, String> {
    let claims = serde_json::to_vec(claims).map_err(|error| error.to_string())?;
    let mut token = encoded_header.to_owned();
    URL_SAFE_NO_PAD.encode_string(claims, &mut token);
    let signature = sign(token.as_bytes())?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    Ok(token)
}
