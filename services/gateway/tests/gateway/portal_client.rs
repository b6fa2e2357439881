//! A browser's view of the portal for tests: a cookie jar, forms with
//! their CSRF tokens, redirects not followed.

use std::collections::HashMap;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use crate::support::TestGateway;

/// A cookie jar and a client that does not follow redirects.
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
    pub cookies: HashMap<String, String>,
    /// Every `Set-Cookie` of the last response.
    pub set_cookies: Vec<String>,
    pub forwarded_for: Option<String>,
}

pub struct Page {
    pub status: StatusCode,
    pub location: String,
    pub content_type: String,
    pub body: String,
}

impl Browser {
    pub fn new(gateway: &TestGateway) -> Self {
        Self {
            base: gateway.http.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: HashMap::new(),
            set_cookies: Vec::new(),
            forwarded_for: None,
        }
    }

    pub async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let mut request = request;
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            request = request.header(COOKIE, jar.join("; "));
        }
        if let Some(address) = &self.forwarded_for {
            request = request.header("x-forwarded-for", address);
        }
        let response = request.send().await.expect("request");
        self.set_cookies = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().expect("ascii cookie").to_owned())
            .collect();
        for cookie in &self.set_cookies {
            let (pair, attributes) = cookie.split_once(';').unwrap_or((cookie, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .map(|v| v.to_str().expect("location").to_owned())
            .unwrap_or_default();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .map(|v| v.to_str().expect("content type").to_owned())
            .unwrap_or_default();
        let body = response.text().await.expect("body");
        Page {
            status,
            location,
            content_type,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// A JSON POST carrying `csrf` in `X-CSRF-Token`.
    pub async fn post_json(&mut self, path: &str, csrf: &str, body: &serde_json::Value) -> Page {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("x-csrf-token", csrf)
            .json(body);
        self.send(request).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self.client.post(format!("{}{path}", self.base)).form(form);
        self.send(request).await
    }

    /// The first hidden `csrf` value of a page.
    pub fn csrf(page: &Page) -> String {
        let at = page
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no csrf field in {}", page.body));
        let rest = &page.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').expect("closing quote")].to_owned()
    }

    pub async fn login(&mut self, username: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        let csrf = Self::csrf(&form);
        self.post(
            "/login",
            &[
                ("username", username),
                ("password", password),
                ("csrf", &csrf),
                ("next", "/"),
            ],
        )
        .await
    }

    /// Logs in and returns the session's CSRF token (from the overview).
    pub async fn logged_in(&mut self, username: &str, password: &str) -> String {
        let login = self.login(username, password).await;
        assert_eq!(
            login.status,
            StatusCode::SEE_OTHER,
            "{username}: {}",
            login.body
        );
        let overview = self.get("/").await;
        assert_eq!(overview.status, StatusCode::OK, "{}", overview.body);
        Self::csrf(&overview)
    }

    /// Submits the new-account form (as an admin).
    pub async fn create_account(
        &mut self,
        csrf: &str,
        username: &str,
        role: &str,
        password: &str,
    ) -> Page {
        let form = [
            ("username", username),
            ("role", role),
            ("password", password),
            ("csrf", csrf),
        ];
        self.post("/admin/users", &form).await
    }
}
