//! A feature row (one subscriber as of one day, with the features of
//! [`FEATURES`]) and its Arrow conversion. The tables that hold these rows
//! (`gold/subscriber_features_daily` and `gold/subscriber_features_latest`)
//! are specified in `mlops-lake` (`tables::subscriber_features`), from the
//! column names here and [`FEATURES`]; this crate needs no lake to compute
//! or read rows.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::SchemaRef;
use chrono::NaiveDate;

use crate::activity::{dates, days_from_date, strings};
use crate::vector::Value;
use crate::{Error, FEATURES, FeatureKind, FeatureVector, Result};

/// The columns of a row besides the features, which are named by [`FEATURES`].
pub const SUBSCRIBER_ID: &str = "subscriber_id";
pub const AS_OF_DATE: &str = "as_of_date";
pub const REGION: &str = "region";
pub const PLAN: &str = "plan";
pub const CHURNED: &str = "churned";

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

/// Rows as an Arrow batch of `schema` (a feature table's). Columns are
/// filled by name, so the column order is the schema's alone.
pub fn to_record_batch(schema: SchemaRef, rows: &[FeatureRow]) -> Result<RecordBatch> {
    let values: Vec<_> = rows.iter().map(|r| r.features.values()).collect();
    let arrays = schema
        .fields()
        .iter()
        .map(|field| column(field.name(), rows, &values))
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema, arrays)?)
}

/// The column `name` of `rows`; `values` are the rows' feature values.
fn column(name: &str, rows: &[FeatureRow], values: &[[Value; 17]]) -> Result<ArrayRef> {
    let array: ArrayRef = match name {
        SUBSCRIBER_ID => Arc::new(
            rows.iter()
                .map(|r| Some(r.subscriber_id.as_str()))
                .collect::<StringArray>(),
        ),
        AS_OF_DATE => Arc::new(
            rows.iter()
                .map(|r| Some(days_from_date(r.as_of_date)))
                .collect::<Date32Array>(),
        ),
        REGION => Arc::new(
            rows.iter()
                .map(|r| r.region.as_deref())
                .collect::<StringArray>(),
        ),
        PLAN => Arc::new(
            rows.iter()
                .map(|r| r.plan.as_deref())
                .collect::<StringArray>(),
        ),
        CHURNED => Arc::new(
            rows.iter()
                .map(|r| Some(r.churned))
                .collect::<BooleanArray>(),
        ),
        _ => {
            let Some(index) = FEATURES.iter().position(|f| f.name == name) else {
                return Err(Error::Column {
                    column: name.to_string(),
                    reason: "not a column of a feature row".into(),
                });
            };
            match FEATURES[index].kind {
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
            }
        }
    };
    Ok(array)
}

/// Reads feature rows back (e.g. from the latest table).
pub fn from_record_batch(batch: &RecordBatch) -> Result<Vec<FeatureRow>> {
    use crate::activity::longs;
    use arrow::array::AsArray;
    use arrow::compute::cast;
    use arrow::datatypes::{DataType as ArrowType, Float64Type};

    let ids = strings(batch, SUBSCRIBER_ID)?;
    let days = dates(batch, AS_OF_DATE)?;
    let regions = strings(batch, REGION)?;
    let plans = strings(batch, PLAN)?;
    let churned = batch
        .column_by_name(CHURNED)
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
                let column = batch
                    .column_by_name(feature.name)
                    .ok_or_else(|| Error::Column {
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
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    /// A schema with every column of a row, features first: not the tables'
    /// order (that round trip is tested in `mlops-lake`), to show columns
    /// are matched by name.
    fn schema() -> SchemaRef {
        let mut fields: Vec<Field> = FEATURES
            .iter()
            .map(|f| {
                let ty = match f.kind {
                    FeatureKind::Long => DataType::Int64,
                    FeatureKind::Double => DataType::Float64,
                };
                Field::new(f.name, ty, f.nullable)
            })
            .collect();
        fields.extend([
            Field::new(CHURNED, DataType::Boolean, false),
            Field::new(PLAN, DataType::Utf8, true),
            Field::new(REGION, DataType::Utf8, true),
            Field::new(AS_OF_DATE, DataType::Date32, false),
            Field::new(SUBSCRIBER_ID, DataType::Utf8, false),
        ]);
        Arc::new(Schema::new(fields))
    }

    fn row() -> FeatureRow {
        FeatureRow {
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
        }
    }

    #[test]
    fn rows_round_trip_through_arrow() {
        let row = row();
        let batch = to_record_batch(schema(), std::slice::from_ref(&row)).expect("batch");
        assert_eq!(batch.num_columns(), 5 + FEATURES.len());
        assert_eq!(
            batch.schema().field(0).name(),
            FEATURES[0].name,
            "the schema's order"
        );
        assert_eq!(from_record_batch(&batch).expect("rows"), vec![row]);
    }

    #[test]
    fn an_unknown_column_is_an_error() {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "shoe_size",
            DataType::Int64,
            true,
        )]));
        let error = to_record_batch(schema, &[row()]).expect_err("unknown column");
        assert_eq!(
            error.to_string(),
            "column shoe_size: not a column of a feature row"
        );
    }
}
