//! The test users a load test signs in as: `{prefix}{n:05}` from 1, all with one password, as
//! the repository's providers (mock-idp, node-oidc-provider, the Keycloak realm) create them.

/// The name of test user `number` (from 0) of `prefix`: `{prefix}{number + 1:05}`.
pub fn test_user_name(prefix: &str, number: usize) -> String {
    format!("{prefix}{:05}", number + 1)
}

/// The range of test users the `login` scenario signs in as, round-robin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestUsers {
    /// Users are `{prefix}00001` ...
    pub prefix: String,
    /// Every user's password.
    pub password: String,
    /// How many users there are; iteration `n` signs in as user `n % count`.
    pub count: usize,
}

impl Default for TestUsers {
    /// The repository's providers' users: `user-loadtest-00001` to `user-loadtest-01000` of the
    /// 10,000 mock-idp and node-oidc-provider make, password `loadtest`.
    fn default() -> Self {
        Self {
            prefix: "user-loadtest-".to_owned(),
            password: "loadtest".to_owned(),
            count: 1000,
        }
    }
}

impl TestUsers {
    /// The user iteration `iteration` signs in as.
    pub fn for_iteration(&self, iteration: u64) -> String {
        let count = self.count.max(1) as u64;
        test_user_name(
            &self.prefix,
            usize::try_from(iteration % count).unwrap_or(0),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterations_take_the_users_in_turn() {
        let users = TestUsers {
            count: 3,
            ..TestUsers::default()
        };
        let names: Vec<String> = (0..4).map(|n| users.for_iteration(n)).collect();
        assert_eq!(
            names,
            [
                "user-loadtest-00001",
                "user-loadtest-00002",
                "user-loadtest-00003",
                "user-loadtest-00001"
            ]
        );
    }
}
