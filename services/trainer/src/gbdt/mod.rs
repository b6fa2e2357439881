//! Gradient-boosted trees for binary log loss, trained in Rust: histogram
//! splits on binned features ([`bins`]), leaf-wise trees ([`tree`]), early
//! stopping on the validation rows' log loss.
//!
//! Unknown values have their own bin; each split learns which side they go
//! to (exported as `nodes_missing_value_tracks_true`).

pub mod bins;
pub mod histogram;
pub mod tree;

use std::time::{Duration, Instant};

use tracing::info;

use self::bins::BinMapper;
use self::histogram::Groups;
use self::tree::{Binned, GrowParams, Timings, Tree};
use crate::linear::sigmoid;
use crate::matrix::{ClassWeights, Matrix};
use crate::parallel;

#[derive(Clone, Debug)]
pub struct GbdtParams {
    pub max_iterations: usize,
    pub learning_rate: f64,
    pub max_leaves: usize,
    pub min_data_in_leaf: u32,
    pub min_sum_hessian: f64,
    pub l2: f64,
    pub max_bins: usize,
    /// Stop when the validation loss has not improved for this many trees.
    pub early_stopping_rounds: usize,
}

impl Default for GbdtParams {
    fn default() -> Self {
        Self {
            max_iterations: 500,
            learning_rate: 0.1,
            max_leaves: 31,
            min_data_in_leaf: 20,
            min_sum_hessian: 1e-3,
            l2: 1.0,
            max_bins: 255,
            early_stopping_rounds: 20,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct GbdtModel {
    /// Added to the trees' sum (a float32 value, widened).
    pub base_score: f64,
    pub trees: Vec<Tree>,
    /// Trees grown before early stopping chose `trees.len()`.
    pub iterations: usize,
}

impl GbdtModel {
    pub fn raw(&self, row: &[f32]) -> f64 {
        self.base_score + self.trees.iter().map(|t| t.value(row)).sum::<f64>()
    }

    pub fn predict(&self, matrix: &Matrix) -> Vec<f64> {
        (0..matrix.len())
            .map(|i| sigmoid(self.raw(matrix.row(i))))
            .collect()
    }

    /// Folds `sigmoid(a * raw + b)` (calibration) into leaves and base.
    pub fn calibrate(&mut self, a: f64, b: f64) {
        for tree in &mut self.trees {
            tree.scale(a);
        }
        self.base_score = f64::from((self.base_score * a + b) as f32);
    }
}

/// Weighted mean log loss of raw scores.
fn log_loss(scores: &[f64], labels: &[bool], weights: ClassWeights) -> f64 {
    let parts = parallel::map_parts(scores.len(), |range| {
        let (mut loss, mut total) = (0.0, 0.0);
        for i in range {
            let w = weights.of(labels[i]);
            let y = if labels[i] { 1.0 } else { 0.0 };
            loss += w * (softplus(scores[i]) - y * scores[i]);
            total += w;
        }
        (loss, total)
    });
    let (loss, total) = parts
        .into_iter()
        .fold((0.0, 0.0), |(l, t), (pl, pt)| (l + pl, t + pt));
    loss / total.max(f64::MIN_POSITIVE)
}

fn softplus(s: f64) -> f64 {
    if s > 0.0 {
        s + (-s).exp().ln_1p()
    } else {
        s.exp().ln_1p()
    }
}

/// A trained model and its raw scores of the validation rows (what
/// calibration needs, without scoring them again).
pub struct Fitted {
    pub model: GbdtModel,
    pub validation_raw: Vec<f64>,
}

/// Trains on `fit`, stopping early on `validation`.
pub fn train(
    fit: &Matrix,
    validation: &Matrix,
    weights: ClassWeights,
    params: &GbdtParams,
) -> Fitted {
    let started = Instant::now();
    let mapper = BinMapper::fit(fit, params.max_bins);
    let valid_bins = mapper.transform(validation);
    let (n, width) = (fit.len(), fit.width);
    let mut by_column = vec![0u8; n * width];
    parallel::fill(&mut by_column, |i| {
        let (column, row) = (i / n, i % n);
        mapper.bin(column, fit.values[row * width + column])
    });
    let groups = Groups::build(&by_column, fit.len(), &mapper);
    let data = Binned {
        groups: &groups,
        by_column: &by_column,
        rows: fit.len(),
        mapper: &mapper,
    };
    info!(
        model = "gbdt",
        rows = fit.len(),
        columns = fit.width,
        bins = mapper.total_slots,
        histogram_groups = groups.len(),
        seconds = started.elapsed().as_secs_f64(),
        "features binned"
    );
    let (mut pos, mut neg) = (0.0, 0.0);
    for &label in &fit.labels {
        if label {
            pos += weights.positive;
        } else {
            neg += weights.negative;
        }
    }
    let base_score = f64::from(((pos.max(1e-12)) / neg.max(1e-12)).ln() as f32);
    let grow_params = GrowParams {
        max_leaves: params.max_leaves.max(2),
        min_data_in_leaf: params.min_data_in_leaf.max(1),
        min_sum_hessian: params.min_sum_hessian,
        l2: params.l2,
        learning_rate: params.learning_rate,
    };
    let mut fit_scores = vec![base_score; fit.len()];
    let mut valid_scores = vec![base_score; validation.len()];
    // float32 gradients, as LightGBM keeps them: half the bytes per row
    // that every histogram reads; sums stay float64.
    let mut gh = vec![[0.0f32; 2]; fit.len()];
    let mut rows: Vec<u32> = Vec::with_capacity(fit.len());
    let mut trees = Vec::new();
    let mut best = (f64::INFINITY, 0usize);
    let mut best_valid_scores = valid_scores.clone();
    let mut iterations = 0;
    let mut timings = Timings::default();
    let (mut gradients, mut updates) = (Duration::ZERO, Duration::ZERO);
    for iteration in 1..=params.max_iterations {
        iterations = iteration;
        let step = Instant::now();
        parallel::fill(&mut gh, |i| {
            let label = fit.labels[i];
            let p = sigmoid(fit_scores[i]);
            let w = weights.of(label);
            let y = if label { 1.0 } else { 0.0 };
            [(w * (p - y)) as f32, (w * p * (1.0 - p)).max(1e-16) as f32]
        });
        rows.clear();
        rows.extend(0..fit.len() as u32);
        gradients += step.elapsed();
        let grown = tree::grow(&data, &gh, &mut rows, &grow_params, &mut timings);
        let step = Instant::now();
        for (range, value) in &grown.leaves {
            for &row in &rows[range.clone()] {
                fit_scores[row as usize] += value;
            }
        }
        parallel::update(&mut valid_scores, |i, score| {
            let row = &valid_bins[i * fit.width..(i + 1) * fit.width];
            *score += grown.tree.value_binned(row, &mapper);
        });
        let single_leaf = grown.tree.nodes.len() == 1;
        trees.push(grown.tree);
        let valid_loss = log_loss(&valid_scores, &validation.labels, weights);
        if valid_loss < best.0 - 1e-9 {
            best = (valid_loss, iteration);
            best_valid_scores.clone_from(&valid_scores);
        }
        updates += step.elapsed();
        if iteration % 10 == 0 || iteration == 1 {
            info!(
                model = "gbdt",
                iteration,
                valid_log_loss = valid_loss,
                best_iteration = best.1,
                seconds = started.elapsed().as_secs_f64(),
                "boosting"
            );
        }
        if single_leaf || iteration - best.1 >= params.early_stopping_rounds {
            break;
        }
    }
    trees.truncate(best.1.max(1));
    info!(
        model = "gbdt",
        iterations,
        trees = trees.len(),
        best_valid_log_loss = best.0,
        seconds = started.elapsed().as_secs_f64(),
        histogram_seconds = timings.histograms.as_secs_f64(),
        partition_seconds = timings.partitions.as_secs_f64(),
        split_search_seconds = timings.splits.as_secs_f64(),
        gradient_seconds = gradients.as_secs_f64(),
        score_update_seconds = updates.as_secs_f64(),
        "trained"
    );
    Fitted {
        model: GbdtModel {
            base_score,
            trees,
            iterations,
        },
        validation_raw: best_valid_scores,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Positive when x0 > 1 or x1 is unknown: a tree must use both.
    fn data(n: usize, seed: u64) -> Matrix {
        let mut values = Vec::new();
        let mut labels = Vec::new();
        let mut state = seed;
        for _ in 0..n {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let x0 = ((state >> 33) % 1000) as f32 / 250.0;
            let x1 = if (state >> 20).is_multiple_of(5) {
                f32::NAN
            } else {
                ((state >> 40) % 7) as f32
            };
            values.extend([x0, x1]);
            labels.push(x0 > 1.0 && x0 < 3.0 || x1.is_nan());
        }
        Matrix {
            width: 2,
            values,
            labels,
            gold_rows: (0..n as u32).collect(),
        }
    }

    #[test]
    fn learns_an_interval_and_the_missing_branch() {
        let fit = data(4_000, 1);
        let valid = data(1_000, 2);
        let Fitted {
            model,
            validation_raw,
        } = train(
            &fit,
            &valid,
            ClassWeights::balanced(&fit),
            &GbdtParams::default(),
        );
        let raw: Vec<f64> = (0..valid.len()).map(|i| model.raw(valid.row(i))).collect();
        assert!(
            raw.iter()
                .zip(&validation_raw)
                .all(|(a, b)| (a - b).abs() < 1e-9),
            "the validation scores returned are the model's"
        );
        let test = data(1_000, 3);
        let p = model.predict(&test);
        let errors = p
            .iter()
            .zip(&test.labels)
            .filter(|(p, l)| (**p > 0.5) != **l)
            .count();
        assert!(errors < 20, "{errors} errors of 1000");
    }

    #[test]
    fn same_data_gives_the_same_model() {
        let fit = data(3_000, 5);
        let valid = data(500, 6);
        let params = GbdtParams {
            max_iterations: 30,
            ..GbdtParams::default()
        };
        let a = train(&fit, &valid, ClassWeights::balanced(&fit), &params);
        let b = train(&fit, &valid, ClassWeights::balanced(&fit), &params);
        assert_eq!(a.model, b.model);
        assert_eq!(a.validation_raw, b.validation_raw);
    }
}
