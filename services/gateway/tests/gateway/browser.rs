//! The portal in Debian's Chromium, driven by playwright-core
//! (`tests/browser/portal.mjs`) over a lake written by the transform and
//! the trainer's registrations: login by keyboard and by mouse, the
//! overview, an account created, the KPI charts drawn and filtered, the SQL
//! console's answer and its refusal of DROP TABLE, a promotion through the
//! Models page that the serving API then reports, a viewer's 403s, and the
//! phone-width layout. Screenshots of every page are written to
//! `target/tmp/portal-screenshots`.

use std::process::Command;

use mlops_registry_client::proto as pb;

use crate::registry_support::required_env;
use crate::support::{ADMIN_PASSWORD, World};
use crate::trainer_support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_works_in_a_real_browser() {
    let chromium = required_env("TEST_CHROMIUM");
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: ./scripts/infra.sh install puts Debian's chromium there"
    );
    let playwright = required_env("TEST_PLAYWRIGHT_DIR");
    let (lake, _) = trainer_support::world(13, 80, 45).await;
    let world = World::new().await;
    let trainer_token = world.registry.token("trainer", pb::Role::Approver).await;
    let approver_token = world.registry.token("portal", pb::Role::Approver).await;
    let config = trainer_support::config(&lake, &world.registry.url, &trainer_token, &[]);
    let summary = trainer_support::train(&config).await.expect("training run");
    let first = summary.best_version;
    let other = *summary
        .versions
        .values()
        .find(|v| **v != first)
        .expect("two candidates");
    let root = lake.location.root().to_string();
    let gateway = world
        .gateway(&[
            ("LAKE_URL", &root),
            ("GATEWAY_PORTAL_APPROVER_TOKEN", &approver_token),
        ])
        .await;
    gateway.wait_for_champion(first).await;

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
                .env("PROMOTE_VERSION", other.to_string())
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
        "ok: six KPI charts draw",
        "ok: every chart paints its canvas",
        "ok: the line charts have one series per region",
        "ok: the region filter leaves one series per line chart",
        "ok: the SQL console shows a row per region",
        "ok: the SQL console refuses DROP TABLE",
        "ok: the promotion moves @champion",
        "ok: the version page shows its lineage chain",
        "ok: the churn ranking lists subscribers",
        "ok: the drill-down shows the score's drivers",
        "ok: a what-if is scored",
        "ok: a viewer gets 403 on the users page",
        "ok: a viewer gets 403 on the SQL console",
        "ok: and on its API",
        "ok: / fits a 390 px screen",
        "ok: /kpis fits a 390 px screen",
        "ok: /models/churn fits a 390 px screen",
    ] {
        assert!(stdout.contains(check), "{check} missing from:\n{stdout}");
    }
    if let Some(timing) = stdout.lines().find(|l| l.starts_with("timing:")) {
        eprintln!("{timing} (each page's in {shots}/server-timings.json)");
    }
    // The promotion reached the registry and what the gateway serves.
    gateway.wait_for_champion(other).await;
    for shot in [
        "login-refused",
        "overview",
        "users",
        "kpis",
        "sql",
        "sql-refused",
        "model",
        "promote-confirm",
        "version",
        "churn",
        "subscriber",
        "what-if",
        "forbidden",
        "overview-phone",
        "kpis-phone",
        "model-phone",
    ] {
        let file = format!("{shots}/{shot}.png");
        let size = std::fs::metadata(&file).map_or(0, |m| m.len());
        assert!(size > 1000, "{file}: {size} bytes");
    }
    gateway.stop().await;
}
