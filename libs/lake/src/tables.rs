//! Table names and schemas as code. Every writer and reader of a table uses
//! the spec here, so each table contract (the README's "Contracts" and
//! "transform" sections describe them) has one definition.

use deltalake::kernel::{DataType, PrimitiveType, StructField};
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};

use crate::{Error, LakeLocation, Result};

/// A Delta table of the lake: its name under `LAKE_URL`, columns and partitioning.
#[derive(Clone, Debug)]
pub struct TableSpec {
    pub name: &'static str,
    pub columns: Vec<StructField>,
    pub partition_columns: Vec<&'static str>,
}

impl TableSpec {
    /// The Arrow schema of rows written to the table (partition columns included).
    pub fn arrow_schema(&self) -> Result<arrow::datatypes::Schema> {
        use deltalake::kernel::engine::arrow_conversion::TryIntoArrow;
        let fields = self
            .columns
            .iter()
            .map(|f| f.try_into_arrow())
            .collect::<Result<Vec<arrow::datatypes::Field>, _>>()?;
        Ok(arrow::datatypes::Schema::new(fields))
    }

    /// Opens the table, creating it (empty, with this schema) when missing.
    /// Safe when several replicas start at once: the loser of the create
    /// race opens the table the winner created.
    pub async fn open_or_create(&self, lake: &LakeLocation) -> Result<DeltaTable> {
        let url = lake.table_url(self.name);
        let delta_err = |source| Error::Delta {
            table: self.name.to_string(),
            source,
        };
        lake.ensure_local_dir(self.name)?;
        let table = DeltaTableBuilder::from_url(url.clone())
            .map_err(delta_err)?
            .with_storage_options(lake.options().clone())
            .build()
            .map_err(delta_err)?;
        // Loading a table without a log makes the Delta kernel log an error;
        // look for the log first so a first start does not look like a failure.
        if has_log(&table).await? {
            match DeltaTableBuilder::from_url(url.clone())
                .map_err(delta_err)?
                .with_storage_options(lake.options().clone())
                .load()
                .await
            {
                Ok(table) => return Ok(table),
                Err(DeltaTableError::NotATable(_)) => {}
                Err(other) => return Err(delta_err(other)),
            }
        }
        tracing::info!(table = self.name, %url, "creating delta table");
        let created = deltalake::operations::create::CreateBuilder::new()
            .with_log_store(table.log_store())
            .with_table_name(self.name.replace('/', "_"))
            .with_columns(self.columns.clone())
            .with_partition_columns(self.partition_columns.iter().copied())
            .await;
        match created {
            Ok(table) => Ok(table),
            // Another process may have created it between our load and
            // create: open that one, else report why creating failed.
            Err(create_error) => DeltaTableBuilder::from_url(url)
                .map_err(delta_err)?
                .with_storage_options(lake.options().clone())
                .load()
                .await
                .map_err(|_| delta_err(create_error)),
        }
    }

    /// Opens an existing table.
    pub async fn open(&self, lake: &LakeLocation) -> Result<DeltaTable> {
        let delta_err = |source| Error::Delta {
            table: self.name.to_string(),
            source,
        };
        DeltaTableBuilder::from_url(lake.table_url(self.name))
            .map_err(delta_err)?
            .with_storage_options(lake.options().clone())
            .load()
            .await
            .map_err(delta_err)
    }
}

impl TableSpec {
    /// Opens the table when it exists (its log has a commit), without the
    /// error a load of a missing table logs; `None` before the first commit.
    pub async fn open_if_exists(&self, lake: &LakeLocation) -> Result<Option<DeltaTable>> {
        let delta_err = |source| Error::Delta {
            table: self.name.to_string(),
            source,
        };
        let table = DeltaTableBuilder::from_url(lake.table_url(self.name))
            .map_err(delta_err)?
            .with_storage_options(lake.options().clone())
            .build()
            .map_err(delta_err)?;
        if !has_log(&table).await? {
            return Ok(None);
        }
        match self.open(lake).await {
            Ok(table) => Ok(Some(table)),
            Err(Error::Delta {
                source: DeltaTableError::NotATable(_),
                ..
            }) => Ok(None),
            Err(other) => Err(other),
        }
    }
}

/// Whether the table's `_delta_log/` holds anything.
async fn has_log(table: &DeltaTable) -> Result<bool> {
    use futures::TryStreamExt;
    let store = table.log_store().object_store(None);
    let prefix = object_store::path::Path::from("_delta_log");
    let first = store
        .list(Some(&prefix))
        .try_next()
        .await
        .map_err(|source| Error::Delta {
            table: table.table_url().to_string(),
            source: source.into(),
        })?;
    Ok(first.is_some())
}

fn column(name: &str, ty: PrimitiveType, nullable: bool) -> StructField {
    StructField::new(name, DataType::Primitive(ty), nullable)
}

/// `bronze/telecom_events`: every event as received, one row per Kafka
/// record, with its Kafka coordinates. Payload fields are flattened into
/// nullable columns prefixed by their kind.
pub mod bronze {
    use super::*;

    pub const TABLE: &str = "bronze/telecom_events";
    pub const EVENT_ID: &str = "event_id";
    pub const SUBSCRIBER_ID: &str = "subscriber_id";
    pub const EVENT_TIME: &str = "event_time";
    pub const EVENT_DATE: &str = "event_date";
    pub const EVENT_KIND: &str = "event_kind";
    pub const SCHEMA_VERSION: &str = "schema_version";
    pub const KAFKA_TOPIC: &str = "kafka_topic";
    pub const KAFKA_PARTITION: &str = "kafka_partition";
    pub const KAFKA_OFFSET: &str = "kafka_offset";
    pub const INGESTED_AT: &str = "ingested_at";

    /// Values of `event_kind`.
    pub mod kinds {
        pub const CALL: &str = "call";
        pub const SMS: &str = "sms";
        pub const DATA_SESSION: &str = "data_session";
        pub const TOP_UP: &str = "top_up";
        pub const PLAN_CHANGE: &str = "plan_change";
        pub const SUPPORT_TICKET: &str = "support_ticket";
        pub const CHURN: &str = "churn";
        pub const ACTIVATION: &str = "activation";
    }

    /// The typed event columns shared by bronze and silver, in order.
    pub(crate) fn event_columns() -> Vec<StructField> {
        use PrimitiveType::*;
        vec![
            column(EVENT_ID, String, false),
            column(SUBSCRIBER_ID, String, false),
            column(EVENT_TIME, Timestamp, false),
            column(EVENT_DATE, Date, false),
            column(EVENT_KIND, String, false),
            column("call_duration_seconds", Long, true),
            column("call_dropped", Boolean, true),
            column("call_region", String, true),
            column("sms_international", Boolean, true),
            column("data_bytes_up", Long, true),
            column("data_bytes_down", Long, true),
            column("data_duration_seconds", Long, true),
            column("data_network_type", String, true),
            column("top_up_amount_cents", Long, true),
            column("top_up_channel", String, true),
            column("plan_old", String, true),
            column("plan_new", String, true),
            column("plan_old_price_cents", Long, true),
            column("plan_new_price_cents", Long, true),
            column("ticket_id", String, true),
            column("ticket_category", String, true),
            column("ticket_resolution", String, true),
            column("churn_reason", String, true),
            column("churn_recipient_operator", String, true),
            column("activation_region", String, true),
            column("activation_plan", String, true),
            column("activation_monthly_price_cents", Long, true),
            column("activation_device", String, true),
            column("activation_activated_at", Timestamp, true),
        ]
    }

    /// The Kafka coordinates of a record: where it came from, for lineage.
    pub(crate) fn coordinate_columns() -> Vec<StructField> {
        use PrimitiveType::*;
        vec![
            column(KAFKA_TOPIC, String, false),
            column(KAFKA_PARTITION, Integer, false),
            column(KAFKA_OFFSET, Long, false),
            column(INGESTED_AT, Timestamp, false),
        ]
    }

    pub fn spec() -> TableSpec {
        let mut columns = event_columns();
        columns.push(column(SCHEMA_VERSION, PrimitiveType::String, false));
        columns.extend(coordinate_columns());
        TableSpec {
            name: TABLE,
            columns,
            partition_columns: vec![EVENT_DATE],
        }
    }
}

/// `silver/telecom_events`: the valid events of bronze, each `event_id` once,
/// with the bronze row's Kafka coordinates of the copy that was kept.
pub mod silver {
    pub use super::bronze::{EVENT_DATE, EVENT_ID, EVENT_KIND, EVENT_TIME, SUBSCRIBER_ID, kinds};
    use super::*;

    pub const TABLE: &str = "silver/telecom_events";

    pub fn spec() -> TableSpec {
        let mut columns = bronze::event_columns();
        columns.extend(bronze::coordinate_columns());
        TableSpec {
            name: TABLE,
            columns,
            partition_columns: vec![EVENT_DATE],
        }
    }
}

/// `silver/quarantine`: bronze rows that failed a semantic check, with the
/// reason and their bronze (Kafka) coordinates. Nothing is dropped silently.
pub mod quarantine {
    use super::*;

    pub const TABLE: &str = "silver/quarantine";
    pub const REASON: &str = "reason";
    pub const DETAIL: &str = "detail";

    pub fn spec() -> TableSpec {
        use PrimitiveType::*;
        let mut columns = vec![
            column(bronze::EVENT_ID, String, false),
            column(bronze::SUBSCRIBER_ID, String, false),
            column(bronze::EVENT_TIME, Timestamp, false),
            column(bronze::EVENT_DATE, Date, false),
            column(bronze::EVENT_KIND, String, false),
            column(REASON, String, false),
            column(DETAIL, String, false),
        ];
        columns.extend(bronze::coordinate_columns());
        TableSpec {
            name: TABLE,
            columns,
            partition_columns: vec![],
        }
    }
}

/// `gold/kpi_daily`: network and business KPIs per home region per day.
pub mod kpi_daily {
    use super::*;

    pub const TABLE: &str = "gold/kpi_daily";
    pub const EVENT_DATE: &str = "event_date";
    pub const REGION: &str = "region";
    /// Region of subscribers whose activation (profile) event is missing.
    pub const UNKNOWN_REGION: &str = "unknown";

    pub fn spec() -> TableSpec {
        use PrimitiveType::*;
        let columns = vec![
            column(EVENT_DATE, Date, false),
            column(REGION, String, false),
            column("active_subscribers", Long, false),
            column("calls", Long, false),
            column("dropped_calls", Long, false),
            column("dropped_call_rate", Double, false),
            column("data_bytes", Long, false),
            column("top_up_revenue_cents", Long, false),
            column("tickets", Long, false),
            column("unresolved_tickets", Long, false),
            column("churn_events", Long, false),
        ];
        TableSpec {
            name: TABLE,
            columns,
            partition_columns: vec![EVENT_DATE],
        }
    }
}

/// `gold/subscriber_features_daily` (one row per subscriber per day,
/// partitioned by `as_of_date`) and `gold/subscriber_features_latest` (each
/// subscriber's most recent row, for online lookups). Rows are
/// [`mlops_features::FeatureRow`]s; the feature columns come from
/// [`mlops_features::FEATURES`], in that order.
pub mod subscriber_features {
    pub use mlops_features::row::{AS_OF_DATE, CHURNED, PLAN, REGION, SUBSCRIBER_ID};
    use mlops_features::{FEATURES, FeatureKind};

    use super::*;

    pub const DAILY_TABLE: &str = "gold/subscriber_features_daily";
    pub const LATEST_TABLE: &str = "gold/subscriber_features_latest";

    fn columns() -> Vec<StructField> {
        use PrimitiveType::*;
        let mut columns = vec![
            column(SUBSCRIBER_ID, String, false),
            column(AS_OF_DATE, Date, false),
            column(REGION, String, true),
            column(PLAN, String, true),
            column(CHURNED, Boolean, false),
        ];
        columns.extend(FEATURES.iter().map(|f| {
            let ty = match f.kind {
                FeatureKind::Long => Long,
                FeatureKind::Double => Double,
            };
            column(f.name, ty, f.nullable)
        }));
        columns
    }

    pub fn daily_spec() -> TableSpec {
        TableSpec {
            name: DAILY_TABLE,
            columns: columns(),
            partition_columns: vec![AS_OF_DATE],
        }
    }

    pub fn latest_spec() -> TableSpec {
        TableSpec {
            name: LATEST_TABLE,
            columns: columns(),
            partition_columns: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::NaiveDate;
    use mlops_features::row::{from_record_batch, to_record_batch};
    use mlops_features::{FEATURES, FeatureRow, FeatureVector};

    use super::*;

    #[test]
    fn bronze_schema_converts_to_arrow_with_utc_timestamps() {
        let schema = bronze::spec().arrow_schema().expect("arrow schema");
        let field = schema
            .field_with_name(bronze::EVENT_TIME)
            .expect("event_time");
        assert_eq!(
            field.data_type(),
            &arrow::datatypes::DataType::Timestamp(
                arrow::datatypes::TimeUnit::Microsecond,
                Some("UTC".into())
            )
        );
        assert!(!field.is_nullable());
        assert_eq!(schema.fields().len(), bronze::spec().columns.len());
    }

    #[test]
    fn feature_rows_round_trip_through_the_gold_tables_schema() {
        for spec in [
            subscriber_features::daily_spec(),
            subscriber_features::latest_spec(),
        ] {
            let schema = Arc::new(spec.arrow_schema().expect("arrow schema"));
            let row = FeatureRow {
                subscriber_id: "sub-1".into(),
                as_of_date: NaiveDate::from_ymd_opt(2026, 3, 4).expect("date"),
                region: Some("north".into()),
                plan: None,
                churned: true,
                features: FeatureVector {
                    tenure_days: None,
                    calls_30d: 12,
                    dropped_call_rate_7d: 0.5,
                    days_since_last_activity: 3,
                    ..FeatureVector::default()
                },
            };
            let batch = to_record_batch(schema, std::slice::from_ref(&row)).expect("batch");
            assert_eq!(batch.num_columns(), 5 + FEATURES.len(), "{}", spec.name);
            assert_eq!(
                from_record_batch(&batch).expect("rows"),
                vec![row],
                "{}",
                spec.name
            );
        }
    }
}
