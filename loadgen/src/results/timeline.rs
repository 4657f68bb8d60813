//! The run second by second: for each one-second interval of the schedule, the iterations due,
//! started, dropped, succeeded and failed, the requests by status and transport error, and the
//! iterations' latency as an HDR histogram, so the shards of a run still merge exactly and a
//! report can show when latency rose or errors came in a burst.
//!
//! Everything is filed under the second its iteration was *due* (its intended start), not the
//! second it ended: a stall shows where the schedule met it, and shards that started together
//! file the same iteration numbers under the same seconds.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::results::histogram::{
    HistogramCodecError, add_histogram, decode_histogram, encode_histogram, record_micros,
};
use crate::results::names::{RequestOutcome, TransportErrorKind};

/// Length of one interval.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// The most intervals a run keeps (a day): a longer run files its tail in the last one rather
/// than growing without bound.
const MAX_INTERVALS: usize = 86_400;

/// Two significant figures (1 % resolution) are enough for a plot over time. The histogram
/// grows with the values it sees: a second whose iterations took milliseconds holds about 8 KB,
/// one with a dropped iteration at a 5 s timeout about 17 KB, where fixed bounds up to an hour
/// would take 27 KB for every second of the run.
fn new_interval_histogram() -> Histogram<u64> {
    Histogram::new(2).expect("two significant figures are valid")
}

/// What one second of the schedule saw.
#[derive(Debug, Clone)]
pub struct Interval {
    /// Iterations due in this second.
    pub scheduled: u64,
    /// Iterations handed to a virtual user.
    pub started: u64,
    /// Iterations that could not start within the timeout.
    pub dropped: u64,
    /// Iterations that ran and succeeded.
    pub succeeded: u64,
    /// Iterations that ran and failed.
    pub failed: u64,
    statuses: BTreeMap<u16, u64>,
    errors: [u64; <TransportErrorKind as strum::EnumCount>::COUNT],
    /// Iteration latency (intended start to end; a dropped one at the timeout), microseconds.
    pub iteration_duration: Histogram<u64>,
    /// How late after their intended start the iterations began, microseconds.
    pub generator_lag: Histogram<u64>,
}

impl Interval {
    fn new() -> Self {
        Self {
            scheduled: 0,
            started: 0,
            dropped: 0,
            succeeded: 0,
            failed: 0,
            statuses: BTreeMap::new(),
            errors: [0; <TransportErrorKind as strum::EnumCount>::COUNT],
            iteration_duration: new_interval_histogram(),
            generator_lag: new_interval_histogram(),
        }
    }

    fn merge(&mut self, other: &Interval) {
        self.scheduled += other.scheduled;
        self.started += other.started;
        self.dropped += other.dropped;
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        for (status, count) in &other.statuses {
            *self.statuses.entry(*status).or_default() += count;
        }
        for (mine, theirs) in self.errors.iter_mut().zip(other.errors) {
            *mine += theirs;
        }
        add_histogram(&mut self.iteration_duration, &other.iteration_duration);
        add_histogram(&mut self.generator_lag, &other.generator_lag);
    }
}

/// The intervals of one recorder, grown as the schedule reaches them.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    intervals: Vec<Interval>,
}

impl Timeline {
    /// The interval of an iteration due `offset` after the start.
    pub fn interval_of(offset: Duration) -> u32 {
        u32::try_from(offset.as_secs()).unwrap_or(u32::MAX)
    }

    fn at(&mut self, interval: u32) -> &mut Interval {
        let index = (interval as usize).min(MAX_INTERVALS - 1);
        if self.intervals.len() <= index {
            self.intervals.resize_with(index + 1, Interval::new);
        }
        &mut self.intervals[index]
    }

    /// The intervals, from the start.
    pub fn intervals(&self) -> &[Interval] {
        &self.intervals
    }

    /// An iteration fell due.
    pub fn record_due(&mut self, interval: u32) {
        self.at(interval).scheduled += 1;
    }

    /// An iteration was handed to a virtual user.
    pub fn record_started(&mut self, interval: u32) {
        self.at(interval).started += 1;
    }

    /// An iteration was dropped after waiting `waited` for a virtual user.
    pub fn record_dropped(&mut self, interval: u32, waited: Duration) {
        let slot = self.at(interval);
        slot.dropped += 1;
        record_micros(&mut slot.iteration_duration, waited);
    }

    /// A request of an iteration due in `interval` ended.
    pub fn record_request(&mut self, interval: u32, outcome: RequestOutcome) {
        let slot = self.at(interval);
        match outcome {
            RequestOutcome::Status(status) => *slot.statuses.entry(status).or_default() += 1,
            RequestOutcome::Transport(kind) => slot.errors[kind as usize] += 1,
        }
    }

    /// An iteration due in `interval` ended after `duration`.
    pub fn record_iteration(&mut self, interval: u32, succeeded: bool, duration: Duration) {
        let slot = self.at(interval);
        if succeeded {
            slot.succeeded += 1;
        } else {
            slot.failed += 1;
        }
        record_micros(&mut slot.iteration_duration, duration);
    }

    /// An iteration due in `interval` began `lag` after its intended start.
    pub fn record_generator_lag(&mut self, interval: u32, lag: Duration) {
        record_micros(&mut self.at(interval).generator_lag, lag);
    }

    /// Adds another timeline's intervals into this one's, second by second.
    pub fn merge(&mut self, other: &Timeline) {
        for (index, theirs) in other.intervals.iter().enumerate() {
            let interval = u32::try_from(index).unwrap_or(u32::MAX);
            self.at(interval).merge(theirs);
        }
    }

    /// The timeline as the result file keeps it.
    pub fn report(&self) -> Result<TimelineReport, HistogramCodecError> {
        let intervals = self
            .intervals
            .iter()
            .enumerate()
            .map(|(index, interval)| {
                let histogram = &interval.iteration_duration;
                let millis = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
                let measured = !histogram.is_empty();
                let lag = &interval.generator_lag;
                let lagged = !lag.is_empty();
                Ok(IntervalReport {
                    offset_s: index as u64,
                    scheduled: interval.scheduled,
                    started: interval.started,
                    dropped: interval.dropped,
                    succeeded: interval.succeeded,
                    failed: interval.failed,
                    by_status: interval
                        .statuses
                        .iter()
                        .map(|(status, count)| (status.to_string(), *count))
                        .collect(),
                    transport_errors: TransportErrorKind::all()
                        .filter(|kind| interval.errors[*kind as usize] > 0)
                        .map(|kind| (kind.as_str().to_owned(), interval.errors[kind as usize]))
                        .collect(),
                    p50_ms: measured.then(|| millis(0.50)),
                    p95_ms: measured.then(|| millis(0.95)),
                    p99_ms: measured.then(|| millis(0.99)),
                    histogram: encode_histogram(histogram)?,
                    generator_lag_p99_ms: lagged
                        .then(|| lag.value_at_quantile(0.99) as f64 / 1000.0),
                    generator_lag_histogram: if lagged {
                        Some(encode_histogram(lag)?)
                    } else {
                        None
                    },
                })
            })
            .collect::<Result<_, HistogramCodecError>>()?;
        Ok(TimelineReport {
            interval_s: INTERVAL.as_secs(),
            intervals,
        })
    }

    /// Rebuilds the timeline of a result, for merging.
    pub fn from_report(report: &TimelineReport) -> Result<Self, HistogramCodecError> {
        let mut timeline = Timeline::default();
        for reported in &report.intervals {
            let slot = timeline.at(u32::try_from(reported.offset_s).unwrap_or(u32::MAX));
            slot.scheduled += reported.scheduled;
            slot.started += reported.started;
            slot.dropped += reported.dropped;
            slot.succeeded += reported.succeeded;
            slot.failed += reported.failed;
            for (status, count) in &reported.by_status {
                if let Ok(status) = status.parse::<u16>() {
                    *slot.statuses.entry(status).or_default() += count;
                }
            }
            for (kind, count) in &reported.transport_errors {
                if let Some(kind) = TransportErrorKind::from_name(kind) {
                    slot.errors[kind as usize] += count;
                }
            }
            add_histogram(
                &mut slot.iteration_duration,
                &decode_histogram(&reported.histogram)?,
            );
            if let Some(encoded) = &reported.generator_lag_histogram {
                add_histogram(&mut slot.generator_lag, &decode_histogram(encoded)?);
            }
        }
        Ok(timeline)
    }
}

/// The run second by second, as the result file keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TimelineReport {
    /// Length of each interval in seconds.
    pub interval_s: u64,
    /// From the start of the schedule, one per interval.
    pub intervals: Vec<IntervalReport>,
}

/// One interval of the schedule: every figure is of the iterations due in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IntervalReport {
    /// Seconds from the start of the schedule to the start of the interval.
    pub offset_s: u64,
    /// Iterations due: the target rate.
    pub scheduled: u64,
    /// Iterations started: the achieved rate.
    pub started: u64,
    /// Iterations that could not start within the timeout.
    pub dropped: u64,
    /// Iterations that ran and succeeded.
    pub succeeded: u64,
    /// Iterations that ran and failed.
    pub failed: u64,
    /// Responses by status code.
    pub by_status: BTreeMap<String, u64>,
    /// Requests without a complete response, by kind (only kinds seen).
    pub transport_errors: BTreeMap<String, u64>,
    /// Iteration latency percentiles in ms (1 % resolution); `null` when nothing was measured.
    pub p50_ms: Option<f64>,
    /// See `p50_ms`.
    pub p95_ms: Option<f64>,
    /// See `p50_ms`.
    pub p99_ms: Option<f64>,
    /// The iteration-latency histogram of the interval (HdrHistogram V2, base64), for merging.
    pub histogram: String,
    /// The p99 of how late the interval's iterations began after their intended start (the
    /// generator's own lag), ms; absent when none began or in results before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_lag_p99_ms: Option<f64>,
    /// Its histogram (HdrHistogram V2, base64), for merging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_lag_histogram: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(offsets_ms: &[u64], status: u16) -> Timeline {
        let mut timeline = Timeline::default();
        for offset in offsets_ms {
            let interval = Timeline::interval_of(Duration::from_millis(*offset));
            timeline.record_due(interval);
            timeline.record_started(interval);
            timeline.record_request(interval, RequestOutcome::Status(status));
            timeline.record_iteration(
                interval,
                status == 200,
                Duration::from_millis(*offset % 7 + 1),
            );
        }
        timeline
    }

    #[test]
    fn iterations_are_filed_under_the_second_they_were_due() {
        let mut timeline = recorded(&[0, 999, 1000, 2500], 200);
        timeline.record_request(2, RequestOutcome::Transport(TransportErrorKind::Timeout));
        timeline.record_dropped(2, Duration::from_secs(5));
        let report = timeline.report().unwrap();
        let scheduled: Vec<u64> = report
            .intervals
            .iter()
            .map(|interval| interval.scheduled)
            .collect();
        assert_eq!(scheduled, [2, 1, 1]);
        let last = &report.intervals[2];
        assert_eq!(last.offset_s, 2);
        assert_eq!(last.dropped, 1);
        assert_eq!(last.transport_errors.get("timeout"), Some(&1));
        assert_eq!(last.by_status.get("200"), Some(&1));
        // The dropped iteration is in the latency at the timeout: p99 is 5 s (1 % resolution).
        let p99 = last.p99_ms.unwrap();
        assert!((p99 - 5000.0).abs() <= 50.0, "{p99}");
    }

    #[test]
    fn a_seconds_histogram_holds_only_the_range_it_saw() {
        let bytes = |values: &[u64]| {
            let mut histogram = new_interval_histogram();
            for value in values {
                record_micros(&mut histogram, Duration::from_micros(*value));
            }
            histogram.distinct_values() * std::mem::size_of::<u64>()
        };
        let milliseconds = bytes(&[800, 2_500, 9_000]);
        let with_a_timeout = bytes(&[800, 2_500, 5_000_000]);
        eprintln!("{milliseconds} and {with_a_timeout} bytes of counts");
        assert!(milliseconds <= 9_000, "{milliseconds}");
        assert!(with_a_timeout <= 18_000, "{with_a_timeout}");
    }

    #[test]
    fn timelines_merge_second_by_second_through_their_report() {
        let first = recorded(&[100, 1100, 1200], 200);
        let second = recorded(&[150, 2100], 500);
        let mut both = first.clone();
        both.merge(&second);
        let report = both.report().unwrap();
        assert_eq!(report.intervals[0].by_status.len(), 2);
        assert_eq!(report.intervals[1].succeeded, 2);
        assert_eq!(report.intervals[2].failed, 1);

        // Rebuilt from their reports, as a merge of result files does, they merge the same:
        // every figure, and every recorded value with its count. (The encoded histograms may
        // differ in the range they grew to on the way, never in what they hold.)
        let mut rebuilt = Timeline::from_report(&first.report().unwrap()).unwrap();
        rebuilt.merge(&Timeline::from_report(&second.report().unwrap()).unwrap());
        let held = |report: &TimelineReport| -> Vec<(IntervalReport, Vec<(u64, u64)>)> {
            report
                .intervals
                .iter()
                .map(|interval| {
                    let histogram = decode_histogram(&interval.histogram).unwrap();
                    let values = histogram
                        .iter_recorded()
                        .map(|value| (value.value_iterated_to(), value.count_at_value()))
                        .collect();
                    let figures = IntervalReport {
                        histogram: String::new(),
                        ..interval.clone()
                    };
                    (figures, values)
                })
                .collect()
        };
        assert_eq!(held(&rebuilt.report().unwrap()), held(&report));
    }
}
