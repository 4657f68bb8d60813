//! The browser-like seeder's form detection on login and consent pages of real providers: the
//! two node-oidc-provider pages as it serves them, and pages written in the shape of Keycloak's
//! and Django's templates.

use loadgen::protocol::browser::page::{Credentials, FormHints, PageAction, decide};
use url::Url;

const USER: Credentials<'static> = Credentials {
    username: "user-loadtest-00001",
    password: "loadtest",
};

fn decide_on(fixture: &str, page_url: &str) -> PageAction {
    let path = format!(
        "{}/tests/fixtures/html/{fixture}",
        env!("CARGO_MANIFEST_DIR")
    );
    let html = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
    let url = Url::parse(page_url).unwrap_or_else(|error| panic!("{page_url}: {error}"));
    decide(&url, &html, USER, &FormHints::default())
        .unwrap_or_else(|error| panic!("{fixture}: {error}"))
}

#[test]
fn node_oidc_provider_login_and_consent() {
    let page = "http://127.0.0.1:35329/interaction/VGxLBf5fXcE3urlwzkDjH-InsAC89WNRmIKUVWQFmld";
    let PageAction::Login(form) = decide_on("node-oidc-provider-login.html", page) else {
        panic!("not a login");
    };
    assert_eq!(form.method, http::Method::POST);
    assert_eq!(form.action.as_str(), page);
    assert_eq!(form.field("prompt"), Some("login"));
    assert_eq!(form.field("login"), Some("user-loadtest-00001"));
    assert_eq!(form.field("password"), Some("loadtest"));

    let consent = "http://127.0.0.1:35329/interaction/B4v156lDq56CMbKQCinFhRqpzoDZG4jCoQBlv-ifbWL";
    let PageAction::Consent(form) = decide_on("node-oidc-provider-consent.html", consent) else {
        panic!("not a consent page");
    };
    assert_eq!(form.action.as_str(), consent);
    assert_eq!(form.fields, [("prompt".to_owned(), "consent".to_owned())]);
}

#[test]
fn keycloak_login_consent_and_two_step_login() {
    let page = "http://127.0.0.1:8080/realms/load/protocol/openid-connect/auth?client_id=x";
    let PageAction::Login(form) = decide_on("keycloak-login.html", page) else {
        panic!("not a login");
    };
    assert!(
        form.action
            .as_str()
            .ends_with("/login-actions/authenticate?session_code=Xy1&execution=4c2a&client_id=loadtest-client&tab_id=Tq9"),
        "{}",
        form.action
    );
    assert_eq!(form.field("username"), Some("user-loadtest-00001"));
    assert_eq!(form.field("password"), Some("loadtest"));
    assert_eq!(form.field("credentialId"), Some(""));
    assert_eq!(
        form.field("rememberMe"),
        None,
        "an unchecked box is not sent"
    );

    let PageAction::Consent(form) = decide_on("keycloak-consent.html", page) else {
        panic!("not a consent page");
    };
    assert_eq!(form.field("code"), Some("c0de-f0r-c0nsent"));
    assert_eq!(form.field("accept"), Some("Yes"));
    assert_eq!(form.field("cancel"), None);

    let PageAction::UsernameStep(form) = decide_on("keycloak-username-first.html", page) else {
        panic!("not the first step of a two-step login");
    };
    assert_eq!(form.field("username"), Some("user-loadtest-00001"));
    let PageAction::Login(form) = decide_on("keycloak-password-only.html", page) else {
        panic!("not the password step");
    };
    assert_eq!(form.field("password"), Some("loadtest"));
    assert_eq!(form.field("username"), None);
}

#[test]
fn django_login_and_consent() {
    let page = "http://127.0.0.1:8000/accounts/login/?next=/openid/authorize";
    let PageAction::Login(form) = decide_on("django-login.html", page) else {
        panic!("not a login");
    };
    assert_eq!(
        form.action.as_str(),
        "http://127.0.0.1:8000/accounts/login/"
    );
    assert_eq!(form.field("csrfmiddlewaretoken"), Some("k8QpZ2x7"));
    assert_eq!(
        form.field("next"),
        Some("/openid/authorize?client_id=loadtest-client&response_type=code")
    );
    assert_eq!(form.field("username"), Some("user-loadtest-00001"));

    let PageAction::Consent(form) = decide_on("django-consent.html", page) else {
        panic!("not a consent page");
    };
    assert_eq!(
        form.action.as_str(),
        "http://127.0.0.1:8000/openid/authorize"
    );
    assert_eq!(form.field("allow"), Some("Authorize"));
    assert_eq!(form.field("state"), Some("s1"));
    assert_eq!(form.field("csrfmiddlewaretoken"), Some("k8QpZ2x7"));
}
