//! Test-period metrics of a model's probabilities, and Platt calibration.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::linear::{sigmoid, solve_cholesky};

/// Equal-width probability bins of the calibration table and ECE.
pub const CALIBRATION_BINS: usize = 10;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CalibrationBin {
    pub lower: f64,
    pub upper: f64,
    pub count: u64,
    pub mean_predicted: f64,
    pub observed_rate: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Metrics {
    pub rows: u64,
    pub positives: u64,
    pub roc_auc: f64,
    pub pr_auc: f64,
    pub log_loss: f64,
    pub brier: f64,
    /// Expected calibration error over [`CALIBRATION_BINS`] bins.
    pub ece: f64,
    pub top_decile_precision: f64,
    /// Top-decile precision over the base rate.
    pub top_decile_lift: f64,
    pub calibration: Vec<CalibrationBin>,
}

impl Metrics {
    /// Flat `test_*` entries for the registry (calibration table included,
    /// as `test_calibration_<bin>_{count,mean_predicted,observed_rate}`).
    pub fn to_map(&self) -> BTreeMap<String, f64> {
        let mut map = BTreeMap::from([
            ("test_rows".to_string(), self.rows as f64),
            ("test_positives".to_string(), self.positives as f64),
            ("test_roc_auc".to_string(), self.roc_auc),
            ("test_pr_auc".to_string(), self.pr_auc),
            ("test_log_loss".to_string(), self.log_loss),
            ("test_brier".to_string(), self.brier),
            ("test_ece".to_string(), self.ece),
            (
                "test_top_decile_precision".to_string(),
                self.top_decile_precision,
            ),
            ("test_top_decile_lift".to_string(), self.top_decile_lift),
        ]);
        for (i, bin) in self.calibration.iter().enumerate() {
            map.insert(format!("test_calibration_{i}_count"), bin.count as f64);
            map.insert(
                format!("test_calibration_{i}_mean_predicted"),
                bin.mean_predicted,
            );
            map.insert(
                format!("test_calibration_{i}_observed_rate"),
                bin.observed_rate,
            );
        }
        map
    }
}

/// Every metric of `probabilities` against `labels`.
pub fn evaluate(probabilities: &[f64], labels: &[bool]) -> Metrics {
    let n = labels.len();
    let positives = labels.iter().filter(|l| **l).count();
    let mut log_loss = 0.0;
    let mut brier = 0.0;
    for (&p, &label) in probabilities.iter().zip(labels) {
        let y = if label { 1.0 } else { 0.0 };
        let clipped = p.clamp(1e-15, 1.0 - 1e-15);
        log_loss -= y * clipped.ln() + (1.0 - y) * (1.0 - clipped).ln();
        brier += (p - y).powi(2);
    }
    let denominator = n.max(1) as f64;
    let calibration = calibration_table(probabilities, labels);
    let ece = calibration
        .iter()
        .map(|b| b.count as f64 / denominator * (b.mean_predicted - b.observed_rate).abs())
        .sum();
    let (precision, lift) = top_decile(probabilities, labels);
    Metrics {
        rows: n as u64,
        positives: positives as u64,
        roc_auc: roc_auc(probabilities, labels),
        pr_auc: average_precision(probabilities, labels),
        log_loss: log_loss / denominator,
        brier: brier / denominator,
        ece,
        top_decile_precision: precision,
        top_decile_lift: lift,
        calibration,
    }
}

/// Indices by descending score (ties keep their order).
fn by_score_desc(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

/// Area under the ROC curve; tied scores count half (Mann-Whitney).
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> f64 {
    let order = by_score_desc(scores);
    let positives = labels.iter().filter(|l| **l).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return f64::NAN;
    }
    // Walk groups of equal score from the top; each negative ranks below
    // the positives seen before its group and ties with its group's.
    let (mut above, mut area, mut i) = (0.0, 0.0, 0);
    while i < order.len() {
        let mut j = i;
        let (mut group_pos, mut group_neg) = (0.0, 0.0);
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            if labels[order[j]] {
                group_pos += 1.0;
            } else {
                group_neg += 1.0;
            }
            j += 1;
        }
        area += group_neg * (above + group_pos / 2.0);
        above += group_pos;
        i = j;
    }
    area / (positives * negatives)
}

/// Average precision (the PR curve's area as scikit-learn computes it).
pub fn average_precision(scores: &[f64], labels: &[bool]) -> f64 {
    let order = by_score_desc(scores);
    let positives = labels.iter().filter(|l| **l).count() as f64;
    if positives == 0.0 {
        return f64::NAN;
    }
    let (mut tp, mut seen, mut ap, mut i) = (0.0, 0.0, 0.0, 0);
    while i < order.len() {
        let mut j = i;
        let mut group_tp = 0.0;
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            group_tp += f64::from(u8::from(labels[order[j]]));
            j += 1;
        }
        tp += group_tp;
        seen += (j - i) as f64;
        ap += group_tp / positives * (tp / seen);
        i = j;
    }
    ap
}

fn top_decile(scores: &[f64], labels: &[bool]) -> (f64, f64) {
    if labels.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let order = by_score_desc(scores);
    let k = labels.len().div_ceil(10);
    let hits = order[..k].iter().filter(|&&i| labels[i]).count() as f64;
    let precision = hits / k as f64;
    let base = labels.iter().filter(|l| **l).count() as f64 / labels.len() as f64;
    (
        precision,
        if base > 0.0 {
            precision / base
        } else {
            f64::NAN
        },
    )
}

fn calibration_table(probabilities: &[f64], labels: &[bool]) -> Vec<CalibrationBin> {
    let mut count = [0u64; CALIBRATION_BINS];
    let mut predicted = [0.0f64; CALIBRATION_BINS];
    let mut observed = [0.0f64; CALIBRATION_BINS];
    for (&p, &label) in probabilities.iter().zip(labels) {
        let bin = ((p * CALIBRATION_BINS as f64) as usize).min(CALIBRATION_BINS - 1);
        count[bin] += 1;
        predicted[bin] += p;
        observed[bin] += f64::from(u8::from(label));
    }
    (0..CALIBRATION_BINS)
        .map(|b| {
            let n = count[b].max(1) as f64;
            CalibrationBin {
                lower: b as f64 / CALIBRATION_BINS as f64,
                upper: (b + 1) as f64 / CALIBRATION_BINS as f64,
                count: count[b],
                mean_predicted: if count[b] > 0 { predicted[b] / n } else { 0.0 },
                observed_rate: if count[b] > 0 { observed[b] / n } else { 0.0 },
            }
        })
        .collect()
}

/// Platt scaling: `(a, b)` minimising the log loss of `sigmoid(a * raw + b)`
/// on held-out rows (Newton's method on two parameters).
pub fn platt(raw: &[f64], labels: &[bool]) -> (f64, f64) {
    let loss = |a: f64, b: f64| -> f64 {
        raw.iter()
            .zip(labels)
            .map(|(&s, &label)| {
                let z = a * s + b;
                let softplus = if z > 0.0 {
                    z + (-z).exp().ln_1p()
                } else {
                    z.exp().ln_1p()
                };
                softplus - if label { z } else { 0.0 }
            })
            .sum()
    };
    let (mut a, mut b) = (1.0, 0.0);
    let mut current = loss(a, b);
    for _ in 0..100 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-9, 0.0, 1e-9);
        for (&s, &label) in raw.iter().zip(labels) {
            let p = sigmoid(a * s + b);
            let d = p - f64::from(u8::from(label));
            let w = p * (1.0 - p);
            ga += d * s;
            gb += d;
            haa += w * s * s;
            hab += w * s;
            hbb += w;
        }
        let Some(step) = solve_cholesky(&[haa, hab, hab, hbb], &[ga, gb], 2) else {
            break;
        };
        // Damped: Newton overshoots where the sigmoid saturates.
        let mut t = 1.0;
        let mut moved = false;
        for _ in 0..30 {
            let (na, nb) = (a - t * step[0], b - t * step[1]);
            let next = loss(na, nb);
            if next <= current {
                (a, b, current, moved) = (na, nb, next, true);
                break;
            }
            t *= 0.5;
        }
        if !moved || (t * step[0]).abs().max((t * step[1]).abs()) < 1e-10 {
            break;
        }
    }
    if a.is_finite() && b.is_finite() {
        (a, b)
    } else {
        (1.0, 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_half_and_matches_a_hand_count() {
        let labels = [true, false, true, false, false];
        let scores = [0.9, 0.8, 0.7, 0.7, 0.1];
        // Pairs (pos, neg): (0.9 > all 3) + (0.7 > 0.1, = 0.7 half, < 0.8) = 3 + 1.5.
        assert!((roc_auc(&scores, &labels) - 4.5 / 6.0).abs() < 1e-12);
        assert!(roc_auc(&[0.1, 0.2], &[true, true]).is_nan());
    }

    #[test]
    fn average_precision_of_a_known_ranking() {
        // Ranking: P N P N -> AP = (1/1 + 2/3) / 2.
        let ap = average_precision(&[0.9, 0.8, 0.7, 0.6], &[true, false, true, false]);
        assert!((ap - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-12, "{ap}");
    }

    #[test]
    fn perfectly_calibrated_bins_have_no_error() {
        let mut p = Vec::new();
        let mut y = Vec::new();
        for i in 0..1_000 {
            p.push(0.25);
            y.push(i % 4 == 0);
        }
        let m = evaluate(&p, &y);
        assert!(m.ece < 1e-12, "{}", m.ece);
        assert_eq!(m.calibration[2].count, 1_000);
        assert!((m.brier - 0.1875).abs() < 1e-12);
        assert!((m.top_decile_lift - 1.0).abs() < 1e-12);
    }

    #[test]
    fn platt_recovers_a_known_scale_and_shift() {
        let mut raw = Vec::new();
        let mut labels = Vec::new();
        let mut state = 7u64;
        for i in 0..20_000 {
            let s = (i % 200) as f64 / 20.0 - 5.0;
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            raw.push(s);
            labels.push(u < sigmoid(0.5 * s - 1.0));
        }
        let (a, b) = platt(&raw, &labels);
        assert!((a - 0.5).abs() < 0.05 && (b + 1.0).abs() < 0.1, "{a} {b}");
    }
}
