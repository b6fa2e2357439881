//! Delta tables kept open between reads. Opening a table replays its log
//! from the last checkpoint on every call; a table kept open reads only the
//! commits added since, so a reader that asks for the newest version on
//! every request pays for what changed, not for the table's whole history.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use deltalake::DeltaTable;

use crate::{LakeLocation, Result, TableSpec};

/// The lake's tables as last read, brought up to date on each
/// [`OpenTables::latest`]. Cheap to clone; clones share the tables.
#[derive(Clone, Debug)]
pub struct OpenTables {
    lake: LakeLocation,
    open: Arc<Mutex<HashMap<&'static str, DeltaTable>>>,
}

impl OpenTables {
    pub fn new(lake: LakeLocation) -> Self {
        Self {
            lake,
            open: Arc::default(),
        }
    }

    pub fn lake(&self) -> &LakeLocation {
        &self.lake
    }

    /// `spec`'s table at its newest version, or `None` before its first
    /// commit. A table already open is updated incrementally; if that fails
    /// (its log was rewritten, say) it is opened afresh.
    pub async fn latest(&self, spec: &TableSpec) -> Result<Option<DeltaTable>> {
        let held = self.lock().get(spec.name).cloned();
        let table = match held {
            Some(mut table) => match table.update_incremental(None).await {
                Ok(()) => table,
                Err(error) => {
                    tracing::warn!(table = spec.name, %error, "reopening a table that did not update");
                    self.lock().remove(spec.name);
                    match spec.open_if_exists(&self.lake).await? {
                        Some(table) => table,
                        None => return Ok(None),
                    }
                }
            },
            None => match spec.open_if_exists(&self.lake).await? {
                Some(table) => table,
                None => return Ok(None),
            },
        };
        // Concurrent readers may race; keep whichever saw the newer version.
        let mut open = self.lock();
        let newer = open
            .get(spec.name)
            .is_none_or(|kept| kept.version() < table.version());
        if newer {
            open.insert(spec.name, table.clone());
        }
        Ok(Some(table))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, DeltaTable>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kpi_daily;

    #[tokio::test]
    async fn a_kept_table_follows_new_commits_and_a_missing_one_is_none() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let lake = LakeLocation::parse(dir.path().to_str().expect("utf-8 path"))?;
        let tables = OpenTables::new(lake.clone());
        let spec = kpi_daily::spec();
        assert!(tables.latest(&spec).await?.is_none());

        let created = spec.open_or_create(&lake).await?;
        assert_eq!(created.version(), Some(0));
        assert_eq!(
            tables.latest(&spec).await?.and_then(|t| t.version()),
            Some(0)
        );

        // A commit by another writer is seen on the next read.
        crate::changes::record_progress(&created, "open-tables-test", 7).await?;
        assert_eq!(
            tables.latest(&spec).await?.and_then(|t| t.version()),
            Some(1)
        );
        Ok(())
    }
}
