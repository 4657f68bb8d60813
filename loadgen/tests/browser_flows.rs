//! The browser-like seeder through sign-ins that mock-idp and node-oidc-provider do not show: a
//! two-step login (user name, then password), a provider that answers with another `state`, and
//! one that redirects for ever. The provider here is a small scripted one on 127.0.0.1:0.

mod common;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use http::{Method, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use loadgen::seeding::seeder::{SeedConfig, make_seeds};
use tokio::net::TcpListener;

/// How the scripted provider misbehaves, if it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    /// User name on one page, password on the next, then the code.
    TwoStepLogin,
    /// As `TwoStepLogin`, but the redirect carries another `state`.
    WrongState,
    /// `/authorize` redirects to itself.
    RedirectLoop,
}

fn query_value(query: &str, name: &str) -> String {
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

fn page(html: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(html.to_owned())));
    response.headers_mut().insert(
        CONTENT_TYPE,
        "text/html; charset=utf-8".parse().expect("constant"),
    );
    response
}

fn redirect(status: StatusCode, location: &str, cookie: Option<String>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(LOCATION, location.parse().expect("a valid location"));
    if let Some(cookie) = cookie {
        response
            .headers_mut()
            .insert(SET_COOKIE, cookie.parse().expect("a valid cookie"));
    }
    response
}

async fn answer(
    script: Script,
    base: Arc<String>,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|body| body.to_bytes())
        .unwrap_or_default();
    let form = String::from_utf8_lossy(&body).into_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let cookies = parts
        .headers
        .get(COOKIE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let cookie = |name: &str| {
        cookies
            .split("; ")
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
            .unwrap_or_default()
            .to_owned()
    };
    let callback = |state: &str| {
        let state = if script == Script::WrongState {
            "forged"
        } else {
            state
        };
        format!(
            "http://127.0.0.1:3000/callback?code=c-{}&state={state}",
            rand_code()
        )
    };
    Ok(match (parts.method.clone(), parts.uri.path()) {
        (Method::GET, "/.well-known/openid-configuration") => {
            Response::new(Full::new(common::discovery_document(&base, &base)))
        }
        (Method::GET, "/jwks") => Response::new(Full::new(Bytes::from_static(
            br#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#,
        ))),
        (Method::GET, "/authorize") if script == Script::RedirectLoop => {
            redirect(StatusCode::FOUND, &format!("/authorize?{query}"), None)
        }
        (Method::GET, "/authorize") => {
            let state = query_value(&query, "state");
            if cookie("session") == "signed-in" {
                redirect(StatusCode::SEE_OTHER, &callback(&state), None)
            } else {
                let pending = format!("pending={state}; Path=/");
                redirect(StatusCode::FOUND, "/signin", Some(pending))
            }
        }
        (Method::GET, "/signin") => page(
            r#"<form method="post" action="/signin"><input type="email" name="identifier">
               <input type="hidden" name="csrf" value="t1"><button>Next</button></form>"#,
        ),
        (Method::POST, "/signin") if query_value(&form, "csrf") == "t1" => {
            let user = query_value(&form, "identifier");
            page(&format!(
                r#"<form method="post" action="/password"><input type="hidden" name="user" value="{user}">
                   <input type="password" name="secret"><button type="submit">Sign in</button></form>"#
            ))
        }
        // The seeder redeems each sign-in's code to learn the user's subject; an opaque token
        // and no ID token name none, and the seeds then record none.
        (Method::POST, "/token") => Response::new(Full::new(Bytes::from_static(
            br#"{"access_token":"opaque","token_type":"Bearer"}"#,
        ))),
        (Method::POST, "/password") if query_value(&form, "secret") == "loadtest" => {
            let state = cookie("pending");
            redirect(
                StatusCode::SEE_OTHER,
                &callback(&state),
                Some("session=signed-in; Path=/; HttpOnly".to_owned()),
            )
        }
        _ => {
            let mut response = page("<title>Refused</title><p class=\"error\">Refused.</p>");
            *response.status_mut() = StatusCode::BAD_REQUEST;
            response
        }
    })
}

fn rand_code() -> String {
    loadgen::protocol::pkce::random_token(16)
}

/// Starts the scripted provider; its task ends with the test.
async fn spawn(script: Script) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let base = Arc::new(format!(
        "http://{}",
        listener.local_addr().expect("an address")
    ));
    let url = base.to_string();
    // Detached: the provider serves until the test's runtime ends.
    drop(common::serve_connections(
        listener,
        service_fn(move |request| answer(script, Arc::clone(&base), request)),
    ));
    url
}

fn config(target: &str) -> SeedConfig {
    SeedConfig {
        codes: 3,
        sessions: 2,
        attempts: 1,
        ..SeedConfig::new(target)
    }
}

#[tokio::test]
async fn a_two_step_login_signs_in_and_the_session_mints_the_codes() {
    let target = spawn(Script::TwoStepLogin).await;
    let seeds = make_seeds(&config(&target)).await.unwrap();
    assert_eq!(seeds.authorization_codes.len(), 3);
    assert_eq!(seeds.sessions.len(), 2);
    // The session is every cookie the browser sends to the authorization endpoint.
    assert!(
        seeds.sessions[0]
            .cookie
            .split("; ")
            .any(|pair| pair == "session=signed-in"),
        "{}",
        seeds.sessions[0].cookie
    );
    assert_eq!(seeds.sessions[0].subject, None);
}

#[tokio::test]
async fn a_changed_state_is_refused_in_words() {
    let target = spawn(Script::WrongState).await;
    let error = make_seeds(&config(&target)).await.unwrap_err().to_string();
    assert!(error.contains("carried state 'forged', not the"), "{error}");
}

#[tokio::test]
async fn a_redirect_loop_stops_with_where_it_was() {
    let target = spawn(Script::RedirectLoop).await;
    let error = make_seeds(&config(&target)).await.unwrap_err().to_string();
    assert!(
        error.contains("no redirect to the client after 20 redirects and forms"),
        "{error}"
    );
    assert!(error.contains("/authorize?response_type=code"), "{error}");
}
