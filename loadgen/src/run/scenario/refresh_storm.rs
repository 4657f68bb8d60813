//! TEST 2: `POST /token` with `grant_type=refresh_token`; VU i rotates refresh-token family i and
//! keeps the newest token, moving to a spare family when its own is in doubt ([`super::families`]).

use crate::run::scenario::{Iteration, RotationFailure, Scenario, SeedKind, SeedNeed, Vu};

/// TEST 2.
#[derive(Debug)]
pub struct RefreshStorm;

/// The newest refresh token of the VU's family; `None` once the family was lost after a
/// transport error and no spare was left.
#[derive(Debug)]
pub struct Family {
    refresh_token: String,
    /// The subject the seeds recorded for the family's user.
    subject: Option<String>,
}

impl Family {
    /// Family number `index` of the seeds.
    fn seeded(vu: &Vu, index: usize) -> Option<Self> {
        let seed = vu.context().seeds.refresh_tokens.get(index)?;
        Some(Self {
            refresh_token: seed.refresh_token.clone(),
            subject: seed.subject.clone(),
        })
    }
}

impl Scenario for RefreshStorm {
    type State = Option<Family>;
    const TEST_ID: Option<&'static str> = Some("TEST 2");
    const HOLDS_FAMILIES: bool = true;

    fn seed_need(_iterations: u64, vus: u64) -> Option<SeedNeed> {
        Some(SeedNeed {
            kind: SeedKind::RefreshFamilies,
            needed: vus,
            why: format!("one family per VU, {vus} VUs"),
        })
    }

    async fn set_up(vu: &mut Vu) -> Result<Option<Family>, String> {
        let family =
            Family::seeded(vu, vu.id()).ok_or("there is no seeded refresh-token family for it")?;
        Ok(Some(family))
    }

    fn newest_refresh_token(family: &Option<Family>) -> Option<&str> {
        family.as_ref().map(|family| family.refresh_token.as_str())
    }

    async fn iterate(vu: &mut Vu, family: &mut Option<Family>, iteration: Iteration) -> Option<()> {
        let Some(held) = family.as_mut() else {
            let id = vu.id();
            vu.fail("iteration without a refresh-token family", || {
                format!(
                    "virtual user {id} lost its family after a transport error and no spare \
                     family was left; seed more families than virtual users \
                     (`loadgen seed --refresh-families`)"
                )
            });
            return None;
        };
        match vu
            .rotate(
                &held.refresh_token,
                held.subject.as_deref(),
                iteration.intended_start,
            )
            .await
        {
            Ok(rotated) => {
                held.refresh_token = rotated;
                Some(())
            }
            // The provider's answer leaves the family where it was: the token held stays the
            // newest.
            Err(RotationFailure::Answered) => None,
            // The provider may have rotated: sending the token again would be a replay, which
            // revokes the family. The user goes on with a spare.
            Err(RotationFailure::InDoubt) => {
                let spare = vu.context().families.replace(vu.id());
                *family = spare.and_then(|index| Family::seeded(vu, index));
                None
            }
        }
    }
}
