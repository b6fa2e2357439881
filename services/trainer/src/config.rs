//! Trainer settings, all from the environment (README, "trainer").

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use mlops_lake::LakeLocation;
use mlops_runtime::{ConfigError, EnvReader, ServiceConfig, TelemetryConfig};
use secrecy::SecretString;

use crate::dataset::SplitConfig;
use crate::gate::GateConfig;
use crate::gbdt::GbdtParams;
use crate::linear::LinearParams;

/// A model family the trainer fits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CandidateKind {
    LogisticRegression,
    Gbdt,
}

impl CandidateKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::LogisticRegression => "logistic_regression",
            Self::Gbdt => "gbdt",
        }
    }
}

impl std::str::FromStr for CandidateKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "logistic_regression" => Ok(Self::LogisticRegression),
            "gbdt" => Ok(Self::Gbdt),
            other => Err(format!(
                "{other:?} is not a candidate (logistic_regression, gbdt)"
            )),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Train once and exit (`trainer run`).
    Run {
        /// `--gold-version`: this gold version instead of the latest.
        gold_version: Option<u64>,
    },
    /// Retrain as gold advances (`trainer watch`).
    Watch,
}

#[derive(Clone, Debug)]
pub struct TrainerConfig {
    pub mode: Mode,
    /// `LAKE_URL`, default `data/lake`.
    pub lake: LakeLocation,
    /// `REGISTRY_URL`, default `http://127.0.0.1:50051`.
    pub registry_url: String,
    /// `TRAINER_REGISTRY_TOKEN` or `TRAINER_REGISTRY_TOKEN_FILE` (required):
    /// a writer token registers; an approver token can also promote.
    pub registry_token: SecretString,
    /// `TRAINER_REGISTRY_ATTEMPTS`, default 5: tries per registry call
    /// when the registry is unreachable (exponential backoff from 1 s).
    pub registry_attempts: u32,
    /// `TRAINER_MODEL_NAME`, default `churn`.
    pub model_name: String,
    /// `TRAINER_HORIZON_DAYS` (30), `TRAINER_TEST_DAYS` (30),
    /// `TRAINER_VALIDATION_FRACTION` (0.2), `TRAINER_SEED` (42).
    pub split: SplitConfig,
    /// `TRAINER_CANDIDATES`, default `logistic_regression,gbdt`.
    pub candidates: Vec<CandidateKind>,
    /// `TRAINER_LR_L2` (1.0).
    pub linear: LinearParams,
    /// `TRAINER_GBDT_MAX_ITERATIONS` (500), `TRAINER_GBDT_LEARNING_RATE`
    /// (0.1), `TRAINER_GBDT_MAX_LEAVES` (31), `TRAINER_GBDT_MIN_DATA_IN_LEAF` (20).
    pub gbdt: GbdtParams,
    /// `TRAINER_MIN_AUC_GAIN` (0.002), `TRAINER_MIN_AUC` (0.6),
    /// `TRAINER_MAX_ECE` (0.05).
    pub gate: GateConfig,
    /// `TRAINER_MIN_TRAINING_ROWS` (1000) and `TRAINER_MIN_POSITIVES` (20):
    /// below either, a run fails with a clear error instead of training.
    pub min_training_rows: u64,
    pub min_positives: u64,
    /// `TRAINER_MIN_NEW_DAYS` (1): in watch mode, retrain when gold's newest
    /// day advanced this much since the last trained snapshot.
    pub min_new_days: u32,
    /// `TRAINER_INTERVAL_SECONDS` (86400): in watch mode, retrain at least
    /// this often while gold has changed at all.
    pub interval: Duration,
    /// `TRAINER_POLL_SECONDS` (300): in watch mode, how often gold is checked.
    pub poll: Duration,
    /// `TRAINER_WORK_DIR`: where model files are written before upload
    /// (default: a temporary directory).
    pub work_dir: Option<PathBuf>,
    /// `TRAINER_EXPORT_MATRICES_DIR`: also write the training, validation and
    /// test matrices as Parquet there (for outside comparisons).
    pub export_matrices: Option<PathBuf>,
    /// `ORT_DYLIB_PATH` (required): the ONNX Runtime library that scores
    /// every export before it is registered.
    pub onnx_runtime: PathBuf,
    /// `ADMIN_ADDR`, default `0.0.0.0:9105`.
    pub admin_addr: SocketAddr,
    pub telemetry: TelemetryConfig,
}

impl TrainerConfig {
    pub fn from_env(env: &mut EnvReader) -> Result<Self, ConfigError> {
        let mode = match env.string("TRAINER_MODE", "run").as_str() {
            "run" => Mode::Run {
                gold_version: env
                    .optional("TRAINER_GOLD_VERSION")
                    .map(|_| env.parse("TRAINER_GOLD_VERSION", 0u64)),
            },
            "watch" => Mode::Watch,
            other => {
                env.problem(format!("TRAINER_MODE={other:?}: expected run or watch"));
                Mode::Watch
            }
        };
        let lake = env.value::<LakeLocation>("LAKE_URL", "data/lake");
        let registry_url = env.string("REGISTRY_URL", "http://127.0.0.1:50051");
        let registry_token = env.secret("TRAINER_REGISTRY_TOKEN");
        if registry_token.is_none() {
            env.problem(
                "TRAINER_REGISTRY_TOKEN or TRAINER_REGISTRY_TOKEN_FILE is required \
                 (a registry token with the writer role; approver to promote)",
            );
        }
        let registry_attempts = env.parse("TRAINER_REGISTRY_ATTEMPTS", 5u32).max(1);
        let model_name = env.string("TRAINER_MODEL_NAME", "churn");
        let horizon_days = env.parse("TRAINER_HORIZON_DAYS", 30u32);
        let test_days = env.parse("TRAINER_TEST_DAYS", 30u32);
        if horizon_days == 0 || test_days == 0 {
            env.problem("TRAINER_HORIZON_DAYS and TRAINER_TEST_DAYS must be at least 1");
        }
        let validation_fraction = env.parse("TRAINER_VALIDATION_FRACTION", 0.2f64);
        if !(0.05..=0.5).contains(&validation_fraction) {
            env.problem("TRAINER_VALIDATION_FRACTION must be between 0.05 and 0.5");
        }
        let seed = env.parse("TRAINER_SEED", 42u64);
        let mut candidates = Vec::new();
        for name in env
            .string("TRAINER_CANDIDATES", "logistic_regression,gbdt")
            .split(',')
        {
            match name.parse::<CandidateKind>() {
                Ok(kind) if !candidates.contains(&kind) => candidates.push(kind),
                Ok(_) => {}
                Err(e) => env.problem(format!("TRAINER_CANDIDATES: {e}")),
            }
        }
        let defaults = GbdtParams::default();
        let gbdt = GbdtParams {
            max_iterations: env.parse("TRAINER_GBDT_MAX_ITERATIONS", defaults.max_iterations),
            learning_rate: env.parse("TRAINER_GBDT_LEARNING_RATE", defaults.learning_rate),
            max_leaves: env.parse("TRAINER_GBDT_MAX_LEAVES", defaults.max_leaves),
            min_data_in_leaf: env.parse("TRAINER_GBDT_MIN_DATA_IN_LEAF", defaults.min_data_in_leaf),
            ..defaults
        };
        if gbdt.max_leaves < 2
            || gbdt.max_iterations == 0
            || gbdt.learning_rate.is_nan()
            || gbdt.learning_rate <= 0.0
        {
            env.problem(
                "TRAINER_GBDT_MAX_LEAVES must be at least 2, TRAINER_GBDT_MAX_ITERATIONS at least 1 \
                 and TRAINER_GBDT_LEARNING_RATE positive",
            );
        }
        let linear = LinearParams {
            l2: env.parse("TRAINER_LR_L2", LinearParams::default().l2),
            ..LinearParams::default()
        };
        // Without a penalty a constant indicator column makes the system singular.
        if linear.l2.is_nan() || linear.l2 <= 0.0 {
            env.problem("TRAINER_LR_L2 must be positive");
        }
        let gate_defaults = GateConfig::default();
        let gate = GateConfig {
            min_auc_gain: env.parse("TRAINER_MIN_AUC_GAIN", gate_defaults.min_auc_gain),
            min_auc: env.parse("TRAINER_MIN_AUC", gate_defaults.min_auc),
            max_ece: env.parse("TRAINER_MAX_ECE", gate_defaults.max_ece),
        };
        let min_training_rows = env.parse("TRAINER_MIN_TRAINING_ROWS", 1_000u64);
        let min_positives = env.parse("TRAINER_MIN_POSITIVES", 20u64);
        let min_new_days = env.parse("TRAINER_MIN_NEW_DAYS", 1u32);
        let interval = env.parse("TRAINER_INTERVAL_SECONDS", 86_400u64);
        let poll = env.parse("TRAINER_POLL_SECONDS", 300u64).max(1);
        let work_dir = env.optional("TRAINER_WORK_DIR").map(PathBuf::from);
        let export_matrices = env
            .optional("TRAINER_EXPORT_MATRICES_DIR")
            .map(PathBuf::from);
        let onnx_runtime = env.optional("ORT_DYLIB_PATH").map(PathBuf::from);
        if onnx_runtime.is_none() {
            env.problem(
                "ORT_DYLIB_PATH is required: the ONNX Runtime library every export is checked with \
                 (`eval \"$(./scripts/infra.sh env)\"` sets it locally; the image ships it)",
            );
        }
        let admin_addr = env.parse("ADMIN_ADDR", SocketAddr::from(([0, 0, 0, 0], 9105)));
        let telemetry = TelemetryConfig::from_env(env, "trainer");
        env.finish()?;
        Ok(Self {
            mode,
            lake: lake.ok_or_else(|| ConfigError::invalid("LAKE_URL"))?,
            registry_url,
            registry_token: registry_token
                .ok_or_else(|| ConfigError::invalid("TRAINER_REGISTRY_TOKEN"))?,
            registry_attempts,
            model_name,
            split: SplitConfig {
                horizon_days,
                test_days,
                validation_fraction,
                seed,
            },
            candidates,
            linear,
            gbdt,
            gate,
            min_training_rows,
            min_positives,
            min_new_days,
            interval: Duration::from_secs(interval),
            poll: Duration::from_secs(poll),
            work_dir,
            export_matrices,
            onnx_runtime: onnx_runtime.unwrap_or_default(),
            admin_addr,
            telemetry,
        })
    }
}

impl ServiceConfig for TrainerConfig {
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
            ("TRAINER_REGISTRY_TOKEN", "token-1234567890"),
            ("ORT_DYLIB_PATH", "/opt/ort/libonnxruntime.so"),
        ]);
        let config = TrainerConfig::from_env(&mut env).expect("valid");
        assert_eq!(config.mode, Mode::Run { gold_version: None });
        assert_eq!(config.model_name, "churn");
        assert_eq!(config.split.horizon_days, 30);
        assert_eq!(
            config.candidates,
            vec![CandidateKind::LogisticRegression, CandidateKind::Gbdt]
        );
        assert_eq!(config.gate, GateConfig::default());
        assert_eq!(config.admin_addr.port(), 9105);

        let problems = TrainerConfig::from_env(&mut EnvReader::from_pairs(&[
            ("TRAINER_CANDIDATES", "gbdt,forest"),
            ("TRAINER_MODE", "sometimes"),
        ]))
        .expect_err("invalid")
        .to_string();
        for expected in [
            "TRAINER_REGISTRY_TOKEN",
            "ORT_DYLIB_PATH",
            "\"forest\" is not a candidate",
            "TRAINER_MODE",
        ] {
            assert!(problems.contains(expected), "{expected} in {problems}");
        }
    }
}
