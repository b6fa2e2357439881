//! The lakehouse: object storage located by URL and the platform's Delta Lake
//! tables, whose names and schemas are defined here once.
//!
//! Supported locations: `file:///abs/path` (or a plain path), `s3://bucket/prefix`,
//! `az://container/prefix` and `memory:///`. Credentials come from the standard
//! `AWS_*` and `AZURE_STORAGE_*` environment variables, read by `object_store`.
//! Delta commits are atomic on every store: put-if-absent on the local
//! filesystem and Azure, conditional writes (`If-None-Match`) on S3.

pub mod changes;
pub mod lineage;
pub mod location;
pub mod open;
pub mod query;
pub mod read;
pub mod tables;

pub use deltalake;
pub use location::LakeLocation;
pub use open::OpenTables;
pub use tables::{TableSpec, bronze, kpi_daily, quarantine, silver, subscriber_features};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid lake location {url:?}: {reason}")]
    InvalidLocation { url: String, reason: String },
    #[error("delta table {table}: {source}")]
    Delta {
        table: String,
        #[source]
        source: deltalake::DeltaTableError,
    },
    #[error("reading {path}: {source}")]
    Parquet {
        path: String,
        #[source]
        source: deltalake::parquet::errors::ParquetError,
    },
    #[error("{what}: {reason}")]
    InvalidData { what: String, reason: String },
    #[error("query: {0}")]
    Query(#[from] deltalake::datafusion::error::DataFusionError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}
