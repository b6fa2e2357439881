//! Serving throughput and latency of the gateway's Open Inference Protocol
//! REST infer beside FastAPI + scikit-learn and FastAPI + onnxruntime
//! (`scripts/bench_serve_peers.py`), serving the same model on the same
//! cores in the same run, driven by the same load generator.
//!
//! `./scripts/bench.sh serve`. The model: a scikit-learn
//! GradientBoostingClassifier (100 trees, 20 features); the peers load its
//! pickle or its skl2onnx export, the gateway the export, registered in a
//! registry and promoted to `@champion`. Every request is one row as an OIP
//! JSON body. Each server gets `BENCH_CONCURRENCY` (32) connections in a
//! closed loop for `BENCH_SECONDS` (10) to find its peak, then an open loop
//! at half that rate, whose latencies count from each request's scheduled
//! time (so a stall is not hidden by the loop waiting for it). The peers
//! run `BENCH_WORKERS` (the number of cores) uvicorn processes. The gateway
//! runs with token checks, and with its prediction log on the test broker
//! when `TEST_KAFKA_BROKERS` is set.

#![allow(clippy::print_stdout)]

#[path = "../../model-registry/tests/support/mod.rs"]
mod registry_support;
#[path = "../tests/gateway/support.rs"]
#[allow(dead_code)]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::{Value, json};

const MODEL: &str = "bench";

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A server under load.
struct Target {
    name: &'static str,
    url: String,
    token: Option<String>,
}

/// One load run's outcome.
struct Run {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    /// Sorted.
    latencies: Vec<Duration>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[i - 1].as_secs_f64() * 1e3
    }
}

async fn send(client: &Client, target: &Target, body: axum::body::Bytes) -> Result<Value, String> {
    let mut request = client
        .post(&target.url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = &target.token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&bytes)));
    }
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

/// `concurrency` connections, each sending its next request when the last
/// is answered; or, with `rate`, each on a fixed schedule that together
/// makes `rate` requests a second, latencies counted from the schedule.
async fn load(
    target: Arc<Target>,
    bodies: Arc<Vec<axum::body::Bytes>>,
    concurrency: usize,
    duration: Duration,
    rate: Option<f64>,
) -> Run {
    let client = Client::new();
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|worker| {
            let (client, target, bodies) = (client.clone(), target.clone(), bodies.clone());
            tokio::spawn(async move {
                let period = rate.map(|r| Duration::from_secs_f64(concurrency as f64 / r));
                let mut latencies = Vec::new();
                let mut errors = 0;
                let mut i = worker;
                let mut next = started
                    + period.map_or(Duration::ZERO, |p| {
                        p.mul_f64(worker as f64 / concurrency as f64)
                    });
                while next < deadline {
                    if period.is_some() {
                        tokio::time::sleep_until(next.into()).await;
                    }
                    let sent = if period.is_some() {
                        next
                    } else {
                        Instant::now()
                    };
                    let body = bodies[i % bodies.len()].clone();
                    i += concurrency;
                    if send(&client, &target, body).await.is_err() {
                        errors += 1;
                    }
                    let done = Instant::now();
                    latencies.push(done - sent);
                    next = match period {
                        Some(p) => next + p,
                        None => done,
                    };
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut run = Run {
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for task in tasks {
        let (latencies, errors) = task.await.expect("load task");
        run.requests += latencies.len();
        run.errors += errors;
        run.latencies.extend(latencies);
    }
    run.elapsed = started.elapsed();
    run.latencies.sort_unstable();
    run
}

/// The largest difference between the target's scores and scikit-learn's.
async fn score_difference(target: &Target, rows: &[Vec<f32>], sklearn: &[f64]) -> f64 {
    let client = Client::new();
    let mut worst = 0f64;
    for (row, want) in rows.iter().zip(sklearn) {
        let response = send(&client, target, body(row))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", target.name));
        let output = response["outputs"]
            .as_array()
            .and_then(|o| o.iter().find(|o| o["name"] == "probabilities"))
            .unwrap_or_else(|| panic!("{}: no probabilities in {response}", target.name));
        let got = output["data"][1].as_f64().expect("a probability");
        worst = worst.max((got - want).abs());
    }
    worst
}

fn body(row: &[f32]) -> axum::body::Bytes {
    let body = json!({
        "id": "bench",
        "inputs": [{"name": "input", "shape": [1, row.len()], "datatype": "FP32", "data": row}],
    });
    serde_json::to_vec(&body).expect("json").into()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A FastAPI peer, stopped with its worker processes when dropped.
struct Peer(Child);

impl Peer {
    fn start(
        python: &str,
        script: &Path,
        kind: &str,
        dir: &Path,
        port: u16,
        workers: usize,
    ) -> Self {
        use std::os::unix::process::CommandExt;
        let child = Command::new(python)
            .arg(script)
            .args(["serve", kind])
            .arg(dir)
            .args([port.to_string(), workers.to_string()])
            .process_group(0)
            .spawn()
            .expect("start the FastAPI peer");
        Self(child)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.0.wait();
    }
}

async fn wait_ready(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(response) = reqwest::get(url).await
            && response.status() == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "{url} never answered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Measured {
    name: &'static str,
    peak: Run,
    half: Run,
    difference: f64,
}

fn measure(
    load_rt: &tokio::runtime::Runtime,
    target: Target,
    bodies: &Arc<Vec<axum::body::Bytes>>,
    (rows, sklearn): (&[Vec<f32>], &[f64]),
    concurrency: usize,
    seconds: Duration,
) -> Measured {
    let target = Arc::new(target);
    load_rt.block_on(async {
        let difference = score_difference(&target, rows, sklearn).await;
        // Warm-up: connections, sessions, caches.
        load(
            target.clone(),
            bodies.clone(),
            concurrency,
            Duration::from_secs(2),
            None,
        )
        .await;
        let peak = load(target.clone(), bodies.clone(), concurrency, seconds, None).await;
        let half = load(
            target.clone(),
            bodies.clone(),
            concurrency,
            seconds,
            Some(peak.rate() / 2.0),
        )
        .await;
        eprintln!(
            "{}: {:.0} req/s at peak, p99 {:.2} ms at half",
            target.name,
            peak.rate(),
            half.percentile_ms(0.99)
        );
        Measured {
            name: target.name,
            peak,
            half,
            difference,
        }
    })
}

fn main() {
    let seconds = Duration::from_secs(env_number("BENCH_SECONDS", 10) as u64);
    let concurrency = env_number("BENCH_CONCURRENCY", 32);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let workers = env_number("BENCH_WORKERS", cores);
    let python = std::env::var("BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/bench_serve_peers.py"
    ));
    let dir = tempfile::tempdir().expect("temp dir");
    let made = Command::new(&python)
        .arg(&script)
        .arg("model")
        .arg(dir.path())
        .status()
        .expect("run the model script");
    assert!(made.success(), "the model script failed");
    let fixture: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("rows.json")).expect("rows.json"))
            .expect("rows json");
    let rows: Vec<Vec<f32>> =
        serde_json::from_value(fixture["rows"].clone()).expect("rows of floats");
    let sklearn: Vec<f64> = serde_json::from_value(fixture["sklearn"].clone()).expect("scores");
    let bodies = Arc::new(rows.iter().map(|r| body(r)).collect::<Vec<_>>());
    let onnx = std::fs::read(dir.path().join("model.onnx")).expect("model.onnx");

    // The load generator gets one thread; the servers the rest of the machine.
    let load_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("load runtime");
    let gateway_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .expect("gateway runtime");

    let brokers = std::env::var("TEST_KAFKA_BROKERS").ok();
    let mut results = Vec::new();
    {
        let (gateway, token, _world) = gateway_rt.block_on(async {
            let mut world = support::World::new().await;
            let version = world.register(MODEL, onnx).await;
            world.set_alias(MODEL, "champion", version).await;
            let topic = registry_support::unique("bench-predictions");
            let cores = cores.to_string();
            let mut extra = vec![
                ("GATEWAY_MODELS", MODEL),
                ("GATEWAY_SESSIONS_PER_MODEL", cores.as_str()),
            ];
            match &brokers {
                Some(brokers) => extra.extend([
                    ("GATEWAY_PREDICTION_LOG", "kafka"),
                    ("KAFKA_BROKERS", brokers.as_str()),
                    ("PREDICTIONS_TOPIC", topic.as_str()),
                ]),
                None => eprintln!("TEST_KAFKA_BROKERS is not set: the prediction log is off"),
            }
            let gateway = world.gateway(&extra).await;
            gateway
                .wait_until("the champion", &format!("/v2/models/{MODEL}/ready"), |b| {
                    b["version"].as_str() == Some(version.to_string().as_str())
                })
                .await;
            let token = world.client_token().await;
            (gateway, token, world)
        });
        let target = Target {
            name: "gateway (OIP REST, Rust + ONNX Runtime)",
            url: format!("{}/v2/models/{MODEL}/infer", gateway.http),
            token: Some(token),
        };
        results.push(measure(
            &load_rt,
            target,
            &bodies,
            (&rows, &sklearn),
            concurrency,
            seconds,
        ));
        let (sent, dropped) = gateway_rt.block_on(async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            (
                gateway.metric("gateway_prediction_log_sent_total").await,
                gateway.metric("gateway_prediction_log_dropped_total").await,
            )
        });
        if brokers.is_some() {
            println!("gateway prediction log: {sent} records delivered, {dropped} dropped");
        }
        gateway_rt.block_on(gateway.stop());
    }
    for (name, kind) in [
        ("FastAPI + scikit-learn", "sklearn"),
        ("FastAPI + onnxruntime", "onnxruntime"),
    ] {
        let port = free_port();
        let _peer = Peer::start(&python, &script, kind, dir.path(), port, workers);
        load_rt.block_on(wait_ready(&format!("http://127.0.0.1:{port}/ready")));
        let target = Target {
            name,
            url: format!("http://127.0.0.1:{port}/v2/models/{MODEL}/infer"),
            token: None,
        };
        results.push(measure(
            &load_rt,
            target,
            &bodies,
            (&rows, &sklearn),
            concurrency,
            seconds,
        ));
    }

    println!();
    println!(
        "one-row OIP JSON requests, {concurrency} connections, {}s per run, {cores} cores, peers with {workers} uvicorn workers",
        seconds.as_secs()
    );
    println!(
        "{:<42} {:>9} {:>8} {:>8} | {:>9} {:>8} {:>8} | {:>6} | max |score - sklearn|",
        "server", "peak r/s", "p50 ms", "p99 ms", "half r/s", "p50 ms", "p99 ms", "errors"
    );
    for m in &results {
        println!(
            "{:<42} {:>9.0} {:>8.2} {:>8.2} | {:>9.0} {:>8.2} {:>8.2} | {:>6} | {:.1e}",
            m.name,
            m.peak.rate(),
            m.peak.percentile_ms(0.5),
            m.peak.percentile_ms(0.99),
            m.half.rate(),
            m.half.percentile_ms(0.5),
            m.half.percentile_ms(0.99),
            m.peak.errors + m.half.errors,
            m.difference,
        );
    }
    let gateway = &results[0];
    for peer in &results[1..] {
        println!(
            "gateway / {}: {:.1}x the throughput",
            peer.name,
            gateway.peak.rate() / peer.peak.rate()
        );
    }
    println!(
        "target: >= 20x FastAPI + scikit-learn ({:.1}x), p99 < 2 ms at half of peak ({:.2} ms)",
        gateway.peak.rate() / results[1].peak.rate(),
        gateway.half.percentile_ms(0.99)
    );
}
