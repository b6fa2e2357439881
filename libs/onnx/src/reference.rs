//! Reference distributions: how a model's inputs and score were distributed
//! on its training rows, stored with the model so whoever serves it can
//! measure drift against what it learnt on. The trainer writes them; the
//! gateway compares live traffic with them.
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
//! edge up); unknown values are counted in `missing`.

use serde::{Deserialize, Serialize};

pub const REFERENCE_METADATA_KEY: &str = "reference_distribution";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub name: String,
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
    pub missing: u64,
}

impl Histogram {
    /// Counts `values` into the bins of `edges`.
    pub fn count(name: &str, edges: Vec<f64>, values: impl Iterator<Item = f64>) -> Self {
        let mut counts = vec![0u64; edges.len() + 1];
        let mut missing = 0;
        for v in values {
            match bin(&edges, v) {
                Some(i) => counts[i] += 1,
                None => missing += 1,
            }
        }
        Self {
            name: name.to_string(),
            edges,
            counts,
            missing,
        }
    }

    /// The bin `v` falls in; `None` for an unknown (NaN) value.
    pub fn bin(&self, v: f64) -> Option<usize> {
        bin(&self.edges, v)
    }
}

fn bin(edges: &[f64], v: f64) -> Option<usize> {
    (!v.is_nan()).then(|| edges.partition_point(|e| *e <= v))
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    pub format: u32,
    pub rows: u64,
    pub columns: Vec<Histogram>,
    pub score: Histogram,
}

impl Reference {
    /// The reference stored in a model's metadata, if it has one.
    pub fn from_metadata(metadata: &[(String, String)]) -> Option<Result<Self, String>> {
        let (_, raw) = metadata.iter().find(|(k, _)| k == REFERENCE_METADATA_KEY)?;
        Some(
            serde_json::from_str(raw).map_err(|e| {
                format!("{REFERENCE_METADATA_KEY} is not a reference distribution: {e}")
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_follow_the_edges_and_unknowns_stay_apart() {
        let h = Histogram::count(
            "x",
            vec![1.0, 2.0],
            [0.5, 1.0, 1.5, 2.0, 9.0, f64::NAN].into_iter(),
        );
        assert_eq!(h.counts, vec![1, 2, 2]);
        assert_eq!(h.missing, 1);
        assert_eq!(h.bin(1.99), Some(1));
        assert_eq!(h.bin(f64::NAN), None);
        let reference = Reference {
            format: 1,
            rows: 6,
            columns: vec![h.clone()],
            score: h,
        };
        let metadata = vec![(
            REFERENCE_METADATA_KEY.to_string(),
            serde_json::to_string(&reference).expect("json"),
        )];
        assert_eq!(Reference::from_metadata(&metadata), Some(Ok(reference)));
        assert!(Reference::from_metadata(&[]).is_none());
    }
}
