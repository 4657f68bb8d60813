//! Over HTTPS: seeding and TEST 1-3 against mock-idp serving TLS with a test CA (HTTP/2 and
//! HTTP/1.1), certificate problems stopping a run before load in words, `--insecure` recorded,
//! `--resolve` for a certificate's name, and a token endpoint on a second origin getting its own
//! connection with its own name in SNI and `Host`.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use common::{assert_clean, run_config, steady};
use http::Request;
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use loadgen::http::connection::{Resolve, TransportSettings};
use loadgen::http::tls::TlsSettings;
use loadgen::seeding::seeder::SeedConfig;
use loadgen::{RunConfig, ScenarioKind, Seeds};
use mock_idp::tls::{IssuedCertificate, TestCa, TlsSource, Validity};
use tokio::net::TcpListener;

/// A CA, a certificate it issued for `names` (valid as `validity` says), written as PEM files.
struct Certificates {
    _directory: tempfile::TempDir,
    authority: TestCa,
    ca: PathBuf,
    certificate: PathBuf,
    key: PathBuf,
}

fn certificates(names: &[&str], validity: Validity) -> Result<Certificates> {
    let directory = tempfile::tempdir()?;
    let ca = TestCa::new()?;
    let IssuedCertificate {
        certificate_pem,
        key_pem,
    } = ca.issue(names, validity)?;
    let write = |name: &str, text: &str| -> Result<PathBuf> {
        let path = directory.path().join(name);
        std::fs::write(&path, text)?;
        Ok(path)
    };
    Ok(Certificates {
        ca: write("ca.pem", ca.certificate_pem())?,
        certificate: write("cert.pem", &certificate_pem)?,
        key: write("key.pem", &key_pem)?,
        _directory: directory,
        authority: ca,
    })
}

async fn spawn_tls_idp(certificates: &Certificates) -> Result<mock_idp::RunningIdp> {
    common::spawn_idp_with(|config| {
        config.tls = Some(TlsSource::Files {
            certificate: certificates.certificate.clone(),
            key: certificates.key.clone(),
        });
    })
    .await
}

fn trusting(ca: &Path, http2: bool) -> TransportSettings {
    TransportSettings {
        tls: TlsSettings {
            ca_certs: vec![ca.to_owned()],
            ..TlsSettings::default()
        },
        http2,
        resolve: Vec::new(),
    }
}

async fn seeds_over(
    target: &str,
    transport: &TransportSettings,
    codes: usize,
    families: usize,
    sessions: usize,
) -> Result<Seeds> {
    Ok(loadgen::seeding::seeder::make_seeds(&SeedConfig {
        transport: transport.clone(),
        codes,
        refresh_families: families,
        sessions,
        concurrency: 8,
        ..SeedConfig::new(target)
    })
    .await?)
}

fn config_over(scenario: ScenarioKind, target: &str, transport: &TransportSettings) -> RunConfig {
    RunConfig {
        transport: transport.clone(),
        ..run_config(scenario, target, steady(20.0, 1.0), 4)
    }
}

/// The count of `mock_idp_http_requests_by_version_total{version="..."}`.
fn requests_by_version(idp: &mock_idp::RunningIdp, version: &str) -> u64 {
    let series = format!(r#"mock_idp_http_requests_by_version_total{{version="{version}"}} "#);
    idp.app()
        .metrics_text()
        .lines()
        .find_map(|line| line.strip_prefix(series.as_str()))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn test_1_to_3_run_clean_over_tls_with_http2_and_with_http1() -> Result<()> {
    let certificates = certificates(&mock_idp::tls::LOOPBACK_NAMES, Validity::Current)?;
    let idp = spawn_tls_idp(&certificates).await?;
    let target = idp.base_url();
    assert!(target.starts_with("https://127.0.0.1:"), "{target}");
    for http2 in [true, false] {
        let transport = trusting(&certificates.ca, http2);
        let seeds = seeds_over(&target, &transport, 40, 8, 4).await?;
        for scenario in [
            ScenarioKind::TokenCode,
            ScenarioKind::RefreshStorm,
            ScenarioKind::FullOidc,
        ] {
            let (_, stop) = loadgen::stop_signal();
            let result = loadgen::run(
                &config_over(scenario, &target, &transport),
                seeds.clone(),
                stop,
            )
            .await?;
            assert_clean(&result);
            let connections = result.connections.as_ref().expect("connections recorded");
            assert_eq!(
                connections.http_version,
                if http2 { "HTTP/2" } else { "HTTP/1.1" }
            );
            assert!(!connections.tls_unverified);
            // One connection per VU and origin, each a TLS handshake of its own client.
            assert_eq!(connections.opened, 4, "{connections:?}");
            assert_eq!(connections.tls_full_handshakes, 4, "{connections:?}");
        }
    }
    // The server saw both protocols: every request of the HTTP/2 runs came in as HTTP/2.
    assert!(requests_by_version(&idp, "HTTP/2") > 100);
    assert!(requests_by_version(&idp, "HTTP/1.1") > 100);
    idp.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_new_connection_per_iteration_resumes_the_vus_own_tls_session() -> Result<()> {
    let certificates = certificates(&mock_idp::tls::LOOPBACK_NAMES, Validity::Current)?;
    let idp = spawn_tls_idp(&certificates).await?;
    let transport = trusting(&certificates.ca, false);
    let seeds = seeds_over(&idp.base_url(), &transport, 40, 0, 0).await?;
    let config = RunConfig {
        new_connection_per_iteration: true,
        ..config_over(ScenarioKind::TokenCode, &idp.base_url(), &transport)
    };
    let (_, stop) = loadgen::stop_signal();
    let result = loadgen::run(&config, seeds, stop).await?;
    assert_clean(&result);
    let connections = result.connections.expect("connections recorded");
    // TEST 1's VUs connect first in their first iteration: one connection per iteration, the
    // first of each VU a full handshake, every later one resuming that VU's own session.
    assert_eq!(connections.opened, 20, "{connections:?}");
    assert_eq!(connections.tls_full_handshakes, 4, "{connections:?}");
    assert_eq!(connections.tls_resumed_handshakes, 16, "{connections:?}");
    assert!(connections.set_up_ms > 0.0);
    idp.shutdown().await;
    Ok(())
}

/// Runs the discovery scenario (it needs no seeds) against `target` with `transport` and returns
/// the error, asserting it came fast.
async fn refused(target: &str, transport: &TransportSettings) -> String {
    let started = Instant::now();
    let (_, stop) = loadgen::stop_signal();
    let error = loadgen::run(
        &config_over(ScenarioKind::Discovery, target, transport),
        Seeds::default(),
        stop,
    )
    .await
    .expect_err("a certificate problem must stop the run");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "it stopped only after {:?}",
        started.elapsed()
    );
    error.to_string()
}

#[tokio::test]
async fn certificate_problems_stop_the_run_before_load_in_words() -> Result<()> {
    // Nobody told loadgen about the CA.
    let valid = certificates(&mock_idp::tls::LOOPBACK_NAMES, Validity::Current)?;
    let idp = spawn_tls_idp(&valid).await?;
    let error = refused(&idp.base_url(), &TransportSettings::default()).await;
    assert!(error.contains("has an unknown issuer"), "{error}");
    assert!(error.contains("--ca-cert"), "{error}");
    assert!(!error.contains("Custom {"), "no Debug output: {error}");
    idp.shutdown().await;

    let expired = certificates(&mock_idp::tls::LOOPBACK_NAMES, Validity::Expired)?;
    let idp = spawn_tls_idp(&expired).await?;
    let error = refused(&idp.base_url(), &trusting(&expired.ca, false)).await;
    assert!(error.contains("has expired"), "{error}");
    idp.shutdown().await;

    let future = certificates(&mock_idp::tls::LOOPBACK_NAMES, Validity::Future)?;
    let idp = spawn_tls_idp(&future).await?;
    let error = refused(&idp.base_url(), &trusting(&future.ca, false)).await;
    assert!(error.contains("is not valid yet"), "{error}");
    idp.shutdown().await;

    let elsewhere = certificates(&["idp.example.test"], Validity::Current)?;
    let idp = spawn_tls_idp(&elsewhere).await?;
    let error = refused(&idp.base_url(), &trusting(&elsewhere.ca, false)).await;
    assert!(
        error.contains("not valid for the name 127.0.0.1"),
        "{error}"
    );
    assert!(error.contains("idp.example.test"), "{error}");
    assert!(error.contains("--resolve"), "{error}");
    idp.shutdown().await;

    // A CA file that is not one stops it before any connection.
    let directory = tempfile::tempdir()?;
    let bogus = directory.path().join("ca.pem");
    std::fs::write(&bogus, "not a certificate")?;
    let error = refused("https://127.0.0.1:9", &trusting(&bogus, false)).await;
    assert!(error.contains("--ca-cert"), "{error}");
    assert!(error.contains("holds no PEM certificate"), "{error}");
    Ok(())
}

#[tokio::test]
async fn http2_asked_of_a_provider_that_offers_only_http1_fails_before_load() -> Result<()> {
    // A TLS front that offers HTTP/1.1 alone by ALPN.
    let certificates = certificates(&mock_idp::tls::LOOPBACK_NAMES, Validity::Current)?;
    let front = TlsFront::spawn(&certificates, &[b"http/1.1"], None).await?;
    let error = refused(&front.base_url, &trusting(&certificates.ca, true)).await;
    assert!(error.contains("HTTP/2"), "{error}");
    assert!(error.contains("leave out --http2"), "{error}");
    Ok(())
}

#[tokio::test]
async fn insecure_skips_verification_and_the_result_says_so() -> Result<()> {
    let untrusted = certificates(&["idp.example.test"], Validity::Expired)?;
    let idp = spawn_tls_idp(&untrusted).await?;
    let transport = TransportSettings {
        tls: TlsSettings {
            insecure: true,
            ..TlsSettings::default()
        },
        ..TransportSettings::default()
    };
    let seeds = seeds_over(&idp.base_url(), &transport, 40, 0, 0).await?;
    let (_, stop) = loadgen::stop_signal();
    let result = loadgen::run(
        &config_over(ScenarioKind::TokenCode, &idp.base_url(), &transport),
        seeds,
        stop,
    )
    .await?;
    assert_clean(&result);
    assert!(
        result
            .connections
            .as_ref()
            .is_some_and(|c| c.tls_unverified)
    );
    assert!(
        result.notes.iter().any(|note| note.contains("--insecure")),
        "{:#?}",
        result.notes
    );
    let printed = loadgen::results::printer::summary(&result);
    assert!(printed.contains("NOT verified"), "{printed}");
    idp.shutdown().await;
    Ok(())
}

/// An ephemeral loopback port, free when this returns.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[tokio::test]
async fn resolve_tests_a_certificate_for_a_real_name_on_loopback() -> Result<()> {
    let certificates = certificates(&["idp.example.test"], Validity::Current)?;
    let port = free_port()?;
    let issuer = format!("https://idp.example.test:{port}");
    let idp = common::spawn_idp_with(|config| {
        config.addr = ([127, 0, 0, 1], port).into();
        config.issuer = Some(issuer.clone());
        config.tls = Some(TlsSource::Files {
            certificate: certificates.certificate.clone(),
            key: certificates.key.clone(),
        });
    })
    .await?;
    let transport = TransportSettings {
        resolve: vec![format!("idp.example.test:{port}:127.0.0.1").parse::<Resolve>()?],
        ..trusting(&certificates.ca, false)
    };
    let seeds = seeds_over(&issuer, &transport, 40, 0, 4).await?;
    for scenario in [ScenarioKind::TokenCode, ScenarioKind::FullOidc] {
        let (_, stop) = loadgen::stop_signal();
        let result = loadgen::run(
            &config_over(scenario, &issuer, &transport),
            seeds.clone(),
            stop,
        )
        .await?;
        assert_clean(&result);
    }
    idp.shutdown().await;
    Ok(())
}

/// A TLS listener in front of a mock-idp `App` (in-process), recording the SNI of every
/// connection and the `Host` of every request; with `token_origin`, its discovery document names
/// that origin for the token endpoint.
struct TlsFront {
    base_url: String,
    server_names: Arc<Mutex<Vec<String>>>,
    hosts: Arc<Mutex<Vec<(String, String)>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl TlsFront {
    async fn spawn(
        certificates: &Certificates,
        alpn: &[&[u8]],
        token_origin: Option<&str>,
    ) -> Result<Self> {
        Self::spawn_on(certificates, alpn, token_origin, 0, None, None).await
    }

    /// With `client_ca`, every connection must present a certificate that CA signed (mTLS).
    async fn spawn_on(
        certificates: &Certificates,
        alpn: &[&[u8]],
        token_origin: Option<&str>,
        port: u16,
        issuer: Option<&str>,
        client_ca: Option<&Path>,
    ) -> Result<Self> {
        use rustls::pki_types::pem::PemObject as _;
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let base_url = issuer.map_or_else(
            || format!("https://{}", listener.local_addr().expect("bound")),
            str::to_owned,
        );
        let app = Arc::new(mock_idp::App::new(
            mock_idp::Config::ephemeral(),
            &base_url,
        )?);
        let chain = rustls::pki_types::CertificateDer::pem_file_iter(&certificates.certificate)?
            .collect::<Result<Vec<_>, _>>()?;
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&certificates.key)?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?;
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(client_ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for certificate in rustls::pki_types::CertificateDer::pem_file_iter(client_ca)? {
                    roots.add(certificate?)?;
                }
                builder.with_client_cert_verifier(
                    rustls::server::WebPkiClientVerifier::builder_with_provider(
                        Arc::new(roots),
                        provider,
                    )
                    .build()?,
                )
            }
        };
        let mut config = builder.with_single_cert(chain, key)?;
        config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let server_names = Arc::new(Mutex::new(Vec::new()));
        let hosts = Arc::new(Mutex::new(Vec::new()));
        let token_endpoint = token_origin.map(|origin| format!("{origin}/token"));
        let (names, seen) = (Arc::clone(&server_names), Arc::clone(&hosts));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let Ok(stream) = acceptor.accept(stream).await else {
                    continue;
                };
                if let Some(name) = stream.get_ref().1.server_name() {
                    names.lock().expect("names").push(name.to_owned());
                }
                let (app, seen, token_endpoint) =
                    (Arc::clone(&app), Arc::clone(&seen), token_endpoint.clone());
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let (app, seen, token_endpoint) =
                        (Arc::clone(&app), Arc::clone(&seen), token_endpoint.clone());
                    async move {
                        let host = request
                            .headers()
                            .get(http::header::HOST)
                            .and_then(|value| value.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        seen.lock()
                            .expect("hosts")
                            .push((host, request.uri().path().to_owned()));
                        let (parts, body) = request.into_parts();
                        let body = body.collect().await?.to_bytes();
                        let discovery = parts.uri.path().ends_with("openid-configuration");
                        let answer = app
                            .handle(Request::from_parts(parts, Full::new(body)))
                            .await;
                        let Some(token_endpoint) = token_endpoint.filter(|_| discovery) else {
                            return Ok::<_, hyper::Error>(answer);
                        };
                        let (parts, body) = answer.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let mut document: serde_json::Value =
                            serde_json::from_slice(&body).unwrap_or_default();
                        document["token_endpoint"] = token_endpoint.into();
                        let body = Bytes::from(document.to_string());
                        Ok(http::Response::from_parts(parts, Full::new(body)))
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            base_url,
            server_names,
            hosts,
            _task: task,
        })
    }
}

#[tokio::test]
async fn a_token_endpoint_on_a_second_origin_gets_its_own_connection_and_name() -> Result<()> {
    let certificates = certificates(
        &["idp.example.test", "tokens.example.test"],
        Validity::Current,
    )?;
    let port = free_port()?;
    let issuer = format!("https://idp.example.test:{port}");
    let token_origin = format!("https://tokens.example.test:{port}");
    let front = TlsFront::spawn_on(
        &certificates,
        &[b"http/1.1"],
        Some(&token_origin),
        port,
        Some(&issuer),
        None,
    )
    .await?;
    let transport = TransportSettings {
        resolve: vec![
            format!("idp.example.test:{port}:127.0.0.1").parse::<Resolve>()?,
            format!("tokens.example.test:{port}:127.0.0.1").parse::<Resolve>()?,
        ],
        ..trusting(&certificates.ca, false)
    };
    let seeds = seeds_over(&issuer, &transport, 30, 0, 0).await?;
    let (_, stop) = loadgen::stop_signal();
    let config = RunConfig {
        profile: steady(12.0, 1.0),
        ..config_over(ScenarioKind::TokenCode, &issuer, &transport)
    };
    let result = loadgen::run(&config, seeds, stop).await?;
    assert_clean(&result);
    let hosts = front.hosts.lock().expect("hosts").clone();
    let token_hosts: Vec<&str> = hosts
        .iter()
        .filter(|(_, path)| path == "/token")
        .map(|(host, _)| host.as_str())
        .collect();
    assert!(!token_hosts.is_empty());
    let token_host = format!("tokens.example.test:{port}");
    assert!(
        token_hosts.iter().all(|host| *host == token_host),
        "{token_hosts:?}"
    );
    assert!(
        hosts
            .iter()
            .any(|(host, path)| path.ends_with("openid-configuration")
                && *host == format!("idp.example.test:{port}"))
    );
    let names = front.server_names.lock().expect("names").clone();
    assert!(
        names.iter().any(|name| name == "tokens.example.test"),
        "{names:?}"
    );
    assert!(
        names.iter().any(|name| name == "idp.example.test"),
        "{names:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_front_that_requires_a_client_certificate_gets_the_one_given() -> Result<()> {
    let certificates = certificates(&mock_idp::tls::LOOPBACK_NAMES, Validity::Current)?;
    // The test CA signed the server's certificate; the front also takes clients it signed.
    let front = TlsFront::spawn_on(
        &certificates,
        &[b"http/1.1"],
        None,
        0,
        None,
        Some(&certificates.ca),
    )
    .await?;
    // Without one, the front refuses the connection and nothing is sent.
    let started = Instant::now();
    let (_, stop) = loadgen::stop_signal();
    let refused = loadgen::run(
        &config_over(
            ScenarioKind::Discovery,
            &front.base_url,
            &trusting(&certificates.ca, false),
        ),
        Seeds::default(),
        stop,
    )
    .await
    .expect_err("a front that requires a client certificate refuses one without");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        refused
            .to_string()
            .contains("requires a client certificate"),
        "{refused}"
    );
    assert!(refused.to_string().contains("--client-cert"), "{refused}");
    // With one that CA signed, seeding and TEST 1 run clean.
    let directory = tempfile::tempdir()?;
    let issued = certificates
        .authority
        .issue(&["loadgen-client"], Validity::Current)?;
    let (chain, key) = (
        directory.path().join("client.pem"),
        directory.path().join("client-key.pem"),
    );
    std::fs::write(&chain, issued.certificate_pem)?;
    std::fs::write(&key, issued.key_pem)?;
    let mut transport = trusting(&certificates.ca, false);
    transport.tls.client_certificate = Some(loadgen::http::tls::ClientCertificate { chain, key });
    let seeds = seeds_over(&front.base_url, &transport, 40, 0, 0).await?;
    let (_, stop) = loadgen::stop_signal();
    let result = loadgen::run(
        &config_over(ScenarioKind::TokenCode, &front.base_url, &transport),
        seeds,
        stop,
    )
    .await?;
    assert_clean(&result);
    Ok(())
}

/// `self_signed_tls_client_auth` (RFC 8705): mock-idp registers the client's self-signed
/// certificate; seeding, TEST 2 and the client-credentials scenario authenticate with it alone
/// (no secret, no assertion: `client_id` in the body), over HTTP/2 and HTTP/1.1; another
/// certificate, or none, is refused in words before load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_authenticates_with_its_tls_certificate() -> Result<()> {
    use loadgen::protocol::client_auth::ClientAuth;
    use loadgen::protocol::client_credentials::ClientCredentials;

    let certificates = certificates(&mock_idp::tls::LOOPBACK_NAMES, Validity::Current)?;
    let keys = tempfile::tempdir()?;
    mock_idp::client_assertion::write_client_key(keys.path(), mock_idp::SigningAlg::Es256)?;
    let (chain, key) = (
        keys.path().join("client-cert.pem"),
        keys.path().join("client-key.pem"),
    );
    let registered = mock_idp::client_certificate::read_certificate(&chain)?;
    let idp = common::spawn_idp_with(|config| {
        config.tls = Some(TlsSource::Files {
            certificate: certificates.certificate.clone(),
            key: certificates.key.clone(),
        });
        config.client_certificate = Some(registered);
    })
    .await?;
    let target = idp.base_url();
    let client = ClientCredentials {
        client_secret: None,
        auth: ClientAuth::TlsCertificate,
        ..ClientCredentials::default()
    };
    for http2 in [true, false] {
        let mut transport = trusting(&certificates.ca, http2);
        transport.tls.client_certificate = Some(loadgen::http::tls::ClientCertificate {
            chain: chain.clone(),
            key: key.clone(),
        });
        let seeds = loadgen::seeding::seeder::make_seeds(&SeedConfig {
            transport: transport.clone(),
            refresh_families: 4,
            client: client.clone(),
            concurrency: 4,
            ..SeedConfig::new(&target)
        })
        .await?;
        for scenario in [ScenarioKind::RefreshStorm, ScenarioKind::ClientCredentials] {
            let mut config = config_over(scenario, &target, &transport);
            config.client = client.clone();
            config.machine_clients =
                loadgen::protocol::machine_clients::MachineClients::run_client("");
            let (_, stop) = loadgen::stop_signal();
            let result = loadgen::run(&config, seeds.clone(), stop).await?;
            assert_clean(&result);
        }
    }
    // Another self-signed certificate, or none at all, authenticates nobody.
    let strangers = tempfile::tempdir()?;
    mock_idp::client_assertion::write_client_key(strangers.path(), mock_idp::SigningAlg::Es256)?;
    for (what, client_certificate) in [
        (
            "another certificate",
            Some(loadgen::http::tls::ClientCertificate {
                chain: strangers.path().join("client-cert.pem"),
                key: strangers.path().join("client-key.pem"),
            }),
        ),
        ("no certificate", None),
    ] {
        let mut transport = trusting(&certificates.ca, true);
        transport.tls.client_certificate = client_certificate;
        let refused = loadgen::seeding::seeder::make_seeds(&SeedConfig {
            transport,
            refresh_families: 1,
            client: client.clone(),
            ..SeedConfig::new(&target)
        })
        .await
        .expect_err(what)
        .to_string();
        assert!(refused.contains("invalid_client"), "{what}: {refused}");
    }
    idp.shutdown().await;
    Ok(())
}
