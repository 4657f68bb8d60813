//! `cargo xtask`: the project's pipeline driver (boot the IdP, seed, load-test, gate, bench).

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(about = "Pipeline driver: boots mock-idp, seeds, runs TEST 1-3, gates, benches")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The pre-merge check.
    Verify,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None => bail!(
            "the load-test pipeline is not built yet: mock-idp exists (run it with \
             `cargo run --release -p mock-idp`), loadgen and the gate come next"
        ),
        Some(Command::Verify) => bail!("`cargo xtask verify` is not built yet"),
    }
}
