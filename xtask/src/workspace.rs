//! Where things are and how they are built: the workspace root, the cargo target directory, the
//! release binaries, a fresh run directory, and mock-idp booted from the release build.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use xshell::{Shell, cmd};

use crate::children::{ClientKey, Gate, Loadgen};
use crate::process::IdpProcess;
use crate::run_dir::RunDir;

/// The workspace root and the cargo target directory.
#[derive(Debug)]
pub struct Workspace {
    root: PathBuf,
    target: PathBuf,
}

impl Workspace {
    /// The workspace xtask was built in; the target directory honours `CARGO_TARGET_DIR`.
    pub fn find() -> Result<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("xtask has no parent directory")?
            .to_owned();
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .map(|dir| {
                if dir.is_absolute() {
                    dir
                } else {
                    root.join(dir)
                }
            })
            .unwrap_or_else(|| root.join("target"));
        Ok(Self { root, target })
    }

    /// A file or directory of the repository.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// A file or directory under the target directory (`target/RELATIVE`).
    pub fn target_path(&self, relative: &str) -> PathBuf {
        self.target.join(relative)
    }

    /// A directory of xtask's own under the target directory (`target/xtask/NAME`).
    pub fn xtask_dir(&self, name: &str) -> PathBuf {
        self.target.join("xtask").join(name)
    }

    fn release_bin(&self, name: &str) -> PathBuf {
        self.target.join("release").join(name)
    }

    /// The release `loadgen`.
    pub fn loadgen(&self) -> Loadgen {
        Loadgen::new(self.release_bin("loadgen"))
    }

    /// The release `gate` (the verification crate's binary).
    pub fn gate(&self) -> Gate {
        Gate::new(self.release_bin("gate"))
    }

    /// A shell in the workspace root.
    pub fn shell(&self) -> Result<Shell> {
        let shell = Shell::new()?;
        shell.change_dir(&self.root);
        Ok(shell)
    }

    /// Builds the release binaries the pipeline runs. Every package is selected, as a plain
    /// `cargo build --release` selects them: cargo unifies dependencies' features over the
    /// packages selected, so building only mock-idp, loadgen and verification would compile
    /// tokio, hyper and the rest a second time with other features (104 s on a fresh clone here).
    pub fn build_binaries(&self) -> Result<()> {
        let shell = self.shell()?;
        cmd!(shell, "cargo build --release --workspace --bins").run()?;
        Ok(())
    }

    /// A fresh run directory `target/xtask/<run id><suffix>`.
    pub fn new_run_dir(&self, suffix: &str) -> Result<RunDir> {
        RunDir::create(self.xtask_dir(&format!("{}{suffix}", run_id())))
    }

    /// Boots the release mock-idp with `extra_args`, its stderr logged in `run_dir`.
    pub fn boot_idp(&self, run_dir: &RunDir, extra_args: &[&str]) -> Result<IdpProcess> {
        let mut command = Command::new(self.release_bin("mock-idp"));
        command.args(["--addr", "127.0.0.1:0"]).args(extra_args);
        IdpProcess::boot(command, &run_dir.idp_log(), Duration::from_secs(30))
    }

    /// Boots the release reference API (the example resource server) with `args` and `env`, its
    /// stderr logged to `log`.
    pub fn boot_reference_api(
        &self,
        args: &[String],
        env: &[(&str, &str)],
        log: &Path,
    ) -> Result<IdpProcess> {
        let mut command = Command::new(self.release_bin("reference-api"));
        command
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied());
        IdpProcess::boot(command, log, Duration::from_secs(30))
    }

    /// Makes a client key pair in `directory` with the release mock-idp: the private key for
    /// loadgen's `private_key_jwt` and its JWKS for the provider.
    pub fn make_client_key(&self, directory: &Path) -> Result<ClientKey> {
        let shell = self.shell()?;
        let mock_idp = self.release_bin("mock-idp");
        let algorithm = ClientKey::ALGORITHM;
        cmd!(
            shell,
            "{mock_idp} --make-client-key {directory} --client-key-alg {algorithm}"
        )
        .run()
        .context("could not make the client key")?;
        Ok(ClientKey {
            key: directory.join("client-key.pem"),
            jwks: directory.join("client-jwks.json"),
            certificate: directory.join("client-cert.pem"),
            by_certificate: false,
        })
    }

    /// Writes a CA and a certificate for the loopback names to `directory` with the release
    /// mock-idp, for another provider to serve HTTPS with.
    pub fn make_tls_certificates(&self, directory: &Path) -> Result<()> {
        let shell = self.shell()?;
        let mock_idp = self.release_bin("mock-idp");
        cmd!(shell, "{mock_idp} --make-tls-certificates {directory}")
            .run()
            .context("could not make the TLS certificates")?;
        Ok(())
    }

    /// Installs node-oidc-provider on first use (`idps/node-oidc-provider`, pinned by its lock
    /// file) and boots it with the repository's configuration, its stderr logged in `run_dir`.
    pub fn boot_node_oidc_provider(
        &self,
        run_dir: &RunDir,
        settings: &[(&str, &str)],
    ) -> Result<IdpProcess> {
        let folder = self.path("idps/node-oidc-provider");
        let shell = self.shell()?;
        let install = folder.join("install.sh");
        cmd!(shell, "bash {install}").run().context(
            "could not install node-oidc-provider: it needs Node.js 20 or newer and npm, and the npm registry",
        )?;
        let mut command = Command::new("node");
        command.arg(folder.join("server.mjs")).env("PORT", "0");
        for (name, value) in settings {
            command.env(name, value);
        }
        IdpProcess::boot(command, &run_dir.idp_log(), Duration::from_secs(30))
    }

    /// Installs Keycloak on first use (`idps/keycloak/install.sh`: the pinned distribution from
    /// Maven Central, checksum verified, under `target/keycloak`) and boots it in dev mode with
    /// the repository's realm and `users` test users; its log is kept in `run_dir`.
    pub fn boot_keycloak(
        &self,
        run_dir: &RunDir,
        users: u32,
        settings: &[(&str, &str)],
    ) -> Result<IdpProcess> {
        let folder = self.path("idps/keycloak");
        let shell = self.shell()?;
        let install = folder.join("install.sh");
        cmd!(shell, "bash {install}").run().context(
            "could not install Keycloak: it needs a Java 17+ JDK, Maven, and Maven Central",
        )?;
        let mut command = Command::new("bash");
        command
            .arg(folder.join("start.sh"))
            .env("PORT", "0")
            .env("USERS", users.to_string())
            .env("RUN_DIR", run_dir.path().join("keycloak"));
        for (name, value) in settings {
            command.env(name, value);
        }
        // A first start builds Keycloak's server image (about 30 s here) before it imports the
        // realm; a busy CI machine gets several times that.
        IdpProcess::boot(command, &run_dir.idp_log(), Duration::from_secs(300))
    }
}

/// `run-<unix seconds>`: names a run's directory and its summary.
pub fn run_id() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default();
    format!("run-{seconds}")
}
