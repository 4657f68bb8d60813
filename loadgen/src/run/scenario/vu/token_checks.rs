//! Checking what the provider issued, for a [`Vu`]: a token response's fields, access tokens (a
//! JWS against the JWKS, an opaque one by introspection), ID token claims, and that every token
//! names the user who signed in. Each rule is a named check, counted passed or failed.

use std::sync::Arc;

use http::{Method, StatusCode};
use tokio::time::Instant;

use super::{Expect, Vu};
use crate::http::client::HttpResponse;
use crate::protocol::id_token::{at_hash_rule, auth_time_rule, azp_rule, iat_rule};
use crate::protocol::introspection::{
    inactive_fresh_token_advice, introspected_token, introspection_body,
};
use crate::protocol::token_request::{TokenResponse, describe_error_body};
use crate::protocol::token_verifier::{
    AccessTokenFormat, AccessTokenProfile, VerifiedIdToken, looks_like_jws,
};
use crate::results::names::{AccessTokenBasis, Check, Endpoint};
use crate::seeding::seed_files::unix_now;

/// What a token response is checked against.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenExpectations<'a> {
    /// The ID token's `nonce` must be this.
    pub nonce: Option<&'a str>,
    /// The response must carry a refresh token other than this one.
    pub previous_refresh_token: Option<&'a str>,
    /// The response must carry a refresh token.
    pub refresh_token_required: bool,
    /// The response must carry an ID token.
    pub id_token_required: bool,
    /// The response must carry `issued_token_type` (token exchange).
    pub issued_token_type_required: bool,
    /// The subject the tokens must name: the one the seeds recorded for their user. `None` when
    /// the seeds record none (made elsewhere, or by an older loadgen).
    pub subject: Option<&'a str>,
    /// No subject is known to compare the tokens' with: a client's own tokens (client
    /// credentials), or a fresh sign-in whose user's subject the provider chooses (`login`).
    pub no_subject_to_compare: bool,
}

/// A token response that passed [`Vu::check_token_response`]'s required fields.
#[derive(Debug)]
pub struct CheckedTokens {
    /// The response.
    pub tokens: TokenResponse,
    /// The `sub` of its ID token, when it carried one that verified.
    pub id_token_subject: Option<String>,
    /// What its access token says of itself, when it passed its check and says it.
    pub access_token: AccessTokenFacts,
}

/// What an access token that passed its check says about itself: the claims of a JWT, or what
/// the provider's introspection answered about an opaque one. Each is `None` when not said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessTokenFacts {
    /// Whether it was a JWT (its claims read), not an opaque token (what introspection said).
    pub jwt: bool,
    /// `sub` (JWTs only: the subject of an introspected token is not compared).
    pub subject: Option<String>,
    /// The client it was issued to: `client_id`, or `azp` where there is none.
    pub client_id: Option<String>,
    /// `scope`, space-separated.
    pub scope: Option<String>,
    /// `cnf.jkt`: the DPoP key it is bound to.
    pub dpop_jkt: Option<String>,
    /// Whether the provider's introspection answered for it (an opaque token's facts).
    pub introspected: bool,
}

impl Vu {
    /// Checks an access token as the run's format says: a JWS against the JWKS (RFC 9068), an
    /// opaque token by the provider's introspection (RFC 7662) when it offers one; without one,
    /// an opaque token is checked where it is used (userinfo).
    pub async fn check_access_token(&mut self, token: &str) -> bool {
        self.check_access_token_for_facts(token).await.0
    }

    /// [`Self::check_access_token`], also giving what a token that passed says about itself.
    async fn check_access_token_for_facts(&mut self, token: &str) -> (bool, AccessTokenFacts) {
        let context = Arc::clone(&self.context);
        let is_jwt = match context.access_token {
            AccessTokenFormat::Jwt => true,
            AccessTokenFormat::Opaque => false,
            AccessTokenFormat::Auto => looks_like_jws(token),
        };
        if is_jwt {
            let verified = context.keys.verify_access_token(token).await;
            if let Ok(verified) = &verified {
                context.count_access_token(match verified.profile {
                    AccessTokenProfile::Rfc9068 => AccessTokenBasis::Rfc9068,
                    AccessTokenProfile::Jwt if context.access_token_audience_given => {
                        AccessTokenBasis::Jwt
                    }
                    AccessTokenProfile::Jwt => AccessTokenBasis::JwtAudienceUnchecked,
                });
            }
            let reason = verified.as_ref().err().map(ToString::to_string);
            let passed = self.check(Check::AccessTokenVerifies, reason.is_none(), || {
                format!(
                    "the access token did not verify: {}",
                    reason.unwrap_or_default()
                )
            });
            let facts = verified
                .ok()
                .map_or_else(AccessTokenFacts::default, |verified| {
                    let mut claims = verified.claims;
                    let subject = std::mem::take(&mut claims.sub);
                    let dpop_jkt = claims.dpop_jkt().map(str::to_owned);
                    let (client_id, scope) = claims.into_client_and_scope();
                    AccessTokenFacts {
                        jwt: true,
                        client_id,
                        scope,
                        subject: Some(subject),
                        dpop_jkt,
                        introspected: false,
                    }
                });
            return (passed, facts);
        }
        self.check_opaque_access_token(token).await
    }

    /// Asks the provider's introspection whether an opaque access token is active; what the
    /// answer says of the token (its client and scope) when it is.
    async fn check_opaque_access_token(&mut self, token: &str) -> (bool, AccessTokenFacts) {
        let context = Arc::clone(&self.context);
        if context.skipped_checks.contains(Check::AccessTokenActive) {
            return (true, AccessTokenFacts::default());
        }
        let Some(introspection) = context.paths.introspection.as_ref() else {
            context.count_access_token(AccessTokenBasis::OpaqueUnchecked);
            return (true, AccessTokenFacts::default());
        };
        context.count_access_token(AccessTokenBasis::Introspection);
        let body = introspection_body(context.introspection_client(), token);
        let Some(response) = self
            .step(
                Endpoint::Introspection,
                Method::POST,
                introspection,
                context.introspection_headers(),
                body,
                Instant::now(),
                Expect::Status(StatusCode::OK),
            )
            .await
        else {
            return (false, AccessTokenFacts::default());
        };
        let described = introspected_token(&response.body);
        let active = described.active;
        // The first token the provider is asked about was issued a moment ago: an inactive
        // answer is a client that may not introspect (or a provider that revokes at once), not
        // load, so the run stops here rather than fail every iteration for it.
        if context.is_first_introspection() && active == Some(false) {
            context.refuse_introspection(inactive_fresh_token_advice(
                &context.introspection_client().client_id,
                context.introspection_client_given,
            ));
        }
        let passed = self.check(Check::AccessTokenActive, active == Some(true), || {
            if active == Some(false) {
                let client = &context.introspection_client().client_id;
                inactive_fresh_token_advice(client, context.introspection_client_given)
            } else {
                format!(
                    "the provider's introspection gave no answer about the access token: {}",
                    describe_error_body(&response.body)
                )
            }
        });
        let facts = if passed {
            AccessTokenFacts {
                jwt: false,
                subject: None,
                client_id: described.client_id,
                scope: described.scope,
                dpop_jkt: described.jkt,
                introspected: true,
            }
        } else {
            AccessTokenFacts::default()
        };
        (passed, facts)
    }

    /// Checks a 200 token response; returns it when it has the required fields, with the subject
    /// of its ID token when that verified (so no caller verifies the ID token a second time).
    pub async fn check_token_response(
        &mut self,
        response: &HttpResponse,
        expect: TokenExpectations<'_>,
    ) -> Option<CheckedTokens> {
        let context = Arc::clone(&self.context);
        let tokens: TokenResponse = serde_json::from_slice(&response.body).unwrap_or_default();
        let has_fields = tokens.access_token.is_some()
            && tokens.token_type.is_some()
            && (!expect.refresh_token_required || tokens.refresh_token.is_some())
            && (!expect.id_token_required || tokens.id_token.is_some())
            && (!expect.issued_token_type_required || tokens.issued_token_type.is_some());
        self.check(Check::RequiredFields, has_fields, || {
            format!(
                "the token response lacks required fields: {}",
                describe_error_body(&response.body)
            )
        });
        let token_type = tokens.token_type.as_deref().unwrap_or_default();
        if self.dpop_thumbprint().is_none() {
            self.check(
                Check::TokenTypeBearer,
                token_type.eq_ignore_ascii_case("bearer"),
                || format!("token_type is '{token_type}', not Bearer"),
            );
        }
        if let Some(previous) = expect.previous_refresh_token {
            let rotated = tokens
                .refresh_token
                .as_deref()
                .is_some_and(|new| new != previous);
            self.check(Check::RefreshTokenRotated, rotated, || {
                "the refresh response carried no new refresh token (is rotation on?)".to_owned()
            });
        }
        let mut subjects = Vec::with_capacity(2);
        let mut id_token_subject = None;
        let mut access_token = AccessTokenFacts::default();
        match tokens.access_token.as_deref() {
            // Without an audience to check, any signed JWT with iss, sub, exp and iat passes as
            // an access token: an ID token sent as one would too, so it is refused by name.
            Some(token) if tokens.id_token.as_deref() == Some(token) => {
                self.check(Check::AccessTokenVerifies, false, || {
                    "the access token is the ID token itself".to_owned()
                });
            }
            Some(token) => {
                let (_, mut facts) = self.check_access_token_for_facts(token).await;
                subjects.extend(
                    facts
                        .subject
                        .take()
                        .map(|subject| ("access token", subject)),
                );
                access_token = facts;
            }
            None => {
                self.check(Check::AccessTokenVerifies, false, || {
                    "the response has no access_token".to_owned()
                });
            }
        }
        if let Some(thumbprint) = self.dpop_thumbprint().map(str::to_owned) {
            let verdict = dpop_binding_verdict(token_type, &access_token, &thumbprint);
            self.check(Check::DpopBound, verdict.is_ok(), || {
                verdict.err().unwrap_or_default()
            });
        }
        if let Some(id_token) = tokens.id_token.as_deref() {
            let verified = context.keys.verify_id_token(id_token).await;
            if let Some(nonce) = expect.nonce {
                let same = verified
                    .as_ref()
                    .is_ok_and(|verified| verified.claims.nonce.as_deref() == Some(nonce));
                self.check(Check::IdTokenNonce, same, || {
                    "the ID token's nonce differs from the one sent".to_owned()
                });
            }
            let reason = verified.as_ref().err().map(ToString::to_string);
            self.check(Check::IdTokenVerifies, reason.is_none(), || {
                format!(
                    "the ID token did not verify: {}",
                    reason.unwrap_or_default()
                )
            });
            // The claims of a token that did not verify say nothing: they are judged only after.
            if let Ok(verified) = verified {
                self.check_id_token_claims(&verified, tokens.access_token.as_deref());
                id_token_subject = Some(verified.claims.sub.clone());
                subjects.push(("ID token", verified.claims.sub));
            }
        } else if expect.id_token_required {
            self.check(Check::IdTokenVerifies, false, || {
                "the response has no id_token".to_owned()
            });
        }
        if !expect.no_subject_to_compare {
            self.check_subjects(&subjects, expect.subject);
        }
        has_fields.then_some(CheckedTokens {
            tokens,
            id_token_subject,
            access_token,
        })
    }

    /// Checks that every verified token of a response names the seeds' subject for its user: one
    /// check per response, made when the subject is known and some token names one.
    fn check_subjects(&mut self, subjects: &[(&str, String)], expected: Option<&str>) {
        let Some(expected) = expected else {
            if !subjects.is_empty() {
                self.context.note_subject_unknown();
            }
            return;
        };
        if let Some(verdict) = subject_verdict(subjects, expected) {
            self.check(Check::TokenSubject, verdict.is_ok(), || {
                verdict.err().unwrap_or_default()
            });
        }
    }

    /// Judges the claim rules of a verified ID token that the signature does not cover
    /// (`at_hash` against `access_token`, `azp`, `iat`, `auth_time`), each as its own check, each
    /// counted only when there was something to judge.
    fn check_id_token_claims(&mut self, verified: &VerifiedIdToken, access_token: Option<&str>) {
        let claims = &verified.claims;
        let now_s = unix_now();
        let verdicts = [
            (
                Check::IdTokenAtHash,
                at_hash_rule(claims, verified.algorithm, access_token),
            ),
            (
                Check::IdTokenAzp,
                azp_rule(claims, &self.context.client.client_id),
            ),
            (Check::IdTokenIat, iat_rule(claims, now_s)),
            (Check::IdTokenAuthTime, auth_time_rule(claims, now_s)),
        ];
        for (check, verdict) in verdicts {
            if let Some(verdict) = verdict {
                self.check(check, verdict.is_ok(), || {
                    format!("the ID token {}", verdict.err().unwrap_or_default())
                });
            }
        }
    }
}

/// Whether a token response bound its access token to the key of `thumbprint`: `token_type` DPoP
/// and, where the token's claims were read (a JWT, or an introspection answer), `cnf.jkt` that
/// key's; an opaque token nobody could ask about is judged by its type alone.
fn dpop_binding_verdict(
    token_type: &str,
    access_token: &AccessTokenFacts,
    thumbprint: &str,
) -> Result<(), String> {
    if !token_type.eq_ignore_ascii_case("dpop") {
        return Err(format!(
            "token_type is '{token_type}', not DPoP: the provider did not bind the token to the \
             DPoP key (does it accept DPoP for this client?)"
        ));
    }
    let read = access_token.jwt || access_token.introspected;
    match access_token.dpop_jkt.as_deref() {
        Some(jkt) if jkt == thumbprint => Ok(()),
        Some(jkt) => Err(format!(
            "the access token is bound to the key {jkt}, not to this VU's {thumbprint}"
        )),
        None if read => Err(
            "the access token names no DPoP key (no cnf.jkt in its claims or introspection)"
                .to_owned(),
        ),
        None => Ok(()),
    }
}

/// Whether every token named (`(which token, its sub)`) is `expected`'s: `None` when no token
/// names a subject, otherwise why not in words.
fn subject_verdict(subjects: &[(&str, String)], expected: &str) -> Option<Result<(), String>> {
    if subjects.is_empty() {
        return None;
    }
    let wrong = subjects
        .iter()
        .find(|(_, subject)| subject.as_str() != expected);
    Some(match wrong {
        Some((token, subject)) => Err(format!(
            "the {token} names subject {subject}, but the user who signed in is {expected}"
        )),
        None => Ok(()),
    })
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_token_must_name_the_seeded_subject() {
        let both = [
            ("access token", "alice".to_owned()),
            ("ID token", "alice".to_owned()),
        ];
        assert_eq!(subject_verdict(&both, "alice"), Some(Ok(())));
        assert_eq!(
            subject_verdict(&both, "bob"),
            Some(Err(
                "the access token names subject alice, but the user who signed in is bob".into()
            ))
        );
        let mixed = [
            ("access token", "alice".to_owned()),
            ("ID token", "mallory".to_owned()),
        ];
        assert_eq!(
            subject_verdict(&mixed, "alice"),
            Some(Err(
                "the ID token names subject mallory, but the user who signed in is alice".into()
            ))
        );
        assert_eq!(subject_verdict(&[], "alice"), None);
    }
}
