//! Fenced commits of micro-batches to the bronze table.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake::kernel::{Action, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableError};
use mlops_lake::{LakeLocation, bronze};

use crate::batch::Batch;
use crate::{Error, Result};

/// What became of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Appended as this table version.
    Committed { version: u64 },
    /// Another writer moved a partition this batch covers: the batch was not
    /// written and must be re-read from the table's progress.
    Fenced {
        partition: i32,
        expected: Option<i64>,
        found: Option<i64>,
    },
    /// A concurrent commit of another writer touched the same partitions.
    Conflict(String),
}

pub struct BronzeWriter {
    table: DeltaTable,
    schema: SchemaRef,
}

fn delta(source: DeltaTableError) -> Error {
    Error::Delta {
        table: bronze::TABLE.to_string(),
        source: Box::new(source),
    }
}

impl BronzeWriter {
    /// Opens the bronze table, creating it when missing.
    pub async fn open(lake: &LakeLocation) -> Result<Self> {
        let spec = bronze::spec();
        let table = spec.open_or_create(lake).await?;
        let schema = Arc::new(spec.arrow_schema()?);
        Ok(Self { table, schema })
    }

    pub fn version(&self) -> Option<u64> {
        self.table.version()
    }

    /// Reads commits made since the last refresh (by any writer).
    pub async fn refresh(&mut self) -> Result<()> {
        self.table.update_incremental(None).await.map_err(delta)
    }

    /// The last offset of a partition recorded in the loaded table version.
    pub async fn committed_offset(&self, app_id: &str) -> Result<Option<i64>> {
        self.table
            .snapshot()
            .map_err(delta)?
            .transaction_version(self.table.log_store().as_ref(), app_id)
            .await
            .map_err(delta)
    }

    /// Appends the batch's rows and records its partitions' progress, in one
    /// Delta commit, unless another writer moved any of those partitions.
    pub async fn commit(
        &mut self,
        batch: &Batch,
        app_id: impl Fn(i32) -> String,
    ) -> Result<CommitOutcome> {
        self.refresh().await?;
        for (&partition, span) in &batch.spans {
            let found = self.committed_offset(&app_id(partition)).await?;
            if found != span.base {
                return Ok(CommitOutcome::Fenced {
                    partition,
                    expected: span.base,
                    found,
                });
            }
        }

        let mut actions = Vec::new();
        if batch.rows() > 0 {
            let record_batch = batch.to_record_batch(self.schema.clone())?;
            let mut writer = RecordBatchWriter::for_table(&self.table).map_err(delta)?;
            writer.write(record_batch).await.map_err(delta)?;
            actions.extend(
                writer
                    .flush()
                    .await
                    .map_err(delta)?
                    .into_iter()
                    .map(Action::Add),
            );
        }
        let txns = batch
            .spans
            .iter()
            .map(|(&partition, span)| Transaction::new(app_id(partition), span.last))
            .collect();
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: Some(vec![bronze::EVENT_DATE.to_string()]),
            predicate: None,
        };
        let snapshot = self.table.snapshot().map_err(delta)?;
        let committed =
            CommitBuilder::from(CommitProperties::default().with_application_transactions(txns))
                .with_actions(actions)
                .build(Some(snapshot), self.table.log_store(), operation)
                .await;
        match committed {
            Ok(finalized) => {
                let version = finalized.version();
                self.table
                    .update_incremental(Some(version))
                    .await
                    .map_err(delta)?;
                Ok(CommitOutcome::Committed { version })
            }
            Err(DeltaTableError::Transaction {
                source: TransactionError::CommitConflict(conflict),
            }) => Ok(CommitOutcome::Conflict(conflict.to_string())),
            Err(other) => Err(delta(other)),
        }
    }
}
