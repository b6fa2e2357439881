//! A micro-batch: bronze rows in columnar form plus, per partition, the span
//! of offsets it covers and the table progress it was started from.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::SchemaRef;
use chrono::{DateTime, NaiveDate, Utc};
use mlops_bus::PendingDeadLetter;
use mlops_proto::events::v1::telecom_event::Payload;

use crate::decode::{self, ValidEvent};

/// Progress of one partition inside a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionSpan {
    /// The partition's `txn` version in the table when the batch took its
    /// first record (`None`: the table had none). The commit requires it unchanged.
    pub base: Option<i64>,
    /// Last offset handled (written or dead-lettered).
    pub last: i64,
}

/// When a batch is handed to a commit: at `max_records` records (rows and
/// dead letters alike), or `max_wait` after its first record.
#[derive(Clone, Copy, Debug)]
pub struct BatchBounds {
    pub max_records: usize,
    pub max_wait: std::time::Duration,
}

impl BatchBounds {
    pub fn is_full(&self, batch: &Batch) -> bool {
        batch.records() >= self.max_records
    }

    /// When a batch whose first record arrived at `started` is due.
    pub fn deadline(&self, started: std::time::Instant) -> std::time::Instant {
        started + self.max_wait
    }
}

#[derive(Default)]
pub struct Batch {
    pub spans: BTreeMap<i32, PartitionSpan>,
    rows: Vec<Row>,
    /// Dead letters of this batch's records, handed to the producer; they
    /// must all be acknowledged before the batch commits.
    dead_letters: Vec<PendingDeadLetter>,
    /// Records dead-lettered in this batch.
    pub dead_lettered: usize,
}

struct Row {
    event: ValidEvent,
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    ingested_at: DateTime<Utc>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Records covered, written or dead-lettered.
    pub fn records(&self) -> usize {
        self.rows.len() + self.dead_lettered
    }

    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// Notes that `offset` of `partition` was handled.
    pub fn cover(&mut self, partition: i32, base: Option<i64>, offset: i64) {
        self.spans
            .entry(partition)
            .and_modify(|span| span.last = offset)
            .or_insert(PartitionSpan { base, last: offset });
    }

    pub fn push(
        &mut self,
        event: ValidEvent,
        topic: Arc<str>,
        partition: i32,
        offset: i64,
        ingested_at: DateTime<Utc>,
    ) {
        self.rows.push(Row {
            event,
            topic,
            partition,
            offset,
            ingested_at,
        });
    }

    /// Notes a dead letter sent for one of the batch's records.
    pub fn push_dead_letter(&mut self, pending: PendingDeadLetter) {
        self.dead_letters.push(pending);
        self.dead_lettered += 1;
    }

    /// The dead letters whose acknowledgement the commit must wait for.
    pub fn take_dead_letters(&mut self) -> Vec<PendingDeadLetter> {
        std::mem::take(&mut self.dead_letters)
    }

    /// The rows as an Arrow batch in the bronze schema's column order.
    pub fn to_record_batch(
        &self,
        schema: SchemaRef,
    ) -> Result<RecordBatch, arrow::error::ArrowError> {
        let rows = &self.rows;
        let text = |f: &dyn Fn(&Row) -> Option<String>| -> ArrayRef {
            Arc::new(rows.iter().map(f).collect::<StringArray>())
        };
        let long = |f: &dyn Fn(&Row) -> Option<i64>| -> ArrayRef {
            Arc::new(rows.iter().map(f).collect::<Int64Array>())
        };
        let flag = |f: &dyn Fn(&Row) -> Option<bool>| -> ArrayRef {
            Arc::new(rows.iter().map(f).collect::<BooleanArray>())
        };
        let micros = |f: &dyn Fn(&Row) -> Option<i64>| -> ArrayRef {
            Arc::new(
                rows.iter()
                    .map(f)
                    .collect::<TimestampMicrosecondArray>()
                    .with_timezone("UTC"),
            )
        };
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();

        let columns: Vec<ArrayRef> = vec![
            text(&|r| Some(r.event.event.event_id.clone())),
            text(&|r| Some(r.event.event.subscriber_id.clone())),
            micros(&|r| Some(r.event.event_time.timestamp_micros())),
            Arc::new(
                rows.iter()
                    .map(|r| Some((r.event.event_time.date_naive() - epoch).num_days() as i32))
                    .collect::<Date32Array>(),
            ),
            text(&|r| {
                r.event
                    .event
                    .payload
                    .as_ref()
                    .map(|p| decode::kind(p).to_string())
            }),
            long(&|r| match r.event.event.payload.as_ref() {
                Some(Payload::Call(c)) => Some(i64::from(c.duration_seconds)),
                _ => None,
            }),
            flag(&|r| match r.event.event.payload.as_ref() {
                Some(Payload::Call(c)) => Some(c.dropped),
                _ => None,
            }),
            text(&|r| match r.event.event.payload.as_ref() {
                Some(Payload::Call(c)) => Some(c.region.clone()),
                _ => None,
            }),
            flag(&|r| match r.event.event.payload.as_ref() {
                Some(Payload::Sms(s)) => Some(s.international),
                _ => None,
            }),
            long(&|r| match r.event.event.payload.as_ref() {
                Some(Payload::DataSession(d)) => i64::try_from(d.bytes_up).ok(),
                _ => None,
            }),
            long(&|r| match r.event.event.payload.as_ref() {
                Some(Payload::DataSession(d)) => i64::try_from(d.bytes_down).ok(),
                _ => None,
            }),
            long(&|r| match r.event.event.payload.as_ref() {
                Some(Payload::DataSession(d)) => Some(i64::from(d.duration_seconds)),
                _ => None,
            }),
            text(&|r| match r.event.event.payload.as_ref() {
                Some(Payload::DataSession(d)) => Some(decode::network_type(d.network_type)),
                _ => None,
            }),
            long(&|r| match r.event.event.payload.as_ref() {
                Some(Payload::TopUp(t)) => Some(t.amount_cents),
                _ => None,
            }),
            text(&|r| match r.event.event.payload.as_ref() {
                Some(Payload::TopUp(t)) => Some(t.channel.clone()),
                _ => None,
            }),
            text(&|r| match r.event.event.payload.as_ref() {
                Some(Payload::PlanChange(p)) => Some(p.old_plan.clone()),
                _ => None,
            }),
            text(&|r| match r.event.event.payload.as_ref() {
                Some(Payload::PlanChange(p)) => Some(p.new_plan.clone()),
                _ => None,
            }),
            long(&|r| match r.event.event.payload.as_ref() {
                Some(Payload::PlanChange(p)) => Some(p.old_price_cents),
                _ => None,
            }),
            long(&|r| match r.event.event.payload.as_ref() {
                Some(Payload::PlanChange(p)) => Some(p.new_price_cents),
                _ => None,
            }),
            text(&|r| match r.event.event.payload.as_ref() {
                Some(Payload::SupportTicket(t)) => Some(t.ticket_id.clone()),
                _ => None,
            }),
            text(&|r| match r.event.event.payload.as_ref() {
                Some(Payload::SupportTicket(t)) => Some(decode::ticket_category(t.category)),
                _ => None,
            }),
            text(&|r| match r.event.event.payload.as_ref() {
                Some(Payload::SupportTicket(t)) => Some(decode::ticket_resolution(t.resolution)),
                _ => None,
            }),
            text(&|r| match r.event.event.payload.as_ref() {
                Some(Payload::Churn(c)) => Some(decode::churn_reason(c.reason)),
                _ => None,
            }),
            text(&|r| match r.event.event.payload.as_ref() {
                Some(Payload::Churn(c)) => {
                    Some(c.recipient_operator.clone()).filter(|s| !s.is_empty())
                }
                _ => None,
            }),
            text(&|r| match r.event.event.payload.as_ref() {
                Some(Payload::Activation(a)) => Some(a.region.clone()),
                _ => None,
            }),
            text(&|r| match r.event.event.payload.as_ref() {
                Some(Payload::Activation(a)) => Some(a.plan.clone()),
                _ => None,
            }),
            long(&|r| match r.event.event.payload.as_ref() {
                Some(Payload::Activation(a)) => Some(a.monthly_price_cents),
                _ => None,
            }),
            text(&|r| match r.event.event.payload.as_ref() {
                Some(Payload::Activation(a)) => Some(a.device.clone()),
                _ => None,
            }),
            micros(&|r| match r.event.event.payload.as_ref() {
                Some(Payload::Activation(a)) => a
                    .activated_at
                    .and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
                    .map(|t| t.timestamp_micros()),
                _ => None,
            }),
            text(&|r| Some(r.event.schema_version.clone())),
            text(&|r| Some(r.topic.to_string())),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.partition))
                    .collect::<Int32Array>(),
            ),
            long(&|r| Some(r.offset)),
            micros(&|r| Some(r.ingested_at.timestamp_micros())),
        ];
        RecordBatch::try_new(schema, columns)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::{Duration, Instant};

    use mlops_proto::events::v1::TelecomEvent;
    use prost::Message;

    use super::*;

    /// A valid event with this id, as ingest decodes it.
    pub(crate) fn event(id: &str) -> ValidEvent {
        let event = TelecomEvent {
            event_id: id.into(),
            ..decode::tests::valid()
        };
        decode::decode(Some(&event.encode_to_vec()), Some("v1")).expect("valid event")
    }

    /// A batch covering `offsets` of `partition`, from table progress `base`.
    pub(crate) fn batch(partition: i32, base: Option<i64>, offsets: std::ops::Range<i64>) -> Batch {
        let mut batch = Batch::default();
        for offset in offsets {
            batch.cover(partition, base, offset);
            batch.push(
                event(&format!("e-{partition}-{offset}")),
                Arc::from("events"),
                partition,
                offset,
                Utc::now(),
            );
        }
        batch
    }

    #[test]
    fn spans_keep_the_base_they_started_from_and_the_last_offset() {
        let mut batch = batch(0, Some(9), 10..15);
        batch.cover(1, None, 3);
        assert_eq!(
            batch.spans.get(&0),
            Some(&PartitionSpan {
                base: Some(9),
                last: 14
            })
        );
        assert_eq!(
            batch.spans.get(&1),
            Some(&PartitionSpan {
                base: None,
                last: 3
            })
        );
        assert_eq!((batch.rows(), batch.records()), (5, 5));
    }

    #[test]
    fn a_batch_is_full_at_the_record_bound_counting_dead_letters() {
        let bounds = BatchBounds {
            max_records: 4,
            max_wait: Duration::from_secs(5),
        };
        let mut batch = batch(0, None, 0..3);
        assert!(!bounds.is_full(&batch), "3 of 4 records");
        batch.cover(0, None, 3);
        batch.dead_lettered += 1; // a dead letter counts like a row
        assert!(bounds.is_full(&batch), "4 of 4 records");
        assert!(
            bounds.is_full(&self::batch(0, None, 0..9)),
            "past the bound"
        );
    }

    #[test]
    fn a_batch_is_due_max_wait_after_its_first_record() {
        let bounds = BatchBounds {
            max_records: 1_000,
            max_wait: Duration::from_millis(250),
        };
        let started = Instant::now();
        assert_eq!(
            bounds.deadline(started),
            started + Duration::from_millis(250)
        );
    }

    #[test]
    fn rows_become_an_arrow_batch_of_the_bronze_schema() {
        let schema = Arc::new(mlops_lake::bronze::spec().arrow_schema().expect("schema"));
        let record_batch = batch(2, None, 7..10)
            .to_record_batch(schema.clone())
            .expect("arrow");
        assert_eq!(record_batch.num_rows(), 3);
        assert_eq!(record_batch.schema(), schema);
        let offsets = record_batch
            .column_by_name(mlops_lake::bronze::KAFKA_OFFSET)
            .expect("offset column")
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("int64");
        assert_eq!(offsets.values(), &[7, 8, 9]);
    }
}
