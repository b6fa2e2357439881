//! The gRPC binding from a Rust client: typed tensor contents, health that
//! follows model readiness, reflection, errors and metrics. tritonclient's
//! defaults (raw contents) are driven in `sklearn.rs`.

use futures::StreamExt;
use mlops_proto::inference as pb;
use mlops_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::support::{MODEL, World, expected, linear_model};

const SERVICE: &str = "inference.GRPCInferenceService";

pub async fn channel(url: &str) -> Channel {
    tonic::transport::Endpoint::from_shared(url.to_string())
        .expect("url")
        .connect()
        .await
        .expect("connect")
}

pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("metadata"),
    );
    request
}

async fn health(channel: &Channel) -> i32 {
    HealthClient::new(channel.clone())
        .check(tonic_health::pb::HealthCheckRequest {
            service: SERVICE.into(),
        })
        .await
        .expect("health")
        .into_inner()
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_serves_typed_contents_with_health_and_reflection() {
    let mut world = World::new().await;
    let gateway = world.gateway(&[]).await;
    let channel = channel(&gateway.grpc).await;
    let mut client = GrpcInferenceServiceClient::new(channel.clone());

    // Nothing is loaded yet: live, not ready, and health says so.
    let live = client
        .server_live(pb::ServerLiveRequest {})
        .await
        .expect("live");
    assert!(live.into_inner().live);
    let ready = client
        .server_ready(pb::ServerReadyRequest {})
        .await
        .expect("ready");
    assert!(!ready.into_inner().ready);
    assert_eq!(health(&channel).await, ServingStatus::NotServing as i32);

    let (model, bytes) = linear_model(3);
    let version = world.register(MODEL, bytes).await;
    world.set_alias(MODEL, "champion", version).await;
    gateway.wait_for_champion(version).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while health(&channel).await != ServingStatus::Serving as i32 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "health stayed NOT_SERVING"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let token = gateway.token.clone();
    let ready = client
        .model_ready(with_token(
            pb::ModelReadyRequest {
                name: MODEL.into(),
                version: version.to_string(),
            },
            &token,
        ))
        .await
        .expect("model ready");
    assert!(ready.into_inner().ready);

    // Typed contents in, raw contents out.
    let rows = [[1.0f32, 2.0, 0.5], [0.0, -1.0, 3.0]];
    let request = pb::ModelInferRequest {
        model_name: MODEL.into(),
        id: "typed-1".into(),
        inputs: vec![pb::model_infer_request::InferInputTensor {
            name: "input".into(),
            datatype: "FP32".into(),
            shape: vec![2, 3],
            contents: Some(pb::InferTensorContents {
                fp32_contents: rows.iter().flatten().copied().collect(),
                ..Default::default()
            }),
            ..Default::default()
        }],
        outputs: vec![pb::model_infer_request::InferRequestedOutputTensor {
            name: "probabilities".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = client
        .model_infer(with_token(request.clone(), &token))
        .await
        .expect("infer")
        .into_inner();
    assert_eq!(response.model_version, version.to_string());
    assert_eq!(response.id, "typed-1");
    assert_eq!(response.outputs.len(), 1);
    assert_eq!(response.outputs[0].datatype, "FP32");
    assert_eq!(response.outputs[0].shape, vec![2, 2]);
    let scores: Vec<f32> = response.raw_output_contents[0]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    for (row, pair) in rows.iter().zip(scores.chunks(2)) {
        let want = expected(&model, row);
        assert!((pair[1] - want).abs() < 1e-6, "{} vs {want}", pair[1]);
    }

    // Errors carry the protocol's codes and the REST binding's messages.
    let mut wrong_shape = request.clone();
    wrong_shape.inputs[0].shape = vec![3, 3];
    let refused = client
        .model_infer(with_token(wrong_shape, &token))
        .await
        .expect_err("a shape the contents do not fill");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused
            .message()
            .contains("shape [3, 3] holds 9 values but 6"),
        "{}",
        refused.message()
    );
    let mut unknown = request.clone();
    unknown.model_version = "41".into();
    let refused = client
        .model_infer(with_token(unknown, &token))
        .await
        .expect_err("an unknown version");
    assert_eq!(refused.code(), tonic::Code::NotFound);
    let refused = client
        .model_infer(request.clone())
        .await
        .expect_err("no token");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    // Reflection lists the binding and health.
    let mut reflection = ServerReflectionClient::new(channel.clone());
    let asked = futures::stream::iter([ServerReflectionRequest {
        message_request: Some(MessageRequest::ListServices(String::new())),
        ..Default::default()
    }]);
    let mut answers = reflection
        .server_reflection_info(asked)
        .await
        .expect("reflection")
        .into_inner();
    let answer = answers.next().await.expect("an answer").expect("ok");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.iter().any(|n| n == SERVICE), "{names:?}");
    assert!(
        names.iter().any(|n| n == "grpc.health.v1.Health"),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.starts_with("mlops.")),
        "the registry's services are not served here: {names:?}"
    );

    let ok = format!(
        "gateway_inference_requests_total{{model=\"{MODEL}\",version=\"{version}\",protocol=\"grpc\",status=\"OK\"}}"
    );
    assert_eq!(gateway.metric(&ok).await, 1.0);
    let invalid = format!(
        "gateway_inference_requests_total{{model=\"{MODEL}\",version=\"\",protocol=\"grpc\",status=\"INVALID_ARGUMENT\"}}"
    );
    assert_eq!(gateway.metric(&invalid).await, 1.0);
    gateway.stop().await;
}
