//! Churn-model features, defined once.
//!
//! A feature row describes one subscriber as of the end of one day. It is
//! computed in two steps, both defined here and used by the transform
//! (offline, `gold/subscriber_features_daily`) and by the gateway (online):
//!
//! 1. [`activity`]: the subscriber's events of one day folded into a
//!    [`DailyActivity`] (an SQL aggregation over silver rows).
//! 2. [`compute`]: the features as of a day, from the [`Profile`] (activation,
//!    price changes) and the daily activity of the 30 days ending that day.
//!
//! Every window ends with the as-of day included: "7 days" is the as-of day
//! and the six before it. Nothing looks past the as-of day.
//!
//! A [`FeatureRow`] (the features with the subscriber and day) converts to and
//! from Arrow ([`row`]), and to a model's input ([`input`]). The gold tables' specs live with the other table
//! specs in `mlops-lake`, so this crate needs Arrow but no lake stack.

pub mod activity;
pub mod input;
pub mod profile;
pub mod row;
pub mod vector;

pub use activity::DailyActivity;
pub use input::InputLayout;
pub use profile::Profile;
pub use row::FeatureRow;
pub use vector::{
    FEATURES, FeatureKind, FeatureVector, LONG_WINDOW_DAYS, SHORT_WINDOW_DAYS, compute,
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("column {column}: {reason}")]
    Column { column: String, reason: String },
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
