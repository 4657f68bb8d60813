//! Reading result files (older formats included, up to the current one) and writing them.

use std::path::Path;

use crate::atomic_file::write_atomically;
use crate::results::histogram::HistogramCodecError;
use crate::results::result::{OLDEST_READABLE_SCHEMA_VERSION, RunResult, SCHEMA_VERSION};
use crate::results::shard_check::ShardMergeError;

/// Why result files could not be read, merged or written.
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a result of this format.
    #[error("{path}: not a loadgen result: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The cause.
        source: serde_json::Error,
    },
    /// The file is a mix's result, which holds several runs.
    #[error(
        "{path} is the result of a mix (a section per scenario): read it with `loadgen report`, \
         which judges every section and the mix's one verdict"
    )]
    Mix {
        /// The file.
        path: String,
    },
    /// The file has another schema version.
    #[error(
        "{path} is a result of format version {found}; this loadgen reads versions \
         {OLDEST_READABLE_SCHEMA_VERSION} to {SCHEMA_VERSION}: judge it with the loadgen that wrote it, or run the test again"
    )]
    Version {
        /// The file.
        path: String,
        /// The version in the file.
        found: u32,
    },
    /// A histogram in the file is damaged.
    #[error("histogram: {0}")]
    Histogram(#[from] HistogramCodecError),
    /// Results of different tests cannot be merged.
    #[error("cannot merge results of different tests or judged differently ({0} and {1})")]
    Mismatch(String, String),
    /// Nothing to merge.
    #[error("no results to merge")]
    Empty,
    /// The results are not every shard of one run.
    #[error(transparent)]
    Shards(#[from] ShardMergeError),
}
/// Writes `value` to `path` as pretty JSON, atomically (a reader never sees half a file).
pub(crate) fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), ResultError> {
    let mut text = serde_json::to_vec_pretty(value).map_err(|source| ResultError::Parse {
        path: path.display().to_string(),
        source,
    })?;
    text.push(b'\n');
    write_atomically(path, &text).map_err(|source| ResultError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// The JSON of the file at `path`, and its name for messages.
pub(crate) fn read_json(path: &Path) -> Result<(serde_json::Value, String), ResultError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ResultError::Io {
        path: shown.clone(),
        source,
    })?;
    let value = serde_json::from_str(&text).map_err(|source| ResultError::Parse {
        path: shown.clone(),
        source,
    })?;
    Ok((value, shown))
}

impl RunResult {
    /// Reads a result file, refusing other schema versions.
    pub fn read(path: &Path) -> Result<Self, ResultError> {
        let (value, shown) = read_json(path)?;
        if value.get("sections").is_some() {
            return Err(ResultError::Mix { path: shown });
        }
        Self::from_value(value, &shown)
    }

    /// The result `value` holds (a whole file, or a section of a mix's), refusing other schema
    /// versions; `shown` names it in messages.
    pub(crate) fn from_value(value: serde_json::Value, shown: &str) -> Result<Self, ResultError> {
        let shown = shown.to_owned();
        let found = value
            .get("schema_version")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        let readable = u64::from(OLDEST_READABLE_SCHEMA_VERSION)..=u64::from(SCHEMA_VERSION);
        if !readable.contains(&found) {
            return Err(ResultError::Version {
                path: shown,
                found: u32::try_from(found).unwrap_or(u32::MAX),
            });
        }
        let mut result: Self =
            serde_json::from_value(value).map_err(|source| ResultError::Parse {
                path: shown,
                source,
            })?;
        if result.schema_version == 1 {
            // Version 1 also counted every error status as a failed `status` check; the success
            // rate already counts those requests, so the check is dropped to judge as version 2 does.
            result.checks.remove("status");
            result.schema_version = SCHEMA_VERSION;
        }
        Ok(result)
    }

    /// Writes the result as pretty JSON, atomically.
    pub fn write(&self, path: &Path) -> Result<(), ResultError> {
        write_json(path, self)
    }
}
