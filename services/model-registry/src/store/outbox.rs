//! Reading and acknowledging outbox rows for the relay.

use sqlx::Row;

use super::{Store, now_micros, placeholders};
use crate::error::Result;

/// An event committed with its change and not yet acknowledged by Kafka.
#[derive(Clone, Debug)]
pub struct PendingEvent {
    pub id: i64,
    pub topic: String,
    pub key: String,
    pub payload: Vec<u8>,
}

impl Store {
    /// The oldest unpublished events, in commit order.
    pub async fn pending_events(&self, limit: i64) -> Result<Vec<PendingEvent>> {
        let rows = sqlx::query(
            "SELECT id, topic, key, payload FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PendingEvent {
                    id: row.try_get("id")?,
                    topic: row.try_get("topic")?,
                    key: row.try_get("key")?,
                    payload: row.try_get("payload")?,
                })
            })
            .collect()
    }

    pub async fn mark_published(&self, ids: &[i64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE outbox SET published_at = $1 WHERE id IN ({})",
            placeholders(1, ids.len())
        );
        let mut query = sqlx::query(&sql).bind(now_micros());
        for id in ids {
            query = query.bind(*id);
        }
        query.execute(&self.pool).await?;
        Ok(())
    }

    /// Number of events waiting for the relay (a metric and a test hook).
    pub async fn pending_event_count(&self) -> Result<i64> {
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NULL")
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?,
        )
    }
}

/// Held by the replica whose relay publishes; released when dropped (the
/// Postgres session ends) or when the process dies.
pub struct RelayLease {
    _connection: Option<sqlx::AnyConnection>,
}

/// Advisory-lock key of the relay lease ("mlops-relay" folded into 64 bits).
const RELAY_LOCK_KEY: i64 = 0x6d6c_6f70_7372_6c79;

impl Store {
    /// The relay lease, if no other replica holds it. SQLite databases have
    /// one registry process, which always gets it.
    pub async fn try_relay_lease(&self) -> Result<Option<RelayLease>> {
        match self.backend {
            super::Backend::Sqlite => Ok(Some(RelayLease { _connection: None })),
            super::Backend::Postgres => {
                let mut connection = self.pool.acquire().await?;
                let locked: bool = sqlx::query("SELECT pg_try_advisory_lock($1) AS locked")
                    .bind(RELAY_LOCK_KEY)
                    .fetch_one(&mut *connection)
                    .await?
                    .try_get("locked")?;
                Ok(locked.then(|| RelayLease {
                    // Detached from the pool: the session, and with it the
                    // lock, ends when the lease is dropped.
                    _connection: Some(connection.detach()),
                }))
            }
        }
    }
}
