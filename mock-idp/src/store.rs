//! In-memory state: sessions, authorization codes, grants (refresh-token families) and issued tokens.
//!
//! Every map is a `DashMap`, sharded, so concurrent requests for different users rarely meet on a
//! lock. A guard is never held while another map is touched, so no lock order can deadlock. All
//! times are Unix milliseconds.

use std::time::{SystemTime, UNIX_EPOCH};

use dashmap::DashMap;

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or_default()
}

/// A logged-in browser session, named by the cookie.
#[derive(Debug, Clone)]
pub struct Session {
    pub subject: String,
    /// Unix seconds of the login (the ID token's `auth_time`).
    pub auth_time: u64,
    pub expires_at_ms: u64,
}

/// An authorization code not yet redeemed, with everything it is bound to.
#[derive(Debug, Clone)]
pub struct PendingCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub subject: String,
    pub scope: String,
    pub auth_time: u64,
    pub expires_at_ms: u64,
}

/// What is left of a redeemed code: enough to revoke what it produced if it comes back.
#[derive(Debug, Clone, Copy)]
pub struct RedeemedCode {
    pub grant_id: u64,
    pub forget_at_ms: u64,
}

/// One authorization grant: the tokens issued from one code (or one client-credentials or
/// token-exchange request). For a code, its refresh tokens form one family. Revoking the grant
/// invalidates every token it issued.
#[derive(Debug, Clone)]
pub struct Grant {
    pub client_id: String,
    pub subject: String,
    pub scope: String,
    /// The nonce of the authorization request, repeated in ID tokens issued on refresh.
    pub nonce: Option<String>,
    pub auth_time: Option<u64>,
    pub revoked: bool,
    /// Kept until the last token issued from it has expired.
    pub expires_at_ms: u64,
}

/// Where a refresh token stands in its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshState {
    /// The newest token of the family: the one that may be used.
    Active,
    /// Used once already, at this time; using it again is a replay (after the grace window).
    Rotated { at_ms: u64 },
}

#[derive(Debug, Clone, Copy)]
pub struct RefreshRecord {
    pub grant_id: u64,
    pub state: RefreshState,
    pub expires_at_ms: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct AccessRecord {
    pub grant_id: u64,
    pub revoked: bool,
    pub expires_at_ms: u64,
}

/// The server's whole state.
#[derive(Debug, Default)]
pub struct Store {
    pub sessions: DashMap<String, Session>,
    pub codes: DashMap<String, PendingCode>,
    pub redeemed_codes: DashMap<String, RedeemedCode>,
    pub grants: DashMap<u64, Grant>,
    pub refresh_tokens: DashMap<String, RefreshRecord>,
    /// Access tokens by `jti`: a JWT that verifies is still refused once its grant is revoked.
    pub access_tokens: DashMap<String, AccessRecord>,
}

/// How many entries a sweep removed, per map.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub sessions: usize,
    pub codes: usize,
    pub redeemed_codes: usize,
    pub grants: usize,
    pub refresh_tokens: usize,
    pub access_tokens: usize,
}

impl Store {
    /// Whether the grant exists and is not revoked.
    pub fn grant_is_live(&self, grant_id: u64) -> bool {
        self.grants
            .get(&grant_id)
            .is_some_and(|grant| !grant.revoked)
    }

    /// Revokes a grant and so every token issued from it. Returns false when it was already
    /// revoked (or unknown), so callers count each family revoked once.
    pub fn revoke_grant(&self, grant_id: u64) -> bool {
        match self.grants.get_mut(&grant_id) {
            Some(mut grant) if !grant.revoked => {
                grant.revoked = true;
                true
            }
            _ => false,
        }
    }

    /// Pushes a grant's lifetime out to cover a token that expires at `expires_at_ms`.
    pub fn extend_grant(&self, grant_id: u64, expires_at_ms: u64) {
        if let Some(mut grant) = self.grants.get_mut(&grant_id) {
            grant.expires_at_ms = grant.expires_at_ms.max(expires_at_ms);
        }
    }

    /// Removes everything that has expired at `now_ms`.
    pub fn sweep(&self, now_ms: u64) -> Swept {
        fn retain<K: Eq + std::hash::Hash, V>(
            map: &DashMap<K, V>,
            keep: impl Fn(&V) -> bool,
        ) -> usize {
            let before = map.len();
            map.retain(|_, value| keep(value));
            before.saturating_sub(map.len())
        }
        Swept {
            sessions: retain(&self.sessions, |session| session.expires_at_ms > now_ms),
            codes: retain(&self.codes, |code| code.expires_at_ms > now_ms),
            redeemed_codes: retain(&self.redeemed_codes, |code| code.forget_at_ms > now_ms),
            grants: retain(&self.grants, |grant| grant.expires_at_ms > now_ms),
            refresh_tokens: retain(&self.refresh_tokens, |token| token.expires_at_ms > now_ms),
            access_tokens: retain(&self.access_tokens, |token| token.expires_at_ms > now_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_removes_only_what_expired() {
        let store = Store::default();
        let now = 1_000_000;
        store.sessions.insert(
            "old".into(),
            Session {
                subject: "a".into(),
                auth_time: 0,
                expires_at_ms: now - 1,
            },
        );
        store.sessions.insert(
            "new".into(),
            Session {
                subject: "b".into(),
                auth_time: 0,
                expires_at_ms: now + 1,
            },
        );
        store.access_tokens.insert(
            "jti".into(),
            AccessRecord {
                grant_id: 1,
                revoked: false,
                expires_at_ms: now,
            },
        );
        let swept = store.sweep(now);
        assert_eq!(swept.sessions, 1);
        assert_eq!(swept.access_tokens, 1);
        assert!(store.sessions.contains_key("new"));
    }

    #[test]
    fn a_grant_is_revoked_once() {
        let store = Store::default();
        store.grants.insert(
            7,
            Grant {
                client_id: "c".into(),
                subject: "s".into(),
                scope: "openid".into(),
                nonce: None,
                auth_time: None,
                revoked: false,
                expires_at_ms: u64::MAX,
            },
        );
        assert!(store.grant_is_live(7));
        assert!(store.revoke_grant(7));
        assert!(!store.revoke_grant(7));
        assert!(!store.grant_is_live(7));
        assert!(!store.grant_is_live(8));
    }
}
