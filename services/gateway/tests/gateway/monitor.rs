//! Prediction monitoring: the score histogram, drift against the model's
//! reference distribution, and the prediction log on a real broker, also
//! while the broker cannot be reached.

use std::time::Duration;

use mlops_onnx::reference::{Histogram, REFERENCE_METADATA_KEY, Reference};
use mlops_proto::inference as pb;
use mlops_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use mlops_proto::predictions::v1::Prediction;
use prost::Message as _;
use rdkafka::Message as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use sha2::{Digest, Sha256};

use crate::grpc::{channel, with_token};
use crate::support::{MODEL, WIDTH, World, expected, infer_body, linear_model_with};

/// Bins of every input column: below 0, [0, 1), [1, 2), from 2 up.
const EDGES: [f64; 3] = [0.0, 1.0, 2.0];
const SCORE_EDGES: [f64; 9] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/// `n` rows spread evenly over [0, 2) in every column; `shift` is added to
/// the first column.
fn rows(n: usize, shift: f32) -> Vec<[f32; WIDTH]> {
    (0..n)
        .map(|i| {
            let v = |j: usize| ((i * 7 + j * 3) % 20) as f32 / 10.0;
            [v(0) + shift, v(1), v(2)]
        })
        .collect()
}

/// A model whose reference distribution is that of `rows(1000, 0.0)`.
fn monitored_model() -> (mlops_trainer::linear::LogisticModel, Vec<u8>) {
    let (model, _) = linear_model_with(1, Vec::new());
    let reference_rows = rows(1000, 0.0);
    let column = |j: usize| {
        Histogram::count(
            &format!("f{j}"),
            EDGES.to_vec(),
            reference_rows.iter().map(|r| f64::from(r[j])),
        )
    };
    let reference = Reference {
        format: 1,
        rows: reference_rows.len() as u64,
        columns: (0..WIDTH).map(column).collect(),
        score: Histogram::count(
            "score",
            SCORE_EDGES.to_vec(),
            reference_rows
                .iter()
                .map(|r| f64::from(expected(&model, r))),
        ),
    };
    linear_model_with(
        1,
        vec![(
            REFERENCE_METADATA_KEY.to_string(),
            serde_json::to_string(&reference).expect("json"),
        )],
    )
}

pub async fn topic_of_one_partition(brokers: &str) -> String {
    let topic = crate::registry_support::unique("predictions");
    mlops_bus::KafkaSettings::new(brokers, "gateway-test")
        .ensure_topics(&[mlops_bus::TopicSpec {
            name: &topic,
            partitions: 1,
        }])
        .await
        .expect("topic");
    topic
}

/// The first `n` predictions of `topic`, with their keys.
pub async fn read_predictions(
    brokers: &str,
    topic: &str,
    n: usize,
) -> Vec<(Option<String>, Prediction)> {
    let consumer: StreamConsumer = mlops_bus::KafkaSettings::new(brokers, "gateway-test")
        .consumer_config(&crate::registry_support::unique("group"))
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut predictions = Vec::new();
    while predictions.len() < n {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} predictions logged", predictions.len()))
            .expect("message");
        let schema = rdkafka::message::Headers::iter(message.headers().expect("headers"))
            .find(|h| h.key == "schema-version")
            .and_then(|h| h.value)
            .map(<[u8]>::to_vec);
        assert_eq!(schema, Some(b"v1".to_vec()));
        let key = message
            .key()
            .map(|k| String::from_utf8(k.to_vec()).expect("utf-8 key"));
        let prediction = Prediction::decode(message.payload().expect("payload")).expect("decode");
        predictions.push((key, prediction));
    }
    predictions
}

fn hash(row: &[f32]) -> String {
    let mut hasher = Sha256::new();
    for v in row {
        hasher.update(v.to_le_bytes());
    }
    hex::encode(hasher.finalize())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predictions_are_logged_and_drift_is_measured_against_the_reference() {
    let brokers = crate::registry_support::required_env("TEST_KAFKA_BROKERS");
    let topic = topic_of_one_partition(&brokers).await;
    let mut world = World::new().await;
    let (model, bytes) = monitored_model();
    let version = world.register(MODEL, bytes).await;
    world.set_alias(MODEL, "champion", version).await;
    let gateway = world
        .gateway(&[
            ("GATEWAY_PREDICTION_LOG", "kafka"),
            ("KAFKA_BROKERS", &brokers),
            ("PREDICTIONS_TOPIC", &topic),
            ("GATEWAY_DRIFT_WINDOW_ROWS", "200"),
        ])
        .await;
    gateway.wait_for_champion(version).await;
    let labels = format!("{{model=\"{MODEL}\",version=\"{version}\"");
    let psi = |feature: &str| format!("gateway_drift_feature_psi{labels},feature=\"{feature}\"}}");

    // Live traffic distributed as the reference: stable.
    let steady = rows(100, 0.0);
    let (status, body) = gateway
        .post(&format!("/v2/models/{MODEL}/infer"), &infer_body(&steady))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        gateway
            .metric(&format!("gateway_prediction_score_count{labels}}}"))
            .await,
        100.0
    );
    assert_eq!(
        gateway
            .metric(&format!("gateway_drift_window_rows{labels}}}"))
            .await,
        100.0
    );
    for feature in ["f0", "f1", "f2"] {
        let value = gateway.metric(&psi(feature)).await;
        assert!(
            value < 0.05,
            "{feature}: PSI {value} on the reference's own distribution"
        );
    }
    let score_psi = gateway
        .metric(&format!("gateway_drift_score_psi{labels}}}"))
        .await;
    assert!(score_psi < 0.05, "score PSI {score_psi}");

    // The first column moves out of its training range; the window (200
    // rows) forgets the steady rows.
    let shifted = rows(200, 5.0);
    for chunk in shifted.chunks(50) {
        let (status, body) = gateway
            .post(&format!("/v2/models/{MODEL}/infer"), &infer_body(chunk))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        gateway
            .metric(&format!("gateway_drift_window_rows{labels}}}"))
            .await,
        200.0
    );
    let drifted = gateway.metric(&psi("f0")).await;
    assert!(
        drifted > 0.25,
        "f0 moved out of range yet its PSI is {drifted}"
    );
    for feature in ["f1", "f2"] {
        let value = gateway.metric(&psi(feature)).await;
        assert!(
            value < 0.05,
            "{feature} did not move, yet its PSI is {value}"
        );
    }
    assert_eq!(
        gateway
            .metric(&format!("gateway_prediction_score_count{labels}}}"))
            .await,
        300.0
    );

    // One over gRPC, named by its x-request-id.
    let mut client = GrpcInferenceServiceClient::new(channel(&gateway.grpc).await);
    let mut request = with_token(
        pb::ModelInferRequest {
            model_name: MODEL.into(),
            inputs: vec![pb::model_infer_request::InferInputTensor {
                name: "input".into(),
                datatype: "FP32".into(),
                shape: vec![1, WIDTH as i64],
                contents: Some(pb::InferTensorContents {
                    fp32_contents: steady[0].to_vec(),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        },
        &gateway.token,
    );
    request
        .metadata_mut()
        .insert("x-request-id", "grpc-call-7".parse().expect("metadata"));
    client.model_infer(request).await.expect("gRPC infer");

    let logged = read_predictions(&brokers, &topic, 301).await;
    let sent: Vec<&[f32; WIDTH]> = steady.iter().chain(&shifted).chain(&steady[..1]).collect();
    for (i, ((key, prediction), row)) in logged.iter().zip(&sent).enumerate() {
        assert_eq!(key, &None, "protocol calls name no subscriber");
        assert_eq!(prediction.model_name, MODEL);
        assert_eq!(prediction.model_version, version);
        assert_eq!(prediction.subscriber_id, "");
        assert_eq!(prediction.features_version, 0);
        assert!(
            (prediction.score - expected(&model, row.as_slice())).abs() < 1e-6,
            "record {i}: {} vs {}",
            prediction.score,
            expected(&model, row.as_slice())
        );
        assert_eq!(prediction.feature_hash, hash(row.as_slice()), "record {i}");
        assert!(prediction.predicted_at.is_some());
        let (source, id) = if i < 300 {
            ("rest", "request-1")
        } else {
            ("grpc", "grpc-call-7")
        };
        assert_eq!(
            (prediction.source.as_str(), prediction.request_id.as_str()),
            (source, id)
        );
    }
    assert_eq!(
        gateway.metric("gateway_prediction_log_sent_total").await,
        301.0
    );
    assert_eq!(
        gateway.metric("gateway_prediction_log_dropped_total").await,
        0.0
    );
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_fails_no_request_and_the_lost_predictions_are_counted() {
    let mut world = World::new().await;
    let (model, bytes) = monitored_model();
    let version = world.register(MODEL, bytes).await;
    world.set_alias(MODEL, "champion", version).await;
    // Nothing listens on port 1.
    let gateway = world
        .gateway(&[
            ("GATEWAY_PREDICTION_LOG", "kafka"),
            ("KAFKA_BROKERS", "127.0.0.1:1"),
            ("GATEWAY_PREDICTION_LOG_TIMEOUT_MS", "8000"),
        ])
        .await;
    gateway.wait_for_champion(version).await;

    let batch = rows(5, 0.0);
    for _ in 0..20 {
        let (status, body) = gateway
            .post(&format!("/v2/models/{MODEL}/infer"), &infer_body(&batch))
            .await;
        assert_eq!(status, 200, "{body}");
        let scores = crate::support::positive_scores(&body);
        assert!((scores[0] - expected(&model, &batch[0])).abs() < 1e-6);
    }
    // Every response came back before any record gave up on the broker:
    // none waited for it.
    assert_eq!(
        gateway.metric("gateway_prediction_log_dropped_total").await,
        0.0
    );
    let counted = mlops_testkit::wait_for(Duration::from_secs(60), || async {
        gateway.metric("gateway_prediction_log_dropped_total").await == 100.0
    })
    .await;
    assert!(
        counted,
        "dropped: {}",
        gateway.metric("gateway_prediction_log_dropped_total").await
    );
    assert_eq!(
        gateway.metric("gateway_prediction_log_sent_total").await,
        0.0
    );
    assert_eq!(
        gateway
            .metric(&format!(
                "gateway_inference_requests_total{{model=\"{MODEL}\",version=\"{version}\",protocol=\"rest\",status=\"200\"}}"
            ))
            .await,
        20.0
    );
    gateway.stop().await;
}
