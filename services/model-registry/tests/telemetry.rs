//! Trace context crosses gRPC: the registry binary, pointed at an OTLP/HTTP
//! receiver, exports the span of a call as a child of the caller's trace
//! (W3C `traceparent` in the request metadata).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use mlops_registry_client::proto as pb;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TOKEN: &str = "mlops_telemetry_test_bootstrap_token";

/// Spans received: (span name, trace id in hex).
type Spans = Arc<Mutex<Vec<(String, String)>>>;

async fn start_receiver() -> (String, Spans) {
    let spans: Spans = Arc::default();
    let sink = spans.clone();
    let app = Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("otlp protobuf");
                let mut sink = sink.lock().expect("lock");
                for span in request
                    .resource_spans
                    .into_iter()
                    .flat_map(|r| r.scope_spans)
                    .flat_map(|s| s.spans)
                {
                    sink.push((span.name, hex::encode(span.trace_id)));
                }
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), spans)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_span_joins_the_callers_trace() {
    let (endpoint, spans) = start_receiver().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let grpc = format!("127.0.0.1:{}", free_port());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_model-registry"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display()),
        )
        .env("ARTIFACTS_URL", dir.path().join("artifacts"))
        .env("REGISTRY_GRPC_ADDR", &grpc)
        .env("REGISTRY_HTTP_ADDR", "127.0.0.1:0")
        .env("ADMIN_ADDR", "127.0.0.1:0")
        .env("REGISTRY_EVENTS", "off")
        .env("REGISTRY_BOOTSTRAP_TOKEN", TOKEN)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .kill_on_drop(true)
        .spawn()
        .expect("start model-registry");

    let channel = {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
                .expect("url")
                .connect()
                .await
            {
                Ok(channel) => break channel,
                Err(e) if tokio::time::Instant::now() > deadline => {
                    panic!("registry never listened: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    };
    let mut client = pb::model_registry_client::ModelRegistryClient::new(channel);
    let mut request = tonic::Request::new(pb::WhoAmIRequest {});
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {TOKEN}").parse().expect("ascii"),
    );
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-00f067aa0ba902b7-01")
            .parse()
            .expect("ascii"),
    );
    client.who_am_i(request).await.expect("who am i");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let found = spans
            .lock()
            .expect("lock")
            .iter()
            .any(|(name, trace)| name == "registry.call" && trace == TRACE_ID);
        if found {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no registry.call span in trace {TRACE_ID}; received {:?}",
            spans.lock().expect("lock")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = child.kill().await;
}
