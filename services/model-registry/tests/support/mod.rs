//! Shared helpers of the registry integration tests: a real registry on an
//! ephemeral port, over a fresh database (its own Postgres database, or a
//! SQLite file) and a fresh artifact prefix on the chosen store.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;

use mlops_model_registry::artifacts::ArtifactStore;
use mlops_model_registry::store::Store;
use mlops_model_registry::{App, RegistryConfig};
use mlops_registry_client::RegistryClient;
use mlops_registry_client::proto as pb;
use mlops_runtime::{EnvReader, Shutdown};
use secrecy::SecretString;

pub const BOOTSTRAP: &str = "mlops_bootstrap_token_for_tests_only";

pub fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through ./scripts/test.sh, which starts the infrastructure")
    })
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Postgres,
    Sqlite,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Artifacts {
    Local,
    S3,
    Azure,
}

/// A database of its own for one test; a Postgres database is dropped
/// when the value is.
pub struct TestDb {
    pub url: String,
    postgres_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new(db: Db) -> Self {
        match db {
            Db::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("registry.db").display()
                );
                Self {
                    url,
                    postgres_name: None,
                    _dir: Some(dir),
                }
            }
            Db::Postgres => {
                let admin = required_env("TEST_DATABASE_URL");
                let name = format!("registry_test_{}", uuid::Uuid::new_v4().simple());
                run_admin_sql(&admin, &format!("CREATE DATABASE {name}")).await;
                let base = admin.rsplit_once('/').expect("database URL has a path").0;
                Self {
                    url: format!("{base}/{name}"),
                    postgres_name: Some(name),
                    _dir: None,
                }
            }
        }
    }
}

async fn run_admin_sql(admin_url: &str, sql: &str) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(admin_url)
        .await
        .unwrap_or_else(|e| panic!("cannot reach Postgres at TEST_DATABASE_URL: {e}"));
    sqlx::query(sql)
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.postgres_name.take() {
            let admin = required_env("TEST_DATABASE_URL");
            // Dropping runs outside the test's runtime, which may be gone.
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(run_admin_sql(
                        &admin,
                        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    ));
                }
            })
            .join();
        }
    }
}

/// Storage options and URL of a fresh artifact prefix.
pub fn artifact_store(
    kind: Artifacts,
) -> (String, HashMap<String, String>, Option<tempfile::TempDir>) {
    let prefix = unique("artifacts");
    match kind {
        Artifacts::Local => {
            let dir = tempfile::tempdir().expect("temp dir");
            (dir.path().display().to_string(), HashMap::new(), Some(dir))
        }
        Artifacts::S3 => (
            format!("s3://{}/{prefix}", required_env("TEST_S3_BUCKET")),
            HashMap::from([
                ("aws_endpoint".to_string(), required_env("TEST_S3_ENDPOINT")),
                ("aws_allow_http".to_string(), "true".to_string()),
                ("aws_access_key_id".to_string(), "test".to_string()),
                ("aws_secret_access_key".to_string(), "test".to_string()),
                ("aws_region".to_string(), "us-east-1".to_string()),
            ]),
            None,
        ),
        Artifacts::Azure => {
            let endpoint = required_env("TEST_AZURE_ENDPOINT");
            let account = required_env("TEST_AZURE_ACCOUNT");
            (
                format!("az://{}/{prefix}", required_env("TEST_AZURE_CONTAINER")),
                HashMap::from([
                    ("azure_storage_account_name".to_string(), account.clone()),
                    (
                        "azure_storage_account_key".to_string(),
                        required_env("TEST_AZURE_KEY"),
                    ),
                    (
                        "azure_storage_endpoint".to_string(),
                        format!("{endpoint}/{account}"),
                    ),
                    ("azure_allow_http".to_string(), "true".to_string()),
                ]),
                None,
            )
        }
    }
}

pub struct Options {
    pub db: Db,
    pub artifacts: Artifacts,
    /// Publish events to this Kafka topic; `None` keeps them in the outbox.
    pub events_topic: Option<String>,
    pub extra_env: Vec<(String, String)>,
}

impl Options {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            artifacts: Artifacts::Local,
            events_topic: None,
            extra_env: Vec::new(),
        }
    }
}

/// A running registry. Shuts down when dropped.
pub struct TestRegistry {
    pub url: String,
    /// The MLflow REST API's base, e.g. `http://127.0.0.1:40123`.
    pub mlflow_url: String,
    pub admin: SocketAddr,
    pub store: Store,
    pub db: TestDb,
    shutdown: Shutdown,
    task: Option<tokio::task::JoinHandle<Result<(), mlops_runtime::LifecycleError>>>,
    _artifacts_dir: Option<tempfile::TempDir>,
}

impl TestRegistry {
    pub async fn start(options: Options) -> Self {
        let db = TestDb::new(options.db).await;
        let (artifacts_url, storage_options, artifacts_dir) = artifact_store(options.artifacts);
        let mut vars: HashMap<String, String> = [
            ("DATABASE_URL", db.url.as_str()),
            ("REGISTRY_GRPC_ADDR", "127.0.0.1:0"),
            ("REGISTRY_HTTP_ADDR", "127.0.0.1:0"),
            ("ADMIN_ADDR", "127.0.0.1:0"),
            ("ARTIFACTS_URL", artifacts_url.as_str()),
            ("REGISTRY_BOOTSTRAP_TOKEN", BOOTSTRAP),
            ("REGISTRY_OUTBOX_INTERVAL_MS", "100"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        match &options.events_topic {
            Some(topic) => {
                vars.insert("KAFKA_BROKERS".into(), required_env("TEST_KAFKA_BROKERS"));
                vars.insert("REGISTRY_EVENTS_TOPIC".into(), topic.clone());
            }
            None => {
                vars.insert("REGISTRY_EVENTS".into(), "off".into());
            }
        }
        vars.extend(options.extra_env);
        let config = RegistryConfig::from_env(&mut EnvReader::from_map(vars)).expect("config");
        let store = mlops_model_registry::app::connect_store(&config)
            .await
            .expect("database");
        store.migrate().await.expect("migrations");
        let artifacts =
            ArtifactStore::open(&artifacts_url, storage_options).expect("artifact store");
        let launched = mlops_runtime::service::launch_with(config.admin_addr, async |probes| {
            App::build_with(config, store.clone(), artifacts, probes).await
        })
        .await
        .expect("app");
        let url = format!(
            "http://{}",
            launched.service().grpc_addr().expect("grpc addr")
        );
        let mlflow_url = format!(
            "http://{}",
            launched.service().http_addr().expect("http addr")
        );
        let admin = launched.admin_addr();
        let shutdown = Shutdown::new();
        let task = tokio::spawn(launched.run(shutdown.clone()));
        Self {
            url,
            mlflow_url,
            admin,
            store,
            db,
            shutdown,
            task: Some(task),
            _artifacts_dir: artifacts_dir,
        }
    }

    pub async fn client(&self, token: &str) -> RegistryClient {
        RegistryClient::connect(&self.url, &SecretString::from(token.to_string()))
            .await
            .expect("connect")
    }

    pub async fn admin_client(&self) -> RegistryClient {
        self.client(BOOTSTRAP).await
    }

    /// A token of the given role, minted by the bootstrap admin.
    pub async fn token(&self, name: &str, role: pb::Role) -> String {
        self.admin_client()
            .await
            .raw()
            .create_api_token(pb::CreateApiTokenRequest {
                name: name.to_string(),
                role: role as i32,
            })
            .await
            .expect("create token")
            .into_inner()
            .secret
    }

    pub async fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(task) = self.task.take() {
            task.await.expect("join").expect("registry stopped cleanly");
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// Creates `name` and a version with `metrics`, returning the version.
pub async fn model_with_version(
    client: &mut RegistryClient,
    name: &str,
    metrics: &[(&str, f64)],
) -> pb::ModelVersion {
    let _ = client
        .raw()
        .create_registered_model(pb::CreateRegisteredModelRequest {
            name: name.into(),
            ..Default::default()
        })
        .await;
    client
        .raw()
        .create_model_version(pb::CreateModelVersionRequest {
            model_name: name.into(),
            format: "onnx".into(),
            metrics: metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            ..Default::default()
        })
        .await
        .expect("create version")
        .into_inner()
}

/// Uploads `bytes` as the artifact of `model/version`.
pub async fn upload(
    client: &mut RegistryClient,
    model: &str,
    version: i64,
    bytes: Vec<u8>,
) -> Result<pb::ModelVersion, mlops_registry_client::ClientError> {
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    let size = bytes.len() as u64;
    client
        .upload_artifact(
            model,
            version,
            "model.onnx",
            size,
            &sha,
            std::io::Cursor::new(bytes),
            |_| {},
        )
        .await
}

/// Deterministic pseudo-random bytes.
pub fn artifact_bytes(len: usize, seed: u64) -> Vec<u8> {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random::<u8>()).collect()
}

pub fn code_of(error: &mlops_registry_client::ClientError) -> tonic::Code {
    match error {
        mlops_registry_client::ClientError::Status(status) => status.code(),
        other => panic!("expected a gRPC status, got {other}"),
    }
}

/// Runs an async scenario against both database backends as two tests.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::support::Db::Postgres).await
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::support::Db::Sqlite).await
                }
            )*
        }
    };
}
