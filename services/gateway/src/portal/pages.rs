//! The portal's HTML, rendered on the server with maud (escaped by
//! construction). One layout: a skip link, the navigation the user's role
//! allows, the page's main content; the stylesheet is served by the
//! gateway itself, nothing is fetched from elsewhere.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::accounts::{AuditEntry, Role, User};
use super::session::CurrentUser;

/// Percent-encodes a query value.
pub fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub(super) fn timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

fn document(title: &str, nav: Option<Markup>, main: Markup, scripts: &[&str]) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · mlops portal" }
                link rel="stylesheet" href="/static/portal.css";
                @if scripts.iter().any(|s| s.contains("uplot")) {
                    link rel="stylesheet" href="/static/vendor/uplot.css";
                }
                @for src in scripts { script src=(src) defer {} }
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.bar {
                    span.brand { "mlops portal" }
                    @if let Some(nav) = nav { (nav) }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (main)
                }
            }
        }
    }
}

/// The navigation: only the pages `user`'s role may open, and logout.
fn navigation(user: &CurrentUser) -> Markup {
    let role = user.user.role;
    html! {
        nav aria-label="Portal" {
            ul {
                li { a href="/" { "Overview" } }
                li { a href="/kpis" { "KPIs" } }
                li { a href="/churn" { "Churn risk" } }
                li { a href="/predict" { "Predictions" } }
                li { a href="/models" { "Models" } }
                @if role >= Role::Analyst {
                    li { a href="/sql" { "SQL" } }
                }
                @if role >= Role::Admin {
                    li { a href="/admin/users" { "Users" } }
                }
            }
            form.logout method="post" action="/logout" {
                span.who { (user.user.username) " (" (role) ")" }
                input type="hidden" name="csrf" value=(user.user.csrf_token);
                button type="submit" { "Log out" }
            }
        }
    }
}

pub(super) fn page(user: &CurrentUser, title: &str, main: Markup) -> Response {
    page_with_scripts(user, title, main, &[])
}

/// A page that loads `scripts` (the gateway's own, under `/static`).
pub(super) fn page_with_scripts(
    user: &CurrentUser,
    title: &str,
    main: Markup,
    scripts: &[&str],
) -> Response {
    html_response(
        StatusCode::OK,
        document(title, Some(navigation(user)), main, scripts),
    )
}

fn html_response(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        markup.into_string(),
    )
        .into_response()
}

fn error_box(error: Option<&str>) -> Markup {
    html! {
        @if let Some(error) = error {
            p.error role="alert" { (error) }
        }
    }
}

pub fn login(token: &str, next: &str, username: &str, error: Option<&str>) -> Response {
    let main = html! {
        (error_box(error))
        form.card method="post" action="/login" {
            input type="hidden" name="csrf" value=(token);
            input type="hidden" name="next" value=(next);
            label for="username" { "Username" }
            input #username name="username" type="text" autocomplete="username" required value=(username);
            label for="password" { "Password" }
            input #password name="password" type="password" autocomplete="current-password" required;
            button type="submit" { "Log in" }
        }
    };
    html_response(StatusCode::OK, document("Log in", None, main, &[]))
}

pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    html_response(status, document(title, None, html! { p { (text) } }, &[]))
}

pub fn unavailable() -> Response {
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        "Unavailable",
        "The portal's database did not answer. Try again in a moment; the gateway's log says more.",
    )
}

pub fn forbidden(user: &CurrentUser, needs: Role) -> Response {
    let main = html! {
        p { "This page needs the " strong { (needs) } " role; you are logged in as "
            (user.user.username) " with the " strong { (user.user.role) } " role." }
    };
    let mut response = page(user, "Forbidden", main);
    *response.status_mut() = StatusCode::FORBIDDEN;
    response
}

pub fn users(
    user: &CurrentUser,
    users: &[User],
    audit: &[AuditEntry],
    error: Option<&str>,
) -> Response {
    let csrf = &user.user.csrf_token;
    let role_options = |selected: Role| {
        html! {
            @for role in Role::ALL {
                option value=(role) selected[role == selected] { (role) }
            }
        }
    };
    let main = html! {
        (error_box(error))
        section aria-labelledby="accounts" {
            h2 #accounts { "Accounts" }
            div.scroll { table {
                thead { tr { th scope="col" { "User" } th scope="col" { "Role" } th scope="col" { "Created" } th scope="col" { "State" } th scope="col" { "Password" } } }
                tbody {
                    @for u in users {
                        tr {
                            td { (u.username) }
                            td {
                                form.inline method="post" action={ "/admin/users/" (u.username) "/role" } {
                                    input type="hidden" name="csrf" value=(csrf);
                                    label.visually-hidden for={ "role-" (u.username) } { "Role of " (u.username) }
                                    select id={ "role-" (u.username) } name="role" { (role_options(u.role)) }
                                    button type="submit" { "Change role" }
                                }
                            }
                            td { (timestamp(u.created_at)) }
                            td {
                                @let (state, action, label) = match u.disabled_at {
                                    Some(_) => ("disabled", "enable", "Enable"),
                                    None => ("active", "disable", "Disable"),
                                };
                                span { (state) " " }
                                form.inline method="post" action={ "/admin/users/" (u.username) "/" (action) } {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button type="submit" aria-label={ (label) " " (u.username) } { (label) }
                                }
                            }
                            td {
                                form.inline method="post" action={ "/admin/users/" (u.username) "/password" } {
                                    input type="hidden" name="csrf" value=(csrf);
                                    label.visually-hidden for={ "password-" (u.username) } { "New password for " (u.username) }
                                    input id={ "password-" (u.username) } name="password" type="password" autocomplete="new-password" minlength="12" required;
                                    button type="submit" { "Set password" }
                                }
                            }
                        }
                    }
                }
            } }
        }
        section aria-labelledby="new-account" {
            h2 #new-account { "New account" }
            form.card method="post" action="/admin/users" {
                input type="hidden" name="csrf" value=(csrf);
                label for="new-username" { "Username" }
                input #new-username name="username" type="text" autocomplete="off" required;
                label for="new-role" { "Role" }
                select #new-role name="role" { (role_options(Role::Viewer)) }
                label for="new-password" { "Initial password (at least 12 characters)" }
                input #new-password name="password" type="password" autocomplete="new-password" minlength="12" required;
                button type="submit" { "Create account" }
            }
        }
        section aria-labelledby="audit" {
            h2 #audit { "Audit trail" }
            div.scroll { table {
                thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Action" } th scope="col" { "Account" } th scope="col" { "From" } th scope="col" { "Detail" } } }
                tbody {
                    @for e in audit {
                        tr {
                            td { (timestamp(e.at)) }
                            td { (e.actor) }
                            td { (e.action) }
                            td { (e.target) }
                            td { (e.address) }
                            td { (e.detail) }
                        }
                    }
                }
            } }
        }
    };
    page(user, "Users", main)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_civil_utc() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(timestamp(1_796_300_000_000), "2026-12-03 12:13:20 UTC");
        assert_eq!(timestamp(951_782_400_000), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(url_encode("/admin/users?x=1&y"), "/admin/users%3Fx%3D1%26y");
    }
}
