//! Theft detection: rotate a seeded family, replay the rotated-away refresh token, and expect the
//! replay refused and the whole family revoked (RFC 9700 section 4.14.2). Each iteration uses up
//! one family.

use std::sync::Arc;

use http::StatusCode;
use tokio::time::Instant;

use crate::protocol::token_request::ErrorResponse;
use crate::results::names::Check;
use crate::run::scenario::{Iteration, Scenario, SeedKind, SeedNeed, Vu};

/// The `refresh-reuse` scenario.
#[derive(Debug)]
pub struct RefreshReuse;

/// Sends a refresh that must be refused with `invalid_grant`; records `check` on the answer.
async fn expect_invalid_grant(vu: &mut Vu, refresh_token: &str, check: Check) -> Option<()> {
    let response = vu
        .send_refresh(refresh_token, Instant::now(), StatusCode::BAD_REQUEST)
        .await?;
    let error = serde_json::from_slice::<ErrorResponse>(&response.body)
        .ok()
        .and_then(|body| body.error);
    vu.check(check, error.as_deref() == Some("invalid_grant"), || {
        format!(
            "refused with error {}, expected invalid_grant",
            error.as_deref().unwrap_or("(none)")
        )
    })
    .then_some(())
}

impl Scenario for RefreshReuse {
    type State = ();
    const REQUESTS_PER_ITERATION: u32 = 3;

    fn seed_need(iterations: u64, _vus: u64) -> Option<SeedNeed> {
        Some(SeedNeed {
            kind: SeedKind::RefreshFamilies,
            needed: iterations,
            why: "each iteration revokes one family".to_owned(),
        })
    }

    async fn set_up(_vu: &mut Vu) -> Result<(), String> {
        Ok(())
    }

    async fn iterate(vu: &mut Vu, _state: &mut (), iteration: Iteration) -> Option<()> {
        let context = Arc::clone(vu.context());
        let Some(seed) = context.seed_of(&context.seeds.refresh_tokens, iteration) else {
            vu.seeds_exhausted(iteration, "refresh-token family");
            return None;
        };
        let original = seed.refresh_token.clone();
        let rotated = vu
            .rotate(&original, seed.subject.as_deref(), iteration.intended_start)
            .await
            .ok()?;
        let replay = expect_invalid_grant(vu, &original, Check::ReplayRejected).await;
        let family = expect_invalid_grant(vu, &rotated, Check::FamilyRevoked).await;
        replay.and(family)
    }
}
