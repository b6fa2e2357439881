//! Aliases (`champion`, `challenger`, …) and their full history.

use mlops_proto::registry::v1 as pb;
use serde_json::json;
use sqlx::Row;

use super::versions::{READY, version_not_found};
use super::{Store, now_micros, timestamp};
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::validate;

impl Store {
    /// Points `alias` at `version`, moving it atomically if it pointed
    /// elsewhere. Setting it to where it already points changes nothing.
    pub async fn set_alias(
        &self,
        principal: &Principal,
        req: &pb::SetAliasRequest,
    ) -> Result<pb::Alias> {
        validate::alias(&req.alias)?;
        validate::version(req.version)?;
        let now = now_micros();
        let mut tx = self.begin().await?;
        let model = self.lock_model(&mut tx, &req.model_name, now).await?;
        let row = sqlx::query(
            "SELECT id, status FROM model_versions WHERE model_id = $1 AND version = $2",
        )
        .bind(model.id)
        .bind(req.version)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| version_not_found(&req.model_name, req.version))?;
        let version_id: i64 = row.try_get("id")?;
        let status: String = row.try_get("status")?;
        if status != READY {
            return Err(Error::precondition(format!(
                "version {} of {:?} is {status}; only READY versions can carry an alias",
                req.version, req.model_name
            )));
        }
        let previous: Option<i64> = sqlx::query(
            "SELECT v.version FROM aliases a JOIN model_versions v ON v.id = a.version_id
             WHERE a.model_id = $1 AND a.alias = $2",
        )
        .bind(model.id)
        .bind(&req.alias)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get("version"))
        .transpose()?;
        if previous == Some(req.version) {
            tx.rollback().await?;
            return self.get_alias(&req.model_name, &req.alias).await;
        }
        sqlx::query(
            "INSERT INTO aliases (model_id, alias, version_id, set_by, set_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (model_id, alias) DO UPDATE
             SET version_id = excluded.version_id, set_by = excluded.set_by, set_at = excluded.set_at",
        )
        .bind(model.id)
        .bind(&req.alias)
        .bind(version_id)
        .bind(&principal.name)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        self.record_alias_change(
            &mut tx,
            principal,
            model.id,
            &req.model_name,
            &req.alias,
            previous,
            req.version,
            now,
        )
        .await?;
        tx.commit().await?;
        self.get_alias(&req.model_name, &req.alias).await
    }

    pub async fn delete_alias(
        &self,
        principal: &Principal,
        model_name: &str,
        alias: &str,
    ) -> Result<()> {
        validate::alias(alias)?;
        let now = now_micros();
        let mut tx = self.begin().await?;
        let model = self.lock_model(&mut tx, model_name, now).await?;
        let previous: i64 = sqlx::query(
            "SELECT v.version FROM aliases a JOIN model_versions v ON v.id = a.version_id
             WHERE a.model_id = $1 AND a.alias = $2",
        )
        .bind(model.id)
        .bind(alias)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| alias_not_found(model_name, alias))?
        .try_get("version")?;
        sqlx::query("DELETE FROM aliases WHERE model_id = $1 AND alias = $2")
            .bind(model.id)
            .bind(alias)
            .execute(&mut *tx)
            .await?;
        self.record_alias_change(
            &mut tx,
            principal,
            model.id,
            model_name,
            alias,
            Some(previous),
            0,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// History row, audit record and outbox event for one alias change.
    #[allow(clippy::too_many_arguments)]
    async fn record_alias_change(
        &self,
        tx: &mut super::Tx,
        principal: &Principal,
        model_id: i64,
        model_name: &str,
        alias: &str,
        previous: Option<i64>,
        version: i64,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO alias_history (model_id, alias, version, set_by, set_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(model_id)
        .bind(alias)
        .bind(version)
        .bind(&principal.name)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        let (action, after) = if version == 0 {
            ("alias.delete", None)
        } else {
            ("alias.set", Some(json!({"version": version})))
        };
        let before = previous.map(|v| json!({"version": v}));
        self.audit(
            tx,
            principal,
            action,
            model_name,
            &format!("{model_name}@{alias}"),
            before,
            after,
            now,
        )
        .await?;
        let event = pb::registry_event::Event::AliasChanged(pb::AliasChanged {
            model_name: model_name.to_string(),
            alias: alias.to_string(),
            previous_version: previous.unwrap_or(0),
            version,
        });
        self.enqueue(tx, principal, model_name, event, now).await
    }

    pub async fn get_alias(&self, model_name: &str, alias: &str) -> Result<pb::Alias> {
        let row = sqlx::query(
            "SELECT v.version, a.set_by, a.set_at FROM aliases a
             JOIN registered_models m ON m.id = a.model_id
             JOIN model_versions v ON v.id = a.version_id
             WHERE m.name = $1 AND a.alias = $2",
        )
        .bind(model_name)
        .bind(alias)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            self.get_model(model_name).await?;
            return Err(alias_not_found(model_name, alias));
        };
        Ok(pb::Alias {
            model_name: model_name.to_string(),
            alias: alias.to_string(),
            version: row.try_get("version")?,
            set_by: row.try_get("set_by")?,
            set_at: Some(timestamp(row.try_get("set_at")?)),
        })
    }

    /// The version `alias` points at now, or pointed at at `at` (micros).
    pub async fn version_by_alias(
        &self,
        model_name: &str,
        alias: &str,
        at: Option<i64>,
    ) -> Result<pb::ModelVersion> {
        validate::alias(alias)?;
        let version = match at {
            None => self.get_alias(model_name, alias).await?.version,
            Some(at) => {
                let row = sqlx::query(
                    "SELECT h.version FROM alias_history h JOIN registered_models m ON m.id = h.model_id
                     WHERE m.name = $1 AND h.alias = $2 AND h.set_at <= $3
                     ORDER BY h.set_at DESC, h.id DESC LIMIT 1",
                )
                .bind(model_name)
                .bind(alias)
                .bind(at)
                .fetch_optional(&self.pool)
                .await?;
                match row.map(|r| r.try_get::<i64, _>("version")).transpose()? {
                    Some(v) if v > 0 => v,
                    _ => {
                        self.get_model(model_name).await?;
                        let when = chrono::DateTime::from_timestamp_micros(at)
                            .map(|t| t.to_rfc3339())
                            .unwrap_or_else(|| at.to_string());
                        return Err(Error::not_found(format!(
                            "alias {alias:?} of {model_name:?} pointed at no version at {when}"
                        )));
                    }
                }
            }
        };
        self.get_version(model_name, version).await
    }

    /// Oldest first; one alias or all of the model's.
    pub async fn alias_history(
        &self,
        model_name: &str,
        alias: &str,
    ) -> Result<Vec<pb::AliasHistoryEntry>> {
        self.get_model(model_name).await?;
        if !alias.is_empty() {
            validate::alias(alias)?;
        }
        let mut sql = String::from(
            "SELECT h.alias, h.version, h.set_by, h.set_at FROM alias_history h
             JOIN registered_models m ON m.id = h.model_id WHERE m.name = $1",
        );
        if !alias.is_empty() {
            sql.push_str(" AND h.alias = $2");
        }
        sql.push_str(" ORDER BY h.set_at, h.id");
        let mut query = sqlx::query(&sql).bind(model_name);
        if !alias.is_empty() {
            query = query.bind(alias);
        }
        query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                Ok(pb::AliasHistoryEntry {
                    alias: row.try_get("alias")?,
                    version: row.try_get("version")?,
                    set_by: row.try_get("set_by")?,
                    set_at: Some(timestamp(row.try_get("set_at")?)),
                })
            })
            .collect()
    }
}

fn alias_not_found(model_name: &str, alias: &str) -> Error {
    Error::not_found(format!(
        "alias {alias:?} of registered model {model_name:?} not found"
    ))
}
