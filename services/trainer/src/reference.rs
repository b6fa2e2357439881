//! Reference distributions of a model's inputs and score on its training
//! rows, so the gateway can measure drift against what the model learnt on.
//!
//! Stored in the ONNX file's `metadata_props` under
//! [`REFERENCE_METADATA_KEY`] as JSON:
//!
//! ```json
//! {"format": 1, "rows": 123456,
//!  "columns": [{"name": "calls_7d", "edges": [3.0, 7.0], "counts": [10, 20, 5], "missing": 0}],
//!  "score": {"name": "score", "edges": [0.1, ..., 0.9], "counts": [...], "missing": 0}}
//! ```
//!
//! Bin `i` holds the values `v` with `edges[i-1] <= v < edges[i]` (the first
//! bin is everything below `edges[0]`, the last everything from the last
//! edge up); unknown values are counted in `missing`. Input columns use up
//! to ten quantile bins of the training rows; the score uses ten fixed bins.

use serde::{Deserialize, Serialize};

use crate::matrix::Matrix;

pub const REFERENCE_METADATA_KEY: &str = "reference_distribution";
const QUANTILE_BINS: usize = 10;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub name: String,
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
    pub missing: u64,
}

impl Histogram {
    fn count(name: &str, edges: Vec<f64>, values: impl Iterator<Item = f64>) -> Self {
        let mut counts = vec![0u64; edges.len() + 1];
        let mut missing = 0;
        for v in values {
            if v.is_nan() {
                missing += 1;
            } else {
                counts[edges.partition_point(|e| *e <= v)] += 1;
            }
        }
        Self {
            name: name.to_string(),
            edges,
            counts,
            missing,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    pub format: u32,
    pub rows: u64,
    pub columns: Vec<Histogram>,
    pub score: Histogram,
}

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
