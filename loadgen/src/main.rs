//! The `loadgen` binary: parses the command line ([`cli`]) and runs the command on a
//! single-thread Tokio runtime.

use std::process::ExitCode;

use clap::Parser as _;

mod cli;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // One thread: at these rates a generator is bound by syscalls, not compute, and a
    // work-stealing runtime spends most of its time waking threads (futex) to hand tasks
    // around. Measured with `cargo xtask wrk-compare` at 500 requests/s: 889 us of CPU per
    // request on the multi-thread runtime.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // The work runs as a spawned task, not as the `block_on` future itself: on a current-thread
    // runtime every wake-up of the `block_on` future writes to the driver's eventfd and costs an
    // extra `epoll_wait`, one pair per request when the scheduler lives there.
    let work = runtime.spawn(async move { cli::execute(cli.command).await });
    match runtime.block_on(work) {
        Ok(Ok(code)) => code,
        Ok(Err(error)) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
        Err(panic) => {
            eprintln!("error: the run stopped unexpectedly: {panic}");
            ExitCode::FAILURE
        }
    }
}
