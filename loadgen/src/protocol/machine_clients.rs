//! The machine clients of the `client-credentials` scenario (RFC 6749 section 4.4): read from a
//! file of one client id and secret per line, or the run's own client, and the scope they ask for.

use std::path::Path;

use crate::protocol::client_credentials::ClientCredentials;

/// The clients that ask for tokens for themselves, and the scope they ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineClients {
    /// The clients, virtual user `i` acting as client `i % len`; empty means the run's client.
    clients: Vec<ClientCredentials>,
    /// The scope asked for (none when empty: the client's default scope).
    pub scope: String,
}

/// Why a clients file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ClientsFileError {
    /// The file could not be read.
    #[error("could not read the clients file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is not a client id and a secret.
    #[error(
        "line {line} of the clients file {path} is not a client id and a secret separated by \
         white space (blank lines and lines starting with # are skipped)"
    )]
    Line {
        /// The file.
        path: String,
        /// The line number, from 1.
        line: usize,
    },
    /// No client at all.
    #[error("the clients file {path} names no client: give one client id and secret per line")]
    Empty {
        /// The file.
        path: String,
    },
}

impl MachineClients {
    /// The run's own client, asking for `scope`.
    pub fn run_client(scope: impl Into<String>) -> Self {
        Self {
            clients: Vec::new(),
            scope: scope.into(),
        }
    }

    /// The clients of a file of `client_id secret` lines, asking for `scope`.
    pub fn from_file(path: &Path, scope: impl Into<String>) -> Result<Self, ClientsFileError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ClientsFileError::Read {
            path: shown.clone(),
            source,
        })?;
        let clients = parse_clients(&text).map_err(|line| ClientsFileError::Line {
            path: shown.clone(),
            line,
        })?;
        if clients.is_empty() {
            return Err(ClientsFileError::Empty { path: shown });
        }
        Ok(Self {
            clients,
            scope: scope.into(),
        })
    }

    /// The client virtual user `vu` acts as: `run_client` when no file named any.
    pub fn for_vu<'a>(
        &'a self,
        vu: usize,
        run_client: &'a ClientCredentials,
    ) -> &'a ClientCredentials {
        if self.clients.is_empty() {
            run_client
        } else {
            &self.clients[vu % self.clients.len()]
        }
    }

    /// How many clients a file named (0: the run's client).
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether no file named any client.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// The client ids, for the configuration hash (never the secrets).
    pub fn ids(&self) -> Vec<&str> {
        self.clients
            .iter()
            .map(|client| client.client_id.as_str())
            .collect()
    }
}

/// The clients of `text`, or the number of its first line that is not one.
fn parse_clients(text: &str) -> Result<Vec<ClientCredentials>, usize> {
    let mut clients = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(id), Some(secret), None) = (words.next(), words.next(), words.next()) else {
            return Err(index + 1);
        };
        clients.push(ClientCredentials {
            client_id: id.to_owned(),
            client_secret: Some(secret.to_owned()),
            ..ClientCredentials::default()
        });
    }
    Ok(clients)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_names_one_client_per_line_and_vus_take_turns() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("clients.txt");
        std::fs::write(&path, "# machines\nm1 s1\n\n  m2\ts2  \n").unwrap();
        let clients = MachineClients::from_file(&path, "api").unwrap();
        assert_eq!(clients.ids(), ["m1", "m2"]);
        let run_client = ClientCredentials::default();
        assert_eq!(clients.for_vu(0, &run_client).client_id, "m1");
        assert_eq!(clients.for_vu(3, &run_client).client_id, "m2");
        assert_eq!(
            clients.for_vu(3, &run_client).client_secret.as_deref(),
            Some("s2")
        );
        let own = MachineClients::run_client("");
        assert_eq!(own.for_vu(5, &run_client), &run_client);
    }

    #[test]
    fn a_bad_line_and_an_empty_file_are_refused_in_words() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("clients.txt");
        std::fs::write(&path, "m1 s1\nm2\n").unwrap();
        let error = MachineClients::from_file(&path, "")
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 2 of the clients file"), "{error}");
        std::fs::write(&path, "# nothing\n").unwrap();
        let error = MachineClients::from_file(&path, "")
            .unwrap_err()
            .to_string();
        assert!(error.contains("names no client"), "{error}");
        let missing = directory.path().join("missing.txt");
        let error = MachineClients::from_file(&missing, "")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("could not read the clients file"),
            "{error}"
        );
    }
}
