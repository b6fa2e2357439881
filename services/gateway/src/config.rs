//! Gateway settings, all from the environment (README, "gateway").

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use mlops_bus::KafkaSettings;
use mlops_lake::LakeLocation;
use mlops_runtime::{ConfigError, EnvReader, ServiceConfig, TelemetryConfig};
use secrecy::SecretString;

use crate::portal::PortalConfig;

/// Where and how predictions are logged.
#[derive(Clone, Debug)]
pub struct PredictionLogConfig {
    pub kafka: KafkaSettings,
    /// `PREDICTIONS_TOPIC`, default `predictions.v1`.
    pub topic: String,
    /// `PREDICTIONS_TOPIC_PARTITIONS`, default `-1` (the broker's default),
    /// used when the gateway creates the topic.
    pub partitions: i32,
    /// `GATEWAY_PREDICTION_LOG_TIMEOUT_MS` (30000): a prediction not
    /// delivered by then (the brokers are down) is dropped and counted.
    pub timeout: Duration,
}

#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// `GATEWAY_HTTP_ADDR`, default `0.0.0.0:8080`: the Open Inference
    /// Protocol under `/v2`.
    pub http_addr: SocketAddr,
    /// `GATEWAY_GRPC_ADDR`, default `0.0.0.0:8081`: the protocol's gRPC
    /// binding (`inference.GRPCInferenceService`), with health and reflection.
    pub grpc_addr: SocketAddr,
    /// `GATEWAY_MODELS`, default `churn`: registered models to serve, by
    /// their `@champion` (and `@challenger` when set).
    pub models: Vec<String>,
    /// `REGISTRY_URL`, default `http://127.0.0.1:50051`.
    pub registry_url: String,
    /// `GATEWAY_REGISTRY_TOKEN` or `GATEWAY_REGISTRY_TOKEN_FILE` (required):
    /// a reader token of the registry.
    pub registry_token: SecretString,
    /// `GATEWAY_POLL_SECONDS` (30): how often the registry's aliases are
    /// checked for a new champion or challenger.
    pub poll: Duration,
    /// `GATEWAY_REGISTRY_EVENTS` (`kafka`, the default, or `off`): follow
    /// `REGISTRY_EVENTS_TOPIC` (`registry.events.v1`) on `KAFKA_BROKERS` to
    /// load a new champion at once instead of at the next poll.
    pub events: Option<(KafkaSettings, String)>,
    /// `GATEWAY_PREDICTION_LOG` (`kafka`, the default, or `off`): write every
    /// prediction to `PREDICTIONS_TOPIC` on `KAFKA_BROKERS`.
    pub prediction_log: Option<PredictionLogConfig>,
    /// `GATEWAY_DRIFT_WINDOW_ROWS` (10000): the live rows per served version
    /// that drift is measured over.
    pub drift_window_rows: usize,
    /// `GATEWAY_AUTH` (`registry`, the default, or `off`): every `/v2` call
    /// but health needs a registry token; answers are cached for
    /// `GATEWAY_AUTH_CACHE_SECONDS` (60).
    pub auth: Option<Duration>,
    /// `GATEWAY_SESSIONS_PER_MODEL` (the number of cores): ONNX Runtime
    /// sessions per loaded model, so that many requests score at once.
    pub sessions_per_model: usize,
    /// `GATEWAY_MAX_REQUEST_BYTES` (16 MiB): larger request bodies get 413.
    pub max_request_bytes: usize,
    /// `GATEWAY_CHURN_MODEL` (the first of `GATEWAY_MODELS`): the model
    /// whose champion the churn API (`/api/v1`) scores with; it must be in
    /// `GATEWAY_MODELS`.
    pub churn_model: String,
    /// `LAKE_URL`, default `data/lake`: where the online features
    /// (`gold/subscriber_features_latest`) are read from.
    pub lake: LakeLocation,
    /// `GATEWAY_FEATURES_POLL_SECONDS` (10): how often the online features'
    /// Delta version is checked.
    pub features_poll: Duration,
    /// `ORT_DYLIB_PATH` (required): the ONNX Runtime library.
    pub onnx_runtime: PathBuf,
    /// `ADMIN_ADDR`, default `0.0.0.0:9106`.
    pub admin_addr: SocketAddr,
    /// `GATEWAY_PORTAL` (`on`, the default, or `off`): the portal at `/`,
    /// with its database, bootstrap admin and sessions.
    pub portal: Option<PortalConfig>,
    pub telemetry: TelemetryConfig,
}

impl GatewayConfig {
    pub fn from_env(env: &mut EnvReader) -> Result<Self, ConfigError> {
        let http_addr = env.parse("GATEWAY_HTTP_ADDR", SocketAddr::from(([0, 0, 0, 0], 8080)));
        let grpc_addr = env.parse("GATEWAY_GRPC_ADDR", SocketAddr::from(([0, 0, 0, 0], 8081)));
        let mut models: Vec<String> = Vec::new();
        for name in env.string("GATEWAY_MODELS", "churn").split(',') {
            let name = name.trim();
            if name.is_empty() {
                continue;
            }
            if !valid_model_name(name) {
                env.problem(format!(
                    "GATEWAY_MODELS: {name:?} is not a model name (letters, digits, '.', '_', '-')"
                ));
            } else if !models.iter().any(|m| m == name) {
                models.push(name.to_string());
            }
        }
        if models.is_empty() {
            env.problem("GATEWAY_MODELS names no model");
        }
        let registry_url = env.string("REGISTRY_URL", "http://127.0.0.1:50051");
        let registry_token = env.secret("GATEWAY_REGISTRY_TOKEN");
        if registry_token.is_none() {
            env.problem(
                "GATEWAY_REGISTRY_TOKEN or GATEWAY_REGISTRY_TOKEN_FILE is required \
                 (a registry token with the reader role)",
            );
        }
        let poll = env.parse("GATEWAY_POLL_SECONDS", 30u64).max(1);
        let events_on = mode(env, "GATEWAY_REGISTRY_EVENTS");
        let log_on = mode(env, "GATEWAY_PREDICTION_LOG");
        let kafka = (events_on || log_on).then(|| KafkaSettings::from_env(env, "gateway"));
        let events = kafka.clone().filter(|_| events_on).map(|kafka| {
            (
                kafka,
                env.string("REGISTRY_EVENTS_TOPIC", "registry.events.v1"),
            )
        });
        let prediction_log = kafka.filter(|_| log_on).map(|kafka| PredictionLogConfig {
            kafka,
            topic: env.string("PREDICTIONS_TOPIC", "predictions.v1"),
            partitions: mlops_bus::partitions_from_env(env, "PREDICTIONS_TOPIC_PARTITIONS", -1),
            timeout: Duration::from_millis(
                env.parse("GATEWAY_PREDICTION_LOG_TIMEOUT_MS", 30_000u64)
                    .max(1),
            ),
        });
        let drift_window_rows = env.parse("GATEWAY_DRIFT_WINDOW_ROWS", 10_000usize);
        if drift_window_rows == 0 {
            env.problem("GATEWAY_DRIFT_WINDOW_ROWS must be at least 1");
        }
        let auth_cache = Duration::from_secs(env.parse("GATEWAY_AUTH_CACHE_SECONDS", 60u64));
        let auth = match env.string("GATEWAY_AUTH", "registry").as_str() {
            "registry" => Some(auth_cache),
            "off" => None,
            other => {
                env.problem(format!(
                    "GATEWAY_AUTH={other:?}: expected `registry` or `off`"
                ));
                None
            }
        };
        let churn_model = env
            .optional("GATEWAY_CHURN_MODEL")
            .map(|m| m.trim().to_string())
            .or_else(|| models.first().cloned())
            .unwrap_or_default();
        if !models.is_empty() && !models.contains(&churn_model) {
            env.problem(format!(
                "GATEWAY_CHURN_MODEL={churn_model:?} is not one of GATEWAY_MODELS ({})",
                models.join(", ")
            ));
        }
        let lake = env.value::<LakeLocation>("LAKE_URL", "data/lake");
        let features_poll = env.parse("GATEWAY_FEATURES_POLL_SECONDS", 10u64).max(1);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let sessions_per_model = env.parse("GATEWAY_SESSIONS_PER_MODEL", cores).max(1);
        let max_request_bytes = env.parse("GATEWAY_MAX_REQUEST_BYTES", 16usize << 20);
        let onnx_runtime = env.optional("ORT_DYLIB_PATH").map(PathBuf::from);
        if onnx_runtime.is_none() {
            env.problem(
                "ORT_DYLIB_PATH is required: the ONNX Runtime library models are served with \
                 (`eval \"$(./scripts/infra.sh env)\"` sets it locally; the image ships it)",
            );
        }
        let admin_addr = env.parse("ADMIN_ADDR", SocketAddr::from(([0, 0, 0, 0], 9106)));
        let portal = match env.string("GATEWAY_PORTAL", "on").as_str() {
            "on" => Some(PortalConfig::from_env(env)),
            "off" => None,
            other => {
                env.problem(format!("GATEWAY_PORTAL={other:?}: expected `on` or `off`"));
                None
            }
        };
        let telemetry = TelemetryConfig::from_env(env, "gateway");
        env.finish()?;
        Ok(Self {
            http_addr,
            grpc_addr,
            models,
            registry_url,
            registry_token: registry_token
                .ok_or_else(|| ConfigError::invalid("GATEWAY_REGISTRY_TOKEN"))?,
            poll: Duration::from_secs(poll),
            events,
            prediction_log,
            drift_window_rows,
            auth,
            sessions_per_model,
            max_request_bytes,
            churn_model,
            lake: lake.ok_or_else(|| ConfigError::invalid("LAKE_URL"))?,
            features_poll: Duration::from_secs(features_poll),
            onnx_runtime: onnx_runtime.unwrap_or_default(),
            admin_addr,
            portal,
            telemetry,
        })
    }
}

/// A `kafka`/`off` switch (default `kafka`).
fn mode(env: &mut EnvReader, name: &str) -> bool {
    match env.string(name, "kafka").as_str() {
        "kafka" => true,
        "off" => false,
        other => {
            env.problem(format!("{name}={other:?}: expected `kafka` or `off`"));
            false
        }
    }
}

/// The registry's model-name rule: 1-128 of `[A-Za-z0-9._-]`, starting
/// with a letter or digit.
pub fn valid_model_name(name: &str) -> bool {
    name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl ServiceConfig for GatewayConfig {
    fn from_env(env: &mut EnvReader) -> Result<Self, ConfigError> {
        Self::from_env(env)
    }
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
    fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_required_settings() {
        let mut env = EnvReader::from_pairs(&[
            ("GATEWAY_REGISTRY_TOKEN", "token-1234567890"),
            ("ORT_DYLIB_PATH", "/opt/ort/libonnxruntime.so"),
        ]);
        let config = GatewayConfig::from_env(&mut env).expect("config");
        assert_eq!(config.http_addr.port(), 8080);
        assert_eq!(config.admin_addr.port(), 9106);
        assert_eq!(config.models, vec!["churn".to_string()]);
        assert_eq!(config.poll, Duration::from_secs(30));
        assert_eq!(config.grpc_addr.port(), 8081);
        assert_eq!(config.churn_model, "churn");
        let log = config
            .prediction_log
            .expect("the prediction log is on by default");
        assert_eq!(log.topic, "predictions.v1");
        assert_eq!(log.timeout, Duration::from_secs(30));
        assert_eq!(config.drift_window_rows, 10_000);
        let portal = config.portal.expect("the portal is on by default");
        assert_eq!(portal.session_ttl, Duration::from_secs(8 * 3600));
        assert_eq!(
            portal.cookie_secure,
            crate::portal::session::CookieSecure::Auto
        );
        assert_eq!(portal.max_failures_per_account, 5);
        assert!(portal.admin_password.is_none());

        let error = GatewayConfig::from_env(&mut EnvReader::from_pairs(&[
            ("GATEWAY_MODELS", "churn, bad name"),
            ("GATEWAY_CHURN_MODEL", "retention"),
            ("GATEWAY_PREDICTION_LOG", "file"),
            ("GATEWAY_DRIFT_WINDOW_ROWS", "0"),
            ("GATEWAY_ADMIN_PASSWORD", "short"),
            ("GATEWAY_COOKIE_SECURE", "maybe"),
        ]))
        .expect_err("missing token and runtime, bad name")
        .to_string();
        assert!(error.contains("GATEWAY_REGISTRY_TOKEN"), "{error}");
        assert!(error.contains("ORT_DYLIB_PATH"), "{error}");
        assert!(
            error.contains("GATEWAY_ADMIN_PASSWORD: the password must have at least 12 characters"),
            "{error}"
        );
        assert!(
            error.contains("GATEWAY_COOKIE_SECURE=\"maybe\": expected `auto`, `true` or `false`"),
            "{error}"
        );
        assert!(
            error.contains("\"bad name\" is not a model name"),
            "{error}"
        );
        assert!(
            error
                .contains("GATEWAY_CHURN_MODEL=\"retention\" is not one of GATEWAY_MODELS (churn)"),
            "{error}"
        );
        assert!(
            error.contains("GATEWAY_PREDICTION_LOG=\"file\": expected `kafka` or `off`"),
            "{error}"
        );
        assert!(
            error.contains("GATEWAY_DRIFT_WINDOW_ROWS must be at least 1"),
            "{error}"
        );
    }
}
