//! The result of a mix: one section per scenario (each a whole [`RunResult`], judged against its
//! own thresholds) and one verdict over all of them; read, written, and shards of one mix merged
//! section by section.

use std::path::Path;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::results::merge::merge_results;
use crate::results::result::{RunResult, SCHEMA_VERSION};
use crate::results::result_file::{ResultError, read_json, write_json};
use crate::results::thresholds::Verdict;

/// Several scenarios run side by side from one start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MixResult {
    /// Version of the format of the sections, [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The mix as given: `scenario=rate,...`.
    pub mix: String,
    /// Pass only if every section passed.
    pub verdict: Verdict,
    /// One result per scenario, in the mix's order.
    pub sections: Vec<RunResult>,
}

/// What a result file holds: one run, or a mix of several.
#[derive(Debug, Clone, PartialEq)]
pub enum ResultFile {
    /// One scenario's run.
    Run(Box<RunResult>),
    /// A mix.
    Mix(MixResult),
}

impl MixResult {
    /// The mix `mix` of `sections`, its verdict theirs together.
    pub fn new(mix: String, sections: Vec<RunResult>) -> Self {
        let verdict = Verdict::of(
            !sections.is_empty()
                && sections
                    .iter()
                    .all(|section| section.verdict == Verdict::Pass),
        );
        Self {
            schema_version: SCHEMA_VERSION,
            mix,
            verdict,
            sections,
        }
    }

    /// Writes the result as pretty JSON, atomically.
    pub fn write(&self, path: &Path) -> Result<(), ResultError> {
        write_json(path, self)
    }

    /// Merges the shards of one mix (or mixes made side by side) section by section, each as
    /// [`merge_results`] merges runs; the mixes must name the same scenarios in the same order.
    pub fn merge(
        mixes: &[(String, MixResult)],
        max_start_skew: Duration,
    ) -> Result<Self, ResultError> {
        let (first_name, first) = mixes.first().ok_or(ResultError::Empty)?;
        let scenarios = |mix: &MixResult| -> Vec<String> {
            mix.sections
                .iter()
                .map(|section| section.scenario.clone())
                .collect()
        };
        for (name, mix) in mixes {
            if mix.mix != first.mix || scenarios(mix) != scenarios(first) {
                return Err(ResultError::Mismatch(
                    format!(
                        "{first_name} (mix {}: {})",
                        first.mix,
                        scenarios(first).join(", ")
                    ),
                    format!("{name} (mix {}: {})", mix.mix, scenarios(mix).join(", ")),
                ));
            }
        }
        let mut sections = Vec::with_capacity(first.sections.len());
        for index in 0..first.sections.len() {
            let shards: Vec<(String, RunResult)> = mixes
                .iter()
                .map(|(name, mix)| (name.clone(), mix.sections[index].clone()))
                .collect();
            sections.push(merge_results(&shards, max_start_skew)?);
        }
        Ok(Self::new(first.mix.clone(), sections))
    }
}

impl ResultFile {
    /// Reads a result file of either kind, refusing other schema versions.
    pub fn read(path: &Path) -> Result<Self, ResultError> {
        let (value, shown) = read_json(path)?;
        if value.get("sections").is_none() {
            return RunResult::from_value(value, &shown).map(|run| Self::Run(Box::new(run)));
        }
        let mut object = value;
        let sections = object
            .get_mut("sections")
            .map(serde_json::Value::take)
            .and_then(|sections| match sections {
                serde_json::Value::Array(sections) => Some(sections),
                _ => None,
            })
            .unwrap_or_default();
        let sections = sections
            .into_iter()
            .enumerate()
            .map(|(index, section)| {
                RunResult::from_value(section, &format!("{shown}, section {}", index + 1))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mix = object
            .get("mix")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned();
        // The verdict is judged again from the sections rather than taken from the file.
        Ok(Self::Mix(MixResult::new(mix, sections)))
    }
}

/// The JSON Schema of [`MixResult`], as committed in `loadgen/schema/mix-result.schema.json`.
pub fn mix_result_schema_json() -> String {
    let schema = schemars::schema_for!(MixResult);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
