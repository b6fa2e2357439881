//! From a snapshot to evaluated, exported candidates.

use std::collections::BTreeMap;
use std::time::Instant;

use mlops_onnx::{FEATURES_METADATA_KEY, Scorer};
use tracing::{info, info_span};

use crate::config::{CandidateKind, TrainerConfig};
use crate::dataset::{LabelledSet, Role, Snapshot, label_and_split};
use crate::evaluation::{Metrics, evaluate, platt, roc_auc};
use crate::gbdt::GbdtModel;
use crate::linear::{LogisticModel, sigmoid};
use crate::matrix::{self, ClassWeights, Matrix};
use crate::reference::{self, REFERENCE_METADATA_KEY};
use crate::{Error, Result, export, gbdt, linear};

/// Largest allowed gap between the trainer's and ONNX Runtime's scores.
pub const PARITY_TOLERANCE: f64 = 1e-5;

/// The labelled, split and materialised training set.
pub struct Prepared {
    pub labelled: LabelledSet,
    pub columns: Vec<String>,
    pub fit: Matrix,
    pub validation: Matrix,
    pub test: Matrix,
    pub weights: ClassWeights,
}

pub fn prepare(snapshot: &Snapshot, config: &TrainerConfig) -> Result<Prepared> {
    let started = Instant::now();
    let labelled = label_and_split(snapshot, &config.split)?;
    let columns = matrix::columns(snapshot);
    let fit = matrix::build(snapshot, &labelled.examples, Role::Fit);
    let validation = matrix::build(snapshot, &labelled.examples, Role::Validation);
    let test = matrix::build(snapshot, &labelled.examples, Role::Test);
    let counts = &labelled.counts;
    info!(
        rows = counts.rows,
        labelled = counts.labelled,
        positives = counts.positives,
        censored = counts.censored,
        on_or_after_churn = counts.on_or_after_churn,
        gap = counts.gap,
        fit = fit.len(),
        validation = validation.len(),
        test = test.len(),
        train_end = %labelled.periods.train_end,
        test_start = %labelled.periods.test_start,
        test_end = %labelled.periods.test_end,
        seconds = started.elapsed().as_secs_f64(),
        "labelled and split"
    );
    let need = |what: &str, matrix: &Matrix| -> Result<()> {
        if (matrix.len() as u64) < config.min_training_rows {
            return Err(Error::Data(format!(
                "too few {what} rows: {} (TRAINER_MIN_TRAINING_ROWS is {}); gold needs more \
                 subscribers or days",
                matrix.len(),
                config.min_training_rows
            )));
        }
        if (matrix.positives() as u64) < config.min_positives {
            return Err(Error::Data(format!(
                "too few positives in the {what} rows: {} churners of {} (TRAINER_MIN_POSITIVES is {})",
                matrix.positives(),
                matrix.len(),
                config.min_positives
            )));
        }
        Ok(())
    };
    need("fit", &fit)?;
    need("test", &test)?;
    if validation.positives() == 0 || validation.positives() == validation.len() {
        return Err(Error::Data(format!(
            "the validation rows ({}) need both classes; raise TRAINER_VALIDATION_FRACTION",
            validation.len()
        )));
    }
    let weights = ClassWeights::balanced(&fit);
    Ok(Prepared {
        labelled,
        columns,
        fit,
        validation,
        test,
        weights,
    })
}

#[derive(Clone, Debug)]
pub enum Model {
    Linear(LogisticModel),
    Gbdt(GbdtModel),
}

impl Model {
    fn raw(&self, row: &[f32]) -> f64 {
        match self {
            Self::Linear(m) => m.raw(row),
            Self::Gbdt(m) => m.raw(row),
        }
    }
    pub fn predict(&self, matrix: &Matrix) -> Vec<f64> {
        let mut scores = self.raw_all(matrix);
        for s in &mut scores {
            *s = sigmoid(*s);
        }
        scores
    }
    fn raw_all(&self, matrix: &Matrix) -> Vec<f64> {
        let mut raw = vec![0.0; matrix.len()];
        crate::parallel::fill(&mut raw, |i| self.raw(matrix.row(i)));
        raw
    }
    fn calibrate(&mut self, a: f64, b: f64) {
        match self {
            Self::Linear(m) => m.calibrate(a, b),
            Self::Gbdt(m) => m.calibrate(a, b),
        }
    }
}

/// A trained, calibrated, evaluated and exported model.
pub struct Candidate {
    pub kind: CandidateKind,
    pub model: Model,
    pub onnx: Vec<u8>,
    pub validation_auc: f64,
    pub test: Metrics,
    pub test_scores: Vec<f64>,
    pub params: BTreeMap<String, String>,
    pub fit_seconds: f64,
}

pub fn train_candidate(
    kind: CandidateKind,
    prepared: &Prepared,
    snapshot: &Snapshot,
    config: &TrainerConfig,
) -> Candidate {
    let _span = info_span!("train", model = kind.name()).entered();
    let started = Instant::now();
    let (mut model, validation_raw, mut params) = match kind {
        CandidateKind::LogisticRegression => {
            let m = linear::train(&prepared.fit, prepared.weights, &config.linear);
            let params = BTreeMap::from([
                ("l2".to_string(), config.linear.l2.to_string()),
                ("iterations".to_string(), m.iterations.to_string()),
                (
                    "missing_indicators".to_string(),
                    m.indicators.len().to_string(),
                ),
            ]);
            let model = Model::Linear(m);
            let raw = model.raw_all(&prepared.validation);
            (model, raw, params)
        }
        CandidateKind::Gbdt => {
            let p = &config.gbdt;
            let gbdt::Fitted {
                model: m,
                validation_raw,
            } = gbdt::train(&prepared.fit, &prepared.validation, prepared.weights, p);
            let params = BTreeMap::from([
                ("learning_rate".to_string(), p.learning_rate.to_string()),
                ("max_leaves".to_string(), p.max_leaves.to_string()),
                (
                    "min_data_in_leaf".to_string(),
                    p.min_data_in_leaf.to_string(),
                ),
                ("l2".to_string(), p.l2.to_string()),
                ("max_bins".to_string(), p.max_bins.to_string()),
                ("max_iterations".to_string(), p.max_iterations.to_string()),
                ("trees".to_string(), m.trees.len().to_string()),
            ]);
            (Model::Gbdt(m), validation_raw, params)
        }
    };
    // Class weights shift probabilities; calibrate on validation rows.
    let (a, b) = platt(&validation_raw, &prepared.validation.labels);
    model.calibrate(a, b);
    let fit_seconds = started.elapsed().as_secs_f64();
    params.insert("calibration".into(), format!("platt a={a:.6} b={b:.6}"));
    params.insert(
        "class_weight_positive".into(),
        format!("{:.6}", prepared.weights.positive),
    );
    let validation_auc = roc_auc(
        &model.predict(&prepared.validation),
        &prepared.validation.labels,
    );
    let test_scores = model.predict(&prepared.test);
    let test = evaluate(&test_scores, &prepared.test.labels);
    info!(
        model = kind.name(),
        fit_seconds,
        validation_auc,
        test_roc_auc = test.roc_auc,
        test_pr_auc = test.pr_auc,
        test_log_loss = test.log_loss,
        test_ece = test.ece,
        test_top_decile_lift = test.top_decile_lift,
        "evaluated"
    );
    let fit_scores = model.predict(&prepared.fit);
    let reference = reference::build(&prepared.fit, &prepared.columns, &fit_scores);
    let metadata = vec![
        (
            FEATURES_METADATA_KEY.to_string(),
            serde_json::to_string(&prepared.columns).unwrap_or_default(),
        ),
        (
            REFERENCE_METADATA_KEY.to_string(),
            serde_json::to_string(&reference).unwrap_or_default(),
        ),
        ("model_type".to_string(), kind.name().to_string()),
        (
            "horizon_days".to_string(),
            config.split.horizon_days.to_string(),
        ),
        (
            "gold_version".to_string(),
            snapshot.lineage.version.to_string(),
        ),
    ];
    let onnx = match &model {
        Model::Linear(m) => export::logistic(m, metadata),
        Model::Gbdt(m) => export::gbdt(m, prepared.fit.width, metadata),
    };
    Candidate {
        kind,
        model,
        onnx,
        validation_auc,
        test,
        test_scores,
        params,
        fit_seconds,
    }
}

/// Scores the test rows with ONNX Runtime and compares with the trainer's
/// own scores; returns the largest difference.
pub fn check_parity(candidate: &Candidate, test: &Matrix, columns: &[String]) -> Result<f64> {
    let mut scorer = Scorer::from_bytes(&candidate.onnx, crate::parallel::threads())?;
    if scorer.features() != columns {
        return Err(Error::Parity(format!(
            "{} export names {} input columns, the trainer used {}",
            candidate.kind.name(),
            scorer.features().len(),
            columns.len()
        )));
    }
    let mut worst = 0.0f64;
    // Bounded batches keep the runtime's buffers small on big test sets.
    let batch_rows = 65_536;
    for (chunk, expected) in test
        .values
        .chunks(batch_rows * test.width)
        .zip(candidate.test_scores.chunks(batch_rows))
    {
        let scores = scorer.score(chunk, test.width)?;
        for (got, want) in scores.iter().zip(expected) {
            let diff = (f64::from(*got) - want).abs();
            if diff.is_nan() {
                worst = f64::INFINITY;
            } else if diff > worst {
                worst = diff;
            }
        }
    }
    if worst > PARITY_TOLERANCE {
        return Err(Error::Parity(format!(
            "ONNX Runtime's scores differ from the trainer's by up to {worst:.3e} (tolerance {PARITY_TOLERANCE:e}) \
             for {}",
            candidate.kind.name()
        )));
    }
    info!(
        model = candidate.kind.name(),
        rows = test.len(),
        max_difference = worst,
        "onnx runtime parity"
    );
    Ok(worst)
}
