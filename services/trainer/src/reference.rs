//! The reference distributions of a model's inputs and score on its fit
//! rows (`mlops_onnx::reference` defines the format; the gateway reads it):
//! input columns use up to ten quantile bins of the training rows, the score
//! ten fixed bins.

pub use mlops_onnx::reference::{Histogram, REFERENCE_METADATA_KEY, Reference};

use crate::matrix::Matrix;

const QUANTILE_BINS: usize = 10;

/// The distributions of `matrix`'s columns (named `columns`) and of
/// `scores` (probabilities of the same rows).
pub fn build(matrix: &Matrix, columns: &[String], scores: &[f64]) -> Reference {
    let histograms = columns
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let mut values: Vec<f64> = matrix
                .column(j)
                .filter(|v| !v.is_nan())
                .map(f64::from)
                .collect();
            values.sort_by(f64::total_cmp);
            let mut edges: Vec<f64> = (1..QUANTILE_BINS)
                .filter_map(|q| values.get(q * values.len() / QUANTILE_BINS).copied())
                .collect();
            edges.dedup();
            Histogram::count(name, edges, matrix.column(j).map(f64::from))
        })
        .collect();
    let score_edges = (1..10).map(|i| f64::from(i) / 10.0).collect();
    Reference {
        format: 1,
        rows: matrix.len() as u64,
        columns: histograms,
        score: Histogram::count("score", score_edges, scores.iter().copied()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_row_once_with_unknowns_apart() {
        let values: Vec<f32> = (0..100)
            .map(|i| if i % 10 == 0 { f32::NAN } else { i as f32 })
            .collect();
        let matrix = Matrix {
            width: 1,
            values,
            labels: vec![false; 100],
            gold_rows: vec![0; 100],
        };
        let scores: Vec<f64> = (0..100).map(|i| f64::from(i) / 100.0).collect();
        let r = build(&matrix, &["x".to_string()], &scores);
        let column = &r.columns[0];
        assert_eq!(column.missing, 10);
        assert_eq!(column.counts.iter().sum::<u64>(), 90);
        assert_eq!(column.counts.len(), column.edges.len() + 1);
        assert_eq!(r.score.counts, vec![10; 10]);
        let json = serde_json::to_string(&r).expect("json");
        assert_eq!(serde_json::from_str::<Reference>(&json).expect("parse"), r);
    }
}
