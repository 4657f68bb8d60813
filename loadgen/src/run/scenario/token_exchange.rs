//! RFC 8693 token exchange of the VU's access token (got through its session before the clock
//! starts) for another access token.

use http::StatusCode;

use crate::protocol::token_request::TokenGrant;
use crate::run::scenario::vu::TokenExpectations;
use crate::run::scenario::{Iteration, Scenario, SeedKind, SeedNeed, Vu};

/// The `token-exchange` scenario.
#[derive(Debug)]
pub struct TokenExchange;

/// The access token the VU exchanges.
#[derive(Debug)]
pub struct SubjectToken {
    access_token: String,
    /// The subject the seeds recorded for the session's user, whom the exchanged token is for.
    subject: Option<String>,
}

impl Scenario for TokenExchange {
    type State = SubjectToken;

    fn seed_need(_iterations: u64, vus: u64) -> Option<SeedNeed> {
        Some(SeedNeed {
            kind: SeedKind::Sessions,
            needed: vus,
            why: format!("one session per VU, {vus} VUs"),
        })
    }

    async fn set_up(vu: &mut Vu) -> Result<SubjectToken, String> {
        let tokens = vu.sign_in_unmeasured().await?;
        let access_token = tokens
            .access_token
            .ok_or("the token endpoint issued no access_token")?;
        Ok(SubjectToken {
            access_token,
            subject: vu.session_subject(),
        })
    }

    async fn iterate(vu: &mut Vu, subject: &mut SubjectToken, iteration: Iteration) -> Option<()> {
        let grant = TokenGrant::Exchange {
            subject_token: &subject.access_token,
        };
        let response = vu
            .post_token(grant, iteration.intended_start, StatusCode::OK)
            .await?;
        vu.check_token_response(
            &response,
            TokenExpectations {
                issued_token_type_required: true,
                subject: subject.subject.as_deref(),
                ..TokenExpectations::default()
            },
        )
        .await?;
        Some(())
    }
}
