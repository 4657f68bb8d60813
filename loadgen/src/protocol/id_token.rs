//! The rules an ID token's claims follow beyond its signature, `iss`, `aud` and `exp` (OpenID
//! Connect Core 3.1.3.7 and 3.1.3.6): `at_hash`, `azp`, `iat` and `auth_time`, each judged on its
//! own so that each is a check of its own. A rule with nothing to judge (an optional claim that
//! is absent) says so instead of passing, so a check's count is the number of claims judged.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64_URL;
use jsonwebtoken::Algorithm;
use serde_json::Value;

use crate::protocol::token_verifier::IdTokenClaims;

/// How far in the future `iat` and `auth_time` may be: the provider's clock may run ahead of
/// ours by this much (jsonwebtoken allows the same leeway on `exp`).
pub const CLOCK_SKEW_S: u64 = 60;

/// One rule's verdict on one ID token: `None` when there was nothing to judge, otherwise
/// whether the rule held, and why not in words that follow "the ID token".
pub type ClaimVerdict = Option<Result<(), String>>;

/// The hash functions whose left half may make the `at_hash` of a token signed with
/// `algorithm`: the hash the algorithm names (OpenID Connect Core 3.1.3.6). `EdDSA` names
/// none; providers use SHA-512 (Ed25519's own hash, node-oidc-provider) or SHA-256 (mock-idp),
/// so either is accepted and nothing else.
fn at_hash_digests(algorithm: Algorithm) -> &'static [&'static digest::Algorithm] {
    match algorithm {
        Algorithm::RS256 | Algorithm::PS256 | Algorithm::ES256 | Algorithm::HS256 => {
            &[&digest::SHA256]
        }
        Algorithm::RS384 | Algorithm::PS384 | Algorithm::ES384 | Algorithm::HS384 => {
            &[&digest::SHA384]
        }
        Algorithm::RS512 | Algorithm::PS512 | Algorithm::HS512 => &[&digest::SHA512],
        Algorithm::EdDSA => &[&digest::SHA512, &digest::SHA256],
        // An algorithm jsonwebtoken learns later names no hash here yet: nothing can match.
        _ => &[],
    }
}

/// `at_hash` of `access_token` with `hash`: base64url of the left half of the hash of its ASCII
/// bytes.
pub fn at_hash_with(hash: &'static digest::Algorithm, access_token: &str) -> String {
    let digest = digest::digest(hash, access_token.as_bytes());
    let half = digest.as_ref().len() / 2;
    BASE64_URL.encode(&digest.as_ref()[..half])
}

/// `at_hash`, when the ID token carries one and came with `access_token`: it must be the
/// left-half hash of the access token, by the hash of the token's `algorithm`.
pub fn at_hash_rule(
    claims: &IdTokenClaims,
    algorithm: Algorithm,
    access_token: Option<&str>,
) -> ClaimVerdict {
    let at_hash = claims.at_hash.as_ref()?;
    let access_token = access_token?;
    let Some(at_hash) = at_hash.as_str() else {
        return Some(Err(format!("at_hash is {at_hash}, not a string")));
    };
    let matches = at_hash_digests(algorithm)
        .iter()
        .any(|hash| at_hash_with(hash, access_token) == at_hash);
    Some(if matches {
        Ok(())
    } else {
        Err(format!(
            "at_hash {at_hash} is not the left half of the {algorithm:?} hash of the access token \
             issued with it"
        ))
    })
}

/// `azp`: when present it must be our `client_id`; when `aud` names several audiences it must be
/// present (OpenID Connect Core 3.1.3.7, items 4 and 5).
pub fn azp_rule(claims: &IdTokenClaims, client_id: &str) -> ClaimVerdict {
    let audiences = match &claims.aud {
        Value::Array(audiences) => audiences.len(),
        _ => 1,
    };
    match &claims.azp {
        Some(Value::String(azp)) if azp == client_id => Some(Ok(())),
        Some(azp) => Some(Err(format!("azp is {azp}, not our client_id {client_id}"))),
        None if audiences > 1 => Some(Err(format!(
            "aud names {audiences} audiences but there is no azp to say which is the client"
        ))),
        None => None,
    }
}

/// Judges a NumericDate claim named `name`: a number, not later than `now_s` plus the clock
/// skew.
fn not_in_the_future(name: &str, value: &Value, now_s: u64) -> Result<(), String> {
    let Some(seconds) = value.as_f64() else {
        return Err(format!("{name} is {value}, not a number of seconds"));
    };
    let latest = (now_s + CLOCK_SKEW_S) as f64;
    if seconds > latest {
        return Err(format!(
            "{name} is {:.0} s in the future, beyond the {CLOCK_SKEW_S} s of clock skew allowed",
            seconds - now_s as f64
        ));
    }
    Ok(())
}

/// `iat`: required, a number, not in the future beyond the clock skew.
pub fn iat_rule(claims: &IdTokenClaims, now_s: u64) -> ClaimVerdict {
    Some(match &claims.iat {
        Some(iat) => not_in_the_future("iat", iat, now_s),
        None => Err("has no iat".to_owned()),
    })
}

/// `auth_time`: when present, a number not in the future beyond the clock skew.
pub fn auth_time_rule(claims: &IdTokenClaims, now_s: u64) -> ClaimVerdict {
    let auth_time = claims.auth_time.as_ref()?;
    Some(not_in_the_future("auth_time", auth_time, now_s))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn claims(extra: Value) -> IdTokenClaims {
        let mut object = serde_json::json!({"sub": "user-1", "aud": "loadtest-client"});
        if let (Some(object), Some(extra)) = (object.as_object_mut(), extra.as_object()) {
            object.extend(extra.clone());
        }
        serde_json::from_value(object).unwrap()
    }

    fn passed(verdict: ClaimVerdict) -> bool {
        verdict.expect("a verdict").is_ok()
    }

    #[test]
    fn at_hash_matches_the_openid_connect_core_example() {
        // OpenID Connect Core's example (appendix A): an RS256 ID token's at_hash for the
        // access token issued with it.
        let access_token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        assert_eq!(
            at_hash_with(&digest::SHA256, access_token),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        let good = claims(serde_json::json!({"at_hash": "77QmUPtjPfzWtF2AnpK9RQ"}));
        assert!(passed(at_hash_rule(
            &good,
            Algorithm::RS256,
            Some(access_token)
        )));
        // Another token, or the hash of another algorithm, fails.
        assert!(!passed(at_hash_rule(
            &good,
            Algorithm::RS256,
            Some("other")
        )));
        assert!(!passed(at_hash_rule(
            &good,
            Algorithm::RS384,
            Some(access_token)
        )));
        let not_a_string = claims(serde_json::json!({"at_hash": 7}));
        assert!(!passed(at_hash_rule(
            &not_a_string,
            Algorithm::RS256,
            Some(access_token)
        )));
        // Absent, or no access token to compare with: nothing to judge.
        assert_eq!(
            at_hash_rule(&claims(Value::Null), Algorithm::RS256, Some("t")),
            None
        );
        assert_eq!(at_hash_rule(&good, Algorithm::RS256, None), None);
    }

    #[test]
    fn at_hash_takes_the_hash_the_algorithm_names() {
        for (algorithm, hash, length) in [
            (Algorithm::ES256, &digest::SHA256, 22),
            (Algorithm::PS384, &digest::SHA384, 32),
            (Algorithm::RS512, &digest::SHA512, 43),
            (Algorithm::EdDSA, &digest::SHA512, 43),
            (Algorithm::EdDSA, &digest::SHA256, 22),
        ] {
            let at_hash = at_hash_with(hash, "token");
            assert_eq!(at_hash.len(), length, "{algorithm:?}");
            let carried = claims(serde_json::json!({ "at_hash": at_hash }));
            assert!(
                passed(at_hash_rule(&carried, algorithm, Some("token"))),
                "{algorithm:?}"
            );
        }
        let sha256 = claims(serde_json::json!({"at_hash": at_hash_with(&digest::SHA256, "token")}));
        assert!(!passed(at_hash_rule(
            &sha256,
            Algorithm::RS512,
            Some("token")
        )));
    }

    #[test]
    fn azp_must_be_the_client_and_present_with_several_audiences() {
        let ours = claims(serde_json::json!({"azp": "loadtest-client"}));
        assert!(passed(azp_rule(&ours, "loadtest-client")));
        let theirs = claims(serde_json::json!({"azp": "other-client"}));
        let failure = azp_rule(&theirs, "loadtest-client").unwrap().unwrap_err();
        assert_eq!(
            failure,
            r#"azp is "other-client", not our client_id loadtest-client"#
        );
        let several = claims(serde_json::json!({"aud": ["loadtest-client", "api"]}));
        assert!(!passed(azp_rule(&several, "loadtest-client")));
        let several_with_azp = claims(
            serde_json::json!({"aud": ["loadtest-client", "api"], "azp": "loadtest-client"}),
        );
        assert!(passed(azp_rule(&several_with_azp, "loadtest-client")));
        assert_eq!(azp_rule(&claims(Value::Null), "loadtest-client"), None);
    }

    #[test]
    fn iat_is_required_a_number_and_not_in_the_future() {
        assert!(passed(iat_rule(
            &claims(serde_json::json!({ "iat": NOW })),
            NOW
        )));
        assert!(passed(iat_rule(
            &claims(serde_json::json!({ "iat": NOW + CLOCK_SKEW_S })),
            NOW
        )));
        let ahead = iat_rule(&claims(serde_json::json!({ "iat": NOW + 3_600 })), NOW);
        assert_eq!(
            ahead,
            Some(Err(
                "iat is 3600 s in the future, beyond the 60 s of clock skew allowed".to_owned()
            ))
        );
        assert!(!passed(iat_rule(
            &claims(serde_json::json!({"iat": "1800000000"})),
            NOW
        )));
        assert_eq!(
            iat_rule(&claims(Value::Null), NOW),
            Some(Err("has no iat".to_owned()))
        );
    }

    #[test]
    fn auth_time_when_present_is_a_number_not_in_the_future() {
        assert!(passed(auth_time_rule(
            &claims(serde_json::json!({"auth_time": NOW - 600})),
            NOW
        )));
        assert!(!passed(auth_time_rule(
            &claims(serde_json::json!({"auth_time": NOW + 600})),
            NOW
        )));
        assert!(!passed(auth_time_rule(
            &claims(serde_json::json!({"auth_time": true})),
            NOW
        )));
        assert_eq!(auth_time_rule(&claims(Value::Null), NOW), None);
    }
}
