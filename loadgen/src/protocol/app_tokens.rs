//! Tokens from an application's own JSON endpoints rather than a provider's: a login and refresh
//! API (`--token-source json`, as in a migration from sessions to JWTs: `POST /auth/login` with a
//! user name and password, `POST /auth/refresh` with the refresh token), or a test-only mint
//! endpoint that returns a token for a user id (`--token-source mint`). The requests are JSON
//! bodies; the answers are read by field name, each configurable, dotted for nested objects.

use bytes::Bytes;
use serde_json::{Value, json};

use crate::http::address::Address;
use crate::protocol::token_signing::fill_user;

/// Where the tokens are in an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFields {
    /// The access token's field (`access_token`).
    pub access_token: String,
    /// The refresh token's field (`refresh_token`); a new one replaces the old (rotation).
    pub refresh_token: String,
    /// The lifetime's field, in seconds (`expires_in`).
    pub expires_in: String,
}

impl Default for TokenFields {
    fn default() -> Self {
        Self {
            access_token: "access_token".into(),
            refresh_token: "refresh_token".into(),
            expires_in: "expires_in".into(),
        }
    }
}

/// The tokens of one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppTokens {
    /// The access token.
    pub access_token: String,
    /// A refresh token, when the answer carries one.
    pub refresh_token: Option<String>,
    /// Seconds the access token lives, when the answer says.
    pub expires_in: Option<u64>,
}

fn field<'a>(body: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(body, |value, name| value.get(name))
}

/// Reads the tokens of an answer `body`; the error is a sentence naming what is missing.
pub fn read_tokens(body: &[u8], fields: &TokenFields) -> Result<AppTokens, String> {
    let body: Value =
        serde_json::from_slice(body).map_err(|_| "the answer is not JSON".to_owned())?;
    let access_token = field(&body, &fields.access_token)
        .and_then(Value::as_str)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            format!(
                "the answer has no string {:?} (give --access-token-field if the application names it otherwise)",
                fields.access_token
            )
        })?
        .to_owned();
    Ok(AppTokens {
        access_token,
        refresh_token: field(&body, &fields.refresh_token)
            .and_then(Value::as_str)
            .map(str::to_owned),
        expires_in: field(&body, &fields.expires_in).and_then(|value| {
            value
                .as_u64()
                .or_else(|| value.as_str().and_then(|text| text.parse().ok()))
        }),
    })
}

/// An application's JSON login and refresh API.
#[derive(Debug, Clone)]
pub struct JsonLogin {
    /// `POST` here with the user name and password.
    pub login: Address,
    /// `POST` here with the refresh token; without it, a token is renewed by signing in again.
    pub refresh: Option<Address>,
    /// The login body's user-name field (`username`).
    pub username_field: String,
    /// The login body's password field (`password`).
    pub password_field: String,
    /// The refresh body's field (`refresh_token`).
    pub refresh_field: String,
    /// Every test user's password.
    pub password: String,
    /// Where the tokens are in the answers.
    pub fields: TokenFields,
}

impl JsonLogin {
    /// The login request's body for `user`.
    pub fn login_body(&self, user: &str) -> Bytes {
        let mut body = serde_json::Map::new();
        body.insert(self.username_field.clone(), Value::from(user));
        body.insert(
            self.password_field.clone(),
            Value::from(self.password.as_str()),
        );
        Bytes::from(Value::Object(body).to_string())
    }

    /// The refresh request's body.
    pub fn refresh_body(&self, refresh_token: &str) -> Bytes {
        let mut body = serde_json::Map::new();
        body.insert(self.refresh_field.clone(), Value::from(refresh_token));
        Bytes::from(Value::Object(body).to_string())
    }
}

/// The most users one batch mint asks for (mock-idp's `/_test/mint-tokens-batch` takes 1,000).
pub const MINT_BATCH_USERS: usize = 1000;

/// A test-only endpoint that mints a token for a user id.
#[derive(Debug, Clone)]
pub struct MintEndpoint {
    /// `POST` here.
    pub url: Address,
    /// `POST` here a JSON list of user names to get the VUs' first tokens in batches instead:
    /// the answer's `tokens` maps each user to its token answer (mock-idp's
    /// `/_test/mint-tokens-batch`).
    pub batch_url: Option<Address>,
    /// The body, `{{user}}` and `{{n}}` filled in; `{"user_id": "{{user}}"}` by default.
    pub body: String,
    /// Where the tokens are in the answer.
    pub fields: TokenFields,
}

impl MintEndpoint {
    /// The default body: the user's name as `user_id`.
    pub fn default_body() -> String {
        json!({ "user_id": "{{user}}" }).to_string()
    }

    /// The mint request's body for user number `number` named `user`.
    pub fn body_for(&self, user: &str, number: usize) -> Bytes {
        Bytes::from(fill_user(&self.body, user, number))
    }
}

/// The body of a batch mint for `users`.
pub fn batch_body(users: &[String]) -> Bytes {
    Bytes::from(Value::from(users.to_vec()).to_string())
}

/// Reads a batch mint's answer: each user's tokens; the error names what is missing.
pub fn read_batch(
    body: &[u8],
    fields: &TokenFields,
) -> Result<std::collections::HashMap<String, AppTokens>, String> {
    let body: Value =
        serde_json::from_slice(body).map_err(|_| "the batch answer is not JSON".to_owned())?;
    let tokens = body
        .get("tokens")
        .and_then(Value::as_object)
        .ok_or("the batch answer has no \"tokens\" object mapping users to their tokens")?;
    tokens
        .iter()
        .map(|(user, answer)| {
            read_tokens(answer.to_string().as_bytes(), fields)
                .map(|tokens| (user.clone(), tokens))
                .map_err(|error| format!("the batch answer for {user}: {error}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_read_by_field_name_nested_or_not() {
        let fields = TokenFields::default();
        let tokens = read_tokens(
            br#"{"access_token":"at","refresh_token":"rt","expires_in":900}"#,
            &fields,
        )
        .unwrap();
        assert_eq!(
            tokens,
            AppTokens {
                access_token: "at".into(),
                refresh_token: Some("rt".into()),
                expires_in: Some(900)
            }
        );
        let nested = TokenFields {
            access_token: "data.token".into(),
            refresh_token: "data.refresh".into(),
            expires_in: "data.ttl".into(),
        };
        let tokens = read_tokens(br#"{"data":{"token":"at","ttl":"60"}}"#, &nested).unwrap();
        assert_eq!((tokens.refresh_token, tokens.expires_in), (None, Some(60)));
        let error = read_tokens(br#"{"token":"at"}"#, &fields).unwrap_err();
        assert!(error.contains("--access-token-field"), "{error}");
        assert!(
            read_tokens(b"<html>", &fields)
                .unwrap_err()
                .contains("not JSON")
        );
    }

    #[test]
    fn request_bodies_carry_the_user_and_its_secrets_as_json() {
        let login = JsonLogin {
            login: Address::parse("http://127.0.0.1:9/auth/login").unwrap(),
            refresh: None,
            username_field: "email".into(),
            password_field: "password".into(),
            refresh_field: "refreshToken".into(),
            password: "p\"w".into(),
            fields: TokenFields::default(),
        };
        let body: Value = serde_json::from_slice(&login.login_body("user-00007")).unwrap();
        assert_eq!(body, json!({"email": "user-00007", "password": "p\"w"}));
        let body: Value = serde_json::from_slice(&login.refresh_body("rt")).unwrap();
        assert_eq!(body, json!({"refreshToken": "rt"}));
        let batch = read_batch(
            br#"{"tokens":{"u1":{"access_token":"a1","expires_in":60},"u2":{"access_token":"a2"}}}"#,
            &TokenFields::default(),
        )
        .unwrap();
        assert_eq!(batch["u1"].expires_in, Some(60));
        assert_eq!(batch["u2"].access_token, "a2");
        assert!(
            read_batch(br#"{"u1":{}}"#, &TokenFields::default())
                .unwrap_err()
                .contains("\"tokens\"")
        );
        let body: Value = serde_json::from_slice(&batch_body(&["u1".into(), "u2".into()])).unwrap();
        assert_eq!(body, json!(["u1", "u2"]));
        let mint = MintEndpoint {
            url: Address::parse("http://127.0.0.1:9/_test/mint-token").unwrap(),
            batch_url: None,
            body: MintEndpoint::default_body(),
            fields: TokenFields::default(),
        };
        let body: Value = serde_json::from_slice(&mint.body_for("user-loadtest-00003", 3)).unwrap();
        assert_eq!(body, json!({"user_id": "user-loadtest-00003"}));
    }
}
