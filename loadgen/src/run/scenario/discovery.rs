//! `GET /.well-known/openid-configuration`, checking that the document names the issuer.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode};

use crate::protocol::discovery::DiscoveryIssuer;
use crate::results::names::{Check, Endpoint};
use crate::run::scenario::vu::Expect;
use crate::run::scenario::{Iteration, Scenario, SeedNeed, Vu};

/// The `discovery` scenario.
#[derive(Debug)]
pub struct Discovery;

/// The last discovery document this VU checked and found right. A response with the same bytes
/// passes the same check, so it is compared instead of parsed again: parsing the document was a
/// third of loadgen's CPU per discovery request.
#[derive(Debug, Default)]
pub struct Verified {
    document: Option<Bytes>,
}

impl Scenario for Discovery {
    type State = Verified;

    fn seed_need(_iterations: u64, _vus: u64) -> Option<SeedNeed> {
        None
    }

    async fn set_up(_vu: &mut Vu) -> Result<Verified, String> {
        Ok(Verified::default())
    }

    async fn iterate(vu: &mut Vu, verified: &mut Verified, iteration: Iteration) -> Option<()> {
        let context = Arc::clone(vu.context());
        let response = vu
            .step(
                Endpoint::Discovery,
                Method::GET,
                &context.paths.discovery,
                &[],
                Bytes::new(),
                iteration.intended_start,
                Expect::Status(StatusCode::OK),
            )
            .await?;
        if verified.document.as_ref() == Some(&response.body) {
            vu.check(Check::DiscoveryIssuer, true, String::new);
            return Some(());
        }
        let issuer = serde_json::from_slice::<DiscoveryIssuer<'_>>(&response.body)
            .ok()
            .and_then(|document| document.issuer);
        let right = issuer.as_deref() == Some(context.issuer.as_str());
        vu.check(Check::DiscoveryIssuer, right, || match &issuer {
            Some(issuer) => format!("discovery names issuer {issuer}, not {}", context.issuer),
            None => "the discovery document names no issuer".to_owned(),
        });
        if !right {
            return None;
        }
        verified.document = Some(response.body.clone());
        Some(())
    }
}
