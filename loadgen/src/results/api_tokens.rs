//! What the `api` scenario's tokens went through, for the result: where they came from, the
//! refreshes done off the measured path, the 401s recovered by one refresh and retry, and the
//! first distinct refusals the API gave, each with the state of the token it refused.

use serde::{Deserialize, Serialize};

/// Refusals kept per result: the first few distinct ones explain a run; thousands would not.
pub const MAX_REFUSALS: usize = 8;

/// The `api` scenario's token figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApiTokens {
    /// Where the VUs' access tokens came from: `oidc`, `sign`.
    pub token_source: String,
    /// Tokens renewed, before they expired or after a 401 (the `token_refresh` endpoint's
    /// requests for `oidc`; local signatures for `sign`).
    pub refreshes: u64,
    /// Renewals that gave no token: the VU's next iterations went on with the one it held.
    pub refresh_failures: u64,
    /// 401s answered `invalid_token` after which one renewal and one retry succeeded. The 401
    /// itself is still counted among the requests (the gate allows none by default).
    pub recovered_401: u64,
    /// The first distinct refusals (401 and 403) the API sent, at most [`MAX_REFUSALS`].
    pub refusals: Vec<ApiRefusal>,
}

/// One kind of refusal from the API and the token it refused, so that "401 because the token
/// expired 3 s before" reads differently from "401 with a fresh token".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApiRefusal {
    /// 401 or 403.
    pub status: u16,
    /// The `error` of its `WWW-Authenticate` challenge (RFC 6750), when it gave one.
    pub error: Option<String>,
    /// The `error_description` of the challenge, when it gave one.
    pub description: Option<String>,
    /// How many refusals had this status, error and description.
    pub count: u64,
    /// How many of them one renewal and retry recovered.
    #[serde(default)]
    pub recovered: u64,
    /// The `kid` of the first refused token's header, when it was a JWT naming one.
    pub kid: Option<String>,
    /// Seconds from then to the first refused token's expiry: negative when it had expired.
    pub expires_in_s: Option<i64>,
    /// Seconds since the first refused token was issued to the VU.
    pub age_s: Option<u64>,
}

impl ApiTokens {
    /// Counts `refusal`, keeping it when it is the first of its kind and there is room.
    pub fn add_refusal(&mut self, refusal: ApiRefusal) {
        let same = self
            .refusals
            .iter()
            .position(|kept| kept.is_same_kind(&refusal));
        match same {
            Some(index) => {
                self.refusals[index].count += refusal.count;
                self.refusals[index].recovered += refusal.recovered;
            }
            None if self.refusals.len() < MAX_REFUSALS => self.refusals.push(refusal),
            None => {}
        }
    }

    /// Counts a refusal of the kind of `refusal` as recovered (when its kind is kept).
    pub fn add_recovered(&mut self, refusal: &ApiRefusal) {
        if let Some(kept) = self
            .refusals
            .iter_mut()
            .find(|kept| kept.is_same_kind(refusal))
        {
            kept.recovered += 1;
        }
    }

    /// The figures of two shards of one run together.
    pub fn merged(mut self, other: &ApiTokens) -> ApiTokens {
        self.refreshes += other.refreshes;
        self.refresh_failures += other.refresh_failures;
        self.recovered_401 += other.recovered_401;
        for refusal in &other.refusals {
            self.add_refusal(refusal.clone());
        }
        self
    }
}

impl ApiRefusal {
    /// Whether `other` is a refusal of the same kind: the same status and error, and the same
    /// description but for its numbers ("the token expired 3 s ago" and "... 4 s ago" are one
    /// kind, so a run's refusals do not fill the list with one cause).
    fn is_same_kind(&self, other: &ApiRefusal) -> bool {
        // Each run of digits stands as one `#`.
        let shape = |description: &Option<String>| {
            description.as_deref().map(|text| {
                let mut shape = String::with_capacity(text.len());
                for character in text.chars() {
                    if !character.is_ascii_digit() {
                        shape.push(character);
                    } else if !shape.ends_with('#') {
                        shape.push('#');
                    }
                }
                shape
            })
        };
        (self.status, &self.error) == (other.status, &other.error)
            && shape(&self.description) == shape(&other.description)
    }
}

/// The `error` and `error_description` of an RFC 6750 `WWW-Authenticate: Bearer` challenge.
pub fn bearer_challenge_error(challenge: &str) -> (Option<String>, Option<String>) {
    let parameter = |name: &str| {
        let start = challenge.find(&format!("{name}=\""))? + name.len() + 2;
        let end = challenge[start..].find('"')?;
        Some(challenge[start..start + end].to_owned())
    };
    (parameter("error"), parameter("error_description"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(description: &str) -> ApiRefusal {
        ApiRefusal {
            status: 401,
            error: Some("invalid_token".into()),
            description: Some(description.into()),
            count: 1,
            recovered: 0,
            kid: None,
            expires_in_s: Some(-3),
            age_s: Some(20),
        }
    }

    #[test]
    fn refusals_are_counted_by_kind_and_only_the_first_few_kept() {
        let mut figures = ApiTokens::default();
        for number in 0..20 {
            let reason = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"][number % 10];
            figures.add_refusal(refusal(&format!("reason {reason}")));
        }
        assert_eq!(figures.refusals.len(), MAX_REFUSALS);
        // The same cause with other numbers is one kind.
        let mut expired = ApiTokens::default();
        for seconds in [3, 4, 12] {
            expired.add_refusal(refusal(&format!("the token expired {seconds} s ago")));
        }
        assert_eq!(expired.refusals.len(), 1);
        assert_eq!(expired.refusals[0].count, 3);
        assert_eq!(figures.refusals[0].count, 2);
        let merged = figures.clone().merged(&figures);
        assert_eq!(merged.refusals[0].count, 4);
    }

    #[test]
    fn the_error_of_a_bearer_challenge_is_read() {
        assert_eq!(
            bearer_challenge_error(
                r#"Bearer realm="api", error="invalid_token", error_description="the token expired 3 s ago""#
            ),
            (
                Some("invalid_token".into()),
                Some("the token expired 3 s ago".into())
            )
        );
        assert_eq!(
            bearer_challenge_error(r#"Bearer realm="api""#),
            (None, None)
        );
    }
}
