//! Bad input, limits and faults: every malformed request answers a 4xx RFC 6749 error JSON and
//! the server keeps serving; bodies are capped, slow headers are cut off, faults are injected
//! exactly, test endpoints hide unless enabled, and shutdown is graceful.

mod support;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use http::{StatusCode, header};
use mock_idp::{Fault, FaultKind};
use serde_json::json;
use support::{TestIdp, text};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[tokio::test]
async fn every_malformed_token_request_is_a_4xx_json_error() -> Result<()> {
    let idp = TestIdp::start().await?;
    let basic = mock_idp::clients::basic_authorization("loadtest-client", "loadtest-secret");
    let auth: &[(&str, &str)] = &[("authorization", basic.as_str())];
    /// Name, body, headers, expected `error`.
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case<'_>; 10] = [
        (
            "bad percent-encoding",
            "grant_type=authorization_code&code=%zz",
            auth,
            "invalid_request",
        ),
        (
            "invalid UTF-8",
            "grant_type=client_credentials&scope=%FF%FE",
            auth,
            "invalid_request",
        ),
        (
            "duplicate parameter",
            "grant_type=client_credentials&grant_type=client_credentials",
            auth,
            "invalid_request",
        ),
        ("missing grant_type", "code=abc", auth, "invalid_request"),
        (
            "missing code",
            "grant_type=authorization_code",
            auth,
            "invalid_request",
        ),
        (
            "unknown grant",
            "grant_type=password&username=a&password=b",
            auth,
            "unsupported_grant_type",
        ),
        (
            "garbage Authorization",
            "grant_type=client_credentials",
            &[("authorization", "Basic %%%not-base64%%%")],
            "invalid_client",
        ),
        (
            "Bearer at the token endpoint",
            "grant_type=client_credentials",
            &[("authorization", "Bearer x")],
            "invalid_client",
        ),
        (
            "two authentication methods",
            "grant_type=client_credentials&client_secret=loadtest-secret",
            auth,
            "invalid_request",
        ),
        (
            "unknown refresh token",
            "grant_type=refresh_token&refresh_token=nope",
            auth,
            "invalid_grant",
        ),
    ];
    for (name, body, headers, expected) in cases {
        let reply = idp.post_raw("/token", body, headers).await?;
        assert!(reply.status.is_client_error(), "{name}: {}", reply.status);
        assert_eq!(reply.error_code()?, expected, "{name}");
        assert!(reply.json()?["error_description"].is_string(), "{name}");
    }

    let wrong_type = idp
        .send(
            http::Request::post(idp.url("/token"))
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::AUTHORIZATION, &basic)
                .body(r#"{"grant_type":"client_credentials"}"#.to_owned().into())?,
        )
        .await?;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong_type.error_code()?, "invalid_request");

    // A 405 names the methods the path does take (RFC 9110 15.5.6).
    for (path, allow) in [
        ("/token", "POST"),
        ("/introspect", "POST"),
        ("/metrics", "GET"),
    ] {
        let get = if allow == "POST" {
            idp.get(path, &[]).await?
        } else {
            idp.post_form(path, &[], &[]).await?
        };
        assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(get.header(header::ALLOW), Some(allow), "{path}");
    }
    let delete = idp
        .send(
            http::Request::delete(idp.url("/.well-known/openid-configuration"))
                .body(String::new().into())?,
        )
        .await?;
    assert_eq!(delete.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(delete.header(header::ALLOW), Some("GET, HEAD"));
    let unknown = idp.get("/nowhere", &[]).await?;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.json().is_ok());

    // Nothing broke.
    let tokens = idp.tokens("user-loadtest-00001").await?;
    assert!(tokens.get("access_token").is_some());
    Ok(())
}

#[tokio::test]
async fn oversized_bodies_answer_413() -> Result<()> {
    let idp = TestIdp::over_tcp_with(|config| config.max_body_bytes = 1024).await?;
    let big = format!("grant_type=client_credentials&pad={}", "a".repeat(4096));
    let reply = idp.post_raw("/token", &big, &[]).await?;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.error_code()?, "invalid_request");

    // Without a Content-Length (chunked), the cap holds while reading.
    let mut stream = tokio::net::TcpStream::connect(idp.server()?.addr()).await?;
    let chunk = "a".repeat(2000);
    let request = format!(
        "POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = vec![0u8; 512];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut response)).await??;
    let head = String::from_utf8_lossy(&response[..read]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");

    assert_eq!(idp.get("/jwks", &[]).await?.status, StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn headers_must_arrive_in_time() -> Result<()> {
    let idp =
        TestIdp::over_tcp_with(|config| config.header_read_timeout = Duration::from_millis(300))
            .await?;
    let mut stream = tokio::net::TcpStream::connect(idp.server()?.addr()).await?;
    stream
        .write_all(b"GET /jwks HTTP/1.1\r\nHost: x\r\n")
        .await?;
    let started = Instant::now();
    let mut buffer = [0u8; 256];
    // The server gives up on the unfinished request and closes the connection.
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await?;
    let elapsed = started.elapsed();
    match read {
        Ok(0) | Err(_) => {}
        Ok(n) => {
            let text = String::from_utf8_lossy(&buffer[..n]);
            assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        }
    }
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
    assert_eq!(idp.get("/jwks", &[]).await?.status, StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn a_body_trickled_too_slowly_answers_408_and_closes() -> Result<()> {
    let idp = TestIdp::over_tcp_with(|config| config.request_timeout = Duration::from_millis(300))
        .await?;
    let stream = tokio::net::TcpStream::connect(idp.server()?.addr()).await?;
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(
            b"POST /token HTTP/1.1\r\nHost: x\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n",
        )
        .await?;
    // One byte every 100 ms: 10 s for the whole body, far past the timeout.
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            if writer.write_all(b"a").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let started = Instant::now();
    let mut answer = Vec::new();
    // The server answers 408 and closes: reading ends well before the body would have.
    tokio::time::timeout(Duration::from_secs(5), reader.read_to_end(&mut answer)).await??;
    let elapsed = started.elapsed();
    trickle.abort();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    // Nothing broke.
    assert_eq!(idp.get("/jwks", &[]).await?.status, StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn connections_past_the_cap_wait_until_one_closes() -> Result<()> {
    let idp = TestIdp::over_tcp_with(|config| config.max_connections = 1).await?;
    let addr = idp.server()?.addr();
    let request = b"GET /jwks HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut first = tokio::net::TcpStream::connect(addr).await?;
    first.write_all(request).await?;
    let mut buffer = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), first.read(&mut buffer)).await??;
    assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));

    // The first connection is kept alive, so the second is not served yet.
    let mut second = tokio::net::TcpStream::connect(addr).await?;
    second.write_all(request).await?;
    let waited = tokio::time::timeout(Duration::from_millis(500), second.read(&mut buffer)).await;
    assert!(
        waited.is_err(),
        "the second connection was served past the cap"
    );

    drop(first);
    let n = tokio::time::timeout(Duration::from_secs(5), second.read(&mut buffer)).await??;
    assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));
    Ok(())
}

#[tokio::test]
async fn test_endpoints_beyond_loopback_are_refused_unless_forced() -> Result<()> {
    let config = mock_idp::Config {
        addr: "0.0.0.0:0".parse()?,
        enable_test_endpoints: true,
        ..mock_idp::Config::ephemeral()
    };
    let error = mock_idp::spawn(config)
        .await
        .err()
        .context("mock-idp served /_test/ beyond loopback")?;
    assert!(matches!(
        error,
        mock_idp::StartError::TestEndpointsBeyondLoopback { .. }
    ));
    assert!(
        error
            .to_string()
            .contains("--allow-test-endpoints-beyond-loopback")
    );
    Ok(())
}

#[tokio::test]
async fn a_minting_batch_does_not_hold_up_other_requests() -> Result<()> {
    // One thread, as in `#[tokio::test]`: a batch signed on it would hold every other request
    // until all its tokens were signed.
    let idp = TestIdp::with(|config| config.enable_test_endpoints = true).await?;
    let users: Vec<u32> = (1..=300).collect();
    let finished = std::sync::Mutex::new(Vec::new());
    let batch = async {
        let reply = idp
            .post_raw("/_test/mint-tokens-batch", &json!(users).to_string(), &[])
            .await;
        finished.lock().unwrap().push("batch");
        reply
    };
    let discovery = async {
        let reply = idp.get("/.well-known/openid-configuration", &[]).await;
        finished.lock().unwrap().push("discovery");
        reply
    };
    let (batch, discovery) = tokio::join!(batch, discovery);
    assert_eq!(batch?.status, StatusCode::OK);
    assert_eq!(discovery?.status, StatusCode::OK);
    assert_eq!(*finished.lock().unwrap(), ["discovery", "batch"]);
    Ok(())
}

#[tokio::test]
async fn injected_faults_hit_exactly_their_fraction() -> Result<()> {
    let idp = TestIdp::with(|config| {
        config.faults = vec![
            Fault {
                kind: FaultKind::Unauthorized,
                fraction: 0.25,
            },
            Fault {
                kind: FaultKind::ServerError,
                fraction: 0.1,
            },
        ];
    })
    .await?;
    let mut statuses = Vec::new();
    for _ in 0..40 {
        statuses.push(
            idp.token(&[("grant_type", "client_credentials")])
                .await?
                .status,
        );
    }
    let count = |status| statuses.iter().filter(|seen| **seen == status).count();
    assert_eq!(count(StatusCode::UNAUTHORIZED), 10);
    // The 500 fault counts only the requests the 401 fault let through: 30 of them.
    assert_eq!(count(StatusCode::INTERNAL_SERVER_ERROR), 3);
    assert_eq!(count(StatusCode::OK), 27);
    assert_eq!(
        idp.metric(r#"mock_idp_faults_injected_total{kind="unauthorized"}"#)
            .await?,
        10
    );
    // Faults touch only the token endpoint.
    assert_eq!(idp.get("/jwks", &[]).await?.status, StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn injected_delays_slow_token_requests() -> Result<()> {
    let idp = TestIdp::with(|config| {
        config.faults = vec![Fault {
            kind: FaultKind::Delay(Duration::from_millis(300)),
            fraction: 1.0,
        }];
    })
    .await?;
    let started = Instant::now();
    let reply = idp.token(&[("grant_type", "client_credentials")]).await?;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
    Ok(())
}

#[tokio::test]
async fn test_endpoints_are_404_and_undiscoverable_unless_enabled() -> Result<()> {
    let idp = TestIdp::start().await?;
    for path in [
        "/_test/mint-token",
        "/_test/mint-tokens-batch",
        "/_test/debug-token",
    ] {
        let reply = idp.post_raw(path, r#"{"user_id": 1}"#, &[]).await?;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }
    let discovery = idp.get("/.well-known/openid-configuration", &[]).await?;
    assert!(!String::from_utf8(discovery.body.to_vec())?.contains("_test"));

    let idp = TestIdp::with(|config| config.enable_test_endpoints = true).await?;
    let discovery = idp
        .get("/.well-known/openid-configuration", &[])
        .await?
        .json()?;
    assert!(discovery["x_test_endpoints"]["mint_token"].is_string());
    let minted = idp
        .post_raw(
            "/_test/mint-token",
            r#"{"user_id": "user-loadtest-00005"}"#,
            &[],
        )
        .await?;
    assert_eq!(minted.status, StatusCode::OK, "{:?}", minted.body);
    let access_token = text(&minted.json()?, "access_token")?;
    assert_eq!(
        idp.userinfo(&access_token).await?.json()?["sub"],
        "user-loadtest-00005"
    );

    let batch = idp
        .post_raw("/_test/mint-tokens-batch", "[1, 2, 3]", &[])
        .await?
        .json()?;
    assert_eq!(
        batch["tokens"].as_object().map(|tokens| tokens.len()),
        Some(3)
    );
    assert!(batch["tokens"]["user-loadtest-00002"]["access_token"].is_string());

    let debug = idp
        .post_raw("/_test/debug-token", &json!(access_token).to_string(), &[])
        .await?
        .json()?;
    assert_eq!(debug["valid"], true);
    assert_eq!(debug["claims"]["sub"], "user-loadtest-00005");
    let debug = idp
        .post_raw("/_test/debug-token", r#""abc""#, &[])
        .await?
        .json()?;
    assert_eq!(debug["valid"], false);

    let bad = idp.post_raw("/_test/mint-token", "{not json", &[]).await?;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let unknown_user = idp
        .post_raw("/_test/mint-token", r#"{"user_id": 999999}"#, &[])
        .await?;
    assert_eq!(unknown_user.error_code()?, "invalid_request");
    Ok(())
}

#[tokio::test]
async fn metrics_count_requests_and_tokens() -> Result<()> {
    let idp = TestIdp::start().await?;
    let tokens = idp.tokens("user-loadtest-00001").await?;
    idp.token(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &text(&tokens, "refresh_token")?),
    ])
    .await?;
    assert_eq!(
        idp.metric(r#"mock_idp_http_requests_total{endpoint="token",status="200"}"#)
            .await?,
        2
    );
    assert_eq!(
        idp.metric(r#"mock_idp_tokens_issued_total{kind="access_token"}"#)
            .await?,
        2
    );
    assert_eq!(
        idp.metric(r#"mock_idp_tokens_issued_total{kind="refresh_token"}"#)
            .await?,
        2
    );
    assert_eq!(
        idp.metric(r#"mock_idp_tokens_issued_total{kind="id_token"}"#)
            .await?,
        2
    );
    assert_eq!(
        idp.metric(
            r#"mock_idp_token_requests_total{grant_type="refresh_token",outcome="success"}"#
        )
        .await?,
        1
    );
    assert_eq!(idp.metric("mock_idp_codes_issued_total").await?, 1);
    assert_eq!(idp.metric("mock_idp_refresh_rotations_total").await?, 1);
    assert_eq!(idp.metric("mock_idp_logins_total").await?, 1);
    Ok(())
}

#[tokio::test]
async fn expired_state_is_swept() -> Result<()> {
    let idp = TestIdp::with(|config| {
        config.code_ttl = Duration::from_millis(50);
        config.access_token_ttl = Duration::from_secs(0);
    })
    .await?;
    idp.code("user-loadtest-00001").await?;
    idp.token(&[("grant_type", "client_credentials")]).await?;
    // /metrics publishes what each map holds, so a soak run can watch memory level off.
    let entries = |map: &'static str| {
        let idp = &idp;
        async move {
            idp.metric(&format!(r#"mock_idp_store_entries{{map="{map}"}}"#))
                .await
        }
    };
    assert_eq!(entries("codes").await?, 1);
    assert_eq!(entries("access_tokens").await?, 1);
    assert_eq!(entries("sessions").await?, 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let swept = idp.app().sweep();
    assert_eq!(swept.codes, 1);
    assert_eq!(swept.access_tokens, 1);
    assert_eq!(entries("codes").await?, 0);
    assert_eq!(entries("access_tokens").await?, 0);
    Ok(())
}

#[tokio::test]
async fn shutdown_lets_the_server_go_and_frees_the_port() -> Result<()> {
    let idp = TestIdp::over_tcp_with(|_| {}).await?;
    let addr = idp.server()?.addr();
    assert_eq!(idp.get("/jwks", &[]).await?.status, StatusCode::OK);
    tokio::time::timeout(Duration::from_secs(10), idp.into_server()?.shutdown()).await?;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    Ok(())
}

/// The real binary: prints its address once it accepts connections, serves, and exits 0 on
/// SIGTERM.
#[test]
fn the_binary_announces_its_address_and_stops_on_sigterm() -> Result<()> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mock-idp"))
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .context("unexpected first line")?;
    let addr = url.strip_prefix("http://").context("not http")?;
    let mut stream = std::net::TcpStream::connect(addr)?;
    std::io::Write::write_all(
        &mut stream,
        b"GET /.well-known/openid-configuration HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )?;
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response)?;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(&format!(r#""issuer":"{url}""#)));

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait()? {
            assert!(status.success(), "{status}");
            return Ok(());
        }
        if Instant::now() > deadline {
            child.kill()?;
            bail!("mock-idp did not stop within 10 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
