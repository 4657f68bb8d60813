//! TEST 2's refresh-token families: which family each virtual user holds, the spare families a
//! user moves to when its own is in doubt, and the families lost that way.
//!
//! A family is in doubt when a rotation's answer never arrived (a timeout, a reset): the provider
//! may have rotated it, so the token the user holds may already be spent. Sending it again would
//! be a replay, which a provider rightly answers by revoking the family (RFC 9700 4.14.2), and
//! every later iteration of that user would fail and be blamed on the provider. So the family is
//! set aside, counted, and the user goes on with a spare: the transport error fails one iteration,
//! not all the ones after it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::results::result::FamilyCounts;

/// The families of one run: seeds `0..vus` are the users' own, the rest are spares.
#[derive(Debug)]
pub struct Families {
    /// The number of seeded families.
    seeded: usize,
    /// The first spare not handed out yet.
    next_spare: AtomicUsize,
    /// The family each user holds, by user number.
    held: Vec<AtomicUsize>,
    /// Families set aside because a rotation's answer never arrived.
    in_doubt: Mutex<Vec<usize>>,
}

impl Families {
    /// `seeded` families for `vus` users: user `i` starts on family `i`, and the families from
    /// `vus` on are spares.
    pub fn new(vus: usize, seeded: usize) -> Self {
        Self {
            seeded,
            next_spare: AtomicUsize::new(vus),
            held: (0..vus).map(AtomicUsize::new).collect(),
            in_doubt: Mutex::new(Vec::new()),
        }
    }

    /// The family user `vu` holds now.
    pub fn held_by(&self, vu: usize) -> Option<usize> {
        self.held
            .get(vu)
            .map(|family| family.load(Ordering::Relaxed))
    }

    /// Sets aside the family user `vu` holds, which is in doubt, and hands it the next spare:
    /// `None` when no spare is left.
    pub fn replace(&self, vu: usize) -> Option<usize> {
        let held = self.held.get(vu)?;
        self.set_aside(held.load(Ordering::Relaxed));
        let spare = self.next_spare.fetch_add(1, Ordering::Relaxed);
        if spare >= self.seeded {
            return None;
        }
        held.store(spare, Ordering::Relaxed);
        Some(spare)
    }

    /// Sets aside family `family`, which is in doubt.
    pub fn set_aside(&self, family: usize) {
        let mut in_doubt = self
            .in_doubt
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !in_doubt.contains(&family) {
            in_doubt.push(family);
        }
    }

    /// The families set aside so far, in no particular order.
    pub fn set_aside_families(&self) -> Vec<usize> {
        self.in_doubt
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// What became of the families.
    pub fn counts(&self) -> FamilyCounts {
        let first_spare = self.held.len().min(self.seeded);
        let next_spare = self.next_spare.load(Ordering::Relaxed).min(self.seeded);
        FamilyCounts {
            lost_after_transport_error: self.set_aside_families().len() as u64,
            spares_taken: next_spare.saturating_sub(first_spare) as u64,
            spares_left: self.seeded.saturating_sub(next_spare) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_whose_family_is_in_doubt_moves_to_the_next_spare_until_none_is_left() {
        let families = Families::new(3, 5);
        assert_eq!(families.held_by(1), Some(1));
        assert_eq!(families.replace(1), Some(3));
        assert_eq!(families.held_by(1), Some(3));
        assert_eq!(families.replace(0), Some(4));
        assert_eq!(families.replace(1), None);
        assert_eq!(families.replace(2), None);
        let mut lost = families.set_aside_families();
        lost.sort_unstable();
        assert_eq!(lost, vec![0, 1, 2, 3]);
        assert_eq!(
            families.counts(),
            FamilyCounts {
                lost_after_transport_error: 4,
                spares_taken: 2,
                spares_left: 0,
            }
        );
    }

    #[test]
    fn without_spares_nothing_is_taken_and_a_user_beyond_the_users_has_no_family() {
        let families = Families::new(2, 2);
        assert_eq!(families.held_by(2), None);
        assert_eq!(families.replace(2), None);
        assert_eq!(families.counts(), FamilyCounts::default());
        assert_eq!(families.replace(0), None);
        assert_eq!(families.counts().lost_after_transport_error, 1);
        assert_eq!(families.counts().spares_taken, 0);
    }
}
