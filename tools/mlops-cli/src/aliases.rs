//! `mlops alias`: aliases such as champion and challenger.

use anyhow::Context;
use clap::Subcommand;
use mlops_registry_client::RegistryClient;
use mlops_registry_client::proto as pb;
use serde_json::Value;

use crate::json;
use crate::output::{Output, detail, table, text};

#[derive(Subcommand)]
pub(crate) enum AliasCmd {
    /// Point an alias at a version (moves it if it exists).
    Set {
        model: String,
        alias: String,
        version: i64,
    },
    Delete {
        model: String,
        alias: String,
    },
    /// The version an alias points at, now or at a past time.
    Get {
        model: String,
        alias: String,
        /// RFC 3339 time, e.g. 2026-11-01T00:00:00Z.
        #[arg(long)]
        at: Option<String>,
    },
    History {
        model: String,
        alias: Option<String>,
    },
}

pub(crate) async fn run(
    client: &mut RegistryClient,
    out: &Output<'_>,
    cmd: AliasCmd,
) -> anyhow::Result<()> {
    match cmd {
        AliasCmd::Set {
            model,
            alias,
            version,
        } => {
            let a = client
                .raw()
                .set_alias(pb::SetAliasRequest {
                    model_name: model,
                    alias,
                    version,
                })
                .await?
                .into_inner();
            let value = json::alias(&a);
            out.print(&value, || detail(&value))
        }
        AliasCmd::Delete { model, alias } => {
            client
                .raw()
                .delete_alias(pb::DeleteAliasRequest {
                    model_name: model.clone(),
                    alias: alias.clone(),
                })
                .await?;
            let value = serde_json::json!({"model_name": model, "alias": alias, "deleted": true});
            out.print(&value, || detail(&value))
        }
        AliasCmd::Get { model, alias, at } => {
            let at_time = at
                .map(|raw| {
                    chrono::DateTime::parse_from_rfc3339(&raw)
                        .map(|t| prost_types::Timestamp {
                            seconds: t.timestamp(),
                            nanos: t.timestamp_subsec_nanos() as i32,
                        })
                        .with_context(|| format!("--at {raw:?} is not an RFC 3339 time"))
                })
                .transpose()?;
            let v = client
                .raw()
                .get_model_version_by_alias(pb::GetModelVersionByAliasRequest {
                    model_name: model,
                    alias,
                    at_time,
                })
                .await?
                .into_inner();
            let value = json::version(&v);
            out.print(&value, || detail(&value))
        }
        AliasCmd::History { model, alias } => {
            let resp = client
                .raw()
                .list_alias_history(pb::ListAliasHistoryRequest {
                    model_name: model,
                    alias: alias.unwrap_or_default(),
                })
                .await?
                .into_inner();
            let value: Value = resp.entries.iter().map(json::alias_history).collect();
            out.print(&value, || {
                let mut t = table(&["set at", "alias", "version", "set by"]);
                for e in &resp.entries {
                    let version = if e.version == 0 {
                        "(deleted)".to_string()
                    } else {
                        e.version.to_string()
                    };
                    t.add_row(vec![
                        text(&json::time(&e.set_at)),
                        e.alias.clone(),
                        version,
                        e.set_by.clone(),
                    ]);
                }
                t
            })
        }
    }
}
