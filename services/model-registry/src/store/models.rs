//! Registered models.

use std::collections::HashMap;

use mlops_proto::registry::v1 as pb;
use serde_json::json;
use sqlx::Row;

use super::{Store, Tx, now_micros, placeholders, timestamp};
use crate::auth::Principal;
use crate::error::{Error, Result, is_unique_violation};
use crate::validate;

/// The identity of a model row, read inside a transaction.
pub(super) struct ModelRow {
    pub id: i64,
    pub archived: bool,
}

impl Store {
    pub async fn create_model(
        &self,
        principal: &Principal,
        req: pb::CreateRegisteredModelRequest,
    ) -> Result<pb::RegisteredModel> {
        validate::name("name", &req.name)?;
        validate::description(&req.description)?;
        validate::string_map("tags", &req.tags)?;
        let now = now_micros();
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO registered_models (name, description, created_by, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $4) RETURNING id",
        )
        .bind(&req.name)
        .bind(&req.description)
        .bind(&principal.name)
        .bind(now)
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match inserted {
            Ok(row) => row.try_get("id")?,
            Err(e) if is_unique_violation(&e) => {
                return Err(Error::AlreadyExists(format!(
                    "registered model {:?} already exists",
                    req.name
                )));
            }
            Err(e) => return Err(e.into()),
        };
        set_tags(&mut tx, id, &req.tags).await?;
        let after = json!({"name": req.name, "description": req.description, "tags": req.tags});
        self.audit(
            &mut tx,
            principal,
            "model.create",
            &req.name,
            &req.name,
            None,
            Some(after),
            now,
        )
        .await?;
        tx.commit().await?;
        self.get_model(&req.name).await
    }

    pub async fn get_model(&self, name: &str) -> Result<pb::RegisteredModel> {
        let row = sqlx::query("SELECT id FROM registered_models WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| model_not_found(name))?;
        let id: i64 = row.try_get("id")?;
        self.models_by_ids(&[id])
            .await?
            .pop()
            .ok_or_else(|| model_not_found(name))
    }

    pub async fn update_model(
        &self,
        principal: &Principal,
        req: pb::UpdateRegisteredModelRequest,
    ) -> Result<pb::RegisteredModel> {
        if let Some(description) = &req.description {
            validate::description(description)?;
        }
        validate::tag_edit(&req.set_tags, &req.remove_tags)?;
        let before = self.get_model(&req.name).await?;
        let now = now_micros();
        let mut tx = self.begin().await?;
        let model = self.lock_model(&mut tx, &req.name, now).await?;
        if let Some(description) = &req.description {
            sqlx::query("UPDATE registered_models SET description = $1 WHERE id = $2")
                .bind(description)
                .bind(model.id)
                .execute(&mut *tx)
                .await?;
        }
        set_tags(&mut tx, model.id, &req.set_tags).await?;
        for key in &req.remove_tags {
            sqlx::query("DELETE FROM model_tags WHERE model_id = $1 AND key = $2")
                .bind(model.id)
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        let after = json!({
            "description": req.description.as_ref().unwrap_or(&before.description),
            "set_tags": req.set_tags,
            "remove_tags": req.remove_tags,
        });
        let before_json = json!({"description": before.description, "tags": before.tags});
        self.audit(
            &mut tx,
            principal,
            "model.update",
            &req.name,
            &req.name,
            Some(before_json),
            Some(after),
            now,
        )
        .await?;
        tx.commit().await?;
        self.get_model(&req.name).await
    }

    pub async fn archive_model(
        &self,
        principal: &Principal,
        name: &str,
    ) -> Result<pb::RegisteredModel> {
        let now = now_micros();
        let mut tx = self.begin().await?;
        let model = self.lock_model(&mut tx, name, now).await?;
        if !model.archived {
            sqlx::query("UPDATE registered_models SET archived = 1 WHERE id = $1")
                .bind(model.id)
                .execute(&mut *tx)
                .await?;
            self.audit(
                &mut tx,
                principal,
                "model.archive",
                name,
                name,
                Some(json!({"archived": false})),
                Some(json!({"archived": true})),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        self.get_model(name).await
    }

    /// Locks the model row for the rest of the transaction (an UPDATE takes
    /// the row lock on Postgres and the write lock on SQLite), so changes to
    /// one model's versions and aliases are serialised.
    pub(super) async fn lock_model(&self, tx: &mut Tx, name: &str, now: i64) -> Result<ModelRow> {
        let row = sqlx::query(
            "UPDATE registered_models SET updated_at = $2 WHERE name = $1 RETURNING id, archived",
        )
        .bind(name)
        .bind(now)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| model_not_found(name))?;
        Ok(ModelRow {
            id: row.try_get("id")?,
            archived: row.try_get::<i64, _>("archived")? != 0,
        })
    }

    /// Full model messages (tags and aliases included) in the order of `ids`.
    pub(super) async fn models_by_ids(&self, ids: &[i64]) -> Result<Vec<pb::RegisteredModel>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = placeholders(0, ids.len());
        let sql = format!(
            "SELECT id, name, description, archived, last_version, created_by, created_at, updated_at
             FROM registered_models WHERE id IN ({list})"
        );
        let mut query = sqlx::query(&sql);
        for id in ids {
            query = query.bind(*id);
        }
        let mut models: HashMap<i64, pb::RegisteredModel> = HashMap::new();
        for row in query.fetch_all(&self.pool).await? {
            let id: i64 = row.try_get("id")?;
            models.insert(
                id,
                pb::RegisteredModel {
                    name: row.try_get("name")?,
                    description: row.try_get("description")?,
                    tags: HashMap::new(),
                    archived: row.try_get::<i64, _>("archived")? != 0,
                    aliases: HashMap::new(),
                    latest_version: row.try_get("last_version")?,
                    created_by: row.try_get("created_by")?,
                    created_at: Some(timestamp(row.try_get("created_at")?)),
                    updated_at: Some(timestamp(row.try_get("updated_at")?)),
                },
            );
        }
        let sql = format!("SELECT model_id, key, value FROM model_tags WHERE model_id IN ({list})");
        let mut query = sqlx::query(&sql);
        for id in ids {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&self.pool).await? {
            if let Some(model) = models.get_mut(&row.try_get::<i64, _>("model_id")?) {
                model
                    .tags
                    .insert(row.try_get("key")?, row.try_get("value")?);
            }
        }
        let sql = format!(
            "SELECT a.model_id, a.alias, v.version FROM aliases a
             JOIN model_versions v ON v.id = a.version_id WHERE a.model_id IN ({list})"
        );
        let mut query = sqlx::query(&sql);
        for id in ids {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&self.pool).await? {
            if let Some(model) = models.get_mut(&row.try_get::<i64, _>("model_id")?) {
                model
                    .aliases
                    .insert(row.try_get("alias")?, row.try_get("version")?);
            }
        }
        Ok(ids.iter().filter_map(|id| models.remove(id)).collect())
    }
}

pub(super) fn model_not_found(name: &str) -> Error {
    Error::not_found(format!("registered model {name:?} not found"))
}

async fn set_tags(tx: &mut Tx, model_id: i64, tags: &HashMap<String, String>) -> Result<()> {
    for (key, value) in tags {
        sqlx::query(
            "INSERT INTO model_tags (model_id, key, value) VALUES ($1, $2, $3)
             ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
        )
        .bind(model_id)
        .bind(key)
        .bind(value)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
