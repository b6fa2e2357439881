//! Registry metadata in Postgres or SQLite, through sqlx's Any driver so one
//! set of portable queries serves both (see `migrations/`).
//!
//! Every mutation runs in one transaction with its audit record and, where
//! it announces something, its outbox row: a change, its audit entry and its
//! event are committed together or not at all.

mod aliases;
mod audit;
mod models;
mod outbox;
mod runs;
mod search;
mod tokens;
mod version_edits;
mod versions;

use std::str::FromStr;
use std::time::Duration;

use mlops_proto::registry::v1 as pb;
use prost::Message;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Transaction};

use crate::auth::Principal;
use crate::error::{Error, Result};

pub use outbox::{PendingEvent, RelayLease};
pub use versions::UploadTarget;

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// Connection settings for [`Store::connect`].
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// Kafka topic that outbox rows are addressed to.
    pub events_topic: String,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            events_topic: "registry.events.v1".into(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    events_topic: String,
}

type Tx = Transaction<'static, Any>;

impl Store {
    /// Connects to `postgres://…` or `sqlite://…` (created when missing).
    pub async fn connect(url: &str, options: StoreOptions) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(Error::invalid(
                "DATABASE_URL must start with postgres:// or sqlite:",
            ));
        };
        let connect = AnyConnectOptions::from_str(url)?;
        let max_connections = match backend {
            Backend::Postgres => options.max_connections.max(1),
            // SQLite has one writer; a single connection serialises writes
            // instead of failing them with SQLITE_BUSY.
            Backend::Sqlite => 1,
        };
        let mut pool_options = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(options.acquire_timeout);
        if backend == Backend::Sqlite {
            // LIKE is case-sensitive on Postgres; make SQLite agree.
            pool_options = pool_options.after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("PRAGMA case_sensitive_like = ON")
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = pool_options.connect_with(connect).await?;
        Ok(Self {
            pool,
            backend,
            events_topic: options.events_topic,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies pending migrations. Safe to run from several replicas at
    /// once: sqlx holds a database lock while it migrates.
    pub async fn migrate(&self) -> Result<()> {
        let migrator = match self.backend {
            Backend::Postgres => &POSTGRES_MIGRATIONS,
            Backend::Sqlite => &SQLITE_MIGRATIONS,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin(&self) -> Result<Tx> {
        Ok(self.pool.begin().await?)
    }

    /// Appends an event to the outbox inside the caller's transaction.
    async fn enqueue(
        &self,
        tx: &mut Tx,
        principal: &Principal,
        key: &str,
        event: pb::registry_event::Event,
        now: i64,
    ) -> Result<()> {
        let message = pb::RegistryEvent {
            event_id: uuid::Uuid::new_v4().to_string(),
            occurred_at: Some(timestamp(now)),
            principal: principal.name.clone(),
            event: Some(event),
        };
        sqlx::query("INSERT INTO outbox (topic, key, payload, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&self.events_topic)
            .bind(key)
            .bind(message.encode_to_vec())
            .bind(now)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

/// Microseconds since the Unix epoch, the unit of every stored time.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

pub fn timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    }
}

pub fn micros_of(ts: &prost_types::Timestamp) -> i64 {
    ts.seconds
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(ts.nanos) / 1_000)
}

/// `$1, $2, …` starting after `offset` bound parameters.
fn placeholders(offset: usize, count: usize) -> String {
    (offset + 1..=offset + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn to_json<T: serde::Serialize>(context: &'static str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|source| Error::Json { context, source })
}

fn from_json<T: serde::de::DeserializeOwned>(context: &'static str, raw: &str) -> Result<T> {
    serde_json::from_str(raw).map_err(|source| Error::Json { context, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_micros() {
        for micros in [0, 1, 1_700_000_000_123_456, -1] {
            assert_eq!(micros_of(&timestamp(micros)), micros);
        }
        assert_eq!(placeholders(2, 3), "$3, $4, $5");
    }
}
