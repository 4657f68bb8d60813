//! `--mint-ahead`: authorization codes minted during TEST 1, just ahead of their use, for
//! providers whose code lifetime is shorter than seeding plus the test (60 s in node-oidc-provider
//! and Keycloak). Minting runs on connections of its own through the seeded sessions, by the same
//! flow as seeding; its requests are not measured, and the result says how many there were. About
//! half a second of codes is kept ready: minting one costs a redirect, far less than the lead.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::http::address::Address;
use crate::http::client::VuClient;
use crate::http::target::Target;
use crate::protocol::authorization::IssuerExpectation;
use crate::protocol::browser::FormHints;
use crate::protocol::client_credentials::ClientCredentials;
use crate::protocol::code_flow::{FlowEndpoints, authorize_with_session};
use crate::protocol::token_request::token_request_headers;
use crate::seeding::seed_files::{CodeSeed, SessionSeed, unix_now};

/// Connections that mint at once, at most (one per session used).
const MINTING_CONNECTIONS: usize = 16;

/// What the minters need to ask for codes.
#[derive(Debug, Clone)]
pub struct MintingPlan {
    /// The target.
    pub target: Arc<Target>,
    /// The authorization endpoint.
    pub authorize: Address,
    /// The token endpoint (the minted codes are redeemed by the run, not here).
    pub token: Address,
    /// The pushed authorization request endpoint, for a client that pushes its requests.
    pub par: Option<Address>,
    /// The client.
    pub client: ClientCredentials,
    /// The issuer, for RFC 9207 `iss`.
    pub issuer: String,
    /// Whether discovery promises an RFC 9207 `iss` on every authorization response.
    pub issuer_parameter_required: bool,
    /// The seeded sessions the codes are minted through.
    pub sessions: Vec<SessionSeed>,
    /// How many codes the run uses.
    pub total: u64,
    /// How many codes to keep ready ahead of use.
    pub ahead: usize,
    /// Per-request timeout.
    pub timeout: Duration,
    /// How to fill in the provider's consent page, when it shows one.
    pub hints: FormHints,
}

/// Codes minted ahead of use, taken one per TEST 1 iteration.
#[derive(Debug)]
pub struct MintedCodes {
    ready: Mutex<VecDeque<CodeSeed>>,
    /// Woken when a code is taken, so the minters refill.
    taken: Notify,
    minted: AtomicU64,
    failed: AtomicU64,
    first_failure: Mutex<Option<String>>,
}

impl MintedCodes {
    /// The next code, or `None` when none is ready (the minters fall behind).
    pub fn take(&self) -> Option<CodeSeed> {
        let code = self
            .ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front();
        self.taken.notify_waiters();
        code
    }

    /// A sentence for the result's notes: how many codes were minted, and the first failure.
    pub fn note(&self) -> String {
        let minted = self.minted.load(Ordering::Relaxed);
        let failed = self.failed.load(Ordering::Relaxed);
        let first = self
            .first_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match first {
            Some(first) => format!(
                "Minted {minted} authorization codes ahead of use (not measured); {failed} \
                 attempts failed, the first: {first}."
            ),
            None => format!(
                "Minted {minted} authorization codes ahead of use, on connections of their own \
                 (not measured)."
            ),
        }
    }
}

/// Starts the minters; they stop once `plan.total` codes are minted or the returned set is
/// dropped (aborted).
pub fn start(plan: MintingPlan) -> (Arc<MintedCodes>, JoinSet<()>) {
    let codes = Arc::new(MintedCodes {
        ready: Mutex::new(VecDeque::with_capacity(plan.ahead)),
        taken: Notify::new(),
        minted: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        first_failure: Mutex::new(None),
    });
    let plan = Arc::new(plan);
    let next = Arc::new(AtomicU64::new(0));
    let mut minters = JoinSet::new();
    let connections = plan.sessions.len().clamp(1, MINTING_CONNECTIONS);
    for minter in 0..connections {
        minters.spawn(mint(
            minter,
            Arc::clone(&plan),
            Arc::clone(&codes),
            Arc::clone(&next),
        ));
    }
    (codes, minters)
}

async fn mint(
    minter: usize,
    plan: Arc<MintingPlan>,
    codes: Arc<MintedCodes>,
    next: Arc<AtomicU64>,
) {
    let mut http = VuClient::new(Arc::clone(&plan.target));
    // A client that pushes its requests authenticates there as at the token endpoint.
    let token_headers: Vec<(HeaderName, HeaderValue)> = token_request_headers(&plan.client);
    let endpoints = FlowEndpoints {
        authorize: &plan.authorize,
        token: &plan.token,
        par: plan.par.as_ref(),
        token_headers: &token_headers,
        client: &plan.client,
        issuer: IssuerExpectation {
            issuer: &plan.issuer,
            required: plan.issuer_parameter_required,
        },
        timeout: plan.timeout,
        hints: &plan.hints,
    };
    // Each minter owns the sessions minter, minter + connections, ...: a session mints one code
    // at a time, as a person's browser would, and keeps the cookie the provider last set (a
    // provider that renews the session after its consent page ends the old one).
    let connections = plan.sessions.len().clamp(1, MINTING_CONNECTIONS);
    let mut own: Vec<(&SessionSeed, Option<HeaderValue>)> = plan
        .sessions
        .iter()
        .skip(minter)
        .step_by(connections)
        .map(|session| (session, HeaderValue::from_str(&session.cookie).ok()))
        .collect();
    let mut turn = 0;
    loop {
        // Wait while enough codes are ready; a taken code wakes one minter up.
        loop {
            let taken = codes.taken.notified();
            let ready = codes
                .ready
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len();
            if ready < plan.ahead {
                break;
            }
            taken.await;
        }
        let number = next.fetch_add(1, Ordering::Relaxed);
        if number >= plan.total {
            return;
        }
        if own.is_empty() {
            return;
        }
        let n_own = own.len();
        let (session, cookie) = &mut own[turn % n_own];
        turn += 1;
        let Some(cookie) = cookie else {
            record_failure(
                &codes,
                "a seeded session cookie is not a valid header value",
            );
            continue;
        };
        match authorize_with_session(&mut http, &endpoints, cookie).await {
            Ok((request, code)) => {
                codes.minted.fetch_add(1, Ordering::Relaxed);
                codes
                    .ready
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push_back(CodeSeed {
                        code,
                        code_verifier: request.code_verifier,
                        redirect_uri: plan.client.redirect_uri.clone(),
                        client_id: plan.client.client_id.clone(),
                        user_id: session.user_id.clone(),
                        nonce: request.nonce,
                        minted_at: Some(unix_now()),
                        subject: session.subject.clone(),
                    });
            }
            Err(error) => {
                // The number is not minted again: the iteration that wanted it fails, visibly.
                record_failure(&codes, &error.to_string());
            }
        }
    }
}

fn record_failure(codes: &MintedCodes, detail: &str) {
    codes.failed.fetch_add(1, Ordering::Relaxed);
    codes
        .first_failure
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(|| detail.to_owned());
}
