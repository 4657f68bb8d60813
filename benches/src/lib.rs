//! The mock-idp benchmarks' shared code, one module per group: [`signing_fixture`] (sign and
//! validate per algorithm beside the raw aws-lc-rs primitive), [`requests`] (whole token requests
//! through `App::handle`), [`ratios`] (criterion's medians read back as mock-idp / raw ratios) and
//! [`iteration_costs`] (loadgen's client side of an iteration over its signature checks).

pub mod iteration_costs;
pub mod ratios;
pub mod requests;
pub mod signing_fixture;

use mock_idp::keys::SigningAlg;

pub use iteration_costs::{IterationRow, iteration_names, iteration_report};
pub use ratios::{
    BenchRow, RATIO_TARGET, RatioRow, default_criterion_dir, format_ns, ratio_report,
};
pub use requests::{
    authorization_code, authorization_code_request, client_credentials_request, json_string, login,
    refresh_token_request, token_exchange_request, token_response_json,
};
pub use signing_fixture::{RawSigner, RawVerifier, SigningFixture, realistic_access_claims};

/// The issuer every fixture uses; also the access tokens' audience.
pub const ISSUER: &str = "http://bench.test";

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
