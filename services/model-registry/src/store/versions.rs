//! Model versions: numbering, metadata, and the artifact status lifecycle
//! PENDING → READY (or FAILED, which a new upload may retry).

use std::collections::{BTreeMap, HashMap};

use mlops_proto::registry::v1 as pb;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;

use super::models::model_not_found;
use super::{Store, Tx, from_json, now_micros, placeholders, timestamp, to_json};
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::validate;

pub const FORMATS: &[&str] = &["onnx"];

pub(crate) const PENDING: &str = "PENDING";
pub(crate) const READY: &str = "READY";
pub(crate) const FAILED: &str = "FAILED";

fn status_to_proto(status: &str) -> pb::ModelVersionStatus {
    match status {
        PENDING => pb::ModelVersionStatus::Pending,
        READY => pb::ModelVersionStatus::Ready,
        FAILED => pb::ModelVersionStatus::Failed,
        _ => pb::ModelVersionStatus::Unspecified,
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct DatasetJson {
    table_uri: String,
    table_version: i64,
    #[serde(default)]
    upstream: BTreeMap<String, String>,
}

impl DatasetJson {
    pub(super) fn from_proto(d: &pb::DatasetLineage) -> Result<Self> {
        if d.table_uri.is_empty() {
            return Err(Error::invalid(
                "dataset.table_uri is required when a dataset is given",
            ));
        }
        if d.table_version < 0 {
            return Err(Error::invalid(format!(
                "dataset.table_version must be 0 or more, got {}",
                d.table_version
            )));
        }
        validate::string_map("dataset.upstream", &d.upstream)?;
        Ok(Self {
            table_uri: d.table_uri.clone(),
            table_version: d.table_version,
            upstream: d.upstream.clone().into_iter().collect(),
        })
    }

    pub(super) fn to_proto(&self) -> pb::DatasetLineage {
        pb::DatasetLineage {
            table_uri: self.table_uri.clone(),
            table_version: self.table_version,
            upstream: self.upstream.clone().into_iter().collect(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct TensorJson {
    name: String,
    dtype: String,
    shape: Vec<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    columns: Vec<String>,
}

#[derive(Serialize, Deserialize, Default)]
struct SignatureJson {
    inputs: Vec<TensorJson>,
    outputs: Vec<TensorJson>,
}

const DTYPES: &[&str] = &[
    "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
    "uint32", "uint64", "bool", "string",
];

impl SignatureJson {
    fn from_proto(sig: &pb::Signature) -> Result<Self> {
        let tensors = |side: &str, specs: &[pb::TensorSpec]| -> Result<Vec<TensorJson>> {
            let mut seen = std::collections::HashSet::new();
            specs
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    if t.name.is_empty() {
                        return Err(Error::invalid(format!("signature.{side}[{i}].name is required")));
                    }
                    if !seen.insert(t.name.as_str()) {
                        return Err(Error::invalid(format!(
                            "signature.{side} names {:?} twice",
                            t.name
                        )));
                    }
                    if !DTYPES.contains(&t.dtype.as_str()) {
                        return Err(Error::invalid(format!(
                            "signature.{side}[{i}].dtype {:?} is not one of {}",
                            t.dtype,
                            DTYPES.join(", ")
                        )));
                    }
                    if let Some(d) = t.shape.iter().find(|d| **d < -1 || **d == 0) {
                        return Err(Error::invalid(format!(
                            "signature.{side}[{i}].shape has dimension {d}; use a positive size or -1 for a dynamic one"
                        )));
                    }
                    let last = t.shape.last().copied().unwrap_or(-1);
                    if !t.columns.is_empty() && last != -1 && last != t.columns.len() as i64 {
                        return Err(Error::invalid(format!(
                            "signature.{side}[{i}] names {} columns but its last dimension is {last}",
                            t.columns.len()
                        )));
                    }
                    Ok(TensorJson {
                        name: t.name.clone(),
                        dtype: t.dtype.clone(),
                        shape: t.shape.clone(),
                        columns: t.columns.clone(),
                    })
                })
                .collect()
        };
        Ok(Self {
            inputs: tensors("inputs", &sig.inputs)?,
            outputs: tensors("outputs", &sig.outputs)?,
        })
    }

    fn to_proto(&self) -> pb::Signature {
        let specs = |ts: &[TensorJson]| {
            ts.iter()
                .map(|t| pb::TensorSpec {
                    name: t.name.clone(),
                    dtype: t.dtype.clone(),
                    shape: t.shape.clone(),
                    columns: t.columns.clone(),
                })
                .collect()
        };
        pb::Signature {
            inputs: specs(&self.inputs),
            outputs: specs(&self.outputs),
        }
    }
}

/// What an artifact upload writes to: resolved and checked before any byte
/// is stored.
#[derive(Clone, Debug)]
pub struct UploadTarget {
    pub version_id: i64,
    pub model_name: String,
    pub version: i64,
}

impl Store {
    pub async fn create_version(
        &self,
        principal: &Principal,
        req: pb::CreateModelVersionRequest,
    ) -> Result<pb::ModelVersion> {
        validate::name("model_name", &req.model_name)?;
        if !FORMATS.contains(&req.format.as_str()) {
            return Err(Error::invalid(format!(
                "format {:?} is not supported; supported: {}",
                req.format,
                FORMATS.join(", ")
            )));
        }
        let signature = SignatureJson::from_proto(&req.signature.clone().unwrap_or_default())?;
        validate::metric_map("metrics", &req.metrics)?;
        validate::string_map("params", &req.params)?;
        validate::string_map("tags", &req.tags)?;
        validate::description(&req.description)?;
        let mut dataset = req
            .dataset
            .as_ref()
            .map(DatasetJson::from_proto)
            .transpose()?;
        if !req.run_id.is_empty() {
            let run = self.get_run(&req.run_id).await?;
            if dataset.is_none() {
                dataset = run
                    .dataset
                    .as_ref()
                    .map(DatasetJson::from_proto)
                    .transpose()?;
            }
        }

        let now = now_micros();
        let mut tx = self.begin().await?;
        // The increment takes the model's row lock: concurrent creates queue
        // here and get distinct, consecutive numbers.
        let row = sqlx::query(
            "UPDATE registered_models SET last_version = last_version + 1, updated_at = $2
             WHERE name = $1 RETURNING id, last_version, archived",
        )
        .bind(&req.model_name)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| model_not_found(&req.model_name))?;
        let model_id: i64 = row.try_get("id")?;
        let version: i64 = row.try_get("last_version")?;
        if row.try_get::<i64, _>("archived")? != 0 {
            return Err(Error::precondition(format!(
                "registered model {:?} is archived; it takes no new versions",
                req.model_name
            )));
        }
        let run_id = (!req.run_id.is_empty()).then_some(req.run_id.as_str());
        let dataset_json = dataset
            .as_ref()
            .map(|d| to_json("dataset", d))
            .transpose()?;
        let id: i64 = sqlx::query(
            "INSERT INTO model_versions (model_id, version, status, format, signature_json, description,
                 created_by, run_id, dataset_json, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id",
        )
        .bind(model_id)
        .bind(version)
        .bind(PENDING)
        .bind(&req.format)
        .bind(to_json("signature", &signature)?)
        .bind(&req.description)
        .bind(&principal.name)
        .bind(run_id)
        .bind(dataset_json.as_deref())
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        for (key, value) in &req.metrics {
            sqlx::query("INSERT INTO version_metrics (version_id, key, value) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(key)
                .bind(*value)
                .execute(&mut *tx)
                .await?;
        }
        insert_pairs(&mut tx, "version_params", id, &req.params).await?;
        insert_pairs(&mut tx, "version_tags", id, &req.tags).await?;
        let target = format!("{}/{version}", req.model_name);
        let after = json!({
            "version": version, "format": req.format, "run_id": req.run_id,
            "metrics": req.metrics, "params": req.params, "tags": req.tags,
        });
        self.audit(
            &mut tx,
            principal,
            "version.create",
            &req.model_name,
            &target,
            None,
            Some(after),
            now,
        )
        .await?;
        let event = pb::registry_event::Event::VersionCreated(pb::VersionCreated {
            model_name: req.model_name.clone(),
            version,
            run_id: req.run_id.clone(),
        });
        self.enqueue(&mut tx, principal, &req.model_name, event, now)
            .await?;
        tx.commit().await?;
        self.get_version(&req.model_name, version).await
    }

    pub async fn get_version(&self, model_name: &str, version: i64) -> Result<pb::ModelVersion> {
        let id = self.version_id(model_name, version).await?;
        self.versions_by_ids(&[id])
            .await?
            .pop()
            .ok_or_else(|| version_not_found(model_name, version))
    }

    pub(super) async fn version_id(&self, model_name: &str, version: i64) -> Result<i64> {
        validate::version(version)?;
        let row = sqlx::query(
            "SELECT v.id FROM model_versions v JOIN registered_models m ON m.id = v.model_id
             WHERE m.name = $1 AND v.version = $2",
        )
        .bind(model_name)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(row.try_get("id")?),
            None => {
                self.get_model(model_name).await?;
                Err(version_not_found(model_name, version))
            }
        }
    }

    /// Checks that `model_name/version` can take an artifact.
    pub async fn upload_target(&self, model_name: &str, version: i64) -> Result<UploadTarget> {
        let current = self.get_version(model_name, version).await?;
        if current.status == pb::ModelVersionStatus::Ready as i32 {
            return Err(Error::precondition(format!(
                "version {version} of {model_name:?} is READY and its artifact is immutable; register a new version"
            )));
        }
        Ok(UploadTarget {
            version_id: self.version_id(model_name, version).await?,
            model_name: model_name.to_string(),
            version,
        })
    }

    /// Records a verified artifact and marks the version READY. Fails when
    /// another upload finished first (the caller then deletes its object).
    pub async fn mark_ready(
        &self,
        principal: &Principal,
        target: &UploadTarget,
        path: &str,
        filename: &str,
        size: i64,
        sha256: &str,
    ) -> Result<pb::ModelVersion> {
        let now = now_micros();
        let mut tx = self.begin().await?;
        let updated = sqlx::query(
            "UPDATE model_versions SET status = $1, status_message = '', artifact_path = $2,
                 artifact_filename = $3, artifact_size = $4, artifact_sha256 = $5, updated_at = $6
             WHERE id = $7 AND status <> $1",
        )
        .bind(READY)
        .bind(path)
        .bind(filename)
        .bind(size)
        .bind(sha256)
        .bind(now)
        .bind(target.version_id)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(Error::precondition(format!(
                "version {} of {:?} became READY through another upload",
                target.version, target.model_name
            )));
        }
        let name = format!("{}/{}", target.model_name, target.version);
        let after =
            json!({"status": READY, "filename": filename, "size_bytes": size, "sha256": sha256});
        self.audit(
            &mut tx,
            principal,
            "version.ready",
            &target.model_name,
            &name,
            None,
            Some(after),
            now,
        )
        .await?;
        let event = pb::registry_event::Event::VersionReady(pb::VersionReady {
            model_name: target.model_name.clone(),
            version: target.version,
            artifact_sha256: sha256.to_string(),
            artifact_size_bytes: size,
        });
        self.enqueue(&mut tx, principal, &target.model_name, event, now)
            .await?;
        tx.commit().await?;
        self.get_version(&target.model_name, target.version).await
    }

    /// Marks a failed upload, unless the version is already READY.
    pub async fn mark_failed(
        &self,
        principal: &Principal,
        target: &UploadTarget,
        reason: &str,
    ) -> Result<()> {
        let now = now_micros();
        let mut tx = self.begin().await?;
        let updated = sqlx::query(
            "UPDATE model_versions SET status = $1, status_message = $2, updated_at = $3
             WHERE id = $4 AND status <> $5",
        )
        .bind(FAILED)
        .bind(reason)
        .bind(now)
        .bind(target.version_id)
        .bind(READY)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() > 0 {
            let name = format!("{}/{}", target.model_name, target.version);
            let after = json!({"status": FAILED, "reason": reason});
            self.audit(
                &mut tx,
                principal,
                "version.upload_failed",
                &target.model_name,
                &name,
                None,
                Some(after),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The stored artifact of a READY version: (path, info).
    pub async fn artifact(
        &self,
        model_name: &str,
        version: i64,
    ) -> Result<(String, pb::ArtifactInfo)> {
        let id = self.version_id(model_name, version).await?;
        let row = sqlx::query(
            "SELECT status, artifact_path, artifact_filename, artifact_size, artifact_sha256
             FROM model_versions WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        let status: String = row.try_get("status")?;
        let path: Option<String> = row.try_get("artifact_path")?;
        match (status.as_str(), path) {
            (READY, Some(path)) => Ok((
                path,
                pb::ArtifactInfo {
                    model_name: model_name.to_string(),
                    version,
                    filename: row
                        .try_get::<Option<String>, _>("artifact_filename")?
                        .unwrap_or_default(),
                    size_bytes: row
                        .try_get::<Option<i64>, _>("artifact_size")?
                        .unwrap_or_default(),
                    sha256: row
                        .try_get::<Option<String>, _>("artifact_sha256")?
                        .unwrap_or_default(),
                },
            )),
            (status, _) => Err(Error::precondition(format!(
                "version {version} of {model_name:?} is {status}; only READY versions have an artifact"
            ))),
        }
    }

    /// Full version messages (metrics, params, tags, aliases) in `ids` order.
    pub(super) async fn versions_by_ids(&self, ids: &[i64]) -> Result<Vec<pb::ModelVersion>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = placeholders(0, ids.len());
        let sql = format!(
            "SELECT v.id, m.name, v.version, v.status, v.status_message, v.format, v.signature_json,
                 v.description, v.created_by, v.run_id, v.dataset_json, v.artifact_filename,
                 v.artifact_size, v.artifact_sha256, v.created_at, v.updated_at
             FROM model_versions v JOIN registered_models m ON m.id = v.model_id
             WHERE v.id IN ({list})"
        );
        let mut versions: HashMap<i64, pb::ModelVersion> = HashMap::new();
        for row in bind_ids(&sql, ids).fetch_all(&self.pool).await? {
            let signature: SignatureJson =
                from_json("signature", &row.try_get::<String, _>("signature_json")?)?;
            let dataset = row
                .try_get::<Option<String>, _>("dataset_json")?
                .map(|raw| from_json::<DatasetJson>("dataset", &raw))
                .transpose()?;
            versions.insert(
                row.try_get("id")?,
                pb::ModelVersion {
                    model_name: row.try_get("name")?,
                    version: row.try_get("version")?,
                    status: status_to_proto(&row.try_get::<String, _>("status")?) as i32,
                    status_message: row.try_get("status_message")?,
                    format: row.try_get("format")?,
                    signature: Some(signature.to_proto()),
                    metrics: HashMap::new(),
                    params: HashMap::new(),
                    tags: HashMap::new(),
                    description: row.try_get("description")?,
                    created_by: row.try_get("created_by")?,
                    run_id: row
                        .try_get::<Option<String>, _>("run_id")?
                        .unwrap_or_default(),
                    dataset: dataset.map(|d| d.to_proto()),
                    aliases: Vec::new(),
                    artifact_size_bytes: row
                        .try_get::<Option<i64>, _>("artifact_size")?
                        .unwrap_or_default(),
                    artifact_sha256: row
                        .try_get::<Option<String>, _>("artifact_sha256")?
                        .unwrap_or_default(),
                    artifact_filename: row
                        .try_get::<Option<String>, _>("artifact_filename")?
                        .unwrap_or_default(),
                    created_at: Some(timestamp(row.try_get("created_at")?)),
                    updated_at: Some(timestamp(row.try_get("updated_at")?)),
                },
            );
        }
        let sql = format!(
            "SELECT version_id, key, value FROM version_metrics WHERE version_id IN ({list})"
        );
        for row in bind_ids(&sql, ids).fetch_all(&self.pool).await? {
            if let Some(v) = versions.get_mut(&row.try_get::<i64, _>("version_id")?) {
                v.metrics.insert(row.try_get("key")?, row.try_get("value")?);
            }
        }
        for (table, pick) in [
            (
                "version_params",
                (|v| &mut v.params) as fn(&mut pb::ModelVersion) -> &mut HashMap<String, String>,
            ),
            ("version_tags", |v| &mut v.tags),
        ] {
            let sql =
                format!("SELECT version_id, key, value FROM {table} WHERE version_id IN ({list})");
            for row in bind_ids(&sql, ids).fetch_all(&self.pool).await? {
                if let Some(v) = versions.get_mut(&row.try_get::<i64, _>("version_id")?) {
                    pick(v).insert(row.try_get("key")?, row.try_get("value")?);
                }
            }
        }
        let sql = format!(
            "SELECT version_id, alias FROM aliases WHERE version_id IN ({list}) ORDER BY alias"
        );
        for row in bind_ids(&sql, ids).fetch_all(&self.pool).await? {
            if let Some(v) = versions.get_mut(&row.try_get::<i64, _>("version_id")?) {
                v.aliases.push(row.try_get("alias")?);
            }
        }
        Ok(ids.iter().filter_map(|id| versions.remove(id)).collect())
    }
}

pub(super) fn version_not_found(model_name: &str, version: i64) -> Error {
    Error::not_found(format!(
        "version {version} of registered model {model_name:?} not found"
    ))
}

fn bind_ids<'q>(
    sql: &'q str,
    ids: &[i64],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    ids.iter().fold(sqlx::query(sql), |q, id| q.bind(*id))
}

async fn insert_pairs(
    tx: &mut Tx,
    table: &str,
    version_id: i64,
    pairs: &HashMap<String, String>,
) -> Result<()> {
    let sql = format!("INSERT INTO {table} (version_id, key, value) VALUES ($1, $2, $3)");
    for (key, value) in pairs {
        sqlx::query(&sql)
            .bind(version_id)
            .bind(key)
            .bind(value)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
