//! `GET /userinfo` with the VU's access token (got through its session before the clock
//! starts); also the last step of TEST 3.

use std::sync::Arc;

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Method, StatusCode};
use tokio::time::Instant;

use crate::results::names::{Check, Endpoint};
use crate::run::scenario::vu::Expect;
use crate::run::scenario::{Iteration, Scenario, SeedKind, SeedNeed, Vu};

/// The `userinfo` scenario.
#[derive(Debug)]
pub struct Userinfo;

/// The VU's access token and the subject it belongs to (known from the token itself when it is a
/// JWT, or from the ID token issued with it).
#[derive(Debug)]
pub struct SignedIn {
    bearer: HeaderValue,
    subject: Option<String>,
}

/// Calls `/userinfo` with `access_token` and checks it answers for `expected_subject` (any
/// subject when `None`).
pub(super) async fn userinfo_step(
    vu: &mut Vu,
    access_token: &str,
    expected_subject: Option<&str>,
    intended_start: Instant,
) -> Option<()> {
    let Ok(bearer) = HeaderValue::from_str(&format!("Bearer {access_token}")) else {
        vu.check(Check::RequiredFields, false, || {
            "the access token cannot be sent in a header".to_owned()
        });
        return None;
    };
    send_userinfo(vu, bearer, expected_subject, intended_start).await
}

async fn send_userinfo(
    vu: &mut Vu,
    bearer: HeaderValue,
    expected_subject: Option<&str>,
    intended_start: Instant,
) -> Option<()> {
    let context = Arc::clone(vu.context());
    let response = vu
        .step(
            Endpoint::Userinfo,
            Method::GET,
            &context.paths.userinfo,
            &[(AUTHORIZATION, bearer)],
            Bytes::new(),
            intended_start,
            Expect::Status(StatusCode::OK),
        )
        .await?;
    let subject = serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|body| {
            body.get("sub")
                .and_then(|sub| sub.as_str().map(str::to_owned))
        });
    let right =
        subject.is_some() && (expected_subject.is_none() || subject.as_deref() == expected_subject);
    vu.check(Check::UserinfoSubject, right, || {
        match (&subject, expected_subject) {
            (None, _) => "the userinfo answer has no sub".to_owned(),
            (Some(subject), Some(expected)) => {
                format!("userinfo answered for {subject}, expected {expected}")
            }
            (Some(subject), None) => format!("userinfo answered for {subject}"),
        }
    })
    .then_some(())
}

impl Scenario for Userinfo {
    type State = SignedIn;

    fn seed_need(_iterations: u64, vus: u64) -> Option<SeedNeed> {
        Some(SeedNeed {
            kind: SeedKind::Sessions,
            needed: vus,
            why: format!("one session per VU, {vus} VUs"),
        })
    }

    async fn set_up(vu: &mut Vu) -> Result<SignedIn, String> {
        let tokens = vu.sign_in_unmeasured().await?;
        let access_token = tokens
            .access_token
            .ok_or("the token endpoint issued no access_token")?;
        let context = Arc::clone(vu.context());
        // The subject the seeds recorded for the user is the surest; the tokens' own subject
        // serves when the seeds record none.
        let subject = match vu.session_subject() {
            Some(subject) => Some(subject),
            None => match context.keys.verify_access_token(&access_token).await {
                Ok(verified) => Some(verified.claims.sub),
                Err(_) => match tokens.id_token.as_deref() {
                    Some(id_token) => context
                        .keys
                        .verify_id_token(id_token)
                        .await
                        .ok()
                        .map(|verified| verified.claims.sub),
                    None => None,
                },
            },
        };
        let bearer = HeaderValue::from_str(&format!("Bearer {access_token}"))
            .map_err(|_| "its access token cannot be sent in a header".to_owned())?;
        Ok(SignedIn { bearer, subject })
    }

    async fn iterate(vu: &mut Vu, signed_in: &mut SignedIn, iteration: Iteration) -> Option<()> {
        send_userinfo(
            vu,
            signed_in.bearer.clone(),
            signed_in.subject.as_deref(),
            iteration.intended_start,
        )
        .await
    }
}
