//! Decoding and structural validation of one Kafka record. Semantic checks
//! (plausible amounts, event time not in the future, …) belong to silver;
//! bronze keeps every event that is well-formed.

use chrono::{DateTime, Utc};
use mlops_bus::DeadLetterReason;
use mlops_proto::events::v1::{
    self as pb, ChurnReason, NetworkType, TelecomEvent, TicketCategory, TicketResolution,
    telecom_event::Payload,
};
use prost::Message;

/// Why a record cannot enter bronze.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub reason: DeadLetterReason,
    pub detail: String,
}

impl Rejection {
    fn new(reason: DeadLetterReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

/// A valid event, ready to become a bronze row.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidEvent {
    pub event: TelecomEvent,
    pub event_time: DateTime<Utc>,
    pub schema_version: String,
}

/// Decodes and validates a record's payload, given its `schema-version` header.
pub fn decode(
    payload: Option<&[u8]>,
    schema_version: Option<&str>,
) -> Result<ValidEvent, Rejection> {
    let schema_version = schema_version.unwrap_or(pb::SCHEMA_VERSION);
    if schema_version != pb::SCHEMA_VERSION {
        return Err(Rejection::new(
            DeadLetterReason::UnsupportedSchema,
            format!(
                "schema-version {schema_version:?} is not supported (expected {:?})",
                pb::SCHEMA_VERSION
            ),
        ));
    }
    let Some(payload) = payload.filter(|p| !p.is_empty()) else {
        return Err(Rejection::new(
            DeadLetterReason::Undecodable,
            "empty payload",
        ));
    };
    let event = TelecomEvent::decode(payload).map_err(|e| {
        Rejection::new(
            DeadLetterReason::Undecodable,
            format!("not a TelecomEvent: {e}"),
        )
    })?;
    let mut missing = Vec::new();
    if event.event_id.trim().is_empty() {
        missing.push("event_id");
    }
    if event.subscriber_id.trim().is_empty() {
        missing.push("subscriber_id");
    }
    if event.event_time.is_none() {
        missing.push("event_time");
    }
    if !missing.is_empty() {
        return Err(Rejection::new(
            DeadLetterReason::Invalid,
            format!("missing required field(s): {}", missing.join(", ")),
        ));
    }
    let ts = event.event_time.unwrap_or_default();
    let event_time =
        DateTime::from_timestamp(ts.seconds, ts.nanos.max(0) as u32).ok_or_else(|| {
            Rejection::new(
                DeadLetterReason::Invalid,
                format!("event_time out of range: {}s", ts.seconds),
            )
        })?;
    if event.payload.is_none() {
        // An empty oneof: either no payload was set or the sender used a
        // kind newer than this reader (unknown fields are skipped by prost).
        return Err(Rejection::new(
            DeadLetterReason::UnknownKind,
            "no known payload kind is set",
        ));
    }
    Ok(ValidEvent {
        event,
        event_time,
        schema_version: schema_version.to_string(),
    })
}

pub fn kind(payload: &Payload) -> &'static str {
    use mlops_lake::bronze::kinds::*;
    match payload {
        Payload::Call(_) => CALL,
        Payload::Sms(_) => SMS,
        Payload::DataSession(_) => DATA_SESSION,
        Payload::TopUp(_) => TOP_UP,
        Payload::PlanChange(_) => PLAN_CHANGE,
        Payload::SupportTicket(_) => SUPPORT_TICKET,
        Payload::Churn(_) => CHURN,
        Payload::Activation(_) => ACTIVATION,
    }
}

/// Lower-case names for enum values, as stored in bronze.
pub fn network_type(value: i32) -> String {
    enum_name(
        NetworkType::try_from(value).map(|v| v.as_str_name()),
        "NETWORK_TYPE_",
        value,
    )
}

pub fn ticket_category(value: i32) -> String {
    enum_name(
        TicketCategory::try_from(value).map(|v| v.as_str_name()),
        "TICKET_CATEGORY_",
        value,
    )
}

pub fn ticket_resolution(value: i32) -> String {
    enum_name(
        TicketResolution::try_from(value).map(|v| v.as_str_name()),
        "TICKET_RESOLUTION_",
        value,
    )
}

pub fn churn_reason(value: i32) -> String {
    enum_name(
        ChurnReason::try_from(value).map(|v| v.as_str_name()),
        "CHURN_REASON_",
        value,
    )
}

fn enum_name<E>(name: Result<&str, E>, prefix: &str, value: i32) -> String {
    match name {
        Ok(name) => name.trim_start_matches(prefix).to_ascii_lowercase(),
        // Kept, not rejected: a newer producer may add values.
        Err(_) => format!("unknown_{value}"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use pb::Call;

    /// A valid call event (also used by the batch and writer tests).
    pub(crate) fn valid() -> TelecomEvent {
        TelecomEvent {
            event_id: "e-1".into(),
            subscriber_id: "sub-1".into(),
            event_time: Some(prost_types::Timestamp {
                seconds: 1_767_225_600,
                nanos: 5_000,
            }),
            payload: Some(Payload::Call(Call {
                duration_seconds: 60,
                dropped: true,
                region: "north".into(),
            })),
        }
    }

    #[test]
    fn a_valid_event_decodes() {
        let event = decode(Some(&valid().encode_to_vec()), Some("v1")).expect("valid");
        assert_eq!(event.event.event_id, "e-1");
        assert_eq!(event.event_time.timestamp(), 1_767_225_600);
        assert_eq!(event.schema_version, "v1");
    }

    #[test]
    fn rejections_name_their_reason() {
        let garbage = [0u8, 1, 2, 3];
        assert_eq!(
            decode(Some(&garbage), None).expect_err("bad").reason,
            DeadLetterReason::Undecodable
        );
        assert_eq!(
            decode(None, None).expect_err("empty").detail,
            "empty payload"
        );

        let mut event = valid();
        event.event_id.clear();
        event.event_time = None;
        let err = decode(Some(&event.encode_to_vec()), None).expect_err("invalid");
        assert_eq!(err.reason, DeadLetterReason::Invalid);
        assert_eq!(
            err.detail,
            "missing required field(s): event_id, event_time"
        );

        let mut event = valid();
        event.payload = None;
        let err = decode(Some(&event.encode_to_vec()), None).expect_err("no kind");
        assert_eq!(err.reason, DeadLetterReason::UnknownKind);

        let err = decode(Some(&valid().encode_to_vec()), Some("v9")).expect_err("schema");
        assert_eq!(err.reason, DeadLetterReason::UnsupportedSchema);
        assert!(err.detail.contains("\"v9\""), "{}", err.detail);
    }

    #[test]
    fn enum_values_are_stored_as_lower_case_names() {
        assert_eq!(ticket_category(TicketCategory::Network as i32), "network");
        assert_eq!(network_type(NetworkType::NetworkType5g as i32), "5g");
        assert_eq!(churn_reason(99), "unknown_99");
    }
}
