//! Helpers shared by the services' integration tests. Infrastructure comes
//! from the environment set by `scripts/test.sh` (see `scripts/infra.sh env`);
//! a missing variable fails the test with a clear message instead of skipping.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mlops_lake::LakeLocation;

pub fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through ./scripts/test.sh, which starts the infrastructure")
    })
}

/// The Kafka-protocol broker of the tests.
pub fn brokers() -> String {
    required_env("TEST_KAFKA_BROKERS")
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Which object store a test lake lives on.
#[derive(Clone, Copy, Debug)]
pub enum Store {
    Local,
    S3,
    Azure,
}

/// A fresh, empty lake on the given store, plus the env vars a child
/// process needs to reach it. The temp dir (local store) lives as long as the value.
pub struct TestLake {
    pub location: LakeLocation,
    pub env: HashMap<String, String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestLake {
    /// A lake at an existing location, kept afterwards (benchmarks reuse it).
    pub fn at(location: LakeLocation) -> Self {
        let env = HashMap::from([("LAKE_URL".to_string(), location.root().to_string())]);
        Self {
            location,
            env,
            _dir: None,
        }
    }

    pub fn new(store: Store) -> Self {
        let prefix = unique("lake");
        match store {
            Store::Local => {
                // Not a hidden directory (tempfile's default `.tmp…`): the
                // Python deltalake package aborts at exit after reading
                // a table under one.
                let dir = tempfile::Builder::new()
                    .prefix("lake-")
                    .tempdir()
                    .expect("temp dir");
                let location =
                    LakeLocation::parse(dir.path().to_str().expect("utf-8 path")).expect("lake");
                let env = HashMap::from([("LAKE_URL".to_string(), location.root().to_string())]);
                Self {
                    location,
                    env,
                    _dir: Some(dir),
                }
            }
            Store::S3 => {
                let url = format!("s3://{}/{prefix}", required_env("TEST_S3_BUCKET"));
                let options = HashMap::from([
                    ("aws_endpoint".to_string(), required_env("TEST_S3_ENDPOINT")),
                    ("aws_allow_http".to_string(), "true".to_string()),
                    ("aws_access_key_id".to_string(), "test".to_string()),
                    ("aws_secret_access_key".to_string(), "test".to_string()),
                    ("aws_region".to_string(), "us-east-1".to_string()),
                ]);
                let env = HashMap::from([
                    ("LAKE_URL".to_string(), url.clone()),
                    (
                        "AWS_ENDPOINT_URL".to_string(),
                        required_env("TEST_S3_ENDPOINT"),
                    ),
                    ("AWS_ALLOW_HTTP".to_string(), "true".to_string()),
                    ("AWS_ACCESS_KEY_ID".to_string(), "test".to_string()),
                    ("AWS_SECRET_ACCESS_KEY".to_string(), "test".to_string()),
                    ("AWS_REGION".to_string(), "us-east-1".to_string()),
                ]);
                let location = LakeLocation::parse(&url)
                    .expect("lake")
                    .with_options(options);
                Self {
                    location,
                    env,
                    _dir: None,
                }
            }
            Store::Azure => {
                let url = format!("az://{}/{prefix}", required_env("TEST_AZURE_CONTAINER"));
                let endpoint = required_env("TEST_AZURE_ENDPOINT");
                let account = required_env("TEST_AZURE_ACCOUNT");
                let key = required_env("TEST_AZURE_KEY");
                // Azurite serves the account under a path of the endpoint.
                let account_url = format!("{endpoint}/{account}");
                let options = HashMap::from([
                    ("azure_storage_account_name".to_string(), account.clone()),
                    ("azure_storage_account_key".to_string(), key.clone()),
                    ("azure_storage_endpoint".to_string(), account_url.clone()),
                    ("azure_allow_http".to_string(), "true".to_string()),
                ]);
                let env = HashMap::from([
                    ("LAKE_URL".to_string(), url.clone()),
                    ("AZURE_STORAGE_ACCOUNT_NAME".to_string(), account),
                    ("AZURE_STORAGE_ACCOUNT_KEY".to_string(), key),
                    ("AZURE_STORAGE_ENDPOINT".to_string(), account_url),
                    ("AZURE_ALLOW_HTTP".to_string(), "true".to_string()),
                ]);
                let location = LakeLocation::parse(&url)
                    .expect("lake")
                    .with_options(options);
                Self {
                    location,
                    env,
                    _dir: None,
                }
            }
        }
    }
}

/// Polls `check` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    if !wait_for(timeout, check).await {
        panic!("timed out after {timeout:?} waiting for {what}");
    }
}

/// Polls `check` until it returns true (→ true) or `timeout` passes (→ false).
pub async fn wait_for<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < timeout {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

/// A plain HTTP/1.1 GET (admin endpoints in tests): status and body.
pub async fn http_get(url: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .expect("path");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Runs a Python script with the test venv's interpreter (`TEST_PYTHON`) and
/// returns its standard output; a failing script fails the test with its
/// standard error.
pub fn run_python(script: &str, args: &[&str]) -> String {
    run_python_with("TEST_PYTHON", &[&["-c", script], args].concat())
}

/// Runs the interpreter that the variable `interpreter` names (e.g.
/// `TEST_TRITON_PYTHON`, a venv of its own) with `args`; returns standard
/// output, failing the test with standard error.
pub fn run_python_with(interpreter: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(required_env(interpreter))
        .args(args)
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "python script failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
