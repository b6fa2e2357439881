//! Training time and test AUC of the trainer's models beside LightGBM and
//! scikit-learn trained on exactly the same matrices in the same run
//! (`scripts/bench_train_peers.py`), on the same cores.
//!
//! `./scripts/bench.sh train`. Our GBDT and LightGBM are each timed
//! `BENCH_REPEATS` (3) times, medians compared. The world: `BENCH_SUBSCRIBERS` (20000)
//! subscribers over `BENCH_DAYS` (150) days, through bronze and the real
//! transform into gold; `BENCH_LAKE` keeps that lake in a directory to reuse
//! it on the next run. Labels and split are the trainer's defaults (30-day
//! horizon, 30 test days).

#![allow(clippy::print_stdout)]

#[path = "../../transform/tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use mlops_lake::LakeLocation;
use mlops_producer::sim::{SimConfig, midnight};
use mlops_producer::{Emitter, FaultRates};
use mlops_runtime::EnvReader;
use mlops_trainer::config::CandidateKind;
use mlops_trainer::{TrainerConfig, dataset, matrices, train};

fn env_number(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Simulates the world day by day into bronze, running the transform every
/// ten days as the service would, so memory stays bounded.
async fn build_gold(lake: &support::TestLake, subscribers: u32, days: u32) {
    let started = Instant::now();
    let mut emitter = Emitter::new(
        &SimConfig {
            seed: 42,
            subscribers,
            start: midnight(support::start_date()),
        },
        FaultRates {
            duplicate: 0.01,
            late: 0.01,
            malformed: 0.0,
        },
    );
    let mut bronze_rows = 0;
    let mut pending = Vec::new();
    for day in 1..=days {
        pending.extend(emitter.next_day());
        if day == days {
            pending.extend(emitter.drain_delayed());
        }
        if day % 10 == 0 || day == days {
            bronze_rows +=
                support::write_bronze(&lake.location, &pending, 500_000, support::ingested_at(day))
                    .await;
            pending.clear();
            support::run_once(lake).await;
            println!(
                "world: day {day}/{days}, {bronze_rows} bronze rows, {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
}

#[tokio::main]
async fn main() {
    // The trainer's own progress lines, with where each model's time goes.
    tracing_subscriber::fmt()
        .with_env_filter("mlops_trainer::gbdt=info,mlops_trainer::linear=info")
        .with_writer(std::io::stderr)
        .init();
    let subscribers = env_number("BENCH_SUBSCRIBERS", 20_000);
    let days = env_number("BENCH_DAYS", 150);
    let python = std::env::var("BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/bench_train_peers.py"
    );
    let ort = std::env::var("ORT_DYLIB_PATH").expect("ORT_DYLIB_PATH (./scripts/infra.sh env)");

    let (lake, _keep) = match std::env::var("BENCH_LAKE") {
        Ok(dir) => {
            let existed = PathBuf::from(&dir).join("gold").exists();
            std::fs::create_dir_all(&dir).expect("lake dir");
            let location: LakeLocation = dir.parse().expect("lake path");
            let lake = support::TestLake::at(location);
            if !existed {
                build_gold(&lake, subscribers, days).await;
            } else {
                println!("world: reusing the lake in {dir}");
            }
            (lake, None)
        }
        Err(_) => {
            let lake = support::TestLake::new(support::Store::Local);
            build_gold(&lake, subscribers, days).await;
            (lake, Some(()))
        }
    };

    let root = lake.location.root().to_string();
    let mut config = TrainerConfig::from_env(&mut EnvReader::from_pairs(&[
        ("LAKE_URL", &root),
        ("TRAINER_REGISTRY_TOKEN", "not-used-by-the-benchmark"),
        ("ORT_DYLIB_PATH", &ort),
    ]))
    .expect("config");
    config.lake = lake.location.clone();
    mlops_onnx::init(&config.onnx_runtime).expect("onnx runtime");
    let config = Arc::new(config);

    let version = dataset::latest_gold_version(&lake.location)
        .await
        .expect("gold")
        .expect("gold version");
    let started = Instant::now();
    let snapshot = dataset::load(&lake.location, version)
        .await
        .expect("snapshot");
    println!(
        "snapshot: gold v{version}, {} rows in {:.1} s",
        snapshot.rows.len(),
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let prepared = train::prepare(&snapshot, &config).expect("prepare");
    let counts = &prepared.labelled.counts;
    println!(
        "labels: {} labelled rows ({} positives, {} censored); fit {}, validation {}, test {} rows, {} columns; {:.1} s",
        counts.labelled,
        counts.positives,
        counts.censored,
        prepared.fit.len(),
        prepared.validation.len(),
        prepared.test.len(),
        prepared.columns.len(),
        started.elapsed().as_secs_f64()
    );
    let out = tempfile::tempdir().expect("temp dir");
    for (name, m) in [
        ("fit", &prepared.fit),
        ("validation", &prepared.validation),
        ("test", &prepared.test),
    ] {
        matrices::write(out.path(), name, m, &prepared.columns).expect("parquet");
    }

    // The GBDT and LightGBM are timed `BENCH_REPEATS` times each and their
    // medians compared: single runs vary by 20 % on a shared machine.
    let repeats = env_number("BENCH_REPEATS", 3).max(1);
    let mut ours = Vec::new();
    for kind in [CandidateKind::Gbdt, CandidateKind::LogisticRegression] {
        let runs = if kind == CandidateKind::Gbdt {
            repeats
        } else {
            1
        };
        let mut times = Vec::new();
        let mut candidate = train::train_candidate(kind, &prepared, &snapshot, &config);
        times.push(candidate.fit_seconds);
        for _ in 1..runs {
            candidate = train::train_candidate(kind, &prepared, &snapshot, &config);
            times.push(candidate.fit_seconds);
        }
        times.sort_by(f64::total_cmp);
        candidate.fit_seconds = times[times.len() / 2];
        if runs > 1 {
            println!("ours {} fit seconds, each run: {times:.2?}", kind.name());
        }
        let parity =
            train::check_parity(&candidate, &prepared.test, &prepared.columns).expect("parity");
        let detail = match &candidate.model {
            train::Model::Gbdt(m) => format!("{} trees", m.trees.len()),
            train::Model::Linear(m) => format!("{} Newton iterations", m.iterations),
        };
        println!(
            "ours {:<20} fit {:>7.2} s  test AUC {:.4}  ({detail}; ONNX Runtime parity {parity:.1e})",
            kind.name(),
            candidate.fit_seconds,
            candidate.test.roc_auc
        );
        ours.push((kind, candidate.fit_seconds, candidate.test.roc_auc));
    }

    let threads = mlops_trainer::parallel::threads().to_string();
    let output = Command::new(&python)
        .arg(script)
        .arg(out.path())
        .arg(&threads)
        .arg(repeats.to_string())
        .env_remove("OPENBLAS_CORETYPE")
        .env_remove("OPENBLAS_L2_SIZE")
        .output()
        .expect("run the peers");
    assert!(
        output.status.success(),
        "peers failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let peers: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let peer = |name: &str| {
        peers
            .iter()
            .find(|p| p["model"] == name)
            .expect("peer result")
    };
    for p in &peers {
        if let Some(each) = p.get("fit_seconds_each") {
            println!(
                "peer {} fit seconds, each run: {each}",
                p["model"].as_str().unwrap_or("?")
            );
        }
        println!(
            "peer {:<28} fit {:>7.2} s  test AUC {:.4}  (threads {}, {})",
            p["model"].as_str().unwrap_or("?"),
            p["fit_seconds"].as_f64().unwrap_or(f64::NAN),
            p["test_auc"].as_f64().unwrap_or(f64::NAN),
            p["threads"],
            p.get("trees")
                .map(|t| format!("{t} trees"))
                .unwrap_or_default()
        );
    }
    let lgbm = peer("lightgbm");
    let (lgbm_fit, lgbm_auc) = (
        lgbm["fit_seconds"].as_f64().unwrap_or(f64::NAN),
        lgbm["test_auc"].as_f64().unwrap_or(f64::NAN),
    );
    let skl = peer("sklearn_logistic_regression");
    let skl_auc = skl["test_auc"].as_f64().unwrap_or(f64::NAN);
    let hgb = peer("sklearn_hist_gbdt");
    let (_, gbdt_fit, gbdt_auc) = ours[0];
    let (_, lr_fit, lr_auc) = ours[1];
    println!();
    println!(
        "gbdt vs lightgbm: AUC {gbdt_auc:.4} vs {lgbm_auc:.4} (diff {:+.4}, target >= -0.005); fit time ratio {:.2} (target <= 1.0)",
        gbdt_auc - lgbm_auc,
        gbdt_fit / lgbm_fit
    );
    println!(
        "gbdt vs sklearn hist gbdt: fit time ratio {:.2}, AUC diff {:+.4}",
        gbdt_fit / hgb["fit_seconds"].as_f64().unwrap_or(f64::NAN),
        gbdt_auc - hgb["test_auc"].as_f64().unwrap_or(f64::NAN)
    );
    println!(
        "logistic regression vs sklearn: AUC {lr_auc:.4} vs {skl_auc:.4} (diff {:+.4}, target >= -0.002); fit time ratio {:.2}",
        lr_auc - skl_auc,
        lr_fit / skl["fit_seconds"].as_f64().unwrap_or(f64::NAN)
    );
}
