//! The OpenID Provider metadata (OpenID Connect Discovery 1.0): what this server really implements.

use serde_json::json;

use crate::config::Config;
use crate::keys::SigningAlg;
use crate::state::Urls;

/// Scopes this provider knows; a request for any other is `invalid_scope`.
pub const SUPPORTED_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// The discovery document, rendered once at start.
pub fn document(urls: &Urls, config: &Config, alg: SigningAlg) -> String {
    let mut auth_methods = vec!["client_secret_basic", "client_secret_post"];
    if config.client_jwks.is_some() {
        auth_methods.push("private_key_jwt");
    }
    if config.client_certificate.is_some() {
        auth_methods.push("self_signed_tls_client_auth");
    }
    let mut with_none = auth_methods.clone();
    with_none.push("none");
    let mut document = json!({
        "issuer": urls.issuer,
        "authorization_endpoint": urls.authorization,
        "token_endpoint": urls.token,
        "userinfo_endpoint": urls.userinfo,
        "jwks_uri": urls.jwks,
        "introspection_endpoint": urls.introspection,
        "revocation_endpoint": urls.revocation,
        "pushed_authorization_request_endpoint": urls.pushed_authorization,
        "require_pushed_authorization_requests": false,
        "scopes_supported": SUPPORTED_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "client_credentials",
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [alg.as_str()],
        "token_endpoint_auth_methods_supported": with_none,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        // A public client may revoke its own tokens (RFC 7009 2.1), identified by client_id.
        "revocation_endpoint_auth_methods_supported": with_none,
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp",
            "name", "preferred_username", "email", "email_verified",
        ],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "dpop_signing_alg_values_supported": crate::dpop::DPOP_ALGORITHMS,
    });
    if config.client_jwks.is_some() {
        document["token_endpoint_auth_signing_alg_values_supported"] =
            json!(crate::client_assertion::ASSERTION_ALGORITHMS);
        document["introspection_endpoint_auth_signing_alg_values_supported"] =
            json!(crate::client_assertion::ASSERTION_ALGORITHMS);
        document["revocation_endpoint_auth_signing_alg_values_supported"] =
            json!(crate::client_assertion::ASSERTION_ALGORITHMS);
    }
    if config.enable_test_endpoints {
        // Not a registered metadata name: a client that does not know it ignores it, and a load
        // tester can see from discovery alone that the minting helpers are there.
        document["x_test_endpoints"] = json!({
            "mint_token": format!("{}/_test/mint-token", urls.issuer),
            "mint_tokens_batch": format!("{}/_test/mint-tokens-batch", urls.issuer),
            "debug_token": format!("{}/_test/debug-token", urls.issuer),
        });
    }
    document.to_string()
}
