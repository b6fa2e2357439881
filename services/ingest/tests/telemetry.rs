//! Traces are not wired-but-dead: the ingest binary, pointed at an OTLP/HTTP
//! receiver, exports its `commit_batch` spans with its service name.

mod support;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;
use support::*;

#[derive(Default)]
struct Received {
    spans: Vec<(String, String)>, // (service.name, span name)
}

async fn start_receiver() -> (String, Arc<Mutex<Received>>) {
    let received = Arc::new(Mutex::new(Received::default()));
    let sink = received.clone();
    let app = Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("otlp protobuf");
                let mut sink = sink.lock().expect("lock");
                for resource_spans in request.resource_spans {
                    let service = resource_spans
                        .resource
                        .iter()
                        .flat_map(|r| r.attributes.iter())
                        .find(|kv| kv.key == "service.name")
                        .and_then(|kv| kv.value.as_ref()?.value.clone())
                        .map(|v| match v {
                            Value::StringValue(s) => s,
                            other => format!("{other:?}"),
                        })
                        .unwrap_or_default();
                    for scope in resource_spans.scope_spans {
                        for span in scope.spans {
                            sink.spans.push((service.clone(), span.name));
                        }
                    }
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
    (format!("http://{addr}"), received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_spans_reach_an_otlp_receiver() {
    let (endpoint, received) = start_receiver().await;
    let topic = unique("events");
    produce(&topic, 1, &["--subscribers", "20", "--days", "1"]).await;
    let lake = TestLake::new(Store::Local);
    let env: HashMap<String, String> = ingest_env(&topic, &unique("group"), &lake, &[]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_ingest"))
        .envs(&env)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ingest");

    eventually(
        Duration::from_secs(60),
        "a commit_batch span from ingest",
        || {
            let received = received.clone();
            async move {
                received
                    .lock()
                    .expect("lock")
                    .spans
                    .iter()
                    .any(|(service, name)| service == "ingest" && name == "commit_batch")
            }
        },
    )
    .await;
    let _ = child.kill();
    let _ = child.wait();
}
