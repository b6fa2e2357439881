//! Record headers: W3C `traceparent`/`tracestate` and the payload's schema
//! version, so traces continue across Kafka and readers can refuse payloads
//! they do not understand.

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector};
use rdkafka::message::{BorrowedHeaders, Header, Headers, OwnedHeaders};
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub const SCHEMA_VERSION: &str = "schema-version";
pub const TRACEPARENT: &str = "traceparent";

/// Headers for a record published inside the current span: its trace context
/// plus the schema version of the payload.
pub fn outgoing(schema_version: &str) -> OwnedHeaders {
    let mut carrier = HashMap::new();
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut MapCarrier(&mut carrier))
    });
    let mut headers = OwnedHeaders::new().insert(Header {
        key: SCHEMA_VERSION,
        value: Some(schema_version),
    });
    for (key, value) in &carrier {
        headers = headers.insert(Header {
            key,
            value: Some(value),
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
    let Some(headers) = headers else { return };
    let carrier: HashMap<String, String> = headers
        .iter()
        .filter_map(|h| {
            Some((
                h.key.to_string(),
                std::str::from_utf8(h.value?).ok()?.to_string(),
            ))
        })
        .collect();
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&MapCarrierRef(&carrier))
    });
    let _ = span.set_parent(parent);
}

struct MapCarrier<'a>(&'a mut HashMap<String, String>);

impl Injector for MapCarrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
}

struct MapCarrierRef<'a>(&'a HashMap<String, String>);

impl Extractor for MapCarrierRef<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}
