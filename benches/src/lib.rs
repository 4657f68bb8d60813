//! Shared fixtures of the mock-idp benchmarks: realistic access-token claims, the raw aws-lc-rs
//! primitives on the very key mock-idp signs with, builders of in-process token requests, and
//! the report that reads criterion's results back to compute mock-idp / raw ratios.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail, ensure};
use aws_lc_rs::signature::{self as aws_sig};
use aws_lc_rs::{hmac, rand};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use jsonwebtoken::Header;
use mock_idp::jwt::{AccessClaims, Minter};
use mock_idp::keys::{SigningAlg, SigningKey};
use mock_idp::{App, HttpResponse, RefreshTokenFormat};

/// The issuer every fixture uses; also the access tokens' audience.
pub const ISSUER: &str = "http://bench.test";

/// The most mock-idp's sign or validate may cost relative to the raw primitive (the issue's
/// target).
pub const RATIO_TARGET: f64 = 1.15;

/// The algorithms benchmarked, each in its own criterion group named by [`SigningAlg::as_str`].
pub const ALGORITHMS: [SigningAlg; 4] = [
    SigningAlg::Rs256,
    SigningAlg::Es256,
    SigningAlg::EdDsa,
    SigningAlg::Hs256,
];

/// Benchmark names shared by the signing bench and [`ratio_report`], so the report finds what
/// the bench wrote: `<algorithm>/<operation>/<line>`.
pub mod names {
    pub const SIGN: &str = "sign";
    pub const VALIDATE: &str = "validate";
    /// mock-idp's own code: `Minter::sign_access` / `Minter::verify_access`.
    pub const MOCK_IDP: &str = "mock-idp";
    /// The aws-lc-rs primitive alone, key parsed once, on the same signing input.
    pub const RAW: &str = "raw";
    /// The raw primitive plus the JSON and base64url work a JWT needs, written directly.
    pub const RAW_WITH_JSON: &str = "raw+json";
    /// jsonwebtoken's stock aws-lc provider, which parses the key on every call.
    pub const STOCK: &str = "jsonwebtoken-stock";
    /// Diagnostic: `jsonwebtoken::decode` through mock-idp's cached provider with a `Validation`
    /// built once, i.e. mock-idp's validate without `Minter`'s own header checks and set-up.
    pub const JWT_DECODE: &str = "jsonwebtoken-decode";
}

/// A subject token's type in an RFC 8693 token-exchange request.
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const CLIENT_ID: &str = "loadtest-client";
const CLIENT_SECRET: &str = "loadtest-secret";
const REDIRECT_URI: &str = "http://127.0.0.1:3000/callback";
const USERNAME: &str = "user-loadtest-00001";
const PASSWORD: &str = "loadtest";
/// A fixed PKCE verifier (43 characters, the RFC 7636 minimum): every code gets its own
/// challenge check, and the hashing cost does not depend on the verifier's value.
const CODE_VERIFIER: &str = "bench-verifier-0123456789abcdefghijklmnopqrs";

/// Claims shaped like those mock-idp issues for an authorization-code grant, valid for an hour.
pub fn realistic_access_claims() -> AccessClaims {
    let now = jsonwebtoken::get_current_timestamp();
    AccessClaims {
        iss: ISSUER.to_owned(),
        sub: USERNAME.to_owned(),
        aud: ISSUER.to_owned(),
        client_id: CLIENT_ID.to_owned(),
        scope: "openid profile email offline_access".to_owned(),
        iat: now,
        exp: now + 3600,
        // The length of mock-idp's random `jti` (256 bits, base64url).
        jti: "q9C3v1yXo8mN2bLk7Ht4Rw0Zs6EaPdJfUiGcVxTnYeQ".to_owned(),
        auth_time: Some(now - 5),
        act: None,
    }
}

/// One algorithm's key, mock-idp's minter on it, the same key parsed by aws-lc-rs, and one
/// token signed by mock-idp, split into the parts the raw primitives work on.
#[derive(Debug)]
pub struct SigningFixture {
    pub key: SigningKey,
    pub minter: Minter,
    pub claims: AccessClaims,
    /// The JOSE header mock-idp puts on access tokens (`alg`, `kid`, `typ: at+jwt`).
    pub header: Header,
    pub token: String,
    /// `base64url(header).base64url(claims)` of `token`: what every signature line signs.
    pub signing_input: Vec<u8>,
    pub signature: Vec<u8>,
    pub raw_signer: RawSigner,
    pub raw_verifier: RawVerifier,
}

impl SigningFixture {
    /// Makes a fresh key for `alg`. Fails if mock-idp's cached jsonwebtoken provider is not the
    /// process's provider, since mock-idp's lines would then measure the stock provider.
    pub fn new(alg: SigningAlg) -> Result<Self> {
        let key = SigningKey::generate(alg)?;
        ensure!(
            mock_idp::keys::cached_provider_active(),
            "mock-idp's cached jsonwebtoken provider is not installed: something used \
             jsonwebtoken before the first SigningKey was made"
        );
        let minter = Minter::new(
            key.clone(),
            ISSUER.to_owned(),
            ISSUER.to_owned(),
            RefreshTokenFormat::Opaque,
        );
        let claims = realistic_access_claims();
        let token = minter.sign_access(&claims)?;
        let (signing_input, signature) = token
            .rsplit_once('.')
            .context("mock-idp's token has no signature part")?;
        let signature = URL_SAFE_NO_PAD.decode(signature)?;
        let mut header = Header::new(alg.algorithm());
        header.kid = Some(key.kid().to_owned());
        header.typ = Some("at+jwt".to_owned());
        let raw_signer = RawSigner::new(&key)?;
        let raw_verifier = RawVerifier::new(&key)?;
        ensure!(
            raw_verifier.verify(signing_input.as_bytes(), &signature),
            "aws-lc-rs rejects mock-idp's {} signature: the lines would not compare like for like",
            alg.as_str()
        );
        Ok(Self {
            signing_input: signing_input.as_bytes().to_vec(),
            signature,
            token,
            header,
            claims,
            minter,
            raw_signer,
            raw_verifier,
            key,
        })
    }

    /// A whole JWT signed with the raw primitive: the JSON and base64url work of
    /// `jsonwebtoken::encode`, without its provider lookup. `signature` is a reusable buffer.
    pub fn raw_encode(&self, claims: &AccessClaims, signature: &mut Vec<u8>) -> Result<String> {
        let mut token = String::with_capacity(self.token.len());
        URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(&self.header)?, &mut token);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(claims)?, &mut token);
        self.raw_signer.sign(token.as_bytes(), signature)?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature[..], &mut token);
        Ok(token)
    }

    /// The least a validation must do, with the raw primitive: split, check the signature,
    /// decode and check the header, decode the claims, check `exp` and `iss`.
    pub fn raw_decode(&self, token: &str) -> Result<AccessClaims> {
        let (signing_input, signature) = token.rsplit_once('.').context("no signature")?;
        let (header, claims) = signing_input.split_once('.').context("no claims")?;
        let signature = URL_SAFE_NO_PAD.decode(signature)?;
        ensure!(
            self.raw_verifier
                .verify(signing_input.as_bytes(), &signature),
            "bad signature"
        );
        let header: Header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header)?)?;
        ensure!(
            header.alg == self.header.alg && header.kid == self.header.kid,
            "unexpected header"
        );
        let claims: AccessClaims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims)?)?;
        ensure!(
            claims.exp > jsonwebtoken::get_current_timestamp() && claims.iss == ISSUER,
            "expired or foreign token"
        );
        Ok(claims)
    }
}

/// The aws-lc-rs signing primitive for a mock-idp key, parsed once from the key's bytes.
pub enum RawSigner {
    Rsa(aws_sig::RsaKeyPair),
    Ecdsa(aws_sig::EcdsaKeyPair),
    Ed25519(aws_sig::Ed25519KeyPair),
    // Boxed like mock-idp's: an HMAC key is over a kilobyte of state, the others are handles.
    Hmac(Box<hmac::Key>),
}

impl std::fmt::Debug for RawSigner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material, even in a bench.
        let kind = match self {
            RawSigner::Rsa(_) => "Rsa",
            RawSigner::Ecdsa(_) => "Ecdsa",
            RawSigner::Ed25519(_) => "Ed25519",
            RawSigner::Hmac(_) => "Hmac",
        };
        formatter.debug_tuple("RawSigner").field(&kind).finish()
    }
}

impl RawSigner {
    /// Parses the private key jsonwebtoken holds for `key` (PKCS#1 for RSA, PKCS#8 for EC and
    /// Ed25519, the secret for HMAC).
    pub fn new(key: &SigningKey) -> Result<Self> {
        let private = key.encoding_key().as_bytes();
        Ok(match key.alg() {
            SigningAlg::Rs256 => Self::Rsa(aws_sig::RsaKeyPair::from_der(private)?),
            SigningAlg::Es256 => Self::Ecdsa(aws_sig::EcdsaKeyPair::from_pkcs8(
                &aws_sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                private,
            )?),
            SigningAlg::EdDsa => Self::Ed25519(aws_sig::Ed25519KeyPair::from_pkcs8(private)?),
            SigningAlg::Hs256 => Self::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, private))),
        })
    }

    /// Signs `message` into `signature`, which is reused so that the loop does not allocate.
    pub fn sign(&self, message: &[u8], signature: &mut Vec<u8>) -> Result<()> {
        signature.clear();
        match self {
            RawSigner::Rsa(pair) => {
                signature.resize(pair.public_modulus_len(), 0);
                pair.sign(
                    &aws_sig::RSA_PKCS1_SHA256,
                    &rand::SystemRandom::new(),
                    message,
                    signature,
                )?;
            }
            RawSigner::Ecdsa(pair) => {
                signature
                    .extend_from_slice(pair.sign(&rand::SystemRandom::new(), message)?.as_ref());
            }
            RawSigner::Ed25519(pair) => signature.extend_from_slice(pair.sign(message).as_ref()),
            RawSigner::Hmac(key) => signature.extend_from_slice(hmac::sign(key, message).as_ref()),
        }
        Ok(())
    }
}

/// The aws-lc-rs verification primitive for a mock-idp key, parsed once.
pub enum RawVerifier {
    PublicKey(aws_sig::ParsedPublicKey),
    // Boxed like mock-idp's: an HMAC key is over a kilobyte of state, the others are handles.
    Hmac(Box<hmac::Key>),
}

impl std::fmt::Debug for RawVerifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            RawVerifier::PublicKey(_) => "PublicKey",
            RawVerifier::Hmac(_) => "Hmac",
        };
        formatter.debug_tuple("RawVerifier").field(&kind).finish()
    }
}

impl RawVerifier {
    /// Parses the public key jsonwebtoken holds for `key` (RSAPublicKey DER, uncompressed EC
    /// point, raw Ed25519 key, or the HMAC secret).
    pub fn new(key: &SigningKey) -> Result<Self> {
        let public = key.decoding_key().try_get_as_bytes()?;
        let algorithm: &'static dyn aws_sig::VerificationAlgorithm = match key.alg() {
            SigningAlg::Rs256 => &aws_sig::RSA_PKCS1_2048_8192_SHA256,
            SigningAlg::Es256 => &aws_sig::ECDSA_P256_SHA256_FIXED,
            SigningAlg::EdDsa => &aws_sig::ED25519,
            SigningAlg::Hs256 => {
                return Ok(Self::Hmac(Box::new(hmac::Key::new(
                    hmac::HMAC_SHA256,
                    public,
                ))));
            }
        };
        Ok(Self::PublicKey(
            aws_sig::UnparsedPublicKey::new(algorithm, public).parse()?,
        ))
    }

    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            RawVerifier::PublicKey(key) => key.verify_sig(message, signature).is_ok(),
            RawVerifier::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
        }
    }
}

/// A form POST to `path`, as a browser or an OAuth client sends it.
pub fn form_post(path: &'static str, form: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut request = Request::new(Full::new(Bytes::from(body)));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = http::Uri::from_static(path);
    request.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    request
}

/// A `POST /token` by the confidential client (`client_secret_basic`) with `form`.
pub fn token_request(form: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut request = form_post("/token", form);
    let authorization = mock_idp::clients::basic_authorization(CLIENT_ID, CLIENT_SECRET);
    if let Ok(value) = HeaderValue::from_str(&authorization) {
        request.headers_mut().insert(header::AUTHORIZATION, value);
    }
    request
}

pub fn authorization_code_request(code: &str) -> Request<Full<Bytes>> {
    token_request(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", CODE_VERIFIER),
    ])
}

pub fn refresh_token_request(refresh_token: &str) -> Request<Full<Bytes>> {
    token_request(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ])
}

pub fn token_exchange_request(subject_token: &str) -> Request<Full<Bytes>> {
    token_request(&[
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("subject_token", subject_token),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
    ])
}

pub fn client_credentials_request() -> Request<Full<Bytes>> {
    token_request(&[("grant_type", "client_credentials")])
}

/// Logs the test user in and returns the `Cookie` header value naming the new session.
pub async fn login(app: &App) -> Result<String> {
    let response = app
        .handle(form_post(
            "/login",
            &[("username", USERNAME), ("password", PASSWORD)],
        ))
        .await;
    ensure!(
        response.status() == StatusCode::OK,
        "login answered {}",
        response.status()
    );
    let set_cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .context("login set no cookie")?
        .to_str()?;
    let session = set_cookie
        .split(';')
        .next()
        .filter(|pair| pair.starts_with(mock_idp::SESSION_COOKIE))
        .context("login set another cookie than the session")?;
    Ok(session.to_owned())
}

/// Runs `/authorize` for the logged-in session `cookie` and returns the code it redirects with
/// (issued with the challenge of [`authorization_code_request`]'s verifier).
pub async fn authorization_code(app: &App, cookie: &str) -> Result<String> {
    let challenge = mock_idp::pkce_s256(CODE_VERIFIER);
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid profile email offline_access"),
            ("state", "bench-state"),
            ("nonce", "bench-nonce"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let mut request = Request::new(Full::new(Bytes::new()));
    *request.uri_mut() = format!("/authorize?{query}").parse()?;
    request
        .headers_mut()
        .insert(header::COOKIE, HeaderValue::from_str(cookie)?);
    let response = app.handle(request).await;
    ensure!(
        response.status() == StatusCode::FOUND,
        "/authorize answered {}",
        response.status()
    );
    let location = response
        .headers()
        .get(header::LOCATION)
        .context("/authorize redirected nowhere")?
        .to_str()?;
    let (_, query) = location
        .split_once('?')
        .context("the redirect has no query")?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "code")
        .map(|(_, code)| code.into_owned())
        .with_context(|| format!("no code in the redirect {location}"))
}

/// The JSON body of a successful token response; any other status is an error carrying the body.
pub async fn token_response_json(response: HttpResponse) -> Result<serde_json::Value> {
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if status != StatusCode::OK {
        bail!(
            "the token endpoint answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(serde_json::from_slice(&body)?)
}

/// The string member `name` of a token response.
pub fn json_string(json: &serde_json::Value, name: &str) -> Result<String> {
    json.get(name)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("the token response has no {name}"))
}

/// Which operation a [`RatioRow`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Sign,
    Validate,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::Sign => names::SIGN,
            Operation::Validate => names::VALIDATE,
        }
    }
}

/// One algorithm's sign or validate medians, read from criterion's output, in nanoseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct RatioRow {
    pub algorithm: String,
    pub operation: Operation,
    pub mock_idp_ns: f64,
    pub raw_ns: f64,
    /// Absent when that line was not run (a filtered `cargo bench`).
    pub raw_with_json_ns: Option<f64>,
    pub stock_ns: Option<f64>,
}

impl RatioRow {
    /// mock-idp's median over the raw primitive's: the figure the issue targets.
    pub fn ratio(&self) -> f64 {
        self.mock_idp_ns / self.raw_ns
    }

    pub fn meets_target(&self) -> bool {
        self.ratio() <= RATIO_TARGET
    }
}

/// Reads criterion's `<group>/<operation>/<line>/new/estimates.json` medians under
/// `criterion_dir` and returns, per benchmarked algorithm, its sign and validate rows.
/// Algorithms whose group is absent are skipped; a group missing mock-idp's or the raw line is
/// an error, as is finding no group at all.
pub fn ratio_report(criterion_dir: &Path) -> Result<Vec<RatioRow>> {
    let mut rows = Vec::new();
    for alg in ALGORITHMS {
        let group = criterion_dir.join(alg.as_str());
        if !group.is_dir() {
            continue;
        }
        for operation in [Operation::Sign, Operation::Validate] {
            let line = |name: &str| group.join(operation.name()).join(name);
            let optional = |name: &str| {
                let dir = line(name);
                dir.is_dir().then(|| median_ns(&dir)).transpose()
            };
            rows.push(RatioRow {
                algorithm: alg.as_str().to_owned(),
                operation,
                mock_idp_ns: median_ns(&line(names::MOCK_IDP))?,
                raw_ns: median_ns(&line(names::RAW))?,
                raw_with_json_ns: optional(names::RAW_WITH_JSON)?,
                stock_ns: optional(names::STOCK)?,
            });
        }
    }
    if rows.is_empty() {
        bail!(
            "no benchmark results under {} (run `cargo bench -p benches` first, with the same \
             CARGO_TARGET_DIR)",
            criterion_dir.display()
        );
    }
    Ok(rows)
}

/// The median point estimate, in nanoseconds, of the latest run of the benchmark in `dir`.
fn median_ns(dir: &Path) -> Result<f64> {
    #[derive(serde::Deserialize)]
    struct Estimates {
        median: Estimate,
    }
    #[derive(serde::Deserialize)]
    struct Estimate {
        point_estimate: f64,
    }
    let path = dir.join("new").join("estimates.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("could not read {}", path.display()))?;
    let estimates: Estimates = serde_json::from_str(&text)
        .with_context(|| format!("{} is not criterion's estimates", path.display()))?;
    let median = estimates.median.point_estimate;
    ensure!(
        median.is_finite() && median > 0.0,
        "{} has a median of {median}",
        path.display()
    );
    Ok(median)
}

/// Where criterion writes, as criterion itself decides: `$CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion`, else the workspace's `target/criterion`.
pub fn default_criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("criterion")
}

/// Formats nanoseconds the way criterion does: ns, µs or ms with four significant digits.
pub fn format_ns(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.3} ms", ns / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_estimate(root: &Path, bench: &str, median_ns: f64) {
        let dir = root.join(bench).join("new");
        std::fs::create_dir_all(&dir).unwrap();
        // The shape criterion 0.8 writes, slope and all, to prove extra members are ignored.
        let estimate = |value: f64| {
            serde_json::json!({
                "confidence_interval": {
                    "confidence_level": 0.95,
                    "lower_bound": value * 0.99,
                    "upper_bound": value * 1.01
                },
                "point_estimate": value,
                "standard_error": value * 0.005
            })
        };
        let estimates = serde_json::json!({
            "mean": estimate(median_ns * 1.02),
            "median": estimate(median_ns),
            "median_abs_dev": estimate(median_ns * 0.01),
            "slope": null,
            "std_dev": estimate(median_ns * 0.03),
        });
        std::fs::write(dir.join("estimates.json"), estimates.to_string()).unwrap();
    }

    #[test]
    fn ratios_are_mock_idp_median_over_raw_median_per_algorithm_and_operation() {
        let dir = tempfile::tempdir().unwrap();
        write_estimate(dir.path(), "RS256/sign/mock-idp", 1_100_000.0);
        write_estimate(dir.path(), "RS256/sign/raw", 1_000_000.0);
        write_estimate(dir.path(), "RS256/sign/jsonwebtoken-stock", 1_400_000.0);
        write_estimate(dir.path(), "RS256/validate/mock-idp", 30_000.0);
        write_estimate(dir.path(), "RS256/validate/raw", 20_000.0);
        write_estimate(dir.path(), "RS256/validate/raw+json", 22_000.0);
        write_estimate(dir.path(), "HS256/sign/mock-idp", 2_000.0);
        write_estimate(dir.path(), "HS256/sign/raw", 500.0);
        write_estimate(dir.path(), "HS256/validate/mock-idp", 3_000.0);
        write_estimate(dir.path(), "HS256/validate/raw", 600.0);

        let rows = ratio_report(dir.path()).unwrap();

        let summary: Vec<(&str, Operation, f64, bool)> = rows
            .iter()
            .map(|row| {
                (
                    row.algorithm.as_str(),
                    row.operation,
                    (row.ratio() * 1000.0).round() / 1000.0,
                    row.meets_target(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("RS256", Operation::Sign, 1.1, true),
                ("RS256", Operation::Validate, 1.5, false),
                ("HS256", Operation::Sign, 4.0, false),
                ("HS256", Operation::Validate, 5.0, false),
            ]
        );
        assert_eq!(rows[0].stock_ns, Some(1_400_000.0));
        assert_eq!(rows[0].raw_with_json_ns, None);
        assert_eq!(rows[1].raw_with_json_ns, Some(22_000.0));
    }

    #[test]
    fn a_ratio_exactly_at_the_target_meets_it() {
        let row = RatioRow {
            algorithm: "ES256".into(),
            operation: Operation::Sign,
            mock_idp_ns: 115.0,
            raw_ns: 100.0,
            raw_with_json_ns: None,
            stock_ns: None,
        };
        assert!(row.meets_target());
    }

    #[test]
    fn a_group_without_its_raw_line_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        write_estimate(dir.path(), "ES256/sign/mock-idp", 30_000.0);
        write_estimate(dir.path(), "ES256/validate/mock-idp", 60_000.0);
        write_estimate(dir.path(), "ES256/validate/raw", 55_000.0);
        let error = format!("{:#}", ratio_report(dir.path()).unwrap_err());
        assert!(
            error.contains("ES256/sign/raw/new/estimates.json"),
            "{error}"
        );
    }

    #[test]
    fn an_empty_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let error = ratio_report(dir.path()).unwrap_err().to_string();
        assert!(error.contains("no benchmark results"), "{error}");
    }

    #[test]
    fn malformed_estimates_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        for bench in ["EdDSA/sign/mock-idp", "EdDSA/validate/mock-idp"] {
            write_estimate(dir.path(), bench, 20_000.0);
        }
        write_estimate(dir.path(), "EdDSA/validate/raw", 20_000.0);
        let raw = dir.path().join("EdDSA/sign/raw/new");
        std::fs::create_dir_all(&raw).unwrap();
        std::fs::write(raw.join("estimates.json"), r#"{"mean": {}}"#).unwrap();
        let error = format!("{:#}", ratio_report(dir.path()).unwrap_err());
        assert!(error.contains("is not criterion's estimates"), "{error}");
    }

    #[test]
    fn every_algorithm_fixture_agrees_with_the_raw_primitives() {
        for alg in ALGORITHMS {
            let fixture = SigningFixture::new(alg).unwrap();
            let mut signature = Vec::new();
            let token = fixture.raw_encode(&fixture.claims, &mut signature).unwrap();
            // mock-idp accepts what the raw path signs, and the raw path accepts mock-idp's.
            assert_eq!(
                fixture.minter.verify_access(&token).unwrap(),
                fixture.claims
            );
            assert_eq!(fixture.raw_decode(&fixture.token).unwrap(), fixture.claims);
            // Deterministic signatures match byte for byte: the same input, the same key.
            if matches!(
                alg,
                SigningAlg::Rs256 | SigningAlg::EdDsa | SigningAlg::Hs256
            ) {
                assert_eq!(token, fixture.token, "{alg:?}");
            }
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn every_grant_request_succeeds_in_process() {
        let key = SigningKey::generate(SigningAlg::Rs256).unwrap();
        let app = App::with_key(mock_idp::Config::default(), ISSUER, key);
        let cookie = login(&app).await.unwrap();
        let code = authorization_code(&app, &cookie).await.unwrap();
        let tokens = token_response_json(app.handle(authorization_code_request(&code)).await)
            .await
            .unwrap();
        let access_token = json_string(&tokens, "access_token").unwrap();
        let mut refresh_token = json_string(&tokens, "refresh_token").unwrap();
        assert!(tokens.get("id_token").is_some());
        for _ in 0..2 {
            let refreshed =
                token_response_json(app.handle(refresh_token_request(&refresh_token)).await)
                    .await
                    .unwrap();
            refresh_token = json_string(&refreshed, "refresh_token").unwrap();
        }
        let exchanged =
            token_response_json(app.handle(token_exchange_request(&access_token)).await)
                .await
                .unwrap();
        assert_eq!(exchanged["issued_token_type"], ACCESS_TOKEN_TYPE);
        token_response_json(app.handle(client_credentials_request()).await)
            .await
            .unwrap();
    }
}
