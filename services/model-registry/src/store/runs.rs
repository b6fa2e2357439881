//! Training runs: the record every version links to for its lineage.

use std::collections::BTreeMap;

use mlops_proto::registry::v1 as pb;
use serde_json::json;
use sqlx::Row;

use super::versions::DatasetJson;
use super::{Store, from_json, now_micros, timestamp, to_json};
use crate::auth::Principal;
use crate::error::{Error, Result, is_foreign_key_violation};
use crate::validate;

const RUNNING: &str = "RUNNING";
const FINISHED: &str = "FINISHED";
const FAILED: &str = "FAILED";

fn status_to_proto(status: &str) -> pb::RunStatus {
    match status {
        RUNNING => pb::RunStatus::Running,
        FINISHED => pb::RunStatus::Finished,
        FAILED => pb::RunStatus::Failed,
        _ => pb::RunStatus::Unspecified,
    }
}

impl Store {
    pub async fn create_run(
        &self,
        principal: &Principal,
        req: pb::CreateRunRequest,
    ) -> Result<pb::Run> {
        if req.name.len() > validate::MAX_NAME_LEN {
            return Err(Error::invalid(format!(
                "run name is {} characters long; the limit is {}",
                req.name.len(),
                validate::MAX_NAME_LEN
            )));
        }
        validate::string_map("params", &req.params)?;
        validate::string_map("tags", &req.tags)?;
        let dataset = req
            .dataset
            .as_ref()
            .map(DatasetJson::from_proto)
            .transpose()?;
        let run_id = uuid::Uuid::new_v4().to_string();
        let params: BTreeMap<_, _> = req.params.iter().collect();
        let tags: BTreeMap<_, _> = req.tags.iter().collect();
        let now = now_micros();
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO runs (run_id, name, status, params_json, metrics_json, dataset_json, created_by, started_at, tags_json)
             VALUES ($1, $2, $3, $4, '{}', $5, $6, $7, $8)",
        )
        .bind(&run_id)
        .bind(&req.name)
        .bind(RUNNING)
        .bind(to_json("params", &params)?)
        .bind(dataset.as_ref().map(|d| to_json("dataset", d)).transpose()?)
        .bind(&principal.name)
        .bind(now)
        .bind(to_json("tags", &tags)?)
        .execute(&mut *tx)
        .await?;
        let after = json!({"name": req.name, "params": req.params, "tags": req.tags});
        self.audit(
            &mut tx,
            principal,
            "run.create",
            "",
            &format!("run/{run_id}"),
            None,
            Some(after),
            now,
        )
        .await?;
        tx.commit().await?;
        self.get_run(&run_id).await
    }

    pub async fn get_run(&self, run_id: &str) -> Result<pb::Run> {
        let row = sqlx::query(
            "SELECT run_id, name, status, params_json, metrics_json, dataset_json, created_by, started_at, ended_at, tags_json
             FROM runs WHERE run_id = $1",
        )
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::not_found(format!("run {run_id:?} not found")))?;
        let dataset = row
            .try_get::<Option<String>, _>("dataset_json")?
            .map(|raw| from_json::<DatasetJson>("dataset", &raw))
            .transpose()?;
        Ok(pb::Run {
            run_id: row.try_get("run_id")?,
            name: row.try_get("name")?,
            status: status_to_proto(&row.try_get::<String, _>("status")?) as i32,
            params: from_json("params", &row.try_get::<String, _>("params_json")?)?,
            metrics: from_json("metrics", &row.try_get::<String, _>("metrics_json")?)?,
            dataset: dataset.map(|d| d.to_proto()),
            created_by: row.try_get("created_by")?,
            started_at: Some(timestamp(row.try_get("started_at")?)),
            ended_at: row.try_get::<Option<i64>, _>("ended_at")?.map(timestamp),
            tags: from_json("tags", &row.try_get::<String, _>("tags_json")?)?,
        })
    }

    pub async fn update_run(
        &self,
        principal: &Principal,
        req: pb::UpdateRunRequest,
    ) -> Result<pb::Run> {
        validate::metric_map("metrics", &req.metrics)?;
        validate::string_map("set_tags", &req.set_tags)?;
        let status = match pb::RunStatus::try_from(req.status) {
            Ok(pb::RunStatus::Unspecified | pb::RunStatus::Running) => RUNNING,
            Ok(pb::RunStatus::Finished) => FINISHED,
            Ok(pb::RunStatus::Failed) => FAILED,
            Err(_) => {
                return Err(Error::invalid(format!(
                    "status {} is not a RunStatus",
                    req.status
                )));
            }
        };
        let before = self.get_run(&req.run_id).await?;
        let ended = before.ended_at.is_some();
        if ended && status == RUNNING && req.status != 0 {
            return Err(Error::precondition(format!(
                "run {:?} has ended and cannot run again",
                req.run_id
            )));
        }
        let mut metrics: BTreeMap<String, f64> = before.metrics.clone().into_iter().collect();
        metrics.extend(req.metrics.clone());
        let mut tags: BTreeMap<String, String> = before.tags.clone().into_iter().collect();
        tags.extend(req.set_tags.clone());
        let now = now_micros();
        let (new_status, ended_at) = if ended {
            (
                status_name(before.status),
                before.ended_at.as_ref().map(super::micros_of),
            )
        } else if status == RUNNING {
            (RUNNING, None)
        } else {
            (status, Some(now))
        };
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE runs SET status = $1, metrics_json = $2, ended_at = $3, tags_json = $4 WHERE run_id = $5",
        )
        .bind(new_status)
        .bind(to_json("metrics", &metrics)?)
        .bind(ended_at)
        .bind(to_json("tags", &tags)?)
        .bind(&req.run_id)
        .execute(&mut *tx)
        .await?;
        let before_json = json!({"status": status_name(before.status), "metrics": before.metrics, "tags": before.tags});
        let after = json!({"status": new_status, "metrics": metrics, "tags": tags});
        self.audit(
            &mut tx,
            principal,
            "run.update",
            "",
            &format!("run/{}", req.run_id),
            Some(before_json),
            Some(after),
            now,
        )
        .await?;
        tx.commit().await?;
        self.get_run(&req.run_id).await
    }

    /// Deletes a run that no version references.
    pub async fn delete_run(&self, principal: &Principal, run_id: &str) -> Result<()> {
        let before = self.get_run(run_id).await?;
        let referencing = sqlx::query(
            "SELECT m.name, v.version FROM model_versions v JOIN registered_models m ON m.id = v.model_id
             WHERE v.run_id = $1 ORDER BY m.name, v.version LIMIT 5",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        if !referencing.is_empty() {
            let names = referencing
                .iter()
                .map(|r| {
                    Ok(format!(
                        "{}/{}",
                        r.try_get::<String, _>("name")?,
                        r.try_get::<i64, _>("version")?
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            return Err(run_in_use(run_id, &names.join(", ")));
        }
        let now = now_micros();
        let mut tx = self.begin().await?;
        // The foreign key is the backstop for a version created meanwhile.
        match sqlx::query("DELETE FROM runs WHERE run_id = $1")
            .bind(run_id)
            .execute(&mut *tx)
            .await
        {
            Ok(_) => {}
            Err(e) if is_foreign_key_violation(&e) => {
                return Err(run_in_use(run_id, "a new version"));
            }
            Err(e) => return Err(e.into()),
        }
        let before_json = json!({"name": before.name, "status": status_name(before.status)});
        self.audit(
            &mut tx,
            principal,
            "run.delete",
            "",
            &format!("run/{run_id}"),
            Some(before_json),
            None,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn run_in_use(run_id: &str, by: &str) -> Error {
    Error::precondition(format!(
        "run {run_id:?} is referenced by {by}; a run that produced a model version cannot be deleted"
    ))
}

fn status_name(status: i32) -> &'static str {
    match pb::RunStatus::try_from(status) {
        Ok(pb::RunStatus::Finished) => FINISHED,
        Ok(pb::RunStatus::Failed) => FAILED,
        _ => RUNNING,
    }
}
