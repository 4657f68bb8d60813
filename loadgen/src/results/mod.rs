//! Results: the closed sets of names, the recorders and histograms a run fills, the timeline,
//! the result file and its older formats, merging shards, the thresholds and the one judge, and
//! every report made from results (printer, HTML, JUnit). Uses only the plan and `atomic_file`:
//! results are read, merged and judged without running anything.
//!
//! Invariants: one judge (`thresholds::evaluate`, through `RunResult::judge`); latencies live in
//! HDR histograms, never in growing vectors, and merge exactly; a merge takes all shards of one
//! run or refuses; what a report shows as the latency is the gated one.

pub mod api_tokens;
pub mod histogram;
pub mod html_report;
pub mod junit;
pub mod merge;
pub mod mix_result;
pub mod names;
pub mod printer;
pub mod recorder;
pub mod result;
pub mod result_file;
pub mod shard_check;
pub mod thresholds;
pub mod timeline;
