//! Reading a table's current data files, for tools and verification.
//! (Query engines read the lake through DataFusion; this is the minimal path
//! that needs none.) Partition columns live in the Delta log, not in the
//! files, so they are not part of the returned batches.

use arrow::record_batch::RecordBatch;
use deltalake::DeltaTable;
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use object_store::ObjectStoreExt;

use crate::{Error, Result};

/// Every row of the table at its loaded version.
pub async fn read_all(table: &DeltaTable) -> Result<Vec<RecordBatch>> {
    let name = table.table_url().to_string();
    let snapshot = table.snapshot().map_err(|source| Error::Delta {
        table: name.clone(),
        source,
    })?;
    let store = table.object_store();
    let paths: Vec<_> = snapshot
        .log_data()
        .iter()
        .map(|file| file.object_store_path())
        .collect();
    let mut batches = Vec::new();
    for path in paths {
        let parquet_err = |source| Error::Parquet {
            path: path.to_string(),
            source,
        };
        // Data files are written in bounded batches, so reading one whole
        // file into memory is fine for this verification path.
        let bytes = store
            .get(&path)
            .await
            .map_err(|e| parquet_err(e.into()))?
            .bytes()
            .await
            .map_err(|e| parquet_err(e.into()))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .map_err(parquet_err)?
            .build()
            .map_err(parquet_err)?;
        for batch in reader {
            batches.push(batch?);
        }
    }
    Ok(batches)
}
