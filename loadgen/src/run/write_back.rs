//! After a run: the newest refresh token of each family written back to the seeds, the families
//! in doubt left out, and the sentences that say so in the result's notes.

use crate::results::result::FamilyCounts;
use crate::run::config::RunConfig;
use crate::run::scenario::{RunContext, Scenario, VirtualUser};

/// Writes each family's newest refresh token back to the seeds, so that another run on the same
/// seeds does not replay rotated tokens (which a provider rightly answers by revoking the family),
/// and leaves out the families in doubt: those set aside after a transport error, and those of
/// VUs cut off mid-rotation at the end. Returns a note saying what was written, or why not;
/// `None` when the scenario holds no families.
pub(super) fn write_back_refresh_tokens<S: Scenario>(
    config: &RunConfig,
    context: &RunContext,
    vus: usize,
    ended: &[VirtualUser<S>],
) -> Option<String> {
    if !S::holds_families(context) {
        return None;
    }
    let directory = config.seeds_out.as_deref()?;
    let families = &context.families;
    let mut seeds = context.seeds.clone();
    let mut ended_vus = vec![false; vus];
    let mut kept = 0;
    for vu in ended {
        if let Some(ended) = ended_vus.get_mut(vu.id()) {
            *ended = true;
        }
        let (Some(newest), Some(seed)) = (
            vu.newest_refresh_token(),
            families
                .held_by(vu.id())
                .and_then(|family| seeds.refresh_tokens.get_mut(family)),
        ) else {
            continue;
        };
        newest.clone_into(&mut seed.refresh_token);
        kept += 1;
    }
    for (vu, _) in ended_vus.iter().enumerate().filter(|(_, ended)| !**ended) {
        if let Some(family) = families.held_by(vu) {
            families.set_aside(family);
        }
    }
    let mut left_out = families.set_aside_families();
    left_out.retain(|&family| family < seeds.refresh_tokens.len());
    left_out.sort_unstable_by(|a, b| b.cmp(a));
    for &family in &left_out {
        seeds.refresh_tokens.remove(family);
    }
    let remaining = seeds.refresh_tokens.len();
    Some(match seeds.save(directory) {
        Ok(()) if left_out.is_empty() => format!(
            "Wrote the newest refresh token of {kept} families to {}, so TEST 2 can run again on \
             these seeds.",
            directory.display()
        ),
        Ok(()) => format!(
            "Wrote the newest refresh token of {kept} families to {} and left out {} families \
             whose last rotation was never answered (the provider may have rotated them, so \
             their next use would be a replay); {remaining} families remain for the next run.",
            directory.display(),
            left_out.len()
        ),
        Err(error) => format!(
            "Could not write the rotated refresh tokens back ({error}): the seeds now hold \
             rotated tokens, so seed again before the next TEST 2."
        ),
    })
}

/// A sentence on the families lost after transport errors, when any were.
pub(super) fn describe_family_losses(counts: FamilyCounts) -> Option<String> {
    if counts.lost_after_transport_error == 0 {
        return None;
    }
    Some(format!(
        "{} refresh-token families were set aside after a transport error left their rotation \
         unanswered (the provider may have rotated them); their users went on with {} spare \
         families, {} spares left. Seed more families than virtual users to keep spares.",
        counts.lost_after_transport_error, counts.spares_taken, counts.spares_left
    ))
}
