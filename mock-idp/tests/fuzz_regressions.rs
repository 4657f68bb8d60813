//! The inputs that made the `mock_idp_handle` fuzz target fail (`cargo xtask fuzz`), kept as
//! requests in `tests/fuzz_regressions/*.http` and sent through `App::handle` of a provider with
//! the documented defaults: none may be answered 5xx, the invariant the fuzz target checks.
//!
//! A file holds requests separated by a `###` line, each a request line (`POST /login`), header
//! lines (`name: value`), an empty line and the body, whose last line break is not part of it.
//! `{session}` in a header or body is the session cookie value of the latest login (`/login`
//! answered with one), as the fuzz target's "earlier" values are.

mod support;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::Full;
use mock_idp::SESSION_COOKIE;
use support::TestIdp;

/// One request of a regression file.
#[derive(Debug)]
struct Recorded {
    method: Method,
    target: String,
    headers: Vec<(String, String)>,
    body: String,
}

fn parse(text: &str) -> Result<Vec<Recorded>> {
    let mut requests = Vec::new();
    for block in text.split("\n###\n") {
        let (head, body) = block.split_once("\n\n").unwrap_or((block, ""));
        let mut lines = head.lines();
        let request_line = lines.next().context("a request without a request line")?;
        let (method, target) = request_line
            .split_once(' ')
            .with_context(|| format!("not a request line: {request_line:?}"))?;
        let headers = lines
            .map(|line| {
                line.split_once(':')
                    .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
                    .with_context(|| format!("not a header line: {line:?}"))
            })
            .collect::<Result<_>>()?;
        requests.push(Recorded {
            method: Method::from_bytes(method.as_bytes())?,
            target: target.to_owned(),
            headers,
            body: body.strip_suffix('\n').unwrap_or(body).to_owned(),
        });
    }
    Ok(requests)
}

fn regression_files() -> Result<Vec<PathBuf>> {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&directory)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|path| {
        path.extension()
            .is_some_and(|extension| extension == "http")
    });
    files.sort();
    Ok(files)
}

#[tokio::test]
async fn no_input_that_failed_the_fuzz_target_gets_a_5xx() -> Result<()> {
    let files = regression_files()?;
    if files.is_empty() {
        bail!("tests/fuzz_regressions holds no .http file: the regressions were lost");
    }
    for file in files {
        let name = file.display();
        let idp = TestIdp::start().await?;
        let mut session = String::new();
        for recorded in parse(&std::fs::read_to_string(&file)?)? {
            let fill = |text: &str| text.replace("{session}", &session);
            let mut request = Request::builder()
                .method(recorded.method.clone())
                .uri(idp.url(&fill(&recorded.target)));
            for (header_name, value) in &recorded.headers {
                request = request.header(header_name.as_str(), fill(value));
            }
            let reply = idp
                .send(request.body(Full::new(Bytes::from(fill(&recorded.body))))?)
                .await?;
            assert!(
                !reply.status.is_server_error(),
                "{name}: {} {} answered {}: {}",
                recorded.method,
                recorded.target,
                reply.status,
                String::from_utf8_lossy(&reply.body)
            );
            if let Some(value) = reply
                .headers
                .get_all(header::SET_COOKIE)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .find_map(|value| value.strip_prefix(&format!("{SESSION_COOKIE}=")))
            {
                session = value.split(';').next().unwrap_or_default().to_owned();
            }
        }
    }
    Ok(())
}

#[test]
fn regression_files_parse_into_requests() -> Result<()> {
    let requests = parse(
        "POST /login\ncontent-type: application/x-www-form-urlencoded\n\na=1\n###\nGET /jwks\n",
    )?;
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].method, Method::POST);
    assert_eq!(requests[0].headers.len(), 1);
    assert_eq!(requests[0].body, "a=1");
    assert_eq!(requests[1].target, "/jwks");
    assert_eq!(requests[1].body, "");
    Ok(())
}
