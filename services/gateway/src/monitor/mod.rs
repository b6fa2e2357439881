//! Prediction monitoring: what each served version predicts and how far
//! its live inputs have drifted from what it learnt on.
//!
//! Every scored row of a model with one FP32 `[rows, F]` input and a
//! positive-class probability output is
//! - counted in `gateway_prediction_score` (a histogram per model and version),
//! - added to the version's [`DriftWindow`] when the model carries the
//!   trainer's reference distribution: the PSI of each input column and of
//!   the score is computed at every scrape (`gateway_drift_feature_psi`,
//!   `gateway_drift_score_psi`),
//! - and written to the prediction log ([`log`], Kafka `predictions.v1`).
//!
//! The churn API's at-risk ranking scores the whole table in one batch per
//! model and table version; it is a view of the table, not requests, so it
//! is not monitored.

pub mod drift;
pub mod log;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use mlops_onnx::model::{DataType, Model, NamedTensor, TensorData};
use mlops_onnx::reference::Reference;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, linear_buckets};
use prometheus_client::registry::Registry;

use crate::metrics::{Labels, Protocol};
use crate::models::{LoadedVersion, ModelStore};
use drift::DriftWindow;
use log::{Entry, PredictionLog};

/// Output names that hold class probabilities, in order of preference: the
/// trainer's, then skl2onnx's. Otherwise a model's second output is taken.
const PROBABILITY_OUTPUTS: [&str; 2] = ["probabilities", "output_probability"];

/// The output of `model` holding class probabilities, if it has one.
pub fn probability_output(model: &Model) -> Option<&str> {
    let outputs: Vec<&str> = model.outputs().map(|o| o.name.as_str()).collect();
    PROBABILITY_OUTPUTS
        .into_iter()
        .find(|name| outputs.contains(name))
        .or_else(|| outputs.get(1).copied())
}

/// The positive-class probabilities in a `[rows, 2]` FP32 tensor.
pub fn positive_class(tensor: &NamedTensor) -> Option<Vec<f32>> {
    match (&tensor.shape[..], &tensor.data) {
        ([rows, 2], TensorData::Fp32(p)) if p.len() == rows * 2 => {
            Some(p.chunks_exact(2).map(|pair| pair[1]).collect())
        }
        _ => None,
    }
}

/// The header (HTTP) or metadata key (gRPC) a caller names its request by.
pub const REQUEST_ID: &str = "x-request-id";

/// Who asked for a batch of predictions.
pub struct RequestContext<'a> {
    /// The request's id, shared by its predictions.
    pub request_id: &'a str,
    pub protocol: Protocol,
    /// The subscriber of each row (the churn API), or empty.
    pub subscribers: &'a [&'a str],
    /// The online features' Delta version (0 when the caller sent inputs).
    pub features_version: u64,
}

/// The request id to log: the caller's own (the protocol's `id`, or the
/// `x-request-id` header), or a fresh one.
pub fn request_id(given: Option<&str>, header: Option<&str>) -> String {
    given
        .filter(|id| !id.is_empty())
        .or(header.filter(|id| !id.is_empty()))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string)
}

/// A served version's drift state.
enum Tracked {
    Window(DriftWindow),
    /// The model has no usable reference: nothing to compare with.
    Untracked,
}

pub struct Monitor {
    store: Arc<ModelStore>,
    window_rows: usize,
    windows: Mutex<HashMap<(String, i64), Tracked>>,
    scores: Family<Labels, Histogram, fn() -> Histogram>,
    log: Option<PredictionLog>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("window_rows", &self.window_rows)
            .finish_non_exhaustive()
    }
}

fn score_histogram() -> Histogram {
    // Twentieths of the probability range.
    Histogram::new(linear_buckets(0.05, 0.05, 19))
}

fn version_labels(model: &str, version: i64) -> Labels {
    vec![
        ("model".into(), model.into()),
        ("version".into(), version.to_string()),
    ]
}

impl Monitor {
    /// A monitor keeping `window_rows` rows per version for drift, writing
    /// to `log` when given. Registers its metrics (the drift gauges are
    /// computed at each scrape).
    pub fn new(
        store: Arc<ModelStore>,
        window_rows: usize,
        log: Option<PredictionLog>,
        registry: &mut Registry,
    ) -> Arc<Self> {
        let monitor = Arc::new(Self {
            store,
            window_rows,
            windows: Mutex::default(),
            scores: Family::new_with_constructor(score_histogram),
            log,
        });
        registry.register(
            "gateway_prediction_score",
            "Predicted positive-class probabilities, by model and version",
            monitor.scores.clone(),
        );
        registry.register_collector(Box::new(monitor.clone()));
        monitor
    }

    pub fn log(&self) -> Option<&PredictionLog> {
        self.log.as_ref()
    }

    /// The single FP32 `[rows, F]` input of a request, copied, when
    /// `loaded` is a model the monitor can follow; `None` otherwise.
    pub fn watched_input(
        &self,
        loaded: &LoadedVersion,
        inputs: &[NamedTensor],
    ) -> Option<(usize, Vec<f32>)> {
        let model = &loaded.model;
        let ([spec], [input]) = (model.inputs(), inputs) else {
            return None;
        };
        if spec.datatype != DataType::Fp32 || probability_output(model).is_none() {
            return None;
        }
        match (&input.shape[..], &input.data) {
            ([rows, width], TensorData::Fp32(values)) if values.len() == rows * width => {
                Some((*width, values.clone()))
            }
            _ => None,
        }
    }

    /// The outputs' positive-class scores, when the probability output was
    /// among the outputs returned.
    pub fn scores_of(loaded: &LoadedVersion, outputs: &[NamedTensor]) -> Option<Vec<f32>> {
        let name = probability_output(&loaded.model)?;
        outputs
            .iter()
            .find(|o| o.name == name)
            .and_then(positive_class)
    }

    /// Records the rows `inputs` (each `width` values) scored `scores` by
    /// `loaded`, for `request`.
    pub fn observe(
        &self,
        loaded: &LoadedVersion,
        width: usize,
        inputs: &[f32],
        scores: &[f32],
        request: &RequestContext<'_>,
    ) {
        if width == 0 || inputs.len() != width * scores.len() {
            return;
        }
        let histogram = self
            .scores
            .get_or_create(&version_labels(&loaded.model_name, loaded.version));
        for &score in scores {
            histogram.observe(f64::from(score));
        }
        drop(histogram);
        self.track(loaded, width, inputs, scores);
        if let Some(log) = &self.log {
            for (i, (row, &score)) in inputs.chunks_exact(width).zip(scores).enumerate() {
                log.record(&Entry {
                    request_id: request.request_id,
                    subscriber_id: request.subscribers.get(i).copied().unwrap_or(""),
                    model_name: &loaded.model_name,
                    model_version: loaded.version,
                    score,
                    input: row,
                    source: request.protocol.as_str(),
                    features_version: request.features_version,
                });
            }
        }
    }

    fn windows(&self) -> MutexGuard<'_, HashMap<(String, i64), Tracked>> {
        self.windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn track(&self, loaded: &LoadedVersion, width: usize, inputs: &[f32], scores: &[f32]) {
        let key = (loaded.model_name.clone(), loaded.version);
        let mut windows = self.windows();
        if !windows.contains_key(&key) {
            // A new version is served: forget the ones that no longer are.
            let store = &self.store;
            windows.retain(|(model, version), _| store.versions(model).contains(version));
            windows.insert(key.clone(), self.tracked(loaded, width));
        }
        if let Some(Tracked::Window(window)) = windows.get_mut(&key) {
            for (row, &score) in inputs.chunks_exact(width).zip(scores) {
                window.observe(row, score);
            }
        }
    }

    fn tracked(&self, loaded: &LoadedVersion, width: usize) -> Tracked {
        let (model, version) = (&loaded.model_name, loaded.version);
        let reference = match Reference::from_metadata(loaded.model.metadata()) {
            Some(Ok(reference)) => reference,
            Some(Err(reason)) => {
                tracing::warn!(model, version, %reason, "no drift monitoring for this version");
                return Tracked::Untracked;
            }
            None => {
                tracing::info!(
                    model,
                    version,
                    "the model carries no reference distribution: no drift monitoring"
                );
                return Tracked::Untracked;
            }
        };
        let columns = reference.columns.len();
        match DriftWindow::new(reference, width, self.window_rows) {
            Some(window) => Tracked::Window(window),
            None => {
                tracing::warn!(
                    model,
                    version,
                    columns,
                    width,
                    "the reference distribution describes other columns than the input: no drift monitoring"
                );
                Tracked::Untracked
            }
        }
    }
}

impl Collector for Monitor {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let windows = self.windows();
        let live: Vec<(&(String, i64), &DriftWindow)> = windows
            .iter()
            .filter_map(|(key, tracked)| match tracked {
                Tracked::Window(window) if !window.is_empty() => Some((key, window)),
                _ => None,
            })
            .collect();
        let psi: Vec<_> = live.iter().map(|(key, w)| (*key, w.psi())).collect();
        {
            let mut family = encoder.encode_descriptor(
                "gateway_drift_feature_psi",
                "Population stability index of each input column: the live window against the model's reference",
                None,
                MetricType::Gauge,
            )?;
            for ((model, version), values) in &psi {
                let columns = &values[..values.len() - 1];
                for (feature, value) in columns {
                    let mut labels = version_labels(model, *version);
                    labels.push(("feature".into(), (*feature).to_string()));
                    ConstGauge::new(*value).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "gateway_drift_score_psi",
                "Population stability index of the score: the live window against the model's reference",
                None,
                MetricType::Gauge,
            )?;
            for ((model, version), values) in &psi {
                if let Some((_, value)) = values.last() {
                    let labels = version_labels(model, *version);
                    ConstGauge::new(*value).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "gateway_drift_window_rows",
            "Rows in the live window the drift gauges are computed over",
            None,
            MetricType::Gauge,
        )?;
        for ((model, version), window) in &live {
            let labels = version_labels(model, *version);
            ConstGauge::new(window.len() as i64).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
