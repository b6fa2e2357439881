//! Transform: bronze → silver → gold with DataFusion over Delta Lake.
//!
//! How a run stays incremental, idempotent and crash-safe. Every output
//! table records, in the same Delta commit as its data, the version of its
//! input table it now reflects (a `txn` action: `appId` = `transform/bronze`
//! for silver and quarantine, `transform/silver` for the gold tables). A run
//! reads each output's recorded version, takes from the input's commit log
//! only the data files added since then, and writes its result together with
//! the new version. A run killed at any point leaves each table either as it
//! was or fully updated; the next run picks up from what each table records.
//! Outputs are a function of their input table's contents at a version, so
//! a rerun writes what an uninterrupted run would have written.
//!
//! - **Silver** (`silver/telecom_events`) appends the new bronze rows that
//!   pass the semantic checks ([`silver::RULES`]), keeping the first copy of
//!   each `event_id` (by Kafka coordinates) and dropping copies already in
//!   silver within the dedup horizon. The rest go to `silver/quarantine` with
//!   the rule that failed and their Kafka coordinates.
//! - **Gold** recomputes the days the new silver rows touch, and every later
//!   day (a late event changes the windows of the 30 days after it):
//!   `gold/subscriber_features_daily` and `gold/kpi_daily` replace those
//!   date partitions; `gold/subscriber_features_latest` keeps each
//!   subscriber's most recent row.

pub mod app;
pub mod config;
pub mod gold;
pub mod metrics;
pub mod silver;

pub use app::{App, RunReport};
pub use config::TransformConfig;

/// The `txn` application id under which silver and quarantine record the
/// bronze version they reflect (defined with the lineage chain in the lake).
pub use mlops_lake::lineage::TRANSFORM_FROM_BRONZE as APP_BRONZE;
/// The `txn` application id under which gold tables record the silver version.
pub use mlops_lake::lineage::TRANSFORM_FROM_SILVER as APP_SILVER;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // Boxed: the lake errors are large and would bloat every `Result`.
    #[error(transparent)]
    Lake(Box<mlops_lake::Error>),
    #[error("delta table {table}: {source}")]
    Delta {
        table: String,
        #[source]
        source: Box<deltalake::DeltaTableError>,
    },
    #[error("query: {0}")]
    Query(Box<deltalake::datafusion::error::DataFusionError>),
    #[error(transparent)]
    Features(#[from] mlops_features::Error),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<mlops_lake::Error> for Error {
    fn from(error: mlops_lake::Error) -> Self {
        Self::Lake(Box::new(error))
    }
}

impl From<deltalake::datafusion::error::DataFusionError> for Error {
    fn from(error: deltalake::datafusion::error::DataFusionError) -> Self {
        Self::Query(Box::new(error))
    }
}

pub(crate) fn delta(table: &str) -> impl Fn(deltalake::DeltaTableError) -> Error + '_ {
    move |source| Error::Delta {
        table: table.to_string(),
        source: Box::new(source),
    }
}

/// Times the phases of a run (logged at debug level: set
/// `RUST_LOG=mlops_transform=debug` to see where a long run spends its time).
pub(crate) struct Phases {
    last: std::time::Instant,
}

impl Phases {
    pub(crate) fn start() -> Self {
        Self {
            last: std::time::Instant::now(),
        }
    }

    pub(crate) fn done(&mut self, phase: &'static str) {
        tracing::debug!(
            phase,
            seconds = self.last.elapsed().as_secs_f64(),
            "phase finished"
        );
        self.last = std::time::Instant::now();
    }
}
