//! The test users a load test signs in as: `{prefix}{n:05}` from 1, all with one password, as
//! the repository's providers (mock-idp, node-oidc-provider, the Keycloak realm) create them.

/// The name of test user `number` (from 0) of `prefix`: `{prefix}{number + 1:05}`.
pub fn test_user_name(prefix: &str, number: usize) -> String {
    format!("{prefix}{:05}", number + 1)
}

/// The number (from 0) of the test user `name` of `prefix`, when it is one.
pub fn test_user_number(prefix: &str, name: &str) -> Option<usize> {
    let digits = name.strip_prefix(prefix)?;
    let number: usize = digits.parse().ok()?;
    number.checked_sub(1)
}

/// The range of test users the `login` scenario signs in as, round-robin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestUsers {
    /// Users are `{prefix}00001` ...
    pub prefix: String,
    /// Every user's password.
    pub password: String,
    /// How many users there are; iteration `n` signs in as user `first + n % count`.
    pub count: usize,
    /// The first user's number, from 0.
    pub first: usize,
}

impl Default for TestUsers {
    /// The repository's providers' users: `user-loadtest-00001` to `user-loadtest-01000` of the
    /// 10,000 mock-idp and node-oidc-provider make, password `loadtest`.
    fn default() -> Self {
        Self {
            prefix: "user-loadtest-".to_owned(),
            password: "loadtest".to_owned(),
            count: 1000,
            first: 0,
        }
    }
}

impl TestUsers {
    /// The user iteration `iteration` signs in as.
    pub fn for_iteration(&self, iteration: u64) -> String {
        let count = self.count.max(1) as u64;
        let offset = usize::try_from(iteration % count).unwrap_or(0);
        test_user_name(&self.prefix, self.first + offset)
    }

    /// The same users moved past every user of `seeded` (names of seeded users): sign-ins never
    /// touch a user whose refresh-token family or session another scenario uses, since some
    /// providers keep one family per user and client and end it at a new sign-in.
    pub fn after(mut self, seeded: impl IntoIterator<Item = impl AsRef<str>>) -> Self {
        let past_seeds = seeded
            .into_iter()
            .filter_map(|name| test_user_number(&self.prefix, name.as_ref()))
            .map(|number| number + 1)
            .max()
            .unwrap_or(0);
        self.first = self.first.max(past_seeds);
        self
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

    #[test]
    fn sign_ins_begin_after_the_seeded_users() {
        let users = TestUsers {
            count: 2,
            ..TestUsers::default()
        }
        .after(["user-loadtest-00007", "user-loadtest-00003", "someone-else"]);
        assert_eq!(users.first, 7);
        assert_eq!(users.for_iteration(0), "user-loadtest-00008");
        assert_eq!(users.for_iteration(3), "user-loadtest-00009");
        assert_eq!(
            test_user_number("user-loadtest-", "user-loadtest-00001"),
            Some(0)
        );
        assert_eq!(test_user_number("user-loadtest-", "user-loadtest-x"), None);
    }
}
