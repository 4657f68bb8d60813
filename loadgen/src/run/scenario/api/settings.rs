//! What `--scenario api` is asked to do: the API's URLs and their weights, the method, body and
//! status, where the tokens come from and when they are renewed; and the run's shared tally of
//! what the tokens went through.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{Method, StatusCode};

use crate::http::address::Address;
use crate::protocol::app_tokens::{AppTokens, JsonLogin, MintEndpoint};
use crate::protocol::test_users::test_user_name;
use crate::protocol::token_signing::TokenSigner;
use crate::results::api_tokens::{ApiRefusal, ApiTokens};

/// One URL of the API and its share of the iterations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRoute {
    /// The absolute URL.
    pub url: String,
    /// Where its requests go, parsed once.
    pub address: Address,
    /// Its weight among the routes (1 when not given).
    pub weight: u32,
}

/// Why an `--api-url` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--api-url {0:?} is not URL or URL=WEIGHT with an absolute http(s) URL and a weight from 1"
)]
pub struct RouteParseError(String);

impl FromStr for ApiRoute {
    type Err = RouteParseError;

    /// `http://127.0.0.1:8090/api/v1/posts/feed` or `...=3`: the weight is a number after a
    /// last `=` that is not the query's own (`?page=2` is a query, `?page=2=3` its weight 3).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let query_pairs_own_it = |url: &str| {
            url.split_once('?').is_some_and(|(_, query)| {
                query
                    .rsplit('&')
                    .next()
                    .is_some_and(|pair| !pair.contains('='))
            })
        };
        let (url, weight) = match text.rsplit_once('=') {
            Some((url, weight))
                if !weight.is_empty()
                    && weight.bytes().all(|byte| byte.is_ascii_digit())
                    && !query_pairs_own_it(url) =>
            {
                (
                    url,
                    weight
                        .parse::<u32>()
                        .ok()
                        .filter(|weight| *weight > 0)
                        .ok_or_else(|| RouteParseError(text.to_owned()))?,
                )
            }
            _ => (text, 1),
        };
        let address = Address::parse(url).map_err(|_| RouteParseError(text.to_owned()))?;
        Ok(Self {
            url: url.to_owned(),
            address,
            weight,
        })
    }
}

/// Where the VUs' access tokens come from.
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// The provider's: each VU takes a seeded refresh-token family and renews through it.
    Oidc,
    /// Signed by loadgen with the application's test key.
    Sign(Arc<TokenSigner>),
    /// The application's own JSON login and refresh API.
    Json(Arc<JsonLogin>),
    /// The application's test-only mint endpoint.
    Mint(Arc<MintEndpoint>),
}

impl TokenSource {
    /// The name in results.
    pub fn name(&self) -> &'static str {
        match self {
            TokenSource::Oidc => "oidc",
            TokenSource::Sign(_) => "sign",
            TokenSource::Json(_) => "json",
            TokenSource::Mint(_) => "mint",
        }
    }

    /// Whether the tokens come from the OpenID provider at `--target` (the others need none).
    pub fn needs_provider(&self) -> bool {
        matches!(self, TokenSource::Oidc)
    }
}

/// The `api` scenario's settings.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// The URLs called, by weight; at least one.
    pub routes: Vec<ApiRoute>,
    /// The method of every call.
    pub method: Method,
    /// The body of every call, `{{user}}` and `{{n}}` filled in per VU (JSON is assumed).
    pub body: Option<String>,
    /// The status every call must answer; any 2xx when `None`.
    pub expect: Option<StatusCode>,
    /// Where the tokens come from.
    pub token_source: TokenSource,
    /// How long before its expiry a token is renewed.
    pub refresh_before: Duration,
    /// The users of the sources that are not the provider's are `PREFIX00001` ..., VU i's
    /// number i + 1, as the seeder names them.
    pub user_prefix: String,
}

impl ApiSettings {
    /// User number `number`'s name (from 1).
    pub fn user(&self, number: usize) -> String {
        test_user_name(&self.user_prefix, number.saturating_sub(1))
    }
}

impl ApiSettings {
    /// The route of iteration `index`: the routes take turns in proportion to their weights,
    /// the same on every run.
    pub fn route_of(&self, index: u64) -> usize {
        let total: u64 = self
            .routes
            .iter()
            .map(|route| u64::from(route.weight))
            .sum();
        let mut position = index % total.max(1);
        for (number, route) in self.routes.iter().enumerate() {
            let weight = u64::from(route.weight);
            if position < weight {
                return number;
            }
            position -= weight;
        }
        0
    }

    /// Each route's name in the result, `api METHOD /path`, in the routes' order; a path two
    /// routes share (on two hosts, or with two queries) gets its number after it.
    pub fn route_names(&self) -> Vec<String> {
        let paths: Vec<String> = self
            .routes
            .iter()
            .map(|route| {
                url::Url::parse(&route.url)
                    .map(|url| url.path().to_owned())
                    .unwrap_or_else(|_| route.url.clone())
            })
            .collect();
        paths
            .iter()
            .enumerate()
            .map(|(number, path)| {
                let name = format!("api {} {path}", self.method);
                if paths.iter().filter(|other| *other == path).count() > 1 {
                    format!("{name} #{}", number + 1)
                } else {
                    name
                }
            })
            .collect()
    }

    /// What the run hashes of these settings: shards of one run must share them.
    pub fn canonical(&self) -> serde_json::Value {
        serde_json::json!({
            "routes": self.routes.iter().map(|route| format!("{}={}", route.url, route.weight)).collect::<Vec<_>>(),
            "method": self.method.as_str(),
            "body": self.body,
            "expect": self.expect.map(|status| status.as_u16()),
            "token_source": self.token_source.name(),
            "refresh_before_ms": self.refresh_before.as_millis().to_string(),
        })
    }
}

/// Every VU's first token from a batch mint, and when the batch was asked for.
pub type FirstTokens = Result<(std::time::SystemTime, HashMap<String, AppTokens>), String>;

/// The run's tally of what the `api` scenario's tokens went through, shared by its VUs.
#[derive(Debug)]
pub struct ApiTally {
    /// The settings.
    pub settings: ApiSettings,
    /// The run's virtual users (user numbers 1 to this).
    pub vus: usize,
    /// Each route's name in the result, in the settings' order, made once for every VU.
    pub route_names: Vec<String>,
    /// The VUs' first tokens from a batch mint and when it was asked, fetched once by the first
    /// VU set up.
    pub first_tokens: tokio::sync::OnceCell<FirstTokens>,
    refreshes: AtomicU64,
    refresh_failures: AtomicU64,
    recovered_401: AtomicU64,
    figures: Mutex<ApiTokens>,
}

impl ApiTally {
    /// An empty tally for a run with `settings` on `vus` virtual users.
    pub fn new(settings: ApiSettings, vus: usize) -> Self {
        Self {
            vus,
            route_names: settings.route_names(),
            first_tokens: tokio::sync::OnceCell::new(),
            figures: Mutex::new(ApiTokens {
                token_source: settings.token_source.name().to_owned(),
                ..ApiTokens::default()
            }),
            settings,
            refreshes: AtomicU64::new(0),
            refresh_failures: AtomicU64::new(0),
            recovered_401: AtomicU64::new(0),
        }
    }

    /// Counts a renewal, done or failed.
    pub fn count_refresh(&self, succeeded: bool) {
        let counter = if succeeded {
            &self.refreshes
        } else {
            &self.refresh_failures
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `refusal`, a 401, as recovered by one renewal and one retry.
    pub fn count_recovered_401(&self, refusal: &ApiRefusal) {
        self.recovered_401.fetch_add(1, Ordering::Relaxed);
        self.figures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .add_recovered(refusal);
    }

    /// Counts a refusal of the API.
    pub fn note_refusal(&self, refusal: ApiRefusal) {
        self.figures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .add_refusal(refusal);
    }

    /// The figures for the result.
    pub fn figures(&self) -> ApiTokens {
        let mut figures = self
            .figures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        figures.refreshes = self.refreshes.load(Ordering::Relaxed);
        figures.refresh_failures = self.refresh_failures.load(Ordering::Relaxed);
        figures.recovered_401 = self.recovered_401.load(Ordering::Relaxed);
        figures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_take_turns_by_weight_and_bad_ones_are_refused() {
        let routes: Vec<ApiRoute> = [
            "http://127.0.0.1:8090/api/v1/posts/feed=3",
            "http://127.0.0.1:8090/api/chat/messages?room=a",
        ]
        .iter()
        .map(|text| text.parse().unwrap())
        .collect();
        assert_eq!(routes[0].weight, 3);
        let paged: ApiRoute = "http://127.0.0.1:8090/items?page=2".parse().unwrap();
        assert_eq!(
            (paged.url.as_str(), paged.weight),
            ("http://127.0.0.1:8090/items?page=2", 1)
        );
        let paged: ApiRoute = "http://127.0.0.1:8090/items?page=2=5".parse().unwrap();
        assert_eq!(
            (paged.url.as_str(), paged.weight),
            ("http://127.0.0.1:8090/items?page=2", 5)
        );
        assert_eq!(
            routes[1].url,
            "http://127.0.0.1:8090/api/chat/messages?room=a"
        );
        let settings = ApiSettings {
            routes,
            method: Method::GET,
            body: None,
            expect: None,
            token_source: TokenSource::Oidc,
            refresh_before: Duration::from_secs(60),
            user_prefix: "user-loadtest-".into(),
        };
        let turns: Vec<usize> = (0..8).map(|index| settings.route_of(index)).collect();
        assert_eq!(turns, [0, 0, 0, 1, 0, 0, 0, 1]);
        assert_eq!(
            settings.route_names(),
            ["api GET /api/v1/posts/feed", "api GET /api/chat/messages"]
        );
        for bad in ["/api/v1/feed", "http://127.0.0.1:8090/feed=0", "feed=2"] {
            let error = bad.parse::<ApiRoute>().unwrap_err();
            assert!(error.to_string().contains("URL=WEIGHT"), "{bad}: {error}");
        }
    }
}
