//! Writes the training matrices as Parquet (`TRAINER_EXPORT_MATRICES_DIR`),
//! so outside tools (the benchmark's LightGBM and scikit-learn) train on
//! exactly the rows and columns the trainer used: one float32 column per
//! input column (NaN for unknown), then `label` (0/1).

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, Int8Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use mlops_lake::deltalake::parquet::arrow::ArrowWriter;

use crate::matrix::Matrix;
use crate::{Error, Result};

pub fn write(dir: &Path, name: &str, matrix: &Matrix, columns: &[String]) -> Result<()> {
    let path = dir.join(format!("{name}.parquet"));
    let io = |source: std::io::Error| Error::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut fields: Vec<Field> = columns
        .iter()
        .map(|c| Field::new(c, DataType::Float32, true))
        .collect();
    fields.push(Field::new("label", DataType::Int8, false));
    let schema = Arc::new(Schema::new(fields));
    let mut arrays: Vec<ArrayRef> = (0..matrix.width)
        .map(|j| Arc::new(Float32Array::from_iter_values(matrix.column(j))) as ArrayRef)
        .collect();
    arrays.push(Arc::new(Int8Array::from_iter_values(
        matrix.labels.iter().map(|l| i8::from(*l)),
    )));
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(mlops_lake::Error::from)?;
    let file = std::fs::File::create(&path).map_err(io)?;
    let parquet = |e: mlops_lake::deltalake::parquet::errors::ParquetError| Error::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(e.to_string()),
    };
    let mut writer = ArrowWriter::try_new(file, schema, None).map_err(parquet)?;
    writer.write(&batch).map_err(parquet)?;
    writer.close().map_err(parquet)?;
    Ok(())
}
