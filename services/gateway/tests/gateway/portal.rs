//! The portal's accounts and sessions over HTTP, as a browser uses them:
//! cookies, forms with CSRF tokens, redirects, role checks on the server,
//! throttled logins and the audit trail.

use reqwest::StatusCode;

use crate::portal_client::Browser;
use crate::registry_support::{Db, TestDb};
use crate::support::{ADMIN_PASSWORD, MODEL, TestGateway, World, linear_model};

const VERA_PASSWORD: &str = "vera-first-password";

#[tokio::test]
async fn accounts_sessions_and_roles_are_enforced_on_the_server() {
    let mut world = World::new().await;
    let (_, bytes) = linear_model(3);
    let version = world.register(MODEL, bytes).await;
    world.set_alias(MODEL, "champion", version).await;
    let gateway = world.gateway(&[]).await;
    gateway.wait_for_champion(version).await;
    let mut admin = Browser::new(&gateway);

    // No session: every page sends the browser to the login form.
    let page = admin.get("/admin/users").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location, "/login?next=/admin/users");
    let form = admin.get("/login").await;
    assert_eq!(form.status, StatusCode::OK);
    let login_cookie = admin.set_cookies.join("\n");
    assert!(login_cookie.starts_with("mlops_login="), "{login_cookie}");
    assert!(
        login_cookie.contains("HttpOnly; SameSite=Lax"),
        "{login_cookie}"
    );
    assert!(
        !login_cookie.contains("Secure"),
        "plain HTTP, no proxy: {login_cookie}"
    );

    // A forged login form (no matching token) and a wrong password.
    let forged = admin
        .post(
            "/login",
            &[
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
                ("csrf", "x"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(
        forged.body.contains("the login form expired"),
        "{}",
        forged.body
    );
    let wrong = admin.login("admin", "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.body.contains("wrong username or password"),
        "{}",
        wrong.body
    );

    // The bootstrap admin logs in: a server-side session in an HttpOnly cookie.
    let login = admin.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.body);
    assert_eq!(login.location, "/");
    let session_cookie = admin
        .set_cookies
        .iter()
        .find(|c| c.starts_with("mlops_session="));
    let session_cookie = session_cookie.expect("a session cookie");
    assert!(
        session_cookie.contains("HttpOnly; SameSite=Lax; Max-Age=28800"),
        "{session_cookie}"
    );
    let overview = admin.get("/").await;
    assert_eq!(overview.status, StatusCode::OK);
    assert!(overview.body.contains("Served models"), "{}", overview.body);
    assert!(
        overview
            .body
            .contains(&format!(">{MODEL}</a></td><td>{version}</td>")),
        "{}",
        overview.body
    );
    assert!(overview.body.contains("admin (admin)"), "{}", overview.body);
    assert!(overview.body.contains("href=\"/admin/users\""));
    let csrf = Browser::csrf(&overview);

    // Behind a TLS proxy the cookies are Secure.
    let mut proxied = Browser::new(&gateway);
    let request = proxied
        .client
        .get(format!("{}/login", gateway.http))
        .header("x-forwarded-proto", "https");
    proxied.send(request).await;
    assert!(
        proxied.set_cookies[0].ends_with("; Secure"),
        "{:?}",
        proxied.set_cookies
    );

    // Creating an account needs the session's CSRF token.
    let forged = admin
        .create_account("nope", "vera", "viewer", VERA_PASSWORD)
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let bad = admin
        .create_account(&csrf, "Vera!", "viewer", VERA_PASSWORD)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body.contains("username &quot;Vera!&quot; is not valid"),
        "{}",
        bad.body
    );
    let short = admin.create_account(&csrf, "vera", "viewer", "short").await;
    assert!(
        short.body.contains("at least 12 characters"),
        "{}",
        short.body
    );
    let unknown_role = admin
        .create_account(&csrf, "vera", "root", VERA_PASSWORD)
        .await;
    assert!(
        unknown_role.body.contains("unknown role &quot;root&quot;"),
        "{}",
        unknown_role.body
    );
    let created = admin
        .create_account(&csrf, "vera", "viewer", VERA_PASSWORD)
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let taken = admin
        .create_account(&csrf, "vera", "viewer", VERA_PASSWORD)
        .await;
    assert!(
        taken
            .body
            .contains("the username &quot;vera&quot; is taken"),
        "{}",
        taken.body
    );

    // A viewer: no Users link, and 403 on the page and on its forms anyway.
    let mut vera = Browser::new(&gateway);
    let vera_csrf = vera.logged_in("vera", VERA_PASSWORD).await;
    let overview = vera.get("/").await;
    assert!(overview.body.contains("vera (viewer)"));
    assert!(!overview.body.contains("href=\"/admin/users\""));
    let denied = vera.get("/admin/users").await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert!(
        denied
            .body
            .contains("needs the <strong>admin</strong> role"),
        "{}",
        denied.body
    );
    let denied = vera
        .post(
            "/admin/users/vera/role",
            &[("role", "admin"), ("csrf", &vera_csrf)],
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);

    // A role change applies to the open session at once.
    let changed = admin
        .post(
            "/admin/users/vera/role",
            &[("role", "analyst"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
    assert!(vera.get("/").await.body.contains("vera (analyst)"));
    let missing = admin
        .post(
            "/admin/users/nobody/role",
            &[("role", "analyst"), ("csrf", &csrf)],
        )
        .await;
    assert!(
        missing
            .body
            .contains("there is no account &quot;nobody&quot;"),
        "{}",
        missing.body
    );

    // An admin cannot lock themselves out.
    let own = admin
        .post("/admin/users/admin/disable", &[("csrf", &csrf)])
        .await;
    assert_eq!(own.status, StatusCode::BAD_REQUEST);
    assert!(
        own.body.contains("you cannot disable your own account"),
        "{}",
        own.body
    );
    let own = admin
        .post(
            "/admin/users/admin/role",
            &[("role", "viewer"), ("csrf", &csrf)],
        )
        .await;
    assert!(
        own.body
            .contains("cannot take the admin role from your own account"),
        "{}",
        own.body
    );

    // Disabling ends the account's sessions and its logins.
    let disabled = admin
        .post("/admin/users/vera/disable", &[("csrf", &csrf)])
        .await;
    assert_eq!(disabled.status, StatusCode::SEE_OTHER, "{}", disabled.body);
    assert_eq!(vera.get("/").await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        vera.login("vera", VERA_PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    admin
        .post("/admin/users/vera/enable", &[("csrf", &csrf)])
        .await;
    let new_password = "vera-second-password";
    admin
        .post(
            "/admin/users/vera/password",
            &[("password", new_password), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(
        vera.login("vera", VERA_PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    vera.logged_in("vera", new_password).await;

    // Logging out ends the session on the server, not only in the browser.
    let session = admin.cookies["mlops_session"].clone();
    let out = admin.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location, "/login");
    admin.cookies.insert("mlops_session".into(), session);
    assert_eq!(admin.get("/").await.status, StatusCode::SEE_OTHER);

    // Everything above is on the audit trail.
    admin.logged_in("admin", ADMIN_PASSWORD).await;
    let audit = admin.get("/admin/users").await.body;
    for entry in [
        "<td>login_failed</td><td>admin</td>",
        "<td>admin</td><td>user_created</td><td>vera</td>",
        "<td>admin</td><td>role_changed</td><td>vera</td>",
        "viewer -&gt; analyst",
        "<td>admin</td><td>user_disabled</td><td>vera</td>",
        "<td>admin</td><td>password_changed</td><td>vera</td>",
        "<td>admin</td><td>logout</td><td>admin</td>",
        "<td>vera</td><td>login</td><td>vera</td>",
    ] {
        assert!(audit.contains(entry), "{entry} missing from {audit}");
    }
    gateway.stop().await;
}

#[tokio::test]
async fn failed_logins_are_throttled_per_account_and_per_address_on_postgres() {
    let db = TestDb::new(Db::Postgres).await;
    let world = World::new().await;
    let gateway = world
        .gateway(&[
            ("DATABASE_URL", db.url.as_str()),
            ("GATEWAY_CLIENT_IP_HEADER", "X-Forwarded-For"),
            ("GATEWAY_LOGIN_MAX_FAILURES", "3"),
            ("GATEWAY_LOGIN_MAX_FAILURES_PER_ADDRESS", "5"),
        ])
        .await;
    let mut attacker = Browser::new(&gateway);
    attacker.forwarded_for = Some("10.0.0.1, 192.0.2.7".into());
    for _ in 0..3 {
        let page = attacker.login("admin", "guess-guess-guess").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    // The account is locked for the window, even with the right password
    // and from another address.
    let locked = attacker.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        locked.body.contains("too many failed logins"),
        "{}",
        locked.body
    );
    let mut elsewhere = Browser::new(&gateway);
    elsewhere.forwarded_for = Some("192.0.2.99".into());
    assert_eq!(
        elsewhere.login("admin", ADMIN_PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    // The address is limited across accounts: two more failures reach 5.
    for name in ["alice", "bob"] {
        assert_eq!(
            attacker.login(name, "guess-guess-guess").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        attacker.login("carol", "guess-guess-guess").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another address may still try those accounts.
    assert_eq!(
        elsewhere.login("carol", "guess-guess-guess").await.status,
        StatusCode::UNAUTHORIZED
    );
    gateway.stop().await;

    // The accounts live in Postgres: a second gateway on the same database
    // needs no bootstrap password and sees the same failures.
    let again = world
        .gateway(&[
            ("DATABASE_URL", db.url.as_str()),
            ("GATEWAY_ADMIN_PASSWORD", ""),
            ("GATEWAY_LOGIN_MAX_FAILURES", "3"),
        ])
        .await;
    let mut browser = Browser::new(&again);
    assert_eq!(
        browser.login("admin", ADMIN_PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    again.stop().await;
}

#[tokio::test]
async fn a_gateway_without_an_admin_account_or_password_does_not_start() {
    let world = World::new().await;
    let started = TestGateway::try_start(
        &world.registry.url,
        &world.reader_token,
        &[("GATEWAY_ADMIN_PASSWORD", "")],
    )
    .await;
    let Err(error) = started else {
        panic!("a gateway started with no admin account and no password");
    };
    assert!(
        error.contains("set GATEWAY_ADMIN_PASSWORD or GATEWAY_ADMIN_PASSWORD_FILE"),
        "{error}"
    );
}
