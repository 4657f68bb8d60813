//! What a browser-like client does on an HTML page of a sign-in: find the login form (user name
//! and password), the first step of a two-step login (user name only), or the consent form (an
//! approve button), and fill it in, keeping every hidden input (CSRF tokens, the pending request).

use std::sync::LazyLock;

use scraper::{ElementRef, Html, Selector};
use url::Url;

/// How to find the inputs and the approve button when the page's own hints do not tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormHints {
    /// The `name` of the user-name input, instead of detecting it.
    pub username_field: Option<String>,
    /// The `name` of the password input, instead of detecting it.
    pub password_field: Option<String>,
    /// The `name` or `value` (or text) of the button that approves a consent page.
    pub approve_button: Option<String>,
}

/// What to send for the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageAction {
    /// A login form: user name and password filled in.
    Login(FilledForm),
    /// The first step of a two-step login: the user name alone.
    UsernameStep(FilledForm),
    /// A consent form, approved.
    Consent(FilledForm),
}

impl PageAction {
    /// The form to submit.
    pub fn form(&self) -> &FilledForm {
        match self {
            PageAction::Login(form)
            | PageAction::UsernameStep(form)
            | PageAction::Consent(form) => form,
        }
    }
}

/// A form ready to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilledForm {
    /// `GET` or `POST`.
    pub method: http::Method,
    /// Where it goes, resolved against the page's URL.
    pub action: Url,
    /// The fields in document order.
    pub fields: Vec<(String, String)>,
}

impl FilledForm {
    /// The value of the field `name`, if the form sends one.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }

    /// The fields as an `application/x-www-form-urlencoded` body or query.
    pub fn encoded(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&self.fields)
            .finish()
    }
}

/// Why a page offered nothing to do, in words that say where and what was there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no password field and no approve button on {path} ({what}); name them with --username-field, --password-field or --approve-button if the page has them"
)]
pub struct NothingToDo {
    /// The page's path.
    pub path: String,
    /// What the page holds: its title and how many forms.
    pub what: String,
}

/// The user's credentials.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    /// User name.
    pub username: &'a str,
    /// Password.
    pub password: &'a str,
}

static FORMS: LazyLock<Selector> = LazyLock::new(|| selector("form"));
static INPUTS: LazyLock<Selector> = LazyLock::new(|| selector("input, button, select, textarea"));
static TITLE: LazyLock<Selector> = LazyLock::new(|| selector("title"));
static ALERTS: LazyLock<Selector> = LazyLock::new(|| {
    selector("[role=alert], .alert, .error, .errorlist, .kc-feedback-text, #input-error")
});

/// What a page says went wrong (its alert or error text), or its title when it marks none.
pub fn complaint(html: &str) -> String {
    let document = Html::parse_document(html);
    let words = |element: ElementRef<'_>| {
        element
            .text()
            .collect::<Vec<_>>()
            .join(" ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    document
        .select(&ALERTS)
        .map(words)
        .find(|text| !text.is_empty())
        .or_else(|| document.select(&TITLE).next().map(words))
        .unwrap_or_else(|| "(no message)".to_owned())
}

fn selector(css: &str) -> Selector {
    // The selectors are constants of this file; a typo is caught by every test.
    Selector::parse(css).unwrap_or_else(|_| panic!("invalid built-in selector {css}"))
}

/// Words of buttons that approve, and of those that refuse (which are never pressed).
const APPROVE_WORDS: [&str; 9] = [
    "approve",
    "accept",
    "allow",
    "authorize",
    "authorise",
    "continue",
    "consent",
    "confirm",
    "yes",
];
const REFUSE_WORDS: [&str; 7] = [
    "deny", "cancel", "decline", "reject", "abort", "no", "refuse",
];

/// One control of a form.
struct Control<'a> {
    element: ElementRef<'a>,
    tag: String,
    kind: String,
    name: Option<&'a str>,
    value: &'a str,
}

impl<'a> Control<'a> {
    fn of(element: ElementRef<'a>) -> Self {
        let attribute = |name: &str| element.value().attr(name);
        let tag = element.value().name().to_ascii_lowercase();
        let default_kind = if tag == "button" { "submit" } else { "text" };
        Control {
            element,
            kind: attribute("type")
                .unwrap_or(default_kind)
                .to_ascii_lowercase(),
            tag,
            name: attribute("name").filter(|name| !name.is_empty()),
            value: attribute("value").unwrap_or_default(),
        }
    }

    fn is_submit(&self) -> bool {
        (self.tag == "button" || self.tag == "input")
            && matches!(self.kind.as_str(), "submit" | "image")
    }

    fn is_password(&self, hints: &FormHints) -> bool {
        match &hints.password_field {
            Some(name) => self.name == Some(name.as_str()),
            None => self.tag == "input" && self.kind == "password",
        }
    }

    fn is_username(&self, hints: &FormHints) -> bool {
        if let Some(name) = &hints.username_field {
            return self.name == Some(name.as_str());
        }
        if self.tag != "input" || !matches!(self.kind.as_str(), "text" | "email") {
            return false;
        }
        let autocomplete = self
            .element
            .value()
            .attr("autocomplete")
            .unwrap_or_default();
        let name = self.name.unwrap_or_default().to_ascii_lowercase();
        autocomplete
            .split_whitespace()
            .any(|token| token == "username" || token == "email")
            || self.kind == "email"
            || [
                "username",
                "user",
                "login",
                "email",
                "identifier",
                "user_name",
                "userid",
            ]
            .iter()
            .any(|known| name == *known || name.ends_with(&format!("[{known}]")))
    }

    /// The words a button shows: its name, value and text.
    fn words(&self) -> String {
        let text: String = self.element.text().collect();
        format!("{} {} {}", self.name.unwrap_or_default(), self.value, text).to_ascii_lowercase()
    }

    fn approves(&self, hints: &FormHints) -> bool {
        if !self.is_submit() {
            return false;
        }
        let words = self.words();
        if let Some(wanted) = &hints.approve_button {
            let wanted = wanted.to_ascii_lowercase();
            return words.split_whitespace().any(|word| word == wanted) || words.contains(&wanted);
        }
        let has = |list: &[&str]| {
            words
                .split(|c: char| !c.is_ascii_alphanumeric())
                .any(|word| list.contains(&word))
        };
        has(&APPROVE_WORDS) && !has(&REFUSE_WORDS)
    }
}

fn controls_of<'a>(form: &ElementRef<'a>) -> Vec<Control<'a>> {
    form.select(&INPUTS).map(Control::of).collect()
}

/// Decides what to do on the page at `page_url` with `html`.
pub fn decide(
    page_url: &Url,
    html: &str,
    credentials: Credentials<'_>,
    hints: &FormHints,
) -> Result<PageAction, NothingToDo> {
    let document = Html::parse_document(html);
    let forms: Vec<ElementRef<'_>> = document.select(&FORMS).collect();
    let with_password = forms.iter().find(|form| {
        controls_of(form)
            .iter()
            .any(|control| control.is_password(hints))
    });
    if let Some(form) = with_password {
        return Ok(PageAction::Login(fill(
            page_url,
            form,
            credentials,
            hints,
            None,
        )));
    }
    let with_username = forms.iter().find(|form| {
        controls_of(form)
            .iter()
            .any(|control| control.is_username(hints))
    });
    if let Some(form) = with_username {
        return Ok(PageAction::UsernameStep(fill(
            page_url,
            form,
            credentials,
            hints,
            None,
        )));
    }
    for form in &forms {
        let controls = controls_of(form);
        if let Some(button) = controls.iter().find(|control| control.approves(hints)) {
            return Ok(PageAction::Consent(fill(
                page_url,
                form,
                credentials,
                hints,
                Some(button.element),
            )));
        }
    }
    let title: String = document
        .select(&TITLE)
        .next()
        .map(|title| title.text().collect::<String>().trim().to_owned())
        .unwrap_or_default();
    Err(NothingToDo {
        path: page_url.path().to_owned(),
        what: format!(
            "title '{}', {} form{}",
            if title.is_empty() { "(none)" } else { &title },
            forms.len(),
            if forms.len() == 1 { "" } else { "s" }
        ),
    })
}

/// The form's submission: hidden and prefilled inputs kept, user name and password filled in, and
/// the pressed button's name and value when it has a name.
fn fill(
    page_url: &Url,
    form: &ElementRef<'_>,
    credentials: Credentials<'_>,
    hints: &FormHints,
    pressed: Option<ElementRef<'_>>,
) -> FilledForm {
    let attribute = |name: &str| {
        form.value()
            .attr(name)
            .filter(|value| !value.trim().is_empty())
    };
    let method = match attribute("method").map(str::to_ascii_lowercase).as_deref() {
        Some("post") => http::Method::POST,
        _ => http::Method::GET,
    };
    let action = attribute("action")
        .and_then(|action| page_url.join(action.trim()).ok())
        .unwrap_or_else(|| page_url.clone());
    let controls = controls_of(form);
    let pressed = pressed.or_else(|| {
        controls
            .iter()
            .find(|control| control.is_submit())
            .map(|control| control.element)
    });
    let mut fields = Vec::new();
    for control in &controls {
        let Some(name) = control.name else { continue };
        let value = if control.is_password(hints) {
            credentials.password.to_owned()
        } else if control.is_username(hints) {
            credentials.username.to_owned()
        } else if control.is_submit() {
            // Only the button pressed is sent, as a browser does.
            if pressed.is_some_and(|button| button.id() == control.element.id()) {
                control.value.to_owned()
            } else {
                continue;
            }
        } else if matches!(control.kind.as_str(), "checkbox" | "radio") {
            if control.element.value().attr("checked").is_none() {
                continue;
            }
            if control.value.is_empty() {
                "on"
            } else {
                control.value
            }
            .to_owned()
        } else if control.tag == "select" || control.tag == "textarea" {
            continue;
        } else {
            control.value.to_owned()
        };
        fields.push((name.to_owned(), value));
    }
    FilledForm {
        method,
        action,
        fields,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: Credentials<'static> = Credentials {
        username: "user-loadtest-00001",
        password: "secret",
    };

    fn page(path: &str) -> Url {
        Url::parse(&format!("http://idp.test{path}")).unwrap()
    }

    #[test]
    fn a_login_form_is_filled_and_its_hidden_inputs_kept() {
        let html = r#"<form method="post" action="/login">
            <input name="username" autocomplete="username">
            <input name="password" type="password">
            <input type="hidden" name="return_to" value="/authorize?a=1&amp;b=2">
            <button type="submit">Sign in</button></form>"#;
        let action = decide(&page("/login?x"), html, USER, &FormHints::default()).unwrap();
        let PageAction::Login(form) = action else {
            panic!("{action:?}")
        };
        assert_eq!(form.method, http::Method::POST);
        assert_eq!(form.action.as_str(), "http://idp.test/login");
        assert_eq!(form.field("username"), Some("user-loadtest-00001"));
        assert_eq!(form.field("password"), Some("secret"));
        assert_eq!(form.field("return_to"), Some("/authorize?a=1&b=2"));
    }

    #[test]
    fn a_consent_form_is_approved_by_its_approve_button_never_the_deny_one() {
        let html = r#"<form method="post" action="consent">
            <input type="hidden" name="csrf" value="t0k3n">
            <button type="submit" name="decision" value="deny">Deny</button>
            <button type="submit" name="decision" value="allow">Allow access</button></form>"#;
        let action = decide(&page("/oauth/consent"), html, USER, &FormHints::default()).unwrap();
        let PageAction::Consent(form) = action else {
            panic!("{action:?}")
        };
        assert_eq!(form.action.as_str(), "http://idp.test/oauth/consent");
        assert_eq!(
            form.fields,
            [
                ("csrf".to_owned(), "t0k3n".to_owned()),
                ("decision".to_owned(), "allow".to_owned())
            ]
        );
    }

    #[test]
    fn a_user_name_alone_is_the_first_step_of_a_two_step_login() {
        let html = r#"<form method="post"><input type="email" name="identifier">
            <input type="submit" value="Next"></form>"#;
        let action = decide(&page("/signin"), html, USER, &FormHints::default()).unwrap();
        let PageAction::UsernameStep(form) = action else {
            panic!("{action:?}")
        };
        assert_eq!(form.action.as_str(), "http://idp.test/signin");
        assert_eq!(form.field("identifier"), Some("user-loadtest-00001"));
    }

    #[test]
    fn hints_name_fields_the_page_does_not_mark() {
        let html = r#"<form method="post"><input name="j_user"><input name="j_secret" type="text">
            <input type="submit" name="go" value="Go"></form>"#;
        let hints = FormHints {
            username_field: Some("j_user".into()),
            password_field: Some("j_secret".into()),
            approve_button: None,
        };
        let action = decide(&page("/"), html, USER, &hints).unwrap();
        let PageAction::Login(form) = action else {
            panic!("{action:?}")
        };
        assert_eq!(form.field("j_user"), Some("user-loadtest-00001"));
        assert_eq!(form.field("j_secret"), Some("secret"));
        assert_eq!(form.field("go"), Some("Go"));
    }

    #[test]
    fn a_page_says_what_went_wrong_in_its_alert() {
        let html = r#"<html><head><title>Sign in</title></head><body>
            <p role="alert">Unknown user or
               wrong password.</p><form></form></body></html>"#;
        assert_eq!(complaint(html), "Unknown user or wrong password.");
        assert_eq!(complaint("<title>Login</title>"), "Login");
    }

    #[test]
    fn a_page_with_nothing_to_do_says_where_and_what() {
        let html =
            "<html><head><title>Error</title></head><body><p>Something broke</p></body></html>";
        let error =
            decide(&page("/interaction/abc"), html, USER, &FormHints::default()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "no password field and no approve button on /interaction/abc (title 'Error', 0 forms); \
             name them with --username-field, --password-field or --approve-button if the page has them"
        );
    }
}
