//! The model input: `libs/features`' columns in its order, then region and
//! plan one-hot (`region=<value>`, `plan=<value>`, vocabularies sorted), as
//! `mlops_features::input` defines them for the gateway too. An unknown or
//! new category is all zeros; an unknown number is NaN.

use mlops_features::FEATURES;
use mlops_features::input::{self, plan_column, region_column};
use sha2::{Digest, Sha256};

use crate::dataset::{Example, FEATURE_COUNT, Role, Snapshot};

/// Model input column names, in order.
pub fn columns(snapshot: &Snapshot) -> Vec<String> {
    let mut names: Vec<String> = FEATURES.iter().map(|f| f.name.to_string()).collect();
    names.extend(snapshot.regions.iter().map(|r| region_column(r)));
    names.extend(snapshot.plans.iter().map(|p| plan_column(p)));
    names
}

/// A short, stable hash of the column list (a model tag).
pub fn feature_set_hash(columns: &[String]) -> String {
    let mut hasher = Sha256::new();
    for column in columns {
        hasher.update(column.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(&hasher.finalize()[..8])
}

/// Rows of model input, row-major, with labels.
#[derive(Clone, Debug, Default)]
pub struct Matrix {
    pub width: usize,
    pub values: Vec<f32>,
    pub labels: Vec<bool>,
    /// Index of each row's gold row in the snapshot.
    pub gold_rows: Vec<u32>,
}

impl Matrix {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.width..(i + 1) * self.width]
    }
    pub fn positives(&self) -> usize {
        self.labels.iter().filter(|l| **l).count()
    }
    pub fn column(&self, j: usize) -> impl Iterator<Item = f32> + '_ {
        self.values.iter().skip(j).step_by(self.width).copied()
    }
}

/// The matrix of the examples with `role`.
pub fn build(snapshot: &Snapshot, examples: &[Example], role: Role) -> Matrix {
    let width = FEATURE_COUNT + snapshot.regions.len() + snapshot.plans.len();
    let selected: Vec<&Example> = examples.iter().filter(|e| e.role == role).collect();
    let mut values = Vec::with_capacity(selected.len() * width);
    let mut labels = Vec::with_capacity(selected.len());
    let mut gold_rows = Vec::with_capacity(selected.len());
    for example in selected {
        let row = &snapshot.rows[example.row as usize];
        values.extend_from_slice(&row.features);
        let start = values.len();
        values.resize(start + snapshot.regions.len() + snapshot.plans.len(), 0.0);
        if let Some(region) = row.region {
            values[start + region as usize] = 1.0;
        }
        if let Some(plan) = row.plan {
            values[start + snapshot.regions.len() + plan as usize] = 1.0;
        }
        labels.push(example.label);
        gold_rows.push(example.row);
    }
    Matrix {
        width,
        values,
        labels,
        gold_rows,
    }
}

/// Per-class sample weights that make both classes weigh half of the total.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassWeights {
    pub positive: f64,
    pub negative: f64,
}

impl ClassWeights {
    pub fn balanced(matrix: &Matrix) -> Self {
        let n = matrix.len() as f64;
        let positives = matrix.positives().max(1) as f64;
        let negatives = (matrix.len() - matrix.positives()).max(1) as f64;
        Self {
            positive: n / (2.0 * positives),
            negative: n / (2.0 * negatives),
        }
    }
    pub fn of(&self, label: bool) -> f64 {
        if label { self.positive } else { self.negative }
    }
}

/// The matrix of the examples with `role` for a model whose input columns
/// are `names` (e.g. a champion trained on another vocabulary): each name
/// is a feature, `region=<value>` or `plan=<value>`. A name gold cannot
/// provide is an error naming it.
pub fn build_named(
    snapshot: &Snapshot,
    examples: &[Example],
    role: Role,
    names: &[String],
) -> Result<Matrix, String> {
    enum Source {
        Feature(usize),
        Region(Option<u16>),
        Plan(Option<u16>),
    }
    let index_of = |vocabulary: &[String], value: &str| {
        vocabulary.iter().position(|v| v == value).map(|i| i as u16)
    };
    let sources = names
        .iter()
        .map(|name| {
            Ok(match input::Source::of(name)? {
                input::Source::Feature(i) => Source::Feature(i),
                input::Source::Region(value) => Source::Region(index_of(&snapshot.regions, &value)),
                input::Source::Plan(value) => Source::Plan(index_of(&snapshot.plans, &value)),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let mut matrix = Matrix {
        width: names.len(),
        ..Matrix::default()
    };
    for example in examples.iter().filter(|e| e.role == role) {
        let row = &snapshot.rows[example.row as usize];
        matrix
            .values
            .extend(sources.iter().map(|source| match source {
                Source::Feature(i) => row.features[*i],
                Source::Region(value) => {
                    f32::from(u8::from(value.is_some() && row.region == *value))
                }
                Source::Plan(value) => f32::from(u8::from(value.is_some() && row.plan == *value)),
            }));
        matrix.labels.push(example.label);
        matrix.gold_rows.push(example.row);
    }
    Ok(matrix)
}
