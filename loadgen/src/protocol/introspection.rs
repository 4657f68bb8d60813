//! Token introspection (RFC 7662) as a client asks it: the request body, the answer's `active`,
//! and the sentence for a provider that calls a token just issued inactive.

use bytes::Bytes;

use crate::protocol::client_credentials::ClientCredentials;

/// The form body `client` sends to ask whether access token `token` is active (with its
/// credentials when they go in the body).
pub fn introspection_body(client: &ClientCredentials, token: &str) -> Bytes {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    serializer
        .append_pair("token", token)
        .append_pair("token_type_hint", "access_token");
    for (name, value) in client.form_parameters() {
        serializer.append_pair(name, &value);
    }
    Bytes::from(serializer.finish())
}

/// What an introspection answer says of a token, read once: whether it is active, and for an
/// active one the client it was issued to and its scope. A member of another type than RFC 7662
/// gives it counts as absent.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct IntrospectedToken {
    /// `active`, `None` when the body has none (or is not JSON).
    pub active: Option<bool>,
    /// `client_id`: the client the token was issued to.
    pub client_id: Option<String>,
    /// `scope`, space-separated.
    pub scope: Option<String>,
    /// `cnf.jkt`: the DPoP key the token is bound to (RFC 9449 section 6.2).
    pub jkt: Option<String>,
}

/// Reads an introspection answer.
pub fn introspected_token(body: &[u8]) -> IntrospectedToken {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return IntrospectedToken::default();
    };
    let text = |name: &str| {
        value
            .get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    IntrospectedToken {
        active: value.get("active").and_then(serde_json::Value::as_bool),
        client_id: text("client_id"),
        scope: text("scope"),
        jkt: value
            .pointer("/cnf/jkt")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned),
    }
}

/// Why a provider says a token it has just issued is not active, and what to do, for the client
/// that asked (`client_id`; `other_client` when it is not the test client).
pub fn inactive_fresh_token_advice(client_id: &str, other_client: bool) -> String {
    let flags = if other_client {
        "check --introspection-client-id and --introspection-client-secret"
    } else {
        "give a resource server's credentials with --introspection-client-id and \
         --introspection-client-secret"
    };
    format!(
        "the provider's introspection says an access token it has just issued is not active. \
         Either client {client_id} may not introspect (RFC 7662 deployments often open \
         introspection only to resource servers, and answer others {{\"active\": false}}): \
         {flags}; or the provider revokes tokens at once, which no client could use. To check \
         access tokens without introspection, pass --skip-check access_token_active"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_is_read_only_when_the_answer_says_it() {
        let active = |body: &[u8]| introspected_token(body).active;
        assert_eq!(active(br#"{"active": true, "sub": "a"}"#), Some(true));
        assert_eq!(active(br#"{"active": false}"#), Some(false));
        assert_eq!(active(br#"{"active": "yes"}"#), None);
        assert_eq!(active(b"<html>"), None);
        assert_eq!(
            introspected_token(
                br#"{"active": true, "client_id": "m", "scope": "a b", "cnf": {"jkt": "k"}}"#
            ),
            IntrospectedToken {
                active: Some(true),
                client_id: Some("m".into()),
                scope: Some("a b".into()),
                jkt: Some("k".into()),
            }
        );
        assert_eq!(
            introspected_token(br#"{"active": true, "client_id": 7}"#),
            IntrospectedToken {
                active: Some(true),
                ..IntrospectedToken::default()
            }
        );
        assert_eq!(
            introspection_body(&ClientCredentials::default(), "a b"),
            Bytes::from_static(b"token=a+b&token_type_hint=access_token")
        );
    }

    #[test]
    fn the_advice_names_both_explanations_and_the_flags() {
        let advice = inactive_fresh_token_advice("loadtest-client", false);
        for words in [
            "may not introspect",
            "revokes tokens at once",
            "--introspection-client-id",
            "--skip-check access_token_active",
        ] {
            assert!(advice.contains(words), "{advice}");
        }
    }
}
