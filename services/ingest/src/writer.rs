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

#[cfg(test)]
mod tests {
    use crate::batch::tests::batch;

    use super::*;

    fn app_id(partition: i32) -> String {
        format!("ingest/events/{partition}")
    }

    async fn lake() -> (tempfile::TempDir, LakeLocation) {
        let dir = tempfile::tempdir().expect("temp dir");
        let lake = LakeLocation::parse(dir.path().to_str().expect("utf-8")).expect("lake");
        (dir, lake)
    }

    async fn rows(writer: &mut BronzeWriter) -> usize {
        writer.refresh().await.expect("refresh");
        mlops_lake::read::read_all(&writer.table)
            .await
            .expect("read")
            .iter()
            .map(|batch| batch.num_rows())
            .sum()
    }

    #[tokio::test]
    async fn a_batch_commits_its_rows_and_each_partitions_progress() {
        let (_dir, lake) = lake().await;
        let mut writer = BronzeWriter::open(&lake).await.expect("open");
        let mut two = batch(0, None, 0..5);
        two.cover(1, None, 12); // a dead-lettered record: progress, no row
        let outcome = writer.commit(&two, app_id).await.expect("commit");
        assert!(
            matches!(outcome, CommitOutcome::Committed { .. }),
            "{outcome:?}"
        );
        assert_eq!(
            writer.committed_offset(&app_id(0)).await.expect("txn"),
            Some(4)
        );
        assert_eq!(
            writer.committed_offset(&app_id(1)).await.expect("txn"),
            Some(12)
        );
        assert_eq!(rows(&mut writer).await, 5);
    }

    #[tokio::test]
    async fn a_batch_of_only_dead_letters_still_records_progress() {
        let (_dir, lake) = lake().await;
        let mut writer = BronzeWriter::open(&lake).await.expect("open");
        let mut only_dead = crate::batch::Batch::default();
        only_dead.cover(3, None, 0);
        only_dead.cover(3, None, 1);
        let outcome = writer.commit(&only_dead, app_id).await.expect("commit");
        assert!(
            matches!(outcome, CommitOutcome::Committed { .. }),
            "{outcome:?}"
        );
        assert_eq!(
            writer.committed_offset(&app_id(3)).await.expect("txn"),
            Some(1)
        );
        assert_eq!(rows(&mut writer).await, 0);
    }

    #[tokio::test]
    async fn a_stale_batch_is_fenced_and_writes_nothing() {
        let (_dir, lake) = lake().await;
        let mut writer = BronzeWriter::open(&lake).await.expect("open");
        writer
            .commit(&batch(0, None, 0..10), app_id)
            .await
            .expect("first");
        let version = writer.version();
        // Started when the table said offset 4; it now says 9.
        let stale = batch(0, Some(4), 5..8);
        let outcome = writer.commit(&stale, app_id).await.expect("commit");
        assert_eq!(
            outcome,
            CommitOutcome::Fenced {
                partition: 0,
                expected: Some(4),
                found: Some(9)
            }
        );
        assert_eq!(writer.version(), version, "a fenced batch adds no version");
        assert_eq!(rows(&mut writer).await, 10);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn of_two_writers_racing_on_a_partition_exactly_one_lands() {
        let (_dir, lake) = lake().await;
        BronzeWriter::open(&lake).await.expect("create");
        for round in 0..5i64 {
            let mut first = BronzeWriter::open(&lake).await.expect("open");
            let mut second = BronzeWriter::open(&lake).await.expect("open");
            let base = first.committed_offset(&app_id(0)).await.expect("txn");
            let start = base.map_or(0, |last| last + 1);
            // Both read the same progress; the second covers more records.
            let a = batch(0, base, start..start + 3);
            let b = batch(0, base, start..start + 5);
            let (left, right) = tokio::join!(first.commit(&a, app_id), second.commit(&b, app_id));
            let outcomes = [left.expect("first"), right.expect("second")];
            let landed: Vec<_> = outcomes
                .iter()
                .filter(|o| matches!(o, CommitOutcome::Committed { .. }))
                .collect();
            assert_eq!(landed.len(), 1, "round {round}: {outcomes:?}");
            let expected_last = if matches!(outcomes[0], CommitOutcome::Committed { .. }) {
                start + 2
            } else {
                start + 4
            };
            let mut check = BronzeWriter::open(&lake).await.expect("open");
            assert_eq!(
                check.committed_offset(&app_id(0)).await.expect("txn"),
                Some(expected_last),
                "round {round}: the table's progress is the winner's"
            );
            let _ = rows(&mut check).await;
        }
        let mut check = BronzeWriter::open(&lake).await.expect("open");
        let last = check
            .committed_offset(&app_id(0))
            .await
            .expect("txn")
            .expect("progress");
        // No record twice: rows equal the offsets covered.
        assert_eq!(rows(&mut check).await as i64, last + 1);
    }
}
