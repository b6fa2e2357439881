//! Online features: `gold/subscriber_features_latest` (one row per
//! subscriber, the newest day gold has for it) held in memory and replaced
//! whole when the table's Delta version advances, so a request reads the
//! exact rows gold wrote, at one version, with no restart.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mlops_features::FeatureRow;
use mlops_features::row::from_record_batch;
use mlops_lake::{LakeLocation, OpenTables, subscriber_features};
use mlops_runtime::Shutdown;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tracing::{info, warn};

/// One version of the table, indexed by subscriber.
#[derive(Debug, Default)]
pub struct FeatureTable {
    pub version: u64,
    /// When that version was committed (ms since the epoch), if the log says.
    pub committed_ms: Option<i64>,
    /// Rows sorted by subscriber id.
    pub rows: Vec<FeatureRow>,
    index: HashMap<String, usize>,
}

impl FeatureTable {
    pub fn new(version: u64, committed_ms: Option<i64>, mut rows: Vec<FeatureRow>) -> Self {
        rows.sort_by(|a, b| a.subscriber_id.cmp(&b.subscriber_id));
        let index = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.subscriber_id.clone(), i))
            .collect();
        Self {
            version,
            committed_ms,
            rows,
            index,
        }
    }

    pub fn get(&self, subscriber_id: &str) -> Option<&FeatureRow> {
        self.index.get(subscriber_id).map(|&i| &self.rows[i])
    }
}

#[derive(Clone, Default)]
pub struct FeatureMetrics {
    /// The table version served.
    pub version: Gauge,
    /// Seconds since that version was committed.
    pub age: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Rows (subscribers) served.
    pub rows: Gauge,
}

impl FeatureMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "gateway_online_features_version",
            "Delta version of gold/subscriber_features_latest being served",
            self.version.clone(),
        );
        registry.register(
            "gateway_online_features_age_seconds",
            "Seconds since the served version of the online features was committed",
            self.age.clone(),
        );
        registry.register(
            "gateway_online_features_rows",
            "Subscribers in the online features being served",
            self.rows.clone(),
        );
    }
}

/// The current table, shared by requests and replaced by [`OnlineFeatures::run`].
pub struct OnlineFeatures {
    tables: OpenTables,
    current: RwLock<Option<Arc<FeatureTable>>>,
    metrics: FeatureMetrics,
}

impl OnlineFeatures {
    pub fn new(lake: LakeLocation, metrics: FeatureMetrics) -> Self {
        Self {
            tables: OpenTables::new(lake),
            current: RwLock::new(None),
            metrics,
        }
    }

    /// The table in use; `None` until gold's first commit has been read.
    pub fn current(&self) -> Option<Arc<FeatureTable>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Loads the table's newest version when it differs from the one in
    /// use; returns the version in use afterwards.
    pub async fn refresh(&self) -> Result<Option<u64>, mlops_lake::Error> {
        let spec = subscriber_features::latest_spec();
        let Some(table) = self.tables.latest(&spec).await? else {
            return Ok(None);
        };
        let Some(version) = table.version() else {
            return Ok(None);
        };
        let in_use = self.current();
        if in_use.as_ref().is_some_and(|t| t.version == version) {
            self.update_age(in_use.as_deref());
            return Ok(Some(version));
        }
        let committed_ms = table
            .snapshot()
            .ok()
            .and_then(|s| s.version_timestamp(version as _));
        let mut rows = Vec::new();
        for batch in mlops_lake::read::read_all(&table).await? {
            rows.extend(
                from_record_batch(&batch).map_err(|e| mlops_lake::Error::InvalidData {
                    what: spec.name.to_string(),
                    reason: e.to_string(),
                })?,
            );
        }
        let loaded = Arc::new(FeatureTable::new(version, committed_ms, rows));
        info!(
            version,
            subscribers = loaded.rows.len(),
            "online features loaded"
        );
        self.metrics.version.set(version as i64);
        self.metrics.rows.set(loaded.rows.len() as i64);
        self.update_age(Some(&loaded));
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(loaded);
        Ok(Some(version))
    }

    fn update_age(&self, table: Option<&FeatureTable>) {
        if let Some(ms) = table.and_then(|t| t.committed_ms) {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            self.metrics.age.set((now - ms).max(0) as f64 / 1000.0);
        }
    }

    /// Refreshes every `every` until shutdown; a failed read keeps the
    /// version in use and is retried at the next tick.
    pub async fn run(self: Arc<Self>, every: Duration, shutdown: Shutdown) {
        loop {
            if let Err(error) = self.refresh().await {
                warn!(%error, "cannot read the online features; the version in use stays");
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.wait() => return,
            }
        }
    }
}
