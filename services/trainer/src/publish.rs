//! Publishing a training: its run, one version per candidate (reused when
//! an earlier attempt of the same training registered it) and the alias the
//! gate decided.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use chrono::Utc;
use mlops_registry_client::proto as pb;
use sha2::{Digest, Sha256};
use tracing::info;

use crate::app::RunSummary;
use crate::config::TrainerConfig;
use crate::dataset::Snapshot;
use crate::gate::{Champion, Decision, Outcome};
use crate::matrix;
use crate::registry::{CANDIDATE_TAG, CHALLENGER, CHAMPION, Registry, TRAINING_KEY_TAG};
use crate::train::{Candidate, Prepared};
use crate::{Result, TRAINER_VERSION};

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
pub(crate) async fn publish(
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
