//! The trainer service: one run (`trainer run`) or runs as gold advances
//! (`trainer watch`), each going through the phases snapshot → labelling →
//! training → export → gate → upload, with progress logged per phase.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{NaiveDate, Utc};
use mlops_onnx::Scorer;
use mlops_registry_client::proto as pb;
use mlops_runtime::{Probes, Readiness, Service, Shutdown, error_chain};
use sha2::{Digest, Sha256};
use tracing::{Instrument, error, info, info_span, warn};

use crate::config::{Mode, TrainerConfig};
use crate::dataset::{self, Role, Snapshot};
use crate::evaluation::roc_auc;
use crate::gate::{self, Champion, Decision, Outcome};
use crate::matrix;
use crate::metrics::{TrainerMetrics, label};
use crate::registry::{CANDIDATE_TAG, CHALLENGER, CHAMPION, Registry, TRAINING_KEY_TAG};
use crate::train::{self, Candidate, Prepared};
use crate::{Error, Result, TRAINER_VERSION, matrices};

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

/// A stable id of this training: same model, gold version, settings and code.
pub fn training_key(config: &TrainerConfig, gold_version: u64) -> String {
    let mut hasher = Sha256::new();
    let text = format!(
        "{}|{gold_version}|{:?}|{:?}|{:?}|{:?}|{:?}|{TRAINER_VERSION}",
        config.model_name, config.split, config.candidates, config.linear, config.gbdt, config.gate
    );
    hasher.update(text.as_bytes());
    hex::encode(&hasher.finalize()[..8])
}

#[allow(clippy::too_many_arguments)]
async fn publish(
    registry: &mut Registry,
    key: &str,
    existing: &[pb::ModelVersion],
    config: &TrainerConfig,
    snapshot: &Snapshot,
    prepared: &Prepared,
    candidates: &[Candidate],
    files: &[PathBuf],
    best: usize,
    champion: &Champion,
    decision: Decision,
    parity: f64,
    started_at: chrono::DateTime<Utc>,
) -> Result<RunSummary> {
    let lineage = &snapshot.lineage;
    let offsets: BTreeMap<String, i64> = lineage
        .kafka_offsets
        .iter()
        .map(|((topic, partition), offset)| (format!("{topic}/{partition}"), *offset))
        .collect();
    let dataset = pb::DatasetLineage {
        table_uri: snapshot.table_uri.clone(),
        table_version: lineage.version as i64,
        upstream: HashMap::from([
            (
                "silver_version".to_string(),
                lineage.silver_version.to_string(),
            ),
            (
                "bronze_version".to_string(),
                lineage.bronze_version.to_string(),
            ),
            (
                "kafka_offsets".to_string(),
                serde_json::to_string(&offsets).unwrap_or_default(),
            ),
        ]),
    };
    let periods = prepared.labelled.periods;
    let counts = &prepared.labelled.counts;
    // A rerun after a failure continues the same run when it is still open.
    let mut run = None;
    if let Some(previous) = existing.first().filter(|v| !v.run_id.is_empty()) {
        // Open or ended, it is this training's run: metrics and tags merge.
        let r = registry.get_run(&previous.run_id).await?;
        info!(
            run_id = r.run_id,
            "continuing the run of an earlier attempt"
        );
        run = Some(r);
    }
    let run = match run {
        Some(r) => r,
        None => {
            let params = HashMap::from([
                ("trainer_version".to_string(), TRAINER_VERSION.to_string()),
                ("training_key".to_string(), key.to_string()),
                ("started_at".to_string(), started_at.to_rfc3339()),
                ("gold_version".to_string(), lineage.version.to_string()),
                (
                    "horizon_days".to_string(),
                    config.split.horizon_days.to_string(),
                ),
                ("test_days".to_string(), config.split.test_days.to_string()),
                (
                    "validation_fraction".to_string(),
                    config.split.validation_fraction.to_string(),
                ),
                ("seed".to_string(), config.split.seed.to_string()),
                (
                    "candidates".to_string(),
                    candidates
                        .iter()
                        .map(|c| c.kind.name())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                (
                    "train_period".to_string(),
                    format!("{}..{}", periods.train_start, periods.train_end),
                ),
                (
                    "test_period".to_string(),
                    format!("{}..{}", periods.test_start, periods.test_end),
                ),
                (
                    "min_auc_gain".to_string(),
                    config.gate.min_auc_gain.to_string(),
                ),
                ("min_auc".to_string(), config.gate.min_auc.to_string()),
                ("max_ece".to_string(), config.gate.max_ece.to_string()),
            ]);
            registry
                .create_run(pb::CreateRunRequest {
                    name: format!("{}-gold-v{}", config.model_name, lineage.version),
                    params,
                    dataset: Some(dataset.clone()),
                    tags: HashMap::from([("gate.decision".to_string(), "pending".to_string())]),
                })
                .await?
        }
    };
    let feature_set = matrix::feature_set_hash(&prepared.columns);
    let signature = pb::Signature {
        inputs: vec![pb::TensorSpec {
            name: crate::export::INPUT.into(),
            dtype: "float32".into(),
            shape: vec![-1, prepared.columns.len() as i64],
            columns: prepared.columns.clone(),
        }],
        outputs: vec![
            pb::TensorSpec {
                name: crate::export::LABEL.into(),
                dtype: "int64".into(),
                shape: vec![-1],
                columns: vec![],
            },
            pb::TensorSpec {
                name: crate::export::PROBABILITIES.into(),
                dtype: "float32".into(),
                shape: vec![-1, 2],
                columns: vec![],
            },
        ],
    };
    let mut versions = BTreeMap::new();
    for (candidate, file) in candidates.iter().zip(files) {
        let name = candidate.kind.name();
        let earlier = existing
            .iter()
            .find(|v| v.tags.get(CANDIDATE_TAG).map(String::as_str) == Some(name));
        let version = match earlier {
            Some(v) if v.status == pb::ModelVersionStatus::Ready as i32 => {
                info!(
                    candidate = name,
                    version = v.version,
                    "already registered by an earlier attempt"
                );
                v.version
            }
            Some(v) => {
                registry.upload(v.version, file).await?;
                v.version
            }
            None => {
                let mut metrics: HashMap<String, f64> =
                    candidate.test.to_map().into_iter().collect();
                metrics.insert("validation_roc_auc".into(), candidate.validation_auc);
                metrics.insert("fit_seconds".into(), candidate.fit_seconds);
                metrics.retain(|_, v| v.is_finite());
                let tags = HashMap::from([
                    ("model_type".to_string(), name.to_string()),
                    (
                        "horizon_days".to_string(),
                        config.split.horizon_days.to_string(),
                    ),
                    ("feature_set".to_string(), feature_set.clone()),
                    (TRAINING_KEY_TAG.to_string(), key.to_string()),
                    (CANDIDATE_TAG.to_string(), name.to_string()),
                    ("gold_version".to_string(), lineage.version.to_string()),
                ]);
                let created = registry
                    .create_version(
                        key,
                        name,
                        pb::CreateModelVersionRequest {
                            model_name: config.model_name.clone(),
                            format: "onnx".into(),
                            signature: Some(signature.clone()),
                            metrics,
                            params: candidate.params.clone().into_iter().collect(),
                            tags,
                            description: format!(
                                "{name} on gold v{} (horizon {} days)",
                                lineage.version, config.split.horizon_days
                            ),
                            run_id: run.run_id.clone(),
                            dataset: Some(dataset.clone()),
                        },
                    )
                    .await?;
                registry.upload(created.version, file).await?;
                created.version
            }
        };
        info!(candidate = name, version, "registered");
        versions.insert(name.to_string(), version);
    }
    let best_name = candidates[best].kind.name().to_string();
    let best_version = versions[&best_name];
    let alias = match decision.outcome {
        Outcome::Promote => CHAMPION,
        Outcome::Challenger => CHALLENGER,
    };
    registry.set_alias(alias, best_version).await?;
    info!(
        alias,
        version = best_version,
        reason = decision.reason,
        "alias set"
    );
    let mut run_metrics = HashMap::new();
    for c in candidates {
        for (k, v) in c.test.to_map() {
            run_metrics.insert(format!("{}.{k}", c.kind.name()), v);
        }
        run_metrics.insert(
            format!("{}.validation_roc_auc", c.kind.name()),
            c.validation_auc,
        );
    }
    let champion_auc = match champion {
        Champion::Scored { auc, .. } => Some(*auc),
        _ => None,
    };
    if let Some(auc) = champion_auc {
        run_metrics.insert("champion.test_roc_auc".into(), auc);
    }
    run_metrics.insert(
        "gate.promoted".into(),
        f64::from(u8::from(decision.outcome == Outcome::Promote)),
    );
    run_metrics.insert("onnx_parity_max_difference".into(), parity);
    for (k, v) in [
        ("rows.snapshot", counts.rows),
        ("rows.labelled", counts.labelled),
        ("rows.positives", counts.positives),
        ("rows.censored", counts.censored),
        ("rows.fit", prepared.fit.len() as u64),
        ("rows.validation", prepared.validation.len() as u64),
        ("rows.test", prepared.test.len() as u64),
    ] {
        run_metrics.insert(k.to_string(), v as f64);
    }
    run_metrics.retain(|_, v| v.is_finite());
    registry
        .update_run(pb::UpdateRunRequest {
            run_id: run.run_id.clone(),
            status: pb::RunStatus::Finished as i32,
            metrics: run_metrics,
            set_tags: HashMap::from([
                (
                    "gate.decision".to_string(),
                    match decision.outcome {
                        Outcome::Promote => "promoted",
                        Outcome::Challenger => "challenger",
                    }
                    .to_string(),
                ),
                ("gate.reason".to_string(), decision.reason.clone()),
                (
                    "gate.candidate".to_string(),
                    format!("{best_name} v{best_version}"),
                ),
                ("ended_at".to_string(), Utc::now().to_rfc3339()),
            ]),
        })
        .await?;
    Ok(RunSummary {
        run_id: run.run_id,
        gold_version: lineage.version,
        newest_day: periods.newest_day,
        versions,
        best: best_name,
        best_version,
        alias: alias.to_string(),
        test_auc: candidates
            .iter()
            .map(|c| (c.kind.name().to_string(), c.test.roc_auc))
            .collect(),
        champion_auc,
        decision,
        parity_max_difference: parity,
    })
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
