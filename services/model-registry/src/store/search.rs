//! Search over models and versions: a parsed filter compiled to SQL with
//! bound parameters (never spliced text), answered with ids and then full
//! messages, so results always carry tags, metrics and aliases.

use mlops_proto::registry::v1 as pb;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::Store;
use super::audit::page_size;
use crate::error::{Error, Result};
use crate::filter::{self, Clause, Field, Op, OrderBy, SortKey, Target, Value};

enum Arg {
    Text(String),
    Int(i64),
    Float(f64),
}

/// SQL text plus its arguments, numbered as they are pushed.
#[derive(Default)]
struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    fn arg(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    fn text_arg(&mut self, value: &Value) -> String {
        let arg = match value {
            Value::Text(t) => Arg::Text(t.clone()),
            Value::Number(n) => Arg::Float(*n),
            Value::Bool(b) => Arg::Int(i64::from(*b)),
        };
        self.arg(arg)
    }

    async fn fetch_ids(self, store: &Store) -> Result<Vec<i64>> {
        let mut query = sqlx::query(&self.text);
        for arg in self.args {
            query = match arg {
                Arg::Text(t) => query.bind(t),
                Arg::Int(i) => query.bind(i),
                Arg::Float(f) => query.bind(f),
            };
        }
        query
            .fetch_all(&store.pool)
            .await?
            .iter()
            .map(|row| Ok(row.try_get::<i64, _>("id")?))
            .collect()
    }
}

/// A key-value side table condition: `EXISTS` for `=`, `NOT EXISTS` for `!=`.
fn pair_condition(
    sql: &mut Sql,
    table: &str,
    owner: &str,
    owner_col: &str,
    key: &str,
    op: Op,
    value: &Value,
) -> String {
    let k = sql.arg(Arg::Text(key.to_string()));
    let v = sql.text_arg(value);
    let exists = if op == Op::Ne { "NOT EXISTS" } else { "EXISTS" };
    format!(
        "{exists} (SELECT 1 FROM {table} p WHERE p.{owner_col} = {owner} AND p.key = {k} AND p.value = {v})"
    )
}

struct Page {
    offset: i64,
    limit: i64,
    fingerprint: String,
}

fn page(filter: &str, order_by: &str, page_size_req: i32, token: &str, kind: &str) -> Result<Page> {
    let limit = page_size(page_size_req)?;
    let digest = Sha256::digest(format!("{kind}\n{filter}\n{order_by}").as_bytes());
    let fingerprint = hex::encode(&digest[..6]);
    let offset = if token.is_empty() {
        0
    } else {
        let parsed = token
            .strip_prefix('o')
            .and_then(|t| t.split_once('.'))
            .and_then(|(offset, fp)| Some((offset.parse::<i64>().ok()?, fp)));
        match parsed {
            Some((offset, fp)) if fp == fingerprint && offset >= 0 => offset,
            _ => {
                return Err(Error::invalid(
                    "page_token does not belong to this search; repeat the same filter and order_by, or start without a token",
                ));
            }
        }
    };
    Ok(Page {
        offset,
        limit,
        fingerprint,
    })
}

impl Page {
    fn finish(&self, sql: &mut Sql) {
        let limit = sql.arg(Arg::Int(self.limit + 1));
        let offset = sql.arg(Arg::Int(self.offset));
        sql.text
            .push_str(&format!(" LIMIT {limit} OFFSET {offset}"));
    }

    /// Trims the look-ahead row and returns the next token.
    fn next_token(&self, ids: &mut Vec<i64>) -> String {
        if ids.len() as i64 > self.limit {
            ids.truncate(self.limit as usize);
            format!("o{}.{}", self.offset + self.limit, self.fingerprint)
        } else {
            String::new()
        }
    }
}

fn direction(order: &OrderBy) -> &'static str {
    if order.descending { "DESC" } else { "ASC" }
}

impl Store {
    pub async fn search_models(
        &self,
        req: &pb::SearchRegisteredModelsRequest,
    ) -> Result<pb::SearchRegisteredModelsResponse> {
        let clauses = filter::parse(&req.filter, Target::Models)?;
        let order = filter::parse_order(
            &req.order_by,
            Target::Models,
            OrderBy {
                key: SortKey::Name,
                descending: false,
            },
        )?;
        let page = page(
            &req.filter,
            &req.order_by,
            req.page_size,
            &req.page_token,
            "models",
        )?;
        let mut sql = Sql::default();
        let mut conditions = Vec::new();
        for Clause { field, op, value } in &clauses {
            let condition = match field {
                Field::Name => {
                    let v = sql.text_arg(value);
                    format!("m.name {} {v}", op.sql())
                }
                Field::Archived => {
                    let v = sql.text_arg(value);
                    format!("m.archived = {v}")
                }
                Field::Alias => {
                    let v = sql.text_arg(value);
                    format!(
                        "EXISTS (SELECT 1 FROM aliases a WHERE a.model_id = m.id AND a.alias = {v})"
                    )
                }
                Field::Tag(key) => {
                    pair_condition(&mut sql, "model_tags", "m.id", "model_id", key, *op, value)
                }
                other => {
                    return Err(Error::Internal(format!(
                        "filter field {other:?} passed model validation"
                    )));
                }
            };
            conditions.push(condition);
        }
        sql.text = String::from("SELECT m.id AS id FROM registered_models m");
        if !conditions.is_empty() {
            sql.text
                .push_str(&format!(" WHERE {}", conditions.join(" AND ")));
        }
        let column = match order.key {
            SortKey::CreatedAt => "m.created_at",
            SortKey::UpdatedAt => "m.updated_at",
            _ => "m.name",
        };
        sql.text
            .push_str(&format!(" ORDER BY {column} {}, m.id", direction(&order)));
        page.finish(&mut sql);
        let mut ids = sql.fetch_ids(self).await?;
        let next_page_token = page.next_token(&mut ids);
        Ok(pb::SearchRegisteredModelsResponse {
            models: self.models_by_ids(&ids).await?,
            next_page_token,
        })
    }

    pub async fn search_versions(
        &self,
        req: &pb::SearchModelVersionsRequest,
    ) -> Result<pb::SearchModelVersionsResponse> {
        let clauses = filter::parse(&req.filter, Target::Versions)?;
        let order = filter::parse_order(
            &req.order_by,
            Target::Versions,
            OrderBy {
                key: SortKey::Version,
                descending: true,
            },
        )?;
        let page = page(
            &req.filter,
            &req.order_by,
            req.page_size,
            &req.page_token,
            "versions",
        )?;
        let mut sql = Sql::default();
        // The metric to sort by is joined first so its argument is $1.
        let mut from = String::from(
            "SELECT v.id AS id FROM model_versions v JOIN registered_models m ON m.id = v.model_id",
        );
        if let SortKey::Metric(key) = &order.key {
            let k = sql.arg(Arg::Text(key.clone()));
            from.push_str(&format!(
                " LEFT JOIN version_metrics om ON om.version_id = v.id AND om.key = {k}"
            ));
        }
        let mut conditions = Vec::new();
        for Clause { field, op, value } in &clauses {
            let condition = match field {
                Field::Name => {
                    let v = sql.text_arg(value);
                    format!("m.name {} {v}", op.sql())
                }
                Field::Version => {
                    let Value::Number(n) = value else {
                        return Err(Error::Internal("version filter without a number".into()));
                    };
                    let v = sql.arg(Arg::Int(*n as i64));
                    format!("v.version {} {v}", op.sql())
                }
                Field::Status | Field::Format | Field::CreatedBy | Field::RunId => {
                    let column = match field {
                        Field::Status => "v.status",
                        Field::Format => "v.format",
                        Field::CreatedBy => "v.created_by",
                        _ => "COALESCE(v.run_id, '')",
                    };
                    let v = sql.text_arg(value);
                    format!("{column} {} {v}", op.sql())
                }
                Field::Alias => {
                    let v = sql.text_arg(value);
                    format!(
                        "EXISTS (SELECT 1 FROM aliases a WHERE a.version_id = v.id AND a.alias = {v})"
                    )
                }
                Field::Metric(key) => {
                    let k = sql.arg(Arg::Text(key.clone()));
                    let v = sql.text_arg(value);
                    format!(
                        "EXISTS (SELECT 1 FROM version_metrics x WHERE x.version_id = v.id AND x.key = {k} AND x.value {} {v})",
                        op.sql()
                    )
                }
                Field::Param(key) => pair_condition(
                    &mut sql,
                    "version_params",
                    "v.id",
                    "version_id",
                    key,
                    *op,
                    value,
                ),
                Field::Tag(key) => pair_condition(
                    &mut sql,
                    "version_tags",
                    "v.id",
                    "version_id",
                    key,
                    *op,
                    value,
                ),
                Field::Archived => {
                    return Err(Error::Internal("archived passed version validation".into()));
                }
            };
            conditions.push(condition);
        }
        sql.text = from;
        if !conditions.is_empty() {
            sql.text
                .push_str(&format!(" WHERE {}", conditions.join(" AND ")));
        }
        let dir = direction(&order);
        let order_sql = match &order.key {
            SortKey::Metric(_) => format!("om.value {dir} NULLS LAST, v.id"),
            SortKey::Name => format!("m.name {dir}, v.version DESC, v.id"),
            SortKey::CreatedAt => format!("v.created_at {dir}, v.id"),
            _ => format!("v.version {dir}, m.name, v.id"),
        };
        sql.text.push_str(&format!(" ORDER BY {order_sql}"));
        page.finish(&mut sql);
        let mut ids = sql.fetch_ids(self).await?;
        let next_page_token = page.next_token(&mut ids);
        Ok(pb::SearchModelVersionsResponse {
            versions: self.versions_by_ids(&ids).await?,
            next_page_token,
        })
    }
}
