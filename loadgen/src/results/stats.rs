//! Measurement during a run: HDR histograms per endpoint, status and error counts, check tallies.
//!
//! Every virtual user records into one of a few [`Recorder`] shards (one lock per shard, so the
//! lock is nearly never contended), and the shards are merged at the end and for the live
//! progress line. A recorder is allocated once before the run: recording a response only bumps
//! counters, so measuring costs no allocation per request.

use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};

use crate::results::timeline::Timeline;

/// Largest latency a histogram tracks (1 hour, in microseconds); larger values saturate.
const HISTOGRAM_HIGHEST_US: u64 = 3_600_000_000;
/// Three significant figures: 0.1 % resolution, the usual choice for latency.
const HISTOGRAM_SIGNIFICANT_FIGURES: u8 = 3;

/// A fresh latency histogram in microseconds with the bounds every recorder uses.
pub fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_HIGHEST_US, HISTOGRAM_SIGNIFICANT_FIGURES)
        .expect("constant histogram bounds are valid")
}

/// The endpoints a scenario calls; each has its own histograms in the result. Names (`as_str`,
/// `from_name`) and the list of all (`iter`) come from the variants themselves (strum).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    strum::EnumIter,
    strum::EnumCount,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[strum(serialize_all = "snake_case")]
pub enum Endpoint {
    /// `GET /authorize`.
    Authorize,
    /// `POST /token`.
    Token,
    /// `GET /userinfo`.
    Userinfo,
    /// `GET /.well-known/openid-configuration`.
    Discovery,
    /// `POST` to the introspection endpoint (RFC 7662), checking an opaque access token. It is
    /// counted apart: the gate's latency covers the scenario's own requests.
    Introspection,
}

/// Name lookups shared by the closed sets of names that appear in result files.
macro_rules! result_names {
    ($name:ident) => {
        impl $name {
            /// Every variant, in report order.
            pub fn all() -> impl Iterator<Item = $name> {
                <$name as strum::IntoEnumIterator>::iter()
            }

            /// Name used in results and reports.
            pub fn as_str(self) -> &'static str {
                self.into()
            }

            /// The variant with this result name.
            pub fn from_name(name: &str) -> Option<$name> {
                name.parse().ok()
            }
        }
    };
}

result_names!(Endpoint);
result_names!(TransportErrorKind);
result_names!(Check);

impl Endpoint {
    fn slot(self) -> usize {
        self as usize
    }

    /// Whether the scenario calls it for itself (not to check an answer): only those count in
    /// the overall latency the gate judges.
    pub fn is_measured_by_the_gate(self) -> bool {
        !matches!(self, Endpoint::Introspection)
    }
}

/// Kinds of transport failure, counted apart from HTTP status codes.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::EnumIter,
    strum::EnumCount,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[strum(serialize_all = "snake_case")]
pub enum TransportErrorKind {
    /// The TCP connection could not be opened.
    Connect,
    /// No complete response within the request timeout.
    Timeout,
    /// The connection was closed or reset before the response was complete.
    Reset,
    /// The peer sent something that is not valid HTTP/1.1.
    Protocol,
    /// The response body was larger than loadgen reads (1 MiB by default), declared or sent.
    BodyTooLarge,
}

impl TransportErrorKind {
    /// Whether the request may have reached the provider and been acted on: every kind but a
    /// connection that never opened. A request that may have arrived leaves what it asked for
    /// (a rotation) in doubt.
    pub fn request_may_have_arrived(self) -> bool {
        match self {
            TransportErrorKind::Connect => false,
            TransportErrorKind::Timeout
            | TransportErrorKind::Reset
            | TransportErrorKind::Protocol
            | TransportErrorKind::BodyTooLarge => true,
        }
    }
}

/// Every check a scenario makes on an answer that claimed success; each is tallied pass/fail.
/// An answer with an unexpected status is a failed request, not a failed check.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::EnumIter,
    strum::EnumCount,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[strum(serialize_all = "snake_case")]
pub enum Check {
    /// The body is JSON and holds the fields the response must have.
    RequiredFields,
    /// `token_type` is `Bearer` (case-insensitive, RFC 6749 section 7.1).
    TokenTypeBearer,
    /// The response carries a refresh token that differs from the one sent.
    RefreshTokenRotated,
    /// The access token's signature verifies against the JWKS, with `iss`, `aud` and `exp`.
    AccessTokenVerifies,
    /// The provider's introspection (RFC 7662) says the opaque access token is active.
    AccessTokenActive,
    /// The ID token's signature verifies against the JWKS, with `iss`, `aud` = client and `exp`.
    IdTokenVerifies,
    /// The ID token's `nonce` is the one sent in the authorization request.
    IdTokenNonce,
    /// The ID token's `at_hash`, when it carries one, is the left half of the hash (the one its
    /// `alg` names) of the access token issued with it (OpenID Connect Core 3.1.3.6).
    IdTokenAtHash,
    /// The ID token's `azp`, when present, is our client; it is present when `aud` names several
    /// audiences (OpenID Connect Core 3.1.3.7).
    IdTokenAzp,
    /// The ID token's `iat` is present, a number, and not in the future beyond 60 s of skew.
    IdTokenIat,
    /// The ID token's `auth_time`, when present, is a number not in the future beyond the skew.
    IdTokenAuthTime,
    /// The `sub` of the ID token and of a JWT access token is the subject the seeds recorded for
    /// the user who signed in (counted when the seeds record one and a token names a subject).
    TokenSubject,
    /// `/authorize` redirected to the redirect URI with a `code`.
    AuthorizationCodeIssued,
    /// `state` came back unchanged on the redirect.
    StateUnchanged,
    /// The redirect's `iss` is exactly the issuer, and present when discovery sets
    /// `authorization_response_iss_parameter_supported` (RFC 9207). Counted on every redirect to
    /// the client, passed or failed.
    AuthorizationIssuer,
    /// `/userinfo` answered for the same subject as the ID token.
    UserinfoSubject,
    /// A discovery document names exactly the issuer the run targeted (OpenID Connect Discovery
    /// 4.3): judged on every document of the `discovery` scenario; the document fetched before a
    /// run is held to it too, and a run whose target is not the issuer is refused.
    DiscoveryIssuer,
    /// Replaying a rotated-away refresh token is refused with `invalid_grant`.
    ReplayRejected,
    /// After a replay, the family's newest refresh token is refused too.
    FamilyRevoked,
}

/// A set of checks (the ones turned off for a run), looked up without hashing on every check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckSet {
    members: [bool; <Check as strum::EnumCount>::COUNT],
}

impl CheckSet {
    /// Adds `check`.
    pub fn insert(&mut self, check: Check) {
        self.members[check as usize] = true;
    }

    /// Whether `check` is in the set.
    pub fn contains(&self, check: Check) -> bool {
        self.members[check as usize]
    }

    /// The names of the checks in the set.
    pub fn names(&self) -> Vec<String> {
        Check::all()
            .filter(|check| self.contains(*check))
            .map(|check| check.as_str().to_owned())
            .collect()
    }
}

impl FromIterator<Check> for CheckSet {
    fn from_iter<I: IntoIterator<Item = Check>>(checks: I) -> Self {
        let mut set = CheckSet::default();
        for check in checks {
            set.insert(check);
        }
        set
    }
}

/// Passed and failed count of one check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckTally {
    /// Responses on which the check held.
    pub passed: u64,
    /// Responses on which it did not.
    pub failed: u64,
}

/// Status codes are counted in a flat array indexed by `code - 100`; others land in `other`.
const STATUS_SLOTS: usize = 500;

/// What one endpoint saw during a run (or a part of one).
#[derive(Debug, Clone)]
pub struct EndpointRecorder {
    /// Intended start (or previous step's end) to last byte, microseconds.
    pub latency: Histogram<u64>,
    /// Actual send to last byte, microseconds.
    pub service_time: Histogram<u64>,
    status_counts: Box<[u64; STATUS_SLOTS]>,
    other_status: u64,
    errors: [u64; <TransportErrorKind as strum::EnumCount>::COUNT],
}

impl EndpointRecorder {
    fn new() -> Self {
        Self {
            latency: new_latency_histogram(),
            service_time: new_latency_histogram(),
            status_counts: Box::new([0; STATUS_SLOTS]),
            other_status: 0,
            errors: [0; <TransportErrorKind as strum::EnumCount>::COUNT],
        }
    }

    /// Status codes seen, with their counts, in ascending order. Codes outside 100-599 are
    /// reported as 0.
    pub fn statuses(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        let known = self
            .status_counts
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(slot, count)| (slot as u16 + 100, *count));
        let other = (self.other_status > 0).then_some((0, self.other_status));
        other.into_iter().chain(known)
    }

    /// Transport errors of one kind.
    pub fn errors(&self, kind: TransportErrorKind) -> u64 {
        self.errors[kind as usize]
    }

    /// Requests that got an answer or failed in transport.
    pub fn requests(&self) -> u64 {
        self.status_counts.iter().sum::<u64>() + self.other_status + self.errors.iter().sum::<u64>()
    }

    fn merge(&mut self, other: &EndpointRecorder) {
        add_histogram(&mut self.latency, &other.latency);
        add_histogram(&mut self.service_time, &other.service_time);
        for (mine, theirs) in self
            .status_counts
            .iter_mut()
            .zip(other.status_counts.iter())
        {
            *mine += theirs;
        }
        self.other_status += other.other_status;
        for (mine, theirs) in self.errors.iter_mut().zip(other.errors.iter()) {
            *mine += theirs;
        }
    }
}

/// Adds `source` into `target`, widening `target` if the source holds larger values.
pub fn add_histogram(target: &mut Histogram<u64>, source: &Histogram<u64>) {
    if target.add(source).is_err() {
        target.auto(true);
        // With auto-resize on, adding can only fail on counter overflow, which u64 counts
        // of requests cannot reach.
        let _ = target.add(source);
    }
}

/// How one request ended, as the recorder needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// A complete response with this status code.
    Status(u16),
    /// No complete response.
    Transport(TransportErrorKind),
}

/// Everything one shard of virtual users measured.
#[derive(Debug, Clone)]
pub struct Recorder {
    endpoints: [EndpointRecorder; <Endpoint as strum::EnumCount>::COUNT],
    /// Intended start to end of the whole iteration, microseconds.
    pub iteration_duration: Histogram<u64>,
    checks: [CheckTally; <Check as strum::EnumCount>::COUNT],
    /// Iterations that ran and whose every step succeeded.
    pub iterations_succeeded: u64,
    /// Iterations that ran and had at least one failed step.
    pub iterations_failed: u64,
    /// The same, second by second of the schedule.
    pub timeline: Timeline,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

fn to_micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl Recorder {
    /// An empty recorder; allocates all histograms up front.
    pub fn new() -> Self {
        Self {
            endpoints: std::array::from_fn(|_| EndpointRecorder::new()),
            iteration_duration: new_latency_histogram(),
            checks: [CheckTally::default(); <Check as strum::EnumCount>::COUNT],
            iterations_succeeded: 0,
            iterations_failed: 0,
            timeline: Timeline::default(),
        }
    }

    /// Records one request.
    pub fn record_request(
        &mut self,
        endpoint: Endpoint,
        outcome: RequestOutcome,
        latency: Duration,
        service_time: Duration,
    ) {
        let recorder = &mut self.endpoints[endpoint.slot()];
        recorder.latency.saturating_record(to_micros(latency));
        recorder
            .service_time
            .saturating_record(to_micros(service_time));
        match outcome {
            RequestOutcome::Status(code) => {
                match usize::from(code)
                    .checked_sub(100)
                    .filter(|slot| *slot < STATUS_SLOTS)
                {
                    Some(slot) => recorder.status_counts[slot] += 1,
                    None => recorder.other_status += 1,
                }
            }
            RequestOutcome::Transport(kind) => recorder.errors[kind as usize] += 1,
        }
    }

    /// Tallies one check.
    pub fn record_check(&mut self, check: Check, passed: bool) {
        let tally = &mut self.checks[check as usize];
        if passed {
            tally.passed += 1;
        } else {
            tally.failed += 1;
        }
    }

    /// Records the end of an iteration that ran.
    pub fn record_iteration(&mut self, succeeded: bool, duration: Duration) {
        self.iteration_duration
            .saturating_record(to_micros(duration));
        if succeeded {
            self.iterations_succeeded += 1;
        } else {
            self.iterations_failed += 1;
        }
    }

    /// Records an iteration dropped for want of a free VU at `waited`, how long it waited: it
    /// never started, so the user it stands for waited at least that long (wrk2's rule). Its
    /// count is the engine's; only its latency is recorded here.
    pub fn record_dropped_iteration(&mut self, waited: Duration) {
        self.iteration_duration.saturating_record(to_micros(waited));
    }

    /// What one endpoint saw.
    pub fn endpoint(&self, endpoint: Endpoint) -> &EndpointRecorder {
        &self.endpoints[endpoint.slot()]
    }

    /// Tally of one check.
    pub fn check(&self, check: Check) -> CheckTally {
        self.checks[check as usize]
    }

    /// Latency over all endpoints (the sum of the per-endpoint histograms).
    pub fn overall_latency(&self) -> Histogram<u64> {
        let mut total = new_latency_histogram();
        for endpoint in Endpoint::all().filter(|endpoint| endpoint.is_measured_by_the_gate()) {
            add_histogram(&mut total, &self.endpoints[endpoint.slot()].latency);
        }
        total
    }

    /// Service time over all endpoints.
    pub fn overall_service_time(&self) -> Histogram<u64> {
        let mut total = new_latency_histogram();
        for endpoint in Endpoint::all().filter(|endpoint| endpoint.is_measured_by_the_gate()) {
            add_histogram(&mut total, &self.endpoints[endpoint.slot()].service_time);
        }
        total
    }

    /// Adds `count` responses with status `code` (used when rebuilding a recorder from results).
    pub(crate) fn add_status_count(&mut self, endpoint: Endpoint, code: u16, count: u64) {
        let recorder = &mut self.endpoints[endpoint.slot()];
        match usize::from(code)
            .checked_sub(100)
            .filter(|slot| *slot < STATUS_SLOTS)
        {
            Some(slot) => recorder.status_counts[slot] += count,
            None => recorder.other_status += count,
        }
    }

    /// Adds `count` transport errors of one kind.
    pub(crate) fn add_error_count(
        &mut self,
        endpoint: Endpoint,
        kind: TransportErrorKind,
        count: u64,
    ) {
        self.endpoints[endpoint.slot()].errors[kind as usize] += count;
    }

    /// Adds a check tally.
    pub(crate) fn add_check_tally(&mut self, check: Check, tally: CheckTally) {
        let mine = &mut self.checks[check as usize];
        mine.passed += tally.passed;
        mine.failed += tally.failed;
    }

    /// Mutable access to one endpoint's histograms.
    pub(crate) fn endpoint_mut(&mut self, endpoint: Endpoint) -> &mut EndpointRecorder {
        &mut self.endpoints[endpoint.slot()]
    }

    /// Adds another recorder's measurements into this one.
    pub fn merge(&mut self, other: &Recorder) {
        for (mine, theirs) in self.endpoints.iter_mut().zip(other.endpoints.iter()) {
            mine.merge(theirs);
        }
        add_histogram(&mut self.iteration_duration, &other.iteration_duration);
        for (mine, theirs) in self.checks.iter_mut().zip(other.checks.iter()) {
            mine.passed += theirs.passed;
            mine.failed += theirs.failed;
        }
        self.iterations_succeeded += other.iterations_succeeded;
        self.iterations_failed += other.iterations_failed;
        self.timeline.merge(&other.timeline);
    }
}

/// The recorder shards of a run; virtual user `n` records into shard `n % shards`.
#[derive(Debug)]
pub struct ShardedRecorder {
    shards: Vec<Mutex<Recorder>>,
}

impl ShardedRecorder {
    /// `shards` recorders (at least one).
    pub fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1))
                .map(|_| Mutex::new(Recorder::new()))
                .collect(),
        }
    }

    /// Runs `record` on the shard of virtual user `vu`.
    pub fn with_shard<R>(&self, vu: usize, record: impl FnOnce(&mut Recorder) -> R) -> R {
        let shard = &self.shards[vu % self.shards.len()];
        // A poisoned shard only means another VU panicked mid-record; the counters are still
        // usable, so keep measuring.
        let mut guard = shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        record(&mut guard)
    }

    /// All shards merged into one recorder.
    pub fn merged(&self) -> Recorder {
        let mut total = Recorder::new();
        for shard in &self.shards {
            let guard = shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            total.merge(&guard);
        }
        total
    }

    /// Overall latency so far, for the progress line; cheaper than [`Self::merged`].
    pub fn latency_so_far(&self) -> Histogram<u64> {
        let mut total = new_latency_histogram();
        for shard in &self.shards {
            let guard = shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for endpoint in &guard.endpoints {
                add_histogram(&mut total, &endpoint.latency);
            }
        }
        total
    }
}

/// Why a serialized histogram could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum HistogramCodecError {
    /// The text is not base64.
    #[error("histogram is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// The bytes are not an HdrHistogram V2 encoding.
    #[error("histogram is not a valid HdrHistogram V2 encoding: {0}")]
    Decode(String),
    /// Serializing failed (cannot happen with in-memory buffers, kept for completeness).
    #[error("histogram could not be serialized: {0}")]
    Encode(String),
}

/// Serializes a histogram as HdrHistogram V2 (uncompressed), then base64, as other HDR tools read.
pub fn encode_histogram(histogram: &Histogram<u64>) -> Result<String, HistogramCodecError> {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(histogram, &mut bytes)
        .map_err(|error| HistogramCodecError::Encode(format!("{error:?}")))?;
    Ok(BASE64.encode(bytes))
}

/// Reads a histogram written by [`encode_histogram`].
pub fn decode_histogram(encoded: &str) -> Result<Histogram<u64>, HistogramCodecError> {
    let bytes = BASE64.decode(encoded.trim())?;
    let mut histogram: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|error| HistogramCodecError::Decode(format!("{error:?}")))?;
    histogram.auto(true);
    Ok(histogram)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_round_trips_through_v2_base64() {
        let mut histogram = new_latency_histogram();
        for value in [1, 10, 999, 12_345, 2_000_000] {
            histogram.record(value).unwrap();
        }
        let text = encode_histogram(&histogram).unwrap();
        let back = decode_histogram(&text).unwrap();
        assert_eq!(back.len(), 5);
        assert_eq!(back.max(), histogram.max());
        assert_eq!(
            back.value_at_quantile(0.5),
            histogram.value_at_quantile(0.5)
        );
        assert!(decode_histogram("not base64!").is_err());
        assert!(decode_histogram("AAAA").is_err());
    }

    #[test]
    fn recorder_counts_and_merges() {
        let mut first = Recorder::new();
        first.record_request(
            Endpoint::Token,
            RequestOutcome::Status(200),
            Duration::from_millis(5),
            Duration::from_millis(4),
        );
        first.record_request(
            Endpoint::Token,
            RequestOutcome::Status(401),
            Duration::from_millis(6),
            Duration::from_millis(6),
        );
        first.record_check(Check::RequiredFields, true);
        first.record_iteration(true, Duration::from_millis(5));
        let mut second = Recorder::new();
        second.record_request(
            Endpoint::Token,
            RequestOutcome::Transport(TransportErrorKind::Timeout),
            Duration::from_secs(5),
            Duration::from_secs(5),
        );
        second.record_request(
            Endpoint::Userinfo,
            RequestOutcome::Status(999),
            Duration::from_millis(1),
            Duration::from_millis(1),
        );
        second.record_check(Check::RequiredFields, false);
        second.record_iteration(false, Duration::from_secs(5));

        first.merge(&second);
        let token = first.endpoint(Endpoint::Token);
        assert_eq!(
            token.statuses().collect::<Vec<_>>(),
            vec![(200, 1), (401, 1)]
        );
        assert_eq!(token.errors(TransportErrorKind::Timeout), 1);
        assert_eq!(token.requests(), 3);
        assert_eq!(token.latency.len(), 3);
        assert_eq!(
            first
                .endpoint(Endpoint::Userinfo)
                .statuses()
                .collect::<Vec<_>>(),
            vec![(0, 1)]
        );
        assert_eq!(
            first.check(Check::RequiredFields),
            CheckTally {
                passed: 1,
                failed: 1
            }
        );
        assert_eq!(first.iterations_succeeded, 1);
        assert_eq!(first.iterations_failed, 1);
        assert_eq!(first.overall_latency().len(), 4);
    }

    #[test]
    fn shards_merge_to_the_total() {
        let sharded = ShardedRecorder::new(3);
        for vu in 0..10 {
            sharded.with_shard(vu, |recorder| {
                recorder.record_request(
                    Endpoint::Discovery,
                    RequestOutcome::Status(200),
                    Duration::from_millis(vu as u64 + 1),
                    Duration::from_millis(1),
                );
            });
        }
        assert_eq!(
            sharded.merged().endpoint(Endpoint::Discovery).requests(),
            10
        );
        assert_eq!(sharded.latency_so_far().len(), 10);
    }
}
