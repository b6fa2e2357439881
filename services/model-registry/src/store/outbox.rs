//! Reading and acknowledging outbox rows for the relay, and the relay's
//! lease.

use std::time::Duration;

use sqlx::Row;

use super::{Store, now_micros, placeholders};
use crate::error::{Error, Result};

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

/// Held by the replica whose relay publishes. On Postgres it is a session
/// advisory lock on a connection of its own, released when the lease is
/// dropped (the session ends), when the process dies, or when the session is
/// lost (killed, network blip, Postgres restart) — after which another
/// replica may take it, so the relay re-checks it with
/// [`RelayLease::is_held`] before each batch.
pub struct RelayLease {
    /// `None` on SQLite, which needs no lock.
    connection: Option<sqlx::AnyConnection>,
}

/// Advisory-lock key of the relay lease ("mlops-relay" folded into 64 bits).
const RELAY_LOCK_KEY: i64 = 0x6d6c_6f70_7372_6c79;

/// A session cut off by a partition does not fail, it hangs; a check that
/// takes longer than this counts as a lost lease.
const LEASE_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

impl Store {
    /// The relay lease, if no other replica holds it. SQLite databases have
    /// one registry process, which always gets it.
    pub async fn try_relay_lease(&self) -> Result<Option<RelayLease>> {
        match self.backend {
            super::Backend::Sqlite => Ok(Some(RelayLease { connection: None })),
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
                    connection: Some(connection.detach()),
                }))
            }
        }
    }
}

impl RelayLease {
    /// Whether the lease's own session still holds the lock. `Ok(false)`
    /// (the session is alive but not the holder, as behind a pooler that
    /// swaps server sessions) and any error (a dead or unresponsive
    /// session) both mean the lease is lost: drop it and try again later.
    pub async fn is_held(&mut self) -> Result<bool> {
        let Some(connection) = self.connection.as_mut() else {
            return Ok(true);
        };
        // pg_locks shows a bigint advisory key as classid (high 32 bits),
        // objid (low 32 bits) and objsubid 1.
        let key = RELAY_LOCK_KEY as u64;
        let check = sqlx::query(
            "SELECT EXISTS (
                 SELECT 1 FROM pg_locks
                 WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
                   AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1
             ) AS held",
        )
        .bind((key >> 32) as i64)
        .bind((key & 0xffff_ffff) as i64)
        .fetch_one(connection);
        match tokio::time::timeout(LEASE_CHECK_TIMEOUT, check).await {
            Ok(row) => Ok(row?.try_get("held")?),
            Err(_) => Err(Error::Internal(format!(
                "the relay lease check took over {}s",
                LEASE_CHECK_TIMEOUT.as_secs()
            ))),
        }
    }
}
