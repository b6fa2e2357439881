//! Churn scores of feature rows by a served model: each row becomes the
//! model's input through `libs/features` ([`InputLayout`], the columns the
//! model names in its `features` metadata), exactly as the trainer built its
//! training rows, and the positive-class probability is read back.

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use mlops_features::{FeatureRow, InputLayout};
use mlops_onnx::FEATURES_METADATA_KEY;
use mlops_onnx::model::{DataType, NamedTensor, TensorData};

use crate::models::LoadedVersion;
use crate::online::FeatureTable;
use crate::serving::ApiError;

/// Rows scored per ONNX Runtime call when ranking the whole table.
const CHUNK: usize = 4096;

/// How a model is fed and read: its input, layout and probability output.
struct Binding {
    input: String,
    layout: InputLayout,
    probabilities: String,
}

fn not_a_churn_model(loaded: &LoadedVersion, why: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "model {:?} version {} cannot score feature rows: {why}",
            loaded.model_name, loaded.version
        ),
    )
}

fn binding(loaded: &LoadedVersion) -> Result<Binding, ApiError> {
    let model = &loaded.model;
    let [input] = model.inputs() else {
        return Err(not_a_churn_model(
            loaded,
            "it does not have exactly one input",
        ));
    };
    if input.datatype != DataType::Fp32 {
        return Err(not_a_churn_model(loaded, "its input is not FP32"));
    }
    let names: Vec<String> = model
        .metadata_value(FEATURES_METADATA_KEY)
        .ok_or_else(|| {
            not_a_churn_model(
                loaded,
                &format!("it has no {FEATURES_METADATA_KEY:?} metadata naming its input columns"),
            )
        })
        .and_then(|raw| {
            serde_json::from_str(raw).map_err(|e| {
                not_a_churn_model(
                    loaded,
                    &format!("its {FEATURES_METADATA_KEY:?} metadata: {e}"),
                )
            })
        })?;
    let layout = InputLayout::new(&names).map_err(|e| not_a_churn_model(loaded, &e))?;
    let probabilities = crate::monitor::probability_output(model)
        .ok_or_else(|| not_a_churn_model(loaded, "it has no probabilities output"))?
        .to_string();
    Ok(Binding {
        input: input.name.clone(),
        layout,
        probabilities,
    })
}

/// How `loaded` turns a feature row into its input columns.
pub fn input_layout(loaded: &LoadedVersion) -> Result<InputLayout, ApiError> {
    binding(loaded).map(|b| b.layout)
}

/// Positive-class probabilities of `rows`, in order.
pub fn score(loaded: &LoadedVersion, rows: &[&FeatureRow]) -> Result<Vec<f32>, ApiError> {
    score_observed(loaded, rows, |_, _, _| {})
}

/// [`score`], also handing each scored chunk's model input (row-major, the
/// layout's width per row) and scores to `observe`.
pub fn score_observed(
    loaded: &LoadedVersion,
    rows: &[&FeatureRow],
    mut observe: impl FnMut(usize, &[f32], &[f32]),
) -> Result<Vec<f32>, ApiError> {
    let binding = binding(loaded)?;
    let width = binding.layout.width();
    let mut scores = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(CHUNK) {
        let mut values = Vec::with_capacity(chunk.len() * width);
        for row in chunk {
            binding.layout.encode(row, &mut values);
        }
        let input = NamedTensor {
            name: binding.input.clone(),
            shape: vec![chunk.len(), width],
            data: TensorData::Fp32(values.clone()),
        };
        let outputs = loaded
            .model
            .run(vec![input], std::slice::from_ref(&binding.probabilities))
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let output = outputs.into_iter().next();
        match output {
            Some(NamedTensor {
                shape,
                data: TensorData::Fp32(p),
                ..
            }) if shape.len() == 2 && shape[0] == chunk.len() && shape[1] >= 2 => {
                let start = scores.len();
                scores.extend(p.chunks(shape[1]).map(|pair| pair[1]));
                observe(width, &values, &scores[start..]);
            }
            other => {
                return Err(not_a_churn_model(
                    loaded,
                    &format!(
                        "{:?} is not an FP32 [rows, 2] tensor (got shape {:?})",
                        binding.probabilities,
                        other.map(|o| o.shape)
                    ),
                ));
            }
        }
    }
    Ok(scores)
}

/// Every current (not churned) subscriber of a table with its score,
/// highest first, for one model version and table version.
pub struct Ranking {
    pub model_version: i64,
    pub model_sha256: String,
    pub table_version: u64,
    /// (row index in the table, score), highest score first.
    pub ranked: Vec<(usize, f32)>,
}

/// The last ranking, reused until the model or the table changes.
#[derive(Default)]
pub struct RankingCache(Mutex<Option<Arc<Ranking>>>);

impl RankingCache {
    pub fn get(
        &self,
        loaded: &LoadedVersion,
        table: &FeatureTable,
    ) -> Result<Arc<Ranking>, ApiError> {
        let fresh = |r: &Ranking| {
            r.model_version == loaded.version
                && r.model_sha256 == loaded.sha256
                && r.table_version == table.version
        };
        if let Some(ranking) = self.0.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
            && fresh(ranking)
        {
            return Ok(ranking.clone());
        }
        let current: Vec<usize> = (0..table.rows.len())
            .filter(|&i| !table.rows[i].churned)
            .collect();
        let rows: Vec<&FeatureRow> = current.iter().map(|&i| &table.rows[i]).collect();
        let scores = score(loaded, &rows)?;
        let mut ranked: Vec<(usize, f32)> = current.into_iter().zip(scores).collect();
        // Highest first; ties (and NaN, last) by subscriber id for a stable order.
        ranked.sort_by(|a, b| {
            b.1.partial_cmp(&a.1)
                .unwrap_or_else(|| a.1.is_nan().cmp(&b.1.is_nan()))
                .then(a.0.cmp(&b.0))
        });
        let ranking = Arc::new(Ranking {
            model_version: loaded.version,
            model_sha256: loaded.sha256.clone(),
            table_version: table.version,
            ranked,
        });
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(ranking.clone());
        Ok(ranking)
    }
}
