//! `kill -9` in the middle of runs, then a rerun: the tables equal those
//! of an uninterrupted run over the same bronze table.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mlops_producer::{FaultRates, Outgoing};
use support::*;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn transform(lake: &TestLake) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_transform"));
    command
        .arg("--once")
        .env("LAKE_URL", lake.location.root().as_str())
        .env("ADMIN_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_runs_and_a_rerun_give_the_tables_of_an_uninterrupted_run() {
    let days = producer_days(
        3,
        200,
        40,
        FaultRates {
            duplicate: 0.02,
            late: 0.03,
            malformed: 0.0,
        },
    );
    let records: Vec<Outgoing> = days.iter().flatten().cloned().collect();
    let killed = TestLake::new(Store::Local);
    write_bronze(&killed.location, &records, 25_000, ingested_at(40)).await;
    let reference = TestLake::new(Store::Local);
    let root = |lake: &TestLake| lake.location.root().to_file_path().expect("local lake");
    copy_dir(&root(&killed), &root(&reference));

    // The uninterrupted run, timed to place the kills inside it.
    let started = Instant::now();
    let status = transform(&reference).status().expect("run");
    assert!(status.success());
    let full_run = started.elapsed();

    // Kills spread over the run: early (silver), middle and late (gold).
    let mut interrupted = 0;
    for fraction in [0.15, 0.35, 0.5, 0.65, 0.8, 0.95] {
        let mut child = transform(&killed).spawn().expect("spawn");
        let deadline = Instant::now() + full_run.mul_f64(fraction);
        while Instant::now() < deadline {
            if child.try_wait().expect("wait").is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if child.try_wait().expect("wait").is_none() {
            child.kill().expect("SIGKILL");
            interrupted += 1;
        }
        child.wait().expect("reap");
    }
    assert!(interrupted >= 3, "only {interrupted} kills landed mid-run");
    let status = transform(&killed).status().expect("rerun");
    assert!(status.success());

    for spec in output_specs() {
        let a = table_rows(&killed.location, &spec).await;
        let b = table_rows(&reference.location, &spec).await;
        assert_eq!(a.len(), b.len(), "{}: row count", spec.name);
        assert!(a == b, "{}: contents differ after kills", spec.name);
    }
    // And the reference really is complete.
    let silver = table_rows(&reference.location, &mlops_lake::silver::spec()).await;
    assert!(silver.len() > 50_000, "{} silver rows", silver.len());
}
