//! TEST 1: `POST /token` with a seeded authorization code, each code used once across all VUs.

use std::borrow::Cow;
use std::sync::Arc;

use http::StatusCode;

use crate::protocol::token_request::TokenGrant;
use crate::run::scenario::vu::TokenExpectations;
use crate::run::scenario::{Iteration, Scenario, SeedKind, SeedNeed, Vu};
use crate::seeding::seed_files::codes_for_iterations;

/// TEST 1.
#[derive(Debug)]
pub struct TokenCode;

impl Scenario for TokenCode {
    type State = ();
    const TEST_ID: Option<&'static str> = Some("TEST 1");

    fn seed_need(iterations: u64, _vus: u64) -> Option<SeedNeed> {
        Some(SeedNeed {
            kind: SeedKind::AuthorizationCodes,
            needed: codes_for_iterations(iterations),
            why: format!("{iterations} iterations scheduled plus a 1% margin"),
        })
    }

    async fn set_up(_vu: &mut Vu) -> Result<(), String> {
        Ok(())
    }

    async fn iterate(vu: &mut Vu, _state: &mut (), iteration: Iteration) -> Option<()> {
        let context = Arc::clone(vu.context());
        let seed = match &context.minted_codes {
            Some(minted) => match minted.take() {
                Some(code) => Cow::Owned(code),
                None => {
                    vu.fail("minted code missing", || {
                        "no code minted ahead was ready: the provider mints codes slower than the \
                         test uses them, or minting failed (see the minting note)"
                            .to_owned()
                    });
                    return None;
                }
            },
            None => match context.seed_of(&context.seeds.authorization_codes, iteration) {
                Some(code) => Cow::Borrowed(code),
                None => {
                    vu.seeds_exhausted(iteration, "authorization code");
                    return None;
                }
            },
        };
        let grant = TokenGrant::Code {
            code: &seed.code,
            redirect_uri: &seed.redirect_uri,
            code_verifier: &seed.code_verifier,
        };
        let response = vu
            .post_token(grant, iteration.intended_start, StatusCode::OK)
            .await?;
        let openid = context
            .client
            .scope
            .split(' ')
            .any(|scope| scope == "openid");
        vu.check_token_response(
            &response,
            TokenExpectations {
                nonce: Some(&seed.nonce),
                id_token_required: openid,
                subject: seed.subject.as_deref(),
                ..TokenExpectations::default()
            },
        )
        .await?;
        Some(())
    }
}
