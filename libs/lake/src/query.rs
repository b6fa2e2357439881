//! DataFusion sessions over the lake's Delta tables.

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::DeltaTable;
use deltalake::datafusion::execution::context::SessionContext;
use deltalake::delta_datafusion::DeltaSessionContext;
use deltalake::kernel::Add;

use crate::{Error, Result};

/// A DataFusion session with Delta's planner (needed to write query results
/// to Delta tables), UTC as session time zone and a partition per core.
pub fn session() -> Result<SessionContext> {
    let cores = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2);
    let overrides = HashMap::from([
        (
            "datafusion.execution.time_zone".to_string(),
            "UTC".to_string(),
        ),
        (
            "datafusion.execution.target_partitions".to_string(),
            cores.to_string(),
        ),
    ]);
    let ctx = DeltaSessionContext::new_with_session_overrides(&overrides).map_err(|source| {
        Error::Delta {
            table: "(session)".into(),
            source,
        }
    })?;
    Ok(ctx.into_inner())
}

/// Registers `table` at its loaded version under `name`. With `files`, the
/// table reads only those data files (e.g. the ones added since a version).
pub async fn register(
    ctx: &SessionContext,
    name: &str,
    table: &DeltaTable,
    files: Option<Vec<Add>>,
) -> Result<()> {
    table
        .update_datafusion_session(&ctx.state())
        .map_err(|source| Error::Delta {
            table: table.table_url().to_string(),
            source,
        })?;
    let mut builder = table.table_provider();
    if let Some(files) = files {
        builder = builder.with_adds(files);
    }
    let provider = builder.build().await?;
    ctx.register_table(name, Arc::new(provider))?;
    Ok(())
}
