//! Registry settings, all from the environment (see README, "model-registry").

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use mlops_bus::KafkaSettings;
use mlops_runtime::{ConfigError, EnvReader, ServiceConfig, TelemetryConfig};
use secrecy::{ExposeSecret, SecretString};

#[derive(Clone, Debug)]
pub struct RegistryConfig {
    /// `REGISTRY_GRPC_ADDR`, default `0.0.0.0:50051`.
    pub grpc_addr: SocketAddr,
    /// `REGISTRY_HTTP_ADDR`, default `0.0.0.0:5000` (MLflow's port): the
    /// MLflow-compatible REST API.
    pub http_addr: SocketAddr,
    /// `ADMIN_ADDR`, default `0.0.0.0:9104`.
    pub admin_addr: SocketAddr,
    /// `DATABASE_URL`, default `sqlite://data/registry.db?mode=rwc`.
    pub database_url: SecretString,
    /// `DATABASE_MAX_CONNECTIONS`, default 10 (Postgres only).
    pub database_max_connections: u32,
    /// `DATABASE_WAIT_SECONDS`, default 60: how long start-up (and
    /// `migrate`) retries an unreachable database before giving up.
    pub database_wait: Duration,
    /// `REGISTRY_MIGRATE`, default `true`: apply migrations at start.
    pub migrate_on_start: bool,
    /// `ARTIFACTS_URL`, default `data/artifacts`.
    pub artifacts_url: String,
    /// `KAFKA_BROKERS`, `KAFKA_CREATE_TOPICS`, `KAFKA_REPLICATION_FACTOR`.
    pub kafka: KafkaSettings,
    /// `REGISTRY_EVENTS_TOPIC`, default `registry.events.v1`.
    pub events_topic: String,
    /// `REGISTRY_EVENTS_TOPIC_PARTITIONS`, default `-1` (the broker's
    /// default), used when the registry creates the events topic.
    pub events_topic_partitions: i32,
    /// `REGISTRY_EVENTS`, default `kafka`; `off` keeps events in the outbox.
    pub publish_events: bool,
    /// `REGISTRY_OUTBOX_INTERVAL_MS`, default 500.
    pub outbox_interval: Duration,
    /// `REGISTRY_BOOTSTRAP_TOKEN`, or the first line of the file named by
    /// `REGISTRY_BOOTSTRAP_TOKEN_FILE`: an admin token for the first set-up.
    pub bootstrap_token: Option<SecretString>,
    /// `REGISTRY_PROTECTED_ALIASES`, default `champion`: comma-separated
    /// aliases that only approvers may set or delete.
    pub protected_aliases: HashSet<String>,
    /// `REGISTRY_MAX_ARTIFACT_BYTES`, default 2 GiB.
    pub max_artifact_bytes: u64,
    pub telemetry: TelemetryConfig,
}

impl RegistryConfig {
    pub fn from_env(env: &mut EnvReader) -> Result<Self, ConfigError> {
        let grpc_addr = env.parse(
            "REGISTRY_GRPC_ADDR",
            SocketAddr::from(([0, 0, 0, 0], 50051)),
        );
        let http_addr = env.parse("REGISTRY_HTTP_ADDR", SocketAddr::from(([0, 0, 0, 0], 5000)));
        let admin_addr = env.parse("ADMIN_ADDR", SocketAddr::from(([0, 0, 0, 0], 9104)));
        let database_url = env.string("DATABASE_URL", "sqlite://data/registry.db?mode=rwc");
        if !(database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://")
            || database_url.starts_with("sqlite:"))
        {
            env.problem("DATABASE_URL must start with postgres://, postgresql:// or sqlite:");
        }
        let database_max_connections = env.parse("DATABASE_MAX_CONNECTIONS", 10u32);
        if database_max_connections < 2 {
            // One connection is held by the outbox relay's lease.
            env.problem("DATABASE_MAX_CONNECTIONS must be at least 2");
        }
        let database_wait = Duration::from_secs(env.parse("DATABASE_WAIT_SECONDS", 60u64));
        let migrate_on_start = env.parse("REGISTRY_MIGRATE", true);
        let artifacts_url = env.string("ARTIFACTS_URL", "data/artifacts");
        let kafka = KafkaSettings::from_env(env, "model-registry");
        let events_topic = env.string("REGISTRY_EVENTS_TOPIC", "registry.events.v1");
        let events_topic_partitions =
            mlops_bus::partitions_from_env(env, "REGISTRY_EVENTS_TOPIC_PARTITIONS", -1);
        let publish_events = match env.string("REGISTRY_EVENTS", "kafka").as_str() {
            "kafka" => true,
            "off" => false,
            other => {
                env.problem(format!(
                    "REGISTRY_EVENTS={other:?}: expected `kafka` or `off`"
                ));
                true
            }
        };
        let interval_ms = env.parse("REGISTRY_OUTBOX_INTERVAL_MS", 500u64);
        if interval_ms == 0 {
            env.problem("REGISTRY_OUTBOX_INTERVAL_MS must be at least 1");
        }
        let bootstrap_token = env
            .secret("REGISTRY_BOOTSTRAP_TOKEN")
            .map(|t| t.expose_secret().to_string());
        if bootstrap_token.as_ref().is_some_and(|t| t.len() < 16) {
            env.problem("the bootstrap token must be at least 16 characters");
        }
        let protected_aliases: HashSet<String> = env
            .string("REGISTRY_PROTECTED_ALIASES", "champion")
            .split(',')
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect();
        for alias in &protected_aliases {
            if let Err(e) = crate::validate::alias(alias) {
                env.problem(format!("REGISTRY_PROTECTED_ALIASES: {e}"));
            }
        }
        let max_artifact_bytes = env.parse("REGISTRY_MAX_ARTIFACT_BYTES", 2u64 << 30);
        let telemetry = TelemetryConfig::from_env(env, "model-registry");
        env.finish()?;
        Ok(Self {
            grpc_addr,
            http_addr,
            admin_addr,
            database_url: SecretString::from(database_url),
            database_max_connections,
            database_wait,
            migrate_on_start,
            artifacts_url,
            kafka,
            events_topic,
            events_topic_partitions,
            publish_events,
            outbox_interval: Duration::from_millis(interval_ms),
            bootstrap_token: bootstrap_token.map(SecretString::from),
            protected_aliases,
            max_artifact_bytes,
            telemetry,
        })
    }
}

impl ServiceConfig for RegistryConfig {
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
    use secrecy::ExposeSecret;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvReader {
        EnvReader::from_pairs(pairs)
    }

    #[test]
    fn defaults_give_the_embedded_sqlite_registry() {
        let config = RegistryConfig::from_env(&mut env(&[])).expect("defaults");
        assert_eq!(config.grpc_addr.port(), 50051);
        assert_eq!(config.http_addr.port(), 5000);
        assert_eq!(config.admin_addr.port(), 9104);
        assert!(config.database_url.expose_secret().starts_with("sqlite:"));
        assert_eq!(
            config.protected_aliases,
            HashSet::from(["champion".to_string()])
        );
        assert!(config.publish_events);
        assert!(config.bootstrap_token.is_none());
    }

    #[test]
    fn every_problem_is_listed_and_the_token_file_is_read() {
        let err = RegistryConfig::from_env(&mut env(&[
            ("DATABASE_URL", "mysql://x"),
            ("REGISTRY_EVENTS", "nats"),
            ("REGISTRY_PROTECTED_ALIASES", "champion,Prod"),
            ("REGISTRY_BOOTSTRAP_TOKEN", "short"),
        ]))
        .expect_err("invalid");
        let text = err.to_string();
        assert_eq!(err.problems.len(), 4, "{text}");
        assert!(text.contains("DATABASE_URL"), "{text}");
        assert!(text.contains("REGISTRY_EVENTS"), "{text}");
        assert!(text.contains("\"Prod\""), "{text}");
        assert!(text.contains("at least 16"), "{text}");

        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("token");
        std::fs::write(&file, "mlops_0123456789abcdef\n").expect("write");
        let config = RegistryConfig::from_env(&mut env(&[(
            "REGISTRY_BOOTSTRAP_TOKEN_FILE",
            file.to_str().expect("utf8"),
        )]))
        .expect("file token");
        assert_eq!(
            config.bootstrap_token.expect("token").expose_secret(),
            "mlops_0123456789abcdef"
        );
    }
}
