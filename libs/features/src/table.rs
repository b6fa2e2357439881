//! The gold feature tables: `gold/subscriber_features_daily` (one row per
//! subscriber per day, partitioned by `as_of_date`) and
//! `gold/subscriber_features_latest` (each subscriber's most recent row, for
//! online lookups). Their feature columns come from [`FEATURES`].

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::SchemaRef;
use chrono::NaiveDate;
use mlops_lake::TableSpec;
use mlops_lake::deltalake::kernel::{DataType, PrimitiveType, StructField};

use crate::activity::{dates, days_from_date, strings};
use crate::vector::Value;
use crate::{FEATURES, FeatureKind, FeatureVector, Result};

pub const DAILY_TABLE: &str = "gold/subscriber_features_daily";
pub const LATEST_TABLE: &str = "gold/subscriber_features_latest";
pub const SUBSCRIBER_ID: &str = "subscriber_id";
pub const AS_OF_DATE: &str = "as_of_date";

/// One row of the feature tables.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureRow {
    pub subscriber_id: String,
    pub as_of_date: NaiveDate,
    pub region: Option<String>,
    pub plan: Option<String>,
    /// The subscriber's churn event happened on this day (its last row).
    /// A label source for training, never a model input.
    pub churned: bool,
    pub features: FeatureVector,
}

fn columns() -> Vec<StructField> {
    let mut columns = vec![
        StructField::new(
            SUBSCRIBER_ID,
            DataType::Primitive(PrimitiveType::String),
            false,
        ),
        StructField::new(AS_OF_DATE, DataType::Primitive(PrimitiveType::Date), false),
        StructField::new("region", DataType::Primitive(PrimitiveType::String), true),
        StructField::new("plan", DataType::Primitive(PrimitiveType::String), true),
        StructField::new(
            "churned",
            DataType::Primitive(PrimitiveType::Boolean),
            false,
        ),
    ];
    columns.extend(FEATURES.iter().map(|f| {
        let ty = match f.kind {
            FeatureKind::Long => PrimitiveType::Long,
            FeatureKind::Double => PrimitiveType::Double,
        };
        StructField::new(f.name, DataType::Primitive(ty), f.nullable)
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

/// Rows as an Arrow batch of the tables' schema.
pub fn to_record_batch(schema: SchemaRef, rows: &[FeatureRow]) -> Result<RecordBatch> {
    let mut arrays: Vec<ArrayRef> = vec![
        Arc::new(
            rows.iter()
                .map(|r| Some(r.subscriber_id.as_str()))
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| Some(days_from_date(r.as_of_date)))
                .collect::<Date32Array>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.region.as_deref())
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.plan.as_deref())
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.churned))
                .collect::<BooleanArray>(),
        ),
    ];
    let values: Vec<_> = rows.iter().map(|r| r.features.values()).collect();
    for (index, feature) in FEATURES.iter().enumerate() {
        let array: ArrayRef = match feature.kind {
            FeatureKind::Long => Arc::new(
                values
                    .iter()
                    .map(|v| match v[index] {
                        Value::Long(v) => v,
                        Value::Double(v) => Some(v as i64),
                    })
                    .collect::<Int64Array>(),
            ),
            FeatureKind::Double => Arc::new(
                values
                    .iter()
                    .map(|v| match v[index] {
                        Value::Double(v) => Some(v),
                        Value::Long(v) => v.map(|v| v as f64),
                    })
                    .collect::<Float64Array>(),
            ),
        };
        arrays.push(array);
    }
    Ok(RecordBatch::try_new(schema, arrays)?)
}

/// Reads feature rows back (e.g. from the latest table).
pub fn from_record_batch(batch: &RecordBatch) -> Result<Vec<FeatureRow>> {
    use crate::activity::longs;
    use arrow::array::AsArray;
    use arrow::compute::cast;
    use arrow::datatypes::{DataType as ArrowType, Float64Type};

    let ids = strings(batch, SUBSCRIBER_ID)?;
    let days = dates(batch, AS_OF_DATE)?;
    let regions = strings(batch, "region")?;
    let plans = strings(batch, "plan")?;
    let churned = batch
        .column_by_name("churned")
        .map(|c| cast(c, &ArrowType::Boolean))
        .transpose()?;
    let mut longs_by_feature = Vec::new();
    let mut doubles_by_feature = Vec::new();
    for feature in FEATURES {
        match feature.kind {
            FeatureKind::Long => {
                longs_by_feature.push(longs(batch, feature.name)?);
                doubles_by_feature.push(Vec::new());
            }
            FeatureKind::Double => {
                let column =
                    batch
                        .column_by_name(feature.name)
                        .ok_or_else(|| crate::Error::Column {
                            column: feature.name.to_string(),
                            reason: "missing".into(),
                        })?;
                let array = cast(column, &ArrowType::Float64)?;
                doubles_by_feature.push(array.as_primitive::<Float64Type>().iter().collect());
                longs_by_feature.push(Vec::new());
            }
        }
    }
    let mut rows = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let long = |i: usize| longs_by_feature[i][row];
        let double = |i: usize| doubles_by_feature[i][row].unwrap_or_default();
        let count = |i: usize| long(i).unwrap_or_default();
        rows.push(FeatureRow {
            subscriber_id: ids[row].clone().unwrap_or_default(),
            as_of_date: days[row].unwrap_or_default(),
            region: regions[row].clone(),
            plan: plans[row].clone(),
            churned: churned.as_ref().is_some_and(|c| c.as_boolean().value(row)),
            features: FeatureVector {
                tenure_days: long(0),
                plan_price_cents: long(1),
                price_change_30d_cents: long(2),
                calls_7d: count(3),
                calls_30d: count(4),
                dropped_call_rate_7d: double(5),
                dropped_call_rate_30d: double(6),
                sms_30d: count(7),
                data_mb_7d: double(8),
                data_mb_30d: double(9),
                data_trend: double(10),
                top_ups_30d: count(11),
                top_up_cents_30d: count(12),
                tickets_30d: count(13),
                unresolved_tickets_30d: count(14),
                active_days_30d: count(15),
                days_since_last_activity: count(16),
            },
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_through_arrow() {
        let schema = Arc::new(daily_spec().arrow_schema().expect("schema"));
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
        assert_eq!(batch.num_columns(), 5 + FEATURES.len());
        assert_eq!(from_record_batch(&batch).expect("rows"), vec![row]);
    }
}
