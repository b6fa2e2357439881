//! What changed in a table between two versions, read from its commit log.
//! Incremental jobs use it to process only the data files a table gained
//! since the version their last run reflected.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::NaiveDate;
use deltalake::DeltaTable;
use deltalake::kernel::{Action, Add};
use deltalake::logstore::get_actions;
use futures::{StreamExt, TryStreamExt};

use crate::{Error, Result};

/// How many commit files are read at once (they are small; on object stores
/// the latency of each GET dominates).
const CONCURRENT_COMMIT_READS: usize = 16;

/// The data a table gained after one version up to its loaded version.
#[derive(Clone, Debug, Default)]
pub struct NewData {
    /// The files to read: `None` means every live file of the loaded version
    /// (the whole table is new). Files rewritten by compaction carry no new
    /// data and are left out.
    pub files: Option<Vec<Add>>,
    file_count: usize,
    rows: u64,
    partitions: Vec<HashMap<String, Option<String>>>,
}

impl NewData {
    fn from_adds(files: Vec<Add>) -> Self {
        Self {
            file_count: files.len(),
            rows: files
                .iter()
                .filter_map(|add| add.get_stats().ok().flatten())
                .map(|stats| stats.num_records.max(0) as u64)
                .sum(),
            partitions: files
                .iter()
                .map(|add| add.partition_values.clone())
                .collect(),
            files: Some(files),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.file_count == 0
    }

    /// Rows in the new files, from the file statistics in the log (files
    /// without statistics count as zero).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The values of a date partition column among the new files.
    pub fn partition_dates(&self, column: &str) -> Result<BTreeSet<NaiveDate>> {
        self.partitions
            .iter()
            .filter_map(|values| values.get(column).cloned().flatten())
            .map(|raw| {
                NaiveDate::parse_from_str(&raw, "%Y-%m-%d").map_err(|e| Error::InvalidData {
                    what: format!("partition value {column}={raw}"),
                    reason: e.to_string(),
                })
            })
            .collect()
    }
}

/// Every live file of the table's loaded version.
fn whole_table(table: &DeltaTable) -> Result<NewData> {
    if table.version().is_none() {
        return Ok(NewData::default());
    }
    let snapshot = table.snapshot().map_err(|source| Error::Delta {
        table: table.table_url().to_string(),
        source,
    })?;
    let mut data = NewData::default();
    for file in snapshot.log_data().iter() {
        data.file_count += 1;
        data.rows += file.num_records().unwrap_or_default() as u64;
        data.partitions.push(file.partition_values_map());
    }
    Ok(data)
}

/// Files added to `table` after version `after` (exclusive) up to the
/// table's loaded version (inclusive). `after = None` means from the start:
/// every live file of the loaded version.
pub async fn new_data(table: &DeltaTable, after: Option<u64>) -> Result<NewData> {
    let name = table.table_url().to_string();
    let delta_err = |source| Error::Delta {
        table: name.clone(),
        source,
    };
    let Some(current) = table.version() else {
        return Ok(NewData::default());
    };
    let Some(after) = after else {
        return whole_table(table);
    };
    if after >= current {
        return Ok(NewData::default());
    }
    let log_store = table.log_store();
    let commits: Vec<(u64, Vec<Action>)> = futures::stream::iter(after + 1..=current)
        .map(|version| {
            let log_store = log_store.clone();
            async move {
                let bytes = log_store
                    .read_commit_entry(version as _)
                    .await?
                    .ok_or_else(|| {
                        deltalake::DeltaTableError::Generic(format!(
                            "commit {version} is missing from the log (cleaned up?)"
                        ))
                    })?;
                Ok::<_, deltalake::DeltaTableError>((version, get_actions(version as _, &bytes)?))
            }
        })
        .buffered(CONCURRENT_COMMIT_READS)
        .try_collect()
        .await
        .map_err(delta_err)?;

    // A file added and later removed within the range is not read: its rows
    // were deleted or moved into another file of the range.
    let removed: HashSet<String> = commits
        .iter()
        .flat_map(|(_, actions)| actions.iter())
        .filter_map(|action| match action {
            Action::Remove(remove) => Some(remove.path.clone()),
            _ => None,
        })
        .collect();
    let files = commits
        .into_iter()
        .flat_map(|(_, actions)| actions)
        .filter_map(|action| match action {
            Action::Add(add) if add.data_change && !removed.contains(&add.path) => Some(add),
            _ => None,
        })
        .collect();
    Ok(NewData::from_adds(files))
}

/// The latest `version` a table's commits recorded for `app_id` (Delta `txn`).
pub async fn app_version(table: &DeltaTable, app_id: &str) -> Result<Option<i64>> {
    if table.version().is_none() {
        return Ok(None);
    }
    let delta_err = |source| Error::Delta {
        table: table.table_url().to_string(),
        source,
    };
    table
        .snapshot()
        .map_err(delta_err)?
        .transaction_version(table.log_store().as_ref(), app_id)
        .await
        .map_err(delta_err)
}

/// The values of a date partition column across the table's live files.
pub fn partition_dates(table: &DeltaTable, column: &str) -> Result<BTreeSet<NaiveDate>> {
    whole_table(table)?.partition_dates(column)
}

/// Records that `table` now reflects `version` of an input under `app_id`
/// (a Delta `txn`), in a commit without data: progress for a run whose input
/// produced no rows.
pub async fn record_progress(table: &DeltaTable, app_id: &str, version: i64) -> Result<DeltaTable> {
    use deltalake::kernel::Transaction;
    use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
    use deltalake::protocol::{DeltaOperation, SaveMode};

    let delta_err = |source| Error::Delta {
        table: table.table_url().to_string(),
        source,
    };
    let snapshot = table.snapshot().map_err(delta_err)?;
    let operation = DeltaOperation::Write {
        mode: SaveMode::Append,
        partition_by: None,
        predicate: None,
    };
    let finalized = CommitBuilder::from(
        CommitProperties::default().with_application_transaction(Transaction::new(app_id, version)),
    )
    .with_actions(vec![])
    .build(Some(snapshot), table.log_store(), operation)
    .await
    .map_err(delta_err)?;
    let mut updated = table.clone();
    updated
        .update_incremental(Some(finalized.version()))
        .await
        .map_err(delta_err)?;
    Ok(updated)
}
