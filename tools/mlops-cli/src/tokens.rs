//! `mlops tokens`: API tokens (admin).

use clap::Subcommand;
use mlops_registry_client::RegistryClient;
use mlops_registry_client::proto as pb;
use serde_json::Value;

use crate::args::role;
use crate::json;
use crate::output::{Output, detail, table, text};

#[derive(Subcommand)]
pub(crate) enum TokensCmd {
    /// Mint a token; its secret is printed once.
    Create {
        name: String,
        /// reader, writer, approver or admin.
        #[arg(long)]
        role: String,
    },
    List,
    Revoke {
        token_id: String,
    },
}

pub(crate) async fn run(
    client: &mut RegistryClient,
    out: &Output<'_>,
    cmd: TokensCmd,
) -> anyhow::Result<()> {
    match cmd {
        TokensCmd::Create {
            name,
            role: raw_role,
        } => {
            let resp = client
                .raw()
                .create_api_token(pb::CreateApiTokenRequest {
                    name,
                    role: role(&raw_role)? as i32,
                })
                .await?
                .into_inner();
            let mut value = resp.token.as_ref().map(json::token).unwrap_or(Value::Null);
            value["secret"] = Value::String(resp.secret.clone());
            if !out.json {
                eprintln!("store the secret now; it is not shown again");
            }
            out.print(&value, || detail(&value))
        }
        TokensCmd::List => {
            let resp = client
                .raw()
                .list_api_tokens(pb::ListApiTokensRequest {})
                .await?
                .into_inner();
            let value: Value = resp.tokens.iter().map(json::token).collect();
            out.print(&value, || {
                let mut t = table(&["token id", "name", "role", "created by", "revoked at"]);
                for tok in &resp.tokens {
                    t.add_row(vec![
                        tok.token_id.clone(),
                        tok.name.clone(),
                        json::role(tok.role).to_string(),
                        tok.created_by.clone(),
                        text(&json::time(&tok.revoked_at)),
                    ]);
                }
                t
            })
        }
        TokensCmd::Revoke { token_id } => {
            let tok = client
                .raw()
                .revoke_api_token(pb::RevokeApiTokenRequest { token_id })
                .await?
                .into_inner();
            let value = json::token(&tok);
            out.print(&value, || detail(&value))
        }
    }
}
