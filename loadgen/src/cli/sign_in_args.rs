//! The flags of who signs in and who asks for tokens: the test users (`login`, and the `api`
//! scenario's own logins) and the machine clients (`client-credentials`).

use std::path::PathBuf;

use clap::Args;
use loadgen::protocol::machine_clients::{ClientsFileError, MachineClients};
use loadgen::protocol::test_users::TestUsers;

use crate::cli::shared_args::UserArgs;

#[derive(Debug, Args)]
pub(crate) struct SignInArgs {
    #[command(flatten)]
    pub(crate) users: UserArgs,
    /// `login`: how many test users iterations sign in as, in turn; the provider must have them
    /// all.
    #[arg(long, env = "LOADGEN_LOGIN_USERS", default_value_t = 1000)]
    pub(crate) login_users: usize,
    /// `login`: the number of the first of them (PREFIX00001 is 1). Sign-ins always begin after
    /// the users whose families and sessions the seeds hold.
    #[arg(long, env = "LOADGEN_LOGIN_FIRST_USER", default_value_t = 1)]
    pub(crate) login_first_user: usize,
    /// `client-credentials`: a file of machine clients, one `client_id secret` per line; VUs
    /// take them in turn. The run's client (--client-id, --client-secret) when not given.
    #[arg(long, env = "LOADGEN_CLIENTS")]
    pub(crate) clients: Option<PathBuf>,
    /// `client-credentials`: the scope each client asks for; none (the client's default) when
    /// empty. Every scope asked for must be granted.
    #[arg(long, env = "LOADGEN_CLIENT_CREDENTIALS_SCOPE", default_value = "")]
    pub(crate) client_credentials_scope: String,
}

impl SignInArgs {
    pub(crate) fn test_users(&self) -> TestUsers {
        TestUsers {
            prefix: self.users.user_prefix.clone(),
            password: self.users.password.clone(),
            count: self.login_users.max(1),
            first: self.login_first_user.saturating_sub(1),
        }
    }

    pub(crate) fn machine_clients(&self) -> Result<MachineClients, ClientsFileError> {
        let scope = self.client_credentials_scope.clone();
        match &self.clients {
            Some(path) => MachineClients::from_file(path, scope),
            None => Ok(MachineClients::run_client(scope)),
        }
    }
}
