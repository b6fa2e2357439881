//! The lineage chain of a gold table version, read from the Delta `txn`
//! actions each job commits together with its rows:
//!
//! gold version → silver version (`transform/silver`) → bronze version
//! (`transform/bronze`) → the last Kafka offset per partition that bronze
//! holds (`ingest/<topic>/<partition>`).
//!
//! The application ids are defined here once; ingest and transform record
//! their progress under them, and the trainer and the gateway read it back.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int32Type;
use deltalake::{DeltaTable, DeltaTableBuilder};

use crate::changes::app_version;
use crate::{Error, LakeLocation, Result, TableSpec, bronze, query, silver};

/// Progress of transform's silver (and quarantine) writes: the bronze version.
pub const TRANSFORM_FROM_BRONZE: &str = "transform/bronze";
/// Progress of transform's gold writes: the silver version.
pub const TRANSFORM_FROM_SILVER: &str = "transform/silver";

/// Ingest's progress on one Kafka partition: the last offset in bronze.
pub fn ingest_app_id(topic: &str, partition: i32) -> String {
    format!("ingest/{topic}/{partition}")
}

/// Where one version of a gold table comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lineage {
    pub table: String,
    pub version: u64,
    pub silver_version: u64,
    pub bronze_version: u64,
    /// Last offset bronze holds, per topic and partition.
    pub kafka_offsets: BTreeMap<(String, i32), i64>,
}

/// Opens `spec` at exactly `version`.
pub async fn open_at(lake: &LakeLocation, spec: &TableSpec, version: u64) -> Result<DeltaTable> {
    let delta_err = |source| Error::Delta {
        table: format!("{}@{version}", spec.name),
        source,
    };
    DeltaTableBuilder::from_url(lake.table_url(spec.name))
        .map_err(delta_err)?
        .with_storage_options(lake.options().clone())
        .with_version(version)
        .load()
        .await
        .map_err(delta_err)
}

/// The chain behind `version` of the gold table `gold`.
pub async fn of_gold(lake: &LakeLocation, gold: &TableSpec, version: u64) -> Result<Lineage> {
    let gold_table = open_at(lake, gold, version).await?;
    let silver_version = link(&gold_table, gold, version, TRANSFORM_FROM_SILVER).await?;
    let silver_table = open_at(lake, &silver::spec(), silver_version).await?;
    let bronze_version = link(
        &silver_table,
        &silver::spec(),
        silver_version,
        TRANSFORM_FROM_BRONZE,
    )
    .await?;
    let bronze_table = open_at(lake, &bronze::spec(), bronze_version).await?;
    let mut kafka_offsets = BTreeMap::new();
    for (topic, partition) in partitions(&bronze_table).await? {
        if let Some(offset) = app_version(&bronze_table, &ingest_app_id(&topic, partition)).await? {
            kafka_offsets.insert((topic, partition), offset);
        }
    }
    Ok(Lineage {
        table: gold.name.to_string(),
        version,
        silver_version,
        bronze_version,
        kafka_offsets,
    })
}

/// The input version a table version records under `app_id`.
async fn link(table: &DeltaTable, spec: &TableSpec, version: u64, app_id: &str) -> Result<u64> {
    let recorded = app_version(table, app_id).await?;
    recorded
        .and_then(|v| u64::try_from(v).ok())
        .ok_or_else(|| Error::InvalidData {
            what: format!("{}@{version}", spec.name),
            reason: format!("no `{app_id}` progress recorded: not written by transform"),
        })
}

/// The Kafka topics and partitions bronze holds rows of, at its loaded
/// version. A partition whose records were all dead-lettered has progress
/// but no rows, and is not listed.
async fn partitions(bronze_table: &DeltaTable) -> Result<Vec<(String, i32)>> {
    let ctx = query::session()?;
    query::register(&ctx, "bronze", bronze_table, None).await?;
    let batches = ctx
        .sql(&format!(
            "SELECT DISTINCT {topic}, {partition} FROM bronze ORDER BY {topic}, {partition}",
            topic = bronze::KAFKA_TOPIC,
            partition = bronze::KAFKA_PARTITION,
        ))
        .await?
        .collect()
        .await?;
    let mut out = Vec::new();
    for batch in &batches {
        let topics = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8)?;
        let topics = topics.as_string::<i32>();
        let partitions = batch.column(1).as_primitive::<Int32Type>();
        for row in 0..batch.num_rows() {
            if topics.is_valid(row) && partitions.is_valid(row) {
                out.push((topics.value(row).to_string(), partitions.value(row)));
            }
        }
    }
    Ok(out)
}
