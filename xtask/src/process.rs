//! Child processes of the pipeline: an identity provider (mock-idp, node-oidc-provider or
//! Keycloak) booted on an ephemeral port and stopped with all it started on every path (error and
//! Ctrl-C included), and commands waited on without missing an interrupt, and whether they run in CI.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

/// Set by the Ctrl-C handler; every wait loop checks it and tears down.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Installs the Ctrl-C (SIGINT/SIGTERM) handler once. The children share the terminal's
/// process group and get the signal themselves; this only makes xtask notice, stop waiting, and
/// run its cleanup instead of dying with children left behind.
pub fn install_interrupt_handler() -> Result<()> {
    ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst))
        .context("could not install the Ctrl-C handler")
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Whether this runs in CI (`CI` set and not `false`): no progress bars, no snapshot updates.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|value| !value.is_empty() && value != "false")
}

/// An identity provider's process. Dropping it stops the process (SIGTERM, then SIGKILL after a
/// grace).
#[derive(Debug)]
pub struct IdpProcess {
    child: Option<Child>,
    pub base_url: String,
    stderr_log: std::path::PathBuf,
}

impl IdpProcess {
    /// Starts `command` (a provider told to listen on `127.0.0.1:0`) and waits for its
    /// `listening on URL` line for at most `boot_timeout`. Its stderr goes to `stderr_log`,
    /// quoted on failure.
    pub fn boot(mut command: Command, stderr_log: &Path, boot_timeout: Duration) -> Result<Self> {
        let program = command.get_program().to_string_lossy().into_owned();
        let stderr = std::fs::File::create(stderr_log)
            .with_context(|| format!("could not create {}", stderr_log.display()))?;
        // A group of its own, so that stopping it reaches whatever it started (Keycloak's script
        // runs kc.sh, which runs the JVM), not only the process xtask started.
        let mut child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("could not start {program}"))?;
        let stdout = child.stdout.take().context("the provider has no stdout")?;
        let mut idp = Self {
            child: Some(child),
            base_url: String::new(),
            stderr_log: stderr_log.to_owned(),
        };
        let (line_sender, line_receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = line_sender.send(line);
            }
            // Keep draining so the child never blocks on a full pipe.
            for _ in lines {}
        });
        let deadline = Instant::now() + boot_timeout;
        loop {
            if interrupted() {
                bail!("interrupted while {program} was starting");
            }
            match line_receiver.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let url = line.strip_prefix("listening on ").with_context(|| {
                        format!("{program} printed '{line}' where 'listening on URL' was expected")
                    })?;
                    idp.base_url = url.trim().to_owned();
                    return Ok(idp);
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(_) => {
                    let exited = idp
                        .child
                        .as_mut()
                        .and_then(|child| child.try_wait().ok().flatten());
                    bail!(
                        "{program} did not announce `listening on` within {boot_timeout:?}{}; its stderr:\n{}",
                        exited
                            .map(|status| format!(" (it exited: {status})"))
                            .unwrap_or_default(),
                        idp.stderr_tail()
                    );
                }
            }
        }
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The last lines of the process's stderr, for error messages.
    pub fn stderr_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.stderr_log) {
            let _ = file.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Stops the process and everything it started (its process group): SIGTERM, a grace period
    /// for a graceful shutdown, then SIGKILL.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let group = format!("-{}", child.id());
        let signal_group = |signal: &str| {
            let _ = Command::new("kill")
                .args([signal, "--", &group])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        signal_group("-TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        signal_group("-KILL");
        let _ = child.wait();
    }
}

impl Drop for IdpProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `command` to completion with inherited output, returning its status; on Ctrl-C it
/// waits a moment for the child to finish on its own (it got the signal too), then kills it.
pub fn run_to_completion(command: &mut Command) -> Result<ExitStatus> {
    let program = format!("{:?}", command.get_program());
    let child = command
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("could not start {program}"))?;
    wait_for(child, &program)
}

/// Runs `command` as [`run_to_completion`] does, its stderr shown and also copied into `log`, so
/// that what it printed can be read afterwards.
pub fn run_copying_stderr(command: &mut Command, log: &Path) -> Result<ExitStatus> {
    let program = format!("{:?}", command.get_program());
    let mut file = std::fs::File::create(log)
        .with_context(|| format!("could not create {}", log.display()))?;
    let mut child = command
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start {program}"))?;
    let mut stderr = child.stderr.take().context("the child has no stderr")?;
    let copier = std::thread::spawn(move || {
        let mut buffer = [0u8; 8192];
        // Reading on after a failed write keeps the child from blocking on a full pipe.
        while let Ok(read) = stderr.read(&mut buffer) {
            if read == 0 {
                break;
            }
            let _ = std::io::stderr().write_all(&buffer[..read]);
            let _ = file.write_all(&buffer[..read]);
        }
    });
    let status = wait_for(child, &program);
    let _ = copier.join();
    status
}

/// Runs `commands` side by side, each with inherited output, and returns their statuses in
/// order once all have ended (on Ctrl-C as [`run_to_completion`] does for one).
pub fn run_side_by_side(commands: &mut [Command]) -> Result<Vec<ExitStatus>> {
    let mut children = Vec::with_capacity(commands.len());
    for command in commands.iter_mut() {
        let program = format!("{:?}", command.get_program());
        match command.stdin(Stdio::null()).spawn() {
            Ok(child) => children.push((child, program)),
            Err(error) => {
                for (mut child, _) in children {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                return Err(error).with_context(|| format!("could not start {program}"));
            }
        }
    }
    children
        .into_iter()
        .map(|(child, program)| wait_for(child, &program))
        .collect()
}

fn wait_for(mut child: Child, program: &str) -> Result<ExitStatus> {
    let mut interrupted_at: Option<Instant> = None;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if interrupted() {
            let since = *interrupted_at.get_or_insert_with(Instant::now);
            // loadgen writes its result on Ctrl-C; give it the time to.
            if since.elapsed() > Duration::from_secs(15) {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{program} did not stop within 15 s of Ctrl-C");
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
