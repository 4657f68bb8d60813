//! In-memory state: sessions, authorization codes, grants (refresh-token families) and issued tokens.
//!
//! Every map is a `DashMap`, sharded, so concurrent requests for different users rarely meet on a
//! lock. A guard is never held while another map is touched, so no lock order can deadlock. All
//! times are Unix milliseconds.

use std::time::{SystemTime, UNIX_EPOCH};

use dashmap::DashMap;

use crate::jwt::AccessClaims;

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

/// The server's whole state, behind operations that own the locking rule: a guard is never held
/// while another map is touched, and each decision that must be atomic is taken under one guard.
#[derive(Debug, Default)]
pub struct Store {
    sessions: DashMap<String, Session>,
    codes: DashMap<String, PendingCode>,
    redeemed_codes: DashMap<String, RedeemedCode>,
    grants: DashMap<u64, Grant>,
    refresh_tokens: DashMap<String, RefreshRecord>,
    /// Access tokens by `jti`: a JWT that verifies is still refused once its grant is revoked.
    access_tokens: DashMap<String, AccessRecord>,
    /// The claims of opaque access tokens, by the token (which is also its `jti`).
    opaque_access_claims: DashMap<String, AccessClaims>,
}

/// How many entries a sweep removed, per map (or how many each map holds).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub sessions: usize,
    pub codes: usize,
    pub redeemed_codes: usize,
    pub grants: usize,
    pub refresh_tokens: usize,
    pub access_tokens: usize,
}

/// What became of a code presented for redemption.
#[derive(Debug, Clone)]
pub enum CodeRedemption {
    /// Not redeemed before: it is now removed, so no concurrent use can redeem it too.
    Pending(PendingCode),
    /// Redeemed before, into this grant.
    AlreadyRedeemed { grant_id: u64 },
    /// Never issued, or forgotten.
    Unknown,
}

/// What the refresh-token state machine decided for one presented token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshDecision {
    /// The newest token of its family: rotate it (or, with rotation off, keep it).
    Use,
    /// An already rotated token, inside the grace window.
    UseInGrace,
    /// An already rotated token past the grace window: theft is assumed.
    Replay,
}

impl Store {
    /// Records a signed-in session under its cookie value.
    pub fn open_session(&self, session_id: String, session: Session) {
        self.sessions.insert(session_id, session);
    }

    /// The session named by a cookie, while it has not expired at `now_ms`.
    pub fn live_session(&self, session_id: &str, now_ms: u64) -> Option<Session> {
        let session = self.sessions.get(session_id)?;
        (session.expires_at_ms > now_ms).then(|| session.clone())
    }

    /// Records an issued, not yet redeemed authorization code.
    pub fn issue_code(&self, code: String, pending: PendingCode) {
        self.codes.insert(code, pending);
    }

    /// Takes a code for redemption. A pending code is removed by this call, so two concurrent
    /// uses cannot both get it; the caller records the redemption with [`Store::mark_redeemed`].
    pub fn redeem_code(&self, code: &str) -> CodeRedemption {
        if let Some((_, pending)) = self.codes.remove(code) {
            return CodeRedemption::Pending(pending);
        }
        match self.redeemed_codes.get(code).map(|entry| entry.grant_id) {
            Some(grant_id) => CodeRedemption::AlreadyRedeemed { grant_id },
            None => CodeRedemption::Unknown,
        }
    }

    /// Remembers that `code` was redeemed into `grant_id`, until `forget_at_ms`, so that a reuse
    /// can revoke what it produced.
    pub fn mark_redeemed(&self, code: &str, grant_id: u64, forget_at_ms: u64) {
        self.redeemed_codes.insert(
            code.to_owned(),
            RedeemedCode {
                grant_id,
                forget_at_ms,
            },
        );
    }

    /// Opens a grant and returns its id.
    pub fn open_grant(&self, grant: Grant) -> u64 {
        let grant_id = crate::random::id();
        self.grants.insert(grant_id, grant);
        grant_id
    }

    /// A copy of a grant.
    pub fn grant(&self, grant_id: u64) -> Option<Grant> {
        self.grants.get(&grant_id).map(|grant| grant.clone())
    }

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

    /// Records a new refresh token of a grant's family.
    pub fn add_refresh_token(&self, token: String, record: RefreshRecord) {
        self.refresh_tokens.insert(token, record);
    }

    /// A copy of a refresh token's record.
    pub fn refresh_record(&self, token: &str) -> Option<RefreshRecord> {
        self.refresh_tokens.get(token).map(|record| *record)
    }

    /// Decides what a presented refresh token may do and marks it, in one step under the token's
    /// shard lock: of two concurrent uses of the newest token exactly one sees it active. With
    /// `rotate`, a use marks it rotated; a rotated token is usable for `grace_ms` after its
    /// rotation and a replay after that. `None` when the token is unknown.
    pub fn use_refresh_token(
        &self,
        token: &str,
        now_ms: u64,
        rotate: bool,
        grace_ms: u64,
    ) -> Option<RefreshDecision> {
        let mut record = self.refresh_tokens.get_mut(token)?;
        Some(match record.state {
            RefreshState::Active => {
                if rotate {
                    record.state = RefreshState::Rotated { at_ms: now_ms };
                }
                RefreshDecision::Use
            }
            RefreshState::Rotated { at_ms } if now_ms.saturating_sub(at_ms) < grace_ms => {
                RefreshDecision::UseInGrace
            }
            RefreshState::Rotated { .. } => RefreshDecision::Replay,
        })
    }

    /// Records an issued access token by its `jti`.
    pub fn add_access_token(&self, jti: String, record: AccessRecord) {
        self.access_tokens.insert(jti, record);
    }

    /// Records the claims of an opaque access token (its record goes in with
    /// [`Store::add_access_token`], under the same key).
    pub fn add_opaque_access_claims(&self, token: String, claims: AccessClaims) {
        self.opaque_access_claims.insert(token, claims);
    }

    /// The claims of an opaque access token.
    pub fn opaque_access_claims(&self, token: &str) -> Option<AccessClaims> {
        self.opaque_access_claims
            .get(token)
            .map(|claims| claims.clone())
    }

    /// A copy of an access token's record.
    pub fn access_record(&self, jti: &str) -> Option<AccessRecord> {
        self.access_tokens.get(jti).map(|record| *record)
    }

    /// Revokes one access token (not its grant).
    pub fn revoke_access_token(&self, jti: &str) {
        if let Some(mut record) = self.access_tokens.get_mut(jti) {
            record.revoked = true;
        }
    }

    /// How many entries each map holds.
    pub fn sizes(&self) -> Swept {
        Swept {
            sessions: self.sessions.len(),
            codes: self.codes.len(),
            redeemed_codes: self.redeemed_codes.len(),
            grants: self.grants.len(),
            refresh_tokens: self.refresh_tokens.len(),
            access_tokens: self.access_tokens.len(),
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
            access_tokens: retain(&self.access_tokens, |token| token.expires_at_ms > now_ms)
                + retain(&self.opaque_access_claims, |claims| {
                    claims.exp * 1000 > now_ms
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            client_id: "c".into(),
            subject: "s".into(),
            scope: "openid".into(),
            nonce: None,
            auth_time: None,
            revoked: false,
            expires_at_ms: u64::MAX,
        }
    }

    fn pending() -> PendingCode {
        PendingCode {
            client_id: "c".into(),
            redirect_uri: "http://127.0.0.1:3000/callback".into(),
            code_challenge: None,
            nonce: None,
            subject: "s".into(),
            scope: "openid".into(),
            auth_time: 0,
            expires_at_ms: u64::MAX,
        }
    }

    #[test]
    fn sweep_removes_only_what_expired() {
        let store = Store::default();
        let now = 1_000_000;
        let session = |expires_at_ms| Session {
            subject: "a".into(),
            auth_time: 0,
            expires_at_ms,
        };
        store.open_session("old".into(), session(now - 1));
        store.open_session("new".into(), session(now + 1));
        store.add_access_token(
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
        assert!(store.live_session("new", now).is_some());
        assert!(store.live_session("old", now - 10).is_none());
        assert_eq!(store.sizes().sessions, 1);
    }

    #[test]
    fn a_grant_is_revoked_once() {
        let store = Store::default();
        let id = store.open_grant(grant());
        assert!(store.grant_is_live(id));
        assert!(store.revoke_grant(id));
        assert!(!store.revoke_grant(id));
        assert!(!store.grant_is_live(id));
        assert!(!store.grant_is_live(id.wrapping_add(1)));
    }

    #[test]
    fn a_code_is_redeemed_once_and_then_names_its_grant() {
        let store = Store::default();
        store.issue_code("code".into(), pending());
        assert!(matches!(
            store.redeem_code("code"),
            CodeRedemption::Pending(_)
        ));
        let grant_id = store.open_grant(grant());
        store.mark_redeemed("code", grant_id, u64::MAX);
        assert!(matches!(
            store.redeem_code("code"),
            CodeRedemption::AlreadyRedeemed { grant_id: id } if id == grant_id
        ));
        assert!(matches!(
            store.redeem_code("other"),
            CodeRedemption::Unknown
        ));
    }

    #[test]
    fn of_concurrent_redemptions_exactly_one_gets_the_code() {
        let store = std::sync::Arc::new(Store::default());
        store.issue_code("code".into(), pending());
        let winners: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let store = std::sync::Arc::clone(&store);
                    scope.spawn(move || {
                        matches!(store.redeem_code("code"), CodeRedemption::Pending(_)) as usize
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().unwrap_or(0))
                .sum()
        });
        assert_eq!(winners, 1);
    }

    #[test]
    fn a_rotated_refresh_token_is_a_replay_after_the_grace_window() {
        let store = Store::default();
        let record = RefreshRecord {
            grant_id: 1,
            state: RefreshState::Active,
            expires_at_ms: u64::MAX,
        };
        store.add_refresh_token("rt".into(), record);
        let used = |now| store.use_refresh_token("rt", now, true, 100);
        assert_eq!(used(1_000), Some(RefreshDecision::Use));
        assert_eq!(used(1_050), Some(RefreshDecision::UseInGrace));
        assert_eq!(used(1_100), Some(RefreshDecision::Replay));
        assert_eq!(store.use_refresh_token("unknown", 0, true, 0), None);
        // Without rotation the token stays usable.
        store.add_refresh_token("kept".into(), record);
        assert_eq!(
            store.use_refresh_token("kept", 1, false, 0),
            Some(RefreshDecision::Use)
        );
        assert_eq!(
            store.use_refresh_token("kept", 2, false, 0),
            Some(RefreshDecision::Use)
        );
    }
}
