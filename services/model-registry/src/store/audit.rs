//! The audit log: one row per mutation, written in the mutation's transaction.

use mlops_proto::registry::v1 as pb;
use sqlx::Row;

use super::{Store, Tx, timestamp};
use crate::auth::Principal;
use crate::error::{Error, Result};

pub const DEFAULT_PAGE_SIZE: i64 = 100;
pub const MAX_PAGE_SIZE: i64 = 1000;

impl Store {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn audit(
        &self,
        tx: &mut Tx,
        principal: &Principal,
        action: &str,
        model_name: &str,
        target: &str,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
        now: i64,
    ) -> Result<()> {
        let text = |v: Option<serde_json::Value>| v.map(|v| v.to_string()).unwrap_or_default();
        sqlx::query(
            "INSERT INTO audit_events (at, principal, action, model_name, target, before_json, after_json)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(now)
        .bind(&principal.name)
        .bind(action)
        .bind(model_name)
        .bind(target)
        .bind(text(before))
        .bind(text(after))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Newest first. The page token is the id to continue below (keyset
    /// paging: stable while new events arrive).
    pub async fn list_audit_events(
        &self,
        req: pb::ListAuditEventsRequest,
    ) -> Result<pb::ListAuditEventsResponse> {
        let limit = page_size(req.page_size)?;
        let before_id = if req.page_token.is_empty() {
            i64::MAX
        } else {
            req.page_token
                .strip_prefix("a")
                .and_then(|id| id.parse::<i64>().ok())
                .ok_or_else(|| Error::invalid("page_token is not one this call returned"))?
        };
        if !req.model_name.is_empty() {
            // A clear NOT_FOUND beats an empty page for a mistyped name.
            self.get_model(&req.model_name).await?;
        }
        let mut sql = String::from(
            "SELECT id, at, principal, action, model_name, target, before_json, after_json
             FROM audit_events WHERE id < $1",
        );
        if !req.model_name.is_empty() {
            sql.push_str(" AND model_name = $3");
        }
        sql.push_str(" ORDER BY id DESC LIMIT $2");
        let mut query = sqlx::query(&sql).bind(before_id).bind(limit + 1);
        if !req.model_name.is_empty() {
            query = query.bind(&req.model_name);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut events = rows
            .iter()
            .map(|row| {
                Ok(pb::AuditEvent {
                    id: row.try_get("id")?,
                    at: Some(timestamp(row.try_get("at")?)),
                    principal: row.try_get("principal")?,
                    action: row.try_get("action")?,
                    model_name: row.try_get("model_name")?,
                    target: row.try_get("target")?,
                    before_json: row.try_get("before_json")?,
                    after_json: row.try_get("after_json")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let next_page_token = if events.len() as i64 > limit {
            events.truncate(limit as usize);
            events
                .last()
                .map(|e| format!("a{}", e.id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(pb::ListAuditEventsResponse {
            events,
            next_page_token,
        })
    }
}

/// Validates a requested page size; 0 means the default.
pub(super) fn page_size(requested: i32) -> Result<i64> {
    match i64::from(requested) {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
        n => Err(Error::invalid(format!(
            "page_size must be between 1 and {MAX_PAGE_SIZE}, got {n}"
        ))),
    }
}
