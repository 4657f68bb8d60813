//! Measurement during a run: HDR histograms per endpoint, status and error counts, check tallies.
//!
//! Every virtual user records into one of a few [`Recorder`] shards (one lock per shard, so the
//! lock is nearly never contended), and the shards are merged at the end and for the live
//! progress line. A recorder is allocated once before the run: recording a response only bumps
//! counters, so measuring costs no allocation per request.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::results::histogram::{add_histogram, new_latency_histogram, record_micros};
use crate::results::names::{Check, Endpoint, RequestOutcome, TransportErrorKind};
use crate::results::timeline::Timeline;

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

    /// Counts one request.
    fn record(&mut self, outcome: RequestOutcome, latency: Duration, service_time: Duration) {
        record_micros(&mut self.latency, latency);
        record_micros(&mut self.service_time, service_time);
        match outcome {
            RequestOutcome::Status(code) => {
                match usize::from(code)
                    .checked_sub(100)
                    .filter(|slot| *slot < STATUS_SLOTS)
                {
                    Some(slot) => self.status_counts[slot] += 1,
                    None => self.other_status += 1,
                }
            }
            RequestOutcome::Transport(kind) => self.errors[kind as usize] += 1,
        }
    }

    /// Adds `count` responses with status `code` (used when rebuilding a recorder from results).
    pub(crate) fn add_status_count(&mut self, code: u16, count: u64) {
        match usize::from(code)
            .checked_sub(100)
            .filter(|slot| *slot < STATUS_SLOTS)
        {
            Some(slot) => self.status_counts[slot] += count,
            None => self.other_status += count,
        }
    }

    /// Adds `count` transport errors of one kind.
    pub(crate) fn add_error_count(&mut self, kind: TransportErrorKind, count: u64) {
        self.errors[kind as usize] += count;
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
/// Everything one shard of virtual users measured.
#[derive(Debug, Clone)]
pub struct Recorder {
    endpoints: [EndpointRecorder; <Endpoint as strum::EnumCount>::COUNT],
    /// The `api` scenario's requests again, by route (`api GET /path`): a breakdown of the
    /// `api` endpoint, not counted a second time in the totals.
    routes: BTreeMap<String, EndpointRecorder>,
    /// Intended start to end of the whole iteration, microseconds.
    pub iteration_duration: Histogram<u64>,
    /// Intended start to the moment the iteration's virtual user began it, microseconds: the
    /// generator's own lag, inside every latency figure, never the provider's.
    pub generator_lag: Histogram<u64>,
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

impl Recorder {
    /// An empty recorder; allocates all histograms up front.
    pub fn new() -> Self {
        Self {
            endpoints: std::array::from_fn(|_| EndpointRecorder::new()),
            routes: BTreeMap::new(),
            iteration_duration: new_latency_histogram(),
            generator_lag: new_latency_histogram(),
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
        self.endpoints[endpoint.slot()].record(outcome, latency, service_time);
    }

    /// Records one request of the `api` scenario on `route` too (its `api` request is recorded
    /// by [`Self::record_request`]).
    pub fn record_route_request(
        &mut self,
        route: &str,
        outcome: RequestOutcome,
        latency: Duration,
        service_time: Duration,
    ) {
        // The route's name is allocated once, on its first request.
        match self.routes.get_mut(route) {
            Some(recorder) => recorder.record(outcome, latency, service_time),
            None => self.route_mut(route).record(outcome, latency, service_time),
        }
    }

    /// The routes' breakdowns, by name.
    pub fn routes(&self) -> impl Iterator<Item = (&str, &EndpointRecorder)> {
        self.routes
            .iter()
            .map(|(name, recorder)| (name.as_str(), recorder))
    }

    /// Mutable access to a route's breakdown (rebuilding a recorder from results).
    pub(crate) fn route_mut(&mut self, route: &str) -> &mut EndpointRecorder {
        self.routes
            .entry(route.to_owned())
            .or_insert_with(EndpointRecorder::new)
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
        record_micros(&mut self.iteration_duration, duration);
        if succeeded {
            self.iterations_succeeded += 1;
        } else {
            self.iterations_failed += 1;
        }
    }

    /// Records how late after its intended start an iteration began.
    pub fn record_generator_lag(&mut self, lag: Duration) {
        record_micros(&mut self.generator_lag, lag);
    }

    /// Records an iteration dropped for want of a free VU at `waited`, how long it waited: it
    /// never started, so the user it stands for waited at least that long (wrk2's rule). Its
    /// count is the engine's; only its latency is recorded here.
    pub fn record_dropped_iteration(&mut self, waited: Duration) {
        record_micros(&mut self.iteration_duration, waited);
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
        for (route, theirs) in &other.routes {
            self.route_mut(route).merge(theirs);
        }
        add_histogram(&mut self.iteration_duration, &other.iteration_duration);
        add_histogram(&mut self.generator_lag, &other.generator_lag);
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

#[cfg(test)]
mod tests {
    use super::*;

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
