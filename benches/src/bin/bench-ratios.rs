//! Prints mock-idp's sign and validate cost over the raw aws-lc-rs primitive per algorithm,
//! from the medians of the last `cargo bench -p benches`, and loadgen's client side of an
//! iteration over its signature checks when the iteration bench ran; with `--strict`, fails when
//! a ratio is above the target.
//!
//! Usage: `bench-ratios [--strict] [--criterion-dir DIR] [--json FILE] [--iterations-json FILE]`
//! (default: where criterion writes, `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else
//! `target/criterion`).

use std::path::PathBuf;
use std::process::ExitCode;

use benches::{
    BenchRow, IterationRow, RATIO_TARGET, RatioRow, default_criterion_dir, format_ns,
    iteration_report, ratio_report,
};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "mock-idp's sign/validate cost over the raw aws-lc-rs primitive, per algorithm")]
struct Args {
    /// Exit non-zero when a ratio is above the target.
    #[arg(long)]
    strict: bool,
    /// Where criterion wrote its estimates.
    #[arg(long, default_value_os_t = default_criterion_dir())]
    criterion_dir: PathBuf,
    /// Also write the rows as JSON (algorithm, operation, mock_idp_ns, raw_ns, ratio), for the
    /// pipeline's summary.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write loadgen's iteration costs (test, loadgen_ns, signatures_ns) as JSON, when the
    /// iteration bench ran.
    #[arg(long)]
    iterations_json: Option<PathBuf>,
}

fn print_iterations(rows: &[IterationRow]) {
    println!(
        "\n{:<7} {:>22} {:>18} {:>16}",
        "test", "loadgen's client side", "its 2 signatures", "loadgen's own"
    );
    for row in rows {
        println!(
            "{:<7} {:>22} {:>18} {:>16}",
            row.test,
            format_ns(row.loadgen_ns),
            format_ns(row.signatures_ns),
            format_ns(row.own_ns()),
        );
    }
    println!(
        "(criterion medians of one iteration against canned answers; own = whole - signatures)"
    );
}

/// Writes `rows` as pretty JSON to `path`.
fn write_rows<T: serde::Serialize>(path: &std::path::Path, rows: &T) -> Result<(), String> {
    serde_json::to_string_pretty(rows)
        .map_err(std::io::Error::other)
        .and_then(|text| std::fs::write(path, text + "\n"))
        .map_err(|error| format!("could not write {}: {error}", path.display()))
}

fn optional_ns(ns: Option<f64>) -> String {
    ns.map_or_else(|| "-".to_owned(), format_ns)
}

fn print_table(rows: &[RatioRow]) {
    println!(
        "{:<6} {:<9} {:>12} {:>12} {:>7} {:>12} {:>18}",
        "alg", "operation", "mock-idp", "raw", "ratio", "raw+json", "jsonwebtoken-stock"
    );
    for row in rows {
        let verdict = if row.meets_target() { "" } else { "  > target" };
        println!(
            "{:<6} {:<9} {:>12} {:>12} {:>6.3}x {:>12} {:>18}{verdict}",
            row.algorithm,
            row.operation.name(),
            format_ns(row.mock_idp_ns),
            format_ns(row.raw_ns),
            row.ratio(),
            optional_ns(row.raw_with_json_ns),
            optional_ns(row.stock_ns),
        );
    }
    println!("(criterion medians; ratio = mock-idp / raw, target <= {RATIO_TARGET}x)");
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rows = match ratio_report(&args.criterion_dir) {
        Ok(rows) => rows,
        Err(error) => {
            eprintln!("bench-ratios: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    print_table(&rows);
    let iterations = match iteration_report(&args.criterion_dir) {
        Ok(iterations) => iterations,
        Err(error) => {
            eprintln!("bench-ratios: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    if !iterations.is_empty() {
        print_iterations(&iterations);
    }
    if let Some(path) = &args.json {
        let json: Vec<BenchRow> = rows.iter().map(BenchRow::from).collect();
        if let Err(error) = write_rows(path, &json) {
            eprintln!("bench-ratios: {error}");
            return ExitCode::FAILURE;
        }
    }
    if let Some(path) = &args.iterations_json
        && let Err(error) = write_rows(path, &iterations)
    {
        eprintln!("bench-ratios: {error}");
        return ExitCode::FAILURE;
    }
    let over: Vec<&RatioRow> = rows.iter().filter(|row| !row.meets_target()).collect();
    if args.strict && !over.is_empty() {
        for row in over {
            eprintln!(
                "bench-ratios: {} {} costs {:.3}x the raw primitive, above the {RATIO_TARGET}x target",
                row.algorithm,
                row.operation.name(),
                row.ratio()
            );
        }
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
