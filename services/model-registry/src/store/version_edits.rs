//! Editing a version: its description and tags. What was trained (metrics,
//! params, artifact, lineage) stays as registered.

use mlops_proto::registry::v1 as pb;
use serde_json::json;

use super::{Store, now_micros};
use crate::auth::Principal;
use crate::error::Result;
use crate::validate;

impl Store {
    pub async fn update_version(
        &self,
        principal: &Principal,
        req: pb::UpdateModelVersionRequest,
    ) -> Result<pb::ModelVersion> {
        validate::name("model_name", &req.model_name)?;
        if let Some(description) = &req.description {
            validate::description(description)?;
        }
        validate::tag_edit(&req.set_tags, &req.remove_tags)?;
        let before = self.get_version(&req.model_name, req.version).await?;
        let id = self.version_id(&req.model_name, req.version).await?;
        let now = now_micros();
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE model_versions SET description = $1, updated_at = $2 WHERE id = $3")
            .bind(req.description.as_ref().unwrap_or(&before.description))
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for (key, value) in &req.set_tags {
            sqlx::query("DELETE FROM version_tags WHERE version_id = $1 AND key = $2")
                .bind(id)
                .bind(key)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO version_tags (version_id, key, value) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(key)
                .bind(value)
                .execute(&mut *tx)
                .await?;
        }
        for key in &req.remove_tags {
            sqlx::query("DELETE FROM version_tags WHERE version_id = $1 AND key = $2")
                .bind(id)
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        let target = format!("{}/{}", req.model_name, req.version);
        self.audit(
            &mut tx,
            principal,
            "version.update",
            &req.model_name,
            &target,
            Some(json!({"description": before.description, "tags": before.tags})),
            Some(json!({
                "description": req.description.as_ref().unwrap_or(&before.description),
                "set_tags": req.set_tags,
                "remove_tags": req.remove_tags,
            })),
            now,
        )
        .await?;
        tx.commit().await?;
        self.get_version(&req.model_name, req.version).await
    }
}
