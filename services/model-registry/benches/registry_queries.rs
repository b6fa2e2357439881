//! Registry query latency at scale: 1,000 models and 100,000 versions (each
//! with metrics and tags, 1,000 aliases) in Postgres, queried through the
//! real gRPC server. Prints p50/p99 latency and throughput of get-by-alias
//! and of a filtered search, beside a baseline call (`WhoAmI`: the same
//! transport and token check, no registry query), and the ratio to it.
//!
//! Target: p99 under 20 ms for both. Run with `scripts/bench.sh registry`
//! (needs Postgres; `BENCH_DATABASE_URL` or `TEST_DATABASE_URL`).

use std::time::{Duration, Instant};

use mlops_model_registry::artifacts::ArtifactStore;
use mlops_model_registry::store::Store;
use mlops_model_registry::{App, RegistryConfig};
use mlops_registry_client::RegistryClient;
use mlops_registry_client::proto as pb;
use mlops_runtime::{EnvReader, Shutdown};
use secrecy::SecretString;
use sqlx::Connection;

const MODELS: i64 = 1_000;
const VERSIONS_PER_MODEL: i64 = 100;
const CALLS: usize = 2_000;
const TOKEN: &str = "mlops_benchmark_bootstrap_token";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin_url = std::env::var("BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("TEST_DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    sqlx::any::install_default_drivers();
    let name = format!("registry_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::AnyConnection::connect(&admin_url).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    let url = format!(
        "{}/{name}",
        admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(&admin_url)
    );
    let outcome = run(&url).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    outcome
}

async fn run(url: &str) -> anyhow::Result<()> {
    let store = Store::connect(url, Default::default()).await?;
    store.migrate().await?;
    let started = Instant::now();
    populate(url).await?;
    eprintln!(
        "populated {MODELS} models, {} versions in {:.1} s",
        MODELS * VERSIONS_PER_MODEL,
        started.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir()?;
    let vars = [
        ("DATABASE_URL", url),
        ("REGISTRY_GRPC_ADDR", "127.0.0.1:0"),
        ("REGISTRY_HTTP_ADDR", "127.0.0.1:0"),
        ("ADMIN_ADDR", "127.0.0.1:0"),
        ("REGISTRY_BOOTSTRAP_TOKEN", TOKEN),
        ("REGISTRY_EVENTS", "off"),
        ("RUST_LOG", "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = RegistryConfig::from_env(&mut EnvReader::from_map(vars))?;
    let artifacts = ArtifactStore::open(dir.path().to_str().unwrap_or("."), Default::default())?;
    let launched = mlops_runtime::service::launch_with(config.admin_addr, async |probes| {
        App::build_with(config, store, artifacts, probes).await
    })
    .await?;
    let endpoint = format!("http://{}", launched.service().grpc_addr()?);
    let shutdown = Shutdown::new();
    let server = tokio::spawn(launched.run(shutdown.clone()));
    let client = RegistryClient::connect(&endpoint, &SecretString::from(TOKEN.to_string())).await?;

    let baseline = measure("baseline: WhoAmI", &client, |mut c, _| async move {
        c.raw().who_am_i(pb::WhoAmIRequest {}).await.map(|_| ())
    })
    .await?;
    let by_alias = measure("get version by alias", &client, |mut c, i| async move {
        let model = format!("model-{:04}", i as i64 % MODELS);
        let v = c
            .raw()
            .get_model_version_by_alias(pb::GetModelVersionByAliasRequest {
                model_name: model,
                alias: "champion".into(),
                at_time: None,
            })
            .await?;
        assert_eq!(v.into_inner().version, VERSIONS_PER_MODEL);
        Ok(())
    })
    .await?;
    let search = measure(
        "filtered search (metric, tag, name prefix; 20 rows)",
        &client,
        |mut c, i| async move {
            let filter = format!(
                "name LIKE 'model-0{:02}%' AND metrics.auc > 0.9 AND tags.stage = 'prod'",
                i % 100
            );
            let r = c
                .raw()
                .search_model_versions(pb::SearchModelVersionsRequest {
                    filter,
                    order_by: "metrics.auc DESC".into(),
                    page_size: 20,
                    page_token: String::new(),
                })
                .await?;
            assert!(!r.into_inner().versions.is_empty());
            Ok(())
        },
    )
    .await?;

    println_report(&[&baseline, &by_alias, &search]);
    shutdown.trigger();
    server.await??;
    Ok(())
}

/// Bulk-loads the data set with set-based SQL (loading it through the API
/// would take minutes and measure nothing of interest).
async fn populate(url: &str) -> anyhow::Result<()> {
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    let statements = [
        format!(
            "INSERT INTO registered_models (name, description, last_version, created_by, created_at, updated_at)
             SELECT 'model-' || lpad(g::text, 4, '0'), '', {VERSIONS_PER_MODEL}, 'bench', g, g FROM generate_series(0, {}) g",
            MODELS - 1
        ),
        "INSERT INTO model_tags (model_id, key, value) SELECT id, 'team', 'team-' || (id % 10) FROM registered_models".into(),
        format!(
            "INSERT INTO model_versions (model_id, version, status, format, signature_json, created_by, artifact_path,
                 artifact_filename, artifact_size, artifact_sha256, created_at, updated_at)
             SELECT m.id, v, 'READY', 'onnx', '{{\"inputs\":[],\"outputs\":[]}}', 'bench', 'x', 'model.onnx', 1,
                 repeat('0', 64), m.id * 1000 + v, m.id * 1000 + v
             FROM registered_models m CROSS JOIN generate_series(1, {VERSIONS_PER_MODEL}) v"
        ),
        // Later versions score better; every model's versions 91-100 have
        // auc > 0.9, so each filtered search below has matches.
        "INSERT INTO version_metrics (version_id, key, value)
         SELECT id, k, version / 100.0 - (model_id % 10) / 1000.0 - length(k) / 10000.0
         FROM model_versions CROSS JOIN (VALUES ('auc'), ('f1'), ('logloss')) AS keys(k)".into(),
        "INSERT INTO version_params (version_id, key, value) SELECT id, 'max_depth', (version % 8)::text FROM model_versions".into(),
        "INSERT INTO version_tags (version_id, key, value)
         SELECT id, 'stage', CASE WHEN version % 10 = 0 OR version >= 95 THEN 'prod' ELSE 'dev' END
         FROM model_versions".into(),
        format!(
            "INSERT INTO aliases (model_id, alias, version_id, set_by, set_at)
             SELECT v.model_id, 'champion', v.id, 'bench', 1 FROM model_versions v WHERE v.version = {VERSIONS_PER_MODEL}"
        ),
        "INSERT INTO alias_history (model_id, alias, version, set_by, set_at) SELECT model_id, alias, 100, set_by, set_at FROM aliases".into(),
        "ANALYZE".into(),
    ];
    for sql in &statements {
        sqlx::query(sql).execute(&mut conn).await?;
    }
    Ok(())
}

struct Report {
    name: &'static str,
    p50: Duration,
    p99: Duration,
    per_second: f64,
}

async fn measure<F, Fut>(
    name: &'static str,
    client: &RegistryClient,
    call: F,
) -> anyhow::Result<Report>
where
    F: Fn(RegistryClient, usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), tonic::Status>>,
{
    for i in 0..100 {
        call(client.clone(), i).await?; // warm-up
    }
    let mut latencies = Vec::with_capacity(CALLS);
    let started = Instant::now();
    for i in 0..CALLS {
        let t = Instant::now();
        call(client.clone(), i).await?;
        latencies.push(t.elapsed());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Ok(Report {
        name,
        p50: latencies[CALLS / 2],
        p99: latencies[CALLS * 99 / 100],
        per_second: CALLS as f64 / elapsed.as_secs_f64(),
    })
}

#[allow(clippy::print_stdout)]
fn println_report(reports: &[&Report]) {
    let baseline = reports[0];
    println!(
        "{:<55} {:>10} {:>10} {:>10} {:>14}",
        "call (sequential, one client)", "p50 ms", "p99 ms", "calls/s", "p99 / baseline"
    );
    for r in reports {
        println!(
            "{:<55} {:>10.2} {:>10.2} {:>10.0} {:>14.1}",
            r.name,
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
            r.per_second,
            r.p99.as_secs_f64() / baseline.p99.as_secs_f64()
        );
    }
    for r in &reports[1..] {
        let verdict = if r.p99 < Duration::from_millis(20) {
            "meets"
        } else {
            "MISSES"
        };
        println!(
            "{}: p99 {:.2} ms {verdict} the 20 ms target",
            r.name,
            r.p99.as_secs_f64() * 1e3
        );
    }
}
