//! `GET /userinfo` with the VU's access token (got through its session before the clock
//! starts); also the last step of TEST 3.

use std::sync::Arc;

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Method, StatusCode};
use tokio::time::Instant;

use crate::protocol::dpop::ProofSite;
use crate::results::names::{Check, Endpoint};
use crate::run::scenario::vu::{Expect, ProvenRequest};
use crate::run::scenario::{Iteration, Scenario, SeedKind, SeedNeed, Vu};

/// The `userinfo` scenario.
#[derive(Debug)]
pub struct Userinfo;

/// The VU's access token and the subject it belongs to (known from the token itself when it is a
/// JWT, or from the ID token issued with it).
#[derive(Debug)]
pub struct SignedIn {
    access_token: String,
    /// `Bearer` or, with DPoP, `DPoP` and the token.
    authorization: HeaderValue,
    subject: Option<String>,
}

/// The `Authorization` header value of `access_token` as the VU presents it: `DPoP` when its
/// tokens are bound to its key, `Bearer` otherwise.
pub(super) fn authorization_of(vu: &Vu, access_token: &str) -> Result<HeaderValue, String> {
    if vu.dpop_thumbprint().is_some() {
        return crate::protocol::dpop::authorization(access_token);
    }
    HeaderValue::from_str(&format!("Bearer {access_token}"))
        .map_err(|_| "the access token cannot be sent in a header".to_owned())
}

/// Calls `/userinfo` with `access_token` and checks it answers for `expected_subject` (any
/// subject when `None`).
pub(super) async fn userinfo_step(
    vu: &mut Vu,
    access_token: &str,
    expected_subject: Option<&str>,
    intended_start: Instant,
) -> Option<()> {
    let authorization = match authorization_of(vu, access_token) {
        Ok(authorization) => authorization,
        Err(reason) => {
            vu.check(Check::RequiredFields, false, || reason);
            return None;
        }
    };
    send_userinfo(
        vu,
        access_token,
        authorization,
        expected_subject,
        intended_start,
    )
    .await
}

async fn send_userinfo(
    vu: &mut Vu,
    access_token: &str,
    authorization: HeaderValue,
    expected_subject: Option<&str>,
    intended_start: Instant,
) -> Option<()> {
    let context = Arc::clone(vu.context());
    let headers = [(AUTHORIZATION, authorization)];
    let request = ProvenRequest {
        endpoint: Endpoint::Userinfo,
        route: None,
        site: ProofSite::Resource,
        method: Method::GET,
        address: &context.paths.userinfo,
        headers: &headers,
        access_token: Some(access_token),
    };
    let response = vu
        .step_with_proof(
            request,
            Bytes::new,
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
        let authorization = authorization_of(vu, &access_token)?;
        Ok(SignedIn {
            access_token,
            authorization,
            subject,
        })
    }

    async fn iterate(vu: &mut Vu, signed_in: &mut SignedIn, iteration: Iteration) -> Option<()> {
        send_userinfo(
            vu,
            &signed_in.access_token,
            signed_in.authorization.clone(),
            signed_in.subject.as_deref(),
            iteration.intended_start,
        )
        .await
    }
}
