//! Fuzz target: loadgen's seed files, read as `Seeds::load` reads each of the three and then used
//! as a run uses them (the seeds check, the code-age check, the token request bodies, the session
//! cookie as a header) and written back as `Seeds::save` writes them, which must read back the same.

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use loadgen::plan::schedule::Schedule;
use loadgen::plan::shard::Shard;
use loadgen::protocol::client_credentials::ClientCredentials;
use loadgen::protocol::token_request::{code_grant_body, refresh_grant_body};
use loadgen::seeding::seed_files::{
    CodeSeed, RefreshTokenSeed, SessionSeed, check_code_ages, parse_list, unix_now,
};
use loadgen::{LoadProfile, ScenarioKind, Seeds};
use serde::Serialize;
use strum::IntoEnumIterator as _;

fuzz_target!(|data: &[u8]| run(data));

/// A short profile, so that the code-age check looks at a few dozen scheduled iterations.
fn profile() -> LoadProfile {
    LoadProfile {
        rate_per_s: 10.0,
        ramp_up_s: 1.0,
        steady_s: 2.0,
        ramp_down_s: 1.0,
    }
}

fn schedule() -> &'static Schedule {
    static SCHEDULE: OnceLock<Schedule> = OnceLock::new();
    SCHEDULE.get_or_init(|| Schedule::new(&profile().stages()).expect("a valid schedule"))
}

/// What `Seeds::save` writes must be what `Seeds::load` reads.
fn round_trips<T>(list: &[T])
where
    T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let written = serde_json::to_string_pretty(list).expect("seeds serialise");
    let read: Vec<T> = parse_list(&written).expect("written seeds read back");
    assert_eq!(read, list, "seeds changed on a write and read back");
}

fn run(data: &[u8]) {
    // `Seeds::load` reads the files as UTF-8 text: other bytes fail before any parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let client = ClientCredentials::default();
    let mut seeds = Seeds::default();
    if let Ok(codes) = parse_list::<CodeSeed>(text) {
        round_trips(&codes);
        let _ = check_code_ages(
            &codes,
            schedule(),
            Shard::WHOLE,
            unix_now(),
            Duration::from_secs(600),
        );
        for code in &codes {
            let _ = code_grant_body(&client, &code.code, &code.redirect_uri, &code.code_verifier);
        }
        seeds.authorization_codes = codes;
    }
    if let Ok(families) = parse_list::<RefreshTokenSeed>(text) {
        round_trips(&families);
        for family in &families {
            let _ = refresh_grant_body(&client, &family.refresh_token);
        }
        seeds.refresh_tokens = families;
    }
    if let Ok(sessions) = parse_list::<SessionSeed>(text) {
        round_trips(&sessions);
        for session in &sessions {
            let _ = HeaderValue::from_str(&session.cookie);
        }
        seeds.sessions = sessions;
    }
    for scenario in ScenarioKind::iter() {
        for max_vus in [1, 50] {
            let _ = scenario.check_seeds(
                &seeds,
                profile().scheduled_iterations(),
                max_vus,
                Shard::WHOLE,
            );
        }
    }
}
