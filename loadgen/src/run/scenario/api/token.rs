//! A VU's access token in the `api` scenario: got before the clock starts, renewed when it is
//! due (`--refresh-before` ahead of its expiry) or refused, by the token source's own means.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method};
use tokio::time::Instant;

use crate::http::address::Address;
use crate::http::client::HttpResponse;
use crate::protocol::app_tokens::{
    AppTokens, MINT_BATCH_USERS, MintEndpoint, TokenFields, batch_body, read_batch, read_tokens,
};
use crate::protocol::token_request::{TokenResponse, describe_error_body};
use crate::results::names::Endpoint;
use crate::run::scenario::RotationFailure;
use crate::run::scenario::Vu;
use crate::run::scenario::api::settings::{ApiTally, TokenSource};
use crate::run::scenario::vu::Expect;

/// The token a VU sends, and what it knows of it.
#[derive(Debug)]
pub(super) struct HeldToken {
    /// The user it speaks for.
    user: String,
    /// Its number, from 1.
    number: usize,
    /// The subject the seeds recorded for the user, when they did.
    subject: Option<String>,
    /// `Bearer <access token>`.
    bearer: HeaderValue,
    /// The access token.
    access_token: String,
    /// The newest refresh token of the VU's family (the oidc source).
    refresh_token: Option<String>,
    issued_at: SystemTime,
    /// Its expiry, from its `exp` or the `expires_in` it came with; `None` when neither says.
    expires_at: Option<SystemTime>,
}

fn json_headers() -> [(HeaderName, HeaderValue); 2] {
    [
        (CONTENT_TYPE, HeaderValue::from_static("application/json")),
        (ACCEPT, HeaderValue::from_static("application/json")),
    ]
}

/// The tokens of a set-up answer: a success status and the fields.
fn read_answer(answer: &HttpResponse, fields: &TokenFields) -> Result<AppTokens, String> {
    if !answer.status.is_success() {
        return Err(format!(
            "it answered {}: {}",
            answer.status.as_u16(),
            describe_error_body(&answer.body)
        ));
    }
    read_tokens(&answer.body, fields)
}

/// Every VU's first token from the batch mint, in batches of [`MINT_BATCH_USERS`].
async fn mint_batches(
    vu: &mut Vu,
    tally: &ApiTally,
    mint: &MintEndpoint,
) -> Result<(SystemTime, HashMap<String, AppTokens>), String> {
    let minted_at = SystemTime::now();
    let Some(batch_url) = &mint.batch_url else {
        return Err("there is no batch mint URL".into());
    };
    let users: Vec<String> = (1..=tally.vus)
        .map(|number| tally.settings.user(number))
        .collect();
    let mut tokens = HashMap::with_capacity(users.len());
    for chunk in users.chunks(MINT_BATCH_USERS) {
        let answer = vu
            .send_unmeasured(Method::POST, batch_url, &json_headers(), batch_body(chunk))
            .await
            .map_err(|error| format!("the batch mint failed: {error}"))?;
        if !answer.status.is_success() {
            return Err(format!(
                "the batch mint answered {}: {}",
                answer.status.as_u16(),
                describe_error_body(&answer.body)
            ));
        }
        tokens.extend(read_batch(&answer.body, &mint.fields)?);
    }
    Ok((minted_at, tokens))
}

/// The `exp` of a JWT access token, read without verifying it (the API verifies; loadgen only
/// needs to know when to renew).
fn jwt_expiry(access_token: &str) -> Option<SystemTime> {
    #[derive(serde::Deserialize)]
    struct Expiry {
        exp: u64,
    }
    let claims: Expiry = jsonwebtoken::dangerous::insecure_decode_claims(access_token).ok()?;
    std::time::UNIX_EPOCH.checked_add(Duration::from_secs(claims.exp))
}

fn bearer_of(access_token: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(&format!("Bearer {access_token}"))
        .map_err(|_| "its access token cannot be sent in a header".to_owned())
}

impl HeldToken {
    /// VU number `number`'s first token, before the clock starts.
    pub(super) async fn for_vu(
        vu: &mut Vu,
        tally: &ApiTally,
        number: usize,
    ) -> Result<Self, String> {
        let settings = &tally.settings;
        match &settings.token_source {
            TokenSource::Sign(signer) => {
                let user = settings.user(number);
                let now = SystemTime::now();
                let signed = signer.sign_at(&user, number, now)?;
                Ok(Self {
                    bearer: bearer_of(&signed.token)?,
                    access_token: signed.token,
                    user,
                    number,
                    subject: None,
                    refresh_token: None,
                    issued_at: now,
                    expires_at: Some(signed.expires_at),
                })
            }
            TokenSource::Json(login) => {
                let user = settings.user(number);
                let body = login.login_body(&user);
                let answer = vu
                    .send_unmeasured(Method::POST, &login.login, &json_headers(), body)
                    .await
                    .map_err(|error| {
                        format!("signing {user} in at the login URL failed: {error}")
                    })?;
                let tokens = read_answer(&answer, &login.fields).map_err(|error| {
                    format!("signing {user} in at the login URL failed: {error}")
                })?;
                Self::holding(user, number, tokens)
            }
            TokenSource::Mint(mint) if mint.batch_url.is_some() => {
                let user = settings.user(number);
                let (minted_at, batch) = tally
                    .first_tokens
                    .get_or_init(|| mint_batches(vu, tally, mint))
                    .await
                    .as_ref()
                    .map_err(Clone::clone)?;
                let tokens = batch
                    .get(&user)
                    .cloned()
                    .ok_or_else(|| format!("the batch mint answered no token for {user}"))?;
                let mut held = Self::holding(user, number, tokens)?;
                // Its lifetime runs from the batch, not from this VU's set-up.
                if let Some(lifetime) = held
                    .expires_at
                    .and_then(|expires_at| expires_at.duration_since(held.issued_at).ok())
                {
                    held.issued_at = *minted_at;
                    held.expires_at = minted_at.checked_add(lifetime);
                }
                Ok(held)
            }
            TokenSource::Mint(mint) => {
                let user = settings.user(number);
                let body = mint.body_for(&user, number);
                let answer = vu
                    .send_unmeasured(Method::POST, &mint.url, &json_headers(), body)
                    .await
                    .map_err(|error| format!("minting a token for {user} failed: {error}"))?;
                let tokens = read_answer(&answer, &mint.fields)
                    .map_err(|error| format!("minting a token for {user} failed: {error}"))?;
                Self::holding(user, number, tokens)
            }
            TokenSource::Oidc => {
                let seed = vu
                    .context()
                    .seeds
                    .refresh_tokens
                    .get(vu.id())
                    .cloned()
                    .ok_or(
                        "there is no seeded refresh-token family for it: the oidc token source \
                         renews each VU's token through a family of its own (`loadgen seed \
                         --refresh-families N`, N at least --max-vus)",
                    )?;
                let tokens = vu.refresh_unmeasured(&seed.refresh_token).await?;
                let mut held = Self {
                    user: seed.user_id,
                    number,
                    subject: seed.subject,
                    bearer: HeaderValue::from_static("Bearer -"),
                    access_token: String::new(),
                    refresh_token: Some(seed.refresh_token),
                    issued_at: SystemTime::now(),
                    expires_at: None,
                };
                held.take(tokens)?;
                Ok(held)
            }
        }
    }

    /// A token of an application's JSON answer, just got.
    fn holding(user: String, number: usize, tokens: AppTokens) -> Result<Self, String> {
        let mut held = Self {
            user,
            number,
            subject: None,
            bearer: HeaderValue::from_static("Bearer -"),
            access_token: String::new(),
            refresh_token: None,
            issued_at: SystemTime::now(),
            expires_at: None,
        };
        held.take_app_tokens(tokens)?;
        Ok(held)
    }

    /// Holds the tokens of an application's JSON answer; a new refresh token replaces the old.
    fn take_app_tokens(&mut self, tokens: AppTokens) -> Result<(), String> {
        self.take(TokenResponse {
            access_token: Some(tokens.access_token),
            refresh_token: tokens.refresh_token,
            expires_in: tokens.expires_in,
            ..TokenResponse::default()
        })
    }

    /// Renews at an application's JSON endpoint (`address`, `body`), recorded as the
    /// `token_refresh` endpoint; whether a new token is held.
    async fn renew_at(
        &mut self,
        vu: &mut Vu,
        address: &Address,
        body: Bytes,
        fields: &TokenFields,
    ) -> bool {
        let Some(answer) = vu
            .step(
                Endpoint::TokenRefresh,
                Method::POST,
                address,
                &json_headers(),
                body,
                Instant::now(),
                Expect::Success,
            )
            .await
        else {
            return false;
        };
        match read_tokens(&answer.body, fields) {
            Ok(tokens) => self.take_app_tokens(tokens).is_ok(),
            Err(error) => {
                vu.fail("renewal answer without a token", || error);
                false
            }
        }
    }

    /// Holds the tokens of a renewal; a provider that did not rotate the refresh token leaves
    /// the one held.
    fn take(&mut self, tokens: TokenResponse) -> Result<(), String> {
        let access_token = tokens
            .access_token
            .ok_or("the token endpoint issued no access_token")?;
        self.bearer = bearer_of(&access_token)?;
        self.access_token = access_token;
        if let Some(refresh_token) = tokens.refresh_token {
            self.refresh_token = Some(refresh_token);
        }
        self.issued_at = SystemTime::now();
        // expires_in when the answer says; the JWT's own exp otherwise (an application's login
        // may say neither in its answer and still issue tokens that expire).
        self.expires_at = match tokens.expires_in {
            Some(seconds) => self.issued_at.checked_add(Duration::from_secs(seconds)),
            None => jwt_expiry(&self.access_token),
        };
        Ok(())
    }

    /// Renews the token, counting the renewal; whether a new token is held.
    pub(super) async fn renew(&mut self, vu: &mut Vu, tally: &ApiTally) -> bool {
        let renewed = match &tally.settings.token_source {
            TokenSource::Sign(signer) => {
                let now = SystemTime::now();
                match signer.sign_at(&self.user, self.number, now) {
                    Ok(signed) => match bearer_of(&signed.token) {
                        Ok(bearer) => {
                            self.bearer = bearer;
                            self.access_token = signed.token;
                            self.issued_at = now;
                            self.expires_at = Some(signed.expires_at);
                            true
                        }
                        Err(_) => false,
                    },
                    Err(error) => {
                        vu.fail("signing an access token failed", || error);
                        false
                    }
                }
            }
            TokenSource::Json(login) => {
                // The refresh URL with the refresh token held; signing in again otherwise.
                match (&login.refresh, self.refresh_token.as_deref()) {
                    (Some(refresh), Some(refresh_token)) => {
                        let body = login.refresh_body(refresh_token);
                        self.renew_at(vu, refresh, body, &login.fields).await
                    }
                    _ => {
                        let body = login.login_body(&self.user);
                        self.renew_at(vu, &login.login, body, &login.fields).await
                    }
                }
            }
            TokenSource::Mint(mint) => {
                let body = mint.body_for(&self.user, self.number);
                self.renew_at(vu, &mint.url, body, &mint.fields).await
            }
            TokenSource::Oidc => {
                let Some(sent) = self.refresh_token.clone() else {
                    return false;
                };
                match vu.renew_tokens(&sent, self.subject.as_deref()).await {
                    Ok(tokens) => self.take(tokens).is_ok(),
                    // The provider may have rotated the family and its answer was lost: the
                    // token sent may be spent, so the VU keeps its access token until it
                    // expires and says so.
                    // The provider may have rotated the family and its answer was lost: the
                    // token sent may be spent, so sending it again would be a replay. The
                    // family is set aside (left out of the seeds written back) and the VU goes
                    // on with a spare, as TEST 2's do.
                    Err(RotationFailure::InDoubt) => {
                        let context = std::sync::Arc::clone(vu.context());
                        let spare = context
                            .families
                            .replace(vu.id())
                            .and_then(|index| context.seeds.refresh_tokens.get(index));
                        self.refresh_token = spare.map(|seed| seed.refresh_token.clone());
                        if let Some(seed) = spare {
                            self.subject.clone_from(&seed.subject);
                        }
                        false
                    }
                    Err(RotationFailure::Answered) => false,
                }
            }
        };
        tally.count_refresh(renewed);
        renewed
    }

    /// `Bearer <access token>`.
    pub(super) fn bearer(&self) -> &HeaderValue {
        &self.bearer
    }

    /// The access token itself (a DPoP proof's `ath` hashes it).
    pub(super) fn access_token(&self) -> &str {
        &self.access_token
    }

    /// The user's name.
    pub(super) fn user(&self) -> &str {
        &self.user
    }

    /// The newest refresh token of the VU's family.
    pub(super) fn refresh_token(&self) -> Option<&str> {
        self.refresh_token.as_deref()
    }

    /// Whether the token expires within `ahead`, or within half its lifetime when that is
    /// shorter: a 20 s token with the default minute ahead is renewed after 10 s, not on every
    /// iteration.
    pub(super) fn is_due(&self, ahead: Duration) -> bool {
        self.expires_at.is_some_and(|expires_at| {
            let lifetime = expires_at
                .duration_since(self.issued_at)
                .unwrap_or_default();
            SystemTime::now() + ahead.min(lifetime / 2) >= expires_at
        })
    }

    /// The `kid` of the token's header, when it is a JWT naming one.
    pub(super) fn kid(&self) -> Option<String> {
        jsonwebtoken::decode_header(&self.access_token)
            .ok()
            .and_then(|header| header.kid)
    }

    /// Seconds from `now` to its expiry, negative once expired.
    pub(super) fn expires_in_s(&self, now: SystemTime) -> Option<i64> {
        self.expires_at
            .map(|expires_at| match expires_at.duration_since(now) {
                Ok(left) => i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                Err(past) => -i64::try_from(past.duration().as_secs()).unwrap_or(i64::MAX),
            })
    }

    /// How long the VU has held it.
    pub(super) fn age(&self, now: SystemTime) -> Duration {
        now.duration_since(self.issued_at).unwrap_or_default()
    }
}
