//! Ingest: the events topic into the bronze Delta table, exactly once.
//!
//! How exactly-once holds. Each Delta commit that appends a micro-batch also
//! carries one `txn` action per Kafka partition (`appId` =
//! `ingest/<topic>/<partition>`, `version` = the last offset the batch covers,
//! dead-lettered records included). The table, not the consumer group, is the
//! source of truth for progress: a partition's first record after an
//! assignment or a restart is checked against the table and the consumer
//! seeks to the offset after the table's `txn` version. The commit itself is
//! fenced: before committing, the writer re-reads the table and requires each
//! partition's `txn` version to be the one the batch started from, and Delta's
//! conflict checker rejects the commit if another writer moved the same
//! `appId` meanwhile. A batch that loses is dropped and re-read. Kafka group
//! offsets are committed after the Delta commit, for lag monitoring only.
//!
//! Dead letters are pipelined: each is handed to the producer without
//! waiting, and the batch that skips their records commits only after every
//! one of them is acknowledged. A failed dead letter fails the batch, whose
//! records are read and judged again.

pub mod app;
pub mod assignment;
pub mod batch;
pub mod config;
mod context;
pub mod decode;
pub mod metrics;
mod pipeline;
pub mod writer;

pub use app::App;
pub use config::IngestConfig;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // Boxed: the Delta errors are large and would bloat every `Result`.
    #[error(transparent)]
    Lake(Box<mlops_lake::Error>),
    #[error("delta table {table}: {source}")]
    Delta {
        table: String,
        #[source]
        source: Box<deltalake::DeltaTableError>,
    },
    #[error(transparent)]
    Bus(#[from] mlops_bus::Error),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("internal: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<mlops_lake::Error> for Error {
    fn from(error: mlops_lake::Error) -> Self {
        Self::Lake(Box::new(error))
    }
}
