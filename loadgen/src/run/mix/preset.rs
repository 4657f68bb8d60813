//! The specification's production presets (web service, mobile low/medium/high, IoT) turned into
//! a mix: each scenario's peak rate from the number of monthly active users, through a peak model
//! whose every assumption is a number the caller may change.
//!
//! The model: `mau x daily_active_share` users are active on a day; each makes the preset's calls
//! per day; the busiest hour carries `peak_hour_share` of a day's calls, and its busiest minutes
//! run at `peak_factor` times that hour's average. For the web preset the defaults (30 % daily
//! active, 10 % of a day in the peak hour, 2.4x) give the specification's own figure: 1.5 million
//! monthly active users peak at 300 calls per second.

use std::fmt::Write as _;

use crate::run::mix::spec::{MixEntry, MixError, MixSpec};
use crate::run::scenario::ScenarioKind;

/// The specification's production presets.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, strum::IntoStaticStr, strum::EnumIter,
)]
#[strum(serialize_all = "kebab-case")]
pub enum Preset {
    /// Preset A: a web service (business SaaS, e-commerce, portals), one sign-in a day.
    Web,
    /// Preset B-1: a mobile app opened once or twice a day (weather, news).
    MobileLow,
    /// Preset B-2: a mobile app in use for hours (chat, games), refreshing 1-4 times an hour.
    MobileMedium,
    /// Preset B-3: a mobile app streaming or calling APIs all the time, refresh-centric.
    MobileHigh,
    /// Preset C: devices (POS terminals, appliances) refreshing every 30 minutes and calling
    /// userinfo every 10.
    Iot,
}

/// How the peak rate follows from the number of users.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeakModel {
    /// Share of the monthly active users active on a given day (DAU/MAU).
    pub daily_active_share: f64,
    /// Share of a day's calls made in its busiest hour.
    pub peak_hour_share: f64,
    /// The busiest minutes' rate over the busiest hour's average.
    pub peak_factor: f64,
}

/// One kind of call of a preset: the scenario that makes it, and how often an active user (or
/// device) makes it per day, with the specification's words it comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PresetCall {
    /// The scenario.
    pub scenario: ScenarioKind,
    /// Calls per active user per day.
    pub per_user_per_day: f64,
    /// Where the figure comes from.
    pub basis: &'static str,
}

/// A sign-in once a month: the mobile presets' "/authorize only on first time", taken as a
/// sign-in again after a month (a new phone, a reinstall, a session that lapsed).
const MONTHLY_SIGN_IN: f64 = 1.0 / 30.0;

impl Preset {
    /// Name on the command line.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The calls an active user of this preset makes per day.
    pub fn calls(self) -> Vec<PresetCall> {
        let call = |scenario, per_user_per_day, basis| PresetCall {
            scenario,
            per_user_per_day,
            basis,
        };
        match self {
            Preset::Web => vec![
                call(
                    ScenarioKind::Login,
                    1.0,
                    "/authorize and /token (code) 1x/day",
                ),
                call(ScenarioKind::RefreshStorm, 1.5, "/token (refresh) 1-2x/day"),
                call(ScenarioKind::Userinfo, 7.5, "/userinfo 5-10x/day"),
            ],
            Preset::MobileLow => vec![
                call(
                    ScenarioKind::Login,
                    MONTHLY_SIGN_IN,
                    "/authorize only on first time: once a month",
                ),
                call(ScenarioKind::RefreshStorm, 1.5, "RT -> AT 1-2x/day"),
            ],
            Preset::MobileMedium => vec![
                call(
                    ScenarioKind::Login,
                    MONTHLY_SIGN_IN,
                    "/authorize only on first time: once a month",
                ),
                call(
                    ScenarioKind::RefreshStorm,
                    7.5,
                    "/token (refresh) 1-4x/hour: 2.5x over 3 hours of use",
                ),
                call(
                    ScenarioKind::Userinfo,
                    0.1,
                    "/userinfo rarely: once in 10 days",
                ),
            ],
            Preset::MobileHigh => vec![
                call(
                    ScenarioKind::Login,
                    MONTHLY_SIGN_IN,
                    "/authorize only on first time: once a month",
                ),
                call(
                    ScenarioKind::RefreshStorm,
                    12.0,
                    "refresh-centric: every 20 minutes over 4 hours of use",
                ),
                call(
                    ScenarioKind::Userinfo,
                    0.1,
                    "/userinfo minimal: once in 10 days",
                ),
            ],
            Preset::Iot => vec![
                call(
                    ScenarioKind::RefreshStorm,
                    48.0,
                    "/token (refresh) at 30-minute intervals",
                ),
                call(
                    ScenarioKind::Userinfo,
                    144.0,
                    "/userinfo at 10-minute intervals",
                ),
            ],
        }
    }

    /// The peak model's defaults for this preset: people's days for the web and mobile presets,
    /// devices that are on all day and every day (their peak only the clustering of schedules)
    /// for IoT.
    pub fn default_model(self) -> PeakModel {
        match self {
            Preset::Iot => PeakModel {
                daily_active_share: 1.0,
                peak_hour_share: 1.0 / 24.0,
                peak_factor: 1.5,
            },
            Preset::Web | Preset::MobileLow | Preset::MobileMedium | Preset::MobileHigh => {
                PeakModel {
                    daily_active_share: 0.3,
                    peak_hour_share: 0.1,
                    peak_factor: 2.4,
                }
            }
        }
    }
}

impl PeakModel {
    /// Peak calls per second of a call made `per_user_per_day` times by each of `mau` monthly
    /// active users' active ones.
    pub fn peak_rate(&self, mau: u64, per_user_per_day: f64) -> f64 {
        mau as f64 * self.daily_active_share * per_user_per_day * self.peak_hour_share / 3600.0
            * self.peak_factor
    }
}

/// A preset sized for a number of users: its calls, their peak rates, and the mix that runs them.
#[derive(Debug, Clone, PartialEq)]
pub struct PresetPlan {
    /// The preset.
    pub preset: Preset,
    /// Monthly active users (devices for IoT).
    pub mau: u64,
    /// The model used.
    pub model: PeakModel,
    /// Each call with its peak rate per second.
    pub rates: Vec<(PresetCall, f64)>,
}

impl PresetPlan {
    /// `preset` for `mau` users under `model`.
    pub fn new(preset: Preset, mau: u64, model: PeakModel) -> Self {
        let rates = preset
            .calls()
            .into_iter()
            .map(|call| (call, model.peak_rate(mau, call.per_user_per_day)))
            .collect();
        Self {
            preset,
            mau,
            model,
            rates,
        }
    }

    /// The mix that runs the plan: each scenario at its peak rate (those that round to nothing
    /// left out).
    pub fn mix(&self) -> Result<MixSpec, MixError> {
        MixSpec::new(
            self.rates
                .iter()
                .filter(|(_, rate)| *rate >= 0.01)
                .map(|(call, rate)| MixEntry {
                    scenario: call.scenario,
                    // Two decimals: the rate printed is the rate run.
                    rate_per_s: (rate * 100.0).round() / 100.0,
                })
                .collect(),
        )
    }

    /// The plan in words and a table, for `loadgen plan` and the run's notes.
    pub fn describe(&self) -> String {
        let model = &self.model;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "preset {} for {} monthly active {}:",
            self.preset.name(),
            self.mau,
            if self.preset == Preset::Iot {
                "devices"
            } else {
                "users"
            }
        );
        let _ = writeln!(
            out,
            "  {:.0} active on a day (--daily-active-share {}); the busiest hour carries {} % of a \
             day's calls (--peak-hour-share {}); its busiest minutes run at {}x its average \
             (--peak-factor {})",
            self.mau as f64 * model.daily_active_share,
            model.daily_active_share,
            (model.peak_hour_share * 1000.0).round() / 10.0,
            model.peak_hour_share,
            model.peak_factor,
            model.peak_factor
        );
        let _ = writeln!(
            out,
            "  {:<16} {:>13} {:>12}  basis",
            "scenario", "per user/day", "peak rate/s"
        );
        let mut total = 0.0;
        for (call, rate) in &self.rates {
            total += rate;
            let _ = writeln!(
                out,
                "  {:<16} {:>13.3} {:>12.2}  {}",
                call.scenario.name(),
                call.per_user_per_day,
                rate,
                call.basis
            );
        }
        let _ = writeln!(out, "  {:<16} {:>13} {:>12.2}", "total", "", total);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_web_preset_puts_the_specifications_1_5_million_users_at_300_per_second() {
        let plan = PresetPlan::new(Preset::Web, 1_500_000, Preset::Web.default_model());
        let mix = plan.mix().unwrap();
        assert_eq!(mix.to_string(), "login=30,refresh-storm=45,userinfo=225");
        assert_eq!(mix.total_rate(), 300.0);
    }

    #[test]
    fn rates_scale_with_users_and_each_assumption() {
        let model = Preset::Web.default_model();
        let base = model.peak_rate(1_000_000, 1.0);
        assert!((model.peak_rate(2_000_000, 1.0) - 2.0 * base).abs() < 1e-9);
        let busier = PeakModel {
            peak_factor: model.peak_factor * 2.0,
            ..model
        };
        assert!((busier.peak_rate(1_000_000, 1.0) - 2.0 * base).abs() < 1e-9);
    }

    #[test]
    fn every_preset_makes_a_mix_and_tiny_rates_are_left_out() {
        use strum::IntoEnumIterator as _;
        for preset in Preset::iter() {
            let plan = PresetPlan::new(preset, 1_000_000, preset.default_model());
            assert!(plan.mix().is_ok(), "{}", preset.name());
            assert!(plan.describe().contains("peak rate/s"));
        }
        // 1,000 mobile users sign in far less than once a second at their peak.
        let small = PresetPlan::new(Preset::MobileLow, 1_000, Preset::MobileLow.default_model());
        assert_eq!(small.mix().unwrap().to_string(), "refresh-storm=0.03");
    }
}
