//! L2-regularised logistic regression, trained in Rust by Newton's method.
//!
//! Inputs are standardised with the fit rows' mean and standard deviation;
//! an unknown value is imputed with the mean (0 after standardisation), and
//! every column that has unknown values in the fit rows also gets a 0/1
//! "missing" indicator. The ONNX export is the same computation:
//! `Imputer → Scaler → Concat(IsNaN indicators) → LinearClassifier`.

use std::time::Instant;

use tracing::{info, warn};

use crate::matrix::{ClassWeights, Matrix};
use crate::parallel;

#[derive(Clone, Debug)]
pub struct LinearParams {
    /// L2 penalty on the coefficients (not the intercept), on the summed
    /// weighted log loss: scikit-learn's `C = 1 / l2`.
    pub l2: f64,
    pub max_iterations: usize,
}

impl Default for LinearParams {
    fn default() -> Self {
        Self {
            l2: 1.0,
            max_iterations: 50,
        }
    }
}

/// A trained model; parameters are float32 values (what the export holds).
#[derive(Clone, Debug, PartialEq)]
pub struct LogisticModel {
    pub means: Vec<f32>,
    /// 1 / standard deviation.
    pub scales: Vec<f32>,
    /// Input columns with a missing indicator, in order.
    pub indicators: Vec<usize>,
    /// One per input column, then one per indicator.
    pub coefficients: Vec<f32>,
    pub intercept: f32,
    pub iterations: usize,
}

impl LogisticModel {
    /// The logit of one row.
    pub fn raw(&self, row: &[f32]) -> f64 {
        let mut sum = f64::from(self.intercept);
        for (j, &x) in row.iter().enumerate() {
            if !x.is_nan() {
                let z = (x - self.means[j]) * self.scales[j];
                sum += f64::from(self.coefficients[j]) * f64::from(z);
            }
        }
        let width = row.len();
        for (k, &j) in self.indicators.iter().enumerate() {
            if row[j].is_nan() {
                sum += f64::from(self.coefficients[width + k]);
            }
        }
        sum
    }

    pub fn predict(&self, matrix: &Matrix) -> Vec<f64> {
        (0..matrix.len())
            .map(|i| sigmoid(self.raw(matrix.row(i))))
            .collect()
    }

    /// Folds `sigmoid(a * logit + b)` (calibration) into the parameters.
    pub fn calibrate(&mut self, a: f64, b: f64) {
        for c in &mut self.coefficients {
            *c = (f64::from(*c) * a) as f32;
        }
        self.intercept = (f64::from(self.intercept) * a + b) as f32;
    }
}

pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Standardisation and indicator layout from the fit rows.
struct Design {
    means: Vec<f64>,
    scales: Vec<f64>,
    indicators: Vec<usize>,
    /// Coefficients + intercept.
    dim: usize,
}

impl Design {
    fn of(matrix: &Matrix) -> Self {
        let width = matrix.width;
        let mut means = vec![0.0; width];
        let mut scales = vec![1.0; width];
        let mut indicators = Vec::new();
        for j in 0..width {
            let (mut n, mut sum, mut sq, mut missing) = (0u64, 0.0f64, 0.0f64, 0u64);
            for x in matrix.column(j) {
                if x.is_nan() {
                    missing += 1;
                } else {
                    n += 1;
                    sum += f64::from(x);
                }
            }
            let mean = if n > 0 { sum / n as f64 } else { 0.0 };
            for x in matrix.column(j).filter(|x| !x.is_nan()) {
                sq += (f64::from(x) - mean).powi(2);
            }
            let sd = if n > 1 { (sq / n as f64).sqrt() } else { 0.0 };
            // Keep the rounded values: the exported model holds float32.
            means[j] = f64::from(mean as f32);
            scales[j] = if sd > 1e-12 {
                f64::from((1.0 / sd) as f32)
            } else {
                1.0
            };
            if missing > 0 {
                indicators.push(j);
            }
        }
        let dim = width + indicators.len() + 1;
        Self {
            means,
            scales,
            indicators,
            dim,
        }
    }

    /// The design vector of a row (standardised values, indicators, 1).
    fn fill(&self, row: &[f32], z: &mut [f64]) {
        let width = row.len();
        for (j, &x) in row.iter().enumerate() {
            z[j] = if x.is_nan() {
                0.0
            } else {
                f64::from((x - self.means[j] as f32) * self.scales[j] as f32)
            };
        }
        for (k, &j) in self.indicators.iter().enumerate() {
            z[width + k] = if row[j].is_nan() { 1.0 } else { 0.0 };
        }
        z[self.dim - 1] = 1.0;
    }
}

struct Pass {
    loss: f64,
    gradient: Vec<f64>,
    /// Upper triangle, row-major `dim x dim`.
    hessian: Vec<f64>,
}

fn pass(design: &Design, matrix: &Matrix, weights: ClassWeights, beta: &[f64], full: bool) -> Pass {
    let dim = design.dim;
    let parts = parallel::map_parts(matrix.len(), |range| {
        let mut z = vec![0.0; dim];
        let mut out = Pass {
            loss: 0.0,
            gradient: if full { vec![0.0; dim] } else { Vec::new() },
            hessian: if full {
                vec![0.0; dim * dim]
            } else {
                Vec::new()
            },
        };
        for i in range {
            design.fill(matrix.row(i), &mut z);
            let s: f64 = z.iter().zip(beta).map(|(a, b)| a * b).sum();
            let label = matrix.labels[i];
            let w = weights.of(label);
            let y = if label { 1.0 } else { 0.0 };
            // log(1 + e^s) - y s, computed without overflow.
            out.loss += w * (softplus(s) - y * s);
            if full {
                let p = sigmoid(s);
                let g = w * (p - y);
                let h = w * p * (1.0 - p);
                for j in 0..dim {
                    out.gradient[j] += g * z[j];
                    if z[j] != 0.0 {
                        let hz = h * z[j];
                        let row = &mut out.hessian[j * dim..(j + 1) * dim];
                        for k in j..dim {
                            row[k] += hz * z[k];
                        }
                    }
                }
            }
        }
        out
    });
    let mut total = Pass {
        loss: 0.0,
        gradient: vec![0.0; if full { dim } else { 0 }],
        hessian: vec![0.0; if full { dim * dim } else { 0 }],
    };
    for part in parts {
        total.loss += part.loss;
        for (a, b) in total.gradient.iter_mut().zip(&part.gradient) {
            *a += b;
        }
        for (a, b) in total.hessian.iter_mut().zip(&part.hessian) {
            *a += b;
        }
    }
    total
}

fn softplus(s: f64) -> f64 {
    if s > 0.0 {
        s + (-s).exp().ln_1p()
    } else {
        s.exp().ln_1p()
    }
}

/// Trains on `matrix` with class weights; `progress` is told each
/// iteration's objective.
pub fn train(matrix: &Matrix, weights: ClassWeights, params: &LinearParams) -> LogisticModel {
    let started = Instant::now();
    let design = Design::of(matrix);
    let dim = design.dim;
    let penalty =
        |beta: &[f64]| 0.5 * params.l2 * beta[..dim - 1].iter().map(|b| b * b).sum::<f64>();
    let mut beta = vec![0.0; dim];
    let mut iterations = 0;
    let mut current = pass(&design, matrix, weights, &beta, true);
    let mut objective = current.loss + penalty(&beta);
    for iteration in 1..=params.max_iterations {
        iterations = iteration;
        let mut gradient = current.gradient.clone();
        let mut hessian = current.hessian.clone();
        for j in 0..dim {
            for k in 0..j {
                hessian[j * dim + k] = hessian[k * dim + j];
            }
            if j < dim - 1 {
                gradient[j] += params.l2 * beta[j];
                hessian[j * dim + j] += params.l2;
            }
            hessian[j * dim + j] += 1e-9;
        }
        let Some(step) = solve_cholesky(&hessian, &gradient, dim) else {
            warn!(
                model = "logistic_regression",
                iteration, "the Newton system is singular; stopping early"
            );
            break;
        };
        // Damped Newton: halve the step until the objective decreases.
        let mut t = 1.0;
        let mut accepted = None;
        for _ in 0..20 {
            let candidate: Vec<f64> = beta.iter().zip(&step).map(|(b, s)| b - t * s).collect();
            let next = pass(&design, matrix, weights, &candidate, false).loss + penalty(&candidate);
            if next <= objective {
                accepted = Some((candidate, next));
                break;
            }
            t *= 0.5;
        }
        let Some((candidate, next)) = accepted else {
            warn!(
                model = "logistic_regression",
                iteration, "no step lowers the objective; stopping early"
            );
            break;
        };
        let max_step = step.iter().map(|s| (t * s).abs()).fold(0.0, f64::max);
        let improvement = objective - next;
        beta = candidate;
        objective = next;
        info!(
            model = "logistic_regression",
            iteration, objective, max_step, "newton iteration"
        );
        if max_step < 1e-8 || improvement <= 1e-12 * objective.abs() {
            break;
        }
        current = pass(&design, matrix, weights, &beta, true);
    }
    info!(
        model = "logistic_regression",
        iterations,
        seconds = started.elapsed().as_secs_f64(),
        "trained"
    );
    LogisticModel {
        means: design.means.iter().map(|m| *m as f32).collect(),
        scales: design.scales.iter().map(|s| *s as f32).collect(),
        coefficients: beta[..dim - 1].iter().map(|b| *b as f32).collect(),
        intercept: beta[dim - 1] as f32,
        indicators: design.indicators,
        iterations,
    }
}

/// Solves `A x = b` for a symmetric positive definite `A` (`n x n`).
pub fn solve_cholesky(a: &[f64], b: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut sum = a[i * n + j];
            for k in 0..j {
                sum -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if sum <= 0.0 {
                    return None;
                }
                l[i * n + i] = sum.sqrt();
            } else {
                l[i * n + j] = sum / l[j * n + j];
            }
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        let mut sum = b[i];
        for k in 0..i {
            sum -= l[i * n + k] * y[k];
        }
        y[i] = sum / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let mut sum = y[i];
        for k in i + 1..n {
            sum -= l[k * n + i] * x[k];
        }
        x[i] = sum / l[i * n + i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// y = 1 exactly when x0 > 0; x1 is noise with unknown values.
    fn separable(n: usize) -> Matrix {
        let mut values = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n {
            let x0 = (i as f32 / n as f32) * 4.0 - 2.0;
            let x1 = if i % 7 == 0 {
                f32::NAN
            } else {
                (i % 13) as f32
            };
            values.extend([x0, x1]);
            labels.push(x0 > 0.3 || (i % 11 == 0));
        }
        Matrix {
            width: 2,
            values,
            labels,
            gold_rows: (0..n as u32).collect(),
        }
    }

    #[test]
    fn learns_the_sign_and_handles_unknown_values() {
        let matrix = separable(2_000);
        let model = train(
            &matrix,
            ClassWeights::balanced(&matrix),
            &LinearParams::default(),
        );
        assert!(model.coefficients[0] > 1.0, "{model:?}");
        assert_eq!(model.indicators, vec![1]);
        let p = model.predict(&matrix);
        assert!(p.iter().all(|p| p.is_finite()));
        assert!(p[1_999] > 0.9 && p[0] < 0.2, "{} {}", p[1_999], p[0]);
    }

    #[test]
    fn cholesky_solves_a_small_system() {
        let a = [4.0, 2.0, 2.0, 3.0];
        let x = solve_cholesky(&a, &[2.0, 1.0], 2).expect("spd");
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12, "{x:?}");
    }
}
