//! A bounded memory of one-time identifiers (the `jti`s of client assertions and DPoP proofs):
//! each is kept until it expires, so a second use within its lifetime is recognised, and past its
//! capacity nothing new is taken (503) until the periodic sweep forgets the expired ones, as the
//! store's maps do. A scan for room on every request would run under the lock while full.

use std::collections::HashMap;
use std::sync::Mutex;

/// What became of an identifier offered to the memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remembered {
    /// Never seen within its lifetime: now remembered.
    New,
    /// Seen before, and not yet expired.
    Seen,
    /// The memory is full; the identifier was not remembered.
    Full,
}

/// Identifiers and the second each expires, at most `max_entries` at once.
#[derive(Debug)]
pub struct ReplayMemory {
    seen: Mutex<HashMap<String, u64>>,
    max_entries: usize,
    /// Clock skew: an identifier is kept this long past its expiry.
    leeway_s: u64,
}

impl ReplayMemory {
    /// A memory of at most `max_entries` identifiers, each kept `leeway_s` past its expiry.
    pub fn new(max_entries: usize, leeway_s: u64) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            max_entries,
            leeway_s,
        }
    }

    /// Remembers `id` until `expires_at_s` (seconds since the epoch), unless it is known and
    /// unexpired at `now_s` or the memory is full.
    pub fn remember(&self, id: &str, expires_at_s: u64, now_s: u64) -> Remembered {
        // A poisoned lock only means another request panicked mid-insert; the map is still a map.
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen
            .get(id)
            .is_some_and(|&expires| expires + self.leeway_s >= now_s)
        {
            return Remembered::Seen;
        }
        if seen.len() >= self.max_entries {
            return Remembered::Full;
        }
        seen.insert(id.to_owned(), expires_at_s);
        Remembered::New
    }

    /// Forgets the identifiers expired by `now_s`; returns how many remain.
    pub fn sweep(&self, now_s: u64) -> usize {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.retain(|_, expires| *expires + self.leeway_s >= now_s);
        seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identifier_is_new_once_until_it_expires_and_a_full_memory_takes_nothing_until_swept() {
        let memory = ReplayMemory::new(2, 5);
        assert_eq!(memory.remember("a", 100, 50), Remembered::New);
        assert_eq!(memory.remember("a", 100, 104), Remembered::Seen);
        assert_eq!(memory.remember("b", 100, 50), Remembered::New);
        assert_eq!(memory.remember("c", 100, 50), Remembered::Full);
        // Past its expiry and leeway, an identifier may be used again (its token would be
        // refused as expired anyway), but only once the sweep made room.
        assert_eq!(memory.sweep(104), 2);
        assert_eq!(memory.sweep(106), 0);
        assert_eq!(memory.remember("c", 200, 106), Remembered::New);
        assert_eq!(memory.remember("a", 200, 106), Remembered::New);
    }
}
