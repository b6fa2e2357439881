//! The SQL console's query history, per user, in the portal's database.
//! Each user keeps their newest [`KEPT_PER_USER`] queries.

use sqlx::Row;

use super::accounts::{AccountStore, Result, now_ms};

pub const KEPT_PER_USER: i64 = 200;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    pub id: i64,
    pub at: i64,
    pub sql: String,
    /// Rows returned; `None` when the query failed.
    pub row_count: Option<i64>,
    pub elapsed_ms: i64,
    /// Why it failed; empty when it succeeded.
    pub error: String,
}

fn entry(row: &sqlx::any::AnyRow) -> Result<HistoryEntry> {
    Ok(HistoryEntry {
        id: row.try_get(0)?,
        at: row.try_get(1)?,
        sql: row.try_get(2)?,
        row_count: row.try_get(3)?,
        elapsed_ms: row.try_get(4)?,
        error: row.try_get(5)?,
    })
}

impl AccountStore {
    /// Records a query `username` ran: its row count, or why it failed.
    pub async fn record_query(
        &self,
        username: &str,
        sql: &str,
        outcome: std::result::Result<usize, &str>,
        elapsed_ms: i64,
    ) -> Result<()> {
        let (row_count, error) = match outcome {
            Ok(rows) => (Some(rows as i64), ""),
            Err(error) => (None, error),
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO portal_queries (username, at, sql, row_count, elapsed_ms, error) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(username)
        .bind(now_ms())
        .bind(sql)
        .bind(row_count)
        .bind(elapsed_ms)
        .bind(error)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM portal_queries WHERE username = $1 AND id <= \
             (SELECT id FROM portal_queries WHERE username = $2 ORDER BY id DESC LIMIT 1 OFFSET $3)",
        )
        .bind(username)
        .bind(username)
        .bind(KEPT_PER_USER)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// `username`'s newest `limit` queries, newest first.
    pub async fn query_history(&self, username: &str, limit: i64) -> Result<Vec<HistoryEntry>> {
        let rows = sqlx::query(
            "SELECT id, at, sql, row_count, elapsed_ms, error FROM portal_queries \
             WHERE username = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(username)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry).collect()
    }

    /// One of `username`'s queries; another user's is `None`.
    pub async fn history_entry(&self, username: &str, id: i64) -> Result<Option<HistoryEntry>> {
        let row = sqlx::query(
            "SELECT id, at, sql, row_count, elapsed_ms, error FROM portal_queries \
             WHERE username = $1 AND id = $2",
        )
        .bind(username)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(entry).transpose()
    }
}
