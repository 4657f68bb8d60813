//! The JWKS during a run, against a small scripted provider on 127.0.0.1:0 that signs its tokens
//! with Ed25519 keys of its own: a key rotated mid-run is fetched and the tokens keep verifying;
//! a stream of tokens naming forged `kid`s makes loadgen fetch the JWKS again at most once per
//! interval, however many virtual users meet them at once.

mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::digest::SHA512;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64_URL;
use bytes::Bytes;
use common::{assert_clean, check, run_config, steady};
use http::Method;
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use loadgen::protocol::client_credentials::{DEFAULT_CLIENT_ID, DEFAULT_REDIRECT_URI};
use loadgen::protocol::id_token::at_hash_with;
use loadgen::seeding::seed_files::{CodeSeed, required_codes};
use loadgen::{LoadProfile, ScenarioKind, Seeds, stop_signal};
use tokio::net::TcpListener;

/// The subject of every token the scripted provider issues.
const SUBJECT: &str = "user-loadtest-00001";

/// An Ed25519 signing key and its public JWK.
struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    jwk: serde_json::Value,
}

impl SigningKey {
    fn generate(kid: &str) -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new()).expect("a new key");
        let pair =
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8.as_ref()).expect("the key just made");
        Self {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
            jwk: serde_json::json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "use": "sig",
                "alg": "EdDSA",
                "kid": kid,
                "x": BASE64_URL.encode(pair.public_key().as_ref()),
            }),
        }
    }
}

/// How the scripted provider signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    /// Key `a` until it has issued this many token responses, then key `b`, which it starts to
    /// publish then (beside `a`, as a provider keeps the old key while its tokens live).
    RotateAfter(usize),
    /// Every token with key `a` under a `kid` of its own that no JWKS ever holds.
    ForgedKids,
}

struct Provider {
    script: Script,
    base: String,
    first: SigningKey,
    second: SigningKey,
    rotated: Mutex<bool>,
    tokens_issued: AtomicUsize,
    jwks_fetches: AtomicUsize,
}

fn now_s() -> u64 {
    loadgen::seeding::seed_files::unix_now()
}

impl Provider {
    fn jwks(&self) -> Bytes {
        let rotated = *self.rotated.lock().expect("no test thread panicked");
        let mut keys = vec![self.first.jwk.clone()];
        if rotated {
            keys.push(self.second.jwk.clone());
        }
        Bytes::from(serde_json::json!({ "keys": keys }).to_string())
    }

    fn token_response(&self, form: &str) -> Bytes {
        let code = form_urlencoded::parse(form.as_bytes())
            .find(|(name, _)| name == "code")
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default();
        let issued = self.tokens_issued.fetch_add(1, Ordering::SeqCst);
        let (key, kid) = match self.script {
            Script::RotateAfter(count) if issued >= count => {
                *self.rotated.lock().expect("no test thread panicked") = true;
                (&self.second, self.second.kid.clone())
            }
            Script::RotateAfter(_) => (&self.first, self.first.kid.clone()),
            Script::ForgedKids => (&self.first, format!("forged-{issued}")),
        };
        let now = now_s();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.clone());
        header.typ = Some("at+jwt".into());
        let access_token = jsonwebtoken::encode(
            &header,
            &serde_json::json!({
                "iss": self.base, "sub": SUBJECT, "aud": self.base, "client_id": DEFAULT_CLIENT_ID,
                "iat": now, "exp": now + 300, "jti": format!("at-{issued}"),
            }),
            &key.encoding,
        )
        .expect("a token signs");
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid);
        // The seeds' nonce of a code is the code itself.
        let id_token = jsonwebtoken::encode(
            &header,
            &serde_json::json!({
                "iss": self.base, "sub": SUBJECT, "aud": DEFAULT_CLIENT_ID, "azp": DEFAULT_CLIENT_ID,
                "iat": now, "exp": now + 300, "auth_time": now - 10, "nonce": code,
                "at_hash": at_hash_with(&SHA512, &access_token),
            }),
            &key.encoding,
        )
        .expect("a token signs");
        Bytes::from(
            serde_json::json!({
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            })
            .to_string(),
        )
    }

    async fn answer(
        self: Arc<Self>,
        request: Request<hyper::body::Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let (parts, body) = request.into_parts();
        let body = body
            .collect()
            .await
            .map(|body| body.to_bytes())
            .unwrap_or_default();
        let answer = match (parts.method, parts.uri.path()) {
            (Method::GET, "/.well-known/openid-configuration") => {
                common::discovery_document(&self.base, &self.base)
            }
            (Method::GET, "/jwks") => {
                self.jwks_fetches.fetch_add(1, Ordering::SeqCst);
                self.jwks()
            }
            (Method::POST, "/token") => self.token_response(&String::from_utf8_lossy(&body)),
            _ => Bytes::from_static(b"{}"),
        };
        Ok(Response::new(Full::new(answer)))
    }
}

/// Starts the scripted provider; it runs until the test ends.
async fn spawn(script: Script) -> Arc<Provider> {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let provider = Arc::new(Provider {
        script,
        base: format!("http://{}", listener.local_addr().expect("a bound address")),
        first: SigningKey::generate("a"),
        second: SigningKey::generate("b"),
        rotated: Mutex::new(false),
        tokens_issued: AtomicUsize::new(0),
        jwks_fetches: AtomicUsize::new(0),
    });
    let serving = Arc::clone(&provider);
    // Detached: the provider serves until the test's runtime ends.
    drop(common::serve_connections(
        listener,
        service_fn(move |request| Arc::clone(&serving).answer(request)),
    ));
    provider
}

/// Codes the scripted provider accepts: any code, whose nonce is the code itself.
fn seeds_for(profile: &LoadProfile) -> Seeds {
    Seeds {
        authorization_codes: (0..required_codes(profile))
            .map(|number| CodeSeed {
                code: format!("code-{number}"),
                code_verifier: "v".repeat(43),
                redirect_uri: DEFAULT_REDIRECT_URI.into(),
                client_id: DEFAULT_CLIENT_ID.into(),
                user_id: SUBJECT.into(),
                nonce: format!("code-{number}"),
                minted_at: None,
                subject: Some(SUBJECT.into()),
            })
            .collect(),
        ..Seeds::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_mid_run_is_fetched_and_the_tokens_keep_verifying() {
    let provider = spawn(Script::RotateAfter(10)).await;
    let profile = steady(20.0, 2.0);
    let config = run_config(ScenarioKind::TokenCode, &provider.base, profile, 4);
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, seeds_for(&profile), stop)
        .await
        .unwrap();
    assert_clean(&result);
    for name in [
        "access_token_verifies",
        "id_token_verifies",
        "id_token_nonce",
        "id_token_at_hash",
        "token_subject",
    ] {
        assert_eq!(check(&result, name), (40, 0), "{name}");
    }
    // The key set fetched before the run, and once more at the first token signed with `b`.
    assert_eq!(provider.jwks_fetches.load(Ordering::SeqCst), 2);
    assert!(
        result.notes.iter().any(|note| note
            == "Fetched the JWKS again 1 time during the run, for tokens signed with a key it \
                did not hold (a key rotation); at most once per 5s."),
        "{:#?}",
        result.notes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_kids_fetch_the_jwks_at_most_once_per_interval() {
    let provider = spawn(Script::ForgedKids).await;
    // 100 token responses in 2 s on 8 VUs, each with two tokens naming a kid never published:
    // 200 unknown kids, many met by several VUs at once.
    let profile = steady(50.0, 2.0);
    let config = run_config(ScenarioKind::TokenCode, &provider.base, profile, 8);
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, seeds_for(&profile), stop)
        .await
        .unwrap();
    assert_eq!(check(&result, "access_token_verifies"), (0, 100));
    assert_eq!(check(&result, "id_token_verifies"), (0, 100));
    // The run lasts less than the 5 s interval: the fetch before the run and one refetch.
    assert!(result.duration_s < 5.0, "{}", result.duration_s);
    assert_eq!(provider.jwks_fetches.load(Ordering::SeqCst), 2);
    assert!(
        result
            .notes
            .iter()
            .any(|note| note.contains("the JWKS holds no key with kid forged-")),
        "{:#?}",
        result.notes
    );
}
