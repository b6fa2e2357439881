//! The portal in Debian's Chromium, driven by playwright-core
//! (`tests/browser/portal.mjs`): login by keyboard and by mouse, the
//! overview with the served model, creating an account, logout, a viewer's
//! 403, and the phone-width layout. Screenshots of every page are written
//! to `target/tmp/portal-screenshots`.

use std::process::Command;

use crate::registry_support::required_env;
use crate::support::{ADMIN_PASSWORD, MODEL, World, linear_model};

#[tokio::test]
async fn the_portal_works_in_a_real_browser() {
    let chromium = required_env("TEST_CHROMIUM");
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: ./scripts/infra.sh install puts Debian's chromium there"
    );
    let playwright = required_env("TEST_PLAYWRIGHT_DIR");
    let mut world = World::new().await;
    let (_, bytes) = linear_model(5);
    let version = world.register(MODEL, bytes).await;
    world.set_alias(MODEL, "champion", version).await;
    let gateway = world.gateway(&[]).await;
    gateway.wait_for_champion(version).await;

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/portal.mjs");
    let shots = concat!(env!("CARGO_TARGET_TMPDIR"), "/portal-screenshots");
    let run = {
        let (url, playwright) = (gateway.http.clone(), playwright.clone());
        tokio::task::spawn_blocking(move || {
            Command::new("node")
                .arg(script)
                .env("PORTAL_URL", url)
                .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
                .env("SCREENSHOT_DIR", shots)
                .env("PLAYWRIGHT_DIR", playwright)
                .output()
                .expect("run node")
        })
        .await
        .expect("join")
    };
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}"
    );
    for check in [
        "ok: an anonymous visit lands on the login form",
        "ok: Tab reaches the skip link first",
        "ok: a wrong password is refused with a message",
        "ok: the overview lists the served model",
        "ok: the new account is listed",
        "ok: a viewer gets 403 on the users page",
        "ok: the overview fits a 390 px screen",
    ] {
        assert!(stdout.contains(check), "{check} missing from:\n{stdout}");
    }
    for shot in [
        "login-refused",
        "overview",
        "users",
        "forbidden",
        "overview-phone",
    ] {
        let file = format!("{shots}/{shot}.png");
        let size = std::fs::metadata(&file).map_or(0, |m| m.len());
        assert!(size > 1000, "{file}: {size} bytes");
    }
    gateway.stop().await;
}
