//! Record headers: W3C `traceparent`/`tracestate` and the payload's schema
//! version, so traces continue across Kafka and readers can refuse payloads
//! they do not understand.

use rdkafka::message::{BorrowedHeaders, Header, Headers, OwnedHeaders};

pub const SCHEMA_VERSION: &str = "schema-version";
pub const TRACEPARENT: &str = "traceparent";

/// Headers for a record published inside the current span: its trace context
/// plus the schema version of the payload.
pub fn outgoing(schema_version: &str) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new().insert(Header {
        key: SCHEMA_VERSION,
        value: Some(schema_version),
    });
    for (key, value) in mlops_runtime::telemetry::current_trace_headers() {
        headers = headers.insert(Header {
            key: &key,
            value: Some(&value),
        });
    }
    headers
}

/// The value of a UTF-8 header, if present.
pub fn get<'a>(headers: Option<&'a BorrowedHeaders>, key: &str) -> Option<&'a str> {
    headers?
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// Makes `span` a child of the trace carried by the record's headers.
pub fn continue_trace(span: &tracing::Span, headers: Option<&BorrowedHeaders>) {
    mlops_runtime::telemetry::continue_trace_from(span, |key| get(headers, key));
}
