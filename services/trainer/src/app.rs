//! The trainer service: one run (`trainer run`) or runs as gold advances
//! (`trainer watch`), each going through the phases snapshot → labelling →
//! training → export → gate → upload, with progress logged per phase.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{NaiveDate, Utc};
use mlops_onnx::Scorer;
use mlops_runtime::{Probes, Readiness, Service, Shutdown, error_chain};
use tracing::{Instrument, error, info, info_span, warn};

use crate::config::{Mode, TrainerConfig};
use crate::dataset::{self, Role, Snapshot};
use crate::evaluation::roc_auc;
use crate::gate::{self, Champion, Decision, Outcome};
use crate::matrix;
use crate::metrics::{TrainerMetrics, label};
use crate::publish::publish;
pub use crate::publish::training_key;
use crate::registry::Registry;
use crate::train::{self, Candidate, Prepared};
use crate::{Error, Result, matrices};

/// What a run registered and decided.
#[derive(Clone, Debug)]
pub struct RunSummary {
    pub run_id: String,
    pub gold_version: u64,
    pub newest_day: NaiveDate,
    /// Registered versions by candidate name.
    pub versions: BTreeMap<String, i64>,
    pub best: String,
    pub best_version: i64,
    pub decision: Decision,
    /// The alias the best version now holds (`champion` or `challenger`).
    pub alias: String,
    pub test_auc: BTreeMap<String, f64>,
    pub champion_auc: Option<f64>,
    pub parity_max_difference: f64,
}

pub struct App {
    config: Arc<TrainerConfig>,
    readiness: Readiness,
    metrics: TrainerMetrics,
}

impl Service for App {
    const NAME: &'static str = "trainer";
    type Config = TrainerConfig;
    type Error = Error;

    /// Loads ONNX Runtime (a missing library fails the start) and registers
    /// the metrics; neither the lake nor the registry is contacted yet.
    async fn build(config: TrainerConfig, probes: Probes<'_>) -> Result<Self> {
        mlops_onnx::init(&config.onnx_runtime)?;
        let metrics = TrainerMetrics::default();
        metrics.register(probes.metrics);
        Ok(Self {
            config: Arc::new(config),
            readiness: probes.readiness,
            metrics,
        })
    }

    async fn run(self, shutdown: Shutdown) -> Result<()> {
        match self.config.mode.clone() {
            Mode::Run { gold_version } => {
                self.readiness.set(true);
                train_once(&self.config, &self.metrics, gold_version)
                    .await
                    .map(|_| ())
            }
            Mode::Watch => {
                self.watch(&shutdown).await;
                Ok(())
            }
        }
    }
}

impl App {
    pub fn metrics(&self) -> TrainerMetrics {
        self.metrics.clone()
    }

    /// Retrains when gold's newest day moved `min_new_days`, or when the
    /// interval has passed and gold changed; a failed run is retried at the
    /// next poll.
    async fn watch(&self, shutdown: &Shutdown) {
        self.readiness.set(true);
        let mut last: Option<(u64, NaiveDate, Instant)> = None;
        while !shutdown.is_triggered() {
            match self.due(last).await {
                Ok(Some(version)) => {
                    match train_once(&self.config, &self.metrics, Some(version)).await {
                        Ok(summary) => {
                            last = Some((summary.gold_version, summary.newest_day, Instant::now()))
                        }
                        Err(error) => {
                            error!(error = %error_chain(&error), "training run failed; retrying at the next poll")
                        }
                    }
                }
                Ok(None) => {}
                Err(error) => warn!(error = %error_chain(&error), "cannot read gold's version"),
            }
            tokio::select! {
                () = shutdown.wait() => {}
                () = tokio::time::sleep(self.config.poll) => {}
            }
        }
    }

    async fn due(&self, last: Option<(u64, NaiveDate, Instant)>) -> Result<Option<u64>> {
        let Some(version) = dataset::latest_gold_version(&self.config.lake).await? else {
            info!("gold has no data yet; waiting");
            return Ok(None);
        };
        let Some((last_version, last_day, at)) = last else {
            return Ok(Some(version));
        };
        if version == last_version {
            return Ok(None);
        }
        let newest = dataset::newest_day(&self.config.lake, version).await?;
        let advanced = newest
            .is_some_and(|d| (d - last_day).num_days() >= i64::from(self.config.min_new_days));
        Ok((advanced || at.elapsed() >= self.config.interval).then_some(version))
    }
}

/// One training run with metrics: the phases and their outcome.
pub async fn train_once(
    config: &Arc<TrainerConfig>,
    metrics: &TrainerMetrics,
    gold_version: Option<u64>,
) -> Result<RunSummary> {
    let started = Instant::now();
    let outcome = run_phases(config, metrics, gold_version)
        .instrument(info_span!("trainer_run", model = %config.model_name))
        .await;
    metrics.run_seconds.observe(started.elapsed().as_secs_f64());
    match &outcome {
        Ok(summary) => {
            metrics.runs.get_or_create(&label("outcome", "ok")).inc();
            metrics.last_success_seconds.set(Utc::now().timestamp());
            metrics.gold_version.set(summary.gold_version as i64);
            let decision = match summary.decision.outcome {
                Outcome::Promote => "promoted",
                Outcome::Challenger => "challenger",
            };
            metrics
                .decisions
                .get_or_create(&label("outcome", decision))
                .inc();
            for (model, auc) in &summary.test_auc {
                metrics
                    .last_auc
                    .get_or_create(&label("model_type", model))
                    .set(*auc);
            }
            info!(
                run_id = summary.run_id,
                gold_version = summary.gold_version,
                best = summary.best,
                version = summary.best_version,
                alias = summary.alias,
                decision = summary.decision.reason,
                seconds = started.elapsed().as_secs_f64(),
                "training run finished"
            );
        }
        Err(error) => {
            metrics.runs.get_or_create(&label("outcome", "error")).inc();
            error!(error = %error_chain(error), "training run failed");
        }
    }
    outcome
}

/// Runs CPU-bound work off the async threads, inside the caller's span so
/// its spans and logs stay in the run's trace.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
        .await
        .map_err(|e| Error::Task(e.to_string()))
}

async fn run_phases(
    config: &Arc<TrainerConfig>,
    metrics: &TrainerMetrics,
    gold_version: Option<u64>,
) -> Result<RunSummary> {
    let started_at = Utc::now();
    // Snapshot.
    let version = match gold_version {
        Some(v) => v,
        None => dataset::latest_gold_version(&config.lake)
            .await?
            .ok_or_else(|| {
                Error::Data(format!(
                    "gold/subscriber_features_daily has no data under {}: run the pipeline first",
                    config.lake.root()
                ))
            })?,
    };
    let phase = Instant::now();
    let snapshot = Arc::new(
        dataset::load(&config.lake, version)
            .instrument(info_span!("snapshot", gold_version = version))
            .await?,
    );
    info!(
        phase = "snapshot",
        gold_version = version,
        rows = snapshot.rows.len(),
        silver_version = snapshot.lineage.silver_version,
        bronze_version = snapshot.lineage.bronze_version,
        seconds = phase.elapsed().as_secs_f64(),
        "phase done"
    );
    metrics
        .rows
        .get_or_create(&label("set", "snapshot"))
        .set(snapshot.rows.len() as i64);

    // Labelling and split.
    let phase = Instant::now();
    let prepared = {
        let (snapshot, config) = (snapshot.clone(), config.clone());
        Arc::new(
            blocking(move || {
                let _span = info_span!("labelling").entered();
                train::prepare(&snapshot, &config)
            })
            .await??,
        )
    };
    info!(
        phase = "labelling",
        labelled = prepared.labelled.counts.labelled,
        seconds = phase.elapsed().as_secs_f64(),
        "phase done"
    );
    for (set, rows) in [
        ("labelled", prepared.labelled.counts.labelled as usize),
        ("fit", prepared.fit.len()),
        ("validation", prepared.validation.len()),
        ("test", prepared.test.len()),
    ] {
        metrics
            .rows
            .get_or_create(&label("set", set))
            .set(rows as i64);
    }
    if let Some(dir) = &config.export_matrices {
        for (name, m) in [
            ("fit", &prepared.fit),
            ("validation", &prepared.validation),
            ("test", &prepared.test),
        ] {
            matrices::write(dir, name, m, &prepared.columns)?;
        }
        info!(dir = %dir.display(), "training matrices written as parquet");
    }

    // Training, one candidate after the other (each uses every core).
    let mut candidates = Vec::new();
    for kind in config.candidates.clone() {
        let (snapshot, prepared, config) = (snapshot.clone(), prepared.clone(), config.clone());
        let candidate =
            blocking(move || train::train_candidate(kind, &prepared, &snapshot, &config)).await?;
        info!(
            phase = "train",
            model = kind.name(),
            seconds = candidate.fit_seconds,
            "phase done"
        );
        candidates.push(candidate);
    }

    // Export check: ONNX Runtime must score every test row as the trainer does.
    let phase = Instant::now();
    let (candidates, parity) = {
        let prepared = prepared.clone();
        blocking(move || -> Result<(Vec<Candidate>, f64)> {
            let _span = info_span!("export").entered();
            let mut worst = 0.0f64;
            for c in &candidates {
                worst = worst.max(train::check_parity(c, &prepared.test, &prepared.columns)?);
            }
            Ok((candidates, worst))
        })
        .await??
    };
    let work = WorkDir::new(config.work_dir.clone())?;
    let mut files = Vec::new();
    for c in &candidates {
        let path = work.path().join(format!("{}.onnx", c.kind.name()));
        std::fs::write(&path, &c.onnx).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        files.push(path);
    }
    info!(
        phase = "export",
        models = candidates.len(),
        max_difference = parity,
        seconds = phase.elapsed().as_secs_f64(),
        "phase done"
    );

    // Gate: the best candidate on validation AUC against the champion on the same test period.
    let phase = Instant::now();
    let gate_span = info_span!("gate");
    let mut registry = Registry::connect(
        &config.registry_url,
        &config.registry_token,
        config.registry_attempts,
        &config.model_name,
    )
    .instrument(gate_span.clone())
    .await?;
    let approver = registry.is_approver().instrument(gate_span.clone()).await?;
    registry
        .ensure_model("Churn within the horizon, trained on gold by the trainer")
        .instrument(gate_span.clone())
        .await?;
    let best = candidates
        .iter()
        .enumerate()
        .max_by(|a, b| {
            a.1.validation_auc
                .total_cmp(&b.1.validation_auc)
                .then(b.0.cmp(&a.0))
        })
        .map(|(i, _)| i)
        .ok_or_else(|| Error::Data("TRAINER_CANDIDATES is empty".into()))?;
    let key = training_key(config, snapshot.lineage.version);
    let existing = registry
        .versions_of(&key)
        .instrument(gate_span.clone())
        .await?;
    let best_metrics = &candidates[best].test;
    let promoted_before = registry
        .champion()
        .instrument(gate_span.clone())
        .await?
        .filter(|c| existing.iter().any(|v| v.version == c.version));
    // An earlier attempt of this training already promoted its candidate:
    // gating it against itself would demote it.
    let (champion, decision) = match promoted_before {
        Some(version) => (
            Champion::None,
            Decision {
                outcome: Outcome::Promote,
                reason: format!(
                    "promoted: v{} was promoted by an earlier attempt of this run",
                    version.version
                ),
            },
        ),
        None => {
            let champion = score_champion(&mut registry, &snapshot, &prepared)
                .instrument(gate_span)
                .await?;
            let decision = gate::decide(
                best_metrics.roc_auc,
                best_metrics.ece,
                &champion,
                &config.gate,
                approver,
            );
            (champion, decision)
        }
    };
    info!(phase = "gate", best = candidates[best].kind.name(), test_auc = best_metrics.roc_auc,
          champion = ?champion, decision = decision.reason, seconds = phase.elapsed().as_secs_f64(), "phase done");

    // Upload: the run, one version per candidate, the alias.
    let phase = Instant::now();
    let summary = publish(
        &mut registry,
        &key,
        &existing,
        config,
        &snapshot,
        &prepared,
        &candidates,
        &files,
        best,
        &champion,
        decision,
        parity,
        started_at,
    )
    .instrument(info_span!("upload"))
    .await?;
    info!(phase = "upload", run_id = summary.run_id, versions = ?summary.versions, seconds = phase.elapsed().as_secs_f64(), "phase done");
    Ok(summary)
}

/// The champion's AUC on this run's test rows, scored from its artifact.
async fn score_champion(
    registry: &mut Registry,
    snapshot: &Arc<Snapshot>,
    prepared: &Arc<Prepared>,
) -> Result<Champion> {
    let Some(version) = registry.champion().await? else {
        return Ok(Champion::None);
    };
    let bytes = registry.download(version.version).await?;
    let (snapshot, prepared) = (snapshot.clone(), prepared.clone());
    let number = version.version;
    blocking(move || {
        let unscorable = |reason: String| Champion::Unscorable {
            version: number,
            reason,
        };
        let mut scorer = match Scorer::from_bytes(&bytes, crate::parallel::threads()) {
            Ok(s) => s,
            Err(e) => return unscorable(e.to_string()),
        };
        if scorer.features().is_empty() {
            return unscorable("its ONNX metadata names no input columns".into());
        }
        let names = scorer.features().to_vec();
        let test =
            match matrix::build_named(&snapshot, &prepared.labelled.examples, Role::Test, &names) {
                Ok(m) => m,
                Err(reason) => return unscorable(reason),
            };
        match scorer.score(&test.values, test.width) {
            Ok(scores) => {
                let scores: Vec<f64> = scores.into_iter().map(f64::from).collect();
                Champion::Scored {
                    version: number,
                    auc: roc_auc(&scores, &test.labels),
                }
            }
            Err(e) => unscorable(e.to_string()),
        }
    })
    .await
}

/// Where model files go before upload: the configured directory, or a
/// temporary one removed afterwards.
enum WorkDir {
    Configured(PathBuf),
    Temporary(tempfile::TempDir),
}

impl WorkDir {
    fn new(configured: Option<PathBuf>) -> Result<Self> {
        match configured {
            Some(path) => {
                std::fs::create_dir_all(&path).map_err(|source| Error::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                Ok(Self::Configured(path))
            }
            None => tempfile::tempdir()
                .map(Self::Temporary)
                .map_err(|source| Error::Io {
                    path: "temporary directory".into(),
                    source,
                }),
        }
    }
    fn path(&self) -> &std::path::Path {
        match self {
            Self::Configured(p) => p,
            Self::Temporary(t) => t.path(),
        }
    }
}
