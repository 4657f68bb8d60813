//! Seed files (formats compatible with the specification's k6 scripts) and how many a run needs.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::atomic_file::write_atomically;
use crate::plan::schedule::LoadProfile;
use crate::plan::shard::Shard;

/// File name of the authorization-code seeds.
pub const AUTHORIZATION_CODES_FILE: &str = "authorization_codes.json";
/// File name of the refresh-token families.
pub const REFRESH_TOKENS_FILE: &str = "refresh_tokens.json";
/// File name of the login sessions.
pub const SESSIONS_FILE: &str = "sessions.json";
/// File naming the shard the seeds of a directory were made for (`loadgen seed --shard`); the
/// three lists keep the k6 scripts' format, so the shard cannot live in them.
pub const SHARD_FILE: &str = "shard.json";

/// One pre-minted authorization code with what redeeming it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeSeed {
    /// The one-time authorization code.
    pub code: String,
    /// The PKCE verifier whose S256 challenge was sent to `/authorize`.
    pub code_verifier: String,
    /// The redirect URI of the authorization request (must match exactly at `/token`).
    pub redirect_uri: String,
    /// The client the code was issued to.
    pub client_id: String,
    /// The user who authorized it.
    pub user_id: String,
    /// The nonce sent to `/authorize`, expected back in the ID token.
    pub nonce: String,
    /// When the code was minted, Unix seconds (absent in seeds made elsewhere): a run checks it
    /// against the provider's code lifetime (`--code-lifetime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minted_at: Option<u64>,
    /// The `sub` the provider gave the user when it signed in during seeding, which every token
    /// issued for the user must carry; absent in seeds made elsewhere or by an older loadgen, or
    /// when the provider issued no ID token to learn it from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// The first refresh token of one independent family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshTokenSeed {
    /// The family's user; one family per user.
    pub user_id: String,
    /// The newest refresh token of the family.
    pub refresh_token: String,
    /// The client the family belongs to.
    pub client_id: String,
    /// The `sub` the provider gave the user when it signed in during seeding, which every token
    /// issued for the user must carry; absent in seeds made elsewhere or by an older loadgen, or
    /// when the provider issued no ID token to learn it from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// A logged-in browser session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSeed {
    /// The session's user.
    pub user_id: String,
    /// The `Cookie` header pair, `name=value`, to send with `/authorize`.
    pub cookie: String,
    /// The `sub` the provider gave the user when it signed in during seeding, which every token
    /// issued for the user must carry; absent in seeds made elsewhere or by an older loadgen, or
    /// when the provider issued no ID token to learn it from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// All seeds of a directory; files that are absent load as empty lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seeds {
    /// `authorization_codes.json`.
    pub authorization_codes: Vec<CodeSeed>,
    /// `refresh_tokens.json`.
    pub refresh_tokens: Vec<RefreshTokenSeed>,
    /// `sessions.json`.
    pub sessions: Vec<SessionSeed>,
    /// The shard these seeds were made for (`shard.json`); `None` for a whole run's seeds, of
    /// which each shard takes its slice.
    pub shard: Option<Shard>,
}

/// What `shard.json` holds.
#[derive(Debug, Serialize, Deserialize)]
struct ShardFile {
    shard: Shard,
}

/// Seeds made for one shard given to another.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "these seeds were made for shard {made_for} (their {SHARD_FILE} says so), not for shard \
     {wanted}: give this shard its own seeds (`loadgen seed --shard {wanted}`) or seeds made for \
     the whole run, of which each shard takes its slice"
)]
pub struct SeedsOfAnotherShard {
    /// The shard the seeds are for.
    pub made_for: Shard,
    /// The shard that was to run on them.
    pub wanted: Shard,
}

/// Why seeds could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SeedFileError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not in the seed format.
    #[error("{path}: not a seed file: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
}

fn read_list<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, SeedFileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(SeedFileError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    parse_list(&text).map_err(|source| SeedFileError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// The seeds of one file's text, as [`Seeds::load`] reads each file: public so that the fuzz
/// target (`fuzz/fuzz_targets/loadgen_seed_files.rs`) reads them exactly as a run does.
pub fn parse_list<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, serde_json::Error> {
    serde_json::from_str(text)
}

fn write_list<T: Serialize>(path: &Path, items: &[T]) -> Result<(), SeedFileError> {
    let mut text = serde_json::to_vec_pretty(items).map_err(|source| SeedFileError::Parse {
        path: path.to_owned(),
        source,
    })?;
    text.push(b'\n');
    write_atomically(path, &text).map_err(|source| SeedFileError::Io {
        path: path.to_owned(),
        source,
    })
}

impl Seeds {
    /// Loads the three files of `directory`; a missing file is an empty list.
    pub fn load(directory: &Path) -> Result<Self, SeedFileError> {
        let shard_path = directory.join(SHARD_FILE);
        let shard = match std::fs::read_to_string(&shard_path) {
            Ok(text) => Some(
                serde_json::from_str::<ShardFile>(&text)
                    .map_err(|source| SeedFileError::Parse {
                        path: shard_path,
                        source,
                    })?
                    .shard,
            ),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(SeedFileError::Io {
                    path: shard_path,
                    source,
                });
            }
        };
        Ok(Self {
            authorization_codes: read_list(&directory.join(AUTHORIZATION_CODES_FILE))?,
            refresh_tokens: read_list(&directory.join(REFRESH_TOKENS_FILE))?,
            sessions: read_list(&directory.join(SESSIONS_FILE))?,
            shard,
        })
    }

    /// The seeds shard `shard` runs on: these, when they were made for it; its slice (every
    /// N-th seed of each list, from its index) when they were made for the whole run.
    pub fn for_shard(self, shard: Shard) -> Result<Self, SeedsOfAnotherShard> {
        match self.shard {
            Some(made_for) if made_for == shard => Ok(self),
            Some(made_for) => Err(SeedsOfAnotherShard {
                made_for,
                wanted: shard,
            }),
            None if shard.is_whole() => Ok(self),
            None => Ok(Self {
                authorization_codes: shard.slice(&self.authorization_codes),
                refresh_tokens: shard.slice(&self.refresh_tokens),
                sessions: shard.slice(&self.sessions),
                shard: Some(shard),
            }),
        }
    }

    /// Writes the three files into `directory` (created if needed), each atomically.
    pub fn save(&self, directory: &Path) -> Result<(), SeedFileError> {
        std::fs::create_dir_all(directory).map_err(|source| SeedFileError::Io {
            path: directory.to_owned(),
            source,
        })?;
        write_list(
            &directory.join(AUTHORIZATION_CODES_FILE),
            &self.authorization_codes,
        )?;
        write_list(&directory.join(REFRESH_TOKENS_FILE), &self.refresh_tokens)?;
        write_list(&directory.join(SESSIONS_FILE), &self.sessions)?;
        let shard_path = directory.join(SHARD_FILE);
        match self.shard.filter(|shard| !shard.is_whole()) {
            Some(shard) => {
                let mut text =
                    serde_json::to_vec_pretty(&ShardFile { shard }).map_err(|source| {
                        SeedFileError::Parse {
                            path: shard_path.clone(),
                            source,
                        }
                    })?;
                text.push(b'\n');
                write_atomically(&shard_path, &text).map_err(|source| SeedFileError::Io {
                    path: shard_path,
                    source,
                })
            }
            // Whole-run seeds written where a shard's were must not keep claiming a shard.
            None => match std::fs::remove_file(&shard_path) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    Err(SeedFileError::Io {
                        path: shard_path,
                        source: error,
                    })
                }
                _ => Ok(()),
            },
        }
    }
}

/// Authorization codes a profile consumes (one per scheduled iteration) plus a 1 % margin
/// (at least 10), so that a slightly longer schedule never runs dry mid-test.
pub fn required_codes(profile: &LoadProfile) -> u64 {
    codes_for_iterations(profile.scheduled_iterations())
}

/// Authorization codes `iterations` consume, one each, plus a 1 % margin (at least 10).
pub fn codes_for_iterations(iterations: u64) -> u64 {
    let margin = (iterations / 100).max(10);
    iterations + margin
}

/// Authorization codes to seed for a TEST 1 of `profile`: what it requires, rounded up to whole
/// thousands, which is the specification's 40,000 for its standard profile (39,390 required).
pub fn codes_to_seed(profile: &LoadProfile) -> u64 {
    codes_to_make(required_codes(profile))
}

/// Authorization codes to seed when `needed` are needed: rounded up to whole thousands.
pub fn codes_to_make(needed: u64) -> u64 {
    needed.div_ceil(1_000) * 1_000
}

/// Refresh-token families to seed for `vus` virtual users holding one each: 10 % spares for the
/// VUs whose family is in doubt after a transport error.
pub fn families_to_make(vus: u64) -> u64 {
    vus + vus.div_ceil(10)
}

/// Unix time in seconds, as seeds record it.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Authorization codes that would be older than the provider's code lifetime when their
/// iteration is due.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{too_old} of the {checked} authorization codes would be older than the code lifetime of \
     {lifetime_s} s when used (the oldest {oldest_s} s): seed them again just before the run, \
     shorten the test, or raise the provider's code lifetime for the test client"
)]
pub struct CodesTooOld {
    /// Codes that would have expired.
    pub too_old: u64,
    /// Codes the run would use.
    pub checked: u64,
    /// The lifetime, seconds.
    pub lifetime_s: u64,
    /// Age of the oldest at its use, seconds.
    pub oldest_s: u64,
}

/// Refuses codes whose age at their scheduled use (`now_s` plus the offset of the shard's
/// iteration `i` in `schedule`) would reach `lifetime`. Codes that do not record when they were
/// minted pass.
pub fn check_code_ages(
    codes: &[CodeSeed],
    schedule: &crate::plan::schedule::Schedule,
    shard: Shard,
    now_s: u64,
    lifetime: std::time::Duration,
) -> Result<(), CodesTooOld> {
    let lifetime_s = lifetime.as_secs();
    let (mut too_old, mut checked, mut oldest_s) = (0, 0, 0);
    let owned = schedule.iter().filter(|due| shard.owns(due.index));
    for (due, code) in owned.zip(codes) {
        let Some(minted_at) = code.minted_at else {
            continue;
        };
        checked += 1;
        let age = (now_s + due.offset.as_secs()).saturating_sub(minted_at);
        oldest_s = oldest_s.max(age);
        if age >= lifetime_s {
            too_old += 1;
        }
    }
    if too_old > 0 {
        return Err(CodesTooOld {
            too_old,
            checked,
            lifetime_s,
            oldest_s,
        });
    }
    Ok(())
}

/// Seeds missing for a run, with what is needed and what there is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "too few {kind}: the run needs {needed} ({why}), the seeds hold {available}; \
     make more with `loadgen seed`"
)]
pub struct NotEnoughSeeds {
    /// `authorization codes`, `refresh-token families` or `sessions`.
    pub kind: &'static str,
    /// How many the run needs.
    pub needed: u64,
    /// How many there are.
    pub available: u64,
    /// How `needed` was computed.
    pub why: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_profile_needs_fewer_than_40000_codes() {
        let profile = LoadProfile {
            rate_per_s: 300.0,
            ramp_up_s: 10.0,
            steady_s: 120.0,
            ramp_down_s: 10.0,
        };
        assert_eq!(required_codes(&profile), 39_390);
        assert_eq!(codes_to_seed(&profile), 40_000);
    }

    #[test]
    fn codes_too_old_at_their_use_are_counted_and_explained() {
        let schedule =
            crate::plan::schedule::Schedule::new(&profile_of(10.0, 10.0).stages()).unwrap();
        let code = |minted_at| CodeSeed {
            code: "c".into(),
            code_verifier: "v".into(),
            redirect_uri: "r".into(),
            client_id: "c".into(),
            user_id: "u".into(),
            nonce: "n".into(),
            minted_at,
            subject: None,
        };
        // 100 iterations over 10 s; codes minted 55 s before the start reach 60 s from 5 s on.
        let codes: Vec<CodeSeed> = (0..100).map(|_| code(Some(1_000 - 55))).collect();
        let error = check_code_ages(
            &codes,
            &schedule,
            Shard::WHOLE,
            1_000,
            std::time::Duration::from_secs(60),
        )
        .unwrap_err();
        assert_eq!(
            (error.too_old, error.checked, error.oldest_s),
            (50, 100, 64)
        );
        assert!(
            error
                .to_string()
                .starts_with("50 of the 100 authorization codes"),
            "{error}"
        );
        assert!(
            check_code_ages(
                &codes,
                &schedule,
                Shard::WHOLE,
                1_000,
                std::time::Duration::from_secs(120)
            )
            .is_ok()
        );
        let unknown: Vec<CodeSeed> = (0..100).map(|_| code(None)).collect();
        assert!(
            check_code_ages(
                &unknown,
                &schedule,
                Shard::WHOLE,
                1_000,
                std::time::Duration::from_secs(1)
            )
            .is_ok()
        );
    }

    fn profile_of(rate: f64, steady_s: f64) -> LoadProfile {
        LoadProfile {
            rate_per_s: rate,
            ramp_up_s: 0.0,
            steady_s,
            ramp_down_s: 0.0,
        }
    }

    #[test]
    fn seeds_round_trip_and_missing_files_are_empty() {
        let temporary = tempfile::tempdir().unwrap();
        let directory = temporary.path().join("seeds");
        assert_eq!(Seeds::load(&directory).unwrap(), Seeds::default());
        let seeds = Seeds {
            authorization_codes: vec![CodeSeed {
                code: "c".into(),
                code_verifier: "v".into(),
                redirect_uri: "http://127.0.0.1:3000/callback".into(),
                client_id: "loadtest-client".into(),
                user_id: "user-loadtest-00001".into(),
                nonce: "n".into(),
                minted_at: Some(1_795_000_000),
                subject: Some("248289761001".into()),
            }],
            refresh_tokens: vec![RefreshTokenSeed {
                user_id: "user-loadtest-00001".into(),
                refresh_token: "rt".into(),
                client_id: "loadtest-client".into(),
                subject: Some("248289761001".into()),
            }],
            sessions: vec![SessionSeed {
                user_id: "user-loadtest-00001".into(),
                cookie: "mock_idp_session=abc".into(),
                subject: Some("248289761001".into()),
            }],
            shard: None,
        };
        seeds.save(&directory).unwrap();
        assert_eq!(Seeds::load(&directory).unwrap(), seeds);
        let text = std::fs::read_to_string(directory.join(REFRESH_TOKENS_FILE)).unwrap();
        let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(raw[0]["refresh_token"], "rt");

        // A shard's seeds say so in shard.json (the lists keep the k6 format); whole-run seeds
        // saved over them take the claim away.
        let shard: Shard = "1/3".parse().unwrap();
        let for_shard = Seeds {
            shard: Some(shard),
            ..seeds.clone()
        };
        for_shard.save(&directory).unwrap();
        assert_eq!(
            std::fs::read_to_string(directory.join(SHARD_FILE)).unwrap(),
            "{\n  \"shard\": \"1/3\"\n}\n"
        );
        assert_eq!(Seeds::load(&directory).unwrap(), for_shard);
        seeds.save(&directory).unwrap();
        assert!(!directory.join(SHARD_FILE).exists());
        assert_eq!(Seeds::load(&directory).unwrap().shard, None);
        std::fs::write(directory.join(SESSIONS_FILE), "{").unwrap();
        assert!(matches!(
            Seeds::load(&directory),
            Err(SeedFileError::Parse { .. })
        ));
    }

    #[test]
    fn seeds_without_subjects_are_still_read() {
        // The files of an older loadgen, or of the specification's k6 scripts, name no subject.
        let temporary = tempfile::tempdir().unwrap();
        let directory = temporary.path();
        std::fs::write(
            directory.join(AUTHORIZATION_CODES_FILE),
            r#"[{"code": "c", "code_verifier": "v", "redirect_uri": "r", "client_id": "cl",
                "user_id": "user-loadtest-00001", "nonce": "n"}]"#,
        )
        .unwrap();
        std::fs::write(
            directory.join(REFRESH_TOKENS_FILE),
            r#"[{"user_id": "user-loadtest-00001", "refresh_token": "rt", "client_id": "cl"}]"#,
        )
        .unwrap();
        std::fs::write(
            directory.join(SESSIONS_FILE),
            r#"[{"user_id": "user-loadtest-00001", "cookie": "s=1"}]"#,
        )
        .unwrap();
        let seeds = Seeds::load(directory).unwrap();
        assert_eq!(seeds.authorization_codes[0].subject, None);
        assert_eq!(seeds.refresh_tokens[0].subject, None);
        assert_eq!(seeds.sessions[0].subject, None);
        // And written back the same way: no subject key when none is known.
        seeds.save(directory).unwrap();
        let text = std::fs::read_to_string(directory.join(SESSIONS_FILE)).unwrap();
        assert!(!text.contains("subject"), "{text}");
    }
}
