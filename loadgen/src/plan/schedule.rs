//! The open-model arrival schedule: when each iteration is meant to start, from linear rate stages.
//!
//! Like k6's `ramping-arrival-rate`, the rate changes linearly within a stage from the previous
//! stage's target to this stage's target, and iteration `i` (0-based) is due when the integral of
//! the rate since the start reaches `i`. The schedule is fixed before the run starts and never
//! depends on how fast the target answers, which is what keeps the measurement free of
//! coordinated omission.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One linear segment of the load profile: the rate moves from the previous stage's target (0 for
/// the first stage) to `target_rate_per_s` over `duration`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Stage {
    /// Length of the stage in seconds.
    pub duration_s: f64,
    /// Iterations per second reached at the end of the stage.
    pub target_rate_per_s: f64,
}

/// The standard three-stage profile of the specification: ramp up, hold, ramp down.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LoadProfile {
    /// Steady-state iterations per second.
    pub rate_per_s: f64,
    /// Linear ramp from 0 to the rate, in seconds.
    pub ramp_up_s: f64,
    /// Time held at the rate, in seconds.
    pub steady_s: f64,
    /// Linear ramp from the rate back to 0, in seconds.
    pub ramp_down_s: f64,
}

impl LoadProfile {
    /// Builds a profile from durations.
    pub fn new(rate_per_s: f64, ramp_up: Duration, steady: Duration, ramp_down: Duration) -> Self {
        Self {
            rate_per_s,
            ramp_up_s: ramp_up.as_secs_f64(),
            steady_s: steady.as_secs_f64(),
            ramp_down_s: ramp_down.as_secs_f64(),
        }
    }

    /// The stages this profile stands for; zero-length stages are left out.
    pub fn stages(&self) -> Vec<Stage> {
        [
            (self.ramp_up_s, self.rate_per_s),
            (self.steady_s, self.rate_per_s),
            (self.ramp_down_s, 0.0),
        ]
        .into_iter()
        .map(|(duration_s, target_rate_per_s)| Stage {
            duration_s,
            target_rate_per_s,
        })
        .collect()
    }

    /// Total length of the profile.
    pub fn total_duration(&self) -> Duration {
        Duration::from_secs_f64(self.ramp_up_s + self.steady_s + self.ramp_down_s)
    }

    /// How many iterations the schedule will produce: rate x (steady + ramps / 2), rounded up.
    pub fn scheduled_iterations(&self) -> u64 {
        Schedule::new(&self.stages())
            .map(|schedule| schedule.total_iterations())
            .unwrap_or(0)
    }
}

/// Why a set of stages cannot be scheduled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    /// A duration or rate is negative, NaN or infinite.
    #[error("stage {index}: duration and rate must be finite and not negative")]
    InvalidStage {
        /// Position of the offending stage.
        index: usize,
    },
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    start_offset_s: f64,
    duration_s: f64,
    start_rate: f64,
    end_rate: f64,
    iterations_before: f64,
}

impl Segment {
    fn iterations(&self) -> f64 {
        (self.start_rate + self.end_rate) / 2.0 * self.duration_s
    }

    /// Seconds into the segment at which `iterations_into_segment` iterations have accrued.
    fn time_for(&self, iterations_into_segment: f64) -> f64 {
        if iterations_into_segment <= 0.0 {
            return 0.0;
        }
        let slope = (self.end_rate - self.start_rate) / self.duration_s;
        let start_rate = self.start_rate;
        // Solves start_rate*t + slope*t^2/2 = x in the form that stays accurate when the slope is
        // negative or zero (no cancellation, no division by the slope).
        let discriminant =
            (start_rate * start_rate + 2.0 * slope * iterations_into_segment).max(0.0);
        let time = 2.0 * iterations_into_segment / (start_rate + discriminant.sqrt());
        time.min(self.duration_s)
    }

    fn rate_at(&self, offset_into_segment_s: f64) -> f64 {
        let fraction = (offset_into_segment_s / self.duration_s).clamp(0.0, 1.0);
        self.start_rate + (self.end_rate - self.start_rate) * fraction
    }
}

/// The arrival schedule built from stages; iterate it with [`Schedule::iter`].
#[derive(Debug, Clone)]
pub struct Schedule {
    segments: Vec<Segment>,
    total_iterations: f64,
    total_duration_s: f64,
}

impl Schedule {
    /// Builds the schedule, refusing negative or non-finite values.
    pub fn new(stages: &[Stage]) -> Result<Self, ScheduleError> {
        let mut segments = Vec::with_capacity(stages.len());
        let mut previous_rate = 0.0;
        let mut offset = 0.0;
        let mut iterations = 0.0;
        for (index, stage) in stages.iter().enumerate() {
            let valid = stage.duration_s.is_finite()
                && stage.duration_s >= 0.0
                && stage.target_rate_per_s.is_finite()
                && stage.target_rate_per_s >= 0.0;
            if !valid {
                return Err(ScheduleError::InvalidStage { index });
            }
            if stage.duration_s > 0.0 {
                let segment = Segment {
                    start_offset_s: offset,
                    duration_s: stage.duration_s,
                    start_rate: previous_rate,
                    end_rate: stage.target_rate_per_s,
                    iterations_before: iterations,
                };
                iterations += segment.iterations();
                offset += stage.duration_s;
                segments.push(segment);
            }
            previous_rate = stage.target_rate_per_s;
        }
        Ok(Self {
            segments,
            total_iterations: iterations,
            total_duration_s: offset,
        })
    }

    /// Number of iterations the schedule yields: every `i` below the rate's integral.
    pub fn total_iterations(&self) -> u64 {
        // The tolerance absorbs float error so 100/s for 2 s is 200 iterations, not 201.
        let total = self.total_iterations - 1e-9;
        if total <= 0.0 { 0 } else { total.ceil() as u64 }
    }

    /// Length of the whole schedule.
    pub fn total_duration(&self) -> Duration {
        Duration::from_secs_f64(self.total_duration_s)
    }

    /// The target rate at `elapsed` since the start (0 after the end).
    pub fn rate_at(&self, elapsed: Duration) -> f64 {
        let offset = elapsed.as_secs_f64();
        self.segments
            .iter()
            .find(|segment| offset < segment.start_offset_s + segment.duration_s)
            .map_or(0.0, |segment| {
                segment.rate_at(offset - segment.start_offset_s)
            })
    }

    /// Iterations' intended start offsets, in order.
    pub fn iter(&self) -> ScheduleIter<'_> {
        ScheduleIter {
            schedule: self,
            next_index: 0,
            total: self.total_iterations(),
            segment_index: 0,
        }
    }
}

/// One due iteration: its index and its intended start as an offset from the run's start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DueIteration {
    /// 0-based iteration number, unique within a run.
    pub index: u64,
    /// Intended start, relative to the start of the schedule.
    pub offset: Duration,
}

/// Iterator over [`DueIteration`]s; O(1) amortised per item.
#[derive(Debug)]
pub struct ScheduleIter<'a> {
    schedule: &'a Schedule,
    next_index: u64,
    total: u64,
    segment_index: usize,
}

impl Iterator for ScheduleIter<'_> {
    type Item = DueIteration;

    fn next(&mut self) -> Option<DueIteration> {
        if self.next_index >= self.total {
            return None;
        }
        let index = self.next_index;
        let wanted = index as f64;
        let segments = &self.schedule.segments;
        while self.segment_index + 1 < segments.len() {
            let segment = &segments[self.segment_index];
            if wanted < segment.iterations_before + segment.iterations() {
                break;
            }
            self.segment_index += 1;
        }
        let segment = segments.get(self.segment_index)?;
        let seconds = segment.start_offset_s + segment.time_for(wanted - segment.iterations_before);
        self.next_index += 1;
        Some(DueIteration {
            index,
            offset: Duration::from_secs_f64(seconds.max(0.0)),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = usize::try_from(self.total - self.next_index).unwrap_or(usize::MAX);
        (remaining, Some(remaining))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(stages: &[Stage]) -> Vec<f64> {
        Schedule::new(stages)
            .unwrap()
            .iter()
            .map(|due| due.offset.as_secs_f64())
            .collect()
    }

    #[test]
    fn steady_rate_is_exact() {
        let got = offsets(&[Stage {
            duration_s: 2.0,
            target_rate_per_s: 100.0,
        }]);
        // The first stage ramps from 0, so hold with a zero-length jump first.
        assert!(
            got.len() == 100,
            "a 0->100 ramp over 2 s yields 100, got {}",
            got.len()
        );

        let schedule = Schedule::new(&[
            Stage {
                duration_s: 0.0,
                target_rate_per_s: 100.0,
            },
            Stage {
                duration_s: 2.0,
                target_rate_per_s: 100.0,
            },
        ])
        .unwrap();
        let steady: Vec<_> = schedule.iter().collect();
        assert_eq!(steady.len(), 200);
        for due in &steady {
            let expected = due.index as f64 / 100.0;
            assert!(
                (due.offset.as_secs_f64() - expected).abs() < 1e-9,
                "{due:?}"
            );
        }
    }

    #[test]
    fn ramp_yields_the_integral() {
        let profile = LoadProfile {
            rate_per_s: 300.0,
            ramp_up_s: 10.0,
            steady_s: 120.0,
            ramp_down_s: 10.0,
        };
        assert_eq!(profile.scheduled_iterations(), 39_000);
        let schedule = Schedule::new(&profile.stages()).unwrap();
        let all: Vec<_> = schedule.iter().collect();
        assert_eq!(all.len(), 39_000);
        // Ramp-up holds 300*10/2 = 1500 iterations, so iteration 1500 is the first steady one.
        assert!((all[1500].offset.as_secs_f64() - 10.0).abs() < 1e-6);
        assert!((all[1501].offset.as_secs_f64() - (10.0 + 1.0 / 300.0)).abs() < 1e-6);
        // Within the ramp, i = 15 t^2.
        assert!((all[15].offset.as_secs_f64() - 1.0).abs() < 1e-9);
        // Offsets never go backwards and stay within the profile.
        assert!(all.windows(2).all(|pair| pair[0].offset <= pair[1].offset));
        assert!(all.last().unwrap().offset.as_secs_f64() <= 140.0);
        // The ramp-down mirrors the ramp-up: 1500 iterations in the last 10 s.
        let in_ramp_down = all
            .iter()
            .filter(|due| due.offset.as_secs_f64() >= 130.0)
            .count();
        assert_eq!(in_ramp_down, 1500);
    }

    #[test]
    fn rates_per_second_follow_the_ramp() {
        let profile = LoadProfile {
            rate_per_s: 100.0,
            ramp_up_s: 10.0,
            steady_s: 0.0,
            ramp_down_s: 0.0,
        };
        let got = offsets(&profile.stages());
        assert_eq!(got.len(), 500);
        // In second k of a 0->100 ramp over 10 s, 10k+5 iterations are due (the mean rate).
        for second in 0..10 {
            let count = got
                .iter()
                .filter(|offset| (**offset as u64) == second)
                .count() as i64;
            let expected = 10 * second as i64 + 5;
            assert!((count - expected).abs() <= 1, "second {second}: {count}");
        }
    }

    #[test]
    fn rate_at_interpolates() {
        let profile = LoadProfile {
            rate_per_s: 300.0,
            ramp_up_s: 10.0,
            steady_s: 120.0,
            ramp_down_s: 10.0,
        };
        let schedule = Schedule::new(&profile.stages()).unwrap();
        assert!((schedule.rate_at(Duration::from_secs(5)) - 150.0).abs() < 1e-9);
        assert!((schedule.rate_at(Duration::from_secs(60)) - 300.0).abs() < 1e-9);
        assert!((schedule.rate_at(Duration::from_secs(135)) - 150.0).abs() < 1e-9);
        assert_eq!(schedule.rate_at(Duration::from_secs(141)), 0.0);
    }

    #[test]
    fn refuses_bad_stages() {
        let bad = Schedule::new(&[Stage {
            duration_s: -1.0,
            target_rate_per_s: 1.0,
        }]);
        assert_eq!(bad.unwrap_err(), ScheduleError::InvalidStage { index: 0 });
        assert!(
            Schedule::new(&[Stage {
                duration_s: 1.0,
                target_rate_per_s: f64::NAN,
            }])
            .is_err()
        );
    }

    #[test]
    fn empty_profile_has_no_iterations() {
        let schedule = Schedule::new(&[]).unwrap();
        assert_eq!(schedule.iter().count(), 0);
        assert_eq!(schedule.total_iterations(), 0);
    }
}
