//! TEST 2: `POST /token` with `grant_type=refresh_token`; VU i rotates refresh-token family i and
//! keeps the newest token.

use crate::scenario::{Iteration, Scenario, SeedKind, SeedNeed, Vu};
use crate::schedule::LoadProfile;

/// TEST 2.
#[derive(Debug)]
pub struct RefreshStorm;

/// The newest refresh token of the VU's family.
#[derive(Debug)]
pub struct Family {
    refresh_token: String,
    /// The subject the seeds recorded for the family's user.
    subject: Option<String>,
}

impl Scenario for RefreshStorm {
    type State = Family;
    const TEST_ID: Option<&'static str> = Some("TEST 2");

    fn seed_need(_profile: &LoadProfile, max_vus: u64) -> Option<SeedNeed> {
        Some(SeedNeed {
            kind: SeedKind::RefreshFamilies,
            needed: max_vus,
            why: format!("one family per VU, {max_vus} VUs"),
        })
    }

    async fn set_up(vu: &mut Vu) -> Result<Family, String> {
        let seed = vu
            .context()
            .seeds
            .refresh_tokens
            .get(vu.id())
            .ok_or("there is no seeded refresh-token family for it")?;
        Ok(Family {
            refresh_token: seed.refresh_token.clone(),
            subject: seed.subject.clone(),
        })
    }

    fn newest_refresh_token(family: &Family) -> Option<&str> {
        Some(&family.refresh_token)
    }

    async fn iterate(vu: &mut Vu, family: &mut Family, iteration: Iteration) -> Option<()> {
        // A failed rotation leaves the family where it was: the token held stays the newest.
        let rotated = vu
            .rotate(
                &family.refresh_token,
                family.subject.as_deref(),
                iteration.intended_start,
            )
            .await?;
        family.refresh_token = rotated;
        Some(())
    }
}
