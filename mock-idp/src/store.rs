//! In-memory state: sessions, authorization codes, grants (refresh-token families) and issued tokens.
//!
//! Every map is a `DashMap`, sharded, so concurrent requests for different users rarely meet on a
//! lock. A guard is never held while another map is touched, so no lock order can deadlock. All
//! times are Unix milliseconds.

use std::time::{SystemTime, UNIX_EPOCH};

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;
use dashmap::mapref::one::{Ref, RefMut};

use crate::error::OAuthError;
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

/// An authorization request pushed to `/par` (RFC 9126), until it is used or expires.
#[derive(Debug, Clone)]
pub struct PushedRequest {
    pub client_id: String,
    /// The request's parameters, without the client's credentials.
    pub params: Vec<(String, String)>,
    pub expires_at_ms: u64,
}

/// What is left of a redeemed code: enough to revoke what it produced if it comes back.
#[derive(Debug, Clone, Copy)]
pub struct RedeemedCode {
    pub grant_id: u64,
    pub forget_at_ms: u64,
    /// Presented again since: the grant it opens must not answer tokens.
    pub reused: bool,
}

/// A code is pending until redeemed, then remembered as redeemed, in one entry: the change from
/// one to the other is a single step under the entry's lock, so a concurrent second use always
/// sees "already redeemed" and never "unknown".
#[derive(Debug, Clone)]
enum CodeEntry {
    Pending(PendingCode),
    Redeemed(RedeemedCode),
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
    /// The thumbprint of the DPoP key a public client's refresh tokens of this grant are bound
    /// to (RFC 9449 section 5): set at the first token request with a proof, then required.
    pub dpop_jkt: Option<String>,
    /// Kept until the last token issued from it has expired.
    pub expires_at_ms: u64,
}

/// Where a refresh token stands in its family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshState {
    /// The newest token of the family: the one that may be used.
    Active,
    /// Used once already, at this time, and replaced by `successor`; using it again is a
    /// replay (after the grace window, inside which the family's newest token is answered).
    Rotated { at_ms: u64, successor: Arc<str> },
}

#[derive(Debug, Clone)]
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

/// How much the store may hold and how long it remembers used refresh tokens.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Entries per map (sessions, codes, grants, refresh tokens, access tokens); past it, what
    /// would add one is refused with [`StoreFull`] until the sweep frees room.
    pub max_entries_per_map: usize,
    /// How long a rotated refresh token is remembered, so that a replay of it revokes its
    /// family (RFC 9700 4.14.2). A replay after that finds an unknown token: refused all the
    /// same, but the family it came from stays live.
    pub replay_window_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entries_per_map: usize::MAX,
            replay_window_ms: u64::MAX,
        }
    }
}

/// A map of the store is at [`Limits::max_entries_per_map`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "mock-idp already holds {limit} {map}, its --max-store-entries limit; entries leave as they \
     expire (shorten --refresh-token-ttl or --access-token-ttl), or raise the limit"
)]
pub struct StoreFull {
    pub map: &'static str,
    pub limit: usize,
}

// The store says how its fullness is answered, so that the error type depends on nothing of the
// store (the store already depends on tokens, which report `OAuthError`).
impl From<StoreFull> for OAuthError {
    fn from(full: StoreFull) -> Self {
        OAuthError::StoreFull(full.to_string())
    }
}

/// A map that counts its entries as they come and go, so the size cap is checked in O(1):
/// `DashMap::len` takes every shard's lock, which three times per token request is work the hot
/// path does not need. Every insertion and removal goes through here, so the count is exact.
#[derive(Debug)]
struct Capped<K: Eq + Hash, V> {
    /// Named in the error a full map answers.
    name: &'static str,
    entries: DashMap<K, V>,
    len: AtomicUsize,
}

impl<K: Eq + Hash, V> Capped<K, V> {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            entries: DashMap::new(),
            len: AtomicUsize::new(0),
        }
    }

    /// Inserts unless the map already holds `limit` entries; the room is reserved before the
    /// insertion, so concurrent inserts cannot pass the cap together.
    fn insert(&self, key: K, value: V, limit: usize) -> Result<(), StoreFull> {
        if self.len.fetch_add(1, Ordering::Relaxed) >= limit {
            self.len.fetch_sub(1, Ordering::Relaxed);
            return Err(StoreFull {
                map: self.name,
                limit,
            });
        }
        if self.entries.insert(key, value).is_some() {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<Ref<'_, K, V>>
    where
        K: Borrow<Q>,
    {
        self.entries.get(key)
    }

    fn get_mut<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<RefMut<'_, K, V>>
    where
        K: Borrow<Q>,
    {
        self.entries.get_mut(key)
    }

    fn remove<Q: Hash + Eq + ?Sized>(&self, key: &Q)
    where
        K: Borrow<Q>,
    {
        self.take(key);
    }

    /// Removes `key`; whether it was there.
    fn take<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        let removed = self.entries.remove(key).is_some();
        if removed {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }

    /// Keeps the entries `keep` says yes to; returns how many were removed.
    fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) -> usize {
        let mut removed = 0;
        self.entries.retain(|key, value| {
            let kept = keep(key, value);
            removed += usize::from(!kept);
            kept
        });
        self.len.fetch_sub(removed, Ordering::Relaxed);
        removed
    }

    fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }
}

/// The server's whole state, behind operations that own the locking rule: a guard is never held
/// while another map is touched, and each decision that must be atomic is taken under one guard.
#[derive(Debug)]
pub struct Store {
    limits: Limits,
    sessions: Capped<String, Session>,
    codes: Capped<String, CodeEntry>,
    grants: Capped<u64, Grant>,
    refresh_tokens: Capped<String, RefreshRecord>,
    /// Access tokens by `jti`: a JWT that verifies is still refused once its grant is revoked.
    access_tokens: Capped<String, AccessRecord>,
    /// The claims of opaque access tokens, by the token (which is also its `jti`); bounded by
    /// `access_tokens`, which holds a record for each.
    opaque_access_claims: DashMap<String, AccessClaims>,
    /// Pushed authorization requests by their `request_uri`.
    pushed_requests: Capped<String, PushedRequest>,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            sessions: Capped::new("sessions"),
            codes: Capped::new("authorization codes"),
            grants: Capped::new("grants"),
            refresh_tokens: Capped::new("refresh tokens"),
            access_tokens: Capped::new("access tokens"),
            opaque_access_claims: DashMap::new(),
            pushed_requests: Capped::new("pushed authorization requests"),
        }
    }
}

/// How many entries a sweep removed, per map (or how many each map holds).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub sessions: usize,
    /// Pending and redeemed codes.
    pub codes: usize,
    pub grants: usize,
    pub refresh_tokens: usize,
    pub access_tokens: usize,
    pub pushed_requests: usize,
}

impl Swept {
    /// Each count with the name of its map, as `/metrics` labels them.
    pub fn by_map(&self) -> [(&'static str, usize); 6] {
        [
            ("sessions", self.sessions),
            ("codes", self.codes),
            ("grants", self.grants),
            ("refresh_tokens", self.refresh_tokens),
            ("access_tokens", self.access_tokens),
            ("pushed_requests", self.pushed_requests),
        ]
    }
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshDecision {
    /// The newest token of its family: rotated to the successor given (or, with rotation off,
    /// kept).
    Use,
    /// An already rotated token, inside the grace window: answered with the family's newest
    /// token, so a retried refresh does not fork the family into two live tokens.
    UseInGrace { newest: Arc<str> },
    /// An already rotated token past the grace window: theft is assumed.
    Replay,
}

/// The most successors followed to find a family's newest token; rotations inside one grace
/// window are few, so this is never reached but by a loop that cannot happen.
const MAX_SUCCESSOR_HOPS: usize = 64;

impl Store {
    /// A store with these limits.
    pub fn with_limits(limits: Limits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Records a signed-in session under its cookie value.
    pub fn open_session(&self, session_id: String, session: Session) -> Result<(), StoreFull> {
        self.sessions
            .insert(session_id, session, self.limits.max_entries_per_map)
    }

    /// The session named by a cookie, while it has not expired at `now_ms`.
    pub fn live_session(&self, session_id: &str, now_ms: u64) -> Option<Session> {
        let session = self.sessions.get(session_id)?;
        (session.expires_at_ms > now_ms).then(|| session.clone())
    }

    /// Records an issued, not yet redeemed authorization code.
    pub fn issue_code(&self, code: String, pending: PendingCode) -> Result<(), StoreFull> {
        self.codes.insert(
            code,
            CodeEntry::Pending(pending),
            self.limits.max_entries_per_map,
        )
    }

    /// Takes a code for redemption into the grant `grant_id` (not opened yet), and in the same
    /// step remembers it as redeemed until `forget_at_ms`: of concurrent uses exactly one gets
    /// the pending code, and every other sees it already redeemed (and is marked a reuse).
    pub fn redeem_code(&self, code: &str, grant_id: u64, forget_at_ms: u64) -> CodeRedemption {
        let Some(mut entry) = self.codes.get_mut(code) else {
            return CodeRedemption::Unknown;
        };
        match &mut *entry {
            CodeEntry::Redeemed(redeemed) => {
                redeemed.reused = true;
                CodeRedemption::AlreadyRedeemed {
                    grant_id: redeemed.grant_id,
                }
            }
            CodeEntry::Pending(_) => {
                let redeemed = CodeEntry::Redeemed(RedeemedCode {
                    grant_id,
                    forget_at_ms,
                    reused: false,
                });
                match std::mem::replace(&mut *entry, redeemed) {
                    CodeEntry::Pending(pending) => CodeRedemption::Pending(pending),
                    CodeEntry::Redeemed(_) => CodeRedemption::Unknown,
                }
            }
        }
    }

    /// Whether a redeemed code was presented again since it was taken.
    pub fn code_reused(&self, code: &str) -> bool {
        self.codes.get(code).is_some_and(
            |entry| matches!(&*entry, CodeEntry::Redeemed(redeemed) if redeemed.reused),
        )
    }

    /// Forgets a code taken by a request that then failed (expired, wrong client or verifier):
    /// it opened no grant, so a later use is simply unknown.
    pub fn forget_code(&self, code: &str) {
        self.codes.remove(code);
    }

    /// Opens a grant and returns its id.
    pub fn open_grant(&self, grant: Grant) -> Result<u64, StoreFull> {
        let grant_id = crate::random::id();
        self.open_grant_with_id(grant_id, grant)?;
        Ok(grant_id)
    }

    /// Opens a grant under an id chosen before (the one a redeemed code names).
    pub fn open_grant_with_id(&self, grant_id: u64, grant: Grant) -> Result<(), StoreFull> {
        self.grants
            .insert(grant_id, grant, self.limits.max_entries_per_map)
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

    /// Records a pushed authorization request under its `request_uri`.
    pub fn push_request(
        &self,
        request_uri: String,
        pushed: PushedRequest,
    ) -> Result<(), StoreFull> {
        self.pushed_requests
            .insert(request_uri, pushed, self.limits.max_entries_per_map)
    }

    /// A copy of the pushed request named `request_uri`, if it is known and unexpired at `now_ms`.
    pub fn pushed_request(&self, request_uri: &str, now_ms: u64) -> Option<PushedRequest> {
        self.pushed_requests
            .get(request_uri)
            .filter(|pushed| pushed.expires_at_ms > now_ms)
            .map(|pushed| pushed.clone())
    }

    /// Removes the pushed request named `request_uri` as it is used; whether it was there. One
    /// step, so of two concurrent uses exactly one gets it (RFC 9126 section 4: one-time use).
    pub fn take_pushed_request(&self, request_uri: &str) -> bool {
        self.pushed_requests.take(request_uri)
    }

    /// Binds a grant to the DPoP key `jkt` unless it is bound already; the key it is bound to
    /// either way (`None` when the grant is gone). One step, so two first uses cannot both bind.
    pub fn bind_grant_to_key(&self, grant_id: u64, jkt: &str) -> Option<String> {
        let mut grant = self.grants.get_mut(&grant_id)?;
        Some(grant.dpop_jkt.get_or_insert_with(|| jkt.to_owned()).clone())
    }

    /// Records a new refresh token of a grant's family.
    pub fn add_refresh_token(&self, token: String, record: RefreshRecord) -> Result<(), StoreFull> {
        self.refresh_tokens
            .insert(token, record, self.limits.max_entries_per_map)
    }

    /// A copy of a refresh token's record.
    pub fn refresh_record(&self, token: &str) -> Option<RefreshRecord> {
        self.refresh_tokens.get(token).map(|record| record.clone())
    }

    /// Decides what a presented refresh token may do and marks it, in one step under the token's
    /// shard lock: of two concurrent uses of the newest token exactly one sees it active. With
    /// `rotate`, a use marks it rotated to `successor` (which the caller then records); a
    /// rotated token is usable for `grace_ms` after its rotation, answered with the family's
    /// newest token, and a replay after that. `None` when the token is unknown.
    pub fn use_refresh_token(
        &self,
        token: &str,
        now_ms: u64,
        rotate: bool,
        grace_ms: u64,
        successor: &str,
    ) -> Option<RefreshDecision> {
        let rotated_to = {
            let mut record = self.refresh_tokens.get_mut(token)?;
            match &record.state {
                RefreshState::Active => {
                    if rotate {
                        record.state = RefreshState::Rotated {
                            at_ms: now_ms,
                            successor: Arc::from(successor),
                        };
                    }
                    return Some(RefreshDecision::Use);
                }
                RefreshState::Rotated { at_ms, successor }
                    if now_ms.saturating_sub(*at_ms) < grace_ms =>
                {
                    Arc::clone(successor)
                }
                RefreshState::Rotated { .. } => return Some(RefreshDecision::Replay),
            }
        };
        Some(RefreshDecision::UseInGrace {
            newest: self.newest_of_family(rotated_to),
        })
    }

    /// Follows successors from `token` to the family's newest one, one guard at a time.
    fn newest_of_family(&self, mut token: Arc<str>) -> Arc<str> {
        for _ in 0..MAX_SUCCESSOR_HOPS {
            let next = match self
                .refresh_tokens
                .get(&*token)
                .map(|record| record.state.clone())
            {
                Some(RefreshState::Rotated { successor, .. }) => successor,
                _ => break,
            };
            token = next;
        }
        token
    }

    /// Records an issued access token by its `jti`.
    pub fn add_access_token(&self, jti: String, record: AccessRecord) -> Result<(), StoreFull> {
        self.access_tokens
            .insert(jti, record, self.limits.max_entries_per_map)
    }

    /// Records the claims of an opaque access token (its record goes in with
    /// [`Store::add_access_token`], under the same key, which bounds this map too).
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
            grants: self.grants.len(),
            refresh_tokens: self.refresh_tokens.len(),
            access_tokens: self.access_tokens.len(),
            pushed_requests: self.pushed_requests.len(),
        }
    }

    /// Removes, at `now_ms`, everything that can never be used again: what has expired, refresh
    /// tokens rotated longer ago than the replay window, and revoked grants with their refresh
    /// tokens (their access tokens die with the grant, which is gone).
    pub fn sweep(&self, now_ms: u64) -> Swept {
        let replay_window_ms = self.limits.replay_window_ms;
        // Collected first, so that no guard of `grants` is held while `refresh_tokens` is swept.
        let revoked: HashSet<u64> = self
            .grants
            .entries
            .iter()
            .filter(|grant| grant.revoked)
            .map(|grant| *grant.key())
            .collect();
        let refresh_tokens = self.refresh_tokens.retain(|_, token| {
            token.expires_at_ms > now_ms
                && !revoked.contains(&token.grant_id)
                && match &token.state {
                    RefreshState::Active => true,
                    RefreshState::Rotated { at_ms, .. } => {
                        now_ms.saturating_sub(*at_ms) < replay_window_ms
                    }
                }
        });
        // The claims of opaque tokens leave with their records; they are not counted twice.
        self.opaque_access_claims
            .retain(|_, claims| claims.exp * 1000 > now_ms);
        Swept {
            sessions: self
                .sessions
                .retain(|_, session| session.expires_at_ms > now_ms),
            codes: self.codes.retain(|_, code| match code {
                CodeEntry::Pending(pending) => pending.expires_at_ms > now_ms,
                CodeEntry::Redeemed(redeemed) => redeemed.forget_at_ms > now_ms,
            }),
            grants: self.grants.retain(|grant_id, grant| {
                grant.expires_at_ms > now_ms && !revoked.contains(grant_id)
            }),
            refresh_tokens,
            access_tokens: self
                .access_tokens
                .retain(|_, token| token.expires_at_ms > now_ms),
            pushed_requests: self
                .pushed_requests
                .retain(|_, pushed| pushed.expires_at_ms > now_ms),
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
            dpop_jkt: None,
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
        store.open_session("old".into(), session(now - 1)).unwrap();
        store.open_session("new".into(), session(now + 1)).unwrap();
        store
            .add_access_token(
                "jti".into(),
                AccessRecord {
                    grant_id: 1,
                    revoked: false,
                    expires_at_ms: now,
                },
            )
            .unwrap();
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
        let id = store.open_grant(grant()).unwrap();
        assert!(store.grant_is_live(id));
        assert!(store.revoke_grant(id));
        assert!(!store.revoke_grant(id));
        assert!(!store.grant_is_live(id));
        assert!(!store.grant_is_live(id.wrapping_add(1)));
    }

    #[test]
    fn a_code_is_redeemed_once_and_then_names_its_grant() {
        let store = Store::default();
        store.issue_code("code".into(), pending()).unwrap();
        assert!(matches!(
            store.redeem_code("code", 7, u64::MAX),
            CodeRedemption::Pending(_)
        ));
        assert!(!store.code_reused("code"));
        assert!(matches!(
            store.redeem_code("code", 8, u64::MAX),
            CodeRedemption::AlreadyRedeemed { grant_id: 7 }
        ));
        assert!(store.code_reused("code"));
        assert!(matches!(
            store.redeem_code("other", 9, u64::MAX),
            CodeRedemption::Unknown
        ));
        store.forget_code("code");
        assert!(matches!(
            store.redeem_code("code", 10, u64::MAX),
            CodeRedemption::Unknown
        ));
    }

    #[test]
    fn of_concurrent_redemptions_one_gets_the_code_and_every_other_sees_it_redeemed() {
        let store = std::sync::Arc::new(Store::default());
        store.issue_code("code".into(), pending()).unwrap();
        let outcomes: Vec<CodeRedemption> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|racer| {
                    let store = std::sync::Arc::clone(&store);
                    scope.spawn(move || store.redeem_code("code", racer, u64::MAX))
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().unwrap())
                .collect()
        });
        let winners: Vec<u64> = (0..8u64)
            .filter(|racer| matches!(outcomes[*racer as usize], CodeRedemption::Pending(_)))
            .collect();
        assert_eq!(winners.len(), 1);
        for outcome in &outcomes {
            match outcome {
                CodeRedemption::Pending(_) => {}
                CodeRedemption::AlreadyRedeemed { grant_id } => assert_eq!(*grant_id, winners[0]),
                CodeRedemption::Unknown => panic!("a concurrent use saw the code as unknown"),
            }
        }
    }

    #[test]
    fn a_rotated_refresh_token_is_a_replay_after_the_grace_window() {
        let store = Store::default();
        let active = RefreshRecord {
            grant_id: 1,
            state: RefreshState::Active,
            expires_at_ms: u64::MAX,
        };
        store
            .add_refresh_token("rt".into(), active.clone())
            .unwrap();
        let used =
            |token, now, successor| store.use_refresh_token(token, now, true, 100, successor);
        assert_eq!(used("rt", 1_000, "rt2"), Some(RefreshDecision::Use));
        store
            .add_refresh_token("rt2".into(), active.clone())
            .unwrap();
        // Inside the grace window the family's newest token is answered, not a new one.
        assert_eq!(
            used("rt", 1_050, "unused"),
            Some(RefreshDecision::UseInGrace {
                newest: Arc::from("rt2")
            })
        );
        assert_eq!(used("rt2", 1_060, "rt3"), Some(RefreshDecision::Use));
        assert_eq!(
            used("rt", 1_070, "unused"),
            Some(RefreshDecision::UseInGrace {
                newest: Arc::from("rt3")
            })
        );
        assert_eq!(used("rt", 1_100, "unused"), Some(RefreshDecision::Replay));
        assert_eq!(store.use_refresh_token("unknown", 0, true, 0, "x"), None);
        // Without rotation the token stays usable.
        store.add_refresh_token("kept".into(), active).unwrap();
        for now in [1, 2] {
            assert_eq!(
                store.use_refresh_token("kept", now, false, 0, "kept"),
                Some(RefreshDecision::Use)
            );
        }
    }

    #[test]
    fn the_sweep_forgets_rotated_tokens_after_the_replay_window_and_revoked_families() {
        let store = Store::with_limits(Limits {
            max_entries_per_map: usize::MAX,
            replay_window_ms: 1_000,
        });
        let live = store.open_grant(grant()).unwrap();
        let revoked = store.open_grant(grant()).unwrap();
        let record = |grant_id| RefreshRecord {
            grant_id,
            state: RefreshState::Active,
            expires_at_ms: u64::MAX,
        };
        store.add_refresh_token("old".into(), record(live)).unwrap();
        store.use_refresh_token("old", 10_000, true, 0, "new");
        store.add_refresh_token("new".into(), record(live)).unwrap();
        store
            .add_refresh_token("stolen".into(), record(revoked))
            .unwrap();
        store.revoke_grant(revoked);

        // Inside the window the rotated token stays, so its replay is still detected.
        let swept = store.sweep(10_500);
        assert_eq!((swept.refresh_tokens, swept.grants), (1, 1));
        assert!(store.refresh_record("old").is_some());
        assert!(store.grant(revoked).is_none());
        // After it, only the family's newest token is left.
        assert_eq!(store.sweep(11_000).refresh_tokens, 1);
        assert!(store.refresh_record("old").is_none());
        assert!(store.refresh_record("new").is_some());
        assert_eq!(store.sizes().refresh_tokens, 1);
        assert!(store.grant_is_live(live));
    }

    #[test]
    fn a_full_map_refuses_with_a_clear_error_until_the_sweep_frees_room() {
        let store = Store::with_limits(Limits {
            max_entries_per_map: 2,
            replay_window_ms: u64::MAX,
        });
        let session = |expires_at_ms| Session {
            subject: "a".into(),
            auth_time: 0,
            expires_at_ms,
        };
        store.open_session("a".into(), session(5)).unwrap();
        store.open_session("b".into(), session(u64::MAX)).unwrap();
        let full = store
            .open_session("c".into(), session(u64::MAX))
            .unwrap_err();
        assert_eq!(full.map, "sessions");
        assert!(full.to_string().contains("--max-store-entries"), "{full}");
        assert_eq!(store.sizes().sessions, 2);
        store.sweep(10);
        store.open_session("c".into(), session(u64::MAX)).unwrap();
    }

    #[test]
    fn a_capped_map_counts_exactly_and_concurrent_inserts_stay_under_the_cap() {
        let map: Capped<u32, u32> = Capped::new("numbers");
        map.insert(1, 1, 10).unwrap();
        map.insert(1, 2, 10).unwrap();
        assert_eq!(map.len(), 1, "a replaced entry is not counted twice");
        map.remove(&1);
        map.remove(&1);
        assert_eq!(map.len(), 0);
        for key in 0..6 {
            map.insert(key, key, 10).unwrap();
        }
        assert_eq!(map.retain(|key, _| key % 2 == 0), 3);
        assert_eq!(map.len(), map.entries.len());

        let map: std::sync::Arc<Capped<u32, u32>> = std::sync::Arc::new(Capped::new("numbers"));
        std::thread::scope(|scope| {
            for thread in 0..4u32 {
                let map = std::sync::Arc::clone(&map);
                scope.spawn(move || {
                    for key in 0..100 {
                        let _ = map.insert(thread * 1000 + key, key, 50);
                    }
                });
            }
        });
        assert_eq!(map.len(), 50);
        assert_eq!(map.entries.len(), 50);
    }
}
