//! The model input a feature row becomes, defined once for the trainer
//! (training matrices) and the gateway (online scoring): each input column is
//! a feature of [`FEATURES`] (as [`FeatureVector::as_model_input`] gives it,
//! unknown as NaN) or a one-hot category, `region=<value>` or
//! `plan=<value>`, 1 when the row has that value and 0 otherwise (an unknown
//! or new category is all zeros). A model names its columns in its
//! `features` metadata, so a row is encoded for the model it meets.

use crate::{FEATURES, FeatureRow};

/// Prefix of a region's one-hot column.
pub const REGION_PREFIX: &str = "region=";
/// Prefix of a plan's one-hot column.
pub const PLAN_PREFIX: &str = "plan=";

/// A region's one-hot column name.
pub fn region_column(region: &str) -> String {
    format!("{REGION_PREFIX}{region}")
}

/// A plan's one-hot column name.
pub fn plan_column(plan: &str) -> String {
    format!("{PLAN_PREFIX}{plan}")
}

/// Where one input column comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// The feature at this index of [`FEATURES`].
    Feature(usize),
    Region(String),
    Plan(String),
}

impl Source {
    /// The source a column name stands for; a name no feature row can
    /// provide is an error naming it.
    pub fn of(name: &str) -> Result<Self, String> {
        if let Some(i) = FEATURES.iter().position(|f| f.name == name) {
            Ok(Self::Feature(i))
        } else if let Some(value) = name.strip_prefix(REGION_PREFIX) {
            Ok(Self::Region(value.to_string()))
        } else if let Some(value) = name.strip_prefix(PLAN_PREFIX) {
            Ok(Self::Plan(value.to_string()))
        } else {
            Err(format!(
                "input column {name:?} is not a feature, {REGION_PREFIX}<value> or {PLAN_PREFIX}<value>"
            ))
        }
    }
}

/// A model's input columns, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct InputLayout {
    names: Vec<String>,
    sources: Vec<Source>,
}

impl InputLayout {
    pub fn new(names: &[String]) -> Result<Self, String> {
        Ok(Self {
            names: names.to_vec(),
            sources: names
                .iter()
                .map(|n| Source::of(n))
                .collect::<Result<_, _>>()?,
        })
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    pub fn width(&self) -> usize {
        self.names.len()
    }

    /// Appends `row`'s input, one value per column.
    pub fn encode(&self, row: &FeatureRow, out: &mut Vec<f32>) {
        let features = row.features.as_model_input();
        let one_hot = |have: &Option<String>, want: &str| {
            if have.as_deref() == Some(want) {
                1.0
            } else {
                0.0
            }
        };
        out.extend(self.sources.iter().map(|source| match source {
            Source::Feature(i) => features[*i],
            Source::Region(value) => one_hot(&row.region, value),
            Source::Plan(value) => one_hot(&row.plan, value),
        }));
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::FeatureVector;

    #[test]
    fn rows_encode_by_column_name() {
        let names: Vec<String> = [
            "calls_7d",
            "tenure_days",
            "region=north",
            "plan=gold",
            "plan=basic",
        ]
        .map(String::from)
        .to_vec();
        let layout = InputLayout::new(&names).expect("layout");
        let row = FeatureRow {
            subscriber_id: "s1".into(),
            as_of_date: NaiveDate::from_ymd_opt(2026, 3, 1).expect("date"),
            region: Some("north".into()),
            plan: Some("silver".into()),
            churned: false,
            features: FeatureVector {
                calls_7d: 4,
                ..Default::default()
            },
        };
        let mut out = Vec::new();
        layout.encode(&row, &mut out);
        assert_eq!(out[0], 4.0);
        assert!(out[1].is_nan(), "unknown tenure");
        assert_eq!(
            &out[2..],
            &[1.0, 0.0, 0.0],
            "a plan the model never saw is all zeros"
        );

        let error = InputLayout::new(&["age".to_string()]).expect_err("unknown column");
        assert!(error.contains("\"age\" is not a feature"), "{error}");
    }
}
