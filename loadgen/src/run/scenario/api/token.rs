//! A VU's access token in the `api` scenario: got before the clock starts, renewed when it is
//! due (`--refresh-before` ahead of its expiry) or refused, by the token source's own means.

use std::time::{Duration, SystemTime};

use http::HeaderValue;

use crate::protocol::token_request::TokenResponse;
use crate::run::scenario::RotationFailure;
use crate::run::scenario::Vu;
use crate::run::scenario::api::settings::{ApiTally, TokenSource};

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

fn bearer_of(access_token: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(&format!("Bearer {access_token}"))
        .map_err(|_| "its access token cannot be sent in a header".to_owned())
}

impl HeldToken {
    /// VU number `number`'s first token, before the clock starts.
    pub(super) async fn for_vu(
        vu: &mut Vu,
        source: &TokenSource,
        number: usize,
    ) -> Result<Self, String> {
        match source {
            TokenSource::Sign(signer) => {
                let user = format!("user-loadtest-{number:05}");
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
        self.expires_at = tokens
            .expires_in
            .map(|seconds| self.issued_at + Duration::from_secs(seconds));
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
            TokenSource::Oidc => {
                let Some(sent) = self.refresh_token.clone() else {
                    return false;
                };
                match vu.renew_tokens(&sent, self.subject.as_deref()).await {
                    Ok(tokens) => self.take(tokens).is_ok(),
                    // The provider may have rotated the family and its answer was lost: the
                    // token sent may be spent, so the VU keeps its access token until it
                    // expires and says so.
                    Err(RotationFailure::InDoubt) => {
                        self.refresh_token = None;
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
