//! A running gateway on ephemeral ports, and models to serve.

use std::net::SocketAddr;
use std::time::Duration;

use mlops_gateway::{App, GatewayConfig};
use mlops_registry_client::{RegistryClient, proto as pb};
use mlops_runtime::{EnvReader, Shutdown};
use mlops_trainer::linear::{LogisticModel, sigmoid};
use serde_json::{Value, json};

use crate::registry_support::{self, Db, Options, TestRegistry};

pub const MODEL: &str = "churn";
/// The portal's bootstrap admin password in every test gateway.
pub const ADMIN_PASSWORD: &str = "portal-admin-password";
pub const WIDTH: usize = 3;

pub fn ort_library() -> String {
    registry_support::required_env("ORT_DYLIB_PATH")
}

/// A registry with a reader token for the gateway and an admin client.
pub struct World {
    pub registry: TestRegistry,
    pub reader_token: String,
    pub admin: RegistryClient,
}

impl World {
    pub async fn new() -> Self {
        Self::with(Options::new(Db::Sqlite)).await
    }

    /// A registry publishing its events to `topic` on the test broker.
    pub async fn with_events(topic: &str) -> Self {
        Self::with(Options {
            events_topic: Some(topic.to_string()),
            ..Options::new(Db::Sqlite)
        })
        .await
    }

    async fn with(options: Options) -> Self {
        let registry = TestRegistry::start(options).await;
        let reader_token = registry.token("gateway", pb::Role::Reader).await;
        let admin = registry.admin_client().await;
        Self {
            registry,
            reader_token,
            admin,
        }
    }

    /// Registers `bytes` as a new version of `name`; returns its number.
    pub async fn register(&mut self, name: &str, bytes: Vec<u8>) -> i64 {
        let version = registry_support::model_with_version(&mut self.admin, name, &[]).await;
        registry_support::upload(&mut self.admin, name, version.version, bytes)
            .await
            .expect("upload");
        version.version
    }

    /// Points `alias` at `version`, retrying while the registry answers
    /// UNAVAILABLE ("retry later": its database was busy).
    pub async fn set_alias(&mut self, name: &str, alias: &str, version: i64) {
        for attempt in 1.. {
            let set = self
                .admin
                .raw()
                .set_alias(pb::SetAliasRequest {
                    model_name: name.into(),
                    alias: alias.into(),
                    version,
                })
                .await;
            match set {
                Ok(_) => return,
                Err(status) if status.code() == tonic::Code::Unavailable && attempt < 10 => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(status) => panic!("set alias: {status}"),
            }
        }
    }

    pub async fn gateway(&self, extra: &[(&str, &str)]) -> TestGateway {
        TestGateway::start(&self.registry.url, &self.reader_token, extra).await
    }

    /// A token of the registry's that a client of the gateway presents.
    pub async fn client_token(&self) -> String {
        self.registry.token("portal-user", pb::Role::Reader).await
    }
}

/// A logistic model over `WIDTH` columns, exported by the trainer's code;
/// `seed` varies the coefficients so versions score differently.
pub fn linear_model(seed: u32) -> (LogisticModel, Vec<u8>) {
    linear_model_with(seed, Vec::new())
}

/// [`linear_model`] with more `metadata_props` beside its `features`.
pub fn linear_model_with(seed: u32, metadata: Vec<(String, String)>) -> (LogisticModel, Vec<u8>) {
    let s = seed as f32;
    let model = LogisticModel {
        means: vec![1.0, 2.0, 0.5],
        scales: vec![0.5, 1.0, 2.0],
        indicators: vec![2],
        coefficients: vec![0.3 + 0.1 * s, -0.2, 0.05 * s, 0.7],
        intercept: -0.5 + 0.01 * s,
        iterations: 1,
    };
    let features: Vec<String> = (0..WIDTH).map(|j| format!("f{j}")).collect();
    let mut props = vec![(
        mlops_onnx::FEATURES_METADATA_KEY.to_string(),
        serde_json::to_string(&features).expect("json"),
    )];
    props.extend(metadata);
    let bytes = mlops_trainer::export::logistic(&model, props);
    (model, bytes)
}

/// The positive-class probability the model gives `row`.
pub fn expected(model: &LogisticModel, row: &[f32]) -> f32 {
    sigmoid(model.raw(row)) as f32
}

pub struct TestGateway {
    pub http: String,
    /// `http://host:port` of the gRPC binding.
    pub grpc: String,
    pub admin: SocketAddr,
    /// Sent as `Authorization: Bearer` with every request of `get`/`post`.
    pub token: String,
    shutdown: Shutdown,
    task: Option<tokio::task::JoinHandle<Result<(), mlops_runtime::LifecycleError>>>,
    pub client: reqwest::Client,
    /// The portal's SQLite database, unless the test named another.
    _portal_db: tempfile::TempDir,
}

impl TestGateway {
    pub async fn start(registry_url: &str, token: &str, extra: &[(&str, &str)]) -> Self {
        Self::try_start(registry_url, token, extra)
            .await
            .unwrap_or_else(|e| panic!("gateway starts: {e}"))
    }

    /// Starts a gateway, or says why it would not start.
    pub async fn try_start(
        registry_url: &str,
        token: &str,
        extra: &[(&str, &str)],
    ) -> Result<Self, String> {
        let ort = ort_library();
        let portal_db = tempfile::tempdir().expect("temp dir");
        let portal_url = format!(
            "sqlite://{}?mode=rwc",
            portal_db.path().join("gateway.db").display()
        );
        let mut pairs: Vec<(&str, &str)> = vec![
            ("GATEWAY_HTTP_ADDR", "127.0.0.1:0"),
            ("GATEWAY_GRPC_ADDR", "127.0.0.1:0"),
            ("ADMIN_ADDR", "127.0.0.1:0"),
            ("REGISTRY_URL", registry_url),
            ("GATEWAY_REGISTRY_TOKEN", token),
            ("ORT_DYLIB_PATH", &ort),
            ("GATEWAY_POLL_SECONDS", "1"),
            ("GATEWAY_SESSIONS_PER_MODEL", "2"),
            ("GATEWAY_REGISTRY_EVENTS", "off"),
            ("GATEWAY_PREDICTION_LOG", "off"),
            ("DATABASE_URL", &portal_url),
            ("GATEWAY_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ];
        pairs.extend_from_slice(extra);
        let config = GatewayConfig::from_env(&mut EnvReader::from_pairs(&pairs)).expect("config");
        let launched = mlops_runtime::service::launch::<App>(config)
            .await
            .map_err(|e| e.to_string())?;
        let http = format!("http://{}", launched.service().http_addr());
        let grpc = format!("http://{}", launched.service().grpc_addr());
        let admin = launched.admin_addr();
        let shutdown = Shutdown::new();
        let task = tokio::spawn(launched.run(shutdown.clone()));
        Ok(Self {
            http,
            grpc,
            admin,
            token: token.to_string(),
            shutdown,
            task: Some(task),
            client: reqwest::Client::new(),
            _portal_db: portal_db,
        })
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.http))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET");
        read(response, path).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.http))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("POST");
        read(response, path).await
    }

    /// Waits until `path` answers 200 and `check` holds for its body.
    pub async fn wait_until(&self, what: &str, path: &str, check: impl Fn(&Value) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = self.get(path).await;
            if status == 200 && check(&body) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The value of a metric sample (its full name with labels), 0 when absent.
    pub async fn metric(&self, sample: &str) -> f64 {
        let (_, text) = mlops_testkit::http_get(&format!("http://{}/metrics", self.admin)).await;
        text.lines()
            .find_map(|line| line.strip_prefix(sample)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// Waits until the model is served by `version` without a version in
    /// the path (its champion).
    pub async fn wait_for_champion(&self, version: i64) {
        let version = version.to_string();
        self.wait_until(
            &format!("version {version} as champion"),
            &format!("/v2/models/{MODEL}/ready"),
            |b| b["version"] == version.as_str(),
        )
        .await;
    }

    pub async fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(task) = self.task.take() {
            task.await.expect("join").expect("gateway stopped cleanly");
        }
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// Status and JSON body; an error status must come with `{"error": ...}`
/// (health answers `{"ready": false}` with 503 instead).
async fn read(response: reqwest::Response, path: &str) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status >= 400 && !path.starts_with("/v2/health") {
        assert_eq!(
            content_type, "application/json",
            "error bodies are JSON: {body}"
        );
        assert!(
            body["error"].is_string(),
            "error body names the error: {body}"
        );
    }
    (status, body)
}

/// An inference request of `rows` for the model's one input.
pub fn infer_body(rows: &[[f32; WIDTH]]) -> Value {
    let data: Vec<f32> = rows.iter().flatten().copied().collect();
    json!({
        "id": "request-1",
        "inputs": [{
            "name": "input",
            "shape": [rows.len(), WIDTH],
            "datatype": "FP32",
            "data": data,
        }],
    })
}

/// The positive-class column of a `probabilities` output.
pub fn positive_scores(response: &Value) -> Vec<f32> {
    let output = response["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .find(|o| o["name"] == "probabilities")
        .expect("probabilities output");
    let data: Vec<f32> = output["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|v| v.as_f64().expect("number") as f32)
        .collect();
    data.chunks(2).map(|p| p[1]).collect()
}
