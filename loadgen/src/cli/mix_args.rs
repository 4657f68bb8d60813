//! The flags that make a run a mix: `--mix SCENARIO=RATE,...` (or a named mix), or `--preset P
//! --mau N` with the peak model's assumptions; shared by `run`, `seed` and `plan`.

use anyhow::bail;
use clap::Args;
use loadgen::run::mix::preset::{PeakModel, Preset, PresetPlan};
use loadgen::run::mix::spec::MixSpec;

#[derive(Debug, Args)]
pub(crate) struct MixArgs {
    /// Run several scenarios side by side from one start, each at its own rate:
    /// SCENARIO=RATE,... (token-code=45,client-credentials=360,refresh-storm=360,login=45), or a
    /// named mix (keycloak-sizing). The VUs are split in proportion to the rates.
    #[arg(long, env = "LOADGEN_MIX", conflicts_with = "preset")]
    pub(crate) mix: Option<MixSpec>,
    /// A production preset of the specification, sized with --mau: each scenario's peak rate
    /// from the number of users (see `loadgen plan`).
    #[arg(long, env = "LOADGEN_PRESET", value_enum, requires = "mau")]
    pub(crate) preset: Option<Preset>,
    /// Multiply every rate of the mix or preset by this (0.25 runs a quarter of it, as on a
    /// machine too small for the whole).
    #[arg(long, env = "LOADGEN_MIX_SCALE", default_value_t = 1.0)]
    pub(crate) mix_scale: f64,
    /// Monthly active users (devices for iot) the preset is sized for.
    #[arg(long, env = "LOADGEN_MAU", requires = "preset")]
    pub(crate) mau: Option<u64>,
    /// Share of the monthly active users active on a day (0.3 for people, 1 for iot).
    #[arg(long, env = "LOADGEN_DAILY_ACTIVE_SHARE", requires = "preset")]
    pub(crate) daily_active_share: Option<f64>,
    /// Share of a day's calls made in its busiest hour (0.1 for people, 1/24 for iot).
    #[arg(long, env = "LOADGEN_PEAK_HOUR_SHARE", requires = "preset")]
    pub(crate) peak_hour_share: Option<f64>,
    /// The busiest minutes' rate over the busiest hour's average (2.4 for people, 1.5 for iot).
    #[arg(long, env = "LOADGEN_PEAK_FACTOR", requires = "preset")]
    pub(crate) peak_factor: Option<f64>,
}

impl MixArgs {
    /// The mix asked for, and the preset's plan when it came from one; `None` for a run of one
    /// scenario.
    pub(crate) fn mix(&self) -> anyhow::Result<Option<(MixSpec, Option<PresetPlan>)>> {
        let Some((mix, plan)) = self.unscaled()? else {
            return Ok(None);
        };
        if self.mix_scale == 1.0 {
            return Ok(Some((mix, plan)));
        }
        if !(self.mix_scale.is_finite() && self.mix_scale > 0.0) {
            bail!("--mix-scale {} must be a number above 0", self.mix_scale);
        }
        Ok(Some((mix.scaled(self.mix_scale)?, plan)))
    }

    /// Whether a flag changes the preset's rates (its model or a scale), so that the preset's
    /// name alone no longer says what runs.
    pub(crate) fn changes_the_preset(&self) -> bool {
        self.mix_scale != 1.0
            || self.daily_active_share.is_some()
            || self.peak_hour_share.is_some()
            || self.peak_factor.is_some()
    }

    fn unscaled(&self) -> anyhow::Result<Option<(MixSpec, Option<PresetPlan>)>> {
        if let Some(mix) = &self.mix {
            return Ok(Some((mix.clone(), None)));
        }
        let (Some(preset), Some(mau)) = (self.preset, self.mau) else {
            return Ok(None);
        };
        let defaults = preset.default_model();
        let model = PeakModel {
            daily_active_share: self
                .daily_active_share
                .unwrap_or(defaults.daily_active_share),
            peak_hour_share: self.peak_hour_share.unwrap_or(defaults.peak_hour_share),
            peak_factor: self.peak_factor.unwrap_or(defaults.peak_factor),
        };
        for (flag, value, most) in [
            ("--daily-active-share", model.daily_active_share, 1.0),
            ("--peak-hour-share", model.peak_hour_share, 1.0),
            ("--peak-factor", model.peak_factor, f64::INFINITY),
        ] {
            if !(value > 0.0 && value <= most) {
                let at_most = if most.is_finite() {
                    format!(" and at most {most}")
                } else {
                    String::new()
                };
                bail!("{flag} {value} must be above 0{at_most}");
            }
        }
        let plan = PresetPlan::new(preset, mau, model);
        let mix = plan.mix().map_err(|_| {
            anyhow::anyhow!(
                "preset {} for {mau} users asks for less than 0.01 calls per second of every \
                 kind: give more --mau",
                preset.name()
            )
        })?;
        Ok(Some((mix, Some(plan))))
    }
}
